"""Each sim profile's statistics, measured from its own recorded session's export (300 s, no market
maker), within the ranges it is calibrated to; informed flow shows in the market trades' markout."""

from __future__ import annotations

from pathlib import Path

import pytest

from lobterm.bench.sim_profiles import record_profile

RANGES = {
    "btc-spot": {
        "annual_vol": (0.35, 0.75),
        "spread_ticks_median": (1, 8),
        "trades_per_s": (2.5, 7.0),
        "trade_size_p99_over_median": (3.0, 30.0),
    },
    "alt-thin": {
        "annual_vol": (0.9, 3.0),
        "spread_ticks_median": (4, 8),
        "trades_per_s": (0.4, 2.0),
        "trade_size_p99_over_median": (3.0, 60.0),
    },
    "btc-perp": {
        "annual_vol": (0.35, 0.85),
        "spread_ticks_median": (1, 8),
        "trades_per_s": (5.0, 12.0),
        "trade_size_p99_over_median": (3.0, 30.0),
    },
}


@pytest.mark.parametrize("profile", sorted(RANGES))
def test_profile_statistics_from_its_export(profile: str, tmp_path: Path) -> None:
    stats = record_profile(profile, 300.0, 1, tmp_path)
    for name, (lo, hi) in RANGES[profile].items():
        assert lo <= stats[name] <= hi, f"{profile} {name} = {stats[name]} not in {lo}..{hi}"
    assert stats["trade_size_max_over_median"] > stats["trade_size_p99_over_median"]


def test_informed_share_shows_in_trade_markouts(tmp_path: Path) -> None:
    none = record_profile("btc-spot", 300.0, 2, tmp_path / "a", informed_share=0.0)
    lots = record_profile("btc-spot", 300.0, 2, tmp_path / "b", informed_share=0.5)
    assert lots["trade_markout_bps"] > none["trade_markout_bps"] + 0.2

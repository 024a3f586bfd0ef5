"""The sim profiles' statistics, measured from a session's own export (`lobterm export --to csv`).

`export_stats(dir)` reads `trades.csv` and `top_of_book.csv` of one export and returns the figures the
profiles are calibrated to (PROFILES in lobterm.venues.sim); `main()` records each profile headless
and prints them (python -m lobterm.bench.sim_profiles [seconds] [seed]). The tests
(tests/integration/test_sim_profiles.py) assert them with ranges.
"""

from __future__ import annotations

import bisect
import csv
import math
import statistics
import sys
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

__all__ = ["export_stats", "record_profile", "main"]

_YEAR_S = 365.0 * 86_400.0
_NS = 1_000_000_000


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def export_stats(export_dir: str | Path, tick_size: Decimal, horizon_s: float = 5.0) -> dict[str, Any]:
    """Figures of one export: volatility, jumps, spread, trade sizes and rate, touch depth, and the
    market trades' markout (aggressor-signed mid move `horizon_s` later, bps; > 0: the takers were
    informed on average)."""
    d = Path(export_dir)
    tob = [r for r in _read(d / "top_of_book.csv") if r["bid"] and r["ask"]]
    trades = _read(d / "trades.csv")
    ts = [int(r["ts_ns"]) for r in tob]
    mids = [(float(r["bid"]) + float(r["ask"])) / 2.0 for r in tob]
    t0, t1 = ts[0], ts[-1]
    seconds = int((t1 - t0) // _NS)

    def mid_at(t: int) -> float:
        return mids[max(0, bisect.bisect_right(ts, t) - 1)]

    grid = [mid_at(t0 + i * _NS) for i in range(seconds + 1)]
    rets = [math.log(b / a) for a, b in zip(grid, grid[1:], strict=False)]
    sd = statistics.pstdev(rets)
    mad = statistics.median(abs(r) for r in rets) / 0.6745
    jumps = [abs(r) * 1e4 for r in rets if abs(r) > 6 * mad]
    tick = float(tick_size)
    spreads = sorted(round((float(r["ask"]) - float(r["bid"])) / tick) for r in tob)
    sizes = sorted(float(r["size"]) for r in trades)
    med = statistics.median(sizes)
    # Market trades' markout: one per taker order (prints of one ts and side are one order).
    orders: dict[tuple[int, str], tuple[float, float]] = {}
    for r in trades:
        key = (int(r["ts_ns"]), r["aggressor"])
        px, sz = float(r["price"]), float(r["size"])
        a, b = orders.get(key, (0.0, 0.0))
        orders[key] = (a + px * sz, b + sz)
    marks = []
    for (t, side), _ in orders.items():
        if t + horizon_s * _NS > t1:
            continue
        before, after = mid_at(t - 1), mid_at(t + int(horizon_s * _NS))
        sign = 1.0 if side.lower() == "buy" else -1.0
        marks.append(sign * (after - before) / before * 1e4)
    touch = sorted(float(r["bid_size"]) for r in tob) + sorted(float(r["ask_size"]) for r in tob)
    return {
        "seconds": seconds,
        "annual_vol": sd * math.sqrt(_YEAR_S),
        "annual_vol_ex_jumps": mad * math.sqrt(_YEAR_S),
        "jumps_per_hour": len(jumps) * 3600.0 / max(1, seconds),
        "jump_bps_mean": statistics.fmean(jumps) if jumps else 0.0,
        "spread_ticks_median": statistics.median(spreads),
        "spread_ticks_p90": spreads[int(0.9 * (len(spreads) - 1))],
        "spread_bps_median": statistics.median(spreads) * tick / statistics.fmean(mids) * 1e4,
        "trades_per_s": len(orders) / max(1, seconds),
        "prints_per_s": len(trades) / max(1, seconds),
        "trade_size_median": med,
        "trade_size_p99_over_median": sizes[int(0.99 * (len(sizes) - 1))] / med,
        "trade_size_max_over_median": sizes[-1] / med,
        "touch_size_median": statistics.median(touch),
        "trade_markout_bps": statistics.fmean(marks) if marks else 0.0,
    }


def record_profile(profile: str, seconds: float, seed: int, out: Path, **sim: Any) -> dict[str, Any]:
    """Run profile `profile` headless (no market maker) for `seconds`, record, export, measure."""
    from lobterm.config import load
    from lobterm.headless import run_headless
    from lobterm.recording.export import export_session

    cfg = load(use_defaults=False, overrides={"sim": {"profile": profile, "seed": seed, **sim}})
    summary = run_headless(cfg, seconds, market_maker=False, record_to=out)
    assert summary.session is not None
    result = export_session(summary.session, "csv", out / "export")
    del result
    return export_stats(out / "export", cfg.sim.tick_size)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    seconds = float(args[0]) if args else 600.0
    seed = int(args[1]) if len(args) > 1 else 1
    from lobterm.venues.sim import PROFILES

    for profile in PROFILES:
        with tempfile.TemporaryDirectory() as tmp:
            stats = record_profile(profile, seconds, seed, Path(tmp))
        print(f"{profile} ({seconds:g} s, seed {seed})")
        for k, v in stats.items():
            print(f"  {k:28} {v:.4g}" if isinstance(v, float) else f"  {k:28} {v}")


if __name__ == "__main__":
    main()

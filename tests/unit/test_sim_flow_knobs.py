"""The sim's flow knobs (issue 13): `noise_lean` (how far the noise takers lean towards the fair price)
the informed takers' reach (`informed_reach_ticks`) and the noise takers' transient impact (`impact_ticks`, `impact_half_life_s`). Their defaults leave
every profile as it was; each is bounded and validated like every other [sim] setting."""

from __future__ import annotations

import statistics

import pytest

from lobterm.assemble import build_sim_kernel
from lobterm.config import ConfigError, load
from lobterm.engine.events import Trade
from lobterm.venues.sim import PROFILES, SimConfig, SimConfigError


def venue_with(**sim: float):
    _kernel, venue = build_sim_kernel(
        load(use_defaults=False, overrides={"sim": {"seed": 4, **sim}}), virtual=True
    )
    venue.open()
    return venue


@pytest.mark.parametrize(
    ("name", "value"),
    [("noise_lean", 0.6), ("noise_lean", -0.1), ("impact_ticks", -1.0), ("impact_half_life_s", 0.0)],
)
def test_out_of_range_flow_knobs_are_refused_by_name(name: str, value: float) -> None:
    with pytest.raises(SimConfigError) as err:
        SimConfig(**{name: value}).validate()
    assert err.value.name == name
    with pytest.raises(ConfigError, match=name):
        load(use_defaults=False, overrides={"sim": {name: value}})


def test_every_profile_keeps_the_old_flow() -> None:
    for settings in PROFILES.values():
        assert settings["noise_lean"] == 0.35 and settings["impact_ticks"] == 0.0
        assert settings["informed_reach_ticks"] == 0


def test_informed_takers_with_a_reach_take_only_near_the_touch() -> None:
    """All takers informed: without a reach they sweep to the future fair price, with 1 tick they don't."""
    far = {}
    for reach in (0, 1):
        venue = venue_with(informed_share=1.0, informed_reach_ticks=reach, taker_mean_lots=2000, vol_bps=0.2)
        trades: list[Trade] = []
        venue.bus.subscribe((Trade,), trades.append)
        dist = []
        for _ in range(600):
            mid = (venue.book.best_bid() + venue.book.best_ask()) / 2.0
            del trades[:]
            venue.step()
            dist += [abs(t.price - mid) for t in trades]
        assert venue.informed_trades > 100
        far[reach] = statistics.fmean(dist)
    assert far[1] < far[0] / 2, far


def test_the_impact_moves_the_book_away_from_the_fair_price_and_decays() -> None:
    gaps = {}
    for impact in (0.0, 30.0):
        venue = venue_with(impact_ticks=impact, impact_half_life_s=1.0)
        gap = []
        for _ in range(1200):
            venue.step()
            gap.append((venue.book.best_bid() + venue.book.best_ask()) / 2.0 - venue.fair)
        gaps[impact] = statistics.pstdev(gap)
    assert gaps[30.0] > 2 * gaps[0.0], gaps
    # Without takers it decays by half every half-life (20 steps at 20 Hz).
    venue = venue_with(impact_ticks=30.0, impact_half_life_s=1.0, taker_per_s=0.0)
    venue.impact = 100.0
    for _ in range(20):
        venue.step()
    assert venue.impact == pytest.approx(50.0, rel=1e-6)

"""The sim's fair price in discrete events, and what the providers and the takers see of it, late."""

from __future__ import annotations

from lobterm.assemble import build_sim_kernel
from lobterm.config import load
from lobterm.engine.events import BUY, SELL
from lobterm.venues.sim import SimVenue


def _venue(**sim: object) -> SimVenue:
    cfg = load(use_defaults=False, overrides={"sim": {"seed": 7, **sim}})
    _kernel, venue = build_sim_kernel(cfg, virtual=True)
    venue.open()
    return venue


def _fairs(venue: SimVenue, steps: int) -> list[float]:
    out = []
    for _ in range(steps):
        venue.step()
        out.append(venue.fair)
    return out


def test_the_fair_price_moves_in_events_or_every_step() -> None:
    # 4 events a second at 20 Hz: a step has one with probability 1 - exp(-0.2), about 18%.
    fairs = _fairs(_venue(fair_events_per_s=4.0, rate_hz=20.0), 2000)
    moved = sum(a != b for a, b in zip(fairs, fairs[1:], strict=False)) / (len(fairs) - 1)
    assert 0.12 < moved < 0.25
    fairs = _fairs(_venue(fair_events_per_s=0.0), 500)
    assert all(a != b for a, b in zip(fairs, fairs[1:], strict=False))


def test_the_providers_see_the_fair_price_late_and_in_order() -> None:
    venue = _venue(fair_events_per_s=4.0, lp_delay_ms=500.0, taker_delay_ms=0.0)
    history: list[float] = [venue.fair]
    late = 0
    for _ in range(2000):
        venue.step()
        history.append(venue.fair)
        seen = venue._lp_view.value
        assert seen in history  # a price the fair price had, never one it did not
        late += seen != venue.fair
    assert late > 200  # half a second late on average: often behind
    prompt = _venue(fair_events_per_s=4.0, lp_delay_ms=0.0)
    for _ in range(200):
        prompt.step()
        assert prompt._lp_view.value == prompt.fair


def test_the_same_seed_gives_the_same_market_with_events_and_delays() -> None:
    a = _venue(fair_events_per_s=4.0, lp_delay_ms=80.0, taker_delay_ms=150.0)
    b = _venue(fair_events_per_s=4.0, lp_delay_ms=80.0, taker_delay_ms=150.0)
    assert _fairs(a, 600) == _fairs(b, 600)
    assert (a.trades, a.traded_lots, a.seq) == (b.trades, b.traded_lots, b.seq)
    assert a.book.depth(BUY) == b.book.depth(BUY) and a.book.depth(SELL) == b.book.depth(SELL)

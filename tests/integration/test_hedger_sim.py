"""The hedger on the real sim: a position built by our own order gets flattened by real matched fills.

Each test builds a position by buying at the ask on a SimVenue through the kernel, then lets the hedger
work while the venue steps (20 steps a simulated second, on a virtual clock). Cross-venue runs two
SimVenues in one kernel: the position on simA is hedged on simB.
"""

from __future__ import annotations

from fractions import Fraction

from lobterm.assemble import build_sim_kernel
from lobterm.clock import VIRTUAL_EPOCH_NS, VirtualClock
from lobterm.config import load
from lobterm.engine.events import BUY, OUR_OWNER, SELL, Fill
from lobterm.kernel import Kernel
from lobterm.trading.hedger import HedgeParams, Hedger
from lobterm.venues.sim import SimConfig, SimVenue

SECOND = 1_000_000_000


class FillLog:
    """Every Fill of ours on the bus, to reconcile the hedger's statistics against."""

    def __init__(self, kernel: Kernel) -> None:
        self.fills: list[Fill] = []
        kernel.bus.subscribe(Fill, self._on_fill)

    def _on_fill(self, ev: Fill) -> None:
        if ev.owner == OUR_OWNER:
            self.fills.append(ev)

    def of(self, order_ids: set[int]) -> list[Fill]:
        return [f for f in self.fills if f.order_id in order_ids]


def _sim():
    kernel, venue = build_sim_kernel(load(use_defaults=False), virtual=True)
    venue.open()
    return kernel, venue, kernel.default_market


def _build_long(kernel: Kernel, market, lots: int) -> int:
    """Buy `lots` at the ask (the sim's touch is thick enough); returns the price paid."""
    ask = market.l2.best_ask_price()
    kernel.buy(market, ask, lots)
    assert kernel.inventory.position(market.venue, market.symbol).lots == lots
    return ask


def _hedger(kernel: Kernel, quote, hedge=None, **params) -> Hedger:
    return Hedger(
        kernel.bus,
        kernel.oms,
        kernel.markets,
        quote=quote,
        hedge=hedge,
        params=HedgeParams(**params),
        clock=kernel.clock,
        positions=kernel.inventory,
    )


def _step(venues, seconds: float, until=None) -> float:
    """Step every venue for up to `seconds` of simulated time; returns the time it took for `until`."""
    steps = round(seconds * 20)
    for i in range(steps):
        for v in venues:
            v.step()
        if until is not None and until():
            return (i + 1) / 20
    return seconds


def _hedge_ids(h: Hedger) -> set[int]:
    return {o.order_id for o in h.recent}


def test_immediate_flattens_a_long_position_with_one_ioc_at_the_bid() -> None:
    kernel, venue, m = _sim()
    log = FillLog(kernel)
    _build_long(kernel, m, 50)
    h = _hedger(kernel, m.key, policy="immediate", max_slippage_bps=5)
    _step([venue], 2)
    assert kernel.inventory.position(m.venue, m.symbol).lots == 0
    assert h.stats.orders == 1 and h.stats.sold == 50 and h.in_flight is None
    fills = log.of(_hedge_ids(h))
    assert all(f.side == SELL and not f.is_maker for f in fills)
    assert h.stats.cash == sum(f.price * f.size for f in fills)
    assert kernel.bus.errors == 0


def test_a_hedge_sent_from_the_timer_is_recognised_though_the_sim_answers_inside_new_order() -> None:
    kernel, venue, m = _sim()
    log = FillLog(kernel)
    _build_long(kernel, m, 20)
    h = _hedger(kernel, m.key)
    h.on_time(kernel.clock.now())  # outside bus delivery: Accepted, Fill, Done arrive before the id returns
    assert kernel.inventory.position(m.venue, m.symbol).lots == 0
    [order] = h.recent
    assert order.state == "done" and order.filled == 20 and h.in_flight is None
    assert h.stats.volume == sum(f.size for f in log.of({order.order_id})) == 20


def test_twap_flattens_a_position_in_slices_spread_over_the_schedule() -> None:
    kernel, venue, m = _sim()
    log = FillLog(kernel)
    _build_long(kernel, m, 60)
    h = _hedger(kernel, m.key, policy="twap", twap_slices=4, twap_seconds=8)
    took = _step([venue], 20, until=lambda: kernel.inventory.position(m.venue, m.symbol).lots == 0)
    assert kernel.inventory.position(m.venue, m.symbol).lots == 0
    assert h.stats.twap_slices == 4 and [o.size for o in h.recent] == [15, 15, 15, 15]
    decided = [o.decided_ns for o in h.recent]
    assert all(b - a >= 2 * SECOND - 50_000_000 for a, b in zip(decided, decided[1:], strict=False)), (
        "one slice every 2 s"
    )
    assert 6 <= took <= 8
    assert h.stats.volume == sum(f.size for f in log.of(_hedge_ids(h)))


def test_opportunistic_sells_only_at_or_above_the_cost_of_the_position() -> None:
    kernel, venue, m = _sim()
    log = FillLog(kernel)
    cost = _build_long(kernel, m, 30)
    h = _hedger(kernel, m.key, policy="opportunistic", reference="avg_cost", edge_bps=0, deadline_s=120)
    assert h.avg_cost() == cost
    h.on_time(kernel.clock.now())
    assert h.stats.orders == 0, "the bid is below what we paid: wait"
    _step([venue], 120, until=lambda: kernel.inventory.position(m.venue, m.symbol).lots == 0)
    assert kernel.inventory.position(m.venue, m.symbol).lots == 0
    assert h.stats.deadline_fallbacks == 0
    fills = log.of(_hedge_ids(h))
    assert fills and all(f.side == SELL and f.price >= cost for f in fills)
    assert h.stats.slippage <= 0, "it never paid through the touch it decided on"


def test_opportunistic_falls_back_to_immediate_at_the_deadline() -> None:
    kernel, venue, m = _sim()
    _build_long(kernel, m, 30)
    h = _hedger(kernel, m.key, policy="opportunistic", edge_bps=500, deadline_s=3)
    took = _step([venue], 10, until=lambda: kernel.inventory.position(m.venue, m.symbol).lots == 0)
    assert kernel.inventory.position(m.venue, m.symbol).lots == 0
    assert 3 <= took <= 3.5
    assert h.stats.deadline_fallbacks == 1 and {o.why for o in h.recent} == {"deadline"}


def test_an_overdue_hedge_blocks_the_side_that_would_grow_the_position_until_hedged() -> None:
    kernel, venue, m = _sim()
    _build_long(kernel, m, 25)
    h = _hedger(kernel, m.key, overdue_after_s=1)
    h.pause()
    _step([venue], 1.5)
    assert h.blocks_quoting(BUY) and not h.blocks_quoting(SELL)
    h.resume()
    _step([venue], 0.5)
    assert kernel.inventory.position(m.venue, m.symbol).lots == 0
    assert not h.blocks_quoting(BUY) and h.stats.overdue_episodes == 1


# ---- cross-venue ---------------------------------------------------------------------------------
def _two_venues():
    a = SimVenue(SimConfig(venue="simA", seed=1))
    b = SimVenue(SimConfig(venue="simB", seed=2))
    kernel = Kernel([a, b], VirtualClock(VIRTUAL_EPOCH_NS))
    a.open()
    b.open()
    return kernel, a, b, kernel.market("simA", "BTC/USDT"), kernel.market("simB", "BTC/USDT")


def _reconcile(h: Hedger, log: FillLog, kernel: Kernel, hedge_market) -> None:
    fills = log.of(_hedge_ids(h))
    assert fills and all(f.venue == hedge_market.venue for f in fills)
    s = h.stats
    assert s.fills == len(fills)
    assert s.volume == sum(f.size for f in fills)
    assert s.sold - s.bought == -kernel.inventory.position(hedge_market.venue, hedge_market.symbol).lots
    assert s.cash == sum(f.price * f.size * (1 if f.side == SELL else -1) for f in fills)
    assert s.fees == sum(f.fee for f in fills)
    pos = kernel.inventory.position(hedge_market.venue, hedge_market.symbol)
    assert s.cash == pos.cash and s.fees == pos.fees
    bid, ask = hedge_market.l2.best_bid_price(), hedge_market.l2.best_ask_price()
    assert h.hedge_pnl() == s.cash + s.net_lots * Fraction(bid + ask, 2) - Fraction(s.fees, 1_000_000)
    refs = {o.order_id: o.reference_price for o in h.recent}
    assert s.slippage == sum(
        (refs[f.order_id] - f.price) * f.size if f.side == SELL else (f.price - refs[f.order_id]) * f.size
        for f in fills
    )


def test_cross_venue_immediate_hedges_a_position_on_sim_a_on_sim_b_and_the_statistics_reconcile() -> None:
    kernel, a, b, ma, mb = _two_venues()
    log = FillLog(kernel)
    _build_long(kernel, ma, 40)
    h = _hedger(kernel, ma.key, mb.key, policy="immediate")
    _step([a, b], 2)
    assert kernel.inventory.position("simA", "BTC/USDT").lots == 40, "the quoting position stays"
    assert kernel.inventory.position("simB", "BTC/USDT").lots == -40
    assert h.exposure() == 0 and not h.overdue
    _reconcile(h, log, kernel, mb)
    assert kernel.bus.errors == 0


def test_cross_venue_twap_hedges_on_sim_b_in_slices() -> None:
    kernel, a, b, ma, mb = _two_venues()
    log = FillLog(kernel)
    _build_long(kernel, ma, 45)
    h = _hedger(kernel, ma.key, mb.key, policy="twap", twap_slices=3, twap_seconds=3)
    # Both venues step the one virtual clock: a step of both is 0.1 s of kernel time.
    _step([a, b], 5, until=lambda: h.exposure() == 0)
    assert kernel.inventory.position("simB", "BTC/USDT").lots == -45
    assert h.stats.twap_slices == 3
    _reconcile(h, log, kernel, mb)


def test_cross_venue_hedge_of_a_short_buys_on_sim_b() -> None:
    kernel, a, b, ma, mb = _two_venues()
    log = FillLog(kernel)
    kernel.sell(ma, ma.l2.best_bid_price(), 35)
    assert kernel.inventory.position("simA", "BTC/USDT").lots == -35
    h = _hedger(kernel, ma.key, mb.key, policy="opportunistic", edge_bps=500, deadline_s=1)
    _step([a, b], 3, until=lambda: h.exposure() == 0)
    assert kernel.inventory.position("simB", "BTC/USDT").lots == 35
    assert h.stats.bought == 35 and h.stats.deadline_fallbacks == 1
    _reconcile(h, log, kernel, mb)
    assert not any(f.venue == "simA" for f in log.of(_hedge_ids(h)))


def test_the_same_seeds_give_the_same_hedge() -> None:
    def run():
        kernel, a, b, ma, mb = _two_venues()
        _build_long(kernel, ma, 40)
        h = _hedger(kernel, ma.key, mb.key, policy="twap", twap_slices=4, twap_seconds=2)
        _step([a, b], 4)
        s = h.stats
        return (s.volume, s.cash, s.fees, s.slippage, kernel.state_hash())

    assert run() == run()

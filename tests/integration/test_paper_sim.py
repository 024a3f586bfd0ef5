"""Paper orders against the real sim venue's market data: they get filled over a simulated minute, and
never at a price the market did not trade at or through (or offer at or through).

The sim venue is only the external market here: our orders go to the PaperDesk, never to the sim's
matching book. The desk publishes our lifecycle on the kernel's bus, so the kernel's OMS counters and
inventory see the paper fills as they would a venue's.
"""

from __future__ import annotations

from bisect import bisect_right

from lobterm.assemble import build_sim_kernel
from lobterm.clock import VIRTUAL_EPOCH_NS, VirtualClock
from lobterm.config import load
from lobterm.engine.events import BUY, IOC, ORDER_EVENTS, SELL, BookDelta, BookSnapshot, Done, Fill, Trade
from lobterm.kernel import Kernel
from lobterm.trading.paper import CONSERVATIVE, PROBABILISTIC, QUEUE_SCALE, PaperConfig, PaperDesk, PaperVenue
from lobterm.venues.sim import SimVenue

MS = 1_000_000
STEPS = 1200  # 60 s at the default 20 Hz


class PaperRun:
    """The sim kernel, a paper desk on its market data, a simple quoting strategy, and a record of
    what the market showed at each market data timestamp."""

    def __init__(self, config: PaperConfig, seed: int = 3) -> None:
        kernel, venue = build_sim_kernel(
            load(use_defaults=False, overrides={"sim": {"seed": seed}}), virtual=True
        )
        self.kernel, self.venue = kernel, venue
        self.market = kernel.default_market
        self.desk = PaperDesk(venue.name, [venue.instrument], config)
        self.desk.attach(kernel.bus, kernel.clock)
        self.ours: list = []
        kernel.bus.subscribe(ORDER_EVENTS, self.ours.append)
        # ts -> [lowest trade, highest trade, best bid, best ask] after the market data at ts.
        self.seen: dict[int, list] = {}
        kernel.bus.subscribe((BookSnapshot, BookDelta, Trade), self._record)
        self.next_id = 0
        self.queue_checks = 0

    def _record(self, ev) -> None:
        l2 = self.market.l2  # the kernel applied the event before this subscriber sees it
        s = self.seen.setdefault(ev.ts, [None, None, None, None])
        if type(ev) is Trade:
            s[0] = ev.price if s[0] is None else min(s[0], ev.price)
            s[1] = ev.price if s[1] is None else max(s[1], ev.price)
        s[2] = l2.best_bid_price()
        s[3] = l2.best_ask_price()

    def _new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    def run(self, steps: int = STEPS) -> None:
        venue, desk, l2 = self.venue, self.desk, self.market.l2
        symbol = self.market.symbol
        venue.open()
        for i in range(1, steps + 1):
            venue.step()
            self._check_queues()
            if i % 100 == 0:  # refresh the quotes every 5 s
                for o in desk.orders():
                    desk.cancel(o.order_id, symbol)
            if i % 20 == 0:  # once a second, join the touch on any side we are not quoting
                sides = {o.side for o in desk.orders()}
                bb, ba = l2.best_bid_price(), l2.best_ask_price()
                if BUY not in sides and bb:
                    desk.submit(self._new_id(), symbol, BUY, bb, 20)
                if SELL not in sides and ba:
                    desk.submit(self._new_id(), symbol, SELL, ba, 20)
            if i % 140 == 0:  # now and then, take liquidity
                side = BUY if i % 280 else SELL
                px = l2.best_ask_price() if side == BUY else l2.best_bid_price()
                desk.submit(self._new_id(), symbol, side, px, 5, IOC)

    def _check_queues(self) -> None:
        # What we think is ahead of us never exceeds what the venue shows at our price.
        for o in self.desk.orders():
            assert o.ahead <= self.market.l2.level_size(o.side, o.price) * QUEUE_SCALE
            self.queue_checks += 1

    def fills(self) -> list[Fill]:
        return [e for e in self.ours if type(e) is Fill]

    def market_at(self, ts: int) -> list:
        """What the market showed at the last market data timestamp <= ts (what the desk filled on)."""
        stamps = sorted(self.seen)
        return self.seen[stamps[bisect_right(stamps, ts) - 1]]


def _assert_every_fill_is_justified(run: PaperRun) -> None:
    for f in run.fills():
        low, high, bid, ask = run.market_at(f.ts)
        if f.side == BUY:
            assert (low is not None and low <= f.price) or (ask is not None and ask <= f.price), (
                f"bought at {f.price} at {f.ts}, market traded no lower than {low}, offered {ask}"
            )
        else:
            assert (high is not None and high >= f.price) or (bid is not None and bid >= f.price), (
                f"sold at {f.price} at {f.ts}, market traded no higher than {high}, bid {bid}"
            )


def test_paper_orders_get_filled_over_a_simulated_minute() -> None:
    run = PaperRun(
        PaperConfig(maker_fee_ppm=100, taker_fee_ppm=400, new_latency_ns=2 * MS, cancel_latency_ns=2 * MS)
    )
    run.run()
    fills = run.fills()
    makers = [f for f in fills if f.is_maker]
    takers = [f for f in fills if not f.is_maker]
    assert len(makers) >= 10, f"only {len(makers)} maker fills in a minute"
    assert takers, "the IOCs at the touch should have taken liquidity"
    assert {f.side for f in makers} == {BUY, SELL}
    assert all(f.fee == f.price * f.size * (100 if f.is_maker else 400) for f in fills)
    assert all(n > 0 for n in run.desk.fills_by_rule.values()), run.desk.fills_by_rule
    assert run.kernel.bus.errors == 0
    assert run.queue_checks > 500


def test_paper_fills_never_happen_at_a_price_the_market_did_not_trade_or_offer() -> None:
    for model in (CONSERVATIVE, PROBABILISTIC):
        run = PaperRun(PaperConfig(cancel_model=model, new_latency_ns=2 * MS, cancel_latency_ns=2 * MS))
        run.run()
        assert run.fills(), model
        _assert_every_fill_is_justified(run)


def test_kernel_inventory_follows_the_paper_fills() -> None:
    run = PaperRun(PaperConfig())
    run.run(600)
    net = sum(f.size if f.side == BUY else -f.size for f in run.fills())
    assert net != 0 or run.fills()
    m = run.market
    assert run.kernel.inventory.position(m.venue, m.symbol).lots == net
    # Every paper order that ended did so with exactly one Done.
    done_ids = [e.order_id for e in run.ours if type(e) is Done]
    assert len(done_ids) == len(set(done_ids))


def test_same_seed_gives_the_same_paper_fills() -> None:
    def fills() -> list:
        run = PaperRun(PaperConfig(cancel_model=PROBABILISTIC, new_latency_ns=2 * MS), seed=9)
        run.run(400)
        return [(f.ts, f.order_id, f.price, f.size, f.is_maker) for f in run.fills()]

    first = fills()
    assert first and first == fills()


def test_a_paper_venue_in_the_kernel_paper_trades_through_the_oms() -> None:
    cfg = load(use_defaults=False, overrides={"sim": {"seed": 4}})
    paper = PaperVenue(SimVenue(cfg.sim), PaperConfig(maker_fee_ppm=100, taker_fee_ppm=400))
    sim = paper.data
    assert isinstance(sim, SimVenue)
    kernel = Kernel([paper], VirtualClock(VIRTUAL_EPOCH_NS))
    sim.open()  # the sim's own market data: the wrapper forwards only the venue protocol
    m = kernel.default_market
    assert kernel.venues[m.venue].mode == "PAPER" and not m.unified.own_in_venue_book
    bid = m.l2.best_bid_price()
    oid = kernel.oms.new_order(m.venue, m.symbol, BUY, bid, 20)
    assert kernel.oms.working[oid].state == "working"
    assert oid not in sim.book, "the order is virtual: the sim's matching book never sees it"
    assert paper.desk.queue_ahead(oid) == m.l2.level_size(BUY, bid)
    assert m.unified.our_size(BUY, bid) == 20
    for _ in range(STEPS):
        sim.step()
        if oid not in kernel.oms.working:
            break
    assert oid not in kernel.oms.working, "a bid at the touch should fill within a simulated minute"
    assert kernel.inventory.position(m.venue, m.symbol).lots == 20
    assert kernel.bus.errors == 0

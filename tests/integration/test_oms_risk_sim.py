"""The OMS and pre-trade risk on the sim venue through the real kernel, over long quoting sessions.

A test quoter (not the market maker) joins the touch on both sides from inside the bus's delivery of
every book delta, moves or cancels its orders as the touch moves and now and then takes liquidity, so
that requests and venue events interleave as they do in live trading (a request made while the bus is
delivering has its events queued behind the rest of the batch). After every step the OMS must mirror
the venue's book exactly.
"""

from __future__ import annotations

import hashlib
import random

from lobterm.assemble import build_sim_kernel
from lobterm.config import load
from lobterm.engine.events import (
    BUY,
    IOC,
    ORDER_EVENTS,
    OUR_OWNER,
    SELL,
    Accepted,
    BookDelta,
    Done,
    Fill,
    Rejected,
)
from lobterm.trading.oms import LIVE_STATES, PENDING_CANCEL, REJECTED_STATE, OrderManager
from lobterm.trading.risk import RiskLimits, RiskManager

VENUE, SYM = "sim", "BTC/USDT"


def _desk(limits: RiskLimits, seed: int = 7):
    cfg = load(use_defaults=False, overrides={"sim": {"seed": seed}})
    kernel, venue = build_sim_kernel(cfg, virtual=True)
    kernel.bus.unsubscribe(kernel.oms.on_event)  # the kernel's first-version OMS stays out of the way
    risk = RiskManager(
        kernel.markets, kernel.clock, limits, position=lambda v, s: kernel.inventory.position(v, s).lots
    )
    risk.subscribe(kernel.bus)
    oms = OrderManager(kernel.venues, kernel.bus, kernel.clock, risk)
    kernel.bus.subscribe(ORDER_EVENTS, oms.on_event)
    return kernel, venue, oms, risk


class Quoter:
    """Joins the best bid and ask with `size` lots, from inside the delivery of each book delta."""

    def __init__(self, kernel, oms: OrderManager, size: int, seed: int) -> None:
        self.oms = oms
        self.l2 = kernel.markets[(VENUE, SYM)].l2
        self.size = size
        self.rng = random.Random(seed)
        self.stopped = False
        kernel.bus.subscribe(BookDelta, self.on_delta)

    def stop(self, reason: str) -> None:
        self.stopped = True

    def on_delta(self, ev: BookDelta) -> None:
        if self.stopped:
            return
        bid, ask = self.l2.best_bid_price(), self.l2.best_ask_price()
        if bid is None or ask is None or bid >= ask:
            return
        rng = self.rng
        oms = self.oms
        for side, px in ((BUY, bid), (SELL, ask)):
            live = [o for o in oms.orders(VENUE, SYM, side=side, tag="mm") if o.state != PENDING_CANCEL]
            if not live:
                oms.new_order(VENUE, SYM, side, px, self.size + rng.randrange(5), tag="mm")
                continue
            for o in live:
                target = o.price if o.amend_price is None else o.amend_price
                if target != px:
                    if rng.random() < 0.5:
                        oms.amend(o.order_id, price=px)
                    else:
                        oms.cancel(o.order_id)
        if rng.random() < 0.01:  # now and then take liquidity, which fills against the book at once
            side = BUY if rng.random() < 0.5 else SELL
            px = ask if side == BUY else bid
            oms.new_order(VENUE, SYM, side, px, 1 + rng.randrange(3), IOC, tag="hedge")


def _assert_oms_mirrors_the_venue(oms: OrderManager, venue) -> None:
    ours = {
        oid: (side, px, leaves)
        for oid, side, px, leaves, owner in venue.book.resting_orders()
        if owner == OUR_OWNER
    }
    assert set(oms.working) == set(ours)
    for oid, o in oms.working.items():
        assert (o.side, o.price, o.leaves) == ours[oid]
        # The sim answers every request at once: once the bus is quiet nothing may still be pending.
        assert o.state in ("working", "partially_filled"), (oid, o.state, o.requests)


def _run_session(seed: int, steps: int):
    limits = RiskLimits(
        max_order_lots=50, max_position_lots=60, price_band_bps=50, messages_per_s=400, burst=100
    )
    kernel, venue, oms, risk = _desk(limits, seed)
    our_fills: list[Fill] = []
    kernel.bus.subscribe(Fill, lambda ev: ev.owner == OUR_OWNER and our_fills.append(ev))
    quoter = Quoter(kernel, oms, size=4, seed=seed)
    venue.open()
    for _ in range(steps):
        venue.step()
        _assert_oms_mirrors_the_venue(oms, venue)
    return kernel, venue, oms, risk, quoter, our_fills


def test_oms_mirrors_the_venue_book_through_a_long_quoting_session() -> None:
    kernel, venue, oms, risk, _q, our_fills = _run_session(seed=7, steps=3000)
    assert oms.sent > 1000 and oms.fills > 50 and oms.amends_sent > 100 and oms.cancels_sent > 100
    assert (oms.unknown_events, kernel.bus.errors) == (0, 0)
    assert oms.filled_lots == sum(f.size for f in our_fills)
    pos = kernel.inventory.position(VENUE, SYM)
    assert pos.bought - pos.sold == pos.lots == sum(f.size if f.side == BUY else -f.size for f in our_fills)
    assert abs(pos.lots) <= 60, "max_position counts working orders, so fills can never take us past it"


def test_fills_are_counted_once_per_order_whatever_the_interleaving() -> None:
    kernel, venue, oms, _risk, _q, our_fills = _run_session(seed=11, steps=1500)
    per_order: dict[int, int] = {}
    for f in our_fills:
        per_order[f.order_id] = per_order.get(f.order_id, 0) + f.size
    for oid, lots in per_order.items():
        o = oms.order(oid)
        if o is not None:
            assert o.filled == lots, oid


def test_risk_rejections_in_a_session_are_published_as_rejected_then_done() -> None:
    limits = RiskLimits(max_order_lots=50, max_position_lots=30)
    kernel, venue, oms, risk = _desk(limits, seed=5)
    events: list = []
    kernel.bus.subscribe_all(events.append)
    Quoter(kernel, oms, size=4, seed=5)
    venue.open()
    for _ in range(1500):
        venue.step()
    risk_rejects = [i for i, e in enumerate(events) if type(e) is Rejected and e.reason.startswith("risk: ")]
    assert len(risk_rejects) > 50, "the position limit should have bitten in 75 s of quoting"
    routed = {e.order_id for e in events if type(e) is Accepted}
    for i in risk_rejects:
        rej = events[i]
        if rej.order_id not in routed:  # a refused new order: its Done comes right after, on the bus
            done = events[i + 1]
            assert type(done) is Done
            assert (done.order_id, done.filled, done.reason) == (rej.order_id, 0, "rejected")
    assert oms.risk_rejects == risk.rejects and sum(risk.rejects.values()) == len(risk_rejects)


def test_risk_rejection_reaches_the_bus_as_rejected_then_done_and_leaves_the_book_unchanged() -> None:
    kernel, venue, oms, risk = _desk(RiskLimits(max_order_lots=10))
    venue.open()
    for _ in range(20):
        venue.step()
    seen: list = []
    kernel.bus.subscribe_all(seen.append)
    l2 = kernel.markets[(VENUE, SYM)].l2
    before = (venue.book.depth(BUY), venue.book.depth(SELL), venue.our_requests, l2.version)
    bid = l2.best_bid_price()
    oid = oms.new_order(VENUE, SYM, BUY, bid, 11)
    assert [type(e) for e in seen] == [Rejected, Done]
    rej, done = seen
    assert (rej.order_id, rej.owner, rej.venue, rej.symbol) == (oid, OUR_OWNER, VENUE, SYM)
    assert rej.reason.startswith("risk: max_order_lots: ")
    assert (done.order_id, done.filled, done.reason) == (oid, 0, "rejected")
    after = (venue.book.depth(BUY), venue.book.depth(SELL), venue.our_requests, l2.version)
    assert after == before
    assert oms.order(oid).state == REJECTED_STATE and oid not in oms.working
    assert (oms.risk_rejects, oms.late_events, oms.unknown_events) == ({"max_order_lots": 1}, 0, 0)


def test_kill_switch_mid_session_empties_our_side_of_the_book_and_stops_the_quoter() -> None:
    kernel, venue, oms, risk = _desk(RiskLimits(max_position_lots=200), seed=9)
    quoter = Quoter(kernel, oms, size=3, seed=9)
    risk.add_on_kill(quoter.stop)
    venue.open()
    for _ in range(400):
        venue.step()
    assert oms.working, "the quoter should be quoting"
    risk.kill("max drawdown")
    assert quoter.stopped and not oms.working
    assert not [1 for *_x, owner in venue.book.resting_orders() if owner == OUR_OWNER]
    sent = oms.sent
    for _ in range(200):
        venue.step()
    blocked = oms.new_order(VENUE, SYM, SELL, 10**7, 1)
    assert oms.sent == sent and oms.order(blocked).reason == "risk: kill: kill switch is on (max drawdown)"
    assert not oms.working and kernel.bus.errors == 0


def test_kill_switch_pulled_from_inside_event_delivery_cancels_orders_whose_events_are_still_queued() -> None:
    kernel, venue, oms, risk = _desk(RiskLimits(), seed=13)
    quoter = Quoter(kernel, oms, size=3, seed=13)
    risk.add_on_kill(quoter.stop)
    venue.open()
    for _ in range(50):
        venue.step()
    fired = []

    def kill_on_next_fill(ev: Fill) -> None:
        if ev.owner == OUR_OWNER and not fired:
            fired.append(ev)
            risk.kill("fill seen")

    kernel.bus.subscribe(Fill, kill_on_next_fill)
    for _ in range(2000):
        venue.step()
        if fired:
            break
    assert fired and not oms.working
    assert not [1 for *_x, owner in venue.book.resting_orders() if owner == OUR_OWNER]
    assert all(o.state not in LIVE_STATES for o in oms.recent)


def _fingerprint(oms: OrderManager, kernel) -> str:
    h = hashlib.sha256()
    for o in list(oms.recent) + list(oms.working.values()):
        h.update(repr((o.order_id, o.state, o.side, o.price, o.filled, o.leaves, o.reason)).encode())
    h.update(kernel.state_hash().encode())
    return h.hexdigest()


def test_same_seed_gives_the_same_orders_and_outcomes() -> None:
    a = _run_session(seed=3, steps=600)
    b = _run_session(seed=3, steps=600)
    assert _fingerprint(a[2], a[0]) == _fingerprint(b[2], b[0])

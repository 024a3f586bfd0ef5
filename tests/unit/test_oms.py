"""The order manager: client ids, the per-order state machine from venue events, and the races.

Orders go to a loopback venue built on the real MatchingBook whose requests and responses can be held
in flight, as on a network, and then delivered in the order a real venue may produce them.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

from lobterm.bus import Bus
from lobterm.clock import VirtualClock
from lobterm.engine.events import (
    BUY,
    FILLED,
    IOC,
    LIMIT,
    MARKET,
    ORDER_EVENTS,
    OUR_OWNER,
    POST_ONLY,
    SELL,
    STP_NONE,
    Accepted,
    Done,
    Fill,
    Rejected,
)
from lobterm.engine.instrument import Instrument
from lobterm.engine.matching import MatchingBook
from lobterm.kernel import Kernel
from lobterm.trading.oms import (
    CANCELLED_STATE,
    FILLED_STATE,
    PARTIALLY_FILLED,
    PENDING_AMEND,
    PENDING_CANCEL,
    PENDING_NEW,
    REJECTED_STATE,
    WORKING,
    OrderManager,
)
from lobterm.trading.risk import RiskManager
from lobterm.venues.base import Venue

SYM = "BTC/USDT"
OTHER = 2  # a counterparty's owner id


class LoopbackVenue:
    """A venue over a real MatchingBook. With `hold_requests` our requests wait (in flight to the venue)
    until `deliver_requests`; with `hold_events` the venue's responses wait until `release`."""

    mode = "SIM"
    own_in_book = True

    def __init__(self, name: str = "loop") -> None:
        self.name = name
        self.instruments = {SYM: Instrument(SYM, Decimal("0.1"), Decimal("0.001"), venue=name)}
        self.state = "up"
        self.book = MatchingBook(name, SYM, maker_fee_ppm=100, taker_fee_ppm=400)
        self.hold_requests = False
        self.hold_events = False
        self.held_requests: list = []
        self.in_flight: list = []
        self.bus: Bus | None = None
        self._other_id = 1 << 40
        self.raise_on: str | None = None

    def attach(self, bus: Bus, clock) -> None:
        self.bus = bus

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    def submit(self, order_id, symbol, side, price, size, order_type=LIMIT, stp=STP_NONE) -> None:
        if self.raise_on == "submit":
            raise ConnectionError("socket closed")
        self._request(lambda: self.book.submit(order_id, side, price, size, order_type, OUR_OWNER, stp))

    def cancel(self, order_id, symbol) -> None:
        if self.raise_on == "cancel":
            raise ConnectionError("socket closed")
        self._request(lambda: self.book.cancel(order_id, OUR_OWNER))

    def amend(self, order_id, symbol, price=None, size=None) -> None:
        self._request(lambda: self.book.amend(order_id, price, size, OUR_OWNER))

    def _request(self, call) -> None:
        if self.hold_requests:
            self.held_requests.append(call)
            return
        call()
        self._flush()

    def deliver_requests(self, *order: int) -> None:
        """Let the held requests reach the venue, in the given order (indexes), or as sent."""
        idx = order or tuple(range(len(self.held_requests)))
        calls = [self.held_requests[i] for i in idx]
        self.held_requests = [c for i, c in enumerate(self.held_requests) if i not in idx]
        for call in calls:
            call()
        self._flush()

    def counterparty(self, side: int, price: int, size: int, order_type: int = LIMIT) -> None:
        self._other_id += 1
        self.book.submit(self._other_id, side, price, size, order_type, OTHER, STP_NONE)
        self._flush()

    def _flush(self) -> None:
        ours = [e for e in self.book.drain() if e.owner == OUR_OWNER]
        if self.hold_events:
            self.in_flight.extend(ours)
        elif ours:
            self.bus.publish_many(ours)

    def release(self, *order: int) -> None:
        """Deliver held responses: those at the given indexes in that order, or all as produced."""
        idx = order or tuple(range(len(self.in_flight)))
        evs = [self.in_flight[i] for i in idx]
        self.in_flight = [e for i, e in enumerate(self.in_flight) if i not in idx]
        self.bus.publish_many(evs)


def _setup(*venue_names: str, recent_size: int = 1000):
    bus = Bus()
    clock = VirtualClock(1_000)
    venues = {n: LoopbackVenue(n) for n in (venue_names or ("loop",))}
    for v in venues.values():
        v.attach(bus, clock)
    oms = OrderManager(venues, bus, clock, recent_size=recent_size)
    bus.subscribe(ORDER_EVENTS, oms.on_event)
    seen: list = []
    bus.subscribe_all(seen.append)
    return oms, next(iter(venues.values())), bus, seen


# ---- basics -------------------------------------------------------------------------------------
def test_loopback_venue_satisfies_the_venue_protocol() -> None:
    assert isinstance(LoopbackVenue(), Venue)


def test_client_order_ids_count_up_from_one() -> None:
    oms, _v, _bus, _seen = _setup()
    ids = [oms.new_order("loop", SYM, BUY, 100 - i, 5) for i in range(3)]
    assert ids == [1, 2, 3]


def test_order_is_pending_new_until_the_venue_accepts_it() -> None:
    oms, v, _bus, _seen = _setup()
    v.hold_events = True
    oid = oms.new_order("loop", SYM, BUY, 100, 5, tag="mm")
    o = oms.working[oid]
    assert (o.state, o.leaves, o.tag, o.venue_order_id) == (PENDING_NEW, 5, "mm", None)
    v.release()
    assert (o.state, o.venue_order_id) == (WORKING, oid)


def test_partial_fill_makes_the_order_partially_filled() -> None:
    oms, v, _bus, _seen = _setup()
    oid = oms.new_order("loop", SYM, BUY, 100, 5)
    v.counterparty(SELL, 100, 2)
    o = oms.working[oid]
    assert (o.state, o.filled, o.leaves) == (PARTIALLY_FILLED, 2, 3)
    assert (oms.fills, oms.filled_lots) == (1, 2)


def test_complete_fill_moves_the_order_from_working_to_recent_as_filled() -> None:
    oms, v, _bus, _seen = _setup()
    oid = oms.new_order("loop", SYM, BUY, 100, 5)
    v.counterparty(SELL, 100, 5)
    assert oid not in oms.working
    o = oms.order(oid)
    assert (o.state, o.filled, o.leaves, o.reason) == (FILLED_STATE, 5, 0, FILLED)
    assert oms.recent[-1] is o


def test_average_price_and_fees_follow_the_fills() -> None:
    oms, v, _bus, _seen = _setup()
    oid = oms.new_order("loop", SYM, BUY, 101, 4)
    v.counterparty(SELL, 100, 1)  # resting buy at 101 is the maker: fills at 101
    oms.cancel(oid)
    v.counterparty(SELL, 101, 1)
    o = oms.order(oid)
    assert o.avg_price == Fraction(101)
    assert o.fees == 101 * 1 * 100


def test_cancel_is_pending_until_the_venue_says_done() -> None:
    oms, v, _bus, _seen = _setup()
    oid = oms.new_order("loop", SYM, SELL, 110, 5)
    v.hold_events = True
    assert oms.cancel(oid) is True
    assert oms.working[oid].state == PENDING_CANCEL
    v.release()
    o = oms.order(oid)
    assert (o.state, o.leaves) == (CANCELLED_STATE, 0)
    assert oid not in oms.working and len(v.book) == 0


def test_a_second_cancel_is_not_sent_while_one_is_outstanding() -> None:
    oms, v, _bus, _seen = _setup()
    oid = oms.new_order("loop", SYM, SELL, 110, 5)
    v.hold_requests = True
    assert oms.cancel(oid) is True
    assert oms.cancel(oid) is False
    assert (oms.cancels_sent, len(v.held_requests)) == (1, 1)


def test_amend_moves_the_order_and_changes_its_size() -> None:
    oms, v, _bus, _seen = _setup()
    oid = oms.new_order("loop", SYM, BUY, 100, 5)
    v.hold_events = True
    assert oms.amend(oid, price=99, size=7) is True
    o = oms.working[oid]
    assert (o.state, o.amend_price, o.amend_size) == (PENDING_AMEND, 99, 7)
    v.release()
    assert (o.state, o.price, o.leaves, o.size, o.amend_price) == (WORKING, 99, 7, 7, None)
    assert v.book.order(oid)[:3] == (BUY, 99, 7)


def test_market_order_that_finds_too_little_ends_cancelled_with_what_it_filled() -> None:
    oms, v, _bus, _seen = _setup()
    v.counterparty(SELL, 100, 3)
    oid = oms.new_order("loop", SYM, BUY, 0, 5, MARKET)
    o = oms.order(oid)
    assert (o.state, o.filled, o.reason) == (CANCELLED_STATE, 3, "expired")


def test_venue_rejecting_a_new_order_ends_it_rejected_with_the_venues_reason() -> None:
    oms, v, _bus, _seen = _setup()
    v.counterparty(SELL, 100, 3)
    oid = oms.new_order("loop", SYM, BUY, 100, 5, POST_ONLY)
    o = oms.order(oid)
    assert (o.state, o.reason) == (REJECTED_STATE, "post_only_would_trade")
    assert oms.rejects == 1 and "post_only_would_trade" in oms.last_reject


# ---- races --------------------------------------------------------------------------------------
def test_fill_after_cancel_request_is_counted_and_the_order_stays_pending_cancel() -> None:
    oms, v, _bus, _seen = _setup()
    oid = oms.new_order("loop", SYM, BUY, 100, 5)
    v.hold_events = True
    v.counterparty(SELL, 100, 2)  # the venue fills 2 lots; the news is in flight
    oms.cancel(oid)  # we ask to cancel before we hear of the fill
    o = oms.working[oid]
    assert [type(e).__name__ for e in v.in_flight] == ["Fill", "Cancelled", "Done"]
    v.release(0)
    assert (o.state, o.filled, o.leaves) == (PENDING_CANCEL, 2, 3)
    assert oms.filled_lots == 2
    v.release()
    assert (o.state, o.filled, o.leaves) == (CANCELLED_STATE, 2, 0)


def test_full_fill_after_cancel_request_ends_filled_and_the_late_cancel_reject_is_no_user_reject() -> None:
    oms, v, _bus, _seen = _setup()
    oid = oms.new_order("loop", SYM, BUY, 100, 5)
    v.hold_events = True
    v.counterparty(SELL, 100, 5)
    oms.cancel(oid)  # reaches the venue after the fill: "unknown order id"
    assert [type(e).__name__ for e in v.in_flight] == ["Fill", "Done", "Rejected"]
    v.release()
    o = oms.order(oid)
    assert (o.state, o.filled) == (FILLED_STATE, 5)
    assert (oms.late_events, oms.rejects, oms.unknown_events) == (1, 0, 0)


def test_accepted_arriving_after_a_fill_does_not_reset_state_or_leaves() -> None:
    oms, v, _bus, _seen = _setup()
    v.counterparty(SELL, 100, 2)
    v.hold_events = True
    oid = oms.new_order("loop", SYM, BUY, 100, 5)  # takes 2, rests 3
    names = [type(e).__name__ for e in v.in_flight]
    assert names == ["Accepted", "Fill"]
    v.release(1, 0)  # the private trade stream is ahead of the order stream
    o = oms.working[oid]
    assert (o.state, o.filled, o.leaves, o.acked) == (PARTIALLY_FILLED, 2, 3, True)


def test_event_for_an_unknown_order_is_counted_and_ignored() -> None:
    oms, v, bus, _seen = _setup()
    oid = oms.new_order("loop", SYM, BUY, 100, 5)
    before = (dict(oms.working), oms.fills, oms.filled_lots)
    bus.publish(Fill(5, "loop", SYM, 999, BUY, 100, 1, 0, True, 0, 1, OUR_OWNER))
    bus.publish(Done(5, "loop", SYM, 999, 1, FILLED, OUR_OWNER))
    bus.publish(Accepted(5, "other-venue", SYM, oid, BUY, 100, 5, LIMIT, OUR_OWNER))
    assert oms.unknown_events == 3
    assert (dict(oms.working), oms.fills, oms.filled_lots) == before
    assert bus.errors == 0


def test_cancel_reaching_the_venue_before_the_order_is_rejected_and_the_order_works_on() -> None:
    oms, v, _bus, _seen = _setup()
    v.hold_requests = True
    oid = oms.new_order("loop", SYM, BUY, 100, 5)
    oms.cancel(oid)
    v.deliver_requests(1, 0)  # the cancel overtakes the new order on the way to the venue
    o = oms.working[oid]
    assert (o.state, o.leaves) == (WORKING, 5)
    assert "unknown order id" in o.reason
    assert oms.cancel_rejects == 1
    v.hold_requests = False
    assert oms.cancel(oid) is True  # and it can be cancelled again
    assert oms.order(oid).state == CANCELLED_STATE


def test_cancel_rejected_for_a_partially_filled_order_returns_it_to_partially_filled() -> None:
    oms, v, bus, _seen = _setup()
    oid = oms.new_order("loop", SYM, BUY, 100, 5)
    v.counterparty(SELL, 100, 1)
    v.hold_requests = True
    oms.cancel(oid)
    # The venue refuses the cancel (a real exchange may, e.g. while it is busy), as an event:
    bus.publish(Rejected(7, "loop", SYM, oid, "exchange busy", OUR_OWNER))
    o = oms.working[oid]
    assert (o.state, o.filled, o.leaves, o.reason) == (PARTIALLY_FILLED, 1, 4, "exchange busy")


def test_amend_rejected_by_the_venue_returns_the_order_to_working_unchanged() -> None:
    oms, v, _bus, _seen = _setup()
    v.counterparty(SELL, 105, 5)
    oid = oms.new_order("loop", SYM, BUY, 100, 5, POST_ONLY)
    assert oms.amend(oid, price=105) is True  # a post-only order may not cross
    o = oms.working[oid]
    assert (o.state, o.price, o.leaves, o.amend_price) == (WORKING, 100, 5, None)
    assert o.reason == "post_only_would_trade" and oms.amend_rejects == 1


def test_cancel_sent_while_an_amend_is_outstanding_wins_and_the_order_ends_cancelled() -> None:
    oms, v, _bus, _seen = _setup()
    oid = oms.new_order("loop", SYM, BUY, 100, 5)
    v.hold_events = True
    oms.amend(oid, price=99)
    oms.cancel(oid)
    assert oms.working[oid].state == PENDING_CANCEL
    assert oms.amend(oid, price=98) is False  # no amend while a cancel is outstanding
    v.release(0)  # Amended
    assert oms.working[oid].state == PENDING_CANCEL and oms.working[oid].price == 99
    v.release()
    assert oms.order(oid).state == CANCELLED_STATE


# ---- refusals and lookups -----------------------------------------------------------------------
def test_unknown_venue_is_refused_with_rejected_then_done_on_the_bus() -> None:
    oms, _v, _bus, seen = _setup()
    oid = oms.new_order("nowhere", SYM, BUY, 100, 5)
    assert [(type(e).__name__, e.order_id) for e in seen] == [("Rejected", oid), ("Done", oid)]
    assert "unknown venue 'nowhere'" in seen[0].reason and seen[1].reason == "rejected"
    assert oms.order(oid).state == REJECTED_STATE
    assert (oms.sent, oms.rejects, oms.unknown_events, oms.late_events) == (0, 1, 0, 0)


def test_unknown_symbol_and_garbage_venue_are_refused_without_reaching_a_venue() -> None:
    oms, v, bus, seen = _setup()
    a = oms.new_order("loop", "DOGE/USDT", BUY, 100, 5)
    b = oms.new_order(["loop"], SYM, BUY, 100, 5)
    assert oms.order(a).state == oms.order(b).state == REJECTED_STATE
    assert len(v.book) == 0 and oms.sent == 0 and bus.errors == 0
    assert all(type(e.venue) is str for e in seen)


def test_on_reject_callback_hears_every_refusal() -> None:
    oms, v, _bus, _seen = _setup()
    heard: list[str] = []
    oms.on_reject = heard.append
    oms.new_order("nowhere", SYM, BUY, 100, 5)
    oms.new_order("loop", SYM, BUY, 100, 0)  # the venue refuses size 0
    assert len(heard) == 2 and "size 0" in heard[1]
    assert list(oms.recent_rejects) == heard


def test_lookups_by_market_side_price_tag_and_venue_order_id() -> None:
    oms, v, _bus, _seen = _setup("a", "b")
    a1 = oms.new_order("a", SYM, BUY, 100, 1, tag="mm")
    a2 = oms.new_order("a", SYM, SELL, 110, 1, tag="mm")
    a3 = oms.new_order("a", SYM, BUY, 99, 1, tag="manual")
    b1 = oms.new_order("b", SYM, BUY, 100, 1, tag="hedge")
    ids = lambda os: sorted(o.order_id for o in os)  # noqa: E731
    assert ids(oms.orders("a", SYM)) == [a1, a2, a3]
    assert ids(oms.orders(side=BUY)) == [a1, a3, b1]
    assert ids(oms.orders(price=100)) == [a1, b1]
    assert ids(oms.orders("a", SYM, tag="mm")) == [a1, a2]
    assert ids(oms.orders(tag="hedge")) == [b1]
    assert oms.order_by_venue_id("b", b1).order_id == b1
    assert oms.order_by_venue_id("a", b1) is None


def test_cancel_all_cancels_only_the_market_asked_for() -> None:
    oms, _v, _bus, _seen = _setup("a", "b")
    for venue in ("a", "b"):
        oms.new_order(venue, SYM, BUY, 100, 1)
        oms.new_order(venue, SYM, SELL, 110, 1)
    assert oms.cancel_all("a", SYM) == 2
    assert sorted(o.venue for o in oms.working.values()) == ["b", "b"]
    assert oms.cancel_all() == 2 and not oms.working


def test_recent_is_bounded_and_order_finds_live_and_recent_orders() -> None:
    oms, v, _bus, _seen = _setup(recent_size=3)
    ids = [oms.new_order("loop", SYM, BUY, 100, 1) for _ in range(5)]
    live = oms.new_order("loop", SYM, BUY, 90, 1)
    for oid in ids:
        oms.cancel(oid)
    assert len(oms.recent) == 3
    assert oms.order(ids[0]) is None and oms.order(ids[-1]).state == CANCELLED_STATE
    assert oms.order(live).state == WORKING


def test_venue_that_raises_on_submit_leaves_no_phantom_order() -> None:
    oms, v, bus, seen = _setup()
    v.raise_on = "submit"
    oid = oms.new_order("loop", SYM, BUY, 100, 5)
    assert oid not in oms.working and oms.order(oid).state == REJECTED_STATE
    assert "ConnectionError" in oms.order(oid).reason
    assert [type(e).__name__ for e in seen] == ["Rejected", "Done"] and oms.venue_errors == 1


def test_venue_that_raises_on_cancel_leaves_the_order_working() -> None:
    oms, v, _bus, _seen = _setup()
    oid = oms.new_order("loop", SYM, BUY, 100, 5)
    v.raise_on = "cancel"
    assert oms.cancel(oid) is False
    assert oms.working[oid].state == WORKING and oms.working[oid].requests is None


def test_ioc_order_never_stays_working() -> None:
    oms, v, _bus, _seen = _setup()
    oid = oms.new_order("loop", SYM, BUY, 100, 5, IOC)
    assert oid not in oms.working and oms.order(oid).state == CANCELLED_STATE


def test_order_acknowledged_after_the_kill_switch_is_cancelled_when_its_ack_arrives() -> None:
    v = LoopbackVenue()
    kernel = Kernel([v], VirtualClock(1_000))
    kernel.bus.unsubscribe(kernel.oms.on_event)
    risk = RiskManager(kernel.markets, kernel.clock)
    oms = OrderManager(kernel.venues, kernel.bus, kernel.clock, risk)
    kernel.bus.subscribe(ORDER_EVENTS, oms.on_event)
    v.hold_requests = True
    oid = oms.new_order("loop", SYM, BUY, 100, 5)
    risk.kill("test")  # its cancel overtakes the order on the way to the venue and is refused there
    v.hold_requests = False
    v.deliver_requests(1, 0)
    assert oms.order(oid).state == CANCELLED_STATE and len(v.book) == 0
    assert oms.cancels_sent == 2


def test_a_finished_order_leaves_the_index_after_the_grace_period_and_a_late_event_is_only_counted() -> None:
    oms, v, bus, _seen = _setup()
    clock = oms._clock
    oid = oms.new_order("loop", SYM, BUY, 100, 5)
    oms.cancel(oid)
    assert oms.order(oid) is not None and oms.order(oid).state == "cancelled"
    clock.advance(61 * 10**9)
    later = oms.new_order("loop", SYM, BUY, 100, 5)
    oms.cancel(later)  # finishing another order sweeps the index
    assert oms.order(oid) is None and oms.order(later) is not None
    before = (dict(oms.working), oms.fills, oms.unknown_events, oms.late_events)
    bus.publish(Fill(clock.now(), "loop", SYM, oid, BUY, 100, 1, 0, True, 0, 1, OUR_OWNER))
    assert oms.forgotten_events == 1 and bus.errors == 0
    assert (dict(oms.working), oms.fills, oms.unknown_events, oms.late_events) == before
    assert len(oms._done_by_id) <= 1 and len(oms.recent) == 2

"""The hedger's decisions, policy by policy, on scripted positions and books.

A real Kernel (bus, L2 books fed by BookSnapshot events, OMS, inventory) over a loopback venue that
answers nothing by itself: it keeps the requests the OMS routes to it, and the test publishes the
venue's answers (Accepted, Fill, Cancelled, Done) by hand, exactly as a venue would.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

import pytest

from lobterm.clock import VIRTUAL_EPOCH_NS, VirtualClock
from lobterm.engine.events import (
    BUY,
    EXPIRED,
    FILLED,
    IOC,
    LIMIT,
    MARKET,
    OUR_OWNER,
    REJECTED,
    SELL,
    STP_CANCEL_RESTING,
    Accepted,
    BookSnapshot,
    Cancelled,
    Done,
    Fill,
    Rejected,
)
from lobterm.engine.instrument import Instrument
from lobterm.kernel import Kernel
from lobterm.trading.hedger import PAUSED, RUNNING, STOPPED, HedgeParamError, HedgeParams, Hedger

SYMBOL = "BTC/USDT"
S = 1_000_000_000  # one second in ns


@dataclass
class Sent:
    order_id: int
    symbol: str
    side: int
    price: int
    size: int
    order_type: int
    stp: int


class LoopbackVenue:
    """A venue that only records what we ask of it; the test plays the venue's part on the bus."""

    mode = "SIM"
    own_in_book = True

    def __init__(self, name: str, lot_size: str = "0.001") -> None:
        self.name = name
        self.instruments = {
            SYMBOL: Instrument(SYMBOL, tick_size=Decimal("0.1"), lot_size=Decimal(lot_size), venue=name)
        }
        self.state = "up"
        self.sent: list[Sent] = []
        self.cancels: list[int] = []

    def attach(self, bus, clock) -> None:
        self.bus, self.clock = bus, clock

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def submit(self, order_id, symbol, side, price, size, order_type=LIMIT, stp=STP_CANCEL_RESTING) -> None:
        self.sent.append(Sent(order_id, symbol, side, price, size, order_type, stp))

    def cancel(self, order_id, symbol) -> None:
        self.cancels.append(order_id)

    def amend(self, order_id, symbol, price=None, size=None) -> None: ...


class Desk:
    """A kernel over loopback venues X (quoting) and Y (hedging, for cross-venue tests)."""

    def __init__(self, hedge_lot: str = "0.001") -> None:
        self.x = LoopbackVenue("X")
        self.y = LoopbackVenue("Y", lot_size=hedge_lot)
        self.clock = VirtualClock(VIRTUAL_EPOCH_NS)
        self.kernel = Kernel([self.x, self.y], self.clock)
        self.bus = self.kernel.bus
        self._seq = {"X": 0, "Y": 0}
        self._maker_id = 10_000

    def hedger(self, *, cross: bool = False, own_fills: bool = False, **params) -> Hedger:
        return Hedger(
            self.bus,
            self.kernel.oms,
            self.kernel.markets,
            quote=("X", SYMBOL),
            hedge=("Y", SYMBOL) if cross else None,
            params=HedgeParams(**params),
            clock=self.clock,
            positions=None if own_fills else self.kernel.inventory,
        )

    def now(self) -> int:
        return self.clock.now()

    def after(self, seconds: float, hedger: Hedger) -> None:
        """Let kernel time pass and fire the kernel's timer."""
        self.clock.advance(int(seconds * S))
        hedger.on_time(self.now())

    def book(self, venue: str, bid: int | None, ask: int | None, size: int = 100, levels: int = 5) -> None:
        self._seq[venue] += 1
        bids = tuple((bid - i, size) for i in range(levels)) if bid else ()
        asks = tuple((ask + i, size) for i in range(levels)) if ask else ()
        self.bus.publish(BookSnapshot(self.now(), venue, SYMBOL, self._seq[venue], bids, asks))

    def maker_fill(self, venue: str, side: int, price: int, size: int) -> None:
        """One of our resting quotes was hit: this is how the position to hedge gets built."""
        self._maker_id += 1
        oid = self._maker_id
        ts = self.now()
        self.bus.publish_many(
            [
                Accepted(ts, venue, SYMBOL, oid, side, price, size, LIMIT, OUR_OWNER),
                Fill(ts, venue, SYMBOL, oid, side, price, size, 0, True, 0, oid, OUR_OWNER),
                Done(ts, venue, SYMBOL, oid, size, FILLED, OUR_OWNER),
            ]
        )

    def answer(self, venue: str, sent: Sent, fills: list[tuple[int, int]] = (), fee: int = 0) -> None:
        """The venue's answer to an IOC: Accepted, the fills, then the rest expires."""
        ts = self.now()
        evs = [
            Accepted(
                ts, venue, SYMBOL, sent.order_id, sent.side, sent.price, sent.size, sent.order_type, OUR_OWNER
            )
        ]
        leaves = sent.size
        for price, size in fills:
            leaves -= size
            evs.append(
                Fill(
                    ts,
                    venue,
                    SYMBOL,
                    sent.order_id,
                    sent.side,
                    price,
                    size,
                    leaves,
                    False,
                    fee,
                    sent.order_id,
                    OUR_OWNER,
                )
            )
        if leaves:
            evs.append(Cancelled(ts, venue, SYMBOL, sent.order_id, leaves, EXPIRED, OUR_OWNER))
        evs.append(
            Done(
                ts,
                venue,
                SYMBOL,
                sent.order_id,
                sent.size - leaves,
                FILLED if not leaves else EXPIRED,
                OUR_OWNER,
            )
        )
        self.bus.publish_many(evs)

    def fill_all(self, venue: str, sent: Sent) -> None:
        self.answer(venue, sent, [(sent.price, sent.size)])

    def reject(self, venue: str, sent: Sent, reason: str = "risk: max order size") -> None:
        ts = self.now()
        self.bus.publish_many(
            [
                Rejected(ts, venue, SYMBOL, sent.order_id, reason, OUR_OWNER),
                Done(ts, venue, SYMBOL, sent.order_id, 0, REJECTED, OUR_OWNER),
            ]
        )

    def position(self, venue: str) -> int:
        return self.kernel.inventory.position(venue, SYMBOL).lots


@pytest.fixture
def desk() -> Desk:
    d = Desk()
    d.book("X", 1000, 1001)
    d.book("Y", 1000, 1001)
    return d


# ---- immediate ---------------------------------------------------------------------------------
def test_immediate_sells_a_long_with_one_ioc_capped_at_max_slippage_under_the_bid(desk: Desk) -> None:
    desk.hedger(max_slippage_bps=10)
    desk.maker_fill("X", BUY, 1001, 30)
    [sent] = desk.x.sent
    # 10 bps under the 1000 bid is 999.0, exactly: no rounding needed.
    assert (sent.side, sent.size, sent.price, sent.order_type) == (SELL, 30, 999, IOC)


def test_immediate_buys_back_a_short_with_the_limit_rounded_down_inside_the_slippage(desk: Desk) -> None:
    desk.hedger(max_slippage_bps=10)
    desk.maker_fill("X", SELL, 1000, 15)
    [sent] = desk.x.sent
    # 1001 * 1.001 = 1002.001 ticks: the limit may not exceed the allowed slippage, so 1002.
    assert (sent.side, sent.size, sent.price, sent.order_type) == (BUY, 15, 1002, IOC)


def test_immediate_waits_while_the_exposure_is_within_the_threshold(desk: Desk) -> None:
    desk.hedger(threshold_lots=20)
    desk.maker_fill("X", BUY, 1001, 20)
    assert desk.x.sent == []
    desk.maker_fill("X", BUY, 1001, 1)
    assert [(s.side, s.size) for s in desk.x.sent] == [(SELL, 21)]


def test_immediate_hedges_down_to_the_target_not_to_flat(desk: Desk) -> None:
    desk.hedger(threshold_lots=10, target_lots=4)
    desk.maker_fill("X", BUY, 1001, 25)
    assert [(s.side, s.size) for s in desk.x.sent] == [(SELL, 21)]


def test_immediate_sends_a_market_order_when_slippage_is_uncapped(desk: Desk) -> None:
    desk.hedger(max_slippage_bps=None)
    desk.maker_fill("X", BUY, 1001, 5)
    [sent] = desk.x.sent
    assert (sent.order_type, sent.price, sent.size) == (MARKET, 0, 5)


def test_only_one_hedge_order_is_in_flight_at_a_time(desk: Desk) -> None:
    h = desk.hedger()
    desk.maker_fill("X", BUY, 1001, 10)
    desk.maker_fill("X", BUY, 1001, 10)
    desk.book("X", 1000, 1001)
    assert len(desk.x.sent) == 1
    assert h.in_flight is not None and h.in_flight.order_id == desk.x.sent[0].order_id


def test_the_next_hedge_order_covers_what_the_first_did_not(desk: Desk) -> None:
    desk.hedger()
    desk.maker_fill("X", BUY, 1001, 10)
    desk.maker_fill("X", BUY, 1001, 10)  # arrives while the first hedge is in flight
    desk.fill_all("X", desk.x.sent[0])
    assert [(s.side, s.size) for s in desk.x.sent] == [(SELL, 10), (SELL, 10)]


def test_a_partly_filled_hedge_is_retried_for_the_rest_after_the_retry_interval(desk: Desk) -> None:
    h = desk.hedger(retry_interval_s=1)
    desk.maker_fill("X", BUY, 1001, 30)
    desk.answer("X", desk.x.sent[0], [(1000, 12)])
    assert len(desk.x.sent) == 1 and h.in_flight is None
    desk.after(0.5, h)
    assert len(desk.x.sent) == 1
    desk.after(0.6, h)
    assert [(s.side, s.size) for s in desk.x.sent] == [(SELL, 30), (SELL, 18)]


def test_max_order_lots_splits_a_large_hedge_into_orders_sent_one_after_another(desk: Desk) -> None:
    desk.hedger(max_order_lots=8)
    desk.maker_fill("X", BUY, 1001, 20)
    while desk.x.sent and len(desk.x.sent) < 10 and desk.position("X") > 0:
        desk.fill_all("X", desk.x.sent[-1])
    assert [s.size for s in desk.x.sent] == [8, 8, 4]
    assert desk.position("X") == 0


def test_nothing_is_sent_while_the_hedge_side_of_the_book_is_empty(desk: Desk) -> None:
    h = desk.hedger()
    desk.book("X", None, 1001)
    desk.maker_fill("X", BUY, 1001, 10)
    desk.after(1, h)
    assert desk.x.sent == []
    desk.book("X", 1000, 1001)
    assert [(s.side, s.size, s.price) for s in desk.x.sent] == [(SELL, 10, 999)]


def test_without_an_inventory_the_hedger_counts_our_fills_itself(desk: Desk) -> None:
    h = desk.hedger(own_fills=True)
    desk.maker_fill("X", BUY, 1001, 7)
    assert h.exposure() == 7
    desk.fill_all("X", desk.x.sent[0])
    assert h.exposure() == 0 and len(desk.x.sent) == 1


def test_without_an_inventory_the_average_cost_comes_from_the_fills_the_hedger_saw(desk: Desk) -> None:
    h = desk.hedger(own_fills=True, policy="opportunistic", edge_bps=500, deadline_s=60)
    desk.maker_fill("X", BUY, 1001, 10)
    desk.maker_fill("X", BUY, 1004, 5)
    assert h.avg_cost() == 1002
    desk.maker_fill("X", SELL, 1010, 6)  # reducing leaves the average cost of the rest alone
    assert h.avg_cost() == 1002 and h.exposure() == 9


def test_a_position_built_before_the_hedger_started_is_hedged_on_the_first_event(desk: Desk) -> None:
    desk.maker_fill("X", SELL, 1000, 9)
    h = desk.hedger()
    assert desk.x.sent == []
    desk.after(0.05, h)
    assert [(s.side, s.size) for s in desk.x.sent] == [(BUY, 9)]


# ---- twap --------------------------------------------------------------------------------------
def test_twap_sends_the_first_slice_at_once_and_the_others_on_schedule(desk: Desk) -> None:
    h = desk.hedger(policy="twap", twap_slices=5, twap_seconds=10)
    desk.maker_fill("X", BUY, 1001, 50)
    assert [s.size for s in desk.x.sent] == [10]
    desk.fill_all("X", desk.x.sent[-1])
    desk.after(1.9, h)
    assert len(desk.x.sent) == 1, "the second slice is due 2 s after the first"
    desk.after(0.1, h)
    assert [s.size for s in desk.x.sent] == [10, 10]
    for _ in range(3):
        desk.fill_all("X", desk.x.sent[-1])
        desk.after(2, h)
    desk.fill_all("X", desk.x.sent[-1])
    assert [s.size for s in desk.x.sent] == [10] * 5
    assert desk.position("X") == 0 and h.stats.twap_slices == 5


def test_twap_slices_are_iocs_at_the_touch_within_max_slippage(desk: Desk) -> None:
    desk.hedger(policy="twap", max_slippage_bps=20)
    desk.maker_fill("X", SELL, 1000, 50)
    [sent] = desk.x.sent
    assert (sent.side, sent.order_type, sent.price) == (BUY, IOC, 1003)  # floor(1001 * 1.002)


def test_twap_recomputes_the_slice_from_what_remains_after_a_partial_fill(desk: Desk) -> None:
    h = desk.hedger(policy="twap", twap_slices=5, twap_seconds=10)
    desk.maker_fill("X", BUY, 1001, 50)
    desk.answer("X", desk.x.sent[0], [(1000, 4)])
    desk.after(2, h)
    # 46 left over 4 slices: ceil(46 / 4) = 12.
    assert [s.size for s in desk.x.sent] == [10, 12]


def test_twap_stops_slicing_once_the_exposure_is_hedged_by_other_fills(desk: Desk) -> None:
    h = desk.hedger(policy="twap", twap_slices=5, twap_seconds=10)
    desk.maker_fill("X", BUY, 1001, 50)
    desk.fill_all("X", desk.x.sent[0])
    desk.maker_fill("X", SELL, 1000, 40)  # our ask quote got hit: flat already
    for _ in range(5):
        desk.after(2, h)
    assert len(desk.x.sent) == 1


# ---- opportunistic -----------------------------------------------------------------------------
def test_opportunistic_waits_while_the_bid_is_below_the_average_cost(desk: Desk) -> None:
    h = desk.hedger(policy="opportunistic", deadline_s=60)
    desk.maker_fill("X", BUY, 1001, 10)
    desk.maker_fill("X", BUY, 1003, 10)
    assert h.avg_cost() == 1002
    desk.book("X", 1001, 1002)
    desk.after(5, h)
    assert desk.x.sent == []


def test_opportunistic_sells_when_the_bid_beats_the_average_cost_by_the_edge(desk: Desk) -> None:
    h = desk.hedger(policy="opportunistic", edge_bps=10, deadline_s=60)
    desk.maker_fill("X", BUY, 1000, 10)
    desk.book("X", 1000, 1001)
    desk.after(1, h)
    assert desk.x.sent == [], "1000 * 1.001 = 1001: a 1000 bid is not enough"
    desk.book("X", 1001, 1002)
    [sent] = desk.x.sent
    # Only favourable prices: the limit is the edge price, though the slippage cap would allow 1000.
    assert (sent.side, sent.size, sent.price, sent.order_type) == (SELL, 10, 1001, IOC)


def test_opportunistic_buys_back_a_short_when_the_ask_is_below_the_average_cost(desk: Desk) -> None:
    desk.hedger(policy="opportunistic", deadline_s=60)
    desk.book("X", 1005, 1006)
    desk.maker_fill("X", SELL, 1005, 6)
    assert desk.x.sent == []
    desk.book("X", 1003, 1004)
    [sent] = desk.x.sent
    # Within the slippage cap above the 1004 ask, and never above the 1005 cost.
    assert (sent.side, sent.size, sent.price, sent.order_type) == (BUY, 6, 1005, IOC)


def test_opportunistic_falls_back_to_immediate_after_the_deadline(desk: Desk) -> None:
    h = desk.hedger(policy="opportunistic", edge_bps=500, deadline_s=3)
    desk.maker_fill("X", BUY, 1001, 10)
    desk.after(2.9, h)
    assert desk.x.sent == []
    desk.after(0.1, h)
    [sent] = desk.x.sent
    assert (sent.side, sent.size, sent.price) == (SELL, 10, 999)
    assert h.stats.deadline_fallbacks == 1 and h.recent[-1].why == "deadline"


def test_opportunistic_takes_the_average_cost_from_the_inventory_for_an_older_position(desk: Desk) -> None:
    desk.maker_fill("X", BUY, 1001, 10)  # before the hedger existed
    desk.maker_fill("X", BUY, 1004, 20)
    h = desk.hedger(policy="opportunistic", deadline_s=60)
    assert h.avg_cost() == 1003
    desk.book("X", 1002, 1003)
    assert desk.x.sent == []
    desk.book("X", 1003, 1004)
    assert [(s.side, s.size, s.price) for s in desk.x.sent] == [(SELL, 30, 1003)]


@dataclass
class _Lots:
    lots: int
    avg_cost: Fraction | None = None  # this source does not know the cost


class LotsOnly:
    """A position source that knows our lots and nothing else (no average cost)."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel

    def position(self, venue: str, symbol: str) -> _Lots:
        return _Lots(self.kernel.inventory.position(venue, symbol).lots)


def test_opportunistic_uses_the_quote_mid_when_the_cost_of_the_position_is_unknown(desk: Desk) -> None:
    desk.maker_fill("X", BUY, 1001, 10)  # before the hedger: it never saw the cost
    h = Hedger(
        desk.bus,
        desk.kernel.oms,
        desk.kernel.markets,
        quote=("X", SYMBOL),
        hedge=("Y", SYMBOL),
        params=HedgeParams(policy="opportunistic", deadline_s=60),
        clock=desk.clock,
        positions=LotsOnly(desk.kernel),
    )
    assert h.avg_cost() is None
    desk.book("X", 1000, 1002)  # quote mid 1001
    desk.book("Y", 1000, 1001)
    desk.after(1, h)
    assert desk.y.sent == []
    desk.book("Y", 1001, 1002)
    assert [(s.side, s.size, s.price) for s in desk.y.sent] == [(SELL, 10, 1001)]


def test_opportunistic_with_the_quote_mid_reference_ignores_the_average_cost(desk: Desk) -> None:
    h = desk.hedger(policy="opportunistic", reference="quote_mid", cross=True, deadline_s=60)
    desk.maker_fill("X", BUY, 990, 10)  # a cheap position: the cost would say "sell now"
    assert h.avg_cost() == 990
    desk.book("X", 1004, 1006)
    desk.book("Y", 1004, 1005)
    desk.after(1, h)
    assert desk.y.sent == [], "the hedge bid 1004 is below the quote mid 1005"


# ---- cross-venue -------------------------------------------------------------------------------
def test_cross_venue_hedges_on_the_hedge_venue_and_nets_both_positions(desk: Desk) -> None:
    h = desk.hedger(cross=True)
    desk.maker_fill("X", BUY, 1001, 12)
    assert desk.x.sent == []
    [sent] = desk.y.sent
    assert (sent.side, sent.size) == (SELL, 12)
    desk.fill_all("Y", sent)
    assert (desk.position("X"), desk.position("Y"), h.exposure()) == (12, -12, 0)


def test_cross_venue_converts_lots_between_instruments_on_different_lot_grids() -> None:
    desk = Desk(hedge_lot="0.01")  # one hedge lot is ten quote lots
    desk.book("X", 1000, 1001)
    desk.book("Y", 1000, 1001)
    h = desk.hedger(cross=True)
    desk.maker_fill("X", BUY, 1001, 25)
    [sent] = desk.y.sent
    assert sent.size == 2  # 2.5 hedge lots: only whole lots can be traded
    desk.fill_all("Y", sent)
    assert h.exposure() == 5


# ---- overdue and the market maker ---------------------------------------------------------------
def test_a_hedge_becomes_overdue_when_exposure_stays_above_threshold_too_long(desk: Desk) -> None:
    h = desk.hedger(overdue_after_s=5)
    h.pause()
    desk.maker_fill("X", BUY, 1001, 10)
    desk.after(5, h)
    assert not h.overdue
    desk.after(0.1, h)
    assert h.overdue and h.hedge_overdue()
    assert h.stats.overdue_episodes == 1


def test_an_overdue_long_blocks_new_bids_but_not_offers(desk: Desk) -> None:
    h = desk.hedger(overdue_after_s=1)
    h.pause()
    desk.maker_fill("X", BUY, 1001, 10)
    assert not h.blocks_quoting(BUY)
    desk.after(2, h)
    assert h.blocks_quoting(BUY) and h.hedge_overdue(BUY)
    assert not h.blocks_quoting(SELL)


def test_an_overdue_short_blocks_new_offers_but_not_bids(desk: Desk) -> None:
    h = desk.hedger(overdue_after_s=1)
    desk.book("X", 1000, None)  # no offers: the short cannot be bought back
    desk.maker_fill("X", SELL, 1000, 10)
    desk.after(2, h)
    assert h.blocks_quoting(SELL) and not h.blocks_quoting(BUY)


def test_quoting_is_unblocked_once_the_exposure_is_back_within_threshold(desk: Desk) -> None:
    h = desk.hedger(overdue_after_s=1)
    h.pause()
    desk.maker_fill("X", BUY, 1001, 10)
    desk.after(2, h)
    assert h.blocks_quoting(BUY)
    h.resume()
    desk.fill_all("X", desk.x.sent[0])
    assert not h.blocks_quoting(BUY) and not h.overdue


def test_blocks_quoting_refuses_a_side_that_is_not_buy_or_sell(desk: Desk) -> None:
    h = desk.hedger()
    with pytest.raises(HedgeParamError, match="side"):
        h.blocks_quoting(2)


# ---- statistics ----------------------------------------------------------------------------------
def test_slippage_is_exact_ticks_against_the_touch_at_decision_time(desk: Desk) -> None:
    h = desk.hedger(max_slippage_bps=50)
    desk.maker_fill("X", BUY, 1001, 30)
    desk.answer("X", desk.x.sent[0], [(1000, 10), (999, 20)])
    s = h.stats
    assert (s.orders, s.fills, s.volume, s.sold) == (1, 2, 30, 30)
    assert s.slippage == 20  # 20 lots one tick under the 1000 bid
    assert s.avg_slippage_ticks() == Fraction(2, 3)
    assert s.slippage_bps() == Fraction(20 * 10_000, 30_000)


def test_hedge_pnl_is_cash_plus_net_lots_at_the_mid_less_fees(desk: Desk) -> None:
    h = desk.hedger()
    desk.maker_fill("X", BUY, 1001, 10)
    desk.answer("X", desk.x.sent[0], [(1000, 10)], fee=4_000_000)  # 4 tick*lots
    desk.book("X", 998, 999)
    # Sold 10 at 1000, marked at 998.5: 15 tick*lots, less 4 of fees.
    assert h.hedge_pnl() == Fraction(11)
    assert h.stats.cash == 10_000 and h.stats.net_lots == -10 and h.stats.fees == 4_000_000


def test_a_refused_hedge_order_is_counted_and_tried_again_after_the_retry_interval(desk: Desk) -> None:
    h = desk.hedger(retry_interval_s=1)
    desk.maker_fill("X", BUY, 1001, 10)
    desk.reject("X", desk.x.sent[0])
    assert h.stats.rejects == 1 and "max order size" in h.last_reject
    desk.after(0.5, h)
    assert len(desk.x.sent) == 1
    desk.after(0.5, h)
    assert len(desk.x.sent) == 2


def test_an_unanswered_hedge_order_is_cancelled_after_the_order_timeout(desk: Desk) -> None:
    h = desk.hedger(order_timeout_s=2)
    desk.maker_fill("X", BUY, 1001, 10)
    desk.after(1, h)
    assert desk.x.cancels == []
    desk.after(1, h)
    assert desk.x.cancels == [desk.x.sent[0].order_id]
    assert h.in_flight is not None, "still in flight until the venue says Done"


# ---- parameters and control -------------------------------------------------------------------
def test_a_bad_parameter_is_refused_by_name_and_nothing_changes(desk: Desk) -> None:
    h = desk.hedger(threshold_lots=5)
    before = h.params
    with pytest.raises(HedgeParamError) as err:
        h.set_params(threshold_lots=10, twap_slices=0)
    assert err.value.name == "twap_slices" and err.value.value == 0
    assert h.params == before


def test_an_unknown_parameter_is_refused_by_name(desk: Desk) -> None:
    h = desk.hedger()
    with pytest.raises(HedgeParamError, match="threshhold"):
        h.set_params(threshhold=3)


@pytest.mark.parametrize(
    "change, name",
    [
        ({"policy": "vwap"}, "policy"),
        ({"threshold_lots": -1}, "threshold_lots"),
        ({"threshold_lots": 2.5}, "threshold_lots"),
        ({"target_lots": 1}, "target_lots"),  # above the threshold of 0
        ({"max_slippage_bps": -1}, "max_slippage_bps"),
        ({"max_slippage_bps": float("nan")}, "max_slippage_bps"),
        ({"twap_seconds": 0}, "twap_seconds"),
        ({"overdue_after_s": "soon"}, "overdue_after_s"),
        ({"reference": "vwap"}, "reference"),
        ({"max_order_lots": 0}, "max_order_lots"),
        ({"edge_bps": True}, "edge_bps"),
    ],
)
def test_each_parameter_is_validated(desk: Desk, change: dict, name: str) -> None:
    h = desk.hedger()
    with pytest.raises(HedgeParamError) as err:
        h.set_params(**change)
    assert err.value.name == name


def test_decimal_and_string_parameters_become_exact_fractions(desk: Desk) -> None:
    h = desk.hedger()
    p = h.set_params(max_slippage_bps=Decimal("2.5"), edge_bps="0.1", twap_seconds=0.1)
    assert p.max_slippage_bps == Fraction(5, 2)
    assert p.edge_bps == p.twap_seconds == Fraction(1, 10)


def test_raising_the_threshold_live_takes_effect_on_the_next_event(desk: Desk) -> None:
    h = desk.hedger(threshold_lots=20)
    desk.maker_fill("X", BUY, 1001, 15)
    assert desk.x.sent == []
    h.set_params(threshold_lots=10)
    desk.book("X", 1000, 1001)
    assert [s.size for s in desk.x.sent] == [15]


def test_a_paused_hedger_sends_nothing_until_resumed(desk: Desk) -> None:
    h = desk.hedger()
    h.pause()
    desk.maker_fill("X", BUY, 1001, 10)
    desk.after(1, h)
    assert h.state == PAUSED and desk.x.sent == []
    h.resume()
    assert h.state == RUNNING and [s.size for s in desk.x.sent] == [10]


def test_stop_cancels_the_hedge_in_flight_and_sends_nothing_more(desk: Desk) -> None:
    h = desk.hedger()
    desk.maker_fill("X", BUY, 1001, 10)
    h.stop()
    assert h.state == STOPPED and desk.x.cancels == [desk.x.sent[0].order_id]
    desk.answer("X", desk.x.sent[0], [])
    desk.maker_fill("X", BUY, 1001, 10)
    desk.after(5, h)
    assert len(desk.x.sent) == 1


def test_an_unknown_market_is_refused_at_construction(desk: Desk) -> None:
    with pytest.raises(HedgeParamError, match="hedge"):
        Hedger(desk.bus, desk.kernel.oms, desk.kernel.markets, quote=("X", SYMBOL), hedge=("Z", SYMBOL))

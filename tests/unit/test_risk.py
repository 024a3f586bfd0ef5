"""Pre-trade risk: each rule, the kill switch and fail-closed behaviour, on a real Kernel and SimVenue.

The OMS and the risk manager are built around the kernel's venues, bus, clock and markets here (the
kernel wires its own later); the kernel's first-version OMS is unsubscribed so that one OMS handles
our order events.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest

from lobterm.assemble import build_sim_kernel
from lobterm.config import load
from lobterm.engine.events import BUY, MARKET, ORDER_EVENTS, OUR_OWNER, SELL, Done, Rejected, VenueStatus
from lobterm.trading.oms import CANCELLED_STATE, REJECTED_STATE, WORKING, OrderManager
from lobterm.trading.risk import RiskLimitError, RiskLimits, RiskManager

VENUE, SYM = "sim", "BTC/USDT"
NO_DUP = dict(duplicate_window_ms=None)


class Desk:
    """A sim kernel with our OMS and risk manager around it, and every event seen on the bus."""

    def __init__(
        self,
        limits: RiskLimits | None = None,
        *,
        per_market=None,
        pnl=None,
        position=True,
        open_venue: bool = True,
        seed: int = 3,
    ) -> None:
        cfg = load(use_defaults=False, overrides={"sim": {"seed": seed}})
        self.kernel, self.venue = build_sim_kernel(cfg, virtual=True)
        k = self.kernel
        k.bus.unsubscribe(k.oms.on_event)
        pos = (lambda v, s: k.inventory.position(v, s).lots) if position is True else position
        self.risk = RiskManager(k.markets, k.clock, limits, per_market=per_market, position=pos, pnl=pnl)
        self.risk.subscribe(k.bus)
        self.oms = OrderManager(k.venues, k.bus, k.clock, self.risk)
        k.bus.subscribe(ORDER_EVENTS, self.oms.on_event)
        self.seen: list = []
        k.bus.subscribe_all(self.seen.append)
        self.market = k.markets[(VENUE, SYM)]
        if open_venue:
            self.venue.open()

    @property
    def bid(self) -> int:
        return self.market.l2.best_bid_price()

    @property
    def ask(self) -> int:
        return self.market.l2.best_ask_price()

    def buy(self, price: int, size: int, **kw) -> int:
        return self.oms.new_order(VENUE, SYM, BUY, price, size, **kw)

    def sell(self, price: int, size: int, **kw) -> int:
        return self.oms.new_order(VENUE, SYM, SELL, price, size, **kw)

    def reason(self, oid: int) -> str:
        return self.oms.order(oid).reason

    def our_resting(self) -> list[int]:
        book = self.venue.book
        return sorted(oid for oid, _s, _p, _l, owner in book.resting_orders() if owner == OUR_OWNER)

    def advance_ms(self, ms: int) -> None:
        self.kernel.clock.advance(ms * 1_000_000)


def _rule(desk: Desk, oid: int) -> str:
    o = desk.oms.order(oid)
    assert o.state == REJECTED_STATE, f"order {oid} is {o.state}, not rejected"
    assert o.reason.startswith("risk: ")
    return o.reason.split(": ")[1]


# ---- passing and per-order limits ---------------------------------------------------------------
def test_order_within_every_limit_reaches_the_venue() -> None:
    d = Desk(
        RiskLimits(
            max_order_lots=10,
            max_order_notional=10 * 700_000,
            max_position_lots=20,
            price_band_bps=100,
            messages_per_s=10,
        )
    )
    oid = d.buy(d.bid - 5, 10)
    assert d.oms.order(oid).state == WORKING and d.our_resting() == [oid]


def test_order_above_max_order_lots_is_rejected_naming_the_rule() -> None:
    d = Desk(RiskLimits(max_order_lots=10))
    ok, big = d.buy(d.bid - 5, 10), d.buy(d.bid - 5, 11)
    assert d.oms.order(ok).state == WORKING
    assert _rule(d, big) == "max_order_lots"
    assert "0.011 is above the maximum order size 0.010" in d.reason(big)


def test_order_above_max_order_notional_is_rejected() -> None:
    d = Desk(RiskLimits(max_order_notional=650_000 * 10))
    assert d.oms.order(d.buy(650_000 - 100, 10)).state == WORKING
    big = d.buy(650_000 - 100, 11)
    assert _rule(d, big) == "max_order_notional"
    assert "order value" in d.reason(big)


def test_market_order_notional_is_valued_at_the_opposite_best_price() -> None:
    d = Desk()
    d.risk.limits.max_order_notional = d.ask * 10 - 1
    oid = d.oms.new_order(VENUE, SYM, BUY, 0, 10, MARKET)
    assert _rule(d, oid) == "max_order_notional"
    assert d.oms.order(d.oms.new_order(VENUE, SYM, BUY, 0, 9, MARKET)).filled == 9


def test_limits_for_a_market_replace_the_global_ones() -> None:
    d = Desk(RiskLimits(max_order_lots=1), per_market={(VENUE, SYM): RiskLimits(max_order_lots=50)})
    assert d.oms.order(d.buy(d.bid - 5, 50)).state == WORKING


# ---- price band ---------------------------------------------------------------------------------
def test_price_outside_the_band_around_the_mid_is_rejected() -> None:
    d = Desk(RiskLimits(price_band_bps=100))
    mid = (d.bid + d.ask) // 2
    inside, outside = d.buy(mid - mid // 100 + 1, 1), d.buy(mid - mid // 100 - 20, 1)
    assert d.oms.order(inside).state == WORKING
    assert _rule(d, outside) == "price_band"
    assert "bps from the mid" in d.reason(outside) and "band 100 bps" in d.reason(outside)


def test_price_band_rejects_an_order_when_there_is_no_reference_price() -> None:
    d = Desk(RiskLimits(price_band_bps=100), open_venue=False)  # no snapshot yet: the L2 book is invalid
    oid = d.buy(650_000, 1)
    assert _rule(d, oid) == "price_band" and "no reference price" in d.reason(oid)
    assert len(d.venue.book) == 0


# ---- position -----------------------------------------------------------------------------------
def test_max_position_counts_working_orders_on_the_same_side() -> None:
    d = Desk(RiskLimits(max_position_lots=10))
    first, second = d.buy(d.bid - 5, 6), d.buy(d.bid - 6, 5)
    assert d.oms.order(first).state == WORKING
    assert _rule(d, second) == "max_position"
    assert d.oms.order(d.sell(d.ask + 5, 10)).state == WORKING  # the other side has its own room


def test_max_position_counts_the_position_itself() -> None:
    d = Desk(RiskLimits(max_position_lots=10))
    d.oms.new_order(VENUE, SYM, BUY, 0, 8, MARKET)
    assert d.kernel.inventory.position(VENUE, SYM).lots == 8
    assert _rule(d, d.buy(d.bid - 5, 3)) == "max_position"
    assert d.oms.order(d.buy(d.bid - 5, 2)).state == WORKING


def test_max_position_never_blocks_an_order_that_reduces_exposure() -> None:
    d = Desk(RiskLimits(max_position_lots=20))
    d.oms.new_order(VENUE, SYM, BUY, 0, 18, MARKET)
    d.risk.limits_for(VENUE, SYM).max_position_lots = 5  # the limit is lowered below the position
    assert d.oms.order(d.sell(d.ask + 5, 10)).state == WORKING
    assert _rule(d, d.buy(d.bid - 5, 1)) == "max_position"


# ---- self-trade, duplicates, throttle -----------------------------------------------------------
def test_order_crossing_our_own_resting_order_is_rejected_as_self_trade() -> None:
    d = Desk(RiskLimits(**NO_DUP))
    ask = d.sell(d.ask + 3, 1)
    crossing = d.buy(d.ask + 3, 1)
    assert _rule(d, crossing) == "self_trade" and f"order {ask}" in d.reason(crossing)
    assert _rule(d, d.oms.new_order(VENUE, SYM, BUY, 0, 1, MARKET)) == "self_trade"
    assert d.oms.order(d.buy(d.ask + 2, 1)).state != REJECTED_STATE  # below our ask: fine
    assert d.oms.order(ask).state == WORKING


def test_duplicate_manual_order_within_the_window_is_rejected_and_allowed_after_it() -> None:
    d = Desk(RiskLimits(duplicate_window_ms=300))
    px = d.bid - 5
    d.buy(px, 1)
    d.advance_ms(100)
    dup = d.buy(px, 1)
    assert _rule(d, dup) == "duplicate" and "100 ms ago" in d.reason(dup)
    assert d.oms.order(d.buy(px, 2)).state == WORKING  # a different size is a different order
    d.advance_ms(201)
    assert d.oms.order(d.buy(px, 1)).state == WORKING


def test_duplicate_check_leaves_strategy_tags_alone_by_default() -> None:
    d = Desk(RiskLimits(duplicate_window_ms=300))
    px = d.bid - 5
    assert all(d.oms.order(d.buy(px, 1, tag="mm")).state == WORKING for _ in range(3))


def test_throttle_blocks_messages_beyond_the_burst_and_refills_on_the_kernel_clock() -> None:
    d = Desk(RiskLimits(messages_per_s=10, burst=3, **NO_DUP))
    ids = [d.buy(d.bid - 10 - i, 1) for i in range(4)]
    assert [d.oms.order(i).state for i in ids[:3]] == [WORKING] * 3
    assert _rule(d, ids[3]) == "throttle"
    d.advance_ms(100)  # one message's worth at 10/s
    assert d.oms.order(d.buy(d.bid - 20, 1)).state == WORKING
    assert _rule(d, d.buy(d.bid - 21, 1)) == "throttle"


def test_cancels_are_never_blocked_by_the_throttle() -> None:
    d = Desk(RiskLimits(messages_per_s=1, burst=3, **NO_DUP))
    ids = [d.buy(d.bid - 10 - i, 1) for i in range(3)]
    assert all(d.oms.cancel(i) for i in ids)
    assert [d.oms.order(i).state for i in ids] == [CANCELLED_STATE] * 3 and d.our_resting() == []


# ---- daily loss ---------------------------------------------------------------------------------
def test_daily_loss_blocks_new_orders_but_not_cancels() -> None:
    day_pnl = [Decimal("-99.99")]
    d = Desk(RiskLimits(daily_loss_limit=Decimal("100")), pnl=lambda: day_pnl[0])
    working = d.buy(d.bid - 5, 1)
    day_pnl[0] = Decimal("-100")
    blocked = d.buy(d.bid - 6, 1)
    assert _rule(d, blocked) == "daily_loss" and "-100" in d.reason(blocked)
    assert d.oms.cancel(working) and d.oms.order(working).state == CANCELLED_STATE


def test_daily_loss_still_lets_the_position_be_flattened() -> None:
    day_pnl = [0]
    d = Desk(RiskLimits(daily_loss_limit=1000), pnl=lambda: day_pnl[0])
    d.oms.new_order(VENUE, SYM, BUY, 0, 5, MARKET)
    day_pnl[0] = -5000
    assert _rule(d, d.sell(d.ask + 5, 6)) == "daily_loss"  # would flip the position short
    assert d.oms.order(d.sell(d.ask + 5, 5, tag="flatten")).state == WORKING


# ---- stale or invalid books ---------------------------------------------------------------------
def test_mm_orders_are_blocked_on_an_invalid_book_but_manual_orders_are_not() -> None:
    d = Desk(RiskLimits(**NO_DUP))
    d.market.l2.clear()  # as on a disconnect: the L2 book is invalid until the next snapshot
    mm = d.buy(649_990, 1, tag="mm")
    assert _rule(d, mm) == "stale_book" and "invalid" in d.reason(mm)
    assert d.oms.order(d.buy(649_990, 1)).state == WORKING


def test_mm_orders_are_blocked_while_the_market_is_marked_stale() -> None:
    d = Desk()
    d.risk.set_stale(VENUE, SYM)
    assert _rule(d, d.buy(d.bid - 5, 1, tag="mm")) == "stale_book"
    d.risk.set_stale(VENUE, SYM, False)
    assert d.oms.order(d.buy(d.bid - 5, 1, tag="mm")).state == WORKING


def test_mm_orders_are_blocked_when_the_book_has_not_updated_for_max_book_age() -> None:
    d = Desk(RiskLimits(max_book_age_ms=2000))
    d.advance_ms(2001)
    stale = d.buy(d.bid - 5, 1, tag="mm")
    assert _rule(d, stale) == "stale_book" and "not updated for 2001 ms" in d.reason(stale)
    d.venue.step()  # the market moves: fresh updates
    assert d.oms.order(d.buy(d.bid - 5, 1, tag="mm")).state == WORKING


def test_a_venue_status_other_than_up_marks_its_books_stale() -> None:
    d = Desk()
    d.kernel.bus.publish(VenueStatus(d.kernel.clock.now(), VENUE, "resyncing", "gap"))
    assert _rule(d, d.buy(d.bid - 5, 1, tag="mm")) == "stale_book"
    d.kernel.bus.publish(VenueStatus(d.kernel.clock.now(), VENUE, "up"))
    assert d.oms.order(d.buy(d.bid - 5, 1, tag="mm")).state == WORKING


# ---- fail closed --------------------------------------------------------------------------------
def test_a_check_that_raises_rejects_the_order_naming_the_check() -> None:
    def broken_position(venue: str, symbol: str) -> int:
        raise KeyError(symbol)

    d = Desk(RiskLimits(max_position_lots=10), position=broken_position)
    oid = d.buy(d.bid - 5, 1)
    assert _rule(d, oid) == "max_position" and "check failed: KeyError" in d.reason(oid)
    assert len(d.our_resting()) == 0


@pytest.mark.parametrize("bad", [-1.5, None, float("nan"), "oops"])
def test_a_pnl_source_returning_nonsense_blocks_new_orders(bad) -> None:
    d = Desk(RiskLimits(daily_loss_limit=100), pnl=lambda: bad)
    assert _rule(d, d.buy(d.bid - 5, 1)) == "daily_loss"


def test_bad_order_input_is_rejected_before_it_reaches_the_venue() -> None:
    d = Desk()
    for args in ((BUY, 650_000, 0), (BUY, 650_000, 1.5), (2, 650_000, 1), (BUY, -3, 1), (True, 650_000, 1)):
        oid = d.oms.new_order(VENUE, SYM, *args)
        assert _rule(d, oid) == "order"
    assert d.our_resting() == [] and d.kernel.bus.errors == 0


def test_fractional_pnl_is_compared_exactly() -> None:
    d = Desk(RiskLimits(daily_loss_limit=Fraction(1, 3)), pnl=lambda: Fraction(-1, 3))
    assert _rule(d, d.buy(d.bid - 5, 1)) == "daily_loss"


# ---- kill switch --------------------------------------------------------------------------------
def test_kill_switch_cancels_every_working_order_in_the_venue_book() -> None:
    d = Desk(RiskLimits(**NO_DUP))
    ids = [d.buy(d.bid - 5 - i, 1 + i) for i in range(3)]
    ids += [d.sell(d.ask + 5 + i, 2, tag="mm") for i in range(3)]
    assert d.our_resting() == sorted(ids)
    assert d.risk.kill("operator pressed the kill key") == 6
    assert d.our_resting() == [] and not d.oms.working
    assert all(d.oms.order(i).state == CANCELLED_STATE for i in ids)


def test_kill_switch_blocks_new_orders_and_calls_on_kill_until_reset() -> None:
    d = Desk()
    heard: list[str] = []
    d.risk.add_on_kill(heard.append)
    d.risk.kill("loss limit")
    blocked = d.buy(d.bid - 5, 1, tag="flatten")
    assert heard == ["loss limit"]
    assert _rule(d, blocked) == "kill" and "loss limit" in d.reason(blocked)
    d.risk.reset_kill()
    assert d.oms.order(d.buy(d.bid - 5, 1)).state == WORKING


def test_a_failing_on_kill_callback_does_not_stop_the_kill() -> None:
    d = Desk()
    d.risk.add_on_kill(lambda reason: 1 / 0)
    oid = d.buy(d.bid - 5, 1)
    d.risk.kill("test")
    assert d.risk.callback_errors == 1 and d.oms.order(oid).state == CANCELLED_STATE


# ---- amends -------------------------------------------------------------------------------------
def test_amend_that_breaks_a_limit_is_rejected_and_leaves_the_order_unchanged() -> None:
    d = Desk(RiskLimits(max_order_lots=5))
    oid = d.buy(d.bid - 5, 5)
    px = d.oms.order(oid).price
    assert d.oms.amend(oid, size=6) is False
    o = d.oms.order(oid)
    assert (o.state, o.price, o.leaves) == (WORKING, px, 5) and o.reason.startswith("risk: max_order_lots")
    assert d.venue.book.order(oid)[2] == 5
    rej = [e for e in d.seen if type(e) is Rejected and e.order_id == oid]
    assert len(rej) == 1 and not [e for e in d.seen if type(e) is Done and e.order_id == oid]
    assert d.oms.risk_rejects == {"max_order_lots": 1}


def test_amend_that_only_reduces_size_always_passes() -> None:
    d = Desk(RiskLimits(max_position_lots=5, messages_per_s=1, burst=1))
    oid = d.buy(d.bid - 5, 5)
    d.risk.limits_for(VENUE, SYM).max_position_lots = 1
    assert d.oms.amend(oid, size=2) is True and d.oms.order(oid).leaves == 2


def test_amend_does_not_count_the_order_twice_against_max_position() -> None:
    d = Desk(RiskLimits(max_position_lots=5))
    oid = d.buy(d.bid - 5, 5)
    px = d.oms.order(oid).price
    assert d.oms.amend(oid, price=px - 1) is True
    assert (d.oms.order(oid).price, d.venue.book.order(oid)[1]) == (px - 1, px - 1)


# ---- limits and state ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "field,value",
    [
        ("max_order_lots", -1),
        ("max_order_lots", 1.5),
        ("price_band_bps", 5.0),
        ("messages_per_s", 0),
        ("burst", 0),
        ("daily_loss_limit", 100.0),
        ("daily_loss_limit", Decimal("NaN")),
        ("duplicate_tags", "manual"),
    ],
)
def test_risk_limits_reject_nonsense_values_naming_the_field(field: str, value) -> None:
    with pytest.raises(RiskLimitError, match=field):
        RiskLimits(**{field: value})


def test_limits_in_units_become_lots_and_tick_lots() -> None:
    inst = Desk(open_venue=False).market.instrument  # tick 0.1, lot 0.001
    lim = RiskLimits.in_units(
        inst, max_order_qty="0.5", max_order_value="1000", max_position_qty=Decimal("2"), price_band_bps=50
    )
    assert (lim.max_order_lots, lim.max_order_notional, lim.max_position_lots) == (500, 10_000_000, 2000)
    assert lim.price_band_bps == 50


def test_state_shows_the_kill_switch_rejections_per_rule_and_limits_near() -> None:
    d = Desk(RiskLimits(max_order_lots=100, max_position_lots=10))
    d.oms.new_order(VENUE, SYM, BUY, 0, 8, MARKET)
    d.buy(d.bid - 5, 101)
    d.buy(d.bid - 5, 101)
    d.risk.kill("test")
    s = d.risk.state()
    assert (s.killed, s.kill_reason) == (True, "test")
    assert s.rejects == {"max_order_lots": 2} and s.total_rejects == 2
    assert s.near == ["sim BTC/USDT position 0.008/0.010 (80%)"]


def test_state_never_raises_when_a_provider_does() -> None:
    d = Desk(
        RiskLimits(max_position_lots=10, daily_loss_limit=5), position=lambda v, s: 1 / 0, pnl=lambda: None
    )
    near = d.risk.state().near
    assert any("position unavailable" in n for n in near) and any("P&L unavailable" in n for n in near)


def test_snapshot_counts_as_a_book_update() -> None:
    d = Desk(RiskLimits(max_book_age_ms=1000))
    d.advance_ms(5000)
    d.kernel.bus.publish(d.market.l2.to_snapshot(d.kernel.clock.now()))
    assert d.oms.order(d.buy(d.bid - 5, 1, tag="mm")).state == WORKING


# ---- margin (perpetuals) ---------------------------------------------------------------------------
def _margin_desk(limits: RiskLimits, collateral: str = "10000") -> tuple[Desk, object]:
    """A desk whose sim market is declared a perpetual by hand: PerpInfo and a MarkPrice on the bus."""
    from lobterm.engine.events import MarkPrice, PerpInfo
    from lobterm.trading.margin import MarginBook

    d = Desk(limits)
    k = d.kernel
    book = MarginBook(k.inventory)
    d.risk.margin = book
    now = k.clock.now()
    book.on_event(PerpInfo(now, VENUE, SYM, "10", "0.005", collateral, 28800))
    book.on_event(MarkPrice(now, VENUE, SYM, 650_000, 650_000, 100_000))
    return d, book


def test_margin_rule_blocks_leverage_above_the_maximum_with_a_one_line_reason():
    d, _book = _margin_desk(RiskLimits(max_leverage=Decimal(5), **NO_DUP))
    # 1 BTC at 65000 on 10000 USDT: 6.5x (0.5 BTC: 3.25x passes)
    assert d.risk.check_new(VENUE, SYM, BUY, 650_000, 500) is None
    reason = d.risk.check_new(VENUE, SYM, BUY, 650_000, 1000)
    assert reason == "margin: a position of 1.000 would be 6.5x leverage (max 5x)"
    assert d.risk.rejects["margin"] == 1


def test_margin_rule_blocks_a_liquidation_price_too_close_to_the_mark():
    d, _book = _margin_desk(RiskLimits(min_liquidation_bps=1000, **NO_DUP))
    # 1 BTC short at 65000 on 10000: liquidation at (10000 + 65000) / 1.005 = 74626.9, 1481 bps away
    assert d.risk.check_new(VENUE, SYM, SELL, 650_000, 1000) is None
    # 2 BTC short: (10000 + 130000) / (2 * 1.005) = 69651.7, 715 bps: refused
    reason = d.risk.check_new(VENUE, SYM, SELL, 650_000, 2000)
    assert (
        reason
        == "margin: a position of -2.000 would be liquidated at 69651.7, 715 bps from the mark 65000.0 (min 1000 bps)"
    )


def test_margin_rule_passes_reducing_orders_and_skips_spot_markets():
    d, book = _margin_desk(RiskLimits(max_leverage=Decimal(2), **NO_DUP))
    d.kernel.inventory.position(VENUE, SYM).lots = 5000  # a long far above 2x (set by hand)
    assert d.risk.check_new(VENUE, SYM, SELL, 650_000, 1000) is None  # reduces: never blocked
    assert d.risk.check_new(VENUE, SYM, BUY, 650_000, 1).startswith("margin: ")
    book.terms.clear()  # no PerpInfo: a spot market has no margin rule
    assert d.risk.check_new(VENUE, SYM, BUY, 650_000, 1) is None


def test_margin_rule_refuses_new_exposure_before_the_first_mark():
    d, book = _margin_desk(RiskLimits(max_leverage=Decimal(10), **NO_DUP))
    book.marks.clear()
    assert d.risk.check_new(VENUE, SYM, BUY, 650_000, 1) == "margin: no mark price yet for sim:BTC/USDT"


def test_margin_limits_are_checked():
    with pytest.raises(RiskLimitError, match="max_leverage"):
        RiskLimits(max_leverage=Decimal("0.5"))
    with pytest.raises(RiskLimitError, match="min_liquidation_bps"):
        RiskLimits(min_liquidation_bps=-1)

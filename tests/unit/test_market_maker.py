"""The market maker: quote ladder math, the minimal diff, and its controls on a real (quiet) sim venue.

The pure parts (`quote_ladder`, `avellaneda_stoikov`, `diff_quotes`) are checked on hand-computed
numbers. The rest drives a real Kernel + SimVenue whose synthetic participants are switched off, so
that the book only changes when a test changes it (providers' quotes through the venue's own matching
book, then the venue publishes the deltas as it does every step).
"""

from __future__ import annotations

import itertools
import math

import pytest

from lobterm.assemble import build_sim_kernel
from lobterm.config import load
from lobterm.engine.events import (
    BUY,
    LIMIT,
    MARKET,
    ORDER_EVENTS,
    POST_ONLY,
    SELL,
    STP_NONE,
    BookDelta,
    VenueStatus,
)
from lobterm.trading.market_maker import (
    CANCELLING,
    SENT,
    WORKING,
    MarketMaker,
    MarketMakerError,
    WorkingQuote,
    diff_quotes,
)
from lobterm.trading.oms import OrderManager
from lobterm.trading.quoting import (
    AVELLANEDA_STOIKOV,
    Ladder,
    QuoteParamError,
    QuoteParams,
    avellaneda_stoikov,
    quote_ladder,
)
from lobterm.trading.risk import RiskLimits, RiskManager
from lobterm.venues.sim import LP_OWNER, SIM_ID_BASE, TAKER_OWNER

# ---- the desired ladder --------------------------------------------------------------------------


def test_ladder_has_levels_per_side_stepping_away_from_the_spread() -> None:
    p = QuoteParams(levels=3, spread_ticks=4, level_step_ticks=2, size_lots=5)
    lad = quote_ladder(p, 99, 101, 0)
    assert lad.reservation == 100.0
    assert lad.bids == ((98, 5), (96, 5), (94, 5))
    assert lad.asks == ((102, 5), (104, 5), (106, 5))


def test_a_half_tick_mid_rounds_bids_down_and_asks_up() -> None:
    assert quote_ladder(QuoteParams(levels=1, spread_ticks=1), 100, 101, 0).bids == ((100, 10),)
    lad = quote_ladder(QuoteParams(levels=1, spread_ticks=2), 100, 101, 0)
    assert (lad.bids[0][0], lad.asks[0][0]) == (99, 102)  # 99.5 down, 101.5 up: never tighter than asked


def test_spread_in_bps_is_a_share_of_the_mid() -> None:
    # 10 bps of a 10,000-tick mid is 10 ticks: 5 each side.
    lad = quote_ladder(QuoteParams(levels=1, spread_bps=10.0), 9_990, 10_010, 0)
    assert (lad.bids[0][0], lad.asks[0][0]) == (9_995, 10_005)


def test_price_skew_moves_the_reservation_price_against_the_position() -> None:
    p = QuoteParams(levels=1, spread_ticks=2, skew_ticks_per_lot=0.1)
    long = quote_ladder(p, 95, 105, 20)  # r = 100 - 0.1 * 20 = 98
    short = quote_ladder(p, 95, 105, -20)  # r = 102
    assert long.reservation == pytest.approx(98.0)
    assert (long.bids[0][0], long.asks[0][0]) == (97, 99)
    assert (short.bids[0][0], short.asks[0][0]) == (101, 103)


def test_size_skew_shrinks_the_side_that_adds_to_the_position_and_grows_the_other() -> None:
    p = QuoteParams(levels=1, size_lots=10, size_skew=0.5, max_position_lots=100)
    long = quote_ladder(p, 99, 101, 40)  # 40% of max: bids x0.8, asks x1.2
    assert (long.bids[0][1], long.asks[0][1]) == (8, 12)
    short = quote_ladder(p, 99, 101, -40)
    assert (short.bids[0][1], short.asks[0][1]) == (12, 8)


def test_min_spread_is_a_floor_under_the_spread() -> None:
    lad = quote_ladder(QuoteParams(levels=1, spread_ticks=1, min_spread_ticks=4), 99, 101, 0)
    assert (lad.bids[0][0], lad.asks[0][0]) == (98, 102)


def test_a_side_never_offers_more_than_max_position_leaves() -> None:
    p = QuoteParams(levels=3, size_lots=10, max_position_lots=25)
    lad = quote_ladder(p, 99, 101, 10)  # may buy 15 more, sell 35
    assert [s for _, s in lad.bids] == [10, 5]
    assert [s for _, s in lad.asks] == [10, 10, 10]


def test_at_max_position_the_side_that_would_exceed_it_is_not_quoted() -> None:
    p = QuoteParams(levels=3, size_lots=10, max_position_lots=25)
    assert quote_ladder(p, 99, 101, 25).bids == ()
    assert quote_ladder(p, 99, 101, -25).asks == ()
    assert len(quote_ladder(p, 99, 101, -25).bids) == 3


def test_quotes_never_cross_the_others_touch() -> None:
    # A big long position pushes the reservation far below the market: asks stop one tick above the bid.
    p = QuoteParams(levels=3, spread_ticks=2, skew_ticks_per_lot=1.0, max_position_lots=1000)
    low = quote_ladder(p, 99, 101, 50)
    assert low.asks == ((100, 10), (101, 10), (102, 10))
    assert low.bids[0][0] < 100
    high = quote_ladder(p, 99, 101, -50)
    assert high.bids == ((100, 10), (99, 10), (98, 10))
    assert high.asks[0][0] > 100


def test_sizes_per_level_from_a_list_or_a_base_and_step() -> None:
    assert [s for _, s in quote_ladder(QuoteParams(levels=4, sizes=(5, 7)), 99, 101, 0).bids] == [5, 7, 7, 7]
    stepped = quote_ladder(QuoteParams(levels=3, size_lots=4, size_step_lots=3), 99, 101, 0)
    assert [s for _, s in stepped.asks] == [4, 7, 10]


def test_prices_below_one_tick_are_not_quoted() -> None:
    lad = quote_ladder(QuoteParams(levels=5, spread_ticks=2), 2, 4, 0)
    assert [px for px, _ in lad.bids] == [2, 1]


def test_avellaneda_stoikov_formulas_on_hand_computed_numbers() -> None:
    # r = 100 - 10 * 0.1 * 4 * 1 = 96; spread = 0.1 * 4 * 1 + (2 / 0.1) * ln(1 + 0.1 / 1.5)
    r, spread = avellaneda_stoikov(100.0, 10, gamma=0.1, sigma2=4.0, tau_s=1.0, k=1.5)
    assert r == pytest.approx(96.0)
    assert spread == pytest.approx(0.4 + 20.0 * math.log(1.0 + 0.1 / 1.5))
    assert spread == pytest.approx(1.690771, abs=1e-6)


def test_avellaneda_stoikov_ladder_rounds_onto_the_grid() -> None:
    p = QuoteParams(mode=AVELLANEDA_STOIKOV, levels=2, gamma=0.1, k=1.5, min_spread_ticks=1)
    lad = quote_ladder(p, 90, 110, 10, sigma_ticks=2.0, tau_s=1.0)
    # r = 96, half spread 0.845: 95.15 rounds down to 95, 96.85 up to 97.
    assert (lad.bids, lad.asks) == (((95, 10), (94, 10)), ((97, 10), (98, 10)))
    half_time = quote_ladder(p, 90, 110, 10, sigma_ticks=2.0, tau_s=0.5)  # r = 98, spread 1.49
    assert (half_time.bids[0][0], half_time.asks[0][0]) == (97, 99)
    assert all(type(px) is int and type(sz) is int for px, sz in lad.bids + lad.asks)


# ---- the diff ------------------------------------------------------------------------------------
def _working(ladder: Ladder, first_id: int = 1) -> list[WorkingQuote]:
    ids = itertools.count(first_id)
    return [
        WorkingQuote(next(ids), side, px, sz, WORKING)
        for side, levels in ((BUY, ladder.bids), (SELL, ladder.asks))
        for px, sz in levels
    ]


P5 = QuoteParams(levels=5, spread_ticks=2, size_lots=10, max_position_lots=1000)


def test_diff_of_an_unchanged_ladder_is_empty() -> None:
    lad = quote_ladder(P5, 99, 101, 0)
    assert len(diff_quotes(lad, _working(lad), P5, 0)) == 0


def test_diff_of_a_one_tick_move_is_amends_only() -> None:
    quotes = _working(quote_ladder(P5, 99, 101, 0))
    moved = quote_ladder(P5, 100, 102, 0)
    act = diff_quotes(moved, quotes, P5, 0)
    assert act.cancels == [] and act.news == []
    # Four levels of each side are already where they should be: one amend per side moves the last.
    assert sorted((side, px) for _, side, px, _ in act.amends) == [(BUY, 100), (SELL, 106)]
    stepped = QuoteParams(levels=5, spread_ticks=2, level_step_ticks=2, max_position_lots=1000)
    before = _working(quote_ladder(stepped, 99, 101, 0))
    act2 = diff_quotes(quote_ladder(stepped, 100, 102, 0), before, stepped, 0)
    assert (len(act2.amends), act2.cancels, act2.news) == (10, [], [])


def test_diff_keeps_quotes_within_the_refresh_tolerance() -> None:
    p = QuoteParams(levels=5, spread_ticks=2, refresh_tolerance_ticks=1, max_position_lots=1000)
    quotes = _working(quote_ladder(p, 99, 101, 0))
    assert len(diff_quotes(quote_ladder(p, 100, 102, 0), quotes, p, 0)) == 0
    assert len(diff_quotes(quote_ladder(p, 101, 103, 0), quotes, p, 0)) > 0


def test_diff_sizes_down_at_the_same_price_to_keep_queue_priority() -> None:
    lad = quote_ladder(P5, 99, 101, 0)
    quotes = _working(lad)
    smaller = quote_ladder(replace_params(P5, size_lots=6), 99, 101, 0)
    act = diff_quotes(smaller, quotes, P5, 0)
    assert act.cancels == [] and act.news == []
    assert sorted(act.amends) == sorted((q.order_id, q.side, q.price, 6) for q in quotes)


def test_diff_keeps_a_partly_filled_quote_within_the_size_tolerance() -> None:
    p = QuoteParams(levels=1, size_lots=10, size_tolerance=0.3, max_position_lots=1000)
    lad = quote_ladder(p, 99, 101, 0)
    bid, ask = _working(lad)
    bid.size = 7  # 3 of 10 lots filled: within 30%
    assert len(diff_quotes(lad, [bid, ask], p, 0)) == 0
    bid.size = 6
    assert diff_quotes(lad, [bid, ask], p, 0).amends == [(bid.order_id, BUY, 99, 10)]


def test_diff_cancels_quotes_that_no_level_wants() -> None:
    quotes = _working(quote_ladder(P5, 99, 101, 0))
    fewer = replace_params(P5, levels=3)
    act = diff_quotes(quote_ladder(fewer, 99, 101, 0), quotes, fewer, 0)
    worst = {q.order_id for q in quotes if q.price in (96, 95, 104, 105)}
    assert set(act.cancels) == worst and act.amends == [] and act.news == []


def test_diff_never_has_more_than_levels_per_side_counting_quotes_being_cancelled() -> None:
    lad = quote_ladder(P5, 99, 101, 0)
    far = [WorkingQuote(i, BUY, 50 + i, 10, CANCELLING) for i in range(1, 4)]
    act = diff_quotes(lad, far, P5, 0)
    assert [side for side, _, _ in act.news].count(BUY) == 2  # 3 still being cancelled + 2 new = 5
    assert [side for side, _, _ in act.news].count(SELL) == 5


def test_diff_leaves_quotes_with_a_request_in_flight_alone() -> None:
    lad = quote_ladder(P5, 99, 101, 0)
    quotes = _working(lad)
    quotes[0].state = SENT
    quotes[0].price = 90  # sent far away; its Accepted is not in yet
    act = diff_quotes(lad, quotes, P5, 0)
    assert quotes[0].order_id not in act.cancels
    assert all(a[0] != quotes[0].order_id for a in act.amends)
    assert act.news == []  # its level waits rather than being doubled


def test_diff_requotes_orders_older_than_max_age() -> None:
    p = replace_params(P5, max_order_age_ms=1000)
    lad = quote_ladder(p, 99, 101, 0)
    quotes = _working(lad)
    quotes[0].placed_ns = 0
    for q in quotes[1:]:
        q.placed_ns = 1_500_000_000
    act = diff_quotes(lad, quotes, p, 0, now_ns=2_000_000_000)
    assert act.cancels == [quotes[0].order_id]
    assert act.news == []  # replaced once its Done frees the level


def test_diff_without_amend_cancels_and_replaces() -> None:
    p = replace_params(P5, levels=1, use_amend=False)
    quotes = _working(quote_ladder(p, 99, 101, 0))
    act = diff_quotes(quote_ladder(p, 104, 106, 0), quotes, p, 0)
    assert act.amends == [] and sorted(act.cancels) == [1, 2]
    after_done = diff_quotes(quote_ladder(p, 104, 106, 0), [], p, 0)
    assert sorted(after_done.news) == [(BUY, 104, 10), (SELL, 106, 10)]


def replace_params(p: QuoteParams, **changes) -> QuoteParams:
    from dataclasses import replace

    out = replace(p, **changes)
    out.validate()
    return out


# ---- on a real (quiet) sim venue -----------------------------------------------------------------
QUIET = {
    "seed": 3,
    "taker_per_s": 0.0,
    "churn_per_s": 0.0,
    "vol_bps": 0.0,
    "burst_per_min": 0.0,
    "jump_per_min": 0.0,
}
_ids = itertools.count(SIM_ID_BASE + 10**12)


def _quiet(params: QuoteParams | None = None, **kw):
    kernel, venue = build_sim_kernel(load(use_defaults=False, overrides={"sim": QUIET}), virtual=True)
    venue.open()
    mm = MarketMaker.from_kernel(
        kernel, params=params or QuoteParams(levels=5, spread_ticks=2, size_lots=10), **kw
    )
    return kernel, venue, kernel.default_market, mm


def _set_touch(venue, bid: int, ask: int, lots: int = 100) -> None:
    """Make the providers' best bid/ask exactly `bid`/`ask`, through the venue's matching book."""
    book = venue.book
    for side, inside in ((BUY, lambda px: px > bid), (SELL, lambda px: px < ask)):
        for px, _ in book.depth(side):
            if inside(px):
                for oid, _size, owner in book.orders_at(side, px):
                    if owner == LP_OWNER:
                        book.cancel(oid)
        px = bid if side == BUY else ask
        if not any(owner == LP_OWNER for _, _, owner in book.orders_at(side, px)):
            book.submit(next(_ids), side, px, lots, LIMIT, LP_OWNER, STP_NONE)
    venue._publish()  # what the venue does after every step: deltas for the changed levels


def _take(venue, side: int, lots: int) -> None:
    """A noise taker's market order (e.g. SELL hits the bids)."""
    venue.book.submit(next(_ids), side, 0, lots, MARKET, TAKER_OWNER, STP_NONE)
    venue._publish()


def _quotes(mm: MarketMaker, side: int) -> list[tuple[int, int]]:
    return [(q.price, q.size) for q in mm.working_quotes if q.side == side]


def test_resume_quotes_both_sides_post_only_on_the_grid() -> None:
    kernel, venue, m, mm = _quiet()
    assert (m.l2.best_bid_price(), m.l2.best_ask_price()) == (649_999, 650_001)
    mm.resume()
    assert _quotes(mm, BUY) == [(649_999 - i, 10) for i in range(5)]
    assert _quotes(mm, SELL) == [(650_001 + i, 10) for i in range(5)]
    # Sent while the bus was idle (the venue answered inside new_order): still tracked to working.
    assert all(q.state == WORKING for q in mm.working_quotes)
    ours = [o for o in kernel.oms.working.values()]
    assert len(ours) == 10 and all(o.order_type == POST_ONLY for o in ours)
    assert kernel.bus.errors == 0


def test_an_unchanged_book_sends_no_messages() -> None:
    kernel, venue, m, mm = _quiet()
    mm.resume()
    before = venue.our_requests
    assert mm.requote() == 0
    # A change deep in the book (not the touch) is a book event, and still changes nothing of ours.
    venue.book.submit(next(_ids), BUY, 649_950, 40, LIMIT, LP_OWNER, STP_NONE)
    venue._publish()
    assert venue.our_requests == before
    assert mm.heartbeat() == 0  # a full diff, whatever the events said: still nothing to send
    assert venue.our_requests == before


def test_a_one_tick_move_is_amended_not_cancelled_and_replaced() -> None:
    kernel, venue, m, mm = _quiet()
    mm.resume()
    sent, cancels, amends, requests = mm.quotes_sent, mm.cancels_sent, mm.amends_sent, venue.our_requests
    _set_touch(venue, 650_000, 650_002)
    assert (mm.quotes_sent, mm.cancels_sent) == (sent, cancels)
    assert mm.amends_sent - amends == 2  # the worst bid moves to the new best, the best ask to the back
    assert venue.our_requests - requests == 2
    assert _quotes(mm, BUY) == [(650_000 - i, 10) for i in range(5)]
    assert _quotes(mm, SELL) == [(650_002 + i, 10) for i in range(5)]
    assert mm.rejects == 0


def test_refresh_tolerance_keeps_quotes_through_a_one_tick_move() -> None:
    kernel, venue, m, mm = _quiet(QuoteParams(levels=5, spread_ticks=2, refresh_tolerance_ticks=1))
    mm.resume()
    requests = venue.our_requests
    _set_touch(venue, 650_000, 650_002)
    assert venue.our_requests == requests


def test_a_fill_skews_quotes_against_the_position() -> None:
    params = QuoteParams(
        levels=3, spread_ticks=2, size_lots=10, skew_ticks_per_lot=0.2, size_skew=0.5, max_position_lots=50
    )
    kernel, venue, m, mm = _quiet(params)
    mm.resume()
    _take(venue, SELL, m.l2.level_size(BUY, 649_999))  # sweeps the best bid level, ours included
    pos = kernel.inventory.position(m.venue, m.symbol).lots
    assert pos == 10 and mm.fills == 1
    bids, asks = _quotes(mm, BUY), _quotes(mm, SELL)
    # r = mid - 0.2 * 10 = 2 ticks lower; bids shrink by 10% (10 of 50 lots, x0.5), asks grow.
    assert bids[0][0] < 649_998 and asks[0][0] < 650_001
    assert all(sz == 9 for _, sz in bids) and all(sz == 11 for _, sz in asks)
    assert sum(sz for _, sz in bids) <= params.max_position_lots - pos


def test_pause_cancels_quotes_and_resume_quotes_again() -> None:
    kernel, venue, m, mm = _quiet()
    mm.resume()
    mm.pause()
    assert mm.working_quotes == [] and kernel.oms.working == {}
    assert mm.state == "paused"
    _set_touch(venue, 650_000, 650_002)
    assert venue.book.state()[0] > 0 and mm.working_quotes == []  # paused: book events do not quote
    mm.resume()
    assert len(mm.working_quotes) == 10


def test_stop_is_a_kill_switch_until_rearmed() -> None:
    kernel, venue, m, mm = _quiet()
    mm.resume()
    mm.stop()
    assert mm.working_quotes == [] and mm.state == "stopped"
    with pytest.raises(MarketMakerError, match="rearm"):
        mm.resume()
    mm.rearm()
    mm.resume()
    assert len(mm.working_quotes) == 10


def test_the_risk_kill_switch_stops_the_market_maker() -> None:
    kernel, venue = build_sim_kernel(load(use_defaults=False, overrides={"sim": QUIET}), virtual=True)
    venue.open()
    risk = RiskManager(kernel.markets, kernel.clock)
    mm = MarketMaker.from_kernel(kernel, risk=risk)
    mm.resume()
    risk.kill("test")
    assert mm.state == "stopped" and "kill" in mm.reason
    assert mm.working_quotes == []


def test_update_params_changes_the_ladder_live() -> None:
    kernel, venue, m, mm = _quiet()
    mm.resume()
    cancels = mm.cancels_sent
    mm.update_params(levels=3, size_lots=7)
    assert mm.cancels_sent - cancels == 4
    assert _quotes(mm, BUY) == [(649_999 - i, 7) for i in range(3)]  # sized down in place
    mm.update_params(sizes=[4, 5, 6])
    assert [sz for _, sz in _quotes(mm, SELL)] == [4, 5, 6]


@pytest.mark.parametrize(
    "name,value",
    [
        ("levels", 0),
        ("levels", 2.0),
        ("spread_ticks", "2"),
        ("gamma", 0.0),
        ("mode", "martingale"),
        ("sizes", [3, 0]),
        ("size_skew", 1.5),
        ("post_only", 1),
        ("k", float("nan")),
        ("max_position_lots", -5),
    ],
)
def test_a_bad_parameter_is_rejected_naming_it_and_nothing_changes(name: str, value: object) -> None:
    kernel, venue, m, mm = _quiet()
    mm.resume()
    before, requests = mm.params, venue.our_requests
    with pytest.raises(QuoteParamError) as err:
        mm.update_params(**{"size_lots": 7, name: value})
    assert err.value.name == name and name in str(err.value)
    assert mm.params is before and venue.our_requests == requests


def test_an_unknown_parameter_is_rejected() -> None:
    kernel, venue, m, mm = _quiet()
    with pytest.raises(QuoteParamError, match="not a quote parameter"):
        mm.update_params(sprad_ticks=3)


def test_a_venue_that_is_not_up_pulls_quotes() -> None:
    kernel, venue, m, mm = _quiet()
    mm.resume()
    kernel.bus.publish(VenueStatus(kernel.clock.now(), "sim", "stale", "no data"))
    assert mm.working_quotes == [] and mm.reason == "venue stale"
    kernel.bus.publish(VenueStatus(kernel.clock.now(), "sim", "up"))
    assert len(mm.working_quotes) == 10


def test_a_stale_book_pulls_quotes_on_the_heartbeat() -> None:
    kernel, venue, m, mm = _quiet(QuoteParams(levels=2, stale_after_ms=500))
    mm.resume()
    kernel.clock.advance(400_000_000)
    mm.heartbeat()
    assert len(mm.working_quotes) == 4
    kernel.clock.advance(200_000_000)
    mm.heartbeat()
    assert mm.working_quotes == [] and mm.reason == "book stale"


def test_a_book_event_records_tick_to_quote_latency() -> None:
    kernel, venue, m, mm = _quiet()
    mm.resume()
    mm.last_tick_to_quote_ns = None
    _set_touch(venue, 650_000, 650_002)
    assert mm.last_tick_to_quote_ns is not None and 0 < mm.last_tick_to_quote_ns < 1_000_000_000


def test_ladder_view_shows_desired_and_working_side_by_side() -> None:
    kernel, venue, m, mm = _quiet(QuoteParams(levels=2, spread_ticks=2))
    mm.resume()
    view = mm.ladder_view()
    assert view.status == "running" and view.reason == "" and view.quoted_spread_ticks == 2
    assert [(r.level, r.desired_price, r.working_price, r.state) for r in view.bids] == [
        (0, 649_999, 649_999, WORKING),
        (1, 649_998, 649_998, WORKING),
    ]
    mm.pause()
    paused = mm.ladder_view()
    assert paused.status == "paused" and all(r.working_price is None for r in paused.asks)


def test_a_gapped_delta_pulls_quotes_at_once() -> None:
    kernel, venue, m, mm = _quiet()
    mm.resume()
    states = []
    kernel.bus.subscribe(BookDelta, lambda ev: states.append(sorted({q.state for q in mm.working_quotes})))
    kernel.bus.publish(BookDelta(kernel.clock.now(), "sim", m.symbol, m.l2.seq + 5, BUY, 649_000, 1))
    assert states[0] == [CANCELLING]
    assert mm.pulls == 1
    assert len(mm.working_quotes) == 10 and m.l2.valid  # the venue resent its snapshot: quoting again


def test_a_quote_cancelled_by_someone_else_is_replaced() -> None:
    kernel, venue, m, mm = _quiet()
    mm.resume()
    victim = mm.working_quotes[0]
    kernel.oms.cancel(victim.order_id)  # e.g. the trader's cancel-all key, or the venue expiring it
    assert victim.order_id not in {q.order_id for q in mm.working_quotes}
    assert _quotes(mm, BUY) == [(649_999 - i, 10) for i in range(5)]


def test_refused_quotes_are_counted_and_retried_only_after_the_backoff() -> None:
    kernel, venue = build_sim_kernel(load(use_defaults=False, overrides={"sim": QUIET}), virtual=True)
    venue.open()
    risk = RiskManager(kernel.markets, kernel.clock, RiskLimits(max_order_lots=5, max_book_age_ms=None))
    oms = OrderManager(kernel.venues, kernel.bus, kernel.clock, risk=risk)  # an OMS that checks risk
    kernel.bus.subscribe(ORDER_EVENTS, oms.on_event)
    mm = MarketMaker(
        kernel.bus,
        oms,
        kernel.default_market,
        kernel.inventory,
        kernel.clock,
        QuoteParams(levels=5, size_lots=10, reject_backoff_ms=100),
    )
    mm.resume()
    assert (mm.quotes_sent, mm.rejects) == (1, 1)  # the first refusal stops the cycle
    assert "max_order_lots" in mm.last_reject and mm.working_quotes == []
    _set_touch(venue, 650_000, 650_002)  # book events within the backoff: no retry storm
    assert mm.quotes_sent == 1
    kernel.clock.advance(150_000_000)
    _set_touch(venue, 649_999, 650_002)
    # One cycle's worth again (refusals queued behind a book event arrive after the cycle), then quiet.
    assert (mm.quotes_sent, mm.rejects) == (11, 11)
    _set_touch(venue, 649_999, 650_001)
    assert mm.quotes_sent == 11
    mm.update_params(size_lots=5)
    kernel.clock.advance(150_000_000)
    mm.heartbeat()
    assert len(mm.working_quotes) == 10 and kernel.bus.errors == 0

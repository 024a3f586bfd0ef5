"""UnifiedBook: our orders and the venue's L2, price by price, each source's size kept apart."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lobterm.engine.events import (
    BUY,
    FOK,
    IOC,
    LIMIT,
    MARKET,
    POST_ONLY,
    SELL,
    Accepted,
    Amended,
    BookSnapshot,
    Cancelled,
    Done,
    Fill,
    Rejected,
    Trade,
)
from lobterm.engine.l2book import L2Book, L2BookError
from lobterm.engine.unified import LadderRow, UnifiedBook, UnifiedBookError

V, S = "sim", "BTC/USDT"
US, THEM = 7, 8


def l2_with(bids=(), asks=()) -> L2Book:
    b = L2Book(V, S)
    b.apply_snapshot(BookSnapshot(0, V, S, 1, tuple(bids), tuple(asks)))
    return b


def accepted(oid, side, price, size, order_type=LIMIT, owner=US, venue=V, symbol=S):
    return Accepted(0, venue, symbol, oid, side, price, size, order_type, owner)


def fill(oid, side, price, size, leaves, owner=US):
    return Fill(0, V, S, oid, side, price, size, leaves, True, 0, 1, owner)


def done(oid, reason="filled", owner=US):
    return Done(0, V, S, oid, 0, reason, owner)


@pytest.fixture
def in_book() -> UnifiedBook:
    """A real venue: its L2 (bids 100x10, 99x4; asks 101x6, 102x2) already holds our orders."""
    u = UnifiedBook(l2_with([(100, 10), (99, 4)], [(101, 6), (102, 2)]), US, own_in_venue_book=True)
    u.add_own(1, BUY, 100, 3)
    u.add_own(2, SELL, 101, 6)
    return u


@pytest.fixture
def paper() -> UnifiedBook:
    """Paper trading: the same L2, our orders are virtual and not in it."""
    u = UnifiedBook(l2_with([(100, 10), (99, 4)], [(101, 6), (102, 2)]), US, own_in_venue_book=False)
    u.add_own(1, BUY, 100, 3)
    u.add_own(2, SELL, 101, 6)
    return u


# ---- sizes kept apart -----------------------------------------------------------------------
def test_in_venue_book_others_are_venue_minus_ours(in_book):
    assert in_book.venue_size(BUY, 100) == 10
    assert in_book.our_size(BUY, 100) == 3
    assert in_book.others_size(BUY, 100) == 7
    assert in_book.combined_size(BUY, 100) == 10


def test_in_venue_book_others_are_clamped_at_zero_when_the_l2_lags(in_book):
    in_book.add_own(3, BUY, 98, 5)  # the venue's delta for it has not arrived yet
    assert in_book.others_size(BUY, 98) == 0
    assert in_book.combined_size(BUY, 98) == 5
    assert in_book.others_size(SELL, 101) == 0  # venue 6, ours 6


def test_paper_orders_add_to_the_venue_size(paper):
    assert paper.venue_size(BUY, 100) == 10
    assert paper.others_size(BUY, 100) == 10
    assert paper.combined_size(BUY, 100) == 13
    assert paper.combined_size(SELL, 101) == 12


def test_sizes_stay_apart_when_the_venue_level_changes(paper):
    paper.l2.apply_level(BUY, 100, 2)
    assert paper.our_size(BUY, 100) == 3 and paper.others_size(BUY, 100) == 2


# ---- combined BBO ---------------------------------------------------------------------------
def test_combined_bbo_takes_our_better_price():
    u = UnifiedBook(l2_with([(100, 10)], [(105, 6)]), US, own_in_venue_book=False)
    u.add_own(1, BUY, 102, 2)
    u.add_own(2, SELL, 104, 1)
    assert u.best_bid() == (102, 2) and u.best_ask() == (104, 1)


def test_combined_bbo_adds_our_size_at_the_venue_touch(paper):
    assert paper.best_bid() == (100, 13) and paper.best_ask() == (101, 12)


def test_combined_bbo_in_venue_book_does_not_double_count(in_book):
    assert in_book.best_bid() == (100, 10) and in_book.best_ask() == (101, 6)


def test_combined_bbo_with_only_our_orders():
    u = UnifiedBook(l2_with(), US, own_in_venue_book=False)
    assert u.best_bid() is None and u.best_ask() is None
    u.add_own(1, SELL, 105, 2)
    assert u.best_ask() == (105, 2) and u.best_bid() is None


def test_center_price_is_the_mid_rounded_down_then_the_last_known(paper):
    assert paper.center_price() == 100
    paper.l2.apply_snapshot(BookSnapshot(0, V, S, 2, (), ()))
    paper.clear_own()
    assert paper.center_price() == 100


def test_combined_depth_merges_both_sources_best_first(paper):
    paper.add_own(3, BUY, 98, 2)
    assert paper.depth(BUY, 5) == [(100, 13), (99, 4), (98, 2)]
    assert paper.depth(SELL, 1) == [(101, 12)]


# ---- our orders -----------------------------------------------------------------------------
def test_our_orders_at_a_price_are_in_time_order(paper):
    paper.add_own(3, BUY, 100, 1)
    paper.add_own(4, BUY, 100, 1)
    assert paper.our_orders_at(100) == [1, 3, 4]
    assert paper.our_orders_at(100, BUY) == [1, 3, 4]
    assert paper.our_orders_at(100, SELL) == []
    assert paper.our_orders_at(50) == []


def test_add_own_rejects_duplicates_and_garbage(paper):
    with pytest.raises(UnifiedBookError):
        paper.add_own(1, BUY, 100, 1)
    for bad in [(9, 2, 100, 1), (9, BUY, 0, 1), (9, BUY, 100, 0), (9, BUY, 100.5, 1)]:
        with pytest.raises(UnifiedBookError):
            paper.add_own(*bad)
    assert paper.our_order_count == 2


def test_remove_own_of_an_unknown_order_returns_false(paper):
    assert paper.remove_own(99) is False


def test_version_changes_when_either_source_changes(paper):
    v = paper.version
    paper.l2.apply_level(BUY, 97, 1)
    assert paper.version != v
    v = paper.version
    paper.add_own(3, BUY, 97, 1)
    assert paper.version != v


# ---- tracking via events --------------------------------------------------------------------
@pytest.fixture
def tracked() -> UnifiedBook:
    u = UnifiedBook(l2_with([(100, 10)], [(101, 6)]), US, own_in_venue_book=True)
    u.on_event(accepted(1, BUY, 100, 5))
    u.on_event(accepted(2, BUY, 100, 2))
    return u


def test_accepted_limit_order_is_tracked(tracked):
    assert tracked.our_order(1) == (BUY, 100, 5)
    assert tracked.our_size(BUY, 100) == 7 and tracked.our_orders_at(100) == [1, 2]


@pytest.mark.parametrize(
    "ev",
    [
        accepted(3, BUY, 0, 5, MARKET),
        accepted(3, BUY, 101, 5, IOC),
        accepted(3, BUY, 101, 5, FOK),
        accepted(3, BUY, 99, 5, owner=THEM),
        accepted(3, BUY, 99, 5, venue="other"),
        accepted(3, BUY, 99, 5, symbol="ETH/USDT"),
    ],
)
def test_orders_that_never_rest_or_are_not_ours_here_are_not_tracked(tracked, ev):
    tracked.on_event(ev)
    assert tracked.our_order(3) is None and tracked.our_order_count == 2


def test_post_only_orders_are_tracked(tracked):
    tracked.on_event(accepted(3, SELL, 102, 1, POST_ONLY))
    assert tracked.our_order(3) == (SELL, 102, 1)


def test_partial_fill_reduces_our_size_and_keeps_priority(tracked):
    tracked.on_event(fill(1, BUY, 100, 3, leaves=2))
    assert tracked.our_size(BUY, 100) == 4 and tracked.our_orders_at(100) == [1, 2]


def test_full_fill_removes_the_order(tracked):
    tracked.on_event(fill(1, BUY, 100, 5, leaves=0))
    assert tracked.our_order(1) is None and tracked.our_orders_at(100) == [2]


def test_done_removes_the_order(tracked):
    tracked.on_event(Cancelled(0, V, S, 2, 2, "cancelled", US))
    tracked.on_event(done(2, "cancelled"))
    assert tracked.our_order(2) is None and tracked.our_size(BUY, 100) == 5


def test_partial_cancel_reduces_our_size(tracked):
    tracked.on_event(Cancelled(0, V, S, 1, 2, "self_trade", US))
    assert tracked.our_order(1) == (BUY, 100, 3)


def test_amend_to_a_new_price_moves_the_order(tracked):
    tracked.on_event(Amended(0, V, S, 1, 99, 4, False, US))
    assert tracked.our_order(1) == (BUY, 99, 4)
    assert tracked.our_orders_at(100) == [2] and tracked.our_orders_at(99) == [1]
    assert tracked.our_size(BUY, 100) == 2 and tracked.our_size(BUY, 99) == 4


def test_amend_that_kept_priority_stays_in_place(tracked):
    tracked.on_event(Amended(0, V, S, 1, 100, 1, True, US))
    assert tracked.our_orders_at(100) == [1, 2] and tracked.our_size(BUY, 100) == 3


def test_amend_that_lost_priority_goes_to_the_back(tracked):
    tracked.on_event(Amended(0, V, S, 1, 100, 9, False, US))
    assert tracked.our_orders_at(100) == [2, 1] and tracked.our_size(BUY, 100) == 11


def test_rejected_and_market_data_events_change_nothing(tracked):
    v = tracked.version
    tracked.on_event(Rejected(0, V, S, 1, "no", US))
    tracked.on_event(Trade(0, V, S, 100, 1, SELL, 1))
    assert tracked.version == v and tracked.our_order(1) == (BUY, 100, 5)


def test_malformed_event_is_counted_and_changes_nothing(tracked):
    tracked.on_event(Amended(0, V, S, 1, 0, 4, False, US))
    assert tracked.bad_events == 1 and tracked.our_order(1) == (BUY, 100, 5)


def test_events_for_untracked_orders_are_ignored(tracked):
    tracked.on_event(fill(42, BUY, 100, 1, leaves=0))
    tracked.on_event(done(42))
    assert tracked.our_order_count == 2


# ---- ladder rows ----------------------------------------------------------------------------
def test_ladder_rows_for_a_window_from_the_top_down(in_book):
    rows = in_book.ladder_rows(102, 4)
    assert [r.price for r in rows] == [102, 101, 100, 99]
    assert rows[0] == LadderRow(102, ask_venue=2, ask_others=2)
    assert rows[1] == LadderRow(101, ask_venue=6, ask_ours=6, ask_our_count=1, ask_others=0)
    assert rows[2] == LadderRow(100, bid_venue=10, bid_ours=3, bid_our_count=1, bid_others=7)
    assert rows[2].bid_total == 10
    assert rows[3] == LadderRow(99, bid_venue=4, bid_others=4)


def test_ladder_rows_in_paper_mode_total_venue_plus_ours(paper):
    row = paper.ladder_rows(100, 1)[0]
    assert (row.bid_venue, row.bid_ours, row.bid_others, row.bid_total) == (10, 3, 10, 13)


def test_ladder_window_away_from_the_book_is_empty_rows(in_book):
    rows = in_book.ladder_rows(500, 3)
    assert rows == [LadderRow(500), LadderRow(499), LadderRow(498)]


def test_ladder_rows_aggregate_ticks_per_row_aligned_to_the_row_size():
    u = UnifiedBook(
        l2_with([(100, 1), (99, 2), (95, 4), (94, 8)], [(101, 16), (104, 32), (105, 64)]),
        US,
        own_in_venue_book=False,
    )
    u.add_own(1, BUY, 99, 3)
    u.add_own(2, BUY, 97, 5)
    rows = u.ladder_rows(107, 3, ticks_per_row=5)  # rows 105-109, 100-104, 95-99
    assert [r.price for r in rows] == [105, 100, 95]
    assert rows[0] == LadderRow(105, ask_venue=64, ask_others=64)
    assert rows[1] == LadderRow(100, bid_venue=1, bid_others=1, ask_venue=48, ask_others=48)
    assert rows[2] == LadderRow(95, bid_venue=6, bid_ours=8, bid_our_count=2, bid_others=6)


def test_ladder_rows_stop_below_price_one(paper):
    assert [r.price for r in paper.ladder_rows(3, 10)] == [3, 2, 1]
    assert paper.ladder_rows(0, 5) == []


def test_ladder_rows_in_venue_book_clamp_others_per_tick():
    u = UnifiedBook(l2_with([(100, 2), (99, 9)]), US, own_in_venue_book=True)
    u.add_own(1, BUY, 100, 5)  # venue shows 2 (lagging), ours 5: others 0 at 100, not -3
    row = u.ladder_rows(100, 1, ticks_per_row=2)[0]
    assert (row.price, row.bid_venue, row.bid_ours, row.bid_others, row.bid_total) == (100, 2, 5, 0, 5)
    row = u.ladder_rows(101, 1, ticks_per_row=2)[0]  # 100-101
    assert row.price == 100
    row = u.ladder_rows(99, 1, ticks_per_row=2)[0]  # 98-99
    assert (row.price, row.bid_others) == (98, 9)


@settings(max_examples=40, deadline=None)
@given(
    bids=st.dictionaries(st.integers(1, 40), st.integers(1, 9), max_size=12),
    asks=st.dictionaries(st.integers(1, 40), st.integers(1, 9), max_size=12),
    ours=st.lists(st.tuples(st.sampled_from([BUY, SELL]), st.integers(1, 40), st.integers(1, 9)), max_size=8),
    top=st.integers(-5, 45),
    n_rows=st.integers(0, 12),
    tpr=st.integers(1, 6),
    in_venue=st.booleans(),
)
def test_ladder_rows_equal_a_tick_by_tick_sum(bids, asks, ours, top, n_rows, tpr, in_venue):
    u = UnifiedBook(l2_with(bids.items(), asks.items()), US, own_in_venue_book=in_venue)
    for oid, (side, price, size) in enumerate(ours, start=1):
        u.add_own(oid, side, price, size)
    rows = u.ladder_rows(top, n_rows, tpr)
    assert len(rows) <= n_rows
    for r in rows:
        ticks = [p for p in range(r.price, r.price + tpr) if p >= 1]
        assert r.price % tpr == 0
        assert r.bid_venue == sum(u.venue_size(BUY, p) for p in ticks)
        assert r.ask_ours == sum(u.our_size(SELL, p) for p in ticks)
        assert r.bid_our_count == sum(len(u.our_orders_at(p, BUY)) for p in ticks)
        assert r.bid_others == sum(u.others_size(BUY, p) for p in ticks)
        assert r.ask_total == sum(u.combined_size(SELL, p) for p in ticks)


@settings(max_examples=40, deadline=None)
@given(
    bids=st.dictionaries(st.integers(1, 40), st.integers(1, 9), max_size=12),
    asks=st.dictionaries(st.integers(1, 40), st.integers(1, 9), max_size=12),
    ours=st.lists(st.tuples(st.sampled_from([BUY, SELL]), st.integers(1, 40), st.integers(1, 9)), max_size=8),
    n=st.integers(1, 30),
    in_venue=st.booleans(),
)
def test_combined_depth_and_bbo_equal_a_brute_force_merge(bids, asks, ours, n, in_venue):
    u = UnifiedBook(l2_with(bids.items(), asks.items()), US, own_in_venue_book=in_venue)
    for oid, (side, price, size) in enumerate(ours, start=1):
        u.add_own(oid, side, price, size)
    for side, venue in ((BUY, bids), (SELL, asks)):
        prices = set(venue) | {p for s, p, _ in ours if s == side}
        want = sorted(((p, u.combined_size(side, p)) for p in prices), reverse=(side == BUY))
        assert u.depth(side, n) == want[:n]
        assert (u.best_bid() if side == BUY else u.best_ask()) == (want[0] if want else None)


# ---- numbers that only look like ints --------------------------------------------------------
# True, 1.0 and numpy.int64(1) compare and hash like 1: they must not become tracked ids, pass for our
# owner id, or index the per-side tuples (True would read the asks).
@pytest.mark.parametrize("order_id", [1.0, True, np.int64(9), Decimal(9), "9", None], ids=repr)
def test_add_own_refuses_an_order_id_that_is_not_an_int(order_id):
    book = UnifiedBook(l2_with(), US, own_in_venue_book=True)
    with pytest.raises(UnifiedBookError, match="order id"):
        book.add_own(order_id, BUY, 100, 1)
    assert book.our_order_count == 0


@pytest.mark.parametrize("side", [1.0, True, False, np.int64(1), np.float64(0)], ids=repr)
def test_add_own_refuses_a_side_that_only_looks_like_an_int(side):
    book = UnifiedBook(l2_with(), US, own_in_venue_book=True)
    with pytest.raises(UnifiedBookError, match="side"):
        book.add_own(9, side, 100, 1)
    assert book.our_order_count == 0


@pytest.mark.parametrize("owner", [float(US), np.int64(US)], ids=repr)
def test_an_order_event_whose_owner_only_looks_like_ours_is_counted_as_bad_and_ignored(owner):
    book = UnifiedBook(l2_with(), US, own_in_venue_book=True)
    book.on_event(accepted(9, BUY, 100, 1, owner=owner))
    assert book.our_order_count == 0 and book.bad_events == 1


def test_an_accepted_event_with_a_lookalike_order_id_is_counted_as_bad_and_not_tracked():
    book = UnifiedBook(l2_with(), US, own_in_venue_book=True)
    book.on_event(accepted(9.0, BUY, 100, 1))
    book.on_event(accepted(np.int64(10), SELL, 101, 1))
    assert book.our_order_count == 0 and book.bad_events == 2


@pytest.mark.parametrize("side", [True, False, 1.0, np.int64(0), 2, -1], ids=repr)
def test_reading_a_side_that_is_not_the_int_buy_or_sell_raises(side):
    book = UnifiedBook(l2_with([(100, 5)], [(101, 3)]), US, own_in_venue_book=True)
    book.add_own(1, BUY, 100, 2)
    for read in (
        lambda: book.our_orders_at(100, side),
        lambda: book.our_size(side, 100),
        lambda: book.venue_size(side, 100),
        lambda: book.others_size(side, 100),
        lambda: book.combined_size(side, 100),
        lambda: list(book.iter_levels(side)),
        lambda: book.depth(side, 3),
    ):
        with pytest.raises((UnifiedBookError, L2BookError)):
            read()


@pytest.mark.parametrize(
    "args", [(100.0, 10, 1), (100, 10.0, 1), (100, 10, 1.0), (True, 10, 1), (np.int64(100), 10, 1)], ids=repr
)
def test_ladder_rows_refuse_a_window_that_is_not_ints(args):
    book = UnifiedBook(l2_with([(100, 5)], [(101, 3)]), US, own_in_venue_book=True)
    with pytest.raises(UnifiedBookError):
        book.ladder_rows(*args)


@pytest.mark.parametrize("owner", [1.0, True, np.int64(7)], ids=repr)
def test_a_unified_book_refuses_an_owner_id_that_is_not_an_int(owner):
    with pytest.raises(UnifiedBookError):
        UnifiedBook(l2_with(), owner, own_in_venue_book=True)

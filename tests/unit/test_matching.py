"""Specification of the price-time matching book (lobterm/engine/matching.py).

Example tests state one rule each with real orders; the property tests at the end drive the book with
random requests of every kind and compare it, event for event, with a small reference book that scans
plain lists (slow and obviously right), and check the lifecycle and conservation invariants on the
book's own events.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule

from lobterm.engine.events import (
    BUY,
    CANCELED,
    EXPIRED,
    FILLED,
    FOK,
    IOC,
    KILLED,
    LIMIT,
    MARKET,
    POST_ONLY,
    POST_ONLY_WOULD_TRADE,
    REJECTED,
    SELL,
    STP,
    STP_CANCEL_BOTH,
    STP_CANCEL_INCOMING,
    STP_CANCEL_RESTING,
    STP_NONE,
    Accepted,
    Amended,
    Cancelled,
    Done,
    Fill,
    Rejected,
)
from lobterm.engine.matching import MatchingBook, MatchingBookError

VENUE = "sim"
SYMBOL = "BTC/USDT"
T = 1_700_000_000_000_000_000  # the clock value the venue stamps before each call

ALICE, BOB, CAROL = 1, 2, 3


# ---- helpers: a book, and events written the way the book writes them --------------------------
def new_book(**kw) -> MatchingBook:
    book = MatchingBook(VENUE, SYMBOL, **kw)
    book.now = T
    return book


def rest(
    book: MatchingBook,
    order_id: int,
    side: int,
    price: int,
    size: int,
    owner: int = 0,
    order_type: int = LIMIT,
) -> None:
    """Place an order that must rest untouched, and drop its events."""
    book.submit(order_id, side, price, size, order_type, owner)
    events = book.drain()
    assert events == [accepted(order_id, side, price, size, order_type, owner)], events
    assert order_id in book


def accepted(oid, side, price, size, order_type=LIMIT, owner=0):
    return Accepted(T, VENUE, SYMBOL, oid, side, price, size, order_type, owner)


def fill(oid, side, price, size, leaves, is_maker, trade_id, owner=0, fee=0):
    return Fill(T, VENUE, SYMBOL, oid, side, price, size, leaves, is_maker, fee, trade_id, owner)


def cancelled(oid, size, reason, owner=0):
    return Cancelled(T, VENUE, SYMBOL, oid, size, reason, owner)


def done(oid, filled, reason, owner=0):
    return Done(T, VENUE, SYMBOL, oid, filled, reason, owner)


def amended(oid, price, size, kept_priority, owner=0):
    return Amended(T, VENUE, SYMBOL, oid, price, size, kept_priority, owner)


def trade(
    maker_oid,
    taker_oid,
    taker_side,
    price,
    size,
    maker_leaves,
    taker_leaves,
    trade_id,
    maker_owner=0,
    taker_owner=0,
):
    """The maker/taker Fill pair of one trade, maker first."""
    return [
        fill(maker_oid, 1 - taker_side, price, size, maker_leaves, True, trade_id, maker_owner),
        fill(taker_oid, taker_side, price, size, taker_leaves, False, trade_id, taker_owner),
    ]


def snapshot(book: MatchingBook, ids=range(1, 100)) -> tuple:
    """Everything observable about the book (for 'the book is exactly as it was')."""
    return (
        book.state(),
        book.depth(BUY),
        book.depth(SELL),
        book.total_size(BUY),
        book.total_size(SELL),
        len(book),
        sorted(book.resting_orders()),
        [(i, book.order(i), book.queue_position(i)) for i in ids],
        {(s, p): book.orders_at(s, p) for s in (BUY, SELL) for p, _ in book.depth(s)},
    )


def two_sided_book() -> MatchingBook:
    """Bids 99x5 (id 1), 98x4 (id 2); asks 101x2 (id 3), 101x3 (id 4), 102x4 (id 5)."""
    book = new_book()
    rest(book, 1, BUY, 99, 5)
    rest(book, 2, BUY, 98, 4)
    rest(book, 3, SELL, 101, 2)
    rest(book, 4, SELL, 101, 3)
    rest(book, 5, SELL, 102, 4)
    return book


# ---- limit orders -------------------------------------------------------------------------------
def test_limit_order_that_does_not_cross_rests_at_its_price():
    book = new_book()
    book.submit(1, BUY, 100, 5)
    assert book.drain() == [accepted(1, BUY, 100, 5)]
    assert book.order(1) == (BUY, 100, 5, 0, 0)
    assert book.state() == (1, 5, 0, 100, None)
    assert book.depth(BUY) == [(100, 5)]


def test_limit_orders_at_the_same_price_add_up_in_the_level():
    book = new_book()
    rest(book, 1, SELL, 101, 2)
    rest(book, 2, SELL, 101, 3)
    assert book.depth(SELL) == [(101, 5)]
    assert book.level_size(SELL, 101) == 5
    assert book.orders_at(SELL, 101) == [(1, 2, 0), (2, 3, 0)]


def test_depth_lists_bids_highest_first_and_asks_lowest_first():
    book = two_sided_book()
    assert book.depth(BUY) == [(99, 5), (98, 4)]
    assert book.depth(SELL) == [(101, 5), (102, 4)]
    assert book.depth(SELL, 1) == [(101, 5)]
    assert book.best_bid() == 99 and book.best_ask() == 101


def test_crossing_limit_order_trades_at_the_resting_price_and_rests_its_remainder():
    book = two_sided_book()
    book.submit(10, BUY, 101, 7)
    assert book.drain() == [
        accepted(10, BUY, 101, 7),
        *trade(3, 10, BUY, 101, 2, 0, 5, 1),
        done(3, 2, FILLED),
        *trade(4, 10, BUY, 101, 3, 0, 2, 2),
        done(4, 3, FILLED),
    ]
    assert book.order(10) == (BUY, 101, 2, 5, 0)
    assert book.state() == (4, 11, 4, 101, 102)


def test_crossing_limit_order_does_not_trade_beyond_its_limit():
    book = two_sided_book()
    book.submit(10, SELL, 99, 9)
    events = book.drain()
    assert [e.price for e in events if isinstance(e, Fill)] == [99, 99]
    assert book.order(1) is None and book.order(2) == (BUY, 98, 4, 0, 0)
    assert book.order(10) == (SELL, 99, 4, 5, 0)


def test_limit_order_filled_completely_ends_with_done_filled_and_does_not_rest():
    book = two_sided_book()
    book.submit(10, BUY, 101, 2)
    assert book.drain() == [
        accepted(10, BUY, 101, 2),
        *trade(3, 10, BUY, 101, 2, 0, 0, 1),
        done(3, 2, FILLED),
        done(10, 2, FILLED),
    ]
    assert 10 not in book


def test_partially_filled_maker_keeps_its_place_at_the_front():
    book = two_sided_book()
    book.submit(10, BUY, 101, 1)
    book.drain()
    assert book.orders_at(SELL, 101) == [(3, 1, 0), (4, 3, 0)]
    assert book.order(3) == (SELL, 101, 1, 1, 0)
    assert book.queue_position(3) == 0


# ---- market orders ------------------------------------------------------------------------------
def test_market_order_sweeps_levels_best_first_and_carries_price_zero():
    book = two_sided_book()
    book.submit(10, BUY, 0, 6, MARKET)
    assert book.drain() == [
        accepted(10, BUY, 0, 6, MARKET),
        *trade(3, 10, BUY, 101, 2, 0, 4, 1),
        done(3, 2, FILLED),
        *trade(4, 10, BUY, 101, 3, 0, 1, 2),
        done(4, 3, FILLED),
        *trade(5, 10, BUY, 102, 1, 3, 0, 3),
        done(10, 6, FILLED),
    ]
    assert book.state() == (3, 9, 3, 99, 102)


def test_market_order_ignores_the_price_it_is_given():
    book = two_sided_book()
    book.submit(10, SELL, 12345, 1, MARKET)
    events = book.drain()
    assert events[0] == accepted(10, SELL, 0, 1, MARKET)
    assert events[1:3] == trade(1, 10, SELL, 99, 1, 4, 0, 1)


def test_market_order_remainder_expires_after_sweeping_the_whole_side():
    book = two_sided_book()
    book.submit(10, SELL, 0, 12, MARKET)
    events = book.drain()
    assert events[-2:] == [cancelled(10, 3, EXPIRED), done(10, 9, EXPIRED)]
    assert book.best_bid() is None and 10 not in book


def test_market_order_on_an_empty_side_expires_whole():
    book = new_book()
    rest(book, 1, BUY, 99, 5)
    book.submit(10, BUY, 0, 3, MARKET)
    assert book.drain() == [accepted(10, BUY, 0, 3, MARKET), cancelled(10, 3, EXPIRED), done(10, 0, EXPIRED)]
    assert book.state() == (1, 5, 0, 99, None)


# ---- IOC ----------------------------------------------------------------------------------------
def test_ioc_trades_what_it_can_within_its_limit_and_expires_the_rest():
    book = two_sided_book()
    book.submit(10, BUY, 101, 8, IOC)
    assert book.drain() == [
        accepted(10, BUY, 101, 8, IOC),
        *trade(3, 10, BUY, 101, 2, 0, 6, 1),
        done(3, 2, FILLED),
        *trade(4, 10, BUY, 101, 3, 0, 3, 2),
        done(4, 3, FILLED),
        cancelled(10, 3, EXPIRED),
        done(10, 5, EXPIRED),
    ]
    assert 10 not in book and book.best_ask() == 102


def test_ioc_that_does_not_cross_expires_without_resting():
    book = two_sided_book()
    book.submit(10, BUY, 100, 4, IOC)
    assert book.drain() == [accepted(10, BUY, 100, 4, IOC), cancelled(10, 4, EXPIRED), done(10, 0, EXPIRED)]
    assert book.state() == (5, 9, 9, 99, 101)


def test_ioc_filled_completely_ends_filled():
    book = two_sided_book()
    book.submit(10, SELL, 98, 5, IOC)
    assert book.drain()[-1] == done(10, 5, FILLED)


# ---- FOK ----------------------------------------------------------------------------------------
def test_fok_fills_completely_when_enough_is_within_its_limit():
    book = two_sided_book()
    book.submit(10, BUY, 102, 9, FOK)
    events = book.drain()
    assert events[-1] == done(10, 9, FILLED)
    assert sum(e.size for e in events if isinstance(e, Fill) and not e.is_maker) == 9
    assert book.best_ask() is None


def test_fok_that_cannot_fill_completely_is_killed_with_no_fills():
    book = two_sided_book()
    before = snapshot(book)
    book.submit(10, BUY, 102, 10, FOK)
    assert book.drain() == [accepted(10, BUY, 102, 10, FOK), cancelled(10, 10, KILLED), done(10, 0, KILLED)]
    assert snapshot(book) == before


def test_fok_counts_only_liquidity_within_its_limit():
    book = two_sided_book()
    book.submit(10, BUY, 101, 6, FOK)  # 5 at 101, 4 more only at 102
    assert book.drain() == [accepted(10, BUY, 101, 6, FOK), cancelled(10, 6, KILLED), done(10, 0, KILLED)]


def test_fok_that_does_not_cross_is_killed():
    book = two_sided_book()
    book.submit(10, SELL, 100, 1, FOK)
    assert book.drain() == [accepted(10, SELL, 100, 1, FOK), cancelled(10, 1, KILLED), done(10, 0, KILLED)]


def test_fok_with_cancel_resting_does_not_count_its_owners_orders():
    book = new_book()
    rest(book, 1, SELL, 101, 5, owner=ALICE)
    rest(book, 2, SELL, 101, 3, owner=BOB)
    book.submit(10, BUY, 101, 4, FOK, ALICE, STP_CANCEL_RESTING)
    assert book.drain() == [
        accepted(10, BUY, 101, 4, FOK, ALICE),
        cancelled(10, 4, KILLED, ALICE),
        done(10, 0, KILLED, ALICE),
    ]
    assert book.order(1) == (SELL, 101, 5, 0, ALICE)


@pytest.mark.parametrize("stp", [STP_CANCEL_INCOMING, STP_CANCEL_BOTH])
def test_fok_blocked_by_its_owners_order_before_filling_is_killed_with_no_fills(stp):
    # Matching would stop at Alice's own ask after 5 lots; the FOK must not fill partly.
    book = new_book()
    rest(book, 1, SELL, 101, 5, owner=BOB)
    rest(book, 2, SELL, 101, 5, owner=ALICE)
    rest(book, 3, SELL, 102, 5, owner=BOB)
    before = snapshot(book)
    book.submit(10, BUY, 102, 8, FOK, ALICE, stp)
    assert book.drain() == [
        accepted(10, BUY, 102, 8, FOK, ALICE),
        cancelled(10, 8, KILLED, ALICE),
        done(10, 0, KILLED, ALICE),
    ]
    assert snapshot(book) == before


@pytest.mark.parametrize("stp", [STP_CANCEL_INCOMING, STP_CANCEL_BOTH])
def test_fok_filled_before_reaching_its_owners_order_fills(stp):
    book = new_book()
    rest(book, 1, SELL, 101, 5, owner=BOB)
    rest(book, 2, SELL, 101, 5, owner=ALICE)
    book.submit(10, BUY, 101, 5, FOK, ALICE, stp)
    assert book.drain()[-1] == done(10, 5, FILLED, ALICE)
    assert book.order(2) == (SELL, 101, 5, 0, ALICE)


# ---- post-only ----------------------------------------------------------------------------------
def test_post_only_that_would_trade_is_rejected_and_the_book_is_unchanged():
    book = two_sided_book()
    before = snapshot(book)
    book.submit(10, BUY, 101, 1, POST_ONLY)
    assert book.drain() == [Rejected(T, VENUE, SYMBOL, 10, POST_ONLY_WOULD_TRADE, 0), done(10, 0, REJECTED)]
    assert snapshot(book) == before


def test_post_only_priced_through_the_touch_is_rejected_not_slid():
    book = two_sided_book()
    book.submit(10, SELL, 90, 1, POST_ONLY)
    events = book.drain()
    assert events[0].reason == POST_ONLY_WOULD_TRADE
    assert 10 not in book


def test_post_only_that_does_not_cross_rests():
    book = two_sided_book()
    book.submit(10, SELL, 100, 3, POST_ONLY)
    assert book.drain() == [accepted(10, SELL, 100, 3, POST_ONLY)]
    assert book.best_ask() == 100 and book.order(10) == (SELL, 100, 3, 0, 0)


# ---- cancel -------------------------------------------------------------------------------------
def test_cancel_removes_a_resting_order():
    book = two_sided_book()
    book.cancel(4)
    assert book.drain() == [cancelled(4, 3, CANCELED), done(4, 0, CANCELED)]
    assert 4 not in book and book.orders_at(SELL, 101) == [(3, 2, 0)]
    assert book.state() == (4, 9, 6, 99, 101)


def test_cancel_of_a_partly_filled_order_cancels_its_open_size_and_reports_what_filled():
    book = two_sided_book()
    book.submit(10, SELL, 99, 2)
    book.drain()
    book.cancel(1)
    assert book.drain() == [cancelled(1, 3, CANCELED), done(1, 2, CANCELED)]


def test_cancel_of_the_last_order_at_the_best_price_moves_the_touch():
    book = two_sided_book()
    book.cancel(1)
    book.drain()
    assert book.best_bid() == 98 and book.depth(BUY) == [(98, 4)]
    assert book.level_size(BUY, 99) == 0 and book.orders_at(BUY, 99) == []


def test_cancel_by_its_owner_succeeds():
    book = new_book()
    rest(book, 1, BUY, 99, 5, owner=ALICE)
    book.cancel(1, owner=ALICE)
    assert book.drain() == [cancelled(1, 5, CANCELED, ALICE), done(1, 0, CANCELED, ALICE)]


# ---- amend --------------------------------------------------------------------------------------
def test_amend_size_down_keeps_queue_priority():
    book = new_book()
    rest(book, 1, SELL, 101, 5)
    rest(book, 2, SELL, 101, 3)
    rest(book, 3, SELL, 101, 4)
    book.amend(2, size=1)
    assert book.drain() == [amended(2, 101, 1, True)]
    assert book.queue_position(2) == 5
    assert book.orders_at(SELL, 101) == [(1, 5, 0), (2, 1, 0), (3, 4, 0)]
    assert book.level_size(SELL, 101) == 10 and book.total_size(SELL) == 10


def test_amended_down_order_still_fills_before_orders_behind_it():
    book = new_book()
    rest(book, 1, SELL, 101, 2)
    rest(book, 2, SELL, 101, 2)
    book.amend(1, size=1)
    book.drain()
    book.submit(10, BUY, 101, 1)
    assert book.drain()[1:3] == trade(1, 10, BUY, 101, 1, 0, 0, 1)


def test_amend_size_up_sends_the_order_to_the_back_of_its_level():
    book = new_book()
    rest(book, 1, SELL, 101, 2)
    rest(book, 2, SELL, 101, 3)
    book.amend(1, size=4)
    assert book.drain() == [amended(1, 101, 4, False)]
    assert book.queue_position(1) == 3
    assert book.orders_at(SELL, 101) == [(2, 3, 0), (1, 4, 0)]
    book.submit(10, BUY, 101, 1)
    assert book.drain()[1].order_id == 2


def test_amend_price_change_sends_the_order_to_the_back_of_its_new_level():
    book = new_book()
    rest(book, 1, BUY, 99, 2)
    rest(book, 2, BUY, 98, 3)
    book.amend(1, price=98)
    assert book.drain() == [amended(1, 98, 2, False)]
    assert book.orders_at(BUY, 98) == [(2, 3, 0), (1, 2, 0)]
    assert book.queue_position(1) == 3
    assert book.depth(BUY) == [(98, 5)]


def test_amend_price_away_and_back_loses_priority():
    book = new_book()
    rest(book, 1, BUY, 99, 2)
    rest(book, 2, BUY, 99, 3)
    book.amend(1, price=97)
    book.amend(1, price=99)
    book.drain()
    assert book.orders_at(BUY, 99) == [(2, 3, 0), (1, 2, 0)]


def test_amend_of_a_partly_filled_order_sets_its_open_size():
    book = two_sided_book()
    book.submit(10, SELL, 99, 2)
    book.drain()
    book.amend(1, size=1)
    assert book.drain() == [amended(1, 99, 1, True)]
    assert book.order(1) == (BUY, 99, 1, 2, 0)


def test_amend_to_a_crossing_price_trades_and_rests_the_remainder():
    book = two_sided_book()
    book.amend(1, price=101, size=6)
    assert book.drain() == [
        amended(1, 101, 6, False),
        *trade(3, 1, BUY, 101, 2, 0, 4, 1),
        done(3, 2, FILLED),
        *trade(4, 1, BUY, 101, 3, 0, 1, 2),
        done(4, 3, FILLED),
    ]
    assert book.order(1) == (BUY, 101, 1, 5, 0)
    assert book.state() == (3, 5, 4, 101, 102)


def test_amend_to_a_crossing_price_that_fills_completely_ends_the_order():
    book = two_sided_book()
    book.amend(2, price=101, size=2)
    assert book.drain() == [
        amended(2, 101, 2, False),
        *trade(3, 2, BUY, 101, 2, 0, 0, 1),
        done(3, 2, FILLED),
        done(2, 2, FILLED),
    ]
    assert 2 not in book


def test_amend_of_a_post_only_order_to_a_crossing_price_is_rejected():
    book = two_sided_book()
    rest(book, 10, BUY, 100, 1, order_type=POST_ONLY)
    before = snapshot(book)
    book.amend(10, price=101)
    assert book.drain() == [Rejected(T, VENUE, SYMBOL, 10, POST_ONLY_WOULD_TRADE, 0)]
    assert snapshot(book) == before


def test_amend_of_a_post_only_order_that_does_not_cross_is_accepted():
    book = two_sided_book()
    rest(book, 10, BUY, 100, 1, order_type=POST_ONLY)
    book.amend(10, price=97, size=2)
    assert book.drain() == [amended(10, 97, 2, False)]


# ---- self-trade prevention ----------------------------------------------------------------------
def stp_book() -> MatchingBook:
    """Asks at 101: Bob 2 (id 1), Alice 3 (id 2), Bob 4 (id 3)."""
    book = new_book()
    rest(book, 1, SELL, 101, 2, owner=BOB)
    rest(book, 2, SELL, 101, 3, owner=ALICE)
    rest(book, 3, SELL, 101, 4, owner=BOB)
    return book


def test_stp_cancel_resting_cancels_the_owners_resting_order_and_goes_on_matching():
    book = stp_book()
    book.submit(10, BUY, 101, 5, LIMIT, ALICE, STP_CANCEL_RESTING)
    assert book.drain() == [
        accepted(10, BUY, 101, 5, LIMIT, ALICE),
        *trade(1, 10, BUY, 101, 2, 0, 3, 1, BOB, ALICE),
        done(1, 2, FILLED, BOB),
        cancelled(2, 3, STP, ALICE),
        done(2, 0, STP, ALICE),
        *trade(3, 10, BUY, 101, 3, 1, 0, 2, BOB, ALICE),
        done(10, 5, FILLED, ALICE),
    ]
    assert book.state() == (1, 0, 1, None, 101)


def test_stp_cancel_incoming_cancels_the_incoming_order_and_keeps_the_resting_one():
    book = stp_book()
    book.submit(10, BUY, 101, 5, LIMIT, ALICE, STP_CANCEL_INCOMING)
    assert book.drain() == [
        accepted(10, BUY, 101, 5, LIMIT, ALICE),
        *trade(1, 10, BUY, 101, 2, 0, 3, 1, BOB, ALICE),
        done(1, 2, FILLED, BOB),
        cancelled(10, 3, STP, ALICE),
        done(10, 2, STP, ALICE),
    ]
    assert book.orders_at(SELL, 101) == [(2, 3, ALICE), (3, 4, BOB)]
    assert 10 not in book and book.total_size(SELL) == 7


def test_stp_cancel_both_cancels_the_resting_and_the_incoming_order():
    book = stp_book()
    book.submit(10, BUY, 101, 5, LIMIT, ALICE, STP_CANCEL_BOTH)
    assert book.drain() == [
        accepted(10, BUY, 101, 5, LIMIT, ALICE),
        *trade(1, 10, BUY, 101, 2, 0, 3, 1, BOB, ALICE),
        done(1, 2, FILLED, BOB),
        cancelled(2, 3, STP, ALICE),
        done(2, 0, STP, ALICE),
        cancelled(10, 3, STP, ALICE),
        done(10, 2, STP, ALICE),
    ]
    assert book.orders_at(SELL, 101) == [(3, 4, BOB)]
    assert book.state() == (1, 0, 4, None, 101)


@pytest.mark.parametrize("stp", [STP_CANCEL_RESTING, STP_CANCEL_INCOMING, STP_CANCEL_BOTH])
def test_stp_does_not_apply_between_different_owners(stp):
    book = stp_book()
    book.submit(10, BUY, 101, 9, LIMIT, CAROL, stp)
    events = book.drain()
    assert [e.order_id for e in events if isinstance(e, Fill) and e.is_maker] == [1, 2, 3]
    assert events[-1] == done(10, 9, FILLED, CAROL)


def test_stp_none_lets_an_owner_trade_with_itself():
    book = stp_book()
    book.submit(10, BUY, 101, 5, LIMIT, ALICE, STP_NONE)
    events = book.drain()
    assert [(e.order_id, e.size) for e in events if isinstance(e, Fill) and e.is_maker] == [(1, 2), (2, 3)]


def test_stp_applies_to_an_amend_that_crosses():
    book = stp_book()
    book.submit(10, BUY, 100, 5, LIMIT, ALICE, STP_CANCEL_INCOMING)
    book.drain()
    book.amend(10, price=101)
    assert book.drain() == [
        amended(10, 101, 5, False, ALICE),
        *trade(1, 10, BUY, 101, 2, 0, 3, 1, BOB, ALICE),
        done(1, 2, FILLED, BOB),
        cancelled(10, 3, STP, ALICE),
        done(10, 2, STP, ALICE),
    ]
    assert 10 not in book and book.best_bid() is None


def test_stp_cancel_resting_on_a_market_order():
    book = stp_book()
    book.submit(10, BUY, 0, 20, MARKET, ALICE, STP_CANCEL_RESTING)
    events = book.drain()
    assert cancelled(2, 3, STP, ALICE) in events
    assert events[-2:] == [cancelled(10, 14, EXPIRED, ALICE), done(10, 6, EXPIRED, ALICE)]
    assert book.state() == (0, 0, 0, None, None)


# ---- queue position -----------------------------------------------------------------------------
def test_queue_position_is_the_lots_ahead_at_the_level():
    book = stp_book()
    assert [book.queue_position(i) for i in (1, 2, 3)] == [0, 2, 5]


def test_queue_position_shrinks_as_orders_ahead_fill_or_cancel():
    book = stp_book()
    book.submit(10, BUY, 101, 1)
    book.cancel(2)
    book.drain()
    assert book.queue_position(3) == 1


def test_queue_position_of_an_order_not_on_the_book_is_none():
    book = stp_book()
    assert book.queue_position(99) is None
    book.cancel(1)
    assert book.queue_position(1) is None


# ---- fees ---------------------------------------------------------------------------------------
def test_fill_fee_is_price_times_size_times_rate_for_maker_and_taker():
    book = new_book(maker_fee_ppm=-25, taker_fee_ppm=75)
    rest(book, 1, SELL, 101, 2)
    rest(book, 2, SELL, 103, 5)
    book.submit(10, BUY, 103, 4)
    fills = [e for e in book.drain() if isinstance(e, Fill)]
    assert [(f.order_id, f.price, f.size, f.fee) for f in fills] == [
        (1, 101, 2, 101 * 2 * -25),
        (10, 101, 2, 101 * 2 * 75),
        (2, 103, 2, 103 * 2 * -25),
        (10, 103, 2, 103 * 2 * 75),
    ]


def test_fees_are_exact_integers_at_large_prices_and_sizes():
    book = new_book(maker_fee_ppm=1, taker_fee_ppm=999_999)
    rest(book, 1, SELL, 10**15, 10**15)
    book.submit(10, BUY, 10**15, 10**15)
    fills = [e for e in book.drain() if isinstance(e, Fill)]
    assert [f.fee for f in fills] == [10**30, 10**30 * 999_999]


# ---- event order --------------------------------------------------------------------------------
def test_maker_and_taker_fills_of_one_trade_share_the_trade_id_and_ids_increase():
    book = two_sided_book()
    book.submit(10, BUY, 102, 9)
    book.submit(11, SELL, 98, 9)
    fills = [e for e in book.drain() if isinstance(e, Fill)]
    pairs = list(zip(fills[::2], fills[1::2], strict=False))
    assert all(m.is_maker and not t.is_maker for m, t in pairs)
    assert all((m.trade_id, m.price, m.size) == (t.trade_id, t.price, t.size) for m, t in pairs)
    assert [m.trade_id for m, _ in pairs] == list(range(1, len(pairs) + 1))


def test_events_carry_the_venue_symbol_and_the_time_set_before_the_call():
    book = new_book()
    book.now = 42
    book.submit(1, BUY, 99, 1)
    assert book.drain() == [Accepted(42, VENUE, SYMBOL, 1, BUY, 99, 1, LIMIT, 0)]


def test_drain_hands_each_event_out_once():
    book = new_book()
    book.submit(1, BUY, 99, 1)
    assert len(book.drain()) == 1
    assert book.drain() == []


def test_finished_order_ids_may_be_reused():
    book = two_sided_book()
    book.cancel(1)
    book.drain()
    book.submit(1, SELL, 105, 1)
    assert book.drain() == [accepted(1, SELL, 105, 1)]


# ---- bad input: a Rejected event and the book exactly as it was ---------------------------------
BAD_SUBMITS = [
    # (what, side, price, size, order_type, stp, the value the reason must name)
    ("zero size", BUY, 99, 0, LIMIT, STP_NONE, 0),
    ("negative size", BUY, 99, -3, LIMIT, STP_NONE, -3),
    ("float size", BUY, 99, 1.5, LIMIT, STP_NONE, 1.5),
    ("float size with whole value", BUY, 99, 2.0, LIMIT, STP_NONE, 2.0),
    ("boolean size", BUY, 99, True, LIMIT, STP_NONE, True),
    ("string size", BUY, 99, "5", LIMIT, STP_NONE, "5"),
    ("huge size", BUY, 99, 10**15 + 1, LIMIT, STP_NONE, 10**15 + 1),
    ("huge size of a market order", BUY, 0, 10**18, MARKET, STP_NONE, 10**18),
    ("side 2", 2, 99, 1, LIMIT, STP_NONE, 2),
    ("side -1", -1, 99, 1, LIMIT, STP_NONE, -1),
    ("side as a word", "buy", 99, 1, LIMIT, STP_NONE, "buy"),
    ("side None", None, 99, 1, LIMIT, STP_NONE, None),
    ("boolean side", True, 99, 1, LIMIT, STP_NONE, True),
    ("float side", 1.0, 99, 1, LIMIT, STP_NONE, 1.0),
    ("price 0", BUY, 0, 1, LIMIT, STP_NONE, 0),
    ("negative price", SELL, -101, 1, LIMIT, STP_NONE, -101),
    ("off-grid float price", BUY, 99.5, 1, LIMIT, STP_NONE, 99.5),
    ("float price with whole value", BUY, 99.0, 1, LIMIT, STP_NONE, 99.0),
    ("string price", BUY, "99", 1, LIMIT, STP_NONE, "99"),
    ("boolean price", BUY, True, 1, LIMIT, STP_NONE, True),
    ("huge price", SELL, 10**15 + 1, 1, LIMIT, STP_NONE, 10**15 + 1),
    ("price 0 on an IOC", BUY, 0, 1, IOC, STP_NONE, 0),
    ("order type 5", BUY, 99, 1, 5, STP_NONE, 5),
    ("order type -1", BUY, 99, 1, -1, STP_NONE, -1),
    ("order type as a word", BUY, 99, 1, "limit", STP_NONE, "limit"),
    ("fractional order type", BUY, 99, 1, 2.5, STP_NONE, 2.5),
    ("boolean order type", BUY, 99, 1, True, STP_NONE, True),
    ("order type None", BUY, 99, 1, None, STP_NONE, None),
    ("stp mode 4", BUY, 99, 1, LIMIT, 4, 4),
    ("stp mode as a word", BUY, 99, 1, LIMIT, "cancel_both", "cancel_both"),
    ("stp mode None", BUY, 99, 1, LIMIT, None, None),
    ("fractional stp mode", BUY, 99, 1, LIMIT, 1.5, 1.5),
]


@pytest.mark.parametrize(
    "what,side,price,size,order_type,stp,named", BAD_SUBMITS, ids=[b[0] for b in BAD_SUBMITS]
)
def test_bad_new_order_is_rejected_with_done_and_leaves_the_book_as_it_was(
    what, side, price, size, order_type, stp, named
):
    book = two_sided_book()
    before = snapshot(book)
    book.submit(10, side, price, size, order_type, ALICE, stp)
    events = book.drain()
    assert [type(e) for e in events] == [Rejected, Done], events
    assert events[0].order_id == 10 and events[0].owner == ALICE
    assert repr(named) in events[0].reason
    assert events[1] == done(10, 0, REJECTED, ALICE)
    assert snapshot(book) == before


def test_new_order_with_the_id_of_a_live_order_is_rejected_and_the_live_order_is_untouched():
    book = two_sided_book()
    before = snapshot(book)
    book.submit(3, BUY, 101, 1)
    events = book.drain()
    assert [type(e) for e in events] == [Rejected, Done]
    assert "duplicate" in events[0].reason and "3" in events[0].reason
    assert snapshot(book) == before


def test_cancel_of_an_unknown_id_is_rejected_without_done():
    book = two_sided_book()
    before = snapshot(book)
    book.cancel(77, owner=ALICE)
    assert book.drain() == [Rejected(T, VENUE, SYMBOL, 77, "unknown order id 77", ALICE)]
    assert snapshot(book) == before


def test_cancel_of_a_finished_order_is_rejected():
    book = two_sided_book()
    book.cancel(1)
    book.drain()
    book.cancel(1)
    assert [type(e) for e in book.drain()] == [Rejected]


def test_cancel_by_another_owner_is_rejected_and_the_order_lives_on():
    book = new_book()
    rest(book, 1, BUY, 99, 5, owner=ALICE)
    before = snapshot(book)
    book.cancel(1, owner=BOB)
    events = book.drain()
    assert [type(e) for e in events] == [Rejected]
    assert events[0].owner == BOB and "another owner" in events[0].reason
    assert snapshot(book) == before


def test_amend_of_an_unknown_id_is_rejected_without_done():
    book = two_sided_book()
    before = snapshot(book)
    book.amend(77, size=1)
    events = book.drain()
    assert [type(e) for e in events] == [Rejected] and "77" in events[0].reason
    assert snapshot(book) == before


def test_amend_by_another_owner_is_rejected_to_the_requester_and_the_order_lives_on():
    book = new_book()
    rest(book, 1, BUY, 99, 5, owner=ALICE)
    before = snapshot(book)
    book.amend(1, price=98, owner=BOB)
    events = book.drain()
    assert [type(e) for e in events] == [Rejected]
    # The refusal answers Bob's request; Alice's order was not touched and she asked for nothing.
    assert events[0].owner == BOB and "another owner" in events[0].reason
    assert snapshot(book) == before


@pytest.mark.parametrize(
    "price,size",
    [
        (None, 0),
        (None, -1),
        (None, 1.5),
        (None, True),
        (None, "2"),
        (None, 10**15 + 1),
        (0, None),
        (-99, None),
        (98.5, None),
        ("98", None),
        (True, None),
        (10**15 + 1, None),
        (98, 0),
    ],
)
def test_amend_with_a_bad_price_or_size_is_rejected_and_the_order_lives_on(price, size):
    book = two_sided_book()
    before = snapshot(book)
    book.amend(1, price=price, size=size)
    events = book.drain()
    assert [type(e) for e in events] == [Rejected]
    assert snapshot(book) == before


# ---- ids, owners and sides that only look like ints ---------------------------------------------
# 1.0, True and numpy.int64(1) compare and hash like 1: a dict lookup alone found order 1 for them and
# let them into events the recorder stores typed. The book answers them like any garbage.
ID_LOOKALIKES = [1.0, True, np.int64(1), np.float64(1), Decimal(1)]


def _all_event_ints_are_ints(events) -> bool:
    int_fields = ("ts", "order_id", "side", "price", "size", "leaves", "fee", "trade_id", "owner", "filled")
    return all(type(getattr(e, f)) is int for e in events for f in int_fields if hasattr(e, f))


@pytest.mark.parametrize("order_id", ID_LOOKALIKES + ["1", None], ids=repr)
def test_a_new_order_whose_id_is_not_an_int_is_rejected_to_id_minus_one_naming_the_id(order_id):
    book = new_book()
    book.submit(order_id, BUY, 99, 1, LIMIT, ALICE)
    events = book.drain()
    assert [type(e) for e in events] == [Rejected, Done]
    assert events[0].order_id == -1 and events[0].owner == ALICE and repr(order_id) in events[0].reason
    assert _all_event_ints_are_ints(events) and len(book) == 0


@pytest.mark.parametrize("owner", [1.0, True, np.int64(1), "alice", None], ids=repr)
def test_a_new_order_whose_owner_is_not_an_int_is_rejected_naming_the_owner(owner):
    book = new_book()
    book.submit(10, BUY, 99, 1, LIMIT, owner)
    events = book.drain()
    assert [type(e) for e in events] == [Rejected, Done]
    assert events[0].order_id == 10 and events[0].owner == -1 and repr(owner) in events[0].reason
    assert _all_event_ints_are_ints(events) and len(book) == 0


@pytest.mark.parametrize("order_id", ID_LOOKALIKES, ids=repr)
def test_cancel_by_an_id_that_only_looks_like_the_live_one_is_rejected_and_the_order_lives_on(order_id):
    book = new_book()
    rest(book, 1, BUY, 99, 5, owner=ALICE)
    before = snapshot(book)
    book.cancel(order_id, owner=ALICE)
    events = book.drain()
    assert [type(e) for e in events] == [Rejected] and "must be an int" in events[0].reason
    assert _all_event_ints_are_ints(events) and snapshot(book) == before


@pytest.mark.parametrize("owner", [1.0, True, np.int64(1)], ids=repr)
def test_cancel_by_an_owner_that_only_looks_like_the_owner_is_rejected_and_the_order_lives_on(owner):
    book = new_book()
    rest(book, 1, BUY, 99, 5, owner=ALICE)
    before = snapshot(book)
    book.cancel(1, owner=owner)
    events = book.drain()
    assert [type(e) for e in events] == [Rejected] and "must be an int" in events[0].reason
    assert _all_event_ints_are_ints(events) and snapshot(book) == before


@pytest.mark.parametrize("order_id", ID_LOOKALIKES, ids=repr)
def test_amend_by_an_id_that_only_looks_like_the_live_one_is_rejected_and_the_order_lives_on(order_id):
    book = new_book()
    rest(book, 1, BUY, 99, 5, owner=ALICE)
    before = snapshot(book)
    book.amend(order_id, size=2, owner=ALICE)
    book.amend(1, size=2, owner=order_id)  # the same look-alike as an owner
    events = book.drain()
    assert [type(e) for e in events] == [Rejected, Rejected]
    assert all("must be an int" in e.reason for e in events)
    assert _all_event_ints_are_ints(events) and snapshot(book) == before


@pytest.mark.parametrize("side", [True, False, 1.0, np.int64(0), 2, -1, None], ids=repr)
def test_reading_a_side_that_is_not_the_int_buy_or_sell_raises(side):
    book = two_sided_book()
    for read in (
        lambda: book.depth(side, 5),
        lambda: book.level_size(side, 99),
        lambda: book.total_size(side),
        lambda: book.orders_at(side, 99),
    ):
        with pytest.raises(MatchingBookError):
            read()


@pytest.mark.parametrize("fee", [1.5, 10.0, True, np.int64(10), "10"], ids=repr)
def test_a_book_refuses_fee_rates_that_are_not_ints(fee):
    with pytest.raises(MatchingBookError, match="fee"):
        MatchingBook(VENUE, SYMBOL, maker_fee_ppm=fee)
    with pytest.raises(MatchingBookError, match="fee"):
        MatchingBook(VENUE, SYMBOL, taker_fee_ppm=fee)


any_number = st.one_of(
    st.integers(-2, 120),
    st.sampled_from(
        [True, False, 1.0, 99.0, 99.5, np.int64(1), np.int64(99), np.float64(1), Decimal(99), None, "1"]
    ),
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["submit", "cancel", "amend"]), st.lists(any_number, min_size=7, max_size=7)
        ),
        max_size=25,
    )
)
def test_whatever_numbers_requests_carry_every_event_field_is_an_int_and_nothing_raises(requests):
    book = two_sided_book()
    for verb, (a, b, c, d, e, f, g) in requests:
        if verb == "submit":
            book.submit(a, b, c, d, e % 5 if type(e) is int else e, f, g % 4 if type(g) is int else g)
        elif verb == "cancel":
            book.cancel(a, b)
        else:
            book.amend(a, c, d, b)
    events = book.drain()
    assert _all_event_ints_are_ints(events), [e for e in events if not _all_event_ints_are_ints([e])]
    for oid, side, price, leaves, owner in book.resting_orders():
        assert type(oid) is type(side) is type(price) is type(leaves) is type(owner) is int


# ---- the reference book for the property tests --------------------------------------------------
@dataclass
class RefOrder:
    oid: int
    side: int
    price: int
    leaves: int
    owner: int
    stp: int
    order_type: int
    filled: int = 0


class ReferenceBook:
    """The rules, written as plainly as possible: one list of resting orders in time order.

    Time priority is the position in `resting` (an order that loses priority is appended again);
    price priority is a stable sort of that list. Every scan is linear.
    """

    def __init__(self, maker_fee_ppm: int, taker_fee_ppm: int) -> None:
        self.maker_fee_ppm = maker_fee_ppm
        self.taker_fee_ppm = taker_fee_ppm
        self.resting: list[RefOrder] = []
        self.trade_id = 0
        self.now = 0
        self.events: list = []

    # queries
    def find(self, oid: int) -> RefOrder | None:
        return next((o for o in self.resting if o.oid == oid), None)

    def side_in_priority(self, side: int) -> list[RefOrder]:
        """Resting orders of `side`, best price first, then in time order."""
        same = [o for o in self.resting if o.side == side]
        return sorted(same, key=lambda o: -o.price if side == BUY else o.price)

    def tradeable_against(self, taker_side: int, limit: int | None) -> list[RefOrder]:
        """The opposite orders an incoming order could trade with, in the order it meets them."""
        return [
            o
            for o in self.side_in_priority(1 - taker_side)
            if limit is None or (o.price <= limit if taker_side == BUY else o.price >= limit)
        ]

    def depth(self, side: int) -> list[tuple[int, int]]:
        levels: dict[int, int] = {}
        for o in self.side_in_priority(side):
            levels[o.price] = levels.get(o.price, 0) + o.leaves
        return list(levels.items())

    def state(self) -> tuple:
        bids, asks = self.depth(BUY), self.depth(SELL)
        return (
            len(self.resting),
            sum(s for _, s in bids),
            sum(s for _, s in asks),
            bids[0][0] if bids else None,
            asks[0][0] if asks else None,
        )

    def order(self, oid: int):
        o = self.find(oid)
        return None if o is None else (o.side, o.price, o.leaves, o.filled, o.owner)

    def queue_position(self, oid: int) -> int | None:
        o = self.find(oid)
        if o is None:
            return None
        ahead = [r for r in self.resting[: self.resting.index(o)] if r.side == o.side and r.price == o.price]
        return sum(r.leaves for r in ahead)

    # requests
    def _emit(self, cls, *fields) -> None:
        self.events.append(cls(self.now, VENUE, SYMBOL, *fields))

    def _end(self, o: RefOrder, reason: str) -> None:
        self._emit(Cancelled, o.oid, o.leaves, reason, o.owner)
        self._emit(Done, o.oid, o.filled, reason, o.owner)

    def _match(self, taker: RefOrder, queue: list[RefOrder]) -> bool:
        """Trade `taker` down `queue`; False if self-trade prevention ended the taker."""
        for maker in queue:
            if taker.leaves == 0:
                break
            if taker.stp != STP_NONE and maker.owner == taker.owner:
                if taker.stp in (STP_CANCEL_RESTING, STP_CANCEL_BOTH):
                    self.resting.remove(maker)
                    self._end(maker, STP)
                if taker.stp in (STP_CANCEL_INCOMING, STP_CANCEL_BOTH):
                    self._end(taker, STP)
                    return False
                continue
            size = min(taker.leaves, maker.leaves)
            taker.leaves -= size
            maker.leaves -= size
            taker.filled += size
            maker.filled += size
            self.trade_id += 1
            self._emit(
                Fill,
                maker.oid,
                maker.side,
                maker.price,
                size,
                maker.leaves,
                True,
                maker.price * size * self.maker_fee_ppm,
                self.trade_id,
                maker.owner,
            )
            self._emit(
                Fill,
                taker.oid,
                taker.side,
                maker.price,
                size,
                taker.leaves,
                False,
                maker.price * size * self.taker_fee_ppm,
                self.trade_id,
                taker.owner,
            )
            if maker.leaves == 0:
                self.resting.remove(maker)
                self._emit(Done, maker.oid, maker.filled, FILLED, maker.owner)
        return True

    def submit(self, oid, side, price, size, order_type, owner, stp) -> None:
        if order_type == MARKET:
            price = 0
        if self.find(oid) is not None:
            self._emit(Rejected, oid, "refused", owner)
            self._emit(Done, oid, 0, REJECTED, owner)
            return
        queue = self.tradeable_against(side, None if order_type == MARKET else price)
        if order_type == POST_ONLY and queue:
            self._emit(Rejected, oid, POST_ONLY_WOULD_TRADE, owner)
            self._emit(Done, oid, 0, REJECTED, owner)
            return
        self._emit(Accepted, oid, side, price, size, order_type, owner)
        taker = RefOrder(oid, side, price, size, owner, stp, order_type)
        if order_type == FOK:
            fillable = 0
            for maker in queue:
                if stp != STP_NONE and maker.owner == owner:
                    if stp == STP_CANCEL_RESTING:
                        continue
                    break
                fillable += maker.leaves
            if fillable < size:
                self._end(taker, KILLED)
                return
        if not self._match(taker, queue):
            return
        if taker.leaves == 0:
            self._emit(Done, oid, taker.filled, FILLED, owner)
        elif order_type in (LIMIT, POST_ONLY):
            self.resting.append(taker)
        else:
            self._end(taker, EXPIRED)

    def cancel(self, oid, owner) -> None:
        o = self.find(oid)
        if o is None or (owner is not None and o.owner != owner):
            self._emit(Rejected, oid, "refused", -1 if owner is None else owner)
            return
        self.resting.remove(o)
        self._end(o, CANCELED)

    def amend(self, oid, price, size, owner) -> None:
        o = self.find(oid)
        if o is None or (owner is not None and o.owner != owner):
            self._emit(Rejected, oid, "refused", -1 if owner is None else owner)
            return
        new_price = o.price if price is None else price
        new_size = o.leaves if size is None else size
        queue = self.tradeable_against(o.side, new_price)
        if queue and o.order_type == POST_ONLY:
            self._emit(Rejected, oid, POST_ONLY_WOULD_TRADE, o.owner if owner is None else owner)
            return
        if new_price == o.price and new_size <= o.leaves:
            o.leaves = new_size
            self._emit(Amended, oid, o.price, o.leaves, True, o.owner)
            return
        self.resting.remove(o)
        o.price, o.leaves = new_price, new_size
        self._emit(Amended, oid, o.price, o.leaves, False, o.owner)
        if not self._match(o, queue):
            return
        if o.leaves == 0:
            self._emit(Done, oid, o.filled, FILLED, o.owner)
        else:
            self.resting.append(o)


def comparable(events: list) -> list:
    """Events as tuples; a refusal's wording is the book's business, only post-only's reason is a rule."""
    out = []
    for e in events:
        t = (type(e).__name__, *(getattr(e, f) for f in e.__struct_fields__))
        if isinstance(e, Rejected) and e.reason != POST_ONLY_WOULD_TRADE:
            t = (*t[:5], "refused", t[6])
        out.append(t)
    return out


# ---- an independent check of every event stream: lifecycle and conservation -------------------
class Ledger:
    """Follows each order through the book's events and checks the lifecycle and quantities."""

    def __init__(self) -> None:
        self.open: dict[int, int] = {}  # live order id -> open size by the events
        self.filled: dict[int, int] = {}
        self.last_trade_id = 0

    def feed(self, events: list, book: MatchingBook) -> None:
        i = 0
        while i < len(events):
            e = events[i]
            if isinstance(e, Rejected):
                nxt = events[i + 1] if i + 1 < len(events) else None
                if isinstance(nxt, Done) and nxt.order_id == e.order_id:
                    # A refused new order: Rejected then Done(0, rejected), whether or not the id is live.
                    assert events[i + 1].filled == 0 and events[i + 1].reason == REJECTED
                    i += 2
                    continue
                i += 1  # a refused cancel or amend: the order (if any) lives on
                continue
            oid = e.order_id
            if isinstance(e, Accepted):
                assert oid not in self.open, f"Accepted for live order {oid}"
                self.open[oid] = e.size
                self.filled[oid] = 0
            else:
                assert oid in self.open, f"{type(e).__name__} for order {oid} that is not live: {e}"
                if isinstance(e, Fill):
                    self.open[oid] -= e.size
                    self.filled[oid] += e.size
                    assert e.size > 0 and e.leaves == self.open[oid] >= 0
                elif isinstance(e, Amended):
                    assert e.size > 0
                    self.open[oid] = e.size
                elif isinstance(e, Cancelled):
                    assert e.size == self.open[oid] > 0, "Cancelled removes exactly the open size"
                    self.open[oid] = 0
                    nxt = events[i + 1]
                    assert isinstance(nxt, Done) and nxt.order_id == oid and nxt.reason == e.reason
                elif isinstance(e, Done):
                    assert self.open[oid] == 0, f"Done for order {oid} with {self.open[oid]} open"
                    assert e.filled == self.filled[oid]
                    del self.open[oid]
            i += 1
        fills = [e for e in events if isinstance(e, Fill)]
        for maker, taker in zip(fills[::2], fills[1::2], strict=False):
            assert maker.is_maker and not taker.is_maker
            assert maker.trade_id == taker.trade_id == self.last_trade_id + 1
            assert (maker.price, maker.size) == (taker.price, taker.size)
            assert maker.side == 1 - taker.side
            self.last_trade_id = maker.trade_id
        # The book holds exactly the live orders, each with the open size its events say.
        assert {oid for oid, *_ in book.resting_orders()} == set(self.open)
        for oid, size in self.open.items():
            assert book.order(oid)[2] == size and book.order(oid)[3] == self.filled[oid]


# ---- the property test ---------------------------------------------------------------------------
ORDER_IDS = st.integers(1, 24)  # small, so that ids are often live (duplicates), finished (reused), unknown
OWNERS = st.sampled_from([ALICE, BOB, CAROL])
PRICES = st.integers(95, 105)
SIZES = st.integers(1, 6)


class BookMatchesReference(RuleBasedStateMachine):
    """Random submits, cancels and amends; after each, the book equals the reference and holds its rules."""

    @initialize(maker=st.integers(-30, 30), taker=st.integers(0, 80))
    def start(self, maker, taker):
        self.book = MatchingBook(VENUE, SYMBOL, maker_fee_ppm=maker, taker_fee_ppm=taker, track_levels=True)
        self.ref = ReferenceBook(maker, taker)
        self.ledger = Ledger()
        self.step = 0

    def _before(self):
        self.step += 1
        self.book.now = self.ref.now = self.step
        self.depth_before = {s: dict(self.book.depth(s)) for s in (BUY, SELL)}

    def _check(self, taker_side: int | None = None, limit: int | None = None):
        book, ref = self.book, self.ref
        events = book.drain()
        expected, ref.events = ref.events, []
        assert comparable(events) == comparable(expected)
        self.ledger.feed(events, book)
        # the whole observable book
        assert book.state() == ref.state()
        assert book.depth(BUY) == ref.depth(BUY) and book.depth(SELL) == ref.depth(SELL)
        for o in ref.resting:
            assert book.order(o.oid) == ref.order(o.oid)
            assert book.queue_position(o.oid) == ref.queue_position(o.oid)
        # never crossed at rest
        bid, ask = book.best_bid(), book.best_ask()
        assert bid is None or ask is None or bid < ask
        # totals agree three ways
        for side in (BUY, SELL):
            by_orders = sum(size for _, s, _, size, _ in book.resting_orders() if s == side)
            assert book.total_size(side) == sum(size for _, size in book.depth(side)) == by_orders
            assert all(size > 0 for _, size in book.depth(side))
        # each taker meets prices best first and never beyond its limit
        if taker_side is not None:
            prices = [e.price for e in events if isinstance(e, Fill) and not e.is_maker]
            assert prices == sorted(prices, reverse=taker_side == SELL)
            if limit is not None and prices:
                assert (max(prices) <= limit) if taker_side == BUY else (min(prices) >= limit)
        # every level whose size changed was reported in `touched`
        touched = set(book.touched)
        book.touched.clear()
        for side in (BUY, SELL):
            after = dict(book.depth(side))
            for px in set(after) | set(self.depth_before[side]):
                if after.get(px) != self.depth_before[side].get(px):
                    assert (side, px) in touched

    @rule(
        oid=ORDER_IDS,
        side=st.sampled_from([BUY, SELL]),
        price=PRICES,
        size=SIZES,
        order_type=st.sampled_from([LIMIT, LIMIT, MARKET, IOC, FOK, POST_ONLY]),
        owner=OWNERS,
        stp=st.sampled_from([STP_NONE, STP_CANCEL_RESTING, STP_CANCEL_INCOMING, STP_CANCEL_BOTH]),
    )
    def submit(self, oid, side, price, size, order_type, owner, stp):
        self._before()
        self.book.submit(oid, side, price, size, order_type, owner, stp)
        self.ref.submit(oid, side, price, size, order_type, owner, stp)
        self._check(side, None if order_type == MARKET else price)

    @rule(oid=ORDER_IDS, owner=st.one_of(st.none(), OWNERS))
    def cancel(self, oid, owner):
        self._before()
        self.book.cancel(oid, owner)
        self.ref.cancel(oid, owner)
        self._check()

    @rule(
        oid=ORDER_IDS,
        price=st.one_of(st.none(), PRICES),
        size=st.one_of(st.none(), SIZES),
        owner=st.one_of(st.none(), OWNERS),
    )
    def amend(self, oid, price, size, owner):
        self._before()
        o = self.book.order(oid)
        side = None if o is None else o[0]
        pos_before = self.book.queue_position(oid)
        self.book.amend(oid, price, size, owner)
        self.ref.amend(oid, price, size, owner)
        events = self.book.events
        if events and isinstance(events[0], Amended):
            kept = events[0].kept_priority
            assert kept == (events[0].price == o[1] and events[0].size <= o[2])
            if kept:
                assert self.book.queue_position(oid) == pos_before
        self._check(side, price)


TestBookMatchesReference = BookMatchesReference.TestCase
TestBookMatchesReference.settings = settings(max_examples=250, stateful_step_count=40, deadline=None)

"""L2Book: a venue's L2 book kept exactly, sequenced, and never corrupted by bad input."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from lobterm.engine.events import BUY, SELL, BookDelta, BookGap, BookSnapshot
from lobterm.engine.l2book import L2Book, L2BookError

V, S = "sim", "BTC/USDT"


def snap(seq: int, bids=(), asks=(), ts: int = 0) -> BookSnapshot:
    return BookSnapshot(ts, V, S, seq, tuple(bids), tuple(asks))


def delta(seq: int, side: int, price: int, size: int, ts: int = 0) -> BookDelta:
    return BookDelta(ts, V, S, seq, side, price, size)


@pytest.fixture
def book() -> L2Book:
    b = L2Book(V, S)
    b.apply_snapshot(snap(10, bids=[(100, 5), (99, 7)], asks=[(101, 3), (103, 4)]))
    return b


def state(b: L2Book) -> tuple:
    return (
        dict(b.bids),
        dict(b.asks),
        b.best_bid(),
        b.best_ask(),
        b.depth(BUY, 100),
        b.depth(SELL, 100),
        b.seq,
        b.valid,
    )


# ---- reading ---------------------------------------------------------------------------------
def test_a_new_book_is_empty_and_invalid_until_a_snapshot():
    b = L2Book(V, S)
    assert b.best_bid() is None and b.best_ask() is None
    assert not b.valid
    assert b.depth(BUY, 5) == [] and not b.is_crossed()


def test_snapshot_sets_levels_seq_and_validity(book):
    assert book.best_bid() == (100, 5)
    assert book.best_ask() == (101, 3)
    assert book.seq == 10 and book.valid


def test_depth_lists_best_first_on_both_sides(book):
    assert book.depth(BUY, 5) == [(100, 5), (99, 7)]
    assert book.depth(SELL, 1) == [(101, 3)]
    assert book.depth(SELL, 0) == []


def test_snapshot_order_of_levels_is_not_trusted():
    b = L2Book(V, S)
    b.apply_snapshot(snap(1, bids=[(98, 1), (100, 2), (99, 3)], asks=[(105, 1), (102, 2)]))
    assert b.depth(BUY, 3) == [(100, 2), (99, 3), (98, 1)]
    assert b.depth(SELL, 3) == [(102, 2), (105, 1)]


def test_snapshot_skips_zero_size_levels():
    b = L2Book(V, S)
    b.apply_snapshot(snap(1, bids=[(100, 0), (99, 3)]))
    assert b.best_bid() == (99, 3) and b.level_count(BUY) == 1


def test_level_size_is_zero_where_there_is_no_level(book):
    assert book.level_size(BUY, 99) == 7
    assert book.level_size(BUY, 50) == 0


def test_levels_between_returns_the_window_in_ascending_price(book):
    assert book.levels_between(BUY, 99, 150) == [(99, 7), (100, 5)]
    assert book.levels_between(SELL, 100, 102) == [(101, 3)]
    assert book.levels_between(SELL, 102, 200) == [(103, 4)]


def test_to_snapshot_round_trips(book):
    copy = L2Book(V, S)
    copy.apply_snapshot(book.to_snapshot(ts=5))
    assert state(copy) == state(book)


def test_crossed_when_best_bid_reaches_best_ask(book):
    assert not book.is_crossed()
    book.apply_level(BUY, 101, 1)
    assert book.is_crossed()


# ---- apply_level ---------------------------------------------------------------------------
def test_apply_level_adds_updates_and_removes_levels(book):
    book.apply_level(BUY, 100, 9)
    assert book.best_bid() == (100, 9)
    book.apply_level(SELL, 102, 2)
    assert book.depth(SELL, 3) == [(101, 3), (102, 2), (103, 4)]
    book.apply_level(BUY, 100, 0)
    assert book.best_bid() == (99, 7)


def test_removing_a_missing_level_changes_nothing(book):
    before, version = state(book), book.version
    book.apply_level(BUY, 42, 0)
    assert state(book) == before and book.version == version


def test_every_change_increments_the_version(book):
    v = book.version
    book.apply_level(BUY, 100, 1)
    book.apply_level(SELL, 101, 0)
    assert book.version == v + 2


@pytest.mark.parametrize(
    "side, price, size",
    [
        (2, 100, 1),
        (-1, 100, 1),
        (None, 100, 1),
        (BUY, 0, 1),
        (BUY, -5, 1),
        (BUY, 100.0, 1),
        (BUY, "100", 1),
        (BUY, 10**16, 1),
        (SELL, 100, -1),
        (SELL, 100, 1.5),
        (SELL, 100, None),
        (SELL, 100, 10**16),
        (SELL, 100, True),
    ],
)
def test_apply_level_rejects_garbage_and_leaves_the_book_unchanged(book, side, price, size):
    before, version = state(book), book.version
    with pytest.raises(L2BookError):
        book.apply_level(side, price, size)
    assert state(book) == before and book.version == version


def test_l2bookerror_names_the_field_and_the_rule(book):
    with pytest.raises(L2BookError) as e:
        book.apply_level(BUY, 100, -3)
    assert e.value.what == "size" and e.value.value == -3 and "0.." in e.value.rule
    assert isinstance(e.value, ValueError)


# ---- numbers that only look like ints ------------------------------------------------------
# True, 1.0 and numpy.int64(1) compare and hash like 1, so a dict lookup alone lets them in (a side of
# 1.0 used to land on the asks). The book refuses them: conversion is the venue's job, at the edge.
SIDES = st.sampled_from([BUY, SELL])
LOOKALIKES = [True, False, 1.0, 0.0, np.int64(1), np.int32(0), np.float64(1), Decimal(1), Decimal("NaN")]


def lookalike_of(n: int):
    """Values equal to the int `n` that are not Python ints."""
    return st.sampled_from(
        [float(n), np.int64(n), np.int32(n) if n < 2**31 else np.int64(n), np.float64(n), Decimal(n)]
        + ([bool(n)] if n in (0, 1) else [])
    )


@pytest.mark.parametrize("side", [1.0, True, np.int64(1), np.float64(0), False, Decimal(1), "1"], ids=repr)
def test_a_side_that_only_looks_like_an_int_is_refused_and_changes_nothing(book, side):
    before, version = state(book), book.version
    with pytest.raises(L2BookError) as e:
        book.apply_level(side, 100, 5)
    assert e.value.what == "side"
    assert state(book) == before and book.version == version


@settings(max_examples=200, deadline=None)
@given(
    field=st.sampled_from(["side", "price", "size"]),
    side=SIDES,
    price=st.integers(1, 200),
    size=st.integers(0, 50),
    data=st.data(),
)
def test_any_non_int_side_price_or_size_is_refused_and_changes_nothing(field, side, price, size, data):
    b = L2Book(V, S)
    b.apply_snapshot(snap(10, bids=[(100, 5), (99, 7)], asks=[(101, 3), (103, 4)]))
    args = {"side": side, "price": price, "size": size}
    args[field] = data.draw(lookalike_of(args[field]), label=field)
    before, version = state(b), b.version
    with pytest.raises(L2BookError) as e:
        b.apply_level(args["side"], args["price"], args["size"])
    assert e.value.what == field
    assert state(b) == before and b.version == version


@settings(max_examples=200, deadline=None)
@given(field=st.sampled_from(["side", "price", "size"]), data=st.data())
def test_a_delta_with_a_lookalike_number_is_rejected_counted_and_does_not_advance_seq(field, data):
    b = L2Book(V, S)
    b.apply_snapshot(snap(10, bids=[(100, 5)], asks=[(101, 3)]))
    args = {"side": SELL, "price": 100, "size": 5}
    args[field] = data.draw(lookalike_of(args[field]), label=field)
    before = state(b)
    assert b.apply_delta(delta(11, args["side"], args["price"], args["size"])) is None
    assert state(b) == before and b.seq == 10
    assert b.rejected == 1 and b.ignored == 1 and b.deltas_applied == 0
    gap = b.apply_delta(delta(12, SELL, 102, 1))
    assert isinstance(gap, BookGap) and (gap.expected, gap.got) == (11, 12)


@pytest.mark.parametrize("side", LOOKALIKES + [2, -1, None], ids=repr)
def test_reading_a_side_that_is_not_the_int_buy_or_sell_raises(book, side):
    for read in (
        lambda: book.depth(side, 5),
        lambda: book.level_size(side, 100),
        lambda: book.level_count(side),
        lambda: book.total_size(side),
        lambda: list(book.iter_levels(side)),
        lambda: book.levels_between(side, 1, 200),
    ):
        with pytest.raises(L2BookError):
            read()


@pytest.mark.parametrize("n", [1.0, True, np.int64(3), "3"], ids=repr)
def test_depth_of_a_non_int_number_of_levels_raises(book, n):
    with pytest.raises(L2BookError):
        book.depth(BUY, n)


@pytest.mark.parametrize("bids", [None, 5, "100,5", {100: 5}], ids=repr)
def test_a_snapshot_whose_levels_are_not_a_sequence_raises_and_changes_nothing(book, bids):
    before, version = state(book), book.version
    with pytest.raises(L2BookError):
        book.apply_snapshot(BookSnapshot(0, V, S, 11, bids, ()))
    assert state(book) == before and book.version == version


@settings(max_examples=300, deadline=None)
@given(
    side=st.one_of(SIDES, st.sampled_from(LOOKALIKES), st.integers(), st.none(), st.text(max_size=2)),
    price=st.one_of(st.integers(-5, 10**16), st.floats(), st.sampled_from(LOOKALIKES), st.none()),
    size=st.one_of(st.integers(-5, 10**16), st.floats(), st.sampled_from(LOOKALIKES), st.none()),
)
def test_apply_level_either_applies_exact_ints_or_raises_l2bookerror(side, price, size):
    b = L2Book(V, S)
    b.apply_snapshot(snap(10, bids=[(100, 5)], asks=[(101, 3)]))
    before = state(b)
    exact = (
        type(side) is int
        and side in (BUY, SELL)
        and type(price) is int
        and 0 < price <= 10**15
        and type(size) is int
        and 0 <= size <= 10**15
    )
    try:
        b.apply_level(side, price, size)
    except L2BookError:
        assert not exact and state(b) == before
    else:
        assert exact and b.level_size(side, price) == size
    for p, s in list(b.bids.items()) + list(b.asks.items()):
        assert type(p) is int and type(s) is int


# ---- apply_delta: sequencing ---------------------------------------------------------------
def test_contiguous_delta_applies_and_advances_seq(book):
    assert book.apply_delta(delta(11, BUY, 100, 8)) is None
    assert book.best_bid() == (100, 8) and book.seq == 11 and book.deltas_applied == 1


def test_gap_returns_bookgap_and_invalidates(book):
    gap = book.apply_delta(delta(13, BUY, 100, 8, ts=77))
    assert gap == BookGap(77, V, S, 11, 13)
    assert not book.valid and book.gaps == 1
    assert book.best_bid() == (100, 5)  # the gapped delta was not applied


def test_deltas_while_invalid_are_ignored_and_counted(book):
    book.apply_delta(delta(13, BUY, 100, 8))
    before = state(book)
    assert book.apply_delta(delta(14, BUY, 100, 9)) is None
    assert state(book) == before and book.while_invalid == 1 and book.ignored == 1


def test_deltas_before_the_first_snapshot_are_ignored():
    b = L2Book(V, S)
    b.apply_delta(delta(1, BUY, 100, 1))
    assert b.best_bid() is None and b.while_invalid == 1


def test_snapshot_after_a_gap_makes_the_book_valid_again(book):
    book.apply_delta(delta(20, BUY, 100, 8))
    book.apply_snapshot(snap(30, bids=[(90, 1)]))
    assert book.valid and book.seq == 30 and book.best_bid() == (90, 1) and book.best_ask() is None
    book.apply_delta(delta(31, SELL, 95, 2))
    assert book.best_ask() == (95, 2)


@pytest.mark.parametrize("seq", [10, 9, 0, -4])
def test_stale_deltas_are_ignored_and_counted(book, seq):
    before = state(book)
    assert book.apply_delta(delta(seq, BUY, 100, 99)) is None
    assert state(book) == before and book.stale == 1 and book.ignored == 1


@pytest.mark.parametrize(
    "bad",
    [
        delta(11, 5, 100, 1),
        delta(11, BUY, 0, 1),
        delta(11, BUY, 100, -1),
        BookDelta(0, "other", S, 11, BUY, 100, 1),
        BookDelta(0, V, "ETH/USDT", 11, BUY, 100, 1),
        BookDelta(0, V, S, "11", BUY, 100, 1),
    ],
)
def test_garbage_deltas_are_counted_and_change_nothing(book, bad):
    before, version = state(book), book.version
    assert book.apply_delta(bad) is None
    assert state(book) == before and book.version == version
    assert book.rejected == 1 and book.ignored == 1


def test_a_rejected_delta_does_not_advance_seq_so_the_next_one_reports_a_gap(book):
    book.apply_delta(delta(11, BUY, 100, -1))
    gap = book.apply_delta(delta(12, BUY, 100, 1))
    assert isinstance(gap, BookGap) and (gap.expected, gap.got) == (11, 12)


def test_gap_increments_the_version_so_the_ui_shows_staleness(book):
    v = book.version
    book.apply_delta(delta(15, BUY, 100, 1))
    assert book.version > v


# ---- apply_snapshot: garbage ---------------------------------------------------------------
@pytest.mark.parametrize(
    "bad",
    [
        snap(11, bids=[(100, 1), (100, 2)]),
        snap(11, bids=[(100, 0), (100, 2)]),
        snap(11, asks=[(0, 1)]),
        snap(11, asks=[(101, -1)]),
        snap(11, bids=[(100,)]),
        BookSnapshot(0, "other", S, 11, (), ()),
        BookSnapshot(0, V, S, None, (), ()),
    ],
)
def test_garbage_snapshot_raises_and_leaves_the_book_unchanged(book, bad):
    before, version = state(book), book.version
    with pytest.raises(L2BookError):
        book.apply_snapshot(bad)
    assert state(book) == before and book.version == version


def test_clear_empties_and_invalidates(book):
    book.clear()
    assert book.best_bid() is None and book.best_ask() is None and not book.valid


# ---- against a model -----------------------------------------------------------------------
prices = st.integers(1, 30)
sizes = st.integers(0, 6)
sides = st.sampled_from([BUY, SELL])
levels = st.dictionaries(prices, st.integers(1, 6), max_size=10)


class L2BookMachine(RuleBasedStateMachine):
    """Random snapshots, deltas (in order, stale, gapped, garbage) and raw levels vs a dict model."""

    @initialize()
    def start(self) -> None:
        self.book = L2Book(V, S)
        self.model = ({}, {})
        self.seq = 0
        self.valid = False
        self.version = self.book.version

    @rule(bids=levels, asks=levels, seq=st.integers(0, 1000))
    def snapshot(self, bids, asks, seq):
        self.book.apply_snapshot(snap(seq, sorted(bids.items(), reverse=True), sorted(asks.items())))
        self.model = (dict(bids), dict(asks))
        self.seq, self.valid = seq, True

    def _set(self, side, price, size):
        if size:
            self.model[side][price] = size
        else:
            self.model[side].pop(price, None)

    @rule(side=sides, price=prices, size=sizes)
    def next_delta(self, side, price, size):
        assert self.book.apply_delta(delta(self.seq + 1, side, price, size)) is None
        if self.valid:
            self.seq += 1
            self._set(side, price, size)

    @rule(side=sides, price=prices, size=sizes, back=st.integers(0, 5))
    def stale_delta(self, side, price, size, back):
        assert self.book.apply_delta(delta(self.seq - back, side, price, size)) is None

    @rule(side=sides, price=prices, size=sizes, ahead=st.integers(2, 5))
    def gapped_delta(self, side, price, size, ahead):
        gap = self.book.apply_delta(delta(self.seq + ahead, side, price, size))
        if self.valid:
            assert gap is not None and (gap.expected, gap.got) == (self.seq + 1, self.seq + ahead)
            self.valid = False
        else:
            assert gap is None

    @rule(side=st.sampled_from([-1, 2, BUY]), price=st.integers(-3, 30), size=st.integers(-3, 6))
    def garbage_delta(self, side, price, size):
        if side in (BUY, SELL) and price > 0 and size >= 0:
            side = 7  # make sure it is garbage
        self.book.apply_delta(delta(self.seq + 1, side, price, size))

    @rule(side=sides, price=prices, size=sizes)
    def raw_level(self, side, price, size):
        self.book.apply_level(side, price, size)
        self._set(side, price, size)

    @rule(side=st.sampled_from([-1, 2, BUY, SELL]), price=st.integers(-3, 30), size=st.integers(-3, 6))
    def raw_garbage(self, side, price, size):
        if side in (BUY, SELL) and price > 0 and size >= 0:
            size = -1
        with pytest.raises(L2BookError):
            self.book.apply_level(side, price, size)

    @invariant()
    def matches_model(self):
        if not hasattr(self, "book"):
            return
        bids, asks = self.model
        b = self.book
        assert b.bids == bids and b.asks == asks
        assert b.best_bid() == (max(bids.items()) if bids else None)
        assert b.best_ask() == (min(asks.items()) if asks else None)
        assert b.depth(BUY, 4) == sorted(bids.items(), reverse=True)[:4]
        assert b.depth(SELL, 40) == sorted(asks.items())
        assert b.is_crossed() == bool(bids and asks and max(bids) >= min(asks))
        assert b.valid == self.valid
        if self.valid:
            assert b.seq == self.seq
        assert b.version >= self.version
        self.version = b.version


L2BookMachine.TestCase.settings = settings(
    max_examples=60, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
test_l2book_matches_a_dict_model = L2BookMachine.TestCase

"""Book analytics: exact values on hand-computed books."""

from __future__ import annotations

import sys
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lobterm.engine import analytics as an
from lobterm.engine.events import BUY, SELL, BookSnapshot
from lobterm.engine.l2book import L2Book
from lobterm.engine.unified import UnifiedBook

V, S = "sim", "BTC/USDT"


def book_of(bids=(), asks=()) -> L2Book:
    b = L2Book(V, S)
    b.apply_snapshot(BookSnapshot(0, V, S, 1, tuple(bids), tuple(asks)))
    return b


@pytest.fixture
def book() -> L2Book:
    # bids 100x4 99x6 98x10 | asks 102x2 103x8 105x5
    return book_of([(100, 4), (99, 6), (98, 10)], [(102, 2), (103, 8), (105, 5)])


# ---- touch ----------------------------------------------------------------------------------
def test_bbo_is_best_bid_and_best_ask(book):
    assert an.bbo(book) == ((100, 4), (102, 2))


def test_mid_is_exact_in_ticks_and_half_ticks(book):
    assert an.mid(book) == Fraction(101) and an.mid_x2(book) == 202


def test_mid_of_an_odd_spread_is_a_half_tick():
    b = book_of([(100, 1)], [(101, 1)])
    assert an.mid(b) == Fraction(201, 2) and an.mid_x2(b) == 201


def test_spread_in_ticks_and_exact_basis_points(book):
    assert an.spread_ticks(book) == 2
    assert an.spread_bps(book) == Fraction(20_000, 101)  # 2 / 101 * 10,000


def test_microprice_leans_towards_the_thinner_side(book):
    # (100 * 2 + 102 * 4) / (4 + 2) = 608 / 6
    assert an.microprice(book) == Fraction(304, 3)


@pytest.mark.parametrize(
    "n, expected", [(1, Fraction(1, 3)), (2, Fraction(0)), (3, Fraction(1, 7)), (50, Fraction(1, 7))]
)
def test_imbalance_over_n_levels(book, n, expected):
    # n=1: (4-2)/6; n=2: (10-10)/20; n=3: (20-15)/35
    assert an.imbalance(book, n) == expected


def test_imbalance_of_a_one_sided_book_is_plus_or_minus_one():
    assert an.imbalance(book_of(bids=[(100, 3)])) == 1
    assert an.imbalance(book_of(asks=[(100, 3)])) == -1


def test_imbalance_needs_at_least_one_level(book):
    with pytest.raises(ValueError):
        an.imbalance(book, 0)


def test_empty_book_has_no_touch_analytics():
    b = book_of()
    assert an.bbo(b) == (None, None)
    assert an.mid(b) is None and an.mid_x2(b) is None
    assert an.spread_ticks(b) is None and an.spread_bps(b) is None
    assert an.microprice(b) is None and an.imbalance(b, 5) is None


def test_one_sided_book_has_no_mid_or_spread():
    b = book_of(bids=[(100, 1)])
    assert an.mid(b) is None and an.spread_ticks(b) is None and an.microprice(b) is None


def test_crossed_book_has_a_negative_spread():
    assert an.spread_ticks(book_of([(102, 1)], [(101, 1)])) == -1


# ---- vwap -----------------------------------------------------------------------------------
def test_vwap_buy_walks_the_asks(book):
    r = an.vwap(book, BUY, 6)  # 2 @ 102 + 4 @ 103
    assert (r.filled, r.cost, r.levels, r.worst_price, r.complete) == (6, 616, 2, 103, True)
    assert r.price == Fraction(308, 3)


def test_vwap_filled_by_the_first_level_is_its_price(book):
    r = an.vwap(book, SELL, 4)
    assert r.price == 100 and r.levels == 1 and r.shortfall == 0


def test_vwap_reports_what_a_thin_book_could_fill(book):
    r = an.vwap(book, SELL, 25)  # only 20 bid lots: 4 @ 100 + 6 @ 99 + 10 @ 98
    assert not r.complete and r.filled == 20 and r.shortfall == 5
    assert r.cost == 1974 and r.price == Fraction(987, 10) and r.worst_price == 98


def test_vwap_on_an_empty_side_fills_nothing():
    r = an.vwap(book_of(bids=[(100, 1)]), BUY, 3)
    assert r.filled == 0 and r.price is None and r.worst_price is None and r.levels == 0


@pytest.mark.parametrize("side, qty", [(2, 1), (BUY, 0), (BUY, -1), (BUY, 1.5)])
def test_vwap_rejects_bad_arguments(book, side, qty):
    with pytest.raises(ValueError):
        an.vwap(book, side, qty)


def test_analytics_work_on_the_unified_book_with_combined_sizes(book):
    u = UnifiedBook(book, our_owner_id=1, own_in_venue_book=False)
    u.add_own(1, SELL, 102, 4)  # paper: ask 102 becomes 2 + 4
    assert an.microprice(u) == Fraction(100 * 6 + 102 * 4, 10)
    assert an.vwap(u, BUY, 6).price == 102


# ---- arrays ---------------------------------------------------------------------------------
def test_importing_analytics_does_not_import_numba_or_numpy():
    import subprocess
    from pathlib import Path

    code = (
        "import sys, lobterm.engine.analytics, lobterm.engine.unified; "
        "print('numba' in sys.modules, 'numpy' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert out.stdout.split() == ["False", "False"]


def _padded(levels: list[tuple[int, int]], depth: int) -> tuple[list[int], list[int]]:
    prices = [p for p, _ in levels] + [0] * (depth - len(levels))
    sizes = [s for _, s in levels] + [0] * (depth - len(levels))
    return prices, sizes


side_books = st.lists(
    st.dictionaries(st.integers(1, 200), st.integers(1, 20), max_size=6), min_size=1, max_size=8
)


@settings(max_examples=25, deadline=None)
@given(asks_per_row=side_books, qty=st.integers(1, 60))
def test_vwap_arrays_equal_the_book_walk_row_by_row(asks_per_row, qty):
    books = [book_of(asks=sorted(a.items())) for a in asks_per_row]
    rows = [_padded(b.depth(SELL, 6), 6) for b in books]
    filled, cost = an.vwap_arrays([r[0] for r in rows], [r[1] for r in rows], qty)
    for b, f, c in zip(books, filled.tolist(), cost.tolist(), strict=False):
        r = an.vwap(b, BUY, qty)
        assert (f, c) == (r.filled, r.cost)


def test_imbalance_and_microprice_arrays_match_the_book(book):
    bid_sizes = [[4, 6, 10]]
    ask_sizes = [[2, 8, 5]]
    assert an.imbalance_arrays(bid_sizes, ask_sizes, 3).tolist() == [pytest.approx(1 / 7)]
    num, den = an.microprice_arrays([100], [4], [102], [2])
    assert Fraction(int(num[0]), int(den[0])) == an.microprice(book)


def test_imbalance_arrays_are_nan_where_both_sides_are_empty():
    import math

    assert math.isnan(an.imbalance_arrays([[0, 0]], [[0, 0]], 2)[0])


def test_vwap_arrays_reject_mismatched_shapes():
    with pytest.raises(ValueError):
        an.vwap_arrays([[1, 2]], [[1, 2, 3]], 1)


# ---- numbers that only look like ints --------------------------------------------------------
@pytest.mark.parametrize("side", [True, False, 1.0, np.int64(0)], ids=repr)
def test_vwap_refuses_a_side_that_only_looks_like_an_int(book, side):
    with pytest.raises(an.AnalyticsError, match="side"):
        an.vwap(book, side, 1)


@pytest.mark.parametrize("qty", [True, 2.0, np.int64(2)], ids=repr)
def test_vwap_refuses_a_quantity_that_only_looks_like_an_int(book, qty):
    with pytest.raises(an.AnalyticsError, match="qty"):
        an.vwap(book, BUY, qty)
    with pytest.raises(an.AnalyticsError, match="qty"):
        an.vwap_arrays([[102]], [[2]], qty)


@pytest.mark.parametrize("n", [True, 2.0, np.int64(2), "2"], ids=repr)
def test_imbalance_refuses_a_level_count_that_is_not_an_int(book, n):
    with pytest.raises(an.AnalyticsError, match="levels"):
        an.imbalance(book, n)
    with pytest.raises(an.AnalyticsError, match="levels"):
        an.imbalance_arrays([[1, 2]], [[3, 4]], n)


def test_analytics_errors_are_value_errors():
    assert issubclass(an.AnalyticsError, ValueError)


@pytest.mark.parametrize(
    "sizes",
    [
        [[1.5, 2.0]],  # an int64 cast would read 1.5 lots as 1
        np.array([[1.0, 2.0]]),
        np.array([[True, False]]),
        np.array([[2**64 - 1, 1]], dtype=np.uint64),  # wraps to -1 as int64
        np.array([[1, 2]], dtype=object),
    ],
    ids=["floats", "float array", "bools", "uint64 above int64", "objects"],
)
def test_array_analytics_refuse_what_an_int64_cast_would_change(sizes):
    prices = [[102, 103]]
    with pytest.raises(an.AnalyticsError, match="integer"):
        an.vwap_arrays(prices, sizes, 1)
    with pytest.raises(an.AnalyticsError, match="integer"):
        an.imbalance_arrays(sizes, [[1, 1]], 1)
    with pytest.raises(an.AnalyticsError, match="integer"):
        an.microprice_arrays([100], np.asarray(sizes)[0], [102], [1])


def test_array_analytics_take_any_integer_dtype():
    for kind in (np.int8, np.int32, np.uint32, np.int64):
        filled, cost = an.vwap_arrays(np.array([[102, 103]], kind), np.array([[2, 8]], kind), 6)
        assert filled.tolist() == [6] and cost.tolist() == [616]

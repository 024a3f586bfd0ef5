"""The backtest fast path's kernel (lobterm/backtest/fastkernel.py) on tiny scripted arrays: the paper
queue model's rules, one at a time, with our orders scripted (the market maker off).

The kernel is compiled once per machine and cached on disk (numba cache=True); the first test run
after a change to the kernel pays the compilation (about 25 s here), later runs load it in < 1 s."""

from __future__ import annotations

import pytest

pytest.importorskip("numba")

from lobterm.backtest import fastkernel as fk  # noqa: E402
from lobterm.trading.paper import QUEUE_SCALE  # noqa: E402
from tests.helpers.fastkernel import book, delta, order, run

BUY, SELL = 0, 1


def trade(ts: int, aggressor: int, price: int, size: int) -> list[int]:
    return [fk.K_TRADE, ts, aggressor, price, size, 0]


def test_an_order_joins_behind_the_level_and_a_trade_at_its_price_eats_the_queue_ahead_first() -> None:
    fills, _S, orders = run(book() + [order(2, BUY, 100, 5), trade(3, SELL, 100, 4)])
    assert fills == []
    assert orders[1][fk.D_AHEAD] == 6 * QUEUE_SCALE and orders[1][fk.D_LEAVES] == 5


def test_the_rest_of_a_trade_after_the_queue_ahead_fills_us() -> None:
    fills, S, orders = run(book() + [order(2, BUY, 100, 5), trade(3, SELL, 100, 4), trade(4, SELL, 100, 8)])
    assert fills == [(4, BUY, 100, 2, 1, 1, 3, fk.RULE_QUEUE)]
    assert orders[1][fk.D_AHEAD] == 0 and orders[1][fk.D_LEAVES] == 3
    assert S[fk.S_POS] == 2 and S[fk.S_CASH] == -200


def test_a_trade_through_our_price_fills_us_at_our_price_whatever_was_ahead() -> None:
    fills, _S, _orders = run(book() + [order(2, BUY, 100, 5), trade(3, SELL, 99, 7)])
    assert fills == [(3, BUY, 100, 5, 1, 1, 0, fk.RULE_THROUGH)]


def test_a_trade_by_a_taker_on_our_side_never_fills_us() -> None:
    fills, _S, orders = run(book() + [order(2, BUY, 100, 5), trade(3, BUY, 100, 50)])
    assert fills == [] and orders[1][fk.D_AHEAD] == 10 * QUEUE_SCALE


def test_the_book_crossing_our_price_fills_us_at_our_price_as_maker_up_to_the_crossing_size() -> None:
    fills, _S, orders = run(book() + [order(2, BUY, 100, 5), delta(3, 2, SELL, 100, 3)])
    assert fills == [(3, BUY, 100, 3, 1, 1, 2, fk.RULE_CROSS)]
    assert orders[1][fk.D_AHEAD] == 0


def test_level_decreases_that_trades_do_not_explain_are_cancels_behind_us_in_the_conservative_model() -> None:
    _f, _S, orders = run(book() + [order(2, BUY, 100, 5), delta(3, 2, BUY, 100, 7)])
    assert orders[1][fk.D_AHEAD] == 7 * QUEUE_SCALE  # min(ahead 10, level 7)
    _f, _S, orders = run(
        book() + [order(2, BUY, 100, 5), delta(3, 2, BUY, 100, 12), delta(4, 3, BUY, 100, 11)]
    )
    assert orders[1][fk.D_AHEAD] == 10 * QUEUE_SCALE  # added behind us, then 1 of 12 cancelled: still 10


def test_in_the_probabilistic_model_cancels_come_from_ahead_of_us_in_proportion() -> None:
    _f, _S, orders = run(
        book() + [order(2, BUY, 100, 5), delta(3, 2, BUY, 100, 12), delta(4, 3, BUY, 100, 9)],
        cancel_model="probabilistic",
    )
    assert orders[1][fk.D_AHEAD] == 10 * QUEUE_SCALE - 10 * QUEUE_SCALE * 3 // 12


def test_a_post_only_order_that_would_trade_is_rejected_and_a_plain_limit_takes_as_taker() -> None:
    fills, S, _orders = run(book() + [order(2, BUY, 105, 5)])
    assert fills == [] and S[fk.S_REJECTS] == 1
    fills, _S, _orders = run(book() + [order(2, BUY, 105, 15, post_only=0)])
    assert fills == [(2, BUY, 105, 10, 0, 1, 5, fk.RULE_TAKER)]


def test_a_sequence_gap_invalidates_the_book_until_the_next_snapshot() -> None:
    _f, S, _o = run(book() + [delta(2, 3, BUY, 101, 4)])
    assert S[fk.S_VALID] == 0 and S[fk.S_GAPS] == 1
    _f, S, _o = run(
        book() + [delta(2, 3, BUY, 101, 4)] + [[fk.K_SNAP, 3, 0, 0, 1, 9], [fk.K_LEVEL, 3, SELL, 104, 2, 0]]
    )
    assert S[fk.S_VALID] == 1 and S[fk.S_BID] == -1 and S[fk.S_ASK] == 104 - 90

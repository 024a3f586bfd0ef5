"""The fast path's money step in integer columns (`book_fills`) against booking each fill into the
Inventory (`book_fills_loop`, what the reference path does): the same positions, P&L and fills."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import numpy as np
import pytest

from lobterm.backtest.fast import book_fills, book_fills_loop
from lobterm.engine.instrument import Instrument
from lobterm.trading.inventory import Inventory, TopOfBook

BTC = Instrument("BTC/USDT", tick_size=Decimal("0.1"), lot_size=Decimal("0.001"), venue="sim")


def _fills(seed: int, n: int, drift: float) -> np.ndarray:
    """Kernel fill rows (ts, side, price, size, maker, order id, leaves, rule): a random walk of
    prices, sides biased by `drift` (a position that seldom goes flat grows the average's denominator
    until the Inventory rounds it), sizes 1..40."""
    rng = np.random.default_rng(seed)
    out = np.zeros((n, 8), dtype=np.int64)
    out[:, 0] = 1_000 + np.arange(n) * 7
    out[:, 1] = (rng.random(n) < 0.5 + drift).astype(np.int64) ^ 1  # 0 buy, 1 sell
    out[:, 2] = 50_000 + np.cumsum(rng.integers(-3, 4, n))
    out[:, 3] = rng.integers(1, 41, n)
    out[:, 4] = rng.random(n) < 0.8
    out[:, 5] = np.arange(n) + 1
    out[:, 6] = rng.integers(0, 5, n)
    return out


def _position(inv: Inventory) -> dict:
    p = dataclasses.asdict(inv.position("sim", "BTC/USDT"))
    p.pop("avg_rounding")  # not carried for fills before the last flat or flip (see book_fills)
    return p


@pytest.mark.parametrize(
    ("seed", "n", "drift"), [(1, 2000, 0.0), (2, 3000, 0.02), (3, 500, 0.4), (4, 1, 0.0)]
)
def test_the_columns_book_exactly_what_the_fill_by_fill_loop_books(seed: int, n: int, drift: float) -> None:
    fills = _fills(seed, n, drift)
    a, b = Inventory({("sim", "BTC/USDT"): BTC}), Inventory({("sim", "BTC/USDT"): BTC})
    ra = book_fills_loop(a, "sim", "BTC/USDT", fills, 100, 400)
    rb = book_fills(b, "sim", "BTC/USDT", fills, 100, 400)
    assert ra == rb
    assert _position(a) == _position(b)
    for top in (TopOfBook(49_990, 50_010, None), TopOfBook(None, None, 50_001)):
        assert a.pnl("sim", "BTC/USDT", top) == b.pnl("sim", "BTC/USDT", top)
    assert (a.version, a.booked) == (b.version, b.booked)

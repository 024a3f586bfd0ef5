"""Rows and a runner for the numba backtest kernel's tests (lobterm/backtest/fastkernel.py)."""

from __future__ import annotations

import numpy as np

from lobterm.backtest import fastkernel as fk
from lobterm.backtest.fast import _kernel_inputs, run_kernel
from lobterm.engine.events import BUY, SELL
from lobterm.trading.paper import PaperConfig
from lobterm.trading.quoting import QuoteParams


def book(ts: int = 1, bid: int = 100, ask: int = 105, size: int = 10) -> list[list[int]]:
    return [
        [fk.K_SNAP, ts, 0, 0, 2, 1],
        [fk.K_LEVEL, ts, BUY, bid, size, 0],
        [fk.K_LEVEL, ts, SELL, ask, size, 0],
    ]


def order(ts: int, side: int, price: int, size: int, post_only: int = 1) -> list[int]:
    return [fk.K_ORDER, ts, side, price, size, post_only]


def delta(ts: int, seq: int, side: int, price: int, size: int) -> list[int]:
    return [fk.K_DELTA, ts, side, price, size, seq]


def run(script: list[list[int]], lo: int = 90, hi: int = 110, cancel_model: str = "conservative"):
    """(fills as tuples (ts, side, price, size, maker, order id, leaves, rule), scalars, slots by order id)."""
    ip, fp, sizes = _kernel_inputs(
        QuoteParams(levels=1), None, 0, PaperConfig(cancel_model=cancel_model), mm_on=False
    )
    rows = np.array(script, dtype=np.int64)
    fills, S, slots = run_kernel(rows, lo, hi, ip, fp, sizes, int(rows[-1, fk.C_TS]))
    by_id = {int(s[fk.Q_OID]): s for s in slots if s[fk.Q_OID]}
    return [tuple(int(x) for x in f) for f in fills], S, by_id

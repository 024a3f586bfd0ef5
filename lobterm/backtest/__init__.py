"""Backtests: the market maker rerun over a recorded session, with paper fills.

- `reference.py`: the reference path, the real kernel (bus, books, OMS, risk, market maker, paper desk)
  fed the session's recorded venue data; the `lobterm backtest` command.
- `fast.py`: the fast path, the same backtest on arrays: `fastdecode.py` turns the session's event
  bodies into rows, `fastkernel.py` (numba) walks them; money is then counted by the same exact code.

Nothing is imported here, so that `import lobterm.backtest.reference` does not pull in numba.
"""

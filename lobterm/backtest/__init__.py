"""Backtests: the market maker rerun over a recorded session, with paper fills.

- `command.py`: `lobterm backtest FILE`, which runs the fast path and hands over to the reference path,
  saying why, for what the fast path does not do.
- `reference.py`: the reference path, the real kernel (bus, books, OMS, risk, market maker, paper desk)
  fed the session's recorded venue data.
- `fast.py`: the fast path, the same backtest on arrays: `fastdecode.py` turns the session's event
  bodies into rows, `fastkernel.py` (numba) walks them; money is then counted by the same exact code.
- `result.py`: `BacktestResult`, what both paths measured, as text or as JSON.

Nothing is imported here, so that `import lobterm.backtest.reference` does not pull in numba.
"""

"""Backtest throughput (events/s) of `lobterm backtest` with the market maker quoting and queue-aware
paper fills, on a recorded 2,100 s sim session (about 558,000 events): the fast path, its kernel alone
and the reference path. Same as `lobterm bench backtest`; the code is lobterm/bench/backtest.py.

    python benchmarks/backtest_bench.py [--json]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout, not an installed copy

from lobterm.bench.backtest import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

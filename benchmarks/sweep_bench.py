"""Sweep scaling: `lobterm sweep` on 2 local worker processes against 1, on the same 16 backtest tasks
(4 recorded sim sessions x 4 parameter sets). Same as `lobterm bench sweep`; the code is
lobterm/bench/sweep.py.

    python benchmarks/sweep_bench.py [--json] [--session-s S] [--reference]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout, not an installed copy

from lobterm.bench.sweep import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

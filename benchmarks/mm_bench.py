"""The market maker's tick-to-quote latency and headless events/s; the code is lobterm/bench/mm.py.

python benchmarks/mm_bench.py [--steps N] [--seed S] [--json]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout, not an installed copy

from lobterm.bench.mm import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

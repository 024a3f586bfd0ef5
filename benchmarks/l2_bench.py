"""L2 book throughput on lob-mix-v1. Same as the L2 rows of `lobterm bench l2`, with more detail; the
code is lobterm/bench/l2.py.

    python benchmarks/l2_bench.py [--n N] [--seed S] [--repeat R] [--json]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout, not an installed copy

from lobterm.bench.l2 import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

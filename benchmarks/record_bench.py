"""The recorder's sustained events/s and the event loop's lag while it records. Same as
`lobterm bench record`, with more detail; the code is lobterm/bench/record.py.

    python benchmarks/record_bench.py [--seconds S] [--rate R] [--json]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout, not an installed copy

from lobterm.bench.record import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The engine benchmarks: lob-mix-v1 through the matching book, and the L2 delta stream. Same as
`lobterm bench engine`; the code is lobterm/bench/engine.py.

    python benchmarks/engine_bench.py [--json]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout, not an installed copy

from lobterm.bench.engine import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""A day of market time with the market maker: RSS at 1 h / 6 h / 24 h, its slope, loop lag (realtime
mode), session file sizes; the code is lobterm/bench/soak.py.

python benchmarks/soak.py [--hours 24] [--realtime --minutes 60] [--trace] [--json]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout, not an installed copy

from lobterm.bench.soak import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

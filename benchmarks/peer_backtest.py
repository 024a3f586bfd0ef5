"""lobterm's backtest fast path beside hftbacktest's loop, on the same market data (a 2,000 s sim session
recorded by lobterm, converted to hftbacktest's event format) and the same 5+5 quoting ladder: end to
end, the numba kernel alone, and peak memory at 1x and 10x the session's length. The code is
lobterm/bench/peer.py; hftbacktest is an optional peer (`pip install 'lobterm[peers]'`).

    python benchmarks/peer_backtest.py [--seconds 2000] [--repeat 3] [--no-memory] [--json]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout, not an installed copy

from lobterm.bench.peer import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

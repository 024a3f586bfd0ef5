"""UI benchmarks: ladder frame time, the UI's CPU share at 30 Hz under 10,000 book deltas/s, and key press
to order visible. Same as `lobterm bench ui`; the code is lobterm/bench/ui.py.

    python benchmarks/ui_bench.py [--json] [--quick]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout, not an installed copy

from lobterm.bench.ui import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

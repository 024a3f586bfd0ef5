"""UI benchmarks: ladder frame time, the UI's CPU share at 30 Hz under 10,000 book deltas/s, and key press
to order visible. Prints figures (not a test). Same as `lobterm bench ui`.

    python benchmarks/ui_bench.py [--json] [--quick]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lobterm.bench import ui  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    p.add_argument("--quick", action="store_true", help="fewer frames, shorter CPU window, fewer presses")
    args = p.parse_args()
    figs = ui.run(frames=60, cpu_seconds=2.0, trials=5) if args.quick else ui.run()
    print(json.dumps(figs) if args.json else ui.report(figs))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Prints the engine benchmarks: lob-mix-v1 through the matching book, and the L2 delta stream.

Same as `lobterm bench engine`; `--json` prints JSON. Figures, not pass/fail: see the README.
"""

from __future__ import annotations

import sys
from pathlib import Path

try:
    from lobterm.bench.report import run_bench
except ModuleNotFoundError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from lobterm.bench.report import run_bench

if __name__ == "__main__":
    sys.exit(run_bench("engine", as_json="--json" in sys.argv[1:]))

"""The engine benchmarks: lob-mix-v1 through the matching book, and the L2 delta stream. Same as
`lobterm bench engine`; the code is lobterm/bench/engine.py.

    python benchmarks/engine_bench.py [--json]
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout, not an installed copy

from lobterm.bench.report import run_bench  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="The engine benchmarks: the matching book and the L2 book.")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    return run_bench("engine", as_json=ap.parse_args(argv).json)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

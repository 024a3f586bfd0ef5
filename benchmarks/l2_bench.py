"""Prints L2 book throughput on lob-mix-v1 (see `lobterm.bench.l2`). `--json` prints JSON instead."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

try:
    from lobterm.bench.l2 import run
except ModuleNotFoundError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from lobterm.bench.l2 import run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200_000, help="workload operations (default 200,000)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--repeat", type=int, default=3, help="runs per figure; the best is reported")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    a = ap.parse_args()
    r = run(a.n, a.seed, a.repeat)
    if a.json:
        print(json.dumps(r))
        return
    print(
        f"lob-mix-v1 l2 stream: {r['deltas']:,} deltas (n={r['n']:,}, seed={r['seed']}), "
        f"best of {r['repeat']}"
    )
    print(f"  apply_level            {r['deltas_per_s']:>12,.0f} deltas/s  ({r['seconds'] * 1e3:.1f} ms)")
    print(
        f"  apply_delta (checked)  {r['apply_delta_per_s']:>12,.0f} deltas/s  "
        f"({r['apply_delta_seconds'] * 1e3:.1f} ms)"
    )
    print(
        f"  apply_level + BBO read {r['apply_level_bbo_read_per_s']:>12,.0f} deltas/s  "
        f"({r['apply_level_bbo_read_seconds'] * 1e3:.1f} ms)"
    )
    print(
        f"  final book checked: best bid {r['final_best_bid']} / best ask {r['final_best_ask']}, "
        f"lots {r['final_bid_lots']} / {r['final_ask_lots']}"
    )


if __name__ == "__main__":
    main()

"""Prints the market maker's tick-to-quote latency and headless events/s (see `lobterm.bench.mm`).
`--json` prints JSON instead."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

try:
    from lobterm.bench.mm import run
except ModuleNotFoundError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from lobterm.bench.mm import run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=3000, help="sim steps measured (default 3,000)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    a = ap.parse_args()
    r = run(a.steps, a.seed)
    if a.json:
        print(json.dumps(r))
        return
    print(
        f"market maker on SimVenue + Kernel (VirtualClock), {r['levels_per_side']} levels a side, "
        f"{r['steps']:,} steps, seed {r['seed']}"
    )
    for key, label in (
        ("tick_to_quote_us", "one BookDelta in -> first order out"),
        ("step_to_quote_us", "a step's batch in -> first order out"),
    ):
        s = r[key]
        print(
            f"  {label:<40} p50 {s['p50']:>7.1f} us  p90 {s['p90']:>7.1f} us  p99 {s['p99']:>7.1f} us  "
            f"max {s['max']:>8.1f} us  (n={s['n']:,})"
        )
    print(f"  steps with nothing to requote            {r['steps_without_requote']:,}")
    for label, key in (("with MM", "mm"), ("no MM  ", "no_mm")):
        print(
            f"  headless events/s  {label} {r['events_per_s_' + key]:>10,}  "
            f"({r['sim_seconds_per_wall_s_' + key]}x real time)"
        )
    m = r["mm"]
    print(
        f"  market maker: {m['quotes_sent']:,} new, {m['amends']:,} amends, {m['cancels']:,} cancels, "
        f"{m['requote_cycles']:,} cycles, {m['fills']:,} fills, {m['rejects']} rejects"
    )


if __name__ == "__main__":
    main()

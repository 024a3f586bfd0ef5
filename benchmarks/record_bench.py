"""Prints the recorder's sustained events/s and the event loop's lag while it records (see
`lobterm.bench.record`). `--json` prints JSON instead. Figures, not a pass/fail test."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

try:
    from lobterm.bench.record import run
except ModuleNotFoundError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from lobterm.bench.record import run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--seconds", type=float, default=5.0, help="how long each run produces events (default 5)"
    )
    ap.add_argument("--rate", type=float, default=300_000, help="events/s of the paced run (default 300,000)")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    a = ap.parse_args()
    r = run(a.seconds, a.rate)
    if a.json:
        print(json.dumps(r))
        return
    print(
        f"recorder: async (aiosqlite, WAL, one transaction per flush), {r['sample_events']:,} sim events "
        f"replayed with the market maker's order flow; {r['cpus']} CPUs"
    )
    for name, key, _goal in (
        ("flat out", "flat_out", None),
        (f"paced at {r['paced_rate']:,.0f}/s", "paced", None),
    ):
        f = r[key]
        lag = f["lag"]
        print(
            f"  {name:<22} {f['events_per_s']:>10,} events/s committed ({f['events']:,} events, offered "
            f"{f['offered_per_s']:,}/s)  loop lag p50 {lag['p50_ms']:.2f} ms  p99 {lag['p99_ms']:.2f} ms  "
            f"max {lag['max_ms']:.1f} ms"
        )
        print(
            f"  {'':<22} {f['flushes']:,} flushes ({f['events_per_flush']:,} events each), longest "
            f"{f['max_flush_ms']} ms; backlog max {f['max_backlog']:,}, at end of production "
            f"{f['backlog_at_end']:,}; {f['bytes_per_event']} bytes/event"
        )
    idle = r["idle_lag"]
    print(
        f"  loop lag with nothing running (this machine's noise): p50 {idle['p50_ms']:.2f} ms  p99 "
        f"{idle['p99_ms']:.2f} ms  max {idle['max_ms']:.1f} ms; load average {r['load_avg'][0]:.2f}"
    )
    print("  goals: >= 300,000 events/s sustained, loop lag p99 <= 5 ms")


if __name__ == "__main__":
    main()

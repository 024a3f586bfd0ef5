"""`lobterm bench`: runs the benchmarks and prints one table, each figure beside its goal."""

from __future__ import annotations

import json
import platform
import sys

# (figure key, label, goal, unit); a goal is a floor.
ENGINE_GOALS = [
    ("matching_ops_per_s", "matching: lob-mix-v1 ops/s (events emitted)", 600_000, "ops/s"),
    ("l2_deltas_per_s", "L2 book: apply deltas/s (best bid/ask current)", 2_000_000, "deltas/s"),
    ("l2_checked_per_s", "L2 book: sequenced BookDelta events/s", None, "deltas/s"),
]


def engine_figures() -> dict:
    from lobterm.bench import engine, l2

    m = engine.run()
    r = l2.run()
    return {
        "matching_ops_per_s": m["ops_per_s"],
        "matching_events_per_s": m["events_per_s"],
        "matching_latency_ns": m["latency"],
        "matching_final_state_ok": m["final_state_ok"],
        "l2_deltas_per_s": round(r["deltas_per_s"]),
        "l2_checked_per_s": round(r["apply_delta_per_s"]),
        "l2_final_state_ok": r["checked"],
        "python": platform.python_version(),
        "machine": platform.machine(),
    }


def run_bench(which: str, *, as_json: bool = False) -> int:
    if which != "engine":
        print(f"lobterm bench: unknown benchmark {which!r}", file=sys.stderr)
        return 2
    figs = engine_figures()
    if as_json:
        print(json.dumps(figs))
        return 0
    print(f"lobterm bench engine (Python {figs['python']}, {figs['machine']}); final books checked against "
          "the workload's reference state")
    print(f"{'figure':<52} {'measured':>14} {'goal':>14}  ")
    for key, label, goal, unit in ENGINE_GOALS:
        v = figs[key]
        mark = "" if goal is None else ("ok" if v >= goal else "BELOW GOAL")
        goal_s = "-" if goal is None else f">= {goal:,}"
        print(f"{label:<52} {v:>14,} {goal_s:>14}  {mark}")
    print("matching latency per op kind (ns, includes ~60 ns of timer overhead):")
    for kind, lat in figs["matching_latency_ns"].items():
        name = {"A": "passive limit", "C": "cancel", "M": "market", "X": "marketable limit"}[kind]
        print(f"  {kind} {name:<18} n={lat['count']:>7,}  p50 {lat['p50_ns']:>6,}  p99 {lat['p99_ns']:>6,}")
    return 0

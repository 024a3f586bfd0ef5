"""lob-mix-v1 through the matching book's public API: ops/s with events emitted, and per-op latency.

The garbage collector stays on, as in a live process; the workload itself (about a million tuples) is
moved out of its sight with gc.freeze() first, as a long-running venue freezes its start-up objects.

Two passes over the same 200,000 ops: a throughput pass (no per-op timing; events emitted into the
book's event list and drained every 4,096 ops, as a venue would) and a latency pass that times each
op with perf_counter_ns (that adds about 60 ns of its own per op). The final book is checked against
the workload's `final_state` on every pass; a wrong book raises instead of printing a figure.
"""

from __future__ import annotations

import gc
import time

from lobterm.bench.workload import workload
from lobterm.engine.events import LIMIT, MARKET
from lobterm.engine.matching import MatchingBook


def _replay(ops, book: MatchingBook) -> int:
    submit = book.submit
    cancel = book.cancel
    drain = book.drain
    events = 0
    i = 0
    for op in ops:
        k = op[0]
        if k == "A" or k == "X":
            submit(op[1], op[2], op[3], op[4], LIMIT)
        elif k == "C":
            cancel(op[1])
        else:
            submit(op[1], op[2], 0, op[3], MARKET)
        i += 1
        if not i & 4095:
            events += len(drain())
    return events + len(drain())


def _check(book: MatchingBook, expected) -> None:
    got = book.state()
    if tuple(got) != tuple(expected):
        raise AssertionError(f"final book {got} != workload final_state {tuple(expected)}")


def run(n: int = 200_000, seed: int = 42, repeats: int = 5, track_levels: bool = True) -> dict:
    wl = workload(n, seed)
    ops = wl["ops"]
    best = float("inf")
    events = 0
    gc.collect()
    gc.freeze()
    for _ in range(max(1, repeats)):  # at least one timed run: there is no figure without one
        book = MatchingBook("bench", "LOB", track_levels=track_levels)
        t0 = time.perf_counter()
        events = _replay(ops, book)
        if track_levels:
            book.touched.clear()
        dt = time.perf_counter() - t0
        _check(book, wl["final_state"])
        best = min(best, dt)

    # Latency pass: per op kind.
    book = MatchingBook("bench", "LOB", track_levels=track_levels)
    submit, cancel, drain = book.submit, book.cancel, book.drain
    clock = time.perf_counter_ns
    lat: dict[str, list[int]] = {"A": [], "C": [], "M": [], "X": []}
    for op in ops:
        k = op[0]
        t0 = clock()
        if k == "A" or k == "X":
            submit(op[1], op[2], op[3], op[4], LIMIT)
        elif k == "C":
            cancel(op[1])
        else:
            submit(op[1], op[2], 0, op[3], MARKET)
        lat[k].append(clock() - t0)
        if len(book.events) > 4096:
            drain()
        if track_levels and len(book.touched) > 4096:
            book.touched.clear()
    _check(book, wl["final_state"])
    kinds = {}
    for k, xs in lat.items():
        xs.sort()
        kinds[k] = {"count": len(xs), "p50_ns": xs[len(xs) // 2], "p99_ns": xs[int(len(xs) * 0.99)]}
    return {
        "name": "matching lob-mix-v1",
        "ops": len(ops),
        "events": events,
        "seconds": round(best, 4),
        "ops_per_s": round(len(ops) / best),
        "events_per_s": round(events / best),
        "track_levels": track_levels,
        "final_state": list(wl["final_state"]),
        "final_state_ok": True,
        "latency": kinds,
    }


def main(argv: list[str] | None = None) -> int:
    """`python benchmarks/engine_bench.py [--json]`: the engine figures (the matching book), one a line
    (the full `lobterm bench engine` table with the L2 book is in `lobterm bench`)."""
    import argparse
    import json

    ap = argparse.ArgumentParser(description="The engine benchmark: lob-mix-v1 through the matching book.")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    as_json = ap.parse_args(argv).json
    figures = run()
    if as_json:
        print(json.dumps(figures))
    else:
        for key, value in figures.items():
            print(f"{key:<24} {value}")
    return 0

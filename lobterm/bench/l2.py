"""L2 book throughput on lob-mix-v1's per-level stream (`workload()["l2"]`, 209,506 deltas).

Two figures, each the best of `repeat` runs on a fresh book, with the garbage collector paused
while timing (as `timeit` does):
- `apply_level`: the raw hot path, `L2Book.apply_level(side, price, size)`, no sequence check.
- `apply_delta`: the checked path, one `BookDelta` per level change with contiguous seq, after an
  empty snapshot at seq 0. The events are built before timing.
plus `apply_level_bbo_read`: the raw path with `best_bid()` and `best_ask()` read after every delta
(what a quoting strategy does), to show that the touch is current and cheap to read.

Every run checks the final book against the workload's reference `final_state`: best bid/ask and the
total bid/ask lots. The requirement is >= 2,000,000 deltas/s for `apply_level` on the 2-core box.
"""

from __future__ import annotations

import argparse
import gc
import json
import time

from lobterm.bench.workload import workload
from lobterm.engine.events import BUY, SELL, BookDelta, BookSnapshot
from lobterm.engine.l2book import L2Book

VENUE = "bench"
SYMBOL = "LOB/MIX"


def _check(book: L2Book, final_state: tuple) -> None:
    want_bid_lots, want_ask_lots, want_bid, want_ask = final_state[1:5]
    got = (book.total_size(BUY), book.total_size(SELL), book.best_bid_price(), book.best_ask_price())
    if got != (want_bid_lots, want_ask_lots, want_bid, want_ask):
        raise RuntimeError(
            f"L2 book final state {got} != reference {final_state[1:5]} "
            "(bid lots, ask lots, best bid, best ask)"
        )


def _timed(fn) -> float:
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0
    finally:
        if gc_was_enabled:
            gc.enable()


def _best_of(repeat: int, make_book, body, final_state: tuple) -> float:
    best = float("inf")
    for _ in range(repeat):
        book = make_book()
        best = min(best, _timed(lambda: body(book)))  # noqa: B023 - called at once
        _check(book, final_state)
    return best


def run(n: int = 200_000, seed: int = 42, repeat: int = 3) -> dict:
    """Apply the workload's l2 stream through both paths; best of `repeat`; figures as a dict."""
    wl = workload(n, seed)
    stream = wl["l2"]
    final_state = tuple(wl["final_state"])
    count = len(stream)
    levels = [(side, price, size) for _act, side, price, size in stream]
    deltas = [
        BookDelta(i, VENUE, SYMBOL, i, side, price, size)
        for i, (side, price, size) in enumerate(levels, start=1)
    ]

    def raw(book: L2Book) -> None:
        apply = book.apply_level
        for side, price, size in levels:
            apply(side, price, size)

    def raw_with_touch(book: L2Book) -> None:
        apply = book.apply_level
        best_bid = book.best_bid
        best_ask = book.best_ask
        for side, price, size in levels:
            apply(side, price, size)
            best_bid()
            best_ask()

    def checked(book: L2Book) -> None:
        apply = book.apply_delta
        for d in deltas:
            apply(d)
        if book.seq != count or not book.valid or book.ignored:
            raise RuntimeError(f"checked path lost deltas: seq {book.seq}/{count}, ignored {book.ignored}")

    def fresh() -> L2Book:
        return L2Book(VENUE, SYMBOL)

    def fresh_synced() -> L2Book:
        book = L2Book(VENUE, SYMBOL)
        book.apply_snapshot(BookSnapshot(0, VENUE, SYMBOL, 0, (), ()))
        return book

    t_raw = _best_of(repeat, fresh, raw, final_state)
    t_checked = _best_of(repeat, fresh_synced, checked, final_state)
    t_touch = _best_of(repeat, fresh, raw_with_touch, final_state)
    return {
        "workload": wl["name"],
        "n": n,
        "seed": seed,
        "deltas": count,
        "repeat": repeat,
        "seconds": t_raw,
        "deltas_per_s": count / t_raw,
        "apply_delta_seconds": t_checked,
        "apply_delta_per_s": count / t_checked,
        "apply_level_bbo_read_seconds": t_touch,
        "apply_level_bbo_read_per_s": count / t_touch,
        "final_best_bid": final_state[3],
        "final_best_ask": final_state[4],
        "final_bid_lots": final_state[1],
        "final_ask_lots": final_state[2],
        "checked": True,
    }


def report(r: dict) -> str:
    """The figures of `run` as lines of text."""
    return "\n".join(
        [
            f"lob-mix-v1 l2 stream: {r['deltas']:,} deltas (n={r['n']:,}, seed={r['seed']}), best of {r['repeat']}",
            f"  apply_level            {r['deltas_per_s']:>12,.0f} deltas/s  ({r['seconds'] * 1e3:.1f} ms)",
            f"  apply_delta (checked)  {r['apply_delta_per_s']:>12,.0f} deltas/s  "
            f"({r['apply_delta_seconds'] * 1e3:.1f} ms)",
            f"  apply_level + BBO read {r['apply_level_bbo_read_per_s']:>12,.0f} deltas/s  "
            f"({r['apply_level_bbo_read_seconds'] * 1e3:.1f} ms)",
            f"  final book checked: best bid {r['final_best_bid']} / best ask {r['final_best_ask']}, "
            f"lots {r['final_bid_lots']} / {r['final_ask_lots']}",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    """`python benchmarks/l2_bench.py [--n N] [--seed S] [--repeat R] [--json]`."""
    ap = argparse.ArgumentParser(description="Prints L2 book throughput on lob-mix-v1.")
    ap.add_argument("--n", type=int, default=200_000, help="workload operations (default 200,000)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--repeat", type=int, default=3, help="runs per figure; the best is reported")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    a = ap.parse_args(argv)
    r = run(a.n, a.seed, a.repeat)
    print(json.dumps(r) if a.json else report(r))
    return 0

"""The matching book replays small lob-mix-v1 workloads to the book the workload's own reference predicts.

The ops go through the book exactly as lobterm/bench/engine.py sends them (`_replay`: limit for A and X,
market for M, cancel for C, events drained every 4,096 ops), so a book that passes here passes the
benchmark's own final-state check.
"""

from __future__ import annotations

import pytest

from lobterm.bench import lob_mix_v1
from lobterm.bench.engine import _replay
from lobterm.engine.events import LIMIT, MARKET, Cancelled, Done, Fill, Rejected
from lobterm.engine.matching import MatchingBook

SEEDS = [1, 7, 42, 2024]


@pytest.fixture(scope="module", params=SEEDS, ids=[f"seed{s}" for s in SEEDS])
def workload(request) -> dict:
    return lob_mix_v1.generate(5000, request.param)


def test_replay_ends_in_the_workloads_final_state(workload):
    book = MatchingBook("bench", "LOB", track_levels=True)
    _replay(workload["ops"], book)
    assert book.state() == workload["final_state"]


def replay_keeping_events(ops) -> tuple[MatchingBook, list]:
    book = MatchingBook("bench", "LOB")
    events = []
    for op in ops:
        kind = op[0]
        if kind == "A" or kind == "X":
            book.submit(op[1], op[2], op[3], op[4], LIMIT)
        elif kind == "C":
            book.cancel(op[1])
        else:
            book.submit(op[1], op[2], 0, op[3], MARKET)
        events += book.drain()
    return book, events


def test_replay_trades_what_the_workloads_reference_traded(workload):
    book, events = replay_keeping_events(workload["ops"])
    maker_fills = [e for e in events if isinstance(e, Fill) and e.is_maker]
    assert len(maker_fills) == workload["fills"]
    assert sum(f.size for f in maker_fills) == workload["filled_qty"]


def test_replay_refuses_nothing_and_expires_nothing(workload):
    # Every cancel names a resting order, and market orders are capped to the opposite side's depth.
    _, events = replay_keeping_events(workload["ops"])
    assert not [e for e in events if isinstance(e, Rejected)]
    assert {e.reason for e in events if isinstance(e, (Cancelled, Done))} <= {"cancelled", "filled"}


def test_replay_leaves_the_same_resting_orders_as_the_workloads_order_stream(workload):
    # The workload's per-order (l3) stream says which orders rest at the end and with how much.
    resting: dict[int, tuple[int, int, int]] = {}
    for action, oid, side, price, qty in workload["l3"]:
        if action == "del":
            resting.pop(oid, None)
        else:
            resting[oid] = (side, price, qty)
    book, _ = replay_keeping_events(workload["ops"])
    assert {oid: (side, price, size) for oid, side, price, size, _ in book.resting_orders()} == resting

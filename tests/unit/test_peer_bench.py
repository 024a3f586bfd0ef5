"""The peer benchmark's hftbacktest side (lobterm/bench/peer.py): lobterm's rows convert to its event
format and its loop runs to the end of the data, also where a fill exactly exhausts the rest of an order
(hftbacktest 2.4.4's partial-fill exchange then stops with InvalidOrderStatus, issues #301 and #312: the
loop looped on that error for ever before)."""

from __future__ import annotations

import numpy as np
import pytest

from lobterm.backtest import fastkernel as fk

pytest.importorskip("hftbacktest")

T0 = 1_767_225_600_000_000_000
MS = 1_000_000


def _rows() -> np.ndarray:
    """A snapshot (5 lots a level, bids 95..99, asks 101..105), then sells at 99: 15 lots (5 ahead of our
    10-lot bid there, then exactly our 10), then 3 more, then a quiet delta."""
    rows = [(fk.K_SNAP, T0, -1, 0, 10, 1)]
    rows += [(fk.K_LEVEL, T0, 0, p, 5, 0) for p in range(99, 94, -1)]
    rows += [(fk.K_LEVEL, T0, 1, p, 5, 0) for p in range(101, 106)]
    rows += [
        (fk.K_TRADE, T0 + 50 * MS, 1, 99, 15, 0),
        (fk.K_TRADE, T0 + 100 * MS, 1, 99, 3, 0),
        (fk.K_DELTA, T0 + 150 * MS, 1, 106, 5, 2),
    ]
    return np.array(rows, dtype=np.int64)


def test_the_rows_become_hftbacktest_events_in_its_units() -> None:
    from hftbacktest import DEPTH_CLEAR_EVENT, DEPTH_SNAPSHOT_EVENT, TRADE_EVENT

    from lobterm.bench.peer import to_hftbacktest

    ev = to_hftbacktest(_rows())
    assert ev.shape[0] == 14
    assert int(ev["ev"][0]) & 0xFF == DEPTH_CLEAR_EVENT
    assert all(int(e) & 0xFF == DEPTH_SNAPSHOT_EVENT for e in ev["ev"][1:11])
    assert int(ev["ev"][11]) & 0xFF == TRADE_EVENT and ev["px"][11] == 99.0 and ev["qty"][11] == 15.0
    assert (ev["exch_ts"] == ev["local_ts"]).all()


@pytest.mark.slow  # compiles hftbacktest's loop with numba (several seconds)
def test_the_hftbacktest_loop_runs_to_the_end_through_a_fill_of_exactly_the_rest() -> None:
    from lobterm.bench.peer import HBT_LOT, SIZE, run_hftbacktest, to_hftbacktest

    _wall, cpu, pos, wakeups = run_hftbacktest(to_hftbacktest(_rows()))
    # The order fills 10 lots with the first trade (the 15 lots less the 5 ahead) and its last half lot
    # with the second. hftbacktest 2.4.4's local position counts an order's fills only once it is
    # completely filled (local.rs applies fills on Status::Filled): 0.5 there, 10.5 if that changes.
    assert pos in (HBT_LOT, SIZE + HBT_LOT)
    assert wakeups >= 3 and cpu >= 0

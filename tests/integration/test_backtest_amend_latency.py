"""A request latency shorter than the gap between two market data batches must not change the fills.

Regression: with any amend latency > 0 a sim session's backtest roughly doubled its fills (seed 7,
60 s: 332 fills at 0 ms, 769 at 1, 5 or 20 ms, 462 of them by the cross rule). The desk applied a
request that came due between two batches only with the next batch's first event, so its answer
(Amended) reached the market maker behind that batch, after it had requoted on it with the quote still
"amending": the quote stayed where it was for one more batch and the market walked through it. Both
paths now deliver such answers at their due time, before the next batch.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest_replay import record_sim_session

from lobterm.backtest.fast import run_fast_backtest
from lobterm.backtest.models import LatencyModel
from lobterm.backtest.reference import run_backtest

pytest.importorskip("numba")


@pytest.fixture(scope="module")
def session(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("amend") / "sim-7.lobterm.sqlite"
    record_sim_session(path, seed=7, duration_s=20.0, mm={"levels": 3})
    return path


@pytest.mark.parametrize("run", [run_backtest, run_fast_backtest], ids=["reference", "fast"])
def test_amend_latency_below_the_batch_gap_keeps_the_fills(session: Path, run) -> None:
    base = run(session, None, latency=LatencyModel())
    late = run(session, None, latency=LatencyModel(amend_ms=5.0))
    assert base.fills >= 50
    # The sim publishes a batch every 50 ms: a 5 ms amend arrives before the next one.
    assert abs(late.fills - base.fills) <= 0.03 * base.fills, (base.fills, late.fills, late.fills_by_rule)
    assert late.fills_by_rule["cross"] <= base.fills_by_rule["cross"] + 0.03 * base.fills
    assert abs(late.amends_sent - base.amends_sent) <= 0.03 * base.amends_sent


def test_fast_matches_reference_with_amend_and_mixed_latency(session: Path) -> None:
    # The differential test's tolerance with latency (tests/integration/test_backtest_differential.py).
    for lat in (
        LatencyModel(amend_ms=5.0),
        LatencyModel(8.0, 3.0, 5.0, 30.0, 7),
        LatencyModel.constant(120.0),
    ):
        ref = run_backtest(session, None, latency=lat)
        fast = run_fast_backtest(session, None, latency=lat)
        assert abs(fast.fills - ref.fills) <= 0.12 * max(ref.fills, 50), (lat.text(), ref.fills, fast.fills)

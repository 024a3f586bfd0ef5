"""`--latency recorded`: the session's own request -> answer times, noted by the recorder, drive the
backtest's latency on both paths.

A sim session recorded with a known venue latency (the sim's `latency_ms`: our requests reach its book
at the first step at or after send + latency; at 20 steps a second and 100 ms, exactly 100 ms after
they were sent) notes 100 ms for every request type; backtested with `recorded`, it gives the same
fills as a constant 100 ms latency (every draw is 100 ms), and not those of no latency.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from session_files import record

from lobterm.backtest.fast import run_fast_backtest
from lobterm.backtest.models import LatencyModel, ModelError, parse_latency, recorded_latency
from lobterm.backtest.reference import run_backtest
from lobterm.config import Config
from lobterm.recording.reader import SessionReader
from lobterm.venues.sim import SimVenue

pytest.importorskip("numba")

VENUE_LATENCY_MS = 100


@pytest.fixture(scope="module")
def session(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("reclat")
    cfg = Config()
    original = SimVenue.__init__

    def with_latency(self, *args, **kwargs) -> None:
        kwargs["latency_ms"] = VENUE_LATENCY_MS
        original(self, *args, **kwargs)

    SimVenue.__init__ = with_latency  # type: ignore[method-assign]
    try:
        rec, _ = record(directory, 20.0, config=cfg)
    finally:
        SimVenue.__init__ = original  # type: ignore[method-assign]
    return Path(rec.path)


def test_the_recorder_notes_request_to_answer_times(session: Path) -> None:
    with SessionReader(session) as reader:
        lat = recorded_latency(reader)
    s = lat.summary()
    assert set(s) >= {"new", "amend"}, s
    for kind, fig in s.items():
        assert fig["n"] >= (1 if kind == "cancel" else 5), (kind, fig)
        assert fig["median_ms"] == VENUE_LATENCY_MS, (kind, fig)
        assert fig["max_ms"] == VENUE_LATENCY_MS, (kind, fig)  # requests leave at steps: exact


@pytest.mark.parametrize("run", [run_backtest, run_fast_backtest], ids=["reference", "fast"])
def test_recorded_latency_shifts_fills_as_the_same_constant(session: Path, run) -> None:
    recorded = run(session, None, latency=parse_latency("recorded,seed=3"))
    constant = run(session, None, latency=LatencyModel.constant(VENUE_LATENCY_MS))
    none = run(session, None, latency=LatencyModel())
    assert recorded.fills >= 20
    assert (recorded.fills, recorded.net_pnl, recorded.amends_sent) == (
        constant.fills,
        constant.net_pnl,
        constant.amends_sent,
    )
    assert (none.fills, none.amends_sent) != (recorded.fills, recorded.amends_sent)
    assert recorded.latency.startswith("recorded: new median 100 ms"), recorded.latency


def test_fast_matches_reference_with_recorded_latency(session: Path) -> None:
    lat = parse_latency("recorded,seed=11")
    ref, fast = run_backtest(session, None, latency=lat), run_fast_backtest(session, None, latency=lat)
    assert abs(fast.fills - ref.fills) <= 0.12 * max(ref.fills, 50), (ref.fills, fast.fills)


def test_a_session_without_request_times_says_so(tmp_path: Path) -> None:
    from conftest_replay import record_sim_session

    path = tmp_path / "old.lobterm.sqlite"
    record_sim_session(path, seed=5, duration_s=3.0)  # writes events only, as sessions did before
    for run in (run_backtest, run_fast_backtest):
        with pytest.raises(ModelError, match="recorded no request -> answer times"):
            run(path, None, latency=parse_latency("recorded"))
    assert run_backtest(path, None).fills >= 0  # and it still backtests with the other models


def test_parse_recorded() -> None:
    m = parse_latency("recorded, seed=7, jitter=2")
    assert (m.recorded, m.seed, m.jitter_ms, m.new_ms) == (True, 7, 2.0, 0.0)
    assert not m.is_zero
    with pytest.raises(ModelError):
        parse_latency("recorded,new=5")

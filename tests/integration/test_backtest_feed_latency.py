"""Feed latency (`--latency feed=MS[,feed_jitter=MS]`, lobterm/backtest/models.py): the strategy sees the
venue's data that much late. Modelled as the delay added to every request's latency (a strategy whose
view lags by d sends, at venue time t + d, what it decided on the venue's state at t): a feed delay gives
the same fills as the same request latency, on both paths, with a recorded latency it adds to every
recorded sample, its random part is seeded. A feed latency taken from the session (`feed=recorded`) is
refused on a session that recorded none (a sim session): tests/integration/test_feed_latency_recorded.py
has the sessions that did."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from session_files import record

from lobterm.backtest.fast import run_fast_backtest
from lobterm.backtest.models import LatencyModel, ModelError, parse_latency
from lobterm.backtest.reference import run_backtest
from lobterm.config import Config
from lobterm.trading.paper import PaperConfig
from lobterm.venues.sim import SimVenue

pytest.importorskip("numba")

PATHS = pytest.mark.parametrize("run", [run_backtest, run_fast_backtest], ids=["reference", "fast"])


@pytest.fixture(scope="module")
def session(tmp_path_factory) -> Path:
    """A sim session whose venue answered every request 100 ms after it was sent (its notes say so)."""
    directory = tmp_path_factory.mktemp("feedlat")
    original = SimVenue.__init__

    def with_latency(self, *args, **kwargs) -> None:
        kwargs["latency_ms"] = 100
        original(self, *args, **kwargs)

    SimVenue.__init__ = with_latency  # type: ignore[method-assign]
    try:
        rec, _ = record(directory, 10.0, config=Config())
    finally:
        SimVenue.__init__ = original  # type: ignore[method-assign]
    return Path(rec.path)


def _figures(res) -> tuple:
    return (res.fills, res.net_pnl, res.quotes_sent, res.amends_sent, res.cancels_sent)


@PATHS
def test_a_feed_delay_shifts_fills_as_the_same_request_latency(session: Path, run) -> None:
    feed = run(session, None, latency=parse_latency("feed=60"))
    same = run(session, None, latency=LatencyModel.constant(60))
    none = run(session, None, latency=LatencyModel())
    assert feed.fills >= 10 and _figures(feed) == _figures(same)
    assert _figures(none) != _figures(feed)
    assert feed.latency == "requests none; feed 60 ms", feed.latency


@PATHS
def test_a_feed_delay_adds_to_the_recorded_request_times(session: Path, run) -> None:
    both = run(session, None, latency=parse_latency("recorded,seed=2,feed=50"))
    constant = run(session, None, latency=LatencyModel.constant(150))
    recorded = run(session, None, latency=parse_latency("recorded,seed=2"))
    assert _figures(both) == _figures(constant) and _figures(both) != _figures(recorded)
    assert both.latency.endswith("(seed 2); feed 50 ms"), both.latency


def test_the_random_feed_delay_is_seeded_and_the_same_on_both_paths(session: Path) -> None:
    lat = parse_latency("new=20,feed=10,feed_jitter=80,seed=4")
    a, b = run_fast_backtest(session, None, latency=lat), run_fast_backtest(session, None, latency=lat)
    assert _figures(a) == _figures(b)
    # With no request jitter it draws exactly as the request jitter of the same width and seed.
    assert _figures(a) == _figures(
        run_fast_backtest(session, None, latency=parse_latency("new=30,cancel=10,amend=10,jitter=80,seed=4"))
    )
    ref = run_backtest(session, None, latency=lat)
    assert abs(ref.fills - a.fills) <= 0.12 * max(ref.fills, 50), (ref.fills, a.fills)


@PATHS
def test_a_feed_latency_from_a_session_without_one_is_refused_with_the_reason(session: Path, run) -> None:
    for text in ("feed=recorded", "recorded,feed=recorded"):
        with pytest.raises(ModelError, match="recorded no feed latency"):
            run(session, None, latency=parse_latency(text))
    with pytest.raises(ModelError, match="feed_jitter"):
        parse_latency("fed=3")  # the message lists the keys
    with pytest.raises(ModelError, match="between 0 and"):
        parse_latency("feed=-1")


@given(
    feed=st.floats(0, 1000, allow_nan=False),
    fj=st.floats(0, 1000, allow_nan=False),
    new=st.floats(0, 1000, allow_nan=False),
    jitter=st.floats(0, 1000, allow_nan=False),
)
def test_the_paper_config_adds_the_feed_delay_to_every_request_type(
    feed: float, fj: float, new: float, jitter: float
) -> None:
    lat = parse_latency(f"new={new!r},jitter={jitter!r},feed={feed!r},feed_jitter={fj!r},seed=9")
    cfg = lat.paper(PaperConfig())
    f = round(feed * 1e6)
    assert cfg.new_latency_ns == round(new * 1e6) + f
    assert cfg.cancel_latency_ns == cfg.amend_latency_ns == f
    assert cfg.latency_jitter_ns == round(jitter * 1e6) + round(fj * 1e6)
    assert lat.is_zero is (not (feed or fj or new or jitter))

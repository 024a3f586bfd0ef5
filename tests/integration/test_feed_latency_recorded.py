"""Recorded feed latency (issue 14, item 2): a live session notes the venue's time of its market data beside
our receive time (lobterm/venues/ccxt/streams.py, `Note("feed", "latency", ...)` by the kernel), and
`--latency feed=recorded` draws the backtest's feed delay from those samples (lobterm/backtest/models.py)
on both paths and per session in a sweep; a session without them is refused in one line. The live part
runs the unmodified ccxt.pro.binance against the Binance loopback stamping its events a known 250 ms
before its clock."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from binance_loopback import BinanceLoopback
from hypothesis import given, settings
from hypothesis import strategies as st
from session_files import record

from lobterm.assemble import build_async
from lobterm.backtest.fast import run_fast_backtest
from lobterm.backtest.models import LatencyModel, ModelError, feed_latency, parse_latency
from lobterm.backtest.reference import run_backtest
from lobterm.cli import main
from lobterm.config import Config
from lobterm.engine.events import BUY, SELL
from lobterm.recording.reader import SessionReader
from lobterm.recording.schema import Note
from lobterm.services import start_recording
from lobterm.venues.ccxt.streams import FEED_SAMPLES_MAX, venue_time_ns
from lobterm.venues.ccxt.venue import CcxtVenue
from lobterm.venues.settings import venue_from_dict
from lobterm.venues.sim import SimVenue
from tests.helpers.ccxt import Run, seed_book, venue_config, wait_for

pytest.importorskip("numba")

LAG_MS = 250
FEED_MS = 60
PATHS = pytest.mark.parametrize("run", [run_backtest, run_fast_backtest], ids=["reference", "fast"])


# ---- a live session on the Binance loopback --------------------------------------------------------
@pytest.fixture
async def srv(request):
    s = BinanceLoopback()
    s.event_time_lag_ms = getattr(request, "param", LAG_MS)
    seed_book(s)
    await s.start()
    yield s
    await s.stop()


def _feed_notes(path: Path) -> list[Note]:
    with SessionReader(path) as reader:
        return [n for _, n in reader.notes() if (n.source, n.action) == ("feed", "latency")]


async def _record_live(srv, tmp_path: Path) -> tuple[Path, Run]:
    """A paper session on the loopback (the real ccxt class), recorded: 12 book updates, 4 trades."""
    config = Config(venues={"binance": venue_config(srv, keys=False)})
    kernel = (await build_async(config, strategies=False)).kernel
    rec = start_recording(kernel, tmp_path, config=config)
    r = Run(kernel)
    await kernel.start()
    try:
        await wait_for(lambda: r.synced_with(srv), 5, "the first snapshot")
        for i in range(12):  # book updates, and trades from the takes
            srv.add_liquidity(BUY, f"{64990 - i:.2f}", "0.3")
            if i % 3 == 0:
                srv.take(SELL, "0.1")
            await wait_for(lambda: r.synced_with(srv), 5, f"update {i}")
        await wait_for(lambda: r.live.stats["trades"] >= 4, 5, "the trades")
    finally:
        await kernel.stop()  # notes what is left
    return Path(rec.path), r


async def test_a_live_session_notes_the_venues_event_times_and_the_backtest_draws_from_them(
    srv, tmp_path
) -> None:
    path, r = await _record_live(srv, tmp_path)
    notes = _feed_notes(path)
    pairs = [p for n in notes for p in n.detail["binance"]["BTC/USDT"]]
    assert len(pairs) >= 12 and all(set(n.detail) == {"binance"} for n in notes)
    delays_ms = [(local - venue) / 1e6 for venue, local in pairs]
    # The venue's ms time is truncated (never later than ours); the loopback publishes every 20 ms.
    assert all(LAG_MS <= d < LAG_MS + 2000 for d in delays_ms), delays_ms
    assert "bad_venue_times" in r.live.stats
    # The session's own samples are what feed=recorded takes, named, per market.
    with SessionReader(path) as reader:
        feed, clamped, where = feed_latency(reader, ("binance", "BTC/USDT"))
    assert sorted(feed) == sorted(local - venue for venue, local in pairs) and clamped == 0
    assert where == "binance BTC/USDT"
    res = run_backtest(path, None, latency=parse_latency("feed=recorded,seed=3"))
    median = re.search(r"feed recorded: median ([0-9.]+) ms", res.latency)
    assert median and LAG_MS <= float(median[1]) < LAG_MS + 2000, res.latency
    assert "on binance BTC/USDT" in res.latency


@pytest.mark.parametrize("srv", [-500], indirect=True)
async def test_a_venue_clock_ahead_of_ours_is_clamped_to_zero_and_said(srv, tmp_path) -> None:
    """The venue stamps its events 500 ms ahead of our clock: every raw delay is negative; the backtest
    takes them as 0 (no offset is estimated) and its result says how many it clamped."""
    path, _ = await _record_live(srv, tmp_path)
    pairs = [p for n in _feed_notes(path) for p in n.detail["binance"]["BTC/USDT"]]
    assert len(pairs) >= 12 and all(local < venue for venue, local in pairs)
    res = run_fast_backtest(path, None, latency=parse_latency("feed=recorded"))
    assert f"median 0 ms, p90 0 ms (n={len(pairs)} on binance BTC/USDT, {len(pairs)} negative clamped" in (
        res.latency
    ), res.latency


# ---- sim sessions whose venue says every event reached us FEED_MS late -------------------------------
def _constant_feed(self) -> dict[str, list[list[int]]]:
    now = self.clock.now()
    return {self.instrument.symbol: [[now - FEED_MS * 1_000_000 - k, now - k] for k in (0, 7, 13)]}


@pytest.fixture(scope="module")
def sessions(tmp_path_factory) -> tuple[Path, Path]:
    """(a sim session with constant feed samples of FEED_MS whose venue answered every request 100 ms
    after it was sent, a plain one without feed samples)."""
    d = tmp_path_factory.mktemp("feedrec")
    original = SimVenue.__init__

    def with_latency(self, *args, **kwargs) -> None:
        kwargs["latency_ms"] = 100
        original(self, *args, **kwargs)

    SimVenue.__init__ = with_latency  # type: ignore[method-assign]
    SimVenue.take_feed_latency = _constant_feed  # type: ignore[attr-defined]
    try:
        noted, _ = record(d / "noted", 10.0, config=Config())
    finally:
        SimVenue.__init__ = original  # type: ignore[method-assign]
        del SimVenue.take_feed_latency  # type: ignore[attr-defined]
    plain, _ = record(d / "plain", 4.0, config=Config())
    return Path(noted.path), Path(plain.path)


def _figures(res) -> tuple:
    return (res.fills, res.net_pnl, res.quotes_sent, res.amends_sent, res.cancels_sent)


@PATHS
def test_constant_recorded_feed_samples_give_the_fills_of_that_constant_delay(sessions, run) -> None:
    noted, _ = sessions
    assert len(_feed_notes(noted)) >= 2
    recorded = run(noted, None, latency=parse_latency("feed=recorded,seed=5"))
    constant = run(noted, None, latency=parse_latency(f"feed={FEED_MS}"))
    none = run(noted, None, latency=LatencyModel())
    assert recorded.fills >= 10 and _figures(recorded) == _figures(constant) != _figures(none)
    assert recorded.latency.startswith("requests none; feed recorded: median 60 ms, p90 60 ms"), (
        recorded.latency
    )
    # With the recorded request times (100 ms) as well: the same as a constant 160 ms.
    both = run(noted, None, latency=parse_latency("recorded,seed=2,feed=recorded"))
    assert _figures(both) == _figures(run(noted, None, latency=LatencyModel.constant(100 + FEED_MS)))
    # With a constant request latency: the two add.
    plus = run(noted, None, latency=parse_latency("new=20,cancel=20,amend=20,feed=recorded"))
    assert _figures(plus) == _figures(run(noted, None, latency=LatencyModel.constant(20 + FEED_MS)))


def test_random_recorded_feed_samples_are_drawn_by_seed_the_same_on_both_paths(tmp_path) -> None:
    rng = random.Random(1)

    def spread(self) -> dict[str, list[list[int]]]:
        now = self.clock.now()
        return {
            self.instrument.symbol: [[now - rng.randrange(20_000_000, 80_000_000), now] for _ in range(20)]
        }

    SimVenue.take_feed_latency = spread  # type: ignore[attr-defined]
    try:
        rec, _ = record(tmp_path, 10.0, config=Config())
    finally:
        del SimVenue.take_feed_latency  # type: ignore[attr-defined]
    lat = parse_latency("feed=recorded,seed=4")
    a, b = run_fast_backtest(rec.path, None, latency=lat), run_fast_backtest(rec.path, None, latency=lat)
    assert _figures(a) == _figures(b)
    other = run_fast_backtest(rec.path, None, latency=parse_latency("feed=recorded,seed=9"))
    assert _figures(other) != _figures(a)  # another seed, other draws
    ref = run_backtest(rec.path, None, latency=lat)
    assert _figures(ref) == _figures(run_backtest(rec.path, None, latency=lat))
    # The differential test's tolerance with latency (tests/integration/test_backtest_differential.py).
    assert abs(ref.fills - a.fills) <= 0.12 * max(ref.fills, 50), (ref.fills, a.fills)


def test_a_session_without_feed_samples_is_refused_in_one_line(sessions, capsys) -> None:
    _, plain = sessions
    for run in (run_backtest, run_fast_backtest):
        with pytest.raises(ModelError, match="recorded no feed latency"):
            run(plain, None, latency=parse_latency("feed=recorded"))
    code = main(
        ["--no-default-config", "backtest", str(plain), "--latency", "feed=recorded", "--no-progress"]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "recorded no feed latency" in err, err


def test_a_sweep_takes_each_sessions_own_feed_samples(sessions, tmp_path, capsys) -> None:
    noted, plain = sessions
    for name, p in (("noted", noted), ("plain", plain)):
        (tmp_path / f"{name}.lobterm.sqlite").symlink_to(p)
    db = tmp_path / "r.sqlite"
    code = main(["--no-default-config", "sweep", str(tmp_path), "--grid", "spread_ticks=2,6",
                 "--latency", "feed=recorded", "--workers", "1", "--results", str(db), "--json",
                 "--no-progress"])  # fmt: skip
    d = json.loads(capsys.readouterr().out)
    assert code == 0 and (d["sweep"]["ran"], d["sweep"]["errors"]) == (4, 2), d["sweep"]
    assert "per session" in d["sweep"]["models"]
    assert all("recorded no feed latency" in e["error"] for e in d["ranking"]), d["ranking"]
    constant = main(["--no-default-config", "sweep", str(noted), "--grid", "spread_ticks=2,6",
                     "--latency", f"feed={FEED_MS}", "--workers", "1", "--results",
                     str(tmp_path / "c.sqlite"), "--json", "--no-progress"])  # fmt: skip
    c = json.loads(capsys.readouterr().out)
    assert constant == 0

    def figures(x: dict) -> list:
        return sorted(
            (json.dumps(e["params"], sort_keys=True), e["median_net_pnl"], e["fills"]) for e in x["ranking"]
        )

    assert figures(d) == figures(c)


# ---- the spec and bad input ---------------------------------------------------------------------------
def test_feed_recorded_parses_and_refuses_a_constant_beside_it() -> None:
    lat = parse_latency("feed=recorded,feed_jitter=5,seed=3")
    assert lat.feed_recorded and lat.feed_ms == 0 and not lat.is_zero
    assert parse_latency("recorded,feed=recorded").recorded
    with pytest.raises(ModelError, match="not both"):
        parse_latency("feed=recorded,feed=20")


def _offline_venue() -> CcxtVenue:
    """A ccxt venue not started (no network): its streams' feed sampling is all these tests use."""
    return CcxtVenue(
        venue_from_dict("binance", {"exchange": "binance", "symbols": ["BTC/USDT"]}), rng=random.Random(5)
    )


_garbage = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=8),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
)


@settings(max_examples=200, deadline=None)
@given(values=st.lists(_garbage, max_size=60))
def test_bad_venue_times_are_skipped_and_counted_never_raised(values) -> None:
    venue = _offline_venue()
    streams = venue.streams
    local = 1_765_000_000_000_000_000
    for v in values:
        streams.sample_feed("BTC/USDT", v, local)
    good = [v for v in values if venue_time_ns(v) is not None and abs(local - venue_time_ns(v)) <= 3.6e12]
    assert venue.stats["bad_venue_times"] == len(values) - len(good)
    kept = streams.take_feed_latency().get("BTC/USDT", [])
    assert len(kept) == min(len(good), FEED_SAMPLES_MAX)
    assert all(type(a) is int and type(b) is int and b == local for a, b in kept)
    assert streams.take_feed_latency() == {}


def test_the_samples_kept_between_takes_are_bounded() -> None:
    venue = _offline_venue()
    base = 1_765_000_000_000
    for i in range(10_000):
        venue.streams.sample_feed("BTC/USDT", base + i, (base + i + 5) * 1_000_000)
    kept = venue.take_feed_latency()["BTC/USDT"]
    assert len(kept) == FEED_SAMPLES_MAX and all(b - a == 5_000_000 for a, b in kept)
    assert max(a for a, _ in kept) > (base + 5000) * 1_000_000  # a reservoir, not the first 32


_pair = st.one_of(_garbage, st.lists(st.one_of(st.integers(), _garbage), min_size=2, max_size=2))


@settings(max_examples=200, deadline=None)
@given(detail=st.one_of(_garbage, st.dictionaries(st.text(max_size=3), st.one_of(
    _garbage, st.dictionaries(st.text(max_size=3), st.one_of(_garbage, st.lists(_pair, max_size=4)), max_size=2),
), max_size=2)))  # fmt: skip
def test_garbage_feed_notes_are_skipped_never_raised(detail) -> None:
    good = Note(0, "feed", "latency", {"v": {"S": [[1_000, 61_000], [5_000, 1_000]]}})
    reader = SimpleNamespace(notes=lambda: iter([(1, Note(0, "feed", "latency", detail)), (2, good)]))
    feed, clamped, where = feed_latency(reader, ("v", "S"))
    assert all(type(d) is int and 0 <= d <= 3_600_000_000_000 for d in feed)
    if not (isinstance(detail, dict) and "v" in detail):
        assert (feed, clamped, where) == ((60_000, 0), 1, "v S")  # the negative one is clamped to 0

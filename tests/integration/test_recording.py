"""Recording sessions to real SQLite files: the recorder, the reader, verify, export, sessions listing."""

from __future__ import annotations

import asyncio
import csv
import json
import sqlite3
from decimal import Decimal

import pytest

from lobterm.assemble import build_sim_kernel
from lobterm.config import Config, quote_params
from lobterm.engine.events import OUR_OWNER, BookDelta, Fill, Trade
from lobterm.headless import run_headless
from lobterm.recording.export import export_session
from lobterm.recording.reader import SessionReader, list_sessions, session_info
from lobterm.recording.recorder import Recorder
from lobterm.recording.schema import FORMAT_VERSION, Note
from lobterm.recording.state import capture_state, restore_state
from lobterm.recording.verify import replay_kernel, verify
from lobterm.services import start_recording
from lobterm.venues.settings import VenueConfig


def record_sim(
    tmp_path,
    seconds: float = 60.0,
    *,
    checkpoint_every_s: float = 5.0,
    mm: bool = True,
    paper: bool = False,
    config: Config | None = None,
):
    """A headless sim run on the virtual clock, recorded; returns (kernel, recorder, our fills, trades)."""
    cfg = config or Config()
    kernel, venue = build_sim_kernel(cfg, virtual=True, paper=paper)
    fills, trades = [], []
    kernel.bus.subscribe(Fill, lambda ev: fills.append(ev) if ev.owner == OUR_OWNER else None)
    kernel.bus.subscribe(Trade, trades.append)
    rec = start_recording(
        kernel, tmp_path, config=cfg, seed=cfg.sim.seed, checkpoint_every_s=checkpoint_every_s
    )
    maker = kernel.add_market_maker(quote_params(cfg)) if mm else None
    venue.open()
    if maker is not None:
        maker.resume()
    for _ in range(round(seconds * cfg.sim.rate_hz)):
        venue.step()
        kernel.on_timer()
    rec.close()
    return kernel, rec, fills, trades


def test_a_recorded_sim_session_with_the_market_maker_verifies_hash_for_hash(tmp_path) -> None:
    kernel, rec, fills, _ = record_sim(tmp_path, 60.0, checkpoint_every_s=5.0)
    assert len(fills) > 20  # the market maker really traded: our orders are part of the hashed state
    result = verify(rec.path)
    assert result.ok and result.mismatch is None
    assert result.checkpoints == result.total_checkpoints >= 12
    with SessionReader(rec.path) as s:
        last = s.checkpoints()[-1]
        # The file holds every bus event plus the kernel's notes (the OMS's request -> answer times).
        notes = sum(1 for _ in s.notes())
        assert notes >= 1
        assert last.seq == s.last_seq == rec.events_written == kernel.bus.published + notes
        assert last.hash == kernel.state_hash()  # the final checkpoint is the kernel's end state


def test_every_bus_event_is_stored_in_order_with_its_kind_and_ts(tmp_path) -> None:
    kernel, venue = build_sim_kernel(Config(), virtual=True)
    seen = []
    kernel.bus.subscribe_all(seen.append)
    rec = start_recording(kernel, tmp_path)
    venue.open()
    for _ in range(200):
        venue.step()
        kernel.on_timer()
    rec.note("ladder", "buy", {"price": "65000.1"})
    rec.close()
    with SessionReader(rec.path) as s:
        stored = list(s.events())
        raw = list(s.raw_events(1, 3))
    assert [ev for _, _, ev in stored[:-1]] == seen
    assert [seq for seq, _, _ in stored] == list(range(1, len(seen) + 2))
    assert [kind for _, _, kind, _ in raw] == [type(ev).__name__ for ev in seen[:3]]
    assert all(ts == ev.ts for (_, ts, ev) in stored)
    note = stored[-1][2]
    assert isinstance(note, Note) and (note.source, note.action, note.detail) == (
        "ladder",
        "buy",
        {"price": "65000.1"},
    )


def test_the_header_names_instruments_venues_seed_and_hides_secrets(tmp_path) -> None:
    cfg = Config()
    cfg.feed.token = "s3cret-token-value"
    cfg.venues = {"x": VenueConfig("x", exchange="binance", api_key="AKIA123")}  # in the header only
    cfg.hedge = {"policy": "twap"}
    _, rec, _, _ = record_sim(tmp_path, 2.0, mm=False, config=cfg)
    raw = rec.path.read_bytes()
    assert b"s3cret-token-value" not in raw and b"AKIA123" not in raw
    with SessionReader(rec.path) as s:
        assert s.header["format"] == "lobterm-session" and s.format_version == FORMAT_VERSION
        assert s.seed == 1 and s.clock == "virtual"
        assert s.venues[0]["name"] == "sim"
        inst = s.instruments()[("sim", "BTC/USDT")]
        assert inst.tick_size == Decimal("0.1") and inst.lot_size == Decimal("0.001")
        assert s.config["feed"]["token"] == "<redacted>"
        assert s.config["venues"]["x"]["api_key"] == "<redacted>"
        assert s.config["hedge"]["policy"] == "twap" and s.config["hedge"]["enabled"] is True
        assert s.closed and s.end["last_seq"] == s.last_seq


def test_a_tampered_checkpoint_is_named_by_verify(tmp_path) -> None:
    _, rec, _, _ = record_sim(tmp_path, 30.0, checkpoint_every_s=5.0)
    with SessionReader(rec.path) as s:
        cps = s.checkpoints()
    bad = cps[2]
    db = sqlite3.connect(rec.path)
    db.execute("UPDATE checkpoints SET hash = ? WHERE seq = ?", ("0" * 64, bad.seq))
    db.commit()
    db.close()
    result = verify(rec.path)
    assert not result.ok
    assert (result.mismatch.seq, result.mismatch.ts, result.mismatch.expected) == (bad.seq, bad.ts, "0" * 64)
    assert result.checkpoints == 3


def test_a_missing_event_is_damage_named_by_verify_not_a_wrong_answer(tmp_path) -> None:
    _, rec, _, _ = record_sim(tmp_path, 10.0, mm=False)
    db = sqlite3.connect(rec.path)
    db.execute("DELETE FROM events WHERE seq = 50")
    db.commit()
    db.close()
    result = verify(rec.path)
    assert not result.ok and result.exit_code == 2
    assert result.damage == "events missing: expected seq 50, found 51" and result.events == 49


def test_a_paper_session_verifies_too(tmp_path) -> None:
    _, rec, fills, _ = record_sim(tmp_path, 30.0, paper=True)
    assert fills
    assert verify(rec.path).ok


def test_restoring_a_checkpoint_then_replaying_the_rest_reaches_the_recorded_end(tmp_path) -> None:
    kernel, rec, _, _ = record_sim(tmp_path, 30.0, checkpoint_every_s=5.0)
    with SessionReader(rec.path) as s:
        cp = s.checkpoints()[2]
        fresh = replay_kernel(s)
        restore_state(fresh, s.checkpoint_state(cp.seq))
        assert fresh.state_hash() == cp.hash  # the state alone gives back the hash
        for _, ts, ev in s.events(cp.seq + 1, notes=False):
            fresh.clock.advance_to(ts)
            fresh.bus.publish(ev)
    assert fresh.state_hash() == kernel.state_hash()
    assert capture_state(fresh)["positions"] == capture_state(kernel)["positions"]


def test_the_headless_run_records_by_request_and_says_where(tmp_path) -> None:
    summary = run_headless(Config(), 5.0, record_to=tmp_path)
    assert summary.session is not None and summary.session.startswith(str(tmp_path))
    info = session_info(summary.session)
    # + the market maker note, the shutdown's two notes (its start and what it left) and the OMS's
    # request -> answer times (one note a second of kernel time, and the rest at the end)
    with SessionReader(summary.session) as s:
        times = sum(1 for _, n in s.notes() if (n.source, n.action) == ("oms", "request_times"))
    assert 1 <= times <= 7
    assert info.closed and info.events == summary.events + 3 + times
    assert run_headless(Config(), 1.0).session is None  # the API records only when asked


def test_sessions_are_listed_with_start_duration_venues_symbols_events_and_size(tmp_path) -> None:
    _, rec, _, _ = record_sim(tmp_path, 20.0, mm=False)
    (tmp_path / "junk.lobterm.sqlite").write_bytes(b"not sqlite at all" * 100)
    infos, problems = list_sessions(tmp_path)
    assert len(infos) == 1 and len(problems) == 1 and "not an SQLite database" in problems[0].problem
    i = infos[0]
    assert i.venues == ["sim"] and i.symbols == ["sim:BTC/USDT"]
    assert i.duration_s == pytest.approx(20.0, abs=0.1)
    assert i.events == rec.events_written and i.size_bytes > 0 and i.closed
    assert json.dumps(i.as_dict())


def test_export_csv_matches_the_kernels_fills_and_trades(tmp_path) -> None:
    kernel, rec, fills, trades = record_sim(tmp_path, 30.0)
    out = tmp_path / "out"
    result = export_session(rec.path, "csv", out)
    assert result.damage is None
    written = result.tables
    inst = kernel.default_market.instrument
    with open(written["fills"][0], newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(fills) == written["fills"][1] > 0
    for row, ev in zip(rows, fills, strict=False):
        assert int(row["ts_ns"]) == ev.ts and int(row["order_id"]) == ev.order_id
        assert Decimal(row["price"]) == inst.price(ev.price) and Decimal(row["size"]) == inst.size(ev.size)
        assert row["side"] == ("buy" if ev.side == 0 else "sell")
        assert Decimal(row["fee"]) == inst.fee(ev.fee)
    with open(written["trades"][0], newline="") as f:
        trows = list(csv.DictReader(f))
    assert [(int(r["trade_id"]), Decimal(r["price"])) for r in trows] == [
        (t.trade_id, inst.price(t.price)) for t in trades
    ]
    with open(written["top_of_book"][0], newline="") as f:
        tops = list(csv.DictReader(f))
    bb, ba = kernel.default_market.l2.best_bid(), kernel.default_market.l2.best_ask()
    assert (Decimal(tops[-1]["bid"]), Decimal(tops[-1]["ask"])) == (inst.price(bb[0]), inst.price(ba[0]))
    assert len(tops) > 100


async def test_the_async_recorder_batches_many_events_per_transaction(tmp_path) -> None:
    kernel, venue = build_sim_kernel(Config(), virtual=False)
    rec = start_recording(kernel, tmp_path, checkpoint_every_s=0.2, flush_interval_s=0.05)
    await kernel.start()
    assert not rec.sync
    market = kernel.default_market
    n = 20_000
    for i in range(n):  # a burst far faster than one await per event could store
        kernel.bus.publish(BookDelta(kernel.clock.now(), market.venue, market.symbol, 10**9 + i, 0, 1, 1))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while rec.backlog and loop.time() < deadline:
        await asyncio.sleep(0.01)
    assert rec.backlog == 0 and rec.events_written >= n
    assert rec.flushes < 50  # thousands of events per transaction, not one each
    await asyncio.sleep(0.3)
    await kernel.stop()
    assert rec.closed and kernel.recorder is rec
    with SessionReader(rec.path) as s:
        assert s.closed and s.last_seq == rec.events_written
        assert len(s.checkpoints()) >= 1
    assert verify(rec.path).ok


def test_a_recorder_never_overwrites_a_session(tmp_path) -> None:
    path = tmp_path / "a.lobterm.sqlite"
    path.write_bytes(b"x")
    from lobterm.recording.recorder import RecorderError

    with pytest.raises(RecorderError, match="already exists"):
        Recorder(path, {"format": "lobterm-session"}).open()
    assert path.read_bytes() == b"x"


def test_an_unencodable_event_becomes_a_note_and_the_rest_is_kept(tmp_path) -> None:
    kernel, venue = build_sim_kernel(Config(), virtual=True)
    rec = start_recording(kernel, tmp_path)
    venue.open()
    kernel.bus.publish(object())  # a broken publisher
    venue.step()
    rec.close()
    with SessionReader(rec.path) as s:
        events = [ev for _, _, ev in s.events()]
    assert any(isinstance(e, Note) and e.action == "unrecordable_event" for e in events)
    assert sum(isinstance(e, BookDelta) for e in events) > 0 and rec.errors == 1


def test_a_checkpoint_carries_an_average_cost_beyond_64_bits(tmp_path) -> None:
    # A position that never goes flat grows its average cost's numerator past what msgpack ints carry.
    from fractions import Fraction

    import msgspec

    kernel, rec, fills, _ = record_sim(tmp_path, 5.0, checkpoint_every_s=5.0)
    m = kernel.default_market
    p = kernel.inventory.position(m.venue, m.symbol)
    p.avg_cost = Fraction(3**80 + 1, 7)
    p.realized = Fraction(-(5**70), 3)
    state = msgspec.msgpack.decode(msgspec.msgpack.encode(capture_state(kernel)))
    fresh, _venue = build_sim_kernel(Config(), virtual=True)
    restore_state(fresh, state)
    q = fresh.inventory.position(m.venue, m.symbol)
    assert (q.avg_cost, q.realized) == (p.avg_cost, p.realized)

"""`Kernel.note`: the facts that are not bus events (parameter changes, the kill switch, key actions) go into
the session file in order with the events around them, and nowhere when nothing records."""

from __future__ import annotations

import pytest

from lobterm.assemble import build_sim_kernel
from lobterm.config import Config, quote_params
from lobterm.engine.events import OUR_OWNER, Cancelled
from lobterm.recording.reader import SessionReader
from lobterm.recording.schema import Note
from lobterm.recording.verify import verify
from lobterm.services import start_recording
from lobterm.trading.quoting import QuoteParamError


def steps(kernel, venue, n: int) -> None:
    for _ in range(n):
        venue.step()
        kernel.on_timer()


def test_note_without_a_recorder_or_after_it_closed_is_a_no_op(tmp_path) -> None:
    kernel, venue = build_sim_kernel(Config(), virtual=True)
    kernel.note("key", "buy", {"price": "1"})  # nothing records: nothing happens
    rec = start_recording(kernel, tmp_path)
    venue.open()
    steps(kernel, venue, 10)
    kernel.note("key", "buy", {"price": "2"})
    rec.close()
    kernel.note("key", "buy", {"price": "3"})
    with SessionReader(rec.path) as s:
        notes = [ev for _, _, ev in s.events() if isinstance(ev, Note)]
    assert [(n.source, n.action, n.detail) for n in notes] == [("key", "buy", {"price": "2"})]


def test_parameter_changes_and_the_kill_switch_are_recorded_before_what_they_cause(tmp_path) -> None:
    cfg = Config()
    kernel, venue = build_sim_kernel(cfg, virtual=True)
    rec = start_recording(kernel, tmp_path, checkpoint_every_s=2.0)
    mm = kernel.add_market_maker(quote_params(cfg))
    venue.open()
    mm.resume()
    steps(kernel, venue, 100)
    with pytest.raises(QuoteParamError):
        mm.update_params(levels=0)  # refused: no change, no note
    mm.update_params(levels=2, spread_ticks=4)
    steps(kernel, venue, 100)
    kernel.risk.kill("max loss")
    steps(kernel, venue, 100)
    rec.close()

    with SessionReader(rec.path) as s:
        events = list(s.events())
    # (the OMS's request -> answer time notes aside: tests/integration/test_backtest_recorded_latency.py)
    notes = [(seq, ev) for seq, _, ev in events if isinstance(ev, Note) and ev.source != "oms"]
    assert [(n.source, n.action, n.detail) for _, n in notes] == [
        ("mm", "params", {"market": "sim:BTC/USDT", "levels": 2, "spread_ticks": 4}),
        ("risk", "kill_switch_on", "max loss"),
    ]
    (params_seq, _), (kill_seq, _) = notes
    # Fewer levels: the market maker at once cancels its outer quotes, recorded right after the change;
    # the kill switch cancels the rest, right after its note.
    by_seq = {seq: ev for seq, _, ev in events}
    for seq in (params_seq, kill_seq):
        after = by_seq[seq + 1]
        assert isinstance(after, Cancelled) and after.owner == OUR_OWNER
    assert verify(rec.path).ok  # notes are not state: the checkpoint hashes still replay


def test_the_market_maker_reports_applied_changes_only_to_its_on_change() -> None:
    kernel, _venue = build_sim_kernel(Config(), virtual=True)
    mm = kernel.add_market_maker()
    seen = []
    mm.on_change = lambda maker, changes: seen.append((maker, changes))
    with pytest.raises(QuoteParamError):
        mm.update_params(size_lots=0)
    mm.update_params(size_lots=3)
    assert seen == [(mm, {"size_lots": 3})]

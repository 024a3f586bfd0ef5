"""A recorded TUI session names the trader's state-changing key actions, the market maker's parameter
changes and the kill switch, in order with the events they caused: Pilot presses keys on the real app, the
recorder writes a real SQLite file, `lobterm.recording.reader` reads it back."""

from __future__ import annotations

from lobterm.app import LobtermApp
from lobterm.engine.events import OUR_OWNER, Accepted
from lobterm.recording.reader import SessionReader
from lobterm.recording.schema import Note
from lobterm.widgets.help import ConfirmScreen
from lobterm.widgets.mm_editor import MarketMakerEditor
from tests.helpers.ui import SIZE, book_orders, calm_config, mm_of, open_editor, ready, type_into, wait_for


async def test_key_actions_parameter_changes_and_the_kill_switch_are_notes_in_order(tmp_path):
    cfg = calm_config()
    cfg.sessions_dir = tmp_path
    app = LobtermApp(cfg)
    async with app.run_test(size=SIZE) as pilot:
        ladder = await ready(pilot)
        k = app.kernel
        mm = mm_of(app)
        await pilot.press("z", "Z", "r")  # zoom and recenter change the view, not the state: no notes
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: k.recorder is not None and not k.recorder.closed, what="recording")
        rec = k.recorder
        shown = f"● REC {rec.path.name}"
        await wait_for(pilot, lambda: shown in str(app.status.content), what="the file in the status bar")
        await pilot.press("j", "k")
        await wait_for(pilot, lambda: len(book_orders(app)) == 2, what="both joins resting")
        await pilot.press("c")
        await wait_for(pilot, lambda: book_orders(app) == [], what="cancelled")
        await pilot.press("m")
        await wait_for(pilot, lambda: len(book_orders(app)) == 10, what="quoting")
        await pilot.press("greater_than_sign")
        editor = await open_editor(pilot)
        await type_into(pilot, editor, "levels", "2")
        await pilot.press("enter")
        await wait_for(pilot, lambda: not isinstance(app.screen, MarketMakerEditor), what="applied")
        await pilot.press("m")
        await wait_for(pilot, lambda: book_orders(app) == [], what="paused")
        await pilot.press("ctrl+k")
        await wait_for(pilot, lambda: k.risk.killed, what="killed")
        await pilot.press("ctrl+k")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the re-arm question")
        await pilot.press("y")
        await wait_for(pilot, lambda: not k.risk.killed, what="re-armed")
        await pilot.press("plus")
        assert ladder.default_qty == ladder.qty_presets[2]
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: rec.closed, what="the file closed")
        await wait_for(pilot, lambda: "● REC" not in str(app.status.content), what="REC gone")
        assert mm.params.levels == 2 and mm.params.spread_ticks == 3

    with SessionReader(rec.path) as session:
        events = list(session.events())
    every_note = [(seq, ev) for seq, _ts, ev in events if isinstance(ev, Note)]
    # the OMS's request -> answer times are notes too (recorded latency), flushed on their own schedule
    timings = [n for _, n in every_note if (n.source, n.action) == ("oms", "request_times")]
    assert timings and all(isinstance(n.detail, dict) for n in timings)
    notes = [(seq, n) for seq, n in every_note if n.source != "oms"]
    assert [(n.source, n.action) for _, n in notes] == [
        ("key", "recording_on"),
        ("key", "join_bid"),
        ("key", "join_offer"),
        ("key", "cancel_all"),
        ("key", "mm_resume"),
        ("key", "mm_nudge"),
        ("mm", "params"),
        ("key", "mm_edit"),
        ("mm", "params"),
        ("key", "mm_pause"),
        ("key", "kill_switch"),
        ("risk", "kill_switch_on"),
        ("key", "rearm"),
        ("key", "qty"),
        ("key", "recording_off"),
    ]
    by_action = {n.action: n for _, n in notes if n.source == "key"}
    params = [n.detail for _, n in notes if n.source == "mm"]
    assert params == [{"market": "sim:BTC/USDT", "spread_ticks": 3}, {"market": "sim:BTC/USDT", "levels": 2}]
    assert by_action["mm_nudge"].detail == {"market": "sim:BTC/USDT", "what": "spread", "direction": 1}
    assert by_action["mm_edit"].detail == {"market": "sim:BTC/USDT", "fields": ["levels"]}
    assert by_action["qty"].detail == {"market": "sim:BTC/USDT", "qty": "0.100"}
    assert by_action["join_bid"].detail["qty"] == "0.010"
    assert [n.detail for _, n in notes if n.source == "risk"] == ["operator"]
    # Each note comes before the events it caused: the first order of ours is accepted after the join key.
    join_seq = next(seq for seq, n in notes if n.action == "join_bid")
    first_accept = next(seq for seq, _ts, ev in events if isinstance(ev, Accepted) and ev.owner == OUR_OWNER)
    assert join_seq < first_accept

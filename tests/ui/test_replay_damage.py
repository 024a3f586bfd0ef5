"""`lobterm replay` on a damaged session file, driven through Pilot: playback stops before a corrupt
event with a visible notice and the app keeps running; a corrupt checkpoint is skipped for an earlier
one with a notice, and the seek lands where asked."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from frozen_app import wait_for  # noqa: E402
from session_files import checkpoint_seqs, copy_of, garbage_checkpoint, garbage_event, record  # noqa: E402

from lobterm.config import Config  # noqa: E402
from lobterm.recording.player import Player  # noqa: E402
from lobterm.replay_app import ReplayApp  # noqa: E402
from tests.helpers.ui import notifications  # noqa: E402

SIZE = (160, 40)


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    rec, _ = record(tmp_path_factory.mktemp("replay-damage"), 30.0, checkpoint_every_s=5.0)
    return rec.path


def paused_app(path: Path) -> ReplayApp:
    player = Player(str(path))
    player.pause()
    return ReplayApp(Config(), player)


async def test_playback_stops_at_a_corrupt_event_with_a_notice_and_the_app_goes_on(good, tmp_path) -> None:
    path = copy_of(good, tmp_path, "bad-event.lobterm.sqlite")
    bad = 300
    garbage_event(path, bad)
    app = paused_app(path)
    p = app.player
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await pilot.pause()
        p.set_speed(None)
        await pilot.press("space")
        await wait_for(pilot, lambda: notifications(app), what="the damage notice")
        note = notifications(app)[-1]
        assert note.title == "Session file damaged" and note.severity == "error"
        assert (
            f"corrupt event at seq {bad}" in note.message and f"stopped at event {bad - 1:,}" in note.message
        )
        assert p.seq == bad - 1 and p.paused
        await wait_for(pilot, lambda: "DAMAGED" in app.transport.text, what="the transport to say so")
        assert app.is_running and app.kernel.default_market.l2.valid  # the book up to the damage is shown
        await pilot.press("space")  # nothing more to play: says so, no second damage notice
        assert p.problems == 1
        await pilot.press("home")
        assert app.is_running and p.seq < bad and p.problems == 1


@pytest.mark.slow  # 10-22 s: left out of CI for time; runs with `-m slow`
async def test_a_corrupt_checkpoint_is_skipped_with_a_notice_and_the_seek_lands(good, tmp_path) -> None:
    path = copy_of(good, tmp_path, "bad-cp.lobterm.sqlite")
    seqs = checkpoint_seqs(path)
    garbage_checkpoint(path, seqs[3])
    app = paused_app(path)
    p = app.player
    reference = Player(str(good))
    try:
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await pilot.pause()
            # The seek is to start from the checkpoint right before its target (the bad one), not from one
            # before the views' history (the sparklines' 14 s), which would not meet it.
            p.lookback = lambda: 0
            await pilot.press("g", "0", ":", "1", "7", "enter")  # between checkpoints 3 and 4 (5 s apart)
            await wait_for(pilot, lambda: p.problems == 1, what="the seek")
            await wait_for(pilot, lambda: notifications(app), what="the checkpoint notice")
            assert f"checkpoint at seq {seqs[3]} is unusable" in notifications(app)[-1].message
            reference.seek(p.replay_ns)
            assert p.seq == reference.seq and app.kernel.state_hash() == reference.kernel.state_hash()
            assert app.is_running
    finally:
        reference.close()

"""`lobterm replay`: the TUI on a replay kernel, driven through Pilot: the transport keys pause, step,
change speed and seek; the ladder shows the recorded book and our recorded orders."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from conftest_replay import record_sim_session  # noqa: E402
from frozen_app import wait_for

from lobterm.config import Config  # noqa: E402
from lobterm.recording.player import Player  # noqa: E402
from lobterm.replay_app import ReplayApp  # noqa: E402
from lobterm.venues.replay import PAPER_ID_BASE  # noqa: E402
from lobterm.widgets.help import key_help  # noqa: E402
from lobterm.widgets.transport import SeekScreen  # noqa: E402

SIZE = (160, 40)


@pytest.fixture(scope="module")
def session_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("replay-ui") / "sim.lobterm.sqlite"
    record_sim_session(path, seed=3, duration_s=30.0, checkpoint_every_s=5.0)
    return path


def paused_app(path: Path) -> ReplayApp:
    player = Player(str(path))
    player.pause()
    return ReplayApp(Config(), player)


async def test_step_pause_resume_and_speed_keys_drive_the_player(session_path) -> None:
    app = paused_app(session_path)
    p = app.player
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert p.seq == 0 and "PAUSED" in app.transport.text
        for _ in range(3):
            await pilot.press("full_stop")
        assert p.seq == 3 and p.paused
        await wait_for(
            pilot, lambda: "event 3/" in app.transport.text, what="the transport bar to show event 3"
        )
        await pilot.press("right_square_bracket", "right_square_bracket")
        assert p.speed == 5.0
        await pilot.press("left_square_bracket")
        assert p.speed == 2.0
        await wait_for(pilot, lambda: "speed 2x" in app.transport.text, what="speed 2x shown")
        for _ in range(12):
            await pilot.press("right_square_bracket")
        assert p.speed is None
        await wait_for(pilot, lambda: "speed max" in app.transport.text)
        for _ in range(12):
            await pilot.press("left_square_bracket")
        assert p.speed == 0.25
        await pilot.press(
            "right_square_bracket",
            "right_square_bracket",
            "right_square_bracket",
            "right_square_bracket",
            "right_square_bracket",
        )
        assert p.speed == 10.0
        await pilot.press("space")
        assert not p.paused
        start = p.seq
        await wait_for(pilot, lambda: p.seq > start + 50, what="playback to move")
        await wait_for(pilot, lambda: "PLAYING" in app.transport.text)
        await pilot.press("space")
        assert p.paused
        seq = p.seq
        await pilot.pause(0.1)
        assert p.seq == seq
        await wait_for(pilot, lambda: "PAUSED" in app.transport.text)


@pytest.mark.slow  # 10-22 s: left out of CI for time; runs with `-m slow`
async def test_seek_prompt_moves_to_a_time_and_home_end_jump(session_path) -> None:
    app = paused_app(session_path)
    p = app.player
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("g")
        await wait_for(pilot, lambda: isinstance(app.screen, SeekScreen), what="the seek prompt")
        await pilot.press("a", "b", "enter")  # refused: the prompt stays, with a reason
        assert isinstance(app.screen, SeekScreen)
        assert "not HH:MM:SS" in str(app.screen.query_one("#seek-error").render())
        await pilot.press(*(["backspace"] * 2), "0", ":", "1", "2", "enter")
        await wait_for(pilot, lambda: not isinstance(app.screen, SeekScreen))
        assert p.replay_ns == p.first_ts + 12 * 10**9
        assert app.kernel.clock.now() == p.replay_ns
        await wait_for(pilot, lambda: "0:00:12.000" in app.transport.text)
        m = app.kernel.default_market
        assert m.l2.valid and m.unified.our_order_count > 0  # the recorded book and our recorded quotes
        await pilot.press("g", "plus", "3", "enter")
        await wait_for(pilot, lambda: p.replay_ns == p.first_ts + 15 * 10**9, what="+3 s")
        cp = next(c for c in p.checkpoints if c.ts == p.first_ts + 15 * 10**9)
        assert p.seq == cp.seq and app.kernel.state_hash() == cp.hash  # the recorded state at 0:00:15
        await pilot.press("end")
        assert p.at_end and p.seq == p.last_seq
        await pilot.press("home")  # the start: the events of the first instant (the first snapshot) shown
        first_instant = p.seq
        assert p.replay_ns == p.first_ts and 0 < first_instant < 100 and app.kernel.default_market.l2.valid
        await pilot.press("g", "escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, SeekScreen))
        assert p.seq == first_instant


async def test_transport_keys_are_bindings_with_ids_shown_in_help_and_footer(session_path) -> None:
    app = paused_app(session_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        ids = {binding_id for _keys, _text, binding_id in key_help(app.screen)}
        assert {
            "replay_pause",
            "replay_slower",
            "replay_faster",
            "replay_step",
            "replay_seek",
            "replay_start",
            "replay_end",
        } <= ids
        keys = {binding_id: k for k, _t, binding_id in key_help(app.screen)}
        assert keys["recenter"] == "r"  # space pauses in a replay


async def test_the_ladder_shows_our_recorded_orders_as_they_were(session_path) -> None:
    app = paused_app(session_path)
    p = app.player
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        cp = p.checkpoints[2]
        p.seek_seq(cp.seq)
        await pilot.pause()
        assert app.kernel.state_hash() == cp.hash
        await wait_for(
            pilot,
            lambda: (
                f"working {len(app.kernel.oms.working)}" in str(app.status.render())
                and len(app.kernel.oms.working) > 0
            ),
            what="the status bar's working orders",
        )
        assert "REPLAY" in str(app.status.render())


async def test_q_quits_a_replay_at_once(session_path) -> None:
    app = paused_app(session_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("q")
        await wait_for(pilot, lambda: not app.is_running, what="the app to exit")


async def test_a_user_strategy_runs_in_a_replay_and_starts_afresh_after_a_seek(session_path) -> None:
    """[strategies.NAME] runs in a replay as in the TUI: `U` starts it, it quotes paper orders against
    the replayed book, and a seek (which forgets paper orders) pauses it and starts it again."""
    config = Config(
        strategies={
            "touch": {
                "class": "lobterm.examples.touch_quoter:TouchQuoter",
                "offset_ticks": 2,
                "size_lots": 3,
                "max_position_lots": 100_000,  # the recorded session holds a position
            }
        }
    )
    player = Player(str(session_path))
    player.pause()
    app = ReplayApp(config, player)
    p = app.player

    def touch_orders() -> list:
        return [o for o in app.kernel.oms.working.values() if o.tag == "touch"]

    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        p.seek_seq(p.checkpoints[1].seq)
        touch = app.kernel.strategies["touch"]
        assert touch.state == "paused" and not touch_orders()
        await pilot.press("U")
        await wait_for(pilot, lambda: touch.state == "running", what="U to start the strategy")
        await wait_for(pilot, lambda: len(touch_orders()) == 2, what="a paper bid and ask from the strategy")
        before = {o.order_id for o in touch_orders()}
        assert all(oid >= PAPER_ID_BASE for oid in before)  # paper orders, never the recorded ids
        p.seek_seq(p.checkpoints[2].seq)
        await pilot.pause()
        assert touch.state == "running"
        await wait_for(
            pilot, lambda: len(touch_orders()) == 2, what="the strategy to quote again after the seek"
        )
        assert {o.order_id for o in touch_orders()}.isdisjoint(before)
        assert not app.kernel.strategy_errors.get("touch")

"""The liquidity heatmap in the real app (Pilot, the real sim venue and kernel; a recorded session in replay):
`h` shows it beside the ladder on the ladder's own axis, it updates, follows the ladder's scrolling, marks our
fills, gives way on a narrow terminal, and fills from a replay's own clock."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from lobterm.app import LobtermApp
from lobterm.widgets.heatmap import FILL_MARK, HeatmapStrip
from lobterm.widgets.heatmap_model import MARK_FILL, cell_parts
from lobterm.widgets.help import key_help
from lobterm.widgets.ladder_model import HEADER_LINES
from tests.helpers.ui import SIZE, calm_config, notifications, ready, wait_for

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))


def heat_at(heatmap: HeatmapStrip, y: int, cell: int = -1) -> tuple[int, int, int]:
    """(older shade, newer shade, mark) of a cell of line `y` (the newest cell by default)."""
    key = heatmap._keys[y]
    assert isinstance(key, tuple) and key and isinstance(key[0], int), key
    return cell_parts(key[cell])


async def shown(pilot) -> HeatmapStrip:
    app = pilot.app
    heatmap = app.desk.heatmaps[0]
    await wait_for(
        pilot,
        lambda: heatmap.display and heatmap.frames > 0 and len(heatmap._keys) > HEADER_LINES,
        what="the heatmap drawn",
    )
    return heatmap


async def test_h_shows_the_heatmap_beside_the_ladder_on_its_axis_and_it_updates():
    app = LobtermApp(calm_config())
    async with app.run_test(size=SIZE) as pilot:
        ladder = await ready(pilot)
        heatmap = app.desk.heatmaps[0]
        assert not app.config.ui.heatmap and not heatmap.display  # off by default
        assert ("h", "heatmap") in {(keys, bid) for keys, _text, bid in key_help(app.screen)}  # in the help
        await pilot.press("h")
        heatmap = await shown(pilot)
        # beside the ladder, the same lines: its right edge is the ladder's left, same top and height
        assert heatmap.region.right == ladder.region.x
        assert (heatmap.region.y, heatmap.region.height) == (ladder.region.y, ladder.region.height)
        lines = heatmap.rendered_lines()
        assert lines[0].strip().startswith("HEAT 5m") and "now" in lines[2]
        # the rows where the ladder shows resting size are lit, the empty far rows are not
        bid = app.market.l2.best_bid_price()
        ask = app.market.l2.best_ask_price()
        for price in (bid, ask):
            assert heat_at(heatmap, ladder.row_of(price))[1] > 0
        assert heatmap.model.nbytes == heatmap.model.capacity * (512 + 8 + 4 * 8 + 4)
        # it updates: new samples on the UI clock, new frames
        samples, frames = heatmap.model.samples, heatmap.frames
        await wait_for(
            pilot,
            lambda: heatmap.model.samples >= samples + 3 and heatmap.frames > frames,
            what="the heatmap to sample and redraw",
        )
        await pilot.press("h")
        await wait_for(pilot, lambda: not heatmap.display, what="h hides it")
        assert heatmap.region.width == 0
        await pilot.press("h")  # shown again: every line drawn afresh at its width, the header too
        await wait_for(pilot, lambda: heatmap.display and heatmap.region.width == 26, what="h shows it again")
        await pilot.pause(0.1)
        lines = heatmap.rendered_lines()
        assert lines[0].strip().startswith("HEAT 5m") and len(lines[0]) == 26


async def test_the_heatmap_follows_the_ladder_axis_and_marks_our_fill():
    cfg = calm_config()
    cfg.ui.heatmap = True
    cfg.ui.heatmap_minutes = 0.5  # 120 samples on 48 steps: 3 samples (0.75 s) a step
    app = LobtermApp(cfg)
    async with app.run_test(size=SIZE) as pilot:
        ladder = await ready(pilot)
        heatmap = await shown(pilot)
        bid = app.market.l2.best_bid_price()
        y = ladder.row_of(bid)
        await wait_for(
            pilot,
            lambda: sum(1 for c in heatmap._keys[y] if cell_parts(c)[0] > 0) >= 3,
            what="a few seconds of history",
        )

        def rows() -> list[tuple[int, ...]]:
            return [tuple(k[:-1]) for k in heatmap._keys[HEADER_LINES:]]  # the settled cells

        # Hold the history still (no new samples) so that only the axis moves between the two looks.
        heatmap.sample = lambda: False
        await pilot.pause(0.1)
        before = rows()
        ladder.model.scroll(3)  # the mouse wheel: the axis moves 3 rows up, the heatmap with it
        ladder._view_changed()
        assert ladder.row_of(bid) == y + 3
        # the same history, three rows lower
        await wait_for(
            pilot,
            lambda: heatmap._drawn[1] == ladder.top_price and rows()[3:] == before[:-3],
            what="the heatmap's rows to move with the ladder's axis",
        )
        del heatmap.sample
        await pilot.press("home")  # the cursor back to the inside market
        await wait_for(pilot, lambda: ladder.row_of(bid) is not None)
        # a buy above the best ask trades at once: our fill is marked at its price
        ask = app.market.l2.best_ask_price()
        ladder.model.set_cursor(ask + 2)
        ladder._view_changed()
        await pilot.press("b")
        await wait_for(
            pilot,
            lambda: any(
                ladder.row_of(p) is not None and heat_at(heatmap, ladder.row_of(p))[2] == MARK_FILL
                for p in (ask, ask + 1, ask + 2)
            ),
            what="our fill marked on the heatmap",
        )
        assert any(FILL_MARK in line for line in heatmap.rendered_lines())


async def test_a_narrow_terminal_drops_the_heatmap_first():
    app = LobtermApp(calm_config())
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("h")
        await wait_for(pilot, lambda: any("too narrow" in n.message for n in notifications(app)))
        assert app.desk.heatmap_wanted and not app.desk.heatmap_shown
        assert not app.desk.heatmaps[0].display


@pytest.fixture(scope="module")
def session_path(tmp_path_factory) -> Path:
    from conftest_replay import record_sim_session

    path = tmp_path_factory.mktemp("replay-heat") / "sim.lobterm.sqlite"
    record_sim_session(path, seed=3, duration_s=20.0, checkpoint_every_s=5.0)
    return path


async def test_the_heatmap_in_replay_fills_from_the_recorded_clock(session_path) -> None:
    from lobterm.config import Config
    from lobterm.recording.player import Player
    from lobterm.replay_app import ReplayApp

    cfg = Config()
    cfg.ui.heatmap = True
    player = Player(str(session_path))
    app = ReplayApp(cfg, player)
    async with app.run_test(size=SIZE) as pilot:
        ladder = app.ladder
        heatmap = app.desk.heatmaps[0]
        await wait_for(pilot, lambda: ladder.top_price is not None, what="the replayed ladder")
        await wait_for(
            pilot,
            lambda: heatmap.model.samples >= 4 and heatmap.top_heat > 0 and heatmap.display,
            what="the heatmap to fill in replay",
        )
        bid = app.market.l2.best_bid_price()
        await wait_for(
            pilot,
            lambda: ladder.row_of(bid) is not None and heat_at(heatmap, ladder.row_of(bid))[1] > 0,
            what="the replayed book on the heatmap",
        )

"""A replay is true at every moment: after seeking back and forth, the blotter, its FILLS count, our fills,
the tape and the inventory are those of a straight replay to the same time (the known bug: back at 0:00
the blotter said FILLS 299 for a session with 288, and future fills were listed twice)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from conftest_replay import record_sim_session  # noqa: E402
from frozen_app import wait_for  # noqa: E402

from lobterm.config import Config  # noqa: E402
from lobterm.recording.player import Player  # noqa: E402
from lobterm.replay_app import ReplayApp  # noqa: E402

SIZE = (160, 40)


@pytest.fixture(scope="module")
def session_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("replay-seek-views") / "sim.lobterm.sqlite"
    record_sim_session(path, seed=5, duration_s=30.0, checkpoint_every_s=5.0)
    return path


def paused_app(path: Path) -> ReplayApp:
    player = Player(str(path))
    player.pause()
    return ReplayApp(Config(), player)


def views(app: ReplayApp) -> dict:
    """What the panels show (and hold) at this moment, independent of the terminal."""
    k, desk = app.kernel, app.desk
    m = k.default_market
    pos = k.inventory.position(m.venue, m.symbol)
    return {
        "oms_fills": k.oms.fills,
        "done": k.oms.done,
        "blotter": desk.blotter.render_content(width=120).plain,
        "our_fills": [(f.ts, f.trade_id, f.order_id, f.size) for f in desk.fills.latest(1000)],
        "tape": [(t.ts, t.trade_id, t.price, t.size) for t in m.tape],
        "position": (pos.lots, pos.fills),
        "working": sorted((o.order_id, o.state, o.filled) for o in k.oms.working.values()),
        "recent": [(o.order_id, o.state, o.filled) for o in k.oms.recent],
    }


async def straight(path: Path, offsets_s: list[float]) -> list[dict]:
    """The views of one replay played straight (no seek) through each offset in turn."""
    app = paused_app(path)
    out = []
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        p = app.player
        for offset_s in offsets_s:
            p.run_to_ts(p.first_ts + int(offset_s * 1e9))
            await pilot.pause()
            out.append(views(app))
    return out


async def test_seeking_back_and_forth_shows_what_a_straight_replay_shows(session_path) -> None:
    at_start, at_17, at_23 = await straight(session_path, [0.0, 17.0, 23.5])
    app = paused_app(session_path)
    p = app.player
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("end")  # every fill of the session seen
        await wait_for(pilot, lambda: p.at_end, what="the end")
        total_fills = app.kernel.oms.fills
        assert total_fills > 20, "the session has fills to list"
        await pilot.press("home")
        await pilot.pause()
        now = views(app)
        assert now["oms_fills"] == at_start["oms_fills"] < total_fills
        assert now == at_start
        p.seek(p.first_ts + 23_500_000_000)
        assert views(app) == at_23
        p.seek(p.first_ts + 17_000_000_000)  # back, between two checkpoints
        now = views(app)
        assert now["our_fills"] == at_17["our_fills"], "no fill listed twice, none from the future"
        assert now == at_17
        await pilot.press("end", "home")
        p.seek(p.first_ts + 23_500_000_000)  # forward again
        assert views(app) == at_23
        await pilot.pause(0.3)
        blotter = app.desk.blotter
        await wait_for(pilot, lambda: f"FILLS {at_23['oms_fills']}" in blotter.text, what="the blotter")


@pytest.mark.slow  # 10-22 s: left out of CI for time; runs with `-m slow`
async def test_the_market_maker_panel_shows_the_recorded_parameters_not_the_local_defaults(tmp_path) -> None:
    path = tmp_path / "mm.lobterm.sqlite"
    record_sim_session(
        path, seed=5, duration_s=6.0, checkpoint_every_s=5.0, mm={"levels": 3, "spread_ticks": 4}
    )
    assert Config().mm.levels != 3
    app = paused_app(path)
    async with app.run_test(size=SIZE) as pilot:
        panel = app.desk.quote_panel
        await wait_for(pilot, lambda: "levels 3" in str(panel.content), what="the recorded parameters")
        assert "spread 4 ticks" in str(panel.content)
        app.player.seek(app.player.first_ts + 3 * 10**9)
        await pilot.pause(0.3)
        assert "levels 3" in str(panel.content) and "spread 4 ticks" in str(panel.content)


# ---- the market-maker panel follows the recorded live changes --------------------------------------


def _record_tuned(directory: Path) -> Path:
    """A sim run recorded by the real recorder (virtual clock, a checkpoint every 4 s), the market maker
    tuned live at 10 s through its own API (as the `e` form and the `>` keys do): levels 3 -> 2, spread
    2 -> 6 ticks."""
    from lobterm.assemble import build_sim_kernel
    from lobterm.config import quote_params
    from lobterm.services import start_recording
    from lobterm.venues.sim import SimConfig

    cfg = Config(sim=SimConfig(seed=11, rate_hz=20.0), mm={"levels": 3})
    kernel, venue = build_sim_kernel(cfg, virtual=True)
    rec = start_recording(kernel, directory, config=cfg, seed=cfg.sim.seed, checkpoint_every_s=4.0)
    maker = kernel.add_market_maker(quote_params(cfg))
    venue.open()
    maker.resume()
    for i in range(20 * 20):
        if i == 10 * 20:
            maker.update_params(spread_ticks=6, levels=2)
        venue.step()
        kernel.on_timer()
    rec.close()
    return Path(rec.path)


async def test_the_market_maker_panel_shows_the_parameters_in_force_at_each_moment(tmp_path) -> None:
    path = _record_tuned(tmp_path)
    app = paused_app(path)
    p = app.player
    assert len(p.checkpoints) >= 3, "seeks below go through checkpoints before and after the change"
    async with app.run_test(size=SIZE) as pilot:
        panel = app.desk.quote_panel
        mm = app.kernel.market_makers[0]

        async def shows(levels: int, spread: int, what: str) -> None:
            assert (mm.params.levels, mm.params.spread_ticks) == (levels, spread), what
            await wait_for(
                pilot,
                lambda: (
                    f"levels {levels}" in str(panel.content)
                    and f"spread {spread} ticks" in str(panel.content)
                ),
                what=what,
            )

        await shows(3, 2, "the recorded start")
        for t in range(1, 16):  # played straight past the change, in small steps
            p.run_to_ts(p.first_ts + t * 10**9)
        await shows(2, 6, "the live change, applied where it was recorded")
        p.seek(p.first_ts + 5 * 10**9)  # back before it
        await shows(3, 2, "a seek before the change")
        p.seek(p.first_ts + 9_900_000_000)  # just before it, from the checkpoint at 8 s
        await shows(3, 2, "just before the change")
        p.run_to_ts(p.first_ts + 10_200_000_000)  # playing on across it
        await shows(2, 6, "playing across the change")
        p.seek(p.first_ts + 17 * 10**9)  # forward, from a checkpoint after it
        await shows(2, 6, "a seek after the change")
        await pilot.press("home")
        await shows(3, 2, "Home")


# ---- the sparklines and the heatmap: a seek draws what a straight play drew ------------------------


def history_views(app: ReplayApp) -> dict:
    """The inventory panel's sparklines as shown, and the heatmap's cells on a fixed axis around the book."""
    from lobterm.widgets.inventory import SPARK_WIDTH

    inv = app.desk.inventory_panel
    heat = app.desk.heatmaps[0]
    m = app.kernel.default_market
    centre = m.unified.center_price()
    grid, top = heat.model.grid(centre + 40, 1, 80, 12)
    sparks = next(line for line in inv.render_content().plain.split("\n") if line.startswith("P&L "))
    return {
        "pnl": list(inv.pnl_series)[-SPARK_WIDTH:],
        "pos": list(inv.position_series)[-SPARK_WIDTH:],
        "mid": list(inv.mid_series)[-SPARK_WIDTH:],
        "sparklines": sparks,
        "heat_steps": (heat.model.first, heat.model.step),
        "heat": (grid, top),
    }


def heat_app(path: Path) -> ReplayApp:
    from dataclasses import replace

    config = Config()
    # A 12 s heatmap (48 samples): shorter than the session, so a seek's history starts at a checkpoint.
    config = replace(config, ui=replace(config.ui, heatmap_minutes=0.2, heatmap=True))
    player = Player(str(path))
    player.pause()
    return ReplayApp(config, player)


@pytest.mark.slow  # 10-22 s: left out of CI for time; runs with `-m slow`
async def test_a_seek_draws_the_sparklines_and_the_heatmap_a_straight_play_drew(session_path) -> None:
    targets = [23.5, 17.0, 29.0]
    straight_views = []
    app = heat_app(session_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        p = app.player
        ns = 0
        for target in sorted(targets):
            while ns < target * 1e9:  # in steps that do not line up with the sample times
                ns = min(ns + 37_000_000, int(target * 1e9))
                p.run_to_ts(p.first_ts + ns)
            straight_views.append((target, history_views(app)))
        inv = app.desk.inventory_panel
        assert inv.samples >= 29 and len(set(inv.mid_series)) > 1, "the mid moved: the sparkline has a shape"
        assert any(any(row) for row in history_views(app)["heat"][0]), "the heatmap has cells"
    straight_at = dict(straight_views)

    app = heat_app(session_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        p = app.player
        await pilot.press("end")
        await wait_for(pilot, lambda: p.at_end, what="the end")
        for target in targets:  # back, further back, forward
            p.seek(p.first_ts + int(target * 1e9))
            now = history_views(app)
            assert now == straight_at[target], f"at {target} s"
        # The seek replayed from a checkpoint, not from the start: the history before it is not kept.
        p.seek(p.first_ts + int(23.5e9))
        assert len(app.desk.inventory_panel.pnl_series) < 23
        await pilot.pause(0.2)
        shown = str(app.desk.inventory_panel.content)
        assert straight_at[23.5]["sparklines"] in shown

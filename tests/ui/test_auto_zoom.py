"""`[ui] ticks_per_row = "auto"` (the default): the ladder measures the market's first 3 s of session time and
picks, once, the zoom of the nice series at which the typical 30 s move spans about a third of its rows; the
cursor is placed only after the pick (the pick never moves the price under it); z/Z work after it and a z
while it measures is the trader's zoom. The real app on the real sim venue, stepped by hand on a virtual
clock (so the session time and the market are the same every run)."""

from __future__ import annotations

import math

import pytest
from frozen_app import wait_for

from lobterm.app import LobtermApp
from lobterm.assemble import build_sim_kernel
from lobterm.config import Config
from lobterm.widgets.auto_zoom import ENOUGH_TRADES, HORIZON_S, PROBE_S, AutoZoom, pick_ticks_per_row
from lobterm.widgets.ladder_model import HEADER_LINES, ZOOMS

STEPS_PER_S = 20  # the sim's default rate_hz


def known_vol_app(
    vol_bps: float = 0.7, seed: int = 3, *, ticks_per_row: int | str = "auto", takers: bool = True
) -> tuple[LobtermApp, object]:
    """The default sim (auto zoom) with its volatility known: the calm regime only (no bursts, no jumps)."""
    cfg = Config()
    assert cfg.ui.ticks_per_row == "auto"
    cfg.ui.ticks_per_row = ticks_per_row
    if not takers:
        cfg.sim.taker_per_s = 0.0
    cfg.sim.seed = seed
    cfg.sim.vol_bps = vol_bps
    cfg.sim.burst_per_min = 0.0
    cfg.sim.jump_per_min = 0.0
    kernel, venue = build_sim_kernel(cfg, virtual=True)
    venue.open()
    return LobtermApp(cfg, kernel=kernel, live=False), venue


def known_move_ticks(app: LobtermApp) -> float:
    """The typical 30 s move of the sim's fair price in ticks, from its configuration."""
    sim = app.config.sim
    sigma = sim.vol_bps * 1e-4 * float(sim.start_price) / float(sim.tick_size)  # ticks per sqrt(second)
    return sigma * math.sqrt(HORIZON_S)


def drawn_cursor_price(ladder) -> int | None:
    for key in ladder._keys[HEADER_LINES:]:
        if key is not None and key[2]:
            return key[1]
    return None


async def step_until_picked(app: LobtermApp, venue, limit_s: float = 10.0) -> float:
    """Step the sim and the UI clock until the ladder has a cursor; the session seconds that took."""
    ladder = app.ladder
    t0 = app.kernel.clock.now()
    while ladder.cursor_price is None:
        assert app.kernel.clock.now() - t0 < limit_s * 1e9, "the auto zoom never chose"
        venue.step()
        app._tick()
    return (app.kernel.clock.now() - t0) / 1e9


@pytest.mark.parametrize(("vol_bps", "size"), [(0.7, (160, 48)), (0.7, (80, 24)), (7.0, (160, 48))])
async def test_the_default_sim_gets_the_zoom_its_volatility_calls_for(vol_bps, size):
    app, venue = known_vol_app(vol_bps)
    async with app.run_test(size=size) as pilot:
        ladder = app.ladder
        await pilot.pause()
        app._tick()
        assert ladder.top_price is not None and ladder.cursor_price is None, (
            "the book shows, the cursor waits"
        )
        assert "auto zoom: measuring" in ladder.rendered_lines()[0]
        took = await step_until_picked(app, venue)
        # 3 s of session time, or sooner on a venue busy enough to fill the window with trades first
        busy = app.market.trades >= ENOUGH_TRADES
        assert took <= PROBE_S + 0.5 and (busy or took >= PROBE_S - 0.2), (took, app.market.trades)
        expected = pick_ticks_per_row(known_move_ticks(app), ladder.price_rows, ZOOMS)
        tpr = ladder.ticks_per_row
        # The measure (the tape's trades over 3 s) is an estimate: the pick is the known volatility's zoom
        # or its neighbour in the series (the series steps by 2-2.5x; an estimate is off by less).
        assert abs(ZOOMS.index(tpr) - ZOOMS.index(expected)) <= 1, (tpr, expected)
        assert tpr > 1
        await wait_for(pilot, lambda: f"(×{tpr} auto)" in ladder.rendered_lines()[0], what="the title")
        # The cursor was placed after the pick, on the inside market, on screen.
        assert ladder.row_of(ladder.cursor_price) is not None
        inside = app.market.unified.center_price()
        assert ladder.cursor_price == inside - inside % tpr


async def test_ten_times_the_volatility_zooms_out_about_ten_times():
    picks = []
    for vol_bps in (0.7, 7.0):
        app, venue = known_vol_app(vol_bps)
        async with app.run_test(size=(160, 48)) as pilot:
            await pilot.pause()
            await step_until_picked(app, venue)
            picks.append(app.ladder.ticks_per_row)
    assert 5 <= picks[1] / picks[0] <= 25, picks


async def test_a_still_market_keeps_one_tick_a_row():
    app, venue = known_vol_app(0.0, takers=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        await step_until_picked(app, venue)
        assert app.ladder.ticks_per_row == 1
        assert app.ladder.model.zoom_auto


async def test_the_pick_never_moves_the_cursor_and_z_and_Z_work_after_it():
    app, venue = known_vol_app()
    async with app.run_test(size=(160, 48)) as pilot:
        ladder = app.ladder
        await pilot.pause()
        await step_until_picked(app, venue)
        tpr = ladder.ticks_per_row
        start = ladder.cursor_price
        for _ in range(60 * STEPS_PER_S // 10):  # a virtual minute: no more picks, the cursor keeps its price
            for _ in range(10):
                venue.step()
            app._tick()
            assert ladder.ticks_per_row == tpr
            assert ladder.cursor_price == start
            assert drawn_cursor_price(ladder) == start
        await pilot.press("z")
        assert ladder.ticks_per_row == ZOOMS[ZOOMS.index(tpr) + 1]
        await wait_for(pilot, lambda: "auto" not in ladder.rendered_lines()[0], what="the trader's zoom")
        await pilot.press("Z", "Z")
        assert ladder.ticks_per_row == ZOOMS[ZOOMS.index(tpr) - 1]
        assert ladder.row_of(ladder.cursor_price) is not None


async def test_z_while_it_measures_is_the_traders_zoom_and_nothing_picks_later():
    app, venue = known_vol_app()
    async with app.run_test(size=(160, 48)) as pilot:
        ladder = app.ladder
        await pilot.pause()
        app._tick()
        assert ladder.cursor_price is None
        await pilot.press("b")  # no cursor yet: refused, said why
        assert not app.kernel.oms.working
        await pilot.press("z")
        assert ladder.ticks_per_row == 2 and ladder.cursor_price is not None
        start = ladder.cursor_price
        for _ in range(10 * STEPS_PER_S):
            venue.step()
            app._tick()
        assert ladder.ticks_per_row == 2 and ladder.cursor_price == start


async def test_an_explicit_ticks_per_row_is_used_from_the_start():
    app, venue = known_vol_app(ticks_per_row=5)
    async with app.run_test(size=(160, 48)) as pilot:
        ladder = app.ladder
        for _ in range(2):
            venue.step()
        await wait_for(pilot, lambda: ladder.cursor_price is not None, what="the first ladder")
        assert ladder.ticks_per_row == 5 and ladder.model.auto_zoom is None


def test_the_pick_depends_on_session_time_not_on_when_frames_come():
    """Two observers of one market, one at every sim step and one every 7th: the same measure and pick
    (the window is session time and the measure the tape's trades, which every replay has the same)."""
    cfg = Config()
    cfg.sim.seed = 9
    kernel, venue = build_sim_kernel(cfg, virtual=True)
    venue.open()
    market = next(iter(kernel.markets.values()))
    every, seventh = AutoZoom(ZOOMS), AutoZoom(ZOOMS)
    picks: dict[str, int] = {}
    for n in range(8 * STEPS_PER_S):
        venue.step()
        for name, zoom, cadence in (("every", every, 1), ("seventh", seventh, 7)):
            if name not in picks and n % cadence == 0:
                tpr = zoom.observe(market, 40, 0.0)
                if tpr is not None:
                    picks[name] = tpr
    assert every.source == seventh.source == "trades"
    assert every.variance_per_s == seventh.variance_per_s > 0
    assert picks["every"] == picks["seventh"]


async def test_a_replay_picks_the_same_zoom_every_time_from_its_recorded_trades(tmp_path):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
    from conftest_replay import record_sim_session

    from lobterm.recording.player import Player
    from lobterm.replay_app import ReplayApp

    path = tmp_path / "sim.lobterm.sqlite"
    record_sim_session(path, seed=3, duration_s=8.0, checkpoint_every_s=5.0, market_maker=False)
    picks = []
    for _ in range(2):
        player = Player(str(path))
        player.pause()
        player.seek(player.first_ts + 7 * 10**9)  # the 3 s before the first frame are measured
        app = ReplayApp(Config(), player)
        async with app.run_test(size=(160, 48)) as pilot:
            ladder = app.ladder
            await wait_for(pilot, lambda lad=ladder: lad.cursor_price is not None, what="the pick")
            measure = ladder.model.zoom_measure
            assert measure is not None and measure.source == "trades"
            picks.append((ladder.ticks_per_row, measure.variance_per_s, measure.samples))
    assert picks[0] == picks[1] and picks[0][0] > 1, picks


async def test_the_consolidated_ladder_picks_its_zoom_from_each_venues_trades():
    """Two sims a little apart in price (demo-xvenue): their trades measured apart (one series of both would
    see the gap between the venues as moves and zoom far out), the cursor placed after the pick."""
    from lobterm import config

    cfg = config.load(
        "demo-xvenue",
        use_defaults=False,
        overrides={
            "metrics": {"enabled": False},
            "recording": {"enabled": False},
            "ui": {"consolidated": True},
        },
    )
    assert cfg.ui.ticks_per_row == "auto"
    app = LobtermApp(cfg)
    async with app.run_test(size=(160, 48)) as pilot:
        ladder = app.ladder
        assert type(ladder).__name__ == "ConsolidatedLadder"
        await wait_for(pilot, lambda: ladder.cursor_price is not None, timeout=15, what="the pick")
        measure = ladder.model.zoom_measure
        assert measure is not None and measure.source == "trades"
        sim = cfg.sim  # both venues' btc-spot profile has the default sim's volatility, price and tick
        known = sim.vol_bps * 1e-4 * float(sim.start_price) / float(sim.tick_size) * math.sqrt(HORIZON_S)
        expected = pick_ticks_per_row(known, ladder.price_rows, ZOOMS)
        assert abs(ZOOMS.index(ladder.ticks_per_row) - ZOOMS.index(expected)) <= 1, (
            ladder.ticks_per_row,
            expected,
        )
        assert ladder.row_of(ladder.cursor_price) is not None
        await wait_for(pilot, lambda: "auto)" in ladder.rendered_lines()[0], what="the title")

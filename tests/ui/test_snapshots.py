"""Snapshots of the main screen in each built-in theme (pytest-textual-snapshot).

The market is frozen: a fixed seed, the sim venue stepped by hand on a virtual clock, no pacing task;
the wall clock the widgets read (flash highlights, once-a-second samples) stands still too. So every run
draws the same screen. After a deliberate change to the screen, review and accept the new pictures with
`python -m pytest tests/ui/test_snapshots.py --snapshot-update`.
"""

from __future__ import annotations

import pytest
from frozen_app import freeze_ui_time, frozen_app, frozen_config, wait_for

from lobterm.widgets.themes import BUILTIN_NAMES

SNAPSHOT_SIZE = (130, 36)


def _ready(ui_time):
    async def ready(pilot) -> None:
        app = pilot.app
        await wait_for(
            pilot,
            lambda: app.ladder.top_price is not None and app.ladder.cursor_price is not None,
            what="the first ladder",
        )
        # One order of ours on each side, so that the snapshot shows how ours are marked.
        m = app.market
        app.kernel.buy(m, m.l2.best_bid_price() - 2, 15)
        app.kernel.sell(m, m.l2.best_ask_price() + 3, 40)
        await pilot.pause(0.1)  # a few UI clock ticks: the changed sizes flash
        ui_time.advance(10.0)  # past the flash, and one more once-a-second sample
        await pilot.pause(0.1)

    return ready


@pytest.mark.parametrize("theme", BUILTIN_NAMES)
def test_main_screen(snap_compare, theme, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))  # no user themes
    ui_time = freeze_ui_time(monkeypatch)
    assert snap_compare(
        frozen_app(frozen_config(theme)), terminal_size=SNAPSHOT_SIZE, run_before=_ready(ui_time)
    )


def test_main_screen_with_the_heatmap(snap_compare, tmp_path, monkeypatch):
    """The heatmap beside the ladder after 40 frozen sim steps (the virtual clock advances with the venue), and
    our fill marked: the book's history on the ladder's axis, the same every run."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    ui_time = freeze_ui_time(monkeypatch)
    cfg = frozen_config()
    cfg.ui.heatmap = True
    cfg.ui.heatmap_minutes = 0.5  # 120 samples: 40 steps of 1/rate_hz s fill part of the strip
    app = frozen_app(cfg)

    async def ready(pilot) -> None:
        await _ready(ui_time)(pilot)
        venue = app.kernel.venues["sim"]
        m = app.market
        for i in range(60):
            for _ in range(3):
                venue.step()
            if i == 30:  # a buy through the best ask fills at once
                app.kernel.buy(m, m.l2.best_ask_price(), 5)
            app.desk.pull()
        await pilot.pause(0.1)

    assert snap_compare(app, terminal_size=(160, 48), run_before=ready)


# ---- every screen: the main screen at five sizes, the overlays, the kill switch, a stale book, replay ---
MAIN_SIZES = [(80, 24), (100, 30), (120, 40), (160, 48), (200, 60)]


@pytest.mark.parametrize("size", MAIN_SIZES, ids=[f"{w}x{h}" for w, h in MAIN_SIZES])
def test_main_screen_sizes(snap_compare, size, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    ui_time = freeze_ui_time(monkeypatch)
    assert snap_compare(frozen_app(frozen_config()), terminal_size=size, run_before=_ready(ui_time))


def _then(ui_time, *keys: str, setup=None):
    """Ready as the main screen, then `setup(app)` and the `keys`, then one settled frame."""
    ready = _ready(ui_time)

    async def run_before(pilot) -> None:
        await ready(pilot)
        if setup is not None:
            setup(pilot.app)
        if keys:
            await pilot.press(*keys)
        await pilot.pause(0.1)
        for field in pilot.app.screen.query(
            "Input"
        ):  # a blinking cursor is drawn on or off by the wall clock
            field.cursor_blink = False
        ui_time.advance(10.0)
        await pilot.pause(0.1)

    return run_before


def _stale(app) -> None:
    app.market.stale = True


SCREENS = {
    "ticket": ("t",),
    "mm_editor": ("e",),
    "help": ("question_mark",),
    "kill_switch_on": ("ctrl+k",),
    "rearm_confirmation": ("ctrl+k", "ctrl+k"),
}


@pytest.mark.parametrize("name", sorted(SCREENS))
def test_screen(snap_compare, name, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    ui_time = freeze_ui_time(monkeypatch)
    assert snap_compare(
        frozen_app(frozen_config()), terminal_size=SNAPSHOT_SIZE, run_before=_then(ui_time, *SCREENS[name])
    )


def test_stale_book(snap_compare, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    ui_time = freeze_ui_time(monkeypatch)
    assert snap_compare(
        frozen_app(frozen_config()), terminal_size=SNAPSHOT_SIZE, run_before=_then(ui_time, setup=_stale)
    )


def test_replay_transport(snap_compare, tmp_path, monkeypatch):
    """A replay paused at 0:00:12 of a recorded sim session (virtual clock: the same file every run)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
    from conftest_replay import record_sim_session

    from lobterm.config import Config
    from lobterm.recording.player import Player
    from lobterm.replay_app import ReplayApp

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    ui_time = freeze_ui_time(monkeypatch)
    path = tmp_path / "sim.lobterm.sqlite"
    from tests.helpers.markets import OLD_BTC_SPOT  # the market this screen was drawn on

    record_sim_session(path, seed=3, duration_s=20.0, checkpoint_every_s=5.0, sim=OLD_BTC_SPOT)
    player = Player(str(path))
    player.pause()
    player.seek(player.first_ts + 12 * 10**9)
    config = Config()
    config.ui.ticks_per_row = 1  # fixed (the auto zoom in replay: test_auto_zoom.py)
    app = ReplayApp(config, player)
    app.title = "lobterm replay · sim.lobterm.sqlite"  # not the temporary directory's name

    async def run_before(pilot) -> None:
        await wait_for(pilot, lambda: app.ladder.cursor_price is not None, what="the first ladder")
        await pilot.pause(0.1)
        ui_time.advance(10.0)
        await pilot.pause(0.1)

    assert snap_compare(app, terminal_size=SNAPSHOT_SIZE, run_before=run_before)


# ---- the consolidated ladder: two calm sim venues on one ladder -----------------------------------------
XVENUE_SIZES = [(100, 30), (160, 48)]


@pytest.mark.parametrize("size", XVENUE_SIZES, ids=[f"{w}x{h}" for w, h in XVENUE_SIZES])
def test_consolidated_ladder(snap_compare, size, tmp_path, monkeypatch):
    """Two calm sims (simA quote, simB hedge and deeper) stepped by hand on one virtual clock: BID A / BID B,
    each venue's best highlighted in its own column, orders of ours on both venues tagged A and B (one row
    holds both), the order keys aimed at simB."""
    from test_consolidated import two_venues

    from lobterm.app import LobtermApp
    from lobterm.assemble import build

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    ui_time = freeze_ui_time(monkeypatch)
    cfg = two_venues(tmp_path)
    asm = build(cfg, "tui", virtual=True)
    for sim in asm.sims:
        sim.open()
    for _ in range(60):
        for sim in asm.sims:
            sim.step()
    app = LobtermApp(cfg, kernel=asm, live=False)

    async def ready(pilot) -> None:
        await wait_for(pilot, lambda: app.ladder.top_price is not None, what="the consolidated ladder")
        k = app.kernel
        a, b = k.markets[("simA", "BTC/USDT")], k.markets[("simB", "BTC/USDT")]
        low = min(a.l2.best_bid_price(), b.l2.best_bid_price())
        k.buy(a, low - 2, 15)
        k.buy(b, low - 2, 25)
        k.sell(b, b.l2.best_ask_price() + 1, 40)
        await pilot.press("home", "v")  # the cursor to the inside market, the order keys to simB
        await pilot.pause(0.1)
        ui_time.advance(10.0)
        await pilot.pause(0.1)

    assert snap_compare(app, terminal_size=size, run_before=ready)

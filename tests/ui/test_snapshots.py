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

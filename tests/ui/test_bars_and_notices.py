"""The bottom of the screen stays readable: the key bar takes at most two lines at every size, keeping the
essential keys (the rest are in `?` help); a notice (the kill switch's) stands above the status bar, not on
it; an overlay leaves the ladder's PRICE column and the status bar in view; with the heatmap on, the side
panels' lines fit their narrower width."""

from __future__ import annotations

from dataclasses import replace

import pytest
from frozen_app import frozen_app, frozen_config, wait_for

from lobterm.widgets.keybar import MAX_LINES

ESSENTIAL_KEYS = (
    "b Buy",
    "s Sell",
    "x [ ] Cancel",
    "c Cancel all",
    "F Flatten",
    "^k Kill",
    "? Help",
    "q Quit",
)
SIZES = [(80, 24), (100, 30), (160, 48), (200, 60)]


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
async def test_the_key_bar_takes_two_lines_and_keeps_the_essential_keys(size) -> None:
    app = frozen_app()
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        bar = app.query_one("#keys")
        await wait_for(pilot, lambda: "Quit" in str(bar.content), what="the key bar")
        text = str(bar.content)
        lines = text.split("\n")
        assert len(lines) <= MAX_LINES and bar.outer_size.height <= MAX_LINES
        assert all(len(line) <= size[0] - 2 for line in lines), lines
        for item in ESSENTIAL_KEYS:
            assert item in text, (item, text)
        assert "m MM" in text and ("t Ticket" in text or "t Order ticket" in text)
        if size[0] >= 200:  # room for every key in full words
            assert "t Order ticket" in text and "^t Next theme" in text


async def test_the_kill_switch_notice_stands_above_the_status_bar() -> None:
    app = frozen_app()
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await pilot.pause()
        await pilot.press("ctrl+k")
        await wait_for(pilot, lambda: app.screen.query("Toast"), what="the notice")
        await pilot.pause(0.2)
        status = app.status.region
        for toast in app.screen.query("Toast"):
            assert toast.region.bottom <= status.y, (toast.region, status)
        assert "P&L" in str(app.status.content)


@pytest.mark.parametrize("key", ["t", "e", "question_mark"])
async def test_an_overlay_leaves_the_price_column_and_the_status_bar_in_view(key) -> None:
    app = frozen_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        ladder = app.ladder
        x = ladder.model.column_x("price")
        price_right = ladder.region.x + x + next(c.width for c in ladder.columns if c.key == "price")
        await pilot.press(key)
        await wait_for(pilot, lambda: app.screen is not app.screen_stack[0], what="the overlay")
        await pilot.pause(0.2)
        box = next(c for c in app.screen.children if not c.has_class("-textual-system"))
        assert box.region.x >= price_right, (box.region, price_right)
        assert box.region.bottom <= app.status.region.y, (box.region, app.status.region)


async def test_with_the_heatmap_on_the_side_panels_lines_fit_their_width() -> None:
    config = frozen_config()
    app = frozen_app(replace(config, ui=replace(config.ui, heatmap=True)))
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        desk = app.desk
        await wait_for(pilot, lambda: desk.heatmap_shown, what="the heatmap")
        app.kernel.kill("operator", source="test")  # the limits line at its longest
        app._tick()
        await pilot.pause(0.2)
        for panel in (desk.quote_panel, desk.inventory_panel, desk.hedge_panel):
            width = panel.content_size.width
            assert 40 <= width < 50, width
            for line in panel.render_content().plain.split("\n"):
                assert len(line) <= width, (panel.id, width, line)

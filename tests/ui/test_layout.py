"""The main screen at every terminal size from 80x24 up: the ladder's five trading columns (OUR BIDS, BIDS,
PRICE, ASKS, OUR ASKS) whole and at least ten price rows come first; the side panels sit beside the ladder
while they get 40 columns, below it on a tall narrow terminal, else hide; `p` toggles them; below 60x20 a
notice says the terminal is too small and what it needs."""

from __future__ import annotations

import pytest
from frozen_app import frozen_app, wait_for

from lobterm.widgets.ladder_model import CORE_COLUMNS, HEADER_LINES

SIZES = [
    ((80, 24), "hidden"),
    ((100, 30), "beside"),
    ((120, 40), "beside"),
    ((160, 48), "beside"),
    ((200, 60), "beside"),
]


async def ready(pilot):
    app = pilot.app
    await wait_for(
        pilot, lambda: app.ladder.top_price is not None and app.ladder.price_rows, what="the ladder"
    )
    app._tick()
    await pilot.pause()
    return app, app.ladder


def assert_ladder_whole(app, ladder) -> None:
    screen_w, _ = app.size
    assert ladder.region.x >= 0 and ladder.region.right <= screen_w, "the ladder is inside the terminal"
    assert ladder.price_rows >= 10
    header = ladder.rendered_lines()[HEADER_LINES - 1]
    for title in ("OUR BIDS", "BIDS", "PRICE", "ASKS", "OUR ASKS"):
        assert title in header
    widths = {c.key: c.width for c in ladder.columns}
    for key in CORE_COLUMNS:
        x = ladder.model.column_x(key)
        assert x is not None and x + widths[key] <= ladder.size.width, f"{key} is cut"
        assert widths[key] >= 8, f"{key} is too narrow to read a size"
    # Prices on every row, each whole.
    inst = app.market.instrument
    lines = ladder.rendered_lines()
    for y in range(HEADER_LINES, HEADER_LINES + ladder.price_rows):
        assert inst.format_price(ladder.model.price_at(y)) in lines[y]


@pytest.mark.parametrize(("size", "side"), SIZES, ids=[f"{w}x{h}" for (w, h), _ in SIZES])
async def test_the_five_ladder_columns_and_ten_rows_come_first_at_every_size(size, side):
    async with frozen_app().run_test(size=size) as pilot:
        app, ladder = await ready(pilot)
        assert_ladder_whole(app, ladder)
        assert app.desk.side_layout == side
        panel = app.desk.query_one("#side")
        if side == "beside":
            assert panel.region.width >= 40 and panel.region.x >= ladder.region.right
        else:
            assert not panel.region.width, "hidden rather than squeezed"


async def test_a_tall_narrow_terminal_stacks_the_side_panels_below_the_ladder():
    async with frozen_app().run_test(size=(80, 60)) as pilot:
        app, ladder = await ready(pilot)
        assert app.desk.side_layout == "stacked"
        assert_ladder_whole(app, ladder)
        assert app.desk.quote_panel.region.y >= ladder.region.bottom


async def test_p_hides_and_shows_the_side_panels_and_the_ladder_takes_the_room():
    async with frozen_app().run_test(size=(120, 40)) as pilot:
        app, ladder = await ready(pilot)
        narrow = ladder.size.width
        await pilot.press("p")
        await pilot.pause()
        assert app.desk.side_layout == "hidden" and ladder.size.width > narrow
        assert {"last", "volume"} <= {c.key for c in ladder.columns}, "the room goes to the ladder's columns"
        await pilot.press("p")
        await pilot.pause()
        # Back beside (within a column: the side panel's scrollbar may come and go with its content).
        assert app.desk.side_layout == "beside" and abs(ladder.size.width - narrow) <= 1


async def test_p_shows_the_side_panels_even_where_they_would_give_way():
    async with frozen_app().run_test(size=(80, 24)) as pilot:
        app, ladder = await ready(pilot)
        await pilot.press("p")
        await pilot.pause()
        assert app.desk.side_layout == "beside" and app.desk.quote_panel.region.width > 0


async def test_below_the_minimum_a_notice_names_the_size_needed_and_resizing_back_restores_the_ladder():
    async with frozen_app().run_test(size=(80, 24)) as pilot:
        app, ladder = await ready(pilot)
        await pilot.resize_terminal(50, 16)
        await pilot.pause()
        notice = app.query_one("#too-small")
        assert notice.region.width and "terminal too small (need 60x20, have 50x16)" in str(notice.render())
        assert not ladder.region.width
        await pilot.resize_terminal(80, 24)
        await wait_for(pilot, lambda: ladder.price_rows >= 10, what="the ladder back")
        app._tick()
        await pilot.pause()
        assert not notice.region.width
        assert_ladder_whole(app, ladder)

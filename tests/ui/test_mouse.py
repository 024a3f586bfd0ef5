"""The mouse on the ladder: a click on BIDS / ASKS buys / sells the default quantity at that row (the same
kernel verb, risk and large-order question as the keys), a click on our size cancels there, dragging our size
(or a click on its price, then on a new price) moves it, the wheel scrolls the axis; the first trading click
says mouse trading is on, once; with `[ui] mouse_trading = false` a click only moves the cursor. Pilot clicks
at cell offsets on the real app over the real sim venue, stepped by hand."""

from __future__ import annotations

from decimal import Decimal

from frozen_app import frozen_app, frozen_config, wait_for
from textual import events

from lobterm.engine.events import BUY, SELL
from lobterm.widgets.help import ConfirmOrderScreen

SIZE = (160, 48)


def at(ladder, price: int, column: str) -> tuple[int, int]:
    """The cell offset (x, y) of `column` on the row of `price`."""
    x, y = ladder.model.column_x(column), ladder.row_of(price)
    assert x is not None and y is not None, f"{column} at {price} is on screen"
    return x + 1, y


def working(app, side: int | None = None) -> list[tuple[int, int, int]]:
    return sorted(
        (o.side, o.price, o.leaves) for o in app.kernel.oms.working.values() if side in (None, o.side)
    )


async def settle(pilot, app) -> None:
    """Let the sim venue answer our orders (acks, cancels, amends), then draw a frame."""
    venue = app.kernel.venues["sim"]
    for _ in range(3):
        venue.step()
    app._tick()
    await pilot.pause()


async def ready(pilot):
    app = pilot.app
    await wait_for(pilot, lambda: app.ladder.top_price is not None, what="the first ladder")
    return app, app.ladder


def mouse_notices(app) -> list[str]:
    return [n.message for n in app._notifications if "Mouse trading is on" in n.message]


async def test_a_click_on_bids_buys_and_on_asks_sells_the_default_qty_at_that_row():
    async with frozen_app().run_test(size=SIZE) as pilot:
        app, ladder = await ready(pilot)
        lots = ladder.order_lots()
        bid, ask = app.market.unified.best_bid()[0], app.market.unified.best_ask()[0]
        await pilot.click(ladder, offset=at(ladder, bid - 3, "bids"))
        assert working(app) == [(BUY, bid - 3, lots)]
        await pilot.click(ladder, offset=at(ladder, ask + 2, "asks"))
        assert working(app) == [(BUY, bid - 3, lots), (SELL, ask + 2, lots)]
        assert len(mouse_notices(app)) == 1, "one notice, on the first trading click"
        assert ladder.cursor_price == ask + 2, "a click also moves the cursor there"


async def test_a_click_on_our_size_cancels_our_orders_there():
    async with frozen_app().run_test(size=SIZE) as pilot:
        app, ladder = await ready(pilot)
        bid = app.market.unified.best_bid()[0]
        await pilot.click(ladder, offset=at(ladder, bid - 4, "bids"))
        await pilot.click(ladder, offset=at(ladder, bid - 5, "bids"))
        await settle(pilot, app)
        assert ladder.cell_text(bid - 4, "our_bids").startswith(
            app.market.instrument.format_size(ladder.order_lots())
        )
        await pilot.click(ladder, offset=at(ladder, bid - 4, "our_bids"))
        await settle(pilot, app)
        assert [p for _s, p, _l in working(app)] == [bid - 5]
        assert ladder.cell_text(bid - 4, "our_bids") == ""


async def test_dragging_our_size_to_another_row_moves_our_order_there():
    async with frozen_app().run_test(size=SIZE) as pilot:
        app, ladder = await ready(pilot)
        bid = app.market.unified.best_bid()[0]
        await pilot.click(ladder, offset=at(ladder, bid - 4, "bids"))
        await settle(pilot, app)
        await pilot.mouse_down(ladder, offset=at(ladder, bid - 4, "our_bids"))
        await pilot.mouse_up(ladder, offset=at(ladder, bid - 7, "our_bids"))
        await settle(pilot, app)
        assert [p for _s, p, _l in working(app)] == [bid - 7]
        assert len(working(app)) == 1, "the drop did not also trade"
        assert ladder.cell_text(bid - 7, "our_bids") and ladder.cell_text(bid - 4, "our_bids") == ""


async def test_a_click_on_our_orders_price_then_on_another_price_moves_them_there():
    async with frozen_app().run_test(size=SIZE) as pilot:
        app, ladder = await ready(pilot)
        ask = app.market.unified.best_ask()[0]
        await pilot.click(ladder, offset=at(ladder, ask + 3, "asks"))
        await settle(pilot, app)
        await pilot.click(ladder, offset=at(ladder, ask + 3, "price"))
        assert ladder.model.selected_price == ask + 3, "picked up"
        await pilot.click(ladder, offset=at(ladder, ask + 6, "price"))
        await settle(pilot, app)
        assert working(app) == [(SELL, ask + 6, ladder.order_lots())]
        assert ladder.model.selected_price is None


async def test_a_click_on_bids_above_the_confirmation_size_asks_first_like_the_key():
    cfg = frozen_config()
    cfg.ui.default_qty = Decimal("1.000")
    cfg.ui.confirm_above_qty = Decimal("0.500")
    async with frozen_app(cfg).run_test(size=SIZE) as pilot:
        app, ladder = await ready(pilot)
        bid = app.market.unified.best_bid()[0]
        await pilot.click(ladder, offset=at(ladder, bid - 2, "bids"))
        assert isinstance(app.screen, ConfirmOrderScreen) and not working(app)
        await pilot.press("y")
        await wait_for(pilot, lambda: working(app), what="the confirmed order")
        assert working(app) == [(BUY, bid - 2, ladder.order_lots())]


async def test_the_wheel_scrolls_the_axis_and_the_cursor_keeps_its_price():
    async with frozen_app().run_test(size=SIZE) as pilot:
        app, ladder = await ready(pilot)
        top, cursor = ladder.top_price, ladder.cursor_price
        await pilot._post_mouse_events([events.MouseScrollUp], ladder, offset=(10, 10))
        assert ladder.top_price > top and ladder.cursor_price == cursor
        await pilot._post_mouse_events([events.MouseScrollDown], ladder, offset=(10, 10))
        assert ladder.top_price == top and not working(app)


async def test_with_mouse_trading_off_a_click_only_moves_the_cursor():
    cfg = frozen_config()
    cfg.ui.mouse_trading = False
    async with frozen_app(cfg).run_test(size=SIZE) as pilot:
        app, ladder = await ready(pilot)
        bid = app.market.unified.best_bid()[0]
        await pilot.click(ladder, offset=at(ladder, bid - 3, "bids"))
        assert not working(app) and ladder.cursor_price == bid - 3
        assert not mouse_notices(app)

"""The cursor is a price: with the market moving and no key pressed, the price under the ladder's cursor
never changes; auto-recenter moves the axis (the cursor's row), not the cursor's price; every order key
acts on that price. The default sim, stepped by hand over a long virtual time (real kernel, real sim)."""

from __future__ import annotations

from frozen_app import wait_for

from lobterm.app import LobtermApp
from lobterm.assemble import build_sim_kernel
from lobterm.config import Config
from lobterm.engine.events import BUY
from lobterm.widgets.ladder import HEADER_LINES
from tests.helpers.markets import old_btc_spot

SIZE = (160, 48)


def moving_app(vol_bps: float = 6.0) -> tuple[LobtermApp, object]:
    cfg = Config()
    cfg.sim.seed = 5
    cfg.ui.ticks_per_row = 1  # the cursor rule at one tick a row (the auto zoom: test_auto_zoom.py)
    cfg.sim.vol_bps = vol_bps  # a trending day: the market runs through the window many times
    # The market this was written on (btc-spot before the recalibration of session 5): small moves every
    # step that everyone sees at once, a 150-lot touch.
    old_btc_spot(cfg.sim)
    kernel, venue = build_sim_kernel(cfg, virtual=True)
    venue.open()
    for _ in range(20):
        venue.step()
    return LobtermApp(cfg, kernel=kernel, live=False), venue


def drawn_cursor_price(ladder) -> int | None:
    """The price of the row drawn with the cursor mark (read from the row keys the frame was built from)."""
    for key in ladder._keys[HEADER_LINES:]:
        if key is not None and key[2]:
            return key[1]
    return None


async def test_with_no_key_pressed_the_cursor_keeps_its_price_while_the_axis_follows_the_market():
    app, venue = moving_app()
    async with app.run_test(size=SIZE) as pilot:
        ladder = app.ladder
        await wait_for(pilot, lambda: ladder.cursor_price is not None, what="the first ladder")
        start = ladder.cursor_price
        t0 = app.kernel.clock.now()
        tops = {ladder.top_price}
        rows = set()
        while app.kernel.clock.now() - t0 < 120 * 10**9:  # two virtual minutes
            for _ in range(20):
                venue.step()
            app._tick()
            tops.add(ladder.top_price)
            assert ladder.cursor_price == start
            assert drawn_cursor_price(ladder) == start, "the cursor mark is drawn on its price"
            rows.add(ladder.row_of(start))
        assert ladder.auto_recenters > 0 and len(tops) > 1, "the market moved the axis"
        assert len(rows) > 1, "the cursor's row moved with the axis, its price did not"
        assert None not in rows, "the cursor stays on screen"


async def test_an_order_key_after_a_long_wait_uses_the_price_under_the_cursor():
    app, venue = moving_app()
    async with app.run_test(size=SIZE) as pilot:
        ladder = app.ladder
        await wait_for(pilot, lambda: ladder.cursor_price is not None, what="the first ladder")
        bid = app.market.unified.best_bid()[0]
        await pilot.press("home")
        ladder.move_cursor(bid - 30 - ladder.cursor_price)  # what 30-odd presses of "down" do
        price = ladder.cursor_price
        for _ in range(1000):
            venue.step()
        app._tick()
        await pilot.pause(0.05)
        assert drawn_cursor_price(ladder) == price
        sent = ladder._send(BUY)  # what "b" does; its order id, to find the order whatever became of it
        order = app.kernel.oms.order(sent)
        assert (order.side, order.price) == (BUY, price)


async def test_the_recenter_key_may_move_the_cursor_to_the_market_when_its_price_leaves_the_window():
    app, venue = moving_app(vol_bps=20.0)
    async with app.run_test(size=SIZE) as pilot:
        ladder = app.ladder
        await wait_for(pilot, lambda: ladder.cursor_price is not None, what="the first ladder")
        start = ladder.cursor_price
        for _ in range(100):
            for _ in range(50):
                venue.step()
            app._tick()
            if not ladder._market_visible():
                break
        assert ladder.cursor_price == start and ladder.row_of(start) is not None
        await pilot.press("r")
        inside = ladder._inside_price()
        assert ladder.row_of(inside) is not None and ladder.row_of(ladder.cursor_price) is not None

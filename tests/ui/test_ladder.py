"""The first screen, driven through Textual's Pilot against the real kernel and the real sim venue.

Most tests use a calm sim (seeded, no takers, no fair price moves: the book churns but nothing trades),
so that an order we rest stays resting and the inside market stays where it is.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from frozen_app import wait_for

from lobterm.app import LobtermApp
from lobterm.config import Config
from lobterm.engine.events import BUY, OUR_OWNER, SELL
from lobterm.widgets.desk import TradingDesk
from lobterm.widgets.help import ConfirmQuitScreen, HelpScreen
from lobterm.widgets.ladder import HEADER_LINES, PriceLadder
from tests.helpers.ui import SIZE, calm_config, cursor_below_best_bid, notifications, our_resting, ours, ready

ROOT = Path(__file__).resolve().parents[2]


async def settle(pilot, quiet_ticks: int = 5, timeout: float = 3.0) -> None:
    """Wait until the screen stops repainting the ladder (start-up: the footer recomposes a few times)."""
    ladder = pilot.app.ladder
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last, quiet = ladder.render_line_calls, 0
    while quiet < quiet_ticks and loop.time() < deadline:
        await pilot.pause(0.04)
        quiet = quiet + 1 if ladder.render_line_calls == last else 0
        last = ladder.render_line_calls


# ---- the ladder --------------------------------------------------------------------------------
async def test_ladder_shows_prices_around_the_sim_mid():
    app = LobtermApp(calm_config())
    async with app.run_test(size=SIZE) as pilot:
        ladder = await ready(pilot)
        await app.kernel.stop()  # freeze the book, so that what we read is what was drawn
        ladder.pull()
        inst = app.market.instrument
        assert ladder.price_rows == ladder.size.height - HEADER_LINES
        bid, ask = app.market.unified.best_bid()[0], app.market.unified.best_ask()[0]
        # The inside market is in the middle of the window, prices go down the rows a tick at a time.
        middle = HEADER_LINES + ladder.price_rows // 2
        assert abs(ladder.row_of(bid) - middle) <= 2 and abs(ladder.row_of(ask) - middle) <= 2
        lines = ladder.rendered_lines()
        assert (
            "PRICE" in lines[HEADER_LINES - 1]
            and "OUR BIDS" in lines[HEADER_LINES - 1]
            and "ASKS" in lines[HEADER_LINES - 1]
        )
        for y in range(HEADER_LINES, len(lines)):
            assert inst.format_price(ladder.top_price - (y - HEADER_LINES)) in lines[y]
        assert ladder.cell_text(bid, "bids") == inst.format_size(app.market.unified.best_bid()[1])
        assert ladder.cell_text(ask, "asks") == inst.format_size(app.market.unified.best_ask()[1])
        assert "mid" in ladder.cell_text((bid + ask) // 2 + (bid + ask) % 2, "mid")
        assert ladder.cell_text(bid, "asks") == "" and ladder.cell_text(ask, "bids") == ""


async def test_buy_key_rests_an_order_at_the_cursor_shown_as_ours():
    app = LobtermApp(calm_config())
    async with app.run_test(size=SIZE) as pilot:
        ladder = await ready(pilot)
        price = await cursor_below_best_bid(pilot)
        await pilot.press("b")
        await wait_for(pilot, lambda: ours(ladder, price, "our_bids") == "0.010 (1)", what="our bid")
        ((oid, order),) = app.kernel.oms.working.items()
        assert (order.side, order.price, order.leaves, order.state) == (BUY, price, 10, "working")
        assert app.kernel.venues["sim"].book.order(oid) == (BUY, price, 10, 0, OUR_OWNER)
        # The size column shows everybody else's size: the venue's level less ours.
        await app.kernel.stop()  # freeze the book, so that what we read is what was drawn
        ladder.pull()
        venue_size = app.market.l2.level_size(BUY, price)
        others = ladder.cell_text(price, "bids")
        assert others == (app.market.instrument.format_size(venue_size - 10) if venue_size > 10 else "")


async def test_sell_key_rests_an_ask_shown_as_ours():
    app = LobtermApp(calm_config())
    async with app.run_test(size=SIZE) as pilot:
        ladder = await ready(pilot)
        await pilot.press("home")
        ask = app.market.unified.best_ask()[0]
        await pilot.press(*["up"] * (ask + 2 - ladder.cursor_price))
        await pilot.press("s", "plus", "s")  # a second order at the price (risk refuses exact duplicates)
        await wait_for(pilot, lambda: ours(ladder, ask + 2, "our_asks") == "0.110 (2)", what="our asks")
        assert sorted(o[1:4] for o in our_resting(app)) == [(SELL, ask + 2, 10), (SELL, ask + 2, 100)]


async def test_cancel_key_removes_our_orders_at_the_cursor_only():
    app = LobtermApp(calm_config())
    async with app.run_test(size=SIZE) as pilot:
        ladder = await ready(pilot)
        price = await cursor_below_best_bid(pilot)
        await pilot.press("b", "down", "b", "up")
        await wait_for(pilot, lambda: len(our_resting(app)) == 2, what="two resting bids")
        await pilot.press("x")
        await wait_for(pilot, lambda: ours(ladder, price, "our_bids") == "", what="the cancel")
        assert [o[2] for o in our_resting(app)] == [price - 1]
        assert [o.price for o in app.kernel.oms.working.values()] == [price - 1]
        assert ours(ladder, price - 1, "our_bids") == "0.010 (1)"


async def test_cancel_all_key_removes_every_order_of_ours():
    app = LobtermApp(calm_config())
    async with app.run_test(size=SIZE) as pilot:
        ladder = await ready(pilot)
        bid = await cursor_below_best_bid(pilot)
        await pilot.press("b", "down", "b", "down", "b")
        ask = app.market.unified.best_ask()[0]
        await pilot.press(*["up"] * (ask + 1 - ladder.cursor_price), "s")
        await wait_for(pilot, lambda: len(app.kernel.oms.working) == 4, what="four orders")
        await pilot.press("c")
        await wait_for(pilot, lambda: not app.kernel.oms.working, what="cancel all")
        assert our_resting(app) == []
        await wait_for(
            pilot,
            lambda: ours(ladder, bid - 1, "our_bids") == "" and ours(ladder, ask + 1, "our_asks") == "",
            what="the ladder to clear",
        )


# ---- the default quantity and rejections -------------------------------------------------------
async def test_qty_keys_step_through_the_presets_and_show_in_the_status_bar():
    app = LobtermApp(calm_config())
    async with app.run_test(size=SIZE) as pilot:
        ladder = await ready(pilot)
        status = app.status
        assert "qty 0.010" in str(status.content)
        await pilot.press("plus")
        await wait_for(pilot, lambda: "qty 0.100" in str(status.content), what="qty 0.100")
        await pilot.press("minus", "minus", "minus")
        await wait_for(pilot, lambda: "qty 0.001" in str(status.content), what="qty 0.001 (bottom preset)")
        await pilot.press("4")
        await wait_for(pilot, lambda: "qty 1.000" in str(status.content), what="preset 4")
        await pilot.press("2")
        assert ladder.default_qty == Decimal("0.010")
        price = await cursor_below_best_bid(pilot)
        await pilot.press("3", "b")
        await wait_for(pilot, lambda: ours(ladder, price, "our_bids") == "0.100 (1)", what="a 0.100 bid")


async def test_off_grid_default_qty_is_refused_with_a_notification_and_sends_nothing():
    cfg = calm_config()
    cfg.ui.default_qty = Decimal("0.0005")
    app = LobtermApp(cfg)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await ready(pilot)
        await wait_for(
            pilot, lambda: "0.0005 (not a valid order size)" in str(app.status.content), what="a warning"
        )
        await pilot.press("b")
        await wait_for(pilot, lambda: notifications(app), what="a notification")
        note = notifications(app)[-1]
        assert note.severity == "error" and "0.0005" in note.message and "lot size" in note.message
        await wait_for(pilot, lambda: "reject" in str(app.status.content), what="the status bar")
        assert "0.0005" in str(app.status.content)
        assert app.kernel.oms.sent == 0 and app.kernel.venues["sim"].our_requests == 0


async def test_a_venue_rejection_is_notified_and_shown_in_the_status_bar():
    app = LobtermApp(calm_config())
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        ladder = await ready(pilot)
        app.kernel.buy(app.market, ladder.cursor_price, 0)  # the venue refuses a size of zero lots
        await wait_for(pilot, lambda: notifications(app), what="a notification")
        note = notifications(app)[-1]
        assert note.severity == "error" and "size 0" in note.message
        await wait_for(pilot, lambda: "reject: order 1" in str(app.status.content), what="the status bar")
        assert app.kernel.oms.working == {}


# ---- the axis and the cursor -----------------------------------------------------------------------
async def test_price_axis_stays_put_as_the_market_moves():
    cfg = Config()
    cfg.sim.seed = 3
    cfg.sim.rate_hz = 50  # a busier market, so the book changes many times during the test
    cfg.ui.auto_recenter = False
    cfg.ui.ticks_per_row = 1  # the axis at one tick a row from the first frame (the auto zoom would wait)
    app = LobtermApp(cfg)
    async with app.run_test(size=SIZE) as pilot:
        ladder = await ready(pilot)
        top, cursor = ladder.top_price, ladder.cursor_price
        version = app.market.unified.version
        await wait_for(
            pilot,
            lambda: app.market.unified.version > version + 200 and app.market.trades > 0,
            timeout=10,
            what="the market to move",
        )
        assert (ladder.top_price, ladder.cursor_price) == (top, cursor)


async def test_axis_follows_the_market_by_itself_as_far_as_the_cursor_price_stays_on_screen():
    cfg = calm_config()
    app = LobtermApp(cfg)
    async with app.run_test(size=SIZE) as pilot:
        ladder = await ready(pilot)
        top = ladder.top_price
        venue = app.kernel.venues[app.market.venue]
        venue.shock((venue.fair + 3 * ladder.price_rows) / venue.fair)  # the market jumps three windows up
        cursor = ladder.cursor_price
        unified = app.market.unified

        def moved_and_followed() -> bool:
            # the providers have re-quoted around the new price (both sides above the old window), the
            # axis has followed and the warning is up (under load these come in any order)
            bid, ask = unified.best_bid(), unified.best_ask()
            return (
                bid is not None
                and ask is not None
                and ladder.row_of(bid[0]) is None
                and ladder.auto_recenters >= 1
                and "market above" in ladder.rendered_lines()[0]
            )

        await wait_for(pilot, moved_and_followed, timeout=10, what="the auto-recenter and the warning")
        # The axis follows only as far as keeps the cursor's price on screen; then it waits and says so.
        assert ladder.top_price > top
        assert ladder.cursor_price == cursor and ladder.row_of(cursor) == HEADER_LINES + ladder.price_rows - 1
        assert not ladder._market_visible()


async def test_axis_does_not_follow_the_market_after_the_trader_scrolled_away():
    app = LobtermApp(calm_config())
    async with app.run_test(size=SIZE) as pilot:
        ladder = await ready(pilot)
        await pilot.press("pageup", "pageup")
        top = ladder.top_price
        version = app.market.unified.version
        await wait_for(pilot, lambda: app.market.unified.version > version + 20, what="book changes")
        await settle(pilot)
        assert ladder.top_price == top and ladder.auto_recenters == 0


async def test_recenter_key_puts_the_inside_market_in_the_middle():
    app = LobtermApp(calm_config())
    async with app.run_test(size=SIZE) as pilot:
        ladder = await ready(pilot)
        await pilot.press("pageup", "pageup")
        top = ladder.top_price
        assert ladder.row_of(app.market.unified.best_bid()[0]) is None  # the market is off screen
        await wait_for(pilot, lambda: "market below" in ladder.rendered_lines()[0], what="the warning")
        await pilot.press("r")
        center = app.market.unified.center_price()
        assert ladder.top_price < top
        assert ladder.top_price == center + ladder.price_rows // 2
        assert ladder.row_of(center) == HEADER_LINES + ladder.price_rows // 2
        assert ladder.row_of(ladder.cursor_price) is not None
        await pilot.press("pageup", "space")  # space recenters too
        assert ladder.top_price == app.market.unified.center_price() + ladder.price_rows // 2


async def test_cursor_moving_past_an_edge_shifts_the_axis_and_stays_visible():
    app = LobtermApp(calm_config())
    async with app.run_test(size=SIZE) as pilot:
        ladder = await ready(pilot)
        top = ladder.top_price
        await pilot.press(*["up"] * (ladder.price_rows // 2 + 5))
        assert ladder.top_price == top + 4 or ladder.top_price == top + 5
        assert ladder.row_of(ladder.cursor_price) == HEADER_LINES
        await pilot.press("pagedown")
        assert ladder.row_of(ladder.cursor_price) == HEADER_LINES  # a page moves axis and cursor together
        await pilot.press("home")
        assert ladder.cursor_price == app.market.unified.center_price()
        assert ladder.row_of(ladder.cursor_price) is not None
        await wait_for(pilot, lambda: ladder.cell_text(ladder.cursor_price, "cursor") == "▶", what="the mark")


async def test_resize_keeps_the_cursor_visible_and_fills_the_new_height():
    app = LobtermApp(calm_config())
    async with app.run_test(size=SIZE) as pilot:
        ladder = await ready(pilot)
        await pilot.press(*["down"] * (ladder.price_rows // 2 - 2))
        await pilot.resize_terminal(120, 20)
        await wait_for(
            pilot,
            lambda: ladder.size.height < 20 and len(ladder.rendered_lines()) == ladder.size.height,
            what="the resize",
        )
        assert ladder.row_of(ladder.cursor_price) is not None
        assert ladder.cell_text(ladder.cursor_price, "cursor") == "▶"


# ---- drawing only what changed ---------------------------------------------------------------------
async def test_only_changed_lines_are_refreshed():
    app = LobtermApp(calm_config())
    async with app.run_test(size=SIZE) as pilot:
        ladder = await ready(pilot)
        await app.kernel.stop()  # the book stops changing
        await settle(pilot)
        refreshed, rendered = ladder.lines_refreshed, ladder.render_line_calls
        clock_ticks = 0
        for _ in range(5):  # several UI clock ticks with no book change: nothing to redraw
            await pilot.pause(1 / app.config.ui.refresh_hz)
            clock_ticks += ladder.pull() == 0
        assert clock_ticks == 5
        assert (ladder.lines_refreshed, ladder.render_line_calls) == (refreshed, rendered)
        await pilot.press("down")  # the cursor moves a row: its old row and its new row
        await wait_for(pilot, lambda: ladder.render_line_calls - rendered == 2, what="two lines painted")
        await settle(pilot)
        assert ladder.lines_refreshed - refreshed == 2
        assert ladder.render_line_calls - rendered == 2


async def test_a_book_change_refreshes_only_its_row():
    app = LobtermApp(calm_config())
    async with app.run_test(size=SIZE) as pilot:
        ladder = await ready(pilot)
        await app.kernel.stop()
        await settle(pilot)
        ladder.pull()
        refreshed = ladder.lines_refreshed
        price = ladder.cursor_price - 5
        app.kernel.buy(app.market, price, 3)  # rests: one row changes
        assert ladder.pull() == 1
        assert ladder.lines_refreshed - refreshed == 1
        assert ours(ladder, price, "our_bids") == "0.003 (1)"


# ---- keys, help, quitting ------------------------------------------------------------------------
async def test_help_screen_lists_every_binding_with_its_key():
    app = LobtermApp(calm_config())
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), what="the help screen")
        keys_by_id = {binding_id: keys for keys, _text, binding_id in app.screen.rows}
        ours_ = [
            b
            for b in (*LobtermApp.BINDINGS, *TradingDesk.BINDINGS, *PriceLadder.BINDINGS)
            if b.id and b.id != "consolidated"  # `L` answers only where several venues quote one instrument
        ]
        assert set(keys_by_id) == {b.id for b in ours_}
        texts = {text for _keys, text, _id in app.screen.rows}
        for binding in ours_:
            assert (binding.tooltip or binding.description) in texts, binding
        assert (
            keys_by_id["buy"] == "b"
            and keys_by_id["quit"].startswith("q")
            and "space" in keys_by_id["recenter"]
        )
        assert keys_by_id["kill"] == "^k" and keys_by_id["move_up"] == "⇧↑"
        text = str(app.screen.query_one("#help-keys").content)
        assert "Cancel all" in text and "Cursor to the inside market" in text and "cancel_all" in text
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, HelpScreen), what="help to close")
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), what="f1 help")


async def test_config_keys_rebind_actions():
    app = LobtermApp(calm_config(buy="B", help="w"))
    async with app.run_test(size=SIZE) as pilot:
        ladder = await ready(pilot)
        price = await cursor_below_best_bid(pilot)
        await pilot.press("b")  # no longer bound
        await pilot.pause(0.05)
        assert app.kernel.oms.sent == 0
        await pilot.press("B")
        await wait_for(pilot, lambda: ours(ladder, price, "our_bids") == "0.010 (1)", what="the rebound buy")
        await pilot.press("w")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), what="the rebound help")
        assert ("B", PriceLadder.BINDINGS[0].tooltip, "buy") in app.screen.rows


async def test_unknown_binding_id_in_config_is_notified_not_fatal():
    app = LobtermApp(calm_config(bogus="z", buy="b"))
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await ready(pilot)
        note = notifications(app)[0]
        assert note.severity == "warning" and "bogus" in note.message
        await pilot.press("b")
        await wait_for(pilot, lambda: app.kernel.oms.sent == 1, what="buy still works")


async def test_quit_with_working_orders_asks_then_cancels_them_all():
    app = LobtermApp(calm_config())
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await cursor_below_best_bid(pilot)
        await pilot.press("b")
        await wait_for(pilot, lambda: our_resting(app), what="a resting bid")
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmQuitScreen), what="the question")
        await pilot.press("n")
        await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmQuitScreen), what="staying")
        assert app.is_running and len(our_resting(app)) == 1
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmQuitScreen), what="the question again")
        await pilot.press("y")
        await wait_for(pilot, lambda: not app.is_running, what="the app to exit")
    assert our_resting(app) == [] and app.kernel.oms.working == {}
    assert app.kernel.venue_state["sim"] == "closed"


async def test_quit_without_orders_exits_at_once_and_stops_the_kernel():
    app = LobtermApp(calm_config())
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("q")
        await wait_for(pilot, lambda: not app.is_running, what="the app to exit")
    assert app.kernel.venue_state["sim"] == "closed"


def test_starting_the_app_does_not_import_ccxt():
    code = (
        "import asyncio, sys\n"
        "from lobterm.app import LobtermApp\n"
        "from lobterm.config import Config\n"
        "async def main():\n"
        "    app = LobtermApp(Config())\n"
        "    async with app.run_test(size=(120, 40)) as pilot:\n"
        "        for _ in range(100):\n"
        "            await pilot.pause(0.02)\n"
        "            if app.ladder.top_price is not None:\n"
        "                break\n"
        "        assert app.ladder.top_price is not None, 'no ladder'\n"
        "asyncio.run(main())\n"
        "print('ccxt imported' if any(m == 'ccxt' or m.startswith('ccxt.') for m in sys.modules) else 'no ccxt')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "no ccxt"


async def test_a_key_clash_in_config_is_refused_with_a_notification():
    app = LobtermApp(calm_config(buy="s"))  # would leave sell without a key and make "s" buy
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        ladder = await ready(pilot)
        note = notifications(app)[0]
        assert note.severity == "warning" and "'s'" in note.message and "buy and sell" in note.message
        await pilot.press("home", *["up"] * 5, "s")  # well above the market: "s" still sells
        await wait_for(pilot, lambda: app.kernel.oms.sent == 1, what="an order")
        (order,) = app.kernel.oms.working.values()
        assert (order.side, order.price) == (SELL, ladder.cursor_price)

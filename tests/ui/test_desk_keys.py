"""Every trading verb of the desk, pressed through Textual's Pilot against the real kernel and the real sim
venue: the effect shows in the widget and is true in the engine (the sim's matching book, the OMS, risk,
the market maker, the inventory).

The calm sim (seeded, no takers, a still fair price) keeps what we rest resting, so that each test sees
only what its keys did.
"""

from __future__ import annotations

import copy
from decimal import Decimal

from lobterm.app import LobtermApp
from lobterm.assemble import build_sim_kernel
from lobterm.clock import LiveClock
from lobterm.config import Config, risk_limits
from lobterm.engine.events import BUY, IOC, SELL
from lobterm.kernel import Kernel
from lobterm.venues.sim import SimVenue
from lobterm.widgets.help import ConfirmScreen
from lobterm.widgets.ladder import _K_FLASH, HEADER_LINES
from tests.helpers.ui import (
    SIZE,
    book_orders,
    calm_config,
    cursor_below_best_bid,
    mm_of,
    notifications,
    our_resting,
    our_resting_at,
    ours,
    ready,
    wait_for,
)


# ---- orders from the ladder ------------------------------------------------------------------------
async def test_join_keys_rest_at_the_best_bid_and_the_best_offer():
    app = LobtermApp(calm_config())
    async with app.run_test(size=SIZE) as pilot:
        ladder = await ready(pilot)
        bid, ask = app.market.l2.best_bid_price(), app.market.l2.best_ask_price()
        await pilot.press("j", "k")
        await wait_for(
            pilot,
            lambda: (
                ours(ladder, bid, "our_bids") == "0.010 (1)" and ours(ladder, ask, "our_asks") == "0.010 (1)"
            ),
            what="both joins on the ladder",
        )
        assert book_orders(app) == [(BUY, bid, 10), (SELL, ask, 10)]


async def test_cancel_side_keys_cancel_only_our_bids_or_only_our_asks():
    app = LobtermApp(calm_config())
    async with app.run_test(size=SIZE) as pilot:
        ladder = await ready(pilot)
        bid = await cursor_below_best_bid(pilot)
        await pilot.press("b", "down", "b")
        ask = app.market.l2.best_ask_price()
        await pilot.press(*["up"] * (ask + 2 - ladder.cursor_price), "s")
        await wait_for(pilot, lambda: len(book_orders(app)) == 3, what="two bids and an ask")
        await pilot.press("left_square_bracket")
        await wait_for(pilot, lambda: book_orders(app) == [(SELL, ask + 2, 10)], what="the bids cancelled")
        await wait_for(
            pilot,
            lambda: ours(ladder, bid, "our_bids") == "" and ours(ladder, bid - 1, "our_bids") == "",
            what="our bids off the ladder",
        )
        assert ours(ladder, ask + 2, "our_asks") == "0.010 (1)"
        await pilot.press("right_square_bracket")
        await wait_for(pilot, lambda: book_orders(app) == [] and not app.kernel.oms.working, what="the asks")
        await wait_for(pilot, lambda: ours(ladder, ask + 2, "our_asks") == "", what="our ask off the ladder")


async def test_move_keys_amend_our_order_a_tick_and_the_cursor_follows_it():
    app = LobtermApp(calm_config())
    async with app.run_test(size=SIZE) as pilot:
        ladder = await ready(pilot)
        price = await cursor_below_best_bid(pilot, rows=4)
        await pilot.press("b")
        await wait_for(pilot, lambda: book_orders(app) == [(BUY, price, 10)], what="our bid")
        await pilot.press("shift+up")
        await wait_for(pilot, lambda: book_orders(app) == [(BUY, price + 1, 10)], what="the amend up")
        assert ladder.cursor_price == price + 1
        await wait_for(
            pilot,
            lambda: (
                ours(ladder, price + 1, "our_bids") == "0.010 (1)" and ours(ladder, price, "our_bids") == ""
            ),
            what="the ladder to follow",
        )
        await pilot.press("shift+down", "shift+down")
        await wait_for(pilot, lambda: book_orders(app) == [(BUY, price - 1, 10)], what="two ticks down")
        (order,) = app.kernel.oms.working.values()
        assert order.price == price - 1 and ladder.cursor_price == price - 1
        await wait_for(pilot, lambda: ours(ladder, price - 1, "our_bids") == "0.010 (1)", what="the ladder")


async def test_move_key_with_no_order_at_the_cursor_says_so_and_sends_nothing():
    app = LobtermApp(calm_config())
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await ready(pilot)
        await pilot.press("shift+up")
        await wait_for(pilot, lambda: notifications(app), what="a notice")
        assert "No order of ours" in notifications(app)[-1].message
        assert app.kernel.oms.amends_sent == 0 and app.kernel.oms.sent == 0


async def test_flatten_cancels_our_orders_and_closes_the_position_with_an_ioc():
    app = LobtermApp(calm_config())
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        ladder = await ready(pilot)
        k, m = app.kernel, app.market
        ask = m.l2.best_ask_price()
        await pilot.press("home", *["up"] * (ask - ladder.cursor_price), "b")  # at the ask: trades at once
        await wait_for(
            pilot, lambda: k.inventory.position("sim", m.symbol).lots == 10, what="a long position"
        )
        await wait_for(pilot, lambda: "pos 0.010 BTC" in str(app.status.content), what="the status bar")
        await wait_for(
            pilot, lambda: "sim BTC/USDT" in str(app.desk.inventory_panel.content), what="the panel"
        )
        await cursor_below_best_bid(pilot)
        await pilot.press("b")
        await wait_for(pilot, lambda: len(book_orders(app)) == 1, what="a resting bid")
        await pilot.press("F")
        await wait_for(pilot, lambda: k.inventory.position("sim", m.symbol).lots == 0, what="flat")
        assert book_orders(app) == [] and not k.oms.working
        closing = [o for o in k.oms.recent if o.tag == "flatten"]
        assert [(o.side, o.order_type, o.filled) for o in closing] == [(SELL, IOC, 10)]
        await wait_for(
            pilot, lambda: "pos 0.000 BTC" in str(app.status.content), what="flat in the status bar"
        )
        assert any(n.title == "Flatten" for n in notifications(app))


async def test_flatten_refused_by_risk_is_shown_and_the_position_stays():
    app = LobtermApp(calm_config())
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        ladder = await ready(pilot)
        k, m = app.kernel, app.market
        ask = m.l2.best_ask_price()
        await pilot.press("home", *["up"] * (ask - ladder.cursor_price), "b")
        await wait_for(
            pilot, lambda: k.inventory.position("sim", m.symbol).lots == 10, what="a long position"
        )
        await pilot.press("ctrl+k", "F")  # the kill switch blocks every new order, the closing one too
        await wait_for(
            pilot,
            lambda: any(n.title == "Order rejected" and "kill" in n.message for n in notifications(app)),
            what="the refusal",
        )
        assert k.inventory.position("sim", m.symbol).lots == 10
        await wait_for(
            pilot,
            lambda: "reject:" in str(app.status.content) and "kill" in str(app.status.content),
            what="the refusal in the status bar",
        )


# ---- the kill switch and the market maker ---------------------------------------------------------
async def test_market_maker_key_starts_and_pauses_quoting_shown_in_the_quote_panel():
    app = LobtermApp(calm_config())
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        panel = app.desk.quote_panel
        await wait_for(pilot, lambda: "PAUSED" in str(panel.content), what="a paused market maker")
        assert book_orders(app) == []
        await pilot.press("m")
        levels = mm_of(app).params.levels
        await wait_for(pilot, lambda: len(book_orders(app)) == 2 * levels, what="our quotes in the book")
        await wait_for(pilot, lambda: "RUNNING" in str(panel.content), what="RUNNING in the panel")
        best_quote = max(p for s, p, _ in book_orders(app) if s == BUY)
        await wait_for(
            pilot,
            lambda: app.market.instrument.format_price(best_quote) in str(panel.content),
            what="the working quotes in the panel",
        )
        await wait_for(pilot, lambda: "MM running" in str(app.status.content), what="the status bar")
        await pilot.press("m")
        await wait_for(pilot, lambda: book_orders(app) == [], what="the quotes cancelled")
        await wait_for(pilot, lambda: "PAUSED" in str(panel.content), what="PAUSED again")


async def test_nudge_keys_change_the_market_makers_spread_skew_and_size_live():
    app = LobtermApp(calm_config())
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        mm = mm_of(app)
        panel = app.desk.quote_panel
        await pilot.press("m")
        await wait_for(pilot, lambda: len(book_orders(app)) == 2 * mm.params.levels, what="quoting")

        def quoted_spread() -> int:
            orders = book_orders(app)
            return min(p for s, p, _ in orders if s == SELL) - max(p for s, p, _ in orders if s == BUY)

        spread = mm.params.spread_ticks  # even: quotes sit symmetrically around a mid on a whole tick
        assert quoted_spread() == spread
        await pilot.press("greater_than_sign", "greater_than_sign")
        assert mm.params.spread_ticks == spread + 2
        await wait_for(pilot, lambda: quoted_spread() == spread + 2, what="a wider spread in the book")
        await wait_for(pilot, lambda: f"spread {spread + 2} ticks" in str(panel.content), what="the panel")
        await pilot.press("less_than_sign", "less_than_sign")
        await wait_for(pilot, lambda: quoted_spread() == spread, what="the spread back")
        await pilot.press("right_parenthesis")
        assert mm.params.size_lots == 12
        await wait_for(
            pilot, lambda: {size for _s, _p, size in book_orders(app)} == {12}, what="bigger quotes"
        )
        await wait_for(pilot, lambda: "size 0.012" in str(panel.content), what="the new size in the panel")
        await pilot.press("left_parenthesis")
        await wait_for(pilot, lambda: {size for _s, _p, size in book_orders(app)} == {10}, what="sizes back")
        await pilot.press("right_curly_bracket", "right_curly_bracket")
        assert mm.params.skew_ticks_per_lot == 0.02
        await wait_for(pilot, lambda: "skew 0.02 t/lot" in str(panel.content), what="the skew in the panel")
        await pilot.press("left_curly_bracket")
        assert mm.params.skew_ticks_per_lot == 0.01


async def test_kill_switch_stops_everything_and_rearms_only_after_confirmation():
    app = LobtermApp(calm_config())
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        ladder = await ready(pilot)
        k = app.kernel
        mm = mm_of(app)
        await pilot.press("m")
        await wait_for(pilot, lambda: len(book_orders(app)) == 2 * mm.params.levels, what="quoting")
        await pilot.press("ctrl+k")
        assert k.risk.killed and mm.state == "stopped"
        await wait_for(
            pilot, lambda: book_orders(app) == [] and not k.oms.working, what="everything cancelled"
        )
        await wait_for(pilot, lambda: "KILL SWITCH ON" in str(app.status.content), what="the status bar")
        await wait_for(pilot, lambda: "STOPPED" in str(app.desk.quote_panel.content), what="the quote panel")
        sent = k.oms.sent
        await cursor_below_best_bid(pilot)
        await pilot.press("b", "m")  # refused by risk; the market maker cannot start
        await wait_for(
            pilot, lambda: any("kill" in n.message for n in notifications(app)), what="the refusal"
        )
        assert book_orders(app) == [] and mm.state == "stopped" and k.oms.sent == sent
        await pilot.press("ctrl+k")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the re-arm question")
        await pilot.press("n")
        await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmScreen), what="no")
        assert k.risk.killed
        await pilot.press("ctrl+k")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the question again")
        await pilot.press("y")
        await wait_for(pilot, lambda: not k.risk.killed, what="re-armed")
        assert mm.state == "paused"
        await wait_for(pilot, lambda: "KILL SWITCH" not in str(app.status.content), what="the status bar")
        price = ladder.cursor_price
        await pilot.press("b")
        await wait_for(pilot, lambda: book_orders(app) == [(BUY, price, 10)], what="orders go through again")


# ---- the ladder: zoom, queue, flash, several ladders ---------------------------------------------------
async def test_zoom_keys_sum_rows_and_trade_at_the_rows_best_price():
    app = LobtermApp(calm_config())
    async with app.run_test(size=SIZE) as pilot:
        ladder = await ready(pilot)
        await app.kernel.stop()  # a still book, so that sums can be compared with it
        await pilot.press("z", "z")  # 1 -> 2 -> 5 ticks a row
        assert ladder.ticks_per_row == 5
        await wait_for(pilot, lambda: "0.5 per row (×5)" in ladder.rendered_lines()[0], what="the title")
        l2 = app.market.l2
        inst = app.market.instrument
        bid = l2.best_bid_price()
        low = (bid - 5) - (bid - 5) % 5  # a row wholly under the best bid
        await pilot.press("home", *["down"] * ((ladder.cursor_price - low) // 5))
        assert ladder.cursor_price == low
        levels = l2.levels_between(BUY, low, low + 4)
        assert ladder.cell_text(low, "bids") == inst.format_size(sum(size for _p, size in levels))
        await pilot.press("b")  # goes to the row's best (highest) bid price
        best_in_row = max(p for p, _ in levels)
        await wait_for(pilot, lambda: app.kernel.oms.working, what="the order")
        (order,) = app.kernel.oms.working.values()
        assert (order.side, order.price) == (BUY, best_in_row)
        assert ours(ladder, low, "our_bids") == "0.010 (1)"
        await pilot.press("Z", "Z", "Z")  # back to one tick a row (and no finer)
        assert ladder.ticks_per_row == 1
        assert ladder.row_of(ladder.cursor_price) is not None


async def test_our_size_shows_our_queue_position_from_the_matching_book():
    app = LobtermApp(calm_config())
    async with app.run_test(size=SIZE) as pilot:
        ladder = await ready(pilot)
        price = await cursor_below_best_bid(pilot, rows=2)
        await pilot.press("b")
        await wait_for(pilot, lambda: app.kernel.oms.working, what="the order")
        (oid,) = app.kernel.oms.working
        await app.kernel.stop()
        ladder.pull()
        ahead = app.kernel.venues["sim"].book.queue_position(oid)
        assert ahead == app.kernel.queue_ahead(app.market, oid) and ahead > 0  # others were there first
        inst = app.market.instrument
        assert ladder.cell_text(price, "our_bids") == f"0.010 (1) q{inst.format_size(ahead)}"


async def test_paper_ladder_is_marked_paper_and_shows_the_desks_queue_estimate():
    cfg = calm_config()
    kernel, _venue = build_sim_kernel(cfg, virtual=False, paper=True)
    app = LobtermApp(cfg, kernel=kernel)
    async with app.run_test(size=SIZE) as pilot:
        ladder = await ready(pilot)
        assert " PAPER " in ladder.rendered_lines()[0]
        price = await cursor_below_best_bid(pilot, rows=2)
        await pilot.press("b")
        await wait_for(
            pilot,
            lambda: kernel.oms.working and ours(ladder, price, "our_bids") == "0.010 (1)",
            what="our paper bid",
        )
        (oid,) = kernel.oms.working
        await kernel.stop()
        ladder.pull()
        ahead = kernel.venues["sim"].desk.queue_ahead(oid)
        assert ahead is not None and kernel.queue_ahead(app.market, oid) == ahead
        assert ladder.cell_text(price, "our_bids").endswith(f"q{app.market.instrument.format_size(ahead)}")
        assert our_resting(app) == []  # paper orders never reach the sim's matching book


async def test_a_changed_level_flashes_briefly():
    cfg = calm_config()
    cfg.ui.flash_ms = 300
    app = LobtermApp(cfg)
    async with app.run_test(size=SIZE) as pilot:
        ladder = await ready(pilot)
        await app.kernel.stop()
        price = ladder.cursor_price - 3
        ladder.pull()
        ladder.pull()
        assert not ladder.row_key(price)[_K_FLASH]
        app.kernel.buy(app.market, price, 3)  # the bid total at that price grows
        ladder.pull()
        assert ladder.row_key(price)[_K_FLASH] == 1  # bids side lit
        await wait_for(pilot, lambda: not ladder.row_key(price)[_K_FLASH], timeout=2, what="the flash to end")
        assert not any(key[_K_FLASH] for key in ladder._keys[HEADER_LINES:] if key)


def two_venue_kernel(cfg: Config) -> Kernel:
    a, b = copy.deepcopy(cfg.sim), copy.deepcopy(cfg.sim)
    a.venue, b.venue = "simA", "simB"
    b.start_price, b.seed = Decimal("3000"), 8
    b.symbol = "ETH/USDT"
    return Kernel([SimVenue(a), SimVenue(b)], LiveClock(), risk_limits=risk_limits(cfg))


async def test_one_ladder_per_market_side_by_side_and_tab_moves_the_keyboard():
    cfg = calm_config()
    kernel = two_venue_kernel(cfg)
    app = LobtermApp(cfg, kernel=kernel)
    async with app.run_test(size=SIZE) as pilot:
        first = await ready(pilot)
        second = app.desk.ladders[1]
        await wait_for(pilot, lambda: second.top_price is not None, what="the second ladder")
        assert first.region.x < second.region.x and first.region.width > 0 and second.region.width > 0
        assert (
            "BTC/USDT · simA" in first.rendered_lines()[0] and "ETH/USDT · simB" in second.rendered_lines()[0]
        )
        await pilot.press("tab")
        assert app.ladder is second and second.has_focus
        await wait_for(pilot, lambda: "ETH/USDT" in str(app.status.content), what="the status bar to follow")
        await wait_for(
            pilot, lambda: "simB ETH/USDT" in str(app.desk.quote_panel.content), what="the quote panel"
        )
        price = await cursor_below_best_bid(pilot)
        await pilot.press("b")
        await wait_for(pilot, lambda: ours(second, price, "our_bids") == "0.010 (1)", what="our bid on simB")
        assert [o[1:4] for o in our_resting_at(app, "simB")] == [(BUY, price, 10)]
        assert our_resting_at(app, "simA") == []
        await pilot.press("shift+tab")
        assert app.ladder is first and first.has_focus
        await pilot.press("m")  # the market maker of the ladder with the keyboard
        await wait_for(pilot, lambda: len(our_resting_at(app, "simA")) == 10, what="quotes on simA only")
        assert app.desk.market_makers[("simB", "ETH/USDT")].state == "paused"


# ---- status bar and panels ---------------------------------------------------------------------------
async def test_status_bar_shows_venue_health_latency_and_the_replay_clock_hook():
    app = LobtermApp(calm_config())
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        status = app.status
        await wait_for(
            pilot,
            lambda: "sim SIM live" in str(status.content) and "ms" in str(status.content),
            what="health and latency",
        )
        app.market.stale = True
        await wait_for(pilot, lambda: "sim SIM stale" in str(status.content), what="a stale feed")
        app.market.stale = False
        status.replay_time = 1_767_225_600 * 1_000_000_000 + 3_723_456_000_000  # 01:02:03.456 UTC
        await wait_for(pilot, lambda: "REPLAY 01:02:03.456" in str(status.content), what="the replay clock")
        await app.kernel.stop()
        await wait_for(pilot, lambda: "sim SIM down" in str(status.content), what="a closed venue is down")


async def test_tape_marks_our_fills_and_the_blotter_lists_our_orders():
    app = LobtermApp(calm_config())
    async with app.run_test(size=SIZE) as pilot:
        ladder = await ready(pilot)
        ask = app.market.l2.best_ask_price()
        await pilot.press("home", *["up"] * (ask - ladder.cursor_price), "b")
        tape = app.desk.tape
        await wait_for(
            pilot, lambda: any("◆ ours" in line for line in tape.lines()[1:]), what="our fill on the tape"
        )
        fill_line = next(line for line in tape.lines()[1:] if "◆ ours" in line)
        assert app.market.instrument.format_price(ask) in fill_line and "0.010" in fill_line
        await cursor_below_best_bid(pilot)
        await pilot.press("b")
        blotter = app.desk.blotter
        await wait_for(
            pilot,
            lambda: "1 working" in str(blotter.content) and "FILL" in str(blotter.content),
            what="the blotter",
        )
        assert "filled" in str(blotter.content)  # the order that traded, with its fill


async def test_hedge_panel_says_when_no_hedger_runs_and_shows_one_when_configured():
    app = LobtermApp(calm_config())
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await wait_for(
            pilot, lambda: "none configured" in str(app.desk.hedge_panel.content), what="no hedger"
        )
    cfg = calm_config()
    cfg.hedge = {"policy": "twap", "threshold_lots": 5}
    app = LobtermApp(cfg)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        assert app.kernel.hedger is not None
        await wait_for(
            pilot,
            lambda: (
                "twap" in str(app.desk.hedge_panel.content) and "RUNNING" in str(app.desk.hedge_panel.content)
            ),
            what="the hedger",
        )


async def test_recording_key_writes_a_session_file_and_shows_it(tmp_path):
    cfg = calm_config()
    cfg.sessions_dir = tmp_path
    app = LobtermApp(cfg)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await ready(pilot)
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.kernel.recorder is not None, what="the recorder")
        rec = app.kernel.recorder
        await wait_for(pilot, lambda: "● REC" in str(app.status.content), what="REC in the status bar")
        await wait_for(pilot, lambda: rec.events_written > 0, what="events on disk")
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: rec.closed, what="the file closed")
        await wait_for(pilot, lambda: "● REC" not in str(app.status.content), what="REC gone")
    assert rec.path.parent == tmp_path and rec.path.stat().st_size > 0


async def test_quit_while_the_market_maker_quotes_pauses_it_cancels_everything_and_exits():
    app = LobtermApp(calm_config())
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("m")
        await wait_for(pilot, lambda: len(book_orders(app)) == 10, what="quoting")
        await pilot.press("q")
        await wait_for(
            pilot, lambda: app.screen.__class__.__name__ == "ConfirmQuitScreen", what="the question"
        )
        await pilot.press("y")
        await wait_for(pilot, lambda: not app.is_running, what="the app to exit")
    assert book_orders(app) == [] and app.kernel.oms.working == {} and mm_of(app).state == "paused"

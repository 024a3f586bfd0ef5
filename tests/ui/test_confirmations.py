"""Every order a ladder key sends is the one the trader saw, and above `ui.confirm_above_qty` the one they
confirmed: b/s, the joins and moves (⇧↑/⇧↓) ask first, naming side, size, price and market, say when the
order would cross, and send exactly the order named (the price of the frame the key was pressed in). The
market maker's editor refuses a quote size above the risk max position. Real kernel, real sim venue."""

from __future__ import annotations

from decimal import Decimal

from frozen_app import frozen_app, frozen_config, wait_for
from textual.widgets import Static

from lobterm.engine.events import BUY, SELL
from lobterm.widgets.help import ConfirmOrderScreen
from lobterm.widgets.mm_editor import MarketMakerEditor
from tests.helpers.ui import open_editor, type_into

SIZE = (160, 48)


async def _ready(pilot):
    app = pilot.app
    await wait_for(pilot, lambda: app.ladder.cursor_price is not None, what="the first ladder")
    return app.ladder


def _question(app) -> str:
    return str(app.screen.query_one("#confirm-text", Static).content)


def _ours(app) -> list:
    return sorted(((o.side, o.price, o.size) for o in app.kernel.oms.working.values() if o.is_live), key=str)


async def test_a_large_sell_asks_first_naming_side_size_price_and_market_and_no_sends_nothing():
    app = frozen_app(frozen_config())
    async with app.run_test(size=SIZE) as pilot:
        ladder = await _ready(pilot)
        ask = app.market.unified.best_ask()[0]
        await pilot.press("home", *["up"] * (ask - ladder.cursor_price + 3))  # three ticks above the ask
        price = ladder.cursor_price
        await pilot.press("4", "s")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmOrderScreen), what="the question")
        text = _question(app)
        inst = app.market.instrument
        assert f"Sell 1.000 BTC @ {inst.format_price(price)} limit on sim BTC/USDT" in text
        assert "above 0.500 BTC" in text and "Marketable" not in text
        assert app.kernel.oms.sent == 0
        await pilot.press("n")
        await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmOrderScreen), what="closed")
        assert app.kernel.oms.sent == 0 and _ours(app) == []


async def test_yes_sends_exactly_the_order_named_even_after_the_cursor_moved():
    app = frozen_app(frozen_config())
    async with app.run_test(size=SIZE) as pilot:
        ladder = await _ready(pilot)
        bid = app.market.unified.best_bid()[0]
        await pilot.press("home", *["down"] * (ladder.cursor_price - bid + 2))
        price = ladder.cursor_price
        await pilot.press("4", "b")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmOrderScreen), what="the question")
        ladder.cursor_price = price - 5  # whatever happens meanwhile, the answer sends what was asked
        await pilot.press("y")
        await wait_for(pilot, lambda: app.kernel.oms.sent == 1, what="the order")
        assert _ours(app) == [(BUY, price, 1000)]


async def test_a_marketable_large_order_says_it_crosses():
    app = frozen_app(frozen_config())
    async with app.run_test(size=SIZE) as pilot:
        ladder = await _ready(pilot)
        bid = app.market.unified.best_bid()[0]
        await pilot.press(
            "home", *["down"] * (ladder.cursor_price - bid + 1)
        )  # under the bid: a sell crosses
        await pilot.press("4", "s")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmOrderScreen), what="the question")
        inst = app.market.instrument
        assert f"Marketable: crosses the best bid {inst.format_price(bid)}" in _question(app)
        assert app.kernel.oms.sent == 0


async def test_join_above_the_threshold_asks_and_a_small_order_goes_at_once():
    app = frozen_app(frozen_config())
    async with app.run_test(size=SIZE) as pilot:
        await _ready(pilot)
        bid = app.market.unified.best_bid()[0]
        await pilot.press("2", "j")  # 0.010: below the threshold
        await wait_for(pilot, lambda: app.kernel.oms.sent == 1, what="the small join")
        assert not isinstance(app.screen, ConfirmOrderScreen)
        await pilot.press("4", "j")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmOrderScreen), what="the question")
        assert "Buy 1.000 BTC @ " + app.market.instrument.format_price(bid) in _question(app)
        assert app.kernel.oms.sent == 1
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmOrderScreen), what="closed")
        assert app.kernel.oms.sent == 1


async def test_moving_a_large_order_asks_first_and_no_leaves_it_where_it_was():
    cfg = frozen_config()
    cfg.ui.confirm_above_qty = Decimal("0.050")
    app = frozen_app(cfg)
    async with app.run_test(size=SIZE) as pilot:
        ladder = await _ready(pilot)
        ask = app.market.unified.best_ask()[0]
        await pilot.press("home", *["up"] * (ask - ladder.cursor_price + 4))
        price = ladder.cursor_price
        await pilot.press("3", "s")  # 0.100 > 0.050: asks
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmOrderScreen), what="the order question")
        await pilot.press("y")
        await wait_for(pilot, lambda: _ours(app) == [(SELL, price, 100)], what="our ask")
        sent = app.kernel.oms.amends_sent
        await pilot.press("shift+down")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmOrderScreen), what="the move question")
        inst = app.market.instrument
        assert (
            f"Move 1 order (0.100 BTC) from {inst.format_price(price)} to {inst.format_price(price - 1)}"
            in _question(app)
        )
        await pilot.press("n")
        await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmOrderScreen), what="closed")
        assert app.kernel.oms.amends_sent == sent and _ours(app) == [(SELL, price, 100)]
        await pilot.press("shift+down")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmOrderScreen), what="the move question")
        await pilot.press("y")
        await wait_for(pilot, lambda: app.kernel.oms.amends_sent == sent + 1, what="the amend")
        assert ladder.cursor_price == price - 1


async def test_the_editor_refuses_a_quote_size_above_the_risk_max_position():
    app = frozen_app(frozen_config())
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await _ready(pilot)
        mm = app.kernel.market_makers[0]
        limit = app.kernel.risk.limits_for(*app.market.key).max_position_lots
        assert limit is not None
        inst = app.market.instrument
        too_big = inst.format_size(limit + 1)
        before = mm.params
        editor = await open_editor(pilot)
        await type_into(pilot, editor, "size_lots", too_big)
        await pilot.pause(0.05)
        error = str(editor.query_one("#size_lots-error", Static).content)
        assert (
            error
            == f"{too_big}: above the risk max position {inst.format_size(limit)} BTC (risk.max_position_qty)"
        )
        await pilot.press("enter")
        await pilot.pause(0.05)
        assert isinstance(app.screen, MarketMakerEditor) and mm.params == before
        assert any("above the risk max position" in n.message for n in app._notifications)

"""The order ticket, typed into through Pilot on a frozen sim market (nothing moves unless we trade)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from frozen_app import frozen_app, frozen_config, wait_for
from textual.widgets import Input, Static

from lobterm.config import Config
from lobterm.engine.events import BUY, OUR_OWNER, SELL
from lobterm.widgets.ticket import ConfirmOrderScreen, OrderTicket

SIZE = (100, 34)


async def open_ticket(pilot) -> OrderTicket:
    app = pilot.app
    await wait_for(pilot, lambda: app.ladder.cursor_price is not None, what="the first ladder")
    await pilot.press("t")
    await wait_for(pilot, lambda: isinstance(app.screen, OrderTicket), what="the ticket")
    return app.screen


async def fill(pilot, field: str, text: str) -> None:
    """Clear a field and type `text` into it, key by key."""
    ticket = pilot.app.screen
    ticket.query_one(f"#{field}", Input).focus()
    await pilot.press("ctrl+a", "ctrl+k")  # home, delete to the end
    await pilot.press(*text)
    await wait_for(
        pilot, lambda: ticket.query_one(f"#{field}", Input).value == text, what=f"{field} = {text}"
    )


def error_of(ticket: OrderTicket, field: str) -> str:
    return str(ticket.query_one(f"#{field}-error", Static).content)


def our_resting(app) -> list[tuple]:
    return [o for o in app.kernel.venues["sim"].book.resting_orders() if o[4] == OUR_OWNER]


async def test_ticket_opens_at_the_cursor_price_with_the_default_quantity():
    app = frozen_app()
    async with app.run_test(size=SIZE) as pilot:
        ticket = await open_ticket(pilot)
        inst = app.market.instrument
        assert ticket.query_one("#price", Input).value == inst.format_price(app.ladder.cursor_price)
        assert ticket.query_one("#qty", Input).value == "0.010"
        assert error_of(ticket, "price") == "" and error_of(ticket, "qty") == ""
        assert "Buy 0.010 BTC @" in str(ticket.query_one("#summary", Static).content)
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, OrderTicket), what="the ticket to close")
        assert app.kernel.oms.sent == 0


PRICE_MESSAGES = [
    ("", "enter a price"),
    ("abc", "abc is not a number"),
    ("65000.05", "65000.05 is not a multiple of the tick size 0.1"),
    ("-5", "-5 must be greater than zero"),
    ("0", "0 must be greater than zero"),
]
QTY_MESSAGES = [
    ("", "enter a quantity"),
    ("0", "0 must be greater than zero"),
    ("0.0005", "0.0005 is not a multiple of the lot size 0.001"),
    ("1.5", "1.5 is above the maximum order size 1.000 (risk.max_order_qty)"),
]


async def test_each_bad_price_gets_its_message_beside_the_field_and_nothing_is_sent():
    app = frozen_app()
    async with app.run_test(size=SIZE) as pilot:
        ticket = await open_ticket(pilot)
        for text, message in PRICE_MESSAGES:
            await fill(pilot, "price", text)
            await pilot.press("enter")
            await pilot.pause(0.02)
            assert error_of(ticket, "price") == message, text
            assert ticket.query_one("#price", Input).has_class("-invalid")
            assert error_of(ticket, "qty") == ""
            assert app.screen is ticket and app.kernel.oms.sent == 0 and our_resting(app) == []


async def test_each_bad_quantity_gets_its_message_beside_the_field_and_nothing_is_sent():
    cfg = frozen_config()
    cfg.risk = {"max_order_qty": "1.000"}
    app = frozen_app(cfg)
    async with app.run_test(size=SIZE) as pilot:
        ticket = await open_ticket(pilot)
        for text, message in QTY_MESSAGES:
            await fill(pilot, "qty", text)
            await pilot.press("enter")
            await pilot.pause(0.02)
            assert error_of(ticket, "qty") == message, text
            assert error_of(ticket, "price") == ""
            assert app.screen is ticket and app.kernel.oms.sent == 0
        await fill(pilot, "qty", "1.000")  # at the limit: clean
        assert error_of(ticket, "qty") == "" and not ticket.query_one("#qty", Input).has_class("-invalid")


async def test_a_price_far_through_the_market_is_refused_on_either_side():
    app = frozen_app()
    async with app.run_test(size=SIZE) as pilot:
        ticket = await open_ticket(pilot)
        inst = app.market.instrument
        bid, ask = app.market.l2.best_bid_price(), app.market.l2.best_ask_price()
        far_above = inst.format_price(ask + ask // 40)  # 2.5 % through the offer: beyond the 200 bps band
        await fill(pilot, "price", far_above)
        await pilot.press("enter")
        await pilot.pause(0.05)
        assert "bps above the mid" in error_of(ticket, "price") and "ui.ticket_band_bps" in error_of(
            ticket, "price"
        )
        assert app.kernel.oms.sent == 0
        # The same price to sell is a resting offer far away: allowed (no message).
        ticket.query_one("#side").focus()
        await pilot.press("right")
        await wait_for(pilot, lambda: error_of(ticket, "price") == "", what="the message to go")
        # A sell far below the bid is through the market.
        await fill(pilot, "price", inst.format_price(bid - bid // 40))
        assert "bps below the mid" in error_of(ticket, "price")
        await pilot.press("enter")
        await pilot.pause(0.05)
        assert app.kernel.oms.sent == 0 and app.screen is ticket


async def test_a_valid_ticket_rests_in_the_sim_book_and_shows_on_the_ladder():
    app = frozen_app()
    async with app.run_test(size=SIZE) as pilot:
        ticket = await open_ticket(pilot)
        inst = app.market.instrument
        price = app.market.l2.best_bid_price() - 3
        await fill(pilot, "price", inst.format_price(price))
        await fill(pilot, "qty", "0.025")
        await pilot.press("enter")
        await wait_for(pilot, lambda: not isinstance(app.screen, OrderTicket), what="the ticket to close")
        assert ticket.sent is not None
        order = app.kernel.oms.working[ticket.sent]
        assert (order.side, order.price, order.leaves, order.tag) == (BUY, price, 25, "manual")
        assert app.kernel.venues["sim"].book.order(ticket.sent) == (BUY, price, 25, 0, OUR_OWNER)
        await wait_for(
            pilot,
            lambda: (app.ladder.cell_text(price, "our_bids") or "").startswith("0.025 (1)"),
            what="our bid on the ladder",
        )


async def test_a_sell_ticket_of_another_type_goes_out_with_that_type():
    app = frozen_app()
    async with app.run_test(size=SIZE) as pilot:
        ticket = await open_ticket(pilot)
        ticket.query_one("#side").focus()
        await pilot.press("right")  # Sell
        await pilot.press("tab", "right")  # type: market
        await wait_for(
            pilot, lambda: ticket.query_one("#price", Input).disabled, what="price disabled for market"
        )
        await fill(pilot, "qty", "0.004")
        position_before = app.kernel.inventory.position("sim", app.market.symbol).lots
        await pilot.press("enter")
        await wait_for(pilot, lambda: not isinstance(app.screen, OrderTicket), what="the ticket to close")
        assert app.kernel.oms.sent == 1
        assert app.kernel.inventory.position("sim", app.market.symbol).lots == position_before - 4
        assert our_resting(app) == []


async def test_an_order_above_the_confirmation_size_asks_first():
    cfg = frozen_config()
    cfg.ui.confirm_above_qty = Decimal("0.500")
    app = frozen_app(cfg)
    async with app.run_test(size=SIZE) as pilot:
        ticket = await open_ticket(pilot)
        price = app.market.l2.best_bid_price() - 5
        await fill(pilot, "price", app.market.instrument.format_price(price))
        await fill(pilot, "qty", "0.600")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmOrderScreen), what="the question")
        text = str(app.screen.query_one("#confirm-text", Static).content)
        assert "above 0.500 BTC" in text and "Buy 0.600 BTC" in text
        await pilot.press("n")
        await wait_for(pilot, lambda: app.screen is ticket, what="back to the ticket")
        assert app.kernel.oms.sent == 0
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmOrderScreen), what="the question again")
        await pilot.press("y")
        await wait_for(
            pilot, lambda: not isinstance(app.screen, (OrderTicket, ConfirmOrderScreen)), what="sent"
        )
        assert [o[1:4] for o in our_resting(app)] == [(BUY, price, 600)]


async def test_at_the_confirmation_size_no_question_is_asked():
    cfg = frozen_config()
    cfg.ui.confirm_above_qty = Decimal("0.500")
    app = frozen_app(cfg)
    async with app.run_test(size=SIZE) as pilot:
        await open_ticket(pilot)
        await fill(pilot, "price", app.market.instrument.format_price(app.market.l2.best_ask_price() + 4))
        await fill(pilot, "qty", "0.500")
        pilot.app.screen.query_one("#side").focus()
        await pilot.press("left")  # Sell (wraps round)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not isinstance(app.screen, OrderTicket), what="sent")
        assert [o[1] for o in our_resting(app)] == [SELL]


def test_config_refuses_a_negative_ticket_band():
    from lobterm.config import ConfigError, load

    with pytest.raises(ConfigError) as err:
        load(use_defaults=False, overrides={"ui": {"ticket_band_bps": -1}})
    assert err.value.key == "ui.ticket_band_bps"
    assert Config().ui.confirm_above_qty == Decimal("0.500")

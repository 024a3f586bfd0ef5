"""With a fresh config the risk limits are on: the ticket refuses 50 BTC by the default max order size
and asks before a 1.000 BTC order (above ui.confirm_above_qty), which risk then lets through."""

from __future__ import annotations

from frozen_app import frozen_app, frozen_config, wait_for
from textual.widgets import Input, Static

from lobterm.widgets.ticket import ConfirmOrderScreen, OrderTicket

SIZE = (100, 34)


async def _fill(pilot, field: str, text: str) -> None:
    ticket = pilot.app.screen
    ticket.query_one(f"#{field}", Input).focus()
    await pilot.press("ctrl+a", "ctrl+k")
    await pilot.press(*text)
    await wait_for(
        pilot, lambda: ticket.query_one(f"#{field}", Input).value == text, what=f"{field} = {text}"
    )


async def test_a_fresh_config_refuses_a_50_btc_ticket_and_asks_before_1_btc():
    app = frozen_app(frozen_config())
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.ladder.cursor_price is not None, what="the first ladder")
        await pilot.press("t")
        await wait_for(pilot, lambda: isinstance(app.screen, OrderTicket), what="the ticket")
        ticket = app.screen
        await _fill(pilot, "qty", "50")
        await pilot.press("enter")
        await pilot.pause(0.02)
        error = str(ticket.query_one("#qty-error", Static).content)
        assert error == "50 is above the maximum order size 2.000 (risk.max_order_qty)"
        assert app.screen is ticket and app.kernel.oms.sent == 0
        await _fill(pilot, "qty", "1.000")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmOrderScreen), what="the confirmation")
        assert app.kernel.oms.sent == 0

"""The status bar shows our net P&L on the current market (realized + unrealized at the mark - fees, exact,
in the quote currency) beside the position, at every width. Real kernel, real sim venue (stepped by hand)."""

from __future__ import annotations

import pytest
from frozen_app import frozen_app, frozen_config, wait_for

from lobterm.engine.events import BUY


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
async def test_the_status_bar_shows_net_pnl_beside_the_position_after_a_fill(size):
    app = frozen_app(frozen_config())
    async with app.run_test(size=size) as pilot:
        await wait_for(pilot, lambda: app.ladder.cursor_price is not None, what="the first ladder")
        assert "P&L 0.00 USDT" in str(app.status.content)
        m = app.market
        ask = m.unified.best_ask()[0]
        app.kernel.place(m, BUY, ask, 10, source="test")  # 0.010 BTC through the ask: a taker fill
        pos = app.kernel.inventory.position(m.venue, m.symbol)
        await wait_for(pilot, lambda: pos.lots == 10, what="the fill")
        net = pos.pnl(m.top(), app.kernel.inventory.mark_mode).in_quote(m.instrument, 2).net
        assert net < 0, "bought at the ask, marked at the mid, paid a fee"
        await wait_for(
            pilot, lambda: f"pos 0.010 BTC │ P&L {net:+} USDT" in str(app.status.content), what="the P&L"
        )
        assert app.status.region.width == size[0]
        assert "P&L" in str(app.status.content).split("│")[3]  # right after pos: first in line at any width

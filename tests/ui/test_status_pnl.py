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


async def test_the_inventory_panel_shows_margin_ratio_liquidation_price_and_distance_on_a_perp():
    from decimal import Decimal

    from lobterm.engine.events import IOC
    from lobterm.trading.margin import distance_bps

    cfg = frozen_config()
    cfg.sim.market = "perp"
    app = frozen_app(cfg)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_for(pilot, lambda: app.ladder.cursor_price is not None, what="the first ladder")
        m = app.market
        k = app.kernel
        k.oms.new_order(m.venue, m.symbol, BUY, m.l2.best_ask_price() + 20, 2000, IOC, tag="test")
        assert k.inventory.position(m.venue, m.symbol).lots == 2000
        st = k.margin.status(m.venue, m.symbol)
        panel = app.query_one("InventoryPanel")
        liq = m.instrument.format_price(st.liquidation_tick)
        ratio = f"{Decimal(round(st.margin_ratio * 10_000)) / 100:.2f}%"
        dist = int(distance_bps(st))
        await wait_for(pilot, lambda: f"liq {liq} ({dist} bps)" in str(panel.content), what="the margin line")
        text = str(panel.content)
        assert f"margin {ratio}  liq {liq} ({dist} bps)  lev 2.6x/10x" in text, text
        assert 3700 < dist < 3900  # 2 BTC at 65000 on 50000 USDT: liquidation near 40200, 38% below


async def test_funding_paid_before_any_fill_shows_a_row_and_counts_in_the_net_pnl():
    """A perp's funding is P&L even while we have no fill on that market (a live swap whose position was
    opened by an earlier run): the panel shows the market's row and the total, not "no fills yet"."""
    from lobterm.engine.events import Funding

    cfg = frozen_config()
    cfg.sim.market = "perp"
    app = frozen_app(cfg)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_for(pilot, lambda: app.ladder.cursor_price is not None, what="the first ladder")
        m = app.market
        k = app.kernel
        panel = app.query_one("InventoryPanel")
        await wait_for(pilot, lambda: "no fills yet" in str(panel.content), what="the empty panel")
        # 1.50 USDT paid: amount is in millionths of a tick*lot; 0.1 USDT x 0.001 BTC = 0.0001 USDT a tick*lot
        k.bus.publish(
            Funding(k.clock.now(), m.venue, m.symbol, 100_000, m.l2.best_bid_price(), 0, 15_000_000_000)
        )
        pos = k.inventory.position(m.venue, m.symbol)
        assert pos.funding == 15_000_000_000 and not pos.fills
        await wait_for(
            pilot, lambda: "net P&L -1.50 USDT" in str(panel.content), what="the funding in the total"
        )
        text = str(panel.content)
        assert "no fills yet" not in text and "funding -1.50" in text, text

"""One state per frame: with the market maker quoting on a moving market, every frame's ladder shows our
orders at exactly the prices the market-maker panel shows working (the issue saw them differ by 2-4 ticks in
17 of 25 frames: the panel redrew five times a second, the ladder every frame). The real kernel, the real sim
stepped by hand, the real app's UI clock."""

from __future__ import annotations

from frozen_app import freeze_ui_time, wait_for

from lobterm.app import LobtermApp
from lobterm.assemble import build_sim_kernel
from lobterm.config import Config
from lobterm.engine.events import BUY, SELL
from lobterm.trading.market_maker import SENT
from lobterm.widgets.ladder_model import HEADER_LINES, K_ASK_OURS, K_BID_OURS, K_PRICE

SIZE = (160, 48)


def quoting_app() -> tuple[LobtermApp, object]:
    cfg = Config()
    cfg.sim.seed = 9
    cfg.sim.vol_bps = 4.0  # a market that moves: the market maker requotes between frames
    kernel, venue = build_sim_kernel(cfg, virtual=True)
    venue.open()
    for _ in range(30):
        venue.step()
    return LobtermApp(cfg, kernel=kernel, live=False), venue


def ladder_prices(ladder) -> dict[int, set[int]]:
    """Prices of the rows drawn with our size, per side, from the keys the frame was drawn from."""
    out: dict[int, set[int]] = {BUY: set(), SELL: set()}
    for key in ladder._keys[HEADER_LINES:]:
        if key is None:
            continue
        if key[K_BID_OURS]:
            out[BUY].add(key[K_PRICE])
        if key[K_ASK_OURS]:
            out[SELL].add(key[K_PRICE])
    return out


def panel_prices(panel) -> dict[int, set[int]]:
    """The working prices the market-maker panel drew, per side (a quote sent and not yet accepted is drawn
    "sent": it is not at the venue yet)."""
    view = panel.shown_view
    assert view is not None, "the panel drew a market maker"
    return {
        BUY: {r.working_price for r in view.bids if r.working_price is not None and r.state != SENT},
        SELL: {r.working_price for r in view.asks if r.working_price is not None and r.state != SENT},
    }


async def test_every_frame_shows_our_orders_at_the_prices_the_market_maker_panel_shows_working(monkeypatch):
    clock = freeze_ui_time(monkeypatch)  # the UI's own clock at 25 Hz, whatever this machine's speed
    app, venue = quoting_app()
    async with app.run_test(size=SIZE) as pilot:
        ladder = app.ladder
        await wait_for(pilot, lambda: ladder.top_price is not None, what="the first ladder")
        await pilot.press("m")  # the market maker quotes
        await wait_for(pilot, lambda: app.kernel.oms.working, what="our quotes")
        samples = moved = whole = 0
        last = None
        for _ in range(60):
            for _ in range(3):
                venue.step()
            ladder.model.cursor_inside()  # the trader keeps the market in view (Home), drawn by the frame
            ladder._dirty = True
            clock.advance(0.04)
            app._tick()  # one frame: every panel pulls the same kernel state
            await pilot.pause()
            on_ladder = ladder_prices(ladder)
            working = panel_prices(app.desk.quote_panel)
            # Orders off the window's rows cannot be on the ladder (the axis waits for the cursor's price).
            in_panel = {
                side: {p for p in prices if ladder.row_of(p) is not None} for side, prices in working.items()
            }
            whole += in_panel == working
            assert on_ladder == in_panel, f"frame {samples}: ladder {on_ladder} panel {in_panel}"
            # The panel's text says the same prices.
            text = str(app.desk.quote_panel.render())
            inst = app.market.instrument
            for prices in in_panel.values():
                for p in prices:
                    assert inst.format_price(p) in text
            samples += 1
            moved += last is not None and on_ladder != last
            last = on_ladder
        assert moved >= 5, "the quotes moved between frames (else the test shows nothing)"
        assert whole >= samples // 2, "most frames had every quote on screen"

"""A long virtual run in the real TUI: the tape, the blotter, the sparklines and the notes stay within
their bounds (lobterm/engine/bounds.py) however much the market trades."""

from __future__ import annotations

from lobterm.app import LobtermApp
from lobterm.assemble import build_sim_kernel
from lobterm.config import load, quote_params
from lobterm.engine.bounds import OUR_FILLS, REJECT_NOTES, SPARKLINE, TAPE
from tests.ui.frozen_app import SIZE, freeze_ui_time

BUSY_SIM = {"seed": 7, "depth_levels": 8, "churn_per_s": 10.0, "rate_hz": 5.0, "taker_per_s": 8.0}
UI_SECONDS = SPARKLINE + 60  # one sim step and one UI second a cycle: every bound is passed


async def test_a_long_run_keeps_tape_blotter_sparklines_and_notes_bounded(monkeypatch) -> None:
    frozen = freeze_ui_time(monkeypatch)
    cfg = load(use_defaults=False, overrides={"sim": BUSY_SIM})
    kernel, venue = build_sim_kernel(cfg, virtual=True)
    kernel.add_market_maker(quote_params(cfg))
    venue.open()
    app = LobtermApp(cfg, kernel=kernel, live=False)
    async with app.run_test(size=SIZE) as pilot:
        desk = app.desk
        mm = kernel.market_makers[0]
        mm.resume()
        tape, blotter, panel = desk.tape, desk.blotter, desk.inventory_panel
        most_notes = 0
        for cycle in range(UI_SECONDS):
            venue.step()
            kernel.on_timer()
            frozen.advance(1.0)
            desk.pull()  # the UI clock's work, once a UI second
            if cycle % 3 == 0:  # an order risk refuses (too big): a rejection note each time
                kernel.buy(kernel.default_market, 1, 10**12)
            if cycle % 20 == 0:
                await pilot.pause()
                most_notes = max(most_notes, len(app._notifications))
                assert len(tape.lines()) <= tape.size.height and len(tape._strips) <= 4 * TAPE + 1
        await pilot.pause()
        m = kernel.default_market
        assert m.trades > 4 * TAPE and len(m.tape) == TAPE
        assert len(tape.lines()) == tape.size.height and tape.lines()[1].strip()
        # The blotter: a header and at most `rows` lines, though the OMS saw thousands of orders.
        assert kernel.oms.done > 1000 and kernel.oms.fills > OUR_FILLS
        assert 1 < len(blotter.text.splitlines()) <= blotter.rows + 1
        assert all(len(d) <= OUR_FILLS for d in desk.fills.by_market.values())
        # The sparklines: one sample a UI second, the last SPARKLINE kept.
        assert panel.samples >= UI_SECONDS and len(panel.pnl_series) == SPARKLINE
        assert len(panel.position_series) == SPARKLINE and len(panel.mid_series) == SPARKLINE
        # The notes: a few rejection notes on screen at once, however many rejects; the rest counted.
        assert kernel.oms.rejects >= UI_SECONDS // 3 and app.status.last_reject
        assert 0 < most_notes <= REJECT_NOTES and app.rejects_unshown > 0
        mm.pause()

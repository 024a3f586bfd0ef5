"""The markout panel (key `o`) over a sim run with the market maker: the curve, sources and sides the
engine measured, the worst-decile share and the split; our toxic fills marked on the tape."""

from __future__ import annotations

from dataclasses import replace

from lobterm.app import LobtermApp
from lobterm.assemble import build_sim_kernel
from lobterm.config import Config, quote_params
from lobterm.widgets.markouts import MarkoutPanel, bps_text
from tests.ui.frozen_app import SIZE, wait_for


def traded_app(toxic_bps: float = -2.0) -> LobtermApp:
    """The app over a sim kernel on a virtual clock, with the market maker quoting; `trade` steps it."""
    cfg = Config()
    cfg.sim.seed = 5
    cfg.markouts = replace(cfg.markouts, toxic_bps=toxic_bps)
    kernel, venue = build_sim_kernel(cfg, virtual=True)
    kernel.add_market_maker(quote_params(cfg))
    venue.open()
    return LobtermApp(cfg, kernel=kernel, live=False)


def trade(app: LobtermApp, seconds: float) -> None:
    """The market maker quotes for `seconds` of sim time, then pauses."""
    venue = app.assembly.sim
    assert venue is not None
    mm = app.kernel.market_makers[0]
    mm.resume()
    for _ in range(round(seconds * app.config.sim.rate_hz)):
        venue.step()
        app.kernel.on_timer()
    mm.pause()


async def test_o_shows_the_markout_curve_the_engine_measured_and_hides_it_again() -> None:
    app = traded_app()
    trade(app, 20.0)
    async with app.run_test(size=SIZE) as pilot:
        panel = app.query_one(MarkoutPanel)
        assert not panel.display
        await pilot.press("o")
        await wait_for(pilot, lambda: panel.display and panel.draws > 0, what="the markout panel")
        text = str(panel.render_content())
        engine = app.kernel.markouts.engine
        curve = engine.curve()
        assert curve[0].fills > 10
        lines = text.splitlines()
        assert lines[0].startswith("MARKOUTS")
        row = next(line for line in lines if line.startswith("all "))
        assert row.split()[1:5] == [bps_text(b) for b in curve]
        assert any(line.startswith("mm ") for line in lines)
        assert any(line.startswith("buy ") for line in lines) and any(
            line.startswith("sell ") for line in lines
        )
        assert "worst 10% of fills:" in text and "P&L split" in text
        await pilot.press("o")
        await wait_for(pilot, lambda: not panel.display, what="the panel to hide")


async def test_toxic_fills_are_marked_on_the_tape() -> None:
    app = traded_app(toxic_bps=10_000.0)  # every fill is worse than +10000 bps: all toxic
    async with app.run_test(size=SIZE) as pilot:
        trade(app, 10.0)
        engine = app.kernel.markouts.engine
        engine.advance(app.kernel.clock.now() + 2 * 10**9)  # a quiet book after: the last fills settle
        assert engine.toxic > 0
        tape = app.desk.tape
        await wait_for(
            pilot, lambda: any("◆ toxic" in line for line in tape.lines()[1:]), what="a toxic mark"
        )

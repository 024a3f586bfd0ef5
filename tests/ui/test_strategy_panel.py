"""The strategies panel: a user strategy's state, its status() figures, its errors and problem, as the
trader sees them in the side panel; hidden when the config names no strategy."""

from __future__ import annotations

import re

from frozen_app import wait_for

from lobterm.app import LobtermApp
from lobterm.assemble import build
from lobterm.config import Config
from lobterm.trading.strategy import RUNNING, BaseStrategy
from lobterm.widgets.strategies import StrategyPanel

SIZE = (160, 48)
TOUCH = {"class": "lobterm.examples.touch_quoter:TouchQuoter", "offset_ticks": 2, "size_lots": 3}


class Faulty(BaseStrategy):
    """Raises on its tenth book event once running (a bug in a user's code)."""

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        self.seen = 0

    def on_market_data(self, ev) -> None:
        if self.state == RUNNING:
            self.seen += 1
            if self.seen == 10:
                raise ZeroDivisionError("the user's bug")

    def status(self):
        return {"state": self.state, "seen": str(self.seen)}


def calm(**strategies) -> Config:
    cfg = Config()
    cfg.sim.seed = 5
    cfg.strategies = strategies
    return cfg


def panel_text(app) -> str:
    return str(app.query_one(StrategyPanel).render())


async def test_the_panel_shows_each_strategy_state_and_figures_and_follows_u():
    cfg = calm(touch=TOUCH)
    app = LobtermApp(cfg, build(cfg, "tui"))
    async with app.run_test(size=SIZE) as pilot:
        panel = app.query_one(StrategyPanel)
        await wait_for(pilot, lambda: "PAUSED" in panel_text(app), what="the paused strategy in the panel")
        assert panel.display and "touch" in panel_text(app) and "sim:BTC/USDT" in panel_text(app)
        await pilot.press("U")
        await wait_for(pilot, lambda: "RUNNING" in panel_text(app), what="RUNNING after U")
        await wait_for(  # a bid and an ask at least (it re-quotes as the touch moves: maybe more by now)
            pilot,
            lambda: (m := re.search(r"sent (\d+)", panel_text(app))) is not None and int(m.group(1)) >= 2,
            what="its status figures (two orders sent)",
        )
        await pilot.press("U")
        await wait_for(pilot, lambda: "PAUSED" in panel_text(app), what="PAUSED after U again")


async def test_a_failing_strategy_shows_failed_its_error_count_and_the_problem():
    cfg = calm(faulty={"class": "tests.ui.test_strategy_panel:Faulty"})
    app = LobtermApp(cfg, build(cfg, "tui"))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: "PAUSED" in panel_text(app), what="the strategy in the panel")
        await pilot.press("U")
        await wait_for(pilot, lambda: "FAILED" in panel_text(app), what="FAILED after its bug", timeout=10)
        text = panel_text(app)
        assert "errors 1" in text and "ZeroDivisionError" in text, text
        assert app.kernel.strategies["faulty"].state != RUNNING


async def test_without_strategies_the_panel_is_hidden():
    app = LobtermApp(calm(), build(calm(), "tui"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.5)
        assert not app.query_one(StrategyPanel).display

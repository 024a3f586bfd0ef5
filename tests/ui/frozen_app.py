"""A LobtermApp on a frozen market: the sim venue opened and stepped by hand on a virtual clock, its pacing
task never started. Same seed, same steps: the same book, the same screen, every run."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from lobterm.app import LobtermApp
from lobterm.assemble import build_sim_kernel
from lobterm.config import Config
from lobterm.widgets import uiclock
from tests.helpers.markets import old_btc_spot

SIZE = (160, 48)


def frozen_config(theme: str = "dark") -> Config:
    cfg = Config()
    cfg.sim.seed = 11
    old_btc_spot(cfg.sim)  # the market these screens were drawn on
    cfg.ui.theme = theme
    cfg.ui.ticks_per_row = 1  # fixed: the auto zoom measures a market that moves (this one stands still)
    return cfg


def frozen_app(config: Config | None = None, steps: int = 60) -> LobtermApp:
    config = config or frozen_config()
    kernel, venue = build_sim_kernel(config, virtual=True)
    venue.open()
    for _ in range(steps):
        venue.step()
    return LobtermApp(config, kernel=kernel, live=False)


async def wait_for(pilot, condition: Callable[[], object], timeout: float = 5.0, what: str = "") -> None:
    """Poll `condition` between frames until it holds; fail naming `what` after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or condition}")
        await pilot.pause(0.02)


class FrozenUiTime:
    """A UI clock that stands still until `advance()` moves it (flash highlights and once-a-second
    samples then depend on nothing but the test); `freeze_ui_time` makes the widgets read it."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def monotonic(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def freeze_ui_time(monkeypatch) -> FrozenUiTime:
    """Freeze the clock the widgets read (lobterm/widgets/uiclock.py; not Textual's or asyncio's),
    restored when the test ends."""
    frozen = FrozenUiTime()
    monkeypatch.setattr(uiclock, "source", frozen.monotonic)
    return frozen

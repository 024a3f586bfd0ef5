"""LobtermApp: the screen, its bindings and the UI clock. No business logic: widgets and the kernel own it.

The kernel runs on the app's event loop (the sim venue steps there). The UI never receives a message per
book event: one clock at `ui.refresh_hz` asks the ladder and the status bar to pull what changed.
"""

from __future__ import annotations

import asyncio
from typing import ClassVar

from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType

from lobterm.config import Config
from lobterm.headless import build_sim_kernel
from lobterm.kernel import Kernel
from lobterm.widgets.desk import TradingDesk
from lobterm.widgets.help import ConfirmQuitScreen, HelpScreen, check_keymap, key_help
from lobterm.widgets.keybar import KeyBar
from lobterm.widgets.ladder import PriceLadder
from lobterm.widgets.status import StatusBar
from lobterm.widgets.themes import install_themes, ladder_variables, next_theme
from lobterm.widgets.ticket import OrderTicket

__all__ = ["LobtermApp"]

CANCEL_WAIT_S = 2.0  # how long quitting waits for the venue to confirm our cancels


class LobtermApp(App[None]):
    TITLE = "lobterm"
    ENABLE_COMMAND_PALETTE = False
    #: Start the [metrics] exporter and the [feed] with the kernel (the `lobterm` command does; tests do not).
    services = False
    CSS = """
    #main { height: 1fr; align-horizontal: center; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark,f1", "help", "Help", id="help"),
        Binding("q", "quit", "Quit", id="quit"),
        Binding("t", "open_ticket", "Order ticket", id="ticket"),
        Binding("ctrl+t", "cycle_theme", "Next theme", id="theme"),
    ]

    def __init__(self, config: Config, kernel: Kernel | None = None, *, live: bool = True) -> None:
        """`live=False`: do not start the kernel's venues (a kernel stepped by hand on a virtual clock,
        for snapshots and benchmarks)."""
        super().__init__()
        self.live = live
        self.theme_names, self._theme_problems = install_themes(self, config.ui.theme)
        self.config = config
        if kernel is None:
            kernel, _venue = build_sim_kernel(config, virtual=False)
        self.kernel = kernel
        self.animation_level = "none"
        self.desk = TradingDesk(kernel, config, id="main")  # ladders, panels, the desk-wide keys
        self.status = StatusBar(kernel, self.desk.market, id="status")

    @property
    def ladder(self) -> PriceLadder:
        """The ladder that has the keyboard."""
        return self.desk.current

    @property
    def market(self):
        return self.desk.market

    def compose(self) -> ComposeResult:
        yield self.desk
        yield self.status
        yield KeyBar(id="keys")  # every key, wrapped: more than Textual's one-line Footer holds

    async def on_mount(self) -> None:
        self._apply_keymap()
        self.kernel.oms.on_reject = self._on_reject
        for problem in self._theme_problems:
            self.notify(problem, title="Theme", severity="error", timeout=15, markup=False)
        if self.live:
            await self.kernel.start()
        if self.services:
            from lobterm.services import start_services

            for problem in await start_services(self.kernel, self.config):
                self.notify(problem, title="Services", severity="warning", timeout=15, markup=False)
        hz = self.config.ui.refresh_hz
        if not 1 <= hz <= 60:
            self.notify(f"ui.refresh_hz {hz} is outside 1..60; using 25.", severity="warning")
            hz = 25.0
        self.set_interval(1.0 / hz, self._tick, name="ui-clock")
        self.ladder.focus()
        self._tick()

    async def on_unmount(self) -> None:
        await self.kernel.stop()

    def _tick(self) -> None:
        self.kernel.on_timer()  # time-driven kernel work (hedge slices, quote staleness)
        if self.desk.is_attached:
            self.desk.pull()
            self.status.pull(self.ladder.default_qty)

    # ---- keys --------------------------------------------------------------------------------
    def _apply_keymap(self) -> None:
        bindings = [
            b
            for b in (*self.BINDINGS, *TradingDesk.BINDINGS, *PriceLadder.BINDINGS)
            if isinstance(b, Binding)
        ]
        keymap, problems = check_keymap(bindings, self.config.keys, self._normalize_keymap)
        for problem in problems:
            self.notify(f"[keys]: {problem}.", title="Config", severity="warning", timeout=15, markup=False)
        self.set_keymap(keymap)

    # ---- themes ------------------------------------------------------------------------------
    def get_theme_variable_defaults(self) -> dict[str, str]:
        return ladder_variables()  # the ladder's colours under a theme that has none (Textual's own)

    def cycle_theme(self) -> str:
        """Switch to the next of lobterm's themes (built-in, then the user's); returns its name."""
        self.theme = next_theme(self.theme_names, self.theme)
        return self.theme

    def action_cycle_theme(self) -> None:
        self.notify(f"Theme: {self.cycle_theme()}", timeout=2)

    # ---- the order ticket ----------------------------------------------------------------------
    def action_open_ticket(self) -> None:
        if not isinstance(self.screen, OrderTicket):
            self.push_screen(OrderTicket.for_ladder(self.ladder, self.config.ui))

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(key_help(self.screen)))

    # ---- rejections --------------------------------------------------------------------------
    def _on_reject(self, reason: str) -> None:
        self.status.last_reject = reason
        self.notify(reason, title="Order rejected", severity="error", timeout=6)

    def on_price_ladder_order_refused(self, message: PriceLadder.OrderRefused) -> None:
        self.status.last_reject = message.reason
        self.notify(message.reason, title="Order not sent", severity="error", timeout=6)

    # ---- quitting ----------------------------------------------------------------------------
    async def action_quit(self) -> None:
        if isinstance(self.screen, ConfirmQuitScreen):
            return
        working = len(self.kernel.oms.working)
        if not working:
            await self._stop_and_exit()
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.run_worker(self._cancel_all_and_exit(), exclusive=True, group="quit")

        self.push_screen(ConfirmQuitScreen(working), answered)

    async def _cancel_all_and_exit(self) -> None:
        self.kernel.note("key", "quit_cancel_all", {"working": len(self.kernel.oms.working)})
        for mm in self.kernel.market_makers:  # or they would quote again as their orders go
            mm.pause()
        self.kernel.cancel_all()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CANCEL_WAIT_S
        while self.kernel.oms.working and loop.time() < deadline:
            await asyncio.sleep(0.02)
        left = len(self.kernel.oms.working)
        if left:
            self.notify(
                f"{left} orders still working after {CANCEL_WAIT_S:g} s: not quitting.", severity="error"
            )
            return
        await self._stop_and_exit()

    async def _stop_and_exit(self) -> None:
        await self.kernel.stop()
        self.exit()

"""LobtermApp: the screen, its bindings and the UI clock. No business logic: widgets and the kernel own it.

The kernel runs on the app's event loop (the sim venue steps there). The UI never receives a message per
book event: one clock at `ui.refresh_hz` asks the ladder and the status bar to pull what changed.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections import deque
from typing import ClassVar

from textual import events
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Static
from textual.widgets._toast import ToastRack

from lobterm.assemble import Assembly, adopt, build
from lobterm.config import Config
from lobterm.engine.bounds import REJECT_NOTES
from lobterm.kernel import Kernel
from lobterm.widgets.consolidated import ConsolidatedLadder
from lobterm.widgets.desk import TradingDesk
from lobterm.widgets.help import ConfirmQuitScreen, HelpScreen, check_keymap, key_help
from lobterm.widgets.keybar import KeyBar
from lobterm.widgets.ladder import PriceLadder
from lobterm.widgets.status import StatusBar
from lobterm.widgets.themes import install_themes, ladder_variables, next_theme
from lobterm.widgets.ticket import OrderTicket

__all__ = ["LobtermApp"]

QUIT_SWEEP_S = 10.0  # how long quitting sweeps for our orders at the venue before it says what is left
REJECT_NOTE_S = 6.0  # how long a rejection note stays on screen


class LobtermApp(App[None]):
    TITLE = "lobterm"
    ENABLE_COMMAND_PALETTE = False
    #: Start the [metrics] exporter and the [feed] with the kernel (the `lobterm` command does; tests do not).
    services = False
    #: After the orderly shutdown, end the process within `EXIT_GRACE_S` even if the terminal is gone (a
    #: hangup leaves Textual's writer blocked on a dead pty): the `lobterm` command sets it; tests do not.
    hard_exit = False
    CSS = """
    #main { height: 1fr; align-horizontal: center; }
    #too-small { display: none; width: 100%; height: 100%; content-align: center middle; text-style: bold; }
    Screen.-too-small > #too-small { display: block; }
    Screen.-too-small > #main, Screen.-too-small > #status, Screen.-too-small > #keys { display: none; }
    /* a notice leaves the ladder's PRICE column readable at 80 columns (the rack sits above the bottom bars) */
    Toast { max-width: 44%; }
    """
    #: Below this terminal size the ladder cannot show its five columns and ten price rows: a notice instead.
    MIN_SIZE = (60, 20)
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark,f1", "help", "Help", id="help"),
        Binding("q", "quit", "Quit", id="quit"),
        Binding("t", "open_ticket", "Order ticket", id="ticket"),
        Binding("ctrl+t", "cycle_theme", "Next theme", id="theme"),
    ]

    def __init__(self, config: Config, kernel: Assembly | Kernel | None = None, *, live: bool = True) -> None:
        """`kernel`: what `lobterm.assemble.build(config, "tui")` made (built here when None; a bare kernel
        from a test gets the strategies `build` would attach). `live=False`: do not start the kernel (a
        kernel stepped by hand on a virtual clock, for snapshots and benchmarks)."""
        super().__init__()
        self.live = live
        self._reject_notes: deque[float] = deque()  # expiry (wall clock) of each reject note on screen
        self.rejects_unshown = 0
        self.theme_names, self._theme_problems = install_themes(self, config.ui.theme)
        self.config = config
        if kernel is None:
            asm = build(config, "tui")
        elif isinstance(kernel, Kernel):
            asm = adopt(config, kernel)
        else:
            asm = kernel
        self.assembly = asm
        self.kernel = asm.kernel
        #: Lines for the terminal after the app has closed (orders the shutdown could not confirm gone).
        self.exit_lines: list[str] = []
        self._shutting_down = False
        self._toasts_at: dict[int, int] = {}  # id(screen) -> the notices' margin above the bottom bars
        self.animation_level = "none"
        self.desk = TradingDesk(asm, config, id="main")  # ladders, panels, the desk-wide keys
        self.status = StatusBar(self.kernel, self.desk.market, id="status")

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
        yield Static("", id="too-small", markup=False)

    def on_resize(self, event: events.Resize) -> None:
        width, height = event.size  # the app's own size is updated after this handler
        need_w, need_h = self.MIN_SIZE
        small = width < need_w or height < need_h
        if small:
            text = f"terminal too small (need {need_w}x{need_h}, have {width}x{height})"
            self.query_one("#too-small", Static).update(text)
        self.screen.set_class(small, "-too-small")

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
            metrics = self.kernel.metrics
            if metrics is not None and metrics.port_taken is not None and metrics.address is not None:
                # Brief: the status bar keeps saying it (a toast must not cover the status bar for long).
                self.notify(
                    f"Metrics port {metrics.port_taken} is in use: exporting on {metrics.address[1]}.",
                    title="Metrics",
                    timeout=2,
                    markup=False,
                )
        hz = self.config.ui.refresh_hz
        if not 1 <= hz <= 60:
            self.notify(f"ui.refresh_hz {hz} is outside 1..60; using 25.", severity="warning")
            hz = 25.0
        self.set_interval(1.0 / hz, self._tick, name="ui-clock")
        self.ladder.focus()
        self._tick()
        if self.live:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGHUP):
                try:
                    loop.add_signal_handler(sig, self._on_signal, sig.name)
                except (RuntimeError, ValueError):  # not the main thread (tests): nothing to catch
                    break

    def _on_signal(self, name: str) -> None:
        self.kernel.note("signal", name)
        self.run_worker(
            self._shutdown_and_exit(f"{name}: cancelling our orders"), exclusive=True, group="quit"
        )

    async def on_unmount(self) -> None:
        if self.live and not self._shutting_down:  # closed by other means (ctrl+c): still leave nothing
            report = await self.kernel.shutdown(QUIT_SWEEP_S, source="exit")
            self.exit_lines = report.lines()
        elif not self._shutting_down:
            await self.kernel.stop()

    def _tick(self) -> None:
        """The UI clock: pull the views (the kernel's timed work runs on its own timer task)."""
        if not self.live:
            self.kernel.on_timer()  # a kernel stepped by hand has no timer task: its driver is this clock
        if self.desk.is_attached:
            self.desk.pull()
            self.status.pull(self.ladder.default_qty)
            self._place_toasts()

    def bottom_bars_height(self) -> int:
        """Lines the bars below the desk take (status, keys; a replay's transport)."""
        base = self.screen_stack[0] if self.screen_stack else None
        if base is None:
            return 0
        found = False
        height = 0
        for child in base.children:
            if child is self.desk:
                found = True
            elif found and child.display and child.id != "too-small":
                height += child.outer_size.height
        return height

    def _place_toasts(self) -> None:
        """Notices stand right above the bars at the bottom (status, keys, transport), never over them: the
        status bar's P&L and REC stay readable while a notice (the kill switch's) is up."""
        height = self.bottom_bars_height()
        for screen in self.screen_stack:
            if self._toasts_at.get(id(screen)) == height:
                continue
            self._toasts_at[id(screen)] = height
            for rack in screen.query_children(ToastRack):
                rack.styles.margin = (0, 0, max(1, height), 0)

    # ---- keys --------------------------------------------------------------------------------
    def _apply_keymap(self) -> None:
        bindings = [
            b
            for b in (
                *self.BINDINGS,
                *TradingDesk.BINDINGS,
                *PriceLadder.BINDINGS,
                *ConsolidatedLadder.BINDINGS,
            )
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
        """A rejection: on the status bar, and as a note while fewer than REJECT_NOTES are on screen (a
        burst of rejects is counted into the next note instead of stacking a note per reject)."""
        self.status.last_reject = reason
        notes = self._reject_notes
        now = time.time()  # the notes expire on the wall clock (textual's)
        while notes and notes[0] <= now:
            notes.popleft()
        if len(notes) >= REJECT_NOTES:
            self.rejects_unshown += 1
            return
        more = f" (+{self.rejects_unshown} more, not shown)" if self.rejects_unshown else ""
        self.rejects_unshown = 0
        notes.append(now + REJECT_NOTE_S)
        self.notify(
            reason + more, title="Order rejected", severity="error", timeout=REJECT_NOTE_S, markup=False
        )

    def on_price_ladder_order_refused(self, message: PriceLadder.OrderRefused) -> None:
        self.status.last_reject = message.reason
        self.notify(message.reason, title="Order not sent", severity="error", timeout=6)

    # ---- quitting ----------------------------------------------------------------------------
    def _open_positions(self) -> list[str]:
        k = self.kernel
        out = []
        for (venue, symbol), m in k.markets.items():
            lots = k.inventory.position(venue, symbol).lots
            if lots:
                out.append(f"{m.instrument.format_size(lots)} {m.instrument.base or symbol} on {venue}")
        return out

    async def action_quit(self) -> None:
        if isinstance(self.screen, ConfirmQuitScreen) or self._shutting_down:
            return
        working = len(self.kernel.oms.working)
        positions = self._open_positions()
        if not working and not positions:
            await self._shutdown_and_exit("")
            return

        def answered(choice: str | None) -> None:
            if choice == "flatten":
                self.kernel.note("key", "quit_flatten", {"positions": positions})
                for market in self.kernel.markets.values():
                    if self.kernel.inventory.position(market.venue, market.symbol).lots:
                        self.kernel.flatten(market, source="quit")
                self.run_worker(
                    self._shutdown_and_exit("flattened; cancelling the rest"), exclusive=True, group="quit"
                )
            elif choice == "quit":
                self.kernel.note("key", "quit_cancel_all", {"working": len(self.kernel.oms.working)})
                self.run_worker(
                    self._shutdown_and_exit("cancelling our orders"), exclusive=True, group="quit"
                )

        self.push_screen(ConfirmQuitScreen(working, positions), answered)

    async def _shutdown_and_exit(self, what: str) -> None:
        """The kernel's orderly shutdown (pause strategies, cancel all, sweep the venue), then exit. What
        could not be confirmed gone is printed on the terminal after the screen closes."""
        if self._shutting_down:
            return
        self._shutting_down = True
        if what:
            self.notify(f"Quitting: {what}…", title="Shutdown", timeout=QUIT_SWEEP_S)
        report = await self.kernel.shutdown(QUIT_SWEEP_S, source="quit")
        self.exit_lines = report.lines()
        code = 0 if report.clean else 3
        if self.hard_exit:
            _exit_later(code, self.exit_lines)
        self.exit(return_code=code)


EXIT_GRACE_S = 5.0


def _exit_later(code: int, lines: list[str]) -> None:
    """End the process in EXIT_GRACE_S unless it ended by itself: our orders are already dealt with
    (the kernel's shutdown ran), but with the terminal gone (SIGHUP, a killed tmux) Textual's shutdown
    can block forever writing to it."""
    import os
    import sys
    import threading
    import time

    def watchdog() -> None:
        time.sleep(EXIT_GRACE_S)
        try:
            for line in lines:
                print(f"lobterm: {line}", file=sys.stderr)
        finally:
            os._exit(code)

    threading.Thread(target=watchdog, name="lobterm-exit", daemon=True).start()

"""The trading desk: the main screen's body. Ladders side by side (one per venue and symbol) in the centre,
the quote panel, inventory, hedge, trade tape and blotter beside them.

It owns the keys that act on more than one ladder or on the strategies: next/previous ladder, the kill
switch, the market maker's on/off, its spread/skew/size nudges and its parameter form (`e`), and recording.
Every one that changes state is a note in the session file when recording (`Kernel.note`). Keys that trade one
market live on its `PriceLadder`. The UI clock calls `pull()`; each panel decides for itself whether
anything it shows changed.

The strategies (a market maker per quote market, the hedger, the user's) come built from
`lobterm.assemble`; the desk only shows them and asks the kernel's verbs to pause, resume, kill, re-arm.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical

from lobterm.assemble import Assembly
from lobterm.config import Config
from lobterm.services import start_recording, stop_recording
from lobterm.trading.market_maker import (
    AVELLANEDA_STOIKOV,
    RUNNING,
    QuoteParamError,
)
from lobterm.widgets.hedge import HedgePanel
from lobterm.widgets.help import ConfirmScreen
from lobterm.widgets.inventory import InventoryPanel
from lobterm.widgets.ladder import PriceLadder
from lobterm.widgets.markouts import MarkoutPanel
from lobterm.widgets.mm_editor import MarketMakerEditor, describe_changes
from lobterm.widgets.quote_panel import QuotePanel
from lobterm.widgets.tape import Blotter, OurFills, TradeTape

if TYPE_CHECKING:
    from lobterm.kernel import Market

__all__ = ["TradingDesk"]

_MM_GROUP = Binding.Group("MM spread skew size", compact=True)
_LADDER_GROUP = Binding.Group("Ladder", compact=True)
SKEW_STEP = 0.01  # ticks per lot
SIDE_WIDE, SIDE_NARROW = 64, 58  # the side column's width at 150+ columns, and below


class TradingDesk(Horizontal):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("tab", "next_ladder(1)", "Next ladder", id="next_ladder", group=_LADDER_GROUP),
        Binding(
            "shift+tab",
            "next_ladder(-1)",
            "Previous ladder",
            id="prev_ladder",
            group=_LADDER_GROUP,
            key_display="⇧tab",
        ),
        Binding(
            "ctrl+k",
            "kill_switch",
            "Kill",
            id="kill",
            key_display="^k",
            tooltip="Kill switch (press again to re-arm)",
        ),
        Binding(
            "m", "toggle_market_maker", "MM on/off", id="mm_toggle", tooltip="Market maker: start / pause"
        ),
        Binding(
            "U",
            "toggle_strategies",
            "Strategies on/off",
            id="strategies_toggle",
            tooltip="Your [strategies.NAME] on this market: start / pause",
        ),
        Binding(
            "e",
            "edit_market_maker",
            "MM edit",
            id="mm_edit",
            tooltip="Market maker: edit every parameter (a form; enter applies, escape cancels)",
        ),
        Binding(
            "greater_than_sign",
            "nudge('spread', 1)",
            "MM spread +",
            id="mm_spread_up",
            group=_MM_GROUP,
            tooltip="MM spread a tick wider",
        ),
        Binding(
            "less_than_sign",
            "nudge('spread', -1)",
            "MM spread -",
            id="mm_spread_down",
            group=_MM_GROUP,
            tooltip="MM spread a tick tighter",
        ),
        Binding(
            "right_curly_bracket",
            "nudge('skew', 1)",
            "MM skew +",
            id="mm_skew_up",
            group=_MM_GROUP,
            tooltip="MM skew +0.01 tick per lot",
        ),
        Binding(
            "left_curly_bracket",
            "nudge('skew', -1)",
            "MM skew -",
            id="mm_skew_down",
            group=_MM_GROUP,
            tooltip="MM skew -0.01 tick per lot",
        ),
        Binding(
            "right_parenthesis",
            "nudge('size', 1)",
            "MM size +",
            id="mm_size_up",
            group=_MM_GROUP,
            tooltip="MM size up a step (1/5 of mm.size_lots)",
        ),
        Binding(
            "left_parenthesis",
            "nudge('size', -1)",
            "MM size -",
            id="mm_size_down",
            group=_MM_GROUP,
            tooltip="MM size down a step",
        ),
        Binding(
            "o",
            "toggle_markouts",
            "Markouts",
            id="markouts",
            tooltip="Markout panel on/off: the mid's move after our fills by horizon, source and side",
        ),
        Binding(
            "ctrl+r",
            "toggle_recording",
            "Rec",
            id="record",
            key_display="^r",
            tooltip="Recording on/off (in sessions_dir)",
        ),
    ]

    DEFAULT_CSS = """
    TradingDesk { height: 1fr; }
    TradingDesk > #ladders { width: 1fr; height: 1fr; overflow-x: auto; overflow-y: hidden; }
    TradingDesk > #ladders > PriceLadder { width: 1fr; min-width: 52; }
    TradingDesk > #ladders > PriceLadder:focus-within { }
    TradingDesk > #side { width: 64; height: 1fr; background: $surface; border-left: tall $panel; }
    """

    def __init__(self, assembly: Assembly, config: Config, *, id: str | None = None) -> None:
        super().__init__(id=id)
        kernel = assembly.kernel
        self.kernel = kernel
        self.config = config
        ui = config.ui
        self.market_makers: dict[tuple[str, str], Any] = {mm.market.key: mm for mm in kernel.market_makers}
        self._base_sizes = {key: mm.params.size_lots for key, mm in self.market_makers.items()}
        flash_s = ui.flash_ms / 1000
        self.ladders = [
            PriceLadder(
                kernel,
                m,
                default_qty=ui.default_qty,
                qty_presets=ui.qty_presets,
                auto_recenter=ui.auto_recenter,
                flash_s=flash_s,
                confirm_above_qty=ui.confirm_above_qty,
                id=f"ladder-{n}",
            )
            for n, m in enumerate(kernel.markets.values())
        ]
        self.current = self.ladders[0]
        self.fills = OurFills(kernel)
        market = self.current.market
        self.quote_panel = QuotePanel(self.market_makers, market, id="quote-panel")
        self.inventory_panel = InventoryPanel(kernel, market, id="inventory-panel")
        self.hedge_panel = HedgePanel(kernel, id="hedge-panel")
        self.markout_panel = MarkoutPanel(kernel, market, id="markout-panel")
        self.tape = TradeTape(market, self.fills, id="tape", toxic=self._toxic)
        self.blotter = Blotter(kernel, self.fills, id="blotter")

    def compose(self) -> ComposeResult:
        with Horizontal(id="ladders"):
            yield from self.ladders
        with Vertical(id="side"):
            yield self.quote_panel
            yield self.inventory_panel
            yield self.hedge_panel
            yield self.markout_panel
            yield self.tape
            yield self.blotter

    def on_resize(self) -> None:
        wide = self.size.width >= 150 and len(self.ladders) == 1
        side = self.query_one("#side")
        side.styles.width = SIDE_WIDE if wide else SIDE_NARROW

    @property
    def market(self) -> Market:
        return self.current.market

    def pull(self) -> None:
        """The UI clock: every ladder, then the side panels (each throttles itself)."""
        now = time.monotonic()
        for ladder in self.ladders:
            ladder.pull()
        self.quote_panel.pull(now)
        self.inventory_panel.pull(now)
        self.hedge_panel.pull(now)
        self.markout_panel.pull(now)
        self.tape.pull()
        self.blotter.pull(now)

    # ---- ladders ------------------------------------------------------------------------------
    def on_descendant_focus(self, event) -> None:
        if isinstance(event.widget, PriceLadder) and event.widget is not self.current:
            self._show(event.widget)

    def _show(self, ladder: PriceLadder) -> None:
        self.current = ladder
        market = ladder.market
        self.quote_panel.show_market(market)
        self.inventory_panel.show_market(market)
        self.markout_panel.show_market(market)
        self.tape.show_market(market)
        status = getattr(self.app, "status", None)
        if status is not None:
            status.market = market
        ladder.scroll_visible(animate=False)

    def action_next_ladder(self, step: int) -> None:
        if len(self.ladders) < 2:
            self.notify(
                "One ladder only: configure a hedge market or more venues for Tab to move between.", timeout=3
            )
            return
        i = (self.ladders.index(self.current) + step) % len(self.ladders)
        self.ladders[i].focus()
        self._show(self.ladders[i])

    # ---- markouts ------------------------------------------------------------------------------
    def _toxic(self) -> tuple[int, frozenset[int] | set[int]]:
        """(how many toxic fills so far, their trade ids): the tape marks them."""
        feed = self.kernel.markouts
        if feed is None:
            return 0, frozenset()
        return feed.engine.toxic, feed.engine.toxic_trade_ids

    def action_toggle_markouts(self) -> None:
        panel = self.markout_panel
        panel.toggle_class("-shown")
        panel.show_market(self.market)  # draw at once, then once a second
        panel.pull(time.monotonic())

    # ---- the kill switch ----------------------------------------------------------------------
    def action_kill_switch(self) -> None:
        k = self.kernel
        if not k.risk.killed:
            working = len(k.oms.working)  # the strategies cancel their own as they stop
            k.kill("operator", source="key")
            self.notify(
                f"Every new order is blocked; market makers and hedger stopped; cancelling {working} "
                f"order{'s' if working != 1 else ''}. Press again to re-arm.",
                title="KILL SWITCH ON",
                severity="error",
                timeout=8,
            )
            self.pull()
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.rearm()

        self.app.push_screen(
            ConfirmScreen(
                "Re-arm trading?",
                f"The kill switch is on ({k.risk.kill_reason}). Re-arming lets orders through "
                "again; the market makers stay paused until you start them.",
            ),
            answered,
        )

    def rearm(self) -> None:
        self.kernel.rearm(source="key")
        self.notify("Trading re-armed; market makers paused.", title="Kill switch off", timeout=4)
        self.pull()

    # ---- the market maker ---------------------------------------------------------------------
    @property
    def market_maker(self) -> Any:
        return self.market_makers.get(self.market.key)

    def action_toggle_market_maker(self) -> None:
        mm = self.market_maker
        if mm is None:
            self.notify(
                "No market maker on this market (its venue's role is hedge).", severity="warning", timeout=3
            )
            return
        k = self.kernel
        if mm.state == RUNNING:
            k.pause_strategy(mm.name, source="key", action="mm_pause")
            self.notify("Market maker paused; its quotes are being cancelled.", timeout=3)
        else:
            problem = k.resume_strategy(mm.name, source="key", action="mm_resume")
            if problem:
                self.notify(problem, severity="error", timeout=5)
            else:
                self.notify("Market maker quoting.", timeout=3)
        self.pull()

    # ---- the user's strategies ([strategies.NAME]) ---------------------------------------------
    def action_toggle_strategies(self) -> None:
        """Pause every user strategy on this market if one runs, else start them all (a market maker and
        the hedger have their own keys)."""
        k = self.kernel
        builtin = {mm.name for mm in k.market_makers} | ({k.hedger.name} if k.hedger is not None else set())
        mine = [s for s in k.strategies_on(self.market) if s.name not in builtin]
        if not mine:
            self.notify(
                "No strategy of yours on this market: add a [strategies.NAME] section to the config.",
                severity="warning",
                timeout=4,
            )
            return
        running = [s for s in mine if s.state == RUNNING]
        if running:
            for s in running:
                k.pause_strategy(s.name, source="key")
            names = ", ".join(s.name for s in running)
            self.notify(f"Paused {names}; its orders are being cancelled.", timeout=3)
        else:
            problems = [p for s in mine if (p := k.resume_strategy(s.name, source="key"))]
            if problems:
                self.notify("; ".join(problems), severity="error", timeout=5)
            else:
                self.notify(f"Running {', '.join(s.name for s in mine)}.", timeout=3)
        self.pull()

    def action_nudge(self, what: str, direction: int) -> None:
        mm = self.market_maker
        if mm is None:
            return
        p = mm.params
        if what == "spread":
            if p.mode == AVELLANEDA_STOIKOV:
                changes = {"gamma": p.gamma * (1.5 if direction > 0 else 1 / 1.5)}
            elif p.spread_bps > 0:
                changes = {"spread_bps": max(0.0, p.spread_bps + direction)}
            else:
                changes = {"spread_ticks": max(p.min_spread_ticks, p.spread_ticks + direction)}
        elif what == "skew":
            changes = {"skew_ticks_per_lot": round(max(0.0, p.skew_ticks_per_lot + direction * SKEW_STEP), 6)}
        else:
            if p.sizes:
                self.notify(
                    "mm.sizes sets each level's size: change them in the parameter form (MM edit).",
                    severity="warning",
                )
                return
            step = max(1, self._base_sizes.get(self.market.key, p.size_lots) // 5)
            changes = {"size_lots": max(1, p.size_lots + direction * step)}
        if all(getattr(p, k) == v for k, v in changes.items()):
            self.notify(f"MM {what} is at its limit.", severity="warning", timeout=2)
            return
        try:
            replace(p, **changes).validate()  # refused nudges are not key actions that changed state
        except QuoteParamError as exc:
            self.notify(str(exc), title="Market maker", severity="error", timeout=5)
            return
        self._note("mm_nudge", what=what, direction=direction)
        mm.update_params(**changes)
        self.pull()

    def _note(self, action: str, **detail: object) -> None:
        """A key action that changes state, into the session file (when recording), before its events."""
        self.kernel.note("key", action, {"market": "{}:{}".format(*self.market.key), **detail})

    def action_edit_market_maker(self) -> None:
        """The parameter form of this market's market maker; what it applies is shown as a notice."""
        mm = self.market_maker
        if mm is None or isinstance(self.app.screen, MarketMakerEditor):
            return
        inst = self.market.instrument

        def applied(changes: dict[str, Any] | None) -> None:
            if changes:
                self.notify(describe_changes(changes, inst), title="Market maker", timeout=4)
                self.pull()

        limit = self.kernel.risk.limits_for(*self.market.key).max_position_lots
        self.app.push_screen(MarketMakerEditor(mm, note=self.kernel.note, max_position_lots=limit), applied)

    # ---- recording ----------------------------------------------------------------------------
    async def action_toggle_recording(self) -> None:
        """Start a session file in `sessions_dir` (every bus event from now on), or close the one open."""
        k = self.kernel
        rec = k.recorder
        try:
            if rec is None or rec.closed:
                rec = start_recording(
                    k, self.config.sessions_dir, config=self.config, seed=self.config.sim.seed
                )
                if k.journal is not None:
                    await k.journal.start()  # live clock: batches are flushed from a task on the loop
                k.note("key", "recording_on", str(rec.path))
                self.notify(f"Recording to {rec.path}", title="Recording", timeout=4)
            else:
                k.note("key", "recording_off", str(rec.path))
                await stop_recording(k)
                self.notify(f"Recording stopped: {rec.path}", title="Recording", timeout=4)
        except Exception as exc:  # a disk or path problem: tell the trader, keep trading
            self.notify(f"Recording: {exc}", title="Recording", severity="error", timeout=8)

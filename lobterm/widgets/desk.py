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

from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical

from lobterm.assemble import Assembly
from lobterm.config import Config
from lobterm.services import start_recording, stop_recording
from lobterm.trading.market_maker import RUNNING
from lobterm.trading.quoting import AVELLANEDA_STOIKOV, QuoteParamError
from lobterm.widgets import uiclock
from lobterm.widgets.consolidated import ConsolidatedLadder
from lobterm.widgets.consolidated_model import consolidated_groups
from lobterm.widgets.heatmap import HEATMAP_WIDTH, HeatmapStrip
from lobterm.widgets.hedge import HedgePanel
from lobterm.widgets.help import ConfirmScreen
from lobterm.widgets.inventory import InventoryPanel
from lobterm.widgets.ladder import PriceLadder
from lobterm.widgets.markouts import MarkoutPanel
from lobterm.widgets.mm_editor import MarketMakerEditor, describe_changes
from lobterm.widgets.quote_panel import QuotePanel
from lobterm.widgets.strategies import StrategyPanel
from lobterm.widgets.tape import Blotter, OurFills, TradeTape

if TYPE_CHECKING:
    from lobterm.kernel import Market

__all__ = ["TradingDesk"]

_MM_GROUP = Binding.Group("MM spread skew size", compact=True)
_LADDER_GROUP = Binding.Group("Ladder", compact=True)
SKEW_STEP = 0.01  # ticks per lot
SIDE_WIDE, SIDE_MIN = 64, 40  # the side column's width when there is room, and the least worth showing
STACK_MIN_HEIGHT = (
    34  # below the ladder (too narrow beside it) only from this height: the ladder keeps 16+ rows
)


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
            "h",
            "toggle_heatmap",
            "Heatmap",
            id="heatmap",
            tooltip="Liquidity heatmap beside each ladder on/off: resting size over time, trades, our fills",
        ),
        Binding(
            "L",
            "toggle_consolidated",
            "One ladder",
            id="consolidated",
            group=_LADDER_GROUP,
            tooltip="One consolidated ladder over every venue of an instrument / a ladder per venue",
        ),
        Binding(
            "p",
            "toggle_panels",
            "Panels",
            id="panels",
            tooltip="Side panels on/off (by default they give way to the ladder on narrow terminals)",
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
    TradingDesk.-stacked { layout: vertical; }
    TradingDesk.-stacked > #ladders { height: 1fr; width: 100%; }
    TradingDesk.-stacked > #side { width: 100%; height: 45%; border-left: none; border-top: tall $panel; }
    TradingDesk.-no-side > #side { display: none; }
    TradingDesk.-no-heat > #ladders > HeatmapStrip { display: none; }
    TradingDesk > #ladders > .-off { display: none; }
    """

    def __init__(self, assembly: Assembly, config: Config, *, id: str | None = None) -> None:
        super().__init__(id=id)
        kernel = assembly.kernel
        self.kernel = kernel
        self.config = config
        ui = config.ui
        self.market_makers: dict[tuple[str, str], Any] = {mm.market.key: mm for mm in kernel.market_makers}
        self._base_sizes = {key: mm.params.size_lots for key, mm in self.market_makers.items()}
        ladder_options: dict[str, Any] = {
            "default_qty": ui.default_qty,
            "qty_presets": ui.qty_presets,
            "auto_recenter": ui.auto_recenter,
            "flash_s": ui.flash_ms / 1000,
            "confirm_above_qty": ui.confirm_above_qty,
            "optional_columns": ui.ladder_columns,
            "mouse_trading": ui.mouse_trading,
            # "auto": one tick a row until the market's first seconds choose (widgets/auto_zoom.py).
            "ticks_per_row": 1 if ui.ticks_per_row == "auto" else int(ui.ticks_per_row),
            "auto_zoom": ui.ticks_per_row == "auto",
        }
        #: A ladder per venue and symbol; and the consolidated set: one ladder per instrument on several
        #: venues (orders to its target venue, the quote venue first) plus the markets alone on their venue.
        #: `self.ladders` is the set shown (`L`, `[ui] consolidated`).
        self.venue_ladders = [
            PriceLadder(kernel, m, id=f"ladder-{n}", **ladder_options)
            for n, m in enumerate(kernel.markets.values())
        ]
        self.consolidated_ladders = self._consolidated_ladders(assembly, ladder_options)
        self.consolidated = ui.consolidated and self.consolidated_ladders != self.venue_ladders
        self.ladders = self.consolidated_ladders if self.consolidated else self.venue_ladders
        self.current = self.ladders[0]
        self.fills = OurFills(kernel)
        market = self.current.market
        self.quote_panel = QuotePanel(self.market_makers, market, id="quote-panel")
        self.inventory_panel = InventoryPanel(kernel, market, id="inventory-panel")
        self.hedge_panel = HedgePanel(kernel, id="hedge-panel")
        self.strategy_panel = StrategyPanel(kernel, id="strategy-panel")
        self.markout_panel = MarkoutPanel(kernel, market, id="markout-panel")
        self.tape = TradeTape(market, self.fills, id="tape", toxic=self._toxic)
        self.blotter = Blotter(kernel, self.fills, id="blotter")
        #: "auto": the side panels give way to the ladder when the width is short; "shown", "hidden": the
        #: trader's choice (`p`, or `[ui] side_panels`).
        self.side_panels = ui.side_panels
        self.side_layout = "beside"  # what `auto` chose last: beside, stacked or hidden
        #: The heatmaps (one per ladder, always sampling so that `h` shows their history at once): wanted
        #: (`h`, `[ui] heatmap`) and shown (wanted, and the width holds them beside the ladders).
        every = self.venue_ladders + [x for x in self.consolidated_ladders if x not in self.venue_ladders]
        self._heatmap_of = {
            ladder: HeatmapStrip(ladder, minutes=ui.heatmap_minutes, fills=self.fills, id=f"heatmap-{n}")
            for n, ladder in enumerate(every)
        }
        self.heatmaps = [self._heatmap_of[x] for x in self.ladders]
        for ladder, heatmap in self._heatmap_of.items():
            ladder.set_class(ladder not in self.ladders, "-off")
            heatmap.set_class(ladder not in self.ladders, "-off")
        self.heatmap_wanted = ui.heatmap
        self.heatmap_shown = False
        self.set_class(True, "-no-heat")  # from the first layout on; lay_out_panels shows them when wanted

    def compose(self) -> ComposeResult:
        with Horizontal(id="ladders"):
            for ladder, heatmap in self._heatmap_of.items():
                yield heatmap
                yield ladder
        with Vertical(id="side"):
            yield self.quote_panel
            yield self.inventory_panel
            yield self.hedge_panel
            yield self.strategy_panel
            yield self.markout_panel
            yield self.tape
            yield self.blotter

    def on_resize(self) -> None:
        self.lay_out_panels()

    def lay_out_panels(self) -> None:
        """Give the ladders the width they need first, the side panels what is left, by priority: beside
        the ladders at up to SIDE_WIDE columns while they get SIDE_MIN; else below them on a tall terminal;
        else hidden (`p` shows them anyway, narrower)."""
        width, height = self.size
        if not width:
            return
        n = len(self.ladders)
        widths = self.ladders[0].model.fit_widths()
        # The heatmaps go first when the width is short: they stay only if every ladder keeps its narrowest
        # readable width beside its own.
        self.heatmap_shown = self.heatmap_wanted and width >= n * (widths[-1] + HEATMAP_WIDTH)
        self.set_class(not self.heatmap_shown, "-no-heat")
        if self.heatmap_shown:
            widths = [w + HEATMAP_WIDTH for w in widths]
        layout, side_width = "hidden", 0
        for ladder_width in widths:
            room = width - n * ladder_width
            if room >= SIDE_MIN:
                layout, side_width = "beside", min(SIDE_WIDE, room)
                break
        if layout == "hidden" and height >= STACK_MIN_HEIGHT:
            layout = "stacked"
        if self.side_panels == "hidden":
            layout = "hidden"
        elif self.side_panels == "shown" and layout == "hidden":
            layout, side_width = "beside", max(SIDE_MIN // 2, width - n * widths[-1])
        self.side_layout = layout
        self.set_class(layout == "stacked", "-stacked")
        self.set_class(layout == "hidden", "-no-side")
        if layout == "beside":
            self.query_one("#side").styles.width = side_width

    def action_toggle_panels(self) -> None:
        shown = self.side_layout != "hidden"
        self.side_panels = "hidden" if shown else "shown"
        self.lay_out_panels()
        self.notify(f"Side panels {'hidden' if shown else 'shown'} (p).", timeout=2)

    def action_toggle_heatmap(self) -> None:
        self.heatmap_wanted = not self.heatmap_wanted
        self.lay_out_panels()
        if self.heatmap_wanted and not self.heatmap_shown:
            self.notify("Heatmap on, but the terminal is too narrow to show it beside the ladder.", timeout=3)
        else:
            self.notify(f"Heatmap {'on' if self.heatmap_wanted else 'off'} (h).", timeout=2)
        for heatmap in self.heatmaps:
            heatmap.pull()

    @property
    def market(self) -> Market:
        return self.current.market

    def _consolidated_ladders(self, assembly: Assembly, options: dict[str, Any]) -> list[PriceLadder]:
        """One consolidated ladder per instrument traded on several venues, then the per-venue ladders of
        the markets that are alone on their venue (the same widgets as the per-venue set)."""
        kernel = self.kernel
        groups = consolidated_groups(list(kernel.markets.values()))
        quote = assembly.quote_market
        hedge = assembly.hedge_market
        out: list[PriceLadder] = []
        for n, group in enumerate(groups):
            roles = [
                "quote"
                if m.venue == quote.venue
                else "hedge"
                if hedge is not None and m.venue == hedge.venue
                else ""
                for m in group
            ]
            target = roles.index("quote") if "quote" in roles else 0
            out.append(
                ConsolidatedLadder(
                    kernel, group, target=target, roles=roles, id=f"consolidated-{n}", **options
                )
            )
        grouped = {m.key for group in groups for m in group}
        out.extend(x for x in self.venue_ladders if x.market.key not in grouped)
        return out

    def action_toggle_consolidated(self) -> None:
        """Between one consolidated ladder per instrument and a ladder per venue; the cursor's price and
        the axis carry over to the ladders shown (the price under the cursor does not move)."""
        if self.consolidated_ladders == self.venue_ladders:
            self.notify("One venue per instrument: nothing to consolidate.", timeout=3)
            return
        was = self.current
        self.consolidated = not self.consolidated
        self.ladders = self.consolidated_ladders if self.consolidated else self.venue_ladders
        self.heatmaps = [self._heatmap_of[x] for x in self.ladders]
        for ladder, heatmap in self._heatmap_of.items():
            ladder.set_class(ladder not in self.ladders, "-off")
            heatmap.set_class(ladder not in self.ladders, "-off")
        for ladder in self.ladders:
            if ladder.model.auto_zoom is not None and was.model.auto_zoom is None:  # still measuring
                ladder.model.choose_zoom(was.model.ticks_per_row, auto=was.model.zoom_auto)
            if ladder.model.ticks_per_row == was.model.ticks_per_row and was.cursor_price is not None:
                ladder.model.top_price = was.model.top_price
                ladder.model.cursor_price = was.model.cursor_price
                ladder.model.note_user_view()
        key = was.market.key
        shown = next((x for x in self.ladders if x.market.key == key), None)
        if shown is None:  # the per-venue ladder of the consolidated one's target venue, or the first
            shown = next((x for x in self.ladders if key in {m.key for m in _markets_of(x)}), self.ladders[0])
            if isinstance(shown, ConsolidatedLadder) and key in {m.key for m in _markets_of(shown)}:
                shown.model.target = [m.key for m in _markets_of(shown)].index(key)
        self.lay_out_panels()
        shown.focus()
        self._show(shown)
        what = "one ladder per instrument over its venues" if self.consolidated else "a ladder per venue"
        self.notify(f"Ladders: {what} (L).", timeout=2)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # `L` is shown (and answers) only where there is something to consolidate.
        return action != "toggle_consolidated" or self.consolidated_ladders != self.venue_ladders

    def on_consolidated_ladder_target_changed(self, message: ConsolidatedLadder.TargetChanged) -> None:
        if message.ladder is self.current:
            self._show(message.ladder)

    def pull(self) -> None:
        """The UI clock: every ladder, then the side panels (each throttles itself)."""
        now = uiclock.monotonic()
        for ladder, heatmap in zip(self.ladders, self.heatmaps, strict=True):
            ladder.pull()
            heatmap.pull()  # after its ladder: the same axis this frame
        self.quote_panel.pull(now)
        self.inventory_panel.pull(now)
        self.hedge_panel.pull(now)
        self.strategy_panel.pull(now)
        self.markout_panel.pull(now)
        self.tape.pull()
        self.blotter.pull(now)

    # ---- ladders ------------------------------------------------------------------------------
    def on_descendant_focus(self, event) -> None:
        if isinstance(event.widget, PriceLadder) and event.widget is not self.current:
            if event.widget not in self.ladders:  # a hidden set's ladder (focused before its CSS applied)
                self.current.focus()
                return
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
        panel.pull(uiclock.monotonic())

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


def _markets_of(ladder: PriceLadder) -> list[Market]:
    """The markets a ladder shows: a consolidated ladder's venues, else its one market."""
    return list(ladder.consolidated.markets) if isinstance(ladder, ConsolidatedLadder) else [ladder.market]

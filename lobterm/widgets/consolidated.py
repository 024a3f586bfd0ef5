"""The consolidated ladder: one instrument's books on several venues on one static price axis, traded on a
TARGET venue.

It is a `PriceLadder` (the same keys, mouse, cursor rule, zoom, risk checks and large-order questions, the
same kernel verbs) drawn from a `ConsolidatedModel` (consolidated_model.py): a size column per venue on each
side with each venue's best bid and ask highlighted in its own column, our orders on every venue in the OUR
columns tagged with the venue's label. The order keys act on the target venue, shown in the title line;
`v` cycles it (`V` backwards), the quote venue first. `self.market` is the target venue's market: every verb
the ladder asks goes there, in that venue's prices. A mouse click on a venue's size column (`BID B`, `ASK A`)
trades on that venue, whatever the target.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from rich.segment import Segment
from textual import events
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.strip import Strip

from lobterm.widgets.consolidated_model import ConsolidatedMarket, ConsolidatedModel
from lobterm.widgets.ladder import PriceLadder, zoom_text

if TYPE_CHECKING:
    from lobterm.kernel import Kernel, Market

__all__ = ["ConsolidatedLadder"]


class ConsolidatedLadder(PriceLadder):
    """A trading ladder over one instrument on several venues of a kernel, orders to a target venue."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "v",
            "cycle_target(1)",
            "Target venue",
            id="target_venue",
            tooltip="Consolidated ladder: the venue the order keys act on, next one",
        ),
        Binding(
            "V",
            "cycle_target(-1)",
            "Target venue back",
            id="target_venue_back",
            show=False,
            tooltip="Consolidated ladder: the venue the order keys act on, previous one",
        ),
    ]

    DEFAULT_CSS = """
    ConsolidatedLadder > .ladder--target { background: $warning; color: $background; text-style: bold; }
    """
    COMPONENT_CLASSES: ClassVar[set[str]] = {"ladder--target"}

    class TargetChanged(Message):
        """The order keys now act on another venue (the desk shows that venue's panels)."""

        def __init__(self, ladder: ConsolidatedLadder) -> None:
            self.ladder = ladder
            super().__init__()

    def __init__(
        self,
        kernel: Kernel,
        markets: Sequence[Market],
        *,
        target: int = 0,
        roles: Sequence[str] = (),
        **kwargs: Any,
    ) -> None:
        self.consolidated = ConsolidatedMarket(markets)
        self._first_market = markets[target]
        super().__init__(kernel, markets[target], **kwargs)
        base = self.model
        self.model = ConsolidatedModel(
            self.consolidated,
            target=target,
            roles=roles,
            position=lambda: kernel.inventory.positions.get(self.market.key),
            ticks_per_row=base.ticks_per_row,
            optional=tuple(base.optional),
            auto_recenter=base.auto_recenter,
            flash_s=base.flash_s,
            auto_zoom=base.auto_zoom is not None,
        )

    # ---- the target venue ----------------------------------------------------------------------
    model: ConsolidatedModel  # set in __init__, in place of the one-market model PriceLadder made

    @property  # the target venue's market: where the verbs go
    def market(self) -> Market:
        model = self.__dict__.get("model")
        return model.target_market if isinstance(model, ConsolidatedModel) else self._first_market

    @market.setter
    def market(self, market: Market) -> None:
        self._first_market = market

    @property
    def target_label(self) -> str:
        return self.consolidated.labels[self.model.target]

    def set_target(self, venue: str) -> None:
        """Send the order keys to `venue` (one of this ladder's)."""
        names = [m.venue for m in self.consolidated.markets]
        self.model.target = names.index(venue)
        self._dirty = True
        self.pull()
        self.post_message(self.TargetChanged(self))

    def action_cycle_target(self, step: int) -> None:
        market = self.model.cycle_target(step)
        self._note("target_venue", venue=market.venue)
        self._dirty = True
        self.pull()
        self.post_message(self.TargetChanged(self))
        self.notify(f"Order keys act on {market.venue} ({self.target_label}).", timeout=2)

    # ---- the title: legend and target ----------------------------------------------------------
    def _title_key(self) -> tuple:
        c = self.consolidated
        model = self.model
        target = self.market
        mode = getattr(self.kernel.venues[target.venue], "mode", "?")
        tpr = model.ticks_per_row
        zoom = zoom_text(model)
        text = f" {c.symbol} · {model.legend()} "
        aim = f" → {self.target_label} {target.venue} "
        rest = f" {c.instrument.format_price(tpr)}/row{zoom}"
        focus = self.has_focus
        where = hint = ""
        if not c.valid:
            where = "book not synced: waiting for a snapshot"
        elif model.top_price is None:
            where = "waiting for market data"
        else:
            inside = [lvl[0] for lvl in (c.best_bid(), c.best_ask()) if lvl is not None]
            top_edge = model.top_price + tpr - 1
            bottom = model.top_price - (max(1, model.price_rows) - 1) * tpr
            if inside and min(inside) > top_edge:
                where = "▲ market above"
            elif inside and max(inside) < bottom:
                where = "▼ market below"
            hint = f"{self._recenter_key()}: recenter" if where else ""
        return ("title", text, mode, rest, where, hint, focus, aim)

    def _build(self, key: tuple | None, width: int) -> Strip:
        if key is None or key[0] != "title" or len(key) < 8:
            return super()._build(key, width)
        _, text, mode, rest, where, hint, focus, aim = key
        base = self._base()
        style = base + self._style("title-focus" if focus else "title")
        badge = f"mode-{mode.lower()}" if mode in ("LIVE", "PAPER", "REPLAY") else "mode"
        segments = [
            Segment(text, style),
            Segment(f" {mode} ", base + self._style(badge)),
            Segment(aim, base + self._style("target")),
            Segment(rest, style),
        ]
        if where:
            segments.append(Segment(f"   {where}", base + self._style("warning")))
        if hint:
            segments.append(Segment(f" ({hint})", style))
        return Strip(segments).adjust_cell_length(width, style)

    # ---- the mouse: a venue's size column trades like BIDS/ASKS, on THAT venue -------------------
    def _at(self, event: events.MouseEvent) -> tuple[int | None, str | None]:
        price, column = super()._at(event)
        if column is not None and column.startswith(("bids:", "asks:")):
            column = column[:4]
        return price, column

    def on_click(self, event: events.Click) -> None:
        """A click on `BID B` / `ASK B` buys / sells on venue B whatever the target venue: for that click
        the venue is the target (its prices, lots, large-order question, the same kernel verb and risk
        checks as the keys), then the target the trader chose is back."""
        column = self.model.column_at(event.x)
        if column is None or not column.startswith(("bids:", "asks:")):
            return  # Textual calls PriceLadder.on_click next, as for any ladder
        event.prevent_default()  # this click is handled here, not again by PriceLadder's handler
        venue = int(column[5:])
        model = self.model
        chosen = model.target
        model.target = venue
        try:
            super().on_click(event)
        finally:
            model.target = chosen
        if venue != chosen:
            self._dirty = True
            self.pull()

    # ---- moves land on the grid ----------------------------------------------------------------
    def _move(self, row: tuple[int, int], ticks: int, source: str = "key") -> None:
        moved = self.kernel.move_orders(self.market, row[0], row[1], ticks, source=source)
        if not moved:
            if not self.kernel.orders_between(self.market, row[0], row[1]):
                self.notify("No order of ours at the cursor to move.", severity="warning", timeout=2)
            self.pull()
            return
        target = moved[0].amend_price if moved[0].amend_price is not None else moved[0].price
        self.model.set_cursor(self.model.grid_price(target))
        self._view_changed()

"""The price ladder: one market's book on a static price axis, with our orders apart, traded from the keyboard
and the mouse.

A Line API widget (as Textual's own Log): `render_line` returns cached `Strip`s. What every line shows is
decided by its pure view model (`ladder_model.LadderModel`: the axis, the cursor, the columns, the key and
cells of every line); this widget draws it, owns the keys and the mouse, and asks the kernel's verbs. The
ladder never receives a message per book event: the app's UI clock calls `pull()`, which compares the
market's versions with what was drawn and, if they changed, recomputes the key of every visible line (plain
ints and flags, cheap to compare), refreshes only the lines whose key changed and rebuilds their strips lazily
when Textual asks for them.

The cursor is a price: it changes only by the trader's keys (arrows, pages, Home, the recenter key, a
move of our order) or mouse, never by the market. The price axis is static: the top row's price stays put as
the market moves. When the inside market comes within `edge_rows` of an edge, auto-recenter shifts the axis
to bring it back to the middle, but only as far as keeps the cursor's price on screen (at worst on the
first or last row): the cursor's row moves, its price does not. If the market has run further than that,
the axis waits and the title line says "▲ market above" (the recenter key, or Home, brings the cursor
back to the market). Moving the cursor past an edge shifts the axis just enough to keep it on screen.

Columns: our bids | bids (others' size, with a depth bar) | price (◆ on our average entry) | mid mark | asks |
our asks | last traded size | volume at price | optional CUM and P&L (`d`, `P`, `[ui] ladder_columns`). Our
size shows our order count and, where the venue can tell, the lots ahead of our first order in the queue
(`q…`). A size that changed flashes briefly. Columns the width cannot hold are dropped (volume first, then
last, then the queue estimate) or narrowed rather than wrapped; the five trading columns stay.

Zoom: a row can hold N ticks (`z`/`Z`). Sizes are summed over the row. Trading on a zoomed row uses the
row's best price for the side: a buy goes to the row's highest bid price (joining that level), a sell
to its lowest ask price; a row with nothing on that side uses its most passive tick (the lowest for a
buy, the highest for a sell). Cancel and move act on every order of ours in the row.
The first zoom (`[ui] ticks_per_row`, "auto" by default) is chosen once from the market's first 3 s of
session time so that the typical 30 s move spans about a third of the rows (auto_zoom.py); until then the
book is drawn at one tick a row with no cursor, and the cursor is placed after the choice, so that the
choice never moves the price under it. The title says "(×20 auto)"; only z/Z change the zoom after that.

The mouse (`[ui] mouse_trading`, on by default; a one-line notice the first time): a click on BIDS buys the
default quantity at that row, on ASKS sells it (the same verbs, risk checks and large-order questions as
`b`/`s`); a click on our size cancels our orders in that row; dragging our size to another row moves them
there, and so does a click on our size's PRICE (it is picked up) then a click on the new row's PRICE; the
wheel scrolls the axis. With mouse trading off a click only moves the cursor.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, ClassVar

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import BindingType
from textual.dom import NoScreen
from textual.geometry import Region, Size
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget

from lobterm.engine.events import BUY, SELL
from lobterm.engine.instrument import InstrumentError
from lobterm.widgets import uiclock
from lobterm.widgets.help import ConfirmOrderScreen, describe_order, marketable_note
from lobterm.widgets.ladder_bindings import LADDER_BINDINGS
from lobterm.widgets.ladder_model import (
    HEADER_LINES,
    K_FLASH,
    K_KIND,
    LADDER_COLUMNS,
    ZOOMS,
    Column,
    LadderModel,
    bar_cells,
    columns_width,
    nice_scale,
)

if TYPE_CHECKING:
    from lobterm.kernel import Kernel, Market

__all__ = ["Column", "PriceLadder", "LADDER_COLUMNS", "HEADER_LINES", "ZOOMS", "bar_cells", "nice_scale"]

_K_FLASH = K_FLASH  # the name tests read the flash flag by


def zoom_text(model: LadderModel) -> str:
    """The zoom's note after "per row" on a ladder's title: measuring, chosen by auto, or the trader's."""
    tpr = model.ticks_per_row
    if model.auto_zoom is not None:
        return ", auto zoom: measuring"
    if model.zoom_auto:
        return f" (×{tpr} auto)"
    return f" (×{tpr})" if tpr > 1 else ""


WHEEL_ROWS = 3  # rows the axis moves per wheel notch


class PriceLadder(Widget, can_focus=True):
    """A trading ladder for one market of a kernel."""

    BINDINGS: ClassVar[list[BindingType]] = LADDER_BINDINGS

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "ladder--title",
        "ladder--title-focus",
        "ladder--mode",
        "ladder--warning",
        "ladder--header",
        "ladder--cursor",
        "ladder--cursor-mark",
        "ladder--bid",
        "ladder--ask",
        "ladder--best-bid",
        "ladder--best-ask",
        "ladder--ours",
        "ladder--price",
        "ladder--price-bid",
        "ladder--price-ask",
        "ladder--last-price",
        "ladder--last-buy",
        "ladder--last-sell",
        "ladder--mid",
        "ladder--volume",
        "ladder--bid-bar",
        "ladder--ask-bar",
        "ladder--volume-bar",
        "ladder--flash",
        "ladder--mode-live",
        "ladder--mode-paper",
        "ladder--mode-replay",
        "ladder--stats",
        "ladder--entry",
        "ladder--selected",
        "ladder--pnl-up",
        "ladder--pnl-down",
    }

    DEFAULT_CSS = """
    PriceLadder {
        width: auto;
        min-width: 40;
        height: 1fr;
        background: $surface;
        color: $foreground;
    }
    PriceLadder > .ladder--title { background: $panel; text-style: bold; }
    PriceLadder > .ladder--warning { background: $panel; color: $warning; text-style: bold; }
    PriceLadder > .ladder--header { background: $panel; color: $foreground-muted; text-style: bold; }
    PriceLadder > .ladder--cursor { background: $ladder-cursor; }
    PriceLadder > .ladder--cursor-mark { color: $accent; text-style: bold; }
    PriceLadder > .ladder--bid { color: $ladder-bid; }
    PriceLadder > .ladder--ask { color: $ladder-ask; }
    PriceLadder > .ladder--best-bid { color: $ladder-best-text; background: $ladder-best-bid; text-style: bold; }
    PriceLadder > .ladder--best-ask { color: $ladder-best-text; background: $ladder-best-ask; text-style: bold; }
    PriceLadder > .ladder--ours { color: $ladder-ours-text; background: $ladder-ours; text-style: bold; }
    PriceLadder > .ladder--price { color: $foreground-muted; }
    PriceLadder > .ladder--price-bid { color: $ladder-price-bid; }
    PriceLadder > .ladder--price-ask { color: $ladder-price-ask; }
    PriceLadder > .ladder--last-price { color: $ladder-last-text; background: $ladder-last; text-style: bold; }
    PriceLadder > .ladder--last-buy { color: $ladder-last-buy; text-style: bold; }
    PriceLadder > .ladder--last-sell { color: $ladder-last-sell; text-style: bold; }
    PriceLadder > .ladder--mid { color: $accent; text-style: bold; }
    PriceLadder > .ladder--volume { color: $foreground-muted; }
    PriceLadder > .ladder--title-focus { background: $accent 35%; text-style: bold; }
    PriceLadder > .ladder--mode { background: $accent; color: $background; text-style: bold; }
    PriceLadder > .ladder--mode-live { background: $error; color: $background; text-style: bold; }
    PriceLadder > .ladder--mode-paper { background: $warning; color: $background; text-style: bold; }
    PriceLadder > .ladder--mode-replay { background: $primary; color: $background; text-style: bold; }
    PriceLadder > .ladder--bid-bar { background: $ladder-bid 22%; }
    PriceLadder > .ladder--ask-bar { background: $ladder-ask 22%; }
    PriceLadder > .ladder--volume-bar { background: $foreground 12%; }
    PriceLadder > .ladder--flash { color: $warning; text-style: bold; }
    PriceLadder > .ladder--stats { background: $panel; color: $foreground; }
    PriceLadder > .ladder--entry { text-style: bold underline; }
    PriceLadder > .ladder--selected { text-style: bold reverse; }
    PriceLadder > .ladder--pnl-up { color: $success; }
    PriceLadder > .ladder--pnl-down { color: $error; }
    """

    class OrderRefused(Message):
        """An order was not sent (bad quantity, no market yet); `reason` says why, for the trader."""

        def __init__(self, reason: str) -> None:
            self.reason = reason
            super().__init__()

    def __init__(
        self,
        kernel: Kernel,
        market: Market,
        *,
        default_qty: Decimal,
        qty_presets: tuple[Decimal, ...] = (),
        ticks_per_row: int = 1,
        auto_zoom: bool = False,
        columns: tuple[Column, ...] = LADDER_COLUMNS,
        optional_columns: tuple[str, ...] = (),
        auto_recenter: bool = True,
        flash_s: float = 0.3,
        confirm_above_qty: Decimal = Decimal(0),
        mouse_trading: bool = True,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.kernel = kernel
        self.market = market
        self.default_qty = default_qty
        self.qty_presets = tuple(qty_presets)
        #: Orders (and moves) larger than this ask first, naming side, size, price and market (0: never).
        self.confirm_above_qty = confirm_above_qty
        self.mouse_trading = mouse_trading
        self.mouse_noticed = False  # the one-line notice on the first click that trades
        self.model = LadderModel(
            market,
            queue_ahead=lambda order_id: kernel.queue_ahead(market, order_id),
            position=lambda: kernel.inventory.positions.get((market.venue, market.symbol)),
            ticks_per_row=ticks_per_row,
            columns=columns,
            optional=optional_columns,
            auto_recenter=auto_recenter,
            flash_s=flash_s,
            auto_zoom=auto_zoom,
        )
        self._drawn_versions: tuple[int, int, int] | None = None
        self._dirty = True  # the view (axis, cursor, size) changed since the last pull
        self._keys: list[tuple | None] = []
        self._strips: list[Strip | None] = []
        self._styles: dict[str, Style] = {}
        self._cell_styles: dict[tuple[bool, str], Style] = {}
        self._recenter_display: str | None = None
        self._press: tuple[int, str | None] | None = None  # (row price, column) of a mouse button held down
        self._drag_moved = False  # a drag moved our orders: the click that ends it does nothing more
        # Counters for tests and benchmarks: how much work the Line API saves.
        self.lines_refreshed = 0
        self.render_line_calls = 0

    # ---- the view model's state, under the names the app and tests use --------------------------
    @property
    def top_price(self) -> int | None:
        return self.model.top_price

    @top_price.setter
    def top_price(self, price: int | None) -> None:
        self.model.top_price = price
        self._dirty = True

    @property
    def cursor_price(self) -> int | None:
        return self.model.cursor_price

    @cursor_price.setter
    def cursor_price(self, price: int | None) -> None:
        self.model.cursor_price = price
        self._dirty = True

    @property
    def ticks_per_row(self) -> int:
        return self.model.ticks_per_row

    @property
    def columns(self) -> tuple[Column, ...]:
        return self.model.columns

    @property
    def auto_recenter(self) -> bool:
        return self.model.auto_recenter

    @auto_recenter.setter
    def auto_recenter(self, on: bool) -> None:
        self.model.auto_recenter = on

    @property
    def auto_recenters(self) -> int:
        return self.model.auto_recenters

    @property
    def edge_rows(self) -> int:
        return self.model.edge_rows

    @edge_rows.setter
    def edge_rows(self, rows: int) -> None:
        self.model.edge_rows = rows

    @property
    def price_rows(self) -> int:
        return self.model.price_rows

    def row_of(self, price: int) -> int | None:
        """The line (y) of a price, or None when it is off screen."""
        return self.model.row_of(price)

    def _market_visible(self) -> bool:
        return self.model.market_visible()

    def _inside_price(self) -> int | None:
        return self.model.inside_price()

    # ---- geometry ----------------------------------------------------------------------------
    @staticmethod
    def columns_width(columns: tuple[Column, ...]) -> int:
        return columns_width(columns)

    def get_content_width(self, container: Size, viewport: Size) -> int:
        return self.model.full_width

    def _forget_lines(self) -> None:
        self._keys = [None] * len(self._keys)
        self._strips = [None] * len(self._strips)

    def on_resize(self) -> None:
        height = self.size.height
        self._keys = [None] * height
        self._strips = [None] * height
        self.model.resize(self.size.width, height)
        self._dirty = True
        self.pull()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles.clear()
        self._cell_styles.clear()
        self._strips = [None] * len(self._strips)

    def on_focus(self) -> None:
        self._dirty = True
        self.pull()

    def on_blur(self) -> None:
        self._dirty = True
        self.pull()

    # ---- the UI clock ------------------------------------------------------------------------
    def pull(self) -> int:
        """Redraw what changed since the last call; returns how many lines were refreshed."""
        # What is drawn: a consolidated ladder draws several venues (its `market` is where the verbs go).
        m = self.model.market
        model = self.model
        pos = model.position()
        versions = (m.unified.version, m.trade_version, -1 if pos is None else pos.version)
        now = uiclock.monotonic()
        measuring = model.auto_zoom is not None
        if (
            versions == self._drawn_versions
            and not self._dirty
            and now < model.next_flash_end
            and not measuring
        ):
            return 0
        size = self.size
        height = size.height
        if (model.width, model.height) != (size.width, height):
            model.resize(size.width, height)
        if len(self._keys) != height:
            self._keys = [None] * height
            self._strips = [None] * height
        if model.top_price is None or measuring or versions[:2] != (self._drawn_versions or (None, None))[:2]:
            price_width = self._price_width()
            model.follow_market(now)
            if self._price_width() != price_width:
                self.refresh(layout=True)
        self._drawn_versions = versions
        self._dirty = False
        keys = model.line_keys(now, self._title_key())
        old = self._keys
        changed = [y for y, key in enumerate(keys) if key != old[y]]
        for y in changed:
            self._keys[y] = keys[y]
            self._strips[y] = None
        width = model.width
        start = None
        for n, y in enumerate(changed):  # one refresh per run of adjacent lines
            if start is None:
                start = y
            if n + 1 == len(changed) or changed[n + 1] != y + 1:
                self.refresh(Region(0, start, width, y - start + 1))
                start = None
        self.lines_refreshed += len(changed)
        return len(changed)

    def _price_width(self) -> int:
        return next((c.width for c in self.model.base_columns if c.key == "price"), 0)

    def _title_key(self) -> tuple:
        m = self.market
        model = self.model
        mode = getattr(self.kernel.venues[m.venue], "mode", "?")
        tpr = model.ticks_per_row
        text = f" {m.symbol} · {m.venue} "
        rest = f" {m.instrument.format_price(tpr)} per row{zoom_text(model)}"
        focus = self.has_focus
        if not m.l2.valid:
            return ("title", text, mode, rest, "book not synced: waiting for a snapshot", "", focus)
        if model.top_price is None:
            return ("title", text, mode, rest, "waiting for market data", "", focus)
        u = m.unified
        inside = [lvl[0] for lvl in (u.best_bid(), u.best_ask()) if lvl is not None]
        top_edge = model.top_price + tpr - 1
        bottom = model.top_price - (max(1, model.price_rows) - 1) * tpr
        where = ""
        if inside and min(inside) > top_edge:
            where = "▲ market above"
        elif inside and max(inside) < bottom:
            where = "▼ market below"
        hint = f"{self._recenter_key()}: recenter" if where else ""
        return ("title", text, mode, rest, where, hint, focus)

    def _recenter_key(self) -> str:
        """How the recenter key is shown (the keymap may have moved it); looked up once."""
        if self._recenter_display is None:
            try:
                bindings = self.screen.active_bindings
            except NoScreen:  # a UI clock tick while the app closes: the default, looked up again next time
                return "r"
            self._recenter_display = "r"
            for active in bindings.values():
                if active.binding.id == "recenter":
                    self._recenter_display = self.app.get_key_display(active.binding)
                    break
        return self._recenter_display

    # ---- drawing -----------------------------------------------------------------------------
    def _style(self, name: str) -> Style:
        style = self._styles.get(name)
        if style is None:
            style = self.get_component_rich_style(f"ladder--{name}", partial=True)
            # A translucent background ("$ladder-bid 22%") comes out opaque in a partial style: blend it
            # over the ladder's own background here, once per theme.
            background = self.get_component_styles(f"ladder--{name}").background
            if 0 < background.a < 1:
                blended = self.styles.background.blend(background.with_alpha(1.0), background.a)
                style = style + Style(bgcolor=blended.rich_color)
            self._styles[name] = style
        return style

    def _cell_style(self, cursor: bool, names: str) -> Style:
        """The style of a cell on a cursor row or not, from the model's style names ("best-bid flash"):
        Style additions walk both styles, so each combination is added once per theme."""
        key = (cursor, names)
        style = self._cell_styles.get(key)
        if style is None:
            style = self._base() + self._style("cursor") if cursor else self._base()
            for name in names.split():
                style = style + self._style(name)
            self._cell_styles[key] = style
        return style

    def _base(self) -> Style:
        # The widget's own style, cached with the component styles: `rich_style` walks the DOM and
        # blends every ancestor's background, which cost half of each strip (profiled, 40-row frames).
        base = self._styles.get("")
        if base is None:
            base = self._styles[""] = self.rich_style
        return base

    def render_line(self, y: int) -> Strip:
        self.render_line_calls += 1
        # The model's width, kept by on_resize and pull: `self.size` walks the DOM for the content region, a
        # sixth of a frame when asked on every line (profiled, 40 rows at 10,000 deltas/s).
        width = self.model.width
        if y >= len(self._strips):
            return Strip.blank(width, self.rich_style)
        strip = self._strips[y]
        if strip is None:
            strip = self._strips[y] = self._build(self._keys[y], width)
        return strip

    def rendered_lines(self) -> list[str]:
        """The text of every line as drawn (for tests and debugging)."""
        width = self.size.width
        out = []
        for y, key in enumerate(self._keys):
            strip = self._strips[y]
            if strip is None:
                strip = self._strips[y] = self._build(key, width)
            out.append(strip.text)
        return out

    def cell_text(self, price: int, column: str) -> str | None:
        """The text shown in `column` on the row of `price` (stripped), or None when the row is off screen."""
        y = self.row_of(price)
        if y is None or y >= len(self._keys):
            return None
        x = self.model.column_x(column)
        if x is None:
            raise KeyError(f"no column {column!r} (columns: {', '.join(c.key for c in self.columns)})")
        width = next(c.width for c in self.columns if c.key == column)
        return self.rendered_lines()[y][x : x + width].strip()

    def row_key(self, price: int) -> tuple | None:
        """The key the row of `price` was drawn from (tests read flags such as the flash from it)."""
        y = self.row_of(price)
        return None if y is None or y >= len(self._keys) else self._keys[y]

    def _build(self, key: tuple | None, width: int) -> Strip:
        base = self._base()
        if key is None:
            return Strip.blank(width, base)
        kind = key[K_KIND]
        if kind == "row":
            segments = self._row_segments(key)
        elif kind == "header":
            style = base + self._style("header")
            return Strip([Segment(self.model.header_text(), style)]).adjust_cell_length(width, style)
        elif kind == "stats":
            style = base + self._style("stats")
            return Strip([Segment(" " + key[1], style)]).adjust_cell_length(width, style)
        else:  # title
            _, text, mode, rest, where, hint, focus = key
            style = base + self._style("title-focus" if focus else "title")
            badge = f"mode-{mode.lower()}" if mode in ("LIVE", "PAPER", "REPLAY") else "mode"
            segments = [
                Segment(text, style),
                Segment(f" {mode} ", base + self._style(badge)),
                Segment(rest, style),
            ]
            if where:
                segments.append(Segment(f"   {where}", base + self._style("warning")))
            if hint:
                segments.append(Segment(f" ({hint})", style))
            return Strip(segments).adjust_cell_length(width, style)
        # Every cell is padded to its column's width, so the row's length is known: telling Strip saves it
        # measuring every segment again (a fifth of a row's cost, profiled at 10,000 deltas/s).
        length = self.model.row_length
        if width > length:
            segments.append(Segment(" " * (width - length), base))
            return Strip(segments, width)
        return Strip(segments, length).crop(0, width) if width < length else Strip(segments, length)

    def _row_segments(self, key: tuple) -> list[Segment]:
        cursor = key[2]
        cell_style = self._cell_style
        return [Segment(text, cell_style(cursor, names)) for text, names in self.model.row_runs(key)]

    # ---- the axis and the cursor --------------------------------------------------------------
    def _view_changed(self) -> None:
        self._dirty = True
        self.pull()

    def recenter(self) -> bool:
        """Put the inside market (or the last trade) in the middle of the window."""
        if not self.model.place_axis():
            return False
        self._view_changed()
        return True

    def move_cursor(self, rows: int) -> None:
        self.model.move_cursor(rows)
        self._view_changed()

    def action_cursor(self, rows: int) -> None:
        self.move_cursor(rows)

    def action_page(self, direction: int) -> None:
        """Move the axis and the cursor a page, so the cursor stays on its screen row."""
        self.model.page(direction)
        self._view_changed()

    def action_cursor_inside(self) -> None:
        if self.model.cursor_inside():
            self._view_changed()

    def action_recenter(self) -> None:
        if not self.recenter():
            self.notify("Nothing to centre on yet: no book and no trade.", severity="warning")

    def set_zoom(self, ticks_per_row: int) -> None:
        """N ticks a row; the cursor's row keeps its place on the screen."""
        if self.model.set_zoom(ticks_per_row):
            self._view_changed()

    def action_zoom(self, direction: int) -> None:
        i = ZOOMS.index(self.ticks_per_row) if self.ticks_per_row in ZOOMS else 0
        self.set_zoom(ZOOMS[max(0, min(len(ZOOMS) - 1, i + direction))])

    # ---- optional columns ---------------------------------------------------------------------
    def set_column(self, key: str, on: bool) -> None:
        """Show or hide an optional column ("cum", "pnl")."""
        self.model.set_optional(key, on)
        self._forget_lines()
        self.refresh(layout=True)
        self._view_changed()

    def action_toggle_column(self, key: str) -> None:
        on = key not in self.model.optional
        self.set_column(key, on)
        title = {"cum": "Cumulative depth", "pnl": "P&L at price"}[key]
        shown = any(c.key == key for c in self.columns)
        where = "" if shown or not on else " (too narrow to show it now)"
        self.notify(f"{title} column {'on' if on else 'off'}{where}.", timeout=2)

    # ---- the mouse ----------------------------------------------------------------------------
    def _at(self, event: events.MouseEvent) -> tuple[int | None, str | None]:
        return self.model.price_at(event.y), self.model.column_at(event.x)

    def on_mouse_down(self, event: events.MouseDown) -> None:
        price, column = self._at(event)
        self._press = None if price is None else (price, column)
        self._drag_moved = False

    def on_mouse_up(self, event: events.MouseUp) -> None:
        press, self._press = self._press, None
        price, _column = self._at(event)
        if press is None or price is None or not self.mouse_trading:
            return
        start, column = press
        if column in ("our_bids", "our_asks") and self.model.row_span(start) != self.model.row_span(price):
            side = BUY if column == "our_bids" else SELL
            self._drag_moved = True
            self._mouse_notice()
            self._move_from(self.model.row_span(start), price, side)

    def on_click(self, event: events.Click) -> None:
        if self._drag_moved:
            self._drag_moved = False
            return
        price, column = self._at(event)
        if price is None:
            return
        self.focus()
        model = self.model
        model.set_cursor(price)
        self._dirty = True
        if not self.mouse_trading or event.button != 1:
            self.pull()
            return
        span = model.row_span(price)
        if column == "bids":
            self._mouse_notice()
            self._send(BUY, model.order_price(BUY, price), "mouse_buy", source="mouse")
        elif column == "asks":
            self._mouse_notice()
            self._send(SELL, model.order_price(SELL, price), "mouse_sell", source="mouse")
        elif column in ("our_bids", "our_asks"):
            side = BUY if column == "our_bids" else SELL
            self._mouse_notice()
            self._cancel_row(span, side)
        elif column == "price":
            selected = model.selected_price
            if selected is not None and model.row_span(selected) != span:
                model.selected_price = None
                self._mouse_notice()
                self._move_from(model.row_span(selected), price, None)
            elif selected is not None:
                model.selected_price = None  # a second click on it puts it down
            elif self.kernel.orders_between(self.market, *span):
                model.selected_price = span[0]
        self.pull()

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        self.model.scroll(WHEEL_ROWS)
        event.stop()
        self._view_changed()

    def on_mouse_scroll_down(self, event: events.MouseScrollDown) -> None:
        self.model.scroll(-WHEEL_ROWS)
        event.stop()
        self._view_changed()

    def _mouse_notice(self) -> None:
        if not self.mouse_noticed:
            self.mouse_noticed = True
            self.notify(
                "Mouse trading is on: BIDS/ASKS buy/sell the default qty, our size cancels, drag it (or click its "
                "price, then a new price) to move; [ui] mouse_trading = false turns it off.",
                title="Mouse",
                timeout=6,
            )

    def _move_from(self, span: tuple[int, int], target: int, side: int | None) -> None:
        """Move our orders in the row `span` (one side, or both when None) to the row of `target`."""
        live = [
            o
            for o in self.kernel.orders_between(self.market, *span)
            if o.is_live and (side is None or o.side == side)
        ]
        if not live:
            self.notify("No order of ours there to move.", severity="warning", timeout=2)
            return
        ticks = self.model.row_span(target)[0] - span[0]
        self._ask_move(span, ticks, live, source="mouse")

    # ---- orders ------------------------------------------------------------------------------
    def _note(self, action: str, **detail: object) -> None:
        """A key action that changes state, into the session file (when recording), before its events."""
        m = self.market
        self.kernel.note("key", action, {"market": f"{m.venue}:{m.symbol}", **detail})

    def order_lots(self) -> int | None:
        """The default quantity in lots, or None (and an OrderRefused) when it is not a valid order size."""
        try:
            return self.market.instrument.order_lots(self.default_qty)
        except InstrumentError as exc:
            self.post_message(self.OrderRefused(f"default quantity: {exc}"))
            return None

    def row_price(self, side: int) -> int | None:
        """The price an order on `side` at the cursor goes to (see the module docstring for zoomed rows)."""
        cursor = self.cursor_price
        return None if cursor is None else self.model.order_price(side, cursor)

    def _send(
        self, side: int, price: int | None = None, action: str = "", *, source: str = "key"
    ) -> int | None:
        """Send the default quantity on `side` at `price` (the cursor's row price when None), as priced now:
        the order the trader saw. Above `confirm_above_qty` it asks first and returns None; the answer
        sends exactly the order named in the question."""
        price = self.row_price(side) if price is None else price
        if price is None:
            why = "no market data yet" if self.model.auto_zoom is None else "the ladder is choosing its zoom"
            self.post_message(self.OrderRefused(f"{why}: no price to trade at"))
            return None
        lots = self.order_lots()
        if lots is None:
            return None
        if self._needs_confirmation(lots):
            market = self.market

            def answered(yes: bool | None) -> None:
                if yes:
                    self.kernel.place(market, side, price, lots, source=source, action=action)
                else:
                    self.notify("Not sent.", timeout=2)
                self.pull()

            self.app.push_screen(
                ConfirmOrderScreen(
                    describe_order(market, side, price, lots),
                    self._threshold_text(),
                    note=marketable_note(market, side, price),
                ),
                answered,
            )
            return None
        oid = self.kernel.place(self.market, side, price, lots, source=source, action=action)
        self.pull()
        return oid

    def _needs_confirmation(self, lots: int) -> bool:
        limit = self.confirm_above_qty
        return bool(limit) and self.market.instrument.size(lots) > limit

    def _threshold_text(self) -> str:
        return f"{self.confirm_above_qty} {self.market.instrument.base}".rstrip()

    def action_buy(self) -> None:
        self._send(BUY)

    def action_sell(self) -> None:
        self._send(SELL)

    def action_join(self, side: int) -> None:
        """Join the best bid (a buy there) or the best offer (a sell there)."""
        u = self.market.unified
        best = u.best_bid() if side == BUY else u.best_ask()
        if best is None:
            self.post_message(self.OrderRefused(f"no best {'bid' if side == BUY else 'offer'} to join"))
            return
        self._send(side, best[0], "join_bid" if side == BUY else "join_offer")

    def _cursor_row(self) -> tuple[int, int] | None:
        """The prices [low, high] of the cursor's row (one tick, or a zoomed row's ticks)."""
        cursor = self.cursor_price
        return None if cursor is None else self.model.row_span(cursor)

    def action_cancel_at_cursor(self) -> None:
        row = self._cursor_row()
        if row is not None:
            self._cancel_row(row, None)

    def _cancel_row(self, row: tuple[int, int], side: int | None, source: str = "key") -> None:
        n = self.kernel.cancel_at(self.market, row[0], side, high=row[1], source=source)
        if not n:
            price = self.market.instrument.format_price(row[0])
            self.notify(f"No orders of ours at {price}.", severity="warning", timeout=2)
        self.pull()

    def action_cancel_side(self, side: int) -> None:
        what = "bid" if side == BUY else "ask"
        n = self.kernel.cancel_side(self.market, side, source="key")
        self.notify(
            f"Cancelling {n} {what}{'s' if n != 1 else ''}." if n else f"No {what}s of ours working.",
            timeout=2,
        )
        self.pull()

    def action_cancel_all(self) -> None:
        n = self.kernel.cancel_all(self.market, source="key")
        self.notify(
            f"Cancelling {n} order{'s' if n != 1 else ''}." if n else "No orders of ours working.", timeout=2
        )
        self.pull()

    def action_move_order(self, ticks: int) -> None:
        """Move our orders at the cursor `ticks` up or down (an amend: the venue may reset their priority);
        the cursor follows them, so that the key can be pressed again. Orders that together are larger than
        `confirm_above_qty` ask first."""
        row = self._cursor_row()
        live = [] if row is None else [o for o in self.kernel.orders_between(self.market, *row) if o.is_live]
        if row is None or not live:
            self.notify("No order of ours at the cursor to move.", severity="warning", timeout=2)
            self.pull()
            return
        self._ask_move(row, ticks, live)

    def _ask_move(self, row: tuple[int, int], ticks: int, live: list, source: str = "key") -> None:
        """Move `live` (our orders in `row`) `ticks`; together larger than `confirm_above_qty`, ask first."""
        lots = sum(o.leaves for o in live)
        if not self._needs_confirmation(lots):
            self._move(row, ticks, source)
            return
        market, inst = self.market, self.market.instrument
        first = live[0]
        n = len(live)
        summary = (
            f"Move {n} order{'s' if n != 1 else ''} ({inst.format_size(lots)} {inst.base}) from "
            f"{inst.format_price(first.price)} to {inst.format_price(first.price + ticks)} "
            f"on {market.venue} {market.symbol}"
        )
        notes = {marketable_note(market, o.side, o.price + ticks) for o in live} - {""}

        def answered(yes: bool | None) -> None:
            if yes:
                self._move(row, ticks, source)
            else:
                self.notify("Not moved.", timeout=2)
                self.pull()

        self.app.push_screen(
            ConfirmOrderScreen(
                summary, self._threshold_text(), note=" ".join(sorted(notes)), title="Large move"
            ),
            answered,
        )

    def _move(self, row: tuple[int, int], ticks: int, source: str = "key") -> None:
        moved = self.kernel.move_orders(self.market, row[0], row[1], ticks, source=source)
        if not moved:
            if not self.kernel.orders_between(self.market, row[0], row[1]):
                self.notify("No order of ours at the cursor to move.", severity="warning", timeout=2)
            self.pull()
            return
        target = moved[0].amend_price if moved[0].amend_price is not None else moved[0].price
        self.model.set_cursor(target)
        self._view_changed()

    def action_flatten(self) -> None:
        """The kernel's flatten verb on this market: cancel our orders here, pause its strategies, and
        close the position with a marketable IOC (risk may refuse it: the rejection is shown)."""
        r = self.kernel.flatten(self.market, source="key")
        inst = self.market.instrument
        done = [f"cancelled {r.cancelled}"] + (["market maker paused"] if r.paused else [])
        if r.side is None:
            self.notify(f"Flat already; {', '.join(done)}.", title="Flatten", timeout=4)
        elif r.order_id is None or r.limit_price is None:  # the kernel sets both or neither
            self.post_message(self.OrderRefused(f"flatten: {r.problem}"))
        else:
            verb, cmp = ("Selling", "≥") if r.side == SELL else ("Buying", "≤")
            self.notify(
                f"{verb} {inst.format_size(r.size)} IOC at {cmp} {inst.format_price(r.limit_price)}; {', '.join(done)}.",
                title="Flatten",
                timeout=4,
            )
        self.pull()

    # ---- the default quantity -----------------------------------------------------------------
    def action_qty_step(self, direction: int) -> None:
        presets = sorted(set(self.qty_presets))
        if not presets:
            self.notify("No quantity presets configured (ui.qty_presets).", severity="warning")
            return
        if direction > 0:
            bigger = [q for q in presets if q > self.default_qty]
            self.default_qty = bigger[0] if bigger else presets[-1]
        else:
            smaller = [q for q in presets if q < self.default_qty]
            self.default_qty = smaller[-1] if smaller else presets[0]
        self._note("qty", qty=self.default_qty)

    def action_qty_preset(self, index: int) -> None:
        if 0 <= index < len(self.qty_presets):
            self.default_qty = self.qty_presets[index]
            self._note("qty", qty=self.default_qty)
        else:
            self.notify(
                f"No quantity preset {index + 1} (ui.qty_presets has {len(self.qty_presets)}).",
                severity="warning",
            )

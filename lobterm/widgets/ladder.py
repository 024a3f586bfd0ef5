"""The price ladder: one market's book on a static price axis, with our orders apart, traded from the keyboard.

A Line API widget (as Textual's own Log): `render_line` returns cached `Strip`s. The ladder never
receives a message per book event; the app's UI clock calls `pull()`, which compares the market's
versions with what was drawn and, if they changed, recomputes the key of every visible line (plain
ints and flags, cheap to compare), refreshes only the lines whose key changed and rebuilds their
strips lazily when Textual asks for them.

The price axis is static: the top row's price stays put as the market moves, so the row under the
trader's cursor keeps its price. `recenter` puts the inside market in the middle; moving the cursor
past an edge shifts the axis just enough to keep the cursor on screen. When the inside market has
left the window, the title line says so instead of moving the rows.

Columns are a list of `Column`s so that the ladder can grow (last traded size, volume profile...):
our bids | bids (others' size) | price | mid mark | asks (others' size) | our asks | last | volume.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, ClassVar

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget

from lobterm.engine.events import BUY, SELL
from lobterm.engine.instrument import InstrumentError

if TYPE_CHECKING:
    from lobterm.kernel import Kernel, Market

__all__ = ["Column", "PriceLadder", "LADDER_COLUMNS"]

HEADER_LINES = 2  # the title line and the column titles
_CURSOR_GROUP = Binding.Group("Cursor")
_PRESET_GROUP = Binding.Group("Qty preset", compact=True)

# Mid marks: where the mid sits relative to a row.
MID_NONE, MID_ON, MID_BELOW, MID_ABOVE = 0, 1, 2, 3
_MID_TEXT = ("", "◂mid", "▾mid", "▴mid")


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    title: str
    width: int
    align: str = ">"  # format-spec alignment of the cell text


# The default layout; "price" is widened to fit the instrument's prices once the market is known.
LADDER_COLUMNS: tuple[Column, ...] = (
    Column("cursor", "", 1, "<"),
    Column("our_bids", "OUR BIDS", 11),
    Column("bids", "BIDS", 10),
    Column("price", "PRICE", 10),
    Column("mid", "", 4, "<"),
    Column("asks", "ASKS", 10),
    Column("our_asks", "OUR ASKS", 11),
    Column("last", "LAST", 9),
    Column("volume", "VOLUME", 10),
)
_GAP = 1  # blank cells between columns

# Indices into a row key (a plain tuple, compared with the cached one on every clock tick).
(_K_KIND, _K_PRICE, _K_CURSOR, _K_BID, _K_BID_OURS, _K_BID_N, _K_ASK, _K_ASK_OURS, _K_ASK_N,
 _K_BEST, _K_MID, _K_LAST_SIZE, _K_LAST_SIDE, _K_VOLUME) = range(14)
_BEST_BID, _BEST_ASK = 1, 2


class PriceLadder(Widget, can_focus=True):
    """A trading ladder for one market of a kernel."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("b", "buy", "Buy", id="buy"),
        Binding("s", "sell", "Sell", id="sell"),
        Binding("x", "cancel_at_cursor", "Cancel at cursor", id="cancel"),
        Binding("c", "cancel_all", "Cancel all", id="cancel_all"),
        Binding("plus,equals_sign", "qty_step(1)", "Qty +", id="qty_up"),
        Binding("minus", "qty_step(-1)", "Qty -", id="qty_down"),
        Binding("1", "qty_preset(0)", "Qty preset 1", id="qty_preset_1", group=_PRESET_GROUP),
        Binding("2", "qty_preset(1)", "Qty preset 2", id="qty_preset_2", group=_PRESET_GROUP),
        Binding("3", "qty_preset(2)", "Qty preset 3", id="qty_preset_3", group=_PRESET_GROUP),
        Binding("4", "qty_preset(3)", "Qty preset 4", id="qty_preset_4", group=_PRESET_GROUP),
        Binding("r,space", "recenter", "Recenter", id="recenter"),
        Binding("up", "cursor(1)", "Cursor up a tick", id="cursor_up", group=_CURSOR_GROUP),
        Binding("down", "cursor(-1)", "Cursor down a tick", id="cursor_down", group=_CURSOR_GROUP),
        Binding("pageup", "page(1)", "Page up (axis and cursor)", id="page_up", group=_CURSOR_GROUP),
        Binding("pagedown", "page(-1)", "Page down (axis and cursor)", id="page_down", group=_CURSOR_GROUP),
        Binding("home", "cursor_inside", "Cursor to the inside market", id="cursor_inside",
                group=_CURSOR_GROUP),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "ladder--title", "ladder--warning", "ladder--header", "ladder--cursor", "ladder--cursor-mark",
        "ladder--bid", "ladder--ask", "ladder--best-bid", "ladder--best-ask", "ladder--ours",
        "ladder--price", "ladder--price-bid", "ladder--price-ask", "ladder--last-price",
        "ladder--last-buy", "ladder--last-sell", "ladder--mid", "ladder--volume",
    }

    DEFAULT_CSS = """
    PriceLadder {
        width: auto;
        height: 1fr;
        background: $surface;
        color: $foreground;
    }
    PriceLadder > .ladder--title { background: $panel; text-style: bold; }
    PriceLadder > .ladder--warning { background: $panel; color: $warning; text-style: bold; }
    PriceLadder > .ladder--header { background: $panel; color: $foreground-muted; text-style: bold; }
    PriceLadder > .ladder--cursor { background: #3a3f4b; }
    PriceLadder > .ladder--cursor-mark { color: $accent; text-style: bold; }
    PriceLadder > .ladder--bid { color: #79b8ff; }
    PriceLadder > .ladder--ask { color: #ff8080; }
    PriceLadder > .ladder--best-bid { color: #ffffff; background: #1d4e89; text-style: bold; }
    PriceLadder > .ladder--best-ask { color: #ffffff; background: #8b2c2c; text-style: bold; }
    PriceLadder > .ladder--ours { color: #000000; background: #e3b341; text-style: bold; }
    PriceLadder > .ladder--price { color: $foreground-muted; }
    PriceLadder > .ladder--price-bid { color: #9ecbff; }
    PriceLadder > .ladder--price-ask { color: #ffa8a8; }
    PriceLadder > .ladder--last-price { color: #000000; background: #d0d0d0; text-style: bold; }
    PriceLadder > .ladder--last-buy { color: #3fb950; text-style: bold; }
    PriceLadder > .ladder--last-sell { color: #f85149; text-style: bold; }
    PriceLadder > .ladder--mid { color: $accent; text-style: bold; }
    PriceLadder > .ladder--volume { color: $foreground-muted; }
    """

    class OrderRefused(Message):
        """An order was not sent (bad quantity, no market yet); `reason` says why, for the trader."""

        def __init__(self, reason: str) -> None:
            self.reason = reason
            super().__init__()

    def __init__(self, kernel: Kernel, market: Market, *, default_qty: Decimal,
                 qty_presets: tuple[Decimal, ...] = (), ticks_per_row: int = 1,
                 columns: tuple[Column, ...] = LADDER_COLUMNS, auto_recenter: bool = True,
                 name: str | None = None,
                 id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.kernel = kernel
        self.market = market
        self.default_qty = default_qty
        self.qty_presets = tuple(qty_presets)
        self.ticks_per_row = ticks_per_row
        self.columns = columns
        self.top_price: int | None = None  # price (ticks) of the first price row: the static axis
        # Recenter by itself when the market moves out of the window (never when the trader scrolled
        # away: the axis does not fight the keyboard).
        self.auto_recenter = auto_recenter
        self.auto_recenters = 0
        self._market_was_visible = False
        self.cursor_price: int | None = None
        self._drawn_versions: tuple[int, int] | None = None
        self._dirty = True  # the view (axis, cursor, size) changed since the last pull
        self._keys: list[tuple | None] = []
        self._strips: list[Strip | None] = []
        self._styles: dict[str, Style] = {}
        self._recenter_display: str | None = None
        # Counters for tests and benchmarks: how much work the Line API saves.
        self.lines_refreshed = 0
        self.render_line_calls = 0

    # ---- geometry ----------------------------------------------------------------------------
    @property
    def price_rows(self) -> int:
        return max(0, self.size.height - HEADER_LINES)

    def row_of(self, price: int) -> int | None:
        """The line (y) of a price, or None when it is off screen."""
        if self.top_price is None:
            return None
        i = (self.top_price - price) // self.ticks_per_row
        return HEADER_LINES + i if 0 <= i < self.price_rows else None

    def get_content_width(self, container: Size, viewport: Size) -> int:
        return sum(c.width for c in self.columns) + _GAP * (len(self.columns) - 1)

    def on_resize(self) -> None:
        height = self.size.height
        self._keys = [None] * height
        self._strips = [None] * height
        if self.cursor_price is not None:
            self._keep_cursor_visible()
        self._dirty = True
        self.pull()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles.clear()
        self._strips = [None] * len(self._strips)

    # ---- the UI clock ------------------------------------------------------------------------
    def pull(self) -> int:
        """Redraw what changed since the last call; returns how many lines were refreshed."""
        m = self.market
        versions = (m.unified.version, m.trade_version)
        if versions == self._drawn_versions and not self._dirty:
            return 0
        height = self.size.height
        if len(self._keys) != height:
            self._keys = [None] * height
            self._strips = [None] * height
        if self.top_price is None:
            self._place_axis()  # False until there is a book or a trade: the title line says so
        elif self.auto_recenter and versions != self._drawn_versions:
            visible = self._market_visible()
            if not visible and self._market_was_visible:
                self._place_axis()
                self.auto_recenters += 1
                visible = True
            self._market_was_visible = visible
        self._drawn_versions = versions
        self._dirty = False
        keys = self._line_keys()
        changed = [y for y, key in enumerate(keys) if key != self._keys[y]]
        for y in changed:
            self._keys[y] = keys[y]
            self._strips[y] = None
        width = self.size.width
        start = None
        for n, y in enumerate(changed):  # one refresh per run of adjacent lines
            if start is None:
                start = y
            if n + 1 == len(changed) or changed[n + 1] != y + 1:
                self.refresh(Region(0, start, width, y - start + 1))
                start = None
        self.lines_refreshed += len(changed)
        return len(changed)

    def _place_axis(self) -> bool:
        """Put the inside market (or the last trade) in the middle; False when there is none yet."""
        center = self._inside_price()
        if center is None or self.price_rows == 0:
            return False
        tpr = self.ticks_per_row
        center -= center % tpr
        self.top_price = center + (self.price_rows // 2) * tpr
        if self.cursor_price is None or self.row_of(self.cursor_price) is None:
            self.cursor_price = center
        self._fit_price_column()
        self._dirty = True
        self._market_was_visible = True
        return True

    def _inside_price(self) -> int | None:
        center = self.market.unified.center_price()
        if center is None and self.market.last_trade is not None:
            center = self.market.last_trade.price
        return center

    def _fit_price_column(self) -> None:
        inst = self.market.instrument
        width = max(len(inst.format_price(self.top_price * 10)), 5) + 1
        cols = tuple(Column(c.key, c.title, width, c.align) if c.key == "price" else c for c in self.columns)
        if cols != self.columns:
            self.columns = cols
            self._strips = [None] * len(self._strips)
            self.refresh(layout=True)

    def _market_visible(self) -> bool:
        """Whether the inside market (best bid or ask) is on one of the window's rows."""
        u = self.market.unified
        inside = [lvl[0] for lvl in (u.best_bid(), u.best_ask()) if lvl is not None]
        return any(self.row_of(p) is not None for p in inside)

    def _note_user_view(self) -> None:
        """The trader moved the view: remember whether the market is in it now."""
        self._market_was_visible = self._market_visible()

    def _keep_cursor_visible(self) -> None:
        if self.top_price is None or self.cursor_price is None:
            return
        tpr = self.ticks_per_row
        rows = max(1, self.price_rows)
        if self.cursor_price > self.top_price:
            self.top_price = self.cursor_price
        elif self.cursor_price < self.top_price - (rows - 1) * tpr:
            self.top_price = self.cursor_price + (rows - 1) * tpr

    # ---- line keys ---------------------------------------------------------------------------
    def _line_keys(self) -> list[tuple | None]:
        height = self.size.height
        keys: list[tuple | None] = [None] * height
        if height == 0:
            return keys
        m = self.market
        unified = m.unified
        bb = unified.best_bid()
        ba = unified.best_ask()
        bid_px = bb[0] if bb else None
        ask_px = ba[0] if ba else None
        keys[0] = self._title_key(bid_px, ask_px)
        if height > 1:
            keys[1] = ("header",)
        if self.top_price is None:
            return keys
        rows = unified.ladder_rows(self.top_price, self.price_rows, self.ticks_per_row)
        last = m.last_trade
        vap = m.volume_at_price
        mid2 = bid_px + ask_px if bid_px is not None and ask_px is not None else None
        cursor = self.cursor_price
        tpr = self.ticks_per_row
        for i, row in enumerate(rows):
            p = row.price
            hi = p + tpr - 1
            best = (_BEST_BID if bid_px is not None and p <= bid_px <= hi else 0) | \
                   (_BEST_ASK if ask_px is not None and p <= ask_px <= hi else 0)
            mid = MID_NONE
            if mid2 is not None:
                if 2 * p <= mid2 <= 2 * hi:
                    mid = MID_ON
                elif mid2 % 2 and 2 * p == mid2 + 1:
                    mid = MID_BELOW
                elif mid2 % 2 and 2 * hi == mid2 - 1:
                    mid = MID_ABOVE
            last_size = last_side = 0
            if last is not None and p <= last.price <= hi:
                last_size, last_side = last.size, (1 if last.aggressor == BUY else 2)
            volume = vap.get(p, 0) if tpr == 1 else sum(vap.get(q, 0) for q in range(p, hi + 1))
            keys[HEADER_LINES + i] = ("row", p, cursor is not None and p <= cursor <= hi,
                                      row.bid_others, row.bid_ours, row.bid_our_count,
                                      row.ask_others, row.ask_ours, row.ask_our_count,
                                      best, mid, last_size, last_side, volume)
        return keys

    def _title_key(self, bid_px: int | None, ask_px: int | None) -> tuple:
        m = self.market
        inst = m.instrument
        text = f" {m.symbol} · {m.venue} · {inst.format_price(self.ticks_per_row)} per row"
        if not m.l2.valid:
            return ("title", text, "book not synced: waiting for a snapshot", "")
        if self.top_price is None:
            return ("title", text, "waiting for market data", "")
        inside = [p for p in (bid_px, ask_px) if p is not None]
        top_edge = self.top_price + self.ticks_per_row - 1
        bottom = self.top_price - (max(1, self.price_rows) - 1) * self.ticks_per_row
        where = ""
        if inside and min(inside) > top_edge:
            where = "▲ market above the window"
        elif inside and max(inside) < bottom:
            where = "▼ market below the window"
        hint = f"{self._recenter_key()}: recenter" if where else ""
        return ("title", text, where, hint)

    def _recenter_key(self) -> str:
        """How the recenter key is shown (the keymap may have moved it); looked up once."""
        if self._recenter_display is None:
            self._recenter_display = "r"
            for active in self.screen.active_bindings.values():
                if active.binding.id == "recenter":
                    self._recenter_display = self.app.get_key_display(active.binding)
                    break
        return self._recenter_display

    # ---- drawing -----------------------------------------------------------------------------
    def _style(self, name: str) -> Style:
        style = self._styles.get(name)
        if style is None:
            style = self._styles[name] = self.get_component_rich_style(f"ladder--{name}", partial=True)
        return style

    def render_line(self, y: int) -> Strip:
        self.render_line_calls += 1
        width = self.size.width
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
        x = 0
        for col in self.columns:
            if col.key == column:
                return self.rendered_lines()[y][x:x + col.width].strip()
            x += col.width + _GAP
        raise KeyError(f"no column {column!r} (columns: {', '.join(c.key for c in self.columns)})")

    def _build(self, key: tuple | None, width: int) -> Strip:
        base = self.rich_style
        if key is None:
            return Strip.blank(width, base)
        kind = key[_K_KIND]
        if kind == "row":
            segments = self._row_segments(key, base)
        elif kind == "header":
            style = base + self._style("header")
            text = self._cells_text({c.key: c.title for c in self.columns})
            return Strip([Segment(text, style)]).adjust_cell_length(width, style)
        else:  # title
            _, text, where, hint = key
            style = base + self._style("title")
            segments = [Segment(text, style)]
            if where:
                segments.append(Segment(f"   {where}", base + self._style("warning")))
            if hint:
                segments.append(Segment(f" ({hint})", style))
            return Strip(segments).adjust_cell_length(width, style)
        return Strip(segments).adjust_cell_length(width, base)

    def _cells_text(self, texts: dict[str, str]) -> str:
        return (" " * _GAP).join(f"{texts.get(c.key, ''):{c.align}{c.width}}"[:c.width] for c in self.columns)

    def _row_segments(self, key: tuple, base: Style) -> list[Segment]:
        inst = self.market.instrument
        fmt_size = inst.format_size
        st = self._style
        is_cursor = key[_K_CURSOR]
        row_style = base + st("cursor") if is_cursor else base
        best = key[_K_BEST]
        price = key[_K_PRICE]

        def ours(size: int, count: int) -> str:
            return f"{fmt_size(size)} ({count})" if size else ""

        cells: dict[str, tuple[str, Style | None]] = {
            "cursor": ("▶" if is_cursor else "", st("cursor-mark")),
            "our_bids": (ours(key[_K_BID_OURS], key[_K_BID_N]), st("ours") if key[_K_BID_OURS] else None),
            "bids": (fmt_size(key[_K_BID]) if key[_K_BID] else "",
                     st("best-bid") if best & _BEST_BID else st("bid")),
            "asks": (fmt_size(key[_K_ASK]) if key[_K_ASK] else "",
                     st("best-ask") if best & _BEST_ASK else st("ask")),
            "our_asks": (ours(key[_K_ASK_OURS], key[_K_ASK_N]), st("ours") if key[_K_ASK_OURS] else None),
            "mid": (_MID_TEXT[key[_K_MID]], st("mid")),
            "volume": (fmt_size(key[_K_VOLUME]) if key[_K_VOLUME] else "", st("volume")),
        }
        if key[_K_LAST_SIZE]:
            buy = key[_K_LAST_SIDE] == 1
            cells["last"] = (("▲" if buy else "▼") + fmt_size(key[_K_LAST_SIZE]),
                             st("last-buy") if buy else st("last-sell"))
            cells["price"] = (inst.format_price(price), st("last-price"))
        else:
            side_style = st("price-bid") if key[_K_BID] or key[_K_BID_OURS] else (
                st("price-ask") if key[_K_ASK] or key[_K_ASK_OURS] else st("price"))
            cells["price"] = (inst.format_price(price), side_style)
        segments: list[Segment] = []
        gap = Segment(" " * _GAP, row_style)
        for n, col in enumerate(self.columns):
            if n:
                segments.append(gap)
            text, style = cells.get(col.key, ("", None))
            text = f"{text:{col.align}{col.width}}"[:col.width] if text else " " * col.width
            if text.strip() and style is not None:
                # A cell's own background (ours, best bid/ask) wins over the cursor row's.
                segments.append(Segment(text, row_style + style))
            else:
                segments.append(Segment(text, row_style))
        return segments

    # ---- the axis and the cursor --------------------------------------------------------------
    def recenter(self) -> bool:
        """Put the inside market (or the last trade) in the middle of the window."""
        if self._inside_price() is None:
            return False
        self._place_axis()
        self.pull()
        return True

    def move_cursor(self, rows: int) -> None:
        if self.cursor_price is None:
            return
        self.cursor_price = max(self.ticks_per_row, self.cursor_price + rows * self.ticks_per_row)
        self._keep_cursor_visible()
        self._note_user_view()
        self._dirty = True
        self.pull()

    def action_cursor(self, rows: int) -> None:
        self.move_cursor(rows)

    def action_page(self, direction: int) -> None:
        """Move the axis and the cursor a page, so the cursor stays on its screen row."""
        if self.top_price is None or self.cursor_price is None:
            return
        step = max(1, self.price_rows - 1) * self.ticks_per_row * direction
        step = max(step, self.ticks_per_row - self.cursor_price)  # never below the first tick
        self.top_price += step
        self.cursor_price += step
        self._note_user_view()
        self._dirty = True
        self.pull()

    def action_cursor_inside(self) -> None:
        inside = self._inside_price()
        if inside is None:
            return
        if self.row_of(inside) is None:
            self._place_axis()
        self.cursor_price = inside - inside % self.ticks_per_row
        self._dirty = True
        self.pull()

    def action_recenter(self) -> None:
        if not self.recenter():
            self.notify("Nothing to centre on yet: no book and no trade.", severity="warning")

    # ---- orders ------------------------------------------------------------------------------
    def order_lots(self) -> int | None:
        """The default quantity in lots, or None (and an OrderRefused) when it is not a valid order size."""
        try:
            return self.market.instrument.order_lots(self.default_qty)
        except InstrumentError as exc:
            self.post_message(self.OrderRefused(f"default quantity: {exc}"))
            return None

    def _send(self, side: int) -> None:
        if self.cursor_price is None:
            self.post_message(self.OrderRefused("no market data yet: no price to trade at"))
            return
        lots = self.order_lots()
        if lots is None:
            return
        if side == BUY:
            self.kernel.buy(self.market, self.cursor_price, lots)
        else:
            self.kernel.sell(self.market, self.cursor_price, lots)
        self.pull()

    def action_buy(self) -> None:
        self._send(BUY)

    def action_sell(self) -> None:
        self._send(SELL)

    def action_cancel_at_cursor(self) -> None:
        if self.cursor_price is None:
            return
        n = self.kernel.cancel_at(self.market, self.cursor_price)
        if not n:
            price = self.market.instrument.format_price(self.cursor_price)
            self.notify(f"No orders of ours at {price}.", severity="warning", timeout=2)
        self.pull()

    def action_cancel_all(self) -> None:
        n = self.kernel.cancel_all(self.market)
        self.notify(f"Cancelling {n} order{'s' if n != 1 else ''}." if n else "No orders of ours working.",
                    timeout=2)
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

    def action_qty_preset(self, index: int) -> None:
        if 0 <= index < len(self.qty_presets):
            self.default_qty = self.qty_presets[index]
        else:
            self.notify(f"No quantity preset {index + 1} (ui.qty_presets has {len(self.qty_presets)}).",
                        severity="warning")

"""The price ladder: one market's book on a static price axis, with our orders apart, traded from the keyboard.

A Line API widget (as Textual's own Log): `render_line` returns cached `Strip`s. The ladder never
receives a message per book event; the app's UI clock calls `pull()`, which compares the market's
versions with what was drawn and, if they changed, recomputes the key of every visible line (plain
ints and flags, cheap to compare), refreshes only the lines whose key changed and rebuilds their
strips lazily when Textual asks for them.

The cursor is a price: it changes only by the trader's keys (arrows, pages, Home, the recenter key, a
move of our order), never by the market. The price axis is static: the top row's price stays put as the
market moves. When the inside market comes within `edge_rows` of an edge, auto-recenter shifts the axis
to bring it back to the middle, but only as far as keeps the cursor's price on screen (at worst on the
first or last row): the cursor's row moves, its price does not. If the market has run further than that,
the axis waits and the title line says "▲ market above" (the recenter key, or Home, brings the cursor
back to the market). Moving the cursor past an edge shifts the axis just enough to keep it on screen.

Columns: our bids | bids (others' size, with a depth bar) | price | mid mark | asks | our asks | last
traded size | volume at price. Our size shows our order count and, where the venue can tell, the lots
ahead of our first order in the queue (`q…`). A size that changed flashes briefly. Columns the width
cannot hold are dropped (volume first, then last, then the queue estimate) rather than wrapped.

Zoom: a row can hold N ticks (`z`/`Z`). Sizes are summed over the row. Trading on a zoomed row uses the
row's best price for the side: a buy goes to the row's highest bid price (joining that level), a sell
to its lowest ask price; a row with nothing on that side uses its most passive tick (the lowest for a
buy, the highest for a sell). Cancel and move act on every order of ours in the row.
"""

from __future__ import annotations

import time
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
from lobterm.widgets.help import ConfirmOrderScreen, describe_order, marketable_note

if TYPE_CHECKING:
    from lobterm.kernel import Kernel, Market

__all__ = ["Column", "PriceLadder", "LADDER_COLUMNS", "ZOOMS"]

HEADER_LINES = 2  # the title line and the column titles
_CURSOR_GROUP = Binding.Group("Cursor")
_PRESET_GROUP = Binding.Group("Preset", compact=True)
_CANCEL_GROUP = Binding.Group("Cancel")
_MOVE_GROUP = Binding.Group("Move", compact=True)
_ZOOM_GROUP = Binding.Group("Zoom", compact=True)
_JOIN_GROUP = Binding.Group("Join", compact=True)
_QTY_GROUP = Binding.Group("Qty", compact=True)

# Mid marks: where the mid sits relative to a row.
MID_NONE, MID_ON, MID_BELOW, MID_ABOVE = 0, 1, 2, 3
_MID_TEXT = ("", "◂mid", "▾mid", "▴mid")

#: Ticks per row the zoom keys step through.
ZOOMS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    title: str
    width: int
    align: str = ">"  # format-spec alignment of the cell text


# The full layout; "price" is widened to fit the instrument's prices once the market is known.
LADDER_COLUMNS: tuple[Column, ...] = (
    Column("cursor", "", 1, "<"),
    Column("our_bids", "OUR BIDS  q-ahead", 17),
    Column("bids", "BIDS", 10),
    Column("price", "PRICE", 10),
    Column("mid", "", 4, "<"),
    Column("asks", "ASKS", 10, "<"),
    Column("our_asks", "OUR ASKS  q-ahead", 17, "<"),
    Column("last", "LAST", 9),
    Column("volume", "VOLUME", 10, "<"),
)
_GAP = 1  # blank cells between columns
# How a ladder narrower than its columns gets by, one step at a time: (column, new width or 0 = drop).
_FIT_STEPS = (("volume", 0), ("last", 0), (("our_bids", "our_asks"), 10), (("bids", "asks"), 8), ("mid", 0))

# Indices into a row key (a plain tuple, compared with the cached one on every clock tick).
(
    _K_KIND,
    _K_PRICE,
    _K_CURSOR,
    _K_BID,
    _K_BID_OURS,
    _K_BID_N,
    _K_ASK,
    _K_ASK_OURS,
    _K_ASK_N,
    _K_BEST,
    _K_MID,
    _K_LAST_SIZE,
    _K_LAST_SIDE,
    _K_VOLUME,
    _K_BID_Q,
    _K_ASK_Q,
    _K_BID_BAR,
    _K_ASK_BAR,
    _K_VOL_BAR,
    _K_FLASH,
) = range(20)
_BEST_BID, _BEST_ASK = 1, 2
_FLASH_BID, _FLASH_ASK = 1, 2


def nice_scale(value: int) -> int:
    """The smallest 1, 2 or 5 times a power of ten that is >= value: a depth-bar scale that rarely moves."""
    scale = 1
    while True:
        for m in (1, 2, 5):
            if scale * m >= value:
                return scale * m
        scale *= 10


def bar_cells(size: int, scale: int, width: int) -> int:
    """How many of `width` cells a size fills against `scale` (at least one for any size)."""
    if size <= 0 or scale <= 0:
        return 0
    return min(width, max(1, -(-size * width // scale)))


class PriceLadder(Widget, can_focus=True):
    """A trading ladder for one market of a kernel."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("b", "buy", "Buy", id="buy", tooltip="Buy the default qty at the cursor"),
        Binding("s", "sell", "Sell", id="sell", tooltip="Sell the default qty at the cursor"),
        Binding(
            "j",
            "join(0)",
            "Join bid",
            id="join_bid",
            group=_JOIN_GROUP,
            tooltip="Join the bid: buy at the best bid",
        ),
        Binding(
            "k",
            "join(1)",
            "Join offer",
            id="join_offer",
            group=_JOIN_GROUP,
            tooltip="Join the offer: sell at the best ask",
        ),
        Binding(
            "x",
            "cancel_at_cursor",
            "Cancel at cursor",
            id="cancel",
            group=_CANCEL_GROUP,
            tooltip="Cancel our orders at the cursor",
        ),
        Binding(
            "left_square_bracket",
            "cancel_side(0)",
            "Cancel bids",
            id="cancel_bids",
            group=_CANCEL_GROUP,
            tooltip="Cancel all our bids (this market)",
        ),
        Binding(
            "right_square_bracket",
            "cancel_side(1)",
            "Cancel asks",
            id="cancel_asks",
            group=_CANCEL_GROUP,
            tooltip="Cancel all our asks (this market)",
        ),
        Binding(
            "c", "cancel_all", "Cancel all", id="cancel_all", tooltip="Cancel all our orders (this market)"
        ),
        Binding(
            "shift+up",
            "move_order(1)",
            "Move up",
            id="move_up",
            group=_MOVE_GROUP,
            key_display="⇧↑",
            tooltip="Move our order at the cursor up a tick",
        ),
        Binding(
            "shift+down",
            "move_order(-1)",
            "Move down",
            id="move_down",
            group=_MOVE_GROUP,
            key_display="⇧↓",
            tooltip="Move our order at the cursor down a tick",
        ),
        Binding(
            "F", "flatten", "Flatten", id="flatten", tooltip="Flatten: cancel all, pause MM, close (IOC)"
        ),
        Binding(
            "plus,equals_sign",
            "qty_step(1)",
            "Qty +",
            id="qty_up",
            group=_QTY_GROUP,
            tooltip="Default qty: next preset up",
        ),
        Binding(
            "minus",
            "qty_step(-1)",
            "Qty -",
            id="qty_down",
            group=_QTY_GROUP,
            tooltip="Default qty: next preset down",
        ),
        Binding("1", "qty_preset(0)", "Qty preset 1", id="qty_preset_1", group=_PRESET_GROUP),
        Binding("2", "qty_preset(1)", "Qty preset 2", id="qty_preset_2", group=_PRESET_GROUP),
        Binding("3", "qty_preset(2)", "Qty preset 3", id="qty_preset_3", group=_PRESET_GROUP),
        Binding("4", "qty_preset(3)", "Qty preset 4", id="qty_preset_4", group=_PRESET_GROUP),
        Binding(
            "z", "zoom(1)", "Zoom out", id="zoom_out", group=_ZOOM_GROUP, tooltip="Zoom out: more ticks a row"
        ),
        Binding(
            "Z", "zoom(-1)", "Zoom in", id="zoom_in", group=_ZOOM_GROUP, tooltip="Zoom in: fewer ticks a row"
        ),
        Binding("r,space", "recenter", "Recenter", id="recenter"),
        Binding("up", "cursor(1)", "Cursor up a row", id="cursor_up", group=_CURSOR_GROUP, show=False),
        Binding("down", "cursor(-1)", "Cursor down a row", id="cursor_down", group=_CURSOR_GROUP, show=False),
        Binding(
            "pageup", "page(1)", "Page up (axis and cursor)", id="page_up", group=_CURSOR_GROUP, show=False
        ),
        Binding(
            "pagedown",
            "page(-1)",
            "Page down (axis and cursor)",
            id="page_down",
            group=_CURSOR_GROUP,
            show=False,
        ),
        Binding(
            "home",
            "cursor_inside",
            "Cursor to the inside market",
            id="cursor_inside",
            group=_CURSOR_GROUP,
            show=False,
        ),
    ]

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
        columns: tuple[Column, ...] = LADDER_COLUMNS,
        auto_recenter: bool = True,
        flash_s: float = 0.3,
        confirm_above_qty: Decimal = Decimal(0),
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
        self.ticks_per_row = ticks_per_row
        self._base_columns = columns  # every column, the price one fitted to the market's prices
        self.columns = columns  # what the width holds
        self.top_price: int | None = None  # price (ticks) of the first price row: the static axis
        # Recenter by itself when the market moves out of the window (never when the trader scrolled
        # away: the axis does not fight the keyboard).
        self.auto_recenter = auto_recenter
        self.auto_recenters = 0
        self.edge_rows = 3  # auto-recenter when the inside market comes this close to the top or bottom
        self._market_was_visible = False
        self.cursor_price: int | None = None
        self.flash_s = flash_s  # how long a changed size stays highlighted (0: never)
        self._seen: dict[int, tuple[int, int]] = {}  # row price -> (bid total, ask total) last pull
        self._flash_until: dict[tuple[int, int], float] = {}  # (row price, side) -> monotonic deadline
        self._next_flash_end = float("inf")
        self._drawn_versions: tuple[int, int] | None = None
        self._dirty = True  # the view (axis, cursor, size) changed since the last pull
        self._keys: list[tuple | None] = []
        self._strips: list[Strip | None] = []
        self._styles: dict[str, Style] = {}
        # Decimal formatting is the dearest part of a row; a ladder shows the same few hundred sizes and
        # prices over and over, so their texts are kept (bounded).
        self._size_text: dict[int, str] = {}
        self._price_text: dict[int, str] = {}
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

    @staticmethod
    def columns_width(columns: tuple[Column, ...]) -> int:
        return sum(c.width for c in columns) + _GAP * (len(columns) - 1)

    def get_content_width(self, container: Size, viewport: Size) -> int:
        return self.columns_width(self._base_columns)

    def _refit(self) -> None:
        """Choose the columns the current width holds (see `_FIT_STEPS`)."""
        width = self.size.width
        cols = self._base_columns
        steps = iter(_FIT_STEPS)
        while width and self.columns_width(cols) > width:
            step = next(steps, None)
            if step is None:
                break
            keys, new = step
            keys = (keys,) if isinstance(keys, str) else keys
            cols = (
                tuple(c for c in cols if c.key not in keys)
                if not new
                else tuple(
                    Column(c.key, c.title if len(c.title) <= new else c.title.split("  ")[0], new, c.align)
                    if c.key in keys
                    else c
                    for c in cols
                )
            )
        if cols != self.columns:
            self.columns = cols
            self._strips = [None] * len(self._strips)
            self._keys = [None] * len(self._keys)

    def on_resize(self) -> None:
        height = self.size.height
        self._keys = [None] * height
        self._strips = [None] * height
        self._refit()
        if self.cursor_price is not None:
            self._keep_cursor_visible()
        self._dirty = True
        self.pull()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles.clear()
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
        m = self.market
        versions = (m.unified.version, m.trade_version)
        now = time.monotonic()
        if versions == self._drawn_versions and not self._dirty and now < self._next_flash_end:
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
                top = self.top_price
                self._place_axis(keep_cursor=True)
                self.auto_recenters += self.top_price != top
                visible = self._market_visible()  # False: the cursor's price held the axis back; wait
            self._market_was_visible = visible
        self._drawn_versions = versions
        self._dirty = False
        keys = self._line_keys(now)
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

    def _place_axis(self, *, keep_cursor: bool = False) -> bool:
        """Put the inside market (or the last trade) in the middle; False when there is none yet.

        `keep_cursor` (auto-recenter, which no key asked for): the cursor keeps its price, so the axis moves
        only as far as keeps that price on screen (at worst on the first or last row). Otherwise (the first
        axis, the trader's recenter key) a cursor that would leave the window goes to the inside market."""
        center = self._inside_price()
        if center is None or self.price_rows == 0:
            return False
        tpr = self.ticks_per_row
        center -= center % tpr
        top = center + (self.price_rows // 2) * tpr
        if keep_cursor and self.cursor_price is not None:
            cursor_row = self.cursor_price - self.cursor_price % tpr
            top = min(max(top, cursor_row), cursor_row + (self.price_rows - 1) * tpr)
        self.top_price = top
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
        cols = tuple(
            Column(c.key, c.title, width, c.align) if c.key == "price" else c for c in self._base_columns
        )
        if cols != self._base_columns:
            self._base_columns = cols
            self._refit()
            self._strips = [None] * len(self._strips)
            self.refresh(layout=True)

    def _market_visible(self) -> bool:
        """Whether the inside market (best bid or ask) is on the window's rows, clear of its edges by
        `edge_rows` (so that auto-recenter moves the axis before the market runs off the screen)."""
        u = self.market.unified
        inside = [lvl[0] for lvl in (u.best_bid(), u.best_ask()) if lvl is not None]
        if not inside:
            return False
        rows = self.price_rows
        margin = min(self.edge_rows, max(0, (rows - 1) // 4))
        lines = [self.row_of(p) for p in inside]
        return all(y is not None and HEADER_LINES + margin <= y < HEADER_LINES + rows - margin for y in lines)

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
    def _line_keys(self, now: float) -> list[tuple | None]:
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
            keys[1] = ("header", self.columns)
        if self.top_price is None:
            return keys
        tpr = self.ticks_per_row
        rows = unified.ladder_rows(self.top_price, self.price_rows, tpr)
        last = m.last_trade
        vap = m.volume_at_price
        mid2 = bid_px + ask_px if bid_px is not None and ask_px is not None else None
        cursor = self.cursor_price
        widths = {c.key: c.width for c in self.columns}
        # Depth bars share one scale per side pair, rounded to a 1-2-5 step so that it rarely moves.
        depth_scale = nice_scale(max((max(r.bid_total, r.ask_total) for r in rows), default=0))
        volumes = [
            vap.get(r.price, 0) if tpr == 1 else sum(vap.get(q, 0) for q in range(r.price, r.price + tpr))
            for r in rows
        ]
        volume_scale = nice_scale(max(volumes, default=0))
        bid_w, ask_w, vol_w = widths.get("bids", 0), widths.get("asks", 0), widths.get("volume", 0)
        flash_s = self.flash_s
        seen, flash_until = self._seen, self._flash_until
        new_seen: dict[int, tuple[int, int]] = {}
        next_end = float("inf")
        for i, row in enumerate(rows):
            p = row.price
            hi = p + tpr - 1
            best = (_BEST_BID if bid_px is not None and p <= bid_px <= hi else 0) | (
                _BEST_ASK if ask_px is not None and p <= ask_px <= hi else 0
            )
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
            totals = (row.bid_total, row.ask_total)
            flash = 0
            if flash_s > 0:
                before = seen.get(p)
                if before is not None and before != totals:
                    if before[0] != totals[0]:
                        flash_until[(p, BUY)] = now + flash_s
                    if before[1] != totals[1]:
                        flash_until[(p, SELL)] = now + flash_s
                for side, bit in ((BUY, _FLASH_BID), (SELL, _FLASH_ASK)):
                    until = flash_until.get((p, side))
                    if until is not None:
                        if until > now:
                            flash |= bit
                            next_end = min(next_end, until)
                        else:
                            del flash_until[(p, side)]
                new_seen[p] = totals
            bid_q = self._queue(BUY, p, hi) if row.bid_ours and widths.get("our_bids", 0) > 12 else -1
            ask_q = self._queue(SELL, p, hi) if row.ask_ours and widths.get("our_asks", 0) > 12 else -1
            keys[HEADER_LINES + i] = (
                "row",
                p,
                cursor is not None and p <= cursor <= hi,
                row.bid_others,
                row.bid_ours,
                row.bid_our_count,
                row.ask_others,
                row.ask_ours,
                row.ask_our_count,
                best,
                mid,
                last_size,
                last_side,
                volumes[i],
                bid_q,
                ask_q,
                bar_cells(row.bid_total, depth_scale, bid_w),
                bar_cells(row.ask_total, depth_scale, ask_w),
                bar_cells(volumes[i], volume_scale, vol_w),
                flash,
            )
        if flash_s > 0:
            self._seen = new_seen
            if len(flash_until) > 4 * max(1, len(rows)):  # rows that scrolled away while lit
                self._flash_until = {k: v for k, v in flash_until.items() if v > now}
        self._next_flash_end = next_end
        return keys

    def _queue(self, side: int, low: int, high: int) -> int:
        """Lots ahead of our best-placed order on `side` in the row (-1: the venue cannot tell)."""
        unified = self.market.unified
        prices = range(high, low - 1, -1) if side == BUY else range(low, high + 1)
        for price in prices:
            ids = unified.our_orders_at(price, side)
            if ids:
                ahead = self.kernel.queue_ahead(self.market, ids[0])
                return -1 if ahead is None else ahead
        return -1

    def _title_key(self, bid_px: int | None, ask_px: int | None) -> tuple:
        m = self.market
        inst = m.instrument
        mode = getattr(self.kernel.venues[m.venue], "mode", "?")
        zoom = f" (×{self.ticks_per_row})" if self.ticks_per_row > 1 else ""
        text = f" {m.symbol} · {m.venue} "
        rest = f" {inst.format_price(self.ticks_per_row)} per row{zoom}"
        focus = self.has_focus
        if not m.l2.valid:
            return ("title", text, mode, rest, "book not synced: waiting for a snapshot", "", focus)
        if self.top_price is None:
            return ("title", text, mode, rest, "waiting for market data", "", focus)
        inside = [p for p in (bid_px, ask_px) if p is not None]
        top_edge = self.top_price + self.ticks_per_row - 1
        bottom = self.top_price - (max(1, self.price_rows) - 1) * self.ticks_per_row
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
            style = self.get_component_rich_style(f"ladder--{name}", partial=True)
            # A translucent background ("$ladder-bid 22%") comes out opaque in a partial style: blend it
            # over the ladder's own background here, once per theme.
            background = self.get_component_styles(f"ladder--{name}").background
            if 0 < background.a < 1:
                blended = self.styles.background.blend(background.with_alpha(1.0), background.a)
                style = style + Style(bgcolor=blended.rich_color)
            self._styles[name] = style
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
                return self.rendered_lines()[y][x : x + col.width].strip()
            x += col.width + _GAP
        raise KeyError(f"no column {column!r} (columns: {', '.join(c.key for c in self.columns)})")

    def row_key(self, price: int) -> tuple | None:
        """The key the row of `price` was drawn from (tests read flags such as the flash from it)."""
        y = self.row_of(price)
        return None if y is None or y >= len(self._keys) else self._keys[y]

    def _build(self, key: tuple | None, width: int) -> Strip:
        # The widget's own style, cached with the component styles: `rich_style` walks the DOM and
        # blends every ancestor's background, which cost half of each strip (profiled, 40-row frames).
        base = self._styles.get("")
        if base is None:
            base = self._styles[""] = self.rich_style
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
        length = self._row_length
        if width > length:
            segments.append(Segment(" " * (width - length), base))
            return Strip(segments, width)
        return Strip(segments, length).crop(0, width) if width < length else Strip(segments, length)

    @property
    def _row_length(self) -> int:
        return sum(c.width for c in self.columns) + _GAP * (len(self.columns) - 1)

    def _cells_text(self, texts: dict[str, str]) -> str:
        return (" " * _GAP).join(
            f"{texts.get(c.key, ''):{c.align}{c.width}}"[: c.width] for c in self.columns
        )

    def _fmt_size(self, lots: int) -> str:
        text = self._size_text.get(lots)
        if text is None:
            if len(self._size_text) > 4096:
                self._size_text.clear()
            text = self._size_text[lots] = self.market.instrument.format_size(lots)
        return text

    def _fmt_price(self, ticks: int) -> str:
        text = self._price_text.get(ticks)
        if text is None:
            if len(self._price_text) > 4096:
                self._price_text.clear()
            text = self._price_text[ticks] = self.market.instrument.format_price(ticks)
        return text

    def _row_segments(self, key: tuple, base: Style) -> list[Segment]:
        fmt_size = self._fmt_size
        fmt_price = self._fmt_price
        st = self._style
        is_cursor = key[_K_CURSOR]
        row_style = base + st("cursor") if is_cursor else base
        best = key[_K_BEST]
        price = key[_K_PRICE]
        flash = key[_K_FLASH]

        def ours(size: int, count: int, ahead: int, width: int) -> str:
            if not size:
                return ""
            text = f"{fmt_size(size)} ({count})"
            with_queue = f"{text} q{fmt_size(ahead)}"
            return with_queue if ahead >= 0 and len(with_queue) <= width else text

        widths = {c.key: c.width for c in self.columns}
        bid_style = st("best-bid") if best & _BEST_BID else st("bid")
        ask_style = st("best-ask") if best & _BEST_ASK else st("ask")
        if flash & _FLASH_BID:
            bid_style = bid_style + st("flash")
        if flash & _FLASH_ASK:
            ask_style = ask_style + st("flash")
        cells: dict[str, tuple[str, Style | None]] = {
            "cursor": ("▶" if is_cursor else "", st("cursor-mark")),
            "our_bids": (
                ours(key[_K_BID_OURS], key[_K_BID_N], key[_K_BID_Q], widths.get("our_bids", 0)),
                st("ours") if key[_K_BID_OURS] else None,
            ),
            "bids": (fmt_size(key[_K_BID]) if key[_K_BID] else "", bid_style),
            "asks": (fmt_size(key[_K_ASK]) if key[_K_ASK] else "", ask_style),
            "our_asks": (
                ours(key[_K_ASK_OURS], key[_K_ASK_N], key[_K_ASK_Q], widths.get("our_asks", 0)),
                st("ours") if key[_K_ASK_OURS] else None,
            ),
            "mid": (_MID_TEXT[key[_K_MID]], st("mid")),
            "volume": (fmt_size(key[_K_VOLUME]) if key[_K_VOLUME] else "", st("volume")),
        }
        if key[_K_LAST_SIZE]:
            buy = key[_K_LAST_SIDE] == 1
            cells["last"] = (
                ("▲" if buy else "▼") + fmt_size(key[_K_LAST_SIZE]),
                st("last-buy") if buy else st("last-sell"),
            )
            cells["price"] = (fmt_price(price), st("last-price"))
        else:
            side_style = (
                st("price-bid")
                if key[_K_BID] or key[_K_BID_OURS]
                else (st("price-ask") if key[_K_ASK] or key[_K_ASK_OURS] else st("price"))
            )
            cells["price"] = (fmt_price(price), side_style)
        # Depth bars: (cells, anchored at the right edge?, bar style) per column.
        bars = {
            "bids": (key[_K_BID_BAR], True, "bid-bar"),
            "asks": (key[_K_ASK_BAR], False, "ask-bar"),
            "volume": (key[_K_VOL_BAR], False, "volume-bar"),
        }
        segments: list[Segment] = []
        gap = Segment(" " * _GAP, row_style)
        for n, col in enumerate(self.columns):
            if n:
                segments.append(gap)
            text, style = cells.get(col.key, ("", None))
            text = f"{text:{col.align}{col.width}}"[: col.width] if text else " " * col.width
            # A cell's own background (ours, best bid/ask) wins over the cursor row's.
            cell_style = row_style + style if text.strip() and style is not None else row_style
            bar = bars.get(col.key)
            on_best = (col.key == "bids" and best & _BEST_BID) or (col.key == "asks" and best & _BEST_ASK)
            if bar is not None and bar[0] and not on_best:
                cells_n, right, bar_name = bar
                bar_style = cell_style + st(bar_name)
                cut = col.width - cells_n if right else cells_n
                first, second = text[:cut], text[cut:]
                if right:
                    segments += [Segment(first, cell_style), Segment(second, bar_style)]
                else:
                    segments += [Segment(first, bar_style), Segment(second, cell_style)]
            else:
                segments.append(Segment(text, cell_style))
        # Runs of one style (empty cells and the gaps between them) become one segment: every filter and
        # crop downstream walks segments, so a row of 8 instead of 25 costs a third as much there.
        merged: list[Segment] = []
        for seg in segments:
            if merged and merged[-1].style == seg.style:
                merged[-1] = Segment(merged[-1].text + seg.text, seg.style)
            else:
                merged.append(seg)
        return merged

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
        tpr = self.ticks_per_row
        self.cursor_price = max(tpr, self.cursor_price - self.cursor_price % tpr + rows * tpr)
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

    def set_zoom(self, ticks_per_row: int) -> None:
        """N ticks a row; the cursor's row keeps its place on the screen."""
        if ticks_per_row < 1 or ticks_per_row == self.ticks_per_row:
            return
        old = self.ticks_per_row
        self.ticks_per_row = tpr = ticks_per_row
        self._seen.clear()
        self._flash_until.clear()
        if self.top_price is not None and self.cursor_price is not None:
            row = max(0, (self.top_price - self.cursor_price) // old)
            self.cursor_price = max(tpr, self.cursor_price - self.cursor_price % tpr)
            self.top_price = self.cursor_price + row * tpr
            self._keep_cursor_visible()
            self._note_user_view()
        self._dirty = True
        self.pull()

    def action_zoom(self, direction: int) -> None:
        i = ZOOMS.index(self.ticks_per_row) if self.ticks_per_row in ZOOMS else 0
        self.set_zoom(ZOOMS[max(0, min(len(ZOOMS) - 1, i + direction))])

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
        low = self.cursor_price
        if low is None:
            return None
        tpr = self.ticks_per_row
        if tpr == 1:
            return low
        low -= low % tpr
        high = low + tpr - 1
        levels = self.market.l2.levels_between(side, low, high)
        if levels:
            return levels[-1][0] if side == BUY else levels[0][0]
        return low if side == BUY else high

    def _send(self, side: int, price: int | None = None, action: str = "") -> int | None:
        """Send the default quantity on `side` at `price` (the cursor's row price when None), as priced now:
        the order the trader saw. Above `confirm_above_qty` it asks first and returns None; the answer
        sends exactly the order named in the question."""
        price = self.row_price(side) if price is None else price
        if price is None:
            self.post_message(self.OrderRefused("no market data yet: no price to trade at"))
            return None
        lots = self.order_lots()
        if lots is None:
            return None
        if self._needs_confirmation(lots):
            market = self.market

            def answered(yes: bool | None) -> None:
                if yes:
                    self.kernel.place(market, side, price, lots, source="key", action=action)
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
        oid = self.kernel.place(self.market, side, price, lots, source="key", action=action)
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
        if self.cursor_price is None:
            return None
        tpr = self.ticks_per_row
        low = self.cursor_price - self.cursor_price % tpr
        return low, low + tpr - 1

    def action_cancel_at_cursor(self) -> None:
        row = self._cursor_row()
        if row is None:
            return
        n = self.kernel.cancel_at(self.market, row[0], high=row[1], source="key")
        if not n:
            price = self.market.instrument.format_price(self.cursor_price)
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
        lots = sum(o.leaves for o in live)
        if not self._needs_confirmation(lots):
            self._move(row, ticks)
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
                self._move(row, ticks)
            else:
                self.notify("Not moved.", timeout=2)
                self.pull()

        self.app.push_screen(
            ConfirmOrderScreen(
                summary, self._threshold_text(), note=" ".join(sorted(notes)), title="Large move"
            ),
            answered,
        )

    def _move(self, row: tuple[int, int], ticks: int) -> None:
        moved = self.kernel.move_orders(self.market, row[0], row[1], ticks, source="key")
        if not moved:
            if not self.kernel.orders_between(self.market, row[0], row[1]):
                self.notify("No order of ours at the cursor to move.", severity="warning", timeout=2)
            self.pull()
            return
        target = moved[0].amend_price if moved[0].amend_price is not None else moved[0].price
        tpr = self.ticks_per_row
        self.cursor_price = target - target % tpr if tpr > 1 else target
        self._keep_cursor_visible()
        self._dirty = True
        self.pull()

    def action_flatten(self) -> None:
        """The kernel's flatten verb on this market: cancel our orders here, pause its strategies, and
        close the position with a marketable IOC (risk may refuse it: the rejection is shown)."""
        r = self.kernel.flatten(self.market, source="key")
        inst = self.market.instrument
        done = [f"cancelled {r.cancelled}"] + (["market maker paused"] if r.paused else [])
        if r.side is None:
            self.notify(f"Flat already; {', '.join(done)}.", title="Flatten", timeout=4)
        elif r.order_id is None:
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

"""The price ladder's view model: what every line of a ladder shows, from the market's state, with no Textual.

`PriceLadder` (ladder.py) draws it and owns the keys and the mouse; everything a ladder decides lives here and
is tested without an app: the static price axis and the cursor (a price, see ladder.py), which columns a width
holds, the plain key of every line (ints, flags and short texts, cheap to compare on every UI clock tick) and
the text of every cell.

Lines: the title (market, mode, ticks per row, "market above/below"), the market's shape (spread in ticks and
bps, top-of-book imbalance, microprice, our average entry and position: `engine.analytics`, exact, formatted
here), the column titles, then one line per price row from the top of the axis down.

Optional columns (off by default; `[ui] ladder_columns`, the `d` and `P` keys): CUM, the cumulative size from
the inside market outwards (bids below, asks above), and P&L, what our position would be worth net at that
row's price (realized + unrealized there - fees, in the quote currency: MD Trader's P/L ladder).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING

from lobterm.engine import analytics
from lobterm.engine.events import BUY, SELL
from lobterm.widgets.auto_zoom import AutoZoom

if TYPE_CHECKING:
    from lobterm.engine.instrument import Instrument
    from lobterm.engine.unified import LadderRow
    from lobterm.kernel import Market
    from lobterm.trading.inventory import Position

__all__ = [
    "Column",
    "LadderModel",
    "LADDER_COLUMNS",
    "OPTIONAL_COLUMNS",
    "HEADER_LINES",
    "ZOOMS",
    "bar_cells",
    "nice_scale",
]

HEADER_LINES = 3  # the title line, the market's shape, the column titles

# Mid marks: where the mid sits relative to a row.
MID_NONE, MID_ON, MID_BELOW, MID_ABOVE = 0, 1, 2, 3
MID_TEXT = ("", "◂mid", "▾mid", "▴mid")
ENTRY_MARK = "◆"  # on the price of the row holding our average entry

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
    Column("cum", "CUM", 10),
    Column("pnl", "P&L", 11),
)
#: Columns shown only when switched on (config `[ui] ladder_columns`, keys).
OPTIONAL_COLUMNS = ("cum", "pnl")
#: The five columns a ladder never drops while it is drawn at all.
CORE_COLUMNS = ("our_bids", "bids", "price", "asks", "our_asks")
GAP = 1  # blank cells between columns
# How a ladder narrower than its columns gets by, one step at a time: (columns, new width or 0 = drop).
# Optional columns the trader switched on outlive volume and last; the five core columns are only narrowed.
_FIT_STEPS: tuple[tuple[tuple[str, ...], int], ...] = (
    (("volume",), 0),
    (("last",), 0),
    (("our_bids", "our_asks"), 10),
    (("cum",), 0),
    (("pnl",), 0),
    (("bids", "asks"), 8),
    (("mid",), 0),
    (("our_bids", "our_asks"), 8),
    (("bids", "asks"), 7),
)

# Indices into a row key (a plain tuple, compared with the cached one on every clock tick).
(
    K_KIND,
    K_PRICE,
    K_CURSOR,
    K_BID,
    K_BID_OURS,
    K_BID_N,
    K_ASK,
    K_ASK_OURS,
    K_ASK_N,
    K_BEST,
    K_MID,
    K_LAST_SIZE,
    K_LAST_SIDE,
    K_VOLUME,
    K_BID_Q,
    K_ASK_Q,
    K_BID_BAR,
    K_ASK_BAR,
    K_VOL_BAR,
    K_FLASH,
    K_ENTRY,
    K_CUM,
    K_PNL,
    K_SELECTED,
) = range(24)
BEST_BID, BEST_ASK = 1, 2
FLASH_BID, FLASH_ASK = 1, 2


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


def columns_width(columns: tuple[Column, ...]) -> int:
    return sum(c.width for c in columns) + GAP * (len(columns) - 1)


def fit_columns(
    columns: tuple[Column, ...], width: int, fit_steps: tuple[tuple[tuple[str, ...], int], ...] = _FIT_STEPS
) -> tuple[Column, ...]:
    """The columns `width` cells hold, by `fit_steps` (the five core columns stay, narrowed at worst)."""
    cols = columns
    steps = iter(fit_steps)
    while width and columns_width(cols) > width:
        step = next(steps, None)
        if step is None:
            break
        keys, new = step
        if not new:
            cols = tuple(c for c in cols if c.key not in keys)
        else:
            cols = tuple(
                Column(c.key, c.title if len(c.title) <= new else c.title.split("  ")[0], new, c.align)
                if c.key in keys and c.width > new
                else c
                for c in cols
            )
    return cols


class LadderModel:
    """One market's ladder view: the axis, the cursor, the columns and the key of every line.

    `queue_ahead(order_id)` is the kernel's queue estimate (None: the venue cannot tell); `position()` our
    position in this market (None: none yet)."""

    #: How a ladder narrower than its columns gets by (a consolidated ladder has its own columns).
    fit_steps: tuple[tuple[tuple[str, ...], int], ...] = _FIT_STEPS

    def __init__(
        self,
        market: Market,
        *,
        queue_ahead: Callable[[int], int | None],
        position: Callable[[], Position | None],
        ticks_per_row: int = 1,
        columns: tuple[Column, ...] = LADDER_COLUMNS,
        optional: tuple[str, ...] = (),
        auto_recenter: bool = True,
        flash_s: float = 0.3,
        auto_zoom: bool = False,
    ) -> None:
        self.market = market
        self.queue_ahead = queue_ahead
        self.position = position
        self.ticks_per_row = ticks_per_row
        #: `[ui] ticks_per_row = "auto"` (auto_zoom.py): measuring until it chooses (no cursor until then);
        #: `zoom_auto` says the zoom shown is the one it chose (until a key changes it).
        self.auto_zoom: AutoZoom | None = AutoZoom(ZOOMS) if auto_zoom else None
        self.zoom_auto = False
        self.zoom_measure: AutoZoom | None = None  # what the auto zoom chose from, once it chose
        self.optional = {c for c in optional if c in OPTIONAL_COLUMNS}
        self._all_columns = columns  # every column, the price one fitted to the market's prices
        self.base_columns = self._enabled(columns)
        self.columns = self.base_columns  # what the width holds
        self.row_length = columns_width(self.columns)  # cells a price row takes
        self.width = 0
        self.height = 0
        self.top_price: int | None = None  # price (ticks) of the first price row: the static axis
        self.cursor_price: int | None = None
        self.selected_price: int | None = None  # the row of ours the mouse picked up to move
        # Recenter by itself when the market moves out of the window (never when the trader scrolled
        # away: the axis does not fight the keyboard).
        self.auto_recenter = auto_recenter
        self.auto_recenters = 0
        self.edge_rows = 3  # auto-recenter when the inside market comes this close to the top or bottom
        self.market_was_visible = False
        self.flash_s = flash_s  # how long a changed size stays highlighted (0: never)
        self._seen: dict[int, tuple[int, int]] = {}  # row price -> (bid total, ask total) last frame
        self._flash_until: dict[tuple[int, int], float] = {}  # (row price, side) -> monotonic deadline
        self.next_flash_end = float("inf")
        # Decimal formatting is the dearest part of a row; a ladder shows the same few hundred sizes and
        # prices over and over, so their texts are kept (bounded).
        self._size_text: dict[int, str] = {}
        self._price_text: dict[int, str] = {}
        self._pnl_text: dict[tuple[int, int], str] = {}  # (position version, row price) -> text
        self._stats: tuple[tuple[int, int, int], str] | None = (
            None  # ((book, trade, position) versions, text)
        )

    # ---- geometry ----------------------------------------------------------------------------
    @property
    def price_rows(self) -> int:
        return max(0, self.height - HEADER_LINES)

    def row_of(self, price: int) -> int | None:
        """The line (y) of a price, or None when it is off screen."""
        if self.top_price is None:
            return None
        i = (self.top_price - price) // self.ticks_per_row
        return HEADER_LINES + i if 0 <= i < self.price_rows else None

    def price_at(self, y: int) -> int | None:
        """The lowest price of the row drawn on line `y` (None: a header line or no axis yet)."""
        if self.top_price is None or not HEADER_LINES <= y < HEADER_LINES + self.price_rows:
            return None
        tpr = self.ticks_per_row
        price = self.top_price - self.top_price % tpr - (y - HEADER_LINES) * tpr
        return price if price >= 1 else None

    def column_at(self, x: int) -> str | None:
        """The key of the column drawn at cell `x` (None: a gap or past the last column)."""
        left = 0
        for col in self.columns:
            if left <= x < left + col.width:
                return col.key
            left += col.width + GAP
        return None

    def column_x(self, key: str) -> int | None:
        """The first cell of column `key` (None: not drawn at this width)."""
        left = 0
        for col in self.columns:
            if col.key == key:
                return left
            left += col.width + GAP
        return None

    @property
    def full_width(self) -> int:
        """Cells for every enabled column at full width."""
        return columns_width(self.base_columns)

    def fit_widths(self) -> list[int]:
        """The ladder's width at each fitting step while it still shows the mid mark and sizes of 8 cells
        (the widest first): the widths a layout may give it, from comfortable to just readable."""
        widths = [columns_width(self.base_columns)]
        cols = self.base_columns
        for keys, new in self.fit_steps:
            if keys == ("mid",):
                break
            if not new:
                cols = tuple(c for c in cols if c.key not in keys)
            else:
                cols = tuple(
                    Column(c.key, c.title, min(c.width, new), c.align) if c.key in keys else c for c in cols
                )
            width = columns_width(cols)
            if width < widths[-1]:
                widths.append(width)
        return widths

    def _enabled(self, columns: tuple[Column, ...]) -> tuple[Column, ...]:
        return tuple(c for c in columns if c.key not in OPTIONAL_COLUMNS or c.key in self.optional)

    def set_optional(self, key: str, on: bool) -> None:
        """Show or hide an optional column (CUM, P&L)."""
        if key not in OPTIONAL_COLUMNS:
            raise KeyError(f"no optional column {key!r} (optional: {', '.join(OPTIONAL_COLUMNS)})")
        if on:
            self.optional.add(key)
        else:
            self.optional.discard(key)
        self.base_columns = self._enabled(self._all_columns)
        self.refit()

    def resize(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.refit()
        if self.cursor_price is not None:
            self.keep_cursor_visible()

    def refit(self) -> bool:
        """Choose the columns the current width holds; True when they changed."""
        cols = fit_columns(self.base_columns, self.width, self.fit_steps)
        if cols == self.columns:
            return False
        self.columns = cols
        self.row_length = columns_width(cols)
        return True

    def fit_price_column(self) -> bool:
        """Widen the price column to the instrument's prices near the axis; True when it changed."""
        if self.top_price is None:
            return False
        width = max(len(self.market.instrument.format_price(self.top_price * 10)), 5) + 1
        cols = tuple(
            Column(c.key, c.title, width, c.align) if c.key == "price" else c for c in self._all_columns
        )
        if cols == self._all_columns:
            return False
        self._all_columns = cols
        self.base_columns = self._enabled(cols)
        self.refit()
        return True

    # ---- the axis and the cursor --------------------------------------------------------------
    def inside_price(self) -> int | None:
        center = self.market.unified.center_price()
        if center is None and self.market.last_trade is not None:
            center = self.market.last_trade.price
        return center

    def place_axis(self, *, keep_cursor: bool = False) -> bool:
        """Put the inside market (or the last trade) in the middle; False when there is none yet.

        `keep_cursor` (auto-recenter, which no key asked for): the cursor keeps its price, so the axis moves
        only as far as keeps that price on screen (at worst on the first or last row). Otherwise (the first
        axis, the trader's recenter key) a cursor that would leave the window goes to the inside market."""
        center = self.inside_price()
        if center is None or self.price_rows == 0:
            return False
        tpr = self.ticks_per_row
        center -= center % tpr
        top = center + (self.price_rows // 2) * tpr
        if keep_cursor and self.cursor_price is not None:
            cursor_row = self.cursor_price - self.cursor_price % tpr
            top = min(max(top, cursor_row), cursor_row + (self.price_rows - 1) * tpr)
        self.top_price = top
        # While an auto zoom measures, the cursor waits for the zoom (so that the zoom does not move it).
        if self.auto_zoom is None and (self.cursor_price is None or self.row_of(self.cursor_price) is None):
            self.cursor_price = center
        self.fit_price_column()
        self.market_was_visible = True
        return True

    def market_visible(self) -> bool:
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

    def follow_market(self, now: float = 0.0) -> None:
        """Auto-recenter after the market changed (see ladder.py): the axis moves, the cursor's price not.
        `now` (UI seconds) lets an auto zoom that waits for a still venue clock give up."""
        if self.auto_zoom is not None:
            if self.cursor_price is not None:  # the trader placed the cursor (Home, a click): their zoom
                self.auto_zoom = None
                return
            tpr = self.auto_zoom.observe(self.market, self.price_rows, now)
            if tpr is not None:
                self.choose_zoom(tpr, auto=True)
            elif self.top_price is None or (self.auto_recenter and not self.market_visible()):
                self.place_axis()  # the book at the current zoom meanwhile, centred, no cursor
            return
        if self.top_price is None:
            self.place_axis()
            return
        if not self.auto_recenter:
            return
        visible = self.market_visible()
        if not visible and self.market_was_visible:
            top = self.top_price
            self.place_axis(keep_cursor=True)
            self.auto_recenters += self.top_price != top
            visible = self.market_visible()  # False: the cursor's price held the axis back; wait
        self.market_was_visible = visible

    def note_user_view(self) -> None:
        """The trader moved the view: remember whether the market is in it now."""
        self.market_was_visible = self.market_visible()

    def keep_cursor_visible(self) -> None:
        if self.top_price is None or self.cursor_price is None:
            return
        tpr = self.ticks_per_row
        rows = max(1, self.price_rows)
        if self.cursor_price > self.top_price:
            self.top_price = self.cursor_price
        elif self.cursor_price < self.top_price - (rows - 1) * tpr:
            self.top_price = self.cursor_price + (rows - 1) * tpr

    def move_cursor(self, rows: int) -> None:
        if self.cursor_price is None:
            return
        tpr = self.ticks_per_row
        self.cursor_price = max(tpr, self.cursor_price - self.cursor_price % tpr + rows * tpr)
        self.keep_cursor_visible()
        self.note_user_view()

    def set_cursor(self, price: int) -> None:
        tpr = self.ticks_per_row
        self.cursor_price = max(tpr, price - price % tpr)
        self.keep_cursor_visible()

    def page(self, direction: int) -> None:
        """Move the axis and the cursor a page, so the cursor stays on its screen row."""
        if self.top_price is None or self.cursor_price is None:
            return
        step = max(1, self.price_rows - 1) * self.ticks_per_row * direction
        step = max(step, self.ticks_per_row - self.cursor_price)  # never below the first tick
        self.top_price += step
        self.cursor_price += step
        self.note_user_view()

    def scroll(self, rows: int) -> None:
        """Move the axis `rows` up (+) or down (the mouse wheel); the cursor keeps its price while it is on
        screen, else it stays on the edge row it would leave by."""
        if self.top_price is None:
            return
        tpr = self.ticks_per_row
        self.top_price = max(tpr * self.price_rows, self.top_price + rows * tpr)
        if self.cursor_price is not None and self.row_of(self.cursor_price) is None:
            bottom = self.top_price - (max(1, self.price_rows) - 1) * tpr
            self.cursor_price = max(bottom, min(self.cursor_price, self.top_price))
            self.cursor_price -= self.cursor_price % tpr
        self.note_user_view()

    def cursor_inside(self) -> bool:
        inside = self.inside_price()
        if inside is None:
            return False
        if self.row_of(inside) is None:
            self.place_axis()
        self.cursor_price = inside - inside % self.ticks_per_row
        return True

    def choose_zoom(self, ticks_per_row: int, *, auto: bool = False) -> None:
        """End an auto zoom's measuring with `ticks_per_row` (its choice, or the trader's z/Z): the axis at
        that zoom around the inside market and the cursor placed there for the first time."""
        if auto:
            self.zoom_measure = self.auto_zoom
        self.auto_zoom = None
        self.zoom_auto = auto
        if ticks_per_row != self.ticks_per_row:
            self.ticks_per_row = ticks_per_row
            self._seen.clear()
            self._flash_until.clear()
        if self.cursor_price is None:
            self.place_axis()

    def set_zoom(self, ticks_per_row: int) -> bool:
        """N ticks a row; the cursor's row keeps its place on the screen. False when nothing changed."""
        if ticks_per_row < 1:
            return False
        if self.auto_zoom is not None:  # a key during the measuring: the trader's zoom, now
            self.choose_zoom(ticks_per_row)
            return True
        if ticks_per_row == self.ticks_per_row:
            return False
        self.zoom_auto = False
        old = self.ticks_per_row
        self.ticks_per_row = tpr = ticks_per_row
        self._seen.clear()
        self._flash_until.clear()
        self.selected_price = None
        if self.top_price is not None and self.cursor_price is not None:
            row = max(0, (self.top_price - self.cursor_price) // old)
            self.cursor_price = max(tpr, self.cursor_price - self.cursor_price % tpr)
            self.top_price = self.cursor_price + row * tpr
            self.keep_cursor_visible()
            self.note_user_view()
        return True

    def row_span(self, price: int) -> tuple[int, int]:
        """The prices [low, high] of the row holding `price` (one tick, or a zoomed row's ticks)."""
        tpr = self.ticks_per_row
        low = price - price % tpr
        return low, low + tpr - 1

    def order_price(self, side: int, price: int) -> int:
        """The price an order on `side` in the row of `price` goes to: the row's best price for the side (a buy
        joins the row's highest bid, a sell its lowest ask), else its most passive tick."""
        if self.ticks_per_row == 1:
            return price
        low, high = self.row_span(price)
        levels = self.market.l2.levels_between(side, low, high)
        if levels:
            return levels[-1][0] if side == BUY else levels[0][0]
        return low if side == BUY else high

    # ---- line keys ---------------------------------------------------------------------------
    def line_keys(self, now: float, title: tuple) -> list[tuple | None]:
        """The key of every line: `title` (the widget's, it knows focus and key names), the market's shape,
        the column titles, the price rows."""
        height = self.height
        keys: list[tuple | None] = [None] * height
        if height == 0:
            return keys
        keys[0] = title
        if height > 1:
            keys[1] = ("stats", self.stats_text())
        if height > 2:
            keys[2] = ("header", self.columns)
        if self.top_price is None:
            return keys
        m = self.market
        unified = m.unified
        bb = unified.best_bid()
        ba = unified.best_ask()
        bid_px = bb[0] if bb else None
        ask_px = ba[0] if ba else None
        tpr = self.ticks_per_row
        rows = unified.ladder_rows(self.top_price, self.price_rows, tpr)
        last = m.last_trade
        vap = m.volume_at_price
        mid2 = bid_px + ask_px if bid_px is not None and ask_px is not None else None
        cursor = self.cursor_price
        selected = self.selected_price
        widths = {c.key: c.width for c in self.columns}
        # Depth bars share one scale per side pair, rounded to a 1-2-5 step so that it rarely moves.
        depth_scale = nice_scale(max((max(r.bid_total, r.ask_total) for r in rows), default=0))
        volumes = [
            vap.get(r.price, 0) if tpr == 1 else sum(vap.get(q, 0) for q in range(r.price, r.price + tpr))
            for r in rows
        ]
        volume_scale = nice_scale(max(volumes, default=0))
        bid_w, ask_w, vol_w = widths.get("bids", 0), widths.get("asks", 0), widths.get("volume", 0)
        queue_bids = widths.get("our_bids", 0) > 12
        queue_asks = widths.get("our_asks", 0) > 12
        pos = self.position()
        entry = None
        if pos is not None and pos.avg_cost is not None:
            entry = int(pos.avg_cost)  # floor: the row holding the average entry
        cums = _cumulative(rows, tpr, bid_px, ask_px) if "cum" in widths else None
        pnl_on = "pnl" in widths and pos is not None and pos.fills > 0
        flash_s = self.flash_s
        seen, flash_until = self._seen, self._flash_until
        new_seen: dict[int, tuple[int, int]] = {}
        next_end = float("inf")
        for i, row in enumerate(rows):
            p = row.price
            hi = p + tpr - 1
            best = (BEST_BID if bid_px is not None and p <= bid_px <= hi else 0) | (
                BEST_ASK if ask_px is not None and p <= ask_px <= hi else 0
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
                for side, bit in ((BUY, FLASH_BID), (SELL, FLASH_ASK)):
                    until = flash_until.get((p, side))
                    if until is not None:
                        if until > now:
                            flash |= bit
                            next_end = min(next_end, until)
                        else:
                            del flash_until[(p, side)]
                new_seen[p] = totals
            bid_q = self._queue(BUY, p, hi) if row.bid_ours and queue_bids else -1
            ask_q = self._queue(SELL, p, hi) if row.ask_ours and queue_asks else -1
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
                entry is not None and p <= entry <= hi,
                0 if cums is None else cums[i],
                self._pnl_at(pos, p) if pnl_on else "",
                selected is not None and p <= selected <= hi,
            )
        if flash_s > 0:
            self._seen = new_seen
            if len(flash_until) > 4 * max(1, len(rows)):  # rows that scrolled away while lit
                self._flash_until = {k: v for k, v in flash_until.items() if v > now}
        self.next_flash_end = next_end
        return keys

    def _queue(self, side: int, low: int, high: int) -> int:
        """Lots ahead of our best-placed order on `side` in the row (-1: the venue cannot tell)."""
        unified = self.market.unified
        prices = range(high, low - 1, -1) if side == BUY else range(low, high + 1)
        for price in prices:
            ids = unified.our_orders_at(price, side)
            if ids:
                ahead = self.queue_ahead(ids[0])
                return -1 if ahead is None else ahead
        return -1

    def _pnl_at(self, pos: Position | None, price: int) -> str:
        """Our net P&L were the market at `price` (the row's lowest tick), in the quote currency."""
        if pos is None:
            return ""
        key = (pos.version, price)
        text = self._pnl_text.get(key)
        if text is None:
            if len(self._pnl_text) > 4096:
                self._pnl_text.clear()
            net = pos.pnl(price).in_quote(self.market.instrument, 2).net
            text = self._pnl_text[key] = f"{net:+,.2f}"
        return text

    def stats_text(self) -> str:
        """The market's shape: spread (ticks, bps), imbalance of the top level, microprice; our position and
        average entry when we have one. Recomputed only when the book, a trade or our position changed."""
        m = self.market
        pos = self.position()
        versions = (m.unified.version, m.trade_version, -1 if pos is None else pos.version)
        if self._stats is not None and self._stats[0] == versions:
            return self._stats[1]
        inst = m.instrument
        book = m.unified
        parts = []
        spread = analytics.spread_ticks(book)
        if spread is None:
            parts.append("spread -")
        else:
            bps = analytics.spread_bps(book)
            parts.append(f"spread {spread}t {float(bps):.2f}bps" if bps is not None else f"spread {spread}t")
        imb = analytics.imbalance(book)
        if imb is not None:
            parts.append(f"imb {float(imb):+.2f}")
        micro = analytics.microprice(book)
        if micro is not None:
            parts.append(f"micro {fraction_price(inst, micro)}")
        if pos is not None and pos.avg_cost is not None and pos.lots:
            entry = fraction_price(inst, pos.avg_cost)
            parts.append(f"{ENTRY_MARK}entry {entry} pos {inst.format_size(pos.lots)}")
        text = "  ".join(parts)
        self._stats = (versions, text)
        return text

    # ---- cells -------------------------------------------------------------------------------
    def fmt_size(self, lots: int) -> str:
        text = self._size_text.get(lots)
        if text is None:
            if len(self._size_text) > 4096:
                self._size_text.clear()
            text = self._size_text[lots] = self.market.instrument.format_size(lots)
        return text

    def fmt_price(self, ticks: int) -> str:
        text = self._price_text.get(ticks)
        if text is None:
            if len(self._price_text) > 4096:
                self._price_text.clear()
            text = self._price_text[ticks] = self.market.instrument.format_price(ticks)
        return text

    def header_text(self) -> str:
        return (" " * GAP).join(f"{c.title:{c.align}{c.width}}"[: c.width] for c in self.columns)

    def row_runs(self, key: tuple) -> list[tuple[str, str]]:
        """A price row as runs of (text, style names), in column order, each cell padded to its column, neighbours
        of one style joined (the gaps between cells take the row's own style, ""). Every filter and crop
        downstream walks segments, so a row of 8 runs instead of 25 costs a third as much there. One pass, no
        dicts: this runs for every changed row of every frame."""
        fmt_size = self.fmt_size
        best = key[K_BEST]
        flash = key[K_FLASH]
        texts: list[str] = []
        names: list[str] = []
        gap = " " * GAP
        for col in self.columns:
            k = col.key
            width = col.width
            text = ""
            style = ""
            bar = 0
            bar_right = False
            bar_name = ""
            if k == "bids":
                if key[K_BID]:
                    text = fmt_size(key[K_BID])
                    style = "best-bid" if best & BEST_BID else ("bid flash" if flash & FLASH_BID else "bid")
                    if style == "best-bid" and flash & FLASH_BID:
                        style = "best-bid flash"
                if key[K_BID_BAR] and not best & BEST_BID:
                    bar, bar_right, bar_name = key[K_BID_BAR], True, "bid-bar"
            elif k == "asks":
                if key[K_ASK]:
                    text = fmt_size(key[K_ASK])
                    style = "best-ask" if best & BEST_ASK else ("ask flash" if flash & FLASH_ASK else "ask")
                    if style == "best-ask" and flash & FLASH_ASK:
                        style = "best-ask flash"
                if key[K_ASK_BAR] and not best & BEST_ASK:
                    bar, bar_right, bar_name = key[K_ASK_BAR], False, "ask-bar"
            elif k == "price":
                text = self.fmt_price(key[K_PRICE])
                if key[K_LAST_SIZE]:
                    style = "last-price"
                elif key[K_BID] or key[K_BID_OURS]:
                    style = "price-bid"
                elif key[K_ASK] or key[K_ASK_OURS]:
                    style = "price-ask"
                else:
                    style = "price"
                if key[K_ENTRY]:
                    text = ENTRY_MARK + text.rjust(width - 1)
                    style += " entry"
            elif k == "our_bids":
                text, style = _ours(
                    fmt_size, key[K_BID_OURS], key[K_BID_N], key[K_BID_Q], width, key[K_SELECTED]
                )
            elif k == "our_asks":
                text, style = _ours(
                    fmt_size, key[K_ASK_OURS], key[K_ASK_N], key[K_ASK_Q], width, key[K_SELECTED]
                )
            elif k == "cursor":
                if key[K_CURSOR]:
                    text, style = "▶", "cursor-mark"
            elif k == "mid":
                if key[K_MID]:
                    text, style = MID_TEXT[key[K_MID]], "mid"
            elif k == "last":
                if key[K_LAST_SIZE]:
                    buy = key[K_LAST_SIDE] == 1
                    text = ("▲" if buy else "▼") + fmt_size(key[K_LAST_SIZE])
                    style = "last-buy" if buy else "last-sell"
            elif k == "volume":
                if key[K_VOLUME]:
                    text, style = fmt_size(key[K_VOLUME]), "volume"
                if key[K_VOL_BAR]:
                    bar, bar_name = key[K_VOL_BAR], "volume-bar"
            elif k == "cum":
                cum = key[K_CUM]
                if cum:
                    text, style = fmt_size(abs(cum)), ("bid" if cum < 0 else "ask")
            elif k == "pnl":
                text = key[K_PNL]
                if text:
                    style = "pnl-down" if text[0] == "-" else "pnl-up"
            if text:
                text = (text.rjust(width) if col.align == ">" else text.ljust(width))[:width]
            else:
                text = " " * width
            if texts:  # the gap before the cell
                if names[-1] == "":
                    texts[-1] += gap
                else:
                    texts.append(gap)
                    names.append("")
            if bar:
                bar_style = f"{style} {bar_name}" if style else bar_name
                cut = width - bar if bar_right else bar
                if bar_right:
                    parts: tuple[tuple[str, str], ...] = ((text[:cut], style), (text[cut:], bar_style))
                else:
                    parts = ((text[:cut], bar_style), (text[cut:], style))
            else:
                parts = ((text, style),)
            for part, part_style in parts:
                if not part:
                    continue
                if names and names[-1] == part_style:
                    texts[-1] += part
                else:
                    texts.append(part)
                    names.append(part_style)
        return list(zip(texts, names, strict=True))


def _cumulative(rows: list[LadderRow], tpr: int, bid_px: int | None, ask_px: int | None) -> list[int]:
    """Per row, the size from the inside market out to it: asks (positive) summed upwards from the best ask,
    bids (negative) downwards from the best bid; 0 between them."""
    out = [0] * len(rows)
    if ask_px is not None:
        total = 0
        for i in range(len(rows) - 1, -1, -1):
            row = rows[i]
            if row.price + tpr - 1 >= ask_px:
                total += row.ask_total
                out[i] = total
    if bid_px is not None:
        total = 0
        for i, row in enumerate(rows):
            if row.price <= bid_px:
                total += row.bid_total
                out[i] = -total
    return out


def _ours(
    fmt_size: Callable[[int], str], size: int, count: int, ahead: int, width: int, selected: bool
) -> tuple[str, str]:
    if not size:
        return ("", "")
    text = f"{fmt_size(size)} ({count})"
    with_queue = f"{text} q{fmt_size(ahead)}"
    text = with_queue if ahead >= 0 and len(with_queue) <= width else text
    return (text, "ours selected" if selected else "ours")


def fraction_price(inst: Instrument, price: Fraction) -> str:
    """A price that is a Fraction of ticks (microprice, average entry) to a tenth of a tick: exact ticks to
    Decimal at the edge, rounded half-even, one more decimal place than the tick only when it is needed."""
    tenths = round(price * 10)
    value = Decimal(tenths) * inst.tick_size / 10
    places = max(0, -int(inst.tick_size.normalize().as_tuple().exponent)) + (0 if tenths % 10 == 0 else 1)
    return f"{value:.{places}f}"

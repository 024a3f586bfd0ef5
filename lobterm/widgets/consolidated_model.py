"""The consolidated ladder's view model: several venues' books for one instrument on one static price axis,
with no Textual.

It draws a `ConsolidatedMarket` (consolidated_book.py: the venues' books on a common price grid, with the
shape of a kernel `Market` as far as `LadderModel` reads one), so the consolidated ladder keeps every rule of
the ladder: the static axis, the cursor that only the trader moves, zoom, flashes, the optional columns.

`ConsolidatedModel` adds a size column per venue on each side (`BID A`, `BID B`, ... with a depth bar on
one scale, each venue's own best bid and ask highlighted in its column: the hedge venue's touch is there on
the quote venue's axis), our orders on every venue in the OUR columns tagged with the venue's label, and
the TARGET venue: where the order keys go. Its prices (`order_price`, `row_span`) are in the target venue's
ticks; everything drawn is in grid ticks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from lobterm.engine.events import BUY
from lobterm.widgets.consolidated_book import (
    ConsolidatedMarket,
    GridError,
    consolidated_groups,
    grid_of,
    venue_labels,
)
from lobterm.widgets.ladder_model import (
    _FIT_STEPS,
    BEST_ASK,
    BEST_BID,
    ENTRY_MARK,
    FLASH_ASK,
    FLASH_BID,
    GAP,
    HEADER_LINES,
    K_ASK,
    K_ASK_OURS,
    K_BID,
    K_BID_OURS,
    K_CUM,
    K_CURSOR,
    K_ENTRY,
    K_FLASH,
    K_LAST_SIDE,
    K_LAST_SIZE,
    K_MID,
    K_PNL,
    K_PRICE,
    K_SELECTED,
    K_VOL_BAR,
    K_VOLUME,
    LADDER_COLUMNS,
    MID_TEXT,
    Column,
    LadderModel,
    bar_cells,
    nice_scale,
)

if TYPE_CHECKING:
    from lobterm.kernel import Market
    from lobterm.trading.inventory import Position

__all__ = [
    "ConsolidatedMarket",
    "ConsolidatedModel",
    "GridError",
    "consolidated_groups",
    "grid_of",
    "venue_labels",
]

VENUE_SIZE_WIDTH = 8  # a venue's size column (narrowed to 7 when short of room)
K_VENUES = 24  # index of the per-venue tuple in a consolidated row key (after the ladder's 24 fields)
# Per venue, in the per-venue tuple: others' bid, others' ask, our bid, our ask, best flags, bid bar, ask bar.
V_BID, V_ASK, V_BID_OURS, V_ASK_OURS, V_BEST, V_BID_BAR, V_ASK_BAR = range(7)


def consolidated_columns(labels: Sequence[str]) -> tuple[Column, ...]:
    """The ladder's columns with BIDS and ASKS split into one column per venue."""
    out: list[Column] = []
    for c in LADDER_COLUMNS:
        if c.key == "bids":
            out.extend(Column(f"bids:{i}", f"BID {lb}", VENUE_SIZE_WIDTH) for i, lb in enumerate(labels))
        elif c.key == "asks":
            out.extend(Column(f"asks:{i}", f"ASK {lb}", VENUE_SIZE_WIDTH, "<") for i, lb in enumerate(labels))
        elif c.key in ("our_bids", "our_asks"):
            out.append(Column(c.key, c.title.split("  ")[0], c.width, c.align))
        else:
            out.append(c)
    return tuple(out)


def _fit_steps(n: int) -> tuple[tuple[tuple[str, ...], int], ...]:
    sizes = tuple(f"bids:{i}" for i in range(n)) + tuple(f"asks:{i}" for i in range(n))
    steps = []
    for keys, new in _FIT_STEPS:
        if keys == ("bids", "asks"):
            if new == 8:
                continue  # they start at 8
            keys = sizes
        steps.append((keys, new))
    return (*steps, (sizes, 6))


class ConsolidatedModel(LadderModel):
    """A ladder view over a `ConsolidatedMarket`: per-venue size columns, our orders by venue, a target venue."""

    def __init__(
        self,
        market: ConsolidatedMarket,
        *,
        target: int = 0,
        roles: Sequence[str] = (),
        position: Callable[[], Position | None] | None = None,
        ticks_per_row: int = 1,
        optional: tuple[str, ...] = (),
        auto_recenter: bool = True,
        flash_s: float = 0.3,
        auto_zoom: bool = False,
    ) -> None:
        self.consolidated = market
        self.target = target
        #: Each venue's role ("quote", "hedge" or ""), shown in the legend.
        self.roles = list(roles) + [""] * (len(market.markets) - len(roles))
        self.fit_steps = _fit_steps(len(market.markets))
        self._plan: list[tuple[str, int, int, bool]] = []
        self._plan_columns: tuple[Column, ...] | None = None
        self._cells: dict[tuple, tuple[tuple[str, str], ...]] = {}  # a cell's parts by what it shows
        super().__init__(
            market,  # type: ignore[arg-type]  # the shape of a Market where a ladder model reads one
            queue_ahead=lambda _order_id: None,
            position=position or self.target_position_none,
            ticks_per_row=ticks_per_row,
            columns=consolidated_columns(market.labels),
            optional=optional,
            auto_recenter=auto_recenter,
            flash_s=flash_s,
            auto_zoom=auto_zoom,
        )

    @staticmethod
    def target_position_none() -> Position | None:
        return None

    # ---- the target venue --------------------------------------------------------------------------
    @property
    def target_market(self) -> Market:
        return self.consolidated.markets[self.target]

    def cycle_target(self, step: int = 1) -> Market:
        self.target = (self.target + step) % len(self.consolidated.markets)
        return self.target_market

    def legend(self) -> str:
        """Who each label is: "A simA quote  B simB hedge"."""
        c = self.consolidated
        return "  ".join(
            f"{lb} {m.venue}{' ' + role if role else ''}"
            for lb, m, role in zip(c.labels, c.markets, self.roles, strict=True)
        )

    # ---- prices on the target venue ----------------------------------------------------------------
    def row_span(self, price: int) -> tuple[int, int]:
        """The target venue's prices [low, high] of the grid row holding `price`."""
        low, high = super().row_span(price)
        r = self.consolidated.tick_ratios[self.target]
        return low * r, high * r + r - 1

    def order_price(self, side: int, price: int) -> int:
        """The target venue's price for an order on `side` in the grid row of `price`: the row's best price
        for the side on that venue (joining it), else its most passive tick (as a zoomed ladder row)."""
        low, high = self.row_span(price)
        if low == high:
            return low
        levels = self.target_market.l2.levels_between(side, low, high)
        if levels:
            return levels[-1][0] if side == BUY else levels[0][0]
        return low if side == BUY else high

    def grid_price(self, venue_price: int) -> int:
        """A target venue price on the grid (the row holding it)."""
        return venue_price // self.consolidated.tick_ratios[self.target]

    # ---- line keys ---------------------------------------------------------------------------------
    def line_keys(self, now: float, title: tuple) -> list[tuple | None]:
        self.consolidated.venue_rows = []  # filled by the window's rows, if this call reads them
        keys = super().line_keys(now, title)
        per_venue = self.consolidated.venue_rows
        if self.top_price is None or not per_venue:
            return keys
        widths = {c.key: c.width for c in self.columns}
        tpr = self.ticks_per_row
        scale = nice_scale(
            max((max(r.bid_others, r.ask_others) for v in per_venue for r in v.rows), default=0)
        )
        n = len(per_venue)
        bar_w = [(widths.get(f"bids:{i}", 0), widths.get(f"asks:{i}", 0)) for i in range(n)]
        for k in range(min(len(v.rows) for v in per_venue)):
            y = k + HEADER_LINES
            if y >= len(keys):
                break
            key = keys[y]
            if key is None:
                continue
            cells = []
            for i, v in enumerate(per_venue):
                row = v.rows[k]
                p = row.price
                hi = p + tpr - 1
                best = (BEST_BID if v.best_bid is not None and p <= v.best_bid <= hi else 0) | (
                    BEST_ASK if v.best_ask is not None and p <= v.best_ask <= hi else 0
                )
                cells.append(
                    (
                        row.bid_others,
                        row.ask_others,
                        row.bid_ours,
                        row.ask_ours,
                        best,
                        bar_cells(row.bid_others, scale, bar_w[i][0]),
                        bar_cells(row.ask_others, scale, bar_w[i][1]),
                    )
                )
            keys[y] = (*key, (self.target, tuple(cells)))
        return keys

    # ---- cells -------------------------------------------------------------------------------------
    def _column_plan(self) -> list[tuple[str, int, int, bool]]:
        """Per column drawn: (kind, venue index, width, right-aligned), rebuilt when the columns change."""
        if self._plan_columns is not self.columns:
            plan = []
            for col in self.columns:
                k = col.key
                i = int(k[5:]) if k.startswith(("bids:", "asks:")) else -1
                plan.append((k[:4] if i >= 0 else k, i, col.width, col.align == ">"))
            self._plan = plan
            self._plan_columns = self.columns
            self._cells.clear()  # keyed by the plan's column numbers
        return self._plan

    def row_runs(self, key: tuple) -> list[tuple[str, str]]:
        """A consolidated price row as runs of (text, style names), as `LadderModel.row_runs`: style names joined
        with their neighbours. Each cell's parts are kept by what they show (a venue's size cell by its size,
        best mark, flash and bar): most cells of a changed row did not change, and formatting them again was
        two thirds of a row's cost (profiled, three venues at 10,000 deltas/s)."""
        if len(key) <= K_VENUES:
            return super().row_runs(key)
        venues = key[K_VENUES][1]
        flash = key[K_FLASH]
        cache = self._cells
        if len(cache) > 16384:
            cache.clear()
        texts: list[str] = []
        names: list[str] = []
        gap = " " * GAP
        for n, (kind, i, _width, _right) in enumerate(self._column_plan()):
            if i >= 0:
                cell = venues[i]
                if kind == "bids":
                    ck: tuple = (n, cell[V_BID], cell[V_BEST] & BEST_BID, flash & FLASH_BID, cell[V_BID_BAR])
                else:
                    ck = (n, cell[V_ASK], cell[V_BEST] & BEST_ASK, flash & FLASH_ASK, cell[V_ASK_BAR])
            elif kind == "our_bids":
                ck = (n, key[K_BID_OURS] and tuple(c[V_BID_OURS] for c in venues), key[K_SELECTED])
            elif kind == "our_asks":
                ck = (n, key[K_ASK_OURS] and tuple(c[V_ASK_OURS] for c in venues), key[K_SELECTED])
            elif kind == "price":
                ck = (
                    n,
                    key[K_PRICE],
                    key[K_LAST_SIZE] > 0,
                    key[K_BID] or key[K_BID_OURS],
                    key[K_ASK] or key[K_ASK_OURS],
                    key[K_ENTRY],
                )
            elif kind == "cursor":
                ck = (n, key[K_CURSOR])
            elif kind == "mid":
                ck = (n, key[K_MID])
            elif kind == "last":
                ck = (n, key[K_LAST_SIZE], key[K_LAST_SIDE])
            elif kind == "volume":
                ck = (n, key[K_VOLUME], key[K_VOL_BAR])
            elif kind == "cum":
                ck = (n, key[K_CUM])
            else:
                ck = (n, key[K_PNL])
            parts = cache.get(ck)
            if parts is None:
                parts = cache[ck] = self._cell_parts(n, ck)
            if texts:  # the gap before the cell
                if names[-1] == "":
                    texts[-1] += gap
                else:
                    texts.append(gap)
                    names.append("")
            for part, part_style in parts:
                if names and names[-1] == part_style:
                    texts[-1] += part
                else:
                    texts.append(part)
                    names.append(part_style)
        return list(zip(texts, names, strict=True))

    def _cell_parts(self, n: int, ck: tuple) -> tuple[tuple[str, str], ...]:
        """The parts (text, style names) of cell `n` of the column plan, from its cache key `ck`."""
        kind, i, width, right = self._column_plan()[n]
        fmt_size = self.fmt_size
        text = style = ""
        bar = 0
        bar_name = ""
        if i >= 0:
            _, size, best, lit, cells = ck
            bid = kind == "bids"
            if best:
                style, text = ("best-bid" if bid else "best-ask"), fmt_size(size) if size else "·"
            elif size:
                text = fmt_size(size)
                style = ("bid" if bid else "ask") + (" flash" if lit else "")
                bar, bar_name = cells, ("bid-bar" if bid else "ask-bar")
        elif kind in ("our_bids", "our_asks"):
            _, sizes, selected = ck
            if sizes:
                labels = self.consolidated.labels
                text = " ".join(f"{labels[j]}{fmt_size(lots)}" for j, lots in enumerate(sizes) if lots)
                if len(text) > width:  # too narrow for each venue's size: the venues, then the total
                    text = "".join(labels[j] for j, lots in enumerate(sizes) if lots) + fmt_size(sum(sizes))
                style = "ours selected" if selected else "ours"
        elif kind == "price":
            _, price, last, bid, ask, entry = ck
            text = self.fmt_price(price)
            style = "last-price" if last else "price-bid" if bid else "price-ask" if ask else "price"
            if entry:
                text = ENTRY_MARK + text.rjust(width - 1)
                style += " entry"
        elif kind == "cursor":
            if ck[1]:
                text, style = "▶", "cursor-mark"
        elif kind == "mid":
            if ck[1]:
                text, style = MID_TEXT[ck[1]], "mid"
        elif kind == "last":
            if ck[1]:
                buy = ck[2] == 1
                text = ("▲" if buy else "▼") + fmt_size(ck[1])
                style = "last-buy" if buy else "last-sell"
        elif kind == "volume":
            if ck[1]:
                text, style = fmt_size(ck[1]), "volume"
            if ck[2]:
                bar, bar_name = ck[2], "volume-bar"
        elif kind == "cum":
            cum = ck[1]
            if cum:
                text, style = fmt_size(abs(cum)), ("bid" if cum < 0 else "ask")
        elif kind == "pnl":
            text = ck[1]
            if text:
                style = "pnl-down" if text[0] == "-" else "pnl-up"
        text = (text.rjust(width) if right else text.ljust(width))[:width]
        if not bar:
            return ((text, style),)
        bar_style = f"{style} {bar_name}" if style else bar_name
        if kind == "bids":  # a bid's bar grows from the price side (the right)
            cut = width - bar
            parts = ((text[:cut], style), (text[cut:], bar_style))
        else:
            parts = ((text[:bar], bar_style), (text[bar:], style))
        return tuple(p for p in parts if p[0])

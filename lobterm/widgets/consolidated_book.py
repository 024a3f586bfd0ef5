"""Several venues' books for one instrument as one market on a common price grid, with no Textual: what the
consolidated ladder (consolidated_model.py, consolidated.py) and its heatmap read.

The grid is the coarsest tick of the venues (every venue's tick must divide it) and sizes are on the finest
lot: a level at venue ticks `p` sits on grid row `p // ratio`, whose price is its lowest tick, on both sides
(as a zoomed ladder row holds N ticks). `ConsolidatedMarket` has the shape of a kernel `Market` as far as a
ladder model and a heatmap read one: best levels, a window of rows, merged trades and volume at price.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import msgspec

from lobterm.engine.events import BUY, SELL
from lobterm.engine.instrument import Instrument
from lobterm.engine.unified import LadderRow

if TYPE_CHECKING:
    from lobterm.engine.events import Trade
    from lobterm.kernel import Market

__all__ = ["ConsolidatedMarket", "GridError", "VenueRows", "consolidated_groups", "grid_of", "venue_labels"]

TAPE = 200  # trades the consolidated tape keeps (the heatmap reads the newest)


class GridError(ValueError):
    """The venues' prices or sizes do not fit one grid (a tick that does not divide the coarsest one)."""


def venue_labels(names: Sequence[str]) -> list[str]:
    """Short labels that tell the venues apart: what follows their common prefix (simA, simB: A, B), at most 4
    characters; the names' first letters when that is not unique."""
    if len(names) == 1:
        return [names[0][:4]]
    prefix = len(names[0])
    for name in names[1:]:
        prefix = min(prefix, len(name))
        for i in range(prefix):
            if name[i] != names[0][i]:
                prefix = i
                break
    labels = [n[prefix:][:4] or n[:4] for n in names]
    if len(set(labels)) < len(labels):
        labels = [f"{n[:3]}{i + 1}" for i, n in enumerate(names)]
    return labels


def consolidated_groups(markets: Sequence[Market]) -> list[list[Market]]:
    """The markets that one consolidated ladder can show together: the same symbol on two or more venues
    whose ticks and lots fit one grid, in the order given."""
    by_symbol: dict[str, list[Market]] = {}
    for m in markets:
        by_symbol.setdefault(m.symbol, []).append(m)
    groups = []
    for group in by_symbol.values():
        if len(group) < 2:
            continue
        try:
            grid_of(group)
        except GridError:
            continue
        groups.append(group)
    return groups


def grid_of(markets: Sequence[Market]) -> tuple[Instrument, list[int], list[int]]:
    """(the grid instrument, each venue's ticks per grid tick, each venue's grid lots per venue lot)."""
    insts = [m.instrument for m in markets]
    tick = max(i.tick_size for i in insts)
    lot = min(i.lot_size for i in insts)
    tick_ratios, lot_ratios = [], []
    for m, inst in zip(markets, insts, strict=True):
        r, rest = divmod(tick, inst.tick_size)
        q, rest_lot = divmod(inst.lot_size, lot)
        if rest or rest_lot:
            raise GridError(
                f"{m.venue} {m.symbol}: tick {inst.tick_size} and lot {inst.lot_size} do not fit the common grid "
                f"(tick {tick}, lot {lot})"
            )
        tick_ratios.append(int(r))
        lot_ratios.append(int(q))
    first = insts[0]
    decimals = max(
        (i.size_decimals if i.size_decimals >= 0 else -int(i.lot_size.normalize().as_tuple().exponent))
        for i in insts
    )
    grid = Instrument(
        first.symbol,
        tick,
        lot,
        base=first.base,
        quote=first.quote,
        venue="+".join(m.venue for m in markets),
        price_decimals=first.price_decimals if tick == first.tick_size else -1,
        size_decimals=max(0, decimals),
    )
    return grid, tick_ratios, lot_ratios


@dataclass(slots=True)
class VenueRows:
    """One venue's rows of the last window drawn, in grid lots, and its best prices on the grid."""

    rows: list[LadderRow]
    best_bid: int | None
    best_ask: int | None


class ConsolidatedMarket:
    """Several venues' books for one instrument as one market on the common grid (see the module docstring).

    It is both the `unified` book and the `l2` book a ladder model reads; trades are merged into one tape as
    the versions say they changed."""

    def __init__(self, markets: Sequence[Market]) -> None:
        if len(markets) < 1:
            raise GridError("a consolidated ladder needs at least one market")
        self.markets = list(markets)
        self.instrument, self.tick_ratios, self.lot_ratios = grid_of(self.markets)
        self.symbol = self.markets[0].symbol
        self.venue = self.instrument.venue
        self.labels = venue_labels([m.venue for m in self.markets])
        self.unified = self
        self.l2 = self
        self.venue_rows: list[VenueRows] = []
        self.last_trade: Trade | None = None
        self.trades = 0
        self.tape: deque = deque(maxlen=TAPE)
        self.volume_at_price: dict[int, int] = {}
        self._trades_seen = [m.trades for m in self.markets]
        self._trade_versions = -1
        self._last_center: int | None = None
        self._best_version = -1
        self._best_cache: list[tuple[int, int] | None] = [None, None]
        for m, r, q in zip(self.markets, self.tick_ratios, self.lot_ratios, strict=True):
            for price, lots in m.volume_at_price.items():
                g = price // r
                self.volume_at_price[g] = self.volume_at_price.get(g, 0) + lots * q
        self.sync_trades()

    # ---- the shape of a Market -------------------------------------------------------------------
    @property
    def key(self) -> tuple[str, str]:
        return (self.venue, self.symbol)

    @property
    def stale(self) -> bool:
        return any(m.stale for m in self.markets)

    @property
    def valid(self) -> bool:
        """Every venue's book is synced (one that is not would show a hole where its sizes belong)."""
        return all(m.l2.valid for m in self.markets)

    @property
    def version(self) -> int:
        return sum(m.unified.version for m in self.markets)

    @property
    def trade_version(self) -> int:
        self.sync_trades()
        return self._trade_versions

    def sync_trades(self) -> None:
        """Take the venues' new trades into the merged tape, last trade and volume at price."""
        versions = sum(m.trade_version for m in self.markets)
        if versions == self._trade_versions:
            return
        self._trade_versions = versions
        fresh: list[Trade] = []
        for i, m in enumerate(self.markets):
            new = m.trades - self._trades_seen[i]
            self._trades_seen[i] = m.trades
            if new <= 0:
                continue
            tape = m.tape
            r, q = self.tick_ratios[i], self.lot_ratios[i]
            for j in range(max(0, len(tape) - new), len(tape)):
                tr = tape[j]
                if r != 1 or q != 1:
                    tr = msgspec.structs.replace(tr, price=tr.price // r, size=tr.size * q)
                fresh.append(tr)
        if not fresh:
            return
        fresh.sort(key=lambda tr: tr.ts)
        vap = self.volume_at_price
        for tr in fresh:
            vap[tr.price] = vap.get(tr.price, 0) + tr.size
            self.tape.append(tr)
        self.trades += len(fresh)
        self.last_trade = fresh[-1]

    # ---- the book on the grid ----------------------------------------------------------------------
    def _grid(self, i: int, side: int, price: int) -> int:
        return price // self.tick_ratios[i]  # the row holding the price, on either side

    def venue_best(self, i: int, side: int) -> int | None:
        """Venue i's best price on `side`, on the grid."""
        u = self.markets[i].unified
        level = u.best_bid() if side == BUY else u.best_ask()
        return None if level is None else self._grid(i, side, level[0])

    def best_bid(self) -> tuple[int, int] | None:
        return self._best(BUY)

    def best_ask(self) -> tuple[int, int] | None:
        return self._best(SELL)

    def _best(self, side: int) -> tuple[int, int] | None:
        """The best grid price over the venues and the size there (every venue's levels in that grid row);
        kept per book version: a frame asks for it about ten times (title, axis, spread, imbalance, micro)."""
        version = self.version
        if self._best_version != version:
            self._best_version = version
            self._best_cache = [self._find_best(BUY), self._find_best(SELL)]
        return self._best_cache[side]

    def _find_best(self, side: int) -> tuple[int, int] | None:
        bests = [self.venue_best(i, side) for i in range(len(self.markets))]
        known = [b for b in bests if b is not None]
        if not known:
            return None
        price = max(known) if side == BUY else min(known)
        size = 0
        for i, b in enumerate(bests):
            if b == price:
                r, u = self.tick_ratios[i], self.markets[i].unified
                lots = sum(u.combined_size(side, p) for p in range(price * r, price * r + r))
                size += lots * self.lot_ratios[i]
        return price, size

    def iter_levels(self, side: int) -> Iterator[tuple[int, int]]:
        """Every venue's levels of `side` merged on the grid, best first, as (price, size in grid lots)."""
        sign = -1 if side == BUY else 1

        def venue_levels(i: int) -> Iterator[tuple[int, int]]:
            q = self.lot_ratios[i]
            for price, size in self.markets[i].unified.iter_levels(side):
                yield sign * self._grid(i, side, price), size * q

        level: list[int] = []  # [merge key, size] of the level being summed
        for key, lots in heapq.merge(*(venue_levels(i) for i in range(len(self.markets)))):
            if level and key == level[0]:
                level[1] += lots
                continue
            if level:
                yield sign * level[0], level[1]
            level = [key, lots]
        if level:
            yield sign * level[0], level[1]

    def depth(self, side: int, n: int) -> list[tuple[int, int]]:
        if n == 1:
            best = self._best(side)
            return [] if best is None else [best]
        out = []
        for level in self.iter_levels(side):
            out.append(level)
            if len(out) == n:
                break
        return out

    def levels_between(self, side: int, low: int, high: int) -> list[tuple[int, int]]:
        """Levels of `side` with low <= grid price <= high, summed over the venues, ascending."""
        sizes: dict[int, int] = {}
        for i, m in enumerate(self.markets):
            r, q = self.tick_ratios[i], self.lot_ratios[i]
            lo, hi = low * r, high * r + r - 1
            for price, size in m.l2.levels_between(side, lo, hi):
                g = self._grid(i, side, price)
                if low <= g <= high:
                    sizes[g] = sizes.get(g, 0) + size * q
        return sorted(sizes.items())

    def center_price(self) -> int | None:
        b, a = self.best_bid(), self.best_ask()
        if b is not None and a is not None:
            self._last_center = (b[0] + a[0]) // 2
        elif b is not None or a is not None:
            self._last_center = (b or a)[0]  # type: ignore[index]
        return self._last_center

    def our_orders_at(self, price: int, side: int | None = None) -> list[int]:
        return []  # queue estimates are per venue: the consolidated OUR columns show size by venue

    def ladder_rows(self, top_price: int, n_rows: int, ticks_per_row: int = 1) -> list[LadderRow]:
        """The window's rows summed over the venues; each venue's own rows are kept in `venue_rows`."""
        per_venue: list[VenueRows] = []
        for i, m in enumerate(self.markets):
            r, q = self.tick_ratios[i], self.lot_ratios[i]
            rows = m.unified.ladder_rows(top_price * r, n_rows, ticks_per_row * r)
            if r != 1 or q != 1:
                rows = [
                    LadderRow(
                        row.price // r,
                        row.bid_venue * q,
                        row.bid_ours * q,
                        row.bid_our_count,
                        row.ask_venue * q,
                        row.ask_ours * q,
                        row.ask_our_count,
                        row.bid_others * q,
                        row.ask_others * q,
                    )
                    for row in rows
                ]
            per_venue.append(VenueRows(rows, self.venue_best(i, BUY), self.venue_best(i, SELL)))
        self.venue_rows = per_venue
        n = min((len(v.rows) for v in per_venue), default=0)
        out = []
        venue_rows = [v.rows for v in per_venue]
        for k in range(n):
            bv = bo = bc = av = ao = ac = bx = ax = 0
            for (
                rows
            ) in venue_rows:  # one loop over the fields: 9 generator sums cost twice as much (profiled)
                x = rows[k]
                bv += x.bid_venue
                bo += x.bid_ours
                bc += x.bid_our_count
                av += x.ask_venue
                ao += x.ask_ours
                ac += x.ask_our_count
                bx += x.bid_others
                ax += x.ask_others
            out.append(LadderRow(venue_rows[0][k].price, bv, bo, bc, av, ao, ac, bx, ax))
        return out

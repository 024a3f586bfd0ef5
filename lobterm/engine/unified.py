"""Our working orders merged with a venue's L2 book, price by price, each source kept apart.

Pure: no I/O, no asyncio, no wall time. At every price the unified book knows the venue's size (from
the `L2Book`), our size and our order count, so the ladder can show "others" and "ours" side by side.

Two venue kinds (`own_in_venue_book`):
- True (a real exchange, the sim venue): our resting orders are part of the venue's L2, so the venue
  size already includes ours. `others = max(venue - ours, 0)` (clamped: the L2 may lag our own order
  events) and the combined size is `others + ours`, i.e. `max(venue, ours)`.
- False (paper trading): our orders are virtual, the venue never sees them. `others = venue` and the
  combined size is `venue + ours`.

Our orders come from our order lifecycle events (`on_event`: Accepted / Fill / Amended / Cancelled /
Done with `owner == our_owner_id` on the L2 book's venue+symbol) and/or explicit `add_own`,
`remove_own`, `amend_own`. Only orders that can rest are tracked: market, IOC and FOK orders (and any
order with price 0) never rest. Within a price our orders keep time priority: a size-only amend that
kept priority stays in place, a price change or a lost priority moves the order to the back.

The UI polls `version`, which changes whenever either source changed, and asks `ladder_rows` for the
rows of its price window; rows are built from the L2 dicts and sorted key lists for the window only.

Order ids, sides, prices and sizes are Python ints, checked by class (`True`, `1.0` and
`numpy.int64(1)` are refused: see `engine.errors`). An event whose owner is not an int is counted in
`bad_events` and ignored.
"""

from __future__ import annotations

import operator
from bisect import bisect_left, insort
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from lobterm.engine.errors import EngineInputError, is_side, is_whole
from lobterm.engine.events import BUY, FOK, IOC, MARKET, SELL, Accepted, Amended, Cancelled, Done, Fill
from lobterm.engine.l2book import L2Book

__all__ = ["LadderRow", "UnifiedBook", "UnifiedBookError"]

Level = tuple[int, int]

_NEVER_RESTS = (MARKET, IOC, FOK)


class UnifiedBookError(EngineInputError):
    """An explicit own-order call that would corrupt the book (bad side/price/size, duplicate id), or
    a query with a bad side or window (then `order_id` is None)."""

    def __init__(self, order_id: object, what: str, value: object, rule: str) -> None:
        self.order_id = order_id
        super().__init__("unified book" if order_id is None else f"own order {order_id!r}", what, value, rule)


def _check_side(side: object) -> None:
    # Our per-side data is a tuple: an index would take True as SELL; 1.0 or 2 would raise raw errors.
    if not is_side(side):
        raise UnifiedBookError(None, "side", side, "must be the int 0 (buy) or 1 (sell)")


@dataclass(slots=True, frozen=True)
class LadderRow:
    """One ladder row. `price` is the row's lowest tick; sizes are lots summed over the row's ticks.

    `*_venue` is the venue's L2 size as published, `*_ours` our resting size, `*_our_count` how many
    of our orders rest there, `*_others` everybody else's size (see the module docstring for the two
    venue kinds); `*_total` is what the book holds there, `others + ours`.
    """

    price: int
    bid_venue: int = 0
    bid_ours: int = 0
    bid_our_count: int = 0
    ask_venue: int = 0
    ask_ours: int = 0
    ask_our_count: int = 0
    bid_others: int = 0
    ask_others: int = 0

    @property
    def bid_total(self) -> int:
        return self.bid_others + self.bid_ours

    @property
    def ask_total(self) -> int:
        return self.ask_others + self.ask_ours


class _OwnOrder:
    __slots__ = ("order_id", "side", "price", "size", "priority")

    def __init__(self, order_id: int, side: int, price: int, size: int, priority: int) -> None:
        self.order_id = order_id
        self.side = side
        self.price = price
        self.size = size
        self.priority = priority


class UnifiedBook:
    """Our working orders on one venue+symbol merged with that venue's `L2Book`."""

    __slots__ = (
        "l2",
        "our_owner_id",
        "own_in_venue_book",
        "_orders",
        "_own_ids",
        "_own_size",
        "_own_keys",
        "_own_version",
        "_priority",
        "_last_center",
        "bad_events",
    )

    def __init__(self, l2: L2Book, our_owner_id: int, *, own_in_venue_book: bool) -> None:
        if not is_whole(our_owner_id):
            raise UnifiedBookError(None, "our owner id", our_owner_id, "must be an int")
        self.l2 = l2
        self.our_owner_id = our_owner_id
        self.own_in_venue_book = own_in_venue_book
        self._orders: dict[int, _OwnOrder] = {}
        # Per side: price -> {order_id: None} in time priority (dicts keep insertion order).
        self._own_ids: tuple[dict[int, dict[int, None]], dict[int, dict[int, None]]] = ({}, {})
        self._own_size: tuple[dict[int, int], dict[int, int]] = ({}, {})
        # Per side, sorted like L2Book's keys (bids ascending, asks negated) so our best is [-1].
        self._own_keys: tuple[list[int], list[int]] = ([], [])
        self._own_version = 0
        self._priority = 0
        self._last_center: int | None = None
        self.bad_events = 0

    # ---- versions ----------------------------------------------------------------------------
    @property
    def version(self) -> int:
        """Changes whenever the L2 book or our orders changed (both counters only ever grow)."""
        return self.l2.version + self._own_version

    # ---- our orders: events ------------------------------------------------------------------
    def on_event(self, ev: object) -> None:
        """Track our orders from order lifecycle events; anything else is ignored.

        Ignored: events of other owners, venues or symbols; events for orders we do not track
        (market/IOC/FOK orders, orders accepted before we started listening); and malformed events
        (e.g. an Amended to price 0), which are counted in `bad_events` and leave the book as it was.
        """
        cls = ev.__class__
        if cls not in _HANDLED:
            return
        e: Any = ev
        if e.owner.__class__ is not int:  # True or 1.0 would pass for our owner id 1
            self.bad_events += 1
            return
        if e.owner != self.our_owner_id or e.venue != self.l2.venue or e.symbol != self.l2.symbol:
            return
        try:
            self._on_order_event(cls, ev)
        except (UnifiedBookError, TypeError):
            self.bad_events += 1

    def _on_order_event(self, cls: type, ev: Any) -> None:
        if cls is Accepted:
            if ev.price != 0 and ev.order_type not in _NEVER_RESTS and ev.order_id not in self._orders:
                self.add_own(ev.order_id, ev.side, ev.price, ev.size)
            return
        order = self._orders.get(ev.order_id)
        if order is None:
            return
        if cls is Fill:
            if ev.leaves.__class__ is not int:
                raise UnifiedBookError(order.order_id, "leaves", ev.leaves, "must be an int")
            if ev.leaves > 0:
                self._resize(order, ev.leaves)
            else:
                self.remove_own(order.order_id)
        elif cls is Amended:
            self.amend_own(order.order_id, ev.price, ev.size, kept_priority=ev.kept_priority)
        elif cls is Cancelled:
            if ev.size.__class__ is not int or ev.size < 0:
                raise UnifiedBookError(order.order_id, "cancelled size", ev.size, "must be an int >= 0")
            left = order.size - ev.size
            if left > 0:
                self._resize(order, left)
            else:
                self.remove_own(order.order_id)
        else:  # Done
            self.remove_own(order.order_id)

    # ---- our orders: explicit ----------------------------------------------------------------
    def add_own(self, order_id: int, side: int, price: int, size: int) -> None:
        """Start tracking one of our resting orders, at the back of its price's queue."""
        if order_id in self._orders:
            raise UnifiedBookError(order_id, "order id", order_id, "is already tracked")
        self._check(order_id, side, price, size)
        self._priority += 1
        order = _OwnOrder(order_id, side, price, size, self._priority)
        self._orders[order_id] = order
        self._link(order)
        self._own_version += 1

    def remove_own(self, order_id: int) -> bool:
        """Stop tracking an order. Returns False when it was not tracked."""
        order = self._orders.pop(order_id, None)
        if order is None:
            return False
        self._unlink(order)
        self._own_version += 1
        return True

    def amend_own(self, order_id: int, price: int, size: int, *, kept_priority: bool = False) -> bool:
        """Move/resize a tracked order; size 0 removes it. Returns False when it was not tracked.

        The order keeps its place in the queue only if the price is unchanged and `kept_priority`.
        """
        order = self._orders.get(order_id)
        if order is None:
            return False
        if size.__class__ is int and size == 0:
            return self.remove_own(order_id)
        self._check(order_id, order.side, price, size)
        if price == order.price and kept_priority:
            self._resize(order, size)
            return True
        self._unlink(order)
        self._priority += 1
        order.price = price
        order.size = size
        order.priority = self._priority
        self._link(order)
        self._own_version += 1
        return True

    def own_orders(self) -> list[tuple[int, int, int, int]]:
        """Every tracked order as (order_id, side, price, size), by order id (state hashes, checkpoints)."""
        return sorted((o.order_id, o.side, o.price, o.size) for o in self._orders.values())

    def clear_own(self) -> None:
        """Forget all our orders (e.g. before rebuilding them from a venue's open-orders list)."""
        self._orders.clear()
        for side in (BUY, SELL):
            self._own_ids[side].clear()
            self._own_size[side].clear()
            self._own_keys[side].clear()
        self._own_version += 1

    def _check(self, order_id: int, side: int, price: int, size: int) -> None:
        if not is_whole(order_id):
            raise UnifiedBookError(order_id, "order id", order_id, "must be an int")
        if not is_side(side):
            raise UnifiedBookError(order_id, "side", side, "must be 0 (buy) or 1 (sell)")
        if price.__class__ is not int or price <= 0:
            raise UnifiedBookError(order_id, "price", price, "must be an int number of ticks > 0")
        if size.__class__ is not int or size <= 0:
            raise UnifiedBookError(order_id, "size", size, "must be an int number of lots > 0")

    def _resize(self, order: _OwnOrder, size: int) -> None:
        self._own_size[order.side][order.price] += size - order.size
        order.size = size
        self._own_version += 1

    def _link(self, order: _OwnOrder) -> None:
        side, price = order.side, order.price
        ids = self._own_ids[side].get(price)
        if ids is None:
            self._own_ids[side][price] = {order.order_id: None}
            self._own_size[side][price] = order.size
            insort(self._own_keys[side], price if side == BUY else -price)
        else:
            ids[order.order_id] = None
            self._own_size[side][price] += order.size

    def _unlink(self, order: _OwnOrder) -> None:
        side, price = order.side, order.price
        ids = self._own_ids[side][price]
        del ids[order.order_id]
        if ids:
            self._own_size[side][price] -= order.size
            return
        del self._own_ids[side][price]
        del self._own_size[side][price]
        keys = self._own_keys[side]
        del keys[bisect_left(keys, price if side == BUY else -price)]

    # ---- reading: our orders -----------------------------------------------------------------
    def our_orders_at(self, price: int, side: int | None = None) -> list[int]:
        """Our order ids resting at `price` (on `side`, or on either side), in time priority."""
        if side is not None:
            _check_side(side)
        sides = (BUY, SELL) if side is None else (side,)
        found = [oid for s in sides for oid in self._own_ids[s].get(price, ())]
        if side is None:
            found.sort(key=lambda oid: self._orders[oid].priority)
        return found

    def our_size(self, side: int, price: int) -> int:
        _check_side(side)
        return self._own_size[side].get(price, 0)

    def our_order(self, order_id: int) -> tuple[int, int, int] | None:
        """(side, price, size) of a tracked order, or None."""
        o = self._orders.get(order_id)
        return None if o is None else (o.side, o.price, o.size)

    @property
    def our_order_count(self) -> int:
        return len(self._orders)

    # ---- reading: combined -------------------------------------------------------------------
    def venue_size(self, side: int, price: int) -> int:
        return self.l2.level_size(side, price)

    def others_size(self, side: int, price: int) -> int:
        """Everybody else's size at `price` on `side`."""
        venue = self.l2.level_size(side, price)  # checks the side
        if not self.own_in_venue_book:
            return venue
        ours = self._own_size[side].get(price, 0)
        return venue - ours if venue > ours else 0

    def combined_size(self, side: int, price: int) -> int:
        """What the book holds at `price` on `side`: others + ours."""
        _check_side(side)
        return self._combined(self.l2.level_size(side, price), self._own_size[side].get(price, 0))

    def _combined(self, venue: int, ours: int) -> int:
        if self.own_in_venue_book:
            return venue if venue > ours else ours
        return venue + ours

    def best_bid(self) -> Level | None:
        """(price, combined size) of the highest bid over both sources, or None."""
        return self._best(BUY)

    def best_ask(self) -> Level | None:
        """(price, combined size) of the lowest ask over both sources, or None."""
        return self._best(SELL)

    def _best(self, side: int) -> Level | None:
        own_keys = self._own_keys[side]
        if side == BUY:
            price = self.l2.best_bid_price()
            if own_keys and (price is None or own_keys[-1] > price):
                price = own_keys[-1]
        else:
            price = self.l2.best_ask_price()
            if own_keys and (price is None or -own_keys[-1] < price):
                price = -own_keys[-1]
        if price is None:
            return None
        return price, self.combined_size(side, price)

    def is_crossed(self) -> bool:
        b, a = self.best_bid(), self.best_ask()
        return b is not None and a is not None and b[0] >= a[0]

    def center_price(self) -> int | None:
        """A tick to centre a ladder on: the combined mid rounded down, else the one side's best,
        else the last centre. Not a price to show a user (see `analytics.mid` for the exact mid)."""
        b, a = self.best_bid(), self.best_ask()
        if b is not None and a is not None:
            self._last_center = (b[0] + a[0]) // 2
        elif b is not None:
            self._last_center = b[0]
        elif a is not None:
            self._last_center = a[0]
        return self._last_center

    def iter_levels(self, side: int) -> Iterator[Level]:
        """All combined levels of `side`, best first, as (price, combined size)."""
        _check_side(side)
        venue = self.l2.iter_levels(side)
        own_keys = self._own_keys[side]
        own_sizes = self._own_size[side]
        sign = 1 if side == BUY else -1
        ours = [k * sign for k in reversed(own_keys)]  # small: copy so mutation cannot bite
        better = operator.gt if side == BUY else operator.lt
        i = 0
        for price, size in venue:
            while i < len(ours) and better(ours[i], price):
                yield ours[i], self._combined(0, own_sizes[ours[i]])
                i += 1
            mine = 0
            if i < len(ours) and ours[i] == price:
                mine = own_sizes[price]
                i += 1
            yield price, self._combined(size, mine)
        for p in ours[i:]:
            yield p, self._combined(0, own_sizes[p])

    def depth(self, side: int, n: int) -> list[Level]:
        """Up to `n` combined levels of `side`, best first, as (price, combined size)."""
        _check_side(side)
        if not is_whole(n):
            raise UnifiedBookError(None, "depth", n, "must be an int number of levels")
        if n <= 0:
            return []
        out: list[Level] = []
        for level in self.iter_levels(side):
            out.append(level)
            if len(out) == n:
                break
        return out

    # ---- ladder --------------------------------------------------------------------------------
    def ladder_rows(self, top_price: int, n_rows: int, ticks_per_row: int = 1) -> list[LadderRow]:
        """Rows for a price window, from the highest price downwards.

        Rows are aligned to multiples of `ticks_per_row` (so aggregated rows do not change as the
        window scrolls); the first row is the one holding `top_price`, each row's `price` is its
        lowest tick and its sizes are summed over its ticks. Rows entirely below price 1 are not
        returned. Cost: O(log levels + levels in the window + our price count).
        """
        for what, value in (("top price", top_price), ("rows", n_rows), ("ticks per row", ticks_per_row)):
            if not is_whole(value):
                raise UnifiedBookError(None, what, value, "must be an int")
        if ticks_per_row < 1:
            raise UnifiedBookError(None, "ticks per row", ticks_per_row, "must be >= 1")
        tpr = ticks_per_row
        top_row = top_price - top_price % tpr
        high = top_row + tpr - 1
        n = min(n_rows, (high - 1) // tpr + 1) if high >= 1 else 0  # stop below price 1
        if n <= 0:
            return []
        low = max(top_row - (n - 1) * tpr, 1)
        in_book = self.own_in_venue_book
        cols: list[
            tuple[list[int], list[int], list[int], list[int]]
        ] = []  # per side: venue, ours, count, others
        for side in (BUY, SELL):
            venue = [0] * n
            ours = [0] * n
            count = [0] * n
            others = [0] * n
            own_size = self._own_size[side]
            for price, size in self.l2.levels_between(side, low, high):
                i = (high - price) // tpr
                venue[i] += size
                if in_book:
                    mine = own_size.get(price, 0)
                    others[i] += size - mine if size > mine else 0
                else:
                    others[i] += size
            for price, ids in self._own_ids[side].items():
                if low <= price <= high:
                    i = (high - price) // tpr
                    ours[i] += own_size[price]
                    count[i] += len(ids)
            cols.append((venue, ours, count, others))
        (bv, bo, bc, bx), (av, ao, ac, ax) = cols
        return [
            LadderRow(top_row - i * tpr, bv[i], bo[i], bc[i], av[i], ao[i], ac[i], bx[i], ax[i])
            for i in range(n)
        ]


_HANDLED = frozenset((Accepted, Fill, Amended, Cancelled, Done))

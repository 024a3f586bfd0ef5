"""A price-time priority matching book for one instrument: the heart of the sim venue and the paper desk.

Orders: limit, market, IOC, FOK and post-only; cancel; amend; self-trade prevention; the queue position
of any resting order. Each call appends its events, in order, to `self.events` (drain them with
`drain()`); nothing is returned and nothing is raised for bad input: a bad request is a `Rejected`
event and leaves the book exactly as it was.

Rules worth knowing:
- Post-only orders that would trade on arrival are **rejected** (reason `post_only_would_trade`), not
  slid to the touch: a market maker must know where its quote really is.
- Amend takes a new price and/or a new open size. Reducing the size at the same price keeps the
  order's place in the queue; a price change or a size increase sends it to the back of its (new)
  level. An amend to a price that crosses the book trades like a new incoming order (post-only orders
  are rejected instead).
- Self-trade prevention is decided by the incoming order's mode and applies when the resting order has
  the same `owner`: cancel the resting order and go on matching, cancel the incoming order, or both.
- A market order carries price 0 in its events. Whatever part of a market or IOC order finds nothing to
  trade against is cancelled with reason `expired`; a FOK order that cannot fill completely is
  cancelled whole with reason `killed` before any fill (what it counts is what it could trade before
  self-trade prevention would stop it).
- "Duplicate order id" means an id that is live on this book now; ids of finished orders may be reused.
- Every number in a request (order id, side, price, size, type, owner, self-trade mode) must be a
  Python int: `True`, `1.0` and `numpy.int64(1)` are rejected like any garbage (see `engine.errors`
  for why they are not converted). A rejection is addressed to the order id and owner given when
  they are ints, else to -1 (events carry ints only); its reason names the bad value.
- Queries (`depth`, `level_size`, `total_size`, `orders_at`) raise `MatchingBookError` for a side
  that is not the int 0 or 1, and the constructor for fee rates that are not ints.

Speed: this is the hot path of the sim venue, of paper fills and of backtests, and it is written for
CPython: plain lists as order records, a dict per price level (insertion-ordered, so FIFO with O(1)
cancel), a sorted plain list of prices per side maintained with bisect (a few dozen levels: a memmove
beats any tree), locals bound in the loops. See benchmarks/engine_bench.py for the figures.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterator

from lobterm.engine.errors import EngineInputError, is_side, is_whole
from lobterm.engine.events import (
    BUY,
    CANCELED,
    EXPIRED,
    FILLED,
    FOK,
    KILLED,
    LIMIT,
    MARKET,
    POST_ONLY,
    POST_ONLY_WOULD_TRADE,
    REJECTED,
    STP,
    STP_CANCEL_INCOMING,
    STP_CANCEL_RESTING,
    STP_NONE,
    Accepted,
    Amended,
    Cancelled,
    Done,
    Fill,
    OrderEvent,
    Rejected,
)

# Order record layout: a plain list, indexed by these positions (literals are used in the hot loops).
OID, SIDE, PRICE, LEAVES, OWNER, STP_MODE, FILLED_QTY, OTYPE = range(8)

_MAX_UNITS = 10**15

# An order record: [order_id, side, price, leaves, owner, stp, filled, order_type] (see OID..OTYPE).
OrderRecord = list[int]


class MatchingBookError(EngineInputError):
    """A bad query or constructor argument of a `MatchingBook` (requests never raise: they are
    answered with a `Rejected` event)."""

    def __init__(self, venue: str, symbol: str, what: str, value: object, rule: str) -> None:
        super().__init__(f"{venue}:{symbol} book", what, value, rule)


def _addressable(value: object) -> int:
    """The id or owner a rejection is addressed to: the one given when it is an int, else -1."""
    return value if value.__class__ is int else -1


class MatchingBook:
    """One instrument's book. Prices are integer ticks, sizes integer lots, fees in millionths of a
    tick*lot (`maker_fee_ppm`/`taker_fee_ppm` are rates in parts per million; negative is a rebate).

    `now` is the timestamp (ns) stamped on the events; the owner of the book (a venue) sets it from the
    kernel clock before each call. The book never reads a clock itself.

    With `track_levels`, every (side, price) whose total size changed is appended to `touched`, so
    that a venue can publish L2 deltas without diffing the book.
    """

    __slots__ = (
        "venue",
        "symbol",
        "now",
        "events",
        "maker_fee_ppm",
        "taker_fee_ppm",
        "track_levels",
        "touched",
        "_orders",
        "_levels",
        "_qty",
        "_prices",
        "_total",
        "_trade_id",
    )

    def __init__(
        self,
        venue: str = "",
        symbol: str = "",
        *,
        maker_fee_ppm: int = 0,
        taker_fee_ppm: int = 0,
        track_levels: bool = False,
    ) -> None:
        for what, fee in (("maker fee", maker_fee_ppm), ("taker fee", taker_fee_ppm)):
            if not is_whole(fee):
                raise MatchingBookError(venue, symbol, what, fee, "must be an int rate in parts per million")
        self.venue = venue
        self.symbol = symbol
        self.now = 0
        self.events: list[OrderEvent] = []
        self.maker_fee_ppm = maker_fee_ppm
        self.taker_fee_ppm = taker_fee_ppm
        self.track_levels = track_levels
        self.touched: list[tuple[int, int]] = []
        self._orders: dict[int, OrderRecord] = {}
        # Per side: price -> {order_id: record} in time order, and price -> total open lots.
        self._levels: tuple[dict[int, dict[int, OrderRecord]], dict[int, dict[int, OrderRecord]]] = ({}, {})
        self._qty: tuple[dict[int, int], dict[int, int]] = ({}, {})
        # Per side: sorted ascending prices; best bid is bids[-1], best ask is asks[0].
        self._prices: tuple[list[int], list[int]] = ([], [])
        self._total = [0, 0]
        self._trade_id = 0

    # ---- queries -------------------------------------------------------------------------------
    def drain(self) -> list[OrderEvent]:
        """The events emitted since the last drain, oldest first."""
        evs = self.events
        self.events = []
        return evs

    def best_bid(self) -> int | None:
        p = self._prices[0]
        return p[-1] if p else None

    def best_ask(self) -> int | None:
        p = self._prices[1]
        return p[0] if p else None

    def _check_side(self, side: object) -> None:
        # A tuple index would take True as SELL and numpy.int64(1) too; 1.0 or 2 would raise raw errors.
        if not is_side(side):
            raise MatchingBookError(
                self.venue, self.symbol, "side", side, "must be the int 0 (buy) or 1 (sell)"
            )

    def level_size(self, side: int, price: int) -> int:
        self._check_side(side)
        return self._qty[side].get(price, 0)

    def depth(self, side: int, n: int | None = None) -> list[tuple[int, int]]:
        """(price, total lots) best first, at most n levels."""
        self._check_side(side)
        if n is not None and not is_whole(n):
            raise MatchingBookError(self.venue, self.symbol, "depth", n, "must be an int number of levels")
        prices = self._prices[side]
        ordered = reversed(prices) if side == BUY else iter(prices)
        qty = self._qty[side]
        out: list[tuple[int, int]] = []
        for p in ordered:
            if n is not None and len(out) >= n:
                break
            out.append((p, qty[p]))
        return out

    def total_size(self, side: int) -> int:
        self._check_side(side)
        return self._total[side]

    def __len__(self) -> int:
        return len(self._orders)

    def __contains__(self, order_id: int) -> bool:
        return order_id in self._orders

    def order(self, order_id: int) -> tuple[int, int, int, int, int] | None:
        """(side, price, open size, filled size, owner) of a resting order, or None."""
        o = self._orders.get(order_id)
        return None if o is None else (o[SIDE], o[PRICE], o[LEAVES], o[FILLED_QTY], o[OWNER])

    def orders_at(self, side: int, price: int) -> list[tuple[int, int, int]]:
        """(order_id, open size, owner) resting at a level, in queue order."""
        self._check_side(side)
        lvl = self._levels[side].get(price)
        return [] if not lvl else [(o[OID], o[LEAVES], o[OWNER]) for o in lvl.values()]

    def resting_orders(self) -> Iterator[tuple[int, int, int, int, int]]:
        """(order_id, side, price, open size, owner) of every resting order, in no particular order."""
        for o in self._orders.values():
            yield o[OID], o[SIDE], o[PRICE], o[LEAVES], o[OWNER]

    def queue_position(self, order_id: int) -> int | None:
        """Lots ahead of a resting order at its price level (0 = first in line), or None if not resting."""
        o = self._orders.get(order_id)
        if o is None:
            return None
        ahead = 0
        for r in self._levels[o[SIDE]][o[PRICE]].values():
            if r is o:
                return ahead
            ahead += r[LEAVES]
        raise AssertionError("order missing from its level")  # the book's own invariant

    def state(self) -> tuple[int, int, int, int | None, int | None]:
        """(resting orders, total bid lots, total ask lots, best bid, best ask)."""
        return (len(self._orders), self._total[0], self._total[1], self.best_bid(), self.best_ask())

    # ---- requests ------------------------------------------------------------------------------
    def submit(
        self,
        order_id: int,
        side: int,
        price: int,
        size: int,
        order_type: int = LIMIT,
        owner: int = 0,
        stp: int = STP_NONE,
    ) -> None:
        """A new order. `price` is ignored (and reported as 0) for a market order."""
        if order_type == MARKET:
            price = 0
        elif not (type(price) is int and 0 < price <= _MAX_UNITS):
            return self._reject_new(
                order_id, owner, f"price {price!r} is not on the tick grid (a positive whole number of ticks)"
            )
        # Exact ints only: a bool or float side/type/mode would pass the range checks and then travel in
        # events that the recorder cannot decode; a str or None would raise in the comparisons.
        if (
            not (
                type(size) is int
                and 0 < size <= _MAX_UNITS
                and side.__class__
                is order_type.__class__
                is stp.__class__
                is order_id.__class__
                is owner.__class__
                is int
                and (side == 0 or side == 1)
                and 0 <= order_type <= 4
                and 0 <= stp <= 3
            )
            or order_id in self._orders
        ):
            return self._reject_new(
                order_id, owner, self._why_bad(order_id, side, size, order_type, stp, owner)
            )
        ev = self.events
        if side == 0:
            opp = self._prices[1]
            crosses = bool(opp) and (order_type == 1 or price >= opp[0])
        else:
            opp = self._prices[0]
            crosses = bool(opp) and (order_type == 1 or price <= opp[-1])
        if crosses and order_type == POST_ONLY:
            return self._reject_new(order_id, owner, POST_ONLY_WOULD_TRADE)
        ev.append(Accepted(self.now, self.venue, self.symbol, order_id, side, price, size, order_type, owner))
        o: OrderRecord = [order_id, side, price, size, owner, stp, 0, order_type]
        if not crosses:
            if order_type == LIMIT or order_type == POST_ONLY:
                # Rest (inlined: this is the most common request of all).
                lvl = self._levels[side].get(price)
                if lvl is None:
                    self._levels[side][price] = {order_id: o}
                    self._qty[side][price] = size
                    insort(self._prices[side], price)
                else:
                    lvl[order_id] = o
                    self._qty[side][price] += size
                self._total[side] += size
                self._orders[order_id] = o
                if self.track_levels:
                    self.touched.append((side, price))
            else:
                self._end(o, size, EXPIRED if order_type != FOK else KILLED)
            return
        if order_type == FOK and self._fillable(side, price, size, owner, stp) < size:
            self._end(o, size, KILLED)
            return
        self._match(o, None if order_type == MARKET else price)
        leaves = o[3]
        if o[7] < 0:
            return  # self-trade prevention ended it; its Cancelled and Done are out
        if leaves == 0:
            ev.append(Done(self.now, self.venue, self.symbol, order_id, o[6], FILLED, owner))
        elif order_type == LIMIT:
            self._rest(o)
        else:
            self._end(o, leaves, EXPIRED)

    def _reject_new(self, order_id: object, owner: object, reason: str) -> None:
        oid, who = _addressable(order_id), _addressable(owner)
        self.events.append(Rejected(self.now, self.venue, self.symbol, oid, reason, who))
        self.events.append(Done(self.now, self.venue, self.symbol, oid, 0, REJECTED, who))

    def _why_bad(
        self, order_id: object, side: object, size: object, order_type: object, stp: object, owner: object
    ) -> str:
        if type(order_id) is not int:
            return f"order id {order_id!r} must be an int"
        if type(owner) is not int:
            return f"owner {owner!r} must be an int"
        if order_id in self._orders:
            return f"duplicate order id {order_id}"
        if type(size) is not int or size <= 0:
            return f"size {size!r} must be a positive whole number of lots"
        if size > _MAX_UNITS:
            return f"size {size} is absurd (more than {_MAX_UNITS} lots)"
        if not is_side(side):
            return f"side {side!r} must be 0 (buy) or 1 (sell)"
        if type(order_type) is not int or not 0 <= order_type <= 4:
            return f"unknown order type {order_type!r}"
        return f"unknown self-trade prevention mode {stp!r}"

    def cancel(self, order_id: int, owner: int | None = None) -> None:
        """Cancel a resting order. `owner`, when given, must match the order's owner."""
        o = self._orders.get(order_id)
        # The class checks come after the lookup so that the common case (an int id, no owner) pays one.
        if (
            o is None
            or order_id.__class__ is not int
            or (owner is not None and (o[4] != owner or owner.__class__ is not int))
        ):
            if type(order_id) is not int:
                why = f"order id {order_id!r} must be an int"
            elif owner is not None and type(owner) is not int:
                why = f"owner {owner!r} must be an int"
            elif o is None:
                why = f"unknown order id {order_id}"
            else:
                why = f"order {order_id} belongs to another owner"
            self.events.append(
                Rejected(self.now, self.venue, self.symbol, _addressable(order_id), why, _addressable(owner))
            )
            return
        side = o[1]
        px = o[2]
        leaves = o[3]
        levels = self._levels[side]
        lvl = levels[px]
        del lvl[order_id]
        del self._orders[order_id]
        self._total[side] -= leaves
        if lvl:
            self._qty[side][px] -= leaves
        else:
            del levels[px]
            del self._qty[side][px]
            prices = self._prices[side]
            if side == 0 and prices[-1] == px:
                prices.pop()
            else:
                del prices[bisect_left(prices, px)]
        if self.track_levels:
            self.touched.append((side, px))
        now = self.now
        self.events += (
            Cancelled(now, self.venue, self.symbol, order_id, leaves, CANCELED, o[4]),
            Done(now, self.venue, self.symbol, order_id, o[6], CANCELED, o[4]),
        )

    def amend(
        self, order_id: int, price: int | None = None, size: int | None = None, owner: int | None = None
    ) -> None:
        """Change a resting order's price and/or open size (see the module docstring for priority)."""
        ev = self.events
        o = self._orders.get(order_id) if type(order_id) is int else None
        reason = None
        if type(order_id) is not int:
            reason = f"order id {order_id!r} must be an int"
        elif owner is not None and type(owner) is not int:
            reason = f"owner {owner!r} must be an int"
        elif o is None:
            reason = f"unknown order id {order_id}"
        elif owner is not None and o[OWNER] != owner:
            reason = f"order {order_id} belongs to another owner"
        elif size is not None and (type(size) is not int or size <= 0 or size > _MAX_UNITS):
            reason = f"size {size!r} must be a positive whole number of lots"
        elif price is not None and (type(price) is not int or price <= 0 or price > _MAX_UNITS):
            reason = f"price {price!r} is not on the tick grid (a positive whole number of ticks)"
        if reason is None and o is not None:
            new_price = o[PRICE] if price is None else price
            side = o[SIDE]
            opp = self._prices[1 - side]
            crosses = bool(opp) and (new_price >= opp[0] if side == BUY else new_price <= opp[-1])
            if crosses and o[OTYPE] == POST_ONLY:
                reason = POST_ONLY_WOULD_TRADE
        if reason is not None:
            # Addressed to whoever asked (as in `cancel`): never to another owner whose order it is.
            ev.append(
                Rejected(
                    self.now,
                    self.venue,
                    self.symbol,
                    _addressable(order_id),
                    reason,
                    _addressable(owner) if owner is not None else -1 if o is None else o[OWNER],
                )
            )
            return
        assert o is not None  # for the type checker: every path with no order set a reason
        new_size = o[LEAVES] if size is None else size
        if new_price == o[PRICE] and new_size <= o[LEAVES]:
            # Same price, same or smaller size: keeps its place in the queue.
            side, px = o[SIDE], o[PRICE]
            diff = o[LEAVES] - new_size
            if diff:
                o[LEAVES] = new_size
                self._qty[side][px] -= diff
                self._total[side] -= diff
                if self.track_levels:
                    self.touched.append((side, px))
            ev.append(Amended(self.now, self.venue, self.symbol, order_id, px, new_size, True, o[OWNER]))
            return
        self._unrest(o)
        o[PRICE] = new_price
        o[LEAVES] = new_size
        ev.append(Amended(self.now, self.venue, self.symbol, order_id, new_price, new_size, False, o[OWNER]))
        if crosses:
            self._match(o, new_price)
            if o[OTYPE] < 0:
                return
            if o[LEAVES] == 0:
                ev.append(Done(self.now, self.venue, self.symbol, order_id, o[FILLED_QTY], FILLED, o[OWNER]))
                return
        self._rest(o)

    # ---- internals -----------------------------------------------------------------------------
    def _rest(self, o: OrderRecord) -> None:
        side = o[1]
        px = o[2]
        lvl = self._levels[side].get(px)
        if lvl is None:
            self._levels[side][px] = {o[0]: o}
            self._qty[side][px] = o[3]
            insort(self._prices[side], px)
        else:
            lvl[o[0]] = o
            self._qty[side][px] += o[3]
        self._total[side] += o[3]
        self._orders[o[0]] = o
        if self.track_levels:
            self.touched.append((side, px))

    def _unrest(self, o: OrderRecord) -> None:
        side = o[1]
        px = o[2]
        levels = self._levels[side]
        lvl = levels[px]
        del lvl[o[0]]
        del self._orders[o[0]]
        self._total[side] -= o[3]
        if lvl:
            self._qty[side][px] -= o[3]
        else:
            del levels[px]
            del self._qty[side][px]
            prices = self._prices[side]
            del prices[bisect_left(prices, px)]
        if self.track_levels:
            self.touched.append((side, px))

    def _end(self, o: OrderRecord, cancelled: int, reason: str) -> None:
        """Cancelled + Done for an order that is not (or no longer) on the book."""
        now = self.now
        self.events.append(Cancelled(now, self.venue, self.symbol, o[0], cancelled, reason, o[4]))
        self.events.append(Done(now, self.venue, self.symbol, o[0], o[6], reason, o[4]))

    def _fillable(self, side: int, limit: int, want: int, owner: int, stp: int) -> int:
        """How much of `want` could trade at `limit` or better, as `_match` would meet it: orders of the
        same owner do not count, and under cancel_incoming / cancel_both nothing behind the first of them
        counts either (matching would stop there)."""
        opp = 1 - side
        prices = self._prices[opp]
        ordered = iter(prices) if side == BUY else reversed(prices)
        qty = self._qty[opp]
        got = 0
        for px in ordered:
            if (px > limit) if side == BUY else (px < limit):
                break
            if stp == STP_NONE:
                got += qty[px]
            else:
                for r in self._levels[opp][px].values():
                    if r[4] == owner:
                        if stp != STP_CANCEL_RESTING:
                            return got
                    else:
                        got += r[3]
            if got >= want:
                break
        return got

    def _match(self, o: OrderRecord, limit: int | None) -> None:
        """Trade the incoming order `o` against the opposite side up to `limit` (None: any price).

        On return o[LEAVES] is what is left. If self-trade prevention cancelled the incoming order,
        o[OTYPE] is set to -1 and its Cancelled/Done are already emitted.
        """
        ev = self.events
        append = ev.append
        now = self.now
        venue = self.venue
        symbol = self.symbol
        side = o[1]
        opp = 1 - side
        prices = self._prices[opp]
        levels = self._levels[opp]
        qtys = self._qty[opp]
        track = self.track_levels
        touched = self.touched
        mk = self.maker_fee_ppm
        tk = self.taker_fee_ppm
        orders = self._orders
        oid = o[0]
        owner = o[4]
        stp = o[5]
        leaves = o[3]
        filled = o[6]
        tid = self._trade_id
        taken = 0  # lots removed from the opposite side (fills and STP cancels)
        is_buy = side == BUY
        while leaves and prices:
            px = prices[0] if is_buy else prices[-1]
            if limit is not None and (px > limit if is_buy else px < limit):
                break
            lvl = levels[px]
            gone = []
            lvl_taken = 0
            stop = False
            for r in lvl.values():
                if stp and r[4] == owner:
                    if stp != STP_CANCEL_INCOMING:
                        # cancel the resting order (CANCEL_RESTING or CANCEL_BOTH)
                        lvl_taken += r[3]
                        gone.append(r[0])
                        append(Cancelled(now, venue, symbol, r[0], r[3], STP, r[4]))
                        append(Done(now, venue, symbol, r[0], r[6], STP, r[4]))
                    if stp != STP_CANCEL_RESTING:
                        stop = True
                        break
                    continue
                rl = r[3]
                f = leaves if leaves < rl else rl
                leaves -= f
                filled += f
                rl -= f
                r[3] = rl
                r[6] += f
                lvl_taken += f
                tid += 1
                append(Fill(now, venue, symbol, r[0], opp, px, f, rl, True, px * f * mk, tid, r[4]))
                append(Fill(now, venue, symbol, oid, side, px, f, leaves, False, px * f * tk, tid, owner))
                if rl == 0:
                    gone.append(r[0])
                    append(Done(now, venue, symbol, r[0], r[6], FILLED, r[4]))
                if not leaves:
                    break
            for g in gone:
                del lvl[g]
                del orders[g]
            if lvl_taken:
                taken += lvl_taken
                if lvl:
                    qtys[px] -= lvl_taken
                else:
                    del levels[px]
                    del qtys[px]
                    if is_buy:
                        del prices[0]
                    else:
                        prices.pop()
                if track:
                    touched.append((opp, px))
            if stop:
                self._trade_id = tid
                o[3] = leaves
                o[6] = filled
                self._total[opp] -= taken
                o[7] = -1
                append(Cancelled(now, venue, symbol, oid, leaves, STP, owner))
                append(Done(now, venue, symbol, oid, filled, STP, owner))
                return
        self._trade_id = tid
        o[3] = leaves
        o[6] = filled
        self._total[opp] -= taken

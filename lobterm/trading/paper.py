"""Paper fills: our orders on an external book we cannot trade on (ccxt without keys, a replay) fill as
they would have, queue position included.

`PaperDesk` is a Venue for our orders (`submit`, `cancel`, `amend`; `mode = "PAPER"`,
`own_in_book = False`) and publishes their lifecycle on the bus exactly as a venue would: Accepted,
Fill (with `is_maker` and the fee), Amended, Cancelled, Rejected, Done, owner `OUR_OWNER`, venue and
symbol of the external book. It is fed that book's market data (`on_event`, subscribed by `attach`)
and keeps its own `L2Book` per symbol from it, so it never depends on who else reads the same events.
Our orders are virtual: the external book never sees them.

The fill rules (hftbacktest's queue models are the reference):

- **Marketable on arrival.** An order that crosses the external book walks it best level first,
  partial fills per level at the level's price, as taker. A market or IOC remainder expires; a FOK
  that cannot fill completely is killed before any fill; a post-only order that would trade is
  rejected; a limit remainder rests. Liquidity we took stays taken (`taken`) until the external level
  shrinks below it, so two paper orders never eat the same lots twice.
- **Joining a level.** A resting order joins behind everything the external book shows at its price
  then: `queue_ahead` = that L2 size. Our own earlier orders at the price are ahead of it too.
- **Trades at our price** (by a taker on the other side) go through the queue front first: they
  reduce `queue_ahead`; what is left of the trade fills us, partial fills sized by the trades.
- **Trades through our price** (a sell printing below our bid, a buy above our ask): the taker would
  have met our better price first, so everything ahead of us is gone and we fill at our price up to
  the trade's size (best-priced of our orders first). Trades by a taker on our own side never fill
  us; what they consumed was either visible as a crossing level (next rule) or appeared and went
  within one update, which we cannot see (conservative).
- **The external book crosses our price** (best ask <= our bid): a real book is never crossed at
  rest, so those lots are sellers who would have met our bid. We fill at our price, as maker, up to
  the crossing size not already taken.
- **Level size decreases that trades do not explain** are cancels. Trades are assumed to arrive
  before the deltas they caused (the sim publishes them so): trade volume seen at a level since its
  last delta explains that much of the next decrease, the rest is cancels. Models (`cancel_model`):
  `conservative` (cancels are behind us: `queue_ahead = min(queue_ahead, level size)`) and
  `probabilistic` (cancels are spread evenly over the level, so the expected share
  `cancel * queue_ahead / level size` comes from ahead of us; the expected value, not a draw, so a
  replay gives the same fills). Size added to a level joins behind us. A snapshot (resync) applies
  the conservative rule under both models. `queue_ahead` is kept in millionths of a lot so that the
  expected-value model stays exact enough without floats.
- **Latency.** New orders, cancels and amends reach the "venue" `*_latency_ns` after the request (on
  the kernel clock), in the order sent (one connection: a request is never applied before an earlier
  one). A request is applied when the first market data event with `ts >= due` is processed (before
  that event), or by `on_time(now_ns)`. Meanwhile the market moves: an order is not live until its
  request arrives, and an order whose cancel is in flight can still fill (the cancel then gets
  Rejected: the order is no longer working). Our events are stamped with the time the request
  arrived; no return latency is modelled.
- **Fees** as the matching engine: `Fill.fee = price * size * fee_ppm` (maker or taker rate).
- **Self-trade prevention** among our own (virtual) orders: an incoming or amended order whose limit
  reaches one of our opposite orders applies its STP mode before it touches the external book;
  under `STP_NONE` our orders simply ignore each other (they never trade with each other).
- **Bad requests** (unlisted symbol, size <= 0 or below the minimum, price off the tick grid or out of
  range, bad side/type/STP, duplicate id, unknown id) are Rejected at once (plus Done for a new order)
  and change nothing. A new order that arrives while the external book is not synced (no snapshot
  yet, or a sequence gap) is rejected too: there is nothing to fill it against.

Fill `trade_id`s are the desk's own counter (paper fills have no venue trade); `fills_by_rule` counts
our fills by the rule that made them (taker, queue, through, cross).

`PaperVenue(data_venue, config)` wraps a market data venue (ccxt without keys, a replay, the sim) so
that the kernel sees one venue whose order entry is a PaperDesk: no kernel change needed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lobterm.engine.events import (
    BUY,
    CANCELED,
    EXPIRED,
    FILLED,
    FOK,
    KILLED,
    LIMIT,
    MARKET,
    OUR_OWNER,
    POST_ONLY,
    POST_ONLY_WOULD_TRADE,
    REJECTED,
    SELL,
    STP,
    STP_CANCEL_BOTH,
    STP_CANCEL_INCOMING,
    STP_CANCEL_RESTING,
    STP_NONE,
    Accepted,
    Amended,
    BookDelta,
    BookSnapshot,
    Cancelled,
    Done,
    Fill,
    Rejected,
    Trade,
)
from lobterm.engine.instrument import Instrument, fee_units
from lobterm.engine.l2book import L2Book, L2BookError

if TYPE_CHECKING:
    from lobterm.engine.ports import Bus, Clock

__all__ = [
    "CONSERVATIVE",
    "PROBABILISTIC",
    "QUEUE_SCALE",
    "PaperConfig",
    "PaperConfigError",
    "PaperDesk",
    "PaperOrder",
    "PaperVenue",
]

CONSERVATIVE = "conservative"
PROBABILISTIC = "probabilistic"
CANCEL_MODELS = (CONSERVATIVE, PROBABILISTIC)

#: `queue_ahead` is kept in millionths of a lot (the probabilistic model removes fractions of lots).
QUEUE_SCALE = 1_000_000

_NEW, _CANCEL, _AMEND = "new", "cancel", "amend"


class PaperConfigError(ValueError):
    """A paper desk setting that cannot work; names the setting, the value and the rule."""

    def __init__(self, what: str, value: object, rule: str) -> None:
        self.what = what
        self.value = value
        self.rule = rule
        super().__init__(f"paper {what} {value!r} rejected: {rule}")


@dataclass(slots=True)
class PaperConfig:
    """How paper fills are simulated. Fees in parts per million (1 bp = 100; negative is a rebate),
    latencies in nanoseconds of the kernel clock."""

    maker_fee_ppm: int = 0
    taker_fee_ppm: int = 0
    cancel_model: str = CONSERVATIVE
    new_latency_ns: int = 0
    cancel_latency_ns: int = 0
    amend_latency_ns: int = 0

    def __post_init__(self) -> None:
        for name in ("maker_fee_ppm", "taker_fee_ppm"):
            v = getattr(self, name)
            if type(v) is not int or not -1_000_000 < v < 1_000_000:
                raise PaperConfigError(name, v, "must be a whole number of ppm between -999999 and 999999")
        for name in ("new_latency_ns", "cancel_latency_ns", "amend_latency_ns"):
            v = getattr(self, name)
            if type(v) is not int or v < 0:
                raise PaperConfigError(name, v, "must be a whole number of nanoseconds >= 0")
        if self.cancel_model not in CANCEL_MODELS:
            raise PaperConfigError(
                "cancel_model", self.cancel_model, f"must be one of {', '.join(CANCEL_MODELS)}"
            )


@dataclass(slots=True)
class PaperOrder:
    """One of our resting paper orders. `ahead` is the external size ahead of it in millionths of a lot
    (see `PaperDesk.queue_ahead` for lots)."""

    order_id: int
    symbol: str
    side: int
    price: int
    size: int
    leaves: int
    order_type: int
    stp: int
    filled: int = 0
    ahead: int = 0


@dataclass(slots=True)
class _Request:
    due: int
    kind: str
    order_id: int
    symbol: str
    args: tuple


@dataclass(slots=True)
class _PaperMarket:
    """Per symbol: the external book, our resting orders by level, and what the trades and our taker
    fills have done to the external levels."""

    instrument: Instrument
    book: L2Book
    # Per side: price -> our orders there, in time priority.
    resting: tuple[dict[int, list[PaperOrder]], dict[int, list[PaperOrder]]] = field(
        default_factory=lambda: ({}, {})
    )
    # (side, price) -> external lots our paper orders have already taken at that level.
    taken: dict[tuple[int, int], int] = field(default_factory=dict)
    # (side, price) -> trade volume at one of our levels since its last delta (explains decreases).
    traded: dict[tuple[int, int], int] = field(default_factory=dict)


class PaperDesk:
    """A paper venue for our orders against an external book (see the module docstring for the rules)."""

    mode = "PAPER"
    own_in_book = False

    def __init__(
        self, venue: str, instruments: Instrument | Iterable[Instrument], config: PaperConfig | None = None
    ) -> None:
        if isinstance(instruments, Instrument):
            instruments = [instruments]
        self.name = venue
        self.config = cfg = config or PaperConfig()
        self.instruments: dict[str, Instrument] = {}
        self._markets: dict[str, _PaperMarket] = {}
        for inst in instruments:
            self.add_instrument(inst)
        self._maker_ppm = cfg.maker_fee_ppm
        self._taker_ppm = cfg.taker_fee_ppm
        self._probabilistic = cfg.cancel_model == PROBABILISTIC
        self._latency = {
            _NEW: cfg.new_latency_ns,
            _CANCEL: cfg.cancel_latency_ns,
            _AMEND: cfg.amend_latency_ns,
        }
        self.state = "idle"
        self._bus: Bus | None = None
        self._clock: Clock | None = None
        self._orders: dict[int, PaperOrder] = {}
        self._in_flight_new: set[int] = set()
        self._pending: list[_Request] = []  # in arrival order; due times never decrease
        self._pending_head = 0
        self._last_due = 0
        self._trade_id = 0
        self._out: list = []
        # Counters.
        self.requests = 0
        self.accepted = 0
        self.fills = 0
        self.filled_lots = 0
        self.rejects = 0
        self.last_reject: str | None = None
        self.market_events = 0
        #: How our fills were made, by rule: "taker", "queue" (trades at our price), "through" (trades
        #: through our price), "cross" (the external book crossed our price).
        self.fills_by_rule = {"taker": 0, "queue": 0, "through": 0, "cross": 0}

    # ---- wiring --------------------------------------------------------------------------------
    def attach(self, bus: Bus, clock: Clock) -> None:
        """Publish on `bus`, read time from `clock`, and subscribe to the bus's market data (the desk
        keeps only its own venue's). Call once; do not also subscribe `on_event` yourself."""
        if self._bus is not None:
            raise RuntimeError(f"paper desk {self.name!r} is already attached")
        self._bus = bus
        self._clock = clock
        bus.subscribe((BookSnapshot, BookDelta, Trade), self.on_event)
        self.state = "up"

    async def start(self) -> None:
        self.state = "up"

    async def stop(self) -> None:
        self.state = "closed"

    def add_instrument(self, instrument: Instrument) -> None:
        """List a symbol (venues such as ccxt learn theirs only when they start); a symbol already
        listed keeps its book and orders."""
        if instrument.symbol not in self._markets:
            self.instruments[instrument.symbol] = instrument
            self._markets[instrument.symbol] = _PaperMarket(instrument, L2Book(self.name, instrument.symbol))

    # ---- queries -------------------------------------------------------------------------------
    def queue_ahead(self, order_id: int) -> int | None:
        """Lots ahead of our resting order at its price (external lots, rounded up, plus our own earlier
        orders there); None when the order is not resting here (in flight, done or unknown)."""
        o = self._orders.get(order_id)
        if o is None:
            return None
        ours_ahead = 0
        for r in self._markets[o.symbol].resting[o.side][o.price]:
            if r is o:
                break
            ours_ahead += r.leaves
        return -(-o.ahead // QUEUE_SCALE) + ours_ahead

    def order(self, order_id: int) -> PaperOrder | None:
        """Our resting order (read-only: do not change it), or None."""
        return self._orders.get(order_id)

    def orders(self, symbol: str | None = None) -> list[PaperOrder]:
        return [o for o in self._orders.values() if symbol is None or o.symbol == symbol]

    def book(self, symbol: str) -> L2Book:
        """The desk's copy of the external L2 book of `symbol`."""
        return self._markets[symbol].book

    @property
    def in_flight(self) -> int:
        """Requests sent but not yet arrived at the "venue"."""
        return len(self._pending) - self._pending_head

    # ---- requests (the Venue protocol) ---------------------------------------------------------
    def submit(
        self,
        order_id: int,
        symbol: str,
        side: int,
        price: int,
        size: int,
        order_type: int = LIMIT,
        stp: int = STP_CANCEL_RESTING,
    ) -> None:
        self.requests += 1
        now = self._now()
        m = self._markets.get(symbol) if type(symbol) is str else None
        why = None
        if type(order_id) is not int:
            why = f"order id {order_id!r} must be an int"
            order_id = -1
        elif m is None:
            why = f"{self.name} does not list {symbol!r}"
        elif order_id in self._orders or order_id in self._in_flight_new:
            why = f"duplicate order id {order_id}"
        elif type(side) is not int or side not in (BUY, SELL):
            why = f"side {side!r} must be 0 (buy) or 1 (sell)"
        elif type(order_type) is not int or not LIMIT <= order_type <= POST_ONLY:
            why = f"unknown order type {order_type!r}"
        elif type(stp) is not int or not STP_NONE <= stp <= STP_CANCEL_BOTH:
            why = f"unknown self-trade prevention mode {stp!r}"
        else:
            why = self._bad_size(m.instrument, size)
            if why is None and order_type != MARKET:
                why = self._bad_price(m.instrument, price)
        if why is not None:
            self._reject(now, symbol, order_id, why, new=True)
            self._flush()
            return
        if order_type == MARKET:
            price = 0
        self._in_flight_new.add(order_id)
        self._send(now, _NEW, order_id, symbol, (side, price, size, order_type, stp))

    def cancel(self, order_id: int, symbol: str) -> None:
        self.requests += 1
        now = self._now()
        why = self._bad_target(order_id, symbol)
        if why is not None:
            self._reject(now, symbol, order_id, why)
            self._flush()
            return
        self._send(now, _CANCEL, order_id, symbol, ())

    def amend(self, order_id: int, symbol: str, price: int | None = None, size: int | None = None) -> None:
        self.requests += 1
        now = self._now()
        why = self._bad_target(order_id, symbol)
        if why is None:
            inst = self._markets[symbol].instrument
            if size is not None:
                why = self._bad_size(inst, size)
            if why is None and price is not None:
                why = self._bad_price(inst, price)
        if why is not None:
            self._reject(now, symbol, order_id, why)
            self._flush()
            return
        self._send(now, _AMEND, order_id, symbol, (price, size))

    def _bad_target(self, order_id: object, symbol: str) -> str | None:
        if type(symbol) is not str or symbol not in self._markets:
            return f"{self.name} does not list {symbol!r}"
        if type(order_id) is not int:
            return f"unknown order id {order_id!r}"
        o = self._orders.get(order_id)
        if o is None and order_id not in self._in_flight_new:
            return f"unknown order id {order_id!r}"
        if o is not None and o.symbol != symbol:
            return f"order {order_id} is on {o.symbol}, not {symbol}"
        return None

    @staticmethod
    def _bad_size(inst: Instrument, size: object) -> str | None:
        if type(size) is not int or size <= 0:
            return f"size {size!r} must be a positive whole number of lots"
        if size < inst.min_lots:
            return f"size {size} is below the minimum order size of {inst.min_lots} lots"
        if size > inst.max_lots:
            return f"size {size} is above the maximum of {inst.max_lots} lots"
        return None

    @staticmethod
    def _bad_price(inst: Instrument, price: object) -> str | None:
        if type(price) is not int or not 0 < price <= inst.max_ticks:
            return f"price {price!r} is not on the tick grid (a whole number of ticks in 1..{inst.max_ticks})"
        return None

    def _send(self, now: int, kind: str, order_id: int, symbol: str, args: tuple) -> None:
        # One ordered connection: a request never overtakes an earlier one.
        due = max(now + self._latency[kind], self._last_due)
        self._last_due = due
        self._pending.append(_Request(due, kind, order_id, symbol, args))
        self._apply_due(now)
        self._flush()

    # ---- time and market data ------------------------------------------------------------------
    def on_time(self, now_ns: int) -> int:
        """Apply the requests that have reached the venue by `now_ns` (a timer calls this when market
        data is quiet); returns how many were applied."""
        n = self._apply_due(now_ns)
        self._flush()
        return n

    def on_event(self, ev: BookSnapshot | BookDelta | Trade) -> None:
        """Market data of the external book: requests due by `ev.ts` arrive first, then the event."""
        if ev.venue != self.name:
            return
        m = self._markets.get(ev.symbol)
        if m is None:
            return
        self.market_events += 1
        if self._pending_head < len(self._pending):
            self._apply_due(ev.ts)
        cls = type(ev)
        if cls is BookDelta:
            self._on_delta(m, ev)
        elif cls is Trade:
            self._on_trade(m, ev)
        elif cls is BookSnapshot:
            self._on_snapshot(m, ev)
        self._flush()

    def _apply_due(self, now: int) -> int:
        pending = self._pending
        i = self._pending_head
        n = 0
        while i < len(pending) and pending[i].due <= now:
            r = pending[i]
            i += 1
            self._pending_head = i  # before applying: applying can publish, publishing can re-enter
            n += 1
            m = self._markets[r.symbol]
            if r.kind == _NEW:
                self._in_flight_new.discard(r.order_id)
                self._apply_new(m, r.due, r.order_id, r.symbol, *r.args)
            elif r.kind == _CANCEL:
                self._apply_cancel(m, r.due, r.order_id, r.symbol)
            else:
                self._apply_amend(m, r.due, r.order_id, r.symbol, *r.args)
        if self._pending_head > 256 and self._pending_head * 2 > len(pending):
            del pending[: self._pending_head]
            self._pending_head = 0
        return n

    # ---- applying requests ---------------------------------------------------------------------
    def _apply_new(
        self,
        m: _PaperMarket,
        ts: int,
        order_id: int,
        symbol: str,
        side: int,
        price: int,
        size: int,
        order_type: int,
        stp: int,
    ) -> None:
        out = self._out
        if not m.book.valid:
            self._reject(
                ts, symbol, order_id, f"no synced {self.name} {symbol} book to fill against", new=True
            )
            return
        limit = None if order_type == MARKET else price
        crosses_book = next(self._liquidity(m, side, limit), None) is not None
        own_opposite = self._own_crossing(m, side, limit)
        if order_type == POST_ONLY and (crosses_book or own_opposite):
            self._reject(ts, symbol, order_id, POST_ONLY_WOULD_TRADE, new=True)
            return
        o = PaperOrder(order_id, symbol, side, price, size, size, order_type, stp)
        self.accepted += 1
        out.append(Accepted(ts, self.name, symbol, order_id, side, price, size, order_type, OUR_OWNER))
        if own_opposite and self._self_trade(m, o, own_opposite, ts):
            return
        if order_type == FOK:
            got = 0
            for _px, avail in self._liquidity(m, side, limit):
                got += avail
                if got >= size:
                    break
            if got < size:
                self._end(o, ts, KILLED)
                return
        if crosses_book:
            self._take(m, o, limit, ts)
            if o.leaves == 0:
                return  # its Done went out with the last fill
        if order_type == LIMIT or order_type == POST_ONLY:
            self._rest(m, o)
        else:
            self._end(o, ts, EXPIRED if order_type != FOK else KILLED)

    def _apply_cancel(self, m: _PaperMarket, ts: int, order_id: int, symbol: str) -> None:
        o = self._orders.get(order_id)
        if o is None:
            self._reject(ts, symbol, order_id, f"order {order_id} is no longer working")
            return
        self._unrest(m, o)
        self._end(o, ts, CANCELED)

    def _apply_amend(
        self, m: _PaperMarket, ts: int, order_id: int, symbol: str, price: int | None, size: int | None
    ) -> None:
        o = self._orders.get(order_id)
        if o is None:
            self._reject(ts, symbol, order_id, f"order {order_id} is no longer working")
            return
        new_price = o.price if price is None else price
        new_size = o.leaves if size is None else size
        if new_price == o.price and new_size <= o.leaves:
            # Same price, not bigger: it keeps its place in the queue (as on the matching book).
            o.leaves = new_size
            self._out.append(Amended(ts, self.name, symbol, order_id, new_price, new_size, True, OUR_OWNER))
            return
        crosses_book = next(self._liquidity(m, o.side, new_price), None) is not None
        own_opposite = self._own_crossing(m, o.side, new_price)
        if o.order_type == POST_ONLY and (crosses_book or own_opposite):
            self._reject(ts, symbol, order_id, POST_ONLY_WOULD_TRADE)
            return
        self._unrest(m, o)
        o.price = new_price
        o.leaves = new_size
        self._out.append(Amended(ts, self.name, symbol, order_id, new_price, new_size, False, OUR_OWNER))
        if own_opposite and self._self_trade(m, o, own_opposite, ts):
            return
        if crosses_book:
            self._take(m, o, new_price, ts)
            if o.leaves == 0:
                return
        self._rest(m, o)

    # ---- matching against the external book ----------------------------------------------------
    def _liquidity(self, m: _PaperMarket, taker_side: int, limit: int | None) -> Iterator[tuple[int, int]]:
        """(price, lots still available to us) of the external levels an order of `taker_side` with
        `limit` (None: any price) would meet, best first, skipping levels we have taken in full."""
        ext_side = 1 - taker_side
        taken = m.taken
        for px, size in m.book.iter_levels(ext_side):
            if limit is not None and (px > limit if taker_side == BUY else px < limit):
                return
            avail = size - taken.get((ext_side, px), 0)
            if avail > 0:
                yield px, avail

    def _take(self, m: _PaperMarket, o: PaperOrder, limit: int | None, ts: int) -> None:
        """Fill `o` as taker against the external levels, best first, partial fills per level."""
        ext_side = 1 - o.side
        taken = m.taken
        for px, avail in list(self._liquidity(m, o.side, limit)):
            f = avail if avail < o.leaves else o.leaves
            taken[(ext_side, px)] = taken.get((ext_side, px), 0) + f
            self.fills_by_rule["taker"] += 1
            self._fill(o, px, f, False, ts)
            if o.leaves == 0:
                return

    def _own_crossing(self, m: _PaperMarket, side: int, limit: int | None) -> list[PaperOrder]:
        """Our opposite orders that an order of `side` with `limit` would reach."""
        hit = []
        for px, level in m.resting[1 - side].items():
            if limit is None or (px <= limit if side == BUY else px >= limit):
                hit.extend(level)
        return hit

    def _self_trade(self, m: _PaperMarket, o: PaperOrder, opposite: list[PaperOrder], ts: int) -> bool:
        """Apply `o`'s STP mode to our crossing opposite orders; True when `o` itself was cancelled."""
        if o.stp == STP_NONE:
            return False
        if o.stp in (STP_CANCEL_RESTING, STP_CANCEL_BOTH):
            for r in opposite:
                self._unrest(m, r)
                self._end(r, ts, STP)
        if o.stp in (STP_CANCEL_INCOMING, STP_CANCEL_BOTH):
            self._end(o, ts, STP)
            return True
        return False

    # ---- our orders on the book ----------------------------------------------------------------
    def _rest(self, m: _PaperMarket, o: PaperOrder) -> None:
        # Behind everything the external book shows at the price now.
        o.ahead = m.book.level_size(o.side, o.price) * QUEUE_SCALE
        m.resting[o.side].setdefault(o.price, []).append(o)
        self._orders[o.order_id] = o

    def _unrest(self, m: _PaperMarket, o: PaperOrder) -> None:
        levels = m.resting[o.side]
        level = levels[o.price]
        level.remove(o)
        if not level:
            del levels[o.price]
            m.traded.pop((o.side, o.price), None)
        del self._orders[o.order_id]

    def _drop_filled(self, m: _PaperMarket, side: int, price: int) -> None:
        levels = m.resting[side]
        level = levels.get(price)
        if level is None:
            return
        live = [o for o in level if o.leaves]
        if live:
            level[:] = live
        else:
            del levels[price]
            m.traded.pop((side, price), None)

    def _fill(self, o: PaperOrder, price: int, size: int, is_maker: bool, ts: int) -> None:
        o.leaves -= size
        o.filled += size
        self._trade_id += 1
        self.fills += 1
        self.filled_lots += size
        fee = fee_units(price, size, self._maker_ppm if is_maker else self._taker_ppm)
        out = self._out
        out.append(
            Fill(
                ts,
                self.name,
                o.symbol,
                o.order_id,
                o.side,
                price,
                size,
                o.leaves,
                is_maker,
                fee,
                self._trade_id,
                OUR_OWNER,
            )
        )
        if o.leaves == 0:
            self._orders.pop(o.order_id, None)
            out.append(Done(ts, self.name, o.symbol, o.order_id, o.filled, FILLED, OUR_OWNER))

    def _end(self, o: PaperOrder, ts: int, reason: str) -> None:
        """Cancelled + Done for an order already off the book (or never on it)."""
        self._out.append(Cancelled(ts, self.name, o.symbol, o.order_id, o.leaves, reason, OUR_OWNER))
        self._out.append(Done(ts, self.name, o.symbol, o.order_id, o.filled, reason, OUR_OWNER))

    def _reject(self, ts: int, symbol: str, order_id: int, why: str, new: bool = False) -> None:
        self.rejects += 1
        self.last_reject = f"order {order_id}: {why}"
        self._out.append(Rejected(ts, self.name, symbol, order_id, why, OUR_OWNER))
        if new:
            self._out.append(Done(ts, self.name, symbol, order_id, 0, REJECTED, OUR_OWNER))

    def _flush(self) -> None:
        out = self._out
        if out:
            self._out = []
            if self._bus is None:
                raise RuntimeError(f"paper desk {self.name!r} is not attached to a bus")
            self._bus.publish_many(out)

    def _now(self) -> int:
        if self._clock is None:
            raise RuntimeError(f"paper desk {self.name!r} is not attached to a clock")
        return self._clock.now()

    # ---- market data ---------------------------------------------------------------------------
    def _on_trade(self, m: _PaperMarket, ev: Trade) -> None:
        if (
            ev.aggressor not in (BUY, SELL)
            or type(ev.size) is not int
            or ev.size <= 0
            or type(ev.price) is not int
        ):
            return
        side = 1 - ev.aggressor  # the side the trade took liquidity from: the one it can fill for us
        levels = m.resting[side]
        if not levels:
            return
        tp = ev.price
        volume = ev.size
        # Through: our levels better than the trade price would have been met first, best first.
        through = sorted((p for p in levels if (p > tp if side == BUY else p < tp)), reverse=side == BUY)
        for px in through:
            for o in levels[px]:
                o.ahead = 0  # the taker went past this price: everything ahead of us there is gone
                if volume:
                    f = volume if volume < o.leaves else o.leaves
                    volume -= f
                    self.fills_by_rule["through"] += 1
                    self._fill(o, px, f, True, ev.ts)
            self._drop_filled(m, side, px)
        level = levels.get(tp)
        if level is None:
            return
        key = (side, tp)
        m.traded[key] = m.traded.get(key, 0) + ev.size  # the external level will shrink by all of it
        if volume <= 0:
            return
        # At our price: the volume goes through the queue front first. For each of our orders, the
        # front of it is the external size ahead plus our earlier orders' open size.
        t = volume * QUEUE_SCALE
        ours_before = 0  # open lots of our earlier orders here, before this trade
        filled_before = 0  # lots of this trade that went to our earlier orders
        for o in level:
            front = o.ahead + ours_before * QUEUE_SCALE
            ours_before += o.leaves
            f = (t - front) // QUEUE_SCALE if t > front else 0
            if f > o.leaves:
                f = o.leaves
            external = (t if t < front else front) - filled_before * QUEUE_SCALE
            if external > 0:
                o.ahead = o.ahead - external if o.ahead > external else 0
            if f:
                filled_before += f
                self.fills_by_rule["queue"] += 1
                self._fill(o, tp, f, True, ev.ts)
        self._drop_filled(m, side, tp)

    def _on_delta(self, m: _PaperMarket, ev: BookDelta) -> None:
        book = m.book
        key = (ev.side, ev.price)
        level = m.resting[ev.side].get(ev.price) if ev.side in (BUY, SELL) else None
        prev = book.level_size(ev.side, ev.price) if level else 0
        applied = book.deltas_applied
        book.apply_delta(ev)
        if book.deltas_applied == applied:
            return  # stale, gapped or garbage: the book did not change
        new = ev.size
        if key in m.taken:
            t = m.taken[key]
            if new < t:
                if new:
                    m.taken[key] = new
                else:
                    del m.taken[key]
        if level:
            traded = m.traded.pop(key, 0)
            if new < prev:
                self._queue_shrinks(level, prev, new, traded)
        if m.resting[1 - ev.side]:
            self._cross(m, ev.side, ev.ts)

    def _queue_shrinks(self, level: list[PaperOrder], prev: int, new: int, traded: int) -> None:
        """The external level went from `prev` to `new` lots with `traded` lots traded there meanwhile
        (already taken off our queue position by `_on_trade`); the rest of the drop is cancels."""
        drop = prev - new
        cancels = drop - (traded if traded < drop else drop)
        cap = new * QUEUE_SCALE
        if cancels and self._probabilistic:
            before = prev - (drop - cancels)  # the level when the cancels happened
            for o in level:
                # Expected share of the cancelled lots that were ahead of us.
                o.ahead -= o.ahead * cancels // before
        for o in level:
            if o.ahead > cap:
                o.ahead = cap

    def _on_snapshot(self, m: _PaperMarket, ev: BookSnapshot) -> None:
        try:
            m.book.apply_snapshot(ev)
        except L2BookError:
            return
        book = m.book
        # A resync: we do not know what happened in between, so the conservative rule for both models.
        for side in (BUY, SELL):
            for px, level in m.resting[side].items():
                cap = book.level_size(side, px) * QUEUE_SCALE
                for o in level:
                    if o.ahead > cap:
                        o.ahead = cap
        m.traded.clear()
        for key, t in list(m.taken.items()):
            size = book.level_size(*key)
            if size < t:
                if size:
                    m.taken[key] = size
                else:
                    del m.taken[key]
        for side in (BUY, SELL):
            if m.resting[1 - side]:
                self._cross(m, side, ev.ts)

    def _cross(self, m: _PaperMarket, ext_side: int, ts: int) -> None:
        """External levels on `ext_side` that cross our resting orders fill them at our price, as
        maker, up to the crossing size not yet taken; our best-priced orders first."""
        our_side = 1 - ext_side
        levels = m.resting[our_side]
        best_ext = m.book.best_ask_price() if ext_side == SELL else m.book.best_bid_price()
        if best_ext is None:
            return
        if our_side == BUY:
            if best_ext > max(levels):
                return
            prices = sorted((p for p in levels if p >= best_ext), reverse=True)
        else:
            if best_ext < min(levels):
                return
            prices = sorted(p for p in levels if p <= best_ext)
        taken = m.taken
        for px in prices:
            dry = False
            for o in levels[px]:
                want = o.leaves
                got = 0
                for ext_px, avail in list(self._liquidity(m, our_side, px)):
                    f = avail if avail < want - got else want - got
                    taken[(ext_side, ext_px)] = taken.get((ext_side, ext_px), 0) + f
                    got += f
                    if got == want:
                        break
                if got < want:
                    dry = True  # nothing left that crosses this price, nor any worse one
                if got:
                    o.ahead = 0
                    self.fills_by_rule["cross"] += 1
                    self._fill(o, px, got, True, ts)
                if dry:
                    break
            self._drop_filled(m, our_side, px)
            if dry:
                return


class PaperVenue:
    """A market data venue (ccxt without keys, a replay, even the sim) whose order entry is a PaperDesk.

    Give it to the kernel in place of the data venue: the kernel sees one venue of the same name and
    instruments, with `mode = "PAPER"` and `own_in_book = False` (so the unified book adds our virtual
    orders to the venue's size), and the OMS's requests go to the desk. Everything else (start, stop,
    state, `publish_snapshot` for resyncs, the sim's `open`/`step`) is the data venue's.
    """

    mode = "PAPER"
    own_in_book = False

    def __init__(self, data_venue, config: PaperConfig | None = None) -> None:
        self.data = data_venue
        self.name: str = data_venue.name
        self.desk = PaperDesk(self.name, list(data_venue.instruments.values()), config)

    @property
    def instruments(self) -> dict[str, Instrument]:
        return self.data.instruments

    @property
    def state(self) -> str:
        return self.data.state

    def attach(self, bus: Bus, clock: Clock) -> None:
        self.data.attach(bus, clock)
        self.desk.attach(bus, clock)

    async def start(self) -> None:
        await self.data.start()
        self._list_new_symbols()

    async def stop(self) -> None:
        await self.data.stop()

    def submit(
        self,
        order_id: int,
        symbol: str,
        side: int,
        price: int,
        size: int,
        order_type: int = LIMIT,
        stp: int = STP_CANCEL_RESTING,
    ) -> None:
        if symbol not in self.desk.instruments:
            self._list_new_symbols()
        self.desk.submit(order_id, symbol, side, price, size, order_type, stp)

    def cancel(self, order_id: int, symbol: str) -> None:
        self.desk.cancel(order_id, symbol)

    def queue_ahead(self, order_id: int) -> int | None:
        """The desk's estimate (never the data venue's: our paper orders are not in its book)."""
        return self.desk.queue_ahead(order_id)

    def amend(self, order_id: int, symbol: str, price: int | None = None, size: int | None = None) -> None:
        self.desk.amend(order_id, symbol, price, size)

    def _list_new_symbols(self) -> None:
        for inst in list(self.data.instruments.values()):
            self.desk.add_instrument(inst)

    def __getattr__(self, name: str):
        # Only reached for attributes PaperVenue does not have: the data venue's own (open, step, ...).
        if name == "data":
            raise AttributeError(name)
        return getattr(self.data, name)

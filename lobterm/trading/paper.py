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
  the crossing size not already taken. This is the optimistic rule (`cross_fills`, on by default):
  providers who post only as makers (and the sim's providers) step around resting orders, so on the
  sim's own market it roughly doubled paper fills against what the matching engine gave the same
  quotes (seed 1, 600 s: 5277 fills, 2701 of them "cross", against 2621 matched); the sim's paper
  mode turns it off (`[sim] paper_cross_fills`).
- **Level size decreases that trades do not explain** are cancels. Trades are assumed to arrive
  before the deltas they caused (the sim publishes them so): trade volume seen at a level since its
  last delta explains that much of the next decrease, the rest is cancels. Models (`cancel_model`,
  hftbacktest's families): `risk_averse` alias `conservative` (cancels are behind us:
  `queue_ahead = min(queue_ahead, level size)`) and the probabilistic ones, where a cancel comes from
  behind us with probability p(front, back) (`queue_prob`): `power:n` (f(x) = x^n,
  f(back) / (f(back) + f(front)); `probabilistic` is power:1, cancels spread evenly over the level),
  `power2:n` (f(back) / f(back + front)), `power3:n` (1 - (front / (front + back))^n), `log` and
  `log2` (the same two forms with f(x) = log(1 + x)); our position moves by hftbacktest's
  `front - (1 - p) c + min(0, back - p c)` (`front_after_cancels`; the expected value, not a draw,
  so a replay gives the same fills). Size added to a level joins behind us. A snapshot (resync) applies
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

Measured against the sim's matching engine on one session and the same quotes (a shadow desk fed the
session's feed without our lots: lobterm/bench/paper_shadow.py, tests/integration/test_paper_vs_matching
.py): 300 s, seeds 1-3, fills and lots 0.99-1.00 of the matching engine's, spread captured 0.97-1.00,
adverse selection 1.00, net P&L within 0.3 USDT of -35 to -44. What a separate `--paper` run adds is
the sim's participants reacting to our orders in its book, which no desk outside the book can see.

Fill `trade_id`s are the desk's own counter (paper fills have no venue trade); `fills_by_rule` counts
our fills by the rule that made them (taker, queue, through, cross).

`PaperVenue(data_venue, config)` wraps a market data venue (ccxt without keys, a replay, the sim) so
that the kernel sees one venue whose order entry is a PaperDesk: no kernel change needed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

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
    Event,
    Fill,
    Rejected,
    Trade,
)
from lobterm.engine.instrument import Instrument, fee_units
from lobterm.engine.l2book import L2Book, L2BookError
from lobterm.engine.ports import Resyncable, StaleReporting

if TYPE_CHECKING:
    from lobterm.engine.ports import Bus, Clock, Handler

__all__ = [
    "CONSERVATIVE",
    "PROBABILISTIC",
    "QUEUE_FAMILIES",
    "QUEUE_SCALE",
    "front_after_cancels",
    "latency_jitter",
    "parse_queue_model",
    "queue_prob",
    "PaperConfig",
    "PaperConfigError",
    "PaperDesk",
    "PaperOrder",
    "PaperVenue",
]

CONSERVATIVE = "conservative"
PROBABILISTIC = "probabilistic"
CANCEL_MODELS = (CONSERVATIVE, PROBABILISTIC)

# Queue model families (hftbacktest's): `cancel_model` takes "FAMILY" or "FAMILY:n".
RISK_AVERSE, POWER, POWER2, POWER3, LOG, LOG2 = "risk_averse", "power", "power2", "power3", "log", "log2"
#: Family -> the code the fast path's kernel uses for it.
QUEUE_FAMILIES = {RISK_AVERSE: 0, POWER: 1, POWER2: 2, POWER3: 3, LOG: 4, LOG2: 5}
_ALIASES = {CONSERVATIVE: (RISK_AVERSE, 1.0), PROBABILISTIC: (POWER, 1.0)}


def parse_queue_model(text: object) -> tuple[str, float]:
    """(family, n) of a queue model spec: "risk_averse" (alias "conservative"), "power[:n]" (alias
    "probabilistic" = power:1), "power2[:n]", "power3[:n]", "log", "log2"; n > 0, default 1. Raises
    PaperConfigError naming what is wrong."""
    if not isinstance(text, str):
        raise PaperConfigError("cancel_model", text, "must be a text such as risk_averse or power:2")
    spec = text.strip().lower().replace("-", "_")
    if spec in _ALIASES:
        return _ALIASES[spec]
    family, _, arg = spec.partition(":")
    if family not in QUEUE_FAMILIES:
        raise PaperConfigError(
            "cancel_model",
            text,
            f"must be one of {', '.join([*CANCEL_MODELS, *QUEUE_FAMILIES])} (power families take :n)",
        )
    if not arg:
        return family, 1.0
    if family in (RISK_AVERSE, LOG, LOG2):
        raise PaperConfigError("cancel_model", text, f"{family} takes no exponent")
    try:
        n = float(arg)
    except ValueError:
        n = float("nan")
    if not 0 < n <= 100:
        raise PaperConfigError("cancel_model", text, "the exponent n must be a number in (0, 100]")
    return family, n


_M64 = (1 << 64) - 1
_C1, _C2, _C3 = 0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB


def latency_jitter(seed: int, i: int, jitter_ns: int) -> int:
    """The seeded random part of request `i`'s latency: uniform in [0, jitter_ns) ns, a pure function
    of (seed, i) (a splitmix64 hash, in wrapping 64-bit arithmetic as the fast path's kernel does it),
    so both backtest paths and every rerun draw the same."""
    if jitter_ns <= 0:
        return 0
    z = (seed * _C1 + (i + 1) * _C2) & _M64
    z = ((z ^ (z >> 30)) * _C2) & _M64
    z = ((z ^ (z >> 27)) * _C3) & _M64
    z ^= z >> 31
    return int((z >> 11) / 9007199254740992.0 * jitter_ns)


def _f(family: str, n: float, x: float) -> float:
    return math.log(1.0 + x) if family in (LOG, LOG2) else math.pow(x, n)


def queue_prob(family: str, n: float, front: float, back: float) -> float:
    """hftbacktest's probability that a cancel of the level came from behind us, given the lots
    `front` ahead of us and `back` behind: power/log f(back) / (f(back) + f(front)); power2/log2
    f(back) / f(back + front); power3 1 - f(front / (front + back)); f(x) = x**n or log(1 + x)."""
    if family == POWER3:
        return 1.0 - math.pow(front / (front + back), n)
    fb = _f(family, n, back)
    if family in (POWER2, LOG2):
        return fb / _f(family, n, back + front)
    return fb / (fb + _f(family, n, front))


def front_after_cancels(family: str, n: float, ahead: int, before: int, cancels: int) -> int:
    """Our queue position (`ahead`, millionths of a lot) after `cancels` lots were cancelled from a level
    of `before` lots: hftbacktest's ProbQueueModel, est_front = front - (1 - p) * c + min(0, back - p * c)
    with back = before - front (the external lots behind us) and p = `queue_prob`. The proportional case
    (power, n = 1) is computed exactly in integers; the rest in floats (the same IEEE operations as the
    fast path's kernel, so both paths agree). Risk-averse: unchanged (cancels are behind us). Unlike
    hftbacktest the position never goes below 0 (power2 with n > 1 can): a cancel never fills us."""
    if family == RISK_AVERSE or cancels <= 0 or ahead <= 0 or before <= 0:
        return ahead
    if family == POWER and n == 1.0:
        return ahead - ahead * cancels // before
    front = ahead / QUEUE_SCALE
    back = before - front
    if back < 0.0:
        back = 0.0
    p = queue_prob(family, n, front, back)
    if p != p:
        p = 0.0
    elif p == math.inf or p == -math.inf:
        p = 1.0
    est = front - (1.0 - p) * cancels + min(0.0, back - p * cancels)
    if est <= 0.0:
        return 0
    out = int(est * QUEUE_SCALE)
    return out if out < ahead else ahead


#: `queue_ahead` is kept in millionths of a lot (the probabilistic model removes fractions of lots).
QUEUE_SCALE = 1_000_000

_NEW, _CANCEL, _AMEND = "new", "cancel", "amend"
#: Salts the seed of the recorded-latency draws, so that they do not repeat the jitter's.
RECORDED_SALT = 0x5BD1E995


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
    #: The "external book crosses our price" rule (below). Optimistic where the book's providers would
    #: have stepped around our orders (post-only makers, the sim's providers): off, we fill from trades
    #: alone (at our price and through it).
    cross_fills: bool = True
    #: Seeded random latency: each request adds `latency_jitter(seed, i, jitter)` ns (uniform in
    #: [0, jitter]) to its type's latency, i = the request's number; the same draws on every run.
    latency_jitter_ns: int = 0
    latency_seed: int = 0
    #: Recorded latency (`--latency recorded`): per request type (new, cancel, amend) the session's own
    #: request -> answer times in ns; a type with samples draws request i's latency from them,
    #: `recorded_latency_ns[type][latency_jitter(latency_seed ^ RECORDED_SALT, i, len)]`, in place of
    #: its constant (the jitter still adds to it).
    recorded_latency_ns: tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]] = ((), (), ())

    def __post_init__(self) -> None:
        if type(self.cross_fills) is not bool:
            raise PaperConfigError("cross_fills", self.cross_fills, "must be true or false")
        for name in ("maker_fee_ppm", "taker_fee_ppm"):
            v = getattr(self, name)
            if type(v) is not int or not -1_000_000 < v < 1_000_000:
                raise PaperConfigError(name, v, "must be a whole number of ppm between -999999 and 999999")
        for name in ("new_latency_ns", "cancel_latency_ns", "amend_latency_ns", "latency_jitter_ns"):
            v = getattr(self, name)
            if type(v) is not int or v < 0:
                raise PaperConfigError(name, v, "must be a whole number of nanoseconds >= 0")
        if type(self.latency_seed) is not int or not 0 <= self.latency_seed < 2**31:
            raise PaperConfigError("latency_seed", self.latency_seed, "must be a whole number in [0, 2^31)")
        parse_queue_model(self.cancel_model)
        rec = self.recorded_latency_ns
        if (
            type(rec) is not tuple
            or len(rec) != 3
            or any(type(k) is not tuple or any(type(v) is not int or v < 0 for v in k) for k in rec)
        ):
            raise PaperConfigError(
                "recorded_latency_ns", rec, "must be three tuples (new, cancel, amend) of whole ns >= 0"
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
    new: tuple[int, int, int, int, int] | None = None  # a new order: side, price, size, type, stp
    amend: tuple[int | None, int | None] | None = None  # an amend: price, size (None: unchanged)


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
        self._cross_fills = cfg.cross_fills
        self._queue_family, self._queue_n = parse_queue_model(cfg.cancel_model)
        self._latency = {
            _NEW: cfg.new_latency_ns,
            _CANCEL: cfg.cancel_latency_ns,
            _AMEND: cfg.amend_latency_ns,
        }
        self._jitter = cfg.latency_jitter_ns
        rec = cfg.recorded_latency_ns
        self._recorded = {_NEW: rec[0], _CANCEL: rec[1], _AMEND: rec[2]}
        self._seed = cfg.latency_seed
        self._sent = 0  # requests sent to the "venue" (numbers the latency draws)
        self.state = "idle"
        self._bus: DeskBus | None = None
        self._clock: Clock | None = None
        self._orders: dict[int, PaperOrder] = {}
        self._in_flight_new: set[int] = set()
        self._pending: list[_Request] = []  # in arrival order; due times never decrease
        self._pending_head = 0
        self._last_due = 0
        self._trade_id = 0
        self._out: list[Event] = []
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
        #: Cancels at one of our levels after which this (probabilistic) queue model placed one of our
        #: orders elsewhere than the conservative model would have (0 under risk_averse). With nothing
        #: behind our order, nothing ahead, or back <= p * cancels, hftbacktest's formula reduces to the
        #: conservative min(ahead, level): with no such cancel the models give the same fills.
        self.queue_sensitive_cancels = 0

    # ---- wiring --------------------------------------------------------------------------------
    def attach(self, bus: DeskBus, clock: Clock) -> None:
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

    def next_due(self) -> int | None:
        """When the first request in flight reaches the "venue" (kernel ns), or None. A backtest
        delivers it then (`on_time`), before later market data, so that its answer reaches the
        strategy when it would have and not behind the next batch of market data."""
        if self._pending_head < len(self._pending):
            return self._pending[self._pending_head].due
        return None

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
        self._send(now, _NEW, order_id, symbol, new=(side, price, size, order_type, stp))

    def cancel(self, order_id: int, symbol: str) -> None:
        self.requests += 1
        now = self._now()
        why = self._bad_target(order_id, symbol)
        if why is not None:
            self._reject(now, symbol, order_id, why)
            self._flush()
            return
        self._send(now, _CANCEL, order_id, symbol)

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
        self._send(now, _AMEND, order_id, symbol, amend=(price, size))

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

    def _send(
        self,
        now: int,
        kind: str,
        order_id: int,
        symbol: str,
        *,
        new: tuple[int, int, int, int, int] | None = None,
        amend: tuple[int | None, int | None] | None = None,
    ) -> None:
        # One ordered connection: a request never overtakes an earlier one.
        rec = self._recorded[kind]
        if rec:
            lat = rec[latency_jitter(self._seed ^ RECORDED_SALT, self._sent, len(rec))]
        else:
            lat = self._latency[kind]
        if self._jitter:
            lat += latency_jitter(self._seed, self._sent, self._jitter)
        self._sent += 1
        due = max(now + lat, self._last_due)
        self._last_due = due
        self._pending.append(_Request(due, kind, order_id, symbol, new, amend))
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
        if type(ev) is BookDelta:
            self._on_delta(m, ev)
        elif type(ev) is Trade:
            self._on_trade(m, ev)
        elif type(ev) is BookSnapshot:
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
            new, amend = r.new, r.amend
            if new is not None:
                self._in_flight_new.discard(r.order_id)
                self._apply_new(m, r.due, r.order_id, r.symbol, *new)
            elif amend is not None:
                self._apply_amend(m, r.due, r.order_id, r.symbol, *amend)
            else:
                self._apply_cancel(m, r.due, r.order_id, r.symbol)
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
        if m.resting[1 - ev.side] and self._cross_fills:
            self._cross(m, ev.side, ev.ts)

    def _queue_shrinks(self, level: list[PaperOrder], prev: int, new: int, traded: int) -> None:
        """The external level went from `prev` to `new` lots with `traded` lots traded there meanwhile
        (already taken off our queue position by `_on_trade`); the rest of the drop is cancels."""
        drop = prev - new
        cancels = drop - (traded if traded < drop else drop)
        cap = new * QUEUE_SCALE
        if cancels and self._queue_family != RISK_AVERSE:
            before = prev - (drop - cancels)  # the level when the cancels happened
            family, n = self._queue_family, self._queue_n
            differs = False
            for o in level:
                # The expected share of the cancelled lots that were ahead of us.
                conservative = o.ahead if o.ahead < cap else cap
                o.ahead = front_after_cancels(family, n, o.ahead, before, cancels)
                differs = differs or (o.ahead if o.ahead < cap else cap) != conservative
            if differs:
                self.queue_sensitive_cancels += 1
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
            if m.resting[1 - side] and self._cross_fills:
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


class DeskBus(Protocol):
    """What the desk uses of a bus (lobterm.bus.Bus is one; a replay venue gives it a filtered one)."""

    def subscribe(self, event_type: type | tuple[type, ...], handler: Handler) -> None: ...

    def publish_many(self, events: list[Any]) -> None: ...


class MarketDataVenue(Resyncable, Protocol):
    """The market data side of a venue, which `PaperVenue` wraps (the sim, a replay, ccxt without keys)."""

    @property
    def name(self) -> str: ...

    @property
    def instruments(self) -> dict[str, Instrument]: ...

    @property
    def state(self) -> str: ...

    def attach(self, bus: Bus, clock: Clock) -> None: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class PaperVenue:
    """A market data venue (ccxt without keys, a replay, even the sim) whose order entry is a PaperDesk.

    Give it to the kernel in place of the data venue: the kernel sees one venue of the same name and
    instruments, with `mode = "PAPER"` and `own_in_book = False` (so the unified book adds our virtual
    orders to the venue's size), and the OMS's requests go to the desk. Everything else (start, stop,
    state, `publish_snapshot` for resyncs, `bind_market_state` for stale feeds) is the data venue's; the
    data venue's own extras (the sim's `step`) are reached through `.data`.
    """

    mode = "PAPER"
    own_in_book = False

    def __init__(self, data_venue: MarketDataVenue, config: PaperConfig | None = None) -> None:
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

    def publish_snapshot(self) -> None:
        self.data.publish_snapshot()

    def take_feed_latency(self) -> dict[str, list[list[int]]]:
        """The data venue's feed latency samples (a ccxt venue's; none from the others)."""
        take = getattr(self.data, "take_feed_latency", None)
        return take() if take is not None else {}

    def bind_market_state(self, set_stale: Callable[[str, str, bool], None]) -> None:
        """A data venue that can lose its feed marks its markets stale (ccxt); the others never do."""
        if isinstance(self.data, StaleReporting):
            self.data.bind_market_state(set_stale)

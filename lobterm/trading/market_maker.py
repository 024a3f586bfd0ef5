"""The market maker: a ladder of quotes on one venue+symbol, kept in line with the book and our inventory.

Each requote cycle does three things:
1. **Desired ladder** (`quote_ladder`, pure): a reservation price and a spread around the others' mid
   (the venue's book without our own orders, so that we never quote off our own quotes), then
   `levels` bids and asks stepping away from it. Two modes:
   - `ladder`: r = mid - skew * position; spread from `spread_ticks` (or `spread_bps` of the mid).
   - `avellaneda_stoikov`: r = s - q*gamma*sigma^2*tau and spread = gamma*sigma^2*tau +
     (2/gamma)*ln(1 + gamma/k), with sigma estimated from the mid (EWMA, ticks per sqrt second) and k
     configured or estimated from the trades' distance to the mid. tau is the time left to the horizon,
     or the fixed `horizon_s` in the infinite-horizon variant.
   Then, in both modes: the spread is at least `min_spread_ticks`; bids round down and asks up onto
   the tick grid; bids are clamped below the others' best ask and asks above their best bid (never
   cross); sizes shrink on the side that would add to the position and grow on the other
   (`size_skew`); a side stops at `max_position_lots` (the bids of the ladder never add up to more than
   max_position - position).
   The model may use floats; everything that leaves as an order is integer ticks and lots.
2. **Diff** (`diff_quotes`, pure): desired against our working quotes, with the smallest set of
   messages: a quote within `refresh_tolerance_ticks` of a desired price and within `size_tolerance`
   of its size is kept; a size that is too big is amended down in place (keeps queue priority);
   remaining quotes are amended to the remaining desired prices (one message instead of cancel+new);
   what is left over is cancelled or placed new. A side never has more than `levels` live quotes
   (counting those being cancelled) and never more lots than its max-position budget.
3. **Send** through the OMS, cancels first, then amends that move away from the other side, then
   amends towards it, then new orders (so that our own bid and ask never meet on the way).

Requoting is event driven (book events and trades of its market, its own fills and done orders) and
coalesced: while more events of its market are queued on the bus, it waits for the last one. The
market maker tracks its own quotes from their lifecycle events and needs nothing of the OMS but
`new_order`, `amend` and `cancel`. Quotes are pulled (cancelled) when the book goes invalid (a
sequence gap), the venue is not up, the book is stale, on `pause()`, `stop()` and the risk kill switch.
"""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields, replace
from typing import Any

from lobterm.engine.events import (
    BUY,
    LIMIT,
    OUR_OWNER,
    POST_ONLY,
    SELL,
    STP_CANCEL_RESTING,
    Accepted,
    Amended,
    BookDelta,
    BookGap,
    BookSnapshot,
    Cancelled,
    Done,
    Fill,
    Rejected,
    Trade,
    VenueStatus,
)
from lobterm.engine.instrument import MAX_UNITS

__all__ = [
    "AVELLANEDA_STOIKOV",
    "LADDER",
    "Ladder",
    "LadderView",
    "MarketMaker",
    "MarketMakerError",
    "QuoteActions",
    "QuoteParamError",
    "QuoteParams",
    "QuoteRow",
    "WorkingQuote",
    "avellaneda_stoikov",
    "diff_quotes",
    "quote_ladder",
]

LADDER = "ladder"
AVELLANEDA_STOIKOV = "avellaneda_stoikov"
MODES = (LADDER, AVELLANEDA_STOIKOV)

# Market maker states.
RUNNING = "running"
PAUSED = "paused"
STOPPED = "stopped"

# Quote states: sent (no Accepted yet), working, amending (amend sent), cancelling (cancel sent).
SENT = "sent"
WORKING = "working"
AMENDING = "amending"
CANCELLING = "cancelling"

# Floats that should be whole ticks (100.5 - 0.5) must not round a whole tick away.
_EPS = 1e-6
_SQRT_HALF_PI = math.sqrt(math.pi / 2.0)


# ---- parameters ---------------------------------------------------------------------------------
class QuoteParamError(ValueError):
    """A quote parameter that was refused: `name` the parameter, `value` what was given, `rule` why."""

    def __init__(self, name: str, value: object, rule: str) -> None:
        self.name = name
        self.value = value
        self.rule = rule
        super().__init__(f"quote parameter {name} = {value!r} rejected: {rule}")


class MarketMakerError(RuntimeError):
    """A request the market maker cannot do in its current state (e.g. resume after the kill switch)."""


@dataclass(frozen=True, slots=True)
class QuoteParams:
    """Everything that shapes the quote ladder. Prices in ticks, sizes in lots, times in ms/s."""

    mode: str = LADDER
    levels: int = 5  # per side
    spread_ticks: int = 2  # full spread between our best bid and best ask (ladder mode)
    spread_bps: float = 0.0  # > 0: the spread is this many bps of the mid instead (ladder mode)
    level_step_ticks: int = 1  # distance between two levels of one side
    size_lots: int = 10  # size of the first level
    size_step_lots: int = 0  # each further level is this much bigger
    sizes: tuple[int, ...] = ()  # explicit sizes per level (the last repeats); overrides size_lots
    skew_ticks_per_lot: float = 0.0  # ladder mode: reservation price = mid - skew * position
    size_skew: float = 0.0  # 0..1: at max position the adding side is (1 - x) times, the other (1 + x)
    min_spread_ticks: int = 1
    max_position_lots: int = 100  # |position| limit; a side never offers more than what is left
    refresh_tolerance_ticks: int = 0  # keep a quote this close to its desired price
    size_tolerance: float = 0.0  # keep a quote whose size is down to (1 - x) of the desired size
    max_order_age_ms: int = 0  # > 0: requote orders older than this
    post_only: bool = True
    use_amend: bool = True  # False: reprice by cancel and new
    stale_after_ms: int = 0  # > 0: pull quotes when no market data came for this long
    reject_backoff_ms: int = 100  # after a rejection, only cancels for this long
    # Avellaneda-Stoikov
    gamma: float = 0.001  # risk aversion, per tick*lot
    sigma_ticks: float = 1.0  # volatility prior (ticks per sqrt second); fixed if not estimate_sigma
    estimate_sigma: bool = True
    vol_alpha: float = 0.05  # EWMA weight of one mid sample
    k: float = 1.5  # order arrival intensity decay per tick; prior if estimate_k
    estimate_k: bool = False
    k_alpha: float = 0.05  # EWMA weight of one trade's distance to the mid
    horizon_s: float = 1.0  # T; the infinite-horizon variant uses it as a fixed tau
    infinite_horizon: bool = True

    def validate(self) -> None:
        """Raise `QuoteParamError` naming the first parameter that breaks its rule."""
        if self.mode not in MODES:
            raise QuoteParamError("mode", self.mode, f"must be one of {', '.join(MODES)}")
        _int("levels", self.levels, 1, 50)
        _int("spread_ticks", self.spread_ticks, 0)
        _num("spread_bps", self.spread_bps, 0.0, 10_000.0)
        _int("level_step_ticks", self.level_step_ticks, 1)
        _int("size_lots", self.size_lots, 1, MAX_UNITS)
        _int("size_step_lots", self.size_step_lots, 0, MAX_UNITS)
        if not isinstance(self.sizes, tuple):
            raise QuoteParamError("sizes", self.sizes, "must be a list of lots per level")
        for s in self.sizes:
            if s.__class__ is not int or not 0 < s <= MAX_UNITS:
                raise QuoteParamError(
                    "sizes", self.sizes, f"every size must be a whole number of lots > 0, not {s!r}"
                )
        _num("skew_ticks_per_lot", self.skew_ticks_per_lot, 0.0)
        _num("size_skew", self.size_skew, 0.0, 1.0)
        _int("min_spread_ticks", self.min_spread_ticks, 1)
        _int("max_position_lots", self.max_position_lots, 1, MAX_UNITS)
        _int("refresh_tolerance_ticks", self.refresh_tolerance_ticks, 0)
        _num("size_tolerance", self.size_tolerance, 0.0, 1.0, hi_open=True)
        _int("max_order_age_ms", self.max_order_age_ms, 0)
        _int("stale_after_ms", self.stale_after_ms, 0)
        _int("reject_backoff_ms", self.reject_backoff_ms, 0)
        for name in ("post_only", "use_amend", "estimate_sigma", "estimate_k", "infinite_horizon"):
            if getattr(self, name).__class__ is not bool:
                raise QuoteParamError(name, getattr(self, name), "must be true or false")
        _num("gamma", self.gamma, 0.0, lo_open=True)
        _num("sigma_ticks", self.sigma_ticks, 0.0)
        _num("vol_alpha", self.vol_alpha, 0.0, 1.0, lo_open=True)
        _num("k", self.k, 0.0, lo_open=True)
        _num("k_alpha", self.k_alpha, 0.0, 1.0, lo_open=True)
        _num("horizon_s", self.horizon_s, 0.0, lo_open=True)

    def level_sizes(self) -> list[int]:
        """The unskewed size of each level, best first."""
        if self.sizes:
            last = len(self.sizes) - 1
            return [self.sizes[min(i, last)] for i in range(self.levels)]
        return [self.size_lots + i * self.size_step_lots for i in range(self.levels)]


PARAM_NAMES = frozenset(f.name for f in fields(QuoteParams))


def _int(name: str, value: object, lo: int, hi: int | None = None) -> None:
    if value.__class__ is not int:
        raise QuoteParamError(name, value, "must be a whole number")
    if value < lo or (hi is not None and value > hi):  # type: ignore[operator]
        raise QuoteParamError(name, value, f"must be >= {lo}" if hi is None else f"must be in {lo}..{hi}")


def _num(
    name: str,
    value: object,
    lo: float,
    hi: float | None = None,
    *,
    lo_open: bool = False,
    hi_open: bool = False,
) -> None:
    if value.__class__ not in (int, float) or not math.isfinite(value):  # type: ignore[arg-type]
        raise QuoteParamError(name, value, "must be a finite number")
    v = float(value)  # type: ignore[arg-type]
    if v < lo or (lo_open and v == lo) or (hi is not None and (v > hi or (hi_open and v == hi))):
        low = f"{'(' if lo_open else '['}{lo:g}"
        high = "inf)" if hi is None else f"{hi:g}{')' if hi_open else ']'}"
        raise QuoteParamError(name, value, f"must be in {low}, {high}")


# ---- the desired ladder (pure) -------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Ladder:
    """A desired quote ladder: (price ticks, size lots) per level, best first on each side.

    `reservation` and `spread` are the model's values in ticks (floats, for the UI to round; orders
    use the integer prices of the levels)."""

    reservation: float
    spread: float
    bids: tuple[tuple[int, int], ...]
    asks: tuple[tuple[int, int], ...]


def avellaneda_stoikov(
    mid: float, position: int, gamma: float, sigma2: float, tau_s: float, k: float
) -> tuple[float, float]:
    """(reservation price, optimal total spread), both in ticks.

    r = s - q*gamma*sigma^2*tau; spread = gamma*sigma^2*tau + (2/gamma)*ln(1 + gamma/k), with sigma^2 in
    ticks^2 per second, tau in seconds, q in lots."""
    reservation = mid - position * gamma * sigma2 * tau_s
    spread = gamma * sigma2 * tau_s + (2.0 / gamma) * math.log1p(gamma / k)
    return reservation, spread


def quote_ladder(
    p: QuoteParams,
    best_bid: int,
    best_ask: int,
    position: int,
    *,
    sigma_ticks: float | None = None,
    k: float | None = None,
    tau_s: float | None = None,
    min_lots: int = 1,
    max_lots: int = MAX_UNITS,
) -> Ladder:
    """The desired ladder around the others' best bid/ask (ticks) for a signed `position` (lots).

    `sigma_ticks`, `k` and `tau_s` feed the Avellaneda-Stoikov mode (defaults: the parameters' priors
    and `horizon_s`)."""
    mid = (best_bid + best_ask) / 2.0
    if p.mode == AVELLANEDA_STOIKOV:
        sig = p.sigma_ticks if sigma_ticks is None else sigma_ticks
        reservation, spread = avellaneda_stoikov(
            mid,
            position,
            p.gamma,
            sig * sig,
            p.horizon_s if tau_s is None else tau_s,
            p.k if k is None else k,
        )
    else:
        reservation = mid - p.skew_ticks_per_lot * position
        spread = p.spread_bps * mid / 1e4 if p.spread_bps > 0 else float(p.spread_ticks)
    if not (math.isfinite(reservation) and math.isfinite(spread)):
        return Ladder(reservation, spread, (), ())
    spread = max(spread, float(p.min_spread_ticks))
    half = spread / 2.0
    # Bids round down, asks up: the spread is at least what was asked for. Then never cross the others.
    bid0 = min(math.floor(reservation - half + _EPS), best_ask - 1)
    ask0 = max(math.ceil(reservation + half - _EPS), best_bid + 1)

    base = p.level_sizes()
    ratio = max(-1.0, min(1.0, position / p.max_position_lots))
    step = p.level_step_ticks
    bids = _side(
        bid0, -step, base, 1.0 - p.size_skew * ratio, p.max_position_lots - position, min_lots, max_lots
    )
    asks = _side(
        ask0, step, base, 1.0 + p.size_skew * ratio, p.max_position_lots + position, min_lots, max_lots
    )
    return Ladder(reservation, spread, bids, asks)


def _side(
    top: int, step: int, base: list[int], factor: float, budget: int, min_lots: int, max_lots: int
) -> tuple[tuple[int, int], ...]:
    out = []
    price = top
    for size in base:
        if price < 1 or price > MAX_UNITS or budget < min_lots:
            break
        lots = min(int(size * factor + _EPS), max_lots, budget)
        if lots >= min_lots:
            out.append((price, lots))
            budget -= lots
        price += step
    return tuple(out)


# ---- our quotes and the diff (pure) --------------------------------------------------------------
@dataclass(slots=True)
class WorkingQuote:
    """One of our quotes as the market maker knows it from its lifecycle events.

    `price`/`size` are where it rests and its open lots (as requested while `sent`); `want_price`/
    `want_size` what an amend in flight asks for."""

    order_id: int
    side: int
    price: int
    size: int
    state: str = SENT
    placed_ns: int = 0
    want_price: int = 0
    want_size: int = 0
    rejects: int = 0

    @property
    def busy(self) -> bool:
        """A request is in flight (new or amend): leave it alone until its answer arrives."""
        return self.state == SENT or self.state == AMENDING

    @property
    def target_price(self) -> int:
        return self.want_price if self.state == AMENDING else self.price

    @property
    def target_size(self) -> int:
        return self.want_size if self.state == AMENDING else self.size


@dataclass(slots=True)
class QuoteActions:
    """What one cycle sends: cancels (order ids), amends (order id, side, price, size) and new orders
    (side, price, size); `assignment` maps (side, level) to the order id that serves it."""

    cancels: list[int] = field(default_factory=list)
    amends: list[tuple[int, int, int, int]] = field(default_factory=list)
    news: list[tuple[int, int, int]] = field(default_factory=list)
    assignment: dict[tuple[int, int], int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.cancels) + len(self.amends) + len(self.news)


def diff_quotes(
    ladder: Ladder,
    quotes: Iterable[WorkingQuote],
    p: QuoteParams,
    position: int,
    now_ns: int = 0,
    *,
    min_lots: int = 1,
    allow_new: bool = True,
) -> QuoteActions:
    """The smallest set of messages that turns our working `quotes` into `ladder` (see the module doc)."""
    out = QuoteActions()
    by_side: tuple[list[WorkingQuote], list[WorkingQuote]] = ([], [])
    for q in quotes:
        by_side[q.side].append(q)
    for side in (BUY, SELL):
        desired = ladder.bids if side == BUY else ladder.asks
        # Our quotes on this side must stay clear of our best desired quote on the other side.
        other = ladder.asks if side == BUY else ladder.bids
        limit = other[0][0] if other else None
        budget = p.max_position_lots - position if side == BUY else p.max_position_lots + position
        _diff_side(side, desired, by_side[side], p, budget, limit, now_ns, min_lots, allow_new, out)
    return out


def _first(pair: tuple) -> Any:
    return pair[0]


def _diff_side(
    side: int,
    desired: tuple[tuple[int, int], ...],
    mine: list[WorkingQuote],
    p: QuoteParams,
    budget: int,
    limit: int | None,
    now_ns: int,
    min_lots: int,
    allow_new: bool,
    out: QuoteActions,
) -> None:
    sign = 1 if side == BUY else -1  # sign * price is larger for a better price
    count = len(mine)  # quotes being cancelled still count until their Done
    exposure = sum(max(q.size, q.target_size) for q in mine)
    free = [q for q in mine if q.state != CANCELLING]
    if p.max_order_age_ms:
        max_age = p.max_order_age_ms * 1_000_000
        aged = [q for q in free if q.state == WORKING and now_ns - q.placed_ns >= max_age]
        for q in aged:
            out.cancels.append(q.order_id)
            free.remove(q)
    tol = p.refresh_tolerance_ticks

    # 1. Keep (or resize in place) a quote within tolerance of each desired level. Walking both in
    # ascending price and taking the lowest quote that fits gives the most matches (fewest messages).
    cands = [(q.want_price if q.state == AMENDING else q.price, q) for q in free]
    if limit is not None:
        cands = [c for c in cands if sign * (limit - c[0]) > 0]
    cands.sort(key=_first)
    n_cands = len(cands)
    matched: set[int] = set()
    unmatched: list[tuple[int, int, int]] = []
    j = 0
    # Desired levels are best first: bids descending, asks ascending.
    for level in range(len(desired) - 1, -1, -1) if side == BUY else range(len(desired)):
        price, size = desired[level]
        while j < n_cands and cands[j][0] < price - tol:
            j += 1
        if j == n_cands or cands[j][0] > price + tol:
            unmatched.append((level, price, size))
            continue
        best = cands[j][1]
        j += 1
        matched.add(best.order_id)
        out.assignment[(side, level)] = best.order_id
        if best.busy:
            continue
        have = best.size
        if have > size:  # smaller at the same price keeps our place in the queue
            out.amends.append((best.order_id, side, best.price, size))
            exposure -= have - size
        elif have < size - int(size * p.size_tolerance + _EPS):
            grow = min(size - have, budget - exposure)
            if grow > 0:  # growing loses priority anyway: go to the desired price as well
                out.amends.append((best.order_id, side, price, have + grow))
                exposure += grow
    unmatched.sort()  # best level first
    free = [q for q in free if q.order_id not in matched]
    free.sort(key=lambda q: -sign * q.price)

    # 2. Move the remaining quotes to the remaining desired levels: one amend instead of cancel + new.
    movable = [q for q in free if not q.busy]
    replaced: list[tuple[int, int, int]] = []
    for (level, price, size), q in zip(unmatched, movable, strict=False):
        if not p.use_amend:
            out.cancels.append(q.order_id)
            replaced.append((level, price, size))
            continue
        new_size = size
        if size > q.size:
            new_size = q.size + max(0, min(size - q.size, budget - exposure))
        exposure += new_size - q.size
        out.amends.append((q.order_id, side, price, new_size))
        out.assignment[(side, level)] = q.order_id
    n = min(len(unmatched), len(movable))
    # 3. Cancel what is left over; place what is still missing, within the count and lots budgets.
    for q in movable[n:]:
        out.cancels.append(q.order_id)
    if not allow_new:
        return
    for _level, price, size in replaced + unmatched[n:]:
        if count >= p.levels:
            break
        lots = min(size, budget - exposure)
        if lots < min_lots:
            break
        out.news.append((side, price, lots))
        count += 1
        exposure += lots


# ---- the view for the UI -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class QuoteRow:
    """One level of one side: what we want there and the quote that serves it (None where missing)."""

    side: int
    level: int | None  # None: a working quote no desired level claims (about to be cancelled)
    desired_price: int | None
    desired_size: int | None
    working_price: int | None
    working_size: int | None
    order_id: int | None
    state: str | None


@dataclass(frozen=True, slots=True)
class LadderView:
    status: str  # running, paused, stopped
    reason: str  # why it is not quoting ("" when it is)
    mode: str
    position: int
    reservation_tick: int | None  # the model's reservation price, rounded to the nearest tick
    quoted_spread_ticks: int | None  # best desired ask - best desired bid
    bids: tuple[QuoteRow, ...]
    asks: tuple[QuoteRow, ...]


# ---- the market maker ----------------------------------------------------------------------------
def _accepts(fn: Callable, name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(v.kind is inspect.Parameter.VAR_KEYWORD for v in params.values())


class MarketMaker:
    """Quotes a ladder on `market` (a kernel Market: `.venue`, `.symbol`, `.l2`, `.unified`,
    `.instrument`) through `oms`, for the position that `inventory.position(venue, symbol).lots` reports
    (or a zero-argument callable returning signed lots).

    Construct it after the kernel's own subscriptions (books, OMS, inventory): it subscribes itself to
    the bus and reads the books and the position as they stand after those handlers ran. It starts
    paused: `resume()` starts quoting."""

    def __init__(
        self,
        bus: Any,
        oms: Any,
        market: Any,
        inventory: Any,
        clock: Any,
        params: QuoteParams | None = None,
        *,
        risk: Any = None,
        tag: str = "mm",
        subscribe: bool = True,
    ) -> None:
        self.params = params or QuoteParams()
        self.params.validate()
        self.bus = bus
        self.oms = oms
        self.market = market
        self.venue: str = market.venue
        self.symbol: str = market.symbol
        self.instrument = market.instrument
        self.l2 = market.l2
        self.unified = getattr(market, "unified", None)
        self.clock = clock
        self.risk = risk
        #: Optional `side -> bool`: True means "no maker quotes on this side now" (the hedger's
        #: `blocks_quoting`, while a hedge of the position that side would add to is overdue).
        self.side_block: Callable[[int], bool] | None = None
        #: Optional `(market_maker, changes) -> None`, called after `update_params` applied `changes`
        #: (the kernel records them in the session file; the market maker knows nothing of recording).
        self.on_change: Callable[[MarketMaker, dict[str, Any]], None] | None = None
        self.tag = tag
        if hasattr(inventory, "position"):
            venue, symbol = self.venue, self.symbol
            self._position: Callable[[], int] = lambda: inventory.position(venue, symbol).lots
        else:
            self._position = inventory
        self._new_kwargs = {"tag": tag} if _accepts(oms.new_order, "tag") else {}
        # The bus's pending queue, to wait for the last queued event of a batch before requoting.
        self._queue = bus.pending
        self.min_lots = max(1, getattr(self.instrument, "min_lots", 1))
        self.max_lots = getattr(self.instrument, "max_lots", MAX_UNITS)

        self.state = PAUSED
        self.reason = "paused"
        self.params_version = 0
        self.version = 0  # changes whenever something the UI shows changed
        self._quotes: dict[int, WorkingQuote] = {}
        self._ladder: Ladder | None = None
        self._assignment: dict[tuple[int, int], int] = {}
        self._in_cycle = False
        self._again = False
        self._dirty = True  # something happened that the last diff did not ask for
        self._deferred = False  # a requote is owed to the last queued event
        self._sending = False
        self._early: list = []  # events of an order that arrived before new_order returned its id
        self._backoff_until = 0
        self._venue_state: str | None = None
        self._last_md_ns = clock.now()  # the book is as fresh as it was when we were built
        self._last_request_ns = -1
        self._trigger_pc = 0
        self._started_ns: int | None = None
        self._loop_ts = -1
        self._loop_cycles = 0
        # Model estimates.
        self._sigma_est: float | None = None  # EWMA estimate of sigma, ticks per sqrt second
        self._vol_prev: tuple[int, int] | None = None  # (ts, 2*mid) at the end of the previous batch
        self._vol_batch: tuple[int, int] | None = None  # (ts, 2*mid) latest of the current batch
        self._trade_depth: float | None = None  # EWMA of a trade's distance to the mid, ticks
        self._trade_samples = 0

        # Counters.
        self.quotes_sent = 0
        self.amends_sent = 0
        self.cancels_sent = 0
        self.requote_cycles = 0
        self.fills = 0
        self.filled_lots = 0
        self.rejects = 0
        self.send_errors = 0
        self.pulls = 0
        self.holds = 0
        self.lost_quotes = 0
        self.last_reject: str | None = None
        self.last_tick_to_quote_ns: int | None = None

        self._handlers: list[tuple[Any, Callable]] = []
        if subscribe:
            self._subscribe()
        add_on_kill = getattr(risk, "add_on_kill", None)
        if add_on_kill is not None:  # the risk kill switch stops us before it cancels every order
            add_on_kill(self._on_risk_kill)

    @classmethod
    def from_kernel(
        cls,
        kernel: Any,
        venue: str | None = None,
        symbol: str | None = None,
        params: QuoteParams | None = None,
        **kwargs: Any,
    ) -> MarketMaker:
        """A market maker on `kernel.markets[(venue, symbol)]` (default: the kernel's first market)."""
        market = kernel.default_market if venue is None else kernel.markets[(venue, symbol)]
        kwargs.setdefault("risk", getattr(kernel, "risk", None))
        return cls(kernel.bus, kernel.oms, market, kernel.inventory, kernel.clock, params, **kwargs)

    def _subscribe(self) -> None:
        pairs = [
            ((BookDelta, BookSnapshot, Trade), self.on_market_data),
            ((Accepted, Fill, Cancelled, Amended, Rejected, Done), self.on_order_event),
            (BookGap, self.on_book_gap),
            (VenueStatus, self.on_venue_status),
        ]
        for types, handler in pairs:
            self.bus.subscribe(types, handler)
            self._handlers.append((types, handler))

    def close(self) -> None:
        """Stop listening to the bus (quotes are not touched: `stop()` first)."""
        for _types, handler in self._handlers:
            self.bus.unsubscribe(handler)
        self._handlers.clear()

    # ---- controls --------------------------------------------------------------------------------
    def resume(self) -> None:
        """Start (or restart after `pause`) quoting."""
        if self.state == STOPPED:
            raise MarketMakerError(
                f"market maker {self.venue}:{self.symbol} was stopped ({self.reason}); "
                "call rearm() before resume()"
            )
        if self._started_ns is None:
            self._started_ns = self.clock.now()
        self.state = RUNNING
        self.reason = ""
        self.version += 1
        self._dirty = True
        self.requote()

    def pause(self) -> None:
        """Stop quoting and cancel our quotes; `resume()` starts again."""
        if self.state == RUNNING:
            self.state = PAUSED
        self._pull("paused" if self.state == PAUSED else self.reason)

    def stop(self, reason: str = "kill switch") -> None:
        """The kill switch: cancel every quote and refuse to quote until `rearm()`."""
        self.state = STOPPED
        self._pull(reason)

    def _on_risk_kill(self, reason: str) -> None:
        self.stop(f"risk kill switch: {reason}")

    def rearm(self) -> None:
        """After `stop()`: back to paused, so that `resume()` is allowed again."""
        if self.state == STOPPED:
            self.state = PAUSED
            self.reason = "paused"
            self.version += 1

    def update_params(self, **changes: Any) -> QuoteParams:
        """Change parameters live, all or none: raises `QuoteParamError` naming the first bad one."""
        for name, value in changes.items():
            if name not in PARAM_NAMES:
                known = ", ".join(sorted(PARAM_NAMES))
                raise QuoteParamError(name, value, f"is not a quote parameter (known: {known})")
        if isinstance(changes.get("sizes"), list):
            changes["sizes"] = tuple(changes["sizes"])
        try:
            new = replace(self.params, **changes)
        except TypeError as exc:  # pragma: no cover - names were checked above
            raise QuoteParamError("?", changes, str(exc)) from None
        new.validate()
        self.params = new
        self.params_version += 1
        self._dirty = True
        self.version += 1
        if self.on_change is not None:  # before the requote: the change precedes the orders it causes
            self.on_change(self, changes)
        if self.state == RUNNING:
            self.requote()
        return new

    # ---- the Strategy protocol (lobterm.trading.strategy) ------------------------------------------
    @property
    def name(self) -> str:
        return f"mm:{self.venue}:{self.symbol}"

    @property
    def markets(self) -> tuple[tuple[str, str], ...]:
        return ((self.venue, self.symbol),)

    def on_timer(self, now_ns: int) -> None:
        self.heartbeat()

    def status(self) -> dict[str, str]:
        return {
            "state": self.state,
            "reason": self.reason,
            "quotes": str(len(self._quotes)),
            "fills": str(self.fills),
        }

    def heartbeat(self) -> int:
        """Call on a timer (the UI clock): checks staleness and quote age when no event arrives."""
        if self.state != RUNNING:
            return 0
        self._dirty = True  # a full diff now and then, whatever the events said
        return self.requote()

    # ---- reading ---------------------------------------------------------------------------------
    @property
    def working_quotes(self) -> list[WorkingQuote]:
        """Our live quotes (including those with a cancel in flight), bids best first then asks."""
        qs = list(self._quotes.values())
        qs.sort(key=lambda q: (q.side, -q.price if q.side == BUY else q.price))
        return qs

    @property
    def ladder(self) -> Ladder | None:
        """The last desired ladder."""
        return self._ladder

    def ladder_view(self) -> LadderView:
        """Desired against working quotes, level by level, for the quote panel."""
        ladder = self._ladder
        sides: list[tuple[QuoteRow, ...]] = []
        for side in (BUY, SELL):
            rows = []
            claimed = set()
            desired = () if ladder is None else (ladder.bids if side == BUY else ladder.asks)
            # The last diff's assignment, else (a quote placed new since) the quote at that price.
            at_price = {
                q.target_price: q for q in self._quotes.values() if q.side == side and q.state != CANCELLING
            }
            for level, (price, size) in enumerate(desired):
                q = self._quotes.get(self._assignment.get((side, level), -1))
                if q is None or q.side != side or q.order_id in claimed:
                    q = at_price.get(price)
                if q is not None and q.order_id not in claimed:
                    claimed.add(q.order_id)
                    rows.append(QuoteRow(side, level, price, size, q.price, q.size, q.order_id, q.state))
                else:
                    rows.append(QuoteRow(side, level, price, size, None, None, None, None))
            for q in self.working_quotes:
                if q.side == side and q.order_id not in claimed:
                    rows.append(QuoteRow(side, None, None, None, q.price, q.size, q.order_id, q.state))
            sides.append(tuple(rows))
        spread = None
        if ladder is not None and ladder.bids and ladder.asks:
            spread = ladder.asks[0][0] - ladder.bids[0][0]
        res = None
        if ladder is not None and math.isfinite(ladder.reservation):
            res = round(ladder.reservation)
        return LadderView(
            self.state, self.reason, self.params.mode, self._position(), res, spread, sides[0], sides[1]
        )

    def stats(self) -> dict[str, Any]:
        """Counters for the status bar and metrics."""
        return {
            "state": self.state,
            "reason": self.reason,
            "quotes": len(self._quotes),
            "quotes_sent": self.quotes_sent,
            "amends": self.amends_sent,
            "cancels": self.cancels_sent,
            "requote_cycles": self.requote_cycles,
            "fills": self.fills,
            "filled_lots": self.filled_lots,
            "rejects": self.rejects,
            "send_errors": self.send_errors,
            "pulls": self.pulls,
            "holds": self.holds,
            "last_tick_to_quote_ns": self.last_tick_to_quote_ns,
            "sigma_ticks": self.sigma_ticks,
            "k": self.k_estimate,
        }

    @property
    def sigma_ticks(self) -> float:
        """The volatility in use: ticks per sqrt second (estimated, or the parameter)."""
        if self.params.estimate_sigma and self._sigma_est is not None:
            return self._sigma_est
        return self.params.sigma_ticks

    @property
    def k_estimate(self) -> float:
        """The order arrival intensity decay in use (per tick)."""
        p = self.params
        if p.estimate_k and self._trade_depth is not None and self._trade_samples >= 10:
            return min(100.0, max(0.01, 1.0 / max(self._trade_depth, 0.01)))
        return p.k

    # ---- bus handlers ----------------------------------------------------------------------------
    def on_market_data(self, ev: BookDelta | BookSnapshot | Trade) -> None:
        if ev.venue != self.venue or ev.symbol != self.symbol:
            return
        now = self.clock.now()
        if now != self._last_request_ns:  # the echo of our own request does not prove the feed alive
            self._last_md_ns = now
        p = self.params
        if ev.__class__ is Trade and p.estimate_k:  # the book still shows the touch the trade hit
            touch = self._others_touch()
            if touch is not None:
                self._sample_trade(ev.price, touch[0] + touch[1])
        if self.state != RUNNING:
            # Keep the volatility estimate warm while paused (the cycle samples it while running).
            if p.estimate_sigma and p.mode == AVELLANEDA_STOIKOV and not self._more_coming():
                touch = self._others_touch()
                if touch is not None:
                    self._sample_mid(now, touch[0] + touch[1])
            return
        if not self.l2.valid:  # never wait for the batch to end to pull quotes off a broken book
            self._pull("book invalid")
            return
        if not self._trigger_pc:
            self._trigger_pc = time.perf_counter_ns()
        if self._more_coming():
            self._deferred = True
        else:
            self.requote()

    def on_order_event(self, ev: Any) -> None:
        if ev.owner != OUR_OWNER:
            return
        q = self._quotes.get(ev.order_id)
        cls = ev.__class__
        if q is None:
            if self._sending and ev.venue == self.venue and ev.symbol == self.symbol:
                self._early.append(ev)
            elif self._deferred and (cls is Fill or cls is Done) and not self._more_coming():
                self.requote()  # we waited for this event, but its quote is gone meanwhile
            return
        self._apply(q, ev)
        if cls is Fill or cls is Done:
            if self._more_coming():
                self._deferred = True
            elif self.state == RUNNING:
                self.requote()

    def on_book_gap(self, ev: BookGap) -> None:
        if ev.venue == self.venue and ev.symbol == self.symbol and self.state == RUNNING:
            self._pull("book invalid")

    def on_venue_status(self, ev: VenueStatus) -> None:
        if ev.venue != self.venue:
            return
        self._venue_state = ev.state
        if self.state == RUNNING:
            if ev.state != "up":
                self._pull(f"venue {ev.state}")
            else:
                self.requote()

    def _more_coming(self) -> bool:
        """True when the last queued event will reach us and trigger a requote: wait for it."""
        queue = self._queue
        if not queue:
            return False
        ev = queue[-1]
        cls = ev.__class__
        if cls is BookDelta or cls is BookSnapshot or cls is Trade:
            return ev.venue == self.venue and ev.symbol == self.symbol
        if cls is Fill or cls is Done:
            return ev.owner == OUR_OWNER and ev.order_id in self._quotes
        return False

    def _apply(self, q: WorkingQuote, ev: Any) -> None:
        """Follow one lifecycle event of our quote `q`."""
        cls = ev.__class__
        self.version += 1
        if cls is Accepted:
            if q.state != SENT or ev.price != q.price or ev.size != q.size:
                self._dirty = True
            q.price = ev.price
            q.size = ev.size
            q.placed_ns = self.clock.now()
            if q.state == SENT:
                q.state = WORKING
            return
        if cls is Amended:
            if q.state != AMENDING or ev.price != q.want_price or ev.size != q.want_size:
                self._dirty = True
            if ev.price != q.price or not ev.kept_priority:
                q.placed_ns = self.clock.now()
            q.price = ev.price
            q.size = ev.size
            if q.state == AMENDING:
                q.state = WORKING
            return
        self._dirty = True  # fills, rejections, cancels and done orders change what the ladder needs
        if cls is Fill:
            self.fills += 1
            self.filled_lots += ev.size
            q.size = ev.leaves
        elif cls is Rejected:
            self.rejects += 1
            q.rejects += 1
            self.last_reject = f"order {ev.order_id}: {ev.reason}"
            self._backoff_until = self.clock.now() + self.params.reject_backoff_ms * 1_000_000
            if q.state == AMENDING or q.state == CANCELLING:
                q.state = WORKING  # the request was refused; the order lives on as it was
                if not self._oms_knows(q.order_id):  # refused because the venue no longer has it
                    self._forget(q)
        elif cls is Done:
            self._quotes.pop(q.order_id, None)

    # ---- the cycle -------------------------------------------------------------------------------
    def requote(self) -> int:
        """Run a requote cycle now (re-entrant calls are folded into one more pass); messages sent."""
        if self._in_cycle:
            self._again = True
            return 0
        self._in_cycle = True
        self._deferred = False
        sent = 0
        try:
            for _ in range(4):
                self._again = False
                sent += self._cycle()
                if not self._again:
                    break
        finally:
            self._in_cycle = False
            self._trigger_pc = 0
        return sent

    def _blocker(self, now: int) -> str | None:
        """Why we must not have quotes out right now, or None."""
        if self.risk is not None and getattr(self.risk, "killed", False):
            return "risk kill switch"
        if self._venue_state is not None and self._venue_state != "up":
            return f"venue {self._venue_state}"
        if not self.l2.valid:
            return "book invalid"
        stale = self.params.stale_after_ms
        if stale and now - self._last_md_ns > stale * 1_000_000:
            return "book stale"
        return None

    def _cycle(self) -> int:
        if self.state != RUNNING:
            return self._pull(self.reason or self.state)
        now = self.clock.now()
        why = self._blocker(now)
        if why is not None:
            if why == "risk kill switch":
                self.stop(why)
                return 0
            return self._pull(why)
        # A guard against a requote storm within one instant (e.g. a venue that rejects every request).
        if now == self._loop_ts:
            self._loop_cycles += 1
            if self._loop_cycles > 200:
                return self._hold("requote loop guard")
        else:
            self._loop_ts = now
            self._loop_cycles = 0
        touch = self._others_touch()
        if touch is None:
            return self._hold("one-sided book")
        bid, ask = touch
        if bid >= ask:
            return self._hold("crossed book")
        p = self.params
        if p.estimate_sigma:
            self._sample_mid(now, bid + ask)
        position = self._position()
        ladder = quote_ladder(
            p,
            bid,
            ask,
            position,
            sigma_ticks=self.sigma_ticks,
            k=self.k_estimate,
            tau_s=self._tau(now),
            min_lots=self.min_lots,
            max_lots=self.max_lots,
        )
        block = self.side_block
        if block is not None and (ladder.bids or ladder.asks):
            if block(BUY):
                ladder = replace(ladder, bids=())
            if block(SELL):
                ladder = replace(ladder, asks=())
        if self.reason:
            self.reason = ""
            self.version += 1
        if ladder == self._ladder and not self._dirty and not p.max_order_age_ms:
            # Same ladder, and nothing happened to our quotes but the answers we asked for: the
            # diff would be empty (the echo of our own requests lands here).
            return 0
        if ladder != self._ladder:
            self._ladder = ladder
            self.version += 1
        self.requote_cycles += 1
        backoff = now < self._backoff_until
        actions = diff_quotes(
            ladder,
            list(self._quotes.values()),
            p,
            position,
            now,
            min_lots=self.min_lots,
            allow_new=not backoff,
        )
        self._assignment = actions.assignment
        # In a backoff, or with requests in flight, the diff could not do everything: look again.
        self._dirty = backoff or any(q.state == SENT or q.state == AMENDING for q in self._quotes.values())
        if not len(actions):
            return 0
        return self._send(actions, backoff)

    def _send(self, actions: QuoteActions, backoff: bool) -> int:
        sent = 0
        quotes = self._quotes
        for oid in actions.cancels:
            q = quotes.get(oid)
            if q is not None and q.state != CANCELLING:
                sent += self._send_cancel(q)
        if not backoff:
            away, toward = [], []
            for a in actions.amends:
                q = quotes.get(a[0])
                if q is None or q.busy or q.state == CANCELLING:
                    continue
                moves_away = a[2] <= q.price if a[1] == BUY else a[2] >= q.price
                (away if moves_away else toward).append((q, a[2], a[3]))
            clock = self.clock
            for q, price, size in away + toward:
                if clock.now() < self._backoff_until:  # refused just now (a synchronous venue)
                    break
                sent += self._send_amend(q, price, size)
            for side, price, size in actions.news:
                if clock.now() < self._backoff_until:
                    break
                sent += self._send_new(side, price, size)
        return sent

    def _pull(self, reason: str) -> int:
        self._dirty = True
        if reason != self.reason:
            self.reason = reason
            self.version += 1
        sent = 0
        for q in list(self._quotes.values()):
            if q.state != CANCELLING:
                sent += self._send_cancel(q)
        if sent:
            self.pulls += 1
        return sent

    def _hold(self, reason: str) -> int:
        self.holds += 1
        self._dirty = True
        if reason != self.reason:
            self.reason = reason
            self.version += 1
        return 0

    # ---- the only three places that talk to the OMS ---------------------------------------------
    def _latency(self) -> None:
        self._last_request_ns = self.clock.now()
        if self._trigger_pc:
            self.last_tick_to_quote_ns = time.perf_counter_ns() - self._trigger_pc
            self._trigger_pc = 0

    def _send_new(self, side: int, price: int, size: int) -> int:
        self._latency()
        order_type = POST_ONLY if self.params.post_only else LIMIT
        self._sending = True
        try:
            oid = self.oms.new_order(
                self.venue, self.symbol, side, price, size, order_type, STP_CANCEL_RESTING, **self._new_kwargs
            )
        except Exception as exc:  # an OMS that raises must not take the kernel's bus handler down
            self._send_failed(f"new order: {type(exc).__name__}: {exc}")
            return 0
        finally:
            self._sending = False
        early, self._early = self._early, []
        if oid.__class__ is not int:
            self._send_failed(f"new order: the OMS returned {oid!r}, not an order id")
            return 0
        q = WorkingQuote(oid, side, price, size, SENT, self.clock.now())
        self._quotes[oid] = q
        self.quotes_sent += 1
        self.version += 1
        for ev in early:  # the venue answered before new_order returned (bus not delivering)
            if ev.order_id == oid and oid in self._quotes:
                self._apply(q, ev)
                if ev.__class__ is Fill or ev.__class__ is Done:
                    self._again = True
        return 1

    def _send_amend(self, q: WorkingQuote, price: int, size: int) -> int:
        if price == q.price and size == q.size:
            return 0
        self._latency()
        # Mark first: the answer can arrive before amend() returns when the bus is idle.
        q.state, q.want_price, q.want_size = AMENDING, price, size
        try:
            ok = self.oms.amend(
                q.order_id, price=price if price != q.price else None, size=size if size != q.size else None
            )
        except Exception as exc:
            q.state = WORKING
            self._send_failed(f"amend {q.order_id}: {type(exc).__name__}: {exc}")
            return 0
        if not ok:  # refused at once (risk, nothing to change) or the order is gone
            if self._oms_knows(q.order_id):
                if q.state == AMENDING:
                    q.state = WORKING
                self._send_failed(f"amend {q.order_id} refused by the OMS")
            else:
                self._forget(q)
            return 0
        self.amends_sent += 1
        self.version += 1
        return 1

    def _send_cancel(self, q: WorkingQuote) -> int:
        self._latency()
        prev = q.state
        q.state = CANCELLING
        try:
            ok = self.oms.cancel(q.order_id)
        except Exception as exc:
            q.state = prev
            self._send_failed(f"cancel {q.order_id}: {type(exc).__name__}: {exc}")
            return 0
        if not ok:  # a cancel is already outstanding, or the order is gone
            if not self._oms_knows(q.order_id):
                self._forget(q)
            return 0
        self.cancels_sent += 1
        self.version += 1
        return 1

    def _send_failed(self, what: str) -> None:
        self._dirty = True
        self.send_errors += 1
        self.last_reject = what
        self._backoff_until = self.clock.now() + self.params.reject_backoff_ms * 1_000_000

    def _oms_knows(self, order_id: int) -> bool:
        working = getattr(self.oms, "working", None)
        return True if working is None else order_id in working

    def _forget(self, q: WorkingQuote) -> None:
        """The OMS no longer knows this order: it is gone and we missed its Done."""
        self._dirty = True
        if self._quotes.pop(q.order_id, None) is not None:
            self.lost_quotes += 1
            self.version += 1

    # ---- market reading and model estimates ------------------------------------------------------
    def _others_touch(self) -> tuple[int, int] | None:
        """Best bid and ask of everybody but us (ticks), or None when a side is empty."""
        l2 = self.l2
        u = self.unified
        if u is None or not u.own_in_venue_book:
            bid, ask = l2.best_bid_price(), l2.best_ask_price()
        else:
            bid = ask = None
            ours = u.our_size
            for price, size in l2.iter_levels(BUY):
                if size > ours(BUY, price):
                    bid = price
                    break
            for price, size in l2.iter_levels(SELL):
                if size > ours(SELL, price):
                    ask = price
                    break
        if bid is None or ask is None:
            return None
        return bid, ask

    def _sample_mid(self, now: int, mid2: int) -> None:
        """EWMA estimate of sigma from the mid's changes, sampled once per timestamp (a venue batch)."""
        batch = self._vol_batch
        if batch is None or now == batch[0]:
            self._vol_batch = (now, mid2)
            return
        if now < batch[0]:
            return
        prev = self._vol_prev
        if prev is not None:
            dt = (batch[0] - prev[0]) / 1e9
            # |change| / sqrt(dt) * sqrt(pi/2) estimates sigma for a Brownian mid; unlike squared
            # changes it is not swamped by one jump.
            x = abs(batch[1] - prev[1]) / 2.0 / math.sqrt(dt) * _SQRT_HALF_PI
            v = self._sigma_est
            self._sigma_est = x if v is None else v + self.params.vol_alpha * (x - v)
        self._vol_prev = batch
        self._vol_batch = (now, mid2)

    def _sample_trade(self, price: int, mid2: int) -> None:
        depth = abs(2 * price - mid2) / 2.0
        d = self._trade_depth
        self._trade_depth = depth if d is None else d + self.params.k_alpha * (depth - d)
        self._trade_samples += 1

    def _tau(self, now: int) -> float:
        p = self.params
        if p.infinite_horizon or self._started_ns is None:
            return p.horizon_s
        elapsed = (now - self._started_ns) / 1e9
        return p.horizon_s - math.fmod(elapsed, p.horizon_s)

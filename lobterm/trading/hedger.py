"""The hedger: keeps our exposure on a quoting venue+symbol inside a threshold by trading on a hedge market.

The exposure is our position on the quoting market plus, when hedging elsewhere (cross-venue), our
position on the hedge market, in lots of the quoting instrument. When its size passes `threshold_lots`
the hedger takes liquidity on the hedge market to bring it back to `target_lots`, by one of three policies:

- **immediate**: one IOC for the whole excess (capped at `max_order_lots`), priced at the hedge book's
  touch plus at most `max_slippage_bps` (a marketable limit; `None` sends a market order);
- **twap**: the excess in `twap_slices` IOC slices spread over `twap_seconds` of kernel time; each slice is
  the remaining excess (recomputed from the fills so far) divided by the slices left;
- **opportunistic**: wait until the hedge side's touch beats a reference (the average cost of the position
  being hedged, or the quoting venue's mid) by at least `edge_bps`, then take only the favourable prices;
  after `deadline_s` of exposure it falls back to immediate.

Everything is driven by bus events (book, trade and our order events) and by `on_time(now_ns)`, which the
kernel calls from a timer so that TWAP slices and deadlines happen even in a quiet market. One hedge order
is in flight at a time: the hedger never decides on a position that an unanswered order may still change.

Hedge orders are recognised by the ids `new_order` returns; their lifecycle events (which the sim venue
delivers *during* `new_order` when called outside bus delivery) are held until the id is known, so the
hedger does not depend on the OMS's internals. Statistics are exact: integer ticks, lots and
tick*lots, Fraction averages. `blocks_quoting(side)` tells the market maker not to quote the side that
would grow an exposure whose hedge is overdue.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Protocol

from lobterm.engine.bounds import HEDGE_ORDERS
from lobterm.engine.errors import ParameterError
from lobterm.engine.events import (
    BUY,
    IOC,
    MARKET,
    OUR_OWNER,
    SELL,
    SIDE_NAMES,
    STP_CANCEL_RESTING,
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
from lobterm.engine.instrument import FEE_SCALE, MAX_UNITS

if TYPE_CHECKING:
    from lobterm.engine.ports import Bus, Clock, MarketView
    from lobterm.trading.oms import OrderManager

__all__ = [
    "Hedger",
    "HedgeParams",
    "HedgeStats",
    "HedgeOrder",
    "HedgeParamError",
    "POLICIES",
    "REFERENCES",
    "RUNNING",
    "PAUSED",
    "STOPPED",
    "validate_params",
]

POLICIES = ("immediate", "twap", "opportunistic")
REFERENCES = ("avg_cost", "quote_mid")
RUNNING, PAUSED, STOPPED = "running", "paused", "stopped"

_NS = 1_000_000_000
_BPS = 10_000
_SHORTEST_WAIT_S = Fraction(1, 100)  # 10 ms: below this a retry loop is a spin


class HedgeParamError(ParameterError):
    """A hedger parameter (or set-up value) that cannot be used: `name`, the `value` given, the `rule` broken.
    Nothing was changed."""

    area = "hedger"


@dataclass(slots=True)
class HedgeParams:
    """What the hedger does: sizes in quoting-instrument lots, bps as exact Fractions, times in s."""

    policy: str = "immediate"
    threshold_lots: int = 0  # hedge when |exposure| is above this
    target_lots: int = 0  # ... down to this |exposure| (0 = flat)
    max_slippage_bps: Fraction | None = Fraction(10)  # limit price vs the touch; None = market orders
    max_order_lots: int | None = None  # cap per hedge order, in lots of the hedge instrument
    retry_interval_s: Fraction = Fraction(1, 4)  # wait after an order that did not fill completely
    order_timeout_s: Fraction = Fraction(5)  # cancel a hedge order unanswered for this long
    twap_slices: int = 5
    twap_seconds: Fraction = Fraction(10)
    edge_bps: Fraction = Fraction(0)  # opportunistic: how much better than the reference
    reference: str = "avg_cost"  # opportunistic: "avg_cost" (of the hedged position) or "quote_mid"
    deadline_s: Fraction = Fraction(30)  # opportunistic: fall back to immediate after this long exposed
    overdue_after_s: Fraction = Fraction(10)  # exposure above threshold this long = hedge overdue
    stp: int = STP_CANCEL_RESTING


def _fraction(name: str, value: object) -> Fraction:
    if isinstance(value, bool) or value is None:
        raise HedgeParamError(name, value, "must be a number")
    try:
        if isinstance(value, float):
            if not math.isfinite(value):
                raise HedgeParamError(name, value, "must be finite")
            return Fraction(Decimal(repr(value)))  # 0.1 means 0.1, not its binary neighbour
        if isinstance(value, (int, Fraction)):
            return Fraction(value)
        if isinstance(value, str):
            text = value.strip()
            if len(text) > 64:
                raise HedgeParamError(name, value, "must be a number (at most 64 characters)")
            if "/" in text:  # "1/3": digits only, so no exponent to blow up
                return Fraction(text)
            value = Decimal(text)
        if isinstance(value, Decimal):
            # "1e999999999" is a valid Decimal whose Fraction is a billion-digit integer: refuse it here.
            if not value.is_finite() or not -40 <= value.adjusted() <= 40:
                raise HedgeParamError(name, value, "must be a finite number of sensible size")
            return Fraction(value)
    except HedgeParamError:
        raise
    except (ValueError, ZeroDivisionError, ArithmeticError):
        raise HedgeParamError(name, value, "must be a finite number") from None
    raise HedgeParamError(name, value, f"must be a number, not {type(value).__name__}")


def _lots(name: str, value: object, minimum: int) -> int:
    if value.__class__ is not int:
        raise HedgeParamError(name, value, "must be a whole number of lots (int)")
    if not minimum <= value <= MAX_UNITS:
        raise HedgeParamError(name, value, f"must be in {minimum}..{MAX_UNITS} lots")
    return value


def validate_params(p: HedgeParams) -> HedgeParams:
    """A normalised copy of `p` (numbers as Fractions), or `HedgeParamError` naming the first bad one."""
    if p.policy not in POLICIES:
        raise HedgeParamError("policy", p.policy, f"must be one of {', '.join(POLICIES)}")
    if p.reference not in REFERENCES:
        raise HedgeParamError("reference", p.reference, f"must be one of {', '.join(REFERENCES)}")
    threshold = _lots("threshold_lots", p.threshold_lots, 0)
    target = _lots("target_lots", p.target_lots, 0)
    if target > threshold:
        raise HedgeParamError("target_lots", target, f"must not exceed threshold_lots ({threshold})")
    slip = None
    if p.max_slippage_bps is not None:
        slip = _fraction("max_slippage_bps", p.max_slippage_bps)
        if not 0 <= slip < _BPS:
            raise HedgeParamError("max_slippage_bps", p.max_slippage_bps, "must be in [0, 10000) bps")
    max_order = None if p.max_order_lots is None else _lots("max_order_lots", p.max_order_lots, 1)
    if p.twap_slices.__class__ is not int or not 1 <= p.twap_slices <= 10_000:
        raise HedgeParamError("twap_slices", p.twap_slices, "must be an int in 1..10000")
    edge = _fraction("edge_bps", p.edge_bps)
    if not -_BPS < edge < _BPS:
        raise HedgeParamError("edge_bps", p.edge_bps, "must be in (-10000, 10000) bps")
    times: dict[str, Any] = {}
    # The shortest time each may be: a retry or a timeout of zero would spin (a refused hedge retried at
    # once, forever); the deadline and the overdue alarm may be 0 (at once).
    for name, shortest in (
        ("retry_interval_s", _SHORTEST_WAIT_S),
        ("order_timeout_s", _SHORTEST_WAIT_S),
        ("twap_seconds", _SHORTEST_WAIT_S),
        ("deadline_s", Fraction(0)),
        ("overdue_after_s", Fraction(0)),
    ):
        raw = getattr(p, name)
        t = _fraction(name, raw)
        if not shortest <= t <= 86_400:
            raise HedgeParamError(name, raw, f"must be in {float(shortest):g}..86400 seconds")
        times[name] = t
    if p.stp.__class__ is not int or not 0 <= p.stp <= 3:
        raise HedgeParamError("stp", p.stp, "must be a self-trade prevention mode 0..3")
    return replace(
        p,
        threshold_lots=threshold,
        target_lots=target,
        max_slippage_bps=slip,
        max_order_lots=max_order,
        edge_bps=edge,
        **times,
    )


@dataclass(slots=True)
class HedgeOrder:
    """One hedge order we sent: why, at what reference, and what came of it."""

    order_id: int
    why: str  # "immediate", "twap 2/5", "opportunistic", "deadline"
    side: int
    size: int  # lots of the hedge instrument
    limit_price: int  # ticks; 0 for a market order
    reference_price: int  # the hedge book's touch (ticks) when we decided
    decided_ns: int
    filled: int = 0
    cash: int = 0  # tick*lots: sells add, buys subtract
    fees: int = 0  # millionths of a tick*lot
    state: str = "sent"  # sent, working, done
    reason: str = ""  # why it ended (Done.reason) or why it was refused
    cancel_sent: bool = False


@dataclass(slots=True)
class HedgeStats:
    """Exact hedge statistics, in ticks and lots of the hedge instrument."""

    orders: int = 0  # hedge orders sent (those refused at once included)
    rejects: int = 0  # refused by the OMS, risk or the venue
    fills: int = 0
    volume: int = 0  # lots traded by hedge orders
    bought: int = 0
    sold: int = 0
    cash: int = 0  # tick*lots: sells add, buys subtract
    fees: int = 0  # millionths of a tick*lot (negative: rebates)
    slippage: int = 0  # tick*lots paid vs the reference price at decision time (negative: improvement)
    reference_notional: int = 0  # sum of reference price * lots, for slippage in bps
    twap_slices: int = 0
    deadline_fallbacks: int = 0
    overdue_episodes: int = 0

    @property
    def net_lots(self) -> int:
        return self.bought - self.sold

    def avg_slippage_ticks(self) -> Fraction:
        """Average slippage per lot hedged, in ticks (exact)."""
        return Fraction(self.slippage, self.volume) if self.volume else Fraction(0)

    def slippage_bps(self) -> Fraction:
        """Slippage as basis points of the reference notional (exact)."""
        if not self.reference_notional:
            return Fraction(0)
        return Fraction(self.slippage * _BPS, self.reference_notional)

    def pnl(self, mark: int | Fraction) -> Fraction:
        """Hedge P&L in tick*lots, net of fees: the hedge trades' cash plus their net lots at `mark`."""
        return self.cash + self.net_lots * Fraction(mark) - Fraction(self.fees, FEE_SCALE)


@dataclass(slots=True)
class _Twap:
    side: int
    started_ns: int
    interval_ns: int
    slices: int
    sent: int = 0
    next_due_ns: int = 0


class HeldPosition(Protocol):
    """One position as the hedger reads it (lobterm.trading.inventory.Position is one)."""

    @property
    def lots(self) -> int: ...

    @property
    def avg_cost(self) -> Fraction | None: ...


class PositionBook(Protocol):
    """Where positions come from: `kernel.inventory` (`position(venue, symbol)`)."""

    def position(self, venue: str, symbol: str) -> HeldPosition: ...


@dataclass(slots=True)
class _CostTracker:
    """Average cost of our position on the quoting market, from the fills the hedger has seen.

    Only a decision reference (not P&L): the average is kept to a trillionth of a tick, so that endless
    add/reduce cycles cannot grow its denominator without bound.
    """

    lots: int = 0
    avg: Fraction | None = None  # ticks per lot; None when flat

    def on_fill(self, side: int, price: int, size: int) -> None:
        signed = size if side == BUY else -size
        old = self.lots
        new = self.lots = old + signed
        if new == 0:
            self.avg = None
        elif old == 0 or (old > 0) == (signed > 0):
            avg = ((self.avg or 0) * abs(old) + price * size) / Fraction(abs(new))
            if avg.denominator > 10**12:
                avg = Fraction(round(avg * 10**12), 10**12)
            self.avg = avg
        elif (new > 0) != (old > 0):  # flipped: what is left opened at this fill's price
            self.avg = Fraction(price)
        # Reducing leaves the average cost of what is left unchanged.


class Hedger:
    """Hedges our exposure on `quote` (venue, symbol) on `hedge` (venue, symbol; default the same market).

    Wire it with the kernel's bus, OMS and markets; it subscribes itself. `positions` is where our position
    per market comes from (`kernel.inventory`); without it the hedger counts the fills it sees itself (so
    a position built before it was constructed is then invisible). `clock` is the kernel clock; without it
    the hedger uses the latest event time.
    """

    def __init__(
        self,
        bus: Bus,
        oms: OrderManager,
        markets: Mapping[tuple[str, str], MarketView],
        *,
        quote: tuple[str, str] | None = None,
        hedge: tuple[str, str] | None = None,
        params: HedgeParams | None = None,
        clock: Clock | None = None,
        positions: PositionBook | None = None,
        tag: str = "hedge",
    ) -> None:
        if quote is None:
            if not markets:
                raise HedgeParamError("quote", None, "there is no market to hedge")
            quote = next(iter(markets))
        hedge = quote if hedge is None else hedge
        for name, key in (("quote", quote), ("hedge", hedge)):
            if tuple(key) not in markets:
                raise HedgeParamError(name, key, f"is not a market of this kernel (known: {sorted(markets)})")
        self.bus = bus
        self.oms = oms
        self.clock = clock
        self.positions = positions
        self.quote: tuple[str, str] = tuple(quote)  # type: ignore[assignment]
        self.hedge: tuple[str, str] = tuple(hedge)  # type: ignore[assignment]
        self.cross_venue = self.quote != self.hedge
        self.quote_market = markets[self.quote]
        self.hedge_market = markets[self.hedge]
        qi, hi = self.quote_market.instrument, self.hedge_market.instrument
        # Quote lots -> hedge lots and quote ticks -> hedge ticks: exact, for instruments on other grids.
        self._lots_q_to_h = Fraction(qi.lot_size) / Fraction(hi.lot_size)
        self._ticks_q_to_h = Fraction(qi.tick_size) / Fraction(hi.tick_size)
        self._same_lots = self._lots_q_to_h == 1
        self._hedge_min_lots = hi.min_lots
        self._use_params(validate_params(params or HedgeParams()))
        self.state = RUNNING
        self.stats = HedgeStats()
        self.recent: deque[HedgeOrder] = deque(maxlen=HEDGE_ORDERS)
        self.last_reject: str | None = None
        self.version = 0  # bumped on every change a panel would show
        self._tag = tag
        self._orders: dict[int, HedgeOrder] = {}  # our hedge orders not yet Done
        self._in_flight: HedgeOrder | None = None
        self._retry_at = 0
        self._twap: _Twap | None = None
        self._exposed_since: int | None = None  # when |exposure| went above threshold
        self._exposed_side = BUY  # hedge side of that episode
        self._overdue_counted = False
        self._fell_back = False
        self._sending = False
        self._held: list[Any] = []  # order events delivered while new_order was running
        self._last_ts = 0
        self._own_lots: dict[tuple[str, str], int] = {self.quote: 0, self.hedge: 0}
        self._cost = _CostTracker()
        bus.subscribe((BookSnapshot, BookDelta, Trade), self._on_market)
        bus.subscribe((Accepted, Fill, Cancelled, Amended, Rejected, Done), self._on_order_event)

    # ---- the Strategy protocol (lobterm.trading.strategy) ------------------------------------------
    name = "hedger"

    @property
    def markets(self) -> tuple[tuple[str, str], ...]:
        return (self.quote,) if self.hedge == self.quote else (self.quote, self.hedge)

    def on_market_data(self, ev: Any) -> None:
        self._on_market(ev)

    def on_order_event(self, ev: Any) -> None:
        self._on_order_event(ev)

    def on_timer(self, now_ns: int) -> None:
        self.on_time(now_ns)

    def status(self) -> dict[str, str]:
        st = self.stats
        return {
            "state": self.state,
            "policy": self.params.policy,
            "orders": str(st.orders),
            "fills": str(st.fills),
        }

    # ---- control ---------------------------------------------------------------------------------
    def set_params(self, **changes: Any) -> HedgeParams:
        """Change parameters live. All are validated before any is applied; a bad one raises
        `HedgeParamError` naming it and nothing changes. Returns the parameters now in force."""
        known = {f.name for f in fields(HedgeParams)}
        for name, value in changes.items():
            if name not in known:
                raise HedgeParamError(
                    name, value, f"is not a hedger parameter (known: {', '.join(sorted(known))})"
                )
        new = validate_params(replace(self.params, **changes))
        if (
            new.policy != self.params.policy
            or new.twap_slices != self.params.twap_slices
            or new.twap_seconds != self.params.twap_seconds
        ):
            self._twap = None  # a schedule belongs to the parameters that made it
        self._use_params(new)
        self.version += 1
        return new

    def _use_params(self, p: HedgeParams) -> None:
        self.params = p
        # Times in ns, computed once: these are compared on every market event.
        self._overdue_ns = self._ns(p.overdue_after_s)
        self._retry_ns = self._ns(p.retry_interval_s)
        self._timeout_ns = self._ns(p.order_timeout_s)
        self._deadline_ns = self._ns(p.deadline_s)

    def pause(self) -> None:
        """Send nothing new (an order in flight finishes); exposure and overdue keep being watched."""
        if self.state == RUNNING:
            self.state = PAUSED
            self._twap = None
            self.version += 1

    def resume(self) -> None:
        """Start hedging again (also after `stop()`, once the operator has reset the kill switch)."""
        if self.state != RUNNING:
            self.state = RUNNING
            self.version += 1
            self._evaluate(self._now())

    def stop(self, reason: str = "kill switch") -> None:
        """The kill switch: send nothing more and cancel the hedge order in flight, if any."""
        self.state = STOPPED
        self._twap = None
        self.version += 1
        o = self._in_flight
        if o is not None and not o.cancel_sent:
            o.cancel_sent = True
            try:
                self.oms.cancel(o.order_id)
            except Exception as exc:  # the kill switch must not raise into its caller
                self.last_reject = f"cancel of hedge order {o.order_id} failed: {type(exc).__name__}: {exc}"

    def on_time(self, now_ns: int) -> None:
        """The kernel's timer: TWAP slices, deadlines and timeouts happen even when the market is quiet."""
        if now_ns > self._last_ts:
            self._last_ts = now_ns
        self._evaluate(now_ns)

    # ---- what the rest of the kernel asks -----------------------------------------------------------
    def position_lots(self, market: tuple[str, str]) -> int:
        if self.positions is not None:
            return self.positions.position(*market).lots
        return self._own_lots.get(market, 0)

    def exposure(self) -> int | Fraction:
        """Our net position in lots of the quoting instrument (signed: long > 0); a Fraction only when the
        hedge instrument's lots are on another grid."""
        e: int | Fraction = self.position_lots(self.quote)
        if self.cross_venue:
            h = self.position_lots(self.hedge)
            if h:
                e += h if self._same_lots else h / self._lots_q_to_h
        return e

    def avg_cost(self) -> Fraction | None:
        """Average cost (quote ticks) of the quoting position: the inventory's when it keeps one, else the
        hedger's own from the fills it saw (None if it did not see every fill that built the position)."""
        if self.positions is not None:
            pos = self.positions.position(*self.quote)
            cost = pos.avg_cost
            if cost is not None:
                return Fraction(cost) if pos.lots else None
        if self._cost.lots == 0 or self._cost.lots != self.position_lots(self.quote):
            return None
        return self._cost.avg

    @property
    def in_flight(self) -> HedgeOrder | None:
        return self._in_flight

    @property
    def overdue(self) -> bool:
        """Exposure has been above the threshold for longer than `overdue_after_s`."""
        now = self._now()
        self._watch_exposure(now, self.exposure())
        return self._is_overdue(now)

    def hedge_overdue(self, side: int | None = None) -> bool:
        """Is a hedge overdue? With `side`: overdue *and* quoting that side would grow the exposure."""
        return self.overdue if side is None else self.blocks_quoting(side)

    def blocks_quoting(self, side: int) -> bool:
        """True when the market maker must not quote `side` on the quoting market: a hedge is overdue and a
        fill on that side would grow the unhedged position. Cheap; call it before every quote."""
        if side != BUY and side != SELL or side.__class__ is not int:
            raise HedgeParamError("side", side, "must be 0 (buy) or 1 (sell)")
        if not self.overdue:
            return False
        # Hedge side SELL means we are long: buying more would grow it.
        return side == (BUY if self._exposed_side == SELL else SELL)

    def hedge_pnl(self) -> Fraction | None:
        """Hedge P&L (tick*lots of the hedge instrument, net of fees) marked at the hedge book's mid."""
        bid, ask = self._touch()
        if bid is None or ask is None:
            return None
        return self.stats.pnl(Fraction(bid + ask, 2))

    # ---- events -------------------------------------------------------------------------------------
    def _on_market(self, ev: Any) -> None:
        key = (ev.venue, ev.symbol)
        if key != self.hedge and key != self.quote:
            return
        if ev.ts > self._last_ts:
            self._last_ts = ev.ts
        if not self._sending:
            self._evaluate(self._now())

    def _on_order_event(self, ev: Any) -> None:
        if ev.owner != OUR_OWNER:
            return
        if self._sending:
            self._held.append(ev)  # may be our new order's, whose id we do not know yet
            return
        self._apply_order_event(ev)
        if (type(ev) is Fill or type(ev) is Done) and (
            (ev.venue, ev.symbol) == self.hedge or (ev.venue, ev.symbol) == self.quote
        ):
            self._evaluate(self._now())

    def _apply_order_event(self, ev: Any) -> None:
        if ev.ts > self._last_ts:
            self._last_ts = ev.ts
        cls = type(ev)
        key = (ev.venue, ev.symbol)
        if cls is Fill and key in self._own_lots:
            self._own_lots[key] += ev.size if ev.side == BUY else -ev.size
            if key == self.quote:
                self._cost.on_fill(ev.side, ev.price, ev.size)
        o = self._orders.get(ev.order_id)
        if o is None or key != self.hedge:
            return
        self.version += 1
        if cls is Fill:
            self._on_hedge_fill(o, ev)
        elif cls is Accepted:
            if o.state == "sent":
                o.state = "working"
        elif cls is Rejected:
            if o.state == "sent":  # the new order itself was refused (a refused cancel leaves it live)
                self.stats.rejects += 1
            o.reason = ev.reason
            self.last_reject = f"hedge order {ev.order_id}: {ev.reason}"
        elif cls is Done:
            self._finish(o, ev.reason)

    def _on_hedge_fill(self, o: HedgeOrder, ev: Fill) -> None:
        s = self.stats
        size, price = ev.size, ev.price
        o.filled += size
        s.fills += 1
        s.volume += size
        s.fees += ev.fee
        o.fees += ev.fee
        if ev.side == BUY:
            s.bought += size
            s.cash -= price * size
            o.cash -= price * size
            s.slippage += (price - o.reference_price) * size
        else:
            s.sold += size
            s.cash += price * size
            o.cash += price * size
            s.slippage += (o.reference_price - price) * size
        s.reference_notional += o.reference_price * size

    def _finish(self, o: HedgeOrder, reason: str) -> None:
        o.state = "done"
        o.reason = reason
        self._orders.pop(o.order_id, None)
        if self._in_flight is o:
            self._in_flight = None
        if o.filled < o.size:
            self._retry_at = self._now() + self._retry_ns

    # ---- decisions ----------------------------------------------------------------------------------
    def _now(self) -> int:
        if self.clock is not None:
            now = self.clock.now()
            return now if now > self._last_ts else self._last_ts
        return self._last_ts

    @staticmethod
    def _ns(seconds: Fraction) -> int:
        return int(seconds * _NS)

    def _is_overdue(self, now: int) -> bool:
        since = self._exposed_since
        return since is not None and now - since > self._overdue_ns

    def _watch_exposure(self, now: int, e: int | Fraction) -> bool:
        """Track when the exposure went above threshold (and so when a hedge becomes overdue)."""
        if (e if e >= 0 else -e) <= self.params.threshold_lots:
            if self._exposed_since is not None:
                self._exposed_since = None
                self._overdue_counted = False
                self._fell_back = False
                self.version += 1
            return False
        side = SELL if e > 0 else BUY
        if self._exposed_since is None or side != self._exposed_side:
            self._exposed_since = now
            self._exposed_side = side
            self._overdue_counted = False
            self._fell_back = False
            self.version += 1
        elif not self._overdue_counted and self._is_overdue(now):
            self._overdue_counted = True
            self.stats.overdue_episodes += 1
            self.version += 1
        return True

    def _evaluate(self, now: int) -> None:
        if self._sending:
            return
        e = self.exposure()
        over = self._watch_exposure(now, e)
        o = self._in_flight
        if o is not None:
            self._check_timeout(o, now)
            return
        if self.state != RUNNING or now < self._retry_at:
            return
        policy = self.params.policy
        if policy == "immediate":
            if over:
                self._hedge_now(now, e, "immediate")
        elif policy == "twap":
            self._twap_step(now, e, over)
        elif over:
            self._opportunistic(now, e)

    def _check_timeout(self, o: HedgeOrder, now: int) -> None:
        if o.cancel_sent or now - o.decided_ns < self._timeout_ns:
            return
        o.cancel_sent = True
        try:
            asked = self.oms.cancel(o.order_id)
        except Exception as exc:
            asked = False
            self.last_reject = f"cancel of hedge order {o.order_id} failed: {type(exc).__name__}: {exc}"
        if not asked and o.order_id not in self.oms.working:
            self._finish(o, "lost")  # the OMS no longer knows it: it ended without telling us

    def _excess(self, e: int | Fraction, side: int) -> int:
        """Lots of the hedge instrument to trade on `side` to bring the exposure to the target."""
        toward = e if side == SELL else -e
        excess = toward - self.params.target_lots
        if excess <= 0:
            return 0
        return math.floor(excess) if self._same_lots else math.floor(excess * self._lots_q_to_h)

    def _touch(self) -> tuple[int | None, int | None]:
        l2 = self.hedge_market.l2
        if not l2.valid:
            return None, None
        return l2.best_bid_price(), l2.best_ask_price()

    def _limit(self, side: int, touch: int) -> tuple[int, int]:
        """(limit price, order type) for taking liquidity from `touch` with the allowed slippage."""
        slip = self.params.max_slippage_bps
        if slip is None:
            return 0, MARKET
        if side == BUY:
            return math.floor(touch * (_BPS + slip) / _BPS), IOC
        return max(1, math.ceil(touch * (_BPS - slip) / _BPS)), IOC

    def _size(self, lots: int) -> int:
        cap = self.params.max_order_lots
        return lots if cap is None or lots <= cap else cap

    def _hedge_now(self, now: int, e: int | Fraction, why: str) -> None:
        side = SELL if e > 0 else BUY
        size = self._size(self._excess(e, side))
        if size < self._hedge_min_lots:
            return
        bid, ask = self._touch()
        touch = ask if side == BUY else bid
        if touch is None:
            return  # nothing to hedge against: wait (and become overdue)
        price, order_type = self._limit(side, touch)
        self._send(now, why, side, price, size, order_type, touch)

    def _twap_step(self, now: int, e: int | Fraction, over: bool) -> None:
        p = self.params
        t = self._twap
        if t is None:
            if not over:
                return
            interval = self._ns(p.twap_seconds) // p.twap_slices
            t = self._twap = _Twap(SELL if e > 0 else BUY, now, interval, p.twap_slices, 0, now)
            self.version += 1
        remaining = self._excess(e, t.side)
        if remaining < self._hedge_min_lots or t.sent >= t.slices:
            self._twap = None  # done (or out of slices: a new schedule starts if still above threshold)
            self.version += 1
            return
        if now < t.next_due_ns:
            return
        bid, ask = self._touch()
        touch = ask if t.side == BUY else bid
        if touch is None:
            return
        size = self._size(-(-remaining // (t.slices - t.sent)))  # ceil: the last slice takes what is left
        size = max(size, min(remaining, self._hedge_min_lots))
        price, order_type = self._limit(t.side, touch)
        if self._send(now, f"twap {t.sent + 1}/{t.slices}", t.side, price, size, order_type, touch) is None:
            return
        t.sent += 1
        t.next_due_ns = t.started_ns + t.sent * t.interval_ns
        self.stats.twap_slices += 1

    def _reference(self) -> Fraction | None:
        """Opportunistic reference in hedge ticks: avg cost of the hedged position, else the quote mid."""
        ref = self.avg_cost() if self.params.reference == "avg_cost" else None
        if ref is None:
            l2 = self.quote_market.l2
            bid, ask = (l2.best_bid_price(), l2.best_ask_price()) if l2.valid else (None, None)
            if bid is None or ask is None:
                return None
            ref = Fraction(bid + ask, 2)
        return ref * self._ticks_q_to_h

    def _opportunistic(self, now: int, e: int | Fraction) -> None:
        p = self.params
        since = self._exposed_since if self._exposed_since is not None else now
        if now - since >= self._deadline_ns:
            if not self._fell_back:
                self._fell_back = True
                self.stats.deadline_fallbacks += 1
            self._hedge_now(now, e, "deadline")
            return
        ref = self._reference()
        if ref is None:
            return
        side = SELL if e > 0 else BUY
        size = self._size(self._excess(e, side))
        if size < self._hedge_min_lots:
            return
        bid, ask = self._touch()
        if side == SELL:
            worst = math.ceil(ref * (_BPS + p.edge_bps) / _BPS)  # the lowest price worth selling at
            if bid is None or bid < worst:
                return
            price, order_type = self._limit(SELL, bid)
            price = max(price, worst)
            touch = bid
        else:
            worst = math.floor(ref * (_BPS - p.edge_bps) / _BPS)  # the highest price worth buying at
            if ask is None or ask > worst or worst < 1:
                return
            price, order_type = self._limit(BUY, ask)
            price = worst if order_type == MARKET else min(price, worst)
            touch = ask
        self._send(now, "opportunistic", side, price, size, IOC, touch)

    # ---- sending ------------------------------------------------------------------------------------
    def _send(
        self, now: int, why: str, side: int, price: int, size: int, order_type: int, reference: int
    ) -> int | None:
        """The one place hedge orders leave the hedger. Returns the order id, or None when refused."""
        venue, symbol = self.hedge
        self._sending = True
        self._held = []
        error = None
        oid: int | None = None
        try:
            oid = self.oms.new_order(
                venue, symbol, side, price, size, order_type=order_type, stp=self.params.stp, tag=self._tag
            )
        except Exception as exc:  # a refusal by the OMS/risk must not crash the kernel's event loop
            error = f"{type(exc).__name__}: {exc}"
        finally:
            self._sending = False
            held, self._held = self._held, []
        self.stats.orders += 1
        self.version += 1
        if oid is None or oid <= 0:
            self.stats.rejects += 1
            why_refused = error or f"new_order returned {oid!r}"
            self.last_reject = f"hedge {SIDE_NAMES[side]} {size} refused: {why_refused}"
            self._retry_at = now + self._retry_ns
            for ev in held:
                self._apply_order_event(ev)
            return None
        o = HedgeOrder(oid, why, side, size, price, reference, now)
        self._orders[oid] = o
        self._in_flight = o
        self.recent.append(o)
        for ev in held:  # now that the id is known, the events of this order count as ours
            self._apply_order_event(ev)
        return oid

"""Pre-trade risk: every new order (and every amend) is checked before it reaches a venue.

Fail closed: a check that raises, or a provider (position, P&L) that returns nonsense, rejects the
order naming the check. Every rejection names its rule: `check_new` returns "<rule>: <detail>" and
the OMS publishes it as `Rejected(..., "risk: <rule>: <detail>")`. Cancels are never blocked.

Rules, in the order they are checked (a limit set to None is not checked):

    order               the request itself: side, size, price, order type, tag
    kill                the kill switch is on: no new order at all
    market              the venue+symbol has no market (no L2 book) in the kernel
    stale_book          orders tagged with one of `stale_book_tags` ("mm") while the book is invalid,
                        marked stale (`set_stale`, a VenueStatus other than "up", or a `stale` attribute
                        on the kernel's Market), or not updated for more than `max_book_age_ms`
    max_order_lots      size > max_order_lots
    price_band          |price - mid| > price_band_bps of the mid of that venue+symbol's L2 book; with
                        no reference (empty, one-sided, crossed or invalid book) the order is rejected
    max_order_notional  price * size (tick*lots) > max_order_notional; a market order is valued at the
                        opposite best price
    self_trade          the order would cross one of our own resting orders on the same venue+symbol
                        (orders with a cancel outstanding do not count: venue STP covers that race)
    max_position        counting working orders on the same side: a buy must keep
                        position + working buys + size <= max, a sell position - working sells - size
                        >= -max (an order that reduces exposure is never blocked)
    margin              perpetual markets only (a `MarginBook` knows their terms and mark): an order
                        that adds exposure must leave the position (counting working orders on its
                        side, entered at the order's price) with effective leverage (notional /
                        equity, at the venue's mark) <= max_leverage and the liquidation price at
                        least min_liquidation_bps from the mark; an order that reduces exposure is
                        never blocked. With no mark yet on a perpetual market, adding is refused.
    duplicate           same venue/symbol/side/price/size/tag sent within duplicate_window_ms (tags in
                        `duplicate_tags`, all tags if None)
    daily_loss          the day's P&L (from the `pnl` provider) <= -daily_loss_limit; orders that only
                        reduce the position still pass, so a losing position can be flattened
    throttle            per venue, a token bucket of messages_per_s with `burst` on the kernel clock;
                        cancels take a token when there is one but are never blocked

Defaults: a `RiskLimits()` built by hand has the order, position, band, throttle and loss limits off;
the configuration path (lobterm.config `risk_limits`) turns every one on with values derived from the
instrument and the config, and off only where [risk] says "off".

Limits: one global `RiskLimits`, and optionally per venue+symbol `RiskLimits` that replace the global
ones for that market. The throttle (per venue), daily loss and kill switch always use the global limits.

Kill switch: `kill(reason)` turns `killed` on, calls the `on_kill` callbacks (the market maker stops
itself) and asks the OMS to cancel every live order; every new order is refused until `reset_kill()`.

Construction (the OMS binds itself: `OrderManager(..., risk=risk)` calls `risk.bind_oms(oms)`):

    risk = RiskManager(kernel.markets, kernel.clock, RiskLimits(max_order_lots=1000, ...),
                       per_market={("sim", "BTC/USDT"): RiskLimits(...)},
                       position=lambda v, s: kernel.inventory.position(v, s).lots,
                       pnl=lambda: <day's P&L, int / Fraction / Decimal, same units as daily_loss_limit>)
    risk.subscribe(kernel.bus)   # book update times and venue status for the stale_book rule
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from lobterm.engine.errors import ParameterError
from lobterm.engine.events import BUY, FOK, IOC, LIMIT, MARKET, BookDelta, BookSnapshot, VenueStatus
from lobterm.engine.instrument import MAX_UNITS, to_decimal
from lobterm.trading.margin import distance_bps

if TYPE_CHECKING:
    from lobterm.engine.instrument import Instrument
    from lobterm.engine.ports import Bus, Clock, MarketView
    from lobterm.trading.margin import MarginBook
    from lobterm.trading.oms import OrderManager, WorkingOrder

log = logging.getLogger(__name__)

RULES = (
    "order",
    "kill",
    "market",
    "stale_book",
    "max_order_lots",
    "price_band",
    "max_order_notional",
    "self_trade",
    "max_position",
    "margin",
    "duplicate",
    "daily_loss",
    "throttle",
)

_NEVER_RESTS = (MARKET, IOC, FOK)
_EXACT_NUMBERS = (int, Fraction, Decimal)
_MAX_NOTIONAL = MAX_UNITS * MAX_UNITS  # tick*lots: the largest price times the largest size
_MAX_MS = 86_400_000  # a day
_MAX_BAND_BPS = 1_000_000  # 100x the price: anything wider is no band at all
_MAX_MONEY_DIGITS = 30  # a quote-currency amount above 1e30 is a typo, and Decimal's context is 28 digits


class RiskLimitError(ParameterError):
    """A limit that makes no sense. `name` is the field, `value` what was given, `rule` what it broke."""

    area = "risk limit"


@dataclass(slots=True)
class RiskLimits:
    """Limits in engine units: lots, ticks, tick*lots (see `in_units` for Decimal quantities).

    None switches a limit off. `daily_loss_limit` is in the units the P&L provider returns. A kernel
    built from the configuration gets limits derived from the instrument and config (lobterm.config
    `risk_limits`): every limit is on unless the config says "off".

    Two limits are in money, whose scale is only known once there is a price: with
    `max_order_notional` None, `max_order_value_lots` sets the maximum order value to that many lots at
    the first valid mid of the market (frozen for the session: a runaway price does not raise it);
    with `daily_loss_limit` None, `daily_loss_lots` sets the daily loss limit the same way.
    """

    max_order_lots: int | None = None
    max_order_notional: int | None = None  # tick*lots
    max_position_lots: int | None = None
    price_band_bps: int | Decimal | None = None
    messages_per_s: float | None = None
    burst: int | None = None  # bucket size; default: one second's worth of messages
    duplicate_window_ms: int | None = 250
    duplicate_tags: frozenset[str] | None = frozenset({"manual"})  # None: every tag
    daily_loss_limit: int | Fraction | Decimal | None = None
    max_book_age_ms: int | None = 5000
    stale_book_tags: frozenset[str] = frozenset({"mm"})
    max_order_value_lots: int | None = None  # with max_order_notional None: value of this many lots
    daily_loss_lots: int | None = None  # with daily_loss_limit None: value of this many lots
    max_leverage: Decimal | None = None  # perpetuals: notional / equity at the mark
    leverage_from_market: bool = False  # with max_leverage None: the market's own (1 / initial rate)
    min_liquidation_bps: int | Decimal | None = None  # perpetuals: liquidation price's distance from mark

    def __post_init__(self) -> None:
        for name, top in (
            ("max_order_lots", MAX_UNITS),
            ("max_order_notional", _MAX_NOTIONAL),
            ("max_position_lots", MAX_UNITS),
            ("duplicate_window_ms", _MAX_MS),
            ("max_book_age_ms", _MAX_MS),
            ("burst", 1_000_000),
            ("max_order_value_lots", MAX_UNITS),
            ("daily_loss_lots", MAX_UNITS),
        ):
            v = getattr(self, name)
            if v is not None and (type(v) is not int or not 0 <= v <= top):
                raise RiskLimitError(name, v, f"must be a whole number in 0..{top} (or None for no limit)")
        if self.burst is not None and self.burst < 1:
            raise RiskLimitError("burst", self.burst, "must be at least 1 message")
        v = self.price_band_bps
        if v is not None and not (
            (type(v) is int or (type(v) is Decimal and v.is_finite())) and 0 <= v <= _MAX_BAND_BPS
        ):
            raise RiskLimitError(
                "price_band_bps", v, f"must be an int or Decimal in 0..{_MAX_BAND_BPS} (or None)"
            )
        v = self.max_leverage
        if v is not None and not (type(v) is Decimal and v.is_finite() and 1 <= v <= 1000):
            raise RiskLimitError("max_leverage", v, "must be a Decimal in 1..1000 (or None)")
        v = self.min_liquidation_bps
        if v is not None and not (
            (type(v) is int or (type(v) is Decimal and v.is_finite())) and 0 <= v <= 10_000
        ):
            raise RiskLimitError("min_liquidation_bps", v, "must be an int or Decimal in 0..10000 (or None)")
        v = self.messages_per_s
        if v is not None and (type(v) not in (int, float) or not 0 < v <= 1e6):
            raise RiskLimitError(
                "messages_per_s", v, "must be a number of messages per second in (0, 1e6] (or None)"
            )
        v = self.daily_loss_limit
        if v is not None and (
            type(v) not in _EXACT_NUMBERS
            or (type(v) is Decimal and not v.is_finite())
            or not 0 <= v < 10**_MAX_MONEY_DIGITS
        ):
            raise RiskLimitError(
                "daily_loss_limit", v, "must be an int, Fraction or Decimal in [0, 1e30) (or None)"
            )
        for name in ("duplicate_tags", "stale_book_tags"):
            v = getattr(self, name)
            if v is None and name == "duplicate_tags":
                continue
            if not isinstance(v, (set, frozenset, tuple, list)) or not all(type(t) is str for t in v):
                raise RiskLimitError(name, v, "must be a set of tag names")
            setattr(self, name, frozenset(v))

    @classmethod
    def in_units(
        cls,
        instrument: Instrument,
        *,
        max_order_qty: object = None,
        max_order_value: object = None,
        max_position_qty: object = None,
        **other: Any,
    ) -> RiskLimits:
        """Limits from quantities a user writes: base-currency sizes and a quote-currency order value,
        turned into lots and tick*lots on the instrument's grid (sizes must be on the lot grid; the value
        is rounded down). A value that does not fit raises `RiskLimitError` naming it."""
        lots = None if max_order_qty is None else _lots_of(instrument, "max_order_qty", max_order_qty)
        pos = None if max_position_qty is None else _lots_of(instrument, "max_position_qty", max_position_qty)
        notional = None
        if max_order_value is not None:
            value = money("max_order_value", max_order_value)
            step = instrument.tick_size * instrument.lot_size
            # Fractions: exact at any size (Decimal's 28-digit context would raise InvalidOperation).
            notional = int(Fraction(value) // Fraction(step))
            if notional > _MAX_NOTIONAL:
                raise RiskLimitError(
                    "max_order_value", max_order_value, f"is above {instrument.notional(_MAX_NOTIONAL)}"
                )
        return cls(max_order_lots=lots, max_order_notional=notional, max_position_lots=pos, **other)


def _lots_of(instrument: Instrument, name: str, value: object) -> int:
    from lobterm.engine.instrument import InstrumentError

    try:
        return instrument.lots(value)
    except InstrumentError as exc:
        raise RiskLimitError(name, value, exc.rule) from None


def money(name: str, value: object) -> Decimal:
    """A quote-currency amount a user wrote: exact, finite, >= 0 and below 1e30, or `RiskLimitError`."""
    from lobterm.engine.instrument import InstrumentError

    try:
        d = to_decimal(value, what=name)
    except InstrumentError as exc:
        raise RiskLimitError(name, value, exc.rule) from None
    if d < 0 or (d and not -_MAX_MONEY_DIGITS <= d.adjusted() < _MAX_MONEY_DIGITS):
        raise RiskLimitError(name, value, "must be 0 or an amount in [1e-30, 1e30)")
    return d


@dataclass(slots=True)
class RiskState:
    """What the UI shows: the kill switch, rejections per rule, limits that are close."""

    killed: bool
    kill_reason: str
    rejects: dict[str, int]
    total_rejects: int
    last_reject: str | None
    near: list[str] = field(default_factory=list)  # e.g. "sim BTC/USDT position 0.850/1.000 (85%)"


class _Bucket:
    """A token bucket as GCRA on integer nanoseconds: deterministic, no floats carried between calls."""

    __slots__ = ("interval", "tolerance", "tat")

    def __init__(self, per_s: float, burst: int) -> None:
        self.interval = max(1, round(1e9 / per_s))
        self.tolerance = (burst - 1) * self.interval
        self.tat = 0  # theoretical arrival time of the next message

    def ready(self, now: int) -> bool:
        return self.tat - now <= self.tolerance

    def take(self, now: int) -> None:
        tat = self.tat
        self.tat = (tat if tat > now else now) + self.interval


class RiskManager:
    """Pre-trade checks, the kill switch and the state the UI shows. See the module docstring."""

    def __init__(
        self,
        markets: Mapping[tuple[str, str], MarketView],
        clock: Clock,
        limits: RiskLimits | None = None,
        *,
        per_market: Mapping[tuple[str, str], RiskLimits] | None = None,
        position: Callable[[str, str], int] | None = None,
        pnl: Callable[[], int | Fraction | Decimal] | None = None,
        margin: MarginBook | None = None,
    ) -> None:
        self.markets = markets
        self.clock = clock
        self.limits = limits if limits is not None else RiskLimits()
        self.per_market: dict[tuple[str, str], RiskLimits] = dict(per_market or {})
        self._position = position
        self._pnl = pnl
        self.margin = margin
        self._oms: OrderManager | None = None
        self.killed = False
        self.kill_reason = ""
        self.kills = 0
        self.on_kill: list[Callable[[str], None]] = []
        self.callback_errors = 0
        self.rejects: dict[str, int] = {}
        self.total_rejects = 0
        self.last_reject: str | None = None
        self.checks = 0
        self._buckets: dict[str, _Bucket] = {}
        self._sent_recently: dict[
            tuple[str, str, int, int, int, str], int
        ] = {}  # duplicate check: order key -> last time sent
        self._last_book_update: dict[tuple[str, str], int] = {}
        self._stale_markets: set[tuple[str, str]] = set()
        self._stale_venues: set[str] = set()
        # Twice the first valid mid of each market, in ticks: the price that money limits given in lots
        # (`max_order_value_lots`, `daily_loss_lots`) are valued at, frozen for the session.
        self._first_mid2: dict[tuple[str, str], int] = {}

    # ---- wiring --------------------------------------------------------------------------------
    def bind_oms(self, oms: OrderManager) -> None:
        """The OMS whose working orders count for max_position/self_trade and that kill() cancels."""
        self._oms = oms

    def subscribe(self, bus: Bus) -> None:
        """Book update times and venue status (for the stale_book rule)."""
        bus.subscribe((BookSnapshot, BookDelta), self.on_book)
        bus.subscribe(VenueStatus, self.on_venue_status)

    def on_book(self, ev: BookSnapshot | BookDelta) -> None:
        self._last_book_update[(ev.venue, ev.symbol)] = self.clock.now()

    def on_venue_status(self, ev: VenueStatus) -> None:
        if ev.state == "up":
            self._stale_venues.discard(ev.venue)
        else:
            self._stale_venues.add(ev.venue)

    def set_stale(self, venue: str, symbol: str, stale: bool = True) -> None:
        """Mark a market's book stale (a venue adapter that lost its stream) or fresh again."""
        if stale:
            self._stale_markets.add((venue, symbol))
        else:
            self._stale_markets.discard((venue, symbol))

    def add_on_kill(self, callback: Callable[[str], None]) -> None:
        """Call `callback(reason)` when the kill switch goes on (the market maker stops itself)."""
        self.on_kill.append(callback)

    def limits_for(self, venue: str, symbol: str) -> RiskLimits:
        return self.per_market.get((venue, symbol), self.limits)

    # ---- the kill switch -----------------------------------------------------------------------
    def kill(self, reason: str = "manual") -> int:
        """Block every new order, stop whoever registered `on_kill`, cancel every live order.

        Returns how many cancels were sent. Calling it again re-sweeps (orders acknowledged late are
        cancelled by the OMS as their Accepted arrives)."""
        self.killed = True
        self.kill_reason = reason
        self.kills += 1
        log.warning("kill switch: %s", reason)
        # Stop the strategies first, so that they do not try to re-quote as their orders are cancelled.
        for cb in list(self.on_kill):
            try:
                cb(reason)
            except Exception:
                self.callback_errors += 1
                log.exception("on_kill callback failed")
        return self._oms.cancel_all() if self._oms is not None else 0

    def reset_kill(self) -> None:
        """Re-arm: new orders are checked normally again (strategies stay stopped until restarted)."""
        self.killed = False
        self.kill_reason = ""

    # ---- checks --------------------------------------------------------------------------------
    def check_new(
        self,
        venue: str,
        symbol: str,
        side: int,
        price: int,
        size: int,
        order_type: int = LIMIT,
        tag: str = "manual",
    ) -> str | None:
        """None if the order may go; otherwise "<rule>: <detail>". Call it only for an order you are
        about to send: a passing order takes a throttle token and is remembered for the duplicate check."""
        found = self._evaluate(venue, symbol, side, price, size, order_type, tag, None)
        if found is None:
            return None
        return self._rejected(*found)

    def check_amend(self, order: WorkingOrder, price: int | None, size: int | None) -> str | None:
        """None if the amend of a live `order` may go; otherwise "<rule>: <detail>". An amend that only
        reduces the open size at the same price always passes (it takes a throttle token if there is
        one, like a cancel)."""
        new_price = order.price if price is None else price
        new_size = order.leaves if size is None else size
        if new_price == order.price and type(new_size) is int and 0 < new_size <= order.leaves:
            self.note_cancel(order.venue)
            return None
        found = self._evaluate(
            order.venue,
            order.symbol,
            order.side,
            new_price,
            new_size,
            order.order_type,
            order.tag,
            order.order_id,
        )
        if found is None:
            return None
        return self._rejected(*found)

    def note_cancel(self, venue: str) -> None:
        """A cancel goes out: it uses a throttle token when there is one and is never blocked."""
        rate = self.limits.messages_per_s
        if rate is None:
            return
        b = self._bucket(venue, rate)
        now = self.clock.now()
        if b.ready(now):
            b.take(now)

    def _rejected(self, rule: str, detail: str) -> str:
        self.rejects[rule] = self.rejects.get(rule, 0) + 1
        self.total_rejects += 1
        text = f"{rule}: {detail}"
        self.last_reject = text
        return text

    def _bucket(self, venue: str, rate: float) -> _Bucket:
        b = self._buckets.get(venue)
        if b is None:
            burst = self.limits.burst if self.limits.burst is not None else max(1, int(rate))
            b = self._buckets[venue] = _Bucket(rate, burst)
        return b

    def _evaluate(
        self,
        venue: str,
        symbol: str,
        side: int,
        price: int,
        size: int,
        order_type: int,
        tag: str,
        exclude: int | None,
    ) -> tuple[str, str] | None:
        """The rules in order; (rule, detail) for the first that fails. `exclude` is the order being
        amended (its own size does not count twice, and it cannot cross itself)."""
        self.checks += 1
        rule = "order"
        try:
            # ---- the request itself
            if type(side) is not int or (side != 0 and side != 1):
                return rule, f"side {side!r} must be 0 (buy) or 1 (sell)"
            if type(size) is not int or size <= 0:
                return rule, f"size {size!r} must be a positive whole number of lots"
            if type(order_type) is not int or not 0 <= order_type <= 4:
                return rule, f"unknown order type {order_type!r}"
            is_market = order_type == MARKET
            if not is_market and (type(price) is not int or price <= 0):
                return rule, f"price {price!r} must be a positive whole number of ticks"
            if type(tag) is not str:
                return rule, f"tag {tag!r} must be a string"

            rule = "kill"
            if self.killed:
                return rule, f"kill switch is on ({self.kill_reason})"

            rule = "market"
            key = (venue, symbol)
            market = self.markets.get(key)
            if market is None:
                return rule, f"no market {venue}:{symbol}"
            l2 = market.l2
            lim = self.per_market.get(key, self.limits)
            now = self.clock.now()

            rule = "stale_book"
            if tag in lim.stale_book_tags:
                if not l2.valid:
                    return rule, f"{venue}:{symbol} book is invalid (waiting for a snapshot)"
                if key in self._stale_markets or venue in self._stale_venues or market.stale:
                    return rule, f"{venue}:{symbol} book is marked stale"
                max_age = lim.max_book_age_ms
                if max_age is not None:
                    last = self._last_book_update.get(key)
                    if last is None:
                        return rule, f"{venue}:{symbol} book has had no update yet"
                    age_ns = now - last
                    if age_ns > max_age * 1_000_000:
                        return rule, (
                            f"{venue}:{symbol} book not updated for {age_ns // 1_000_000} ms "
                            f"(max {max_age} ms)"
                        )

            rule = "max_order_lots"
            limit = lim.max_order_lots
            if limit is not None and size > limit:
                inst = market.instrument
                return rule, (
                    f"size {inst.format_size(size)} is above the maximum order size {inst.format_size(limit)}"
                )

            bid = l2.best_bid_price()
            ask = l2.best_ask_price()
            # Twice the mid, in ticks (integers throughout); None without a two-sided, uncrossed book.
            mid2 = bid + ask if l2.valid and bid is not None and ask is not None and bid < ask else None

            rule = "price_band"
            band = lim.price_band_bps
            if band is not None and not is_market:
                if mid2 is None:
                    return rule, (
                        f"no reference price: the {venue}:{symbol} book is empty, one-sided, "
                        "crossed or invalid"
                    )
                off = abs(2 * price - mid2) * 10_000
                if off > band * mid2:
                    inst = market.instrument
                    mid = inst.price(mid2) / 2
                    return rule, (
                        f"price {inst.format_price(price)} is {off // mid2} bps from the mid {mid} "
                        f"(band {band} bps)"
                    )

            if mid2 is not None and key not in self._first_mid2:
                self._first_mid2[key] = mid2

            rule = "max_order_notional"
            limit = lim.max_order_notional
            if limit is None and lim.max_order_value_lots is not None:
                first = self._first_mid2.get(key)
                if first is None:
                    return rule, f"no price yet to value the order limit at ({venue}:{symbol} book not valid)"
                limit = first * lim.max_order_value_lots // 2
            if limit is not None:
                if is_market:
                    px = ask if side == BUY else bid
                    if not l2.valid or px is None:
                        return rule, "no opposite price to value a market order at"
                else:
                    px = price
                value = px * size
                if value > limit:
                    inst = market.instrument
                    return rule, (
                        f"order value {inst.notional(value)} is above the maximum {inst.notional(limit)}"
                    )

            # One pass over our live orders in this market for max_position and self_trade.
            max_pos = lim.max_position_lots
            oms = self._oms
            buys = sells = 0
            if oms is not None:
                rule = "self_trade"
                for o in oms.market_orders(venue, symbol):
                    if o.order_id == exclude:
                        continue
                    leaves = o.leaves
                    amend_size = o.amend_size
                    if amend_size is not None and amend_size > leaves:
                        leaves = amend_size
                    if o.side == BUY:
                        buys += leaves
                    else:
                        sells += leaves
                    if o.side != side and o.order_type not in _NEVER_RESTS and o.state != "pending_cancel":
                        their = o.price if o.amend_price is None else o.amend_price
                        if is_market or (price >= their if side == BUY else price <= their):
                            inst = market.instrument
                            return rule, (
                                f"would trade with our own {'sell' if side == BUY else 'buy'} "
                                f"order {o.order_id} at {inst.format_price(their)}"
                            )

            position = None
            rule = "max_position"
            if max_pos is not None:
                position = self._position_of(venue, symbol)
                if side == BUY:
                    worst = position + buys + size
                    if worst > max_pos:
                        inst = market.instrument
                        return rule, (
                            f"position {inst.format_size(position)} + working buys "
                            f"{inst.format_size(buys)} + {inst.format_size(size)} would exceed "
                            f"{inst.format_size(max_pos)}"
                        )
                else:
                    worst = position - sells - size
                    if worst < -max_pos:
                        inst = market.instrument
                        return rule, (
                            f"position {inst.format_size(position)} - working sells "
                            f"{inst.format_size(sells)} - {inst.format_size(size)} would exceed "
                            f"-{inst.format_size(max_pos)}"
                        )

            rule = "margin"
            margin = self.margin
            if margin is not None and key in margin.terms:
                found = self._check_margin(margin, lim, market, side, price, size, buys, sells, is_market)
                if found is not None:
                    return rule, found

            rule = "duplicate"
            window = lim.duplicate_window_ms
            dup_key = None
            if exclude is None and window and (lim.duplicate_tags is None or tag in lim.duplicate_tags):
                dup_key = (venue, symbol, side, price, size, tag)
                last = self._sent_recently.get(dup_key)
                if last is not None and now - last <= window * 1_000_000:
                    return rule, (
                        f"the same order was sent {(now - last) // 1_000_000} ms ago (window {window} ms)"
                    )

            rule = "daily_loss"
            loss_limit = self._loss_limit(key)
            if loss_limit is not None:
                if self._pnl is None:
                    return rule, "no P&L source to check the daily loss against"
                pnl = self._pnl()
                if type(pnl) not in _EXACT_NUMBERS:
                    return rule, f"P&L source returned {pnl!r}; want an int, Fraction or Decimal"
                if pnl <= -loss_limit:
                    # Still allow orders that only bring the position back towards flat.
                    if self._position is None:
                        reducing = False
                    else:
                        if position is None:
                            position = self._position_of(venue, symbol)
                        reducing = (side == BUY and position < 0 and position + buys + size <= 0) or (
                            side != BUY and position > 0 and position - sells - size >= 0
                        )
                    if not reducing:
                        return rule, f"day's P&L {pnl} is at or below -{loss_limit}"

            rule = "throttle"
            rate = self.limits.messages_per_s
            if rate is not None:
                b = self._bucket(venue, rate)
                if not b.ready(now):
                    burst = b.tolerance // b.interval + 1
                    return rule, f"more than {rate:g} messages/s to {venue} (burst {burst})"
                b.take(now)

            if dup_key is not None and window:
                sent = self._sent_recently
                if len(sent) > 4096:  # forget what is out of every window
                    horizon = now - window * 1_000_000
                    for k in [k for k, t in sent.items() if t < horizon]:
                        del sent[k]
                sent[dup_key] = now
            return None
        except Exception as exc:  # fail closed, naming the check
            log.exception("risk check %s failed", rule)
            return rule, f"check failed: {type(exc).__name__}: {exc}"

    def _check_margin(
        self,
        margin: MarginBook,
        lim: RiskLimits,
        market: Any,
        side: int,
        price: int,
        size: int,
        buys: int,
        sells: int,
        is_market: bool,
    ) -> str | None:
        """The margin rule on a perpetual market (see the module docstring); the detail, or None."""
        venue, symbol = market.venue, market.symbol
        terms = margin.terms[(venue, symbol)]
        max_lev: Decimal | Fraction | None = lim.max_leverage
        if max_lev is None and lim.leverage_from_market:
            max_lev = terms.rules.leverage
        min_bps = lim.min_liquidation_bps
        if max_lev is None and min_bps is None:
            return None
        position = self._position_of(venue, symbol)
        worst = position + buys + size if side == BUY else position - sells - size
        if abs(worst) <= abs(position) and (worst >= 0) == (position >= 0):
            return None  # reduces exposure: never blocked
        mark = margin.mark(venue, symbol)
        if mark is None:
            return f"no mark price yet for {venue}:{symbol}"
        status = margin.projected(venue, symbol, worst, mark if is_market else price)
        if status is None:
            return f"no margin status for {venue}:{symbol}"
        inst = market.instrument
        what = f"a position of {inst.format_size(worst)}"
        if status.equity <= 0:
            return f"{what} would leave no equity"
        lev = status.effective_leverage
        if max_lev is not None and lev is not None and lev > Fraction(max_lev):
            return f"{what} would be {_fmt_lev(lev)}x leverage (max {_fmt_lev(Fraction(max_lev))}x)"
        if min_bps is not None and status.liquidation_price is not None:
            dist = distance_bps(status)
            if dist is not None and dist < Fraction(min_bps):
                liq = inst.format_price(status.liquidation_tick)
                return (
                    f"{what} would be liquidated at {liq}, {int(dist)} bps from the mark "
                    f"{inst.format_price(mark)} (min {min_bps} bps)"
                )
        return None

    def _loss_limit(self, key: tuple[str, str]) -> int | Fraction | Decimal | None:
        """The daily loss limit: as given, or the value of `daily_loss_lots` at `key`'s first mid."""
        lim = self.limits
        if lim.daily_loss_limit is not None or lim.daily_loss_lots is None:
            return lim.daily_loss_limit
        first = self._first_mid2.get(key)
        market = self.markets.get(key)
        if first is None or market is None:
            return None  # no price seen yet in this market, so no P&L from it either
        return market.instrument.notional(first * lim.daily_loss_lots // 2)

    def first_mid_ticks(self, venue: str, symbol: str) -> Fraction | None:
        """The mid that money limits given in lots are valued at (None until the market had one)."""
        first = self._first_mid2.get((venue, symbol))
        return None if first is None else Fraction(first, 2)

    def _position_of(self, venue: str, symbol: str) -> int:
        if self._position is None:
            raise RuntimeError("no position source")
        pos = self._position(venue, symbol)
        if type(pos) is not int:
            raise TypeError(f"position source returned {pos!r}, not an int number of lots")
        return pos

    # ---- for the UI ----------------------------------------------------------------------------
    def state(self) -> RiskState:
        """Kill switch, rejections per rule, and limits that are within 80% of being hit. Never raises."""
        near: list[str] = []
        for key, market in self.markets.items():
            lim = self.per_market.get(key, self.limits)
            max_pos = lim.max_position_lots
            if max_pos is None or self._position is None:
                continue
            try:
                pos = self._position_of(*key)
            except Exception as exc:
                near.append(f"{key[0]} {key[1]} position unavailable: {exc}")
                continue
            if 5 * abs(pos) >= 4 * max_pos:
                inst = market.instrument
                pct = abs(pos) * 100 // max_pos if max_pos else 100
                near.append(
                    f"{key[0]} {key[1]} position {inst.format_size(pos)}/{inst.format_size(max_pos)} ({pct}%)"
                )
        loss_limit = self.limits.daily_loss_limit
        if loss_limit is None:
            loss_limit = next(
                (lim for lim in (self._loss_limit(k) for k in self._first_mid2) if lim is not None), None
            )
        if loss_limit is not None and self._pnl is not None:
            try:
                pnl = self._pnl()
                if type(pnl) not in _EXACT_NUMBERS:
                    near.append(f"daily P&L unavailable ({pnl!r})")
                elif 5 * -pnl >= 4 * loss_limit:
                    near.append(f"daily P&L {pnl} vs loss limit -{loss_limit}")
            except Exception as exc:
                near.append(f"daily P&L unavailable: {exc}")
        return RiskState(
            self.killed, self.kill_reason, dict(self.rejects), self.total_rejects, self.last_reject, near
        )


def _fmt_lev(x: Fraction) -> str:
    """A leverage for a reason line: one decimal, rounded half up."""
    return str(Decimal(round(x * 10)) / 10)


__all__ = ["RiskLimits", "RiskLimitError", "RiskManager", "RiskState", "RULES", "money"]

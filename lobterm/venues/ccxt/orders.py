"""Orders on a keyed ccxt venue: requests out, the venue's order and trade reports back as order events.

Each order goes out with our client order id, `<prefix><our id>` where the prefix is `lob`, six hex
digits drawn per process, and `x` (see `CLIENT_ID`): the venue's order stream maps back to our id even
before the REST answer arrives, and a later run can tell our orders from anyone else's (orphans, see
`reconcile.py`). `watch_orders` gives the lifecycle (Accepted, Cancelled, Done), `watch_my_trades` the
fills (exact price, size, fee, maker flag). A fill is published exactly once, keyed by the venue's
trade id, whether it comes from the stream or from a reconciliation. A finished order's Done waits for
its fills; if they have not come after `FILL_GRACE_S` the reconciler fetches them.

Requests pass a token bucket and a circuit breaker first; network errors are retried with backoff (the
same client order id, so a retry cannot double an order on a venue that enforces unique client ids);
InvalidOrder, InsufficientFunds, RateLimitExceeded, AuthenticationError and every other refusal reach
the OMS as `Rejected` with the venue's reason. A cancel answered "unknown order" (Binance -2011) is no
refusal: the order is gone or finished, so the reconciler finds out which and publishes it. Requests in
flight are tracked so that `stop()` never closes the exchange under them.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections import OrderedDict
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from lobterm.engine.events import (
    BUY,
    CANCELED,
    EXPIRED,
    FILLED,
    FOK,
    IOC,
    LIMIT,
    MARKET,
    OUR_OWNER,
    POST_ONLY,
    REJECTED,
    SELL,
    STP_CANCEL_RESTING,
    Accepted,
    Cancelled,
    Done,
    Fill,
    Rejected,
)
from lobterm.engine.instrument import FEE_SCALE, Instrument, InstrumentError, to_decimal
from lobterm.venues.ccxt.errors import classify_error, log
from lobterm.venues.ccxt.markets import ContractError
from lobterm.venues.ccxt.streams import int_id
from lobterm.venues.resilience import Backoff, CircuitBreaker, TokenBucket

if TYPE_CHECKING:
    from lobterm.venues.ccxt.venue import CcxtVenue

__all__ = ["OrderDesk", "LiveOrder", "CLIENT_ID", "FILL_GRACE_S"]

FILL_GRACE_S = 2.0
#: Any lobterm run's client order id: `lob` + six hex digits (the run) + `x` + the kernel's order id.
CLIENT_ID = re.compile(r"^lob([0-9a-f]{6})x(\d{1,18})$")
_SEEN_TRADES_MAX = 100_000
_MAX_FEE = Decimal(10) ** 18  # a fee at or above this is garbage, not a fee
_TERMINAL = ("closed", "canceled", "cancelled", "expired", "rejected")


@dataclass(slots=True, eq=False)
class LiveOrder:
    order_id: int
    symbol: str
    side: int
    price: int
    size: int
    order_type: int
    client_id: str
    venue_id: str | None = None
    accepted: bool = False
    filled: int = 0  # lots we published fills for
    venue_filled: int = 0  # lots the venue says are filled (of this process's part, see fill_base)
    fill_base: int = 0  # lots an adopted order had filled before we adopted it
    average: Any = None
    terminal: str | None = None  # ccxt status that ended the order
    terminal_at: float = 0.0
    cancel_pending: bool = False
    placing: bool = True  # the new-order request has not been answered yet
    known_at: float = math.inf  # monotonic time the venue first confirmed the order
    sent_ms: int = 0  # wall-clock ms when it was sent (a lower bound for the venue's timestamps)
    adopted: bool = False
    checking: bool = False  # the reconciler is finding out what became of it


class OrderDesk:
    """The orders of one keyed ccxt venue."""

    def __init__(self, venue: CcxtVenue) -> None:
        self.venue = venue
        cfg = venue.config
        self.prefix = f"lob{venue.rng.randrange(16**6):06x}x"
        self.orders: dict[int, LiveOrder] = {}
        self.by_cid: dict[str, LiveOrder] = {}
        self.by_vid: dict[str, LiveOrder] = {}
        self.orphan_trades: dict[str, list[dict[str, Any]]] = {}
        self.seen_trades: OrderedDict[str, None] = OrderedDict()
        # Lots published per finished order (venue id): a late trade of an order whose fills were
        # synthesized from its cumulative figures is not applied twice.
        self.finished: OrderedDict[str, int] = OrderedDict()
        self.bucket = TokenBucket(cfg.orders_per_s, cfg.order_burst, venue.mono)
        self.breaker = CircuitBreaker(cfg.breaker_errors, cfg.breaker_cooldown_s, venue.mono)
        self.requests: set[asyncio.Task[object]] = set()
        # Our fills' effect on each currency's balance (spot), exact: the reconciler compares it.
        self.net: dict[str, Decimal] = {}
        self._next_adopted = -1

    # ---- requests ------------------------------------------------------------------------------
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
        v = self.venue
        inst = v.instruments.get(symbol)
        if inst is None:
            self.reject(order_id, symbol, f"{v.name} does not list {symbol!r}", new=True)
            return
        if not v.config.has_keys:
            self.reject(order_id, symbol, f"{v.name}: no API keys (trade it in paper mode)", new=True)
            return
        if not v.running or v.stopping:
            self.reject(order_id, symbol, f"{v.name}: the venue is {v.state}: no new orders", new=True)
            return
        if order_id in self.orders:
            self.reject(order_id, symbol, f"duplicate order id {order_id}", new=True)
            return
        try:
            amount = v.venue_amount(symbol, size)
        except (ContractError, InstrumentError) as exc:
            v.stats["bad_sizes"] += 1
            log.warning("%s: order %d refused: %s", v.name, order_id, exc)
            self.reject(order_id, symbol, str(exc), new=True)
            return
        why = self._gate()
        if why is not None:
            self.reject(order_id, symbol, why, new=True)
            return
        o = LiveOrder(
            order_id, symbol, side, price, size, order_type, f"{self.prefix}{order_id}", sent_ms=_now_ms()
        )
        self.orders[order_id] = o
        self.by_cid[o.client_id] = o
        v.stats["orders_sent"] += 1
        self._request(self._place(o, inst, amount))

    def cancel(self, order_id: int, symbol: str) -> None:
        o = self.orders.get(order_id)
        if o is None or o.terminal is not None:
            self.reject(order_id, symbol, f"cancel: order {order_id} is not working at {self.venue.name}")
            return
        o.cancel_pending = True  # cancels are never held back by the bucket or the breaker: they cut risk
        self._request(self._cancel(o))

    def amend(self, order_id: int, symbol: str, price: int | None = None, size: int | None = None) -> None:
        # ccxt's editOrder is cancel-and-replace on most venues (a new venue order, a new queue place);
        # lobterm's Amended means "the same order moved", so amends are refused: cancel and re-enter.
        self.reject(
            order_id,
            symbol,
            f"{self.venue.name}: amend is not supported on live venues; cancel and place a new order",
        )

    def _request(self, coro: Any) -> None:
        t = asyncio.get_running_loop().create_task(coro)
        self.requests.add(t)
        t.add_done_callback(self._request_done)

    def _request_done(self, t: asyncio.Task[object]) -> None:
        self.requests.discard(t)
        self.venue.side_done(t)

    async def wait_requests(self, timeout_s: float) -> None:
        """Wait (at most `timeout_s`) until no order request is in flight: the exchange must not be
        closed under a cancel."""
        pending = [t for t in self.requests if not t.done()]
        if pending:
            await asyncio.wait(pending, timeout=timeout_s)

    def _gate(self) -> str | None:
        v = self.venue
        if not self.breaker.allow():
            v.stats["breaker_refused"] += 1
            return (
                f"{v.name}: circuit breaker open after {self.breaker.failures} order errors "
                f"(last: {self.breaker.last_error[:120]}); retry in {self.breaker.retry_in_s():.1f} s"
            )
        if not self.bucket.take():
            v.stats["rate_limited"] += 1
            return (
                f"{v.name}: order rate limit ({v.config.orders_per_s:g}/s, burst "
                f"{v.config.order_burst}); retry in {self.bucket.wait_s():.2f} s"
            )
        return None

    async def _place(self, o: LiveOrder, inst: Instrument, amount: str) -> None:
        """Send the new order; `amount` is its size as the venue counts it (contracts on a contract
        market, see `CcxtVenue.venue_amount`)."""
        v = self.venue
        ex = v.exchange
        otype, params = order_type_params(o.order_type)
        params["clientOrderId"] = o.client_id
        price = None if o.order_type == MARKET else str(inst.price(o.price))
        side = "buy" if o.side == BUY else "sell"
        use_ws = v.config.order_transport == "ws" and ex.has.get("createOrderWs")
        backoff = Backoff(0.1, 2.0, rng=v.rng)
        try:
            for attempt in range(v.config.order_retries + 1):
                try:
                    if use_ws:
                        res = await ex.create_order_ws(o.symbol, otype, side, amount, price, params)
                    else:
                        res = await ex.create_order(o.symbol, otype, side, amount, price, params)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    kind = classify_error(exc)
                    if kind == "network" and attempt < v.config.order_retries:
                        v.stats["order_retries"] += 1
                        await asyncio.sleep(backoff.next_delay())
                        continue
                    if o.accepted or o.terminal is not None:
                        return  # the order stream already knows the order: an earlier attempt got through
                    if kind == "network":
                        # We cannot tell whether it reached the venue: find out, never guess.
                        o.placing = False
                        o.known_at = v.mono()
                        v.reconciler.check(o, "the new order's answer was lost")
                        return
                    self._order_error(o, exc, "new order")
                    return
                self.breaker.success()
                o.known_at = min(o.known_at, v.mono())
                self.on_order_update(res)
                return
        finally:
            o.placing = False

    async def _cancel(self, o: LiveOrder) -> None:
        v = self.venue
        ex = v.exchange
        backoff = Backoff(0.1, 2.0, rng=v.rng)
        for attempt in range(v.config.order_retries + 1):
            if o.terminal is not None:
                return
            params = {} if o.venue_id else {"clientOrderId": o.client_id}
            try:
                use_ws = v.config.order_transport == "ws" and ex.has.get("cancelOrderWs")
                if use_ws:
                    res = await ex.cancel_order_ws(o.venue_id, o.symbol, params)
                else:
                    res = await ex.cancel_order(o.venue_id, o.symbol, params)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                kind = classify_error(exc)
                if kind == "network" and attempt < v.config.order_retries:
                    v.stats["order_retries"] += 1
                    await asyncio.sleep(backoff.next_delay())
                    continue
                if o.terminal is not None:
                    return
                if kind == "order_not_found":
                    # "Unknown order": it filled, was cancelled, or the venue forgot it. Find out which;
                    # a Rejected here would make the strategy cancel it again, forever.
                    v.stats["cancel_unknown"] += 1
                    v.reconciler.check(o, "a cancel was answered 'unknown order'")
                    return
                o.cancel_pending = False
                self._order_error(o, exc, "cancel")
                return
            self.breaker.success()
            if isinstance(res, dict) and res.get("status"):
                self.on_order_update(res)
            return

    def _order_error(self, o: LiveOrder, exc: BaseException, what: str) -> None:
        v = self.venue
        err = v.venue_error(exc, what)
        v.stats["order_errors"] += 1
        self.breaker.failure(str(err))
        log.warning("%s: %s of order %d refused: %s", v.name, what, o.order_id, err)
        reason = f"{v.name} {err.kind}: {err}"
        if what == "new order":
            self.forget(o)
            self.reject(o.order_id, o.symbol, reason, new=True)
        else:
            self.reject(o.order_id, o.symbol, reason)

    # ---- the private streams -------------------------------------------------------------------
    async def watch_orders_once(self) -> None:
        for order in await self.venue.exchange.watch_orders():
            self.on_order_update(order)

    async def watch_my_trades_once(self) -> None:
        for trade in await self.venue.exchange.watch_my_trades():
            self.on_my_trade(trade)

    # ---- converters (never raise: the venue's garbage is counted and logged) --------------------
    def on_order_update(self, order: Any) -> None:
        """One of the venue's reports of an order (stream, REST answer or reconciliation)."""
        try:
            self._order_update(order)
        except Exception as exc:
            v = self.venue
            v.stats["bad_order_reports"] += 1
            log.warning(
                "%s: order report not understood: %s: %s", v.name, type(exc).__name__, v.scrub(str(exc))[:200]
            )

    def _order_update(self, order: Any) -> None:
        v = self.venue
        if not isinstance(order, dict):
            raise TypeError(f"an order report must be a dict, not {type(order).__name__}")
        o = self.find(order)
        if o is None:
            v.stats["unknown_order_events"] += 1
            return
        vid = order.get("id")
        if vid is not None and o.venue_id is None:
            self.learn_venue_id(o, str(vid))
        if o.terminal is not None:
            return
        status = order.get("status")
        if status is not None and not isinstance(status, str):
            raise TypeError(f"order status {status!r} is not a string")
        if status is not None:
            o.known_at = min(o.known_at, v.mono())
        if status == "rejected":
            self.forget(o)
            self.reject(o.order_id, o.symbol, f"{v.name}: order rejected by the venue", new=True)
            return
        raw_filled = order.get("filled")
        filled = o.venue_filled
        if raw_filled is not None:
            try:
                filled = max(0, v.lots_of(o.symbol, raw_filled, allow_zero=True) - o.fill_base)
            except InstrumentError:
                v.stats["bad_order_reports"] += 1
        if filled > o.size:
            raise ValueError(
                f"order {o.order_id}: the venue reports {raw_filled!r} filled of a smaller order"
            )
        if not o.accepted and status in ("open", "closed", "canceled", "expired"):
            o.accepted = True
            v.bus.publish(
                Accepted(
                    v.clock.now(),
                    v.name,
                    o.symbol,
                    o.order_id,
                    o.side,
                    0 if o.order_type == MARKET else o.price,
                    o.size,
                    o.order_type,
                    OUR_OWNER,
                )
            )
        o.venue_filled = max(o.venue_filled, filled)
        if order.get("average") is not None:
            o.average = order["average"]
        if status in ("closed", "canceled", "cancelled", "expired"):
            o.terminal = "canceled" if status == "cancelled" else status
            o.terminal_at = v.mono()
            self.finish(o)
        elif not v.exchange.has.get("watchMyTrades") and o.venue_filled > o.filled:
            self.finish(o, synthesize=True)

    def on_my_trade(self, trade: Any, *, from_stream: bool = True) -> None:
        """One of our trades (stream or reconciliation): a Fill, exactly once per trade id."""
        try:
            self._my_trade(trade, from_stream)
        except Exception as exc:
            v = self.venue
            v.stats["bad_fill_reports"] += 1
            log.warning(
                "%s: fill report not understood: %s: %s", v.name, type(exc).__name__, v.scrub(str(exc))[:200]
            )

    def _my_trade(self, trade: Any, from_stream: bool) -> None:
        v = self.venue
        if not isinstance(trade, dict):
            raise TypeError(f"a trade report must be a dict, not {type(trade).__name__}")
        vid = trade.get("order")
        key = trade_key(trade)
        if key in self.seen_trades:
            v.stats["duplicate_fills"] += 1
            return
        o = self.by_vid.get(str(vid)) if vid is not None else None
        if o is None:
            if vid is not None and str(vid) in self.finished:
                self._late_trade(str(vid), trade, key)
                return
            cid = trade.get("clientOrderId")
            o = self.by_cid.get(cid) if isinstance(cid, str) else None
            if o is None:
                if from_stream and vid is not None and len(self.orphan_trades) < 10_000:
                    self.orphan_trades.setdefault(str(vid), []).append(trade)
                return
        inst = v.instruments[o.symbol]
        try:
            price = inst.ticks_nearest(trade["price"])
            size = v.lots_of(o.symbol, trade["amount"])
        except (InstrumentError, KeyError, TypeError) as exc:
            v.stats["bad_fill_reports"] += 1
            log.warning("%s: fill of order %d not understood: %s", v.name, o.order_id, v.scrub(str(exc)))
            return
        if o.filled + size > o.size:
            raise ValueError(f"order {o.order_id}: a fill of {trade['amount']!r} would overfill it")
        self.publish_fill(
            o, inst, price, size, trade.get("takerOrMaker") == "maker", trade.get("fee"), key, trade.get("id")
        )
        if o.terminal is not None:
            self.finish(o)

    def _late_trade(self, vid: str, trade: dict[str, Any], key: str) -> None:
        """A trade of an order we already finished: applied only if its fills were not synthesized."""
        v = self.venue
        self.seen_trades[key] = None
        v.stats["late_fills"] += 1
        log.warning("%s: a fill of finished order %s arrived late and was not applied again", v.name, vid)

    def publish_fill(
        self,
        o: LiveOrder,
        inst: Instrument,
        price: int,
        size: int,
        is_maker: bool,
        fee: Any,
        key: str,
        raw_trade_id: Any,
    ) -> None:
        v = self.venue
        # Everything that reads the venue's figures first: nothing is recorded unless the Fill goes out.
        cost = self.fee_cost(fee)
        fee_units = self.fee_units(inst, cost, price)
        fill = Fill(
            v.clock.now(),
            v.name,
            o.symbol,
            o.order_id,
            o.side,
            price,
            size,
            max(0, o.size - o.filled - size),
            is_maker,
            fee_units,
            int_id(raw_trade_id) or 0,
            OUR_OWNER,
        )
        self.seen_trades[key] = None
        if len(self.seen_trades) > _SEEN_TRADES_MAX:
            self.seen_trades.popitem(last=False)
        o.filled += size
        o.venue_filled = max(o.venue_filled, o.filled)
        v.stats["fills"] += 1
        self._book_balance(o, inst, price, size, cost)
        v.bus.publish(fill)

    def fee_cost(self, fee: Any) -> tuple[str, Decimal] | None:
        """(currency, cost) of a venue's fee, or None when there is none or it cannot be read (counted in
        `fees_unconverted`): a fee must be a finite number below 10^18 in a named currency."""
        if not isinstance(fee, dict) or fee.get("cost") in (None, "", 0, "0"):
            return None
        cur = fee.get("currency")
        try:
            cost = to_decimal(fee["cost"])
        except InstrumentError:
            cost = None
        if not isinstance(cur, str) or not cur or cost is None or abs(cost) >= _MAX_FEE:
            self.venue.stats["fees_unconverted"] += 1
            return None
        return cur, cost

    def _book_balance(
        self, o: LiveOrder, inst: Instrument, price: int, size: int, cost: tuple[str, Decimal] | None
    ) -> None:
        if self.is_contract(o.symbol):
            # A contract's fill moves a position, not balances (the venue's position is compared in
            # perps.py); its fee, realized P&L and funding move the settle currency's wallet.
            return
        qty = inst.size(size)
        sign = 1 if o.side == BUY else -1
        net = self.net
        if inst.base:
            net[inst.base] = net.get(inst.base, Decimal(0)) + sign * qty
        if inst.quote:
            net[inst.quote] = net.get(inst.quote, Decimal(0)) - sign * qty * inst.price(price)
        if cost is not None:
            net[cost[0]] = net.get(cost[0], Decimal(0)) - cost[1]

    def is_contract(self, symbol: str) -> bool:
        ex = self.venue.exchange
        market = (getattr(ex, "markets", None) or {}).get(symbol) if ex is not None else None
        return bool(isinstance(market, dict) and market.get("contract"))

    def fee_units(self, inst: Instrument, cost: tuple[str, Decimal] | None, price_ticks: int) -> int:
        """The fee in the engine's fee units (quote currency), 0 for none or one in another currency."""
        if cost is None:
            return 0
        cur, amount = cost
        if cur == inst.quote:
            quote = amount
        elif cur == inst.base:
            quote = amount * inst.price(price_ticks)
        else:
            self.venue.stats["fees_unconverted"] += 1
            return 0
        units = int((quote / (inst.tick_size * inst.lot_size) * FEE_SCALE).to_integral_value())
        return units if abs(units) < (1 << 62) else 0

    def finish(self, o: LiveOrder, synthesize: bool = False) -> None:
        """Publish what ends the order once its fills are in (or, with `synthesize`, the missing fills
        from the venue's cumulative figures: only where the venue cannot list its trades)."""
        v = self.venue
        if o.filled < o.venue_filled:
            if not synthesize:
                return
            inst = v.instruments[o.symbol]
            try:
                price = inst.ticks_nearest(o.average) if o.average else o.price
            except InstrumentError:
                price = o.price
            if price <= 0:
                price = o.price or 1
            v.stats["synthesized_fills"] += 1
            self.publish_fill(
                o,
                inst,
                price,
                o.venue_filled - o.filled,
                False,
                None,
                f"synth:{o.client_id}:{o.venue_filled}",
                0,
            )
        if o.terminal is None:
            return
        now = v.clock.now()
        leaves = max(0, o.size - o.filled)
        events: list[Any] = []
        if o.terminal == "closed" and leaves == 0:
            reason = FILLED
        else:
            reason = EXPIRED if o.terminal == "expired" or o.order_type in (IOC, FOK, MARKET) else CANCELED
            if leaves:
                events.append(Cancelled(now, v.name, o.symbol, o.order_id, leaves, reason, OUR_OWNER))
        events.append(Done(now, v.name, o.symbol, o.order_id, o.filled, reason, OUR_OWNER))
        if o.venue_id:
            self.finished[o.venue_id] = o.filled
            if len(self.finished) > 10_000:
                self.finished.popitem(last=False)
        self.forget(o)
        v.bus.publish_many(events)

    def gone(self, o: LiveOrder, why: str) -> None:
        """The venue has no record of a working order (it restarted, or expired it without a word): the
        order is over, with what we know was filled."""
        v = self.venue
        v.stats["orders_gone"] += 1
        log.warning(
            "%s: order %d (%s) is unknown to the venue (%s): treated as gone",
            v.name,
            o.order_id,
            o.client_id,
            why,
        )
        o.venue_filled = o.filled
        o.terminal = "expired"
        o.terminal_at = v.mono()
        self.finish(o)

    def on_timer(self) -> None:
        """A finished order still missing fills after `FILL_GRACE_S`: ask the venue for its trades
        (or, where the venue cannot list them, synthesize them from the cumulative figures)."""
        v = self.venue
        now = v.mono()
        can_list = bool(v.exchange is not None and v.exchange.has.get("fetchMyTrades"))
        for o in list(self.orders.values()):
            if o.terminal is not None and now - o.terminal_at > FILL_GRACE_S:
                if can_list and not o.checking and v.config.has_keys:
                    o.terminal_at = now  # one fetch per grace period
                    v.reconciler.check(o, "its fills are late")
                elif not can_list:
                    self.finish(o, synthesize=True)

    # ---- bookkeeping ---------------------------------------------------------------------------
    def find(self, order: dict[str, Any]) -> LiveOrder | None:
        cid = order.get("clientOrderId")
        if isinstance(cid, str) and cid in self.by_cid:
            return self.by_cid[cid]
        vid = order.get("id")
        return self.by_vid.get(str(vid)) if vid is not None else None

    def learn_venue_id(self, o: LiveOrder, vid: str) -> None:
        o.venue_id = vid
        self.by_vid[vid] = o
        for trade in self.orphan_trades.pop(vid, []):
            self.on_my_trade(trade)

    def forget(self, o: LiveOrder) -> None:
        self.orders.pop(o.order_id, None)
        self.by_cid.pop(o.client_id, None)
        if o.venue_id:
            self.by_vid.pop(o.venue_id, None)
        if o.terminal is None:
            o.terminal = REJECTED

    def adopt(self, order: dict[str, Any]) -> LiveOrder | None:
        """Take over an order an earlier run left at the venue: this run tracks it, publishes its fills
        and cancels it on shutdown. It gets a negative order id (the OMS numbers its own from 1)."""
        v = self.venue
        if not isinstance(order, dict):
            return None
        symbol = order.get("symbol")
        inst = v.instruments.get(symbol) if isinstance(symbol, str) else None
        raw_side = order.get("side")
        side = BUY if raw_side == "buy" else SELL if raw_side == "sell" else None
        cid = order.get("clientOrderId")
        if (
            not isinstance(symbol, str)
            or inst is None
            or side is None
            or not isinstance(cid, str)
            or cid in self.by_cid
        ):
            return None
        try:
            size = v.lots_of(symbol, order.get("amount"))
            filled = v.lots_of(symbol, order.get("filled") or 0, allow_zero=True)
            price = inst.ticks(order["price"]) if order.get("price") else 0
        except (InstrumentError, KeyError):
            return None
        if filled >= size:
            return None  # nothing left to work: no order to adopt
        oid = self._next_adopted
        self._next_adopted -= 1
        o = LiveOrder(
            oid,
            symbol,
            side,
            price,
            size - filled,
            LIMIT,
            cid,
            fill_base=filled,
            placing=False,
            known_at=v.mono(),
            adopted=True,
            sent_ms=_now_ms(),
        )
        self.orders[oid] = o
        self.by_cid[o.client_id] = o
        if order.get("id") is not None:
            self.learn_venue_id(o, str(order["id"]))
        self.on_order_update({**order, "filled": order.get("filled") or 0})
        return o

    def working_orders(self) -> list[int]:
        return [o.order_id for o in self.orders.values() if o.terminal is None]

    async def cancel_all_working(self, timeout_s: float) -> int:
        """Cancel every order still working at the venue and wait (up to `timeout_s`) for the answers.
        Returns how many were still working when the wait ended."""
        v = self.venue
        for o in [o for o in self.orders.values() if o.terminal is None]:
            if not o.cancel_pending:
                self.cancel(o.order_id, o.symbol)
        deadline = v.mono() + timeout_s
        while any(o.terminal is None for o in self.orders.values()) and v.mono() < deadline:
            await asyncio.sleep(0.02)
        return sum(1 for o in self.orders.values() if o.terminal is None)

    def reject(self, order_id: int, symbol: str, reason: str, new: bool = False) -> None:
        v = self.venue
        now = v.clock.now()
        events: list[Any] = [Rejected(now, v.name, symbol, order_id, v.scrub(reason), OUR_OWNER)]
        if new:
            events.append(Done(now, v.name, symbol, order_id, 0, REJECTED, OUR_OWNER))
        v.bus.publish_many(events)


def trade_key(trade: dict[str, Any]) -> str:
    """What makes one of our trades unique: the venue's trade id (with its order: ids are per market on
    some venues), or its order, time, price and amount where the venue gives no id."""
    tid = trade.get("id")
    if tid is not None and tid != "":
        return f"{trade.get('symbol')}:{tid}"
    return f"{trade.get('symbol')}:{trade.get('order')}:{trade.get('timestamp')}:{trade.get('price')}:{trade.get('amount')}"


def order_type_params(order_type: int) -> tuple[str, dict[str, Any]]:
    if order_type == MARKET:
        return "market", {}
    if order_type == IOC:
        return "limit", {"timeInForce": "IOC"}
    if order_type == FOK:
        return "limit", {"timeInForce": "FOK"}
    if order_type == POST_ONLY:
        return "limit", {"postOnly": True}
    return "limit", {}


def _now_ms() -> int:
    return int(time.time() * 1000)

"""A live venue through ccxt.pro: books, trades and (with keys) our orders, made safe to trade on.

Imported only when a ccxt venue is configured (ccxt.pro costs 0.6 s to import; see DESIGN.md).

Market data. `watch_order_book` hands back one live book object that ccxt mutates in place and
coalesces updates into. We keep, per side, the levels we published last (price float -> size float)
and after each resolution publish one `BookDelta` per level that differs, with contiguous sequence
numbers, converting prices and sizes to ticks and lots once (a per-price tick cache). The first book
after a (re)subscription is published whole as a `BookSnapshot`. `watch_trades` -> `Trade`.

What ccxt does not do, and this adapter does (see `resilience.py` for the pieces):
- A sequence gap makes the pending `watch_order_book` raise `ChecksumError` and drops the book: the
  market is marked stale (`VenueStatus` "resyncing"; the kernel's `Market.stale`; risk and the
  market maker stop quoting) and the book is watched again, which resubscribes and fetches a new
  snapshot; the market is fresh again with that snapshot.
- One undecodable frame kills a ccxt client's receive loop without a word while the socket stays
  open. Two detectors: frames waiting unread in the socket buffer while the client has not handled
  a message for `DEAD_LOOP_S` (a dead receive loop), and a stream quiet for longer than
  `stale_after_s` (a silent venue or a half-open connection). Either way the client is closed,
  removed from `exchange.clients`, and the stream watched again.
- Errors on a stream are retried with exponential backoff and jitter.

Orders (with keys). Each order goes out with our client order id (`newClientOrderId`-style
`clientOrderId` param: `<prefix><our id>`) so that the venue's order stream maps back to our id even
before the REST answer arrives. `watch_orders` gives the lifecycle (Accepted, Cancelled, Done),
`watch_my_trades` the fills (exact price, size, fee, maker flag); a finished order's Done waits for
its fills (and after `FILL_GRACE_S` synthesizes the missing remainder from the order's cumulative
filled size and average price). Requests pass a token bucket and a circuit breaker first; network
errors are retried with backoff (the same client order id, so a retry cannot double an order on a
venue that enforces unique client ids); InvalidOrder, InsufficientFunds, RateLimitExceeded,
AuthenticationError and every other refusal reach the OMS as `Rejected` with the venue's reason.
Every message that leaves this module (events, logs, exceptions) is scrubbed of the key and secret.

Without keys this venue is market data only; `factory.py` wraps it in `trading.paper.PaperVenue`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import ccxt
import ccxt.pro as ccxtpro

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
    BookDelta,
    BookSnapshot,
    Cancelled,
    Done,
    Fill,
    Rejected,
    Trade,
    VenueStatus,
)
from lobterm.engine.instrument import FEE_SCALE, Instrument, InstrumentError, to_decimal
from lobterm.venues.resilience import Backoff, CircuitBreaker, StreamWatchdog, TokenBucket, scrub
from lobterm.venues.settings import VenueConfig

if TYPE_CHECKING:
    from lobterm.bus import Bus
    from lobterm.clock import Clock

__all__ = ["CcxtVenue", "VenueError", "classify_error"]

log = logging.getLogger(__name__)


class _ScrubSecrets(logging.Filter):
    """Replaces every live venue's key and secret in a log record (message and arguments)."""

    secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            record.msg = scrub(str(record.msg), self.secrets)
            if record.args:
                args = record.args if isinstance(record.args, tuple) else (record.args,)
                record.args = tuple(scrub(a, self.secrets) if isinstance(a, str) else a for a in args)
        return True


_SCRUB = _ScrubSecrets()
# ccxt logs every request at DEBUG with its headers, the API key among them: never below INFO, and
# whatever it does log is scrubbed (a logger's filters only see records logged on that very logger).
logging.getLogger("ccxt").setLevel(logging.INFO)
for _name in ("ccxt", "ccxt.base.exchange", "ccxt.async_support.base.exchange", __name__):
    logging.getLogger(_name).addFilter(_SCRUB)

DEAD_LOOP_S = 0.5  # frames unread this long while the client handles nothing: its receive loop is dead
WATCHDOG_EVERY_S = 0.1
FILL_GRACE_S = 2.0
SHUTDOWN_CANCEL_S = 3.0
_TICK_CACHE_MAX = 200_000

# ccxt precision modes (ccxt.base.decimal_to_precision).
_DECIMAL_PLACES, _SIGNIFICANT_DIGITS, _TICK_SIZE = 2, 3, 4


class VenueError(ValueError):
    """A venue failure with a message safe to show and log (secrets scrubbed). `kind` is one of
    network, rate_limit, auth, invalid_order, insufficient_funds, order_not_found, other."""

    def __init__(self, kind: str, message: str) -> None:
        self.kind = kind
        super().__init__(message)


def classify_error(exc: BaseException) -> str:
    """What kind of failure a ccxt exception is (the order of the checks matters: subclasses first)."""
    if isinstance(exc, ccxt.RateLimitExceeded) or isinstance(exc, ccxt.DDoSProtection):
        return "rate_limit"
    if isinstance(exc, ccxt.AuthenticationError) or isinstance(exc, ccxt.PermissionDenied):
        return "auth"
    if isinstance(exc, ccxt.InsufficientFunds):
        return "insufficient_funds"
    if isinstance(exc, ccxt.OrderNotFound):
        return "order_not_found"
    if isinstance(exc, ccxt.InvalidOrder):
        return "invalid_order"
    if isinstance(exc, (ccxt.NetworkError, OSError, asyncio.TimeoutError)):
        return "network"
    return "other"


@dataclass(slots=True, eq=False)
class _LiveOrder:
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
    venue_filled: int = 0  # lots the venue says are filled
    average: Any = None
    terminal: str | None = None  # ccxt status that ended the order
    terminal_at: float = 0.0
    reason: str = ""
    cancel_pending: bool = False
    trade_ids: set = field(default_factory=set)


class CcxtVenue:
    """One ccxt.pro exchange as a lobterm venue (see the module docstring)."""

    mode = "LIVE"
    own_in_book = True

    def __init__(
        self, config: VenueConfig, *, rng: random.Random | None = None, monotonic=time.monotonic
    ) -> None:
        self.config = config
        self.name = config.name
        self.instruments: dict[str, Instrument] = {}
        self.state = "idle"
        self.exchange: Any = None
        self._loaded_from: Any = None  # the exchange that loaded the markets (maybe on another loop)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._bus: Bus | None = None
        self._clock: Clock | None = None
        self._market_state_hook = None
        self._rng = rng or random.Random()
        self._mono = monotonic
        self._secrets = config.secrets()
        _ScrubSecrets.secrets.update(self._secrets)
        self.watchdog = StreamWatchdog(monotonic)
        self.bucket = TokenBucket(config.orders_per_s, config.order_burst, monotonic)
        self.breaker = CircuitBreaker(config.breaker_errors, config.breaker_cooldown_s, monotonic)
        self._tasks: dict[str, asyncio.Task] = {}
        self._side_tasks: set[asyncio.Task] = set()
        self._running = False
        # Market data state per symbol.
        self._seq: dict[str, int] = {}
        self._published: dict[str, tuple[dict[float, float], dict[float, float]]] = {}
        self._book_obj: dict[str, Any] = {}
        self._unsynced: set[str] = set()
        self.book_nonce: dict[str, int | None] = {}  # the venue's update id of what we published last
        self._ticks: dict[str, dict[float, int]] = {}  # per symbol: price float -> ticks
        self._lots: dict[str, dict[float, int]] = {}  # per symbol: size float -> lots
        self._seen_trades: dict[str, int] = {}
        # Orders.
        self._cid_prefix = f"lob{self._rng.randrange(36**6):06x}x"[:12]
        self._orders: dict[int, _LiveOrder] = {}
        self._by_cid: dict[str, _LiveOrder] = {}
        self._by_vid: dict[str, _LiveOrder] = {}
        self._orphan_trades: dict[str, list] = {}
        self.balances: dict[str, tuple[Decimal, Decimal]] = {}
        # Counters (metrics, tests, the status line).
        self.stats: dict[str, int] = {
            k: 0
            for k in (
                "snapshots",
                "deltas",
                "trades",
                "gaps",
                "stalls",
                "dead_loops",
                "resyncs",
                "stream_errors",
                "bad_levels",
                "orders_sent",
                "order_errors",
                "order_retries",
                "rate_limited",
                "breaker_refused",
                "fills",
                "unknown_order_events",
                "fees_unconverted",
            )
        }

    # ---- wiring ------------------------------------------------------------------------------
    def attach(self, bus: Bus, clock: Clock) -> None:
        self._bus = bus
        self._clock = clock

    def bind_market_state(self, hook) -> None:
        """`hook(venue, symbol, stale)`: the kernel marks its Market stale/fresh (risk, the UI)."""
        self._market_state_hook = hook

    # ---- the exchange ------------------------------------------------------------------------
    def _make_exchange(self) -> Any:
        cfg = self.config
        cls = getattr(ccxtpro, cfg.exchange_id, None)
        if cls is None or not isinstance(cls, type):
            raise VenueError("other", f"{cfg.name}: ccxt.pro has no exchange {cfg.exchange_id!r}")
        params: dict[str, Any] = {"enableRateLimit": True, "timeout": cfg.timeout_ms}
        if cfg.api_key:
            params["apiKey"] = cfg.api_key
        if cfg.secret:
            params["secret"] = cfg.secret
        if cfg.password:
            params["password"] = cfg.password
        ex = cls(params)
        if cfg.sandbox:
            ex.set_sandbox_mode(True)
        if cfg.options:
            ex.options = ex.deep_extend(ex.options, cfg.options)
        _override_urls(ex.urls.get("api"), cfg.rest_url, cfg.ws_url)
        for dotted, url in cfg.urls.items():
            _set_dotted(ex.urls, dotted, url)
        return ex

    async def load(self) -> dict[str, Instrument]:
        """Load the markets and build the instruments (tick and lot from precision and limits)."""
        ex = self._make_exchange()
        try:
            await ex.load_markets()
        except Exception as exc:
            await _close_quietly(ex)
            raise self._venue_error(exc, "loading markets") from None
        try:
            self._adopt(ex)
        except Exception:
            await _close_quietly(ex)
            raise
        return self.instruments

    def _adopt(self, ex: Any) -> None:
        self._loaded_from = ex
        self.exchange = ex
        self._loop = asyncio.get_running_loop()
        cfg = self.config
        symbols = cfg.symbols or ()
        if not symbols:
            raise VenueError("other", f"{cfg.name}: no symbols configured (venues.{cfg.name}.symbols)")
        for symbol in symbols:
            market = ex.markets.get(symbol)
            if market is None:
                raise VenueError("other", f"{cfg.name} does not list {symbol!r}")
            self.instruments[symbol] = instrument_from_market(cfg.name, market, ex.precisionMode)

    async def release(self) -> None:
        """Close the exchange that loaded the markets (before its event loop ends)."""
        if self.exchange is not None:
            await _close_quietly(self.exchange)

    def _ensure_exchange(self) -> Any:
        loop = asyncio.get_running_loop()
        if self.exchange is None or self._loop is not loop:
            if self._loaded_from is None:
                raise VenueError("other", f"{self.name}: load() the markets before start()")
            ex = self._make_exchange()
            ex.set_markets_from_exchange(self._loaded_from)
            self.exchange = ex
            self._loop = loop
        return self.exchange

    # ---- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        if not self.instruments:
            await self.load()
        self._ensure_exchange()
        self._running = True
        self._status("connecting", "subscribing")
        for symbol in self.instruments:
            self._seq.setdefault(symbol, 0)
            self._unsynced.add(symbol)
            self._start_stream(f"book:{symbol}")
            self._start_stream(f"trades:{symbol}")
        if self.config.has_keys:
            self._start_stream("orders")
            self._start_stream("mytrades")
            self._spawn(self.refresh_balances())
        self._tasks["watchdog"] = asyncio.get_running_loop().create_task(
            self._watchdog_loop(), name=f"{self.name}-watchdog"
        )

    async def stop(self) -> None:
        if self._running and self.config.has_keys and self.config.cancel_on_shutdown:
            await self.cancel_all_working(SHUTDOWN_CANCEL_S)
        self._running = False
        tasks = list(self._tasks.values()) + list(self._side_tasks)
        for t in tasks:
            t.cancel()
        for t in tasks:
            try:
                await t
            except (asyncio.CancelledError, Exception):
                pass
        self._tasks.clear()
        self._side_tasks.clear()
        if self.exchange is not None:
            await _close_quietly(self.exchange)
        if self._bus is not None and self.state != "closed":
            self._status("closed")

    async def cancel_all_working(self, timeout_s: float) -> int:
        """Cancel every order still working at the venue and wait (up to `timeout_s`) for the answers.
        Returns how many were still working when the wait ended."""
        live = [o for o in self._orders.values() if o.terminal is None]
        for o in live:
            if not o.cancel_pending:
                self.cancel(o.order_id, o.symbol)
        deadline = self._mono() + timeout_s
        while any(o.terminal is None for o in self._orders.values()) and self._mono() < deadline:
            await asyncio.sleep(0.02)
        return sum(1 for o in self._orders.values() if o.terminal is None)

    # ---- streams -----------------------------------------------------------------------------
    def _start_stream(self, stream: str) -> None:
        kind, _, symbol = stream.partition(":")
        loop = asyncio.get_running_loop()
        if kind == "book":
            coro = self._book_loop(symbol)
            self.watchdog.watch(stream, self.config.stale_after_s)
        elif kind == "trades":
            coro = self._trade_loop(symbol)
        elif kind == "orders":
            coro = self._private_loop("orders", self._watch_orders_once)
        else:
            coro = self._private_loop("mytrades", self._watch_my_trades_once)
        self._tasks[stream] = loop.create_task(coro, name=f"{self.name}-{stream}")

    async def _book_loop(self, symbol: str) -> None:
        backoff = Backoff(0.05, 5.0, rng=self._rng)
        stream = f"book:{symbol}"
        ex = self.exchange
        while self._running:
            try:
                ob = await ex.watch_order_book(symbol, self.config.depth)
            except BaseException as exc:
                _reraise_if_ours(exc)
                self._book_failed(symbol, exc)
                delay = backoff.next_delay()
                # The first resubscription after a gap goes at once: the venue is fine, our copy is not.
                await asyncio.sleep(
                    0 if isinstance(exc, ccxt.ChecksumError) and backoff.attempts == 1 else delay
                )
                continue
            backoff.reset()
            self.watchdog.touch(stream)
            self._on_book(symbol, ob)

    def _book_failed(self, symbol: str, exc: BaseException) -> None:
        if isinstance(exc, ccxt.ChecksumError):
            self.stats["gaps"] += 1
            why = "sequence gap: resubscribing and fetching a new snapshot"
        else:
            self.stats["stream_errors"] += 1
            why = f"{type(exc).__name__}: {self._scrub(str(exc))[:200]}"
            log.warning("%s %s book stream: %s", self.name, symbol, why)
        self._book_obj.pop(symbol, None)
        self._mark_unsynced(symbol, why)

    async def _trade_loop(self, symbol: str) -> None:
        async def once() -> None:
            self._on_trades(symbol, await self.exchange.watch_trades(symbol))

        await self._private_loop(f"{symbol} trade", once, max_delay=5.0)

    async def _private_loop(self, what: str, once, max_delay: float = 10.0) -> None:
        """Run `once` until stopped; a failure is logged (scrubbed of secrets), counted and retried with
        backoff."""
        backoff = Backoff(0.1, max_delay, rng=self._rng)
        while self._running:
            try:
                await once()
            except BaseException as exc:
                _reraise_if_ours(exc)
                self.stats["stream_errors"] += 1
                log.warning(
                    "%s %s stream: %s: %s", self.name, what, type(exc).__name__, self._scrub(str(exc))[:200]
                )
                await asyncio.sleep(backoff.next_delay())
                continue
            backoff.reset()

    async def _watch_orders_once(self) -> None:
        for order in await self.exchange.watch_orders():
            self._on_order_update(order)

    async def _watch_my_trades_once(self) -> None:
        for trade in await self.exchange.watch_my_trades():
            self._on_my_trade(trade)

    # ---- the watchdog ------------------------------------------------------------------------
    async def _watchdog_loop(self) -> None:
        while self._running:
            await asyncio.sleep(WATCHDOG_EVERY_S)
            try:
                self._watchdog_tick()
            except Exception as exc:  # the watchdog must outlive anything it finds
                log.warning("%s watchdog: %s: %s", self.name, type(exc).__name__, self._scrub(str(exc))[:200])

    def _watchdog_tick(self) -> None:
        for stream in self.watchdog.stale():
            self.stats["stalls"] += 1
            self.restart_stream(stream, f"no update for {self.config.stale_after_s:g} s")
        now_ms = int(time.time() * 1000)
        ex = self.exchange
        for url, client in list((ex.clients or {}).items()):
            try:
                buf = client.buffer
            except Exception:
                buf = None
            last = getattr(client, "last_message_at", None)
            if buf and last is not None and now_ms - last > DEAD_LOOP_S * 1000:
                # Frames are waiting that nobody reads: a bad frame stopped this client's receive loop.
                self.stats["dead_loops"] += 1
                streams = self._streams_on(client)
                if not streams and self.config.has_keys:
                    streams = ["orders", "mytrades"]
                if ex.clients.get(url) is client:
                    del ex.clients[url]
                    self._spawn(_close_client(client))
                for stream in streams:
                    self.restart_stream(stream, "a frame stopped the receive loop")
        now = self._mono()
        for o in list(self._orders.values()):
            if o.terminal is not None and now - o.terminal_at > FILL_GRACE_S:
                self._finish(o, synthesize=True)

    def _streams_on(self, client: Any) -> list[str]:
        keys = " ".join(map(str, list(client.subscriptions) + list(client.futures)))
        out = []
        for symbol in self.instruments:
            if symbol in keys and "book" in keys.lower():
                out.append(f"book:{symbol}")
            if symbol in keys and "trade" in keys.lower() and "mytrade" not in keys.lower():
                out.append(f"trades:{symbol}")
        return out

    def restart_stream(self, stream: str, why: str) -> None:
        """Close the ccxt client(s) carrying `stream`, drop them from `exchange.clients`, and watch the
        stream again (a book stream resnapshots; its market is stale until then)."""
        kind, _, symbol = stream.partition(":")
        log.warning("%s %s: %s; resubscribing", self.name, stream, why)
        task = self._tasks.pop(stream, None)
        if task is not None:
            task.cancel()
        ex = self.exchange
        if kind in ("book", "trades"):
            for url, client in list((ex.clients or {}).items()):
                if stream in self._streams_on(client):
                    del ex.clients[url]
                    self._spawn(_close_client(client))
        if kind == "book":
            if symbol in ex.orderbooks:
                del ex.orderbooks[symbol]
            self._book_obj.pop(symbol, None)
            self._mark_unsynced(symbol, why)
        if self._running:
            self._start_stream(stream)

    # ---- market data conversion --------------------------------------------------------------
    def _on_book(self, symbol: str, ob: Any) -> None:
        if self._book_obj.get(symbol) is not ob or symbol in self._unsynced:
            self._publish_snapshot(symbol, ob)
            return
        inst = self.instruments[symbol]
        ticks = self._ticks[symbol]
        now = self._clock.now()
        bids_pub, asks_pub = self._published[symbol]
        out: list[BookDelta] = []
        seq = self._seq[symbol]
        name = self.name
        for side, levels, pub in ((BUY, ob["bids"], bids_pub), (SELL, ob["asks"], asks_pub)):
            for level in levels:
                p = level[0]
                s = level[1]
                if pub.get(p) != s:
                    pub[p] = s  # a bad level too: it is counted once, not converted again per message
                    lv = self._level(inst, ticks, p, s)
                    if lv is None:
                        continue
                    seq += 1
                    out.append(BookDelta(now, name, symbol, seq, side, lv[0], lv[1]))
            if len(pub) != len(levels):
                present = {lv[0] for lv in levels}
                for p in [p for p in pub if p not in present]:
                    del pub[p]
                    t = ticks.get(p)
                    if t is None:
                        continue
                    seq += 1
                    out.append(BookDelta(now, name, symbol, seq, side, t, 0))
        self._seq[symbol] = seq
        self.book_nonce[symbol] = _nonce(ob)
        if out:
            self.stats["deltas"] += len(out)
            self._bus.publish_many(out)

    def _level(self, inst: Instrument, ticks: dict[float, int], p: float, s: float) -> tuple[int, int] | None:
        t = ticks.get(p)
        cache = self._lots[inst.symbol]
        lots = cache.get(s)
        try:
            if t is None:
                if len(ticks) > _TICK_CACHE_MAX:
                    ticks.clear()
                t = ticks[p] = inst.ticks(p)
            if lots is None:
                if len(cache) > _TICK_CACHE_MAX:
                    cache.clear()
                lots = cache[s] = inst.lots(s, allow_zero=True)
            return t, lots
        except InstrumentError as exc:
            self.stats["bad_levels"] += 1
            if self.stats["bad_levels"] <= 5:
                log.warning("%s: level ignored: %s", self.name, exc)
            return None

    def _publish_snapshot(self, symbol: str, ob: Any) -> None:
        inst = self.instruments[symbol]
        ticks = self._ticks.setdefault(symbol, {})
        self._lots.setdefault(symbol, {})
        sides = []
        pubs = ({}, {})
        for side, levels in ((BUY, ob["bids"]), (SELL, ob["asks"])):
            out = []
            pub = pubs[side]
            for level in levels:
                p, s = level[0], level[1]
                lv = self._level(inst, ticks, p, s)
                if lv is not None and lv[1] > 0:
                    out.append(lv)
                    pub[p] = s
            sides.append(tuple(out))
        self._published[symbol] = pubs
        self._book_obj[symbol] = ob
        self.book_nonce[symbol] = _nonce(ob)
        self.stats["snapshots"] += 1
        was_unsynced = symbol in self._unsynced
        self._bus.publish(
            BookSnapshot(self._clock.now(), self.name, symbol, self._seq[symbol], sides[0], sides[1])
        )
        if was_unsynced:
            self._unsynced.discard(symbol)
            if self.stats["snapshots"] > len(self.instruments):
                self.stats["resyncs"] += 1
            if self._market_state_hook is not None:
                self._market_state_hook(self.name, symbol, False)
            if not self._unsynced:
                self._status("up")

    def publish_snapshot(self, symbol: str | None = None) -> None:
        """Publish the current book(s) whole again (the kernel asks after it saw a gap)."""
        for sym in [symbol] if symbol else list(self.instruments):
            ob = self._book_obj.get(sym)
            if ob is not None:
                self._publish_snapshot(sym, ob)

    def _mark_unsynced(self, symbol: str, why: str) -> None:
        if self._bus is None:
            return
        first = symbol not in self._unsynced
        self._unsynced.add(symbol)
        if first and self._market_state_hook is not None:
            self._market_state_hook(self.name, symbol, True)
        if self.state != "resyncing" or first:
            self._status("resyncing" if self.stats["snapshots"] else "connecting", f"{symbol}: {why}")

    def _on_trades(self, symbol: str, trades: list) -> None:
        inst = self.instruments[symbol]
        now = self._clock.now()
        out = []
        for t in trades:
            try:
                price = inst.ticks(t["price"])
                size = inst.lots(t["amount"])
            except (InstrumentError, KeyError, TypeError):
                self.stats["bad_levels"] += 1
                continue
            aggressor = SELL if t.get("side") == "sell" else BUY
            raw_id = t.get("id")
            tid = _int_id(raw_id)
            if raw_id is not None and str(raw_id).isdigit():  # increasing venue ids: drop replays
                last = self._seen_trades.get(symbol)
                if last is not None and tid <= last:
                    continue  # a resubscription can hand back trades we already published
                self._seen_trades[symbol] = tid
            out.append(Trade(now, self.name, symbol, price, size, aggressor, tid or 0))
        if out:
            self.stats["trades"] += len(out)
            self._bus.publish_many(out)

    # ---- our orders --------------------------------------------------------------------------
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
        inst = self.instruments.get(symbol)
        if inst is None:
            self._reject(order_id, symbol, f"{self.name} does not list {symbol!r}", new=True)
            return
        if not self.config.has_keys:
            self._reject(order_id, symbol, f"{self.name}: no API keys (trade it in paper mode)", new=True)
            return
        if order_id in self._orders:
            self._reject(order_id, symbol, f"duplicate order id {order_id}", new=True)
            return
        why = self._gate()
        if why is not None:
            self._reject(order_id, symbol, why, new=True)
            return
        o = _LiveOrder(order_id, symbol, side, price, size, order_type, f"{self._cid_prefix}{order_id}")
        self._orders[order_id] = o
        self._by_cid[o.client_id] = o
        self.stats["orders_sent"] += 1
        self._spawn(self._place(o, inst))

    def cancel(self, order_id: int, symbol: str) -> None:
        o = self._orders.get(order_id)
        if o is None or o.terminal is not None:
            self._reject(order_id, symbol, f"cancel: order {order_id} is not working at {self.name}")
            return
        o.cancel_pending = True  # cancels are never held back by the bucket or the breaker: they cut risk
        self._spawn(self._cancel(o))

    def amend(self, order_id: int, symbol: str, price: int | None = None, size: int | None = None) -> None:
        # ccxt's editOrder is cancel-and-replace on most venues (a new venue order, a new queue place);
        # lobterm's Amended means "the same order moved", so amends are refused: cancel and re-enter.
        self._reject(
            order_id,
            symbol,
            f"{self.name}: amend is not supported on live venues; cancel and place a new order",
        )

    def _gate(self) -> str | None:
        if not self.breaker.allow():
            self.stats["breaker_refused"] += 1
            return (
                f"{self.name}: circuit breaker open after {self.breaker.failures} order errors "
                f"(last: {self.breaker.last_error[:120]}); retry in {self.breaker.retry_in_s():.1f} s"
            )
        if not self.bucket.take():
            self.stats["rate_limited"] += 1
            return (
                f"{self.name}: order rate limit ({self.config.orders_per_s:g}/s, burst "
                f"{self.config.order_burst}); retry in {self.bucket.wait_s():.2f} s"
            )
        return None

    async def _place(self, o: _LiveOrder, inst: Instrument) -> None:
        ex = self.exchange
        otype, params = _order_type(o.order_type)
        params["clientOrderId"] = o.client_id
        amount = str(inst.size(o.size))
        price = None if o.order_type == MARKET else str(inst.price(o.price))
        side = "buy" if o.side == BUY else "sell"
        use_ws = self.config.order_transport == "ws" and ex.has.get("createOrderWs")
        backoff = Backoff(0.1, 2.0, rng=self._rng)
        for attempt in range(self.config.order_retries + 1):
            try:
                if use_ws:
                    res = await ex.create_order_ws(o.symbol, otype, side, amount, price, params)
                else:
                    res = await ex.create_order(o.symbol, otype, side, amount, price, params)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                kind = classify_error(exc)
                if kind == "network" and attempt < self.config.order_retries:
                    self.stats["order_retries"] += 1
                    await asyncio.sleep(backoff.next_delay())
                    continue
                if o.accepted or o.terminal is not None:
                    return  # the order stream already knows the order: an earlier attempt got through
                self._order_error(o, exc, "new order")
                return
            self.breaker.success()
            self._on_order_update(res)
            return

    async def _cancel(self, o: _LiveOrder) -> None:
        ex = self.exchange
        backoff = Backoff(0.1, 2.0, rng=self._rng)
        for attempt in range(self.config.order_retries + 1):
            if o.terminal is not None:
                return
            params = {} if o.venue_id else {"clientOrderId": o.client_id}
            try:
                use_ws = self.config.order_transport == "ws" and ex.has.get("cancelOrderWs")
                if use_ws:
                    res = await ex.cancel_order_ws(o.venue_id, o.symbol, params)
                else:
                    res = await ex.cancel_order(o.venue_id, o.symbol, params)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                kind = classify_error(exc)
                if kind == "network" and attempt < self.config.order_retries:
                    self.stats["order_retries"] += 1
                    await asyncio.sleep(backoff.next_delay())
                    continue
                o.cancel_pending = False
                if o.terminal is None:
                    self._order_error(o, exc, "cancel")
                return
            self.breaker.success()
            if isinstance(res, dict) and res.get("status"):
                self._on_order_update(res)
            return

    def _order_error(self, o: _LiveOrder, exc: BaseException, what: str) -> None:
        err = self._venue_error(exc, what)
        self.stats["order_errors"] += 1
        self.breaker.failure(str(err))
        log.warning("%s: %s of order %d refused: %s", self.name, what, o.order_id, err)
        reason = f"{self.name} {err.kind}: {err}"
        if what == "new order":
            self._forget(o)
            self._reject(o.order_id, o.symbol, reason, new=True)
        else:
            self._reject(o.order_id, o.symbol, reason)

    def _on_order_update(self, order: dict) -> None:
        o = self._find(order)
        if o is None:
            self.stats["unknown_order_events"] += 1
            return
        vid = order.get("id")
        if vid and o.venue_id is None:
            o.venue_id = str(vid)
            self._by_vid[o.venue_id] = o
            for trade in self._orphan_trades.pop(o.venue_id, []):
                self._on_my_trade(trade)
        if o.terminal is not None:
            return
        status = order.get("status")
        inst = self.instruments[o.symbol]
        now = self._clock.now()
        if status == "rejected":
            self._forget(o)
            self._reject(o.order_id, o.symbol, f"{self.name}: order rejected by the venue", new=True)
            return
        if not o.accepted and status in ("open", "closed", "canceled", "expired"):
            o.accepted = True
            self._bus.publish(
                Accepted(
                    now,
                    self.name,
                    o.symbol,
                    o.order_id,
                    o.side,
                    0 if o.order_type == MARKET else o.price,
                    o.size,
                    o.order_type,
                    OUR_OWNER,
                )
            )
        try:
            filled = inst.lots(order.get("filled") or 0, allow_zero=True)
        except InstrumentError:
            filled = o.venue_filled
        o.venue_filled = max(o.venue_filled, filled)
        if order.get("average") is not None:
            o.average = order["average"]
        if status in ("closed", "canceled", "expired"):
            o.terminal = status
            o.terminal_at = self._mono()
            self._finish(o)
        elif not self.exchange.has.get("watchMyTrades") and o.venue_filled > o.filled:
            self._finish(o, synthesize=True)

    def _on_my_trade(self, trade: dict) -> None:
        vid = trade.get("order")
        o = self._by_vid.get(str(vid)) if vid is not None else None
        if o is None:
            if vid is not None and len(self._orphan_trades) < 10_000:
                self._orphan_trades.setdefault(str(vid), []).append(trade)
            return
        tid = trade.get("id")
        if tid in o.trade_ids:
            return
        inst = self.instruments[o.symbol]
        try:
            price = inst.ticks_nearest(trade["price"])
            size = inst.lots(trade["amount"])
        except (InstrumentError, KeyError, TypeError) as exc:
            self.stats["bad_levels"] += 1
            log.warning("%s: fill of order %d not understood: %s", self.name, o.order_id, exc)
            return
        o.trade_ids.add(tid)
        self._publish_fill(
            o, inst, price, size, trade.get("takerOrMaker") == "maker", trade.get("fee"), _int_id(tid) or 0
        )
        if o.terminal is not None:
            self._finish(o)

    def _publish_fill(
        self, o: _LiveOrder, inst: Instrument, price: int, size: int, is_maker: bool, fee: Any, trade_id: int
    ) -> None:
        o.filled += size
        o.venue_filled = max(o.venue_filled, o.filled)
        self.stats["fills"] += 1
        self._bus.publish(
            Fill(
                self._clock.now(),
                self.name,
                o.symbol,
                o.order_id,
                o.side,
                price,
                size,
                max(0, o.size - o.filled),
                is_maker,
                self._fee_units(inst, fee, price),
                trade_id,
                OUR_OWNER,
            )
        )

    def _fee_units(self, inst: Instrument, fee: Any, price_ticks: int) -> int:
        if not isinstance(fee, dict) or fee.get("cost") in (None, 0, "0"):
            return 0
        try:
            cost = to_decimal(fee["cost"])
        except InstrumentError:
            return 0
        cur = fee.get("currency")
        if cur == inst.quote:
            quote = cost
        elif cur == inst.base:
            quote = cost * inst.price(price_ticks)
        else:
            self.stats["fees_unconverted"] += 1
            return 0
        return int((quote / (inst.tick_size * inst.lot_size) * FEE_SCALE).to_integral_value())

    def _finish(self, o: _LiveOrder, synthesize: bool = False) -> None:
        """Publish what ends the order once its fills are in (or, with `synthesize`, the missing fills
        from the venue's cumulative figures)."""
        if o.filled < o.venue_filled:
            if not synthesize:
                return
            inst = self.instruments[o.symbol]
            try:
                price = inst.ticks_nearest(o.average) if o.average else o.price
            except InstrumentError:
                price = o.price
            self._publish_fill(o, inst, price, o.venue_filled - o.filled, False, None, 0)
        if o.terminal is None:
            return
        now = self._clock.now()
        leaves = max(0, o.size - o.filled)
        events = []
        if o.terminal == "closed" and leaves == 0:
            reason = FILLED
        else:
            reason = EXPIRED if o.terminal == "expired" or o.order_type in (IOC, FOK, MARKET) else CANCELED
            if leaves:
                events.append(Cancelled(now, self.name, o.symbol, o.order_id, leaves, reason, OUR_OWNER))
        events.append(Done(now, self.name, o.symbol, o.order_id, o.filled, reason, OUR_OWNER))
        self._forget(o)
        self._bus.publish_many(events)

    def _find(self, order: dict) -> _LiveOrder | None:
        cid = order.get("clientOrderId")
        if cid and cid in self._by_cid:
            return self._by_cid[cid]
        vid = order.get("id")
        return self._by_vid.get(str(vid)) if vid is not None else None

    def _forget(self, o: _LiveOrder) -> None:
        self._orders.pop(o.order_id, None)
        self._by_cid.pop(o.client_id, None)
        if o.venue_id:
            self._by_vid.pop(o.venue_id, None)
        if o.terminal is None:
            o.terminal = REJECTED

    def working_orders(self) -> list[int]:
        return [o.order_id for o in self._orders.values() if o.terminal is None]

    async def refresh_balances(self) -> dict[str, tuple[Decimal, Decimal]]:
        """Free and total balance per currency (exact Decimals); errors are logged, scrubbed."""
        try:
            bal = await self.exchange.fetch_balance()
        except Exception as exc:
            log.warning("%s: balances: %s", self.name, self._venue_error(exc, "balances"))
            return self.balances
        out = {}
        for cur, total in (bal.get("total") or {}).items():
            if total is None:
                continue
            free = (bal.get("free") or {}).get(cur) or 0
            try:
                out[cur] = (to_decimal(free), to_decimal(total))
            except InstrumentError:
                continue
        self.balances = out
        return out

    # ---- helpers -----------------------------------------------------------------------------
    def _reject(self, order_id: int, symbol: str, reason: str, new: bool = False) -> None:
        now = self._clock.now()
        events = [Rejected(now, self.name, symbol, order_id, self._scrub(reason), OUR_OWNER)]
        if new:
            events.append(Done(now, self.name, symbol, order_id, 0, REJECTED, OUR_OWNER))
        self._bus.publish_many(events)

    def _venue_error(self, exc: BaseException, what: str) -> VenueError:
        msg = self._scrub(str(exc)) or type(exc).__name__
        return VenueError(classify_error(exc), f"{what}: {msg[:300]}")

    def _scrub(self, text: str) -> str:
        return scrub(text, self._secrets)

    def _status(self, state: str, detail: str = "") -> None:
        self.state = state
        if self._bus is not None:
            self._bus.publish(VenueStatus(self._clock.now(), self.name, state, self._scrub(detail)))

    def _spawn(self, coro) -> None:
        t = asyncio.get_running_loop().create_task(coro)
        self._side_tasks.add(t)
        t.add_done_callback(self._side_done)

    def _side_done(self, t: asyncio.Task) -> None:
        self._side_tasks.discard(t)
        if not t.cancelled() and t.exception() is not None:  # a bug, not a venue error: say so, scrubbed
            exc = t.exception()
            log.error("%s: %s: %s", self.name, type(exc).__name__, self._scrub(str(exc))[:300])

    def __repr__(self) -> str:  # never the config's secrets
        return f"CcxtVenue({self.name!r}, {self.config.exchange_id!r}, state={self.state!r})"


# ---- module helpers ------------------------------------------------------------------------------
def instrument_from_market(venue: str, market: dict, precision_mode: int) -> Instrument:
    """Tick and lot from a ccxt market's precision (tick-size or decimal-places mode) and its minimum
    amount from the limits."""
    symbol = market["symbol"]
    prec = market.get("precision") or {}

    def step(value: Any, what: str) -> Decimal:
        if value is None:
            raise VenueError("other", f"{venue} {symbol}: the market has no {what} precision")
        if precision_mode == _TICK_SIZE:
            return to_decimal(value, symbol=symbol, what=what)
        if precision_mode == _DECIMAL_PLACES:
            return Decimal(1).scaleb(-int(value))
        raise VenueError(
            "other",
            f"{venue} {symbol}: precision mode {precision_mode} (significant digits) has no fixed grid",
        )

    tick = step(prec.get("price"), "price")
    lot = step(prec.get("amount"), "amount")
    min_amount = ((market.get("limits") or {}).get("amount") or {}).get("min")
    min_lots = 1
    if min_amount:
        min_lots = max(1, math.ceil(to_decimal(min_amount) / lot))
    return Instrument(
        symbol,
        tick_size=tick,
        lot_size=lot,
        min_lots=min_lots,
        base=market.get("base") or "",
        quote=market.get("quote") or "",
        venue=venue,
    )


def _order_type(order_type: int) -> tuple[str, dict]:
    if order_type == MARKET:
        return "market", {}
    if order_type == IOC:
        return "limit", {"timeInForce": "IOC"}
    if order_type == FOK:
        return "limit", {"timeInForce": "FOK"}
    if order_type == POST_ONLY:
        return "limit", {"postOnly": True}
    return "limit", {}


def _nonce(ob: Any) -> int | None:
    try:
        return ob.get("nonce")
    except AttributeError:
        return None


def _int_id(value: Any) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return abs(hash(value)) % (1 << 62)


def _override_urls(api: Any, rest_url: str, ws_url: str) -> None:
    """Replace scheme://host[:port] of every REST (http) URL with `rest_url` and of every websocket URL
    with `ws_url`, keeping the paths."""
    if not isinstance(api, dict) or not (rest_url or ws_url):
        return
    from urllib.parse import urlsplit

    def swap(url: str, base: str) -> str:
        parts = urlsplit(url)
        return base.rstrip("/") + parts.path + (f"?{parts.query}" if parts.query else "")

    for key, value in list(api.items()):
        if isinstance(value, dict):
            _override_urls(value, rest_url, ws_url)
        elif isinstance(value, str):
            if value.startswith("http") and rest_url:
                api[key] = swap(value, rest_url)
            elif value.startswith("ws") and ws_url:
                api[key] = swap(value, ws_url)


def _set_dotted(root: dict, dotted: str, value: str) -> None:
    parts = dotted.split(".")
    node = root
    for p in parts[:-1]:
        nxt = node.get(p)
        if not isinstance(nxt, dict):
            nxt = node[p] = {}
        node = nxt
    node[parts[-1]] = value


def _reraise_if_ours(exc: BaseException) -> None:
    """Re-raise `exc` if it is our own task being cancelled (or not an ordinary error). A ccxt client
    that is closed cancels the futures its watchers await: that CancelledError is a stream error."""
    if isinstance(exc, asyncio.CancelledError):
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise exc
        return
    if not isinstance(exc, Exception):
        raise exc


async def _close_client(client: Any) -> None:
    try:
        client.error = client.error or ccxt.NetworkError("closed by lobterm's watchdog")
        await client.close()
    except Exception:
        pass


async def _close_quietly(ex: Any) -> None:
    try:
        await ex.close()
    except Exception:
        pass

"""`CcxtVenue`: one ccxt.pro exchange as a lobterm venue, assembled from its parts.

- `markets.py`: the exchange object and the instruments (only the market types the symbols need), and
  each market's `Contracts`: on a contract market every amount to and from ccxt is contracts, converted
  exactly by `venue_amount` (out) and `lots_of` (in); inverse contracts are refused at load;
- `streams.py`: books and trades as engine events, the watch loops and their watchdog;
- `orders.py`: our orders out, the venue's reports back (fills exactly once per trade id);
- `reconcile.py`: open orders, missed fills, orphans and (spot) balances checked against the venue;
- `perps.py`: linear swaps: margin terms, mark and funding rate, the venue's position, funding payments.

It implements `Venue`, `OrderStateVenue` (`open_order_ids`, `cancel_open_orders`: the venue's own
answer, asked now), `Resyncable` and `StaleReporting` from `lobterm/venues/base.py`. Counters live in
`stats`; `gaps` is the number of breaks in a book stream the adapter saw (a sequence gap ccxt
detected, a frame it could not read, a dropped connection; each also published as a `BookGap`).
Without keys this venue is market data only; the assembly wraps it in `trading.paper.PaperVenue`.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from lobterm.engine.events import LIMIT, STP_CANCEL_RESTING, VenueStatus
from lobterm.engine.instrument import Instrument
from lobterm.venues.base import Attached
from lobterm.venues.ccxt.errors import SECRETS, NoiseHandler, VenueError, classify_error, log, venue_error
from lobterm.venues.ccxt.markets import (
    Contracts,
    contracts_of,
    instrument_from_market,
    inverse_refusal,
    make_exchange,
)
from lobterm.venues.ccxt.orders import OrderDesk
from lobterm.venues.ccxt.perps import PerpWatch
from lobterm.venues.ccxt.reconcile import Reconciler
from lobterm.venues.ccxt.streams import MarketStreams
from lobterm.venues.resilience import CircuitBreaker, StreamWatchdog, scrub
from lobterm.venues.settings import VenueConfig

if TYPE_CHECKING:
    pass

__all__ = ["CcxtVenue", "SHUTDOWN_CANCEL_S"]

SHUTDOWN_CANCEL_S = 3.0
STOP_REQUESTS_S = 5.0  # stop() waits this long for order requests in flight before closing
_COUNTERS = (
    "snapshots", "deltas", "trades", "gaps", "stalls", "dead_loops", "malformed_frames", "resyncs",
    "stream_errors", "bad_trades", "bad_venue_times", "orders_sent", "order_errors", "order_retries", "rate_limited",
    "breaker_refused", "fills", "duplicate_fills", "missed_fills", "late_fills", "synthesized_fills",
    "unknown_order_events", "bad_order_reports", "bad_fill_reports", "fees_unconverted", "cancel_unknown",
    "orders_gone", "bad_sizes", "funding_payments", "reconciliations", "reconcile_failures", "balance_mismatches", "orphans",
)  # fmt: skip


class CcxtVenue(Attached):
    """One ccxt.pro exchange as a lobterm venue (see the module docstring)."""

    mode = "LIVE"
    own_in_book = True

    def __init__(
        self,
        config: VenueConfig,
        *,
        rng: random.Random | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.name = config.name
        self.instruments: dict[str, Instrument] = {}
        # How each market counts amounts (contracts of a contract size; 1 for spot): every amount to
        # and from ccxt passes `venue_amount` / `lots_of` (see markets.py).
        self.contracts: dict[str, Contracts] = {}
        self.state = "idle"
        self.exchange: Any = None
        self.exchange_closed = False
        self._loaded_from: Any = None  # the exchange that loaded the markets (maybe on another loop)
        self._loop: asyncio.AbstractEventLoop | None = None
        self.market_state_hook: Callable[[str, str, bool], None] | None = None
        self.rng = rng or random.Random()
        self.mono = monotonic
        self._secrets = config.secrets()
        SECRETS.secrets.update(self._secrets)
        self.watchdog = StreamWatchdog(monotonic)
        self.side_tasks: set[asyncio.Task[object]] = set()
        self.running = False
        self.stopping = False
        self.started_ms = 0
        self._noise: NoiseHandler | None = None
        self.balances: dict[str, tuple[Decimal, Decimal]] = {}  # currency -> (free, total), last asked
        self.stats: dict[str, int] = dict.fromkeys(_COUNTERS, 0)
        self.streams = MarketStreams(self)
        self.orders = OrderDesk(self)
        self.reconciler = Reconciler(self)
        self.perps = PerpWatch(self)  # linear swaps: margin terms, mark, the venue's position

    # ---- what the kernel and the UI read --------------------------------------------------------
    @property
    def gaps(self) -> int:
        """Breaks in this venue's book streams the adapter saw (see `streams.py`; the L2 book counts the
        gaps it finds itself, and the kernel both, from the `BookGap`s on the bus)."""
        return self.stats["gaps"]

    @property
    def book_nonce(self) -> dict[str, int | None]:
        return self.streams.book_nonce

    @property
    def breaker(self) -> CircuitBreaker:  # read by tests and the status line
        return self.orders.breaker

    def working_orders(self) -> list[int]:
        return self.orders.working_orders()

    def take_feed_latency(self) -> dict[str, list[list[int]]]:
        """Feed latency samples since the last call (`FeedLatencyReporting`, lobterm/venues/base.py)."""
        return self.streams.take_feed_latency()

    # ---- wiring ------------------------------------------------------------------------------
    def bind_market_state(self, set_stale: Callable[[str, str, bool], None]) -> None:
        """`set_stale(venue, symbol, stale)`: the kernel marks its Market stale/fresh (risk, the UI)."""
        self.market_state_hook = set_stale

    # ---- the exchange ------------------------------------------------------------------------
    async def load(self) -> dict[str, Instrument]:
        """Load the markets and build the instruments (tick and lot from precision and limits)."""
        ex = make_exchange(self.config)
        try:
            await ex.load_markets()
        except Exception as exc:
            await _close_quietly(ex)
            raise self.venue_error(exc, "loading markets") from None
        try:
            self._adopt(ex)
        except Exception:
            await _close_quietly(ex)
            raise
        return self.instruments

    def _adopt(self, ex: Any) -> None:
        self._loaded_from = ex
        self.exchange = ex
        self.exchange_closed = False
        self._loop = asyncio.get_running_loop()
        cfg = self.config
        if not cfg.symbols:
            raise VenueError("other", f"{cfg.name}: no symbols configured (venues.{cfg.name}.symbols)")
        for symbol in cfg.symbols:
            market = ex.markets.get(symbol)
            if market is None:
                raise VenueError("other", f"{cfg.name} does not list {symbol!r}")
            refusal = inverse_refusal(cfg.name, market)
            if refusal is not None:
                log.error("%s", refusal)
                raise VenueError("config", refusal)
            self.contracts[symbol] = contracts_of(cfg.name, market, ex.precisionMode)
            self.instruments[symbol] = instrument_from_market(cfg.name, market, ex.precisionMode)

    async def release(self) -> None:
        """Close the exchange that loaded the markets (before its event loop ends)."""
        if self.exchange is not None:
            self.exchange_closed = True
            await _close_quietly(self.exchange)

    def _fresh_exchange(self) -> Any:
        if self._loaded_from is None:
            raise VenueError("other", f"{self.name}: load() the markets before start()")
        ex = make_exchange(self.config)
        ex.set_markets_from_exchange(self._loaded_from)
        return ex

    def _ensure_exchange(self) -> Any:
        loop = asyncio.get_running_loop()
        if self.exchange is None or self._loop is not loop or self.exchange_closed:
            self.exchange = self._fresh_exchange()
            self.exchange_closed = False
            self._loop = loop
        return self.exchange

    # ---- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        if not self.instruments:
            await self.load()
        self._ensure_exchange()
        self.running = True
        self.stopping = False
        self.started_ms = int(time.time() * 1000)
        self._noise = NoiseHandler.install(asyncio.get_running_loop())
        self.status("connecting", "subscribing")
        if self.config.has_keys:
            await self.reconciler.on_start()
        self.streams.start()
        if self.config.has_keys:
            self.spawn(self.reconciler.loop())
            self.spawn(self.perps.loop())

    async def stop(self) -> None:
        if self.running and self.config.has_keys and self.config.cancel_on_shutdown:
            await self.orders.cancel_all_working(SHUTDOWN_CANCEL_S)
        self.stopping = True
        # Never close the exchange under a cancel in flight: its answer is what the trader needs.
        await self.orders.wait_requests(STOP_REQUESTS_S)
        self.running = False
        tasks = list(self.streams.tasks.values()) + list(self.side_tasks)
        for t in tasks:
            t.cancel()
        for t in tasks:
            try:
                await t
            except (asyncio.CancelledError, Exception):
                pass
        self.streams.tasks.clear()
        self.side_tasks.clear()
        if self.exchange is not None and not self.exchange_closed:
            self.exchange_closed = True
            await _close_quietly(self.exchange)
        if self._noise is not None:
            self._noise.uninstall()
            self._noise = None
        if self.attached and self.state != "closed":
            self.status("closed")

    # ---- OrderStateVenue -----------------------------------------------------------------------
    async def open_order_ids(self) -> list[str]:
        """The venue's ids of our orders it holds open on the configured symbols, asked now. Ours: this
        run's client-id prefix, or an order this run adopted. Works while stopping and after stop()
        (a short-lived exchange is opened for the question). Raises VenueError if the venue cannot be
        asked (the caller reports what it could not confirm)."""
        if not self.config.has_keys:
            return []
        return [str(r.get("id")) for r in await self._our_open_orders()]

    async def cancel_open_orders(self) -> int:
        """Ask the venue to cancel each open order of ours on the configured symbols (one request per
        order: a venue-wide cancel-all would also take the trader's other orders). Returns how many
        were asked. Answers update our orders as usual; "unknown order" means it ended meanwhile."""
        if not self.config.has_keys:
            return 0
        reports = await self._our_open_orders()
        if not reports:
            return 0

        async def cancel_one(ex: Any, r: dict[str, Any]) -> None:
            o = self.orders.find(r)
            if o is not None:
                o.cancel_pending = True
            try:
                res = await ex.cancel_order(r.get("id"), r.get("symbol"))
            except Exception as exc:
                kind = classify_error(exc)
                if kind == "order_not_found":
                    if o is not None and o.terminal is None and not self.exchange_closed:
                        self.reconciler.check(o, "a cancel was answered 'unknown order'")
                    return
                log.warning(
                    "%s: cancel of %s: %s", self.name, r.get("clientOrderId"), self.venue_error(exc, "cancel")
                )
                return
            if isinstance(res, dict) and res.get("status"):
                self.orders.on_order_update(res)

        async with self._rest_exchange() as ex:
            await asyncio.gather(*(cancel_one(ex, r) for r in reports))
        return len(reports)

    async def _our_open_orders(self) -> list[dict[str, Any]]:
        prefix = self.orders.prefix
        adopted = {o.venue_id for o in self.orders.orders.values() if o.adopted and o.venue_id}
        out = []
        async with self._rest_exchange() as ex:
            for symbol in self.instruments:
                try:
                    reports = await ex.fetch_open_orders(symbol)
                except Exception as exc:
                    raise self.venue_error(exc, f"open orders of {symbol}") from None
                for r in reports:
                    if not isinstance(r, dict):
                        continue
                    cid = r.get("clientOrderId")
                    if (isinstance(cid, str) and cid.startswith(prefix)) or str(r.get("id")) in adopted:
                        out.append(r)
        return out

    def _rest_exchange(self) -> _RestExchange:
        return _RestExchange(self)

    # ---- Venue: requests -------------------------------------------------------------------------
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
        self.orders.submit(order_id, symbol, side, price, size, order_type, stp)

    def cancel(self, order_id: int, symbol: str) -> None:
        self.orders.cancel(order_id, symbol)

    def amend(self, order_id: int, symbol: str, price: int | None = None, size: int | None = None) -> None:
        self.orders.amend(order_id, symbol, price, size)

    async def cancel_all_working(self, timeout_s: float) -> int:
        return await self.orders.cancel_all_working(timeout_s)

    # ---- Resyncable ---------------------------------------------------------------------------------
    def publish_snapshot(self, symbol: str | None = None) -> None:
        """Publish the current book(s) whole again (the kernel asks after it saw a gap)."""
        self.streams.publish_snapshot(symbol)

    def restart_stream(self, stream: str, why: str) -> None:
        self.streams.restart_stream(stream, why)

    async def refresh_balances(self) -> dict[str, tuple[Decimal, Decimal]]:
        """Free and total balance per currency (exact Decimals), asked now; errors are logged, scrubbed."""
        try:
            await self.reconciler._fetch_balances()
        except Exception as exc:
            log.warning("%s: balances: %s", self.name, self.venue_error(exc, "balances"))
        return self.balances

    # ---- shared helpers (the parts use these) ----------------------------------------------------
    def venue_amount(self, symbol: str, lots: int) -> str:
        """Our size in lots as the amount ccxt is given: contracts on a contract market. Raises
        ContractError (one line) when it is not a whole number of the venue's amount steps."""
        inst = self.instruments[symbol]
        c = self.contracts.get(symbol)
        qty = inst.size(lots)
        return c.venue_amount(qty) if c is not None else f"{qty:f}"

    def lots_of(self, symbol: str, amount: Any, *, allow_zero: bool = False) -> int:
        """The venue's amount (contracts on a contract market) in our lots, exact; raises
        InstrumentError for what is not a number or not on the lot grid."""
        inst = self.instruments[symbol]
        c = self.contracts.get(symbol)
        return inst.lots(c.to_base(amount) if c is not None else amount, allow_zero=allow_zero)

    def venue_error(self, exc: BaseException, what: str) -> VenueError:
        return venue_error(exc, what, self._secrets)

    def scrub(self, text: str) -> str:
        return scrub(text, self._secrets)

    def status(self, state: str, detail: str = "") -> None:
        self.state = state
        if self.attached:
            self.bus.publish(VenueStatus(self.clock.now(), self.name, state, self.scrub(detail)))

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[object]:
        t = asyncio.get_running_loop().create_task(coro)
        self.side_tasks.add(t)
        t.add_done_callback(self.side_done)
        return t

    def side_done(self, t: asyncio.Task[object]) -> None:
        self.side_tasks.discard(t)
        if not t.cancelled() and t.exception() is not None:  # a bug, not a venue error: say so, scrubbed
            exc = t.exception()
            log.error("%s: %s: %s", self.name, type(exc).__name__, self.scrub(str(exc))[:300])

    def __repr__(self) -> str:  # never the config's secrets
        return f"CcxtVenue({self.name!r}, {self.config.exchange_id!r}, state={self.state!r})"


class _RestExchange:
    """The venue's exchange for a REST question, or, once it is closed (after stop()), a short-lived
    one opened for the question and closed after it: a closed ccxt exchange must not be used."""

    def __init__(self, venue: CcxtVenue) -> None:
        self.venue = venue
        self.temporary: Any = None

    async def __aenter__(self) -> Any:
        v = self.venue
        loop = asyncio.get_running_loop()
        if v.exchange is not None and not v.exchange_closed and v._loop is loop:
            return v.exchange
        self.temporary = v._fresh_exchange()
        return self.temporary

    async def __aexit__(self, *exc: object) -> None:
        if self.temporary is not None:
            await _close_quietly(self.temporary)


async def _close_quietly(ex: Any) -> None:
    try:
        await ex.close()
    except Exception:
        pass

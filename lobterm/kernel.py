"""The running system: bus, clock, books, OMS, risk, inventory, strategies, and the trading verbs.

The kernel is built by `lobterm.assemble` (the one composition root) and is the same in every mode:
the TUI, headless runs, replay, verify and the reference backtest. Venues publish engine events on the
bus; the bus delivers them synchronously and in order to the L2 books, the unified books, the OMS, the
inventory, the market statistics and the strategies.

Trading verbs (flatten, cancel side / all / at price, move, pause / resume strategies, kill switch and
re-arm, orderly shutdown) are kernel methods: a key, a mouse click, a signal and a headless run call the
same ones, and each records a note in the session file. Timed work (hedge slices, market-maker
heartbeats, services such as the recorder's flush) runs on the kernel's own timer task on a live clock;
on a virtual clock the driver that advances time calls `on_timer()`.

The kernel never imports its observers (recorder, metrics, feed): they attach themselves as services
(`KernelService`) and as the note journal (`Journal`) from `lobterm.services`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from lobterm.bus import Bus
from lobterm.clock import Clock, LiveClock
from lobterm.engine.bounds import TAPE, add_volume
from lobterm.engine.events import (
    BUY,
    IOC,
    LIMIT,
    OUR_OWNER,
    PERP_EVENTS,
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
    Funding,
    Liquidation,
    PositionMismatch,
    Rejected,
    Trade,
    VenueStatus,
)
from lobterm.engine.instrument import Instrument
from lobterm.engine.l2book import L2Book
from lobterm.engine.unified import UnifiedBook
from lobterm.trading.inventory import Inventory, TopOfBook
from lobterm.trading.margin import MarginBook
from lobterm.trading.oms import OrderManager, WorkingOrder
from lobterm.trading.risk import RiskLimits, RiskManager
from lobterm.trading.strategy import FAILED, PAUSED, RUNNING, STOPPED, Strategy, StrategyContext
from lobterm.venues.base import OrderStateVenue, QueueEstimator, Resyncable, StaleReporting, Venue

log = logging.getLogger(__name__)

ORDER_EVENTS = (Accepted, Fill, Cancelled, Amended, Rejected, Done)
MARKET_DATA = (BookSnapshot, BookDelta, Trade)
FEED_NOTE_EVERY_NS = 5_000_000_000  # the venues' feed latency samples are noted this often (recording)
TIMER_INTERVAL_S = 0.05  # the kernel's own timer on a live clock: hedge slices, heartbeats, flushes
SHUTDOWN_TIMEOUT_S = 10.0


class KernelService(Protocol):
    """An observer the kernel runs beside itself (metrics exporter, WebSocket feed): started after the
    venues, given the timer, stopped before the journal closes. The kernel knows nothing else of it."""

    async def start(self) -> None: ...

    def on_timer(self) -> None: ...

    async def stop(self) -> None: ...


class Journal(KernelService, Protocol):
    """Where notes go (the session recorder): facts that are not bus events, in order with the events
    they caused. Started before the venues (it must see their first events) and stopped last."""

    def note(self, source: str, action: str, detail: object = "") -> None: ...


@dataclass(slots=True)
class FlattenResult:
    """What `Kernel.flatten` did: orders cancelled, strategies paused, and the closing IOC (or why none)."""

    cancelled: int
    paused: list[str]
    side: int | None = None
    size: int = 0
    limit_price: int | None = None
    order_id: int | None = None
    problem: str = ""  # why no closing order was sent although the position is not flat


@dataclass(slots=True)
class ShutdownReport:
    """What an orderly shutdown left behind: our orders still open (by the OMS's id and, where the venue
    can tell, by the venue's id) after `seconds`. `clean` when nothing is left."""

    seconds: float
    left_local: list[WorkingOrder] = field(default_factory=list)
    left_at_venue: dict[str, list[str]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.left_local and not any(self.left_at_venue.values())

    def lines(self) -> list[str]:
        """One line per order still open, for stderr or a notice."""
        out = [
            f"order {o.order_id} ({o.venue} {o.symbol}, venue id {o.venue_order_id or '?'}) still {o.state}"
            for o in self.left_local
        ]
        for venue, ids in self.left_at_venue.items():
            out.extend(f"order {i} still open at {venue}" for i in ids)
        return out + self.problems


@dataclass(slots=True)
class Market:
    """What the kernel knows about one venue+symbol: its books and its recent trades."""

    venue: str
    symbol: str
    instrument: Instrument
    l2: L2Book
    unified: UnifiedBook
    last_trade: Trade | None = None
    trades: int = 0
    traded_lots: int = 0
    volume_at_price: dict[int, int] = field(default_factory=dict)
    tape: deque = field(default_factory=lambda: deque(maxlen=TAPE))
    trade_version: int = 0
    #: Set by a venue whose feed stopped (risk blocks quoting on a stale book, the UI marks it).
    stale: bool = False
    #: Venue timestamp (ns) of the last book or trade event: the UI shows now - this as feed latency.
    last_event_ts: int = 0

    def top(self) -> TopOfBook:
        return TopOfBook(
            self.l2.best_bid_price(),
            self.l2.best_ask_price(),
            self.last_trade.price if self.last_trade else None,
        )

    @property
    def key(self) -> tuple[str, str]:
        return (self.venue, self.symbol)


class Kernel:
    def __init__(
        self,
        venues: list[Venue],
        clock: Clock | None = None,
        *,
        risk_limits: RiskLimits | None = None,
        mark_mode: str = "mid",
        timer_interval_s: float = TIMER_INTERVAL_S,
    ) -> None:
        if not venues:
            raise ValueError("a kernel needs at least one venue")
        self.clock: Clock = clock or LiveClock()
        self.bus = Bus()
        self.venues: dict[str, Venue] = {}
        self.markets: dict[tuple[str, str], Market] = {}
        self.venue_state: dict[str, str] = {}
        self.venue_detail: dict[str, str] = {}
        for v in venues:
            if v.name in self.venues:
                raise ValueError(f"two venues are named {v.name!r}")
            self.venues[v.name] = v
            self.venue_state[v.name] = v.state
            for symbol, inst in v.instruments.items():
                l2 = L2Book(v.name, symbol)
                self.markets[(v.name, symbol)] = Market(
                    v.name, symbol, inst, l2, UnifiedBook(l2, OUR_OWNER, own_in_venue_book=v.own_in_book)
                )
        self.inventory = Inventory({k: m.instrument for k, m in self.markets.items()}, mark_mode=mark_mode)
        #: Perpetual markets: terms, mark, funding, liquidations and our margin status (spot: none).
        self.margin = MarginBook(self.inventory)
        self.risk = RiskManager(
            self.markets,
            self.clock,
            risk_limits or RiskLimits(),
            position=lambda v, s: self.inventory.position(v, s).lots,
            pnl=self.net_pnl,
            margin=self.margin,
        )
        self.oms = OrderManager(self.venues, self.bus, self.clock, self.risk)
        self.gaps = 0
        #: (venue, asset) -> (ours, the venue's), exact decimal strings: what a keyed venue's reconciler found
        #: different and has not yet found equal again (the status bar shows it in red).
        self.position_mismatches: dict[tuple[str, str], tuple[str, str]] = {}
        self._started = False
        self.timer_interval_s = timer_interval_s
        self._timer_task: asyncio.Task[None] | None = None
        self.timer_errors = 0
        #: Every strategy by name: the market makers, the hedger and the user's (`add_strategy`).
        self.strategies: dict[str, Strategy] = {}
        self.market_makers: list[Any] = []  # lobterm.trading.market_maker.MarketMaker
        self.hedger: Any = None  # lobterm.trading.hedger.Hedger
        self._guarded: dict[str, Strategy] = {}  # user strategies: the kernel delivers their events
        self.strategy_errors: dict[str, int] = {}
        self.strategy_problems: dict[str, str] = {}
        #: Services (metrics, feed) and the journal (the recorder): attached by lobterm.services.
        self.services: list[KernelService] = []
        self.journal: Journal | None = None
        self._times_noted_ns = 0
        self._feed_noted_ns = 0
        self.recorder: Any = None  # the Recorder behind the journal, for its path and counters
        self.metrics: Any = None
        self.feed: Any = None
        #: The markout observer (lobterm.trading.markouts.MarkoutFeed), attached by the assembly.
        self.markouts: Any = None
        self.risk.add_on_kill(self._on_kill)

        bus = self.bus
        # The OMS first: every later subscriber sees the order state the event produced.
        bus.subscribe(ORDER_EVENTS, self.oms.on_event)
        self.risk.subscribe(bus)
        bus.subscribe(BookSnapshot, self._on_snapshot)
        bus.subscribe(BookDelta, self._on_delta)
        bus.subscribe(Trade, self._on_trade)
        bus.subscribe(VenueStatus, self._on_status)
        bus.subscribe(BookGap, self._on_gap)
        bus.subscribe(PositionMismatch, self._on_position_mismatch)
        bus.subscribe(ORDER_EVENTS, self._on_order_event)
        bus.subscribe(Fill, self.inventory.on_fill)
        bus.subscribe(Funding, self.inventory.on_funding)
        bus.subscribe(Liquidation, self.inventory.on_liquidation)
        bus.subscribe(PERP_EVENTS, self.margin.on_event)
        bus.subscribe(Liquidation, self._on_liquidation)
        for v in venues:
            v.attach(bus, self.clock)
            if isinstance(v, StaleReporting):  # live venues mark a market stale while resyncing
                v.bind_market_state(self.set_market_stale)

    # ---- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        """Start the journal (it must see the venues' first events), the venues, the services, and the
        kernel's own timer (live clock)."""
        if self.journal is not None:
            await self.journal.start()
        for v in self.venues.values():
            await v.start()
        for svc in self.services:
            await svc.start()
        self._started = True
        if not self.clock.virtual and self._timer_task is None:
            self._timer_task = asyncio.get_running_loop().create_task(self._run_timer(), name="kernel-timer")

    async def stop(self) -> None:
        """Stop the timer, the venues, the services and, last, the journal. Cancels nothing: an orderly
        end is `shutdown()`, which calls this when the venue holds none of our orders."""
        task, self._timer_task = self._timer_task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        for v in self.venues.values():
            await v.stop()
        self._started = False
        for svc in reversed(self.services):
            await svc.stop()
        if self.journal is not None:
            self.note_request_times()
            self.note_feed_latency()
            await self.journal.stop()

    async def _run_timer(self) -> None:
        interval = self.timer_interval_s
        while True:
            await asyncio.sleep(interval)
            try:
                self.on_timer()
            except Exception:  # the timer must outlive one failing tick
                self.timer_errors += 1
                log.exception("kernel timer")

    def on_timer(self) -> None:
        """Time-driven work between market events: strategies (hedge slices, market maker staleness and
        order age), then services (metrics gauges, the recorder's flush on a virtual clock)."""
        now = self.clock.now()
        for name, strategy in self.strategies.items():
            if name in self._guarded:
                self._guard(strategy, strategy.on_timer, now)
            else:
                strategy.on_timer(now)
        for svc in self.services:
            svc.on_timer()
        if self.journal is not None:
            times = self.oms.request_times
            if times and (len(times) >= 512 or now - self._times_noted_ns >= 1_000_000_000):
                self.note_request_times()
            if now - self._feed_noted_ns >= FEED_NOTE_EVERY_NS:
                self.note_feed_latency()
            self.journal.on_timer()

    def note_request_times(self) -> None:
        """Note the OMS's request -> answer times measured since the last note (the session's own
        latency, for `lobterm backtest --latency recorded`): Note("oms", "request_times",
        {kind: [[sent ns, answer ns], ...]})."""
        self._times_noted_ns = self.clock.now()
        times = self.oms.take_request_times()
        if times:
            self.note("oms", "request_times", times)

    def note_feed_latency(self) -> None:
        """Note the venues' feed latency samples kept since the last note (venue time vs local receive
        time, for `lobterm backtest --latency feed=recorded`): Note("feed", "latency", {venue: {symbol:
        [[venue ns, local ns], ...]}}); nothing when no venue has any."""
        self._feed_noted_ns = self.clock.now()
        out = {}
        for name, v in self.venues.items():
            take = getattr(v, "take_feed_latency", None)  # optional (lobterm/venues/base.py)
            if take is not None:
                got = take()
                if got:
                    out[name] = got
        if out:
            self.note("feed", "latency", out)

    def note(self, source: str, action: str, detail: object = "") -> None:
        """Record a fact that is not a bus event (a key action that changed state, a parameter change, a
        risk decision) in the session file, in order with the events around it; nothing when not recording."""
        if self.journal is not None:
            self.journal.note(source, action, detail)

    def set_market_stale(self, venue: str, symbol: str, stale: bool) -> None:
        """A venue lost (stale=True) or regained a market's feed: risk blocks quoting on it meanwhile."""
        m = self.markets.get((venue, symbol))
        if m is not None:
            m.stale = stale
            m.l2.version += 1  # the UI redraws the book's state
        self.risk.set_stale(venue, symbol, stale)

    # ---- lookups -------------------------------------------------------------------------------
    @property
    def default_market(self) -> Market:
        return next(iter(self.markets.values()))

    def market(self, venue: str, symbol: str) -> Market:
        return self.markets[(venue, symbol)]

    def queue_ahead(self, market: Market, order_id: int) -> int | None:
        """Lots ahead of our resting order at its price, as its venue knows or estimates it (the sim: its
        matching book; paper: the desk's queue model); None when the venue cannot tell or it is not resting."""
        venue = self.venues[market.venue]
        return venue.queue_ahead(order_id) if isinstance(venue, QueueEstimator) else None

    # ---- trading verbs: orders -----------------------------------------------------------------
    def buy(self, market: Market, price: int, size: int, order_type: int = LIMIT, tag: str = "manual") -> int:
        return self.oms.new_order(
            market.venue, market.symbol, BUY, price, size, order_type, STP_CANCEL_RESTING, tag=tag
        )

    def sell(
        self, market: Market, price: int, size: int, order_type: int = LIMIT, tag: str = "manual"
    ) -> int:
        return self.oms.new_order(
            market.venue, market.symbol, SELL, price, size, order_type, STP_CANCEL_RESTING, tag=tag
        )

    def place(
        self,
        market: Market,
        side: int,
        price: int,
        size: int,
        order_type: int = LIMIT,
        *,
        source: str = "key",
        action: str = "",
        tag: str = "manual",
    ) -> int:
        """A manual order (a key, a click, the ticket), noted before its events; returns the order id."""
        inst = market.instrument
        self._note_market(
            source,
            action or ("buy" if side == BUY else "sell"),
            market,
            price=inst.format_price(price),
            qty=inst.format_size(size),
        )
        return (
            self.buy(market, price, size, order_type, tag)
            if side == BUY
            else self.sell(market, price, size, order_type, tag)
        )

    def orders_between(
        self, market: Market, low: int, high: int, side: int | None = None
    ) -> list[WorkingOrder]:
        """Our live orders on `market` priced in [low, high] (one side or both)."""
        return [o for o in self.oms.orders(market.venue, market.symbol, side) if low <= o.price <= high]

    def cancel_at(
        self,
        market: Market,
        price: int,
        side: int | None = None,
        *,
        high: int | None = None,
        source: str = "",
    ) -> int:
        """Cancel our orders resting at `price` (or in [price, high]) on one side or both; how many were
        asked. With `source`, noted as `cancel_at_cursor`."""
        orders = self.orders_between(market, price, price if high is None else high, side)
        if source and orders:
            self._note_market(
                source,
                "cancel_at_cursor",
                market,
                price=market.instrument.format_price(price),
                orders=len(orders),
            )
        return self.oms.cancel_many(orders)

    def cancel_side(self, market: Market, side: int, *, source: str = "") -> int:
        """Cancel all our bids (BUY) or asks (SELL) on `market`; how many were asked."""
        orders = self.oms.orders(market.venue, market.symbol, side)
        if source and orders:
            self._note_market(
                source, f"cancel_{'bid' if side == BUY else 'ask'}s", market, orders=len(orders)
            )
        return self.oms.cancel_many(orders)

    def cancel_all(self, market: Market | None = None, *, source: str = "") -> int:
        """Cancel every order of ours (on `market`, or everywhere); how many were asked."""
        if market is None:
            if source and self.oms.working:
                self.note(source, "cancel_all", {"working": len(self.oms.working)})
            return self.oms.cancel_all()
        if source and any(True for _ in self.oms.market_orders(market.venue, market.symbol)):
            self._note_market(source, "cancel_all", market)
        return self.oms.cancel_all(market.venue, market.symbol)

    def move_orders(
        self, market: Market, low: int, high: int, ticks: int, *, source: str = "key"
    ) -> list[WorkingOrder]:
        """Move our live orders priced in [low, high] by `ticks` (an amend: the venue may reset their
        priority). Returns the orders whose amend was sent (their `amend_price` is the target)."""
        orders = [o for o in self.orders_between(market, low, high) if o.is_live]
        if not orders:
            return []
        self._note_market(
            source,
            "move_order",
            market,
            ticks=ticks,
            price=market.instrument.format_price(orders[0].price),
            orders=len(orders),
        )
        return [
            o for o in orders if o.price + ticks > 0 and self.oms.amend(o.order_id, price=o.price + ticks)
        ]

    def flatten(self, market: Market, *, source: str = "key") -> FlattenResult:
        """Cancel our orders on `market`, pause the strategies quoting it, and close the position with a
        marketable IOC priced through as many levels of the book as its size needs. Risk may refuse the
        IOC: the refusal arrives as a Rejected event like any other."""
        self._note_market(source, "flatten", market)
        paused = self.pause_strategies(market, source="")
        cancelled = self.oms.cancel_all(market.venue, market.symbol)
        result = FlattenResult(cancelled, paused)
        lots = self.inventory.position(market.venue, market.symbol).lots
        if lots == 0:
            return result
        side = SELL if lots > 0 else BUY
        size = abs(lots)
        levels = market.l2.depth(BUY if side == SELL else SELL, 1_000)
        result.side, result.size = side, size
        if not levels:
            result.problem = f"the book has no {'bids' if side == SELL else 'offers'} to close against"
            return result
        need, price = size, levels[0][0]
        for price, level_size in levels:  # noqa: B007 - the last price taken is the limit
            need -= level_size
            if need <= 0:
                break
        result.limit_price = price
        result.order_id = self.oms.new_order(
            market.venue, market.symbol, side, price, size, IOC, STP_CANCEL_RESTING, tag="flatten"
        )
        return result

    # ---- trading verbs: strategies -------------------------------------------------------------
    def strategies_on(self, market: Market | None) -> list[Strategy]:
        """The strategies that trade `market` (all of them for None)."""
        if market is None:
            return list(self.strategies.values())
        return [s for s in self.strategies.values() if market.key in s.markets]

    def pause_strategies(self, market: Market | None = None, *, source: str = "key") -> list[str]:
        """Pause every running strategy (on `market`, or all); their quotes are cancelled. Returns the
        names paused."""
        paused = []
        for s in self.strategies_on(market):
            if s.state == RUNNING:
                if source:
                    self.note(source, "strategy_pause", {"strategy": s.name})
                s.pause()
                paused.append(s.name)
        return paused

    def pause_strategy(self, name: str, *, source: str = "key", action: str = "strategy_pause") -> bool:
        """Pause one strategy (its quotes are cancelled); False when it was not running."""
        s = self.strategies[name]
        if s.state != RUNNING:
            return False
        self.note(source, action, self._strategy_detail(s))
        s.pause()
        return True

    def resume_strategy(self, name: str, *, source: str = "key", action: str = "strategy_resume") -> str:
        """Start (or restart) a strategy; returns "" or why it cannot (the kill switch is on, or the
        strategy refused)."""
        s = self.strategies[name]
        if self.risk.killed or s.state == STOPPED:
            reason = getattr(s, "reason", "") or "kill switch"
            return f"{name} is stopped ({reason}): re-arm the kill switch first"
        self.note(source, action, self._strategy_detail(s))
        if name in self._guarded:
            self.strategy_problems.pop(name, None)
            if s.state == FAILED:
                s.state = PAUSED
        try:
            s.resume()
        except Exception as exc:  # a strategy that refuses to start says why (MarketMakerError, ...)
            return str(exc)
        return ""

    @staticmethod
    def _strategy_detail(s: Strategy) -> dict[str, object]:
        detail: dict[str, object] = {"strategy": s.name}
        if len(s.markets) == 1:
            detail["market"] = "{}:{}".format(*s.markets[0])
        return detail

    def kill(self, reason: str = "operator", *, source: str = "key") -> int:
        """The kill switch: block every new order, stop every strategy, cancel everything. Returns how
        many cancels were sent."""
        self.note(source, "kill_switch", {"working": len(self.oms.working), "reason": reason})
        return self.risk.kill(reason)

    def rearm(self, *, source: str = "key") -> None:
        """After the kill switch: orders are allowed again; strategies stay paused until resumed (the
        hedger resumes: an unhedged position is the larger risk)."""
        self.note(source, "rearm", {"was": self.risk.kill_reason})
        self.risk.reset_kill()
        for s in self.strategies.values():
            if s is self.hedger:
                if s.state == STOPPED:
                    s.resume()
            elif s.state == STOPPED:
                rearm = getattr(s, "rearm", None)
                if rearm is not None:
                    rearm()
                else:
                    s.pause()

    def _on_kill(self, reason: str) -> None:
        self.note("risk", "kill_switch_on", reason)
        for s in self.strategies.values():
            if s.state != STOPPED:
                s.stop(f"kill switch: {reason}")

    # ---- orderly shutdown --------------------------------------------------------------------
    async def shutdown(
        self, timeout_s: float = SHUTDOWN_TIMEOUT_S, *, source: str = "shutdown", stop: bool = True
    ) -> ShutdownReport:
        """End trading so that nothing of ours is left at a venue: pause every strategy, cancel every
        order, then re-sweep until the OMS has no live order and every venue that can tell reports none
        of ours open (or `timeout_s` passes); then stop the kernel (with `stop`). The report names what
        is left."""
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        deadline = t0 + timeout_s
        self.note(source, "shutdown", {"working": len(self.oms.working)})
        for s in self.strategies.values():
            if s.state == RUNNING:
                s.pause()
        self.oms.cancel_all()
        problems: list[str] = []
        remote: dict[str, list[str]] = {}
        truth = [v for v in self.venues.values() if isinstance(v, OrderStateVenue)]
        while True:
            await asyncio.sleep(0.05)
            if not self.oms.working:
                remote = {}
                for v in truth:
                    try:
                        ids = await asyncio.wait_for(v.open_order_ids(), max(0.1, deadline - loop.time()))
                    except Exception as exc:  # the venue cannot answer: say so, keep sweeping
                        problems = [f"{v.name}: cannot list open orders: {type(exc).__name__}: {exc}"]
                        ids = ["?"]
                    if ids:
                        remote[v.name] = ids
                if not remote:
                    problems = []
                    break
                for name in remote:
                    venue = self.venues[name]
                    if isinstance(venue, OrderStateVenue):
                        try:
                            await asyncio.wait_for(
                                venue.cancel_open_orders(), max(0.1, deadline - loop.time())
                            )
                        except Exception as exc:
                            problems = [f"{name}: cancel of open orders failed: {type(exc).__name__}: {exc}"]
            else:
                self.oms.cancel_all()  # orders acknowledged late, or a cancel the venue refused
            if loop.time() >= deadline:
                break
            await asyncio.sleep(0.2 if remote else 0.0)
        report = ShutdownReport(
            round(loop.time() - t0, 3),
            left_local=list(self.oms.working.values()),
            left_at_venue={k: [i for i in v if i != "?"] for k, v in remote.items()},
            problems=problems,
        )
        self.note(source, "shutdown_done", {"clean": report.clean, "left": report.lines()})
        if stop:
            await self.stop()
        return report

    # ---- strategies ----------------------------------------------------------------------------
    def strategy_context(
        self, tag: str, markets: tuple[tuple[str, str], ...] | None = None
    ) -> StrategyContext:
        """What a strategy tagged `tag` sees: books, instruments, positions, the clock, order verbs."""
        return StrategyContext(
            tag,
            markets if markets is not None else (self.default_market.key,),
            self.clock,
            self.oms,
            {k: m.l2 for k, m in self.markets.items()},
            {k: m.instrument for k, m in self.markets.items()},
            self,
            report=lambda msg: self._strategy_problem(tag, msg),
            unified={k: m.unified for k, m in self.markets.items()},
        )

    def position_lots(self, venue: str, symbol: str) -> int:
        return self.inventory.position(venue, symbol).lots

    def add_strategy(self, strategy: Strategy) -> Strategy:
        """Run a user strategy: the kernel delivers its market data, the events of its orders (by tag =
        its name) and the timer, each call guarded: a handler that raises is counted and shown, the
        strategy is paused (state FAILED) and its orders cancelled; the kernel goes on."""
        name = strategy.name
        if name in self.strategies:
            raise ValueError(f"two strategies are named {name!r}")
        self.strategies[name] = strategy
        self._guarded[name] = strategy
        self.strategy_errors[name] = 0
        if len(self._guarded) == 1:
            self.bus.subscribe(MARKET_DATA, self._deliver_market_data)
            self.bus.subscribe(ORDER_EVENTS, self._deliver_order_event)
        return strategy

    def _deliver_market_data(self, ev: BookSnapshot | BookDelta | Trade) -> None:
        key = (ev.venue, ev.symbol)
        for s in self._guarded.values():
            if key in s.markets and s.state != FAILED:
                self._guard(s, s.on_market_data, ev)

    def _deliver_order_event(self, ev: Any) -> None:
        o = self.oms.order(ev.order_id) if ev.owner == OUR_OWNER else None
        if o is None:
            return
        s = self._guarded.get(o.tag)
        if s is not None and s.state != FAILED:
            self._guard(s, s.on_order_event, ev)

    def _guard(self, strategy: Strategy, handler: Callable[[Any], None], arg: Any) -> None:
        try:
            handler(arg)
        except Exception as exc:  # one strategy's bug must not stop the kernel or the others
            name = strategy.name
            self.strategy_errors[name] = self.strategy_errors.get(name, 0) + 1
            where = getattr(handler, "__name__", "handler")
            self._strategy_problem(name, f"{where} raised {type(exc).__name__}: {exc}")
            log.exception("strategy %s failed in %s", name, where)
            try:
                strategy.pause()
            except Exception:
                log.exception("strategy %s failed to pause", name)
            strategy.state = FAILED
            self.oms.cancel_many([o for o in self.oms.orders() if o.tag == name])

    def _strategy_problem(self, name: str, problem: str) -> None:
        self.strategy_problems[name] = problem
        self.note("strategy", "problem", {"strategy": name, "problem": problem})

    def add_market_maker(self, params: Any = None, market: Market | None = None) -> Any:
        """A market maker on `market` (default: the first), paused until `resume()`."""
        from lobterm.trading.market_maker import MarketMaker

        m = market or self.default_market
        mm = MarketMaker(self.bus, self.oms, m, self.inventory, self.clock, params, risk=self.risk)
        # Its market first, then the other venues of the instrument: their books, for a consolidated fair value.
        same = tuple(k for k in self.markets if k[1] == m.symbol and k != m.key)
        mm.attach_context(self.strategy_context(mm.tag, markets=(m.key, *same)))
        mm.on_change = self._note_params
        if self.hedger is not None:
            mm.side_block = self.hedger.blocks_quoting
        self.market_makers.append(mm)
        self.strategies[mm.name] = mm
        return mm

    def _note_params(self, mm: Any, changes: dict[str, Any]) -> None:
        self.note("mm", "params", {"market": f"{mm.venue}:{mm.symbol}", **changes})

    def add_hedger(self, params: Any = None, quote: Market | None = None, hedge: Market | None = None) -> Any:
        """A hedger of the position on `quote` (default: the first market), hedging on `hedge` (default:
        the same market). Market makers built before or after it stop quoting the side whose hedge is
        overdue; the kill switch stops it."""
        from lobterm.trading.hedger import Hedger

        q = quote or self.default_market
        self.hedger = Hedger(
            self.bus,
            self.oms,
            self.markets,
            quote=q.key,
            hedge=None if hedge is None else hedge.key,
            params=params,
            clock=self.clock,
            positions=self.inventory,
        )
        self.strategies[self.hedger.name] = self.hedger
        for mm in self.market_makers:
            mm.side_block = self.hedger.blocks_quoting
        return self.hedger

    def _note_market(self, source: str, action: str, market: Market, **detail: object) -> None:
        self.note(source, action, {"market": f"{market.venue}:{market.symbol}", **detail})

    # ---- event handlers ------------------------------------------------------------------------
    def _on_position_mismatch(self, ev: PositionMismatch) -> None:
        key = (ev.venue, ev.asset)
        if ev.ours == ev.venue_has:
            self.position_mismatches.pop(key, None)
        else:
            self.position_mismatches[key] = (ev.ours, ev.venue_has)

    def _on_liquidation(self, ev: Liquidation) -> None:
        m = self.markets.get((ev.venue, ev.symbol))
        if m is None:
            return
        inst = m.instrument
        log.warning(
            "%s %s: the venue liquidated %s at %s (mark %s)",
            ev.venue,
            ev.symbol,
            inst.format_size(ev.size),
            inst.format_price(ev.price),
            inst.format_price(ev.mark),
        )
        self._note_market(
            "venue",
            "liquidation",
            m,
            side="buy" if ev.side == BUY else "sell",
            size=str(inst.size(ev.size)),
            price=str(inst.price(ev.price)),
            mark=str(inst.price(ev.mark)),
        )

    def _on_snapshot(self, ev: BookSnapshot) -> None:
        m = self.markets.get((ev.venue, ev.symbol))
        if m is not None:
            m.l2.apply_snapshot(ev)
            m.last_event_ts = ev.ts

    def _on_delta(self, ev: BookDelta) -> None:
        m = self.markets.get((ev.venue, ev.symbol))
        if m is None:
            return
        m.last_event_ts = ev.ts
        gap = m.l2.apply_delta(ev)
        if gap is not None:
            self.bus.publish(gap)  # counted by _on_gap, as the gaps a venue detects itself
            venue = self.venues[ev.venue]
            if isinstance(venue, Resyncable):
                venue.publish_snapshot()

    def _on_gap(self, ev: BookGap) -> None:
        """Every gap on the bus: the L2 book's (above) and those a venue detects itself (ccxt's)."""
        self.gaps += 1

    def _on_trade(self, ev: Trade) -> None:
        m = self.markets.get((ev.venue, ev.symbol))
        if m is None:
            return
        m.last_trade = ev
        m.last_event_ts = ev.ts
        m.trades += 1
        m.traded_lots += ev.size
        add_volume(m.volume_at_price, ev.price, ev.size)
        m.tape.append(ev)
        m.trade_version += 1

    def _on_status(self, ev: VenueStatus) -> None:
        self.venue_state[ev.venue] = ev.state
        self.venue_detail[ev.venue] = ev.detail

    def _on_order_event(self, ev: Any) -> None:
        m = self.markets.get((ev.venue, ev.symbol))
        if m is not None:
            m.unified.on_event(ev)

    # ---- P&L ---------------------------------------------------------------------------------------
    def marks(self) -> dict[tuple[str, str], TopOfBook]:
        return {k: m.top() for k, m in self.markets.items()}

    def net_pnl(self) -> Decimal:
        """Net P&L (realized + unrealized - fees) of every position, in quote currency (Decimal, exact)."""
        snap = self.inventory.snapshot(self.clock.now(), self.marks(), record=False)
        return sum(snap.net_by_quote.values(), Decimal(0))

    # ---- summaries -----------------------------------------------------------------------------
    def state_hash(self) -> str:
        """SHA-256 over every book's levels, our resting orders and positions: same input, same hash.

        Computed from what the bus delivered only (our resting orders as the unified books know them from
        the order events, not the OMS's requests), so that replaying a recorded event stream through a
        fresh kernel gives the same hash: `lobterm verify` depends on it."""
        h = hashlib.sha256()
        for key in sorted(self.markets):
            m = self.markets[key]
            h.update(
                repr(
                    (
                        key,
                        m.l2.seq,
                        sorted(m.l2.bids.items()),
                        sorted(m.l2.asks.items()),
                        m.trades,
                        m.traded_lots,
                    )
                ).encode()
            )
            h.update(repr(m.unified.own_orders()).encode())
        for key in sorted(self.inventory.positions):
            p = self.inventory.positions[key]
            if p.fills:  # positions are created on lookup: an untouched one is no state
                h.update(repr((key, p.lots, p.cash, p.fees, p.realized, p.holdings)).encode())
        return h.hexdigest()


__all__ = ["Kernel", "Market", "BookGap"]

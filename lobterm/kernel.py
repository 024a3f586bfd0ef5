"""The composition root: builds the bus, the clock, the venues, the books, the OMS and the inventory.

The kernel is usable without the TUI (headless runs, tests); the TUI only reads its state on a clock
and calls its request methods. Wiring, per DESIGN.md: venues publish engine events on the bus; the bus
delivers them synchronously and in order to the L2 books, the unified books, the OMS, the inventory
and the market statistics.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from lobterm.bus import Bus
from lobterm.clock import Clock, LiveClock
from lobterm.engine.events import (
    LIMIT,
    OUR_OWNER,
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
from lobterm.engine.instrument import Instrument
from lobterm.engine.l2book import L2Book
from lobterm.engine.unified import UnifiedBook
from lobterm.trading.inventory import Inventory, TopOfBook
from lobterm.trading.oms import OrderManager
from lobterm.trading.risk import RiskLimits, RiskManager
from lobterm.venues.base import Venue

ORDER_EVENTS = (Accepted, Fill, Cancelled, Amended, Rejected, Done)


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
    tape: deque = field(default_factory=lambda: deque(maxlen=200))
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
        self.risk = RiskManager(
            self.markets,
            self.clock,
            risk_limits or RiskLimits(),
            position=lambda v, s: self.inventory.position(v, s).lots,
            pnl=self.net_pnl,
        )
        self.oms = OrderManager(self.venues, self.bus, self.clock, self.risk)
        self.gaps = 0
        self._started = False
        self.market_makers: list = []
        self.hedger = None
        self.metrics = None  # lobterm.metrics.Metrics, after start_metrics()
        self.feed = None  # lobterm.feed.BookFeed, after start_feed()
        self.recorder = None  # lobterm.recording.recorder.Recorder, after start_recording()
        self.risk.add_on_kill(lambda reason: self.note("risk", "kill_switch_on", reason))

        bus = self.bus
        # The OMS first: every later subscriber sees the order state the event produced.
        bus.subscribe(ORDER_EVENTS, self.oms.on_event)
        self.risk.subscribe(bus)
        bus.subscribe(BookSnapshot, self._on_snapshot)
        bus.subscribe(BookDelta, self._on_delta)
        bus.subscribe(Trade, self._on_trade)
        bus.subscribe(VenueStatus, self._on_status)
        bus.subscribe(ORDER_EVENTS, self._on_order_event)
        bus.subscribe(Fill, self.inventory.on_fill)
        for v in venues:
            v.attach(bus, self.clock)
            bind = getattr(v, "bind_market_state", None)  # live venues mark a market stale while resyncing
            if bind is not None:
                bind(self.set_market_stale)

    # ---- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        rec = self.recorder
        if rec is not None and rec.sync and not rec.closed and not self.clock.virtual:
            await rec.start()  # a live clock: flush from a task on the loop (aiosqlite)
        for v in self.venues.values():
            await v.start()
        self._started = True

    async def stop(self) -> None:
        for v in self.venues.values():
            await v.stop()
        self._started = False
        if self.feed is not None:
            await self.feed.stop()
        if self.metrics is not None:
            self.metrics.stop()
        await self.stop_recording()

    def start_recording(
        self,
        target,
        *,
        config=None,
        seed=None,
        header: dict | None = None,
        checkpoint_every_s: float = 10.0,
        flush_interval_s: float = 0.1,
        flush_events: int = 50_000,
    ):
        """Record every bus event from now on to a session file (`target`: a file, or a directory to name
        one in). Call before `start()`. On a virtual clock the recorder writes synchronously from
        `on_timer`; on a live clock `start()` moves it to a flush task (aiosqlite). Returns the Recorder
        (`.path`, `.events_written`, `.backlog`); RecorderError if the file cannot be created."""
        from lobterm.recording.recorder import Recorder

        if self.recorder is not None and not self.recorder.closed:
            return self.recorder
        rec = Recorder.for_kernel(
            self,
            target,
            config=config,
            seed=seed,
            header=header,
            checkpoint_every_s=checkpoint_every_s,
            flush_interval_s=flush_interval_s,
            flush_events=flush_events,
        )
        rec.open()
        self.bus.subscribe_all(rec.on_event)
        self.recorder = rec
        return rec

    async def stop_recording(self) -> None:
        """Close the session file cleanly (last batch, last checkpoint, `end` table). Idempotent."""
        rec = self.recorder
        if rec is None or rec.closed:
            return
        self.bus.unsubscribe(rec.on_event)
        await rec.aclose()

    def note(self, source: str, action: str, detail: object = "") -> None:
        """Record a fact that is not a bus event (a key action that changed state, a parameter change, a
        risk decision) in the session file, in order with the events around it; nothing when not recording."""
        rec = self.recorder
        if rec is not None and not rec.closed:
            rec.note(source, action, detail)

    def start_metrics(self, config=None):
        """Prometheus metrics of this kernel (lobterm/metrics.py), with the exporter if `config.enabled`
        (a MetricsError if it cannot listen; the metrics count on without it). Returns the Metrics."""
        from lobterm.metrics import Metrics

        if self.metrics is None:
            self.metrics = Metrics(self, config)
        self.metrics.start()
        return self.metrics

    async def start_feed(self, config=None):
        """The read-only WebSocket feed of this kernel's books (lobterm/feed.py); OSError if it cannot
        listen. Returns the BookFeed."""
        from lobterm.feed import BookFeed

        if self.feed is None:
            self.feed = BookFeed(self, config)
        await self.feed.start()
        return self.feed

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

    # ---- requests (the TUI and strategies call these) -----------------------------------------
    def buy(self, market: Market, price: int, size: int, order_type: int = LIMIT, tag: str = "manual") -> int:
        return self.oms.new_order(
            market.venue, market.symbol, 0, price, size, order_type, STP_CANCEL_RESTING, tag=tag
        )

    def sell(
        self, market: Market, price: int, size: int, order_type: int = LIMIT, tag: str = "manual"
    ) -> int:
        return self.oms.new_order(
            market.venue, market.symbol, 1, price, size, order_type, STP_CANCEL_RESTING, tag=tag
        )

    def cancel_at(self, market: Market, price: int, side: int | None = None) -> int:
        """Cancel our orders resting at `price` (on one side or both); returns how many were asked."""
        return self.oms.cancel_many(self.oms.orders(market.venue, market.symbol, side, price))

    def queue_ahead(self, market: Market, order_id: int) -> int | None:
        """Lots ahead of our resting order at its price, as its venue knows or estimates it (the sim: its
        matching book; paper: the desk's queue model); None when the venue cannot tell or it is not resting."""
        ask = getattr(self.venues[market.venue], "queue_ahead", None)
        return ask(order_id) if ask is not None else None

    def cancel_all(self, market: Market | None = None) -> int:
        if market is None:
            return self.oms.cancel_all()
        return self.oms.cancel_all(market.venue, market.symbol)

    # ---- event handlers ------------------------------------------------------------------------
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
            self.gaps += 1
            self.bus.publish(gap)
            resync: Callable[[], None] | None = getattr(self.venues[ev.venue], "publish_snapshot", None)
            if resync is not None:
                resync()

    def _on_trade(self, ev: Trade) -> None:
        m = self.markets.get((ev.venue, ev.symbol))
        if m is None:
            return
        m.last_trade = ev
        m.last_event_ts = ev.ts
        m.trades += 1
        m.traded_lots += ev.size
        vap = m.volume_at_price
        vap[ev.price] = vap.get(ev.price, 0) + ev.size
        m.tape.append(ev)
        m.trade_version += 1

    def _on_status(self, ev: VenueStatus) -> None:
        self.venue_state[ev.venue] = ev.state
        self.venue_detail[ev.venue] = ev.detail

    def _on_order_event(self, ev) -> None:
        m = self.markets.get((ev.venue, ev.symbol))
        if m is not None:
            m.unified.on_event(ev)

    # ---- strategies ----------------------------------------------------------------------------
    def add_market_maker(self, params=None, market: Market | None = None):
        """A market maker on `market` (default: the first), paused until `resume()`."""
        from lobterm.trading.market_maker import MarketMaker

        m = market or self.default_market
        mm = MarketMaker(self.bus, self.oms, m, self.inventory, self.clock, params, risk=self.risk)
        mm.on_change = self._note_params
        if self.hedger is not None:
            mm.side_block = self.hedger.blocks_quoting
        self.market_makers.append(mm)
        return mm

    def _note_params(self, mm, changes: dict) -> None:
        self.note("mm", "params", {"market": f"{mm.venue}:{mm.symbol}", **changes})

    def add_hedger(self, params=None, quote: Market | None = None, hedge: Market | None = None):
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
        self.risk.add_on_kill(lambda *_: self.hedger.stop())
        for mm in self.market_makers:
            mm.side_block = self.hedger.blocks_quoting
        return self.hedger

    def on_timer(self) -> None:
        """Time-driven work between market events (the TUI calls this on its clock): hedge slices,
        market maker staleness and order-age checks."""
        now = self.clock.now()
        if self.hedger is not None:
            self.hedger.on_time(now)
        for mm in self.market_makers:
            mm.heartbeat()
        if self.metrics is not None:
            self.metrics.on_timer()
        rec = self.recorder
        if rec is not None and rec.sync and not rec.closed:
            rec.pump()

    # ---- P&L ---------------------------------------------------------------------------------------
    def marks(self) -> dict[tuple[str, str], TopOfBook]:
        return {k: m.top() for k, m in self.markets.items()}

    def net_pnl(self):
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

"""The replay venue: a recorded session's venue, republished on the kernel bus, with paper trading on top.

`ReplayVenue` is a Venue (mode "REPLAY") whose market data comes from a session file instead of a
network: the player (`lobterm.recording.player`) hands it the recorded events one by one
(`replay(ev)`), in recorded order, and the venue publishes them on the bus. Time is the recorded
time: the player drives the kernel's `ReplayClock` from the recorded timestamps.

Two ways to replay (`show_recorded_orders`):

- **Replay** (`lobterm replay`, True): the kernel sees the session exactly as it was: the recorded
  L2 book (which, on a sim or live venue, includes our resting orders: `own_in_book` is the recorded
  venue's), the trades, the venue status, and **our original orders** as they were: each recorded
  `Accepted` of ours is adopted by the OMS (`adopt_recorded_order`, tag "recorded", its recorded order
  id) before it is published, so that the ladder's OUR columns, the working-order count and the
  inventory (built from the recorded fills) show what they showed then, and the kernel's state hash
  matches the recorded checkpoints. Recorded orders are history: a cancel or amend of one is
  Rejected with a reason, never sent anywhere.
- **Backtest** (`lobterm backtest`, False): our original orders are removed. The kernel sees only the
  others' book: on a venue whose book held our orders, our recorded resting size (from our recorded
  order events) is subtracted level by level; our recorded order events are not published.

Trading during a replay goes to a `PaperDesk` (queue-aware paper fills, latency) fed with the
**others-only** book in both modes, so that a paper order never fills against the liquidity of our own
recorded orders. Paper orders use the OMS's ids from `PAPER_ID_BASE` up (the replay kernel's OMS
starts there), far above any recorded id, so the two never clash. On seek the player calls `reset()`:
a new desk, and the OMS forgets the paper orders (trading during a replay is reset on seek).

A perpetual's `PerpInfo` and `MarkPrice` are republished in both modes; our recorded `Funding` and
`Liquidation` only in replay (in a backtest the recorded account is not ours).

Recorded `BookGap`s are not republished (the kernel's L2 book detects the same gap itself) and a
resync request (`publish_snapshot`) does nothing: the recording carries the snapshot that followed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, overload

from lobterm.engine.events import (
    BUY,
    FOK,
    IOC,
    MARKET,
    OUR_OWNER,
    SELL,
    Accepted,
    Amended,
    BookDelta,
    BookSnapshot,
    Cancelled,
    Done,
    Event,
    Fill,
    Funding,
    Liquidation,
    MarkPrice,
    PerpInfo,
    Rejected,
    Trade,
    VenueStatus,
)
from lobterm.trading.oms import PENDING_NEW, WorkingOrder
from lobterm.trading.paper import PaperConfig, PaperDesk
from lobterm.venues.base import Attached, stop_task

if TYPE_CHECKING:
    from lobterm.engine.instrument import Instrument
    from lobterm.engine.ports import Bus, Clock, Handler
    from lobterm.trading.oms import OrderManager

__all__ = ["PAPER_ID_BASE", "RECORDED_TAG", "OwnRestingBook", "ReplayVenue", "adopt_recorded_order"]

#: Our paper orders during a replay get OMS ids from here up; recorded ids are a session's 1, 2, 3...
PAPER_ID_BASE = 1 << 40
RECORDED_TAG = "recorded"

_ORDER_EVENTS = (Accepted, Fill, Cancelled, Amended, Rejected, Done)
_NEVER_RESTS = (MARKET, IOC, FOK)


class OwnRestingBook:
    """Our recorded resting size per (side, price) of one venue+symbol, from our recorded order events:
    what to subtract from a recorded L2 level to get everybody else's size."""

    __slots__ = ("orders", "size")

    def __init__(self) -> None:
        self.orders: dict[int, list[int]] = {}  # order id -> [side, price, open size]
        self.size: tuple[dict[int, int], dict[int, int]] = ({}, {})

    def clear(self) -> None:
        self.orders.clear()
        self.size[BUY].clear()
        self.size[SELL].clear()

    def on_event(self, ev: Any) -> None:
        cls = ev.__class__
        if cls is Accepted:
            if ev.price > 0 and ev.order_type not in _NEVER_RESTS and ev.order_id not in self.orders:
                self.orders[ev.order_id] = [ev.side, ev.price, ev.size]
                self._add(ev.side, ev.price, ev.size)
            return
        o = self.orders.get(ev.order_id)
        if o is None:
            return
        if cls is Fill:
            self._set(ev.order_id, o, o[1], ev.leaves)
        elif cls is Cancelled:
            self._set(ev.order_id, o, o[1], max(0, o[2] - ev.size))
        elif cls is Amended:
            self._set(ev.order_id, o, ev.price, ev.size)
        elif cls is Done:
            self._set(ev.order_id, o, o[1], 0)

    def _set(self, oid: int, o: list[int], price: int, size: int) -> None:
        self._add(o[0], o[1], -o[2])
        if size <= 0:
            del self.orders[oid]
            return
        o[1] = price
        o[2] = size
        self._add(o[0], price, size)

    def _add(self, side: int, price: int, size: int) -> None:
        levels = self.size[side]
        left = levels.get(price, 0) + size
        if left > 0:
            levels[price] = left
        else:
            levels.pop(price, None)

    @overload
    def others(self, ev: BookDelta) -> BookDelta: ...
    @overload
    def others(self, ev: BookSnapshot) -> BookSnapshot: ...
    def others(self, ev: BookDelta | BookSnapshot) -> BookDelta | BookSnapshot:
        """`ev` with our recorded resting size taken out of each level."""
        if isinstance(ev, BookDelta):
            ours = self.size[ev.side].get(ev.price)
            if not ours:
                return ev
            left = ev.size - ours
            return BookDelta(ev.ts, ev.venue, ev.symbol, ev.seq, ev.side, ev.price, left if left > 0 else 0)
        bids, asks = self.size
        if not bids and not asks:
            return ev
        return BookSnapshot(ev.ts, ev.venue, ev.symbol, ev.seq, _minus(ev.bids, bids), _minus(ev.asks, asks))


def _minus(levels: tuple[tuple[int, int], ...], ours: dict[int, int]) -> tuple[tuple[int, int], ...]:
    out = []
    for price, size in levels:
        left = size - ours.get(price, 0)
        if left > 0:
            out.append((price, left))
    return tuple(out)


def adopt_recorded_order(oms: OrderManager, ev: Accepted, tag: str = RECORDED_TAG) -> None:
    """Make the OMS know one of our recorded orders (from its recorded Accepted, published right after),
    as if it had sent it: same id, venue, symbol, side, price and size."""
    if ev.order_id in oms.working:
        return
    o = WorkingOrder(
        ev.order_id,
        ev.venue,
        ev.symbol,
        ev.side,
        ev.price,
        ev.size,
        ev.size,
        0,
        ev.order_type,
        PENDING_NEW,
        tag,
        created_ts=ev.ts,
        updated_ts=ev.ts,
    )
    o.routed = True
    oms.working[ev.order_id] = o
    # The OMS keeps a per-market index for the market maker and risk (see OrderManager.market_orders).
    oms._by_market.setdefault((ev.venue, ev.symbol), {})[ev.order_id] = o


class _DeskBus:
    """What the paper desk sees as its bus: it publishes on the kernel's bus, but its market data comes
    from the replay venue (the others-only book), not from the bus."""

    __slots__ = ("bus", "handler")

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self.handler: Handler | None = None

    def subscribe(self, event_type: type | tuple[type, ...], handler: Handler) -> None:
        self.handler = handler

    def publish_many(self, events: list[Any]) -> None:
        self.bus.publish_many(events)


class ReplayVenue(Attached):
    """One recorded venue (see the module docstring)."""

    mode = "REPLAY"

    def __init__(
        self,
        name: str,
        instruments: dict[str, Instrument],
        *,
        recorded_own_in_book: bool,
        show_recorded_orders: bool = True,
        paper: PaperConfig | None = None,
    ) -> None:
        self.name = name
        self.instruments = dict(instruments)
        self.recorded_own_in_book = recorded_own_in_book
        self.show_recorded_orders = show_recorded_orders
        self.own_in_book = recorded_own_in_book if show_recorded_orders else False
        self.paper_config = paper or PaperConfig()
        self.state = "idle"
        self.ours = {symbol: OwnRestingBook() for symbol in self.instruments}
        #: Set by the player: called with each recorded Accepted of ours before it is published.
        self.on_recorded_accept: Callable[[Accepted], None] | None = None
        #: Set by the player: the coroutine that paces playback on the loop (`start` runs it).
        self.driver: Callable[[], Coroutine[object, object, None]] | None = None
        #: Our paper orders' venue: a new one (attached to the kernel's bus) on every `reset`.
        self.desk = PaperDesk(self.name, list(self.instruments.values()), self.paper_config)
        self.skipped = 0  # recorded events this venue does not republish (gaps, other symbols)
        self._desk_bus: _DeskBus | None = None
        self._task: asyncio.Task[None] | None = None

    # ---- wiring --------------------------------------------------------------------------------
    def attach(self, bus: Bus, clock: Clock) -> None:
        super().attach(bus, clock)
        self.reset()

    def reset(self) -> None:
        """Forget our recorded resting orders and start a new paper desk (the player's seek)."""
        for book in self.ours.values():
            book.clear()
        bus, clock = self.bus, self.clock
        if not self.show_recorded_orders:
            bus.unsubscribe(self.desk.on_event)  # the previous desk's (none on the first reset)
        self.desk = PaperDesk(self.name, list(self.instruments.values()), self.paper_config)
        if self.show_recorded_orders:
            self._desk_bus = _DeskBus(bus)
            self.desk.attach(self._desk_bus, clock)
        else:  # the bus carries the others-only book: the desk reads it like any subscriber
            self.desk.attach(bus, clock)

    async def start(self) -> None:
        if self.driver is not None and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.driver(), name=f"replay-{self.name}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await stop_task(task)

    def publish_snapshot(self) -> None:
        """A resync request after a gap: the recording carries the snapshot that followed."""

    # ---- replaying -----------------------------------------------------------------------------
    def translate(self, ev: Any) -> Any | None:
        """What the kernel's bus gets for one recorded event of this venue (None: nothing), keeping our
        recorded resting orders up to date and adopting our recorded orders into the OMS on the way.
        The caller publishes it (the backtest publishes the events of one timestamp as one batch, as
        the venue did)."""
        cls = ev.__class__
        if cls is BookDelta or cls is BookSnapshot:
            ours = self.ours.get(ev.symbol)
            if ours is None:
                self.skipped += 1
                return None
            if self.show_recorded_orders or not self.recorded_own_in_book:
                return ev
            return ours.others(ev)
        if cls is Trade:
            if ev.symbol not in self.ours:
                self.skipped += 1
                return None
            return ev
        if cls in _ORDER_EVENTS:
            if ev.owner != OUR_OWNER:
                self.skipped += 1
                return None
            ours = self.ours.get(ev.symbol)
            if ours is not None:
                ours.on_event(ev)
            if not self.show_recorded_orders:
                return None
            if cls is Accepted and self.on_recorded_accept is not None:
                self.on_recorded_accept(ev)
            return ev
        if cls is VenueStatus:
            self.state = ev.state
            return ev
        if cls is PerpInfo or cls is MarkPrice:
            return ev if ev.symbol in self.ours else None
        if cls is Funding or cls is Liquidation:
            # Our recorded account's: shown in a replay, not in a backtest (its orders are not ours).
            return ev if self.show_recorded_orders and ev.symbol in self.ours else None
        self.skipped += 1  # BookGap: the kernel's book finds it again
        return None

    def seed_desk(self, snapshot: BookSnapshot) -> None:
        """Give a fresh paper desk the recorded book as it stands (after a seek), others-only."""
        ours = self.ours.get(snapshot.symbol)
        if ours is None:
            return
        ev = ours.others(snapshot) if self.recorded_own_in_book else snapshot
        if self._desk_bus is not None and self._desk_bus.handler is not None:
            self._desk_bus.handler(ev)
        else:
            self.desk.on_event(ev)

    def replay(self, ev: Any) -> None:
        """Publish one recorded event of this venue; in replay mode, then feed the paper desk the
        others-only book (in backtest mode the desk reads the bus, which carries only that)."""
        out = self.translate(ev)
        if out is None:
            return
        self.bus.publish(out)
        handler = self._desk_bus.handler if self._desk_bus is not None else None
        if handler is not None:
            cls = out.__class__
            if cls is BookDelta or cls is BookSnapshot:
                handler(self.ours[ev.symbol].others(ev) if self.recorded_own_in_book else ev)
            elif cls is Trade:
                handler(ev)

    # ---- our requests: paper orders --------------------------------------------------------------
    def submit(
        self, order_id: int, symbol: str, side: int, price: int, size: int, order_type: int = 0, stp: int = 1
    ) -> None:
        if order_id < PAPER_ID_BASE and self.show_recorded_orders:
            self._refuse(
                order_id, symbol, "order ids below the replay's paper id base are recorded orders", new=True
            )
            return
        self.desk.submit(order_id, symbol, side, price, size, order_type, stp)

    def cancel(self, order_id: int, symbol: str) -> None:
        if order_id < PAPER_ID_BASE and self.show_recorded_orders:
            self._refuse(order_id, symbol, "a recorded order is shown as it was: it cannot be cancelled")
            return
        self.desk.cancel(order_id, symbol)

    def amend(self, order_id: int, symbol: str, price: int | None = None, size: int | None = None) -> None:
        if order_id < PAPER_ID_BASE and self.show_recorded_orders:
            self._refuse(order_id, symbol, "a recorded order is shown as it was: it cannot be amended")
            return
        self.desk.amend(order_id, symbol, price, size)

    def on_time(self, now_ns: int) -> None:
        """Apply paper requests whose latency has elapsed while no market data came."""
        self.desk.on_time(now_ns)

    def _refuse(self, order_id: int, symbol: str, why: str, new: bool = False) -> None:
        now = self.clock.now()
        events: list[Event] = [Rejected(now, self.name, symbol, order_id, why, OUR_OWNER)]
        if new:
            events.append(Done(now, self.name, symbol, order_id, 0, "rejected", OUR_OWNER))
        self.bus.publish_many(events)

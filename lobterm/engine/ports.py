"""What the layers above the engine plug into: the clock, the event bus and an order route, as
Protocols (typing only, nothing to run).

`trading/` and `venues/` type their collaborators with these, so that they depend on the engine alone:
`lobterm.clock` (LiveClock, VirtualClock) and `lobterm.bus` (Bus) implement them, the venues of
`lobterm.venues` implement `OrderRoute`, and the kernel wires the real ones together.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from lobterm.engine.events import LIMIT, STP_CANCEL_RESTING
from lobterm.engine.instrument import Instrument
from lobterm.engine.l2book import L2Book

__all__ = [
    "Bus",
    "Clock",
    "Handler",
    "MarketView",
    "OrderRoute",
    "Resyncable",
    "StaleReporting",
    "SteppedClock",
]

Handler = Callable[[Any], object]  # what a handler returns is ignored


class Clock(Protocol):
    """Kernel time: integer nanoseconds since the epoch. `virtual`: it moves only when told to."""

    @property
    def virtual(self) -> bool: ...

    def now(self) -> int: ...


class SteppedClock(Clock, Protocol):
    """A virtual clock a driver moves (the headless sim, replay)."""

    def advance_to(self, ts_ns: int) -> None: ...


class Bus(Protocol):
    """Ordered synchronous publish/subscribe (lobterm.bus.Bus)."""

    published: int
    errors: int

    @property
    def pending(self) -> deque[Any]: ...

    def subscribe(self, event_type: type | tuple[type, ...], handler: Handler) -> None: ...

    def subscribe_all(self, handler: Handler) -> None: ...

    def unsubscribe(self, handler: Handler) -> None: ...

    def publish(self, event: Any) -> None: ...

    def publish_many(self, events: list[Any]) -> None: ...


class OrderRoute(Protocol):
    """Where the OMS sends our orders: a venue (lobterm.venues.base.Venue is one)."""

    name: str
    mode: str
    own_in_book: bool

    @property
    def instruments(self) -> dict[str, Instrument]: ...

    def submit(
        self,
        order_id: int,
        symbol: str,
        side: int,
        price: int,
        size: int,
        order_type: int = LIMIT,
        stp: int = STP_CANCEL_RESTING,
    ) -> None: ...

    def cancel(self, order_id: int, symbol: str) -> None: ...

    def amend(
        self, order_id: int, symbol: str, price: int | None = None, size: int | None = None
    ) -> None: ...


class MarketView(Protocol):
    """One venue+symbol as the risk checks and the hedger read it (lobterm.kernel.Market is one)."""

    @property
    def instrument(self) -> Instrument: ...

    @property
    def l2(self) -> L2Book: ...

    @property
    def stale(self) -> bool:
        """Marked stale by a venue whose feed stopped (until it has resynced)."""
        ...


@runtime_checkable
class Resyncable(Protocol):
    """A venue that can publish a fresh BookSnapshot of its markets: the kernel asks after a sequence gap."""

    def publish_snapshot(self) -> None: ...


@runtime_checkable
class StaleReporting(Protocol):
    """A venue that can lose a market's feed: it tells the kernel through `set_stale(venue, symbol, stale)`
    (risk blocks quoting on a stale book, the UI marks it) until it has resynced."""

    def bind_market_state(self, set_stale: Callable[[str, str, bool], None]) -> None: ...

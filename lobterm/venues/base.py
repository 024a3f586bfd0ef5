"""The venue protocol: what the kernel needs from any venue (sim, ccxt, replay).

A venue turns what it receives into engine events (ticks and lots, once) and publishes them on the
bus; requests (submit, cancel, amend) return at once and their outcome arrives as events: Accepted,
Fill, Amended, Cancelled, Rejected, Done. A venue never raises into the kernel for a bad request: it
publishes Rejected with a reason.

Optional: `queue_ahead(order_id) -> int | None`, the lots ahead of our resting order at its price (exact
or estimated); the kernel's `queue_ahead` asks it for the ladder.

Optional: `take_feed_latency() -> {symbol: [[venue ns, local ns], ...]}`, a venue whose market data
carries the venue's own time (ccxt): the (venue time, local receive time) samples it kept since the last
call, bounded; the kernel notes them in the session file (`Note("feed", "latency", {venue: {symbol:
pairs}})`) for `lobterm backtest --latency feed=recorded`.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from lobterm.engine.ports import OrderRoute
from lobterm.engine.ports import Resyncable as Resyncable  # re-exported: the paper desk wraps these too
from lobterm.engine.ports import StaleReporting as StaleReporting

if TYPE_CHECKING:
    from lobterm.engine.ports import Bus, Clock

from lobterm.engine.events import OUR_OWNER  # noqa: F401 - re-exported for venue authors


@runtime_checkable
class Venue(OrderRoute, Protocol):
    """An order route (engine.ports: name, mode, own_in_book, instruments; submit, cancel, amend) that
    the kernel also attaches, starts and stops. `mode` is what the UI shows: "SIM", "LIVE", "PAPER" or
    "REPLAY"; `own_in_book` is true where our resting orders are part of the venue's own L2 book (a real
    exchange, the sim), false where they are virtual (paper: the unified book adds them)."""

    @property
    def state(self) -> str: ...

    def attach(self, bus: Bus, clock: Clock) -> None: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@runtime_checkable
class QueueEstimator(Protocol):
    """A venue that knows (the sim's matching book) or estimates (the paper desk) our queue position."""

    def queue_ahead(self, order_id: int) -> int | None:
        """Lots ahead of our resting order at its price; None when it is not resting or cannot tell."""
        ...


@runtime_checkable
class OrderStateVenue(Protocol):
    """A venue that is the truth about our orders (a keyed live venue): the kernel's shutdown verb asks
    it, not its own memory, whether anything of ours is still open, and sweeps until nothing is.

    Reconciliation (open orders, missed fills, orphans) is the venue's own job: it runs on start, after
    every reconnect of its order stream and periodically, and publishes what it finds as ordinary order
    events (a missed Fill exactly once, Cancelled/Done for an order that is gone)."""

    async def open_order_ids(self) -> list[str]:
        """The venue's ids of our orders it still holds open (on the configured symbols), asked now."""
        ...

    async def cancel_open_orders(self) -> int:
        """Ask the venue to cancel every open order of ours (on the configured symbols); how many asked."""
        ...


class Attached:
    """The bus and clock a kernel gives a venue in `attach`. Reading `bus` or `clock` before that is a
    wiring error and says so; `attached` asks without raising."""

    _bus: Bus | None = None
    _clock: Clock | None = None

    def attach(self, bus: Bus, clock: Clock) -> None:
        self._bus = bus
        self._clock = clock

    @property
    def attached(self) -> bool:
        return self._bus is not None

    @property
    def bus(self) -> Bus:
        bus = self._bus
        if bus is None:
            raise RuntimeError(f"{type(self).__name__}: attach() the venue to a kernel first")
        return bus

    @property
    def clock(self) -> Clock:
        clock = self._clock
        if clock is None:
            raise RuntimeError(f"{type(self).__name__}: attach() the venue to a kernel first")
        return clock


async def stop_task(task: asyncio.Task[object] | None) -> None:
    """Cancel a venue's background task (its pacing or feed loop) and wait until it has ended."""
    if task is None:
        return
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass

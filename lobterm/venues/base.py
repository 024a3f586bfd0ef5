"""The venue protocol: what the kernel needs from any venue (sim, ccxt, replay).

A venue turns what it receives into engine events (ticks and lots, once) and publishes them on the
bus; requests (submit, cancel, amend) return at once and their outcome arrives as events: Accepted,
Fill, Amended, Cancelled, Rejected, Done. A venue never raises into the kernel for a bad request: it
publishes Rejected with a reason.

Optional: `queue_ahead(order_id) -> int | None`, the lots ahead of our resting order at its price (exact
or estimated); the kernel's `queue_ahead` asks it for the ladder.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from lobterm.engine.events import LIMIT, STP_CANCEL_RESTING

if TYPE_CHECKING:
    from lobterm.bus import Bus
    from lobterm.clock import Clock
    from lobterm.engine.instrument import Instrument

# The owner id our own orders carry in events (sim participants and venues' other traders use others).
OUR_OWNER = 1


@runtime_checkable
class Venue(Protocol):
    name: str
    #: What the UI shows: "SIM" (embedded simulated venue), "LIVE", "PAPER" or "REPLAY".
    mode: str
    #: True where our resting orders are part of the venue's own L2 book (a real exchange, the sim);
    #: False where they are virtual (paper), so the unified book adds them to the venue's size.
    own_in_book: bool
    instruments: dict[str, Instrument]
    state: str

    def attach(self, bus: Bus, clock: Clock) -> None: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def submit(self, order_id: int, symbol: str, side: int, price: int, size: int,
               order_type: int = LIMIT, stp: int = STP_CANCEL_RESTING) -> None: ...

    def cancel(self, order_id: int, symbol: str) -> None: ...

    def amend(self, order_id: int, symbol: str, price: int | None = None, size: int | None = None) -> None: ...


async def stop_task(task: asyncio.Task | None) -> None:
    """Cancel a venue's background task (its pacing or feed loop) and wait until it has ended."""
    if task is None:
        return
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass

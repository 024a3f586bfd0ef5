"""The strategy interface: what a strategy is (`Strategy`) and what it sees (`StrategyContext`).

A desk writes its own strategy as a class with the `Strategy` methods and names it in the config
(`[strategies.NAME] class = "package.module:Class"`, plus its parameters). The kernel builds it with
`Class(ctx, **params)` and runs it unchanged in the TUI and headless, on the sim, the paper desk or a
live venue: the same events in the same order, the same clock, the same risk-checked order verbs.
(Replay and backtests run the built-in market maker only, not user strategies, yet.) The
market maker and the hedger are the two built-in strategies; they implement the same protocol.

A strategy starts paused: `resume()` lets it trade. The kernel calls `on_market_data` for every book
and trade event, `on_order_event` for every event of an order the strategy placed, and `on_timer` on
the kernel's own timer. A handler that raises does not stop the kernel: the strategy is counted, shown
as failed, paused, and its orders are cancelled (see `lobterm.kernel.StrategyHost`).

Everything a strategy sends goes through the OMS and pre-trade risk, tagged with the strategy's name:
a refusal comes back as a `Rejected` event, like a venue's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from lobterm.engine.events import (
    BUY,
    LIMIT,
    SELL,
    STP_CANCEL_RESTING,
    Accepted,
    Amended,
    BookDelta,
    BookSnapshot,
    Cancelled,
    Done,
    Fill,
    Rejected,
    Trade,
)

if TYPE_CHECKING:
    from lobterm.engine.instrument import Instrument
    from lobterm.engine.l2book import L2Book
    from lobterm.engine.ports import Clock
    from lobterm.engine.unified import UnifiedBook
    from lobterm.trading.oms import OrderManager, WorkingOrder

__all__ = [
    "FAILED",
    "PAUSED",
    "RUNNING",
    "STOPPED",
    "MarketData",
    "OrderEvent",
    "Strategy",
    "StrategyContext",
    "StrategyError",
    "BaseStrategy",
]

MarketData = BookSnapshot | BookDelta | Trade
OrderEvent = Accepted | Fill | Amended | Cancelled | Rejected | Done

# Strategy states (the market maker and the hedger use the same words).
RUNNING = "running"
PAUSED = "paused"
STOPPED = "stopped"  # by the kill switch: resume only after re-arming
FAILED = "failed"  # a handler raised: paused, orders cancelled; resume to try again


class StrategyError(ValueError):
    """A strategy that cannot be loaded or built: `name` the [strategies.NAME], `detail` why."""

    def __init__(self, name: str, detail: str) -> None:
        self.name = name
        self.detail = detail
        super().__init__(f"strategy {name}: {detail}")


@runtime_checkable
class Strategy(Protocol):
    """What the kernel needs of a strategy. `name` is unique in a kernel; `state` one of RUNNING,
    PAUSED, STOPPED, FAILED; `markets` the (venue, symbol) pairs whose market data it wants."""

    name: str
    state: str
    markets: tuple[tuple[str, str], ...]

    def resume(self) -> None: ...

    def pause(self) -> None: ...

    def stop(self, reason: str) -> None: ...

    def on_market_data(self, ev: MarketData) -> None: ...

    def on_order_event(self, ev: OrderEvent) -> None: ...

    def on_timer(self, now_ns: int) -> None: ...

    def status(self) -> Mapping[str, str]:
        """A few lines of state for the TUI's strategy panel and the headless summary (label: value)."""
        ...


class PositionSource(Protocol):
    def position_lots(self, venue: str, symbol: str) -> int: ...


@dataclass(slots=True)
class StrategyContext:
    """What a strategy sees: the books, its position, the clock, and order verbs that go through the
    OMS and risk with the strategy's tag. Prices are integer ticks and sizes integer lots of the
    market's instrument (`instrument(venue, symbol).ticks("65000.1")` converts exactly)."""

    tag: str
    #: The (venue, symbol) markets this strategy was given (`[strategies.NAME] market`), first the main one.
    markets: tuple[tuple[str, str], ...]
    clock: Clock
    oms: OrderManager
    books: Mapping[tuple[str, str], L2Book]
    instruments: Mapping[tuple[str, str], Instrument]
    positions: PositionSource
    #: Where a strategy's own problems go (the kernel shows them and records them as notes).
    report: Callable[[str], None] = field(default=lambda _msg: None)
    #: The books with our own orders tracked (`others_best` takes them out where a venue's book holds them).
    unified: Mapping[tuple[str, str], UnifiedBook] = field(default_factory=dict)

    # ---- reading ---------------------------------------------------------------------------------
    def now(self) -> int:
        """Kernel time in nanoseconds (wall time live, recorded time in replay and backtests)."""
        return self.clock.now()

    def book(self, venue: str, symbol: str) -> L2Book:
        return self.books[(venue, symbol)]

    def others_best(self, venue: str, symbol: str, side: int) -> tuple[int, int] | None:
        """(price, lots) of everybody else's best level on `side` (our own orders taken out), or None."""
        book = self.books[(venue, symbol)]
        u = self.unified.get((venue, symbol))
        if u is None or not u.own_in_venue_book:  # the venue's book holds the others only
            return book.best_bid() if side == BUY else book.best_ask()
        ours = u.our_size
        for price, size in book.iter_levels(side):
            mine = ours(side, price)
            if size > mine:
                return price, size - mine
        return None

    def instrument(self, venue: str, symbol: str) -> Instrument:
        return self.instruments[(venue, symbol)]

    def position(self, venue: str, symbol: str) -> int:
        """Our signed position in lots on that market (all sources: this strategy, others, manual)."""
        return self.positions.position_lots(venue, symbol)

    def orders(self, venue: str | None = None, symbol: str | None = None) -> Iterator[WorkingOrder]:
        """This strategy's live orders (optionally on one market)."""
        for o in self.oms.orders(venue, symbol):
            if o.tag == self.tag:
                yield o

    # ---- order verbs (risk-checked; the outcome arrives as order events) -----------------------
    def buy(self, venue: str, symbol: str, price: int, size: int, order_type: int = LIMIT) -> int:
        return self.oms.new_order(
            venue, symbol, BUY, price, size, order_type, STP_CANCEL_RESTING, tag=self.tag
        )

    def sell(self, venue: str, symbol: str, price: int, size: int, order_type: int = LIMIT) -> int:
        return self.oms.new_order(
            venue, symbol, SELL, price, size, order_type, STP_CANCEL_RESTING, tag=self.tag
        )

    def amend(self, order_id: int, price: int | None = None, size: int | None = None) -> bool:
        if not self._mine(order_id):
            return False
        return self.oms.amend(order_id, price=price, size=size)

    def cancel(self, order_id: int) -> bool:
        if not self._mine(order_id):
            return False
        return self.oms.cancel(order_id)

    def cancel_all(self) -> int:
        """Cancel every live order of this strategy; how many cancels were sent."""
        return self.oms.cancel_many(list(self.orders()))

    def _mine(self, order_id: int) -> bool:
        o = self.oms.order(order_id)
        return o is not None and o.tag == self.tag


class BaseStrategy:
    """A convenient base for a user strategy: the name, markets and states of the protocol, so that a
    subclass writes only its handlers. `self.ctx` is the StrategyContext; it starts paused; `pause()` and
    `stop()` cancel its orders."""

    def __init__(self, ctx: StrategyContext) -> None:
        self.ctx = ctx
        self.name = ctx.tag
        self.markets = ctx.markets
        self.state = PAUSED
        self.reason = "paused"

    def resume(self) -> None:
        if self.state == STOPPED:
            raise StrategyError(self.name, "stopped by the kill switch: re-arm first")
        self.state = RUNNING
        self.reason = ""

    def pause(self) -> None:
        if self.state == RUNNING:
            self.state = PAUSED
            self.reason = "paused"
        self.ctx.cancel_all()

    def stop(self, reason: str) -> None:
        self.state = STOPPED
        self.reason = reason
        self.ctx.cancel_all()

    def on_market_data(self, ev: MarketData) -> None:
        return None

    def on_order_event(self, ev: OrderEvent) -> None:
        return None

    def on_timer(self, now_ns: int) -> None:
        return None

    def status(self) -> Mapping[str, str]:
        return {"state": self.state, "reason": self.reason}

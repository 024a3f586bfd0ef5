"""The paper desk tests' tape: a bus and a paper venue fed by hand."""

from __future__ import annotations

from decimal import Decimal

from lobterm.bus import Bus
from lobterm.clock import VirtualClock
from lobterm.engine.events import (
    BUY,
    LIMIT,
    ORDER_EVENTS,
    SELL,
    BookDelta,
    BookSnapshot,
    Fill,
    Trade,
)
from lobterm.engine.instrument import Instrument
from lobterm.trading.paper import PaperConfig, PaperDesk

VENUE = "ext"


SYMBOL = "BTC/USDT"


INST = Instrument(SYMBOL, tick_size=Decimal("0.1"), lot_size=Decimal("0.001"), venue=VENUE)


T0 = 1_767_225_600 * 10**9


MS = 1_000_000


class Tape:
    """A scripted external market: each event moves the clock 1 ms (or `dt`) and goes on the bus."""

    def __init__(
        self,
        config: PaperConfig | None = None,
        bids=((1000, 10), (999, 20)),
        asks=((1001, 10), (1002, 20)),
        snapshot: bool = True,
    ) -> None:
        self.bus = Bus()
        self.clock = VirtualClock(T0)
        self.desk = PaperDesk(VENUE, INST, config)
        self.desk.attach(self.bus, self.clock)
        self.events: list = []
        self.bus.subscribe(ORDER_EVENTS, self.events.append)
        self.seq = 0
        self.trade_id = 0
        if snapshot:
            self.snapshot(bids, asks)

    def _tick(self, dt: int) -> int:
        self.clock.advance(dt)
        return self.clock.now()

    def snapshot(self, bids, asks, dt: int = MS) -> None:
        self.seq += 1
        self.bus.publish(BookSnapshot(self._tick(dt), VENUE, SYMBOL, self.seq, tuple(bids), tuple(asks)))

    def delta(self, side: int, price: int, size: int, dt: int = MS) -> None:
        self.seq += 1
        self.bus.publish(BookDelta(self._tick(dt), VENUE, SYMBOL, self.seq, side, price, size))

    def trade(self, price: int, size: int, aggressor: int, dt: int = MS) -> None:
        self.trade_id += 1
        self.bus.publish(Trade(self._tick(dt), VENUE, SYMBOL, price, size, aggressor, self.trade_id))

    def buy(self, oid: int, price: int, size: int, order_type: int = LIMIT, **kw) -> None:
        self.desk.submit(oid, SYMBOL, BUY, price, size, order_type, **kw)

    def sell(self, oid: int, price: int, size: int, order_type: int = LIMIT, **kw) -> None:
        self.desk.submit(oid, SYMBOL, SELL, price, size, order_type, **kw)

    def of(self, cls: type, oid: int | None = None) -> list:
        return [e for e in self.events if type(e) is cls and (oid is None or e.order_id == oid)]

    def fills(self, oid: int | None = None) -> list[tuple[int, int]]:
        return [(f.price, f.size) for f in self.of(Fill, oid)]

"""The order manager: our order ids, our working orders, and requests routed to venues.

Every order we send gets a kernel-wide id (1, 2, 3, ...); its state follows the venue's events:
pending (sent, no Accepted yet) -> working -> done. The OMS never assumes an outcome: a cancel is a
request, and the order stays working until the venue says it is Done.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterable

from lobterm.engine.events import (LIMIT, STP_CANCEL_RESTING, Accepted, Amended, Done, Fill, Rejected)
from lobterm.venues.base import OUR_OWNER

if TYPE_CHECKING:
    from lobterm.venues.base import Venue


@dataclass(slots=True)
class WorkingOrder:
    order_id: int
    venue: str
    symbol: str
    side: int
    price: int
    size: int  # original size
    leaves: int  # still open
    filled: int = 0
    order_type: int = LIMIT
    state: str = "pending"  # pending, working, cancelling
    

class OrderManager:
    def __init__(self, venues: dict[str, Venue]) -> None:
        self._venues = venues
        self._next_id = 0
        self.working: dict[int, WorkingOrder] = {}
        self.sent = 0
        self.fills = 0
        self.filled_lots = 0
        self.rejects = 0
        self.cancels_sent = 0
        self.done = 0
        self.last_reject: str | None = None
        self.recent_rejects: deque[str] = deque(maxlen=20)
        self.on_reject: Callable[[str], None] | None = None

    def new_order(self, venue: str, symbol: str, side: int, price: int, size: int,
                  order_type: int = LIMIT, stp: int = STP_CANCEL_RESTING) -> int:
        """Send a new order; returns its id. The outcome arrives as events."""
        v = self._venues[venue]
        self._next_id += 1
        oid = self._next_id
        self.working[oid] = WorkingOrder(oid, venue, symbol, side, price, size, size, 0, order_type)
        self.sent += 1
        v.submit(oid, symbol, side, price, size, order_type, stp)
        return oid

    def cancel(self, order_id: int) -> bool:
        o = self.working.get(order_id)
        if o is None:
            return False
        o.state = "cancelling"
        self.cancels_sent += 1
        self._venues[o.venue].cancel(order_id, o.symbol)
        return True

    def amend(self, order_id: int, price: int | None = None, size: int | None = None) -> bool:
        o = self.working.get(order_id)
        if o is None:
            return False
        self._venues[o.venue].amend(order_id, o.symbol, price, size)
        return True

    def orders(self, venue: str | None = None, symbol: str | None = None, side: int | None = None,
               price: int | None = None) -> list[WorkingOrder]:
        return [o for o in self.working.values()
                if (venue is None or o.venue == venue) and (symbol is None or o.symbol == symbol)
                and (side is None or o.side == side) and (price is None or o.price == price)]

    def cancel_many(self, orders: Iterable[WorkingOrder]) -> int:
        n = 0
        for o in list(orders):
            if o.order_id in self.working:
                n += self.cancel(o.order_id)
        return n

    def cancel_all(self, venue: str | None = None, symbol: str | None = None) -> int:
        return self.cancel_many(self.orders(venue, symbol))

    # ---- events --------------------------------------------------------------------------------
    def on_event(self, ev) -> None:
        if ev.owner != OUR_OWNER:
            return
        cls = type(ev)
        o = self.working.get(ev.order_id)
        if cls is Fill:
            self.fills += 1
            self.filled_lots += ev.size
            if o is not None:
                o.filled += ev.size
                o.leaves = ev.leaves
        elif cls is Accepted:
            if o is not None and o.state == "pending":
                o.state = "working"
        elif cls is Amended:
            if o is not None:
                o.price = ev.price
                o.leaves = ev.size
        elif cls is Rejected:
            self.rejects += 1
            self.last_reject = f"order {ev.order_id}: {ev.reason}"
            self.recent_rejects.append(self.last_reject)
            if o is not None and o.state == "cancelling":
                o.state = "working"  # the cancel was refused; the order lives on
            if self.on_reject is not None:
                self.on_reject(self.last_reject)
        elif cls is Done:
            self.done += 1
            self.working.pop(ev.order_id, None)

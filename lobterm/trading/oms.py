"""The order manager: our client order ids, each order's state from the venue's events, requests routed.

Every order we send gets a kernel-wide client order id (1, 2, 3, ...) and a `tag` saying who sent it
("manual", "mm", "hedge", "flatten"). Its state follows the venue's events, never a guess:

    pending_new --Accepted--> working --Fill--> partially_filled --Fill(leaves 0), Done--> filled
    any live state --cancel()--> pending_cancel --Cancelled, Done--> cancelled
    any live state --amend()---> pending_amend  --Amended--> working / partially_filled
    pending_new --Rejected, Done--> rejected

Races are handled as the venue's events arrive, in any order a real venue produces them:
- a fill after our cancel request: the order stays pending_cancel, the fill counts and `leaves` drops;
  if it fills completely the venue's Done(filled) makes it `filled`;
- an Accepted arriving after a Fill (private trade stream ahead of the order stream) changes nothing:
  a fill already proved the venue has the order;
- an event for an order we do not know is counted in `unknown_events` and ignored; an event for an
  order that has already finished (the venue refusing a cancel for an order it just filled) is
  counted in `late_events` and ignored;
- a Rejected for a live order answers its oldest outstanding cancel/amend request (venues answer in
  request order): the order goes back to working / partially_filled, the reason is kept in `reason`.

New orders go through `risk.check_new` first. A blocked order never reaches the venue: the OMS itself
publishes `Rejected(..., "risk: <rule>: <detail>", OUR_OWNER)` then `Done(..., filled=0, "rejected")`
so that every subscriber (UI, recorder, inventory) sees it, and counts it per rule in `risk_rejects`.
Orders the OMS refuses on its own (unknown venue or symbol) are published the same way. Cancels are
never blocked. Amends are checked by `risk.check_amend` (a blocked amend gets a Rejected, no Done: the
order lives on unchanged).

Finished orders leave `working` for the bounded `recent` deque; `order(order_id)` finds either.

Wiring: the kernel subscribes `on_event` to the order events (Accepted, Fill, Cancelled, Amended,
Rejected, Done); the OMS does not subscribe itself, so that the kernel decides the delivery order.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from lobterm.engine.bounds import DONE_ORDER_GRACE_S, DONE_ORDERS, RECENT_ERRORS
from lobterm.engine.events import (
    FILLED,
    LIMIT,
    OUR_OWNER,
    REJECTED,
    STP_CANCEL_RESTING,
    Accepted,
    Amended,
    Cancelled,
    Done,
    Fill,
    OrderEvent,
    Rejected,
)

if TYPE_CHECKING:
    from lobterm.engine.ports import Bus, Clock, OrderRoute
    from lobterm.trading.risk import RiskManager

log = logging.getLogger(__name__)

# Order states.
PENDING_NEW = "pending_new"
WORKING = "working"
PARTIALLY_FILLED = "partially_filled"
PENDING_CANCEL = "pending_cancel"
PENDING_AMEND = "pending_amend"
FILLED_STATE = "filled"
CANCELLED_STATE = "cancelled"
REJECTED_STATE = "rejected"
LIVE_STATES = frozenset({PENDING_NEW, WORKING, PARTIALLY_FILLED, PENDING_CANCEL, PENDING_AMEND})
DONE_STATES = frozenset({FILLED_STATE, CANCELLED_STATE, REJECTED_STATE})

# Outstanding request kinds, kept oldest first on the order.
_CANCEL = "cancel"
_AMEND = "amend"

# Reasons that the OMS publishes itself start with this: its own echo is recognised and not counted twice.
RISK_PREFIX = "risk: "


@dataclass(slots=True, eq=False)
class WorkingOrder:
    """One of our orders. Prices in ticks, sizes in lots, fees in millionths of a tick*lot.

    `size` is the order's total size (filled + leaves: an amend changes it), `leaves` what is still
    open, `filled` what traded. `amend_price`/`amend_size` are the target of an amend not answered
    yet. `reason` is the last reject reason, or why the order ended. `routed` says whether the order
    reached a venue (False for an order the OMS or risk refused).
    """

    order_id: int
    venue: str
    symbol: str
    side: int
    price: int
    size: int
    leaves: int
    filled: int = 0
    order_type: int = LIMIT
    state: str = PENDING_NEW
    tag: str = "manual"
    stp: int = STP_CANCEL_RESTING
    venue_order_id: object = None
    created_ts: int = 0
    updated_ts: int = 0
    acked: bool = False
    routed: bool = False
    filled_notional: int = 0  # tick*lots traded: sum of price * size over the fills
    fees: int = 0
    reason: str = ""
    amend_price: int | None = None
    amend_size: int | None = None
    requests: list[str] | None = None  # outstanding cancel/amend requests, oldest first

    @property
    def is_live(self) -> bool:
        return self.state in LIVE_STATES

    @property
    def avg_price(self) -> Fraction | None:
        """Average fill price in ticks, exact; None before the first fill."""
        return Fraction(self.filled_notional, self.filled) if self.filled else None


def _live_state(o: WorkingOrder) -> str:
    r = o.requests
    if r:
        return PENDING_CANCEL if _CANCEL in r else PENDING_AMEND
    if o.filled:
        return PARTIALLY_FILLED
    return WORKING if o.acked else PENDING_NEW


class OrderManager:
    """Our orders across venues. See the module docstring for the state machine and the races."""

    def __init__(
        self,
        venues: Mapping[str, OrderRoute],
        bus: Bus | None = None,
        clock: Clock | None = None,
        risk: RiskManager | None = None,
        *,
        recent_size: int = DONE_ORDERS,
        done_grace_s: float = DONE_ORDER_GRACE_S,
    ) -> None:
        self._venues = venues
        self._bus = bus
        self._clock = clock
        self.risk = risk
        self._next_id = 0
        self.working: dict[int, WorkingOrder] = {}
        self.recent: deque[WorkingOrder] = deque()
        self._recent_size = max(1, recent_size)
        self._done_by_id: dict[int, WorkingOrder] = {}
        # (kernel time it finished, order), oldest first: a finished order leaves the lookup index after
        # `done_grace_s` of kernel time (late venue events for it are then counted in `forgotten_events`).
        self._done_at: deque[tuple[int, WorkingOrder]] = deque()
        self._done_grace_ns = int(done_grace_s * 1e9)
        # (venue, symbol) -> {order_id: order}: the market maker and risk look up one market per event.
        self._by_market: dict[tuple[str, str], dict[int, WorkingOrder]] = {}
        self._by_venue_id: dict[tuple[str, object], WorkingOrder] = {}
        # Counters.
        self.sent = 0  # new orders routed to a venue
        self.fills = 0
        self.filled_lots = 0
        self.rejects = 0  # every refusal: venue rejects of new/cancel/amend, risk and OMS refusals
        self.cancels_sent = 0
        self.amends_sent = 0
        self.cancel_rejects = 0
        self.amend_rejects = 0
        self.done = 0
        self.unknown_events = 0
        self.late_events = 0
        self.forgotten_events = 0  # events for one of our orders finished longer ago than the grace period
        self.venue_errors = 0
        self.risk_rejects: dict[str, int] = {}
        self.last_reject: str | None = None
        self.recent_rejects: deque[str] = deque(maxlen=RECENT_ERRORS)
        self.on_reject: Callable[[str], None] | None = None
        #: Request -> answer times for the session file (lobterm.services.start_recording turns this on:
        #: a list): (kind "new" / "cancel" / "amend", local send ns, local answer ns) per answered request,
        #: the answer being the venue's first word on it (Accepted or a fill for a new order, Amended,
        #: Cancelled, or Rejected); the kernel notes and clears them. None: not measured.
        self.request_times: list[tuple[str, int, int]] | None = None
        self._sent_ns: dict[int, list[tuple[str, int]]] = {}  # order id -> unanswered (kind, sent ns)
        # Each handler takes its own event type; the table is keyed by that type.
        self._dispatch: dict[type[OrderEvent], Callable[[WorkingOrder, Any], None]] = {
            Accepted: self._on_accepted,
            Fill: self._on_fill,
            Cancelled: self._on_cancelled,
            Amended: self._on_amended,
            Rejected: self._on_rejected,
            Done: self._on_done,
        }
        if risk is not None:
            risk.bind_oms(self)

    # ---- requests ------------------------------------------------------------------------------
    def new_order(
        self,
        venue: str,
        symbol: str,
        side: int,
        price: int,
        size: int,
        order_type: int = LIMIT,
        stp: int = STP_CANCEL_RESTING,
        tag: str = "manual",
    ) -> int:
        """Send a new order; returns its client order id. The outcome arrives as events (for the sim
        venue, before this returns unless called while the bus is delivering)."""
        self._next_id += 1
        oid = self._next_id
        now = self._clock.now() if self._clock is not None else 0
        o = WorkingOrder(
            oid, venue, symbol, side, price, size, size, 0, order_type, PENDING_NEW, tag, stp, None, now, now
        )
        v = self._venues.get(venue) if type(venue) is str else None
        if v is None:
            self._refuse(o, f"unknown venue {venue!r}", None)
            return oid
        if type(symbol) is not str or symbol not in v.instruments:
            self._refuse(o, f"{venue} does not list {symbol!r}", None)
            return oid
        risk = self.risk
        if risk is not None:
            try:
                why = risk.check_new(venue, symbol, side, price, size, order_type, tag)
            except Exception as exc:  # check_new fails closed itself; this is belt and braces
                why = f"error: {type(exc).__name__}: {exc}"
            if why is not None:
                self._refuse(o, RISK_PREFIX + why, why.split(":", 1)[0])
                return oid
        self.working[oid] = o
        key = (venue, symbol)
        by_market = self._by_market.get(key)
        if by_market is None:
            by_market = self._by_market[key] = {}
        by_market[oid] = o
        o.routed = True
        self.sent += 1
        if self.request_times is not None:
            self._sent_ns[oid] = [("new", now)]
        try:
            v.submit(oid, symbol, side, price, size, order_type, stp)
        except Exception as exc:  # a venue must publish Rejected, never raise; keep our books straight
            self._venue_raised(o, "submit", exc)
        return oid

    def cancel(self, order_id: int) -> bool:
        """Ask the venue to cancel a live order. False if the order is not live or a cancel is already
        outstanding. Never blocked by risk. The order stays pending_cancel until the venue's Done."""
        o = self.working.get(order_id)
        if o is None:
            return False
        r = o.requests
        if r is None:
            o.requests = [_CANCEL]
        elif _CANCEL in r:
            return False
        else:
            r.append(_CANCEL)
        o.state = PENDING_CANCEL
        self.cancels_sent += 1
        if self.request_times is not None:
            self._sent_ns.setdefault(order_id, []).append((_CANCEL, self._now()))
        risk = self.risk
        if risk is not None:
            risk.note_cancel(o.venue)
        try:
            self._venues[o.venue].cancel(order_id, o.symbol)
        except Exception as exc:
            self._venue_raised(o, _CANCEL, exc)
            return False
        return True

    def amend(self, order_id: int, price: int | None = None, size: int | None = None) -> bool:
        """Ask the venue to move a live order to `price` and/or change its open size to `size`.

        False if the order is not live, a cancel is outstanding, there is nothing to change, or risk
        blocked it (then a Rejected "risk: ..." for the order is on the bus and the order is unchanged).
        """
        o = self.working.get(order_id)
        if o is None or (price is None and size is None):
            return False
        r = o.requests
        if r is not None and _CANCEL in r:
            return False
        risk = self.risk
        if risk is not None:
            try:
                why = risk.check_amend(o, price, size)
            except Exception as exc:
                why = f"error: {type(exc).__name__}: {exc}"
            if why is not None:
                reason = RISK_PREFIX + why
                o.reason = reason
                self._count_risk(why.split(":", 1)[0])
                self._note_reject(f"amend of order {order_id} refused: {reason}")
                if self._bus is not None:
                    self._bus.publish(Rejected(self._now(), o.venue, o.symbol, order_id, reason, OUR_OWNER))
                return False
        if r is None:
            o.requests = [_AMEND]
        else:
            r.append(_AMEND)
        o.amend_price = o.price if price is None else price
        o.amend_size = o.leaves if size is None else size
        o.state = PENDING_AMEND
        self.amends_sent += 1
        if self.request_times is not None:
            self._sent_ns.setdefault(order_id, []).append((_AMEND, self._now()))
        try:
            self._venues[o.venue].amend(order_id, o.symbol, price, size)
        except Exception as exc:
            self._venue_raised(o, _AMEND, exc)
            return False
        return True

    def cancel_many(self, orders: Iterable[WorkingOrder]) -> int:
        """Cancel each of `orders` that is still live; returns how many cancels were sent."""
        n = 0
        for o in list(orders):
            if o.order_id in self.working:
                n += self.cancel(o.order_id)
        return n

    def cancel_all(self, venue: str | None = None, symbol: str | None = None) -> int:
        """Cancel every live order (of a venue, of a venue+symbol); returns how many cancels were sent."""
        return self.cancel_many(self.orders(venue, symbol))

    # ---- lookups -------------------------------------------------------------------------------
    def order(self, order_id: int) -> WorkingOrder | None:
        """A live or recently finished order by client order id."""
        o = self.working.get(order_id)
        return o if o is not None else self._done_by_id.get(order_id)

    def order_by_venue_id(self, venue: str, venue_order_id: object) -> WorkingOrder | None:
        """A live order by the venue's order id (the sim uses our client id)."""
        return self._by_venue_id.get((venue, venue_order_id))

    def set_venue_order_id(self, order_id: int, venue_order_id: object) -> None:
        """For adapters whose venue assigns its own ids: map the venue's id to our order."""
        o = self.working.get(order_id)
        if o is not None:
            self._index_venue_id(o, venue_order_id)

    def market_orders(self, venue: str, symbol: str) -> Iterable[WorkingOrder]:
        """The live orders of one venue+symbol (a view: do not change orders while iterating)."""
        d = self._by_market.get((venue, symbol))
        return d.values() if d else ()

    def orders(
        self,
        venue: str | None = None,
        symbol: str | None = None,
        side: int | None = None,
        price: int | None = None,
        tag: str | None = None,
    ) -> list[WorkingOrder]:
        """Live orders matching every given filter."""
        if venue is not None and symbol is not None:
            pool = self.market_orders(venue, symbol)
            venue = symbol = None
        else:
            pool = self.working.values()
        return [
            o
            for o in pool
            if (venue is None or o.venue == venue)
            and (symbol is None or o.symbol == symbol)
            and (side is None or o.side == side)
            and (price is None or o.price == price)
            and (tag is None or o.tag == tag)
        ]

    # ---- events --------------------------------------------------------------------------------
    def on_event(self, ev: OrderEvent) -> None:
        """Apply one order lifecycle event (subscribe this to Accepted, Fill, Cancelled, Amended,
        Rejected and Done)."""
        if ev.owner != OUR_OWNER:
            return
        handler = self._dispatch.get(type(ev))
        if handler is None:
            return
        o = self.working.get(ev.order_id)
        if o is None or o.venue != ev.venue:
            done = self._done_by_id.get(ev.order_id)
            if o is None and done is None and type(ev.order_id) is int and 0 < ev.order_id <= self._next_id:
                self.forgotten_events += 1
            elif done is None or done.venue != ev.venue:
                self.unknown_events += 1
            elif done.routed:
                self.late_events += 1
            # else: the echo of a refusal the OMS published itself, already accounted for
            return
        o.updated_ts = ev.ts
        handler(o, ev)
        if self.request_times is not None:
            self._answered(ev)

    def _answered(self, ev: OrderEvent) -> None:
        """Match the venue's answer `ev` to the oldest request it answers (request_times)."""
        sent = self._sent_ns.get(ev.order_id)
        if sent is None:
            return
        cls = type(ev)
        want = (
            "new"
            if cls is Accepted or cls is Fill
            else _AMEND
            if cls is Amended
            else _CANCEL
            if cls is Cancelled
            else None
        )
        if type(ev) is Rejected:
            if not ev.reason.startswith(RISK_PREFIX):  # the OMS's own refusal: never reached the venue
                kind, t = sent.pop(0)
                self.request_times.append((kind, t, self._now()))  # type: ignore[union-attr]
        elif want is not None:
            for i, (kind, t) in enumerate(sent):
                if kind == want:
                    del sent[i]
                    self.request_times.append((kind, t, self._now()))  # type: ignore[union-attr]
                    break
        if cls is Done or not sent:
            self._sent_ns.pop(ev.order_id, None)

    def take_request_times(self) -> dict[str, list[list[int]]]:
        """The request -> answer times measured since the last call, by kind: [[sent ns, answer ns], ...]."""
        times = self.request_times
        out: dict[str, list[list[int]]] = {}
        if times:
            for kind, t, a in times:
                out.setdefault(kind, []).append([t, a])
            times.clear()
        return out

    def _on_accepted(self, o: WorkingOrder, ev: Accepted) -> None:
        o.acked = True
        if o.venue_order_id is None:
            self._index_venue_id(o, ev.order_id)
        o.state = _live_state(o)
        # An order acknowledged after the kill switch went on (its cancel may have reached the venue
        # before the order did and been refused) is cancelled now.
        risk = self.risk
        if risk is not None and risk.killed and o.state != PENDING_CANCEL:
            self.cancel(o.order_id)

    def _on_fill(self, o: WorkingOrder, ev: Fill) -> None:
        size = ev.size
        o.acked = True  # a fill proves the venue has the order, whatever the ack stream says
        o.filled += size
        o.leaves = ev.leaves
        o.filled_notional += ev.price * size
        o.fees += ev.fee
        self.fills += 1
        self.filled_lots += size
        o.state = _live_state(o)

    def _on_amended(self, o: WorkingOrder, ev: Amended) -> None:
        o.acked = True
        o.price = ev.price
        o.leaves = ev.size
        o.size = o.filled + ev.size
        r = o.requests
        if r is not None and _AMEND in r:
            r.remove(_AMEND)  # the oldest outstanding amend
            if not r:
                o.requests = None
        if o.requests is None or _AMEND not in o.requests:
            o.amend_price = o.amend_size = None
        o.state = _live_state(o)

    def _on_cancelled(self, o: WorkingOrder, ev: Cancelled) -> None:
        leaves = o.leaves - ev.size
        o.leaves = leaves if leaves > 0 else 0
        o.reason = ev.reason

    def _on_rejected(self, o: WorkingOrder, ev: Rejected) -> None:
        reason = ev.reason
        if reason.startswith(RISK_PREFIX):
            return  # a refused amend the OMS published itself, already accounted for
        self.rejects += 1
        o.reason = reason
        r = o.requests
        if r:
            kind = r.pop(0)
            if not r:
                o.requests = None
            if kind == _CANCEL:
                self.cancel_rejects += 1
                text = f"cancel of order {o.order_id} rejected: {reason}"
            else:
                self.amend_rejects += 1
                text = f"amend of order {o.order_id} rejected: {reason}"
                if o.requests is None or _AMEND not in o.requests:
                    o.amend_price = o.amend_size = None
            o.state = _live_state(o)
        else:
            # A refused new order (its Done follows) or an unsolicited reject: the state is unchanged.
            text = f"order {o.order_id}: {reason}"
        self._note_reject(text)

    def _on_done(self, o: WorkingOrder, ev: Done) -> None:
        o.filled = ev.filled
        o.leaves = 0
        why = ev.reason
        if why == FILLED:
            o.state = FILLED_STATE
            o.reason = why
        elif why == REJECTED:
            o.state = REJECTED_STATE  # keep the Rejected's reason: it says why
        else:
            o.state = CANCELLED_STATE
            o.reason = why
        o.requests = None
        o.amend_price = o.amend_size = None
        self.done += 1
        self._retire(o)

    # ---- internals -----------------------------------------------------------------------------
    def _now(self) -> int:
        return self._clock.now() if self._clock is not None else 0

    def _retire(self, o: WorkingOrder) -> None:
        oid = o.order_id
        self.working.pop(oid, None)
        d = self._by_market.get((o.venue, o.symbol))
        if d is not None:
            d.pop(oid, None)
        if o.venue_order_id is not None:
            self._by_venue_id.pop((o.venue, o.venue_order_id), None)
        self._remember(o)

    def _remember(self, o: WorkingOrder) -> None:
        recent = self.recent
        if len(recent) >= self._recent_size:
            old = recent.popleft()
            if self._done_by_id.get(old.order_id) is old:
                del self._done_by_id[old.order_id]
        recent.append(o)
        self._done_by_id[o.order_id] = o
        now = self._now()
        done_at = self._done_at
        done_at.append((now, o))
        cutoff = now - self._done_grace_ns
        while done_at and (done_at[0][0] < cutoff or len(done_at) > self._recent_size):
            old = done_at.popleft()[1]
            if self._done_by_id.get(old.order_id) is old:
                del self._done_by_id[old.order_id]

    def _index_venue_id(self, o: WorkingOrder, venue_order_id: object) -> None:
        if o.venue_order_id is not None:
            self._by_venue_id.pop((o.venue, o.venue_order_id), None)
        o.venue_order_id = venue_order_id
        try:
            self._by_venue_id[(o.venue, venue_order_id)] = o
        except TypeError:  # an unhashable id from a broken adapter: keep it on the order only
            pass

    def _count_risk(self, rule: str) -> None:
        self.risk_rejects[rule] = self.risk_rejects.get(rule, 0) + 1

    def _note_reject(self, text: str) -> None:
        self.last_reject = text
        self.recent_rejects.append(text)
        cb = self.on_reject
        if cb is not None:
            try:
                cb(text)
            except Exception:  # the UI's callback must not break order handling
                log.exception("on_reject callback failed")

    def _refuse(self, o: WorkingOrder, reason: str, rule: str | None) -> None:
        """An order the OMS or risk refused: it never reaches a venue. Published as Rejected + Done."""
        o.state = REJECTED_STATE
        o.reason = reason
        o.leaves = 0
        self.rejects += 1
        if rule is not None:
            self._count_risk(rule)
        self._remember(o)
        self._note_reject(f"order {o.order_id}: {reason}")
        bus = self._bus
        if bus is not None:
            # Events carry strings: a garbage venue/symbol must not break the recorder or the books.
            venue = o.venue if type(o.venue) is str else repr(o.venue)
            symbol = o.symbol if type(o.symbol) is str else repr(o.symbol)
            now = self._now()
            bus.publish_many(
                [
                    Rejected(now, venue, symbol, o.order_id, reason, OUR_OWNER),
                    Done(now, venue, symbol, o.order_id, 0, REJECTED, OUR_OWNER),
                ]
            )

    def _venue_raised(self, o: WorkingOrder, request: str, exc: Exception) -> None:
        """A venue broke its contract and raised. Undo what we recorded for the request."""
        self.venue_errors += 1
        log.error("venue %s raised on %s of order %d: %r", o.venue, request, o.order_id, exc)
        reason = f"venue error on {request}: {type(exc).__name__}: {exc}"
        if request == "submit":
            if o.order_id in self.working and not o.acked and not o.filled:
                self.sent -= 1
                self.working.pop(o.order_id, None)
                d = self._by_market.get((o.venue, o.symbol))
                if d is not None:
                    d.pop(o.order_id, None)
                o.routed = False
                self._refuse(o, reason, None)
            return
        r = o.requests
        if r and request in r:
            # The venue never took the request: forget it (the newest of its kind).
            del r[len(r) - 1 - r[::-1].index(request)]
            if not r:
                o.requests = None
            if request == _AMEND and (o.requests is None or _AMEND not in o.requests):
                o.amend_price = o.amend_size = None
            if o.order_id in self.working:
                o.state = _live_state(o)
        self.rejects += 1
        o.reason = reason
        self._note_reject(f"order {o.order_id}: {reason}")


__all__ = [
    "OrderManager",
    "WorkingOrder",
    "PENDING_NEW",
    "WORKING",
    "PARTIALLY_FILLED",
    "PENDING_CANCEL",
    "PENDING_AMEND",
    "FILLED_STATE",
    "CANCELLED_STATE",
    "REJECTED_STATE",
    "LIVE_STATES",
    "DONE_STATES",
    "RISK_PREFIX",
]

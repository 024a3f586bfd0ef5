"""The market maker's order management (a part of `MarketMaker`, lobterm/trading/market_maker.py): our
quotes followed through their lifecycle events (`_apply`) and the only places that talk to the OMS
(`_send_new`, `_send_amend`, `_send_cancel`, and `_send` / `_pull` that order them). The requote cycle
that decides what to send stays in `MarketMaker`."""

from __future__ import annotations

import time
from typing import Any

from lobterm.engine.events import (
    BUY,
    LIMIT,
    POST_ONLY,
    STP_CANCEL_RESTING,
    Accepted,
    Amended,
    Done,
    Fill,
    OrderEvent,
    Rejected,
)
from lobterm.trading.quote_diff import AMENDING, CANCELLING, SENT, WORKING, QuoteActions, WorkingQuote
from lobterm.trading.quoting import QuoteParams

__all__ = ["QuoteOrders"]


class QuoteOrders:
    """`MarketMaker`'s order management; the attributes below are set by `MarketMaker.__init__`."""

    venue: str
    symbol: str
    oms: Any
    clock: Any
    params: QuoteParams
    reason: str
    version: int
    quotes_sent: int
    amends_sent: int
    cancels_sent: int
    fills: int
    filled_lots: int
    rejects: int
    send_errors: int
    pulls: int
    lost_quotes: int
    last_reject: str | None
    last_tick_to_quote_ns: int | None
    _quotes: dict[int, WorkingQuote]
    _early: list[OrderEvent]
    _new_kwargs: dict[str, Any]
    _dirty: bool
    _again: bool
    _sending: bool
    _backoff_until: int
    _last_request_ns: int
    _trigger_pc: int

    # ---- our quotes' lifecycle -------------------------------------------------------------------
    def _apply(self, q: WorkingQuote, ev: Any) -> None:
        """Follow one lifecycle event of our quote `q`."""
        cls = ev.__class__
        self.version += 1
        if cls is Accepted:
            if q.state != SENT or ev.price != q.price or ev.size != q.size:
                self._dirty = True
            q.price = ev.price
            q.size = ev.size
            q.placed_ns = self.clock.now()
            if q.state == SENT:
                q.state = WORKING
            return
        if cls is Amended:
            if q.state != AMENDING or ev.price != q.want_price or ev.size != q.want_size:
                self._dirty = True
            if ev.price != q.price or not ev.kept_priority:
                q.placed_ns = self.clock.now()
            q.price = ev.price
            q.size = ev.size
            if q.state == AMENDING:
                q.state = WORKING
            return
        self._dirty = True  # fills, rejections, cancels and done orders change what the ladder needs
        if cls is Fill:
            self.fills += 1
            self.filled_lots += ev.size
            q.size = ev.leaves
        elif cls is Rejected:
            self.rejects += 1
            q.rejects += 1
            self.last_reject = f"order {ev.order_id}: {ev.reason}"
            self._backoff_until = self.clock.now() + self.params.reject_backoff_ms * 1_000_000
            if q.state == AMENDING or q.state == CANCELLING:
                q.state = WORKING  # the request was refused; the order lives on as it was
                if not self._oms_knows(q.order_id):  # refused because the venue no longer has it
                    self._forget(q)
        elif cls is Done:
            self._quotes.pop(q.order_id, None)

    # ---- sending ---------------------------------------------------------------------------------
    def _send(self, actions: QuoteActions, backoff: bool) -> int:
        sent = 0
        quotes = self._quotes
        for oid in actions.cancels:
            q = quotes.get(oid)
            if q is not None and q.state != CANCELLING:
                sent += self._send_cancel(q)
        if not backoff:
            away: list[tuple[WorkingQuote, int, int]] = []
            toward: list[tuple[WorkingQuote, int, int]] = []
            for a in actions.amends:
                q = quotes.get(a[0])
                if q is None or q.busy or q.state == CANCELLING:
                    continue
                moves_away = a[2] <= q.price if a[1] == BUY else a[2] >= q.price
                (away if moves_away else toward).append((q, a[2], a[3]))
            clock = self.clock
            for q, price, size in away + toward:
                if clock.now() < self._backoff_until:  # refused just now (a synchronous venue)
                    break
                sent += self._send_amend(q, price, size)
            for side, price, size in actions.news:
                if clock.now() < self._backoff_until:
                    break
                sent += self._send_new(side, price, size)
        return sent

    def _pull(self, reason: str) -> int:
        self._dirty = True
        if reason != self.reason:
            self.reason = reason
            self.version += 1
        sent = 0
        for q in list(self._quotes.values()):
            if q.state != CANCELLING:
                sent += self._send_cancel(q)
        if sent:
            self.pulls += 1
        return sent

    # ---- the only three places that talk to the OMS ---------------------------------------------
    def _latency(self) -> None:
        self._last_request_ns = self.clock.now()
        if self._trigger_pc:
            self.last_tick_to_quote_ns = time.perf_counter_ns() - self._trigger_pc
            self._trigger_pc = 0

    def _send_new(self, side: int, price: int, size: int) -> int:
        self._latency()
        order_type = POST_ONLY if self.params.post_only else LIMIT
        self._sending = True
        try:
            oid = self.oms.new_order(
                self.venue, self.symbol, side, price, size, order_type, STP_CANCEL_RESTING, **self._new_kwargs
            )
        except Exception as exc:  # an OMS that raises must not take the kernel's bus handler down
            self._send_failed(f"new order: {type(exc).__name__}: {exc}")
            return 0
        finally:
            self._sending = False
        early, self._early = self._early, []
        if oid.__class__ is not int:
            self._send_failed(f"new order: the OMS returned {oid!r}, not an order id")
            return 0
        q = WorkingQuote(oid, side, price, size, SENT, self.clock.now())
        self._quotes[oid] = q
        self.quotes_sent += 1
        self.version += 1
        for ev in early:  # the venue answered before new_order returned (bus not delivering)
            if ev.order_id == oid and oid in self._quotes:
                self._apply(q, ev)
                if ev.__class__ is Fill or ev.__class__ is Done:
                    self._again = True
        return 1

    def _send_amend(self, q: WorkingQuote, price: int, size: int) -> int:
        if price == q.price and size == q.size:
            return 0
        self._latency()
        # Mark first: the answer can arrive before amend() returns when the bus is idle.
        q.state, q.want_price, q.want_size = AMENDING, price, size
        try:
            ok = self.oms.amend(
                q.order_id, price=price if price != q.price else None, size=size if size != q.size else None
            )
        except Exception as exc:
            q.state = WORKING
            self._send_failed(f"amend {q.order_id}: {type(exc).__name__}: {exc}")
            return 0
        if not ok:  # refused at once (risk, nothing to change) or the order is gone
            if self._oms_knows(q.order_id):
                if q.state == AMENDING:
                    q.state = WORKING
                self._send_failed(f"amend {q.order_id} refused by the OMS")
            else:
                self._forget(q)
            return 0
        self.amends_sent += 1
        self.version += 1
        return 1

    def _send_cancel(self, q: WorkingQuote) -> int:
        self._latency()
        prev = q.state
        q.state = CANCELLING
        try:
            ok = self.oms.cancel(q.order_id)
        except Exception as exc:
            q.state = prev
            self._send_failed(f"cancel {q.order_id}: {type(exc).__name__}: {exc}")
            return 0
        if not ok:  # a cancel is already outstanding, or the order is gone
            if not self._oms_knows(q.order_id):
                self._forget(q)
            return 0
        self.cancels_sent += 1
        self.version += 1
        return 1

    def _send_failed(self, what: str) -> None:
        self._dirty = True
        self.send_errors += 1
        self.last_reject = what
        self._backoff_until = self.clock.now() + self.params.reject_backoff_ms * 1_000_000

    def _oms_knows(self, order_id: int) -> bool:
        working = getattr(self.oms, "working", None)
        return True if working is None else order_id in working

    def _forget(self, q: WorkingQuote) -> None:
        """The OMS no longer knows this order: it is gone and we missed its Done."""
        self._dirty = True
        if self._quotes.pop(q.order_id, None) is not None:
            self.lost_quotes += 1
            self.version += 1

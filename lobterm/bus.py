"""The event bus: typed publish/subscribe on the kernel's loop, synchronous and strictly in order.

`publish` delivers an event to every subscriber of its type, in subscription order, before the next
event is delivered. An event published by a subscriber while another is being delivered (the market
maker reacting to a fill, say) is queued and delivered after it: every subscriber sees every event in
the same global order, which is what makes a replay give the same result as the live run.

A subscriber that raises does not stop delivery to the others: the error is counted, kept (the last
few) and logged, so that one broken panel or strategy cannot take the kernel down.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import Any

from lobterm.engine.bounds import RECENT_ERRORS

log = logging.getLogger(__name__)

Handler = Callable[[Any], object]  # what a handler returns is ignored


class Bus:
    __slots__ = ("_by_type", "_any", "_queue", "_delivering", "published", "errors", "last_errors")

    def __init__(self) -> None:
        self._by_type: dict[type, list[Handler]] = {}
        self._any: list[Handler] = []
        self._queue: deque = deque()
        self._delivering = False
        self.published = 0
        self.errors = 0
        self.last_errors: deque[str] = deque(maxlen=RECENT_ERRORS)

    @property
    def pending(self) -> deque:
        """Events queued behind the one being delivered (read-only: a subscriber that wants to act once
        per batch, like the market maker, waits until this is empty)."""
        return self._queue

    def subscribe(self, event_type: type | tuple[type, ...], handler: Handler) -> None:
        """Deliver events of `event_type` (exact type, or each of a tuple of types) to `handler`."""
        types = event_type if isinstance(event_type, tuple) else (event_type,)
        for t in types:
            self._by_type.setdefault(t, list(self._any)).append(handler)

    def subscribe_all(self, handler: Handler) -> None:
        """Deliver every event to `handler` (the recorder, counters)."""
        self._any.append(handler)
        for handlers in self._by_type.values():
            handlers.append(handler)

    def unsubscribe(self, handler: Handler) -> None:
        if handler in self._any:
            self._any.remove(handler)
        for handlers in self._by_type.values():
            while handler in handlers:
                handlers.remove(handler)

    def publish(self, event: Any) -> None:
        self._queue.append(event)
        if not self._delivering:
            self._drain()

    def publish_many(self, events: list) -> None:
        self._queue.extend(events)
        if not self._delivering:
            self._drain()

    def _drain(self) -> None:
        self._delivering = True
        queue = self._queue
        by_type = self._by_type
        any_handlers = self._any
        try:
            while queue:
                ev = queue.popleft()
                self.published += 1
                for handler in by_type.get(type(ev), any_handlers):
                    try:
                        handler(ev)
                    except Exception as exc:  # one subscriber must not stop the others
                        self.errors += 1
                        name = getattr(handler, "__qualname__", repr(handler))
                        self.last_errors.append(f"{name}: {type(exc).__name__}: {exc}")
                        log.exception("bus subscriber %s failed on %s", name, type(ev).__name__)
        finally:
            self._delivering = False

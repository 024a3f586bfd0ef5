"""What a ccxt failure means to a trader (`VenueError` with a kind), and the venue's log.

Everything the ccxt venue logs goes to the `lobterm.venues` logger, whose `SecretsFilter` removes the
venue's key, secret and password and every signed URL's signature before any handler sees a record.
ccxt's own loggers get the same filter and never log below INFO (at DEBUG it dumps request headers).
asyncio's "Future exception was never retrieved" for a ccxt future (a closed socket's pending watch)
is routed here at DEBUG by `NoiseHandler` instead of stderr.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import ccxt

from lobterm.venues.resilience import SECRETS, scrub

__all__ = ["VenueError", "classify_error", "log", "SECRETS", "NoiseHandler", "is_ccxt_noise"]

log = logging.getLogger("lobterm.venues")
log.addFilter(SECRETS)
logging.getLogger("ccxt").setLevel(logging.INFO)
for _name in ("ccxt", "ccxt.base.exchange", "ccxt.async_support.base.exchange"):
    logging.getLogger(_name).addFilter(SECRETS)


class VenueError(ValueError):
    """A venue failure with a message safe to show and log (secrets scrubbed). `kind` is one of
    network, rate_limit, auth, invalid_order, insufficient_funds, order_not_found, closed, other."""

    def __init__(self, kind: str, message: str) -> None:
        self.kind = kind
        super().__init__(message)


def classify_error(exc: BaseException) -> str:
    """What kind of failure a ccxt exception is (the order of the checks matters: subclasses first)."""
    if isinstance(exc, (ccxt.RateLimitExceeded, ccxt.DDoSProtection)):
        return "rate_limit"
    if isinstance(exc, (ccxt.AuthenticationError, ccxt.PermissionDenied)):
        return "auth"
    if isinstance(exc, ccxt.InsufficientFunds):
        return "insufficient_funds"
    if isinstance(exc, ccxt.OrderNotFound):
        return "order_not_found"
    if isinstance(exc, ccxt.InvalidOrder):
        return "invalid_order"
    if isinstance(exc, (ccxt.NetworkError, OSError, asyncio.TimeoutError)):
        return "network"
    if isinstance(exc, ccxt.ExchangeClosedByUser):
        return "closed"
    return "other"


def venue_error(exc: BaseException, what: str, secrets: Any = ()) -> VenueError:
    """`exc` as a VenueError naming `what` failed, scrubbed of secrets and signatures, at most 300
    characters of the venue's words."""
    msg = scrub(str(exc), secrets) or type(exc).__name__
    return VenueError(classify_error(exc), f"{what}: {msg[:300]}")


def is_ccxt_noise(context: dict[str, Any]) -> bool:
    """An asyncio exception-handler context about a ccxt error nobody awaited (a websocket future
    rejected after its watcher moved on): expected during an outage, not worth stderr."""
    exc = context.get("exception")
    if isinstance(exc, (ccxt.BaseError, asyncio.CancelledError, ConnectionError)):
        return True
    text = str(context.get("message", ""))
    return "ccxt" in text or "binance" in text.lower()


class NoiseHandler:
    """An event loop exception handler that sends ccxt noise to the venue log (DEBUG, scrubbed, counted)
    and everything else to the handler that was there before. Installed by a started ccxt venue,
    removed again by the last one to stop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.previous = loop.get_exception_handler()
        self.users = 0
        self.swallowed = 0

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if is_ccxt_noise(context):
            self.swallowed += 1
            exc = context.get("exception")
            log.debug("asyncio: %s: %s", context.get("message", ""), f"{type(exc).__name__}: {exc}")
            return
        if self.previous is not None:
            self.previous(loop, context)
        else:
            loop.default_exception_handler(context)

    @classmethod
    def install(cls, loop: asyncio.AbstractEventLoop) -> NoiseHandler:
        current = loop.get_exception_handler()
        handler = current if isinstance(current, NoiseHandler) else cls(loop)
        if handler is not current:
            loop.set_exception_handler(handler)
        handler.users += 1
        return handler

    def uninstall(self) -> None:
        self.users -= 1
        loop, previous = self.loop, self.previous
        if self.users <= 0 and loop.get_exception_handler() is self and not loop.is_closed():
            loop.set_exception_handler(previous)

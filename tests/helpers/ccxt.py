"""The ccxt venue's tests' shared parts: the loopback's keys, a seeded book, a venue config for it, a polling
wait and `Run` (a started kernel on the loopback venue and what its bus delivered)."""

from __future__ import annotations

import asyncio
import time

from binance_loopback import BinanceLoopback

from lobterm.engine.events import BUY, SELL, Accepted, Cancelled, Done, Fill, Rejected, VenueStatus
from lobterm.venues.settings import venue_from_dict

KEY = "lobKEY-7f3a9c2e5b1d8f40"


SECRET = "lobSECRET-0d9e8c7b6a5f4e3d2c1b"


async def wait_for(cond, timeout: float, what: str) -> float:
    """Poll `cond` until true; returns the seconds it took. Fails naming `what` on timeout."""
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.01)
    return time.monotonic() - t0


def seed_book(srv: BinanceLoopback) -> None:
    for i in range(8):
        srv.add_liquidity(BUY, f"{65000 - i * 0.5:.2f}", f"{0.5 + i / 10:.1f}")
        srv.add_liquidity(SELL, f"{65001 + i * 0.5:.2f}", f"{0.4 + i / 10:.1f}")


def venue_config(srv: BinanceLoopback, name: str = "binance", keys: bool = True, **extra):
    values = {**srv.venue_options(), "symbols": ["BTC/USDT"], **extra}
    if keys:
        values.update(api_key=KEY, secret=SECRET)
    return venue_from_dict(name, values)


class Run:
    """A started kernel on the loopback venue, and everything the bus delivered."""

    def __init__(self, kernel):
        self.kernel = kernel
        self.market = kernel.default_market
        self.venue = kernel.venues[self.market.venue]
        self.live = getattr(self.venue, "data", self.venue)
        self.events = []
        self.states = []
        kernel.bus.subscribe((Accepted, Fill, Cancelled, Done, Rejected), self.events.append)
        kernel.bus.subscribe(VenueStatus, lambda ev: self.states.append(ev.state))

    def synced_with(self, srv: BinanceLoopback) -> bool:
        l2 = self.market.l2
        bids, asks = srv.levels()
        return (
            l2.valid
            and self.live.book_nonce.get(self.market.symbol) == srv.update_id
            and l2.depth(BUY, 1000) == bids
            and l2.depth(SELL, 1000) == asks
        )

    def order_events(self, oid: int) -> list:
        return [type(e).__name__ for e in self.events if e.order_id == oid]

"""The dead-receive-loop detector (lobterm/venues/ccxt/streams.py `watchdog_tick`): a frame that has just
arrived on a stream quiet for longer than `DEAD_LOOP_S` (a linear swap's trades every second, a quiet
altcoin) is not a dead loop; a frame left unread for `DEAD_LOOP_S` is. Seen live on the USD-M loopback
with trades every 0.5 s: a resubscription every 20-30 s under load, before this rule.

The client is a stand-in for ccxt's websocket client (its `buffer` is a property over a live socket):
only the two figures the watchdog reads, `buffer` and `last_message_at`, and a close."""

from __future__ import annotations

import time

from lobterm.venues.ccxt.streams import DEAD_LOOP_S
from lobterm.venues.ccxt.venue import CcxtVenue
from lobterm.venues.settings import venue_from_dict


class QuietClient:
    def __init__(self, last_ms: int) -> None:
        self.buffer: list[bytes] = []
        self.last_message_at = last_ms
        self.subscriptions = {"trades:BTC/USDT:USDT": True}
        self.futures: dict = {}
        self.error = None
        self.closed = False

    async def close(self) -> None:
        self.closed = True


async def test_a_frame_that_just_arrived_on_a_quiet_stream_is_not_a_dead_loop():
    venue = CcxtVenue(venue_from_dict("usdm", {"exchange": "binanceusdm", "symbols": ["BTC/USDT:USDT"]}))
    venue.exchange = venue.exchange or _exchange(venue)
    venue.running = True
    now = int(time.time() * 1000)
    quiet = QuietClient(now - 900)  # the last message was handled 0.9 s ago: a quiet stream
    venue.exchange.clients = {"ws://x/public/ws/1": quiet}
    streams = venue.streams
    quiet.buffer.append(b"{}")  # a frame has just arrived, not read yet
    streams.watchdog_tick()
    assert venue.stats["dead_loops"] == 0  # the clock starts now
    quiet.buffer.clear()  # the receive loop reads it...
    quiet.last_message_at = int(time.time() * 1000)
    streams.watchdog_tick()
    assert venue.stats["dead_loops"] == 0 and "ws://x/public/ws/1" not in streams.unread
    # ...but a frame left unread for DEAD_LOOP_S while nothing is handled is a dead loop.
    quiet.last_message_at -= 2000
    quiet.buffer.append(b"\x00garbage")
    streams.watchdog_tick()
    assert venue.stats["dead_loops"] == 0
    streams.unread["ws://x/public/ws/1"] = (
        quiet,
        quiet.last_message_at,
        int(time.time() * 1000) - 1000 * DEAD_LOOP_S - 50,
    )
    streams.watchdog_tick()
    assert venue.stats["dead_loops"] == 1 and "ws://x/public/ws/1" not in venue.exchange.clients
    for t in list(venue.side_tasks):
        await t
    assert quiet.closed
    venue.running = False
    await venue.exchange.close()


def _exchange(venue: CcxtVenue):
    from lobterm.venues.ccxt.markets import make_exchange

    return make_exchange(venue.config)

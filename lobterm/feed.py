"""A local, read-only WebSocket feed of the kernel: the unified book, trades, our fills, venue status.

Off by default; when on (`[feed] enabled = true`) it listens on 127.0.0.1 unless `host` says
otherwise. Clients send JSON requests and receive JSON messages; prices and sizes are exact decimal
strings (never floats).

Requests (anything else gets an `{"type": "error", ...}` reply and is counted in `bad_messages`):

    {"op": "subscribe",   "channel": "book" | "trades" | "fills" | "status", "venue": "sim", "symbol": "BTC/USDT"}
    {"op": "unsubscribe", "channel": ..., "venue": ..., "symbol": ...}
    {"op": "ping"}

`venue` and `symbol` default to the kernel's first market (status is per kernel, they are ignored).

The book channel sends the unified book's top `top_n` levels a side, each level
`[price, size, our_size]` (size is everybody's, ours included): first
`{"type": "book", "op": "snapshot", "seq": s, "bids": [...best first], "asks": [...]}`, then
`{"type": "book", "op": "delta", "seq": s+1, "bids": [...], "asks": [...]}` with only the levels that
changed, a removed level sent with size "0". Sequence numbers are contiguous per book: a client that
applies the snapshot and then every delta in order holds exactly the kernel's top N at that seq.
Book changes are coalesced: the feed compares the book's version every `interval_ms`.

Other messages: `{"type": "trade", ...}` for every venue trade, `{"type": "fill", ...}` for our fills,
`{"type": "status", ...}` for venue status changes and book gaps (and the current state of every
venue on subscribing), `{"type": "subscribed" | "unsubscribed" | "pong", ...}` answers.

Token: with a token configured (`[feed] token` or LOBTERM_FEED_TOKEN), a client must send it as
`Authorization: Bearer <token>` or `?token=<token>`; a bad or missing one closes the connection with
1008 (policy violation). The token is never logged.

The kernel never waits for a client: bus handlers and the book flush only put messages on each
client's bounded queue (`queue_size`); each client's own task does the socket writes, through a
bounded socket buffer. A client whose queue is full is dropped (the connection is cut: it would not
read a close frame queued behind everything else) and counted in `dropped_slow`.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import socket
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from lobterm.engine.events import BUY, OUR_OWNER, SELL, SIDE_NAMES, BookGap, Fill, Trade, VenueStatus

if TYPE_CHECKING:
    from lobterm.config import FeedConfig
    from lobterm.kernel import Kernel, Market

log = logging.getLogger(__name__)

__all__ = ["BookFeed", "TOKEN_ENV", "CLOSE_POLICY", "CLOSE_SLOW"]

TOKEN_ENV = "LOBTERM_FEED_TOKEN"
CLOSE_POLICY = 1008  # policy violation: bad or missing token
CLOSE_SLOW = 1013  # try again later: too many clients
MAX_CLIENTS = 64
MAX_REQUEST_BYTES = 4096
SEND_BUFFER_BYTES = 256 * 1024
CHANNELS = ("book", "trades", "fills", "status")


class _Client:
    __slots__ = ("ws", "queue", "dropped", "subs", "writer")

    def __init__(self, ws: ServerConnection, queue_size: int) -> None:
        self.ws = ws
        self.queue: asyncio.Queue[str] = asyncio.Queue(queue_size)
        self.dropped = False
        self.subs: set[tuple[str, str, str]] = set()
        self.writer: asyncio.Task | None = None


class _BookStream:
    """The top N of one market's unified book as last published, and who receives it."""

    __slots__ = ("market", "seq", "version", "levels", "clients")

    def __init__(self, market: Market) -> None:
        self.market = market
        self.seq = 0
        self.version = -1
        self.levels: tuple[dict[int, tuple[int, int]], dict[int, tuple[int, int]]] = ({}, {})
        self.clients: set[_Client] = set()


class BookFeed:
    """The WebSocket feed of `kernel`. `await start()` listens; `await stop()` closes everything."""

    def __init__(self, kernel: Kernel, config: FeedConfig | None = None) -> None:
        from lobterm.config import FeedConfig

        self.kernel = kernel
        self.config = config or FeedConfig()
        self._token = self.config.token or os.environ.get(TOKEN_ENV, "")
        self.clients: set[_Client] = set()
        self._books: dict[tuple[str, str], _BookStream] = {}
        # (channel, venue, symbol) -> clients, for the event channels; status uses ("status", "", "").
        self._subs: dict[tuple[str, str, str], set[_Client]] = {}
        self.server: Any = None
        self.address: tuple[str, int] | None = None
        self._flush_task: asyncio.Task | None = None
        # Counters.
        self.connections = 0
        self.auth_failures = 0
        self.bad_messages = 0
        self.dropped_slow = 0
        self.refused_full = 0
        self.messages_queued = 0

    @property
    def token_required(self) -> bool:
        return bool(self._token)

    # ---- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> tuple[str, int]:
        if self.server is not None:
            return self.address  # type: ignore[return-value]
        c = self.config
        self.server = await serve(
            self._handle,
            c.host,
            c.port,
            max_size=MAX_REQUEST_BYTES,
            max_queue=16,
            close_timeout=1.0,
            ping_interval=20,
            ping_timeout=20,
        )
        sock = next(iter(self.server.sockets))
        self.address = sock.getsockname()[:2]
        bus = self.kernel.bus
        bus.subscribe(Trade, self._on_trade)
        bus.subscribe(Fill, self._on_fill)
        bus.subscribe((VenueStatus, BookGap), self._on_status)
        self._flush_task = asyncio.get_running_loop().create_task(self._flush_loop(), name="feed-flush")
        log.info(
            "feed listening on ws://%s:%d/ (token %s)",
            *self.address,
            "required" if self._token else "not required",
        )
        return self.address

    async def stop(self) -> None:
        if self._flush_task is not None:
            self._flush_task.cancel()
            self._flush_task = None
        if self.server is not None:
            bus = self.kernel.bus
            for handler in (self._on_trade, self._on_fill, self._on_status):
                bus.unsubscribe(handler)
            self.server.close()
            await self.server.wait_closed()
            self.server = None

    # ---- connections ----------------------------------------------------------------------------
    async def _handle(self, ws: ServerConnection) -> None:
        if self._token and not self._authorized(ws):
            self.auth_failures += 1
            await ws.close(CLOSE_POLICY, "bad or missing token")
            return
        if len(self.clients) >= MAX_CLIENTS:
            self.refused_full += 1
            await ws.close(CLOSE_SLOW, f"too many clients (at most {MAX_CLIENTS})")
            return
        sock = ws.transport.get_extra_info("socket")
        if (
            sock is not None
        ):  # a bounded kernel buffer: a stuck client fills it, then its queue, then is dropped
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
        client = _Client(ws, self.config.queue_size)
        self.clients.add(client)
        self.connections += 1
        client.writer = asyncio.get_running_loop().create_task(self._write(client), name="feed-writer")
        try:
            async for raw in ws:
                if client.dropped:
                    break
                self._on_request(client, raw)
        except ConnectionClosed:
            pass
        finally:
            self._forget(client)
            if client.writer is not None:
                client.writer.cancel()

    def _authorized(self, ws: ServerConnection) -> bool:
        given = ""
        auth = ws.request.headers.get("Authorization", "") if ws.request is not None else ""
        if auth.startswith("Bearer "):
            given = auth[len("Bearer ") :].strip()
        elif ws.request is not None:
            given = (parse_qs(urlsplit(ws.request.path).query).get("token") or [""])[0]
        return hmac.compare_digest(given.encode(), self._token.encode())

    async def _write(self, client: _Client) -> None:
        queue, ws = client.queue, client.ws
        try:
            while True:
                await ws.send(await queue.get())
        except ConnectionClosed:
            pass

    def _forget(self, client: _Client) -> None:
        self.clients.discard(client)
        for sub in client.subs:
            if sub[0] == "book":
                stream = self._books.get(sub[1:])
                if stream is not None:
                    stream.clients.discard(client)
            else:
                s = self._subs.get(sub)
                if s is not None:
                    s.discard(client)
        client.subs.clear()

    def _send(self, client: _Client, text: str) -> None:
        """Queue a message for a client; never waits. A client whose queue is full is dropped."""
        if client.dropped:
            return
        try:
            client.queue.put_nowait(text)
        except asyncio.QueueFull:
            self._drop(client)
            return
        self.messages_queued += 1

    def _drop(self, client: _Client) -> None:
        client.dropped = True
        self.dropped_slow += 1
        self._forget(client)
        if client.writer is not None:
            client.writer.cancel()
        log.warning("feed: dropped a client %d messages behind", client.queue.qsize())
        # A client this far behind would not read a close frame queued behind everything else: the
        # connection is cut at once (its handler then ends by itself).
        client.ws.transport.abort()

    # ---- requests -------------------------------------------------------------------------------
    def _on_request(self, client: _Client, raw: str | bytes) -> None:
        try:
            if isinstance(raw, bytes):
                raise ValueError("send JSON text, not binary frames")
            req = json.loads(raw)
            if not isinstance(req, dict):
                raise ValueError("a request is a JSON object")
            op = req.get("op")
            if op == "ping":
                self._send(client, json.dumps({"type": "pong"}))
                return
            if op not in ("subscribe", "unsubscribe"):
                raise ValueError(
                    f"read-only feed: unknown op {str(op)[:40]!r} (subscribe, unsubscribe, ping)"
                )
            channel = req.get("channel")
            if channel not in CHANNELS:
                raise ValueError(f"unknown channel {str(channel)[:40]!r} (one of {', '.join(CHANNELS)})")
            key = self._market_key(req) if channel != "status" else ("", "")
        except ValueError as exc:  # json.JSONDecodeError is one
            self.bad_messages += 1
            self._send(client, json.dumps({"type": "error", "error": str(exc)[:200]}))
            return
        sub = (channel, *key)
        if op == "unsubscribe":
            if sub in client.subs:
                self._forget_one(client, sub)
            self._send(
                client,
                json.dumps({"type": "unsubscribed", "channel": channel, "venue": key[0], "symbol": key[1]}),
            )
            return
        if sub in client.subs:
            self._send(
                client,
                json.dumps(
                    {
                        "type": "subscribed",
                        "channel": channel,
                        "venue": key[0],
                        "symbol": key[1],
                        "already": True,
                    }
                ),
            )
            return
        client.subs.add(sub)
        self._send(
            client, json.dumps({"type": "subscribed", "channel": channel, "venue": key[0], "symbol": key[1]})
        )
        if channel == "book":
            stream = self._books.get(key)
            if stream is None:
                stream = self._books[key] = _BookStream(self.kernel.markets[key])
            self._flush_stream(stream)  # bring the image up to date (existing clients get the delta)
            stream.clients.add(client)
            self._send(client, self._snapshot(stream))
            return
        self._subs.setdefault(sub, set()).add(client)
        if channel == "status":
            k = self.kernel
            for venue, state in k.venue_state.items():
                self._send(
                    client,
                    json.dumps(
                        {
                            "type": "status",
                            "venue": venue,
                            "state": state,
                            "detail": k.venue_detail.get(venue, ""),
                            "ts": k.clock.now(),
                        }
                    ),
                )

    def _forget_one(self, client: _Client, sub: tuple[str, str, str]) -> None:
        client.subs.discard(sub)
        if sub[0] == "book":
            stream = self._books.get(sub[1:])
            if stream is not None:
                stream.clients.discard(client)
        else:
            self._subs.get(sub, set()).discard(client)

    def _market_key(self, req: dict) -> tuple[str, str]:
        default = self.kernel.default_market
        venue = req.get("venue", default.venue)
        symbol = req.get("symbol", default.symbol)
        if (venue, symbol) not in self.kernel.markets:
            known = ", ".join(f"{v} {s}" for v, s in self.kernel.markets)
            raise ValueError(f"no market {str(venue)[:40]!r} {str(symbol)[:40]!r} (known: {known})")
        return venue, symbol

    # ---- the book -------------------------------------------------------------------------------
    async def _flush_loop(self) -> None:
        interval = self.config.interval_ms / 1000
        while True:
            await asyncio.sleep(interval)
            self.flush()

    def flush(self) -> None:
        """Send what changed in every subscribed book since the last flush."""
        for stream in self._books.values():
            if stream.clients:
                self._flush_stream(stream)

    def _top(self, market: Market) -> tuple[dict[int, tuple[int, int]], dict[int, tuple[int, int]]]:
        u = market.unified
        n = self.config.top_n
        return tuple(
            {p: (size, u.our_size(side, p)) for p, size in u.depth(side, n)}  # type: ignore[return-value]
            for side in (BUY, SELL)
        )

    def _flush_stream(self, stream: _BookStream) -> None:
        market = stream.market
        version = market.unified.version
        if version == stream.version:
            return
        stream.version = version
        new = self._top(market)
        inst = market.instrument
        fp, fs = inst.format_price, inst.format_size
        changes = []
        for side in (BUY, SELL):
            old, now = stream.levels[side], new[side]
            side_changes = [[fp(p), fs(v[0]), fs(v[1])] for p, v in now.items() if old.get(p) != v]
            side_changes += [[fp(p), "0", "0"] for p in old if p not in now]
            changes.append(side_changes)
        stream.levels = new
        if not changes[0] and not changes[1]:
            return
        stream.seq += 1
        if stream.clients:
            text = json.dumps(
                {
                    "type": "book",
                    "op": "delta",
                    "venue": market.venue,
                    "symbol": market.symbol,
                    "seq": stream.seq,
                    "bids": changes[0],
                    "asks": changes[1],
                }
            )
            for client in list(stream.clients):
                self._send(client, text)

    def _snapshot(self, stream: _BookStream) -> str:
        market = stream.market
        inst = market.instrument
        fp, fs = inst.format_price, inst.format_size
        bids, asks = stream.levels
        return json.dumps(
            {
                "type": "book",
                "op": "snapshot",
                "venue": market.venue,
                "symbol": market.symbol,
                "seq": stream.seq,
                "bids": [[fp(p), fs(v[0]), fs(v[1])] for p, v in sorted(bids.items(), reverse=True)],
                "asks": [[fp(p), fs(v[0]), fs(v[1])] for p, v in sorted(asks.items())],
            }
        )

    # ---- bus handlers (only queue) --------------------------------------------------------------
    def _on_trade(self, ev: Trade) -> None:
        clients = self._subs.get(("trades", ev.venue, ev.symbol))
        if not clients:
            return
        inst = self.kernel.markets[(ev.venue, ev.symbol)].instrument
        text = json.dumps(
            {
                "type": "trade",
                "venue": ev.venue,
                "symbol": ev.symbol,
                "ts": ev.ts,
                "price": inst.format_price(ev.price),
                "size": inst.format_size(ev.size),
                "aggressor": SIDE_NAMES[ev.aggressor],
                "trade_id": ev.trade_id,
            }
        )
        for client in list(clients):
            self._send(client, text)

    def _on_fill(self, ev: Fill) -> None:
        if ev.owner != OUR_OWNER:
            return
        clients = self._subs.get(("fills", ev.venue, ev.symbol))
        if not clients:
            return
        inst = self.kernel.markets[(ev.venue, ev.symbol)].instrument
        text = json.dumps(
            {
                "type": "fill",
                "venue": ev.venue,
                "symbol": ev.symbol,
                "ts": ev.ts,
                "order_id": ev.order_id,
                "side": SIDE_NAMES[ev.side],
                "price": inst.format_price(ev.price),
                "size": inst.format_size(ev.size),
                "leaves": inst.format_size(ev.leaves),
                "liquidity": "maker" if ev.is_maker else "taker",
                "fee": str(inst.fee(ev.fee)),
                "trade_id": ev.trade_id,
            }
        )
        for client in list(clients):
            self._send(client, text)

    def _on_status(self, ev: VenueStatus | BookGap) -> None:
        clients = self._subs.get(("status", "", ""))
        if not clients:
            return
        if isinstance(ev, BookGap):
            msg = {
                "type": "status",
                "venue": ev.venue,
                "symbol": ev.symbol,
                "state": "gap",
                "detail": f"sequence gap: expected {ev.expected}, got {ev.got}",
                "ts": ev.ts,
            }
        else:
            msg = {"type": "status", "venue": ev.venue, "state": ev.state, "detail": ev.detail, "ts": ev.ts}
        text = json.dumps(msg)
        for client in list(clients):
            self._send(client, text)

    def stats(self) -> dict[str, int]:
        return {
            "clients": len(self.clients),
            "connections": self.connections,
            "auth_failures": self.auth_failures,
            "bad_messages": self.bad_messages,
            "dropped_slow": self.dropped_slow,
            "refused_full": self.refused_full,
            "messages_queued": self.messages_queued,
        }

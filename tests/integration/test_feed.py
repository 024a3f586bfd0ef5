"""The WebSocket feed against the real kernel and sim venue, with real websockets clients on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import statistics
import time

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from lobterm.assemble import build_sim_kernel
from lobterm.config import Config, FeedConfig, quote_params
from lobterm.engine.events import BUY, SELL
from lobterm.feed import CLOSE_POLICY
from lobterm.services import start_feed


def make_kernel(**feed):
    cfg = Config()
    cfg.feed = FeedConfig(enabled=True, port=0, **{"interval_ms": 10, **feed})
    kernel, venue = build_sim_kernel(cfg, virtual=True)
    mm = kernel.add_market_maker(quote_params(cfg))
    venue.open()
    mm.resume()
    return kernel, venue, cfg


async def wait_until(condition, timeout: float = 5.0, what: str = "") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or condition}")
        await asyncio.sleep(0.005)


def expected_top(kernel, n: int) -> tuple[list, list]:
    """The kernel's unified top N, formatted the way the feed sends it."""
    m = kernel.default_market
    u, inst = m.unified, m.instrument
    return tuple(
        [
            [inst.format_price(p), inst.format_size(s), inst.format_size(u.our_size(side, p))]
            for p, s in u.depth(side, n)
        ]
        for side in (BUY, SELL)
    )


class BookImage:
    """What a feed client rebuilds from a snapshot and deltas."""

    def __init__(self) -> None:
        self.seq = None
        self.sides: tuple[dict, dict] = ({}, {})
        self.deltas = 0

    def apply(self, msg: dict) -> None:
        if msg["op"] == "snapshot":
            self.sides = ({p: (s, o) for p, s, o in msg["bids"]}, {p: (s, o) for p, s, o in msg["asks"]})
        else:
            assert msg["seq"] == self.seq + 1, f"sequence jumped from {self.seq} to {msg['seq']}"
            self.deltas += 1
            for side, levels in zip(self.sides, (msg["bids"], msg["asks"]), strict=False):
                for p, s, o in levels:
                    if s == "0":
                        del side[p]
                    else:
                        side[p] = (s, o)
        self.seq = msg["seq"]

    def top(self) -> tuple[list, list]:
        from decimal import Decimal

        bids = sorted(self.sides[0].items(), key=lambda kv: Decimal(kv[0]), reverse=True)
        asks = sorted(self.sides[1].items(), key=lambda kv: Decimal(kv[0]))
        return [[p, s, o] for p, (s, o) in bids], [[p, s, o] for p, (s, o) in asks]


async def reader(ws, image: BookImage, other: list) -> None:
    try:
        async for raw in ws:
            msg = json.loads(raw)
            if msg["type"] == "book":
                image.apply(msg)
            else:
                other.append(msg)
    except ConnectionClosed:
        pass


async def close(ws, task) -> None:
    await ws.close()
    await task


async def test_a_client_rebuilds_the_unified_book_top_n_exactly_from_a_snapshot_and_deltas():
    kernel, venue, cfg = make_kernel(top_n=8)
    host, port = (await start_feed(kernel, cfg.feed)).address
    try:
        async with connect(f"ws://{host}:{port}/") as ws:
            image, other = BookImage(), []
            task = asyncio.create_task(reader(ws, image, other))
            await ws.send(json.dumps({"op": "subscribe", "channel": "book"}))
            await ws.send(json.dumps({"op": "subscribe", "channel": "trades"}))
            await ws.send(json.dumps({"op": "subscribe", "channel": "fills"}))
            await wait_until(lambda: image.seq is not None, what="the snapshot")
            assert image.top() == expected_top(kernel, 8)
            for _ in range(300):
                venue.step()
                await asyncio.sleep(0.001)
            kernel.feed.flush()
            stream_seq = kernel.feed._books[(venue.name, venue.config.symbol)].seq
            await wait_until(lambda: image.seq == stream_seq, what="the last delta")
            assert image.deltas > 20
            assert image.top() == expected_top(kernel, 8)
            assert len(image.top()[0]) == 8 and len(image.top()[1]) == 8
            trades = [m for m in other if m["type"] == "trade"]
            fills = [m for m in other if m["type"] == "fill"]
            assert len(trades) == kernel.default_market.trades
            assert len(fills) == kernel.oms.fills > 0
            await close(ws, task)
    finally:
        await kernel.stop()


async def test_any_request_but_subscribe_gets_an_error_reply_and_is_counted():
    kernel, venue, cfg = make_kernel()
    host, port = (await start_feed(kernel, cfg.feed)).address
    sent, cancels = kernel.oms.sent, kernel.oms.cancels_sent
    try:
        async with connect(f"ws://{host}:{port}/") as ws:
            for bad in (
                {"op": "order", "side": "buy", "price": "1"},
                "not json",
                [1, 2],
                {"op": "subscribe", "channel": "orders"},
                {"op": "subscribe", "channel": "book", "venue": "nowhere"},
            ):
                await ws.send(bad if isinstance(bad, str) else json.dumps(bad))
                reply = json.loads(await asyncio.wait_for(ws.recv(), 2))
                assert reply["type"] == "error", reply
            await ws.send(json.dumps({"op": "cancel", "order_id": 1}))
            assert "read-only" in json.loads(await ws.recv())["error"]
            assert kernel.feed.bad_messages == 6
            # nothing a client sends reaches the OMS
            assert (kernel.oms.sent, kernel.oms.cancels_sent) == (sent, cancels)
            await ws.send(json.dumps({"op": "ping"}))
            assert json.loads(await ws.recv()) == {"type": "pong"}
    finally:
        await kernel.stop()


async def test_a_missing_or_wrong_token_closes_with_policy_violation_and_the_right_one_is_served():
    kernel, venue, cfg = make_kernel(token="s3cret-token")
    host, port = (await start_feed(kernel, cfg.feed)).address
    url = f"ws://{host}:{port}/"
    try:
        for kwargs in ({}, {"additional_headers": {"Authorization": "Bearer wrong"}}):
            async with connect(url, **kwargs) as ws:
                with pytest.raises(ConnectionClosed) as closed:
                    await asyncio.wait_for(ws.recv(), 2)
                assert closed.value.rcvd.code == CLOSE_POLICY
                assert "s3cret" not in closed.value.rcvd.reason
        assert kernel.feed.auth_failures == 2
        for ws_url, kwargs in (
            (url, {"additional_headers": {"Authorization": "Bearer s3cret-token"}}),
            (url + "?token=s3cret-token", {}),
        ):
            async with connect(ws_url, **kwargs) as ws:
                await ws.send(json.dumps({"op": "subscribe", "channel": "status"}))
                assert json.loads(await asyncio.wait_for(ws.recv(), 2))["type"] == "subscribed"
                status = json.loads(await asyncio.wait_for(ws.recv(), 2))
                assert status == {
                    "type": "status",
                    "venue": "sim",
                    "state": "up",
                    "detail": "",
                    "ts": status["ts"],
                }
        assert kernel.feed.auth_failures == 2
    finally:
        await kernel.stop()


def _raw_ws_client(host: str, port: int) -> socket.socket:
    """A WebSocket client that subscribes to everything and then never reads (a tiny receive buffer)."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect((host, port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(
        (
            f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    assert b" 101 " in head
    for channel in ("book", "trades", "status"):
        payload = json.dumps({"op": "subscribe", "channel": channel}).encode()
        mask = os.urandom(4)
        s.sendall(
            bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        )
    return s


async def step_times(venue, steps: int) -> list[float]:
    out = []
    for _ in range(steps):
        t0 = time.perf_counter()
        venue.step()
        out.append(time.perf_counter() - t0)
        await asyncio.sleep(0)
    return out


async def test_a_client_that_never_reads_is_dropped_and_the_kernel_keeps_its_pace():
    kernel, venue, cfg = make_kernel(top_n=20, queue_size=64, interval_ms=5)
    host, port = (await start_feed(kernel, cfg.feed)).address
    feed = kernel.feed
    try:
        baseline = await step_times(venue, 300)
        slow = await asyncio.to_thread(_raw_ws_client, host, port)
        async with connect(f"ws://{host}:{port}/") as ws:  # a healthy client alongside
            image = BookImage()
            task = asyncio.create_task(reader(ws, image, []))
            await ws.send(json.dumps({"op": "subscribe", "channel": "book"}))
            await wait_until(lambda: len(feed.clients) == 2 and image.seq is not None, what="two clients")
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 10
            during: list[float] = []
            while not feed.dropped_slow and loop.time() < deadline:
                during += await step_times(venue, 20)
                await asyncio.sleep(0.006)
            assert feed.dropped_slow == 1, "the slow client was never dropped"
            await wait_until(lambda: len(feed.clients) == 1, what="the slow client to be gone")
            during += await step_times(venue, 300)
            # Steps keep their pace: the kernel never waited for the client that does not read.
            assert statistics.median(during) < 3 * statistics.median(baseline) + 0.0005
            assert max(during) < 0.25
            # The healthy client still follows the book exactly.
            feed.flush()
            seq = feed._books[(venue.name, venue.config.symbol)].seq
            await wait_until(lambda: image.seq == seq, what="the healthy client to catch up")
            assert image.top() == expected_top(kernel, 20)
            await close(ws, task)
        slow.close()
    finally:
        await kernel.stop()

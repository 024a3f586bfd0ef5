"""The TUI starts the metrics exporter and the WebSocket feed as configured, and says so when it cannot."""

from __future__ import annotations

import asyncio
import json
import socket
import urllib.request

from frozen_app import wait_for
from websockets.asyncio.client import connect

from lobterm.app import LobtermApp
from lobterm.config import Config, FeedConfig, MetricsConfig

SIZE = (160, 48)


async def test_the_app_serves_metrics_and_the_feed_of_its_own_kernel():
    cfg = Config()
    cfg.metrics = MetricsConfig(port=0)
    cfg.feed = FeedConfig(enabled=True, port=0)
    app = LobtermApp(cfg)
    app.services = True
    async with app.run_test(size=SIZE) as pilot:
        kernel = app.kernel
        await wait_for(
            pilot, lambda: kernel.feed is not None and kernel.feed.address is not None, what="the feed"
        )
        host, port = kernel.metrics.address
        body = await asyncio.to_thread(
            lambda: urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5).read().decode()
        )
        assert 'lobterm_venue_up{state="up",venue="sim"} 1.0' in body
        fhost, fport = kernel.feed.address
        assert (host, fhost) == ("127.0.0.1", "127.0.0.1")
        async with connect(f"ws://{fhost}:{fport}/") as ws:
            await ws.send(json.dumps({"op": "subscribe", "channel": "book"}))
            assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "subscribed"
            snap = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert snap["op"] == "snapshot" and snap["symbol"] == "BTC/USDT" and snap["bids"] and snap["asks"]
    assert kernel.feed.server is None and kernel.metrics.server is None  # stopped with the app


async def test_a_taken_metrics_port_moves_the_exporter_to_a_free_one_shown_in_the_status_bar():
    with socket.socket() as taken:  # a second lobterm on the host holds the port
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cfg = Config()
        cfg.metrics = MetricsConfig(port=port)
        app = LobtermApp(cfg)
        app.services = True
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            metrics = app.kernel.metrics
            await wait_for(pilot, lambda: list(app._notifications), what="a notice")
            host, free = metrics.address
            assert metrics.port_taken == port and free not in (0, port)
            (note,) = list(app._notifications)
            assert note.message == f"Metrics port {port} is in use: exporting on {free}."
            assert note.timeout <= 2, "a notice over the status bar goes within 2 s"
            await wait_for(
                pilot, lambda: f"metrics :{free}" in str(app.status.content), what="the status bar"
            )
            body = await asyncio.to_thread(
                lambda: urllib.request.urlopen(f"http://{host}:{free}/metrics", timeout=5).read().decode()
            )
            assert 'lobterm_venue_up{state="up",venue="sim"} 1.0' in body
            await pilot.pause(2.3)
            assert not list(app._notifications), "the notice has gone"
            assert f"metrics :{free}" in str(app.status.content)


def test_lobterm_config_says_when_the_metrics_port_is_in_use_now():
    from lobterm.config import effective_toml

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        cfg = Config()
        cfg.metrics = MetricsConfig(port=taken.getsockname()[1])
        line = next(x for x in effective_toml(cfg).splitlines() if x.startswith("port = "))
        assert "in use now: lobterm would export on a free port" in line
    free = next(x for x in effective_toml(cfg).splitlines() if x.startswith("port = "))
    assert "in use" not in free


async def test_without_services_a_test_app_listens_on_nothing():
    app = LobtermApp(Config())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.1)
        assert app.kernel.metrics is None and app.kernel.feed is None

"""`lobterm run --headless` with keys on a live venue (the Binance loopback, real ccxt classes), as a
user runs it: the program in a subprocess, ended by its duration or by SIGTERM / SIGINT. Whatever ends
it, none of our orders is left at the venue and the exit code says so."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from binance_loopback import BinanceLoopback
from test_ccxt_venue import KEY, SECRET, seed_book

ROOT = Path(__file__).resolve().parents[2]


class VenueThread:
    """The loopback venue served from a thread of its own, so that a subprocess can trade on it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.srv = BinanceLoopback(api_key=KEY, secret=SECRET)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> BinanceLoopback:
        self.thread.start()
        seed_book(self.srv)
        asyncio.run_coroutine_threadsafe(self.srv.start(), self.loop).result(10)
        return self.srv

    def __exit__(self, *exc) -> None:
        asyncio.run_coroutine_threadsafe(self.srv.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)

    def call(self, fn):
        async def run():
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(5)


def config_file(tmp_path: Path, srv: BinanceLoopback) -> Path:
    o = srv.venue_options()
    text = f"""
[venues.binance]
exchange = "binance"
rest_url = "{o["rest_url"]}"
symbols = ["BTC/USDT"]
urls = {{ "api.ws.spot" = "{o["urls"]["api.ws.spot"]}", "api.ws.ws-api.spot" = "{o["urls"]["api.ws.ws-api.spot"]}" }}
options = {{ fetchMarkets = {{ types = ["spot"] }}, fetchCurrencies = false, fetchMargins = false }}

[mm]
levels = 5
spread_ticks = 40

[metrics]
enabled = false

[feed]
enabled = false
"""
    path = tmp_path / "live.toml"
    path.write_text(text)
    return path


def start(cfg: Path, duration: float, tmp_path: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "LOBTERM_BINANCE_API_KEY": KEY,
        "LOBTERM_BINANCE_SECRET": SECRET,
        "XDG_CONFIG_HOME": str(tmp_path),
        "PYTHONPATH": str(ROOT),  # this checkout, not an installed copy
    }
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lobterm",
            "--no-default-config",
            "--config",
            str(cfg),
            "--no-record",
            "run",
            "--headless",
            "--duration",
            str(duration),
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_until(cond, timeout: float, what: str) -> None:
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


@pytest.mark.parametrize("how", ["duration", signal.SIGTERM, signal.SIGINT])
def test_a_headless_run_with_keys_leaves_no_order_at_the_venue(tmp_path, how) -> None:
    venue = VenueThread()
    with venue as srv:
        proc = start(config_file(tmp_path, srv), 6.0 if how == "duration" else 60.0, tmp_path)
        try:
            wait_until(lambda: len(venue.call(srv.open_orders)) >= 10, 30, "ten quotes at the venue")
            t0 = time.monotonic()
            if how != "duration":
                proc.send_signal(how)
            out, err = proc.communicate(timeout=30)
            exit_s = time.monotonic() - t0
        finally:
            if proc.poll() is None:
                proc.kill()
        left = venue.call(srv.open_orders)
    assert left == [], f"left at the venue: {left}\n{err}"
    expected = {"duration": 0, signal.SIGTERM: 0, signal.SIGINT: 130}[how]
    assert proc.returncode == expected, err
    assert "may still be open" not in err
    assert KEY not in out + err and SECRET not in out + err
    if how != "duration":
        assert exit_s < 3.0, f"exit took {exit_s:.1f} s"

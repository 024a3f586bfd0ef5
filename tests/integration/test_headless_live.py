"""`lobterm run --headless` with keys on a live venue (the Binance loopback, real ccxt classes), as a
user runs it: the program in a subprocess, ended by its duration or by SIGTERM / SIGINT / SIGHUP.
Whatever ends it, none of our orders is left at the venue, the exit code says so, and the process is
gone within 2 s of the signal (the venue answering normally)."""

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

from lobterm.engine.events import BUY
from tests.helpers.ccxt import KEY, SECRET, seed_book

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


EXIT_S = 2.0  # issue 11: exit within 2 s when the venue answers normally


class StderrLines:
    """Each line the program writes to stderr, with the (monotonic) time it arrived."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.lines: list[tuple[float, str]] = []
        self.thread = threading.Thread(target=self._pump, args=(proc,), daemon=True)
        self.thread.start()

    def _pump(self, proc: subprocess.Popen) -> None:
        for line in proc.stderr:
            self.lines.append((time.monotonic(), line))

    def at(self, text: str) -> float:
        return next(t for t, line in self.lines if text in line)

    @property
    def text(self) -> str:
        return "".join(line for _, line in self.lines)


@pytest.mark.parametrize("how", ["duration", signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_headless_run_with_keys_leaves_no_order_at_the_venue_and_exits_within_2_s(tmp_path, how) -> None:
    """What the user waits for: from the signal (or the duration's end) to the process gone. The
    duration run also meets a sequence gap, which its summary counts."""
    venue = VenueThread()
    with venue as srv:
        proc = start(config_file(tmp_path, srv), 8.0 if how == "duration" else 60.0, tmp_path)
        err = StderrLines(proc)
        try:
            wait_until(lambda: len(venue.call(srv.open_orders)) >= 10, 30, "ten quotes at the venue")
            if how == "duration":
                venue.call(lambda: srv.skip_update_ids(3))  # ccxt detects the gap on the next diff
                venue.call(lambda: srv.add_liquidity(BUY, "64990.00", "1.0"))
            else:
                t0 = time.monotonic()
                proc.send_signal(how)
            proc.wait(timeout=30)
            t_exit = time.monotonic()
            err.thread.join(5)
            out = proc.stdout.read()
        finally:
            if proc.poll() is None:
                proc.kill()
        left = venue.call(srv.open_orders)
    assert left == [], f"left at the venue: {left}\n{err.text}"
    expected = {"duration": 0, signal.SIGTERM: 0, signal.SIGINT: 130, signal.SIGHUP: 0}[how]
    assert proc.returncode == expected, err.text
    assert "may still be open" not in err.text
    assert KEY not in out + err.text and SECRET not in out + err.text
    if how == "duration":
        t0 = err.at("s are over: shutting down")
        gaps = int(next(line for line in out.splitlines() if "book gaps" in line).split()[-1])
        assert gaps >= 1, out
    else:
        assert f"{how.name}: shutting down" in err.text
    exit_s = t_exit - t0
    assert "clean (nothing of ours open)" in out, out
    assert exit_s < EXIT_S, f"exit took {exit_s:.2f} s\n{out}"

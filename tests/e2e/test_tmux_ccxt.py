"""`lobterm --venue binance` in a real terminal (tmux), its URLs pointed at the Binance loopback venue:
the ladder shows the venue's book, in PAPER mode (no keys), and the app quits cleanly."""

from __future__ import annotations

import asyncio
import re
import shlex
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from lobterm.engine.events import BUY, SELL
from tests.helpers.tmux import ROOT, TMUX, lobterm_command

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from binance_loopback import BinanceLoopback  # noqa: E402

pytestmark = pytest.mark.e2e
VENUE_ROW = re.compile(r"\b6500[01]\.\d\d\b")


class ThreadedVenue:
    """The loopback venue on its own event loop in a thread, so that lobterm can run in tmux meanwhile."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.srv = BinanceLoopback()

    def call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def start(self) -> None:
        async def go():
            for i in range(10):
                self.srv.add_liquidity(BUY, f"{65000 - i / 100:.2f}", "0.5")
                self.srv.add_liquidity(SELL, f"{65000.01 + i / 100:.2f}", "0.4")
            await self.srv.start()

        self.call(go())

    def stop(self) -> None:
        self.call(self.srv.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def test_lobterm_shows_a_live_venue_ladder_from_the_loopback_binance(pane, tmp_path):  # noqa: F811
    venue = ThreadedVenue()
    venue.start()
    try:
        o = venue.srv.venue_options()
        urls = "\n".join(f'"{k}" = "{v}"' for k, v in o["urls"].items())
        config = tmp_path / "live.toml"
        config.write_text(f"""
[venues.binance]
symbols = ["BTC/USDT"]
rest_url = "{o["rest_url"]}"
[venues.binance.urls]
{urls}
[venues.binance.options]
fetchCurrencies = false
fetchMargins = false
fetchMarkets = {{ types = ["spot"] }}
""")
        shell = (
            f"unset COLUMNS LINES LOBTERM_BINANCE_API_KEY LOBTERM_BINANCE_SECRET; cd {shlex.quote(str(ROOT))} "
            f"&& timeout --foreground 60 {lobterm_command()} --no-record --config {shlex.quote(str(config))} "
            f"--venue binance; echo EXIT=$?; sleep 30"
        )
        subprocess.run(
            [
                TMUX,
                "-L",
                pane.socket,
                "-f",
                str(pane.conf),
                "new-session",
                "-d",
                "-s",
                "lob",
                "-x",
                "160",
                "-y",
                "48",
                "-e",
                f"PYTHONPATH={ROOT}",
                "sh",
                "-c",
                shell,
            ],
            check=True,
            timeout=10,
        )
        # The status line follows the touch at most 8 times a second: wait for it too.
        screen = pane.wait(
            lambda s: (
                len(VENUE_ROW.findall(s)) >= 10 and "0.50000" in s and "0.40000" in s and "spread 0.01" in s
            ),
            "the venue's ladder",
            timeout=25,
        )
        assert "binance" in screen and "PAPER" in screen and "Traceback" not in screen
        assert "65000.00" in screen and "65000.01" in screen and "spread 0.01" in screen
        # The venue's book moves: more size at the best bid shows up on the ladder.
        venue.loop.call_soon_threadsafe(venue.srv.add_liquidity, BUY, "65000.00", "0.777")
        pane.wait(lambda s: "1.27700" in s, "the venue's new size at the best bid")
        pane.keys("q")
        screen = pane.wait(lambda s: "EXIT=" in s, "the exit status", timeout=15)
        assert "EXIT=0" in screen and "Traceback" not in screen
    finally:
        venue.stop()

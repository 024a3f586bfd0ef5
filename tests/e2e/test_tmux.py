"""`lobterm` in a real terminal (tmux, 160x48): first ladder, buy, see our order, cancel it, quit cleanly."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Callable

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
TMUX = shutil.which("tmux")
PRICE_ROW = re.compile(r"\b\d{4,}\.\d\b")
FIRST_LADDER_BUDGET_S = 1.5  # on a warm machine (DESIGN: the first screen must be quick)


class Pane:
    def __init__(self, socket: str) -> None:
        self.socket = socket

    def tmux(self, *args: str) -> str:
        return subprocess.run([TMUX, "-L", self.socket, *args], check=True, capture_output=True,
                              text=True, timeout=10).stdout

    def text(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "lob")

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "lob", *keys)

    def wait(self, condition: Callable[[str], object], what: str, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.text()
            if condition(screen):
                return screen
            if time.monotonic() > deadline:
                size = self.tmux("display", "-p", "-t", "lob", "#{window_width}x#{window_height}")
                raise AssertionError(f"timed out waiting for {what} ({size.strip()}); the pane shows:\n{screen}")
            time.sleep(0.03)


def lobterm_command() -> str:
    exe = shutil.which("lobterm")
    cmd = [exe] if exe else [sys.executable, "-m", "lobterm"]
    return " ".join(shlex.quote(c) for c in cmd) + " --no-default-config"


def ladder_rows(screen: str) -> list[str]:
    return [line for line in screen.splitlines() if PRICE_ROW.search(line)]


@pytest.fixture
def pane(tmp_path):
    if TMUX is None:
        pytest.skip("tmux is not installed")
    socket = f"lobterm-e2e-{uuid.uuid4().hex[:8]}"
    conf = tmp_path / "tmux.conf"
    conf.write_text("set -g status off\nset -g history-limit 100\n")
    p = Pane(socket)
    p.conf = conf  # type: ignore[attr-defined]
    try:
        yield p
    finally:
        subprocess.run([TMUX, "-L", socket, "kill-server"], capture_output=True, timeout=10)


def test_lobterm_trades_from_the_ladder_in_a_real_terminal(pane, capsys):
    # tmux started from under pytest hands the pane COLUMNS=80 LINES=24, which would pin Textual's size.
    shell = (f"unset COLUMNS LINES; cd {shlex.quote(str(ROOT))} && timeout --foreground 60 {lobterm_command()}; "
             f"echo EXIT=$?; sleep 30")
    started = time.monotonic()
    subprocess.run([TMUX, "-L", pane.socket, "-f", str(pane.conf), "new-session", "-d", "-s", "lob",
                    "-x", "160", "-y", "48", "-e", "COLORTERM=truecolor", "-e", f"PYTHONPATH={ROOT}",
                    "sh", "-c", shell], check=True, timeout=10)

    # The first ladder: a column of prices with sizes beside them.
    screen = pane.wait(lambda s: len(ladder_rows(s)) >= 20 and "PRICE" in s, "the first ladder", timeout=20)
    first_ladder_s = time.monotonic() - started
    with capsys.disabled():
        print(f"\n[e2e] time to first ladder: {first_ladder_s:.2f} s "
              f"(budget {FIRST_LADDER_BUDGET_S} s on a warm machine)")
    assert first_ladder_s < 10, "far beyond the start-up budget, even on a loaded machine"
    assert "sim" in screen and "SIM" in screen and "BTC/USDT" in screen
    assert "Traceback" not in screen

    # Buy well under the market (so it rests), then see our bid marked on the cursor row.
    pane.keys(*["Down"] * 15)
    pane.wait(lambda s: "working 0" in s, "the status bar")
    pane.keys("b")
    pane.wait(lambda s: "working 1" in s and any("▶" in line and "0.010 (1)" in line for line in s.splitlines()),
              "our order on the cursor row and in the status bar")

    # Cancel it.
    pane.keys("x")
    screen = pane.wait(lambda s: "0.010 (1)" not in s and "working 0" in s, "the cancel")

    # Quit (confirming, if asked: nothing should be working, but a fill could race us).
    pane.keys("q")
    screen = pane.wait(lambda s: "EXIT=" in s or "Cancel them all" in s, "the app to quit")
    if "Cancel them all" in screen:
        pane.keys("y")
    screen = pane.wait(lambda s: "EXIT=" in s, "the exit status")
    assert "Traceback" not in screen
    assert "EXIT=0" in screen, screen

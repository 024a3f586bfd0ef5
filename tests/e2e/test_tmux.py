"""`lobterm` in a real terminal (tmux, 160x48): first ladder, buy, see our order, cancel it, quit cleanly."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

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
        return subprocess.run(
            [TMUX, "-L", self.socket, *args], check=True, capture_output=True, text=True, timeout=10
        ).stdout

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
                raise AssertionError(
                    f"timed out waiting for {what} ({size.strip()}); the pane shows:\n{screen}"
                )
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
    shell = (
        f"unset COLUMNS LINES; cd {shlex.quote(str(ROOT))} && timeout --foreground 60 {lobterm_command()}; "
        f"echo EXIT=$?; sleep 30"
    )
    started = time.monotonic()
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
            "COLORTERM=truecolor",
            "-e",
            f"PYTHONPATH={ROOT}",
            "sh",
            "-c",
            shell,
        ],
        check=True,
        timeout=10,
    )

    # The first ladder: a column of prices with sizes beside them.
    screen = pane.wait(lambda s: len(ladder_rows(s)) >= 20 and "PRICE" in s, "the first ladder", timeout=20)
    first_ladder_s = time.monotonic() - started
    with capsys.disabled():
        print(
            f"\n[e2e] time to first ladder: {first_ladder_s:.2f} s "
            f"(budget {FIRST_LADDER_BUDGET_S} s on a warm machine)"
        )
    assert first_ladder_s < 10, "far beyond the start-up budget, even on a loaded machine"
    assert "sim" in screen and "SIM" in screen and "BTC/USDT" in screen
    assert "Traceback" not in screen

    # Buy well under the market (so it rests), then see our bid marked on the cursor row.
    pane.keys(*["Down"] * 15)
    pane.wait(lambda s: "working 0" in s, "the status bar")
    pane.keys("b")
    pane.wait(
        lambda s: "working 1" in s and any("▶" in line and "0.010 (1)" in line for line in s.splitlines()),
        "our order on the cursor row and in the status bar",
    )

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


def start(pane: Pane, extra: str = "") -> None:
    shell = (
        f"unset COLUMNS LINES; cd {shlex.quote(str(ROOT))} && timeout --foreground 90 {lobterm_command()} "
        f"{extra}; echo EXIT=$?; sleep 30"
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
            "COLORTERM=truecolor",
            "-e",
            f"PYTHONPATH={ROOT}",
            "sh",
            "-c",
            shell,
        ],
        check=True,
        timeout=10,
    )


def cursor_line(screen: str) -> str:
    return next((line for line in screen.splitlines() if "▶" in line), "")


def test_a_trading_session_with_the_keys_in_a_real_terminal(pane):
    """Quote with the market maker, place and move an order, cancel it, flatten, kill switch, quit."""
    start(pane)
    pane.wait(lambda s: len(ladder_rows(s)) >= 20 and "MM paused" in s, "the desk", timeout=20)

    pane.keys("m")  # the market maker quotes five levels a side
    pane.wait(
        lambda s: "MM running" in s and "working 10" in s and "RUNNING" in s, "the market maker quoting"
    )

    pane.keys(*["Down"] * 15, "b")  # a bid of ours well under the market, on the cursor row
    pane.wait(lambda s: "working 11" in s and "0.010 (1)" in cursor_line(s), "our bid on the cursor row")
    before = PRICE_ROW.search(cursor_line(pane.text())).group()
    pane.keys("S-Up")  # move it up a tick: the cursor follows the order
    screen = pane.wait(
        lambda s: (
            PRICE_ROW.search(cursor_line(s))
            and PRICE_ROW.search(cursor_line(s)).group() != before
            and "0.010 (1)" in cursor_line(s)
        ),
        "the order moved up a tick",
    )
    after = PRICE_ROW.search(cursor_line(screen)).group()
    assert round(float(after) - float(before), 6) == 0.1

    pane.keys("x")  # cancel it
    pane.wait(lambda s: "working 10" in s and "0.010 (1)" not in cursor_line(s), "the cancel")

    pane.keys("F")  # flatten: the market maker pauses, its quotes go, the position is closed
    pane.wait(lambda s: "MM paused" in s and "working 0" in s and "pos 0.000 BTC" in s, "flat", timeout=15)

    pane.keys("C-k")  # the kill switch
    pane.wait(lambda s: "KILL SWITCH ON" in s, "the kill switch")
    pane.keys("b")  # refused: shown, nothing works
    pane.wait(lambda s: "reject:" in s and "working 0" in s, "the refusal")

    pane.keys("q")
    screen = pane.wait(lambda s: "EXIT=" in s or "Cancel them all" in s, "the app to quit")
    if "Cancel them all" in screen:
        pane.keys("y")
    screen = pane.wait(lambda s: "EXIT=" in s, "the exit status")
    assert "Traceback" not in screen
    assert "EXIT=0" in screen, screen

"""What the tmux tests share (the `pane` fixture is in tests/e2e/conftest.py): the app started in a tmux
session at a given size, and readers of the screen (price rows, the cursor's row)."""

from __future__ import annotations

import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

__all__ = [
    "PRICE_ROW",
    "ROOT",
    "TMUX",
    "Pane",
    "cursor_line",
    "wait_for_cursor",
    "free_port",
    "ladder_rows",
    "lobterm_command",
    "start",
]

ROOT = Path(__file__).resolve().parents[2]
TMUX = shutil.which("tmux")
PRICE_ROW = re.compile(r"\b\d{4,}\.\d\b")


class Pane:
    def __init__(self, socket: str) -> None:
        self.socket = socket
        self.conf: Path | None = None

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


def cursor_line(screen: str) -> str:
    return next((line for line in screen.splitlines() if "▶" in line), "")


def wait_for_cursor(pane: Pane, timeout: float = 20.0) -> str:
    """The ladder's cursor on screen: with `[ui] ticks_per_row = "auto"` (the default) the ladder measures the
    market for its first 3 s with no cursor, and order keys wait for it as a trader does."""
    return pane.wait(lambda s: "measuring" not in s and "▶" in s, "the cursor (the zoom picked)", timeout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(pane: Pane, extra: str = "", *, size: tuple[int, int] = (160, 48), session: str = "lob") -> None:
    """`lobterm` (the default sim) in a new tmux session of `size`; after it exits the pane says EXIT=n."""
    # tmux started from under pytest hands the pane COLUMNS=80 LINES=24, which would pin Textual's size.
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
            session,
            "-x",
            str(size[0]),
            "-y",
            str(size[1]),
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

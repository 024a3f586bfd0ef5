"""The browser view: `lobterm serve` as a real process, a real headless Chromium loading its page.

Chromium is driven over its DevTools protocol (with the websockets library): a script installed
before the page loads keeps what the page's WebSocket receives from the app (the terminal output),
so the test can see the ladder arrive in the browser; a screenshot of the page is saved next to the
test's temporary files (LOBTERM_SCREENSHOT=path keeps a copy). Chromium comes from Debian's package
(`.ci/run` installs it); without it this test is skipped, saying so.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="chromium is not installed and could not be "
        "(.ci/run installs Debian's chromium package when it is missing)",
    ),
]

# Keep every frame the page's WebSocket receives (the app's terminal output), decoded as text.
HOOK = """
(() => {
  const Native = window.WebSocket;
  window.__lobterm_rx = [];
  const decoder = new TextDecoder();
  function Hooked(...args) {
    const ws = new Native(...args);
    ws.addEventListener('message', (e) => {
      if (typeof e.data === 'string') window.__lobterm_rx.push(e.data);
      else if (e.data instanceof ArrayBuffer) window.__lobterm_rx.push(decoder.decode(e.data));
      else if (e.data && e.data.text) e.data.text().then((t) => window.__lobterm_rx.push(t));
    });
    return ws;
  }
  Hooked.prototype = Native.prototype;
  for (const k of ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED']) Hooked[k] = Native[k];
  window.WebSocket = Hooked;
})();
"""

STATE = """JSON.stringify({
  firstByte: !!(document.body && document.body.classList.contains('-first-byte')),
  terminal: !!document.querySelector('.textual-terminal canvas, .textual-terminal .xterm'),
  rx: (window.__lobterm_rx || []).join('')
})"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"lobterm serve exited with {proc.returncode}: {proc.stdout.read()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"lobterm serve did not listen on {port} within {timeout} s")


def children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        out += [int(c) for c in text]
    return out + [g for c in out for g in children(c)]


def listening(pid: int) -> set[tuple[str, int]]:
    """(address, port) of every TCP socket `pid` has listening (IPv4; IPv6 shown as "v6")."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    out = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            cols = line.split()
            if cols[3] == "0A" and cols[9] in inodes:
                addr_hex, port_hex = cols[1].split(":")
                addr = socket.inet_ntoa(bytes.fromhex(addr_hex)[::-1]) if table == "tcp" else "v6:" + addr_hex
                out.add((addr, int(port_hex, 16)))
    return out


class DevTools:
    """A minimal Chrome DevTools protocol client over one browser WebSocket (flattened sessions)."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.ids = itertools.count(1)

    async def call(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        msg_id = next(self.ids)
        msg = {"id": msg_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        await self.ws.send(json.dumps(msg))
        while True:
            reply = json.loads(await asyncio.wait_for(self.ws.recv(), 15))
            if reply.get("id") == msg_id:
                if "error" in reply:
                    raise AssertionError(f"{method}: {reply['error']}")
                return reply["result"]


async def browse(port: int, user_dir: str, shot: Path, deadline: float) -> dict:
    active = Path(user_dir) / "DevToolsActivePort"
    while not active.exists():
        if time.monotonic() > deadline:
            raise AssertionError("chromium did not open its DevTools port")
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.05)
    devtools_port, path = active.read_text().split()[:2]
    async with connect(f"ws://127.0.0.1:{devtools_port}{path}", max_size=None) as ws:
        cdp = DevTools(ws)
        target = (await cdp.call("Target.createTarget", {"url": "about:blank"}))["targetId"]
        session = (await cdp.call("Target.attachToTarget", {"targetId": target, "flatten": True}))[
            "sessionId"
        ]
        await cdp.call("Page.enable", session=session)
        await cdp.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": 1400, "height": 900, "deviceScaleFactor": 1, "mobile": False},
            session=session,
        )
        await cdp.call("Page.addScriptToEvaluateOnNewDocument", {"source": HOOK}, session=session)
        await cdp.call("Page.navigate", {"url": f"http://127.0.0.1:{port}/"}, session=session)
        state: dict = {}
        while time.monotonic() < deadline:
            res = await cdp.call(
                "Runtime.evaluate", {"expression": STATE, "returnByValue": True}, session=session
            )
            state = json.loads(res["result"]["value"])
            if state["firstByte"] and "ASKS" in state["rx"] and "PRICE" in state["rx"]:
                break
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)  # let a few UI clock ticks paint
        png = await cdp.call("Page.captureScreenshot", {"format": "png"}, session=session)
        shot.write_bytes(base64.b64decode(png["data"]))
        return state


def test_lobterm_serve_shows_the_ladder_in_headless_chromium(tmp_path):
    t0 = time.monotonic()
    port = free_port()
    config = tmp_path / "lobterm.toml"
    config.write_text(f'sessions_dir = "{tmp_path}"\n[metrics]\nport = 0\n[feed]\nenabled = true\nport = 0\n')
    serve = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lobterm",
            "--no-default-config",
            "--config",
            str(config),
            "--no-record",
            "serve",
            "--port",
            str(port),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    user_dir = tempfile.mkdtemp(prefix="lobterm-chromium-", dir=tmp_path)
    browser = None
    try:
        wait_for_port(port, serve, timeout=15)
        browser = subprocess.Popen(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--remote-debugging-port=0",
                f"--user-data-dir={user_dir}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        shot = tmp_path / "browser.png"
        state = asyncio.run(browse(port, user_dir, shot, deadline=time.monotonic() + 20))
        if os.environ.get("LOBTERM_SCREENSHOT"):
            shutil.copy(shot, os.environ["LOBTERM_SCREENSHOT"])
        assert state["terminal"], "the page has no terminal"
        assert state["firstByte"], "the app never sent its screen to the browser"
        rx = state["rx"]
        for word in ("PRICE", "BIDS", "ASKS", "BTC/USDT", "sim"):
            assert word in rx, f"{word!r} never reached the browser"
        assert "65" in rx  # prices of the sim market around 65000
        assert shot.stat().st_size > 20_000, "the screenshot is nearly empty"
        # Everything the served app and its server listen on is on 127.0.0.1 (server, exporter, feed).
        procs = [serve.pid] + children(serve.pid)
        assert len(procs) >= 2, "the app process did not start"
        addrs = set().union(*(listening(p) for p in procs))
        assert port in {p for _a, p in addrs} and len(addrs) >= 3, addrs
        assert {a for a, _p in addrs} == {"127.0.0.1"}, addrs
    finally:
        for proc in (browser, serve):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(5)
    assert time.monotonic() - t0 < 30

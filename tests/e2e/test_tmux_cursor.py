"""The cursor is a price, in a real terminal: in the default sim, with no key pressed for 12 s, the price on
the cursor's row (▶) does not change, although the market moves."""

from __future__ import annotations

import socket
import time

import pytest

from tests.e2e.test_tmux import PRICE_ROW, cursor_line, ladder_rows, pane, start  # noqa: F401 - fixture

pytestmark = pytest.mark.e2e


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_with_no_key_pressed_for_12_s_the_cursor_keeps_its_price(pane, tmp_path):  # noqa: F811
    config = tmp_path / "lobterm.toml"
    config.write_text(f"[metrics]\nport = {free_port()}\n[feed]\nenabled = false\n")
    start(pane, f"--config {config} --no-record")
    screen = pane.wait(lambda s: len(ladder_rows(s)) >= 20 and PRICE_ROW.search(cursor_line(s)), "the ladder")
    price = PRICE_ROW.search(cursor_line(screen)).group()
    seen_inside = set()
    deadline = time.monotonic() + 12
    while time.monotonic() < deadline:
        screen = pane.text()
        line = cursor_line(screen)
        assert line, f"no cursor row on screen:\n{screen}"
        assert PRICE_ROW.search(line).group() == price, f"the cursor moved from {price}:\n{screen}"
        mids = [PRICE_ROW.search(row).group() for row in ladder_rows(screen) if "mid" in row]
        seen_inside.update(mids)
        time.sleep(0.25)
    assert len(seen_inside) > 1, f"the mid moved meanwhile (else this test proves nothing): {seen_inside}"
    pane.keys("q")

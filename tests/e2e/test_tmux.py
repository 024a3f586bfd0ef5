"""`lobterm` in a real terminal (tmux, 160x48): first ladder, buy, see our order, cancel it, quit cleanly."""

from __future__ import annotations

import re
import time

import pytest

from tests.helpers.tmux import (
    PRICE_ROW,
    cursor_line,
    ladder_rows,
    start,
    wait_for_cursor,
)

pytestmark = pytest.mark.e2e

FIRST_LADDER_BUDGET_S = 1.5  # on a warm machine (DESIGN: the first screen must be quick)


def test_lobterm_trades_from_the_ladder_in_a_real_terminal(pane, capsys):
    started = time.monotonic()
    start(pane)  # the default sim at 160x48 (tests/helpers/tmux.py)

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

    # Buy well under the market (so it rests), then see our bid marked on the cursor row. The cursor
    # appears once the ladder has measured the market and picked its zoom (about 3 s).
    screen = wait_for_cursor(pane)
    assert "auto)" in screen, screen  # the title says the zoom was picked: e.g. "1.0 per row (×10 auto)"
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


def test_a_trading_session_with_the_keys_in_a_real_terminal(pane):
    """Quote with the market maker, place and move an order, cancel it, flatten, kill switch, quit."""
    start(pane)
    pane.wait(lambda s: len(ladder_rows(s)) >= 20 and "MM paused" in s, "the desk", timeout=20)
    screen = wait_for_cursor(pane)
    for _ in range(12):  # zoom in (Z) to one tick a row, as a trader who wants to move an order by a tick
        if re.search(r" 0\.1 per row(?! \()", screen):
            break
        pane.keys("Z")
        time.sleep(0.2)
        screen = pane.text()
    pane.wait(lambda s: re.search(r" 0\.1 per row(?! \()", s), "one tick a row after Z")

    pane.keys("m")  # the market maker quotes five levels a side
    pane.wait(
        lambda s: "MM running" in s and "working 10" in s and "RUNNING" in s, "the market maker quoting"
    )

    # a bid of ours well under the market, on the cursor row: Home puts the cursor on the inside market first
    # (the cursor keeps its price while the market moves, so after the wait above it may be anywhere)
    pane.keys("Home", *["Down"] * 30, "b")
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

"""The demo-xvenue profile in a real terminal (tmux, 160x48): both sim venues on ONE consolidated ladder, an
order placed on each venue through the target-venue key, the market maker quoting on simA, and the hedger's
fills on simB after simA's fills."""

from __future__ import annotations

import re
import socket

import pytest

from lobterm.config import shipped_profile
from tests.helpers.tmux import cursor_line, start, wait_for_cursor

pytestmark = pytest.mark.e2e


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_demo_xvenue_quotes_on_simA_and_hedges_on_simB_in_a_real_terminal(pane, tmp_path):  # noqa: F811
    profile = shipped_profile("demo-xvenue")
    assert profile is not None
    config = tmp_path / "lobterm.toml"  # the shipped profile, with a free metrics port of this test's own
    config.write_text(
        profile.read_text(encoding="utf-8") + f"\n[metrics]\nport = {free_port()}\n[feed]\nenabled = false\n"
    )
    start(pane, f"--config {config} --no-record")
    screen = pane.wait(
        lambda s: (
            "A simA quote  B simB hedge" in s and re.search(r"BID A\s+BID B\s+PRICE\s+ASK A\s+ASK B", s)
        ),
        "both venues on one ladder",
    )
    assert "BTC/USDT · simB" not in screen  # no second ladder
    assert "→ A simA" in screen, screen  # the order keys start on the quote venue
    # The panels may be mid-redraw in the first frame that shows the ladder: wait for the hedge panel.
    pane.wait(lambda s: re.search(r"HEDGE\s+immediate\s+RUNNING", s), "the hedger running")
    # A bid on each venue, well under the market, through the target key (once the zoom is picked).
    wait_for_cursor(pane)
    pane.keys("PageDown")
    pane.keys("b")
    pane.wait(lambda s: "A0.010" in cursor_line(s), "our bid on simA in OUR BIDS on the cursor row")
    pane.keys("v")
    pane.wait(lambda s: "→ B simB" in s, "the target venue simB in the title")
    pane.keys("b")
    screen = pane.wait(lambda s: "B0.010" in cursor_line(s), "our bid on simB on the same row")
    pane.keys("V")  # back to simA: the market maker key acts on the target venue's market
    pane.wait(lambda s: "→ A simA" in s, "the target venue simA again")
    pane.keys("m")  # the market maker on simA (the quote venue)
    screen = pane.wait(lambda s: "RUNNING" in s.split("MARKET MAKER", 1)[-1][:80], "the market maker running")
    screen = pane.wait(
        lambda s: (
            re.search(r"fills [1-9]\d*\s+volume", s)
            and re.search(r"simB(?: BTC/US\S*)?\s+-?(?!0\.000\b)\d+\.\d+", s)
        ),
        "the hedger's fills and a position on simB",
        timeout=40,
    )
    assert re.search(r"simA(?: BTC/US\S*)?\s+-?(?!0\.000\b)\d+\.\d+", screen), (
        screen
    )  # simA's fills made the exposure
    pane.keys("q")
    screen = pane.wait(lambda s: "EXIT=" in s or "Cancel everything and quit?" in s, "the app to quit")
    assert "on simA" in screen or "EXIT=" in screen, screen  # the quit dialog names both venues' positions
    if "EXIT=" not in screen:
        pane.keys("y")
    pane.wait(lambda s: "EXIT=0" in s, "a clean exit", timeout=20)


def test_the_market_maker_centres_on_the_consolidated_microprice_in_a_real_terminal(pane, tmp_path):  # noqa: F811
    profile = shipped_profile("demo-xvenue")
    assert profile is not None
    config = tmp_path / "lobterm.toml"
    config.write_text(
        profile.read_text(encoding="utf-8")
        + f'\n[mm]\nfair_value = "consolidated_microprice"\n[metrics]\nport = {free_port()}\n'
        + "[feed]\nenabled = false\n"
    )
    start(pane, f"--config {config} --no-record")
    pane.wait(lambda s: "fair: consolidated micro -" in s, "the fair line before the market maker runs")
    pane.keys("m")
    screen = pane.wait(
        lambda s: re.search(r"fair: consolidated micro \d+\.\d+ \(A\+B\)", s), "the consolidated fair value"
    )
    assert re.search(r"MARKET MAKER simA BTC/USDT\s+RUNNING", screen), screen
    pane.keys("q")
    screen = pane.wait(lambda s: "EXIT=" in s or "Cancel everything and quit?" in s, "the app to quit")
    if "EXIT=" not in screen:
        pane.keys("y")
    pane.wait(lambda s: "EXIT=0" in s, "a clean exit", timeout=20)

"""A ladder a trader can trust, in a real terminal (tmux), in the default sim: with no key pressed for 12 s
the price on the cursor's row does not change (although the market moves); at 80x24, 100x30 and 160x48 the
five ladder columns and at least 10 price rows are on screen and the status bar shows P&L; with the order
ticket, the market maker's editor and the help open, the ladder's prices stay on screen and keep updating.

One app per size, polled (the only wait is the 12 s of stillness)."""

from __future__ import annotations

import re
import time

import pytest

from tests.helpers.tmux import PRICE_ROW, Pane, cursor_line, free_port, start

pytestmark = pytest.mark.e2e

COLUMNS = re.compile(r"OUR BIDS.*\bBIDS\b.*\bPRICE\b.*\bASKS\b.*OUR ASKS")
MICRO = re.compile(r"micro (\d+\.\d+)")
OVERLAYS = (("t", "Order ticket"), ("e", "Market maker sim"), ("?", "lobterm keys"))


def header(screen: str) -> str:
    return next((line for line in screen.splitlines() if COLUMNS.search(line)), "")


def price_span(screen: str) -> tuple[int, int]:
    """The cells of the PRICE column (from its title on the header line, whole or left of an overlay)."""
    line = next(
        (line for line in screen.splitlines() if re.search(r"OUR BIDS.*\bBIDS\b.*\bPRICE\b", line)), ""
    )
    x = line.index("PRICE")
    return x - 4, x + 7


def price_rows(screen: str, span: tuple[int, int] | None = None) -> list[str]:
    """The ladder's price rows: a price drawn in the PRICE column (not the side panels' or the status's);
    `span`: the column's cells (default: from the header on this screen)."""
    lo, hi = span or price_span(screen)
    return [m.group() for line in screen.splitlines() if (m := PRICE_ROW.search(line[lo:hi]))]


def ladder_part(screen: str, span: tuple[int, int]) -> list[str]:
    """The ladder's lines up to its PRICE column (what no overlay covers)."""
    _lo, hi = span
    lines = screen.splitlines()
    end = max(i for i, line in enumerate(lines) if PRICE_ROW.search(line[:hi]) and "│" not in line[:hi])
    return [line[:hi] for line in lines[: end + 1]]


def status_shows_pnl(screen: str) -> bool:
    return any(re.search(r"P&L -?\d+\.\d\d", line) and "pos" in line for line in screen.splitlines()[-6:])


def check_layout(pane: Pane, size: tuple[int, int]) -> str:
    screen = pane.wait(
        lambda s: header(s) and len(price_rows(s)) >= 10 and status_shows_pnl(s),
        f"the five ladder columns, >= 10 price rows and P&L in the status bar at {size[0]}x{size[1]}",
        timeout=20,
    )
    assert "Traceback" not in screen
    return screen


def check_overlays(pane: Pane, size: tuple[int, int]) -> None:
    """Each overlay open: the ladder's prices on screen and its lines changing (the market live beside it)."""
    pane.keys("Home")  # the cursor (and so the axis) to the inside market: the book's sizes are drawn
    pane.wait(lambda s: "market below" not in s and "market above" not in s, "the market in view")
    for key, title in OVERLAYS:
        pane.keys(key)
        screen = pane.wait(lambda s, t=title: t in s, f"{title!r} open at {size[0]}x{size[1]}")
        span = price_span(screen)
        assert len(price_rows(screen, span)) >= 10, f"the ladder's prices are hidden by {title!r}:\n{screen}"
        first = ladder_part(screen, span)
        pane.wait(
            lambda s, t=title, f=first, span=span: (
                t in s and len(price_rows(s, span)) >= 10 and ladder_part(s, span) != f
            ),
            f"the ladder updating beside {title!r} at {size[0]}x{size[1]}",
        )
        pane.keys("Escape")
        pane.wait(lambda s, t=title: t not in s, f"{title!r} closed")


def quit_app(pane: Pane) -> None:
    pane.keys("q")
    screen = pane.wait(lambda s: "EXIT=" in s, "the app to quit")
    assert "EXIT=0" in screen and "Traceback" not in screen, screen
    pane.tmux("kill-session", "-t", "lob")


def test_the_ladder_at_each_size_with_overlays_open_and_a_still_cursor(pane, tmp_path):
    config = tmp_path / "lobterm.toml"
    config.write_text(f"[metrics]\nport = {free_port()}\n[feed]\nenabled = false\n")
    extra = f"--config {config} --no-record"

    # 160x48: the cursor keeps its price for 12 s with no key pressed, while the market moves.
    size = (160, 48)
    start(pane, extra, size=size)
    screen = check_layout(pane, size)
    screen = pane.wait(lambda s: PRICE_ROW.search(cursor_line(s)) and MICRO.search(s), "the cursor and micro")
    price = PRICE_ROW.search(cursor_line(screen)).group()
    micro = set()
    deadline = time.monotonic() + 12
    while time.monotonic() < deadline:
        screen = pane.text()
        line = cursor_line(screen)
        assert line, f"no cursor row on screen:\n{screen}"
        assert PRICE_ROW.search(line).group() == price, f"the cursor moved from {price}:\n{screen}"
        micro.update(MICRO.findall(screen))
        time.sleep(0.25)
    assert len(micro) > 1, f"the market moved meanwhile (else this proves nothing): {sorted(micro)}"
    check_overlays(pane, size)
    quit_app(pane)

    for size in ((100, 30), (80, 24)):
        start(pane, extra, size=size)
        check_layout(pane, size)
        check_overlays(pane, size)
        quit_app(pane)

"""The TUI tests' shared parts: a calm sim config, waiting for the first ladder, the notifications shown,
the market maker and our book orders, the market maker editor."""

from __future__ import annotations

from textual.widgets import Input, Static

from lobterm.config import Config
from lobterm.engine.events import OUR_OWNER
from lobterm.widgets.ladder import PriceLadder
from lobterm.widgets.mm_editor import MarketMakerEditor
from tests.ui.frozen_app import wait_for

SIZE = (160, 48)


def calm_config(**keys: str) -> Config:
    cfg = Config()
    sim = cfg.sim
    sim.seed = 7
    sim.taker_per_s = 0.0
    sim.vol_bps = 0.0
    sim.jump_per_min = 0.0
    sim.burst_per_min = 0.0
    cfg.ui.flash_ms = 0  # tests that count repaints switch the flash on themselves
    cfg.ui.ticks_per_row = 1  # a still market: nothing for the auto zoom to measure, no wait for it
    cfg.keys.update(keys)
    return cfg


async def ready(pilot) -> PriceLadder:
    app = pilot.app
    ladder = app.ladder
    await wait_for(
        pilot,
        lambda: (
            ladder.top_price is not None
            and ladder.cursor_price is not None  # an auto zoom places it after its first seconds
            and ladder.cell_text(ladder.cursor_price, "price")
        ),
        what="the first ladder",
    )
    return ladder


def notifications(app) -> list:
    return list(app._notifications)


def book_orders(app, side: int | None = None, venue: str = "sim") -> list[tuple[int, int, int]]:
    """(side, price, size) of our orders resting in a sim venue's matching book."""
    return sorted(o[1:4] for o in our_resting_at(app, venue) if side is None or o[1] == side)


def our_resting_at(app, venue: str) -> list[tuple]:

    v = app.kernel.venues[venue]
    sim = getattr(v, "data", v)  # a paper desk wraps the sim: its matching book is the sim's
    return [o for o in sim.book.resting_orders() if o[4] == OUR_OWNER]


def mm_of(app):
    return app.desk.market_maker


async def open_editor(pilot, key: str = "e") -> MarketMakerEditor:
    await pilot.press(key)
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, MarketMakerEditor), what="the editor")
    return pilot.app.screen


async def type_into(pilot, editor: MarketMakerEditor, field: str, text: str) -> None:
    """Focus `field` (as a click would; tab order has its own test), clear it and type `text`.

    Tabbing through up to 20 fields cost 40-60 s per test on a loaded machine: each key waits for the
    app, which is busy with the live sim."""
    editor.query_one(f"#{field}", Input).focus()
    await pilot.pause()
    assert editor.focused is not None and editor.focused.id == field
    await pilot.press("end", "ctrl+u", *text)
    assert editor.query_one(f"#{field}", Input).value == text


def message(editor: MarketMakerEditor, field: str) -> str:
    return str(editor.query_one(f"#{field}-error", Static).content)


async def cursor_below_best_bid(pilot, rows: int = 3) -> int:
    """Put the cursor `rows` ticks under the best bid (a price where a buy rests) and return it."""
    ladder = pilot.app.ladder
    await pilot.press("home")
    best_bid = pilot.app.market.unified.best_bid()[0]
    await pilot.press(*["down"] * (ladder.cursor_price - best_bid + rows))
    assert ladder.cursor_price == best_bid - rows
    return ladder.cursor_price


def ours(ladder: PriceLadder, price: int, column: str) -> str | None:
    """Our size and order count at a price, without the queue estimate that follows them ("q…")."""
    text = ladder.cell_text(price, column)
    return None if text is None else text.split(" q")[0]


def our_resting(app) -> list[tuple]:
    venue = app.kernel.venues["sim"]
    sim = getattr(venue, "data", venue)  # a paper desk wraps the sim: its matching book is the sim's
    return [o for o in sim.book.resting_orders() if o[4] == OUR_OWNER]

"""The TUI on a keyed venue (the Binance loopback, real ccxt classes): what the trader quits leaves
nothing at the venue; and the strategies key runs a user strategy from the config."""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))

import pytest  # noqa: E402
from binance_loopback import BinanceLoopback  # noqa: E402

from lobterm.app import LobtermApp  # noqa: E402
from lobterm.assemble import build, build_async  # noqa: E402
from lobterm.config import Config  # noqa: E402
from lobterm.widgets.help import ConfirmQuitScreen  # noqa: E402
from tests.helpers.ccxt import KEY, SECRET, seed_book, venue_config  # noqa: E402
from tests.helpers.ui import SIZE, calm_config, ready, wait_for  # noqa: E402


@pytest.fixture
async def srv():
    s = BinanceLoopback(api_key=KEY, secret=SECRET)
    seed_book(s)
    await s.start()
    yield s
    await s.stop()


async def test_quitting_the_tui_on_a_keyed_venue_leaves_none_of_our_orders_there(srv):
    cfg = Config(venues={"binance": venue_config(srv)})
    cfg.mm = {"levels": 2, "spread_ticks": 30}
    cfg.ui.ticks_per_row = 1  # a still loopback book: no seconds to wait for the auto zoom
    asm = await build_async(cfg, "tui")
    app = LobtermApp(cfg, asm)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("m")
        await wait_for(pilot, lambda: len(srv.open_orders()) >= 4, what="quotes at the venue", timeout=10)
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmQuitScreen), what="the question")
        t0 = time.monotonic()
        await pilot.press("y")
        await wait_for(pilot, lambda: not app.is_running, what="the app to exit", timeout=15)
        quit_s = time.monotonic() - t0
    assert srv.open_orders() == [], "the venue holds none of ours"
    assert app.return_code == 0 and app.exit_lines == []
    assert quit_s < 2.0, f"the quit took {quit_s:.2f} s (issue 11: within 2 s when the venue answers)"


async def test_the_strategies_key_starts_and_pauses_a_user_strategy():
    cfg = calm_config()
    cfg.strategies = {
        "touch": {"class": "lobterm.examples.touch_quoter:TouchQuoter", "offset_ticks": 2, "size_lots": 3}
    }
    app = LobtermApp(cfg, build(cfg, "tui"))
    touch = app.kernel.strategies["touch"]
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await ready(pilot)
        assert touch.state == "paused"
        await pilot.press("U")
        await wait_for(pilot, lambda: touch.state == "running", what="running")
        await wait_for(
            pilot,
            lambda: len([o for o in app.kernel.oms.working.values() if o.tag == "touch"]) == 2,
            what="its bid and ask",
        )
        await pilot.press("U")
        await wait_for(pilot, lambda: touch.state == "paused", what="paused")
        await wait_for(
            pilot,
            lambda: not [o for o in app.kernel.oms.working.values() if o.tag == "touch"],
            what="its orders cancelled",
        )


async def test_the_strategies_key_says_so_when_there_is_none():
    app = LobtermApp(calm_config())
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await ready(pilot)
        await pilot.press("U")
        await wait_for(
            pilot,
            lambda: any("No strategy of yours" in str(n.message) for n in app._notifications),
            what="the notice",
        )

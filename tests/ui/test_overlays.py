"""The market stays visible (issue 12.3): with the ticket, the parameter editor, help or a question open,
the ladder is still drawn beside the overlay and keeps updating as the market moves."""

from __future__ import annotations

import re

from frozen_app import frozen_config, wait_for

from lobterm.app import LobtermApp
from lobterm.assemble import build_sim_kernel
from lobterm.widgets.help import ConfirmScreen, HelpScreen
from lobterm.widgets.mm_editor import MarketMakerEditor
from lobterm.widgets.overlay import Overlay
from lobterm.widgets.ticket import OrderTicket

PRICE = re.compile(r"\b6\d{4}\.\d\b")


def _screen_text(app) -> str:
    return "\n".join(s.text for s in app.screen._compositor.render_strips())


async def test_ladder_drawn_and_live_under_every_overlay() -> None:
    config = frozen_config()
    kernel, venue = build_sim_kernel(config, virtual=True)
    venue.open()
    for _ in range(60):
        venue.step()
    app = LobtermApp(config, kernel=kernel, live=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_for(pilot, lambda: app.ladder.top_price is not None, what="the first ladder")
        for key, kind in (("t", OrderTicket), ("question_mark", HelpScreen), ("e", MarketMakerEditor)):
            await pilot.press(key)
            await wait_for(pilot, lambda kind=kind: isinstance(app.screen, kind), what=kind.__name__)
            assert isinstance(app.screen, Overlay)
            await wait_for(pilot, lambda: "PRICE" in _screen_text(app), what="the first frame")
            before = _screen_text(app)
            assert "PRICE" in before and len(PRICE.findall(before)) >= 10, before
            assert app.ladder.screen.is_current
            for _ in range(400):  # the market moves
                venue.step()
            await wait_for(
                pilot,
                lambda b=before: _screen_text(app) != b,
                what=f"the ladder to change under {kind.__name__}",
            )
            await pilot.press("escape")
            await wait_for(
                pilot, lambda kind=kind: not isinstance(app.screen, kind), what="the overlay to close"
            )
        # a question (the kill switch's re-arm) too
        app.push_screen(ConfirmScreen("Re-arm?"))
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the question")
        await wait_for(pilot, lambda: "PRICE" in _screen_text(app), what="the first frame under the question")
        before = _screen_text(app)
        assert "PRICE" in before and len(PRICE.findall(before)) >= 10
        for _ in range(400):
            venue.step()
        await wait_for(
            pilot, lambda: _screen_text(app) != before, what="the ladder to change under a question"
        )

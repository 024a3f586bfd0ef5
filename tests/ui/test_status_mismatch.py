"""A PositionMismatch from a keyed venue's reconciler turns the status bar red and names it, until the venue
and we agree again (an event with equal amounts). Real kernel and bus; the event as the reconciler makes it."""

from __future__ import annotations

from frozen_app import frozen_app, frozen_config, wait_for

from lobterm.engine.events import PositionMismatch


async def test_a_position_mismatch_is_named_in_red_in_the_status_bar_until_it_is_gone():
    app = frozen_app(frozen_config())
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_for(pilot, lambda: app.ladder.cursor_price is not None, what="the first ladder")
        assert "MISMATCH" not in str(app.status.content)
        now = app.kernel.clock.now()
        app.kernel.bus.publish(PositionMismatch(now, "sim", "BTC", "0.010", "0.020"))
        text = "POSITION MISMATCH sim BTC: ours 0.010, venue 0.020"
        await wait_for(pilot, lambda: text in str(app.status.content), what="the mismatch")
        content = app.status.content
        span = next(s for s in content.spans if "MISMATCH" in str(content)[s.start : s.end])
        assert "$error" in str(span.style)
        app.kernel.bus.publish(PositionMismatch(now, "sim", "BTC", "0.020", "0.020"))
        await wait_for(pilot, lambda: "MISMATCH" not in str(app.status.content), what="the all-clear")

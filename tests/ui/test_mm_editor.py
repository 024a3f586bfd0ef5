"""The market maker's parameter editor (`e`), pressed through Pilot against the real kernel and the real sim
venue: a change shows in the quote panel and in our quotes resting in the sim's matching book; a bad value
shows its message beside the field and changes nothing."""

from __future__ import annotations

from textual.widgets import Input, Static

from lobterm.app import LobtermApp
from lobterm.engine.events import BUY, SELL
from lobterm.widgets.help import HelpScreen
from lobterm.widgets.mm_editor import MarketMakerEditor
from tests.helpers.ui import (
    SIZE,
    book_orders,
    calm_config,
    message,
    mm_of,
    notifications,
    open_editor,
    ready,
    type_into,
    wait_for,
)


def quoted_spread(app) -> int:
    orders = book_orders(app)
    return min(p for s, p, _ in orders if s == SELL) - max(p for s, p, _ in orders if s == BUY)


async def test_editor_opens_with_the_market_makers_current_values_in_base_units():
    app = LobtermApp(calm_config())
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        editor = await open_editor(pilot)
        fields = ("levels", "spread_ticks", "size_lots", "max_position_lots", "refresh_tolerance_ticks")
        value = {f: editor.query_one(f"#{f}", Input).value for f in fields}
        assert value == {
            "levels": "5",
            "spread_ticks": "2",
            "size_lots": "0.010",
            "max_position_lots": "0.100",
            "refresh_tolerance_ticks": "0",
        }
        assert str(editor.query_one("#post_only").render()).strip("◂▸ ") == "yes"
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, MarketMakerEditor), what="the editor closed")


async def test_tab_walks_the_fields_in_the_order_they_are_drawn():
    app = LobtermApp(calm_config())
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        editor = await open_editor(pilot)
        inputs = [w.id for w in editor.query(Input) if w.focusable]
        assert len(inputs) >= 5
        editor.query_one(f"#{inputs[0]}", Input).focus()
        await pilot.pause()
        for expected in inputs[1:4]:
            await pilot.press("tab")
            focused = editor.focused
            # the post-only switch (not an Input) may sit between two fields
            while focused is not None and not isinstance(focused, Input):
                await pilot.press("tab")
                focused = editor.focused
            assert focused is not None and focused.id == expected, (expected, focused)
        await pilot.press("escape")


async def test_applied_changes_show_in_the_quote_panel_and_move_our_quotes_in_the_book():
    app = LobtermApp(calm_config())
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await ready(pilot)
        mm = mm_of(app)
        panel = app.desk.quote_panel
        await pilot.press("m")
        await wait_for(pilot, lambda: len(book_orders(app)) == 10 and quoted_spread(app) == 2, what="quoting")
        editor = await open_editor(pilot)
        await type_into(pilot, editor, "levels", "3")
        await type_into(pilot, editor, "spread_ticks", "6")
        await type_into(pilot, editor, "size_lots", "0.020")
        assert "levels per side 3" in str(editor.query_one("#mm-edit-summary", Static).content)
        await pilot.press("enter")
        await wait_for(pilot, lambda: not isinstance(app.screen, MarketMakerEditor), what="the editor closed")
        assert (mm.params.levels, mm.params.spread_ticks, mm.params.size_lots) == (3, 6, 20)
        await wait_for(
            pilot,
            lambda: (
                len(book_orders(app)) == 6
                and quoted_spread(app) == 6
                and {size for _s, _p, size in book_orders(app)} == {20}
            ),
            what="the new quotes",
        )
        shown = ("levels 3", "spread 6 ticks", "size 0.020")
        await wait_for(pilot, lambda: all(t in str(panel.content) for t in shown), what="the panel")
        assert any(n.title == "Market maker" and "size 0.020" in n.message for n in notifications(app))


async def test_a_bad_value_shows_its_message_beside_the_field_and_changes_nothing():
    app = LobtermApp(calm_config())
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        mm = mm_of(app)
        before, version = mm.params, mm.params_version
        editor = await open_editor(pilot)
        await type_into(pilot, editor, "levels", "0")
        await type_into(pilot, editor, "size_lots", "0.0105")
        await type_into(pilot, editor, "level_step_ticks", "two")
        assert message(editor, "levels") == "0: must be in 1..50"
        assert message(editor, "size_lots") == "0.0105: is not a multiple of the lot size 0.001"
        assert message(editor, "level_step_ticks") == "two: must be a whole number"
        assert editor.query_one("#levels", Input).has_class("-invalid")
        await type_into(pilot, editor, "spread_ticks", "8")  # a good field among bad ones: not applied alone
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is editor and mm.params == before and mm.params_version == version
        await type_into(pilot, editor, "levels", "51")
        assert message(editor, "levels") == "51: must be in 1..50"
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, MarketMakerEditor), what="the editor closed")
        assert mm.params == before and mm.params_version == version


async def test_post_only_and_per_level_sizes_are_editable():
    app = LobtermApp(calm_config())
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        mm = mm_of(app)
        editor = await open_editor(pilot)
        await type_into(pilot, editor, "sizes", "0.010 0.030")
        await type_into(pilot, editor, "levels", "2")
        editor.query_one("#post_only").focus()
        await pilot.press("right", "enter")
        await wait_for(pilot, lambda: not isinstance(app.screen, MarketMakerEditor), what="the editor closed")
        assert (mm.params.sizes, mm.params.levels, mm.params.post_only) == ((10, 30), 2, False)
        await pilot.press("m")
        await wait_for(
            pilot,
            lambda: sorted(size for _s, _p, size in book_orders(app)) == [10, 10, 30, 30],
            what="per-level sizes in the book",
        )


async def test_the_editor_key_is_listed_in_help_and_rebindable():
    app = LobtermApp(calm_config(mm_edit="E"))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("e")
        await pilot.pause()
        assert not isinstance(app.screen, MarketMakerEditor)
        assert "E MM edit" in str(app.query_one("#keys").content).replace("\u00a0", " ")
        await open_editor(pilot, "E")
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, MarketMakerEditor), what="closed")
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), what="help")
        assert "mm_edit" in str(app.screen.query_one("#help-keys", Static).content)

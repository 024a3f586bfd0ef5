"""GLFT in the `e` editor and in the quote panel, pressed through Pilot against the real kernel and the
real sim venue: GLFT's own fields (gamma, delta, adj1, adj2) appear only in GLFT mode, a change applies
live and moves the panel's GLFT line (half-spread and skew from the closed form), a bad value is refused
beside its field."""

from __future__ import annotations

import math
import re
from dataclasses import replace

from textual.widgets import Input

from lobterm.app import LobtermApp
from lobterm.trading.quoting import glft
from lobterm.widgets.mm_editor import GLFT_FIELDS, MarketMakerEditor
from tests.helpers.ui import SIZE, calm_config, message, mm_of, open_editor, ready, type_into, wait_for

GLFT_LINE = re.compile(
    r"GLFT A (?P<a>\S+) k (?P<k>\S+) sigma (?P<sigma>\S+) half (?P<half>\S+)t skew (?P<skew>\S+)t \((?P<when>[^)]*)\)"
)


def glft_config(**mm: float):
    cfg = calm_config()
    cfg.mm = replace(cfg.mm, mode="glft", **mm)
    return cfg


def panel_glft(app) -> dict[str, str]:
    text = str(app.desk.quote_panel.content)
    found = GLFT_LINE.search(text)
    assert found is not None, text
    return found.groupdict()


def closed_form_half(mm) -> float:
    p = mm.params
    _r, half, _skew = glft(
        0.0, 0.0, p.glft_gamma, p.glft_delta, mm.a_estimate, mm.k_estimate, mm.sigma_ticks, p.adj1, p.adj2
    )
    return half


async def test_the_quote_panel_shows_the_glft_calibration_line():
    app = LobtermApp(glft_config(glft_a=2.0, k=0.5, estimate_sigma=False, sigma_ticks=1.5))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        mm = mm_of(app)
        await wait_for(pilot, lambda: "GLFT A" in str(app.desk.quote_panel.content), what="the GLFT line")
        shown = panel_glft(app)
        view = mm.glft_view()
        assert shown["when"] == "prior" and not view["fitted"]  # no trades in the calm sim: the priors
        assert float(shown["a"]) == 2.0 and float(shown["k"]) == 0.5
        assert math.isclose(float(shown["half"]), view["half_spread"], rel_tol=5e-3)
        assert math.isclose(float(shown["half"]), closed_form_half(mm), rel_tol=5e-3)
        assert math.isclose(float(shown["skew"]), view["skew"], rel_tol=5e-3, abs_tol=1e-9)


async def test_glft_fields_show_only_in_glft_mode():
    app = LobtermApp(calm_config())
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        editor = await open_editor(pilot)
        for f in GLFT_FIELDS:
            assert not editor.query(f"#{f.name}")
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, MarketMakerEditor), what="closed")


async def test_glft_parameters_are_edited_live_and_move_the_panel_line():
    app = LobtermApp(glft_config(glft_a=2.0, k=0.5, estimate_sigma=False, sigma_ticks=1.5))
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await ready(pilot)
        mm = mm_of(app)
        editor = await open_editor(pilot)
        assert "GLFT" in str(editor.query_one(".title").content)
        shown = {f.name: editor.query_one(f"#{f.name}", Input).value for f in GLFT_FIELDS}
        assert shown == {"glft_gamma": "0.05", "glft_delta": "1", "adj1": "1", "adj2": "0.05"}
        half_before = float(panel_glft(app)["half"])
        await type_into(pilot, editor, "glft_gamma", "0.2")
        await type_into(pilot, editor, "adj1", "3")
        await type_into(pilot, editor, "adj2", "0.5")
        await type_into(pilot, editor, "glft_delta", "2")
        summary = str(editor.query_one("#mm-edit-summary").content)
        assert "GLFT gamma 0.2" in summary and "adj1 (half-spread) 3" in summary
        await pilot.press("enter")
        await wait_for(pilot, lambda: not isinstance(app.screen, MarketMakerEditor), what="the editor closed")
        p = mm.params
        assert (p.glft_gamma, p.glft_delta, p.adj1, p.adj2) == (0.2, 2.0, 3.0, 0.5)
        want = closed_form_half(mm)
        assert want > half_before * 2  # adj1 3 alone triples it
        await wait_for(
            pilot,
            lambda: math.isclose(float(panel_glft(app)["half"]), want, rel_tol=5e-3),
            what="the panel's new half-spread",
        )


async def test_a_bad_glft_value_is_refused_beside_its_field():
    app = LobtermApp(glft_config())
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        mm = mm_of(app)
        before, version = mm.params, mm.params_version
        editor = await open_editor(pilot)
        await type_into(pilot, editor, "adj1", "0")
        await type_into(pilot, editor, "glft_gamma", "-1")
        await type_into(pilot, editor, "adj2", "x")
        assert message(editor, "adj1") == "0: must be in (0, 1000]"
        assert message(editor, "glft_gamma") == "-1: must be in (0, 1e+06]"
        assert message(editor, "adj2") == "x: must be a number"
        assert editor.query_one("#adj1", Input).has_class("-invalid")
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is editor and mm.params == before and mm.params_version == version
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, MarketMakerEditor), what="closed")
        assert mm.params == before


async def test_the_glft_line_follows_the_estimated_sigma_without_a_requote():
    cfg = glft_config(glft_a=2.0, k=0.5)  # sigma estimated from the mid
    cfg.sim.vol_bps = 5.0
    app = LobtermApp(cfg)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        mm = mm_of(app)
        await wait_for(pilot, lambda: mm.glft_view()["sigma"] != 1.0, what="a sigma estimate")

        def agrees() -> bool:
            view = mm.glft_view()
            shown = panel_glft(app)
            return math.isclose(float(shown["sigma"]), view["sigma"], rel_tol=5e-3) and math.isclose(
                float(shown["half"]), view["half_spread"], rel_tol=5e-3
            )

        await wait_for(pilot, agrees, what="the panel showing the model's current sigma and half-spread")

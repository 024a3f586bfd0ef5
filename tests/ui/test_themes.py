"""Themes: the built-in ones, user theme files, switching at run time (the ladder's colours follow)."""

from __future__ import annotations

from pathlib import Path

import pytest
from frozen_app import SIZE, frozen_app, frozen_config, wait_for
from textual.color import Color
from textual.widgets._toast import Toast

from lobterm.widgets.themes import (
    BUILTIN_NAMES,
    LADDER_KEYS,
    ThemeError,
    builtin_themes,
    load_theme_file,
    load_user_themes,
    next_theme,
    parse_theme,
)

ROOT = Path(__file__).resolve().parents[2]


def test_the_three_builtin_themes_define_every_ladder_colour():
    themes = builtin_themes()
    assert tuple(themes) == BUILTIN_NAMES == ("dark", "light", "high-contrast")
    assert themes["light"].dark is False and themes["dark"].dark is True
    for theme in themes.values():
        assert {f"ladder-{k}" for k in LADDER_KEYS} <= set(theme.variables)
    # Distinct palettes, not copies.
    assert len({themes[n].variables["ladder-bid"] for n in BUILTIN_NAMES}) == 3


def test_the_example_themes_in_the_repo_load():
    files = sorted((ROOT / "themes").glob("*.toml"))
    assert files
    for f in files:
        theme = load_theme_file(f)
        assert theme.variables["ladder-bid"] != builtin_themes()["dark"].variables["ladder-bid"]


@pytest.mark.parametrize(
    "data, key, problem",
    [
        ({"dark": True}, "name", "a theme needs a name"),
        ({"name": "x", "colour": {}}, "colour", "unknown key"),
        ({"name": "x", "ladder": {"bid": "bleu"}}, "ladder.bid", "'bleu' is not a colour"),
        ({"name": "x", "ladder": {"bid": 12}}, "ladder.bid", "must be a colour in quotes"),
        ({"name": "x", "ladder": {"bids": "red"}}, "ladder.bids", "unknown colour"),
        ({"name": "x", "colors": {"primary": "#12"}}, "colors.primary", "is not a colour"),
        ({"name": "x", "dark": "yes"}, "dark", "must be true or false"),
        ({"name": "x", "ladder": "red"}, "ladder", "must be a [table]"),
    ],
)
def test_a_bad_theme_names_the_key_and_what_is_wrong(data, key, problem):
    with pytest.raises(ThemeError) as err:
        parse_theme(data, "my.toml")
    assert err.value.key == key and problem in err.value.problem
    assert str(err.value).startswith(f"my.toml: {key}: ")


def test_a_partial_user_theme_falls_back_on_the_builtin_light_or_dark():
    theme = parse_theme({"name": "pale", "dark": False, "ladder": {"bid": "#010203"}}, "pale.toml")
    light = builtin_themes()["light"]
    assert theme.variables["ladder-bid"] == "#010203"
    assert (
        theme.variables["ladder-ask"] == light.variables["ladder-ask"]
        and theme.background == light.background
    )


def test_user_themes_load_and_a_bad_file_is_reported_not_fatal(tmp_path):
    (tmp_path / "a-good.toml").write_text('name = "good"\n[ladder]\nbid = "#111111"\n')
    (tmp_path / "b-bad.toml").write_text('name = "bad"\n[ladder]\nbid = "not a colour"\n')
    (tmp_path / "c-broken.toml").write_text('name = "broken\n')
    themes, problems = load_user_themes(tmp_path)
    assert [t.name for t in themes] == ["good"]
    assert [(Path(p.where).name, p.key) for p in problems] == [
        ("b-bad.toml", "ladder.bid"),
        ("c-broken.toml", "(file)"),
    ]


def test_next_theme_cycles_and_wraps():
    assert next_theme(["dark", "light", "high-contrast"], "light") == "high-contrast"
    assert next_theme(["dark", "light", "high-contrast"], "high-contrast") == "dark"
    assert next_theme(["dark", "light"], "textual-dark") == "dark"


def best_bid_cell_style(app):
    """The style the ladder actually drew the best bid's size with (from the rendered strip)."""
    ladder = app.ladder
    bid, size = app.market.unified.best_bid()
    text = app.market.instrument.format_size(size)
    strip = ladder.render_line(ladder.row_of(bid))
    (segment,) = [s for s in strip if s.text.strip() == text]
    return segment.style


async def test_switching_theme_redraws_the_ladder_in_the_new_colours():
    app = frozen_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.ladder.top_price is not None, what="the ladder")
        assert app.theme == "dark" and app.theme_names[:3] == ["dark", "light", "high-contrast"]
        seen = []
        for name in BUILTIN_NAMES:
            expected = builtin_themes()[name].variables["ladder-best-bid"]
            await wait_for(
                pilot,
                lambda: (
                    best_bid_cell_style(app).bgcolor is not None
                    and Color.from_rich_color(best_bid_cell_style(app).bgcolor) == Color.parse(expected)  # noqa: B023
                ),
                what=f"the best bid in the {name} colours",
            )
            seen.append(best_bid_cell_style(app).bgcolor)
            await pilot.press("ctrl+t")
            await wait_for(pilot, lambda: app.theme != name, what="the next theme")  # noqa: B023
        assert len(set(seen)) == 3 and app.theme == "dark"  # round again


async def test_the_configured_theme_is_used_from_the_start():
    app = frozen_app(frozen_config("high-contrast"))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.ladder.top_price is not None, what="the ladder")
        assert app.theme == "high-contrast"
        assert app.ladder.styles.background == Color.parse(builtin_themes()["high-contrast"].background)


async def test_a_bad_user_theme_file_gives_a_visible_notice_and_the_rest_still_works(tmp_path, monkeypatch):
    themes = tmp_path / "lobterm" / "themes"
    themes.mkdir(parents=True)
    (themes / "mine.toml").write_text('name = "mine"\n[ladder]\nbest-bid = "#123456"\n')
    (themes / "typo.toml").write_text('name = "typo"\n[ladder]\nbest-bid = "#12345g"\n')
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    app = frozen_app(frozen_config("mine"))
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await wait_for(pilot, lambda: app.screen.query(Toast), what="a toast on screen")
        (note,) = [n for n in app._notifications if n.title == "Theme"]
        assert note.severity == "error"
        assert "typo.toml: ladder.best-bid: '#12345g' is not a colour" in note.message
        toast_text = " ".join(str(t.render()) for t in app.screen.query(Toast))
        assert "typo.toml" in toast_text
        assert app.theme == "mine" and "mine" in app.theme_names and "typo" not in app.theme_names
        await wait_for(
            pilot,
            lambda: Color.from_rich_color(best_bid_cell_style(app).bgcolor) == Color.parse("#123456"),
            what="the user's best bid colour",
        )


async def test_an_unknown_theme_name_in_config_is_a_notice_and_dark_is_used(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    app = frozen_app(frozen_config("no-such-theme"))
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await wait_for(pilot, lambda: app._notifications, what="a notice")
        (note,) = list(app._notifications)
        assert "ui.theme" in note.message and "no-such-theme" in note.message
        assert app.theme == "dark"

"""Themes: the built-in ones (dark, light, high-contrast) and the user's, as Textual `Theme`s.

A theme is a small TOML file, the same format for the built-in themes (lobterm/themes/*.toml, package
data shipped with lobterm) and for user themes (`$XDG_CONFIG_HOME/lobterm/themes/*.toml`):

    name = "my-theme"
    dark = true            # optional: which built-in (dark or light) fills in what is not given
    [colors]               # optional: Textual's theme colours (primary, accent, background, panel, ...)
    primary = "#4f8fd6"
    [ladder]               # optional: the ladder's colours, CSS variables $ladder-<key>
    bid = "#79b8ff"

Colours are anything Textual parses ("#rrggbb", "rgb(1,2,3)", "red"). A bad file never stops the
app: it is skipped and the problem, naming the file and the key, is shown as a notice.
"""

from __future__ import annotations

import os
import re
import tomllib
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual.color import Color, ColorParseError
from textual.theme import Theme

if TYPE_CHECKING:
    from textual.app import App

__all__ = [
    "BUILTIN_NAMES",
    "LADDER_KEYS",
    "ThemeError",
    "builtin_themes",
    "install_themes",
    "ladder_variables",
    "load_theme_file",
    "load_user_themes",
    "next_theme",
    "parse_theme",
    "user_theme_dir",
]

BUILTIN_NAMES = ("dark", "light", "high-contrast")
_BUILTIN_DIR = Path(__file__).resolve().parents[1] / "themes"  # package data, not code

#: The ladder's colours; each is the CSS variable `$ladder-<key>`.
LADDER_KEYS = (
    "bid",
    "ask",
    "best-bid",
    "best-ask",
    "best-text",
    "ours",
    "ours-text",
    "cursor",
    "last",
    "last-text",
    "last-buy",
    "last-sell",
    "price-bid",
    "price-ask",
)
_COLOR_KEYS = (
    "primary",
    "secondary",
    "accent",
    "warning",
    "error",
    "success",
    "foreground",
    "background",
    "surface",
    "panel",
    "boost",
)
_TOP_KEYS = ("name", "dark", "colors", "ladder")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")


class ThemeError(ValueError):
    """A theme file problem, naming the file, the key and what is wrong."""

    def __init__(self, where: str, key: str, problem: str) -> None:
        self.where = where
        self.key = key
        self.problem = problem
        super().__init__(f"{where}: {key}: {problem}")


def _colour(where: str, key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ThemeError(where, key, f'{value!r} must be a colour in quotes, such as "#79b8ff"')
    try:
        Color.parse(value)
    except ColorParseError:
        raise ThemeError(
            where, key, f'{value!r} is not a colour (use "#rrggbb", "rgb(r,g,b)" or a name)'
        ) from None
    return value


def parse_theme(data: dict[str, Any], where: str, bases: dict[str, Theme] | None = None) -> Theme:
    """A Theme from a parsed TOML table; what it leaves out comes from the built-in dark or light theme."""
    unknown = sorted(set(data) - set(_TOP_KEYS))
    if unknown:
        raise ThemeError(where, unknown[0], f"unknown key (known: {', '.join(_TOP_KEYS)})")
    name = data.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ThemeError(
            where, "name", f"{name!r}: a theme needs a name of letters, digits, '-', '_' or '.' (at most 40)"
        )
    dark = data.get("dark", True)
    if not isinstance(dark, bool):
        raise ThemeError(where, "dark", f"{dark!r} must be true or false")
    tables: dict[str, dict[str, Any]] = {}
    for table, known in (("colors", _COLOR_KEYS), ("ladder", LADDER_KEYS)):
        values = data.get(table, {})
        if not isinstance(values, dict):
            raise ThemeError(where, table, "must be a [table] of colours")
        for key, value in values.items():
            if key not in known:
                raise ThemeError(where, f"{table}.{key}", f"unknown colour (known: {', '.join(known)})")
            _colour(where, f"{table}.{key}", value)
        tables[table] = values
    base = (bases if bases is not None else builtin_themes()).get("dark" if dark else "light")
    colours: dict[str, Any] = {}
    variables: dict[str, str] = {}
    if base is not None:
        colours = {k: getattr(base, k) for k in _COLOR_KEYS}
        variables = dict(base.variables)
    colours.update(tables["colors"])
    variables.update({f"ladder-{k}": v for k, v in tables["ladder"].items()})
    if colours.get("primary") is None:
        raise ThemeError(
            where, "colors.primary", "missing (a built-in theme without it has nothing to fall back on)"
        )
    missing = [k for k in LADDER_KEYS if f"ladder-{k}" not in variables]
    if missing:
        raise ThemeError(where, f"ladder.{missing[0]}", "missing")
    return Theme(name=name, dark=dark, variables=variables, **colours)


def load_theme_file(path: str | os.PathLike, bases: dict[str, Theme] | None = None) -> Theme:
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ThemeError(str(p), "(file)", f"not valid TOML: {exc}") from None
    except OSError as exc:
        raise ThemeError(str(p), "(file)", f"cannot be read: {exc.strerror}") from None
    return parse_theme(data, str(p), bases)


@cache
def builtin_themes() -> dict[str, Theme]:
    """The shipped themes, by name (dark first: the others fall back on it and on light)."""
    themes: dict[str, Theme] = {}
    for name in BUILTIN_NAMES:
        themes[name] = load_theme_file(_BUILTIN_DIR / f"{name}.toml", bases=themes)
    return themes


def ladder_variables(dark: bool = True) -> dict[str, str]:
    """The ladder's CSS variables of the built-in dark (or light) theme: the app's fallback for any theme
    that does not define them (Textual's own themes)."""
    return {
        k: v
        for k, v in builtin_themes()["dark" if dark else "light"].variables.items()
        if k.startswith("ladder-")
    }


def user_theme_dir() -> Path:
    xdg = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(xdg) / "lobterm" / "themes"


def load_user_themes(directory: str | os.PathLike | None = None) -> tuple[list[Theme], list[ThemeError]]:
    """Every `*.toml` theme in the user's theme directory (sorted by file name) and the problems with
    the files that could not be used."""
    d = Path(directory) if directory is not None else user_theme_dir()
    themes: list[Theme] = []
    problems: list[ThemeError] = []
    try:
        files = sorted(d.glob("*.toml")) if d.is_dir() else []
    except OSError as exc:
        return [], [ThemeError(str(d), "(directory)", f"cannot be read: {exc.strerror}")]
    for f in files:
        try:
            themes.append(load_theme_file(f))
        except ThemeError as exc:
            problems.append(exc)
    return themes, problems


def install_themes(
    app: App, wanted: str, directory: str | os.PathLike | None = None
) -> tuple[list[str], list[str]]:
    """Register the built-in and user themes with `app` and switch to `wanted`.

    Returns (the names of lobterm's themes in cycling order, problems for the trader to read)."""
    names: list[str] = []
    problems: list[str] = []
    for theme in builtin_themes().values():
        app.register_theme(theme)
        names.append(theme.name)
    user, errors = load_user_themes(directory)
    problems += [f"theme skipped: {e}" for e in errors]
    for theme in user:
        app.register_theme(theme)
        if theme.name not in names:
            names.append(theme.name)
    if wanted in app.available_themes:
        app.theme = wanted
    else:
        problems.append(f"ui.theme: no theme {wanted!r} (have: {', '.join(names)}); using dark")
        app.theme = "dark"
    return names, problems


def next_theme(names: list[str] | tuple[str, ...], current: str) -> str:
    """The theme after `current` in `names` (the first when `current` is not one of them)."""
    if not names:
        return current
    try:
        return names[(list(names).index(current) + 1) % len(names)]
    except ValueError:
        return names[0]

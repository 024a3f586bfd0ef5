"""The key bar: every key the screen answers to (bindings with `show`), with its short description, wrapped
over as many lines as the width needs. Textual's Footer is one line, and a trading desk has more verbs than
one line of a 160-column terminal holds.

Bindings of one group are shown together (`x [ ] Cancel`), as the Footer does. It redraws when the
screen's bindings change (focus moves, a modal opens), never on a clock.
"""

from __future__ import annotations

from textual.content import Content
from textual.screen import Screen
from textual.widgets import Static

__all__ = ["KeyBar"]

_NBSP = "\u00a0"  # keeps a key and its description on one line when the bar wraps


class KeyBar(Static):
    DEFAULT_CSS = """
    KeyBar { width: 100%; height: auto; max-height: 4; background: $panel; color: $foreground; padding: 0 1; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id, markup=False)

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)
        self.call_after_refresh(self.redraw)

    def _bindings_changed(self, screen: Screen) -> None:
        if self.is_attached and screen is self.screen:
            self.call_after_refresh(self.redraw)

    def items(self) -> list[tuple[str, str]]:
        """(keys, description) of every shown binding, groups merged, in binding order."""
        app = self.app
        by_action: dict[str, list] = {}
        for active in self.screen.active_bindings.values():
            if active.binding.show:
                by_action.setdefault(active.binding.action, []).append(active.binding)
        out: list[tuple[str, str]] = []
        group_at: dict[object, int] = {}
        for bindings in by_action.values():
            b = bindings[0]
            keys = app.get_key_display(b)
            group = b.group
            if group is None:
                out.append((keys, b.description))
            elif group in group_at:
                i = group_at[group]
                sep = "" if group.compact else " "
                out[i] = (out[i][0] + sep + keys, out[i][1])
            else:
                group_at[group] = len(out)
                out.append((keys, group.description))
        return out

    def redraw(self) -> None:
        parts: list[Content] = []
        for keys, description in self.items():
            parts.append(
                Content.assemble(
                    (keys.replace(" ", _NBSP), "bold $accent"), _NBSP, description.replace(" ", _NBSP)
                )
            )
        self.update(Content("  ").join(parts))

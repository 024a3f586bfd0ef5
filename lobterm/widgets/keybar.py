"""The key bar: every key the screen answers to (bindings with `show`), with its short description, wrapped
over as many lines as the width needs. Textual's Footer is one line, and a trading desk has more verbs than
one line of a 160-column terminal holds.

Bindings of one group are shown together (`x [ ] Cancel`), as the Footer does. It redraws when the
screen's bindings change (focus moves, a modal opens) or the width does, never on a clock.

At most `MAX_LINES` lines: when every key does not fit, the essential ones stay (`ESSENTIAL`, in order of
importance: help, quit, the order keys, the kill switch, the market maker...), in shorter words (`SHORT`),
and the rest are left to `?` (help lists every key, with its rebinding).
"""

from __future__ import annotations

from rich.cells import cell_len
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Static

__all__ = ["KeyBar"]

_SEP = "  "
MAX_LINES = 2
#: The actions (without arguments) kept first when the bar is short of room, most important first.
ESSENTIAL = (
    "help",
    "quit",
    "buy",
    "sell",
    "cancel_at_cursor",
    "cancel_all",
    "flatten",
    "kill_switch",
    "toggle_market_maker",
    "open_ticket",
    "edit_market_maker",
    "replay_pause",
    "replay_seek",
    "qty_step",
    "recenter",
    "move_order",
    "join",
    "toggle_panels",
    "toggle_heatmap",
    "next_ladder",
)
#: Shorter words for the bar when not every key fits.
SHORT = {
    "Order ticket": "Ticket",
    "MM on/off": "MM",
    "MM edit": "MM edit",
    "Recenter": "Center",
    "Heatmap": "Heat",
    "Pause/resume": "Pause",
    "Seek to a time": "Seek",
}


class KeyBar(Static):
    DEFAULT_CSS = """
    KeyBar { width: 100%; height: auto; max-height: 2; background: $panel; color: $foreground; padding: 0 1; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id, markup=False)

    def on_resize(self) -> None:
        self.redraw()

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)
        self.call_after_refresh(self.redraw)

    def _bindings_changed(self, screen: Screen) -> None:
        if self.is_attached and screen is self.screen:
            self.call_after_refresh(self.redraw)

    def items(self) -> list[tuple[str, str, str]]:
        """(keys, description, action) of every shown binding, groups merged, in binding order."""
        app = self.app
        by_action: dict[str, list] = {}
        for active in self.screen.active_bindings.values():
            if active.binding.show:
                by_action.setdefault(active.binding.action, []).append(active.binding)
        out: list[tuple[str, str, str]] = []
        group_at: dict[object, int] = {}
        for bindings in by_action.values():
            b = bindings[0]
            keys = app.get_key_display(b)
            group = b.group
            action = b.action.split("(", 1)[0]
            if group is None:
                out.append((keys, b.description, action))
            elif group in group_at:
                i = group_at[group]
                sep = "" if group.compact else " "
                out[i] = (out[i][0] + sep + keys, out[i][1], out[i][2])
            else:
                group_at[group] = len(out)
                out.append((keys, group.description, action))
        return out

    def lines(self, width: int) -> list[list[tuple[str, str]]]:
        """The (keys, description) items on each line of a bar `width` columns wide: every key when they fit
        in MAX_LINES lines, else the essential ones that fit (shorter words), in binding order."""
        items = self.items()
        every = [(k, d) for k, d, _a in items]
        got = _wrap(every, width)
        if len(got) <= MAX_LINES:
            return got
        rank = {a: i for i, a in enumerate(ESSENTIAL)}
        order = sorted(range(len(items)), key=lambda i: (rank.get(items[i][2], len(rank)), i))
        short = [(k, SHORT.get(d, d)) for k, d, _a in items]
        kept: list[int] = []
        for i in order:
            trial = sorted([*kept, i])
            if len(_wrap([short[j] for j in trial], width)) <= MAX_LINES:
                kept = trial
        return _wrap([short[j] for j in kept], width)

    def redraw(self) -> None:
        width = self.content_size.width or max(1, self.app.size.width - 2)
        rows = []
        for line in self.lines(width):
            rows.append(
                Content(_SEP).join(
                    Content.assemble((keys, "bold $accent"), " ", description) for keys, description in line
                )
            )
        self.update(Content("\n").join(rows))


def _wrap(items: list[tuple[str, str]], width: int) -> list[list[tuple[str, str]]]:
    """Items laid out greedily in lines of `width` cells (an item is never split)."""
    lines: list[list[tuple[str, str]]] = []
    used = 0
    for keys, description in items:
        n = cell_len(keys) + 1 + cell_len(description)
        if lines and used + len(_SEP) + n <= width:
            lines[-1].append((keys, description))
            used += len(_SEP) + n
        else:
            lines.append([(keys, description)])
            used = n
    return lines

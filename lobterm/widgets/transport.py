"""The replay transport: a one-line bar (state, replay time, position, speed, progress) and the seek prompt.

The bar pulls the player's `version` on the UI clock and redraws only when what it shows changed.
The seek prompt is a small modal with one input: `HH:MM:SS` (replay time since the session's first
event; `MM:SS` and `SS` too) or `+N` / `-N` seconds from the current position; a bad entry says why
and stays open.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import Input, Static

from lobterm.recording.player import parse_seek
from lobterm.widgets.overlay import Overlay

if TYPE_CHECKING:
    from lobterm.recording.player import Player

__all__ = ["SeekScreen", "TransportBar", "format_offset"]

_SEP = (" │ ", "$foreground-muted")


def format_offset(ns: int) -> str:
    """Replay time since the start as H:MM:SS.mmm."""
    ns = max(0, ns)
    secs, rem = divmod(ns, 1_000_000_000)
    h, secs = divmod(secs, 3600)
    m, s = divmod(secs, 60)
    return f"{h}:{m:02d}:{s:02d}.{rem // 1_000_000:03d}"


def format_speed(speed: float | None) -> str:
    if speed is None:
        return "max"
    return f"{speed:g}x"


class TransportBar(Static):
    DEFAULT_CSS = """
    TransportBar {
        width: 100%;
        height: 1;
        background: $boost;
        color: $foreground;
        padding: 0 1;
    }
    """

    def __init__(self, player: Player, *, id: str | None = None) -> None:
        super().__init__("", id=id, markup=False)
        self.player = player
        self._shown: tuple | None = None
        self.text = ""

    def pull(self) -> bool:
        p = self.player
        key = (p.version, p.paused, p.speed_index, p.seq, p.problems)
        if key == self._shown:
            return False
        self._shown = key
        at = p.replay_ns
        wall = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(at / 1e9))
        frac = p.progress
        width = 20
        filled = int(frac * width)
        if p.at_end and p.problem is not None and p.paused and p.seq < p.last_seq:
            state, style = "■ DAMAGED", "bold $error"
        elif p.at_end:
            state, style = "■ END", "bold $warning"
        elif p.paused:
            state, style = "❚❚ PAUSED", "bold $warning"
        else:
            state, style = "▶ PLAYING", "bold $success"
        parts: list[str | tuple[str, str]] = [
            ("REPLAY", "bold reverse $accent"),
            " ",
            (state, style),
            _SEP,
            (format_offset(at - p.first_ts), "bold"),
            " / ",
            format_offset(p.last_ts - p.first_ts),
            _SEP,
            (f"{wall} UTC", "$foreground-muted"),
            _SEP,
            "speed ",
            (format_speed(p.speed), "bold $accent"),
            _SEP,
            f"event {p.seq:,}/{p.last_seq:,} ",
            ("█" * filled, "$accent"),
            ("░" * (width - filled), "$foreground-muted"),
            f" {frac * 100:.1f}%",
        ]
        content = Content.assemble(*parts)
        self.text = content.plain
        self.update(content)
        return True


class SeekScreen(Overlay[str | None]):
    """Asks for a seek target; dismisses with the text (validated) or None."""

    DEFAULT_CSS = """
    SeekScreen > Vertical { width: 60; max-width: 62%; height: auto; border: round $accent; background: $surface; padding: 0 1; }
    SeekScreen .hint { color: $foreground-muted; }
    SeekScreen .error { color: $error; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel", id="seek_cancel")]

    def __init__(self, player: Player) -> None:
        super().__init__()
        self.player = player

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("Seek to", classes="title")
            yield Input(placeholder="HH:MM:SS from the start, or +/-seconds", id="seek-input")
            yield Static("e.g. 0:02:30, 90, +30, -5.5 · Enter to go, Esc to cancel", classes="hint")
            yield Static("", id="seek-error", classes="error")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        p = self.player
        try:
            parse_seek(event.value, p.replay_ns, p.first_ts)
        except ValueError as exc:
            self.query_one("#seek-error", Static).update(str(exc))
            return
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)

"""Overlays: modal screens that leave the market drawn and live beneath them.

A Textual modal screen normally hides what is beneath (an opaque background) or re-renders the screen
beneath through Rich on every frame (a translucent one: about twice the UI's CPU at 160x48). An `Overlay`
has a transparent background, so the screen beneath stays *current* (its widgets keep refreshing on the
UI clock), and it draws that screen by joining the strips its compositor already has: no Rich pass. The
overlay's own box docks to the right edge (the side panels' place), so the ladder's PRICE, BIDS and ASKS
stay in view while a ticket, the parameter editor, the help or a question is open: on a narrow terminal
(the side panels hidden, the ladder spanning the width) the box is made no wider than what lies right of
the ladder's PRICE column (at least `MIN_WIDTH`), so the prices stay on screen, and no taller than what
lies above the status and key bars. Keys and clicks still go
to the overlay only (it is modal).
"""

from __future__ import annotations

from typing import TypeVar

from textual.geometry import Region
from textual.screen import ModalScreen, Screen
from textual.strip import Strip

__all__ = ["Overlay", "MIN_WIDTH"]

MIN_WIDTH = 36  # the narrowest box an overlay is squeezed to (a ticket's label and field, its border)
MAX_SHARE = 0.62  # of the screen's width, as the overlays' CSS says

ResultType = TypeVar("ResultType")


class Overlay(ModalScreen[ResultType]):
    DEFAULT_CSS = """
    Overlay { align: right top; background: transparent; }
    """

    def on_mount(self) -> None:
        self._fit_box()

    def on_resize(self) -> None:
        self._fit_box()

    def width_limit(self) -> int:
        """The widest the box may be: MAX_SHARE of the screen, and no more than what lies right of the
        ladder's PRICE column (down to MIN_WIDTH)."""
        width = self.app.size.width
        limit = int(width * MAX_SHARE)
        ladder = getattr(self.app, "ladder", None)
        model = getattr(ladder, "model", None)
        x = model.column_x("price") if model is not None else None
        if x is not None and model is not None and ladder is not None and ladder.region.width:
            price = next((c for c in model.columns if c.key == "price"), None)
            right = ladder.region.x + x + (price.width if price is not None else 0) + 1
            limit = min(limit, max(MIN_WIDTH, width - right))
        return limit

    def _fit_box(self) -> None:
        """Keep the ladder's PRICE column in view (the width) and the status bar (the height)."""
        box = next((c for c in self.children if not c.has_class("-textual-system")), None)  # not the toasts
        if box is None:
            return
        limit = self.width_limit()
        if box.styles.max_width is None or box.styles.max_width.value != limit:
            box.styles.max_width = limit
        bars = getattr(self.app, "bottom_bars_height", None)
        if bars is not None:
            height = max(8, self.app.size.height - bars())
            if box.styles.max_height is None or box.styles.max_height.value != height:
                box.styles.max_height = height

    def _beneath(self) -> Screen | None:
        stack = self.app.screen_stack
        if self in stack:
            i = stack.index(self)
            return stack[i - 1] if i > 0 else None
        return None

    def render_lines(self, crop: Region) -> list[Strip]:
        beneath = self._beneath()
        if beneath is None or not beneath.is_mounted:
            return super().render_lines(crop)
        width = crop.width
        strips = beneath._compositor.render_strips()[crop.y : crop.bottom]
        if crop.x or any(s.cell_length != width for s in strips):
            strips = [s.crop_extend(crop.x, crop.right, None) for s in strips]
        if len(strips) < crop.height:
            strips += [Strip.blank(width)] * (crop.height - len(strips))
        return strips

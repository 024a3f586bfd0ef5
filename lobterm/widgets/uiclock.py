"""The UI's time source: the seconds the widgets read for flash highlights, once-a-second samples and
rates (`monotonic()`), never the kernel's clock. `source` is the one place to change it: a test sets it
to a clock it moves by hand (tests/ui/frozen_app.py's `freeze_ui_time`), so that what a frame shows
depends on nothing but the test."""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["monotonic", "source"]

#: The function `monotonic()` calls: `time.monotonic` unless a test put its own clock here.
source: Callable[[], float] = time.monotonic


def monotonic() -> float:
    """Seconds on the UI's clock (monotonic; only differences mean anything)."""
    return source()

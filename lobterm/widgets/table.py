"""Fixed-column text tables that fit a width: columns never run together, optional columns give way.

A table is rows of cells `(text, style)`. Each column is as wide as its widest cell, columns are separated
by at least one space, and when the total is wider than the room the columns with the lowest priority
are dropped first; what is still too wide has its last column cut with an ellipsis, never a neighbour's
digits glued to the next number.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from textual.content import Content

__all__ = ["Column", "fit_table", "fits"]

Cell = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    right: bool = False  # right-aligned (numbers)
    priority: int = 9  # lower is dropped first when the width is short; 9 is never dropped


def fits(columns: Sequence[Column], rows: Sequence[Sequence[Cell]], width: int, sep: int = 1) -> bool:
    """Whether the columns that are never dropped fit `width` whole."""
    widths = [max((len(r[i][0]) for r in rows), default=0) for i in range(len(columns))]
    keep = [w for c, w in zip(columns, widths, strict=True) if c.priority >= 9 and w]
    return width <= 0 or sum(keep) + sep * max(0, len(keep) - 1) <= width


def fit_table(
    columns: Sequence[Column], rows: Sequence[Sequence[Cell]], width: int, sep: int = 1
) -> list[Content]:
    """One Content per row, each at most `width` cells (width <= 0: no limit)."""
    widths = [max((len(r[i][0]) for r in rows), default=0) for i in range(len(columns))]
    keep = [i for i in range(len(columns)) if widths[i] > 0]

    def total() -> int:
        return sum(widths[i] for i in keep) + sep * max(0, len(keep) - 1)

    if width > 0:
        for prio in sorted({c.priority for c in columns if c.priority < 9}):
            if total() <= width:
                break
            keep = [i for i in keep if columns[i].priority != prio]
        over = total() - width
        if over > 0 and keep:
            last = keep[-1]
            widths[last] = max(1, widths[last] - over)
    gap = " " * sep
    out = []
    for row in rows:
        parts: list[tuple[str, str] | str] = []
        for n, i in enumerate(keep):
            text, style = row[i]
            w = widths[i]
            if len(text) > w:
                text = text[: max(0, w - 1)] + "…"
            text = text.rjust(w) if columns[i].right else (text.ljust(w) if n < len(keep) - 1 else text)
            if n:
                parts.append(gap)
            parts.append((text, style) if style else text)
        out.append(Content.assemble(*parts))
    return out

"""The liquidity heatmap's view model: resting size at each price over time, with no Textual.

A bounded ring buffer of samples, one every `sample_s` seconds of the kernel's clock (so a replay samples its
own time): each sample keeps the book's resting size (bids and asks) on a window of `levels` ticks around the
inside market, quantised on a log scale to one byte a price (`quantize`: 0 empty, 1..255 ~ 8 steps per
doubling), and up to `MARKS` marks (trades by aggressor, our fills) at their prices. Nothing grows with time:
`nbytes` is the buffer's size, fixed when the model is made (`heatmap_minutes` x 60 / `sample_s` samples).

`grid(top_price, ticks_per_row, rows, cells)` draws it on the ladder's own axis (`ladder_model`: row i holds
the prices [r0 - i*tpr, r0 - i*tpr + tpr - 1], r0 the top row's low price): `cells` columns, two time steps a
cell (older left, newer right: the widget draws '▌' with fg = the older step and bg = the newer), the newest
step at the right. The strip always spans the whole buffer: a step is `k` samples (the most resting size of
each price over them), k = ceil(capacity / (2 * cells)). Intensity is the step's log size against the largest
of the steps on screen (at any price they kept: a wall keeps its colour as the axis scrolls), in `SHADES` - 1
shades (0: nothing rests there). A cell's mark is its two steps' strongest: our fill over a trade. Each row comes back as a tuple of ints (cheap to compare frame to frame).

A completed step never changes (its samples are aligned on the absolute sample index), so its per-price
maxima are kept (bounded: the steps on screen) and a frame with an unchanged axis only recomputes the newest.
When the clock goes back (a replay's seek), the buffer is cleared: it fills again from the new position.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

__all__ = [
    "HeatmapModel",
    "quantize",
    "SHADES",
    "MARK_NONE",
    "MARK_BUY",
    "MARK_SELL",
    "MARK_FILL",
    "MAX_FILL_VENUES",
    "SAMPLE_S",
    "LEVELS",
    "cell_parts",
]

SAMPLE_S = 0.25  # seconds between samples
LEVELS = 512  # ticks of book kept per sample, centred on the inside market
MARKS = 4  # marks (trades, our fills) kept per sample
MAX_CARRY = 40  # samples (10 s at 0.25 s) a gap may be filled with the last book seen; longer: left empty
SHADES = 9  # 0: empty, 1..8: log intensity against the visible maximum
MARK_NONE, MARK_BUY, MARK_SELL, MARK_FILL = 0, 1, 2, 3
#: A consolidated heatmap marks our fill on venue i as MARK_FILL + i (the venue drawn in the cell): at most
#: this many venues get their own mark (the rest share the last one's).
MAX_FILL_VENUES = 16


def quantize(lots: int) -> int:
    """A resting size on a log scale in one byte: 0 for none, else 1 + 8 * log2(lots), at most 255."""
    if lots <= 0:
        return 0
    return min(255, 1 + int(8 * math.log2(lots)))


def cell_parts(code: int) -> tuple[int, int, int]:
    """(older shade, newer shade, mark) of a cell code from `grid`."""
    mark, rest = divmod(code, SHADES * SHADES)
    older, newer = divmod(rest, SHADES)
    return older, newer, mark


class HeatmapModel:
    """The ring buffer of book samples for one market, and the grid a strip draws from it."""

    def __init__(self, minutes: float, *, sample_s: float = SAMPLE_S, levels: int = LEVELS) -> None:
        if minutes <= 0 or sample_s <= 0 or levels < 2:
            raise ValueError("a heatmap needs minutes > 0, sample_s > 0 and levels >= 2")
        self.minutes = minutes
        self.sample_s = sample_s
        self.levels = levels
        self.capacity = max(2, math.ceil(minutes * 60 / sample_s))
        self.heat = np.zeros((self.capacity, levels), np.uint8)
        self.base = np.zeros(self.capacity, np.int64)  # price (ticks) of heat[slot, 0]
        self.mark_px = np.zeros((self.capacity, MARKS), np.int64)
        self.mark_kind = np.zeros((self.capacity, MARKS), np.uint8)
        self.step: int | None = None  # absolute index (clock // sample_s) of the newest sample
        self.first: int | None = None  # absolute index of the oldest sample still held
        self.version = 0  # bumped by every change a grid could show
        self.samples = 0
        self._steps: dict[tuple[int, int], tuple[int, np.ndarray, int]] = {}  # (k, d) -> (low, heat, its max)
        self._rows: dict[tuple[int, int], np.ndarray] = {}  # (k, d) -> per-row heat, for `_axis`
        self._marks: dict[tuple[int, int], list[tuple[int, int]]] = {}  # (k, d) -> (price, kind) marks
        self._axis: tuple[int, int, int] | None = None

    @property
    def nbytes(self) -> int:
        """The ring buffer's size in bytes (fixed; the step caches add at most 2 x cells x a window more)."""
        return self.heat.nbytes + self.base.nbytes + self.mark_px.nbytes + self.mark_kind.nbytes

    def clear(self) -> None:
        self.heat[:] = 0
        self.mark_kind[:] = 0
        self.step = self.first = None
        self._steps.clear()
        self._rows.clear()
        self._marks.clear()
        self.version += 1

    # ---- recording -------------------------------------------------------------------------------
    def window(self, center: int) -> tuple[int, int]:
        """The prices [low, high] a sample around `center` keeps."""
        low = max(1, center - self.levels // 2)
        return low, low + self.levels - 1

    def record(
        self,
        t: float,
        center: int | None,
        levels: Iterable[tuple[int, int]],
        marks: Iterable[tuple[int, int]] = (),
    ) -> None:
        """The book at clock time `t` (seconds): resting `levels` (price, lots; both sides) around `center`
        (None: no book, the sample is empty), and the `marks` (price, MARK_*) since the last call."""
        s = int(t // self.sample_s)
        cap = self.capacity
        if self.step is not None and s < self.step:
            self.clear()  # the clock went back: a replay's seek
        if self.step is None:
            self.first = s
        else:
            # Kept steps from the one holding the previous sample on may change now: forget them.
            for key in [key for key in self._steps if (key[1] + 1) * key[0] > self.step]:
                del self._steps[key]
                self._rows.pop(key, None)
            for key in [key for key in self._marks if (key[1] + 1) * key[0] > self.step]:
                del self._marks[key]
            if s > self.step:
                # Samples with no call in between. A short gap (a replay faster than the UI clock): the book
                # as last seen, carried forward. A long one (a seek forward, a stalled UI): unknown, empty.
                prev = self.step % cap
                carry = s - self.step <= MAX_CARRY
                for gap in range(max(self.step + 1, s - cap + 1), s):
                    slot = gap % cap
                    if carry:
                        self.heat[slot] = self.heat[prev]
                        self.base[slot] = self.base[prev]
                    else:
                        self.heat[slot] = 0
                    self.mark_kind[slot] = 0
                self.mark_kind[s % cap] = 0
        slot = s % cap
        self.step = s
        self.first = max(self.first if self.first is not None else s, s - cap + 1)
        row = self.heat[slot]
        row[:] = 0
        if center is not None:
            low, high = self.window(center)
            self.base[slot] = low
            for price, lots in levels:
                if low <= price <= high and lots > 0:
                    row[price - low] = quantize(lots)
        kinds = self.mark_kind[slot]
        pxs = self.mark_px[slot]
        for price, kind in marks:
            free = np.flatnonzero(kinds == MARK_NONE)
            if len(free):
                i = int(free[0])
            elif kind >= MARK_FILL:  # a fill (on any venue) takes a trade's place
                trades = np.flatnonzero((kinds != MARK_NONE) & (kinds < MARK_FILL))
                if not len(trades):
                    continue
                i = int(trades[-1])
            else:
                continue
            kinds[i] = kind
            pxs[i] = price
        self.samples += 1
        self.version += 1

    # ---- drawing ---------------------------------------------------------------------------------
    def samples_per_step(self, cells: int) -> int:
        return max(1, math.ceil(self.capacity / (2 * max(1, cells))))

    def _step_heat(self, k: int, d: int) -> tuple[int, np.ndarray, int] | None:
        """(low price, per-price max heat) of display step `d` (samples d*k .. d*k+k-1), None: no sample."""
        key = (k, d)
        got = self._steps.get(key)
        if got is not None:
            return got
        if self.step is None or self.first is None:
            return None
        lo_s, hi_s = max(d * k, self.first), min(d * k + k - 1, self.step)
        if lo_s > hi_s:
            return None
        cap = self.capacity
        slots = [s % cap for s in range(lo_s, hi_s + 1)]
        bases = self.base[slots]
        low = int(bases.min())
        span = int(bases.max()) - low + self.levels
        out = np.zeros(span, np.uint8)
        for slot, base in zip(slots, bases.tolist(), strict=True):
            off = base - low
            np.maximum(out[off : off + self.levels], self.heat[slot], out=out[off : off + self.levels])
        got = self._steps[key] = (low, out, int(out.max()))  # `record` forgets it when a sample in it changes
        return got

    def _step_rows(self, k: int, d: int, r0: int, tpr: int, rows: int) -> np.ndarray:
        key = (k, d)
        got = self._rows.get(key)
        if got is not None:
            return got
        out = np.zeros(rows, np.uint8)
        step = self._step_heat(k, d)
        if step is not None:
            low, heat, _top = step
            lead = (low - r0) % tpr  # pad so that groups start at row boundaries
            n = lead + len(heat)
            n += -n % tpr
            padded = np.zeros(n, np.uint8)
            padded[lead : lead + len(heat)] = heat
            groups = padded.reshape(-1, tpr).max(axis=1)  # ascending prices
            first_low = low - lead
            top_group_row = (r0 - first_low) // tpr  # row of group 0; group j sits at row top_group_row - j
            # rows r = top_group_row - j  for j in [0, len) and r in [0, rows)
            j_lo = max(0, top_group_row - rows + 1)
            j_hi = min(len(groups) - 1, top_group_row)
            if j_lo <= j_hi:
                seg = groups[j_lo : j_hi + 1][::-1]
                r_start = top_group_row - j_hi
                out[r_start : r_start + len(seg)] = seg
        if step is not None:
            self._rows[key] = out
        return out

    def _marks_of(self, k: int, d: int) -> list[tuple[int, int]]:
        """(price, kind) of every mark in display step `d` (kept like its heat, forgotten with it)."""
        key = (k, d)
        got = self._marks.get(key)
        if got is not None:
            return got
        got = []
        if self.step is not None and self.first is not None:
            cap = self.capacity
            lo_s, hi_s = max(d * k, self.first), min(d * k + k - 1, self.step)
            if lo_s <= hi_s:
                slots = [s % cap for s in range(lo_s, hi_s + 1)]
                kinds = self.mark_kind[slots]
                for i, j in zip(*np.nonzero(kinds), strict=True):
                    got.append((int(self.mark_px[slots[i], j]), int(kinds[i, j])))
        self._marks[key] = got
        return got

    def _step_marks(self, k: int, d: int, r0: int, tpr: int, rows: int, out: np.ndarray, col: int) -> None:
        for price, kind in self._marks_of(k, d):
            r = (r0 + tpr - 1 - price) // tpr
            if 0 <= r < rows and kind > out[r, col]:  # our fill over a trade
                out[r, col] = kind

    def grid(
        self, top_price: int, ticks_per_row: int, rows: int, cells: int
    ) -> tuple[list[tuple[int, ...]], int]:
        """One tuple of cell codes per price row (see `cell_parts`), and the largest quantised heat of the steps on
        screen over their whole window (not only the rows shown: a wall keeps its colour as the axis scrolls)."""
        if rows <= 0 or cells <= 0:
            return [], 0
        tpr = max(1, ticks_per_row)
        r0 = top_price - top_price % tpr
        axis = (r0, tpr, rows)
        if axis != self._axis:
            self._rows.clear()
            self._axis = axis
        k = self.samples_per_step(cells)
        if self.step is None:
            return [tuple([0] * cells) for _ in range(rows)], 0
        newest = self.step // k
        steps = 2 * cells
        first_d = newest - steps + 1
        # Forget steps that scrolled off the strip (the caches stay bounded by what is on screen).
        for key in [key for key in self._steps if key[0] != k or key[1] < first_d]:
            del self._steps[key]
            self._rows.pop(key, None)
        for key in [key for key in self._marks if key[0] != k or key[1] < first_d]:
            del self._marks[key]
        heat = np.zeros((rows, steps), np.uint8)
        marks = np.zeros((rows, cells), np.uint8)
        top = 0
        for i in range(steps):
            d = first_d + i
            if d * k + k - 1 < (self.first or 0):
                continue
            heat[:, i] = self._step_rows(k, d, r0, tpr, rows)
            step = self._step_heat(k, d)
            if step is not None:
                top = max(top, step[2])
            self._step_marks(k, d, r0, tpr, rows, marks, i // 2)
        if top:
            shade = (heat.astype(np.uint16) * (SHADES - 1) + top - 1) // top  # 1..SHADES-1 where > 0
        else:
            shade = heat.astype(np.uint16)
        codes = (marks.astype(np.int32) * SHADES + shade[:, 0::2]) * SHADES + shade[:, 1::2]
        return [tuple(r) for r in codes.tolist()], top

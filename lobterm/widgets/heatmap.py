"""The liquidity heatmap: a time x price strip beside a ladder, on the ladder's own price axis.

Each price row of the strip is the ladder's row at the same height (the same top price, ticks per row and
rows: it follows the ladder when it recenters, scrolls or zooms). Time runs left to right, the newest at the
right, next to the ladder; every cell holds two time steps, drawn as '▌' with the older step's colour in the
foreground (left half) and the newer one's in the background (right half). The colour is the resting size at
that price (bids and asks), on a log scale against the largest on screen, in the theme's colours. A trade is a
'•' (the aggressor's colour), our fill a '◆'. The strip spans the whole buffer (`[ui] heatmap_minutes`).
On a consolidated ladder (several venues on one grid) our fills on every venue are marked at their grid price,
each with its venue: the venue's letter (`A`, `B`: the ladder's labels) in place of the '◆'.

What is kept and how it is drawn lives in `heatmap_model.HeatmapModel` (no Textual): a ring buffer of fixed
size (`nbytes`) sampled from the market on the UI clock every `SAMPLE_S` seconds of the kernel's clock, so a
replay fills it at its own speed. In a replay the player samples it instead (`sample_at`, at every
step of session time the replay passes, with the book as it was then; `external_clock`), so a seek (which
`reset`s it and replays the heatmap's window from a checkpoint) draws what a straight play drew. Like the ladder it is a Line API widget whose `pull()`
compares plain row keys and refreshes only the lines that changed.

The desk's `h` key shows or hides it (`[ui] heatmap`, off by default); it is the first thing to go when the
terminal is too narrow for the ladders beside it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from rich.segment import Segment
from rich.style import Style
from textual.color import Color
from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget

from lobterm.engine.events import BUY, SELL
from lobterm.widgets.consolidated_book import ConsolidatedMarket
from lobterm.widgets.heatmap_model import (
    MARK_BUY,
    MARK_FILL,
    MARK_SELL,
    MAX_FILL_VENUES,
    SAMPLE_S,
    SHADES,
    HeatmapModel,
)
from lobterm.widgets.ladder_model import HEADER_LINES

if TYPE_CHECKING:
    from lobterm.widgets.ladder import PriceLadder
    from lobterm.widgets.tape import OurFills

__all__ = ["HeatmapStrip", "HEATMAP_WIDTH", "HALF", "TRADE_MARK", "FILL_MARK", "venue_glyphs"]

HEATMAP_WIDTH = 26  # cells: 24 of heat (48 time steps) and a gap each side
HALF = "▌"  # left half: fg = the older step, bg = the newer
TRADE_MARK = "•"
FILL_MARK = "◆"


def venue_glyphs(labels: list[str]) -> list[str]:
    """One character per venue for its fills on a consolidated heatmap: the labels' first characters when
    they tell the venues apart (A, B), else their last ones (sim1, sim2: 1, 2), else 1, 2, 3..."""
    for pick in (lambda lb: lb[:1], lambda lb: lb[-1:]):
        glyphs = [pick(lb) or "?" for lb in labels]
        if len(set(glyphs)) == len(glyphs):
            return glyphs
    return [str((i + 1) % 10) for i in range(len(labels))]


class HeatmapStrip(Widget):
    """The heatmap of one ladder's market, drawn on that ladder's axis."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "heatmap--title",
        "heatmap--header",
        "heatmap--low",
        "heatmap--high",
        "heatmap--buy",
        "heatmap--sell",
        "heatmap--fill",
    }

    DEFAULT_CSS = """
    HeatmapStrip {
        width: 26;
        height: 1fr;
        background: $surface;
        color: $foreground-muted;
    }
    HeatmapStrip > .heatmap--title { background: $panel; color: $foreground; text-style: bold; }
    HeatmapStrip > .heatmap--header { background: $panel; color: $foreground-muted; }
    HeatmapStrip > .heatmap--low { color: $primary 45%; }
    HeatmapStrip > .heatmap--high { color: $warning; }
    HeatmapStrip > .heatmap--buy { color: $ladder-last-buy; text-style: bold; }
    HeatmapStrip > .heatmap--sell { color: $ladder-last-sell; text-style: bold; }
    HeatmapStrip > .heatmap--fill { color: $ladder-ours; text-style: bold; }
    """

    def __init__(
        self,
        ladder: PriceLadder,
        *,
        minutes: float = 5.0,
        fills: OurFills | None = None,
        sample_s: float = SAMPLE_S,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.ladder = ladder
        self.kernel = ladder.kernel
        self.market = ladder.model.market  # what the ladder draws (a consolidated ladder: every venue)
        self.fills = fills
        self.model = HeatmapModel(minutes, sample_s=sample_s)
        self._trades_seen = self.market.trades
        # Whose fills are marked, with the tick ratio onto the drawn grid and their mark: the market's own,
        # or on a consolidated ladder every venue's (MARK_FILL + its index, drawn as its letter).
        m = self.market
        self._fill_sources: list[tuple[tuple[str, str], int, int]]  # (market key, tick ratio, mark)
        self.fill_glyphs: list[str]  # a consolidated heatmap: each venue's letter for its fills
        if isinstance(m, ConsolidatedMarket):
            self._fill_sources = [
                (vm.key, r, MARK_FILL + min(i, MAX_FILL_VENUES - 1))
                for i, (vm, r) in enumerate(zip(m.markets, m.tick_ratios, strict=True))
            ]
            self.fill_glyphs = venue_glyphs(m.labels)[:MAX_FILL_VENUES]
        else:
            self._fill_sources = [(m.key, 1, MARK_FILL)]
            self.fill_glyphs = []
        self._last_fill: dict[tuple[str, str], object] = {}
        self._sampled_step: int | None = None
        #: A replay's player samples (`sample_at`) on session time; the UI clock then only draws.
        self.external_clock = False
        self._drawn: tuple | None = None
        self._keys: list[tuple | None] = []
        self._strips: list[Strip | None] = []
        self._cells: dict[int, Segment] = {}
        self._styles: dict[str, Style] = {}
        self._palette: list = []
        self._width = 0  # kept by pull: `self.size` walks the DOM (as the ladder found, profiled)
        self.top_heat = 0
        self.lines_refreshed = 0
        self.frames = 0

    # ---- sampling --------------------------------------------------------------------------------
    def _new_marks(self) -> list[tuple[int, int]]:
        m = self.market
        marks: list[tuple[int, int]] = []
        new = m.trades - self._trades_seen
        if new > 0:
            self._trades_seen = m.trades
            fills = self.fills
            tape = m.tape
            for i in range(max(0, len(tape) - new), len(tape)):
                tr = tape[i]
                if fills is not None and fills.is_ours((tr.venue, tr.symbol), tr.trade_id):
                    continue  # its fill marks it
                marks.append((tr.price, MARK_BUY if tr.aggressor == BUY else MARK_SELL))
        elif new < 0:
            self._trades_seen = m.trades
        if self.fills is not None:
            last = self._last_fill
            for key, ratio, kind in self._fill_sources:
                ours = self.fills.by_market.get(key)
                if not ours or ours[-1] is last.get(key):
                    continue
                seen = last.get(key)
                fresh = []
                for fill in reversed(ours):
                    if fill is seen:
                        break
                    fresh.append((fill.price // ratio, kind))  # onto the drawn grid (1: the venue's own)
                last[key] = ours[-1]
                marks.extend(reversed(fresh))
        return marks

    def reset(self, fills: list | None = None) -> None:
        """Forget the history (a replay's seek): it fills again from the restored moment. `fills`: our fills
        up to it (already marked or before the window: not marked again)."""
        self.model.clear()
        self._trades_seen = self.market.trades
        self._last_fill = {}
        for key, _ratio, _kind in self._fill_sources:
            ours = self.fills.by_market.get(key) if self.fills is not None else None
            if ours:
                self._last_fill[key] = ours[-1]
        self._sampled_step = None
        self._drawn = None

    def sample_at(self, ts_ns: int) -> None:
        """A replay's sample time: the book as it is (every event up to `ts_ns` out), recorded for the step
        that ends there, with the trades and fills since the last one."""
        step_ns = round(self.model.sample_s * 1e9)
        if ts_ns % step_ns:
            return
        # the middle of the step that ends at ts_ns (exact in a float: a multiple of a power-of-two fraction)
        self._record((ts_ns // step_ns - 0.5) * self.model.sample_s, self._new_marks())

    def sample(self) -> bool:
        """Record the book (and the trades and fills since the last call) when a new time step began or
        something traded; True when it recorded."""
        now_s = self.kernel.clock.now() / 1e9
        step = int(now_s // self.model.sample_s)
        marks = self._new_marks()
        if step == self._sampled_step and not marks:
            return False
        self._sampled_step = step
        self._record(now_s, marks)
        return True

    def _record(self, now_s: float, marks: list[tuple[int, int]]) -> None:
        m = self.market
        center = m.unified.center_price()
        levels: list[tuple[int, int]] = []
        if center is not None and m.l2.valid:
            low, high = self.model.window(center)
            levels = m.l2.levels_between(BUY, low, high) + m.l2.levels_between(SELL, low, high)
        else:
            center = None
        self.model.record(now_s, center, levels, marks)

    # ---- the UI clock ----------------------------------------------------------------------------
    def pull(self) -> int:
        """Sample the market, and redraw what changed (only when shown); returns the lines refreshed."""
        if not self.external_clock:
            self.sample()
        if not self.display:
            return 0
        lm = self.ladder.model
        size = self.size
        if size.width != self._width or size.height != len(self._keys):
            self._keys = [None] * size.height
            self._strips = [None] * size.height
            self._width = size.width
        width = size.width - 2  # a blank cell each side
        height = size.height
        if lm.top_price is None or width <= 0:
            return 0
        state = (self.model.version, lm.top_price, lm.ticks_per_row, lm.price_rows, width, height)
        if state == self._drawn:
            return 0
        self._drawn = state
        self.frames += 1
        grid, self.top_heat = self.model.grid(lm.top_price, lm.ticks_per_row, lm.price_rows, width)
        keys: list[tuple | None] = [None] * height
        if height > 0:
            keys[0] = ("title", f"HEAT {self._span_text()}")
        if height > 1:
            keys[1] = ("header", self._max_text())
        if height > 2:
            keys[2] = ("scale", width)
        for i, row in enumerate(grid):
            y = HEADER_LINES + i
            if y < height:
                keys[y] = row
        if len(self._keys) != height:
            self._keys = [None] * height
            self._strips = [None] * height
        changed = 0
        for y, key in enumerate(keys):
            if key != self._keys[y]:
                self._keys[y] = key
                self._strips[y] = None
                self.refresh(Region(0, y, self._width, 1))
                changed += 1
        self.lines_refreshed += changed
        return changed

    def _span_text(self) -> str:
        minutes = self.model.minutes
        return f"{minutes:g}m" if minutes >= 1 else f"{minutes * 60:g}s"

    def _max_text(self) -> str:
        """The largest size on screen (from its log value: the lower end of its 1/8-doubling bucket)."""
        if not self.top_heat:
            return "no book yet"
        lots = int(2 ** ((self.top_heat - 1) / 8))
        return f"max ≥{self.market.instrument.format_size(lots)}"

    # ---- drawing ---------------------------------------------------------------------------------
    def on_resize(self) -> None:
        """A new size (shown again after `h`, the terminal resized): every line is drawn afresh."""
        size = self.size
        self._width = size.width
        self._keys = [None] * size.height
        self._strips = [None] * size.height
        self._drawn = None
        self.pull()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles.clear()
        self._cells.clear()
        self._strips = [None] * len(self._strips)

    def _style(self, name: str) -> Style:
        style = self._styles.get(name)
        if style is None:
            style = self._styles[name] = self._base() + self.get_component_rich_style(
                f"heatmap--{name}", partial=True
            )
        return style

    def _shade_colors(self) -> list[Color]:
        background = self.styles.background
        low = self.get_component_styles("heatmap--low").color
        high = self.get_component_styles("heatmap--high").color
        low = background.blend(low.with_alpha(1.0), low.a) if low.a < 1 else low
        high = background.blend(high.with_alpha(1.0), high.a) if high.a < 1 else high
        colors = [background]
        for i in range(1, SHADES):
            colors.append(low.blend(high, (i - 1) / max(1, SHADES - 2)))
        return colors

    def _cell(self, code: int) -> Segment:
        seg = self._cells.get(code)
        if seg is None:
            if not self._cells:
                self._palette = [c.rich_color for c in self._shade_colors()]
            palette = self._palette
            mark, rest = divmod(code, SHADES * SHADES)
            older, newer = divmod(rest, SHADES)
            if mark:
                name = {MARK_BUY: "buy", MARK_SELL: "sell"}.get(mark, "fill")
                if mark < MARK_FILL:
                    glyph = TRADE_MARK
                elif self.fill_glyphs:  # a consolidated heatmap: the venue of the fill
                    glyph = self.fill_glyphs[min(mark - MARK_FILL, len(self.fill_glyphs) - 1)]
                else:
                    glyph = FILL_MARK
                seg = Segment(glyph, self._style(name) + Style(bgcolor=palette[newer]))
            elif older == newer == 0:
                seg = Segment(" ", self._base())
            else:
                seg = Segment(HALF, Style(color=palette[older], bgcolor=palette[newer]))
            self._cells[code] = seg
        return seg

    def _base(self) -> Style:
        base = self._styles.get("")
        if base is None:
            base = self._styles[""] = self.rich_style
        return base

    def render_line(self, y: int) -> Strip:
        width = self._width
        if y >= len(self._strips):
            return Strip.blank(width, self._base())
        strip = self._strips[y]
        if strip is None:
            strip = self._strips[y] = self._build(self._keys[y], width)
        return strip

    def _build(self, key: tuple | None, width: int) -> Strip:
        base = self._base()
        pad = Segment(" ", base)
        inner = max(0, width - 2)
        if key is None:
            return Strip.blank(width, base)
        if key and isinstance(key[0], str):
            kind = key[0]
            if kind == "scale":
                ago = f"-{self._span_text()}"
                text = ago + "now".rjust(max(0, inner - len(ago)))
                style = self._style("header")
            else:
                text = key[1]
                style = self._style("title" if kind == "title" else "header")
            return Strip([Segment(" " + text[:inner].ljust(inner) + " ", style)]).adjust_cell_length(
                width, style
            )
        cell = self._cell
        segments = [pad, *(cell(code) for code in key), pad]
        return Strip(segments, len(key) + 2).adjust_cell_length(width, base)

    def rendered_lines(self) -> list[str]:
        """The text of every line as drawn (for tests)."""
        width = self.size.width
        return [
            self.render_line(y).text if y < len(self._keys) else " " * width for y in range(self.size.height)
        ]

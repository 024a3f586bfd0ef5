"""The trade tape and the blotter.

`TradeTape` is a Line API view (`render_line` over cached strips) of the market's bounded trade deque,
newest first, our fills marked. It redraws when the market's trade version changed, on the UI clock.
`Blotter` lists our orders, one row each: the working ones, then the latest finished ones; it changes about
once a second, so a Static redrawn at most a few times a second is enough.

`OurFills` keeps our latest fills (a bounded deque per market and the trade ids they belong to): the one
bus subscription the views need, kernel-side bookkeeping with no textual in it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, ClassVar

from rich.segment import Segment
from rich.style import Style
from textual.content import Content
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Static

from lobterm.engine.bounds import OUR_FILLS, TAPE
from lobterm.engine.events import BUY, OUR_OWNER, Fill
from lobterm.widgets.table import Column, fit_table, fits

if TYPE_CHECKING:
    from lobterm.engine.instrument import Instrument
    from lobterm.kernel import Kernel, Market
    from lobterm.trading.oms import WorkingOrder

__all__ = ["Blotter", "OurFills", "TradeTape"]

BLOTTER_HZ = 4.0
_ORDER_TYPES = ("LMT", "MKT", "IOC", "FOK", "POST")


def clock_text(ts_ns: int) -> str:
    """HH:MM:SS.mmm (UTC) of a nanosecond timestamp."""
    t = datetime.fromtimestamp(ts_ns / 1e9, tz=UTC)
    return t.strftime("%H:%M:%S.") + f"{t.microsecond // 1000:03d}"


class OurFills:
    """Our latest fills, per market, and the trade ids they were part of (to mark the tape)."""

    def __init__(self, kernel: Kernel, keep: int = OUR_FILLS) -> None:
        self.by_market: dict[tuple[str, str], deque[Fill]] = {}
        self.trade_ids: dict[tuple[str, str], set[int]] = {}
        self.keep = keep
        self.version = 0
        kernel.bus.subscribe(Fill, self.on_fill)

    def on_fill(self, ev: Fill) -> None:
        if ev.owner != OUR_OWNER:
            return
        key = (ev.venue, ev.symbol)
        fills = self.by_market.get(key)
        if fills is None:
            fills = self.by_market[key] = deque(maxlen=self.keep)
            self.trade_ids[key] = set()
        ids = self.trade_ids[key]
        if len(fills) == fills.maxlen:
            ids.discard(fills[0].trade_id)
        fills.append(ev)
        ids.add(ev.trade_id)
        self.version += 1

    def reset(self, fills: list[Fill] | tuple[Fill, ...] = ()) -> None:
        """Forget every fill, then keep `fills` (a replay's seek: our fills up to the new moment)."""
        self.by_market.clear()
        self.trade_ids.clear()
        for ev in fills:
            self.on_fill(ev)
        self.version += 1

    def is_ours(self, key: tuple[str, str], trade_id: int) -> bool:
        ids = self.trade_ids.get(key)
        return ids is not None and trade_id in ids

    def latest(self, n: int) -> list[Fill]:
        """Our `n` latest fills over every market, newest first."""
        merged = sorted((f for d in self.by_market.values() for f in d), key=lambda f: f.ts, reverse=True)
        return merged[:n]


class TradeTape(Widget):
    """Venue trades of one market, newest at the top; ours are marked ◆."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "tape--title",
        "tape--buy",
        "tape--sell",
        "tape--ours",
        "tape--toxic",
        "tape--time",
    }
    DEFAULT_CSS = """
    TradeTape { height: 1fr; min-height: 4; background: $surface; border-top: solid $panel-lighten-2; }
    TradeTape > .tape--title { text-style: bold; }
    TradeTape > .tape--buy { color: $ladder-last-buy; }
    TradeTape > .tape--sell { color: $ladder-last-sell; }
    TradeTape > .tape--ours { color: $ladder-ours-text; background: $ladder-ours; text-style: bold; }
    TradeTape > .tape--toxic { color: $text; background: $error; text-style: bold; }
    TradeTape > .tape--time { color: $foreground-muted; }
    """

    def __init__(
        self,
        market: Market,
        fills: OurFills,
        *,
        id: str | None = None,
        toxic: Callable[[], tuple[int, frozenset[int] | set[int]]] | None = None,
    ) -> None:
        super().__init__(id=id)
        self.market = market
        self.fills = fills
        #: (toxic fills so far, their trade ids) from the markout engine: our fills marked ◆ toxic.
        self.toxic = toxic
        self._toxic_ids: frozenset[int] | set[int] = frozenset()
        self._drawn: tuple | None = None
        self._strips: dict[tuple, Strip] = {}
        self._styles: dict[str, Style] = {}
        self.render_line_calls = 0

    def show_market(self, market: Market) -> None:
        self.market = market
        self._drawn = None
        self._strips.clear()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles.clear()
        self._strips.clear()

    def _style(self, name: str) -> Style:
        style = self._styles.get(name)
        if style is None:
            style = self._styles[name] = self.get_component_rich_style(f"tape--{name}", partial=True)
        return style

    def pull(self) -> bool:
        toxic_count = 0
        if self.toxic is not None:
            toxic_count, self._toxic_ids = self.toxic()
        key = (self.market.key, self.market.trade_version, self.fills.version, toxic_count, self.size)
        if key == self._drawn:
            return False
        self._drawn = key
        if len(self._strips) > 4 * (self.market.tape.maxlen or TAPE):
            self._strips.clear()
        self.refresh()  # a new trade shifts every line down one
        return True

    def lines(self) -> list[str]:
        """The text of every line (tests and debugging)."""
        return [self.render_line(y).text for y in range(self.size.height)]

    def render_line(self, y: int) -> Strip:
        self.render_line_calls += 1
        width = self.size.width
        base = self.rich_style
        m = self.market
        if y == 0:
            text = f" TRADES {m.venue} {m.symbol}   ◆ ours" + ("  ◆ toxic" if self.toxic is not None else "")
            return Strip([Segment(text, base + self._style("title"))]).adjust_cell_length(width, base)
        tape = m.tape
        i = len(tape) - y
        if i < 0:
            return Strip.blank(width, base)
        t = tape[i]
        ours = self.fills.is_ours(m.key, t.trade_id)
        toxic = ours and t.trade_id in self._toxic_ids
        cache_key = (t.ts, t.trade_id, t.price, t.size, ours, toxic, width)
        strip = self._strips.get(cache_key)
        if strip is None:
            inst = m.instrument
            buy = t.aggressor == BUY
            side_style = base + self._style("buy" if buy else "sell")
            segments = [
                Segment(f" {clock_text(t.ts)} ", base + self._style("time")),
                Segment(f"{inst.format_price(t.price):>10} ", side_style),
                Segment(f"{'▲' if buy else '▼'}{inst.format_size(t.size):>9} ", side_style),
            ]
            if toxic:
                segments.append(Segment(" ◆ toxic ", base + self._style("toxic")))
            elif ours:
                segments.append(Segment(" ◆ ours ", base + self._style("ours")))
            strip = self._strips[cache_key] = Strip(segments).adjust_cell_length(width, base)
        return strip


# Human words for the OMS's states (never a raw enum on screen).
_STATE_WORDS = {
    "pending_new": "sending",
    "working": "working",
    "partially_filled": "part-filled",
    "pending_cancel": "cancelling",
    "pending_amend": "amending",
    "filled": "filled",
    "cancelled": "cancelled",
    "rejected": "rejected",
}
# The same, in a narrow panel.
_STATE_SHORT = {
    "pending_new": "new",
    "working": "open",
    "partially_filled": "part",
    "pending_cancel": "cxl..",
    "pending_amend": "amd..",
    "filled": "fill",
    "cancelled": "cxl",
    "rejected": "rej",
}
_BLOTTER_COLUMNS = (
    Column("id", priority=2),
    Column("side"),
    Column("size", right=True),
    Column("at", priority=1),
    Column("price"),
    Column("type", priority=1),
    Column("state"),
    Column("source", priority=3),
)


def order_state_text(o: WorkingOrder, inst: Instrument | None, *, short: int = 0) -> str:
    """`working`, `part-filled 0.004/0.010`, `filled`, `cancelled 0.004/0.010` (partly filled, then
    cancelled), `rejected`...; `short=1`: `open`, `part 0.004/0.010`, `fill`, `cxl`, `rej`; `short=2`: the
    same without the total size (`part 0.004`)."""
    word = (_STATE_SHORT if short else _STATE_WORDS).get(o.state, o.state.replace("_", " "))
    if o.filled and o.state != "filled":
        fmt = inst.format_size if inst is not None else str
        return f"{word} {fmt(o.filled)}" + ("" if short > 1 else f"/{fmt(o.size)}")
    return word


class Blotter(Static):
    """One row per order over every market: the working orders first, then the latest finished ones
    (filled, cancelled, rejected) under their own heading. The columns fit the panel's width."""

    DEFAULT_CSS = """
    Blotter {
        height: auto; max-height: 12; padding: 0 1; background: $surface;
        border-top: solid $panel-lighten-2;
    }
    """

    def __init__(self, kernel: Kernel, fills: OurFills, *, rows: int = 9, id: str | None = None) -> None:
        super().__init__("", id=id, markup=False)
        self.kernel = kernel
        self.fills = fills
        self.rows = rows
        self._shown: tuple | None = None
        self.text = ""
        self._next_pull = 0.0

    def pull(self, now: float, *, force: bool = False) -> bool:
        if now < self._next_pull and not force:
            return False
        self._next_pull = now + 1.0 / BLOTTER_HZ
        oms = self.kernel.oms
        key = (
            oms.sent,
            oms.cancels_sent,
            oms.amends_sent,
            oms.done,
            oms.fills,
            oms.rejects,
            len(oms.working),
            len(oms.recent),
            self.fills.version,
            # An ack changes no counter above (pending_new -> new): the states themselves are in the key.
            tuple((o.order_id, o.state, o.filled) for o in oms.working.values()),
            self.content_size.width,
        )
        if key == self._shown and not force:
            return False
        self._shown = key
        content = self.render_content()
        self.text = content.plain  # what is drawn (tests read it)
        self.update(content)
        return True

    def on_resize(self) -> None:
        self.pull(0.0, force=True)  # the columns fit the new width at once

    def render_content(self, width: int | None = None) -> Content:
        k = self.kernel
        oms = k.oms
        if width is None:
            width = self.content_size.width
        working = sorted(oms.working.values(), key=lambda o: o.order_id, reverse=True)
        done = [o for o in reversed(oms.recent) if not o.is_live]
        narrow = 0 < width < 18 + len(f"{len(working)}{oms.fills}") + 7
        header = Content.assemble(
            ("" if narrow else "ORDERS ", "bold"),
            (f"{len(working)} working", "$foreground-muted"),
            ("   FILLS ", "bold"),
            (f"{oms.fills}", "$foreground-muted"),
        )
        budget = self.rows - 1
        shown_working = working[: max(1 if working else 0, budget - (3 if done else 0))]
        budget -= len(shown_working)
        shown_done = done[: max(0, budget - 1)] if done else []
        shown = shown_working + shown_done
        rows = [self._order_cells(o) for o in shown]
        for short in (1, 2):  # a narrow panel: short words for the states, then for the sides too
            if fits(_BLOTTER_COLUMNS, rows, width):
                break
            rows = [self._order_cells(o, short=short) for o in shown]
        table = fit_table(_BLOTTER_COLUMNS, rows, width)
        lines = [header]
        lines += table[: len(shown_working)]
        if len(working) > len(shown_working):
            lines.append(
                Content.styled(f"+{len(working) - len(shown_working)} more working", "$foreground-muted")
            )
        if shown_done:
            lines.append(Content.styled(f"done ({len(done)})", "bold $foreground-muted"))
            lines += table[len(shown_working) :]
        if not working and not done:
            lines.append(Content.styled("no orders yet", "$foreground-muted"))
        return Content("\n").join(lines)

    def _order_cells(self, o: WorkingOrder, *, short: int = 0) -> list[tuple[str, str]]:
        m = self.kernel.markets.get((o.venue, o.symbol))
        buy = o.side == BUY
        live = o.is_live
        muted = "$foreground-muted"
        kind = _ORDER_TYPES[o.order_type] if 0 <= o.order_type < len(_ORDER_TYPES) else str(o.order_type)
        if m is None:
            size, price, state = str(o.size), str(o.price), order_state_text(o, None, short=short)
        else:
            inst = m.instrument
            size, price = inst.format_size(o.size), inst.format_price(o.price)
            state = order_state_text(o, inst, short=short)
        state_style = "bold" if live else ("$success" if o.state == "filled" else muted)
        return [
            (f"#{o.order_id}", muted),
            (
                ("B" if buy else "S") if short > 1 else ("BUY" if buy else "SELL"),
                ("bold $success" if buy else "bold $error") if live else muted,
            ),
            (size, "" if live else muted),
            ("@", muted),
            (price, "" if live else muted),
            (kind, muted),
            (state, state_style),
            (o.tag, muted),
        ]

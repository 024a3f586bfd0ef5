"""The quote panel: the market maker of the current market, its parameters and on/off state, and its desired
quote ladder beside what is working at the venue, level by level.

Pulled on every frame of the UI clock, with the ladder, and redrawn in that same frame when the market maker's
version changed (it bumps on every quote change and every parameter change): the working prices here and our
orders on the ladder come from one kernel state (a panel throttled to 5 Hz showed quotes 2-4 ticks away from
the ladder's in most frames). Only a change of the text's shape costs a layout. The keys that edit the parameters
live on the trading desk; this panel shows their effect.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.content import Content
from textual.widgets import Static

from lobterm.trading.fair_value import CONSOLIDATED_MICROPRICE, MID
from lobterm.trading.market_maker import RUNNING, SENT, STOPPED, LadderView, QuoteRow
from lobterm.trading.quoting import AVELLANEDA_STOIKOV, GLFT
from lobterm.widgets.consolidated_book import venue_labels

if TYPE_CHECKING:
    from lobterm.kernel import Market

__all__ = ["QuotePanel"]

_STATE_STYLE = {RUNNING: "bold $success", STOPPED: "bold $error"}
_SEP = ("│", "$foreground-muted")


class QuotePanel(Static):
    DEFAULT_CSS = """
    QuotePanel {
        height: auto;
        padding: 0 1;
        background: $surface;
        border-top: solid $panel-lighten-2;
    }
    """

    def __init__(
        self, market_makers: dict[tuple[str, str], Any], market: Market, *, id: str | None = None
    ) -> None:
        super().__init__("", id=id, markup=False)
        self.market_makers = market_makers
        self.market = market
        self._shown: tuple | None = None
        self._shape: tuple[int, int] | None = None  # (lines, longest line) of the text drawn
        #: What the last frame drew (tests compare it with the ladder).
        self.shown_view: LadderView | None = None

    @property
    def market_maker(self) -> Any:
        return self.market_makers.get(self.market.key)

    def show_market(self, market: Market) -> None:
        self.market = market
        self._shown = None

    def pull(self, now: float) -> bool:
        """Redraw if the market maker changed; True when it did."""
        mm = self.market_maker
        key: tuple[Any, ...] = (
            self.market.key,
            self.size.width,  # a narrower panel draws the compact table
            None if mm is None else (mm.version, mm.params_version, mm.state, mm.reason),
        )
        if mm is not None and mm.params.mode == GLFT:  # sigma and the fit move without a requote
            g = mm.glft_view()
            key += (f"{g['a']:.3g} {g['k']:.3g} {g['sigma']:.3g} {g['half_spread']:.3g}", g["refits"])
        if key == self._shown:
            return False
        self._shown = key
        content = self.render_content()
        lines = content.plain.split("\n")
        shape = (len(lines), max(len(line) for line in lines))
        self.update(content, layout=shape != self._shape)
        self._shape = shape
        return True

    def render_content(self) -> Content:
        m = self.market
        mm = self.market_maker
        title = Content.assemble(("MARKET MAKER ", "bold"), (f"{m.venue} {m.symbol}", "bold $accent"))
        if mm is None:
            return Content("\n").join(
                [title, Content.styled("no market maker on this market", "$foreground-muted")]
            )
        inst = m.instrument
        p = mm.params
        view = self.shown_view = mm.ladder_view()
        badge = f"reverse {_STATE_STYLE.get(view.status, 'bold $warning')}"
        state = Content.assemble("  ", (f" {view.status.upper()} ", badge))
        room = self.content_size.width  # within the padding
        reason = Content.styled(f" {view.reason}", "$foreground-muted") if view.reason else Content("")
        if not room or (title + state + reason).cell_length <= room:
            lines = [title + state + reason]
        else:  # narrow: a shorter title, the reason on its own line
            short = Content.assemble(("MM ", "bold"), (f"{m.venue} {m.symbol}", "bold $accent"))
            lines = [short + state] + ([reason] if view.reason else [])
        if p.mode == GLFT:
            g = mm.glft_view()
            when = "prior" if g["last_refit_ns"] is None else f"fit {_hms(g['last_refit_ns'])}"
            spread = (
                f"GLFT A {g['a']:.3g} k {g['k']:.3g} sigma {g['sigma']:.3g} "
                f"half {g['half_spread']:.3g}t skew {g['skew']:.3g}t ({when})"
            )
        elif p.mode == AVELLANEDA_STOIKOV:
            spread = f"A-S gamma {p.gamma:g} k {p.k:g}"
        elif p.spread_bps > 0:
            spread = f"spread {p.spread_bps:g} bps"
        else:
            spread = f"spread {p.spread_ticks} ticks"
        sizes = " ".join(inst.format_size(s) for s in p.sizes) if p.sizes else inst.format_size(p.size_lots)
        short_spread = (
            spread.replace(" ticks", "t").replace("spread ", "") if p.mode not in (GLFT,) else spread
        )
        lines.append(
            _fit(
                room,
                Content.assemble(
                    ("levels ", "$foreground-muted"),
                    (str(p.levels), "bold"),
                    "  ",
                    (spread, "bold"),
                    "  ",
                    ("step ", "$foreground-muted"),
                    (f"{p.level_step_ticks}t", "bold"),
                    "  ",
                    ("size ", "$foreground-muted"),
                    (sizes, "bold"),
                ),
                # narrow (the heatmap on, a stacked panel): the same numbers, shorter words
                Content.assemble(
                    ("lv ", "$foreground-muted"),
                    (str(p.levels), "bold"),
                    " ",
                    (short_spread, "bold"),
                    " ",
                    ("step ", "$foreground-muted"),
                    (f"{p.level_step_ticks}t", "bold"),
                    " ",
                    ("sz ", "$foreground-muted"),
                    (sizes, "bold"),
                ),
            )
        )
        lines.append(
            _fit(
                room,
                Content.assemble(
                    ("skew ", "$foreground-muted"),
                    (f"{p.skew_ticks_per_lot:.2f} t/lot", "bold"),
                    "  ",
                    ("tol ", "$foreground-muted"),
                    (f"{p.refresh_tolerance_ticks}t", "bold"),
                    "  ",
                    ("max pos ", "$foreground-muted"),
                    (inst.format_size(p.max_position_lots), "bold"),
                    "  ",
                    ("post-only" if p.post_only else "may take", "$foreground-muted"),
                ),
                Content.assemble(
                    ("skew ", "$foreground-muted"),
                    (f"{p.skew_ticks_per_lot:.2f}t/lot", "bold"),
                    " ",
                    ("tol ", "$foreground-muted"),
                    (f"{p.refresh_tolerance_ticks}t", "bold"),
                    " ",
                    ("max ", "$foreground-muted"),
                    (inst.format_size(p.max_position_lots), "bold"),
                    " ",
                    ("post" if p.post_only else "take", "$foreground-muted"),
                ),
            )
        )
        res = "-" if view.reservation_tick is None else inst.format_price(view.reservation_tick)
        spread_now = "-" if view.quoted_spread_ticks is None else inst.format_price(view.quoted_spread_ticks)
        lines.append(
            _fit(
                room,
                Content.assemble(
                    ("reservation ", "$foreground-muted"),
                    (res, "bold"),
                    "  ",
                    ("spread now ", "$foreground-muted"),
                    (spread_now, "bold"),
                    "  ",
                    ("pos ", "$foreground-muted"),
                    (inst.format_size(view.position), "bold"),
                ),
                Content.assemble(
                    ("res ", "$foreground-muted"),
                    (res, "bold"),
                    " ",
                    ("spr ", "$foreground-muted"),
                    (spread_now, "bold"),
                    " ",
                    ("pos ", "$foreground-muted"),
                    (inst.format_size(view.position), "bold"),
                ),
            )
        )
        if p.fair_value != MID:
            lines.append(_fair_line(mm, inst))
        rows = _pairs(view.bids, view.asks)
        cell = max(
            [len(_quote(inst, r.desired_price, r.desired_size)) for pair in rows for r in pair if r]
            + [len(_quote(inst, r.working_price, r.working_size)) for pair in rows for r in pair if r]
            + [7]
        )
        half = len(f"{'bid desired':>{cell}} {'working':>{cell}}")  # the header is the widest line
        if room and 2 * max(half, 2 * cell + 1) + len(_SEP[0]) > room:
            # Too narrow for desired and working side by side: the working quotes only, coloured by whether
            # they are what is desired (green), being changed (yellow) or missing ("-", muted).
            lines.append(
                Content.assemble(
                    (f"{'bid working':>{cell}}", "bold $foreground-muted"),
                    _SEP,
                    (f"{'ask working':>{cell}}", "bold $foreground-muted"),
                )
            )
            for bid, ask in rows:
                lines.append(
                    Content.assemble(self._side_cells(bid, cell)[-1], _SEP, self._side_cells(ask, cell)[-1])
                )
            return Content("\n").join(lines)
        lines.append(
            Content.assemble(
                (f"{'bid desired':>{cell}} {'working':>{cell}}", "bold $foreground-muted"),
                _SEP,
                (f"{'ask desired':>{cell}} {'working':>{cell}}", "bold $foreground-muted"),
            )
        )
        for bid, ask in rows:
            lines.append(Content.assemble(*self._side_cells(bid, cell), _SEP, *self._side_cells(ask, cell)))
        return Content("\n").join(lines)

    def _side_cells(self, row: QuoteRow | None, cell: int) -> list[tuple[str, str] | str]:
        """Desired and working quote of one level; the working one is green when it is what is desired,
        yellow while it differs (being amended, or an orphan about to be cancelled). A quote sent and not yet
        accepted is not working at the venue, and not on the ladder either: "sent"."""
        inst = self.market.instrument
        if row is None:
            return [" " * (cell + 1), " " * cell]
        desired = _quote(inst, row.desired_price, row.desired_size)
        if row.state == SENT:
            return [(f"{desired:>{cell}} ", "bold"), (f"{'sent':>{cell}}", "$foreground-muted")]
        working = _quote(inst, row.working_price, row.working_size)
        matches = (row.desired_price, row.desired_size) == (row.working_price, row.working_size)
        style = (
            "$success" if matches else ("$warning" if row.working_price is not None else "$foreground-muted")
        )
        if not working and desired:
            working = "-"
        return [(f"{desired:>{cell}} ", "bold"), (f"{working:>{cell}}", style)]


def _quote(inst: Any, price: int | None, size: int | None) -> str:
    return "" if price is None or size is None else f"{inst.format_price(price)} {inst.format_size(size)}"


def _pairs(bids: tuple[QuoteRow, ...], asks: tuple[QuoteRow, ...]) -> list[tuple]:
    n = max(len(bids), len(asks), 0)
    return [(bids[i] if i < len(bids) else None, asks[i] if i < len(asks) else None) for i in range(n)] or [
        (None, None)
    ]


def _fair_line(mm: Any, inst: Any) -> Content:
    """`fair: consolidated micro 65000.035 (A+B)`: the centre of the quotes and the venues it came from."""
    p = mm.params
    what = "consolidated micro" if p.fair_value == CONSOLIDATED_MICROPRICE else "micro"
    fv = mm.fair
    if fv is None:
        return Content.assemble(("fair: ", "$foreground-muted"), (f"{what} -", "bold"))
    names = [v for v, _s in mm.fair_markets]
    labels = dict(zip(names, venue_labels(names), strict=True))
    used = "+".join(labels.get(v, v) for v in fv.venues)
    return Content.assemble(
        ("fair: ", "$foreground-muted"),
        (f"{what} {fv.price(inst):f}", "bold"),
        (f" ({used})", "$foreground-muted"),
    )


def _hms(ts_ns: int) -> str:
    """Kernel time of day, UTC, to the second (the GLFT refit stamp)."""
    s = ts_ns // 1_000_000_000 % 86_400
    return f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}"


def _fit(room: int, full: Content, short: Content) -> Content:
    """`full` when it fits the panel's `room` columns (or the width is not known yet), else `short`."""
    return full if not room or full.cell_length <= room else short

"""The quote panel: the market maker of the current market, its parameters and on/off state, and its desired
quote ladder beside what is working at the venue, level by level.

Pulled on the UI clock at most `MAX_HZ` times a second, redrawn only when the market maker's version
changed (it bumps on every quote change and every parameter change). The keys that edit the parameters
live on the trading desk; this panel shows their effect.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.content import Content
from textual.widgets import Static

from lobterm.trading.market_maker import AVELLANEDA_STOIKOV, RUNNING, STOPPED, QuoteRow

if TYPE_CHECKING:
    from lobterm.kernel import Market

__all__ = ["QuotePanel"]

MAX_HZ = 5.0
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
        self._next_pull = 0.0

    @property
    def market_maker(self) -> Any:
        return self.market_makers.get(self.market.key)

    def show_market(self, market: Market) -> None:
        self.market = market
        self._shown = None
        self._next_pull = 0.0

    def pull(self, now: float) -> bool:
        """Redraw if the market maker changed (at most MAX_HZ a second); True when it did."""
        if now < self._next_pull:
            return False
        self._next_pull = now + 1.0 / MAX_HZ
        mm = self.market_maker
        key = (self.market.key, None if mm is None else (mm.version, mm.params_version, mm.state, mm.reason))
        if key == self._shown:
            return False
        self._shown = key
        self.update(self.render_content())
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
        view = mm.ladder_view()
        badge = f"reverse {_STATE_STYLE.get(view.status, 'bold $warning')}"
        state = Content.assemble("  ", (f" {view.status.upper()} ", badge))
        if view.reason:
            state += Content.styled(f" {view.reason}", "$foreground-muted")
        lines = [title + state]
        if p.mode == AVELLANEDA_STOIKOV:
            spread = f"A-S gamma {p.gamma:g} k {p.k:g}"
        elif p.spread_bps > 0:
            spread = f"spread {p.spread_bps:g} bps"
        else:
            spread = f"spread {p.spread_ticks} ticks"
        sizes = " ".join(inst.format_size(s) for s in p.sizes) if p.sizes else inst.format_size(p.size_lots)
        lines.append(
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
            )
        )
        lines.append(
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
            )
        )
        res = "-" if view.reservation_tick is None else inst.format_price(view.reservation_tick)
        spread_now = "-" if view.quoted_spread_ticks is None else inst.format_price(view.quoted_spread_ticks)
        lines.append(
            Content.assemble(
                ("reservation ", "$foreground-muted"),
                (res, "bold"),
                "  ",
                ("spread now ", "$foreground-muted"),
                (spread_now, "bold"),
                "  ",
                ("pos ", "$foreground-muted"),
                (inst.format_size(view.position), "bold"),
            )
        )
        rows = _pairs(view.bids, view.asks)
        cell = max(
            [len(_quote(inst, r.desired_price, r.desired_size)) for pair in rows for r in pair if r]
            + [len(_quote(inst, r.working_price, r.working_size)) for pair in rows for r in pair if r]
            + [7]
        )
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
        yellow while it differs (being amended, or an orphan about to be cancelled)."""
        inst = self.market.instrument
        if row is None:
            return [" " * (2 * cell + 1)]
        desired = _quote(inst, row.desired_price, row.desired_size)
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

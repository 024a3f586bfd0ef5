"""The hedge panel: the kernel's hedger (policy, state, exposure, the hedge order in flight, hedge fills,
hedge P&L and slippage), or a line saying there is none. Pulled on the UI clock, redrawn when the
hedger's version changed or once a second (its P&L moves with the hedge book's mid).
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING

from textual.content import Content
from textual.widgets import Static

from lobterm.engine.events import BUY
from lobterm.trading.inventory import to_quote

if TYPE_CHECKING:
    from lobterm.kernel import Kernel

__all__ = ["HedgePanel"]

REDRAW_S = 1.0


def _decimal(value: Fraction, places: int) -> Decimal:
    return Decimal(round(value * 10**places)).scaleb(-places)


class HedgePanel(Static):
    DEFAULT_CSS = """
    HedgePanel {
        height: auto;
        padding: 0 1;
        background: $surface;
        border-top: solid $panel-lighten-2;
    }
    """

    def __init__(self, kernel: Kernel, *, id: str | None = None) -> None:
        super().__init__("", id=id, markup=False)
        self.kernel = kernel
        self._shown: int | None = -1
        self._next_redraw = 0.0

    def pull(self, now: float) -> bool:
        hedger = self.kernel.hedger
        version = None if hedger is None else hedger.version
        if version == self._shown and now < self._next_redraw:
            return False
        self._shown = version
        self._next_redraw = now + REDRAW_S
        self.update(self.render_content())
        return True

    def render_content(self) -> Content:
        h = self.kernel.hedger
        title = Content.styled("HEDGE", "bold")
        if h is None:
            room = self.content_size.width
            text = "  none configured ([hedge] in the config)"
            if room and len(text) + 5 > room:  # narrow (the heatmap on): shorter words
                text = "  none ([hedge] in the config)"
            return title + Content.styled(text, "$foreground-muted")
        qm, hm = h.quote_market, h.hedge_market
        hi = hm.instrument
        st = h.stats
        p = h.params
        where = f"{qm.venue} {qm.symbol}" + ("" if not h.cross_venue else f" → {hm.venue} {hm.symbol}")
        state_style = (
            "bold $success"
            if h.state == "running"
            else "bold $error"
            if h.state == "stopped"
            else "bold $warning"
        )
        exposure = h.exposure()
        exposure_text = (
            qm.instrument.format_size(exposure)
            if isinstance(exposure, int)
            else f"{_decimal(exposure * Fraction(qm.instrument.lot_size), 8)}"
        )
        head = Content.assemble(
            title,
            "  ",
            (p.policy, "bold $accent"),
            "  ",
            (f" {h.state.upper()} ", f"reverse {state_style}"),
            ("  " + where, "$foreground-muted"),
        )
        overdue = h.overdue
        line2 = Content.assemble(
            ("exposure ", "$foreground-muted"),
            (exposure_text, "bold"),
            ("  threshold ", "$foreground-muted"),
            (qm.instrument.format_size(p.threshold_lots), "bold"),
            ("  OVERDUE" if overdue else "", "bold $error"),
        )
        o = h.in_flight
        if o is None:
            pending = Content.styled("pending: none", "$foreground-muted")
        else:
            side = "buy" if o.side == BUY else "sell"
            limit = "market" if not o.limit_price else f"limit {hi.format_price(o.limit_price)}"
            pending = Content.assemble(
                ("pending: ", "$foreground-muted"),
                (
                    f"{side} {hi.format_size(o.size)} {limit} ({o.why}), filled "
                    f"{hi.format_size(o.filled)}, {o.state}",
                    "bold $warning",
                ),
            )
        pnl = h.hedge_pnl()
        pnl_text = "-" if pnl is None else f"{to_quote(hi, pnl, 2)} {hi.quote}"
        slip = _decimal(st.slippage_bps(), 2)
        line4 = Content.assemble(
            ("fills ", "$foreground-muted"),
            (str(st.fills), "bold"),
            ("  volume ", "$foreground-muted"),
            (hi.format_size(st.volume), "bold"),
            ("  P&L ", "$foreground-muted"),
            (pnl_text, "bold"),
            ("  slippage ", "$foreground-muted"),
            (f"{slip} bps", "bold"),
        )
        return Content("\n").join([head, line2, pending, line4])

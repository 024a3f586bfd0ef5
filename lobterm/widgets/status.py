"""The status bar: venue, mode, venue state, symbol, our position and working orders, the default quantity,
the last trade, the spread and the last rejection. One line, pulled on the UI clock, redrawn only when
its text changed.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from textual.content import Content
from textual.widgets import Static

from lobterm.engine.events import BUY
from lobterm.engine.instrument import InstrumentError

if TYPE_CHECKING:
    from lobterm.kernel import Kernel, Market

__all__ = ["StatusBar"]

_STATE_STYLE = {"up": "bold $success", "connecting": "bold $warning", "idle": "$warning"}
_SEP = (" │ ", "$foreground-muted")


class StatusBar(Static):
    DEFAULT_CSS = """
    StatusBar {
        width: 100%;
        height: 1;
        background: $panel;
        color: $foreground;
        padding: 0 1;
    }
    """

    def __init__(self, kernel: Kernel, market: Market, *, id: str | None = None) -> None:
        super().__init__("", id=id, markup=False)
        self.kernel = kernel
        self.market = market
        self.last_reject: str | None = None
        self._shown: tuple | None = None

    def pull(self, default_qty: Decimal) -> bool:
        """Redraw if anything shown changed; returns True when it did."""
        k, m = self.kernel, self.market
        inst = m.instrument
        venue = k.venues[m.venue]
        state = k.venue_state.get(m.venue, "?")
        pos = k.inventory.positions.get((m.venue, m.symbol))
        lots = pos.lots if pos is not None else 0
        working = sum(1 for o in k.oms.working.values() if o.venue == m.venue and o.symbol == m.symbol)
        last = m.last_trade
        bb, ba = m.unified.best_bid(), m.unified.best_ask()
        key = (state, lots, working, default_qty, last, bb and bb[0], ba and ba[0], self.last_reject)
        if key == self._shown:
            return False
        self._shown = key
        parts: list[str | tuple[str, str]] = [
            (m.venue, "bold"), " ", (getattr(venue, "mode", "?"), "bold reverse $warning"), " ",
            (state, _STATE_STYLE.get(state, "bold $error")), _SEP,
            (m.symbol, "bold"), _SEP,
            "pos ", (f"{inst.format_size(lots)} {inst.base}".strip(),
                     "bold $success" if lots > 0 else "bold $error" if lots < 0 else "bold"), _SEP,
            "working ", (str(working), "bold $warning" if working else "bold"), _SEP,
            "qty ", *self._qty(default_qty), _SEP,
            "last ",
        ]
        if last is None:
            parts.append(("-", "$foreground-muted"))
        else:
            parts += [(inst.format_price(last.price), "bold"), " ",
                      ("▲" if last.aggressor == BUY else "▼") + inst.format_size(last.size)]
        parts += [_SEP, "spread "]
        if bb is not None and ba is not None:
            parts.append((inst.format_price(ba[0] - bb[0]), "bold"))
        else:
            parts.append(("-", "$foreground-muted"))
        if self.last_reject:
            parts += [_SEP, ("reject: ", "bold $error"), (self.last_reject, "$error")]
        self.update(Content.assemble(*parts))
        return True

    def _qty(self, qty: Decimal) -> list[tuple[str, str]]:
        try:
            self.market.instrument.order_lots(qty)
        except InstrumentError:
            return [(f"{qty}", "bold $error"), (" (not a valid order size)", "$error")]
        return [(f"{qty}", "bold $accent")]

"""The inventory panel: our position per venue and net, average entry, realized and unrealized P&L, fees,
exposure against the risk limits, and sparklines of P&L, inventory and mid over the session.

Once a second (on the UI clock) it takes one `kernel.inventory.snapshot` (recorded in the inventory's
bounded series) and one sample of the current market's position and mid; it redraws then, or at once when
a fill changed the inventory. Numbers a trader reads are exact Decimals; the sparklines only need shapes.
"""

from __future__ import annotations

from collections import deque
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING

from textual.content import Content
from textual.widgets import Static

from lobterm.trading.inventory import to_price, to_quote

if TYPE_CHECKING:
    from lobterm.kernel import Kernel, Market

__all__ = ["InventoryPanel", "sparkline"]

SAMPLE_S = 1.0
HISTORY = 600  # samples kept for the sparklines (ten minutes at one a second)
_BLOCKS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float], width: int) -> str:
    """The last `width` values as block characters scaled between their min and max (flat: a low line)."""
    vals = values[-width:]
    if not vals:
        return ""
    lo, hi = min(vals), max(vals)
    if hi == lo:
        return _BLOCKS[0] * len(vals)
    top = len(_BLOCKS) - 1
    return "".join(_BLOCKS[round((v - lo) * top / (hi - lo))] for v in vals)


def _signed_style(value: Decimal | Fraction | int) -> str:
    return "bold $success" if value > 0 else "bold $error" if value < 0 else "bold"


class InventoryPanel(Static):
    DEFAULT_CSS = """
    InventoryPanel {
        height: auto;
        padding: 0 1;
        background: $surface;
        border-top: solid $panel-lighten-2;
    }
    """

    def __init__(self, kernel: Kernel, market: Market, *, id: str | None = None) -> None:
        super().__init__("", id=id, markup=False)
        self.kernel = kernel
        self.market = market
        self.pnl_series: deque[float] = deque(maxlen=HISTORY)
        self.position_series: deque[float] = deque(maxlen=HISTORY)
        self.mid_series: deque[float] = deque(maxlen=HISTORY)
        self.samples = 0
        self._next_sample = 0.0
        self._drawn_version: int | None = None

    def show_market(self, market: Market) -> None:
        self.market = market
        self.position_series.clear()
        self.mid_series.clear()
        self._next_sample = 0.0

    def pull(self, now: float) -> bool:
        """Sample once a second and redraw; redraw at once when a fill changed the inventory."""
        inv = self.kernel.inventory
        if now >= self._next_sample:
            self._next_sample = now + SAMPLE_S
            self._sample()
        elif inv.version == self._drawn_version:
            return False
        self._drawn_version = inv.version
        self.update(self.render_content())
        return True

    def _sample(self) -> None:
        k, m = self.kernel, self.market
        snap = k.inventory.snapshot(k.clock.now(), k.marks())
        quote = m.instrument.quote or "?"
        self.pnl_series.append(float(snap.net_by_quote.get(quote, Decimal(0))))
        self.position_series.append(float(k.inventory.position(m.venue, m.symbol).lots))
        bid, ask = m.l2.best_bid_price(), m.l2.best_ask_price()
        if bid is not None and ask is not None:
            self.mid_series.append((bid + ask) / 2)
        self.samples += 1

    def render_content(self) -> Content:
        k = self.kernel
        inv = k.inventory
        quote_ccy = self.market.instrument.quote or ""
        lines = [Content.assemble(("INVENTORY & P&L", "bold"), (f"  ({quote_ccy})", "$foreground-muted"))]
        lines.append(
            Content.styled(
                f"{'market':<13}{'pos':>7}{'avg entry':>10}{'real':>8}{'unreal':>8}{'net':>8}",
                "bold $foreground-muted",
            )
        )
        totals: dict[str, Decimal] = {}
        fee_totals: dict[str, Decimal] = {}
        bases: dict[str, Fraction] = {}
        rows = 0
        for key, market in k.markets.items():
            pos = inv.positions.get(key)
            if pos is None or not pos.fills:
                continue
            inst = market.instrument
            pnl = pos.pnl(market.top(), inv.mark_mode)
            q = pnl.in_quote(inst, 2)
            fees = to_quote(inst, pnl.fees, 2)
            avg = "-" if pos.avg_cost is None else str(to_price(inst, pos.avg_cost, inst.price_decimals + 2))
            name = f"{market.venue} {market.symbol}"
            lines.append(
                Content.assemble(
                    f"{name[:12]:<13}",
                    (f"{inst.format_size(pos.lots):>7}", _signed_style(pos.lots)),
                    f"{avg:>10}",
                    (f"{q.realized:>8}", _signed_style(q.realized)),
                    (f"{q.unrealized:>8}", _signed_style(q.unrealized)),
                    (f"{q.net:>8}", _signed_style(q.net)),
                )
            )
            ccy = inst.quote or "?"
            totals[ccy] = totals.get(ccy, Decimal(0)) + q.net
            fee_totals[ccy] = fee_totals.get(ccy, Decimal(0)) + fees
            rows += 1
        if not rows:
            lines.append(Content.styled("flat: no fills yet", "$foreground-muted"))
        for key in k.markets:
            base = inv.base_of(*key)
            if base not in bases:
                bases[base] = inv.net(base)
        net = "  ".join(
            f"{base} {Decimal(v.numerator) / Decimal(v.denominator):f}" for base, v in bases.items()
        )
        total = "  ".join(f"{v} {c}" for c, v in totals.items()) or "0"
        fees_paid = "  ".join(f"{v}" for v in fee_totals.values()) or "0"
        lines.append(
            Content.assemble(
                ("net ", "$foreground-muted"),
                (net, "bold"),
                ("  fees ", "$foreground-muted"),
                (fees_paid, "bold"),
                ("  net P&L ", "$foreground-muted"),
                (total, "bold"),
            )
        )
        lines.append(self._limits())
        width = 13
        lines.append(
            Content.assemble(
                ("P&L ", "$foreground-muted"),
                (f"{sparkline(list(self.pnl_series), width):<{width}}", "$accent"),
                (" pos ", "$foreground-muted"),
                (f"{sparkline(list(self.position_series), width):<{width}}", "$warning"),
                (" mid ", "$foreground-muted"),
                (sparkline(list(self.mid_series), width), "$primary"),
            )
        )
        return Content("\n").join(lines)

    def _limits(self) -> Content:
        """Exposure against the limits of the current market, and what risk says is near its limit."""
        k, m = self.kernel, self.market
        risk = k.risk
        state = risk.state()
        lim = risk.limits_for(m.venue, m.symbol)
        inst = m.instrument
        lots = k.inventory.position(m.venue, m.symbol).lots
        parts: list[tuple[str, str] | str] = [("limits ", "$foreground-muted")]
        if lim.max_position_lots:
            pct = abs(lots) * 100 // lim.max_position_lots
            parts += [
                "pos ",
                (
                    f"{inst.format_size(abs(lots))}/{inst.format_size(lim.max_position_lots)} ({pct}%)",
                    "bold $error" if pct >= 80 else "bold",
                ),
            ]
        else:
            parts += ["pos ", ("no limit", "$foreground-muted")]
        if lim.daily_loss_limit is not None:
            parts += ["  daily loss limit ", (f"{lim.daily_loss_limit}", "bold")]
        if state.killed:
            parts += ["  ", (" KILL SWITCH ON ", "bold reverse $error")]
        elif state.near:
            parts += ["  ", ("near: " + "; ".join(state.near), "bold $warning")]
        return Content.assemble(*parts)

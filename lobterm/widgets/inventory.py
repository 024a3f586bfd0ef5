"""The inventory panel: our position per venue and net, average entry, realized and unrealized P&L, fees,
exposure against the risk limits, and sparklines of P&L, inventory and mid over the session.

Once a second (on the UI clock) it takes one `kernel.inventory.snapshot` (recorded in the inventory's
bounded series) and one sample of the current market's position and mid; it redraws then, or at once when
a fill changed the inventory. In a replay the player samples it instead (`sample_at`, at every second of
session time the replay passes, `external_clock`): a seek rebuilds the same history a straight play drew.
Numbers a trader reads are exact Decimals; the sparklines only need shapes.
"""

from __future__ import annotations

from collections import deque
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING

from textual.content import Content
from textual.widgets import Static

from lobterm.engine.bounds import SPARKLINE
from lobterm.engine.instrument import FEE_SCALE
from lobterm.trading.inventory import to_price, to_quote
from lobterm.trading.margin import distance_bps
from lobterm.widgets.table import Column, fit_table, fits

if TYPE_CHECKING:
    from lobterm.kernel import Kernel, Market

__all__ = ["InventoryPanel", "sparkline"]

SAMPLE_S = 1.0
SAMPLE_NS = 1_000_000_000
SPARK_WIDTH = 13  # samples each sparkline shows
HISTORY = SPARKLINE  # samples kept for the sparklines (engine/bounds.py)
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


# The margin line's warning band: ok below 50% of maintenance consumption, warn, danger from 80%.
_LEVEL_COLOUR = {"ok": "$success", "warn": "$warning", "danger": "$error", "liquidation": "$error"}
_INVENTORY_COLUMNS = (
    Column("market", priority=1),  # one market: the ladder names it; several: see _market_labels
    Column("pos", right=True),
    Column("avg entry", right=True),
    Column("real", right=True, priority=2),
    Column("unreal", right=True, priority=3),
    Column("net", right=True),
)
_LEVEL_STYLE = {level: f"bold {colour}" for level, colour in _LEVEL_COLOUR.items()}


def _market_labels(markets: list[tuple[str, str]]) -> list[str]:
    """The shortest names that still tell the rows apart: the venue when every row trades the same symbol,
    the symbol's base when every row is on one venue, else both."""
    venues = {v for v, _ in markets}
    symbols = {s for _, s in markets}
    if len(symbols) == 1 and len(venues) == len(markets):
        return [v for v, _ in markets]
    if len(venues) == 1 and len({s.split("/")[0] for _, s in markets}) == len(markets):
        return [s.split("/")[0] for _, s in markets]
    return [f"{v} {s}" for v, s in markets]


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
        self._liquidations_seen = 0
        #: A replay's player samples (`sample_at`) on session time; the UI clock then only redraws.
        self.external_clock = False
        self._drawn_samples = 0

    def show_market(self, market: Market) -> None:
        self.market = market
        self.position_series.clear()
        self.mid_series.clear()
        self._next_sample = 0.0

    def reset_history(self) -> None:
        """Forget the sparklines' samples (a replay's seek: the session's history starts again there)."""
        self.pnl_series.clear()
        self.position_series.clear()
        self.mid_series.clear()
        self._next_sample = 0.0
        self._drawn_version = None
        self._drawn_samples = -1

    def sample_at(self, ts_ns: int) -> None:
        """A replay's sample time (every SAMPLE_NS of session time; other times are ignored)."""
        if ts_ns % SAMPLE_NS == 0:
            self._sample(ts_ns)

    def pull(self, now: float) -> bool:
        """Sample once a second and redraw; redraw at once when a fill changed the inventory."""
        inv = self.kernel.inventory
        if self.external_clock:
            if inv.version == self._drawn_version and self.samples == self._drawn_samples:
                return False
        elif now >= self._next_sample:
            self._next_sample = now + SAMPLE_S
            self._sample()
        elif inv.version == self._drawn_version:
            return False
        self._drawn_samples = self.samples
        self._notify_liquidations()
        self._drawn_version = inv.version
        self.update(self.render_content())
        return True

    def on_resize(self) -> None:
        self.update(self.render_content())  # the columns fit the new width at once

    def _sample(self, ts_ns: int | None = None) -> None:
        k, m = self.kernel, self.market
        snap = k.inventory.snapshot(k.clock.now() if ts_ns is None else ts_ns, k.marks())
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
        muted = "bold $foreground-muted"
        table: list[list[tuple[str, str]]] = [
            [
                ("market", muted),
                ("pos", muted),
                ("avg entry", muted),
                ("real", muted),
                ("unreal", muted),
                ("net", muted),
            ]
        ]
        totals: dict[str, Decimal] = {}
        fee_totals: dict[str, Decimal] = {}
        bases: dict[str, Fraction] = {}
        rows = 0
        shown: list[tuple[str, str]] = []
        for key, market in k.markets.items():
            pos = inv.positions.get(key)
            if pos is None or not (pos.fills or pos.funding):  # funding alone is P&L too (a perp)
                continue
            inst = market.instrument
            pnl = pos.pnl(market.top(), inv.mark_mode)
            q = pnl.in_quote(inst, 2)
            fees = to_quote(inst, pnl.fees, 2)
            avg = "-" if pos.avg_cost is None else str(to_price(inst, pos.avg_cost, inst.price_decimals + 2))
            table.append(
                [
                    (f"{market.venue} {market.symbol}", ""),
                    (inst.format_size(pos.lots), _signed_style(pos.lots)),
                    (avg, ""),
                    (f"{q.realized}", _signed_style(q.realized)),
                    (f"{q.unrealized}", _signed_style(q.unrealized)),
                    (f"{q.net}", _signed_style(q.net)),
                ]
            )
            shown.append((market.venue, market.symbol))
            ccy = inst.quote or "?"
            totals[ccy] = totals.get(ccy, Decimal(0)) + q.net
            fee_totals[ccy] = fee_totals.get(ccy, Decimal(0)) + fees
            rows += 1
        if rows:
            columns = _INVENTORY_COLUMNS
            if rows > 1:  # several rows: the market column names each, so it stays (shortened when narrow)
                columns = (Column("market"), *_INVENTORY_COLUMNS[1:])
                if not fits(columns, table, self.content_size.width):
                    for row, label in zip(table[1:], _market_labels(shown), strict=True):
                        row[0] = (label, "")
            lines += fit_table(columns, table, self.content_size.width)
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
        room = self.content_size.width
        net_line = Content.assemble(
            ("net ", "$foreground-muted"),
            (net, "bold"),
            ("  fees ", "$foreground-muted"),
            (fees_paid, "bold"),
            ("  net P&L ", "$foreground-muted"),
            (total, "bold"),
        )
        if room and net_line.cell_length > room:  # narrow: shorter words
            net_line = Content.assemble(
                ("net ", "$foreground-muted"),
                (net, "bold"),
                (" fees ", "$foreground-muted"),
                (fees_paid, "bold"),
                (" P&L ", "$foreground-muted"),
                (total, "bold"),
            )
        lines.append(net_line)
        lines.append(self._limits())
        margin = self._margin()
        if margin is not None:
            lines.append(margin)
        width = SPARK_WIDTH if not room else max(4, min(SPARK_WIDTH, (room - 14) // 3))
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

    def _notify_liquidations(self) -> None:
        """A notice for each liquidation the venue made since the last look."""
        liqs = self.kernel.margin.liquidations
        for ev in liqs[self._liquidations_seen :]:
            m = self.kernel.markets.get((ev.venue, ev.symbol))
            if m is None:
                continue
            inst = m.instrument
            try:
                self.app.notify(
                    f"{ev.venue} {ev.symbol}: the venue liquidated {inst.format_size(ev.size)} "
                    f"at {inst.format_price(ev.price)} (mark {inst.format_price(ev.mark)})",
                    title="LIQUIDATION",
                    severity="error",
                    timeout=30,
                )
            except Exception:  # no app (a bare widget in a test): the panel line still says it
                pass
        self._liquidations_seen = len(liqs)

    def _margin(self) -> Content | None:
        """Perpetuals: margin ratio, liquidation price and its distance from the mark, leverage, funding,
        coloured by the warning band; None on a spot market."""
        k, m = self.kernel, self.market
        st = k.margin.status(m.venue, m.symbol)
        if st is None:
            return None
        inst = m.instrument
        level = st.level
        style = _LEVEL_STYLE.get(level, "bold")
        ratio = st.margin_ratio
        ratio_s = "-" if ratio is None else f"{Decimal(round(ratio * 10_000)) / 100:.2f}%"
        parts: list[tuple[str, str] | str] = [("margin ", "$foreground-muted"), (ratio_s, style)]
        if st.liquidation_tick is not None:
            dist = distance_bps(st)
            parts += [
                ("  liq ", "$foreground-muted"),
                (inst.format_price(st.liquidation_tick), style),
                (f" ({int(dist)} bps)" if dist is not None else "", style),
            ]
        else:
            parts += [("  liq ", "$foreground-muted"), ("none", "$foreground-muted")]
        lev = st.effective_leverage
        terms = k.margin.terms.get((m.venue, m.symbol))
        if lev is not None and terms is not None:
            parts += [
                ("  lev ", "$foreground-muted"),
                (f"{float(lev):.{2 if lev < 1 else 1}f}x/{terms.rules.leverage}x", "bold"),
            ]
        pos = k.inventory.position(m.venue, m.symbol)
        if pos.funding:
            paid = to_quote(inst, Fraction(-pos.funding, FEE_SCALE), 2)
            parts += [("  funding ", "$foreground-muted"), (f"{paid}", _signed_style(paid))]
        if level != "ok":
            parts += ["  ", (f" {level.upper()} ", f"bold reverse {_LEVEL_COLOUR[level]}")]
        if pos.liquidations:
            parts += ["  ", (f" LIQUIDATED x{pos.liquidations} ", "bold reverse $error")]
        return Content.assemble(*parts)

    def _limits(self) -> Content:
        """Exposure against the limits of the current market, and what risk says is near its limit."""
        k, m = self.kernel, self.market
        risk = k.risk
        state = risk.state()
        lim = risk.limits_for(m.venue, m.symbol)
        inst = m.instrument
        lots = k.inventory.position(m.venue, m.symbol).lots
        room = self.content_size.width

        def line(short: bool, shorter: bool = False) -> Content:
            parts: list[tuple[str, str] | str] = [] if short else [("limits ", "$foreground-muted")]
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
                parts += [
                    " loss " if shorter else " loss limit " if short else "  daily loss limit ",
                    (f"{lim.daily_loss_limit}", "bold"),
                ]
            if state.killed:
                parts += [
                    " " if short else "  ",
                    (" KILLED " if short else " KILL SWITCH ON ", "bold reverse $error"),
                ]
            elif state.near:
                parts += [" " if short else "  ", ("near: " + "; ".join(state.near), "bold $warning")]
            return Content.assemble(*parts)

        # narrow (the heatmap on, a stacked panel): the same figures with fewer words
        for got in (line(False), line(True)):
            if not room or got.cell_length <= room:
                return got
        return line(True, True)

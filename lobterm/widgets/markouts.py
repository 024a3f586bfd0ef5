"""The markout panel: how the mid moved after our fills, per horizon, in bps (positive: good for us).

Rows: every fill of ours ("all"), then by source (the order's tag: mm, manual, hedge, flatten, a
strategy), by side, and the market's trades seen from their maker's side as a baseline; columns: the
horizons. Under them: the worst-decile share of markout loss, the toxic fills, and the P&L split. It reads
the kernel's markout engine once a second on the UI clock (the numbers are exact Fractions turned into
Decimals here; nothing is computed twice).
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from textual.content import Content
from textual.widgets import Static

if TYPE_CHECKING:
    from lobterm.kernel import Kernel, Market
    from lobterm.trading.markouts import Bucket, MarkoutEngine

__all__ = ["MarkoutPanel", "bps_text"]

REFRESH_S = 1.0
_COL = 8


def bps_text(b: Bucket) -> str:
    """A bucket's notional-weighted average markout in bps, two decimals; "-" before any fill settled."""
    if not b.notional:
        return "-"
    x = Fraction(b.markout2 * 10_000, 2 * b.notional)
    d = (Decimal(x.numerator) / Decimal(x.denominator)).quantize(Decimal("0.01"))
    return f"{d.copy_abs() if d.is_zero() else d:+}"


def _style(text: str) -> str:
    return (
        "$success"
        if text.startswith("+") and text != "+0.00"
        else "$error"
        if text.startswith("-") and text != "-"
        else ""
    )


class MarkoutPanel(Static):
    DEFAULT_CSS = """
    MarkoutPanel {
        height: auto;
        padding: 0 1;
        background: $surface;
        border-top: solid $panel-lighten-2;
        display: none;
    }
    MarkoutPanel.-shown { display: block; }
    """

    def __init__(self, kernel: Kernel, market: Market, *, id: str | None = None) -> None:
        super().__init__("", id=id, markup=False)
        self.kernel = kernel
        self.market = market
        self._next = 0.0
        self.draws = 0

    @property
    def engine(self) -> MarkoutEngine | None:
        feed: Any = self.kernel.markouts
        return None if feed is None else feed.engine

    def show_market(self, market: Market) -> None:
        self.market = market
        self._next = 0.0

    def pull(self, now: float) -> bool:
        if not self.has_class("-shown") or now < self._next:
            return False
        self._next = now + REFRESH_S
        self.update(self.render_content())
        self.draws += 1
        return True

    def render_content(self) -> Content:
        e = self.engine
        if e is None:
            return Content.styled("MARKOUTS: not measured in this kernel", "$foreground-muted")
        hs = e.config.horizons_s
        title = Content.assemble(
            ("MARKOUTS", "bold"),
            ("  bps vs the mid after each fill, + = good for us", "$foreground-muted"),
        )
        head = Content.styled(
            f"{'':<10}" + "".join(f"{f'{h:g}s':>{_COL}}" for h in hs) + f"{'fills':>{_COL}}",
            "bold $foreground-muted",
        )
        lines = [title, head]
        rows: list[tuple[str, tuple[str, str]]] = [("all", ("all", "all"))]
        rows += [(v, (g, v)) for g, v in sorted(e.buckets) if g == "source"]
        rows += [(v, ("side", v)) for v in ("buy", "sell") if ("side", v) in e.buckets]
        if e.config.baseline:
            rows.append(("market*", ("baseline", "market")))
        for label, key in rows:
            buckets = e.curve(key)
            cells = [bps_text(b) for b in buckets]
            parts: list[tuple[str, str] | str] = [f"{label[:9]:<10}"]
            parts += [(f"{c:>{_COL}}", _style(c)) for c in cells]
            parts.append((f"{buckets[0].fills:>{_COL}}", "$foreground-muted"))
            lines.append(Content.assemble(*parts))
        share = e.worst_decile_share()
        share_text = (
            "-"
            if share is None
            else f"{(Decimal(share.numerator) * 100 / share.denominator).quantize(Decimal(1))}%"
        )
        lines.append(
            Content.assemble(
                ("worst 10% of fills: ", "$foreground-muted"),
                (share_text, "bold"),
                (f" of loss ({e.config.adverse_horizon_s:g}s)", "$foreground-muted"),
                ("  toxic ", "$foreground-muted"),
                (str(e.toxic), "bold $error" if e.toxic else "bold"),
                (f" (<{e.config.toxic_bps:g}bps {hs[0]:g}s)", "$foreground-muted"),
            )
        )
        lines.append(self._split(e))
        if e.config.baseline:
            lines.append(
                Content.styled("* the market's trades, from their maker's side", "$foreground-muted")
            )
        return Content("\n").join(lines)

    def _split(self, e: MarkoutEngine) -> Content:
        k, m = self.kernel, self.market
        if len(k.markets) != 1:  # the split is in one quote currency: one market's
            return Content("")
        inst = m.instrument
        net = k.inventory.pnl(m.venue, m.symbol, m.top()).in_quote(inst).net
        s = e.split(inst, net)
        q = Decimal("0.01")
        return Content.assemble(
            ("P&L split: ", "$foreground-muted"),
            "spread ",
            (f"{s.spread_captured.quantize(q)}", "bold"),
            " adverse ",
            (f"{s.adverse_selection.quantize(q)}", "bold"),
            " fees ",
            (f"{s.fees.quantize(q)}", "bold"),
            " inv ",
            (f"{s.inventory.quantize(q)}", "bold"),
        )

"""What a backtest measured, the same record from the reference path and the fast path: `BacktestResult`,
as text for a trader or as a dict for `--json`.

The record keeps money exact (Decimal strings, as computed); the text rounds it for reading: sizes to
the instrument's size decimals, P&L, fees and drawdown to the quote currency's decimals on this market
(`quote_decimals`). `--json` leaves out the inventory path (one point per fill: most of the output on a
long session) unless asked for with `--path`."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import Any

from lobterm.engine.instrument import FEE_SCALE, Instrument  # fees: 1/FEE_SCALE of a tick x lot

__all__ = ["FEE_SCALE", "BacktestResult", "plain", "quote_decimals", "rounded"]

_WIDE = Context(prec=200)  # quantize never runs out of digits, whatever the amount


def quote_decimals(inst: Instrument) -> int:
    """How many decimals of the quote currency this market moves: those of one tick times one lot (the
    cash of the smallest fill: 0.0001 USDT for tick 0.1, lot 0.001), at least the price's decimals."""
    step = (inst.tick_size * inst.lot_size).normalize()
    return max(inst.price_decimals, -int(step.as_tuple().exponent), 0)


def rounded(amount: str, decimals: int) -> str:
    """A decimal amount rounded half-even to `decimals` places, with no '-0'."""
    q = Decimal(amount).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_EVEN, context=_WIDE)
    return f"{q.copy_abs() if q.is_zero() else q:f}"


@dataclass(slots=True)
class BacktestResult:
    """One market's backtest: what was sent and filled, P&L in the quote currency, inventory, speed."""

    path: str
    venue: str
    symbol: str
    params: dict
    params_source: str
    latency_ms: float
    events: int
    wall_seconds: float
    events_per_s: float
    replay_seconds: float
    quotes_sent: int
    amends_sent: int
    cancels_sent: int
    fills: int
    fills_by_rule: dict
    buy_volume: str
    sell_volume: str
    volume: str
    realized_pnl: str
    unrealized_pnl: str
    fees: str
    net_pnl: str
    position_min: str
    position_max: str
    position_final: str
    max_drawdown: str
    quote_currency: str  # what the P&L, fees and drawdown are in
    quote_decimals: int  # how many decimals the text shows them with (see `quote_decimals`)
    time_quoted_pct: float
    risk_rejects: dict
    subscriber_errors: int
    inventory_path: list = field(default_factory=list)
    engine: str = "reference"  # "fast": lobterm/backtest/fast.py (numba); "reference": the kernel's objects
    compile_seconds: float = (
        0.0  # fast path: compiling (first run) or loading the cached kernel, not in events/s
    )
    decode_seconds: float = 0.0  # fast path: reading and decoding the session (in events/s)
    kernel_seconds: float = 0.0  # fast path: the numba kernel alone
    kernel_events_per_s: float = 0.0
    # The session's recorded live parameter changes applied at their times: {"ts", "at_s" (seconds into the
    # session), "changes"} each, with
    # "problem" for one the market maker refused (empty when none were recorded or --config was given).
    param_changes: list = field(default_factory=list)
    #: Markouts per horizon and the P&L split (lobterm/trading/markouts.py).
    markouts: dict | None = None
    markout_line: str = ""
    markout_seconds: float = 0.0  # fast path: the markout pass over the rows (not in wall_seconds)
    #: The fill models (lobterm/backtest/models.py): the latency model in words, the queue model spec.
    latency: str = ""
    queue_model: str = "risk_averse"
    #: Reference path only: why the fast path did not run this backtest ("" when not asked / not tried).
    engine_reason: str = ""

    def as_dict(self, inventory_path: bool = True) -> dict:
        """Every field (money exact, as strings); without the inventory path if `inventory_path` is false."""
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if inventory_path or f.name != "inventory_path"
        }

    def as_text(self) -> str:
        pnl_label = f"P&L ({self.quote_currency or 'quote'})"

        def money(amount: str) -> str:
            return rounded(amount, self.quote_decimals)

        return "\n".join(
            [
                f"lobterm backtest: {self.path}",
                f"  market             {self.venue} {self.symbol}, {self.replay_seconds:.1f} s of recorded time",
                f"  parameters         {self.params_source}: "
                + ", ".join(f"{k}={v}" for k, v in sorted(self.params.items())),
                *self._changes_text(),
                f"  latency            {self.latency or f'{self.latency_ms:g} ms per request'}",
                f"  queue model        {self.queue_model}",
                f"  events             {self.events:,} in {self.wall_seconds:.2f} s ({self.events_per_s:,.0f} events/s)",
                f"  engine             {self._engine_text()}",
                f"  orders             {self.quotes_sent:,} new, {self.amends_sent:,} amends, {self.cancels_sent:,} cancels",
                f"  fills              {self.fills:,} ({', '.join(f'{k} {v}' for k, v in self.fills_by_rule.items())})",
                f"  volume             {self.volume} (bought {self.buy_volume}, sold {self.sell_volume})",
                f"  {pnl_label:<18} realized {money(self.realized_pnl)}, unrealized {money(self.unrealized_pnl)}, "
                f"fees {money(self.fees)}, net {money(self.net_pnl)}",
                f"  inventory          min {self.position_min}, max {self.position_max}, final {self.position_final}",
                f"  max drawdown       {money(self.max_drawdown)}",
                f"  time quoted        {self.time_quoted_pct:.1f}% (both sides)",
                f"  markouts           {self.markout_line or '-'}",
                f"  risk rejections    {self.risk_rejects or 'none'}",
            ]
        )

    def _changes_text(self) -> list[str]:
        lines = []
        for c in self.param_changes:
            at = f"{c['at_s']:.1f} s"
            what = ", ".join(f"{k}={plain(v)}" for k, v in sorted(c["changes"].items()))
            done = f" (refused: {c['problem']})" if "problem" in c else ""
            lines.append(f"  live change        at {at}: {what}{done}")
        return lines

    def _engine_text(self) -> str:
        if self.engine != "fast":
            why = f"; {self.engine_reason}" if self.engine_reason else ""
            return f"reference (the kernel's bus, books, OMS, risk, market maker and paper desk){why}"
        return (
            f"fast (numba): decode {self.decode_seconds:.2f} s, kernel {self.kernel_seconds:.3f} s "
            f"({self.kernel_events_per_s:,.0f} events/s); compile/load {self.compile_seconds:.2f} s not counted"
        )


def plain(v: Any) -> Any:
    """A parameter's value as JSON has it: tuples as lists, Decimals as strings."""
    if isinstance(v, tuple):
        return list(v)
    if isinstance(v, Decimal):
        return str(v)
    return v

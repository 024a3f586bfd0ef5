"""What a backtest measured, the same record from the reference path and the fast path: `BacktestResult`,
as text for a trader or as a dict for `--json`."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from decimal import Decimal
from typing import Any

from lobterm.engine.instrument import FEE_SCALE  # fees are counted in 1/FEE_SCALE of tick x lot

__all__ = ["FEE_SCALE", "BacktestResult", "plain"]


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

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def as_text(self) -> str:
        return "\n".join(
            [
                f"lobterm backtest: {self.path}",
                f"  market             {self.venue} {self.symbol}, {self.replay_seconds:.1f} s of recorded time",
                f"  parameters         {self.params_source}: "
                + ", ".join(f"{k}={v}" for k, v in sorted(self.params.items())),
                f"  latency            {self.latency_ms:g} ms per request",
                f"  events             {self.events:,} in {self.wall_seconds:.2f} s ({self.events_per_s:,.0f} events/s)",
                f"  engine             {self._engine_text()}",
                f"  orders             {self.quotes_sent:,} new, {self.amends_sent:,} amends, {self.cancels_sent:,} cancels",
                f"  fills              {self.fills:,} ({', '.join(f'{k} {v}' for k, v in self.fills_by_rule.items())})",
                f"  volume             {self.volume} (bought {self.buy_volume}, sold {self.sell_volume})",
                f"  P&L (quote)        realized {self.realized_pnl}, unrealized {self.unrealized_pnl}, fees {self.fees}, "
                f"net {self.net_pnl}",
                f"  inventory          min {self.position_min}, max {self.position_max}, final {self.position_final}",
                f"  max drawdown       {self.max_drawdown}",
                f"  time quoted        {self.time_quoted_pct:.1f}% (both sides)",
                f"  risk rejections    {self.risk_rejects or 'none'}",
            ]
        )

    def _engine_text(self) -> str:
        if self.engine != "fast":
            return "reference (the kernel's bus, books, OMS, risk, market maker and paper desk)"
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

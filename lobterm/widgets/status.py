"""The status bar: every venue's health (live, stale, resyncing, down) and feed latency, then the current
market (symbol, our position and net P&L, working orders, default quantity, last trade, spread), the market maker's
state, risk (kill switch, limits near), recording, the replay clock, and the last rejection.

One line, pulled on the UI clock, redrawn only when its text changed. The slow-moving parts (latency,
limits near) are sampled twice a second, so that the line does not repaint on every tick.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from textual.content import Content
from textual.widgets import Static

from lobterm.engine.events import BUY
from lobterm.engine.instrument import InstrumentError
from lobterm.widgets import uiclock

if TYPE_CHECKING:
    from lobterm.kernel import Kernel, Market

__all__ = ["StatusBar", "venue_health"]

SLOW_S = 0.5
FAST_S = 0.125  # the last trade and the touch: at most 8 redraws a second
_HEALTH_STYLE = {
    "live": "bold $success",
    "connecting": "bold $warning",
    "idle": "$warning",
    "stale": "bold $warning",
    "resyncing": "bold $warning",
}
_DOWN_STATES = frozenset({"closed", "down", "error", "disconnected", "failed"})
_SEP = (" │ ", "$foreground-muted")


def venue_health(kernel: Kernel, venue: str) -> str:
    """live, stale (a feed stopped), resyncing (a book waits for its snapshot), down, or the venue's own
    word for where it is (connecting, idle)."""
    state = kernel.venue_state.get(venue, "?")
    if state in _DOWN_STATES:
        return "down"
    if state != "up":
        return state
    markets = [m for m in kernel.markets.values() if m.venue == venue]
    if any(not m.l2.valid for m in markets):
        return "resyncing"
    if any(m.stale for m in markets):
        return "stale"
    return "live"


class StatusBar(Static):
    DEFAULT_CSS = """
    StatusBar {
        width: 100%;
        height: auto;
        max-height: 2;
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
        #: Set by a replay (ns timestamp of the replay clock, or text): shown as the replay time.
        self.replay_time: int | str | None = None
        self._shown: tuple | None = None
        self._slow: tuple = ()
        self._next_slow = 0.0
        self._drawn_at = 0.0

    def pull(self, default_qty: Decimal) -> bool:
        """Redraw if anything shown changed; returns True when it did."""
        k, m = self.kernel, self.market
        now = uiclock.monotonic()
        if now >= self._next_slow:
            self._next_slow = now + SLOW_S
            self._slow = (self._latencies(), tuple(k.risk.state().near))
        latencies, near = self._slow
        health = tuple((v, venue_health(k, v)) for v in k.venues)
        pos = k.inventory.positions.get((m.venue, m.symbol))
        lots = pos.lots if pos is not None else 0
        # Net P&L (realized + unrealized at the mark - fees), exact, in the quote currency, to the cent.
        pnl = (
            None
            if pos is None or not pos.fills
            else pos.pnl(m.top(), k.inventory.mark_mode).in_quote(m.instrument, 2).net
        )
        working = sum(1 for _ in k.oms.market_orders(m.venue, m.symbol))
        last = m.last_trade
        bb, ba = m.unified.best_bid(), m.unified.best_ask()
        mm = next((x for x in k.market_makers if x.market is m), None)
        recorder = getattr(k, "recorder", None)
        recording = (
            None
            if recorder is None or getattr(recorder, "closed", False)
            else Path(str(getattr(recorder, "path", "on"))).name
        )
        key = (
            m.key,
            health,
            latencies,
            near,
            lots,
            working,
            default_qty,
            last,
            bb and bb[0],
            ba and ba[0],
            self.last_reject,
            None if mm is None else mm.state,
            k.risk.killed,
            recording,
            self.replay_time,
            None if k.metrics is None else k.metrics.port_taken,
            pnl,
            tuple(sorted(k.position_mismatches.items())),
        )
        if key == self._shown:
            return False
        # The last trade and the touch move many times a second in a busy market; nobody reads a status
        # line at 30 Hz, so those alone redraw it at most every FAST_S. Anything else redraws at once.
        shown = self._shown
        if (
            shown is not None
            and now - self._drawn_at < FAST_S
            and shown[8] is not None
            and shown[9] is not None
            and key[:7] == shown[:7]
            and key[10:-1] == shown[10:-1]  # the P&L (last) moves with the mark: throttled too
        ):
            return False
        self._shown = key
        self._drawn_at = now
        inst = m.instrument
        parts: list[str | tuple[str, str]] = []
        if k.risk.killed:
            parts += [(" KILL SWITCH ON ", "bold reverse $error"), " "]
        for (venue, asset), (ours, theirs) in sorted(k.position_mismatches.items()):
            parts += [
                (f" POSITION MISMATCH {venue} {asset}: ours {ours}, venue {theirs} ", "bold reverse $error"),
                " ",
            ]
        for (venue, state), lat in zip(health, latencies, strict=False):
            mode = getattr(k.venues[venue], "mode", "?")
            parts += [
                (venue, "bold"),
                " ",
                (mode, "bold reverse $warning"),
                " ",
                (state, _HEALTH_STYLE.get(state, "bold $error")),
            ]
            if lat is not None:
                parts += [(f" {lat}ms", "$foreground-muted")]
            parts.append("  ")
        if self.replay_time is not None:
            parts += [("REPLAY ", "bold $primary"), (self._replay_text(), "bold")]
        parts += [
            _SEP,
            (m.symbol, "bold"),
            _SEP,
            "pos ",
            (
                f"{inst.format_size(lots)} {inst.base}".strip(),
                "bold $success" if lots > 0 else "bold $error" if lots < 0 else "bold",
            ),
            _SEP,
            "P&L ",
            self._pnl(pnl),
            _SEP,
            "working ",
            (str(working), "bold $warning" if working else "bold"),
            _SEP,
            "qty ",
            *self._qty(default_qty),
            _SEP,
            "last ",
        ]
        if last is None:
            parts.append(("-", "$foreground-muted"))
        else:
            parts += [
                (inst.format_price(last.price), "bold"),
                " ",
                ("▲" if last.aggressor == BUY else "▼") + inst.format_size(last.size),
            ]
        parts += [_SEP, "spread "]
        if bb is not None and ba is not None:
            parts.append((inst.format_price(ba[0] - bb[0]), "bold"))
        else:
            parts.append(("-", "$foreground-muted"))
        if mm is not None:
            parts += [
                _SEP,
                "MM ",
                (
                    mm.state,
                    "bold $success"
                    if mm.state == "running"
                    else "bold $error"
                    if mm.state == "stopped"
                    else "bold $warning",
                ),
            ]
        if recording is not None:
            parts += [_SEP, ("● REC ", "bold $error"), (recording, "$foreground-muted")]
        metrics = k.metrics
        if metrics is not None and metrics.port_taken is not None and metrics.address is not None:
            parts += [_SEP, "metrics ", (f":{metrics.address[1]}", "bold $warning")]
        if near:
            parts += [_SEP, ("near limit: ", "bold $warning"), ("; ".join(near), "$warning")]
        if self.last_reject:
            parts += [_SEP, ("reject: ", "bold $error"), (self.last_reject, "$error")]
        self.update(Content.assemble(*parts))
        return True

    def _latencies(self) -> tuple[int | None, ...]:
        """Per venue: milliseconds since the newest market event's venue timestamp (None before any)."""
        k = self.kernel
        now = k.clock.now()
        out = []
        for venue in k.venues:
            last = max((m.last_event_ts for m in k.markets.values() if m.venue == venue), default=0)
            out.append(None if not last else max(0, (now - last) // 1_000_000))
        return tuple(out)

    def _replay_text(self) -> str:
        t = self.replay_time
        if isinstance(t, int):
            from lobterm.widgets.tape import clock_text

            return clock_text(t)
        return str(t)

    def _pnl(self, pnl: Decimal | None) -> tuple[str, str]:
        ccy = self.market.instrument.quote
        if pnl is None:
            return (f"0.00 {ccy}".rstrip(), "bold")
        style = "bold $success" if pnl > 0 else "bold $error" if pnl < 0 else "bold"
        return (f"{pnl:+} {ccy}".rstrip() if pnl else f"{pnl} {ccy}".rstrip(), style)

    def _qty(self, qty: Decimal) -> list[tuple[str, str]]:
        try:
            self.market.instrument.order_lots(qty)
        except InstrumentError:
            return [(f"{qty}", "bold $error"), (" (not a valid order size)", "$error")]
        return [(f"{qty}", "bold $accent")]

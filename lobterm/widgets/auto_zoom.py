"""`[ui] ticks_per_row = "auto"`: the ladder's first zoom, chosen once from how fast the market moves.

A ladder at one tick a row on a market that moves ~50 ticks a second is left by the market within seconds,
and the trader spends the session pressing the recenter key. "auto" measures the market for the first
`PROBE_S` seconds of session time (the venue's clock, so a replay measures the same seconds), then picks
the zoom from the nice series (`ladder_model.ZOOMS`: 1, 2, 5, 10, 20, 50 ... ticks a row) at which the
typical move over `HORIZON_S` spans about a third of the ladder's visible rows. It decides once: after
that only the trader's keys (z/Z) change the zoom.

The measure: the realized variance of the price per second of session time over the window, i.e.
sum((p[i+1] - p[i])^2) / (t[last] - t[first]) in ticks^2 per second, from the trades on the market's tape
(recorded events with the venue's timestamps: the same choice in every replay of a session; a consolidated
ladder averages its venues', each over its own window) when a window holds at least `MIN_TRADES` of them,
else from the mid sampled at each UI frame (a market with few trades: a sim with no takers, a thin venue).
If the venue's clock stands still (a paused replay, a frozen feed), the choice is made after `GIVE_UP_S`
seconds of UI time from what was seen (1 tick a row if nothing moved).

Before the choice the ladder draws the book at one tick a row with no cursor; the cursor is first placed
after it, at the inside market, so that the choice never moves the price under the cursor.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

__all__ = ["AutoZoom", "HORIZON_S", "PROBE_S", "pick_ticks_per_row", "typical_move_ticks"]

HORIZON_S = 30.0  # the typical move over this long ...
ROWS_SHARE = 1 / 3  # ... spans about this share of the visible rows
PROBE_S = 3.0  # seconds of session time measured before choosing
MIN_TRADES = 8  # trades in the window for the tape to be the measure (else the sampled mids)
ENOUGH_TRADES = 150  # a window this full is measured at once (a venue trading more than the tape holds)
GIVE_UP_S = 10.0  # UI seconds after which a venue clock that does not move is not waited for
_NS = 1_000_000_000


def typical_move_ticks(variance_per_s: float, horizon_s: float = HORIZON_S) -> float:
    """The standard deviation of the move over `horizon_s` for a random walk of this variance rate."""
    return math.sqrt(max(0.0, variance_per_s) * horizon_s)


def pick_ticks_per_row(move_ticks: float, rows: int, zooms: tuple[int, ...]) -> int:
    """The zoom of `zooms` (ascending) at which `move_ticks` spans closest to a third of `rows` rows
    (closest by ratio, so 2x too coarse and 2x too fine weigh the same)."""
    target_rows = max(1.0, rows * ROWS_SHARE)
    want = move_ticks / target_rows
    if want <= zooms[0]:
        return zooms[0]
    return min(zooms, key=lambda z: abs(math.log(z / want)))


def _session_ns(market: Any) -> int:
    """The venue clock's latest time of a market (of the latest of a consolidated one's venues)."""
    markets = getattr(market, "markets", None)
    if markets:
        return max(m.last_event_ts for m in markets)
    return int(getattr(market, "last_event_ts", 0))


class AutoZoom:
    """Watches one market from the first frame with a book until it can choose; `observe` returns the
    chosen ticks per row once (then the caller drops this object), else None."""

    def __init__(self, zooms: tuple[int, ...]) -> None:
        self.zooms = zooms
        self.start_ns: int | None = None  # session time of the first frame with a price
        self.started_ui: float | None = None
        self._mids: list[tuple[int, int]] = []  # (session ns, mid ticks) at each frame the mid changed
        #: What the choice was made from, for the title, the log and tests.
        self.variance_per_s = 0.0
        self.source = ""
        self.samples = 0

    def observe(self, market: Any, rows: int, now_ui: float) -> int | None:
        if rows <= 0:
            return None
        center = market.unified.center_price()
        ts = _session_ns(market)
        if center is None or ts <= 0:
            return None
        if self.start_ns is None:
            self.start_ns, self.started_ui = ts, now_ui
        if not self._mids or self._mids[-1][1] != center:
            self._mids.append((ts, center))
        probe = round(PROBE_S * _NS)
        # Each venue's trades (a consolidated ladder has several, whose prices differ by a little: their
        # trades are not one series). A venue's window opens PROBE_S before the first frame, or at its first
        # trade if that is later: a replay from its start measures its first trades whenever its first
        # frame comes, one from a seek the seconds before it.
        windows: list[list[tuple[int, float]]] = []
        complete = True
        for tape, ratio in _tapes(market):
            if not tape:
                complete = complete and ts >= self.start_ns + probe
                continue
            begin = max(tape[0].ts, self.start_ns - probe)
            end = begin + probe
            window = [(t.ts, t.price / ratio) for t in tape if begin <= t.ts <= end]
            # A busy venue fills its bounded tape in less than the window: enough trades are enough.
            complete = complete and (ts >= end or len(window) >= ENOUGH_TRADES)
            windows.append(window)
        started_ui = self.started_ui if self.started_ui is not None else now_ui
        gave_up = now_ui - started_ui >= GIVE_UP_S
        if not complete and not gave_up:
            return None
        rates = [_variance_rate(w) for w in windows if len(w) >= MIN_TRADES]
        if rates:
            self.source, self.samples = "trades", sum(len(w) for w in windows)
            return self._choose(sum(rates) / len(rates), rows)
        # Few trades (or a venue clock that stands still): the mids sampled at the frames.
        self.source, self.samples = "mids", len(self._mids)
        return self._choose(_variance_rate(self._mids), rows)

    def _choose(self, variance_per_s: float, rows: int) -> int:
        self.variance_per_s = variance_per_s
        return pick_ticks_per_row(typical_move_ticks(variance_per_s), rows, self.zooms)


def _tapes(market: Any) -> list[tuple[Any, int]]:
    """(tape, ticks of the market's own per tick of the ladder's grid) per venue of the market."""
    markets = getattr(market, "markets", None)
    if markets:
        return [(m.tape, r) for m, r in zip(markets, market.tick_ratios, strict=True)]
    return [(getattr(market, "tape", ()), 1)]


def _variance_rate(series: Sequence[tuple[int, float]]) -> float:
    """sum of squared price steps per second of the series' span (ticks^2/s); 0 with under two points."""
    if len(series) < 2:
        return 0.0
    span_s = (series[-1][0] - series[0][0]) / _NS
    if span_s <= 0:
        return 0.0
    total = sum((b[1] - a[1]) ** 2 for a, b in zip(series, series[1:], strict=False))
    return total / span_s

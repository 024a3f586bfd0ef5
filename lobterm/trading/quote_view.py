"""What the quote panel shows of a market maker (pure): desired against working quotes, level by level."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from lobterm.engine.events import BUY, SELL
from lobterm.trading.quote_diff import CANCELLING, WorkingQuote
from lobterm.trading.quoting import Ladder

__all__ = ["LadderView", "QuoteRow", "build_ladder_view"]


@dataclass(frozen=True, slots=True)
class QuoteRow:
    """One level of one side: what we want there and the quote that serves it (None where missing)."""

    side: int
    level: int | None  # None: a working quote no desired level claims (about to be cancelled)
    desired_price: int | None
    desired_size: int | None
    working_price: int | None
    working_size: int | None
    order_id: int | None
    state: str | None


@dataclass(frozen=True, slots=True)
class LadderView:
    status: str  # running, paused, stopped
    reason: str  # why it is not quoting ("" when it is)
    mode: str
    position: int
    reservation_tick: int | None  # the model's reservation price, rounded to the nearest tick
    quoted_spread_ticks: int | None  # best desired ask - best desired bid
    bids: tuple[QuoteRow, ...]
    asks: tuple[QuoteRow, ...]


def build_ladder_view(
    status: str,
    reason: str,
    mode: str,
    position: int,
    ladder: Ladder | None,
    quotes: Mapping[int, WorkingQuote],
    assignment: Mapping[tuple[int, int], int],
) -> LadderView:
    """Desired (`ladder`) against working `quotes` (`assignment`: the last diff's (side, level) -> order id)."""
    working = sorted(quotes.values(), key=lambda q: (q.side, -q.price if q.side == BUY else q.price))
    sides: list[tuple[QuoteRow, ...]] = []
    for side in (BUY, SELL):
        rows = []
        claimed = set()
        desired = () if ladder is None else (ladder.bids if side == BUY else ladder.asks)
        # The last diff's assignment, else (a quote placed new since) the quote at that price.
        at_price = {q.target_price: q for q in quotes.values() if q.side == side and q.state != CANCELLING}
        for level, (price, size) in enumerate(desired):
            q = quotes.get(assignment.get((side, level), -1))
            if q is None or q.side != side or q.order_id in claimed:
                q = at_price.get(price)
            if q is not None and q.order_id not in claimed:
                claimed.add(q.order_id)
                rows.append(QuoteRow(side, level, price, size, q.price, q.size, q.order_id, q.state))
            else:
                rows.append(QuoteRow(side, level, price, size, None, None, None, None))
        for q in working:
            if q.side == side and q.order_id not in claimed:
                rows.append(QuoteRow(side, None, None, None, q.price, q.size, q.order_id, q.state))
        sides.append(tuple(rows))
    spread = None
    if ladder is not None and ladder.bids and ladder.asks:
        spread = ladder.asks[0][0] - ladder.bids[0][0]
    res = None
    if ladder is not None and math.isfinite(ladder.reservation):
        res = round(ladder.reservation)
    return LadderView(status, reason, mode, position, res, spread, sides[0], sides[1])

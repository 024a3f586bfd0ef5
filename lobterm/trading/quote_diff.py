"""Our quotes and the diff (pure): the market maker's working quotes as it knows them from their
lifecycle events, and `diff_quotes`, the smallest set of messages that turns them into a desired ladder
(the rules: lobterm/trading/market_maker.py's module doc; lobterm/backtest/fastkernel.py mirrors
`_diff_side` in numba)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from lobterm.engine.events import BUY, SELL
from lobterm.trading.quoting import Ladder, QuoteParams

__all__ = [
    "AMENDING",
    "CANCELLING",
    "SENT",
    "WORKING",
    "QuoteActions",
    "WorkingQuote",
    "diff_quotes",
]

# Quote states: sent (no Accepted yet), working, amending (amend sent), cancelling (cancel sent).
SENT = "sent"
WORKING = "working"
AMENDING = "amending"
CANCELLING = "cancelling"

# Floats that should be whole lots must not round a whole lot away.
_EPS = 1e-6


# ---- our quotes and the diff (pure) --------------------------------------------------------------
@dataclass(slots=True)
class WorkingQuote:
    """One of our quotes as the market maker knows it from its lifecycle events.

    `price`/`size` are where it rests and its open lots (as requested while `sent`); `want_price`/
    `want_size` what an amend in flight asks for."""

    order_id: int
    side: int
    price: int
    size: int
    state: str = SENT
    placed_ns: int = 0
    want_price: int = 0
    want_size: int = 0
    rejects: int = 0

    @property
    def busy(self) -> bool:
        """A request is in flight (new or amend): leave it alone until its answer arrives."""
        return self.state == SENT or self.state == AMENDING

    @property
    def target_price(self) -> int:
        return self.want_price if self.state == AMENDING else self.price

    @property
    def target_size(self) -> int:
        return self.want_size if self.state == AMENDING else self.size


@dataclass(slots=True)
class QuoteActions:
    """What one cycle sends: cancels (order ids), amends (order id, side, price, size) and new orders
    (side, price, size); `assignment` maps (side, level) to the order id that serves it."""

    cancels: list[int] = field(default_factory=list)
    amends: list[tuple[int, int, int, int]] = field(default_factory=list)
    news: list[tuple[int, int, int]] = field(default_factory=list)
    assignment: dict[tuple[int, int], int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.cancels) + len(self.amends) + len(self.news)


def diff_quotes(
    ladder: Ladder,
    quotes: Iterable[WorkingQuote],
    p: QuoteParams,
    position: int,
    now_ns: int = 0,
    *,
    min_lots: int = 1,
    allow_new: bool = True,
) -> QuoteActions:
    """The smallest set of messages that turns our working `quotes` into `ladder` (see the module doc)."""
    out = QuoteActions()
    by_side: tuple[list[WorkingQuote], list[WorkingQuote]] = ([], [])
    for q in quotes:
        by_side[q.side].append(q)
    for side in (BUY, SELL):
        desired = ladder.bids if side == BUY else ladder.asks
        # Our quotes on this side must stay clear of our best desired quote on the other side.
        other = ladder.asks if side == BUY else ladder.bids
        limit = other[0][0] if other else None
        budget = p.max_position_lots - position if side == BUY else p.max_position_lots + position
        _diff_side(side, desired, by_side[side], p, budget, limit, now_ns, min_lots, allow_new, out)
    return out


def _first(pair: tuple[int, WorkingQuote]) -> int:
    return pair[0]


def _diff_side(
    side: int,
    desired: tuple[tuple[int, int], ...],
    mine: list[WorkingQuote],
    p: QuoteParams,
    budget: int,
    limit: int | None,
    now_ns: int,
    min_lots: int,
    allow_new: bool,
    out: QuoteActions,
) -> None:
    sign = 1 if side == BUY else -1  # sign * price is larger for a better price
    count = len(mine)  # quotes being cancelled still count until their Done
    exposure = sum(max(q.size, q.target_size) for q in mine)
    free = [q for q in mine if q.state != CANCELLING]
    if p.max_order_age_ms:
        max_age = p.max_order_age_ms * 1_000_000
        aged = [q for q in free if q.state == WORKING and now_ns - q.placed_ns >= max_age]
        for q in aged:
            out.cancels.append(q.order_id)
            free.remove(q)
    tol = p.refresh_tolerance_ticks

    # 1. Keep (or resize in place) a quote within tolerance of each desired level. Walking both in
    # ascending price and taking the lowest quote that fits gives the most matches (fewest messages).
    cands = [(q.want_price if q.state == AMENDING else q.price, q) for q in free]
    if limit is not None:
        cands = [c for c in cands if sign * (limit - c[0]) > 0]
    cands.sort(key=_first)
    n_cands = len(cands)
    matched: set[int] = set()
    unmatched: list[tuple[int, int, int]] = []
    j = 0
    # Desired levels are best first: bids descending, asks ascending.
    for level in range(len(desired) - 1, -1, -1) if side == BUY else range(len(desired)):
        price, size = desired[level]
        while j < n_cands and cands[j][0] < price - tol:
            j += 1
        if j == n_cands or cands[j][0] > price + tol:
            unmatched.append((level, price, size))
            continue
        best = cands[j][1]
        j += 1
        matched.add(best.order_id)
        out.assignment[(side, level)] = best.order_id
        if best.busy:
            continue
        have = best.size
        if have > size:  # smaller at the same price keeps our place in the queue
            out.amends.append((best.order_id, side, best.price, size))
            exposure -= have - size
        elif have < size - int(size * p.size_tolerance + _EPS):
            grow = min(size - have, budget - exposure)
            if grow > 0:  # growing loses priority anyway: go to the desired price as well
                out.amends.append((best.order_id, side, price, have + grow))
                exposure += grow
    unmatched.sort()  # best level first
    free = [q for q in free if q.order_id not in matched]
    free.sort(key=lambda q: -sign * q.price)

    # 2. Move the remaining quotes to the remaining desired levels: one amend instead of cancel + new.
    movable = [q for q in free if not q.busy]
    replaced: list[tuple[int, int, int]] = []
    for (level, price, size), q in zip(unmatched, movable, strict=False):
        if not p.use_amend:
            out.cancels.append(q.order_id)
            replaced.append((level, price, size))
            continue
        new_size = size
        if size > q.size:
            new_size = q.size + max(0, min(size - q.size, budget - exposure))
        exposure += new_size - q.size
        out.amends.append((q.order_id, side, price, new_size))
        out.assignment[(side, level)] = q.order_id
    n = min(len(unmatched), len(movable))
    # 3. Cancel what is left over; place what is still missing, within the count and lots budgets.
    for q in movable[n:]:
        out.cancels.append(q.order_id)
    if not allow_new:
        return
    for _level, price, size in replaced + unmatched[n:]:
        if count >= p.levels:
            break
        lots = min(size, budget - exposure)
        if lots < min_lots:
            break
        out.news.append((side, price, lots))
        count += 1
        exposure += lots

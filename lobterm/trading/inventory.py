"""Our position per venue and symbol, from our fills: lots, cash, fees, volume. Exact integers.

Cash is in tick*lots (price ticks times size lots; the instrument turns it into quote currency), fees in
millionths of a tick*lot, as the engine reports them. Mark-to-market value uses twice the mid (bid +
ask, in ticks) so that it stays an integer.
"""

from __future__ import annotations

from dataclasses import dataclass

from lobterm.engine.events import BUY, Fill
from lobterm.venues.base import OUR_OWNER


@dataclass(slots=True)
class Position:
    venue: str
    symbol: str
    lots: int = 0  # signed: long > 0
    cash: int = 0  # tick*lots: sells add, buys subtract
    fees: int = 0  # millionths of a tick*lot paid (negative: rebates earned)
    bought: int = 0
    sold: int = 0
    fills: int = 0

    def pnl_x2(self, bid: int, ask: int) -> int:
        """Mark-to-mid P&L before fees, in half-tick*lots: 2*cash + lots*(bid+ask)."""
        return 2 * self.cash + self.lots * (bid + ask)


class Inventory:
    def __init__(self) -> None:
        self.positions: dict[tuple[str, str], Position] = {}

    def position(self, venue: str, symbol: str) -> Position:
        key = (venue, symbol)
        p = self.positions.get(key)
        if p is None:
            p = self.positions[key] = Position(venue, symbol)
        return p

    def on_fill(self, ev: Fill) -> None:
        if ev.owner != OUR_OWNER:
            return
        p = self.position(ev.venue, ev.symbol)
        p.fills += 1
        p.fees += ev.fee
        if ev.side == BUY:
            p.lots += ev.size
            p.bought += ev.size
            p.cash -= ev.price * ev.size
        else:
            p.lots -= ev.size
            p.sold += ev.size
            p.cash += ev.price * ev.size

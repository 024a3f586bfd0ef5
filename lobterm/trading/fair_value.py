"""The market maker's fair value, pure: where it centres its quotes (`[mm] fair_value`).

- `mid`: the others' best bid and ask on the quote venue, halved (the default, as before).
- `microprice`: the quote venue's others' touch weighted by size: (bid * ask_size + ask * bid_size) /
  (bid_size + ask_size), leaning towards the side with less size.
- `consolidated_microprice`: the same over every venue of the run that lists the instrument (the same
  symbol): the best bid over the venues with the size of every venue quoting that price, the same for the
  ask, then the microprice of that consolidated touch.

The rule for venues with different ticks and lots: every venue's best price is converted EXACTLY to a
rational number of the quote venue's ticks (venue ticks * venue tick size / quote tick size, a
`Fraction`) and every size to a rational quantity of the base currency (lots * lot size); the microprice is
computed exactly on those rationals, then rounded half-even to the quote venue's HALF tick, the resolution
of a mid, so that the ladder math that follows gets what it got from a mid (a whole or a half tick). The
consolidated touch may be crossed (one venue's bid above another's ask): the formula still gives a price
between them, and the quotes are clamped against the quote venue's own touch as always. Venues whose book
is invalid (a sequence gap) or one-sided are left out; the venues used are named.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lobterm.engine.instrument import Instrument

__all__ = [
    "CONSOLIDATED_MICROPRICE",
    "FAIR_VALUES",
    "MICROPRICE",
    "MID",
    "FairValue",
    "Touch",
    "consolidated_microprice",
]

MID = "mid"
MICROPRICE = "microprice"
CONSOLIDATED_MICROPRICE = "consolidated_microprice"
FAIR_VALUES = (MID, MICROPRICE, CONSOLIDATED_MICROPRICE)


@dataclass(frozen=True, slots=True)
class Touch:
    """One venue's others' best bid and ask: (ticks, lots) of its own instrument, None when empty."""

    venue: str
    instrument: Instrument
    bid: tuple[int, int] | None
    ask: tuple[int, int] | None


@dataclass(frozen=True, slots=True)
class FairValue:
    """A fair value in the quote venue's ticks: `exact` the rational, `half_ticks` what the market maker
    centres on (exact rounded half-even to a half tick), `venues` the venues it was computed from."""

    kind: str
    exact: Fraction
    half_ticks: int
    venues: tuple[str, ...]

    @property
    def center(self) -> float:
        """The centre in ticks, as the ladder math takes it (a whole or half tick: exact in a float)."""
        return self.half_ticks / 2

    def price(self, quote: Instrument) -> Decimal:
        """The centre as a price of the quote venue (exact: a half tick has one more decimal at most)."""
        return Decimal(self.half_ticks) * quote.tick_size / 2


def _micro(bid: Fraction, bid_qty: Fraction, ask: Fraction, ask_qty: Fraction) -> Fraction:
    return (bid * ask_qty + ask * bid_qty) / (bid_qty + ask_qty)


def consolidated_microprice(
    quote: Instrument, touches: Sequence[Touch], kind: str = CONSOLIDATED_MICROPRICE
) -> FairValue | None:
    """The microprice over `touches` in `quote`'s ticks (see the module docstring), or None when no venue
    has both sides. With one touch it is that venue's microprice."""
    qtick = Fraction(quote.tick_size)
    best: dict[int, tuple[Fraction, Fraction]] = {}  # side (0 bid, 1 ask) -> (price in quote ticks, qty)
    used: list[str] = []
    for t in touches:
        if t.bid is None or t.ask is None or t.bid[1] <= 0 or t.ask[1] <= 0:
            continue
        used.append(t.venue)
        tick = Fraction(t.instrument.tick_size) / qtick
        lot = Fraction(t.instrument.lot_size)
        for side, (ticks, lots) in ((0, t.bid), (1, t.ask)):
            px, qty = ticks * tick, lots * lot
            cur = best.get(side)
            if cur is None or (px > cur[0] if side == 0 else px < cur[0]):
                best[side] = (px, qty)
            elif px == cur[0]:
                best[side] = (px, cur[1] + qty)
    if not used:
        return None
    (bid, bq), (ask, aq) = best[0], best[1]
    exact = _micro(bid, bq, ask, aq)
    return FairValue(kind, exact, round(exact * 2), tuple(used))

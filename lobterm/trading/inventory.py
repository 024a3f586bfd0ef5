"""Our inventory and P&L, exactly: position, average cost, realized and unrealized P&L, fees.

One `Position` per venue and symbol is built from our `Fill` events. Units, all exact:

- `lots` (int) is the traded position: the sum of signed fill sizes (long > 0). Orders, risk limits
  and hedges are sized against it.
- `cash` (int, tick*lots) is what the fills paid and received: sells add price*size, buys subtract.
- `fees` (int, millionths of a tick*lot, as `Fill.fee`) is every fee at its value when it was charged;
  negative is a rebate earned. Fees are one line of their own, counted once: they are NOT folded into
  the average cost or the realized P&L (Hummingbot does both, and so counts them twice).
- `avg_cost` (Fraction of ticks per lot) is the average entry price of what is open; it moves only
  when the position grows, resets when it goes flat and restarts at the fill price when it flips.
- `realized` (Fraction, tick*lots) grows on each reduction by size * (fill price - average cost)
  for a long (the mirror for a short); `unrealized(mark)` is holdings * (mark - average cost).
  (A position that grows and shrinks for a long time without going flat would make the average's
  denominator grow without bound; past 2**64 it is rounded to a trillionth of a tick and the tiny
  shift is booked into realized and shown in `avg_rounding`, so net P&L stays exact.)

  net P&L = realized + unrealized - fees/1e6 = cash - quote fees + holdings * mark

  the second form is the mark-to-market identity the tests check on random fills: the average-cost
  books and the plain cash books agree to the last fraction of a tick.

Fee currency. A fee is charged in quote (the default, and the only kind on linear derivatives) or in
base (spot venues that take the fee out of the coin you receive). Choose per venue
(`Inventory(fee_currency={"binance": "base"})`) or per fill (`on_fill(ev, fee_currency="base")`).
`Fill.fee` is always the fee's quote value at the fill price; a base fee withholds
fee / (1e6 * price) lots of the coin. We book that as what it is economically: the coin is sold at the
fill price to pay a quote fee of the same value. So `holdings` (Fraction of lots) = `lots` -
`fees_base_lots` is what the wallet really holds, it is what unrealized P&L and `net(base)` use, the
small sale moves `realized` by (fill price - average cost) on the withheld amount, and the fee is still
counted once, in `fees`. With quote fees only, `holdings == lots`.

Marks. Unrealized P&L needs a price: the mid (default), the last trade, or the side we would close
at (bid for a long, ask for a short), set per `Inventory(mark_mode=...)` or per call. A mark that is
missing falls back to the mid, then the last trade, then our own last fill price.

Everything here is pure bookkeeping: no I/O, no clock (the caller passes timestamps), no floats.
`to_quote` turns tick*lot values into Decimal quote currency through the Instrument for display.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from lobterm.engine.bounds import PNL_SNAPSHOTS
from lobterm.engine.events import BUY, OUR_OWNER, SELL, Fill, Funding, Liquidation
from lobterm.engine.instrument import FEE_SCALE, Instrument

MARK_MID = "mid"
MARK_LAST = "last"
MARK_CLOSE = "close"  # bid for a long, ask for a short: what closing now would get before impact
MARK_MODES = (MARK_MID, MARK_LAST, MARK_CLOSE)

FEE_IN_QUOTE = "quote"
FEE_IN_BASE = "base"
FEE_CURRENCIES = (FEE_IN_QUOTE, FEE_IN_BASE)

ZERO = Fraction(0)
# The average cost stays an exact Fraction until its denominator passes this, then it is rounded to
# 1/AVG_GRID of a tick (see Position._trade): exact for any realistic run, bounded for any run.
AVG_EXACT_DENOMINATOR = 2**64
AVG_GRID = 10**12

Key = tuple[str, str]  # (venue, symbol)
# Inventory.books(): lots, cash, fees, bought, sold, fills, holdings, avg_cost, realized, fees_base_lots,
# avg_rounding of one position.
PositionBooks = tuple[int, int, int, int, int, int, Fraction, Fraction | None, Fraction, Fraction, Fraction]


class InventoryError(ValueError):
    """A setting the inventory cannot work with. `value` is what was given, `rule` what it broke."""

    def __init__(self, what: str, value: object, rule: str) -> None:
        self.what = what
        self.value = value
        self.rule = rule
        super().__init__(f"inventory: {what} {value!r} rejected: {rule}")


# ---- marks ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class TopOfBook:
    """What a mark is taken from: best bid, best ask and last trade price, in ticks (None if unknown)."""

    bid: int | None = None
    ask: int | None = None
    last: int | None = None


Mark = TopOfBook | int | Fraction | None


def mark_price(top: TopOfBook, holdings: Fraction | int, mode: str = MARK_MID) -> Fraction | None:
    """The price (Fraction of ticks) to mark `holdings` at, per `mode`, with fallbacks.

    mid: (bid + ask) / 2; last: the last trade; close: bid for a long, ask for a short (the mid when
    flat). A missing input falls back to the mid, then the last trade; None if there is nothing.
    """
    bid, ask, last = top.bid, top.ask, top.last
    if mode == MARK_CLOSE:
        if holdings > 0 and bid is not None:
            return Fraction(bid)
        if holdings < 0 and ask is not None:
            return Fraction(ask)
    elif mode == MARK_LAST and last is not None:
        return Fraction(last)
    if bid is not None and ask is not None:
        return Fraction(bid + ask, 2)
    if last is not None:
        return Fraction(last)
    # One side only: better than nothing for a thin book, and on the conservative side for close.
    one = bid if bid is not None else ask
    return Fraction(one) if one is not None else None


# ---- values out ----------------------------------------------------------------------------------
def _decimal(value: Fraction, places: int) -> Decimal:
    # Built from a string so that no Decimal context (28 digits by default) can round it.
    return Decimal(f"{round(value * 10**places)}E-{places}")


def to_quote(inst: Instrument, tick_lots: int | Fraction, places: int | None = None) -> Decimal:
    """A tick*lot value (int or Fraction) as Decimal quote currency, via the instrument.

    Ints are exact (`Instrument.notional`). Fractions are rounded half-even to `places` decimals,
    by default the grid's own decimals plus six, the resolution of a fee, so fees and cash stay exact.
    """
    if isinstance(tick_lots, int):
        return inst.notional(tick_lots)
    unit = inst.tick_size * inst.lot_size
    if places is None:
        exponent = unit.normalize().as_tuple().exponent
        assert isinstance(exponent, int), "a grid step is a finite decimal"
        places = max(0, -exponent) + 6
    return _decimal(Fraction(tick_lots) * Fraction(unit), places)


def to_price(inst: Instrument, ticks: int | Fraction, places: int | None = None) -> Decimal:
    """A price in (possibly fractional) ticks as a Decimal, rounded half-even to the display decimals
    plus four (an average cost is rarely on the grid)."""
    if isinstance(ticks, int):
        return inst.price(ticks)
    if places is None:
        places = inst.price_decimals + 4
    return _decimal(Fraction(ticks) * Fraction(inst.tick_size), places)


@dataclass(frozen=True, slots=True)
class QuotePnl:
    """A `Pnl` in Decimal quote currency, for display."""

    realized: Decimal
    unrealized: Decimal
    fees: Decimal
    net: Decimal


@dataclass(frozen=True, slots=True)
class Pnl:
    """One position's P&L at one mark, exact, in tick*lots. `fees` positive is a cost."""

    realized: Fraction
    unrealized: Fraction
    fees: Fraction
    mark: Fraction | None

    @property
    def net(self) -> Fraction:
        return self.realized + self.unrealized - self.fees

    def in_quote(self, inst: Instrument, places: int | None = None) -> QuotePnl:
        return QuotePnl(
            to_quote(inst, self.realized, places),
            to_quote(inst, self.unrealized, places),
            to_quote(inst, self.fees, places),
            to_quote(inst, self.net, places),
        )


# ---- one position ----------------------------------------------------------------------------------
@dataclass(slots=True)
class Position:
    """Our position on one venue and symbol. See the module docstring for units."""

    venue: str
    symbol: str
    lots: int = 0  # signed traded position: long > 0
    cash: int = 0  # tick*lots: sells add, buys subtract
    fees: int = 0  # millionths of a tick*lot, all fees at their value when charged (negative: rebates)
    bought: int = 0
    sold: int = 0
    fills: int = 0
    holdings: Fraction = ZERO  # lots actually held: lots - fees_base_lots
    avg_cost: Fraction | None = None  # ticks per lot of the open holdings; None when flat
    realized: Fraction = ZERO  # tick*lots
    fees_base_lots: Fraction = ZERO  # coin withheld for base-currency fees (negative: base rebates)
    fees_in_base: int = 0  # the part of `fees` that was charged in base (millionths of a tick*lot)
    avg_rounding: Fraction = ZERO  # realized moved by rounding a runaway average cost (see _trade)
    last_fill_price: int | None = None
    version: int = 0  # bumps on every change; the UI polls it
    funding: int = 0  # perpetuals: funding paid (negative: received), millionths of a tick*lot
    liquidations: int = 0  # perpetuals: how many times the venue liquidated (part of) this position

    # ---- exact values ------------------------------------------------------------------------------
    @property
    def fees_value(self) -> Fraction:
        """All fees in tick*lots (positive: paid)."""
        return Fraction(self.fees, FEE_SCALE)

    @property
    def is_flat(self) -> bool:
        return self.holdings == 0

    def unrealized(self, mark: int | Fraction) -> Fraction:
        """holdings * (mark - average cost), tick*lots."""
        if self.avg_cost is None:
            return ZERO
        return self.holdings * (mark - self.avg_cost)

    def mark_for(self, top: TopOfBook, mode: str = MARK_MID) -> Fraction | None:
        """This position's mark from a top of book, falling back to our last fill price."""
        m = mark_price(top, self.holdings, mode)
        if m is None and self.last_fill_price is not None:
            return Fraction(self.last_fill_price)
        return m

    def pnl(self, mark: Mark = None, mode: str = MARK_MID) -> Pnl:
        """Realized, unrealized at `mark` (a price in ticks, or a TopOfBook read per `mode`) and fees."""
        if isinstance(mark, TopOfBook):
            price = self.mark_for(mark, mode)
        elif mark is None:
            price = None if self.last_fill_price is None else Fraction(self.last_fill_price)
        else:
            price = Fraction(mark)
        unreal = self.unrealized(price) if price is not None else ZERO
        return Pnl(self.realized, unreal, self.fees_value, price)

    def equity(self, mark: int | Fraction) -> Fraction:
        """The plain cash view of net P&L: cash - fees paid in quote + holdings * mark.

        Independent of the average-cost books; `pnl(mark).net` must equal it exactly.
        """
        return (
            self.cash
            - Fraction(self.fees - self.fees_in_base + self.funding, FEE_SCALE)
            + self.holdings * mark
        )

    def pnl_x2(self, bid: int, ask: int) -> int:
        """Mark-to-mid P&L of the traded lots before fees, in half-tick*lots: 2*cash + lots*(bid+ask)."""
        return 2 * self.cash + self.lots * (bid + ask)

    # ---- bookkeeping -------------------------------------------------------------------------------
    def _trade(self, signed: int | Fraction, price: int) -> None:
        """Move holdings by `signed` lots at `price`, realizing against the average cost."""
        old = self.holdings
        new = old + signed
        moved = signed if signed >= 0 else -signed
        if old == 0 or (old > 0) == (signed > 0):
            # Growing (or opening): the average cost absorbs the new lots.
            avg = self.avg_cost if self.avg_cost is not None else ZERO
            exact = (avg * abs(old) + price * moved) / abs(new)
            if exact.denominator > AVG_EXACT_DENOMINATOR:
                # Add-after-partial-reduce cycles that never go flat multiply the denominator without
                # bound (25,000 bits after 100k fills, 200 us a fill). Round the average to a
                # trillionth of a tick and book the shift into realized, so that net P&L at every mark
                # and the cash identity stay exact; `avg_rounding` shows the total moved.
                rounded = Fraction(round(exact * AVG_GRID), AVG_GRID)
                shift = new * (rounded - exact)
                self.realized += shift
                self.avg_rounding += shift
                exact = rounded
            self.avg_cost = exact
        elif moved <= abs(old):
            # Reducing: realize the closed part; the average cost of what is left does not move.
            assert self.avg_cost is not None  # open holdings always have an average cost
            self.realized += (self.avg_cost - price) * signed
            if new == 0:
                self.avg_cost = None
        else:
            # Flipping: close all of `old` at its average cost, open the rest at the fill price.
            assert self.avg_cost is not None  # open holdings always have an average cost
            self.realized += (price - self.avg_cost) * old
            self.avg_cost = Fraction(price)
        self.holdings = new


def _signed(ev: Fill) -> int:
    return ev.size if ev.side == BUY else -ev.size


@dataclass(frozen=True, slots=True)
class PnlSnapshot:
    """One sample of the P&L series (the UI takes one a second for sparklines).

    `positions` are exact tick*lots per (venue, symbol); `net_by_quote` sums net P&L in Decimal quote
    currency over the positions whose instrument is known, per quote asset (tick*lots of different
    instruments do not add up).
    """

    ts: int
    positions: dict[Key, Pnl]
    net_by_quote: dict[str, Decimal]
    version: int


# ---- the inventory -----------------------------------------------------------------------------------
class Inventory:
    """All our positions, fed by `Fill` events from the bus (only our own: `owner == OUR_OWNER`).

    `instruments` maps (venue, symbol) to its Instrument, needed for `net(base)`, quote values and
    `snapshot`'s per-currency totals. `fee_currency` maps a venue to "quote" or "base". `history` is
    how many snapshots `snapshot()` keeps in `series`.
    """

    def __init__(
        self,
        instruments: Mapping[Key, Instrument] | None = None,
        *,
        mark_mode: str = MARK_MID,
        fee_currency: Mapping[str, str] | None = None,
        history: int = PNL_SNAPSHOTS,
        owner: int = OUR_OWNER,
    ) -> None:
        if mark_mode not in MARK_MODES:
            raise InventoryError("mark mode", mark_mode, f"must be one of {', '.join(MARK_MODES)}")
        for venue, ccy in (fee_currency or {}).items():
            if ccy not in FEE_CURRENCIES:
                raise InventoryError(f"fee currency of venue {venue!r}", ccy, "must be 'quote' or 'base'")
        if history < 1:
            raise InventoryError("history", history, "must keep at least one snapshot")
        self.positions: dict[Key, Position] = {}
        self.instruments: dict[Key, Instrument] = dict(instruments or {})
        self.mark_mode = mark_mode
        self.fee_currency: dict[str, str] = dict(fee_currency or {})
        self.owner = owner
        self.version = 0  # bumps on every booked fill, over all positions
        self.booked = 0
        self.rejected = 0
        self.reject_reasons: Counter[str] = Counter()
        self.series: deque[PnlSnapshot] = deque(maxlen=history)

    # ---- lookups ---------------------------------------------------------------------------------
    def position(self, venue: str, symbol: str) -> Position:
        key = (venue, symbol)
        p = self.positions.get(key)
        if p is None:
            p = self.positions[key] = Position(venue, symbol)
        return p

    def set_instrument(self, inst: Instrument, venue: str | None = None) -> None:
        """Register an instrument (its own `venue` unless given)."""
        self.instruments[(venue if venue is not None else inst.venue, inst.symbol)] = inst

    def base_of(self, venue: str, symbol: str) -> str:
        inst = self.instruments.get((venue, symbol))
        if inst is not None and inst.base:
            return inst.base
        return symbol.partition("/")[0]

    def net(self, base: str) -> Fraction:
        """Our net holdings of a base asset over every venue, in base units (e.g. BTC), exact.

        Positions whose instrument is unknown cannot be converted from lots and are left out.
        """
        total = ZERO
        for key, p in self.positions.items():
            inst = self.instruments.get(key)
            if inst is not None and p.holdings and self.base_of(*key) == base:
                total += p.holdings * Fraction(inst.lot_size)
        return total

    def net_by_venue(self, base: str) -> dict[Key, Fraction]:
        """`net(base)` split by (venue, symbol), base units."""
        return {
            key: p.holdings * Fraction(self.instruments[key].lot_size)
            for key, p in self.positions.items()
            if key in self.instruments and p.holdings and self.base_of(*key) == base
        }

    # ---- fills -------------------------------------------------------------------------------------
    def on_fill(self, ev: Fill, fee_currency: str | None = None) -> bool:
        """Book one of our fills. Returns True when booked; other owners' fills are ignored (False).

        A fill that cannot be real (size or price not positive, unknown fee currency) is refused and
        counted in `rejected` / `reject_reasons`; the books are not touched.
        """
        if ev.owner != self.owner:
            return False
        ccy = fee_currency if fee_currency is not None else self.fee_currency.get(ev.venue, FEE_IN_QUOTE)
        reason = None
        if ev.size <= 0:
            reason = "fill size must be positive"
        elif ev.price <= 0:
            reason = "fill price must be positive"
        elif ev.side not in (BUY, SELL):
            reason = "fill side must be buy or sell"
        elif ccy not in FEE_CURRENCIES:
            reason = "fee currency must be 'quote' or 'base'"
        if reason is not None:
            self.rejected += 1
            self.reject_reasons[reason] += 1
            return False
        p = self.position(ev.venue, ev.symbol)
        signed = _signed(ev)
        p.fills += 1
        p.fees += ev.fee
        p.lots += signed
        p.cash -= signed * ev.price
        if signed > 0:
            p.bought += ev.size
        else:
            p.sold += ev.size
        p._trade(signed, ev.price)
        if ccy == FEE_IN_BASE and ev.fee:
            # The venue kept `withheld` lots of the coin: a sale at the fill price that pays the fee.
            withheld = Fraction(ev.fee, FEE_SCALE * ev.price)
            p.fees_in_base += ev.fee
            p.fees_base_lots += withheld
            p._trade(-withheld, ev.price)
        p.last_fill_price = ev.price
        p.version += 1
        self.version += 1
        self.booked += 1
        return True

    def on_funding(self, ev: Funding) -> bool:
        """Book a perpetual's funding payment (`ev.amount` millionths of a tick*lot, positive paid): a
        cash flow, so it moves `realized` (and `funding`, shown on its own), not the position."""
        if type(ev.amount) is not int:
            self.rejected += 1
            self.reject_reasons["funding amount must be an integer"] += 1
            return False
        p = self.position(ev.venue, ev.symbol)
        p.funding += ev.amount
        p.realized -= Fraction(ev.amount, FEE_SCALE)
        p.version += 1
        self.version += 1
        return True

    def on_liquidation(self, ev: Liquidation) -> bool:
        """Book the venue's liquidation of our position: a trade of `ev.size` lots at `ev.price` on the
        closing side, with its fee, exactly as a fill (it is one, made by the venue, not by an order)."""
        if ev.size <= 0 or ev.price <= 0 or ev.side not in (BUY, SELL):
            self.rejected += 1
            self.reject_reasons["liquidation must have a side, a positive size and price"] += 1
            return False
        fill = Fill(
            ev.ts, ev.venue, ev.symbol, 0, ev.side, ev.price, ev.size, 0, False, ev.fee, 0, self.owner
        )
        booked = self.on_fill(fill)
        if booked:
            self.position(ev.venue, ev.symbol).liquidations += 1
        return booked

    # ---- P&L -------------------------------------------------------------------------------------
    def pnl(self, venue: str, symbol: str, mark: Mark = None, mode: str | None = None) -> Pnl:
        return self.position(venue, symbol).pnl(mark, mode or self.mark_mode)

    def to_quote(self, venue: str, symbol: str, tick_lots: int | Fraction) -> Decimal:
        """A tick*lot value of this market in Decimal quote currency (needs its instrument)."""
        inst = self.instruments.get((venue, symbol))
        if inst is None:
            raise InventoryError("market", (venue, symbol), "has no instrument registered with the inventory")
        return to_quote(inst, tick_lots)

    def snapshot(
        self, ts: int, marks: Mapping[Key, Mark], mode: str | None = None, record: bool = True
    ) -> PnlSnapshot:
        """P&L of every position at `marks` (TopOfBook or a price per key), kept in `series` if `record`."""
        mode = mode or self.mark_mode
        per: dict[Key, Pnl] = {}
        by_quote: dict[str, Decimal] = {}
        for key, p in self.positions.items():
            pnl = p.pnl(marks.get(key), mode)
            per[key] = pnl
            inst = self.instruments.get(key)
            if inst is not None:
                ccy = inst.quote or "?"
                by_quote[ccy] = by_quote.get(ccy, Decimal(0)) + to_quote(inst, pnl.net)
        snap = PnlSnapshot(ts, per, by_quote, self.version)
        if record:
            self.series.append(snap)
        return snap

    # ---- reconciliation ----------------------------------------------------------------------------
    def books(self) -> dict[Key, PositionBooks]:
        """Every traded position's exact state, comparable between two inventories."""
        return {
            key: (
                p.lots,
                p.cash,
                p.fees,
                p.bought,
                p.sold,
                p.fills,
                p.holdings,
                p.avg_cost,
                p.realized,
                p.fees_base_lots,
                p.avg_rounding,
            )
            for key, p in sorted(self.positions.items())
            if p.fills
        }

    def reconcile(self, fills: Iterable[Fill]) -> list[str]:
        """Check the books against a list of fills; returns the differences (empty: they reconcile).

        Two checks: replaying the fills gives the same books, and, computed without the average-cost
        machinery, position = sum of signed fills, cash and fees = their sums, and realized P&L =
        cash + holdings * average cost (the mark-to-market identity at a mark equal to the average).
        """
        audit = FillAudit(fee_currency=self.fee_currency, owner=self.owner)
        for ev in fills:
            audit.on_fill(ev)
        return audit.problems(self)


class FillAudit:
    """`Inventory.reconcile` kept as running totals: feed it every fill as it happens (a second,
    independent set of books plus per-market sums), then `problems(inventory)`. Memory stays the same
    however many fills a long run makes (no list of fills is kept)."""

    def __init__(self, *, fee_currency: Mapping[str, str] | None = None, owner: int = OUR_OWNER) -> None:
        self.owner = owner
        self.replay = Inventory(fee_currency=fee_currency, owner=owner)
        self.sums: dict[Key, list[int]] = {}

    def on_fill(self, ev: Fill) -> None:
        self.replay.on_fill(ev)
        if ev.owner != self.owner or ev.size <= 0 or ev.price <= 0:
            return
        s = self.sums.setdefault((ev.venue, ev.symbol), [0, 0, 0])
        s[0] += _signed(ev)
        s[1] -= _signed(ev) * ev.price
        s[2] += ev.fee

    def problems(self, inventory: Inventory) -> list[str]:
        """The differences between `inventory` and the fills fed so far (empty: they reconcile)."""
        problems: list[str] = []
        mine, theirs = inventory.books(), self.replay.books()
        for key in sorted(set(mine) | set(theirs)):
            if mine.get(key) != theirs.get(key):
                problems.append(f"{key}: books {mine.get(key)} != replayed {theirs.get(key)}")
        for key, (lots, cash, fees) in sorted(self.sums.items()):
            p = inventory.positions.get(key)
            if p is None:
                problems.append(f"{key}: {lots} lots in the fills but no position")
                continue
            if (p.lots, p.cash, p.fees) != (lots, cash, fees):
                problems.append(
                    f"{key}: (lots, cash, fees) {(p.lots, p.cash, p.fees)} != fills {(lots, cash, fees)}"
                )
            base_cash = Fraction(p.fees_in_base, FEE_SCALE)  # the coin sold to pay base fees
            expected = cash + base_cash + (p.holdings * p.avg_cost if p.avg_cost is not None else 0)
            if p.realized != expected:
                problems.append(f"{key}: realized {p.realized} != cash view {expected}")
        return problems


def recompute_from_fills(
    fills: Iterable[Fill],
    *,
    fee_currency: Mapping[str, str] | None = None,
    instruments: Mapping[Key, Instrument] | None = None,
    owner: int = OUR_OWNER,
) -> Inventory:
    """A fresh Inventory built from `fills` in order: the same numbers as the live books if they are right."""
    inv = Inventory(instruments, fee_currency=fee_currency, owner=owner)
    for ev in fills:
        inv.on_fill(ev)
    return inv


__all__ = [
    "FillAudit",
    "Inventory",
    "InventoryError",
    "Position",
    "Pnl",
    "PnlSnapshot",
    "QuotePnl",
    "TopOfBook",
    "mark_price",
    "to_quote",
    "to_price",
    "recompute_from_fills",
    "MARK_MID",
    "MARK_LAST",
    "MARK_CLOSE",
    "MARK_MODES",
    "FEE_IN_QUOTE",
    "FEE_IN_BASE",
]

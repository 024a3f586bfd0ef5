"""Margin and liquidation monitor for a perpetual or futures position (linear, quote-margined).

Pure arithmetic on exact values, no I/O: position (signed lots), entry (average cost, Fraction of
ticks), mark (ticks) and collateral (tick*lots; `collateral_units` converts a Decimal quote amount).
With initial margin rate `imr` (= 1 / leverage), maintenance margin rate `mmr`, q the signed position:

    notional            = |q| * mark
    equity              = collateral + q * (mark - entry)
    maintenance margin  = mmr * notional
    margin ratio        = maintenance margin / equity      (the share of equity the venue keeps back;
                                                             the venue liquidates at 1)
    liquidation price   long:  (q*entry - collateral) / (q * (1 - mmr))
                        short: (collateral + |q|*entry) / (|q| * (1 + mmr))

(the price at which equity == maintenance margin). The exact liquidation price is a Fraction; the tick
shown is rounded toward the mark (up for a long, down for a short) so the screen never promises more
room than there is. Warning levels: ok below `warn_at` (default 50% of maintenance consumption),
warn, danger from `danger_at` (80%), liquidation from 100% (or when equity is gone).

Auto-reduce, when enabled, only *computes* the order that brings the margin ratio back to `reduce_to`
once it reaches `reduce_at`: (side, lots) to close at the given close price (default the mark), net of
the slippage from mark to that price and of a taker fee rate. The kernel or hedger sends it.

Isolated margin is the model: when no collateral is given, it is the initial margin posted at entry.
For a cross-margin account over one position, pass deposit + realized - fees (`assess_position` does).
Inverse (coin-margined) contracts are not modelled.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from math import ceil, floor

from lobterm.engine.events import BUY, SELL, Funding, Liquidation, MarkPrice, PerpInfo
from lobterm.engine.instrument import Instrument, InstrumentError, to_decimal
from lobterm.trading.inventory import Inventory, Position

LEVEL_OK = "ok"
LEVEL_WARN = "warn"
LEVEL_DANGER = "danger"
LEVEL_LIQUIDATION = "liquidation"
LEVELS = (LEVEL_OK, LEVEL_WARN, LEVEL_DANGER, LEVEL_LIQUIDATION)

ZERO = Fraction(0)
ONE = Fraction(1)


class MarginError(ValueError):
    """A margin input that makes no sense. `value` is what was given, `rule` what it broke."""

    def __init__(self, what: str, value: object, rule: str) -> None:
        self.what = what
        self.value = value
        self.rule = rule
        super().__init__(f"margin: {what} {value!r} rejected: {rule}")


def _exact(value: object, what: str) -> Fraction:
    """An exact Fraction from Fraction, int, Decimal, numeric string or float (via its shortest repr)."""
    if isinstance(value, Fraction):
        return value
    try:
        return Fraction(to_decimal(value, what=what))
    except InstrumentError as e:
        raise MarginError(what, value, e.rule) from None


def collateral_units(inst: Instrument, amount: object) -> Fraction:
    """A quote-currency amount (Decimal, string, int) as exact tick*lots of `inst`."""
    return _exact(amount, "collateral") / (Fraction(inst.tick_size) * Fraction(inst.lot_size))


# ---- the rules -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class MarginRules:
    """Rates and thresholds, exact. Rates and thresholds accept Fraction, Decimal, int or a string.

    `warn_at` / `danger_at` are margin ratios (maintenance consumption). Auto-reduce is off unless
    `auto_reduce`; then from `reduce_at` it proposes the order that brings the ratio to `reduce_to`,
    charging `close_fee_rate` (a taker fee, e.g. "0.0004") on the closing trade.
    """

    maintenance_rate: Fraction
    initial_rate: Fraction
    warn_at: Fraction = Fraction(1, 2)
    danger_at: Fraction = Fraction(4, 5)
    auto_reduce: bool = False
    reduce_at: Fraction = Fraction(4, 5)
    reduce_to: Fraction = Fraction(2, 5)
    close_fee_rate: Fraction = ZERO

    def __post_init__(self) -> None:
        for name in (
            "maintenance_rate",
            "initial_rate",
            "warn_at",
            "danger_at",
            "reduce_at",
            "reduce_to",
            "close_fee_rate",
        ):
            object.__setattr__(self, name, _exact(getattr(self, name), name.replace("_", " ")))
        mmr, imr = self.maintenance_rate, self.initial_rate
        if not 0 < imr <= 1:
            raise MarginError("initial rate", imr, "must be in (0, 1] (leverage 1x or more)")
        if not 0 < mmr < imr:
            raise MarginError("maintenance rate", mmr, f"must be above 0 and below the initial rate {imr}")
        if not 0 < self.warn_at < self.danger_at < 1:
            raise MarginError(
                "warning levels", (self.warn_at, self.danger_at), "need 0 < warn_at < danger_at < 1"
            )
        if not 0 < self.reduce_to < self.reduce_at <= 1:
            raise MarginError(
                "auto-reduce levels", (self.reduce_at, self.reduce_to), "need 0 < reduce_to < reduce_at <= 1"
            )
        if not 0 <= self.close_fee_rate < mmr:
            # At a fee rate >= mmr closing a lot costs more margin than it frees: reduce could never help.
            raise MarginError(
                "close fee rate",
                self.close_fee_rate,
                f"must be at least 0 and below the maintenance rate {mmr}",
            )

    @classmethod
    def from_leverage(cls, leverage: object, maintenance_rate: object, **kw: object) -> MarginRules:
        """Rules for `leverage`x (initial rate 1/leverage)."""
        lev = _exact(leverage, "leverage")
        if lev < 1:
            raise MarginError("leverage", leverage, "must be at least 1")
        return cls(_exact(maintenance_rate, "maintenance rate"), 1 / lev, **kw)  # type: ignore[arg-type]

    @property
    def leverage(self) -> Fraction:
        return 1 / self.initial_rate

    def level(self, ratio: Fraction | None) -> str:
        """ok / warn / danger / liquidation for a margin ratio (None: no equity left)."""
        if ratio is None or ratio >= 1:
            return LEVEL_LIQUIDATION
        if ratio >= self.danger_at:
            return LEVEL_DANGER
        if ratio >= self.warn_at:
            return LEVEL_WARN
        return LEVEL_OK


# ---- formulas --------------------------------------------------------------------------------------
def _check_position(lots: int, entry: object, mark: object) -> tuple[Fraction | None, Fraction]:
    if isinstance(lots, bool) or not isinstance(lots, int):
        raise MarginError("position", lots, "must be an integer number of lots")
    m = _exact(mark, "mark")
    if m <= 0:
        raise MarginError("mark", mark, "must be a positive price in ticks")
    if lots == 0:
        return None, m
    if entry is None:
        raise MarginError("entry", entry, "an open position needs an entry price")
    e = _exact(entry, "entry")
    if e <= 0:
        raise MarginError("entry", entry, "must be a positive price in ticks")
    return e, m


def isolated_collateral(lots: int, entry: Fraction | int, initial_rate: Fraction) -> Fraction:
    """The initial margin posted to open `lots` at `entry`: imr * |lots| * entry (tick*lots)."""
    return initial_rate * abs(lots) * Fraction(entry)


def liquidation_price(
    lots: int, entry: Fraction | int, collateral: Fraction | int, maintenance_rate: Fraction
) -> Fraction | None:
    """The exact mark (ticks) at which equity equals maintenance margin; None if flat or never.

    A long whose collateral covers its whole entry value cannot be liquidated (the price would be
    at or below zero).
    """
    if lots == 0:
        return None
    e, c, m = Fraction(entry), Fraction(collateral), Fraction(maintenance_rate)
    if lots > 0:
        price = (lots * e - c) / (lots * (1 - m))
    else:
        s = -lots
        price = (c + s * e) / (s * (1 + m))
    return price if price > 0 else None


def conservative_tick(price: Fraction, lots: int) -> int:
    """A liquidation price on the tick grid, rounded toward danger: up for a long, down for a short."""
    return ceil(price) if lots > 0 else floor(price)


@dataclass(frozen=True, slots=True)
class ReduceOrder:
    """The order auto-reduce proposes: `side` (BUY/SELL) and `lots`, to close at market."""

    side: int
    lots: int


def reduce_order(
    lots: int,
    entry: Fraction | int,
    mark: Fraction | int,
    collateral: Fraction | int,
    maintenance_rate: Fraction,
    target: Fraction,
    *,
    close_price: Fraction | int | None = None,
    close_fee_rate: Fraction = ZERO,
) -> ReduceOrder | None:
    """The fewest lots to close at `close_price` (default the mark) so the margin ratio is <= `target`.

    Closing r lots realizes their P&L into collateral, so equity at the mark only moves by the cost
    of the close: r * k with k = (mark - close) for a long, (close - mark) for a short, plus
    fee * close. Solving mmr * (|q| - r) * mark <= target * (equity - r * k) for r:

        r >= (mmr*|q|*mark - target*equity) / (mmr*mark - target*k)

    rounded up to a whole lot. When equity is gone, or a lot costs more than it frees, close it all.
    None when the ratio is already at or below the target.
    """
    if lots == 0:
        return None
    s = abs(lots)
    p = Fraction(mark)
    x = p if close_price is None else Fraction(close_price)
    mmr, t, f = Fraction(maintenance_rate), Fraction(target), Fraction(close_fee_rate)
    equity = Fraction(collateral) + lots * (p - Fraction(entry))
    side = SELL if lots > 0 else BUY
    if equity > 0 and mmr * s * p <= t * equity:
        return None
    k = (p - x if lots > 0 else x - p) + f * x
    denominator = mmr * p - t * k
    if equity <= 0 or denominator <= 0:
        return ReduceOrder(side, s)
    r = ceil((mmr * s * p - t * equity) / denominator)
    return ReduceOrder(side, min(max(r, 1), s))


# ---- the monitor -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class MarginStatus:
    """One assessment, exact: money in tick*lots, prices in ticks, ratios as Fractions."""

    lots: int
    entry: Fraction | None
    mark: Fraction
    collateral: Fraction
    notional: Fraction
    unrealized: Fraction
    equity: Fraction
    initial_margin: Fraction
    maintenance_margin: Fraction
    available: Fraction  # equity - initial margin: room for new orders
    margin_ratio: Fraction | None  # maintenance / equity; None when equity is gone on an open position
    level: str
    liquidation_price: Fraction | None
    liquidation_tick: int | None  # rounded toward the mark (conservative), for display
    effective_leverage: Fraction | None  # notional / equity
    reduce: ReduceOrder | None

    def percent_to_liquidation(self) -> Decimal | None:
        """Distance from mark to the liquidation price as a Decimal percentage (2 decimals), for display."""
        if self.liquidation_price is None:
            return None
        pct = abs(self.mark - self.liquidation_price) / self.mark * 100
        return Decimal(f"{round(pct * 100)}E-2")


class MarginMonitor:
    """Assess positions against `MarginRules`. Stateless apart from the rules: call it on every mark."""

    def __init__(self, rules: MarginRules) -> None:
        self.rules = rules

    def assess(
        self,
        lots: int,
        entry: Fraction | int | None,
        mark: Fraction | int,
        collateral: Fraction | int | None = None,
        *,
        close_price: Fraction | int | None = None,
    ) -> MarginStatus:
        """Margin, ratio, level, liquidation price and (if enabled) the auto-reduce order.

        `collateral` defaults to the isolated initial margin at entry; `close_price` is where an
        auto-reduce would trade (the bid for a long, the ask for a short), default the mark.
        """
        rules = self.rules
        e, m = _check_position(lots, entry, mark)
        if collateral is None:
            c = isolated_collateral(lots, e, rules.initial_rate) if e is not None else ZERO
        else:
            c = _exact(collateral, "collateral")
        if close_price is not None and _exact(close_price, "close price") <= 0:
            raise MarginError("close price", close_price, "must be a positive price in ticks")
        notional = abs(lots) * m
        unrealized = lots * (m - e) if e is not None else ZERO
        equity = c + unrealized
        maintenance = rules.maintenance_rate * notional
        if lots == 0:
            ratio: Fraction | None = ZERO
        else:
            ratio = maintenance / equity if equity > 0 else None
        liq = liquidation_price(lots, e, c, rules.maintenance_rate) if e is not None else None
        reduce = None
        if rules.auto_reduce and e is not None and (ratio is None or ratio >= rules.reduce_at):
            reduce = reduce_order(
                lots,
                e,
                m,
                c,
                rules.maintenance_rate,
                rules.reduce_to,
                close_price=close_price,
                close_fee_rate=rules.close_fee_rate,
            )
        return MarginStatus(
            lots=lots,
            entry=e,
            mark=m,
            collateral=c,
            notional=notional,
            unrealized=unrealized,
            equity=equity,
            initial_margin=rules.initial_rate * notional,
            maintenance_margin=maintenance,
            available=equity - rules.initial_rate * notional,
            margin_ratio=ratio,
            level=rules.level(ratio),
            liquidation_price=liq,
            liquidation_tick=conservative_tick(liq, lots) if liq is not None else None,
            effective_leverage=notional / equity if lots and equity > 0 else None,
            reduce=reduce,
        )

    def assess_position(
        self,
        position: Position,
        mark: Fraction | int,
        deposit: Fraction | int,
        *,
        close_price: Fraction | int | None = None,
    ) -> MarginStatus:
        """Assess an inventory Position with collateral = deposit + realized P&L - fees (tick*lots)."""
        collateral = _exact(deposit, "deposit") + position.realized - position.fees_value
        return self.assess(position.lots, position.avg_cost, mark, collateral, close_price=close_price)


# ---- the kernel's view of its perpetual markets --------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PerpTerms:
    """One perpetual market's margin terms as the venue published them (`PerpInfo`), exact."""

    rules: MarginRules
    deposit: Fraction  # collateral in tick*lots of the market
    collateral: Decimal  # the same, in quote currency as published
    funding_interval_s: int


class MarginBook:
    """What the kernel knows of each perpetual market: its terms (`PerpInfo`), the venue's mark
    (`MarkPrice`), the last funding payment and every liquidation, and so our margin status on it.

    Fed by the bus (`on_event`); the inventory books funding and liquidations into the position. A
    market with no `PerpInfo` has no margin (spot): `status` is None. Collateral is the published
    deposit plus the position's realized P&L (funding included) minus fees: cross margin over this
    one market (`MarginMonitor.assess_position`).
    """

    def __init__(self, inventory: Inventory) -> None:
        self.inventory = inventory
        self.terms: dict[tuple[str, str], PerpTerms] = {}
        self.marks: dict[tuple[str, str], MarkPrice] = {}
        self.last_funding: dict[tuple[str, str], Funding] = {}
        self.liquidations: list[Liquidation] = []
        self.rejected = 0  # PerpInfo the book could not use (bad rates): counted, logged by the caller
        self.last_problem = ""
        self.version = 0

    def on_event(self, ev: PerpInfo | MarkPrice | Funding | Liquidation) -> None:
        key = (ev.venue, ev.symbol)
        if type(ev) is MarkPrice:
            if ev.mark > 0:
                self.marks[key] = ev
        elif type(ev) is PerpInfo:
            inst = self.inventory.instruments.get(key)
            try:
                rules = MarginRules.from_leverage(ev.leverage, ev.maintenance_rate)
                if inst is None:
                    raise MarginError("market", key, "has no instrument")
                deposit = collateral_units(inst, ev.collateral)
                if deposit < 0:
                    raise MarginError("collateral", ev.collateral, "must not be negative")
            except MarginError as exc:
                self.rejected += 1
                self.last_problem = str(exc)
                return
            self.terms[key] = PerpTerms(
                rules,
                deposit,
                to_decimal(ev.collateral),
                ev.funding_interval_s,
            )
        elif type(ev) is Funding:
            self.last_funding[key] = ev
        elif type(ev) is Liquidation:
            self.liquidations.append(ev)
        self.version += 1

    def mark(self, venue: str, symbol: str) -> int | None:
        m = self.marks.get((venue, symbol))
        return None if m is None else m.mark

    def status(self, venue: str, symbol: str) -> MarginStatus | None:
        """Our margin status on a perpetual market at the venue's mark; None for a spot market or
        before the first mark."""
        key = (venue, symbol)
        terms = self.terms.get(key)
        mark = self.marks.get(key)
        if terms is None or mark is None:
            return None
        pos = self.inventory.position(venue, symbol)
        return MarginMonitor(terms.rules).assess_position(pos, mark.mark, terms.deposit)

    def projected(self, venue: str, symbol: str, lots: int, price: int) -> MarginStatus | None:
        """The status if the position became `lots` with the difference traded at `price` (a what-if
        for the risk rule: the added lots enter at `price`; what is reduced keeps the average cost and
        its P&L is left in the mark-to-market). None for a spot market or before the first mark."""
        key = (venue, symbol)
        terms = self.terms.get(key)
        mark = self.marks.get(key)
        if terms is None or mark is None:
            return None
        pos = self.inventory.position(venue, symbol)
        old, entry = pos.lots, pos.avg_cost
        if lots == 0:
            new_entry: Fraction | None = None
        elif old == 0 or entry is None or (old > 0) != (lots > 0):
            new_entry = Fraction(price)
        elif abs(lots) > abs(old):
            new_entry = (entry * abs(old) + Fraction(price) * (abs(lots) - abs(old))) / abs(lots)
        else:
            new_entry = entry
        collateral = terms.deposit + pos.realized - pos.fees_value
        return MarginMonitor(terms.rules).assess(lots, new_entry, mark.mark, collateral)


def distance_bps(status: MarginStatus) -> Fraction | None:
    """|mark - liquidation price| / mark in basis points, exact; None when there is no liquidation price."""
    if status.liquidation_price is None:
        return None
    return abs(status.mark - status.liquidation_price) / status.mark * 10_000


__all__ = [
    "MarginBook",
    "PerpTerms",
    "distance_bps",
    "MarginRules",
    "MarginMonitor",
    "MarginStatus",
    "MarginError",
    "ReduceOrder",
    "liquidation_price",
    "conservative_tick",
    "reduce_order",
    "isolated_collateral",
    "collateral_units",
    "LEVEL_OK",
    "LEVEL_WARN",
    "LEVEL_DANGER",
    "LEVEL_LIQUIDATION",
    "LEVELS",
]

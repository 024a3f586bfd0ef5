"""Instruments and the fixed-point edge: prices as integer ticks, sizes as integer lots.

Everything inside the engine is an int. Venue strings, Decimals and (from ccxt) floats are turned
into ticks and lots here, once, and checked: a value that is not on the grid, not finite, negative
or absurdly large raises an `InstrumentError` that names the value and the rule it broke. Going back
out (`price`, `size`, `notional`, `format_*`) gives exact Decimals and strings, never floats.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal, InvalidOperation

# A price or size beyond this many ticks/lots is a fat finger or a garbage message, not a market.
MAX_UNITS = 10**15
# Fees travel through the engine as integers in millionths of one tick*lot (see `fee_units`).
FEE_SCALE = 1_000_000
# Decimal arithmetic that never rounds: the default context keeps 28 digits (a notional of 10**15 ticks
# times 10**15 lots does not fit) and turns a value below 1e-999999 into 0 without a word. Only exact
# operations are done in it (products, divisions by powers of ten, integer division).
_EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)


class InstrumentError(ValueError):
    """A value that cannot become ticks or lots. `value` is what was given, `rule` what it broke."""

    def __init__(self, symbol: str, what: str, value: object, rule: str) -> None:
        self.symbol = symbol
        self.what = what
        self.value = value
        self.rule = rule
        super().__init__(f"{symbol}: {what} {value!r} rejected: {rule}")


def to_decimal(value: object, *, symbol: str = "?", what: str = "value") -> Decimal:
    """An exact Decimal from a venue string, Decimal, int or float (via its shortest repr)."""
    if isinstance(value, bool):
        raise InstrumentError(symbol, what, value, "must be a number, not a boolean")
    if isinstance(value, Decimal):
        d = value
    elif isinstance(value, int):
        d = Decimal(value)
    elif isinstance(value, float):
        # repr is the shortest string that round-trips: 0.1 -> "0.1", not 0.1000000000000000055...
        d = Decimal(repr(value))
    elif isinstance(value, str):
        text = value.strip().replace("_", "")
        if not text:
            raise InstrumentError(symbol, what, value, "is empty")
        try:
            d = Decimal(text)
        except InvalidOperation:
            raise InstrumentError(symbol, what, value, "is not a number") from None
    else:
        raise InstrumentError(
            symbol, what, value, f"must be a number or numeric string, not {type(value).__name__}"
        )
    if not d.is_finite():
        raise InstrumentError(
            symbol, what, value, "must be finite (NaN and infinity are not prices or sizes)"
        )
    return d


def _decimals(step: Decimal) -> int:
    exp = step.normalize().as_tuple().exponent
    return max(0, -int(exp))


@dataclass(frozen=True, slots=True)
class Instrument:
    """One tradable symbol on one venue, with its price and size grids.

    `tick_size` and `lot_size` are the venue's increments; `min_lots` the smallest order in lots.
    `price_decimals`/`size_decimals` are how many decimals to show (default: those of the grid).
    """

    symbol: str
    tick_size: Decimal
    lot_size: Decimal
    min_lots: int = 1
    base: str = ""
    quote: str = ""
    venue: str = ""
    price_decimals: int = -1
    size_decimals: int = -1
    max_ticks: int = MAX_UNITS
    max_lots: int = MAX_UNITS
    _tick_exp: int = field(default=0, repr=False, compare=False)

    def __post_init__(self) -> None:
        tick = to_decimal(self.tick_size, symbol=self.symbol, what="tick size")
        lot = to_decimal(self.lot_size, symbol=self.symbol, what="lot size")
        if tick <= 0:
            raise InstrumentError(self.symbol, "tick size", self.tick_size, "must be greater than zero")
        if lot <= 0:
            raise InstrumentError(self.symbol, "lot size", self.lot_size, "must be greater than zero")
        if self.min_lots < 1:
            raise InstrumentError(self.symbol, "minimum size", self.min_lots, "must be at least one lot")
        object.__setattr__(self, "tick_size", tick)
        object.__setattr__(self, "lot_size", lot)
        if self.price_decimals < 0:
            object.__setattr__(self, "price_decimals", _decimals(tick))
        if self.size_decimals < 0:
            object.__setattr__(self, "size_decimals", _decimals(lot))
        if not self.base and "/" in self.symbol:
            base, _, quote = self.symbol.partition("/")
            object.__setattr__(self, "base", base)
            object.__setattr__(self, "quote", quote.split(":")[0])

    # ---- into the engine -------------------------------------------------------------------
    def ticks(self, price: object) -> int:
        """Price -> integer ticks. Must be finite, > 0, on the tick grid and not absurd."""
        d = to_decimal(price, symbol=self.symbol, what="price")
        if d <= 0:
            raise InstrumentError(self.symbol, "price", price, "must be greater than zero")
        if d > _EXACT.multiply(self.tick_size, self.max_ticks):  # before dividing: 1e999999 is a number
            raise InstrumentError(
                self.symbol, "price", price, f"is above the maximum of {self.max_ticks} ticks"
            )
        q, r = _EXACT.divmod(d, self.tick_size)
        if r:
            raise InstrumentError(
                self.symbol, "price", price, f"is not a multiple of the tick size {self.tick_size}"
            )
        n = int(q)
        if n > self.max_ticks:
            raise InstrumentError(
                self.symbol, "price", price, f"is above the maximum of {self.max_ticks} ticks"
            )
        return n

    def lots(self, size: object, *, allow_zero: bool = False) -> int:
        """Size -> integer lots. Must be finite, > 0 (or 0 when `allow_zero`), on the lot grid."""
        d = to_decimal(size, symbol=self.symbol, what="size")
        if d < 0 or (d == 0 and not allow_zero):
            raise InstrumentError(
                self.symbol,
                "size",
                size,
                "must be greater than zero" if not allow_zero else "must not be negative",
            )
        if d > _EXACT.multiply(self.lot_size, self.max_lots):
            raise InstrumentError(self.symbol, "size", size, f"is above the maximum of {self.max_lots} lots")
        q, r = _EXACT.divmod(d, self.lot_size)
        if r:
            raise InstrumentError(
                self.symbol, "size", size, f"is not a multiple of the lot size {self.lot_size}"
            )
        n = int(q)
        if n > self.max_lots:
            raise InstrumentError(self.symbol, "size", size, f"is above the maximum of {self.max_lots} lots")
        return n

    def order_lots(self, size: object) -> int:
        """Size of an order: as `lots`, and at least the instrument's minimum."""
        n = self.lots(size)
        if n < self.min_lots:
            raise InstrumentError(
                self.symbol, "size", size, f"is below the minimum order size {self.size(self.min_lots)}"
            )
        return n

    def ticks_nearest(self, price: object, *, side: int | None = None) -> int:
        """Price -> ticks, rounding onto the grid (down for a buy, up for a sell, nearest otherwise).

        For venue prices that we must place on our grid (fair values, derived quotes), not for input
        a user typed: typed input goes through `ticks` and is rejected when off-grid.
        """
        d = to_decimal(price, symbol=self.symbol, what="price")
        if d <= 0:
            raise InstrumentError(self.symbol, "price", price, "must be greater than zero")
        if d > _EXACT.multiply(self.tick_size, self.max_ticks + 1):
            raise InstrumentError(self.symbol, "price", price, f"is outside 1..{self.max_ticks} ticks")
        # Exact integer division: rounding d / tick to 28 digits first could round a buy up.
        q, r = _EXACT.divmod(d, self.tick_size)
        n = int(q)
        if r:
            if side == 1:
                n += 1
            elif side != 0:
                half = _EXACT.multiply(r, 2).compare(self.tick_size)
                if half > 0 or (half == 0 and n % 2):
                    n += 1
        if n < 1 or n > self.max_ticks:
            raise InstrumentError(self.symbol, "price", price, f"is outside 1..{self.max_ticks} ticks")
        return n

    # ---- out of the engine -----------------------------------------------------------------
    def price(self, ticks: int) -> Decimal:
        return _EXACT.multiply(self.tick_size, ticks)

    def size(self, lots: int) -> Decimal:
        return _EXACT.multiply(self.lot_size, lots)

    def notional(self, ticks_times_lots: int) -> Decimal:
        """Quote-currency value of an integer number of tick*lots (price_ticks * size_lots)."""
        return _EXACT.multiply(_EXACT.multiply(self.tick_size, self.lot_size), ticks_times_lots)

    def fee(self, fee_units: int) -> Decimal:
        """Quote-currency value of a fee given in millionths of a tick*lot."""
        # FEE_SCALE is a power of ten, so the division is exact.
        return _EXACT.divide(self.notional(fee_units), FEE_SCALE)

    def format_price(self, ticks: int) -> str:
        return f"{self.price(ticks):.{self.price_decimals}f}"

    def format_size(self, lots: int) -> str:
        return f"{self.size(lots):.{self.size_decimals}f}"


def fee_units(price_ticks: int, size_lots: int, fee_ppm: int) -> int:
    """Fee of a fill in millionths of a tick*lot for a rate in parts per million (1 bp = 100 ppm).

    Exact integer arithmetic; negative `fee_ppm` is a rebate.
    """
    return price_ticks * size_lots * fee_ppm


DEFAULT_INSTRUMENT = Instrument(
    "BTC/USDT", tick_size=Decimal("0.1"), lot_size=Decimal("0.001"), min_lots=1, venue="sim"
)

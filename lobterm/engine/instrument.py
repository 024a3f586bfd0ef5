"""Instruments and the fixed-point edge: prices as integer ticks, sizes as integer lots.

Everything inside the engine is an int. Venue strings, Decimals and (from ccxt) floats are turned
into ticks and lots here, once, and checked: a value that is not on the grid, not finite, negative
or absurdly large raises an `InstrumentError` that names the value and the rule it broke. Going back
out (`price`, `size`, `notional`, `format_*`) gives exact Decimals and strings, never floats.

numpy scalars arrive here too (backtest arrays, ccxt payloads parsed by numpy-using code). They are
converted where that is exact and unambiguous: a numpy integer is the integer it holds, a
`numpy.float64` is a float (a subclass of it) and is read through its shortest repr like any float.
numpy 2's own repr (`np.float64(65000.1)`) is not a number, so the float's repr is taken from
`float.__repr__`. A `numpy.float32` (or any other real number type) is refused: its shortest repr
as a float32 is not the value it holds as a float, so "the number the user meant" is ambiguous.
"""

from __future__ import annotations

import numbers
import operator
from dataclasses import dataclass, field
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal, InvalidOperation

from lobterm.engine.errors import EngineInputError, is_side, is_whole

# A price or size beyond this many ticks/lots is a fat finger or a garbage message, not a market.
MAX_UNITS = 10**15
# Fees travel through the engine as integers in millionths of one tick*lot (see `fee_units`).
FEE_SCALE = 1_000_000
# Decimal arithmetic that never rounds: the default context keeps 28 digits (a notional of 10**15 ticks
# times 10**15 lots does not fit) and turns a value below 1e-999999 into 0 without a word. Only exact
# operations are done in it (products, divisions by powers of ten, integer division).
_EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)


class InstrumentError(EngineInputError):
    """A value that cannot become ticks or lots. `value` is what was given, `rule` what it broke."""

    def __init__(self, symbol: str, what: str, value: object, rule: str) -> None:
        self.symbol = symbol
        super().__init__(symbol, what, value, rule)


def to_decimal(value: object, *, symbol: str = "?", what: str = "value") -> Decimal:
    """An exact Decimal from a venue string, Decimal, int or float (via its shortest repr).

    numpy integers and `numpy.float64` are converted like ints and floats (see the module
    docstring); everything else that is not one of these raises `InstrumentError`.
    """
    if isinstance(value, bool):
        raise InstrumentError(symbol, what, value, "must be a number, not a boolean")
    if isinstance(value, Decimal):
        d = value
    elif isinstance(value, int):
        d = Decimal(value)
    elif isinstance(value, float):
        # The shortest string that round-trips: 0.1 -> "0.1", not 0.1000000000000000055... Taken from
        # float itself: a float subclass (numpy.float64) may repr as "np.float64(0.1)".
        d = Decimal(float.__repr__(value))
    elif isinstance(value, numbers.Integral) and hasattr(value, "__index__"):
        # numpy integers: __index__ is the lossless conversion to int.
        d = Decimal(operator.index(value))
    elif isinstance(value, str):
        text = value.strip().replace("_", "")
        if not text:
            raise InstrumentError(symbol, what, value, "is empty")
        try:
            d = Decimal(text)
        except InvalidOperation:
            raise InstrumentError(symbol, what, value, "is not a number") from None
    elif isinstance(value, numbers.Real):
        raise InstrumentError(
            symbol,
            what,
            value,
            f"a {type(value).__name__} cannot be read exactly: give a str, Decimal, int or float",
        )
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
        if not isinstance(self.symbol, str) or not self.symbol:
            raise InstrumentError(str(self.symbol), "symbol", self.symbol, "must be a non-empty str")
        for what, value, low, rule in (
            ("minimum size", self.min_lots, 1, "must be at least one lot"),
            ("maximum price", self.max_ticks, 1, "must be at least one tick"),
            ("maximum size", self.max_lots, 1, "must be at least one lot"),
            ("price decimals", self.price_decimals, -1, "must be >= 0 (or -1: those of the grid)"),
            ("size decimals", self.size_decimals, -1, "must be >= 0 (or -1: those of the grid)"),
        ):
            if not is_whole(value):
                raise InstrumentError(self.symbol, what, value, "must be an int")
            if value < low:
                raise InstrumentError(self.symbol, what, value, rule)
        tick = to_decimal(self.tick_size, symbol=self.symbol, what="tick size")
        lot = to_decimal(self.lot_size, symbol=self.symbol, what="lot size")
        if tick <= 0:
            raise InstrumentError(self.symbol, "tick size", self.tick_size, "must be greater than zero")
        if lot <= 0:
            raise InstrumentError(self.symbol, "lot size", self.lot_size, "must be greater than zero")
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
        a user typed: typed input goes through `ticks` and is rejected when off-grid. `side` is
        BUY (0), SELL (1) or None, as an int: a True or 1.0 would silently pick a rounding direction.
        """
        if side is not None and not is_side(side):
            raise InstrumentError(self.symbol, "side", side, "must be 0 (buy), 1 (sell) or None")
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
    # The way out takes whole numbers only: ints, or numpy integers (from backtest arrays), converted
    # exactly. A float or a bool here is a bug upstream, refused rather than printed as a price.
    def price(self, ticks: int) -> Decimal:
        return _EXACT.multiply(self.tick_size, self._whole(ticks, "ticks"))

    def size(self, lots: int) -> Decimal:
        return _EXACT.multiply(self.lot_size, self._whole(lots, "lots"))

    def notional(self, ticks_times_lots: int) -> Decimal:
        """Quote-currency value of an integer number of tick*lots (price_ticks * size_lots)."""
        return _EXACT.multiply(
            _EXACT.multiply(self.tick_size, self.lot_size), self._whole(ticks_times_lots, "tick*lots")
        )

    def fee(self, fee_units: int) -> Decimal:
        """Quote-currency value of a fee given in millionths of a tick*lot."""
        # FEE_SCALE is a power of ten, so the division is exact.
        return _EXACT.divide(self.notional(fee_units), FEE_SCALE)

    def _whole(self, value: object, what: str) -> int:
        if value.__class__ is int:
            return value
        if (
            isinstance(value, numbers.Integral)
            and not isinstance(value, bool)
            and hasattr(value, "__index__")
        ):
            return operator.index(value)
        raise InstrumentError(self.symbol, what, value, "must be a whole number (int)")

    def format_price(self, ticks: int) -> str:
        return f"{self.price(ticks):.{self.price_decimals}f}"

    def format_size(self, lots: int) -> str:
        return f"{self.size(lots):.{self.size_decimals}f}"


def fee_units(price_ticks: int, size_lots: int, fee_ppm: int) -> int:
    """Fee of a fill in millionths of a tick*lot for a rate in parts per million (1 bp = 100 ppm).

    Exact integer arithmetic; negative `fee_ppm` is a rebate. Ints only: a float here would make the
    fee of a fill a float.
    """
    if not (is_whole(price_ticks) and is_whole(size_lots) and is_whole(fee_ppm)):
        raise EngineInputError(
            "fee", "(price, size, rate)", (price_ticks, size_lots, fee_ppm), "must be three ints"
        )
    return price_ticks * size_lots * fee_ppm


DEFAULT_INSTRUMENT = Instrument(
    "BTC/USDT", tick_size=Decimal("0.1"), lot_size=Decimal("0.001"), min_lots=1, venue="sim"
)

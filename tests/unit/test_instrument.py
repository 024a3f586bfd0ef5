"""Specification of the fixed-point edge (lobterm/engine/instrument.py): prices become integer ticks and
sizes integer lots exactly, anything that is not a clean on-grid number is refused with an
`InstrumentError` that names the value and the rule, and values go back out as exact Decimals/strings.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lobterm.engine.events import BUY, SELL
from lobterm.engine.instrument import (
    DEFAULT_INSTRUMENT,
    FEE_SCALE,
    MAX_UNITS,
    Instrument,
    InstrumentError,
    fee_units,
    to_decimal,
)

BTC = Instrument("BTC/USDT", tick_size=Decimal("0.1"), lot_size=Decimal("0.001"), venue="sim")

# Grids seen on real venues: decimal steps, half and quarter ticks, whole-number ticks, tiny lots.
GRIDS = [
    ("0.1", "0.001"),
    ("0.01", "0.00001"),
    ("0.5", "1"),
    ("0.25", "0.1"),
    ("25", "0.01"),
    ("1", "1"),
    ("0.00000001", "0.1"),
    ("0.0001", "10"),
    ("5E-7", "1E+2"),
]
instruments = st.sampled_from(
    [Instrument(f"X{i}/USD", tick_size=Decimal(t), lot_size=Decimal(lot)) for i, (t, lot) in enumerate(GRIDS)]
)
units = st.integers(1, MAX_UNITS)

FAST = settings(max_examples=300, deadline=None)


# ---- round trips ----------------------------------------------------------------------------
@FAST
@given(instruments, units)
def test_ticks_of_price_of_n_is_n(inst, n):
    assert inst.ticks(inst.price(n)) == n


@FAST
@given(instruments, units)
def test_lots_of_size_of_n_is_n(inst, n):
    assert inst.lots(inst.size(n)) == n


@FAST
@given(instruments, units)
def test_price_and_size_are_exact_multiples_of_the_grid(inst, n):
    assert Fraction(inst.price(n)) == n * Fraction(inst.tick_size)
    assert Fraction(inst.size(n)) == n * Fraction(inst.lot_size)


@FAST
@given(instruments, units)
def test_venue_strings_round_trip(inst, n):
    assert inst.ticks(str(inst.price(n))) == n
    assert inst.lots(str(inst.size(n))) == n
    assert inst.ticks(inst.format_price(n)) == n
    assert inst.lots(inst.format_size(n)) == n


@FAST
@given(instruments, st.integers(1, 10**13))
def test_floats_round_trip_through_their_shortest_repr(inst, n):
    # Up to 15 significant digits every decimal survives a trip through a float.
    assert inst.ticks(float(inst.price(n))) == n
    assert inst.lots(float(inst.size(n))) == n


@FAST
@given(instruments, units)
def test_formatted_price_and_size_are_exact_and_use_the_grid_decimals(inst, n):
    text = inst.format_price(n)
    assert Fraction(Decimal(text)) == n * Fraction(inst.tick_size)
    assert len(text.partition(".")[2]) == inst.price_decimals
    text = inst.format_size(n)
    assert Fraction(Decimal(text)) == n * Fraction(inst.lot_size)
    assert len(text.partition(".")[2]) == inst.size_decimals


def test_whole_number_ints_are_prices_on_a_whole_number_grid():
    inst = Instrument("ES", tick_size=Decimal("25"), lot_size=Decimal("1"))
    assert inst.ticks(5000) == 200
    assert inst.lots(3) == 3


def test_float_prices_are_read_as_their_shortest_decimal_not_their_binary_value():
    assert BTC.ticks(0.3) == 3  # 0.3 is 0.29999999999999998889... in binary
    assert BTC.ticks(100.1) == 1001
    assert BTC.lots(0.007) == 7


def test_strings_may_carry_surrounding_spaces():
    assert BTC.ticks(" 100.1\n") == 1001


def test_decimal_and_str_and_int_give_the_same_ticks():
    assert BTC.ticks(Decimal("64000.5")) == BTC.ticks("64000.5") == BTC.ticks(64000.5) == 640005
    assert BTC.ticks(64000) == 640000


def test_values_go_out_as_decimals_never_floats():
    assert type(BTC.price(1001)) is Decimal and BTC.price(1001) == Decimal("100.1")
    assert type(BTC.size(7)) is Decimal and BTC.size(7) == Decimal("0.007")
    assert type(BTC.notional(1)) is Decimal and type(BTC.fee(1)) is Decimal


# ---- refusals: InstrumentError naming the value and the rule --------------------------------
def refused(convert, value, rule: str) -> InstrumentError:
    with pytest.raises(InstrumentError) as info:
        convert(value)
    err = info.value
    assert err.value is value
    assert repr(value) in str(err) and rule in str(err), str(err)
    assert err.symbol == "BTC/USDT" and rule in err.rule
    return err


@pytest.mark.parametrize("value", ["100.05", Decimal("100.01"), 100.05, "0.01"])
def test_off_grid_price_is_refused(value):
    refused(BTC.ticks, value, "not a multiple of the tick size 0.1")


@pytest.mark.parametrize("value", ["0.0005", Decimal("1.0001"), 0.0015])
def test_off_grid_size_is_refused(value):
    refused(BTC.lots, value, "not a multiple of the lot size 0.001")


NOT_FINITE = [
    "NaN",
    "nan",
    "sNaN",
    float("nan"),
    Decimal("NaN"),
    "inf",
    "Infinity",
    "-inf",
    float("inf"),
    float("-inf"),
    Decimal("-Infinity"),
]


@pytest.mark.parametrize("value", NOT_FINITE, ids=repr)
def test_nan_and_infinity_are_refused_as_prices(value):
    refused(BTC.ticks, value, "must be finite")


@pytest.mark.parametrize("value", NOT_FINITE, ids=repr)
def test_nan_and_infinity_are_refused_as_sizes(value):
    refused(BTC.lots, value, "must be finite")


@pytest.mark.parametrize(
    "value", ["-1", -1, -0.1, Decimal("-100.1"), 0, "0", "0.0", "-0", 0.0, Decimal(0)], ids=repr
)
def test_zero_and_negative_prices_are_refused(value):
    refused(BTC.ticks, value, "must be greater than zero")


@pytest.mark.parametrize("value", ["-0.001", -1, 0, "0", 0.0], ids=repr)
def test_zero_and_negative_sizes_are_refused(value):
    refused(BTC.lots, value, "must be greater than zero")


def test_zero_size_is_allowed_when_asked_for_but_negative_is_not():
    assert BTC.lots("0", allow_zero=True) == 0
    refused(lambda v: BTC.lots(v, allow_zero=True), "-0.001", "must not be negative")


ABSURD = ["100000000000000.1", "1e40", 1e300, Decimal("1E+100"), "1e999999", Decimal("9E+999999"), 10**16]


@pytest.mark.parametrize("value", ABSURD, ids=repr)
def test_absurd_prices_are_refused(value):
    refused(BTC.ticks, value, "above the maximum")


@pytest.mark.parametrize("value", ABSURD, ids=repr)
def test_absurd_sizes_are_refused(value):
    refused(BTC.lots, value, "above the maximum")


def test_the_largest_price_and_size_are_accepted():
    assert BTC.ticks(BTC.price(MAX_UNITS)) == MAX_UNITS
    assert BTC.lots(BTC.size(MAX_UNITS)) == MAX_UNITS
    refused(BTC.ticks, BTC.price(MAX_UNITS + 1), "above the maximum")


@pytest.mark.parametrize("value", ["1e-9999999", Decimal("1E-1000000"), "0.05"], ids=repr)
def test_a_positive_price_below_one_tick_is_off_grid_not_zero(value):
    refused(BTC.ticks, value, "not a multiple of the tick size")


@pytest.mark.parametrize("value", ["1e-9999999", Decimal("1E-1000000")], ids=repr)
def test_a_positive_size_below_one_lot_is_off_grid_not_zero(value):
    refused(BTC.lots, value, "not a multiple of the lot size")
    refused(lambda v: BTC.lots(v, allow_zero=True), value, "not a multiple of the lot size")


def test_a_price_with_many_digits_is_checked_exactly():
    refused(BTC.ticks, "100.1000000000000000000000000000000000000000000000001", "not a multiple")
    assert BTC.ticks("100.1000000000000000000000000000000000000000000000000") == 1001


@pytest.mark.parametrize("value", ["", "   ", "\t"], ids=repr)
def test_empty_strings_are_refused(value):
    refused(BTC.ticks, value, "is empty")


@pytest.mark.parametrize("value", ["abc", "1.2.3", "0x10", "1,000", "100 USDT", "--1"], ids=repr)
def test_garbage_strings_are_refused(value):
    refused(BTC.ticks, value, "is not a number")


@pytest.mark.parametrize("value", [True, False])
def test_booleans_are_refused(value):
    refused(BTC.ticks, value, "not a boolean")
    refused(BTC.lots, value, "not a boolean")


@pytest.mark.parametrize("value,kind", [(None, "NoneType"), ([1], "list"), (b"1", "bytes"), (1j, "complex")])
def test_non_numbers_are_refused_naming_their_type(value, kind):
    refused(BTC.ticks, value, f"not {kind}")


def test_instrument_error_is_a_value_error():
    assert issubclass(InstrumentError, ValueError)


# ---- minimum order size ---------------------------------------------------------------------
def test_order_below_the_minimum_size_is_refused_naming_the_minimum():
    inst = Instrument("ETH/USDT", tick_size=Decimal("0.01"), lot_size=Decimal("0.001"), min_lots=5)
    with pytest.raises(InstrumentError) as info:
        inst.order_lots("0.004")
    assert "'0.004'" in str(info.value) and "below the minimum order size 0.005" in str(info.value)


def test_order_at_the_minimum_size_is_accepted():
    inst = Instrument("ETH/USDT", tick_size=Decimal("0.01"), lot_size=Decimal("0.001"), min_lots=5)
    assert inst.order_lots("0.005") == 5


def test_order_size_is_still_checked_against_the_grid():
    with pytest.raises(InstrumentError, match="lot size"):
        BTC.order_lots("0.0015")


# ---- rounding onto the grid -----------------------------------------------------------------
def test_ticks_nearest_rounds_a_buy_down_a_sell_up_and_otherwise_to_nearest():
    assert BTC.ticks_nearest("100.07", side=BUY) == 1000
    assert BTC.ticks_nearest("100.07", side=SELL) == 1001
    assert BTC.ticks_nearest("100.07") == 1001
    assert BTC.ticks_nearest("100.03") == 1000


def test_ticks_nearest_rounds_halves_to_even():
    assert BTC.ticks_nearest("100.05") == 1000
    assert BTC.ticks_nearest("100.15") == 1002


def test_ticks_nearest_leaves_on_grid_prices_alone():
    assert [BTC.ticks_nearest("100.1", side=s) for s in (BUY, SELL, None)] == [1001, 1001, 1001]


def test_ticks_nearest_never_rounds_a_buy_up_or_a_sell_down_however_many_digits():
    assert BTC.ticks_nearest("100.0999999999999999999999999999999", side=BUY) == 1000
    assert BTC.ticks_nearest("100.1000000000000000000000000000001", side=SELL) == 1002


def test_ticks_nearest_refuses_a_buy_price_below_one_tick():
    with pytest.raises(InstrumentError, match="outside 1..1000000000000000 ticks"):
        BTC.ticks_nearest("0.05", side=BUY)
    assert BTC.ticks_nearest("0.05", side=SELL) == 1


@pytest.mark.parametrize("value", [0, "-1", "NaN", float("inf"), "1e40", "1e999999", True, "abc"], ids=repr)
def test_ticks_nearest_refuses_what_ticks_refuses_except_off_grid(value):
    with pytest.raises(InstrumentError):
        BTC.ticks_nearest(value)


prices = st.builds(
    lambda k, places: Decimal(f"{k}E-{places}"), st.integers(1, 10**40), st.integers(0, 40)
).filter(lambda d: Decimal("0.1") <= d <= Decimal("1E+13"))


@FAST
@given(prices)
def test_ticks_nearest_buy_is_the_highest_grid_price_at_or_below(p):
    n = BTC.ticks_nearest(p, side=BUY)
    assert BTC.price(n) <= p < BTC.price(n + 1)


@FAST
@given(prices)
def test_ticks_nearest_sell_is_the_lowest_grid_price_at_or_above(p):
    n = BTC.ticks_nearest(p, side=SELL)
    assert BTC.price(n - 1) < p <= BTC.price(n)


@FAST
@given(prices)
def test_ticks_nearest_without_side_is_within_half_a_tick(p):
    n = BTC.ticks_nearest(p)
    assert abs(Fraction(BTC.price(n)) - Fraction(p)) <= Fraction(1, 20)


# ---- display --------------------------------------------------------------------------------
def test_format_uses_the_decimals_of_the_grid():
    assert BTC.format_price(640005) == "64000.5"
    assert BTC.format_price(10) == "1.0"
    assert BTC.format_size(1500) == "1.500"
    assert BTC.format_size(1) == "0.001"


def test_format_of_a_half_tick_grid_shows_one_decimal():
    inst = Instrument("X/USD", tick_size=Decimal("0.50"), lot_size=Decimal("1"))
    assert inst.price_decimals == 1
    assert inst.format_price(3) == "1.5" and inst.format_size(12) == "12"


def test_format_of_a_whole_number_grid_shows_no_decimals():
    inst = Instrument("ES", tick_size=Decimal("25"), lot_size=Decimal("1E+1"))
    assert inst.format_price(4) == "100" and inst.format_size(3) == "30"


def test_explicit_display_decimals_pad_the_price():
    inst = Instrument(
        "X/USD", tick_size=Decimal("0.5"), lot_size=Decimal("1"), price_decimals=2, size_decimals=1
    )
    assert inst.format_price(3) == "1.50" and inst.format_size(2) == "2.0"


def test_format_never_uses_exponent_notation():
    tiny = Instrument("SHIB/USDT", tick_size=Decimal("1E-8"), lot_size=Decimal("1E+3"))
    assert tiny.format_price(1) == "0.00000001"
    assert tiny.format_size(5) == "5000"


# ---- fees and notional ----------------------------------------------------------------------
def test_fee_units_are_price_times_size_times_rate():
    assert fee_units(1000, 1000, 100) == 100_000_000
    assert fee_units(1000, 1000, -25) == -25_000_000


def test_fee_of_one_basis_point_on_100_usdt_is_one_cent():
    # 1.000 BTC at 100.0 USDT = 100 USDT notional; 1 bp of it is 0.01 USDT.
    assert BTC.fee(fee_units(1000, 1000, 100)) == Decimal("0.01")


def test_fee_of_a_rebate_is_negative():
    assert BTC.fee(fee_units(1000, 500, -10)) == Decimal("-0.0005")


def test_fee_of_one_unit_is_a_millionth_of_a_tick_times_a_lot():
    assert BTC.fee(1) == Decimal("1E-10")
    assert BTC.fee(FEE_SCALE) == Decimal("0.0001")


@FAST
@given(instruments, st.integers(-(10**36), 10**36))
def test_fee_is_exact_over_the_whole_range_of_fills(inst, units_):
    expected = Fraction(inst.tick_size) * Fraction(inst.lot_size) * units_ / FEE_SCALE
    assert Fraction(inst.fee(units_)) == expected


@FAST
@given(instruments, units, units)
def test_notional_is_exactly_price_times_size(inst, ticks, lots):
    assert Fraction(inst.notional(ticks * lots)) == Fraction(inst.price(ticks)) * Fraction(inst.size(lots))


# ---- the instrument itself ------------------------------------------------------------------
@pytest.mark.parametrize("tick", ["0", "-0.1", 0, "NaN"], ids=repr)
def test_instrument_refuses_a_tick_size_that_is_not_positive(tick):
    with pytest.raises(InstrumentError, match="tick size"):
        Instrument("X/USD", tick_size=tick, lot_size=Decimal("1"))


def test_instrument_refuses_a_minimum_below_one_lot():
    with pytest.raises(InstrumentError, match="at least one lot"):
        Instrument("X/USD", tick_size=Decimal("1"), lot_size=Decimal("1"), min_lots=0)


def test_instrument_takes_grids_as_strings_and_splits_base_and_quote():
    inst = Instrument("BTC/USDT:USDT", tick_size="0.1", lot_size="0.001")
    assert inst.tick_size == Decimal("0.1") and inst.lot_size == Decimal("0.001")
    assert (inst.base, inst.quote) == ("BTC", "USDT")


def test_default_instrument_is_btc_usdt_on_the_sim_venue():
    assert DEFAULT_INSTRUMENT.ticks("64000.1") == 640001 and DEFAULT_INSTRUMENT.venue == "sim"


def test_to_decimal_names_what_it_was_converting():
    with pytest.raises(InstrumentError, match=r"ETH: size 'x' rejected: is not a number"):
        to_decimal("x", symbol="ETH", what="size")


# ---- numpy scalars and other numbers that only look like ints or floats -----------------------
# numpy 2's repr of a float64 is "np.float64(65000.1)", which is not a number: reading it used to raise
# decimal.InvalidOperation. A float64 is a float and is read as one; numpy integers are the integer they
# hold; anything whose "meant" value is ambiguous (float32, Fraction) is refused with a typed error.
def test_a_numpy_float64_price_is_read_like_the_float_it_is():
    assert BTC.ticks(np.float64(65000.1)) == BTC.ticks(65000.1) == 650001
    assert BTC.lots(np.float64(0.5)) == 500


@FAST
@given(instruments, st.floats(allow_nan=True, allow_infinity=True))
def test_a_numpy_float64_is_treated_exactly_like_the_same_float(inst, x):
    def outcome(fn, v):
        try:
            return ("ok", fn(v))
        except InstrumentError as e:
            return ("refused", e.rule)

    for fn in (inst.ticks, inst.lots, inst.ticks_nearest):
        assert outcome(fn, np.float64(x)) == outcome(fn, x)


@FAST
@given(instruments, units, st.sampled_from([np.int64, np.int32, np.uint64, np.int16]))
def test_a_numpy_integer_is_read_as_the_integer_it_holds(inst, n, kind):
    n = min(n, int(np.iinfo(kind).max))
    assert to_decimal(kind(n)) == Decimal(n)
    for fn in (inst.ticks, inst.lots):
        try:
            expected = ("ok", fn(n))
        except InstrumentError as e:
            expected = ("refused", e.rule)
        try:
            got = ("ok", fn(kind(n)))
        except InstrumentError as e:
            got = ("refused", e.rule)
        assert got == expected


@pytest.mark.parametrize("value", [np.float32(65000.1), np.float16(1), Fraction(1, 2)], ids=repr)
def test_a_number_that_cannot_be_read_exactly_is_refused_naming_its_type(value):
    with pytest.raises(InstrumentError, match=type(value).__name__):
        BTC.ticks(value)


@pytest.mark.parametrize(
    "value",
    [
        np.float64("nan"),
        np.float64("inf"),
        -np.float64("inf"),
        Decimal("NaN"),
        Decimal("sNaN"),
        Decimal("-Inf"),
    ],
    ids=repr,
)
def test_numpy_and_decimal_nans_and_infinities_are_refused(value):
    for fn in (BTC.ticks, BTC.lots, BTC.ticks_nearest):
        with pytest.raises(InstrumentError, match="finite"):
            fn(value)


@pytest.mark.parametrize("value", [np.bool_(True), np.bool_(False)], ids=repr)
def test_numpy_booleans_are_refused(value):
    with pytest.raises(InstrumentError):
        BTC.ticks(value)


anything = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats().map(np.float64),
    st.floats(width=32).map(np.float32),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.integers(),
    st.integers(-(2**63), 2**63 - 1).map(np.int64),
    st.booleans(),
    st.text(max_size=12),
    st.fractions(),
    st.none(),
    st.just([1]),
)


@settings(max_examples=500, deadline=None)
@given(instruments, anything)
def test_every_way_in_gives_ticks_and_lots_or_an_instrument_error_nothing_else(inst, value):
    for fn in (inst.ticks, inst.lots, inst.order_lots, inst.ticks_nearest, to_decimal):
        try:
            out = fn(value)
        except InstrumentError:
            continue
        assert type(out) is (Decimal if fn is to_decimal else int)


@pytest.mark.parametrize("side", [1.0, True, np.int64(1), 2, -1, "buy"], ids=repr)
def test_ticks_nearest_refuses_a_side_that_is_not_buy_sell_or_none(side):
    with pytest.raises(InstrumentError, match="side"):
        BTC.ticks_nearest("65000.15", side=side)


@pytest.mark.parametrize(
    "field", ["min_lots", "max_ticks", "max_lots", "price_decimals", "size_decimals"], ids=str
)
@pytest.mark.parametrize("value", [True, 1.0, np.int64(2), "2", None], ids=repr)
def test_an_instrument_refuses_whole_number_settings_that_are_not_ints(field, value):
    with pytest.raises(InstrumentError, match="must be an int"):
        Instrument("X/USD", tick_size="0.1", lot_size="1", **{field: value})


@pytest.mark.parametrize("value", [1.5, 1.0, True, Decimal(3), "3", None], ids=repr)
def test_going_out_takes_whole_numbers_only(value):
    for fn in (BTC.price, BTC.size, BTC.notional, BTC.fee, BTC.format_price, BTC.format_size):
        with pytest.raises(InstrumentError, match="whole number"):
            fn(value)


def test_going_out_reads_numpy_integers_exactly():
    assert BTC.price(np.int64(650001)) == Decimal("65000.1")
    assert BTC.format_size(np.int32(1500)) == "1.500"


@pytest.mark.parametrize("args", [(1000.0, 1, 100), (1000, True, 100), (1000, 1, np.int64(100))], ids=repr)
def test_fee_units_refuses_anything_but_ints(args):
    with pytest.raises(ValueError, match="three ints"):
        fee_units(*args)

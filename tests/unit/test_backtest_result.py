"""A backtest's result as a trader reads it: money rounded to the quote currency's decimals on the
market, half-even, never '-0'; the exact figures stay in the record."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Context, Decimal

from hypothesis import given
from hypothesis import strategies as st

from lobterm.backtest.result import quote_decimals, rounded
from lobterm.engine.instrument import Instrument


def test_the_quote_currency_decimals_are_those_of_one_tick_times_one_lot():
    assert quote_decimals(Instrument("BTC/USDT", Decimal("0.1"), Decimal("0.001"))) == 4
    assert quote_decimals(Instrument("ETH/USDT", Decimal("0.01"), Decimal("0.0001"))) == 6
    assert quote_decimals(Instrument("X/USD", Decimal("1"), Decimal("1"))) == 0


def test_the_quote_currency_decimals_are_never_fewer_than_the_prices():
    # tick 0.5 x lot 10 = 5: cash moves in whole units, but a mid (and so unrealized P&L) has a decimal.
    assert quote_decimals(Instrument("X/USD", Decimal("0.5"), Decimal("10"))) == 1


def test_rounding_is_half_even_and_never_shows_minus_zero():
    assert rounded("38.3327742900", 4) == "38.3328"
    assert rounded("0.00005", 4) == "0.0000"
    assert rounded("0.00015", 4) == "0.0002"
    assert rounded("-0.00004", 4) == "0.0000"
    assert rounded("-0.8314333333", 4) == "-0.8314"
    assert rounded("12", 2) == "12.00"


@given(
    st.decimals(allow_nan=False, allow_infinity=False, min_value=-(10**30), max_value=10**30, places=12),
    st.integers(min_value=0, max_value=12),
)
def test_rounded_money_has_exactly_its_decimals_and_is_the_nearest(amount: Decimal, places: int):
    text = rounded(str(amount), places)
    shown = Decimal(text)
    assert (len(text.split(".")[1]) if "." in text else 0) == places
    assert abs(shown - amount) <= Decimal(1).scaleb(-places) / 2
    assert shown == amount.quantize(
        Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN, context=Context(prec=100)
    )
    if shown == 0:
        assert not text.startswith("-")

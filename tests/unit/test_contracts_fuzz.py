"""The contract conversion of ccxt contract markets (lobterm/venues/ccxt/markets.py `Contracts`) and the
funding figures (perps.py), fuzzed: base units to contracts and back are exact for every size on the
grid, whatever the contract size and amount step; a size off the grid is refused with one line that
names the contract; what ccxt hands back (floats and strings) lands on the same lots; garbage raises
the documented errors only; funding amounts and rates convert exactly where they fit."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lobterm.engine.instrument import FEE_SCALE, InstrumentError
from lobterm.venues.ccxt.markets import ContractError, Contracts, contracts_of, instrument_from_market
from lobterm.venues.ccxt.perps import funding_key, funding_units, rate_ppb

FUZZ = settings(max_examples=300, deadline=None, database=None)
TICK_SIZE_MODE = 4

# Contract sizes and amount steps as venues give them: 1, 2, 5 or 25 times a power of ten.
grids = st.builds(
    lambda m, e: Decimal(m).scaleb(e), st.sampled_from([1, 2, 5, 25]), st.integers(min_value=-8, max_value=2)
)
counts = st.integers(min_value=1, max_value=10**9)


def spec(size: Decimal, step: Decimal) -> Contracts:
    return Contracts("X/USDT:USDT", size, step, "X")


@FUZZ
@given(size=grids, step=grids, n=counts)
def test_a_size_on_the_grid_goes_to_contracts_and_back_exactly(size, step, n):
    c = spec(size, step)
    qty = c.lot * n
    contracts = c.to_venue(qty)
    assert contracts == step * n  # a whole number of the venue's steps
    text = c.venue_amount(qty)
    assert "E" not in text and Decimal(text) == step * n
    assert c.to_base(text) == qty  # the venue's words for it come back as the same base quantity
    market = {
        "symbol": c.symbol, "base": "X", "quote": "USDT", "contract": True, "linear": True,
        "contractSize": str(size), "precision": {"amount": str(step), "price": "0.1"},
        "limits": {"amount": {"min": str(step)}},
    }  # fmt: skip
    inst = instrument_from_market("v", market, TICK_SIZE_MODE)
    assert inst.lot_size == c.lot and inst.min_lots == 1
    assert contracts_of("v", market, TICK_SIZE_MODE) == c
    assert inst.lots(c.to_base(text)) == n


@FUZZ
@given(size=grids, step=grids, n=st.integers(min_value=0, max_value=10**6), part=st.integers(1, 999))
def test_a_size_off_the_grid_is_refused_with_one_line(size, step, n, part):
    c = spec(size, step)
    qty = c.lot * n + c.lot * Decimal(part) / 1000  # a fraction of a step over a whole number of them
    with pytest.raises(ContractError) as e:
        c.to_venue(qty)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("X/USDT:USDT: ") and "not a whole number of contracts" in msg
    assert f"1 contract = {size.normalize():f} X" in msg


@FUZZ
@given(size=grids, step=grids, n=st.integers(min_value=0, max_value=10**6))
def test_what_ccxt_hands_back_as_floats_lands_on_the_same_lots(size, step, n):
    c = spec(size, step)
    amount = float(step * n)  # ccxt parses the venue's numbers to floats
    if Decimal(repr(amount)) != step * n:
        return  # beyond a float's 15-17 digits: the venue's own string would be read instead
    assert c.to_base(amount) == c.lot * n


@given(
    bad=st.one_of(
        st.none(), st.booleans(), st.text(max_size=8), st.sampled_from([float("nan"), float("inf"), []])
    )
)
def test_garbage_from_the_venue_raises_only_the_documented_error(bad):
    c = spec(Decimal("0.01"), Decimal(1))
    try:
        d = c.to_base(bad)
    except InstrumentError:
        return
    assert d.is_finite()


@pytest.mark.parametrize("qty", [Decimal(0), Decimal(-1), Decimal("NaN"), Decimal("Infinity")])
def test_no_quantity_above_zero_no_contracts(qty):
    with pytest.raises(ContractError) as e:
        spec(Decimal("0.001"), Decimal(1)).to_venue(qty)
    assert "\n" not in str(e.value)


@FUZZ
@given(cents=st.integers(min_value=-(10**14), max_value=10**14))
def test_a_funding_amount_in_8_decimals_is_exact_in_fee_units(cents):
    amount = Decimal(cents).scaleb(-8)  # USDT, received > 0 as the venue says it
    tick, lot = Decimal("0.1"), Decimal("0.001")
    units = funding_units(amount, tick, lot)
    assert Decimal(units) * tick * lot / FEE_SCALE == -amount  # exact; paid > 0 in a Funding


@FUZZ
@given(nano=st.integers(min_value=-(10**9) + 1, max_value=10**9 - 1))
def test_a_funding_rate_in_9_decimals_is_exact_in_ppb(nano):
    rate = Decimal(nano).scaleb(-9)
    assert rate_ppb(str(rate)) == nano
    assert rate_ppb(float(rate)) == nano  # as ccxt hands it over
    assert rate_ppb(None) == rate_ppb("nonsense") == rate_ppb(float("nan")) == rate_ppb(1) == 0


def test_funding_keys_are_the_venues_ids_else_time_and_amount():
    assert funding_key({"symbol": "S", "id": 7}) == "S:7"
    assert funding_key({"symbol": "S", "id": "", "timestamp": 5, "amount": -1.5}) == "S:5:-1.5"

"""Margin and liquidation monitor: hand-worked liquidation prices, warning levels, auto-reduce sizes.

The worked case: 10x leverage (initial rate 1/10), maintenance rate 0.5%, 10 lots at 1000 ticks,
isolated collateral = 1/10 * 10 * 1000 = 1000 tick*lots.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest

from lobterm.engine.events import BUY, OUR_OWNER, SELL, Fill
from lobterm.engine.instrument import Instrument
from lobterm.trading.inventory import Inventory
from lobterm.trading.margin import (
    LEVEL_DANGER,
    LEVEL_LIQUIDATION,
    LEVEL_OK,
    LEVEL_WARN,
    MarginError,
    MarginMonitor,
    MarginRules,
    ReduceOrder,
    collateral_units,
    conservative_tick,
    liquidation_price,
    reduce_order,
)

MMR = Fraction(1, 200)
RULES = MarginRules.from_leverage(10, "0.005")
AUTO = MarginRules.from_leverage(10, "0.005", auto_reduce=True)


def test_leverage_sets_the_initial_rate() -> None:
    assert RULES.initial_rate == Fraction(1, 10) and RULES.maintenance_rate == MMR and RULES.leverage == 10


def test_isolated_collateral_defaults_to_the_initial_margin_at_entry() -> None:
    s = MarginMonitor(RULES).assess(10, 1000, 1000)
    assert (s.collateral, s.notional, s.equity, s.initial_margin, s.maintenance_margin) == (
        1000,
        10000,
        1000,
        1000,
        50,
    )
    assert s.available == 0 and s.effective_leverage == 10


def test_long_liquidation_price_matches_the_hand_formula() -> None:
    # (10*1000 - 1000) / (10 * (1 - 0.005)) = 9000 / 9.95 = 904.52...
    liq = liquidation_price(10, 1000, 1000, MMR)
    assert liq == Fraction(180000, 199)
    s = MarginMonitor(RULES).assess(10, 1000, 1000)
    assert s.liquidation_price == liq and s.liquidation_tick == 905  # rounded up: toward the mark


def test_short_liquidation_price_matches_the_hand_formula() -> None:
    # (1000 + 10*1000) / (10 * (1 + 0.005)) = 11000 / 10.05 = 1094.52...
    liq = liquidation_price(-10, 1000, 1000, MMR)
    assert liq == Fraction(220000, 201)
    assert MarginMonitor(RULES).assess(-10, 1000, 1000).liquidation_tick == 1094  # rounded down


def test_at_the_liquidation_price_equity_equals_maintenance_margin() -> None:
    for lots in (10, -10, 3, -7):
        liq = liquidation_price(lots, 1000, 1000, MMR)
        s = MarginMonitor(RULES).assess(lots, 1000, liq, 1000)
        assert s.equity == s.maintenance_margin and s.margin_ratio == 1 and s.level == LEVEL_LIQUIDATION


def test_a_fully_collateralized_long_has_no_liquidation_price() -> None:
    assert liquidation_price(10, 1000, 10_000, MMR) is None
    assert MarginMonitor(RULES).assess(10, 1000, 1000, 10_000).liquidation_tick is None


def test_conservative_tick_rounds_toward_liquidation() -> None:
    assert conservative_tick(Fraction(9045, 10), 1) == 905
    assert conservative_tick(Fraction(9045, 10), -1) == 904
    assert conservative_tick(Fraction(905), 1) == 905


def test_a_flat_position_is_ok_with_no_liquidation_price() -> None:
    s = MarginMonitor(AUTO).assess(0, None, 1000, 500)
    assert (s.margin_ratio, s.level, s.liquidation_price, s.reduce) == (0, LEVEL_OK, None, None)


@pytest.mark.parametrize(
    "mark, ratio, level",
    [
        (1000, Fraction(1, 20), LEVEL_OK),  # 50 / 1000
        (910, Fraction(455, 1000), LEVEL_OK),  # 45.5 / 100
        (909, Fraction(505, 1000), LEVEL_WARN),  # 45.45 / 90
        (906, Fraction(755, 1000), LEVEL_WARN),  # 45.3 / 60
        (905, Fraction(905, 1000), LEVEL_DANGER),  # 45.25 / 50
        (904, Fraction(1130, 1000), LEVEL_LIQUIDATION),  # 45.2 / 40
    ],
)
def test_warning_levels_follow_maintenance_consumption(mark: int, ratio: Fraction, level: str) -> None:
    s = MarginMonitor(RULES).assess(10, 1000, mark)
    assert (s.margin_ratio, s.level) == (ratio, level)


def test_warning_levels_are_configurable() -> None:
    rules = MarginRules.from_leverage(10, "0.005", warn_at="0.3", danger_at="0.45")
    assert MarginMonitor(rules).assess(10, 1000, 910).level == LEVEL_DANGER


def test_no_equity_left_is_liquidation_with_no_ratio() -> None:
    s = MarginMonitor(RULES).assess(10, 1000, 890)  # equity 1000 - 1100 = -100
    assert (s.margin_ratio, s.level, s.effective_leverage) == (None, LEVEL_LIQUIDATION, None)


# ---- auto-reduce -----------------------------------------------------------------------------------------
def test_auto_reduce_is_off_unless_enabled() -> None:
    assert MarginMonitor(RULES).assess(10, 1000, 905).reduce is None


def test_auto_reduce_waits_for_its_trigger_level() -> None:
    assert MarginMonitor(AUTO).assess(10, 1000, 906).reduce is None  # 0.755 < 0.8


def test_auto_reduce_sells_the_fewest_lots_that_bring_a_long_under_target() -> None:
    # ratio 0.905 at 905; to 0.4: r >= (45.25 - 0.4*50) / (0.005*905) = 5.58 -> 6
    s = MarginMonitor(AUTO).assess(10, 1000, 905)
    assert s.reduce == ReduceOrder(SELL, 6)
    after = MarginMonitor(RULES).assess(4, 1000, 905, s.collateral + 6 * (905 - 1000))
    assert after.margin_ratio == Fraction(362, 1000) <= AUTO.reduce_to  # 18.1 / 50
    five = MarginMonitor(RULES).assess(5, 1000, 905, s.collateral + 5 * (905 - 1000))
    assert five.margin_ratio > AUTO.reduce_to


def test_auto_reduce_buys_back_a_short() -> None:
    # ratio 54.7/60 at 1094; to 0.4: r >= (54.7 - 24) / 5.47 = 5.61 -> 6
    assert MarginMonitor(AUTO).assess(-10, 1000, 1094).reduce == ReduceOrder(BUY, 6)


def test_auto_reduce_pays_for_crossing_the_spread_and_the_taker_fee() -> None:
    # closing at the bid 904 with a 4 bp fee costs k = 1 + 0.0004*904 = 1.3616 a lot:
    # r >= 25.25 / (4.525 - 0.4*1.3616) = 6.34 -> 7
    rules = MarginRules.from_leverage(10, "0.005", auto_reduce=True, close_fee_rate="0.0004")
    assert MarginMonitor(rules).assess(10, 1000, 905, close_price=904).reduce == ReduceOrder(SELL, 7)
    assert reduce_order(
        10, 1000, 905, 1000, MMR, Fraction(2, 5), close_price=904, close_fee_rate=Fraction(4, 10000)
    ) == ReduceOrder(SELL, 7)


def test_auto_reduce_closes_everything_when_equity_is_gone() -> None:
    assert MarginMonitor(AUTO).assess(10, 1000, 890).reduce == ReduceOrder(SELL, 10)


def test_reduce_order_is_none_when_already_under_target() -> None:
    assert reduce_order(10, 1000, 1000, 1000, MMR, Fraction(2, 5)) is None


# ---- from the inventory ---------------------------------------------------------------------------------
def test_assessing_an_inventory_position_counts_realized_pnl_and_fees_in_collateral() -> None:
    inv = Inventory()
    inv.on_fill(Fill(1, "perp", "BTC/USDT:USDT", 1, BUY, 1000, 10, 0, False, 4_000_000, 1, OUR_OWNER))
    inv.on_fill(Fill(2, "perp", "BTC/USDT:USDT", 2, SELL, 1050, 2, 0, False, 0, 2, OUR_OWNER))
    p = inv.position("perp", "BTC/USDT:USDT")
    s = MarginMonitor(RULES).assess_position(p, 1000, deposit=1000)
    assert s.collateral == 1000 + 100 - 4
    assert s.liquidation_price == liquidation_price(8, 1000, 1096, MMR) == Fraction(6904 * 200, 8 * 199)


def test_quote_collateral_converts_to_exact_tick_lots() -> None:
    inst = Instrument("BTC/USDT:USDT", tick_size=Decimal("0.1"), lot_size=Decimal("0.001"))
    assert collateral_units(inst, Decimal("100")) == 1_000_000
    assert collateral_units(inst, "0.00005") == Fraction(1, 2)


def test_distance_to_liquidation_is_a_display_percentage() -> None:
    assert MarginMonitor(RULES).assess(10, 1000, 1000).percent_to_liquidation() == Decimal("9.55")


# ---- bad input ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "make",
    [
        lambda: MarginRules("0.1", "0.05"),  # maintenance above initial
        lambda: MarginRules("0", "0.1"),
        lambda: MarginRules.from_leverage("0.5", "0.005"),
        lambda: MarginRules.from_leverage(10, "0.005", warn_at="0.8", danger_at="0.5"),
        lambda: MarginRules.from_leverage(10, "0.005", reduce_at="0.3", reduce_to="0.4"),
        lambda: MarginRules.from_leverage(10, "0.005", close_fee_rate="0.01"),
        lambda: MarginRules.from_leverage(10, "NaN"),
        lambda: MarginMonitor(RULES).assess(10, 1000, 0),
        lambda: MarginMonitor(RULES).assess(10, None, 1000),
        lambda: MarginMonitor(RULES).assess(10, -5, 1000),
        lambda: MarginMonitor(RULES).assess(1.5, 1000, 1000),  # type: ignore[arg-type]
    ],
)
def test_nonsense_inputs_raise_a_margin_error_naming_the_rule(make) -> None:
    with pytest.raises(MarginError) as e:
        make()
    assert e.value.rule


def test_a_float_rate_from_a_config_file_is_read_exactly() -> None:
    assert MarginRules(0.005, 0.1).maintenance_rate == Fraction(1, 200)

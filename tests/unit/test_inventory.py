"""Inventory and P&L: positions, average cost, realized/unrealized, fees once, flips, marks, reconciliation.

Numbers are worked by hand in ticks, lots and tick*lots; fees in millionths of a tick*lot (Fill.fee).
"""

from __future__ import annotations

import random
from decimal import Decimal
from fractions import Fraction
from itertools import count

from hypothesis import given, settings
from hypothesis import strategies as st

from lobterm.assemble import build_sim_kernel
from lobterm.config import load
from lobterm.engine.events import BUY, IOC, OUR_OWNER, SELL, Fill
from lobterm.engine.instrument import Instrument
from lobterm.trading.inventory import (
    AVG_EXACT_DENOMINATOR,
    AVG_GRID,
    MARK_CLOSE,
    MARK_LAST,
    MARK_MID,
    Inventory,
    InventoryError,
    TopOfBook,
    mark_price,
    recompute_from_fills,
    to_price,
    to_quote,
)

SIM = "sim"
SYM = "BTC/USDT"
BTC = Instrument(SYM, tick_size=Decimal("0.1"), lot_size=Decimal("0.001"), venue=SIM)
_ids = count(1)


def fill(
    side: int,
    price: int,
    size: int,
    fee: int = 0,
    *,
    venue: str = SIM,
    symbol: str = SYM,
    owner: int = OUR_OWNER,
    maker: bool = False,
) -> Fill:
    n = next(_ids)
    return Fill(n, venue, symbol, n, side, price, size, 0, maker, fee, n, owner)


def book(*fills: Fill, **kw) -> Inventory:
    inv = Inventory({(SIM, SYM): BTC}, **kw)
    for f in fills:
        inv.on_fill(f)
    return inv


# ---- position and average cost ----------------------------------------------------------------------
def test_buys_at_different_prices_average_by_size() -> None:
    p = book(fill(BUY, 100, 2), fill(BUY, 110, 3)).position(SIM, SYM)
    assert (p.lots, p.cash, p.bought, p.sold, p.fills) == (5, -530, 5, 0, 2)
    assert p.avg_cost == 106  # (2*100 + 3*110) / 5


def test_average_cost_is_an_exact_fraction_of_ticks() -> None:
    p = book(fill(BUY, 100, 1), fill(BUY, 101, 2)).position(SIM, SYM)
    assert p.avg_cost == Fraction(302, 3)


def test_partial_reductions_realize_against_the_average_and_leave_it_unchanged() -> None:
    inv = book(fill(BUY, 100, 2), fill(BUY, 110, 2))  # avg 105
    p = inv.position(SIM, SYM)
    inv.on_fill(fill(SELL, 120, 1))
    assert (p.lots, p.realized, p.avg_cost) == (3, 15, 105)  # 1 * (120 - 105)
    inv.on_fill(fill(SELL, 100, 2))
    assert (p.lots, p.realized, p.avg_cost) == (1, 5, 105)  # 15 + 2 * (100 - 105)


def test_going_flat_clears_the_average_and_the_next_fill_opens_at_its_price() -> None:
    inv = book(fill(BUY, 100, 2), fill(SELL, 104, 2))
    p = inv.position(SIM, SYM)
    assert (p.lots, p.avg_cost, p.realized, p.unrealized(999)) == (0, None, 8, 0)
    inv.on_fill(fill(SELL, 90, 1))
    assert (p.lots, p.avg_cost) == (-1, 90)


def test_short_reductions_realize_when_bought_back_lower() -> None:
    p = book(fill(SELL, 200, 3), fill(BUY, 190, 1)).position(SIM, SYM)
    assert (p.lots, p.avg_cost, p.realized) == (-2, 200, 10)


def test_flip_long_to_short_realizes_the_long_and_opens_the_rest_at_the_fill_price() -> None:
    p = book(fill(BUY, 100, 2), fill(SELL, 110, 5)).position(SIM, SYM)
    assert (p.lots, p.realized, p.avg_cost) == (-3, 20, 110)  # 2 * (110 - 100); 3 short at 110


def test_flip_short_to_long_realizes_the_short_and_opens_the_rest_at_the_fill_price() -> None:
    p = book(fill(SELL, 100, 2), fill(BUY, 90, 3)).position(SIM, SYM)
    assert (p.lots, p.realized, p.avg_cost) == (1, 20, 90)  # 2 * (100 - 90); 1 long at 90


def test_partial_fills_of_one_order_book_like_one_fill() -> None:
    whole = book(fill(BUY, 100, 2), fill(SELL, 107, 6)).position(SIM, SYM)
    parts = book(fill(BUY, 100, 2), fill(SELL, 107, 1), fill(SELL, 107, 4), fill(SELL, 107, 1)).position(
        SIM, SYM
    )
    assert (
        (parts.lots, parts.cash, parts.realized, parts.avg_cost)
        == (whole.lots, whole.cash, whole.realized, whole.avg_cost)
        == (-4, 442, 14, 107)
    )


# ---- fees ---------------------------------------------------------------------------------------------
def test_taker_fee_and_maker_rebate_are_one_line_counted_once() -> None:
    taker = 1000 * 10 * 400  # 4 bp on 10 lots at 1000: 4 tick*lots
    rebate = -1010 * 10 * 100  # -1 bp on 10 lots at 1010: -1.01 tick*lots
    inv = book(fill(BUY, 1000, 10, taker), fill(SELL, 1010, 10, rebate, maker=True))
    p = inv.position(SIM, SYM)
    pnl = p.pnl(1234)
    assert p.fees == 2_990_000 and pnl.fees == Fraction(299, 100)
    assert pnl.realized == 100  # fees are not in the realized P&L ...
    assert pnl.net == Fraction(9701, 100)  # ... nor in the average cost: net = 100 - 2.99, once


def test_fees_do_not_move_the_average_cost() -> None:
    p = book(fill(BUY, 1000, 10, 4_000_000)).position(SIM, SYM)
    assert p.avg_cost == 1000


def test_a_maker_rebate_alone_makes_net_pnl_beat_gross() -> None:
    p = book(fill(BUY, 1000, 10, -1_000_000, maker=True)).position(SIM, SYM)
    assert p.pnl(1000).net == 1  # flat mark, rebate of 1 tick*lot


def test_base_currency_fee_withholds_coin_and_is_still_counted_once() -> None:
    # 1 bp on 10 lots at 1000 = 1 tick*lot, taken as 1/1000 lot of the coin.
    inv = book(fill(BUY, 1000, 10, 1_000_000), fee_currency={SIM: "base"})
    p = inv.position(SIM, SYM)
    assert p.lots == 10  # traded position: what the venue filled
    assert p.holdings == Fraction(9999, 1000)  # what the wallet holds
    assert p.fees_base_lots == Fraction(1, 1000)
    assert (p.cash, p.avg_cost, p.realized) == (-10000, 1000, 0)  # the coin was sold at its cost
    pnl = p.pnl(1100)
    assert pnl.unrealized == Fraction(9999, 1000) * 100
    assert pnl.net == Fraction(9989, 10) == p.equity(1100)  # 998.9 = -10000 + 9.999 * 1100


def test_base_fee_can_be_chosen_per_fill_over_the_venue_default() -> None:
    inv = book()
    inv.on_fill(fill(BUY, 1000, 10, 1_000_000), fee_currency="base")
    inv.on_fill(fill(BUY, 1000, 10, 1_000_000))
    p = inv.position(SIM, SYM)
    assert (p.lots, p.holdings, p.fees_in_base, p.fees) == (20, Fraction(19999, 1000), 1_000_000, 2_000_000)


def test_base_fee_selling_realizes_the_withheld_coin_at_the_fill_price() -> None:
    inv = book(fill(BUY, 1000, 10), fee_currency={SIM: "base"})
    inv.on_fill(fill(SELL, 1200, 5, 600_000))  # 1 bp on 6000 tick*lots = 0.6, taken as 1/2000 lot
    p = inv.position(SIM, SYM)
    assert p.holdings == 5 - Fraction(1, 2000)
    assert p.realized == 5 * 200 + Fraction(1, 2000) * 200
    assert p.pnl(1200).net == p.equity(1200)


# ---- marks --------------------------------------------------------------------------------------------
TOP = TopOfBook(bid=104, ask=106, last=103)


def test_unrealized_marks_to_mid_by_default() -> None:
    assert book(fill(BUY, 100, 4)).pnl(SIM, SYM, TOP).unrealized == 20


def test_unrealized_marks_to_last_trade() -> None:
    assert book(fill(BUY, 100, 4)).pnl(SIM, SYM, TOP, MARK_LAST).unrealized == 12


def test_close_mark_uses_the_bid_for_a_long_and_the_ask_for_a_short() -> None:
    assert book(fill(BUY, 100, 4)).pnl(SIM, SYM, TOP, MARK_CLOSE).unrealized == 16
    assert book(fill(SELL, 100, 4)).pnl(SIM, SYM, TOP, MARK_CLOSE).unrealized == -24


def test_inventory_mark_mode_is_configurable() -> None:
    inv = book(fill(SELL, 100, 4), mark_mode=MARK_CLOSE)
    assert inv.pnl(SIM, SYM, TOP).mark == 106


def test_mid_between_ticks_is_exact() -> None:
    assert mark_price(TopOfBook(104, 105), 1, MARK_MID) == Fraction(209, 2)


def test_missing_marks_fall_back_to_mid_then_last_trade_then_our_last_fill() -> None:
    assert mark_price(TopOfBook(bid=None, ask=106, last=103), 1, MARK_CLOSE) == 103
    assert mark_price(TopOfBook(bid=104, ask=106), 1, MARK_LAST) == 105
    assert mark_price(TopOfBook(), 1, MARK_MID) is None
    assert book(fill(BUY, 100, 4), fill(BUY, 102, 4)).pnl(SIM, SYM, TopOfBook()).mark == 102


def test_a_price_can_be_given_as_the_mark_directly() -> None:
    assert book(fill(BUY, 100, 4)).pnl(SIM, SYM, Fraction(201, 2)).unrealized == 2


# ---- many venues --------------------------------------------------------------------------------------
def test_net_position_per_base_asset_adds_venues_with_different_lot_sizes() -> None:
    perp = Instrument("BTC/USDT:USDT", tick_size=Decimal("0.5"), lot_size=Decimal("0.01"), venue="perp")
    eth = Instrument("ETH/USDT", tick_size=Decimal("0.01"), lot_size=Decimal("0.01"), venue=SIM)
    inv = Inventory({(SIM, SYM): BTC, ("perp", perp.symbol): perp, (SIM, eth.symbol): eth})
    inv.on_fill(fill(BUY, 650000, 5))  # +0.005 BTC
    inv.on_fill(fill(SELL, 130000, 2, venue="perp", symbol=perp.symbol))  # -0.02 BTC
    inv.on_fill(fill(BUY, 300000, 7, symbol=eth.symbol))
    assert inv.net("BTC") == Fraction(-15, 1000)
    assert inv.net_by_venue("BTC") == {
        (SIM, SYM): Fraction(5, 1000),
        ("perp", perp.symbol): Fraction(-2, 100),
    }
    assert inv.net("ETH") == Fraction(7, 100)
    assert inv.net("SOL") == 0


def test_positions_are_kept_per_venue_and_symbol() -> None:
    inv = book(fill(BUY, 100, 3), fill(SELL, 101, 2, venue="other"))
    assert inv.position(SIM, SYM).lots == 3
    assert inv.position("other", SYM).lots == -2


# ---- versions, owners, bad input ------------------------------------------------------------------------
def test_every_fill_bumps_its_position_version_and_the_inventory_version() -> None:
    inv = book(fill(BUY, 100, 1), fill(BUY, 100, 1), fill(BUY, 100, 1, venue="other"))
    assert inv.position(SIM, SYM).version == 2
    assert inv.position("other", SYM).version == 1
    assert inv.version == 3


def test_fills_of_other_owners_are_ignored() -> None:
    inv = book(fill(BUY, 100, 5, owner=7))
    assert inv.on_fill(fill(BUY, 100, 5, owner=7)) is False
    assert inv.position(SIM, SYM).lots == 0 and inv.version == 0


def test_impossible_fills_are_refused_counted_and_leave_the_books_alone() -> None:
    inv = book(fill(BUY, 100, 2))
    before = inv.books()
    assert inv.on_fill(fill(BUY, 100, 0)) is False
    assert inv.on_fill(fill(SELL, 0, 1)) is False
    assert inv.on_fill(fill(SELL, 100, 1), fee_currency="btc") is False
    assert inv.books() == before
    assert inv.rejected == 3
    assert inv.reject_reasons["fill size must be positive"] == 1


def test_bad_settings_raise_a_typed_error_naming_the_rule() -> None:
    for kw in ({"mark_mode": "vwap"}, {"fee_currency": {SIM: "eur"}}, {"history": 0}):
        try:
            Inventory(**kw)
        except InventoryError as e:
            assert e.rule
        else:
            raise AssertionError(f"{kw} was accepted")


def test_the_legacy_mid_pnl_in_half_ticks_still_works() -> None:
    p = book(fill(BUY, 100, 2)).position(SIM, SYM)
    assert p.pnl_x2(101, 102) == 2 * -200 + 2 * 203


# ---- quote currency --------------------------------------------------------------------------------------
def test_values_turn_into_decimal_quote_currency_via_the_instrument() -> None:
    inv = book(fill(BUY, 100, 2), fill(BUY, 110, 2), fill(SELL, 120, 1, 48_000))
    pnl = inv.pnl(SIM, SYM, 110).in_quote(BTC)
    assert pnl.realized == Decimal("0.0015")  # 15 tick*lots * 0.1 * 0.001
    assert pnl.unrealized == Decimal("0.0015")  # 3 * (110 - 105)
    assert pnl.fees == Decimal("0.0000048")  # 0.048 tick*lots
    assert pnl.net == Decimal("0.0029952")
    assert inv.to_quote(SIM, SYM, 10) == Decimal("0.0010")


def test_fractions_are_rounded_half_even_at_the_fee_resolution() -> None:
    assert to_quote(BTC, Fraction(1, 3)) == Decimal("0.0000333333")
    assert to_price(BTC, Fraction(302, 3)) == Decimal("10.06667")


# ---- P&L series --------------------------------------------------------------------------------------
def test_snapshot_gives_exact_pnl_per_position_and_a_total_per_quote_currency() -> None:
    perp = Instrument("BTC/USDT:USDT", tick_size=Decimal("0.1"), lot_size=Decimal("0.001"), venue="perp")
    inv = Inventory({(SIM, SYM): BTC, ("perp", perp.symbol): perp}, history=2)
    inv.on_fill(fill(BUY, 100, 10))
    inv.on_fill(fill(SELL, 100, 10, venue="perp", symbol=perp.symbol))
    marks = {(SIM, SYM): TopOfBook(104, 106), ("perp", perp.symbol): TopOfBook(101, 103)}
    snap = inv.snapshot(1_000, marks)
    assert snap.positions[(SIM, SYM)].net == 50 and snap.positions[("perp", perp.symbol)].net == -20
    assert snap.net_by_quote == {"USDT": Decimal("0.0030")}  # 30 tick*lots
    assert snap.ts == 1_000 and snap.version == inv.version
    inv.snapshot(2_000, marks)
    inv.snapshot(3_000, marks)
    assert [s.ts for s in inv.series] == [2_000, 3_000]


# ---- reconciliation ----------------------------------------------------------------------------------------
SEQUENCE = [
    fill(BUY, 100, 3, 30_000),
    fill(SELL, 104, 5, -52_000),
    fill(BUY, 99, 1),
    fill(BUY, 97, 6, 10),
    fill(SELL, 101, 2, 5, venue="other"),
    fill(BUY, 50, 9, owner=3),
]


def test_recomputing_from_the_fills_gives_the_same_books() -> None:
    live = book(*SEQUENCE)
    assert recompute_from_fills(SEQUENCE).books() == live.books()
    assert live.reconcile(SEQUENCE) == []


def test_reconcile_reports_books_that_do_not_match_the_fills() -> None:
    live = book(*SEQUENCE)
    live.position(SIM, SYM).lots += 1
    problems = live.reconcile(SEQUENCE)
    assert problems and all("sim" in p for p in problems)


def test_kernel_books_from_sim_venue_fills_reconcile_with_the_fills() -> None:
    kernel, venue = build_sim_kernel(load(use_defaults=False, overrides={"sim": {"seed": 3}}), virtual=True)
    ours: list[Fill] = []
    kernel.bus.subscribe(Fill, lambda e: ours.append(e) if e.owner == OUR_OWNER else None)
    venue.open()
    m = kernel.default_market
    for i in range(60):
        venue.step()
        bb, ba = m.l2.best_bid(), m.l2.best_ask()
        if i % 2:
            kernel.buy(m, ba[0], 3 + i % 5, IOC)
        else:
            kernel.sell(m, bb[0], 2 + i % 7, IOC)
    assert len(ours) >= 30
    inv = kernel.inventory
    assert inv.reconcile(ours) == []
    p = inv.position(m.venue, m.symbol)
    assert p.lots == sum(f.size if f.side == BUY else -f.size for f in ours)
    mark = Fraction(m.l2.best_bid()[0] + m.l2.best_ask()[0], 2)
    assert p.pnl(mark).net == p.equity(mark) == p.cash + p.lots * mark - p.fees_value


# ---- properties ------------------------------------------------------------------------------------------
fill_args = st.tuples(
    st.sampled_from([BUY, SELL]),
    st.integers(1, 1000),
    st.integers(1, 50),
    st.integers(-100, 400),
    st.sampled_from(["quote", "base"]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(fill_args, max_size=40), st.integers(1, 2000))
def test_mark_to_market_identity_holds_exactly_for_any_fills(args, mark) -> None:
    inv = Inventory()
    events = []
    for side, price, size, ppm, _ in args:
        ev = fill(side, price, size, price * size * ppm)
        events.append(ev)
        inv.on_fill(ev)
    p = inv.position(SIM, SYM)
    pnl = p.pnl(mark)
    assert p.lots == sum(e.size if e.side == BUY else -e.size for e in events)
    assert pnl.realized + pnl.unrealized - pnl.fees == p.cash + p.lots * mark - p.fees_value
    assert inv.reconcile(events) == []


@settings(max_examples=200, deadline=None)
@given(st.lists(fill_args, max_size=40), st.integers(1, 2000))
def test_identity_holds_with_fees_in_either_currency(args, mark) -> None:
    inv = Inventory()
    events = []
    for side, price, size, ppm, ccy in args:
        ev = fill(side, price, size, price * size * ppm)
        events.append(ev)
        inv.on_fill(ev, fee_currency=ccy)
    p = inv.position(SIM, SYM)
    assert p.pnl(mark).net == p.equity(mark)
    assert p.holdings == p.lots - p.fees_base_lots


def test_a_position_that_never_goes_flat_keeps_a_bounded_average_and_exact_net_pnl() -> None:
    # Adds after partial reductions, never flat: each add can multiply the average's denominator.
    rng = random.Random(5)
    inv = Inventory()
    held = 0
    for _ in range(3000):
        size = rng.randint(1, 20)
        side = BUY if held - size < 1 or (held + size <= 100 and rng.random() < 0.5) else SELL
        held += size if side == BUY else -size
        inv.on_fill(fill(side, 100_000 + rng.randint(-50, 50), size))
    p = inv.position(SIM, SYM)
    assert p.lots == held > 0
    assert p.avg_cost.denominator <= AVG_EXACT_DENOMINATOR
    assert p.avg_rounding != 0 and abs(p.avg_rounding) < 3000 * 100 * Fraction(1, AVG_GRID)
    assert p.pnl(100_003).net == p.equity(100_003)

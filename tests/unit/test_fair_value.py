"""The market maker's fair value (lobterm/trading/fair_value.py): hand-built touches give exact microprices,
venues on other ticks and lots convert exactly, and `[mm] fair_value` is validated with a one-line error."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lobterm import config
from lobterm.config import ConfigError
from lobterm.engine.instrument import Instrument
from lobterm.trading.fair_value import CONSOLIDATED_MICROPRICE, MICROPRICE, Touch, consolidated_microprice
from lobterm.trading.quoting import QuoteParamError, QuoteParams, quote_ladder

A = Instrument("BTC/USDT", tick_size=Decimal("0.1"), lot_size=Decimal("0.001"), venue="simA")
B = Instrument("BTC/USDT", tick_size=Decimal("0.1"), lot_size=Decimal("0.001"), venue="simB")
# Another venue on a finer tick (0.05) and a coarser lot (0.01).
C = Instrument("BTC/USDT", tick_size=Decimal("0.05"), lot_size=Decimal("0.01"), venue="simC")


def test_one_venue_is_its_own_microprice_exactly() -> None:
    # bid 65000.0 x 3 lots, ask 65000.1 x 1 lot: (650000 * 1 + 650001 * 3) / 4 = 650000.75 ticks.
    fv = consolidated_microprice(A, [Touch("simA", A, (650000, 3), (650001, 1))], MICROPRICE)
    assert fv is not None
    assert fv.exact == Fraction(2600003, 4)
    assert fv.half_ticks == 1300002  # 650000.75 -> the half tick 650001.0 (round half-even on halves)
    assert fv.center == 650001.0
    assert fv.price(A) == Decimal("65000.1")
    assert fv.venues == ("simA",)


def test_two_venues_consolidate_the_best_prices_and_add_the_sizes_at_equal_prices() -> None:
    # simA: 65000.0 x 2 / 65000.2 x 2; simB: 65000.0 x 4 / 65000.1 x 1. Best bid 650000 with 2 + 4 = 6 lots,
    # best ask 650001 (simB) with 1 lot: (650000 * 1 + 650001 * 6) / 7 = 650000 + 6/7 ticks.
    touches = [Touch("simA", A, (650000, 2), (650002, 2)), Touch("simB", B, (650000, 4), (650001, 1))]
    fv = consolidated_microprice(A, touches)
    assert fv is not None
    assert fv.exact == 650000 + Fraction(6, 7)
    assert fv.half_ticks == 1300002  # 1300001.714... -> 1300002
    assert fv.price(A) == Decimal("65000.1")
    assert fv.venues == ("simA", "simB")
    assert fv.kind == CONSOLIDATED_MICROPRICE


def test_a_half_tick_centre_is_kept_as_a_half_tick() -> None:
    # Equal sizes: the microprice is the mid, 650000.5 ticks: centre 65000.05.
    fv = consolidated_microprice(
        A, [Touch("simA", A, (650000, 5), (650001, 5)), Touch("simB", B, (649999, 9), (650003, 9))]
    )
    assert fv is not None
    assert fv.exact == Fraction(1300001, 2)
    assert fv.price(A) == Decimal("65000.05")


def test_other_ticks_and_lots_convert_exactly_into_the_quote_venues_ticks() -> None:
    # simC quotes 65000.05 (1300001 ticks of 0.05) x 2 lots of 0.01 = 0.02 BTC, ask 65000.15 x 1 lot = 0.01.
    # simA: 65000.0 x 10 lots of 0.001 = 0.01 BTC, ask 65000.2 x 10 = 0.01 BTC.
    # Best bid 650000.5 ticks of 0.1 (simC) x 0.02; best ask 650001.5 (simC) x 0.01:
    # (650000.5 * 0.01 + 650001.5 * 0.02) / 0.03 = 650000.5 + 2/3.
    touches = [Touch("simA", A, (650000, 10), (650002, 10)), Touch("simC", C, (1300001, 2), (1300003, 1))]
    fv = consolidated_microprice(A, touches)
    assert fv is not None
    assert fv.exact == Fraction(1300001, 2) + Fraction(2, 3)
    assert fv.half_ticks == 1300002  # 1300002.33 -> 1300002
    # The same sizes on simA's grid where the prices are equal add up: simC bid at 65000.0 (1300000) x 1
    # lot (0.01 BTC) and simA's 65000.0 x 10 lots (0.01 BTC): 0.02 BTC at the bid.
    fv2 = consolidated_microprice(
        A, [Touch("simA", A, (650000, 10), (650001, 10)), Touch("simC", C, (1300000, 1), (1300004, 5))]
    )
    assert fv2 is not None
    # (650000 * 0.01 + 650001 * 0.02) / 0.03 = 650000 + 2/3
    assert fv2.exact == 650000 + Fraction(2, 3)


def test_one_sided_and_empty_venues_are_left_out() -> None:
    touches = [Touch("simA", A, (650000, 1), (650001, 3)), Touch("simB", B, None, (649000, 50))]
    fv = consolidated_microprice(A, touches)
    assert fv is not None and fv.venues == ("simA",)
    assert fv.exact == Fraction(650000 * 3 + 650001, 4)
    assert consolidated_microprice(A, [Touch("simB", B, None, None)]) is None
    assert consolidated_microprice(A, []) is None


def test_the_ladder_centres_on_the_fair_value_given() -> None:
    p = QuoteParams(levels=1, spread_ticks=2)
    lad = quote_ladder(p, 100, 110, 0, fair=104.5)
    assert lad.reservation == 104.5
    assert lad.bids[0][0] == 103 and lad.asks[0][0] == 106
    # The quotes still never cross the others' touch, wherever the fair value is.
    far = quote_ladder(p, 100, 110, 0, fair=200.0)
    assert far.bids[0][0] == 109 and far.asks[0][0] == 201


def test_an_unknown_fair_value_is_refused_in_one_line_naming_the_key() -> None:
    with pytest.raises(QuoteParamError, match="fair_value"):
        QuoteParams(fair_value="micro").validate()
    with pytest.raises(ConfigError) as info:
        config.load(None, use_defaults=False, overrides={"mm": {"fair_value": "micro"}})
    assert info.value.key == "mm.fair_value"
    msg = str(info.value)
    assert "\n" not in msg and "consolidated_microprice" in msg
    ok = config.load(None, use_defaults=False, overrides={"mm": {"fair_value": "consolidated_microprice"}})
    assert config.quote_params(ok).fair_value == CONSOLIDATED_MICROPRICE


_RAW = st.one_of(
    st.sampled_from(["mid", "microprice", "consolidated_microprice", "MID", "", " mid", "micro"]),
    st.text(max_size=20),
    st.integers(),
    st.floats(allow_nan=True),
    st.booleans(),
    st.lists(st.text(max_size=3), max_size=2),
)


@settings(max_examples=150, deadline=None)
@given(raw=_RAW)
def test_fuzz_fair_value_loads_or_is_refused_in_one_line(raw: object) -> None:
    try:
        cfg = config.load(None, use_defaults=False, overrides={"mm": {"fair_value": raw}})
    except ConfigError as exc:
        assert exc.key == "mm.fair_value"
        assert "\n" not in str(exc)
        return
    assert config.quote_params(cfg).fair_value in ("mid", "microprice", "consolidated_microprice")
    assert raw == config.quote_params(cfg).fair_value


_LEVEL = st.tuples(st.integers(1, 10**9), st.integers(1, 10**9))


@settings(max_examples=120, deadline=None)
@given(
    touches=st.lists(
        st.tuples(st.sampled_from([A, B, C]), st.none() | _LEVEL, st.none() | _LEVEL), min_size=0, max_size=4
    )
)
def test_fuzz_the_microprice_lies_between_the_consolidated_touch(
    touches: list[tuple[Instrument, tuple[int, int] | None, tuple[int, int] | None]],
) -> None:
    ts = [Touch(f"v{i}", inst, bid, ask) for i, (inst, bid, ask) in enumerate(touches)]
    fv = consolidated_microprice(A, ts)
    both = [t for t in ts if t.bid is not None and t.ask is not None]
    if not both:
        assert fv is None
        return
    assert fv is not None
    to_a = {id(t): Fraction(t.instrument.tick_size) / Fraction(A.tick_size) for t in both}
    bid = max(t.bid[0] * to_a[id(t)] for t in both)  # type: ignore[index]
    ask = min(t.ask[0] * to_a[id(t)] for t in both)  # type: ignore[index]
    assert min(bid, ask) <= fv.exact <= max(bid, ask)
    assert fv.half_ticks == round(fv.exact * 2)
    assert abs(Fraction(fv.half_ticks, 2) - fv.exact) <= Fraction(1, 4)
    assert fv.venues == tuple(t.venue for t in both)


def test_the_strategy_context_gives_the_others_best_with_our_orders_taken_out() -> None:
    from lobterm.assemble import build_sim_kernel
    from lobterm.engine.events import BUY, SELL

    calm = {"taker_per_s": 0, "vol_bps": 0, "jump_per_min": 0, "burst_per_min": 0, "churn_per_s": 0}
    kernel, sim = build_sim_kernel(
        config.load(None, use_defaults=False, overrides={"sim": calm}), virtual=True
    )
    sim.open()
    for _ in range(5):
        sim.step()
    m = kernel.default_market
    ctx = kernel.strategy_context("probe", markets=(m.key,))
    bid, ask = m.l2.best_bid(), m.l2.best_ask()
    assert ctx.others_best(*m.key, BUY) == bid and ctx.others_best(*m.key, SELL) == ask
    # We join the best bid with 3 lots: the venue's book holds theirs and ours there, the others' best is
    # what it was.
    kernel.place(m, BUY, bid[0], 3)
    sim.step()
    assert m.unified.our_size(BUY, bid[0]) == 3
    assert m.unified.own_in_venue_book  # the sim's book holds our orders
    assert m.l2.best_bid() == (bid[0], bid[1] + 3)
    assert ctx.others_best(*m.key, BUY) == bid

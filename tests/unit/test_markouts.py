"""The markout engine on hand-built fills and books: known answers, signs, horizons, no mid, fuzz."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lobterm.engine.events import BUY, LIMIT, OUR_OWNER, SELL, Accepted, Done, Fill, Trade
from lobterm.engine.instrument import Instrument
from lobterm.trading.markouts import MarkoutConfig, MarkoutEngine, MarkoutError

S = 1_000_000_000
INST = Instrument("BTC/USDT", tick_size=Decimal("0.1"), lot_size=Decimal("0.001"), min_lots=1, venue="sim")


def engine(**kw: object) -> MarkoutEngine:
    return MarkoutEngine(MarkoutConfig(**kw))  # type: ignore[arg-type]


def book(e: MarkoutEngine, ts: int, bid: int, ask: int, bsz: int = 5, asz: int = 5) -> None:
    e.on_book("sim", "X", ts, bid, bsz, ask, asz)


def fill(
    e: MarkoutEngine, ts: int, side: int, price: int, size: int, source: str = "mm", fee: int = 0
) -> None:
    e.on_fill(Fill(ts, "sim", "X", 7, side, price, size, 0, True, fee, 1, OUR_OWNER), source)


def test_a_buy_marks_out_positive_when_the_mid_rises_and_counts_the_spread_it_captured() -> None:
    e = engine(horizons_s=(1.0,), adverse_horizon_s=1.0, baseline=False)
    book(e, 0, 99, 101)  # mid 100
    fill(e, 1, BUY, 99, 2)  # bought 1 tick under the mid
    book(e, 2 * S, 103, 105)  # mid 104 after the horizon: settled at mid 100 (in effect at 1 s)
    b = e.curve()[0]
    assert (b.fills, b.lots, b.markout2, b.move2) == (1, 2, 2 * (200 - 198), 0)
    book(e, 3 * S, 103, 105)
    assert e.spread2 == 2 * 2  # one tick on two lots, in half ticks


def test_the_horizon_takes_the_mid_in_effect_at_fill_time_plus_h_not_the_next_one() -> None:
    e = engine(horizons_s=(1.0, 5.0), adverse_horizon_s=1.0, baseline=False)
    book(e, 0, 99, 101)
    fill(e, 1, BUY, 100, 1)
    book(e, S // 2, 101, 103)  # mid 102 at 0.5 s: in effect at 1 s
    book(e, S, 103, 105)  # mid 104 exactly at 1 s: stamped <= t+h, counts
    book(e, 2 * S, 90, 92)  # mid 91 at 2 s settles the 1 s horizon at mid 104
    one, five = e.curve()
    assert Fraction(one.markout2, 2) == 4  # +4 ticks on a buy at 100
    assert five.fills == 0  # not due yet
    book(e, 6 * S, 80, 82)  # settles 5 s at mid 91
    assert Fraction(e.curve()[1].markout2, 2) == -9


def test_the_spread_captured_is_against_the_mid_before_the_instant_of_the_fill() -> None:
    e = engine(horizons_s=(1.0,), adverse_horizon_s=1.0, baseline=False)
    book(e, 0, 99, 101)  # mid 100
    book(e, 5, 97, 101)  # the sweep that fills us, published before our fill at the same instant
    fill(e, 5, BUY, 99, 1)
    assert e.spread2 == 2 * 1  # one tick under the mid before the instant (100), not under 99
    fill(e, 6, BUY, 99, 1)  # a later instant: the mid now is 99
    assert e.spread2 == 2 * 1 + 0


def test_a_sell_marks_out_positive_when_the_mid_falls() -> None:
    e = engine(horizons_s=(1.0,), adverse_horizon_s=1.0, baseline=False)
    book(e, 0, 99, 101)
    fill(e, 1, SELL, 101, 3)
    book(e, S // 2, 95, 97)  # mid 96
    e.advance(2 * S)
    b = e.curve()[0]
    assert Fraction(b.markout2, 2 * b.lots) == 5  # sold at 101, mid 96: +5 ticks a lot
    assert Fraction(b.move2, 2 * b.lots) == 4  # the mid fell 4 from 100
    assert e.buckets[("side", "sell")][0].lots == 3


def test_a_fill_with_no_mid_is_counted_and_never_marked() -> None:
    e = engine(baseline=False)
    e.on_book("sim", "X", 0, 99, 5, None, 0)  # one-sided book
    fill(e, 1, BUY, 99, 1)
    book(e, 100 * S, 99, 101)
    assert (e.fills, e.no_mid, e.curve()[0].fills, e.pending_count) == (1, 1, 0, 0)


def test_a_fill_with_no_book_update_after_it_stays_pending_until_the_timer() -> None:
    e = engine(horizons_s=(1.0, 5.0), adverse_horizon_s=1.0, baseline=False)
    book(e, 0, 99, 101)
    fill(e, 1, BUY, 100, 1)
    assert e.pending_count == 1 and e.curve()[0].fills == 0
    e.advance(S + 1)  # not after the horizon (fill at 1 ns + 1 s): nothing yet
    assert e.curve()[0].fills == 0
    e.advance(S + 2)
    assert e.curve()[0].fills == 1 and e.curve()[1].fills == 0 and e.pending_count == 1
    e.advance(10 * S)
    assert e.pending_count == 0 and e.curve()[1].fills == 1


def test_microprice_leans_toward_the_thin_side() -> None:
    e = engine(horizons_s=(1.0,), adverse_horizon_s=1.0, baseline=False)
    book(e, 0, 99, 101)
    fill(e, 1, BUY, 100, 1)
    book(e, S // 2, 99, 101, bsz=9, asz=1)  # microprice (99*1 + 101*9) / 10 = 100.8
    e.advance(2 * S)
    b = e.curve()[0]
    assert b.markout2 == 0  # the mid did not move
    assert Fraction(b.micro, 1_000_000) == Fraction(8, 10)


def test_groups_by_source_side_and_level() -> None:
    e = engine(horizons_s=(1.0,), adverse_horizon_s=1.0, baseline=False)
    book(e, 0, 98, 102)  # mid 100
    fill(e, 1, BUY, 99, 1, "mm")
    fill(e, 1, SELL, 103, 1, "hedge")
    e.advance(2 * S)
    assert e.buckets[("source", "mm")][0].fills == 1
    assert e.buckets[("source", "hedge")][0].fills == 1
    assert e.buckets[("level", "1")][0].fills == 1 and e.buckets[("level", "3")][0].fills == 1


def test_sources_beyond_the_cap_are_counted_as_other() -> None:
    e = engine(horizons_s=(1.0,), adverse_horizon_s=1.0, baseline=False, max_sources=2)
    book(e, 0, 99, 101)
    for src in ("a", "b", "c", "d"):
        fill(e, 1, BUY, 100, 1, src)
    e.advance(2 * S)
    assert {v for g, v in e.buckets if g == "source"} == {"a", "b", "other"}


def test_worst_decile_share_of_markout_loss() -> None:
    e = engine(horizons_s=(1.0,), adverse_horizon_s=1.0, baseline=False)
    book(e, 0, 99, 101)
    for _ in range(9):
        fill(e, 1, BUY, 101, 1)  # each loses 1 tick at an unchanged mid
    fill(e, 1, BUY, 111, 1)  # loses 11 ticks
    e.advance(2 * S)
    assert e.worst_decile_share() == Fraction(11, 20)


def test_toxic_fills_are_those_worse_than_the_threshold_at_the_first_horizon() -> None:
    e = engine(horizons_s=(1.0, 5.0), adverse_horizon_s=1.0, baseline=False, toxic_bps=-50.0)
    book(e, 0, 99, 101)
    fill(e, 1, BUY, 100, 1)  # -1 tick on 100: -100 bps: toxic
    fill(e, 1, BUY, 100, 1)
    book(e, S // 2, 98, 100)
    book(e, 2 * S, 98, 100)
    assert e.toxic == 2 and e.recent_toxic[0].bps == Decimal("-100.00")
    assert e.recent_toxic[0].trade_id in e.toxic_trade_ids


def test_the_market_trades_baseline_takes_the_makers_side() -> None:
    e = engine(horizons_s=(1.0,), adverse_horizon_s=1.0)
    book(e, 0, 99, 101)
    e.on_trade(Trade(1, "sim", "X", 101, 2, BUY, 1))  # the maker sold at 101
    book(e, S // 2, 103, 105)  # mid 104: the maker lost 3 ticks a lot
    e.advance(2 * S)
    b = e.buckets[("baseline", "market")][0]
    assert Fraction(b.markout2, 2 * b.lots) == -3
    assert e.curve()[0].fills == 0  # the baseline is not ours


def test_the_pnl_split_adds_up_to_net() -> None:
    e = engine(horizons_s=(1.0,), adverse_horizon_s=1.0, baseline=False)
    book(e, 0, 99, 101)
    fill(e, 1, BUY, 99, 1000, fee=99 * 1000 * 100)  # 1 bp... fee units are millionths of tick*lot
    book(e, S // 2, 100, 102)
    e.advance(2 * S)
    net = Decimal("7.5")
    split = e.split(INST, net)
    assert split.spread_captured == Decimal("0.1")  # 1 tick (0.1) x 1000 lots (1 BTC)
    assert split.adverse_selection == Decimal("0.1")  # the mid rose 1 tick
    assert split.spread_captured + split.adverse_selection - split.fees + split.inventory == net


def test_fill_ratio_by_level_and_quote_uptime() -> None:
    e = engine(horizons_s=(1.0,), adverse_horizon_s=1.0, baseline=False)
    book(e, 0, 99, 101)
    e.on_accepted(Accepted(0, "sim", "X", 1, BUY, 99, 4, LIMIT, OUR_OWNER))
    e.on_accepted(Accepted(0, "sim", "X", 2, SELL, 101, 4, LIMIT, OUR_OWNER))
    e.on_fill(Fill(S, "sim", "X", 1, BUY, 99, 1, 3, True, 0, 1, OUR_OWNER), "mm")
    e.on_done(Done(5 * S, "sim", "X", 2, 0, "cancelled", OUR_OWNER))
    book(e, 10 * S, 99, 101)
    s = e.summary()
    assert s["fill_ratio_by_level"] == {"1": "0.1250"}
    assert s["quote_uptime"] == "0.5000"


def test_summary_is_exact_strings_and_json_able() -> None:
    import json

    e = engine()
    book(e, 0, 99, 101)
    fill(e, 1, BUY, 100, 3)
    e.advance(100 * S)
    s = e.summary(INST, Decimal("0"))
    json.dumps(s)
    assert s["curve"][0]["ticks"] == "0.0000" and s["pnl_split"]["net"] == "0"  # type: ignore[index]


@pytest.mark.parametrize(
    "kw",
    [
        {"horizons_s": ()},
        {"horizons_s": (5.0, 1.0)},
        {"horizons_s": (1.0, 1.0)},
        {"horizons_s": (-1.0,)},
        {"adverse_horizon_s": 7.0},
        {"toxic_bps": float("nan")},
        {"max_sources": 0},
    ],
)
def test_bad_settings_are_refused_naming_the_key(kw: dict) -> None:
    with pytest.raises(MarkoutError, match="markouts."):
        MarkoutConfig(**kw)


_events = st.lists(
    st.one_of(
        st.tuples(
            st.just("book"),
            st.integers(0, 3 * S),
            st.integers(1, 200),
            st.integers(0, 5),
            st.integers(0, 9),
            st.integers(0, 9),
        ),
        st.tuples(
            st.just("fill"),
            st.integers(0, 3 * S),
            st.sampled_from([BUY, SELL]),
            st.integers(-5, 300),
            st.integers(-2, 50),
            st.text(max_size=3),
        ),
        st.tuples(
            st.just("trade"),
            st.integers(0, 3 * S),
            st.sampled_from([BUY, SELL]),
            st.integers(-5, 300),
            st.integers(-2, 50),
            st.just(""),
        ),
        st.tuples(st.just("tick"), st.integers(0, 3 * S), st.just(0), st.just(0), st.just(0), st.just("")),
    ),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(_events)
def test_fuzz_any_event_sequence_keeps_the_sums_consistent(events: list) -> None:
    e = engine(horizons_s=(0.5, 1.0), adverse_horizon_s=1.0)
    ts = 0
    for kind, dt, a, b, c, d in sorted(events, key=lambda x: x[1]):
        ts = dt
        if kind == "book":
            e.on_book("sim", "X", ts, a if c else None, c, a + b, d)
        elif kind == "fill":
            fill(e, ts, a, b, c, d)
        elif kind == "trade":
            e.on_trade(Trade(ts, "sim", "X", b, c, a, 1))
        else:
            e.advance(ts)
    e.advance(ts + 10 * S)
    assert e.pending_count == 0
    one, two = e.curve()
    assert one.fills <= e.fills - e.no_mid and two.fills <= e.fills - e.no_mid
    share = e.worst_decile_share()
    assert share is None or 0 < share <= 1
    e.summary(INST, Decimal(0))

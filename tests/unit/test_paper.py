"""Paper fills against a scripted external book: queue position, trades, cancels, crossing, latency.

Every test drives a real Bus, a real VirtualClock and the desk's real L2Book with hand-built
BookSnapshot / BookDelta / Trade events, and reads our lifecycle events off the bus.
"""

from __future__ import annotations

import pytest

from lobterm.engine.events import (
    BUY,
    CANCELED,
    EXPIRED,
    FILLED,
    FOK,
    IOC,
    KILLED,
    MARKET,
    OUR_OWNER,
    POST_ONLY,
    POST_ONLY_WOULD_TRADE,
    REJECTED,
    SELL,
    STP,
    STP_CANCEL_INCOMING,
    STP_NONE,
    Accepted,
    Amended,
    Cancelled,
    Done,
    Fill,
    Rejected,
    Trade,
)
from lobterm.trading.paper import CONSERVATIVE, PROBABILISTIC, PaperConfig, PaperConfigError
from lobterm.venues.base import Venue
from tests.helpers.paper import INST, MS, SYMBOL, VENUE, Tape


# ---- the venue face ---------------------------------------------------------------------------
def test_desk_is_a_paper_venue_whose_orders_are_not_in_the_external_book() -> None:
    tape = Tape()
    assert isinstance(tape.desk, Venue)
    assert tape.desk.mode == "PAPER" and tape.desk.own_in_book is False
    assert tape.desk.instruments == {SYMBOL: INST}


def test_events_carry_the_external_venue_and_symbol_and_our_owner() -> None:
    tape = Tape()
    tape.buy(1, 1000, 5)
    tape.sell(2, 1001, 5)
    tape.desk.cancel(2, SYMBOL)
    assert tape.events
    assert all((e.venue, e.symbol, e.owner) == (VENUE, SYMBOL, OUR_OWNER) for e in tape.events)
    assert [type(e) for e in tape.events] == [Accepted, Accepted, Cancelled, Done]


# ---- joining the queue and trades at our price -----------------------------------------------
def test_resting_bid_joins_behind_the_size_at_its_price() -> None:
    tape = Tape()
    tape.buy(1, 1000, 5)
    assert tape.desk.queue_ahead(1) == 10
    assert tape.fills() == []


def test_trade_at_our_price_reduces_queue_ahead_before_filling_us() -> None:
    tape = Tape()
    tape.buy(1, 1000, 5)
    tape.trade(1000, 4, SELL)
    assert tape.desk.queue_ahead(1) == 6
    assert tape.fills() == []


def test_trade_bigger_than_the_queue_ahead_fills_us_with_the_rest() -> None:
    tape = Tape()
    tape.buy(1, 1000, 5)
    tape.trade(1000, 4, SELL)
    tape.trade(1000, 8, SELL)
    assert tape.desk.queue_ahead(1) == 0
    (fill,) = tape.of(Fill, 1)
    assert (fill.price, fill.size, fill.leaves, fill.is_maker) == (1000, 2, 3, True)


def test_partial_fills_are_sized_by_the_trades_until_done() -> None:
    tape = Tape(bids=((1000, 0),), asks=((1001, 10),))
    tape.buy(1, 1000, 5)
    assert tape.desk.queue_ahead(1) == 0
    for size in (1, 1, 7):
        tape.trade(1000, size, SELL)
    assert tape.fills(1) == [(1000, 1), (1000, 1), (1000, 3)]
    assert [f.leaves for f in tape.of(Fill, 1)] == [4, 3, 0]
    (done,) = tape.of(Done, 1)
    assert (done.filled, done.reason) == (5, FILLED)
    assert tape.desk.queue_ahead(1) is None


def test_buy_trades_at_our_bid_price_do_not_fill_our_bid() -> None:
    tape = Tape()
    tape.buy(1, 1000, 5)
    tape.trade(1000, 50, BUY)
    tape.trade(1001, 50, BUY)
    assert tape.fills() == [] and tape.desk.queue_ahead(1) == 10


def test_our_earlier_order_is_ahead_of_our_later_one_at_the_same_price() -> None:
    tape = Tape()
    tape.buy(1, 1000, 3)
    tape.buy(2, 1000, 4)
    assert (tape.desk.queue_ahead(1), tape.desk.queue_ahead(2)) == (10, 13)
    tape.trade(1000, 14, SELL)  # 10 ahead, our 3, then 1 of the second
    assert tape.fills(1) == [(1000, 3)]
    assert tape.fills(2) == [(1000, 1)]
    assert tape.desk.queue_ahead(2) == 0


def test_ask_queue_mirrors_the_bid_queue() -> None:
    tape = Tape()
    tape.sell(1, 1001, 5)
    assert tape.desk.queue_ahead(1) == 10
    tape.trade(1001, 12, BUY)
    assert tape.fills(1) == [(1001, 2)]


# ---- trades through our price and the book crossing it --------------------------------------
def test_trade_through_our_bid_fills_us_at_our_price_up_to_the_trade_size() -> None:
    tape = Tape()
    tape.buy(1, 1000, 5)
    tape.trade(999, 3, SELL)  # a seller went below our bid: he would have met us first
    (fill,) = tape.of(Fill, 1)
    assert (fill.price, fill.size, fill.is_maker) == (1000, 3, True)
    assert tape.desk.queue_ahead(1) == 0
    tape.trade(998, 10, SELL)
    assert tape.fills(1) == [(1000, 3), (1000, 2)]


def test_trade_through_fills_our_better_priced_orders_first() -> None:
    tape = Tape()
    tape.buy(1, 999, 5)
    tape.buy(2, 1000, 5)
    tape.trade(998, 7, SELL)
    assert tape.fills(2) == [(1000, 5)]
    assert tape.fills(1) == [(999, 2)]


def test_external_ask_crossing_our_bid_fills_us_at_our_price_as_maker() -> None:
    tape = Tape(bids=((999, 20),), asks=((1002, 10),))
    tape.buy(1, 1001, 5)  # improves the bid: alone at 1001
    tape.delta(SELL, 1000, 3)  # a seller shows 1000: below our bid
    (fill,) = tape.of(Fill, 1)
    assert (fill.price, fill.size, fill.leaves, fill.is_maker) == (1001, 3, 2, True)


def test_crossing_lots_are_taken_once_and_new_crossing_size_fills_the_rest() -> None:
    tape = Tape(bids=((999, 20),), asks=((1002, 10),))
    tape.buy(1, 1001, 5)
    tape.delta(SELL, 1001, 3)
    tape.delta(BUY, 999, 25)  # unrelated updates: the 3 we took are not offered again
    tape.delta(SELL, 1002, 11)
    assert tape.fills(1) == [(1001, 3)]
    tape.delta(SELL, 1001, 4)  # one more lot shows at 1001
    assert tape.fills(1) == [(1001, 3), (1001, 1)]


# ---- level decreases that trades do not explain (cancels) -----------------------------------
def test_decrease_explained_by_trades_does_not_move_us_twice() -> None:
    for model in (CONSERVATIVE, PROBABILISTIC):
        tape = Tape(PaperConfig(cancel_model=model))
        tape.buy(1, 1000, 5)
        tape.trade(1000, 4, SELL)
        tape.delta(BUY, 1000, 6)
        assert tape.desk.queue_ahead(1) == 6, model


def test_size_added_to_our_level_joins_behind_us() -> None:
    tape = Tape()
    tape.buy(1, 1000, 5)
    tape.delta(BUY, 1000, 40)
    assert tape.desk.queue_ahead(1) == 10


def test_conservative_cancels_move_us_only_when_the_level_falls_below_us() -> None:
    tape = Tape(PaperConfig(cancel_model=CONSERVATIVE))
    tape.buy(1, 1000, 5)
    tape.delta(BUY, 1000, 20)  # 10 join behind us
    tape.delta(BUY, 1000, 12)  # 8 cancelled: assumed behind us
    assert tape.desk.queue_ahead(1) == 10
    tape.delta(BUY, 1000, 7)  # the level is now smaller than what we thought was ahead
    assert tape.desk.queue_ahead(1) == 7


def test_probabilistic_cancels_remove_the_expected_share_ahead_of_us() -> None:
    tape = Tape(PaperConfig(cancel_model=PROBABILISTIC))
    tape.buy(1, 1000, 5)
    tape.delta(BUY, 1000, 20)  # 10 ahead, 10 behind
    tape.delta(BUY, 1000, 10)  # 10 cancelled, half of them (expected) ahead of us
    assert tape.desk.queue_ahead(1) == 5
    tape.delta(BUY, 1000, 8)  # 2 more: 2 * 5/10 = 1 ahead
    assert tape.desk.queue_ahead(1) == 4


def test_probabilistic_model_gives_the_same_fills_on_every_replay() -> None:
    def run() -> list:
        tape = Tape(PaperConfig(cancel_model=PROBABILISTIC))
        tape.buy(1, 1000, 50)
        for i in range(40):
            tape.delta(BUY, 1000, 10 + (i * 7) % 13)
            tape.trade(1000, 1 + i % 3, SELL)
        return [(f.ts, f.size, f.leaves) for f in tape.of(Fill)]

    first = run()
    assert first and first == run()


def test_level_removed_puts_us_at_the_front() -> None:
    tape = Tape()
    tape.buy(1, 1000, 5)
    tape.delta(BUY, 1000, 0)
    assert tape.desk.queue_ahead(1) == 0
    tape.trade(1000, 2, SELL)
    assert tape.fills(1) == [(1000, 2)]


def test_snapshot_resync_caps_queue_ahead_at_the_new_level() -> None:
    tape = Tape()
    tape.buy(1, 1000, 5)
    tape.snapshot(((1000, 4), (999, 20)), ((1001, 10),))
    assert tape.desk.queue_ahead(1) == 4


def test_deltas_after_a_gap_are_ignored_until_the_next_snapshot() -> None:
    tape = Tape()
    tape.buy(1, 1000, 5)
    tape.seq += 1  # one delta lost
    tape.delta(BUY, 1000, 2)
    assert tape.desk.queue_ahead(1) == 10 and not tape.desk.book(SYMBOL).valid
    tape.buy(2, 999, 1)
    assert tape.of(Rejected, 2) and tape.of(Done, 2)[0].reason == REJECTED


# ---- latency ----------------------------------------------------------------------------------
def test_new_order_is_not_live_until_its_latency_has_passed() -> None:
    tape = Tape(PaperConfig(new_latency_ns=5 * MS))
    sent = tape.clock.now()
    tape.buy(1, 1000, 5)
    assert tape.events == [] and tape.desk.in_flight == 1 and tape.desk.queue_ahead(1) is None
    tape.trade(1000, 4, SELL)  # +1 ms: we are not there yet
    tape.delta(BUY, 1000, 6)  # +2 ms
    assert tape.events == []
    tape.delta(BUY, 1000, 30, dt=3 * MS)  # +5 ms: arrives first, joins behind the 6, then 24 join behind
    (acc,) = tape.of(Accepted, 1)
    assert acc.ts == sent + 5 * MS
    assert tape.desk.queue_ahead(1) == 6 and tape.desk.in_flight == 0


def test_order_fills_while_its_cancel_is_in_flight() -> None:
    tape = Tape(PaperConfig(cancel_latency_ns=5 * MS), bids=((999, 20),))
    tape.buy(1, 1000, 5)
    tape.desk.cancel(1, SYMBOL)
    tape.trade(1000, 2, SELL)  # +1 ms: the cancel has not arrived
    assert tape.fills(1) == [(1000, 2)]
    tape.desk.on_time(tape.clock.now() + 4 * MS)
    (cxl,) = tape.of(Cancelled, 1)
    assert (cxl.size, cxl.reason) == (3, CANCELED)
    assert tape.of(Done, 1)[0].filled == 2


def test_cancel_arriving_after_the_order_filled_is_rejected() -> None:
    tape = Tape(PaperConfig(cancel_latency_ns=5 * MS), bids=((999, 20),))
    tape.buy(1, 1000, 5)
    tape.desk.cancel(1, SYMBOL)
    tape.trade(1000, 9, SELL)
    tape.delta(BUY, 999, 21, dt=10 * MS)
    (rej,) = tape.of(Rejected, 1)
    assert "no longer working" in rej.reason
    assert [d.reason for d in tape.of(Done, 1)] == [FILLED]


def test_on_time_applies_due_requests_when_market_data_is_quiet() -> None:
    tape = Tape(PaperConfig(new_latency_ns=5 * MS))
    now = tape.clock.now()
    tape.buy(1, 1000, 5)
    assert tape.desk.on_time(now + 4 * MS) == 0
    assert tape.desk.on_time(now + 5 * MS) == 1
    assert tape.of(Accepted, 1) and tape.desk.queue_ahead(1) == 10


def test_requests_arrive_in_the_order_they_were_sent() -> None:
    tape = Tape(PaperConfig(new_latency_ns=10 * MS, cancel_latency_ns=0))
    now = tape.clock.now()
    tape.buy(1, 1000, 5)
    tape.desk.cancel(1, SYMBOL)  # faster link for cancels, but it cannot overtake the order
    assert tape.events == []
    tape.desk.on_time(now + 10 * MS)
    assert [type(e) for e in tape.events] == [Accepted, Cancelled, Done]


# ---- marketable orders ------------------------------------------------------------------------
def test_marketable_limit_walks_the_levels_and_rests_the_remainder() -> None:
    tape = Tape(PaperConfig(taker_fee_ppm=400), asks=((1001, 3), (1002, 4), (1003, 10)))
    tape.buy(1, 1002, 10)
    fills = tape.of(Fill, 1)
    assert [(f.price, f.size, f.leaves, f.is_maker) for f in fills] == [
        (1001, 3, 7, False),
        (1002, 4, 3, False),
    ]
    assert [f.fee for f in fills] == [1001 * 3 * 400, 1002 * 4 * 400]
    assert tape.desk.order(1).leaves == 3 and tape.desk.queue_ahead(1) == 0


def test_lots_we_took_are_not_offered_to_our_next_order() -> None:
    tape = Tape(asks=((1001, 3), (1002, 20)))
    tape.buy(1, 1001, 2, IOC)
    tape.buy(2, 1001, 2, IOC)
    assert tape.fills(1) == [(1001, 2)]
    assert tape.fills(2) == [(1001, 1)]


def test_market_order_remainder_expires() -> None:
    tape = Tape(asks=((1001, 3), (1002, 4)))
    tape.buy(1, 0, 10, MARKET)
    assert tape.fills(1) == [(1001, 3), (1002, 4)]
    assert tape.of(Accepted, 1)[0].price == 0
    (cxl,) = tape.of(Cancelled, 1)
    assert (cxl.size, cxl.reason) == (3, EXPIRED)
    assert tape.of(Done, 1)[0].filled == 7


def test_ioc_remainder_expires_and_never_rests() -> None:
    tape = Tape()
    tape.sell(1, 1000, 15, IOC)
    assert tape.fills(1) == [(1000, 10)]
    assert tape.of(Cancelled, 1)[0].reason == EXPIRED
    assert tape.desk.order(1) is None


def test_fok_that_cannot_fill_completely_is_killed_before_any_fill() -> None:
    tape = Tape()
    tape.buy(1, 1001, 11, FOK)
    assert tape.fills(1) == []
    assert tape.of(Cancelled, 1)[0].reason == KILLED and tape.of(Done, 1)[0].reason == KILLED


def test_fok_that_can_fill_fills_completely() -> None:
    tape = Tape()
    tape.buy(1, 1002, 25, FOK)
    assert tape.fills(1) == [(1001, 10), (1002, 15)]
    assert tape.of(Done, 1)[0].reason == FILLED


def test_post_only_that_would_cross_is_rejected() -> None:
    tape = Tape()
    tape.buy(1, 1001, 5, POST_ONLY)
    assert tape.of(Rejected, 1)[0].reason == POST_ONLY_WOULD_TRADE
    assert tape.of(Done, 1)[0].reason == REJECTED and tape.fills() == []


def test_post_only_that_does_not_cross_rests() -> None:
    tape = Tape()
    tape.buy(1, 1000, 5, POST_ONLY)
    assert tape.desk.queue_ahead(1) == 10 and not tape.of(Rejected)


# ---- fees -------------------------------------------------------------------------------------
def test_fees_are_price_times_size_times_the_maker_or_taker_rate() -> None:
    tape = Tape(PaperConfig(maker_fee_ppm=-25, taker_fee_ppm=500))
    tape.buy(1, 1001, 2, IOC)  # taker
    tape.buy(2, 1000, 3)
    tape.trade(999, 3, SELL)  # maker, through
    (taker,) = tape.of(Fill, 1)
    (maker,) = tape.of(Fill, 2)
    assert taker.fee == 1001 * 2 * 500
    assert maker.fee == 1000 * 3 * -25  # a rebate


# ---- amend and self-trade prevention ---------------------------------------------------------
def test_amend_down_in_size_keeps_its_place() -> None:
    tape = Tape()
    tape.buy(1, 1000, 5)
    tape.trade(1000, 4, SELL)
    tape.desk.amend(1, SYMBOL, size=2)
    (amd,) = tape.of(Amended, 1)
    assert (amd.size, amd.kept_priority) == (2, True) and tape.desk.queue_ahead(1) == 6


def test_amend_to_a_new_price_goes_to_the_back_of_that_level() -> None:
    tape = Tape()
    tape.buy(1, 1000, 5)
    tape.desk.amend(1, SYMBOL, price=999)
    (amd,) = tape.of(Amended, 1)
    assert (amd.price, amd.kept_priority) == (999, False) and tape.desk.queue_ahead(1) == 20


def test_amend_that_crosses_trades_as_taker_and_rests_the_rest() -> None:
    tape = Tape()
    tape.buy(1, 1000, 15)
    tape.desk.amend(1, SYMBOL, price=1001)
    assert tape.fills(1) == [(1001, 10)]
    assert not tape.of(Fill, 1)[0].is_maker
    assert tape.desk.order(1).leaves == 5


def test_post_only_amend_that_would_cross_is_rejected_and_the_order_lives_on() -> None:
    tape = Tape()
    tape.buy(1, 1000, 5, POST_ONLY)
    tape.desk.amend(1, SYMBOL, price=1001)
    assert tape.of(Rejected, 1)[0].reason == POST_ONLY_WOULD_TRADE
    assert tape.desk.order(1).price == 1000 and tape.desk.queue_ahead(1) == 10 and not tape.of(Done, 1)


def test_self_trade_prevention_cancels_our_resting_order_by_default() -> None:
    tape = Tape(bids=((998, 5),), asks=((1003, 5),))
    tape.buy(1, 1000, 5)
    tape.sell(2, 1000, 5)  # would meet our own bid
    assert tape.of(Cancelled, 1)[0].reason == STP
    assert tape.desk.order(2) is not None and tape.fills() == []


def test_self_trade_prevention_can_cancel_the_incoming_order() -> None:
    tape = Tape(bids=((998, 5),), asks=((1003, 5),))
    tape.buy(1, 1000, 5)
    tape.sell(2, 999, 5, stp=STP_CANCEL_INCOMING)
    assert tape.of(Cancelled, 2)[0].reason == STP and tape.desk.order(1) is not None


def test_without_self_trade_prevention_our_orders_ignore_each_other() -> None:
    tape = Tape(bids=((998, 5),), asks=((1003, 5),))
    tape.buy(1, 1000, 5)
    tape.sell(2, 1000, 5, stp=STP_NONE)
    assert tape.desk.order(1) and tape.desk.order(2) and tape.fills() == []


# ---- bad input --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "price, size, why",
    [
        (1000, 0, "size"),
        (1000, -3, "size"),
        (1000, 2.0, "size"),
        (1000.5, 5, "tick grid"),
        (0, 5, "tick grid"),
        (-1000, 5, "tick grid"),
        (10**16, 5, "tick grid"),
    ],
)
def test_bad_new_order_is_rejected_and_changes_nothing(price, size, why) -> None:
    tape = Tape()
    tape.buy(1, 1000, 5)
    tape.events.clear()
    tape.buy(2, price, size)
    (rej,) = tape.of(Rejected, 2)
    assert why in rej.reason
    assert tape.of(Done, 2)[0].reason == REJECTED
    assert [o.order_id for o in tape.desk.orders()] == [1] and tape.desk.queue_ahead(1) == 10
    assert tape.desk.rejects == 1


def test_duplicate_order_id_is_rejected_even_while_the_first_is_in_flight() -> None:
    tape = Tape(PaperConfig(new_latency_ns=5 * MS))
    tape.buy(1, 1000, 5)
    tape.buy(1, 999, 5)
    (rej,) = tape.of(Rejected, 1)
    assert "duplicate order id 1" in rej.reason
    tape.desk.on_time(tape.clock.now() + 5 * MS)
    assert tape.desk.order(1).price == 1000


def test_cancel_or_amend_of_an_unknown_order_is_rejected_without_done() -> None:
    tape = Tape()
    tape.desk.cancel(7, SYMBOL)
    tape.desk.amend(8, SYMBOL, size=3)
    assert [r.order_id for r in tape.of(Rejected)] == [7, 8]
    assert all("unknown order id" in r.reason for r in tape.of(Rejected))
    assert not tape.of(Done)


def test_bad_amend_leaves_the_order_as_it_was() -> None:
    tape = Tape()
    tape.buy(1, 1000, 5)
    tape.desk.amend(1, SYMBOL, size=0)
    tape.desk.amend(1, SYMBOL, price=99.5)
    assert len(tape.of(Rejected, 1)) == 2 and not tape.of(Amended)
    o = tape.desk.order(1)
    assert (o.price, o.leaves) == (1000, 5) and tape.desk.queue_ahead(1) == 10


def test_order_for_a_symbol_the_venue_does_not_list_is_rejected() -> None:
    tape = Tape()
    tape.desk.submit(1, "ETH/USDT", BUY, 1000, 5)
    assert "does not list" in tape.of(Rejected, 1)[0].reason and tape.of(Done, 1)


def test_new_order_before_the_first_snapshot_is_rejected() -> None:
    tape = Tape(snapshot=False)
    tape.buy(1, 1000, 5)
    assert "no synced" in tape.of(Rejected, 1)[0].reason


def test_bad_configuration_names_the_setting() -> None:
    with pytest.raises(PaperConfigError, match="cancel_model"):
        PaperConfig(cancel_model="optimistic")
    with pytest.raises(PaperConfigError, match="new_latency_ns"):
        PaperConfig(new_latency_ns=-1)
    with pytest.raises(PaperConfigError, match="taker_fee_ppm"):
        PaperConfig(taker_fee_ppm=0.5)


def test_market_data_of_other_venues_is_ignored() -> None:
    tape = Tape()
    tape.buy(1, 1000, 5)
    tape.bus.publish(Trade(tape.clock.now(), "other", SYMBOL, 999, 50, SELL, 1))
    assert tape.fills() == [] and tape.desk.queue_ahead(1) == 10

"""Every converter of a ccxt venue's data refuses garbage without raising, and what it publishes is what
the engine accepts (issue 11).

The real `CcxtVenue` parts (its `MarketStreams` and `OrderDesk`, a real ccxt.pro.binance object that
never connects), a real bus and a real L2 book fed from it, and hypothesis feeding frames and reports
that are mostly sane with garbage mixed in: missing keys, None, NaN, infinities, strings, negatives,
huge numbers, prices off the grid, a price listed twice. The rules checked after every input:
- books: nothing raises; while the adapter calls the book synced, the L2 book is valid and equals the
  venue's book level for level (the two copies never diverge); a frame the adapter refuses is counted
  and leaves the market stale until a new snapshot; the L2 book never refuses what it is given;
- public trades: nothing raises; every published trade is on the grid; the rest are counted;
- our orders and trades: nothing raises; the fills published for an order add up to what the desk
  says it filled, never more than the order; one Done at most, nothing after it; balances stay finite;
- adopting an orphan and reading balances: nothing raises; only sane values come out.
"""

from __future__ import annotations

import math
import random
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from lobterm.bus import Bus
from lobterm.clock import LiveClock
from lobterm.engine.events import (
    BUY,
    LIMIT,
    SELL,
    Accepted,
    BookDelta,
    BookSnapshot,
    Done,
    Fill,
    Trade,
)
from lobterm.engine.instrument import MAX_UNITS, Instrument
from lobterm.engine.l2book import L2Book
from lobterm.venues.ccxt.markets import make_exchange
from lobterm.venues.ccxt.orders import LiveOrder
from lobterm.venues.ccxt.reconcile import balances_from
from lobterm.venues.ccxt.venue import CcxtVenue
from lobterm.venues.settings import venue_from_dict

SYMBOL = "BTC/USDT"
CONFIG = venue_from_dict(
    "binance", {"exchange": "binance", "symbols": [SYMBOL], "api_key": "k-fuzz", "secret": "s-fuzz"}
)
INST = Instrument(
    SYMBOL, tick_size=Decimal("0.01"), lot_size=Decimal("0.00001"), base="BTC", quote="USDT", venue="binance"
)
_EXCHANGE: list[Any] = []  # one ccxt object for every example: building one takes a while

FUZZ = settings(
    max_examples=400,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


class Harness:
    """A keyed ccxt venue with one market, not started (no sockets), publishing to a bus that feeds an L2
    book; `stale` is what the venue last told the kernel about the market."""

    def __init__(self) -> None:
        if not _EXCHANGE:
            _EXCHANGE.append(make_exchange(CONFIG))
        ex = _EXCHANGE[0]
        ex.orderbooks.clear()
        self.venue = v = CcxtVenue(CONFIG, rng=random.Random(7))
        v.instruments[SYMBOL] = INST
        v.exchange = ex
        self.bus = Bus()
        v.attach(self.bus, LiveClock())
        self.stale: dict[str, bool] = {SYMBOL: True}  # no snapshot yet
        v.bind_market_state(lambda venue, symbol, stale: self.stale.__setitem__(symbol, stale))
        v.streams.seq[SYMBOL] = 0  # as start() does, without its tasks
        v.streams.unsynced.add(SYMBOL)
        self.l2 = L2Book("binance", SYMBOL)
        self.events: list[Any] = []
        self.bus.subscribe(BookSnapshot, self.l2.apply_snapshot)
        self.bus.subscribe(BookDelta, self._delta)
        self.bus.subscribe_all(self.events.append)

    def _delta(self, d: BookDelta) -> None:
        gap = self.l2.apply_delta(d)
        assert gap is None, f"the adapter's deltas skipped a sequence number: {gap}"


# ---- values: mostly sane, some garbage ------------------------------------------------------------
GARBAGE = st.one_of(
    st.none(),
    st.sampled_from([math.nan, math.inf, -math.inf, "NaN", "inf", "", "abc", "-1", "1e400", "1e-400", True]),
    st.floats(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.text(max_size=6),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
)
PRICE = st.one_of(
    st.sampled_from([65000.0, 65000.01, 64999.99, 65000.5, 64999.5, 0.01, 1e6]),
    st.sampled_from(["65000.00", "65000.001", -65000.0, 0, 1e300, 2**70]),
    GARBAGE,
)
SIZE = st.one_of(
    st.sampled_from([0.5, 1.0, 0.00001, 2.5, 0.0, 1000.0]),
    st.sampled_from(["0.5", 0.000001, -1.0, 1e300]),
    GARBAGE,
)
LEVEL = st.one_of(
    st.tuples(PRICE, SIZE).map(list),
    st.tuples(PRICE, SIZE, st.integers(0, 5)).map(list),  # some venues add an order count
    st.lists(PRICE, max_size=1),
    GARBAGE,
)
SIDE = st.one_of(st.lists(LEVEL, max_size=6), GARBAGE)
VALID_PRICES = [65000.0, 65000.01, 64999.99, 65000.5, 64999.5, 65001.0, 64990.0, 0.01]
VALID_SIZES = [0.5, 1.0, 0.00001, 2.5, 1000.0, 0.0]
VALID_SIDE = st.lists(
    st.tuples(st.sampled_from(VALID_PRICES), st.sampled_from(VALID_SIZES)).map(list),
    max_size=6,
    unique_by=lambda level: level[0],
)


@st.composite
def book_frames(draw: Any) -> Any:
    """A book as ccxt holds it (float levels, one per price), a third of them corrupted one way."""
    book: Any = {"bids": draw(VALID_SIDE), "asks": draw(VALID_SIDE), "nonce": draw(st.integers(0, 10**6))}
    if draw(st.integers(0, 2)):
        return book
    how = draw(st.sampled_from(["price", "size", "level", "side", "key", "twice", "frame", "any"]))
    side = draw(st.sampled_from(["bids", "asks"]))
    levels = book[side]
    if how in ("price", "size", "level", "twice") and not levels:
        levels.append([65000.0, 1.0])
    k = draw(st.integers(0, max(0, len(levels) - 1)))
    if how == "price":
        levels[k][0] = draw(PRICE)
    elif how == "size":
        levels[k][1] = draw(SIZE)
    elif how == "level":
        levels[k] = draw(LEVEL)
    elif how == "side":
        book[side] = draw(SIDE)
    elif how == "key":
        del book[side]
    elif how == "twice":  # one price twice, maybe spelled another way
        p = levels[k][0]
        levels.append([draw(st.sampled_from([p, f"{p:.2f}", f"{p:.8f}"])), draw(SIZE)])
    elif how == "frame":
        book = draw(GARBAGE)
    else:
        book = draw(st.fixed_dictionaries({}, optional={"bids": SIDE, "asks": SIDE}))
    return book


BOOK = book_frames()


def converted(levels: Any) -> dict[int, int]:
    """The venue's side as ticks -> lots (size-0 levels left out), for a book the adapter accepted."""
    out = {}
    for level in levels:
        # True == 1 == 1.0 in Python: a level equal to the one published is rightly left alone.
        p, s = (int(x) if isinstance(x, bool) else x for x in level[:2])
        n = INST.lots(s, allow_zero=True)
        if n:
            out[INST.ticks(p)] = n
        else:
            out.pop(INST.ticks(p), None)
    return out


@FUZZ
@given(steps=st.lists(st.tuples(st.booleans(), BOOK), min_size=1, max_size=12))
def test_book_frames_never_end_the_stream_and_the_two_copies_of_the_book_never_diverge(steps) -> None:
    h = Harness()
    streams, stats = h.venue.streams, h.venue.stats
    ob: Any = None
    for new_object, content in steps:
        if not new_object and isinstance(ob, dict) and isinstance(content, dict):
            ob.clear()  # ccxt's live book object, changed in place
            ob.update(content)
        else:
            ob = dict(content) if isinstance(content, dict) else content
        refused = stats["malformed_frames"]
        streams.on_book(SYMBOL, ob)  # never raises
        if SYMBOL in streams.unsynced:
            assert h.stale[SYMBOL] is True, "a market whose book was refused must read stale"
        else:
            assert stats["malformed_frames"] == refused
            assert h.stale[SYMBOL] is False and h.l2.valid
            assert h.l2.bids == converted(ob["bids"]) and h.l2.asks == converted(ob["asks"])
            assert h.l2.seq == streams.seq[SYMBOL]
    assert h.bus.errors == 0, list(h.bus.last_errors)  # the L2 book refused nothing it was given
    assert h.l2.rejected == 0 and h.l2.gaps == 0
    event(f"deltas published: {bool(stats['deltas'])}, frames refused: {bool(stats['malformed_frames'])}")


def test_a_snapshot_listing_one_price_twice_is_refused_and_the_book_stays_stale() -> None:
    h = Harness()
    h.venue.streams.on_book(SYMBOL, {"bids": [[65000.0, 1.0]], "asks": [[65001.0, 1.0]]})
    assert h.l2.valid and h.venue.stats["malformed_frames"] == 0
    h.venue.streams.on_book(SYMBOL, {"bids": [[65000.0, 1.0], ["65000.00", 2.0]], "asks": []})
    assert h.venue.stats["malformed_frames"] == 1 and h.stale[SYMBOL] is True
    assert h.venue.stats["gaps"] == 1  # a synced book broke: one gap, published for the kernel to count
    assert h.venue.stats["snapshots"] == 1 and h.bus.errors == 0


def test_a_delta_frame_listing_one_price_twice_is_refused() -> None:
    h = Harness()
    ob = {"bids": [[65000.0, 1.0]], "asks": [[65001.0, 1.0]]}
    h.venue.streams.on_book(SYMBOL, ob)
    ob["bids"] = [[65000.0, 1.0], ["65000.00", 2.0]]  # the same live object: a delta frame
    h.venue.streams.on_book(SYMBOL, ob)
    assert h.venue.stats["malformed_frames"] == 1 and h.stale[SYMBOL] is True
    assert h.l2.bids == {6_500_000: 100_000}  # nothing of the refused frame was published


# ---- public trades --------------------------------------------------------------------------------
TRADE = st.one_of(
    st.fixed_dictionaries(
        {"price": PRICE, "amount": SIZE},
        optional={
            "side": st.one_of(st.sampled_from(["buy", "sell"]), GARBAGE),
            "id": st.one_of(st.integers(0, 10**6).map(str), st.integers(0, 10**6), GARBAGE),
        },
    ),
    GARBAGE,
)


@FUZZ
@given(batches=st.lists(st.one_of(st.lists(TRADE, max_size=8), GARBAGE), min_size=1, max_size=4))
def test_public_trades_publish_only_what_is_on_the_grid_and_count_the_rest(batches) -> None:
    h = Harness()
    for batch in batches:
        h.venue.streams.on_trades(SYMBOL, batch)  # never raises
    trades = [e for e in h.events if type(e) is Trade]
    for t in trades:
        assert 0 < t.price <= MAX_UNITS and 0 < t.size <= MAX_UNITS
        assert t.aggressor in (BUY, SELL) and type(t.trade_id) is int and t.trade_id >= 0
    assert h.venue.stats["trades"] == len(trades) and h.bus.errors == 0


# ---- our orders and our trades ------------------------------------------------------------------
ORDER_SIZE = INST.lots("0.01")


def our_order(h: Harness) -> LiveOrder:
    desk = h.venue.orders
    o = LiveOrder(1, SYMBOL, BUY, INST.ticks("65000"), ORDER_SIZE, LIMIT, f"{desk.prefix}1", placing=False)
    desk.orders[1] = o
    desk.by_cid[o.client_id] = o
    return o


FILL_AMOUNT = st.sampled_from(["0.001", 0.002, "0.004", 0.01])
FEE = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {},
        optional={
            "cost": st.one_of(st.sampled_from(["0.01", 0.5, "-0.01", "1e999999", 1e300]), GARBAGE),
            "currency": st.one_of(st.sampled_from(["USDT", "BTC", "BNB", ""]), GARBAGE),
        },
    ),
    GARBAGE,
)


@st.composite
def corrupted(draw: Any, report: dict) -> Any:
    """`report` as is (two thirds of the time), or with one field replaced by garbage or removed, or
    replaced whole."""
    if draw(st.integers(0, 2)):
        return report
    how = draw(st.sampled_from(["value", "value", "missing", "whole"]))
    if how == "whole":
        return draw(GARBAGE)
    key = draw(st.sampled_from(sorted(report)))
    if how == "missing":
        return {k: v for k, v in report.items() if k != key}
    if key == "fee":
        return {**report, key: draw(FEE)}
    return {**report, key: draw(st.one_of(PRICE, SIZE))}


def reports(prefix: str) -> st.SearchStrategy:
    cids = st.sampled_from([f"{prefix}1", f"{prefix}1", f"{prefix}2"])
    order = st.fixed_dictionaries(
        {
            "clientOrderId": cids,
            "id": st.just("V42"),
            "status": st.sampled_from(
                ["open", "open", "closed", "canceled", "cancelled", "expired", "rejected"]
            ),
            "filled": st.one_of(FILL_AMOUNT, st.just(0), st.just("0.02")),
            "average": st.sampled_from([65000.0, None]),
        }
    ).flatmap(corrupted)
    trade = st.fixed_dictionaries(
        {
            "order": st.sampled_from(["V42", "V43"]),
            "clientOrderId": cids,
            "id": st.integers(0, 6),
            "price": st.sampled_from([65000.0, "64999.99", 64999.995]),
            "amount": FILL_AMOUNT,
            "fee": st.sampled_from(
                [
                    {"cost": "0.01", "currency": "USDT"},
                    {"cost": 1e-06, "currency": "BTC"},
                    None,
                    {"cost": "1e999999", "currency": "USDT"},  # finite, and overflows any sum
                ]
            ),
            "takerOrMaker": st.sampled_from(["maker", "taker"]),
            "symbol": st.just(SYMBOL),
        }
    ).flatmap(corrupted)
    return st.lists(
        st.one_of(order.map(lambda r: ("order", r)), trade.map(lambda t: ("trade", t))),
        min_size=1,
        max_size=12,
    )


@FUZZ
@given(data=st.data())
def test_order_and_trade_reports_never_overfill_never_lose_a_fill_and_end_an_order_once(data) -> None:
    h = Harness()
    desk = h.venue.orders
    o = our_order(h)
    for kind, report in data.draw(reports(desk.prefix)):
        if kind == "order":
            desk.on_order_update(report)  # never raises
        else:
            desk.on_my_trade(report, from_stream=data.draw(st.booleans()))
        ours = [e for e in h.events if getattr(e, "order_id", None) == 1]
        fills = [e for e in ours if type(e) is Fill]
        assert sum(f.size for f in fills) == o.filled <= o.size
        for f in fills:
            assert f.price > 0 and f.size > 0 and f.leaves >= 0 and type(f.fee) is int
        dones = [i for i, e in enumerate(ours) if type(e) is Done]
        assert len(dones) <= 1 and (not dones or dones[0] == len(ours) - 1)
        assert sum(1 for e in ours if type(e) is Accepted) <= 1
        assert all(isinstance(x, Decimal) and x.is_finite() for x in desk.net.values())
    assert h.bus.errors == 0, list(h.bus.last_errors)
    event(
        f"fills: {min(o.filled and 1 + (o.filled == o.size), 2)}, bad reports: {bool(h.venue.stats['bad_fill_reports'])}"
    )


ORPHAN = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "symbol": st.one_of(st.just(SYMBOL), GARBAGE),
            "side": st.one_of(st.sampled_from(["buy", "sell"]), GARBAGE),
            "clientOrderId": st.one_of(st.just("lob00abcdx7"), GARBAGE),
            "id": st.one_of(st.just("V7"), GARBAGE),
            "amount": FILL_AMOUNT,
            "filled": FILL_AMOUNT,
            "price": PRICE,
            "status": st.one_of(st.just("open"), GARBAGE),
        },
    ),
    GARBAGE,
)


@FUZZ
@given(orphans=st.lists(ORPHAN, min_size=1, max_size=4))
def test_adopting_an_orphan_takes_only_a_sane_order(orphans) -> None:
    h = Harness()
    for r in orphans:
        o = h.venue.orders.adopt(r)  # never raises
        if o is not None:
            assert o.size > 0 and o.side in (BUY, SELL) and o.order_id < 0 and o.adopted
            assert h.venue.orders.by_cid[o.client_id] is o
    assert h.bus.errors == 0


CURRENCY = st.one_of(st.sampled_from(["BTC", "USDT", ""]), st.none(), st.integers(), st.floats())
BALANCE = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "total": st.one_of(st.dictionaries(CURRENCY, st.one_of(SIZE, GARBAGE), max_size=4), GARBAGE),
            "free": st.one_of(
                st.dictionaries(st.sampled_from(["BTC", "USDT"]), st.one_of(SIZE, GARBAGE), max_size=3),
                GARBAGE,
            ),
        },
    ),
    GARBAGE,
)


@FUZZ
@given(bal=BALANCE)
def test_balances_read_only_finite_numbers_of_named_currencies(bal) -> None:
    totals, balances = balances_from(bal)  # never raises
    assert set(totals) == set(balances)
    for cur, amount in totals.items():
        assert isinstance(cur, str) and cur and amount.is_finite() and abs(amount) < Decimal(10) ** 30
        free, total = balances[cur]
        assert free.is_finite() and total == amount

"""Linear swaps whose amounts are contracts (ccxt's `contractSize` != 1), with the unmodified
ccxt.pro.binanceusdm against the USD-M loopback (tests/integration/binance_loopback.py,
`BinanceUsdmLoopback`: every quantity on the wire is contracts of 0.001 BTC): orders go out in
contracts, fills, books, open orders and positions come back in base units, the venue's funding
payments reach P&L once, and the funding rate reaches the mark."""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal

import pytest
from binance_loopback import BinanceUsdmLoopback

from lobterm.assemble import build_async
from lobterm.config import Config
from lobterm.engine.events import BUY, SELL, Fill, Funding, MarkPrice, PositionMismatch, Rejected
from lobterm.engine.instrument import InstrumentError
from lobterm.venues.ccxt.errors import VenueError
from lobterm.venues.ccxt.markets import Contracts, inverse_refusal
from lobterm.venues.ccxt.venue import CcxtVenue
from lobterm.venues.settings import venue_from_dict
from tests.helpers.ccxt import KEY, SECRET, Run, wait_for

SYM = "BTC/USDT:USDT"


@pytest.fixture
async def srv():
    s = BinanceUsdmLoopback(api_key=KEY, secret=SECRET)
    for i in range(5):
        s.add_liquidity(BUY, f"{65000 - i:.1f}", str(10 + i))  # contracts
        s.add_liquidity(SELL, f"{65001 + i:.1f}", str(10 + i))
    await s.start()
    yield s
    await s.stop()


def usdm_config(srv: BinanceUsdmLoopback, **extra):
    return venue_from_dict(
        "usdm", {**srv.venue_options(), "symbols": [SYM], "api_key": KEY, "secret": SECRET, **extra}
    )


async def started(srv: BinanceUsdmLoopback, **extra) -> Run:
    kernel = (await build_async(Config(venues={"usdm": usdm_config(srv, **extra)}), strategies=False)).kernel
    r = Run(kernel)
    r.perp = []
    kernel.bus.subscribe((Funding, MarkPrice, PositionMismatch), r.perp.append)
    await kernel.start()
    # ccxt's throttle charges Binance's request weights (the income history weighs 30: 1.5 s a poll);
    # the loopback has no limits, and the tests poll by hand.
    r.live.exchange.enableRateLimit = False
    await wait_for(lambda: r.market.l2.valid and r.live.streams.private_stream_ready(), 5, "book and orders")
    await wait_for(lambda: r.live.reconciler.runs >= 1, 5, "the first reconciliation")
    # The margin rule lets no order out before the venue's mark is known.
    await wait_for(lambda: any(isinstance(e, MarkPrice) for e in r.perp), 5, "the first mark")
    return r


def ours(srv: BinanceUsdmLoopback, r: Run) -> list[dict]:
    return [o for o in srv.open_orders() if o["cid"].startswith(r.live.orders.prefix)]


def base_position(r: Run) -> Decimal:
    m = r.market
    return m.instrument.size(r.kernel.inventory.position(m.venue, m.symbol).lots)


async def test_orders_go_out_in_contracts_and_fills_and_books_come_back_in_base_units(srv):
    r = await started(srv)
    k, m = r.kernel, r.market
    inst = m.instrument
    try:
        # One contract is 0.001 BTC: the engine's lot; the book's 10 contracts are 0.010 BTC.
        assert (inst.lot_size, inst.tick_size, inst.min_lots) == (Decimal("0.001"), Decimal("0.1"), 1)
        assert m.l2.depth(BUY, 1)[0] == (inst.ticks("65000.0"), inst.lots("0.010"))
        oid = k.place(m, BUY, inst.ticks("65000.5"), inst.order_lots("0.005"))
        await wait_for(lambda: len(ours(srv, r)) == 1, 5, "our order at the venue")
        assert ours(srv, r)[0]["size"] == 5  # 0.005 BTC went out as 5 contracts
        assert srv._orders[ours(srv, r)[0]["id"]]["size"] == 5
        srv.take(SELL, "3")  # another participant sells 3 contracts into our bid
        await wait_for(lambda: any(isinstance(e, Fill) for e in r.events), 5, "our fill")
        fill = next(e for e in r.events if isinstance(e, Fill))
        assert (fill.order_id, fill.size, fill.leaves) == (oid, 3, 2)
        assert base_position(r) == Decimal("0.003") and srv.position() == 3
        # The book's top moved by our order: 2 contracts left at 65000.5 = 0.002 BTC.
        await wait_for(lambda: m.l2.depth(BUY, 1)[0] == (inst.ticks("65000.5"), 2), 5, "the book")
        # The venue's position (3 contracts of 0.001) agrees with ours: no mismatch over two polls.
        await r.live.perps.poll()
        await r.live.perps.poll()
        assert not [e for e in r.perp if isinstance(e, PositionMismatch)]
        assert r.live.perps.position_lots[SYM] == 3
        assert r.live.stats["bad_fill_reports"] == 0 and r.live.stats["bad_order_reports"] == 0
    finally:
        await k.shutdown()
    assert not ours(srv, r)


async def test_after_a_restart_reconciliation_sees_the_right_quantities(srv):
    r = await started(srv, cancel_on_shutdown=False)
    k, m = r.kernel, r.market
    inst = m.instrument
    k.place(m, BUY, inst.ticks("65000.5"), inst.order_lots("0.005"))
    await wait_for(lambda: len(ours(srv, r)) == 1, 5, "our order at the venue")
    srv.take(SELL, "3")
    await wait_for(lambda: base_position(r) == Decimal("0.003"), 5, "our fill")
    await k.stop()  # an end that cancels nothing (cancel_on_shutdown = false): the order stays working
    assert len(srv.open_orders()) == 1

    # A new run adopts it: 5 contracts of which 3 filled before it: 2 lots (0.002 BTC) left to work.
    r2 = await started(srv, orphan_orders="adopt")
    try:
        adopted = [o for o in r2.live.orders.orders.values() if o.adopted]
        assert [(o.size, o.fill_base, o.filled) for o in adopted] == [(2, 3, 0)]
        assert r2.live.stats["bad_order_reports"] == 0
        ids = await r2.live.open_order_ids()
        assert ids == [str(srv.open_orders()[0]["id"])]
        # Its remaining 2 contracts fill: 2 lots in this run's position (the venue's is 5 contracts).
        srv.take(SELL, "2")
        await wait_for(lambda: base_position(r2) == Decimal("0.002"), 5, "the adopted order's fill")
        assert srv.position() == 5
        await r2.live.perps.poll()  # the first poll is the baseline: 0.005 at the venue, 0.002 ours since
        assert r2.live.perps.start_position[SYM] == Decimal("0.003")
        await r2.live.perps.poll()
        await r2.live.perps.poll()
        assert not [e for e in r2.perp if isinstance(e, PositionMismatch)]
    finally:
        await r2.kernel.shutdown()


async def test_a_fill_missed_while_the_order_stream_is_down_is_reconciled_in_base_units(srv):
    r = await started(srv, reconcile_every_s=30.0)
    k, m = r.kernel, r.market
    inst = m.instrument
    try:
        oid = k.buy(m, inst.ticks("65000.5"), inst.order_lots("0.004"))
        await wait_for(lambda: k.oms.order(oid).state == "working", 5, "the ack")
        srv.user_stream_down = True
        await srv.drop_user_stream()
        srv.take(SELL, "4")  # 4 contracts fill our bid while nobody listens
        await asyncio.sleep(0.3)
        assert base_position(r) == 0 and srv.position() == 4
        srv.user_stream_down = False
        await wait_for(lambda: base_position(r) == Decimal("0.004"), 20, "the reconciled fill")
        await wait_for(lambda: k.oms.order(oid).state == "filled", 5, "the order filled")
        await r.live.reconciler.run("once more")  # the same trade seen again changes nothing
        assert [e.size for e in r.events if isinstance(e, Fill)] == [4] and base_position(r) == Decimal(
            "0.004"
        )
        assert r.live.stats["bad_fill_reports"] == 0
    finally:
        await k.shutdown()


async def test_a_funding_payment_reaches_pnl_once_and_the_rate_reaches_the_mark(srv):
    srv.pay_funding("-0.5000", at_ms=1)  # paid long before this run: not this run's P&L
    r = await started(srv)
    k, m = r.kernel, r.market
    pos = k.inventory.position(m.venue, m.symbol)
    try:
        await r.live.perps.poll()
        marks = [e for e in r.perp if isinstance(e, MarkPrice)]
        assert (marks[-1].mark, marks[-1].index, marks[-1].rate_ppb) == (650_000, 649_900, 100_000)
        assert not [e for e in r.perp if isinstance(e, Funding)]
        realized0 = pos.realized
        srv.pay_funding("-0.01234567")  # we paid 0.01234567 USDT
        for _ in range(3):  # polled again and again: booked once
            await r.live.perps.poll()
        # A venue stop and start in the same process: the watch remembers what it booked.
        await r.live.stop()
        await r.live.start()
        r.live.exchange.enableRateLimit = False  # a new exchange object (the old one was closed)
        await r.live.perps.poll()
        funding = [e for e in r.perp if isinstance(e, Funding)]
        assert len(funding) == 1
        # 0.01234567 USDT = 123456.7 tick*lots (0.1 x 0.001) = 123456700 millionths; paid: positive.
        assert funding[0].amount == 123_456_700 and funding[0].rate_ppb == 100_000
        assert realized0 - pos.realized == Decimal("0.01234567") / (Decimal("0.1") * Decimal("0.001"))
        assert m.instrument.fee(pos.funding) == Decimal("0.01234567")
        assert r.live.stats["funding_payments"] == 1
    finally:
        await k.shutdown()
    # A later process does not book again what was paid before it started.
    r2 = await started(srv)
    try:
        await r2.live.perps.poll()
        assert not [e for e in r2.perp if isinstance(e, Funding)]
        srv.pay_funding("0.02")  # received
        await r2.live.perps.poll()
        await r2.live.perps.poll()
        got = [e.amount for e in r2.perp if isinstance(e, Funding)]
        assert got == [-200_000_000]
    finally:
        await r2.kernel.shutdown()


async def test_a_quantity_that_is_not_a_whole_number_of_contracts_is_refused_with_one_line(srv, caplog):
    r = await started(srv)
    k, m = r.kernel, r.market
    try:
        with pytest.raises(InstrumentError) as e:
            m.instrument.order_lots("0.0055")  # what the ticket, the ladder and the editor parse with
        assert "\n" not in str(e.value) and "0.0055" in str(e.value) and "0.001" in str(e.value)
        # The venue's own guard on the way out names contracts (a lot off the contract grid).
        c = r.live.contracts[SYM]
        with pytest.raises(ValueError) as e2:
            c.venue_amount(Decimal("0.0055"))
        assert str(e2.value) == (
            "BTC/USDT:USDT: 0.0055 BTC is not a whole number of contracts (1 contract = 0.001 BTC, steps of 1)"
        )
        # On the way in: a report of 2.5 contracts (off the venue's own grid) is counted and skipped.
        caplog.set_level(logging.WARNING, "lobterm.venues")
        o = r.live.orders
        oid = k.place(m, BUY, m.instrument.ticks("64000.0"), 5)
        await wait_for(lambda: o.orders.get(oid) is not None and o.orders[oid].venue_id, 5, "the order")
        lo = o.orders[oid]
        o.on_my_trade({"id": "x1", "order": lo.venue_id, "symbol": SYM, "price": 64000.0, "amount": 2.5})
        assert r.live.stats["bad_fill_reports"] == 1 and lo.filled == 0
        assert not [e for e in r.events if isinstance(e, Fill)]
        lines = [rec.getMessage() for rec in caplog.records if "not understood" in rec.getMessage()]
        assert len(lines) == 1 and "\n" not in lines[0]
        assert not [e for e in r.events if isinstance(e, Rejected)]
    finally:
        await k.shutdown()


async def test_an_order_off_the_contract_grid_is_refused_with_one_line_and_not_sent(srv, caplog):
    """The desk's guard on the way out (the instrument's lot is one amount step, so the engine cannot
    make such a size on this market: here the venue's step is made 2 contracts behind its back)."""
    r = await started(srv)
    k, m = r.kernel, r.market
    try:
        caplog.set_level(logging.WARNING, "lobterm.venues")
        r.live.contracts[SYM] = Contracts(SYM, Decimal("0.001"), Decimal(2), "BTC")
        sent = srv.requests.count("POST /fapi/v1/order")
        oid = k.place(m, BUY, m.instrument.ticks("64000.0"), 3)
        await wait_for(lambda: any(isinstance(e, Rejected) for e in r.events), 5, "the refusal")
        rej = next(e for e in r.events if isinstance(e, Rejected))
        assert rej.order_id == oid and rej.reason == (
            "BTC/USDT:USDT: 0.003 BTC is not a whole number of contracts (1 contract = 0.001 BTC, steps of 2)"
        )
        assert r.live.stats["bad_sizes"] == 1 and srv.requests.count("POST /fapi/v1/order") == sent
        assert [rec.getMessage() for rec in caplog.records if "refused" in rec.getMessage()] == [
            f"usdm: order {oid} refused: {rej.reason}"
        ]
        assert oid not in k.oms.working
    finally:
        await k.shutdown()


async def test_an_inverse_market_is_refused_at_load_with_one_line(caplog):
    srv = BinanceUsdmLoopback(api_key=KEY, secret=SECRET, margin_asset="BTC")  # settled in BTC: inverse
    await srv.start()
    venue = CcxtVenue(venue_from_dict("inv", {**srv.venue_options(), "symbols": ["BTC/USDT:BTC"]}))
    caplog.set_level(logging.WARNING, "lobterm.venues")
    try:
        with pytest.raises(VenueError) as e:
            await venue.load()
        assert e.value.kind == "config" and "\n" not in str(e.value)
        assert str(e.value).startswith(
            "inv BTC/USDT:BTC: an inverse contract (settled in BTC): lobterm trades linear swaps only"
        )
        assert [rec.getMessage() for rec in caplog.records] == [str(e.value)]
        assert venue.instruments == {}
    finally:
        await srv.stop()
    assert (
        inverse_refusal("usdm", {"symbol": SYM, "contract": True, "linear": True, "inverse": False}) is None
    )

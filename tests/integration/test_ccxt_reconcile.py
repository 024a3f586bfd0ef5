"""The live venue is the truth about our orders: reconciliation against the Binance loopback venue
(the unmodified ccxt.pro.binance, real sockets on 127.0.0.1).

The rules: after the venue forgets our orders the market maker quotes again within 10 s with fewer
than 20 refused requests; a fill missed while the order stream was down is applied once and our
position equals the venue's within 10 s of the reconnection; orphans of an earlier run are cancelled,
adopted or left as configured; `open_order_ids` / `cancel_open_orders` leave none of ours at the venue.
"""

from __future__ import annotations

import asyncio
import logging
import time
from decimal import Decimal

import pytest
from binance_loopback import BinanceLoopback

from lobterm.assemble import build_async, quote_params_for
from lobterm.config import Config
from lobterm.engine.events import BUY, SELL, Fill, PositionMismatch, VenueStatus
from lobterm.trading.quoting import QuoteParams
from tests.helpers.ccxt import KEY, SECRET, Run, seed_book, venue_config, wait_for

RECONNECT_S = 10.0


@pytest.fixture
async def srv():
    s = BinanceLoopback(api_key=KEY, secret=SECRET)
    seed_book(s)
    await s.start()
    yield s
    await s.stop()


async def started(srv: BinanceLoopback, **extra) -> Run:
    config = Config(venues={"binance": venue_config(srv, **extra)})
    kernel = (await build_async(config, strategies=False)).kernel
    r = Run(kernel)
    r.details = []
    kernel.bus.subscribe(VenueStatus, lambda ev: r.details.append(ev.detail))
    await kernel.start()
    await wait_for(lambda: r.synced_with(srv), 5, "the first snapshot")
    await wait_for(lambda: r.live.reconciler.runs >= 1, 5, "the first reconciliation")
    return r


def ours_at_venue(srv: BinanceLoopback, r: Run) -> list[dict]:
    return [o for o in srv.open_orders() if o["cid"].startswith(r.live.orders.prefix)]


def fills_of(r: Run, oid: int) -> list[Fill]:
    return [e for e in r.events if isinstance(e, Fill) and e.order_id == oid]


def position(r: Run) -> Decimal:
    m = r.market
    return m.instrument.size(r.kernel.inventory.position(m.venue, m.symbol).lots)


# ---- the venue forgets our orders ---------------------------------------------------------------------
async def test_after_the_venue_forgets_our_orders_the_market_maker_quotes_again_within_10_s(srv):
    r = await started(srv, reconcile_every_s=30.0)
    k, m = r.kernel, r.market
    params = QuoteParams(
        levels=5, spread_ticks=4, size_lots=m.instrument.lots("0.001"), max_position_lots=10**6
    )
    mm = k.add_market_maker(quote_params_for(k, m, params), market=m)
    mm.resume()
    try:
        await wait_for(lambda: len(ours_at_venue(srv, r)) == 10, 5, "ten quotes at the venue")
        before = list(ours_at_venue(srv, r))
        refused = len(srv.refused)
        await srv.restart(keep_orders=False)  # the venue comes back from an empty store
        t0 = time.monotonic()

        def quoting_again() -> bool:
            now = {o["cid"] for o in ours_at_venue(srv, r)}
            working = {o.order_id for o in k.oms.orders(m.venue, m.symbol)}
            return len(now) == 10 and {int(c[len(r.live.orders.prefix) :]) for c in now} == working

        await wait_for(quoting_again, RECONNECT_S, "the market maker quoting again")
        took = time.monotonic() - t0
        assert not {o["cid"] for o in before} & {o["cid"] for o in ours_at_venue(srv, r)}
        assert len(srv.refused) - refused < 20, srv.refused[refused:]
        assert r.live.stats["orders_gone"] >= 10 and k.oms.cancel_rejects == 0
        assert took < RECONNECT_S
    finally:
        mm.pause()
        await k.stop()


async def test_a_cancel_answered_unknown_order_is_resolved_not_rejected(srv):
    r = await started(srv)
    k, m = r.kernel, r.market
    oid = k.buy(m, m.instrument.ticks("64000.00"), m.instrument.lots("0.01"))
    await wait_for(lambda: k.oms.order(oid).state == "working", 2, "the ack")
    await srv.restart(keep_orders=False)  # also drops the streams: cancel before the reconciliation runs
    k.oms.cancel(oid)
    await wait_for(lambda: k.oms.order(oid).state == "cancelled", 3, "the order resolved as gone")
    assert k.oms.cancel_rejects == 0 and k.oms.rejects == 0
    assert r.order_events(oid) == ["Accepted", "Cancelled", "Done"]
    assert sum(1 for path, code in srv.refused if code == -2011) <= 1
    await k.stop()


# ---- a fill while the order stream is down ----------------------------------------------------------------
async def test_a_fill_missed_during_an_order_stream_outage_is_applied_once(srv):
    r = await started(srv, reconcile_every_s=30.0)  # the reconnection, not the timer, must find it
    k, m = r.kernel, r.market
    inst = m.instrument
    oid = k.buy(m, inst.ticks("65000.50"), inst.lots("0.02"))  # the best bid
    await wait_for(lambda: k.oms.order(oid).state == "working", 2, "the ack")
    srv.user_stream_down = True
    await srv.drop_user_stream()
    srv.take(SELL, "0.02")  # fills our bid while nobody listens
    await asyncio.sleep(0.5)
    assert position(r) == 0 and srv.position() == Decimal("0.02")
    subscriptions = len(srv.user_subscribed_at)
    srv.user_stream_down = False
    await wait_for(
        lambda: position(r) == srv.position(), 2 * RECONNECT_S, "our position equal to the venue's"
    )
    assert len(srv.user_subscribed_at) > subscriptions  # the order stream is back
    took = time.monotonic() - srv.user_subscribed_at[subscriptions]
    await wait_for(lambda: k.oms.order(oid).state == "filled", 2, "the order filled")
    await asyncio.sleep(1.0)
    await r.live.reconciler.run("once more")  # the same trade seen again changes nothing
    assert len(fills_of(r, oid)) == 1 and position(r) == Decimal("0.02")
    assert r.live.stats["missed_fills"] == 1
    assert took < RECONNECT_S
    await k.stop()


# ---- orphans of an earlier run ------------------------------------------------------------------------
ORPHAN = "lob0a1b2cx17"  # a lobterm client id of another run


@pytest.mark.parametrize("policy", ["cancel", "adopt", "leave"])
async def test_orphans_of_an_earlier_run_are_handled_as_configured(srv, policy):
    orphan = srv.add_orphan(ORPHAN, BUY, "65000.50", "0.01")
    manual = srv.add_orphan("web_8c1f00", BUY, "64000.00", "0.01")  # the trader's own, from the website
    r = await started(srv, orphan_orders=policy)
    k, _m = r.kernel, r.market
    open_ids = {o["id"] for o in srv.open_orders()}
    assert manual in open_ids  # never ours to touch
    assert any(policy in d and ORPHAN in d for d in r.details)  # said so on the status line
    ours = await r.live.open_order_ids()
    if policy == "cancel":
        assert orphan not in open_ids and ours == []
    elif policy == "leave":
        assert orphan in open_ids and ours == []
    else:
        assert orphan in open_ids and ours == [str(orphan)]
        srv.take(SELL, "0.01")  # the adopted order fills: it is our position
        await wait_for(lambda: position(r) == Decimal("0.01"), 3, "the adopted order's fill")
    await k.stop()
    left = {o["id"] for o in srv.open_orders()}
    assert manual in left and (orphan in left) == (policy == "leave")


# ---- OrderStateVenue: the shutdown verb's questions ---------------------------------------------------------
async def test_cancel_open_orders_until_open_order_ids_is_empty_leaves_none_of_ours(srv):
    r = await started(srv, cancel_on_shutdown=False)
    k, m = r.kernel, r.market
    inst = m.instrument
    oids = [k.buy(m, inst.ticks(f"6400{i}.00"), inst.lots("0.01")) for i in range(3)]
    oids.append(k.sell(m, inst.ticks("66000.00"), inst.lots("0.01")))
    await wait_for(lambda: all(k.oms.order(o).state == "working" for o in oids), 3, "four acks")
    assert len(await r.live.open_order_ids()) == 4
    for _ in range(10):
        if not await r.live.open_order_ids():
            break
        assert await r.live.cancel_open_orders() > 0
    assert ours_at_venue(srv, r) == []
    await wait_for(lambda: all(k.oms.order(o).state == "cancelled" for o in oids), 3, "the OMS told")
    await k.stop()
    assert await r.live.open_order_ids() == []  # still answers once the venue is stopped


async def test_after_stop_the_open_order_question_is_asked_on_a_fresh_connection(srv):
    r = await started(srv, cancel_on_shutdown=False)
    k, m = r.kernel, r.market
    oid = k.sell(m, m.instrument.ticks("66000.00"), m.instrument.lots("0.01"))
    await wait_for(lambda: k.oms.order(oid).state == "working", 2, "the ack")
    await k.stop()  # the exchange is closed now, the order is still at the venue
    assert len(await r.live.open_order_ids()) == 1
    assert await r.live.cancel_open_orders() == 1
    assert await r.live.open_order_ids() == [] and ours_at_venue(srv, r) == []


async def test_stop_waits_for_cancels_in_flight_before_closing_the_exchange(srv, caplog):
    r = await started(srv)
    k, m = r.kernel, r.market
    oids = [k.sell(m, m.instrument.ticks(f"6600{i}.00"), m.instrument.lots("0.01")) for i in range(5)]
    await wait_for(lambda: all(k.oms.order(o).state == "working" for o in oids), 3, "the acks")
    for o in oids:
        k.oms.cancel(o)
    await k.stop()  # with the cancels still on the wire
    assert ours_at_venue(srv, r) == []
    assert "closed by the user" not in caplog.text


# ---- balances ------------------------------------------------------------------------------------------
async def test_a_balance_that_differs_from_ours_is_reported_and_counted(srv):
    r = await started(srv, reconcile_every_s=1.0)
    k, m = r.kernel, r.market
    mismatches = []
    k.bus.subscribe(PositionMismatch, mismatches.append)
    oid = k.buy(m, m.instrument.ticks("65001.00"), m.instrument.lots("0.1"))  # a taker fill
    await wait_for(lambda: k.oms.order(oid).state == "filled", 2, "the fill")
    await asyncio.sleep(2.5)
    assert mismatches == []  # our fills explain the venue's balances exactly, fees included
    srv.balances["BTC"] += Decimal("0.5")  # a deposit lobterm did not make
    await wait_for(lambda: mismatches, 4, "the mismatch")
    ev = mismatches[0]
    assert (ev.asset, Decimal(ev.venue_has) - Decimal(ev.ours)) == ("BTC", Decimal("0.5"))
    assert r.live.stats["balance_mismatches"] == 1
    await k.stop()


# ---- secrets -------------------------------------------------------------------------------------------
async def test_refused_signed_requests_leave_no_signature_or_key_in_the_log(srv, caplog):
    caplog.set_level(logging.DEBUG)
    r = await started(srv)
    k, m = r.kernel, r.market
    srv.order_faults = [(-1013, "Filter failure: PRICE_FILTER")]
    oid = k.buy(m, m.instrument.ticks("64000.00"), m.instrument.lots("0.01"))
    await wait_for(lambda: k.oms.order(oid).state == "rejected", 2, "the refusal")
    srv.http_faults = [503] * 3  # the reconciliation's signed GETs fail: ccxt puts their URLs in errors
    await r.live.reconciler.run("test")
    await k.stop()
    assert "reconciliation (test) failed" in caplog.text and "/api/v3/" in caplog.text
    assert "signature=" not in caplog.text.replace("signature=***", "")
    assert KEY not in caplog.text and SECRET not in caplog.text

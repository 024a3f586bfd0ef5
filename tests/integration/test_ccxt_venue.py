"""The ccxt venue against a Binance spot loopback venue: the unmodified ccxt.pro.binance, real sockets.

Bounds tested (the issue's goal): each fault is detected within 2 s and the book has resynced within
1 s of the venue answering again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from decimal import Decimal

import pytest
from binance_loopback import BinanceLoopback

from lobterm.assemble import build_async, market_roles
from lobterm.config import Config
from lobterm.engine.events import BUY, SELL, Fill
from lobterm.services import start_recording
from lobterm.trading.risk import RiskLimits
from tests.helpers.ccxt import KEY, SECRET, Run, seed_book, venue_config, wait_for

DETECT_S = 2.0
RESYNC_S = 1.0


@pytest.fixture
async def srv():
    s = BinanceLoopback(api_key=KEY, secret=SECRET)
    seed_book(s)
    await s.start()
    yield s
    await s.stop()


@pytest.fixture
async def run(srv, request):
    extra = getattr(request, "param", {})
    keys = extra.pop("keys", True)
    config = Config(venues={"binance": venue_config(srv, keys=keys, **extra)})
    kernel = (await build_async(config, strategies=False)).kernel
    r = Run(kernel)
    await kernel.start()
    await wait_for(lambda: r.synced_with(srv), 5, "the first snapshot")
    yield r
    await kernel.stop()


# ---- market data -----------------------------------------------------------------------------------
async def test_the_kernel_book_equals_the_venue_book_at_the_same_update_id(srv, run):
    assert run.venue.mode == "LIVE" and run.market.instrument.tick_size == Decimal("0.01")
    srv.add_liquidity(BUY, "65000.50", "0.25")  # a new best bid
    srv.take(SELL, "0.60")  # takes it and part of the next level
    srv.add_liquidity(SELL, "65003.25", "1.5")
    await wait_for(lambda: run.synced_with(srv), 2, "the deltas")
    assert run.market.last_trade is not None and run.market.last_trade.aggressor == SELL
    assert run.market.trades == 2
    assert run.live.stats["snapshots"] == 1 and run.live.stats["deltas"] >= 2


async def test_a_sequence_gap_marks_the_book_stale_then_it_resnapshots_and_resyncs(srv, run):
    srv.skip_update_ids(3)  # the venue skips update ids: ccxt raises ChecksumError on the next diff
    srv.add_liquidity(BUY, "64990.00", "1.0")
    await wait_for(lambda: run.live.stats["gaps"] >= 1, DETECT_S, "the gap")
    assert "resyncing" in run.states
    srv.add_liquidity(SELL, "65010.00", "2.0")
    took = await wait_for(lambda: run.synced_with(srv) and not run.market.stale, RESYNC_S, "the resync")
    assert run.live.stats["snapshots"] == 2 and run.live.stats["resyncs"] == 1
    assert run.states[-1] == "up" and took < RESYNC_S


def feed_gaps(metrics) -> float:
    """`lobterm_feed_gaps_total{venue="binance",symbol="BTC/USDT"}` as a scrape reads it."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(metrics.text().decode()):
        if family.name == "lobterm_feed_gaps":
            return sum(
                s.value
                for s in family.samples
                if s.name == "lobterm_feed_gaps_total"
                and s.labels == {"venue": "binance", "symbol": "BTC/USDT"}
            )
    return 0.0


@pytest.mark.parametrize(
    "fault", ["sequence gap", "malformed frame", "dead receive loop", "dropped connection"]
)
async def test_every_gap_the_venue_detects_is_counted_once_by_the_kernel_and_the_metrics(
    srv, run, fault, caplog
):
    from lobterm.config import MetricsConfig
    from lobterm.metrics import Metrics

    metrics = Metrics(run.kernel, MetricsConfig(enabled=False))
    metrics.start()
    try:
        assert run.kernel.gaps == 0 and feed_gaps(metrics) == 0
        if fault == "sequence gap":
            srv.skip_update_ids(3)  # ccxt raises ChecksumError on the next diff
        elif fault == "malformed frame":  # a price off the tick grid: the adapter refuses the frame
            await srv.send_book_frame(
                json.dumps(
                    {
                        "e": "depthUpdate",
                        "E": 1,
                        "s": "BTCUSDT",
                        "U": srv.update_id + 1,
                        "u": srv.update_id + 1,
                        "b": [["64999.005", "1.0"]],
                        "a": [],
                    }
                )
            )
            srv.update_id += 1
        elif fault == "dead receive loop":
            await srv.send_garbage()
        else:
            await srv.drop_connections()
        srv.add_liquidity(BUY, "64990.00", "1.0")
        await wait_for(lambda: run.kernel.gaps >= 1, DETECT_S, "the gap in the kernel's count")
        srv.add_liquidity(SELL, "65010.00", "2.0")
        await wait_for(lambda: run.synced_with(srv) and not run.market.stale, RESYNC_S + 0.5, "the resync")
        await asyncio.sleep(0.2)  # nothing more is counted for the same break
        assert run.kernel.gaps == 1 == run.live.gaps, (fault, run.live.stats)
        assert feed_gaps(metrics) == 1
        assert "resyncing" in run.states and run.kernel.bus.errors == 0
        if fault == "malformed frame":  # counted, one line said, the stream restarted at once
            said = [r for r in caplog.records if "malformed book frame" in r.getMessage()]
            assert run.live.stats["malformed_frames"] == 1 and len(said) == 1, said
            assert "resubscribing in" not in said[0].getMessage()
    finally:
        metrics.stop()


async def test_quoting_is_blocked_while_the_book_is_stale(srv, run):
    k, m = run.kernel, run.market
    k.set_market_stale(m.venue, m.symbol, True)
    oid = k.buy(m, m.instrument.ticks("64000"), m.instrument.lots("0.01"), tag="mm")
    assert k.oms.order(oid).state == "rejected" and "stale" in k.oms.order(oid).reason


@pytest.mark.parametrize("run", [{"stale_after_s": 0.4}], indirect=True)
async def test_a_silent_stream_is_closed_and_watched_again(srv, run):
    stalls = run.live.stats["stalls"]  # a quiet loopback market may already have been resubscribed
    run.states.clear()
    srv.silent = True
    srv.add_liquidity(BUY, "64999.75", "0.3")  # the venue moves on, nothing reaches us
    await wait_for(lambda: run.live.stats["stalls"] > stalls, DETECT_S, "the watchdog")
    assert "resyncing" in run.states
    srv.silent = False
    took = await wait_for(lambda: run.synced_with(srv), RESYNC_S + 0.5, "the resubscription")
    assert took < RESYNC_S + 0.5


async def test_a_garbage_frame_is_counted_and_the_stream_recovers(srv, run):
    await srv.send_garbage()  # kills ccxt's receive loop for that socket, silently
    srv.add_liquidity(BUY, "64999.50", "0.7")
    await wait_for(lambda: run.live.stats["dead_loops"] >= 1, DETECT_S, "the dead receive loop")
    srv.add_liquidity(SELL, "65001.75", "0.9")
    await wait_for(lambda: run.synced_with(srv), RESYNC_S + 0.5, "the resync")
    assert run.kernel.bus.errors == 0


async def test_dropped_connections_reconnect_and_resync(srv, run):
    await srv.drop_connections()
    await wait_for(lambda: run.live.stats["stream_errors"] >= 1, DETECT_S, "the drop")
    srv.add_liquidity(BUY, "64999.25", "0.4")
    await wait_for(lambda: run.synced_with(srv), RESYNC_S + 0.5, "the reconnection")


# ---- orders with keys ------------------------------------------------------------------------------
async def test_orders_are_acked_filled_and_cancelled_through_ccxt(srv, run):
    k, m = run.kernel, run.market
    inst = m.instrument
    rest = k.buy(m, inst.ticks("64000.00"), inst.lots("0.01"))
    await wait_for(lambda: k.oms.order(rest).state == "working", 2, "the ack")
    assert srv.signatures_checked >= 2  # the REST order and the user data stream subscription
    k.oms.cancel(rest)
    await wait_for(lambda: k.oms.order(rest).state == "cancelled", 2, "the cancel")
    assert run.order_events(rest) == ["Accepted", "Cancelled", "Done"]

    take = k.buy(m, inst.ticks("65001.50"), inst.lots("0.5"))  # through two ask levels
    await wait_for(lambda: k.oms.order(take).state == "filled", 2, "the fills")
    fills = [e for e in run.events if isinstance(e, Fill) and e.order_id == take]
    assert [(f.price, f.size) for f in fills] == [
        (inst.ticks("65001.00"), inst.lots("0.4")),
        (inst.ticks("65001.50"), inst.lots("0.1")),
    ]
    assert fills[0].fee > 0 and not fills[0].is_maker
    assert k.inventory.position(m.venue, m.symbol).lots == inst.lots("0.5")
    assert run.order_events(take)[-1] == "Done"


async def test_insufficient_funds_and_invalid_orders_reach_the_oms_as_rejected(srv, run):
    k, m = run.kernel, run.market
    inst = m.instrument
    rejects = []
    k.oms.on_reject = rejects.append
    k.risk.limits = RiskLimits()  # the venue's own refusals: our pre-trade limits (on by default) off
    broke = k.buy(m, inst.ticks("64000.00"), inst.lots("20"))  # 1.28M USDT, the account holds 1M
    await wait_for(lambda: k.oms.order(broke).state == "rejected", 2, "the venue's refusal")
    assert (
        "insufficient_funds" in k.oms.order(broke).reason
        and "insufficient balance" in k.oms.order(broke).reason
    )
    huge = k.sell(m, inst.ticks("70000.00"), inst.lots("150"))  # above LOT_SIZE maxQty 100
    await wait_for(lambda: k.oms.order(huge).state == "rejected", 2, "the filter failure")
    assert "invalid_order" in k.oms.order(huge).reason and "LOT_SIZE" in k.oms.order(huge).reason
    assert len(rejects) == 2


async def test_a_429_is_a_rejection_and_a_5xx_is_retried(srv, run):
    k, m = run.kernel, run.market
    inst = m.instrument
    # The REST faults are for the orders: let the reconciliation at start have its answers first.
    await wait_for(lambda: run.live.reconciler.runs >= 1, 5, "the first reconciliation")
    srv.http_faults = [429]
    limited = k.buy(m, inst.ticks("64000.00"), inst.lots("0.01"))
    await wait_for(lambda: k.oms.order(limited).state == "rejected", 2, "the 429")
    assert "rate_limit" in k.oms.order(limited).reason
    srv.http_faults = [503]
    retried = k.buy(m, inst.ticks("64000.10"), inst.lots("0.02"))
    await wait_for(lambda: k.oms.order(retried).state == "working", 3, "the retried order")
    assert run.live.stats["order_retries"] == 1


@pytest.mark.parametrize("run", [{"orders_per_s": 0.5, "order_burst": 2}], indirect=True)
async def test_the_token_bucket_refuses_order_bursts(srv, run):
    k, m = run.kernel, run.market
    inst = m.instrument
    oids = [k.buy(m, inst.ticks(f"6400{i}.00"), inst.lots("0.01")) for i in range(3)]
    assert k.oms.order(oids[2]).state == "rejected" and "order rate limit" in k.oms.order(oids[2]).reason
    await wait_for(lambda: all(k.oms.order(o).state == "working" for o in oids[:2]), 2, "the first two")
    assert run.live.stats["rate_limited"] == 1


@pytest.mark.parametrize("run", [{"breaker_errors": 2, "breaker_cooldown_s": 0.3}], indirect=True)
async def test_the_circuit_breaker_opens_after_n_errors_and_probes_after_the_cooldown(srv, run):
    k, m = run.kernel, run.market
    inst = m.instrument
    srv.order_faults = [(-1013, "Filter failure: PRICE_FILTER")] * 2
    for i in range(2):
        oid = k.buy(m, inst.ticks(f"6400{i}.00"), inst.lots("0.01"))
        await wait_for(lambda: k.oms.order(oid).state == "rejected", 2, "the venue's refusal")  # noqa: B023
    sent = len(srv.requests)
    blocked = k.buy(m, inst.ticks("64005.00"), inst.lots("0.01"))
    assert "circuit breaker open" in k.oms.order(blocked).reason and len(srv.requests) == sent
    await asyncio.sleep(0.35)  # the cooldown: one probe goes out, succeeds, the breaker closes
    probe = k.buy(m, inst.ticks("64006.00"), inst.lots("0.01"))
    await wait_for(lambda: k.oms.order(probe).state == "working", 2, "the probe")
    assert run.live.breaker.state == "closed" and run.live.breaker.trips == 1


async def test_shutdown_cancels_working_orders(srv, run):
    k, m = run.kernel, run.market
    oid = k.sell(m, m.instrument.ticks("66000.00"), m.instrument.lots("0.05"))
    await wait_for(lambda: k.oms.order(oid).state == "working", 2, "the ack")
    await k.stop()
    assert k.oms.order(oid).state == "cancelled"
    assert not any(srv.book.order(o["id"]) for o in srv._orders.values())


# ---- secrets ---------------------------------------------------------------------------------------
async def test_keys_never_reach_logs_rejections_exceptions_or_the_session_file(srv, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    bad = BinanceLoopback(api_key="someone-else", secret="another-secret")
    seed_book(bad)
    await bad.start()
    try:
        config = Config(venues={"binance": venue_config(bad)})
        kernel = (await build_async(config, strategies=False)).kernel
        rec = start_recording(kernel, tmp_path, config=config)
        r = Run(kernel)
        await kernel.start()
        await wait_for(lambda: r.market.l2.valid, 5, "the book")
        m = r.market
        oid = kernel.buy(m, m.instrument.ticks("64000.00"), m.instrument.lots("0.01"))
        await wait_for(lambda: kernel.oms.order(oid).state == "rejected", 2, "the auth failure")
        assert "auth" in kernel.oms.order(oid).reason
        exc = r.live.venue_error(RuntimeError(f"boom {KEY} {SECRET}"), "test")
        await kernel.stop()
    finally:
        await bad.stop()
    texts = [caplog.text, str(exc), repr(r.live), repr(config), *(str(e) for e in r.events)]
    session = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    for secret in (KEY, SECRET):
        assert all(secret not in t for t in texts)
        assert secret.encode() not in session
    assert "***" in str(exc)
    header = sqlite3.connect(rec.path).execute("select * from sqlite_master").fetchall()
    assert header  # the session file is a real SQLite database that we searched


# ---- paper mode and several venues -------------------------------------------------------------------
@pytest.mark.parametrize("run", [{"keys": False}], indirect=True)
async def test_without_keys_orders_are_paper_fills_against_the_live_book(srv, run):
    k, m = run.kernel, run.market
    assert run.venue.mode == "PAPER"
    oid = k.buy(m, m.instrument.ticks("65001.00"), m.instrument.lots("0.1"))
    await wait_for(lambda: k.oms.order(oid).state == "filled", 2, "the paper fill")
    assert srv.requests.count("POST /api/v3/order") == 0  # nothing went to the venue
    assert k.inventory.position(m.venue, m.symbol).lots == m.instrument.lots("0.1")


async def test_two_venues_quote_on_one_and_hedge_on_the_other(srv):
    other = BinanceLoopback(api_key=KEY, secret=SECRET)
    seed_book(other)
    await other.start()
    try:
        config = Config(
            venues={
                "binance": venue_config(srv),
                "binance2": venue_config(other, name="binance2", role="hedge"),
            }
        )
        kernel = (await build_async(config, strategies=False)).kernel
        quote, hedge = market_roles(kernel, config)
        assert (quote.venue, hedge.venue) == ("binance", "binance2")
        from lobterm.trading.hedger import HedgeParams

        hedger = kernel.add_hedger(
            HedgeParams(policy="immediate", threshold_lots=1), quote=quote, hedge=hedge
        )
        await kernel.start()
        await wait_for(lambda: quote.l2.valid and hedge.l2.valid, 5, "both books")
        inst = quote.instrument
        oid = kernel.buy(quote, inst.ticks("65001.00"), inst.lots("0.1"))
        await wait_for(lambda: kernel.oms.order(oid).state == "filled", 2, "the quote venue fill")
        for _ in range(100):
            kernel.on_timer()
            if kernel.inventory.position(hedge.venue, hedge.symbol).lots == -inst.lots("0.1"):
                break
            await asyncio.sleep(0.02)
        assert kernel.inventory.position(hedge.venue, hedge.symbol).lots == -inst.lots("0.1")
        assert other.requests.count("POST /api/v3/order") >= 1 and hedger.stats.fills >= 1
        await kernel.stop()
    finally:
        await other.stop()


def test_headless_run_trades_the_configured_live_venue_in_paper_mode():
    """`lobterm run --headless` with a [venues.binance] section: the kernel is built on that venue (no sim),
    the market maker quotes on its live book through the paper desk, and the run stops cleanly."""
    import threading

    from lobterm.headless import run_headless

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    srv = BinanceLoopback()
    seed_book(srv)
    asyncio.run_coroutine_threadsafe(srv.start(), loop).result(10)
    try:
        config = Config(venues={"binance": venue_config(srv, keys=False)})
        summary = run_headless(config, 1.0, market_maker=True)
    finally:
        asyncio.run_coroutine_threadsafe(srv.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
    assert (summary.venue, summary.mode, summary.symbol) == ("binance", "PAPER", "BTC/USDT")
    assert summary.best_bid == "65000.00" and summary.best_ask == "65001.00"
    assert summary.our_orders > 0 and summary.reconciled
    assert srv.requests.count("POST /api/v3/order") == 0

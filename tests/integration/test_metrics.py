"""Prometheus metrics after a headless sim run with the market maker, scraped over HTTP from the
exporter on an ephemeral 127.0.0.1 port and read with prometheus-client's own text parser."""

from __future__ import annotations

import asyncio
import time
import urllib.request
from collections import Counter

import pytest
from prometheus_client.parser import text_string_to_metric_families

from lobterm.assemble import build_sim_kernel
from lobterm.config import Config, MetricsConfig, quote_params
from lobterm.engine.events import BUY, OUR_OWNER, POST_ONLY, SELL, BookDelta, Cancelled, Rejected
from lobterm.metrics import Metrics, reason_label
from lobterm.services import start_metrics, start_recording, stop_recording


def scrape(metrics: Metrics) -> dict[str, list]:
    """name -> [(labels, value)] of every sample, fetched over HTTP."""
    host, port = metrics.address
    body = urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5).read().decode()
    out: dict[str, list] = {}
    for family in text_string_to_metric_families(body):
        out.setdefault(family.name + ("_total" if family.type == "counter" else ""), [])
        for s in family.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def value(samples: dict, name: str, **labels) -> float:
    """The sum of `name`'s samples whose labels include `labels`."""
    return sum(v for lab, v in samples.get(name, []) if all(lab.get(k) == x for k, x in labels.items()))


@pytest.fixture
def run():
    """A sim kernel with the market maker and the exporter on an ephemeral port, run 60 simulated s."""
    cfg = Config()
    cfg.metrics = MetricsConfig(port=0)
    cfg.risk = {"price_band_bps": 500}
    kernel, venue = build_sim_kernel(cfg, virtual=True)
    tally = Counter()
    kernel.bus.subscribe(BookDelta, lambda ev: tally.update([("delta", "")]))
    kernel.bus.subscribe(
        Cancelled,
        lambda ev: tally.update([("cancel", reason_label(ev.reason))]) if ev.owner == OUR_OWNER else None,
    )
    kernel.bus.subscribe(
        Rejected,
        lambda ev: tally.update([("reject", reason_label(ev.reason))]) if ev.owner == OUR_OWNER else None,
    )
    mm = kernel.add_market_maker(quote_params(cfg))
    metrics = start_metrics(kernel, cfg.metrics)
    venue.open()
    mm.resume()
    for _ in range(round(60 * cfg.sim.rate_hz)):
        venue.step()
        kernel.on_timer()
    metrics.update()
    yield kernel, venue, metrics, tally
    metrics.stop()


def test_the_exporter_listens_on_loopback_with_its_own_registry(run):
    kernel, venue, metrics, tally = run
    assert metrics.address[0] == "127.0.0.1" and metrics.address[1] > 0
    from prometheus_client import REGISTRY

    assert "lobterm_orders_total" not in {s.name for fam in REGISTRY.collect() for s in fam.samples}


def test_order_counters_match_the_oms_after_a_market_making_run(run):
    kernel, venue, metrics, tally = run
    s = scrape(metrics)
    oms = kernel.oms
    assert oms.sent > 50 and oms.fills > 10
    assert value(s, "lobterm_orders_total", venue="sim", symbol="BTC/USDT") == oms.sent
    assert value(s, "lobterm_fills_total", venue="sim") == oms.fills
    assert value(s, "lobterm_filled_lots_total", venue="sim") == oms.filled_lots
    cancels = {lab["reason"]: v for lab, v in s.get("lobterm_cancels_total", [])}
    assert cancels == {reason: n for (kind, reason), n in tally.items() if kind == "cancel"}
    rejects = {lab["reason"]: v for lab, v in s.get("lobterm_rejects_total", [])}
    assert sum(rejects.values()) == sum(n for (kind, _), n in tally.items() if kind == "reject")
    # Round trips: one per order the venue answered; tick to quote: the market maker's requotes.
    assert value(s, "lobterm_order_roundtrip_seconds_count", venue="sim") == oms.sent
    mm = kernel.market_makers[0]
    n_q = value(s, "lobterm_tick_to_quote_seconds_count", venue="sim", symbol="BTC/USDT")
    assert 0 < n_q <= mm.quotes_sent + mm.amends_sent + mm.cancels_sent
    assert value(s, "lobterm_tick_to_quote_seconds_sum") > 0


def test_feed_counters_and_gauges_match_the_kernel(run):
    kernel, venue, metrics, tally = run
    s = scrape(metrics)
    m = kernel.default_market
    assert value(s, "lobterm_feed_messages_total", kind="delta") == tally[("delta", "")]
    assert value(s, "lobterm_feed_messages_total", kind="trade") == m.trades
    assert value(s, "lobterm_feed_messages_total", kind="snapshot") == 1
    assert value(s, "lobterm_feed_resyncs_total") == 0
    assert value(s, "lobterm_feed_staleness_seconds", venue="sim") == 0.0
    assert value(s, "lobterm_venue_up", venue="sim", state="up") == 1.0
    pos = kernel.inventory.position("sim", "BTC/USDT")
    assert pos.fills > 0
    assert value(s, "lobterm_position", venue="sim", symbol="BTC/USDT") == float(m.instrument.size(pos.lots))
    pnl = kernel.inventory.pnl("sim", "BTC/USDT", m.top()).in_quote(m.instrument)
    assert value(s, "lobterm_pnl", venue="sim", kind="net") == pytest.approx(float(pnl.net), abs=1e-9)
    assert value(s, "lobterm_pnl", venue="sim", kind="fees") == pytest.approx(float(pnl.fees), abs=1e-9)
    assert value(s, "lobterm_working_orders", venue="sim") == len(kernel.oms.working)
    assert value(s, "lobterm_bus_events_total") == kernel.bus.published


def test_counters_move_by_exactly_what_happened(run):
    kernel, venue, metrics, tally = run
    m = kernel.default_market
    kernel.market_makers[0].pause()  # its quotes cancelled: from here on only what the test does
    before = scrape(metrics)
    best_ask = m.l2.best_ask_price()
    # One order the venue refuses (post-only through the market), one risk refuses (far off the mid),
    # one the OMS refuses (a symbol the venue does not list), and a sequence gap with its resync.
    kernel.oms.new_order("sim", "BTC/USDT", BUY, best_ask + 1, 1, POST_ONLY, tag="test")
    kernel.oms.new_order("sim", "BTC/USDT", SELL, best_ask * 2, 1, tag="test")
    kernel.oms.new_order("sim", "ETH/USDT", BUY, 100, 1, tag="test")
    kernel.bus.publish(BookDelta(kernel.clock.now(), "sim", "BTC/USDT", m.l2.seq + 5, BUY, 1, 1))
    metrics.update()
    after = scrape(metrics)

    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("lobterm_orders_total") == 1  # only the post-only order reached the venue
    assert moved("lobterm_cancels_total") == 0 and moved("lobterm_fills_total") == 0
    assert moved("lobterm_rejects_total", request="new", reason="post_only_would_trade") == 1
    assert moved("lobterm_rejects_total", request="new", reason="risk:price_band") == 1
    assert moved("lobterm_rejects_total", request="new", reason="sim does not list 'ETH/USDT'") == 1
    assert moved("lobterm_rejects_total") == 3
    assert moved("lobterm_order_roundtrip_seconds_count") == 1
    assert moved("lobterm_feed_gaps_total", venue="sim", symbol="BTC/USDT") == 1
    assert moved("lobterm_feed_resyncs_total", venue="sim", symbol="BTC/USDT") == 1
    assert kernel.oms.risk_rejects.get("price_band") == 1


async def test_a_blocked_event_loop_shows_as_lag():
    cfg = Config()
    cfg.metrics = MetricsConfig(port=0)
    kernel, venue = build_sim_kernel(cfg, virtual=True)
    metrics = start_metrics(kernel, cfg.metrics)
    try:

        async def samples() -> float:
            s = await asyncio.to_thread(scrape, metrics)
            return value(s, "lobterm_event_loop_lag_seconds_count")

        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5
        while await samples() < 1 and loop.time() < deadline:
            await asyncio.sleep(0.05)
        n = await samples()
        time.sleep(0.6)  # a handler that blocks the loop (longer than the monitor's 0.25 s period)
        while await samples() <= n and loop.time() < deadline:
            await asyncio.sleep(0.05)
        metrics.update()
        s = await asyncio.to_thread(scrape, metrics)
        assert value(s, "lobterm_event_loop_lag_last_seconds") >= 0.3
        assert value(s, "lobterm_event_loop_lag_seconds_bucket", le="0.25") < value(
            s, "lobterm_event_loop_lag_seconds_count"
        )
    finally:
        metrics.stop()


def test_reason_labels_stay_bounded():
    assert reason_label("risk: position: would be 2.100 > 2.000") == "risk:position"
    assert reason_label("unknown order id 12345") == "unknown order id N"
    assert reason_label("post_only_would_trade") == "post_only_would_trade"


async def test_the_recorder_backlog_is_exported(tmp_path):
    cfg = Config()
    cfg.metrics = MetricsConfig(port=0)
    kernel, venue = build_sim_kernel(cfg, virtual=True)
    recorder = start_recording(kernel, tmp_path)
    metrics = start_metrics(kernel, cfg.metrics)
    try:
        venue.open()
        for _ in range(20):
            venue.step()  # no on_timer: on a virtual clock the recorder has not flushed yet
        metrics.update()
        s = await asyncio.to_thread(scrape, metrics)
        assert recorder.backlog > 0
        assert value(s, "lobterm_recorder_backlog") == recorder.backlog
    finally:
        metrics.stop()
        await stop_recording(kernel)


async def test_every_metric_the_grafana_dashboard_plots_is_exported(tmp_path):
    import json
    import re
    from pathlib import Path

    from lobterm.config import FeedConfig
    from lobterm.services import start_services

    dashboard = json.loads((Path(__file__).resolve().parents[2] / "dashboards" / "lobterm.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    plotted = {re.sub(r"_(bucket)$", "", name) for e in exprs for name in re.findall(r"lobterm_[a-z_]+", e)}
    assert len(plotted) > 15
    cfg = Config()
    cfg.sim.market = "perp"  # the margin panels plot a perpetual's gauges
    cfg.metrics = MetricsConfig(port=0)
    cfg.feed = FeedConfig(enabled=True, port=0)
    kernel, venue = build_sim_kernel(cfg, virtual=True)
    start_recording(kernel, tmp_path)
    mm = kernel.add_market_maker(quote_params(cfg))
    assert await start_services(kernel, cfg) == []
    try:
        venue.open()
        m = kernel.default_market
        kernel.oms.new_order(m.venue, m.symbol, 0, m.l2.best_ask_price() + 20, 1000, 2, tag="test")
        mm.resume()
        for _ in range(200):
            venue.step()
        kernel.market_makers[0].pause()  # some cancels
        await asyncio.sleep(0.3)  # a loop-lag sample
        kernel.metrics.update()
        s = await asyncio.to_thread(scrape, kernel.metrics)
        exported = {re.sub(r"_(bucket|count|sum|created)$", "", n) for n in s}
        assert plotted <= exported, f"plotted but never exported: {sorted(plotted - exported)}"
    finally:
        await kernel.stop()
        await stop_recording(kernel)


def test_markouts_are_exported_per_horizon_and_source_with_a_bounded_label_set(run):
    kernel, _venue, metrics, _tally = run
    metrics.update()
    samples = scrape(metrics)
    engine = kernel.markouts.engine
    curve = engine.curve()
    assert curve[0].fills > 0
    expected = curve[0].markout2 * 10_000 / (2 * curve[0].notional)
    assert value(samples, "lobterm_markout_bps", horizon="1s", source="all") == pytest.approx(expected)
    assert value(samples, "lobterm_markout_fills", horizon="5s", source="mm") == curve[1].fills
    labels = {(lab["horizon"], lab["source"]) for lab, _ in samples["lobterm_markout_fills"]}
    assert {s for _, s in labels} <= {"all", "mm", "market"}
    assert {h for h, _ in labels} == {"1s", "5s", "30s", "60s"}
    assert "lobterm_markout_toxic_fills_total" in samples


def test_a_perpetual_exports_its_margin_ratio_and_distance_to_liquidation():
    from fractions import Fraction

    from lobterm.trading.margin import distance_bps

    cfg = Config()
    cfg.sim.market = "perp"
    kernel, venue = build_sim_kernel(cfg, virtual=True)
    metrics = start_metrics(kernel, MetricsConfig(port=0))
    try:
        venue.open()
        m = kernel.default_market
        kernel.oms.new_order(m.venue, m.symbol, BUY, m.l2.best_ask_price() + 20, 2000, 2, tag="test")
        metrics.update()
        samples = scrape(metrics)
    finally:
        metrics.stop()
    st = kernel.margin.status(m.venue, m.symbol)
    ratio = value(samples, "lobterm_margin_ratio", venue="sim", symbol="BTC/USDT")
    dist = value(samples, "lobterm_liquidation_distance_bps", venue="sim", symbol="BTC/USDT")
    assert ratio == float(st.margin_ratio) and 0 < ratio < Fraction(1, 10)
    assert dist == float(distance_bps(st)) and 3700 < dist < 3900

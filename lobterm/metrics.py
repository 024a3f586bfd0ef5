"""Prometheus metrics of one kernel, and their HTTP exporter (127.0.0.1:9464 unless configured).

Everything lives in the kernel's own `CollectorRegistry`, never prometheus-client's global one, so two
kernels in one process (tests, backtests) never mix their figures.

Cost on the hot path: the bus delivers market data events to handlers that add 1 to a plain int in
a dict (no lock, no label lookup); our order events (far rarer) also feed two histograms. A custom
collector turns the int dicts into Prometheus counters when the exporter is scraped (from its own
thread: it only copies dicts, which the GIL makes atomic). Position, P&L, exposure and staleness are
computed on the kernel's timer (`on_timer`, at most every `interval_s`) on the loop, and the scrape
thread reads the last computed values. Prometheus carries floats only: exact Decimal P&L becomes a
float here, at the metric boundary, and nowhere else.

Latencies:
- order round trip: kernel clock at the venue's answer (Accepted or the Rejected of a new order)
  minus the kernel clock when the OMS routed the order (virtual time in a sim run);
- tick to quote: the market maker's own measure (wall clock from the book event that made it
  requote to its first request), read once per requote cycle that sent something;
- event-loop lag: how late a periodic sleep on the loop wakes up.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import re
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import start_http_server

from lobterm.engine.bounds import METRIC_REASONS
from lobterm.engine.events import (
    OUR_OWNER,
    Accepted,
    Amended,
    BookDelta,
    BookGap,
    BookSnapshot,
    Cancelled,
    Done,
    Fill,
    Rejected,
    Trade,
    VenueStatus,
)
from lobterm.engine.instrument import FEE_SCALE
from lobterm.trading.inventory import to_quote
from lobterm.trading.margin import distance_bps
from lobterm.trading.oms import REJECTED_STATE, RISK_PREFIX

if TYPE_CHECKING:
    from lobterm.config import MetricsConfig
    from lobterm.kernel import Kernel

log = logging.getLogger(__name__)

__all__ = ["Metrics", "MetricsError", "reason_label"]

LOOP_LAG_INTERVAL_S = 0.25
MAX_REASONS = METRIC_REASONS  # distinct reasons per family before the rest count as "other"
ROUNDTRIP_BUCKETS = (
    0.0,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
TICK_TO_QUOTE_BUCKETS = (
    0.000005,
    0.00001,
    0.000025,
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.1,
)
LOOP_LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

_DIGITS = re.compile(r"\d+")


class MetricsError(RuntimeError):
    """The exporter could not start (the address is in use, say); the kernel runs on without it."""


def reason_label(reason: str) -> str:
    """A bounded label for a reject or cancel reason: "risk:<rule>" for a risk refusal, else the text
    before its first colon with numbers replaced by N (so that "unknown order id 17" does not make a
    new time series per order)."""
    if reason.startswith(RISK_PREFIX):
        return "risk:" + reason[len(RISK_PREFIX) :].split(":", 1)[0].strip()
    head = reason.split(":", 1)[0].strip()
    return _DIGITS.sub("N", head)[:60] or "unknown"


class _Counts:
    """Label tuple -> int, for one counter family. Incremented on the loop, read by the scrape thread."""

    __slots__ = ("name", "doc", "labels", "values", "cap")

    def __init__(self, name: str, doc: str, labels: tuple[str, ...], cap: int | None = None) -> None:
        self.name = name
        self.doc = doc
        self.labels = labels
        self.values: dict[tuple, int] = {}
        self.cap = cap

    def inc(self, key: tuple, n: int = 1) -> None:
        v = self.values
        if key not in v and self.cap is not None and len(v) >= self.cap:
            key = key[:-1] + ("other",)
        v[key] = v.get(key, 0) + n

    def family(self) -> CounterMetricFamily:
        fam = CounterMetricFamily(self.name, self.doc, labels=self.labels)
        for key, value in dict(self.values).items():
            fam.add_metric(list(key), value)
        return fam

    def total(self) -> int:
        return sum(dict(self.values).values())


class Metrics:
    """The metrics of `kernel`. `start()` subscribes, starts the exporter (if enabled) and, when a loop
    runs, the event-loop lag monitor; `stop()` undoes it. `text()` is what a scrape returns."""

    def __init__(self, kernel: Kernel, config: MetricsConfig | None = None) -> None:
        from lobterm.config import MetricsConfig

        self.kernel = kernel
        self.config = config or MetricsConfig()
        self.registry = CollectorRegistry(auto_describe=False)
        c = self._counts = {
            "orders": _Counts(
                "lobterm_orders", "Our new orders that reached the venue.", ("venue", "symbol")
            ),
            "fills": _Counts("lobterm_fills", "Fills of our orders.", ("venue", "symbol", "liquidity")),
            "filled_lots": _Counts(
                "lobterm_filled_lots",
                "Lots of our orders filled (the instrument's lot size).",
                ("venue", "symbol"),
            ),
            "cancels": _Counts(
                "lobterm_cancels",
                "Our orders cancelled (by request, expiry, self-trade, ...), per reason.",
                ("venue", "symbol", "reason"),
                MAX_REASONS,
            ),
            "rejects": _Counts(
                "lobterm_rejects",
                "Refusals of our requests (venue and pre-trade risk), per request kind and reason.",
                ("venue", "symbol", "request", "reason"),
                MAX_REASONS,
            ),
            "feed": _Counts(
                "lobterm_feed_messages",
                "Market data messages per stream and kind.",
                ("venue", "symbol", "kind"),
            ),
            "gaps": _Counts(
                "lobterm_feed_gaps",
                "Breaks in a book stream (a sequence gap, an unreadable frame, a dropped connection): the book is stale until resynced.",
                ("venue", "symbol"),
            ),
            "resyncs": _Counts(
                "lobterm_feed_resyncs", "Book snapshots after the first (a resync).", ("venue", "symbol")
            ),
            "status": _Counts(
                "lobterm_venue_status_changes",
                "Venue status events per state.",
                ("venue", "state"),
                MAX_REASONS,
            ),
        }
        for key in kernel.markets:  # known series start at 0, so that rate() and increase() see the first one
            for name in ("orders", "filled_lots", "gaps", "resyncs"):
                c[name].values[key] = 0
            for liquidity in ("maker", "taker"):
                c["fills"].values[key + (liquidity,)] = 0
        self._feed = c["feed"].values  # the hot-path dict, bound once
        self._last_md_ns: dict[tuple[str, str], int] = {}
        self._snapshots_seen: set[tuple[str, str]] = set()
        self._oms_cancel_rejects = kernel.oms.cancel_rejects
        self._oms_amend_rejects = kernel.oms.amend_rejects
        self._mm_sent: dict[int, int] = {}
        self._gauges: list[Metric] = []
        self._next_update = 0.0
        self.loop_lag_s = 0.0
        self.roundtrip = Histogram(
            "lobterm_order_roundtrip_seconds",
            "Order request to the venue's answer (Accepted or Rejected), kernel clock.",
            ["venue"],
            buckets=ROUNDTRIP_BUCKETS,
            registry=self.registry,
        )
        self.tick_to_quote = Histogram(
            "lobterm_tick_to_quote_seconds",
            "Book event to the market maker's first request of the requote it caused (wall clock).",
            ["venue", "symbol"],
            buckets=TICK_TO_QUOTE_BUCKETS,
            registry=self.registry,
        )
        self.loop_lag = Histogram(
            "lobterm_event_loop_lag_seconds",
            "How late a periodic sleep on the event loop woke up.",
            buckets=LOOP_LAG_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_Collector(self))
        self.server: Any = None
        self.address: tuple[str, int] | None = None
        #: The configured port when it was taken and the exporter listens on a free one instead.
        self.port_taken: int | None = None
        self._lag_task: asyncio.Task | None = None
        self._subscribed = False

    # ---- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        """Subscribe to the bus, start the loop-lag monitor if a loop runs, then the exporter if enabled
        (MetricsError if it cannot bind: the counters keep counting, `text()` still works)."""
        if not self._subscribed:
            self._subscribe()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is not None and self._lag_task is None:
            self._lag_task = loop.create_task(self._watch_loop(), name="metrics-loop-lag")
        self.update()
        if self.config.enabled and self.server is None:
            self.start_exporter()

    def start_exporter(self) -> tuple[str, int]:
        """Listen on the configured address; if its port is taken (a second lobterm on the host), on a free
        port instead (`port_taken` says which was wanted): a busy port must not cost the metrics."""
        host, port = self.config.host, self.config.port
        try:
            server, _thread = start_http_server(port, host, registry=self.registry)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE or port == 0:
                raise MetricsError(
                    f"metrics exporter cannot listen on {host}:{port}: {exc.strerror or exc}"
                ) from None
            try:
                server, _thread = start_http_server(0, host, registry=self.registry)
            except OSError as again:
                raise MetricsError(
                    f"metrics exporter cannot listen on {host}:{port} (in use) nor on a free port: "
                    f"{again.strerror or again}"
                ) from None
            self.port_taken = port
        self.server = server
        bound_host, bound_port = server.server_address[:2]
        if not isinstance(bound_host, str):  # AF_INET/AF_INET6 servers give a str host
            bound_host = bytes(bound_host).decode()
        self.address = address = (bound_host, bound_port)
        log.info("metrics exporter listening on http://%s:%d/metrics", *address)
        if self.port_taken is not None:
            log.warning(
                "metrics port %d is in use: exporting on %d instead",
                self.port_taken,
                server.server_address[1],
            )
        return address

    def stop(self) -> None:
        if self._lag_task is not None:
            self._lag_task.cancel()
            self._lag_task = None
        if self.server is not None:
            # shutdown() waits for the server's next poll (up to 0.5 s): not on the event loop.
            server, self.server = self.server, None
            threading.Thread(
                target=_close_server, args=(server,), name="metrics-exporter-stop", daemon=True
            ).start()
        if self._subscribed:
            bus = self.kernel.bus
            for handler in (
                self._on_delta,
                self._on_snapshot,
                self._on_trade,
                self._on_gap,
                self._on_status,
                self._on_order_event,
            ):
                bus.unsubscribe(handler)
            self._subscribed = False

    def text(self) -> bytes:
        """The exposition text a scrape gets (after refreshing the gauges)."""
        self.update()
        return generate_latest(self.registry)

    # ---- bus ------------------------------------------------------------------------------------
    def _subscribe(self) -> None:
        bus = self.kernel.bus
        bus.subscribe(BookDelta, self._on_delta)
        bus.subscribe(BookSnapshot, self._on_snapshot)
        bus.subscribe(Trade, self._on_trade)
        bus.subscribe(BookGap, self._on_gap)
        bus.subscribe(VenueStatus, self._on_status)
        bus.subscribe((Accepted, Fill, Cancelled, Amended, Rejected, Done), self._on_order_event)
        self._subscribed = True

    def _on_delta(self, ev: BookDelta) -> None:
        key = (ev.venue, ev.symbol, "delta")
        feed = self._feed
        feed[key] = feed.get(key, 0) + 1
        self._last_md_ns[key[:2]] = ev.ts

    def _on_trade(self, ev: Trade) -> None:
        key = (ev.venue, ev.symbol, "trade")
        feed = self._feed
        feed[key] = feed.get(key, 0) + 1
        self._last_md_ns[key[:2]] = ev.ts

    def _on_snapshot(self, ev: BookSnapshot) -> None:
        key = (ev.venue, ev.symbol)
        self._counts["feed"].inc(key + ("snapshot",))
        self._last_md_ns[key] = ev.ts
        if key in self._snapshots_seen:
            self._counts["resyncs"].inc(key)
        else:
            self._snapshots_seen.add(key)

    def _on_gap(self, ev: BookGap) -> None:
        self._counts["gaps"].inc((ev.venue, ev.symbol))

    def _on_status(self, ev: VenueStatus) -> None:
        self._counts["status"].inc((ev.venue, ev.state))

    def _on_order_event(self, ev: Any) -> None:
        if ev.owner != OUR_OWNER:
            return
        kernel = self.kernel
        if kernel.market_makers:
            self._observe_tick_to_quote()
        cls = type(ev)
        c = self._counts
        key = (ev.venue, ev.symbol)
        if cls is Fill:
            c["fills"].inc(key + ("maker" if ev.is_maker else "taker",))
            c["filled_lots"].inc(key, ev.size)
        elif cls is Accepted:
            o = kernel.oms.order(ev.order_id)
            if o is not None and o.routed:
                c["orders"].inc(key)
                self.roundtrip.labels(ev.venue).observe(max(0, kernel.clock.now() - o.created_ts) / 1e9)
        elif cls is Cancelled:
            c["cancels"].inc(key + (reason_label(ev.reason),))
        elif cls is Rejected:
            self._on_rejected(ev, key)

    def _on_rejected(self, ev: Rejected, key: tuple[str, str]) -> None:
        """Which request a Rejected answers: the OMS has already applied it (it is the bus's first
        subscriber), so its per-kind reject counters say whether it was a cancel or an amend."""
        oms = self.kernel.oms
        o = oms.order(ev.order_id)
        if oms.cancel_rejects != self._oms_cancel_rejects:
            self._oms_cancel_rejects = oms.cancel_rejects
            request = "cancel"
        elif oms.amend_rejects != self._oms_amend_rejects:
            self._oms_amend_rejects = oms.amend_rejects
            request = "amend"
        elif o is not None and (o.state == REJECTED_STATE or not o.acked):
            request = "new"  # refused by risk/OMS before routing, or by the venue (its Done follows)
            if o.routed:
                self._counts["orders"].inc(key)
                self.roundtrip.labels(ev.venue).observe(max(0, self.kernel.clock.now() - o.created_ts) / 1e9)
        elif ev.reason.startswith(RISK_PREFIX):
            request = "amend"  # an amend risk refused: the order lives on
        else:
            request = "unknown"
        self._counts["rejects"].inc(key + (request, reason_label(ev.reason)))

    def _observe_tick_to_quote(self) -> None:
        sent = self._mm_sent
        for mm in self.kernel.market_makers:
            n = mm.quotes_sent + mm.amends_sent + mm.cancels_sent
            if sent.get(id(mm)) != n:
                sent[id(mm)] = n
                ns = mm.last_tick_to_quote_ns
                if ns is not None and n:
                    m = mm.market
                    self.tick_to_quote.labels(m.venue, m.symbol).observe(ns / 1e9)

    # ---- timer ----------------------------------------------------------------------------------
    def on_timer(self) -> None:
        """Refresh the gauges if `interval_s` of wall time has passed (the kernel's timer calls this)."""
        now = time.monotonic()
        if now >= self._next_update:
            self._next_update = now + self.config.interval_s
            self.update()

    def update(self) -> None:
        """Recompute position, P&L, exposure, staleness and the other gauges now."""
        kernel = self.kernel
        now_ns = kernel.clock.now()
        g_pos = GaugeMetricFamily(
            "lobterm_position",
            "Our position in base units (signed: long > 0).",
            labels=["venue", "symbol", "base"],
        )
        g_pnl = GaugeMetricFamily(
            "lobterm_pnl",
            "P&L in quote currency (realized, unrealized, fees, net).",
            labels=["venue", "symbol", "quote", "kind"],
        )
        g_exp = GaugeMetricFamily(
            "lobterm_exposure",
            "Gross exposure per venue: |position| x mark, in quote currency.",
            labels=["venue", "quote"],
        )
        g_stale = GaugeMetricFamily(
            "lobterm_feed_staleness_seconds",
            "Kernel-clock seconds since the stream's last market data message.",
            labels=["venue", "symbol"],
        )
        g_flag = GaugeMetricFamily(
            "lobterm_feed_stale", "1 while the venue marks the stream stale.", labels=["venue", "symbol"]
        )
        g_valid = GaugeMetricFamily(
            "lobterm_book_valid",
            "1 while the L2 book is valid (0 after a gap until its snapshot).",
            labels=["venue", "symbol"],
        )
        g_working = GaugeMetricFamily(
            "lobterm_working_orders", "Our live orders.", labels=["venue", "symbol"]
        )
        g_up = GaugeMetricFamily(
            "lobterm_venue_up", "1 while the venue's state is up.", labels=["venue", "state"]
        )
        exposure: dict[tuple[str, str], Any] = {}
        inventory = kernel.inventory
        for (venue, symbol), m in kernel.markets.items():
            inst = m.instrument
            pos = inventory.positions.get((venue, symbol))
            top = m.top()
            if pos is not None and pos.fills:
                pnl = inventory.pnl(venue, symbol, top).in_quote(inst)
                values = (pnl.realized, pnl.unrealized, pnl.fees, pnl.net)
                base_qty = float(pos.holdings * Fraction(inst.lot_size))
                mark = pos.mark_for(top, inventory.mark_mode)
                k = (venue, inst.quote or "?")
                exposure[k] = exposure.get(k, 0.0) + (
                    0.0 if mark is None else float(to_quote(inst, abs(pos.holdings * mark)))
                )
            else:
                values = (Decimal(0), Decimal(0), Decimal(0), Decimal(0))
                base_qty = 0.0
                exposure.setdefault((venue, inst.quote or "?"), 0.0)
            g_pos.add_metric([venue, symbol, inst.base or "?"], base_qty)
            for kind, value in zip(("realized", "unrealized", "fees", "net"), values, strict=False):
                g_pnl.add_metric([venue, symbol, inst.quote or "?", kind], float(value))
            last = self._last_md_ns.get((venue, symbol))
            if last is not None:
                g_stale.add_metric([venue, symbol], max(0, now_ns - last) / 1e9)
            g_flag.add_metric([venue, symbol], 1.0 if m.stale else 0.0)
            g_valid.add_metric([venue, symbol], 1.0 if m.l2.valid else 0.0)
            g_working.add_metric(
                [venue, symbol], float(sum(1 for _ in kernel.oms.market_orders(venue, symbol)))
            )
        for (venue, quote), value in exposure.items():
            g_exp.add_metric([venue, quote], value)
        for venue, state in kernel.venue_state.items():
            g_up.add_metric([venue, state], 1.0 if state == "up" else 0.0)
        g_lag = GaugeMetricFamily(
            "lobterm_event_loop_lag_last_seconds", "The last event-loop lag sample.", value=self.loop_lag_s
        )
        gauges: list[Metric] = [g_pos, g_pnl, g_exp, g_stale, g_flag, g_valid, g_working, g_up, g_lag]
        gauges.append(
            CounterMetricFamily("lobterm_bus_events", "Events the bus delivered.", value=kernel.bus.published)
        )
        gauges.append(
            CounterMetricFamily(
                "lobterm_bus_subscriber_errors",
                "Subscriber exceptions caught by the bus.",
                value=kernel.bus.errors,
            )
        )
        gauges.append(
            GaugeMetricFamily(
                "lobterm_risk_killed",
                "1 while the kill switch is on.",
                value=1.0 if kernel.risk.killed else 0.0,
            )
        )
        feed = getattr(kernel, "feed", None)
        if feed is not None:
            gauges.append(
                GaugeMetricFamily(
                    "lobterm_feed_clients",
                    "WebSocket feed clients connected.",
                    value=float(len(feed.clients)),
                )
            )
            fam = CounterMetricFamily(
                "lobterm_feed_client_events",
                "WebSocket feed: connections, refusals, bad requests and slow clients dropped.",
                labels=["event"],
            )
            for event, n in feed.stats().items():
                if event != "clients":
                    fam.add_metric([event], n)
            gauges.append(fam)
        gauges.extend(_markout_families(kernel.markouts))
        gauges.extend(_margin_families(kernel))
        recorder = getattr(kernel, "recorder", None)
        backlog = getattr(recorder, "backlog", None) if recorder is not None else None
        if isinstance(backlog, (int, float)):
            gauges.append(
                GaugeMetricFamily(
                    "lobterm_recorder_backlog",
                    "Events buffered by the recorder, not yet written.",
                    value=float(backlog),
                )
            )
        self._gauges = gauges  # one assignment: the scrape thread sees the old list or the new one

    async def _watch_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            t0 = loop.time()
            await asyncio.sleep(LOOP_LAG_INTERVAL_S)
            lag = max(0.0, loop.time() - t0 - LOOP_LAG_INTERVAL_S)
            self.loop_lag_s = lag
            self.loop_lag.observe(lag)

    # ---- the scrape side -------------------------------------------------------------------------
    def families(self) -> Iterator[Metric]:
        for counts in self._counts.values():
            yield counts.family()
        yield from self._gauges

    def counts(self, name: str) -> dict[tuple, int]:
        """A copy of one counter family's values (label tuple -> count), for summaries and tests."""
        return dict(self._counts[name].values)


def _margin_families(kernel: Kernel) -> list[Metric]:
    """Perpetual markets: margin ratio, distance to liquidation, funding paid and liquidations."""
    margin = getattr(kernel, "margin", None)
    if margin is None or not margin.terms:
        return []
    ratio = GaugeMetricFamily(
        "lobterm_margin_ratio",
        "Perpetuals: maintenance margin / equity at the venue's mark (the venue liquidates at 1; "
        "flat: 0; no equity left: 1).",
        labels=["venue", "symbol"],
    )
    dist = GaugeMetricFamily(
        "lobterm_liquidation_distance_bps",
        "Perpetuals: |mark - liquidation price| / mark in basis points (absent while flat or when the "
        "position cannot be liquidated).",
        labels=["venue", "symbol"],
    )
    funding = GaugeMetricFamily(
        "lobterm_funding_paid",
        "Perpetuals: funding paid on the position this session, quote currency (negative: received).",
        labels=["venue", "symbol", "quote"],
    )
    liqs = CounterMetricFamily(
        "lobterm_liquidations", "Perpetuals: liquidations by the venue.", labels=["venue", "symbol"]
    )
    for venue, symbol in margin.terms:
        st = margin.status(venue, symbol)
        m = kernel.markets.get((venue, symbol))
        if m is None:
            continue
        pos = kernel.inventory.position(venue, symbol)
        if st is not None:
            r = st.margin_ratio
            ratio.add_metric([venue, symbol], 1.0 if r is None else float(r))
            d = distance_bps(st)
            if d is not None:
                dist.add_metric([venue, symbol], float(d))
        inst = m.instrument
        paid = to_quote(inst, Fraction(pos.funding, FEE_SCALE))
        funding.add_metric([venue, symbol, inst.quote or "?"], float(paid))
        liqs.add_metric([venue, symbol], pos.liquidations)
    return [ratio, dist, funding, liqs]


def _markout_families(feed: Any) -> list[Metric]:
    """lobterm_markout_bps{horizon,source}: the average markout of our fills (source "all", each order
    tag up to [markouts] max_sources, "market" for the trades baseline), notional-weighted, in bps; the
    fills behind it, the worst-decile share of markout loss and the toxic fills."""
    if feed is None:
        return []
    engine = feed.engine
    bps = GaugeMetricFamily(
        "lobterm_markout_bps",
        "Average markout of fills at a horizon, in bps (positive: the mid moved our way).",
        labels=["horizon", "source"],
    )
    n = GaugeMetricFamily(
        "lobterm_markout_fills", "Fills whose markout at the horizon is known.", labels=["horizon", "source"]
    )
    for (group, value), buckets in list(engine.buckets.items()):
        if group not in ("all", "source", "baseline"):
            continue
        source = value
        for h, b in zip(engine.config.horizons_s, buckets, strict=True):
            label = f"{h:g}s"
            n.add_metric([label, source], float(b.fills))
            if b.notional:
                bps.add_metric([label, source], b.markout2 * 10_000 / (2 * b.notional))
    out: list[Metric] = [bps, n]
    share = engine.worst_decile_share()
    if share is not None:
        out.append(
            GaugeMetricFamily(
                "lobterm_markout_worst_decile_share",
                "Share of markout loss (at the adverse horizon) carried by the worst 10% of fills.",
                value=float(share),
            )
        )
    out.append(
        CounterMetricFamily(
            "lobterm_markout_toxic_fills",
            "Fills whose markout at the first horizon was worse than [markouts] toxic_bps.",
            value=engine.toxic,
        )
    )
    return out


def _close_server(server: Any) -> None:
    server.shutdown()
    server.server_close()


class _Collector:
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Any]:
        return self._metrics.families()

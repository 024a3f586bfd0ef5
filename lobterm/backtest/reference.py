"""Backtests: the market maker rerun over a session's recorded venue data, with paper fills.

`run_backtest(path, params)` builds a kernel on the session's instruments whose venues are
`ReplayVenue`s in backtest mode (lobterm/venues/replay.py): the kernel and the paper desk see the
others' book only (our original orders removed: on a venue whose L2 book held our resting orders,
our recorded resting size is subtracted level by level, derived from our recorded order events), the
recorded trades as they printed, and the venue status. A real `MarketMaker` quotes on it through the
real OMS and risk checks, and the `PaperDesk` fills its orders with queue position and latency
(lobterm/trading/paper.py). Same file, same parameters: same result.

What it measures: our fills and volume, realized / unrealized P&L (marked to the mid) and fees, the
inventory path (min / max / final position), the maximum drawdown of net P&L (sampled at every fill
and every venue trade, marked to the mid), and the time quoted: the share of the session during
which we had at least one resting order on each side.

Recorded trades are replayed as they printed, including those that hit our original orders: had we
quoted differently, those takers would have met someone else (or us). This is the usual assumption
of tick-data backtests (hftbacktest makes it too) and one reason a backtest of the recorded
parameters does not reproduce the recorded fills exactly (see tests/integration/test_backtest.py).

What was recorded is what is backtested: a trader who tuned the market maker live (`>`, `)`, `e`, the
parameter form) left one `Note("mm", "params", {"market": ..., **changes})` per change in the session
file, in bus order. With the recorded parameters (no `params` given, or `recorded_changes=True`) each
change applies at its place in the session, as it did live; with parameters given from the start
(`--config`, a sweep's parameter set) the recorded changes are left out, and the result's
`params_source` says which, with the changes in `param_changes`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import fields
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from lobterm.assemble import kernel_for, load_strategy
from lobterm.backtest.models import LatencyModel, apply_models, session_latency
from lobterm.backtest.result import FEE_SCALE, BacktestResult, plain, quote_decimals
from lobterm.clock import VirtualClock
from lobterm.engine.events import FOK, IOC, MARKET, OUR_OWNER, Accepted, Done, Fill, Trade
from lobterm.kernel import TIMER_INTERVAL_S, Kernel
from lobterm.recording.params import ParamChange, recorded_param_changes
from lobterm.recording.player import build_replay_venues, paper_config_from
from lobterm.recording.reader import SessionError, SessionReader
from lobterm.recording.schema import Note
from lobterm.trading.inventory import to_quote
from lobterm.trading.markouts import markout_text
from lobterm.trading.paper import PaperConfig

if TYPE_CHECKING:
    from _typeshed import SupportsKeysAndGetItem

    from lobterm.trading.quoting import QuoteParams

__all__ = ["ParamChange", "recorded_param_changes", "resolve_params", "run_backtest", "source_with_changes"]


def resolve_params(
    recorded: Mapping[str, Any] | None, overrides: SupportsKeysAndGetItem[str, Any] | None
) -> tuple[QuoteParams, str]:
    """QuoteParams from the recorded [mm] section (JSON from the file: checked by `validate`), changed by
    `overrides` (a config's [mm]: the keys it set)."""
    from lobterm.trading.quoting import QuoteParams

    base: dict[str, Any] = dict(recorded or {})
    source = "recorded" if base else "defaults"
    if overrides:
        base.update(overrides)
        source = f"{source} + --config" if source == "recorded" else "--config"
    kwargs: dict[str, Any] = {k: (tuple(v) if isinstance(v, list) else v) for k, v in base.items()}
    p = QuoteParams(**kwargs)
    p.validate()
    return p, source


def source_with_changes(source: str, changes: list[ParamChange], applied: bool) -> str:
    """`params_source` with what became of the session's recorded live changes."""
    n = len(changes)
    if not n:
        return source
    what = f"{n} live change{'s' if n != 1 else ''}"
    return (
        f"{source} + {what} at their recorded times" if applied else f"{source}; {what} recorded, not applied"
    )


def timer_interval_ns(reader: SessionReader) -> int:
    """How often the session's kernel timer ran: after each sim step on a virtual clock (1/`rate_hz`
    of the recorded [sim]), else every TIMER_INTERVAL_S."""
    if reader.clock == "virtual":
        rate = (reader.config.get("sim") or {}).get("rate_hz")
        if isinstance(rate, int | float) and not isinstance(rate, bool) and rate > 0:
            return max(1, round(1e9 / rate))
    return round(TIMER_INTERVAL_S * 1e9)


def _deliver_due(venues: list[Any], advance: Callable[[int], None], ts: int) -> None:
    """Apply the paper requests due before `ts` at their due times, in due order (the answers go on
    the bus then; a strategy that requotes on them sends at that time)."""
    while True:
        due = None
        for v in venues:
            d = v.desk.next_due()
            if d is not None and d < ts and (due is None or d < due):
                due = d
        if due is None:
            return
        advance(due)
        for v in venues:
            v.on_time(due)


class _Tracker:
    """Our fills, the inventory path, the drawdown and the time quoted, from the bus."""

    def __init__(self, kernel: Kernel, market: Any, start_ts: int) -> None:
        self.kernel = kernel
        self.market = market
        self.pos = kernel.inventory.position(market.venue, market.symbol)
        self.resting: tuple[set[int], set[int]] = (set(), set())
        self.quoted_since: int | None = None
        self.quoted_ns = 0
        self.pos_min = self.pos_max = 0
        self.path: list[tuple[int, int]] = []  # (ts, position) after each fill
        self.peak: int | None = None
        self.max_dd = 0  # net P&L units: tick*lots * 2 * FEE_SCALE
        self.start_ts = start_ts
        bus = kernel.bus
        bus.subscribe((Accepted, Done), self.on_order)
        bus.subscribe(Fill, self.on_fill)
        bus.subscribe(Trade, self.on_trade)

    def _both(self) -> bool:
        return bool(self.resting[0]) and bool(self.resting[1])

    def on_order(self, ev: Any) -> None:
        if ev.owner != OUR_OWNER:
            return
        before = self._both()
        if ev.__class__ is Accepted:
            if ev.order_type not in (MARKET, IOC, FOK) and ev.price > 0:
                self.resting[ev.side].add(ev.order_id)
        else:
            self.resting[0].discard(ev.order_id)
            self.resting[1].discard(ev.order_id)
        after = self._both()
        if after != before:
            if after:
                self.quoted_since = ev.ts
            elif self.quoted_since is not None:
                self.quoted_ns += ev.ts - self.quoted_since
                self.quoted_since = None

    def on_fill(self, ev: Fill) -> None:
        if ev.owner != OUR_OWNER:
            return
        lots = self.pos.lots
        if lots < self.pos_min:
            self.pos_min = lots
        if lots > self.pos_max:
            self.pos_max = lots
        self.path.append((ev.ts, lots))
        self.sample()

    def on_trade(self, ev: Trade) -> None:
        if self.pos.fills:
            self.sample()

    def sample(self) -> None:
        l2 = self.market.l2
        bid, ask = l2.best_bid_price(), l2.best_ask_price()
        if bid is None or ask is None:
            return
        p = self.pos
        net = (2 * p.cash + p.lots * (bid + ask)) * FEE_SCALE - 2 * p.fees
        if self.peak is None or net > self.peak:
            self.peak = net
        elif self.peak - net > self.max_dd:
            self.max_dd = self.peak - net

    def finish(self, end_ts: int) -> None:
        if self.quoted_since is not None:
            self.quoted_ns += max(0, end_ts - self.quoted_since)
            self.quoted_since = None
        self.sample()


def run_backtest(
    path: str,
    params: Any = None,
    *,
    params_source: str = "given",
    latency_ms: float = 0.0,
    paper: PaperConfig | None = None,
    progress: Callable[[int, int], None] | None = None,
    symbol: str | None = None,
    strategies: Mapping[str, Mapping[str, Any]] | None = None,
    market_maker: bool = True,
    recorded_changes: bool | None = None,
    latency: LatencyModel | None = None,
    queue: str | None = None,
    observe: Callable[[Kernel], None] | None = None,
    timer: bool = False,
) -> BacktestResult:
    """Rerun the market maker over the session at `path` (see the module docstring). `params`: a
    QuoteParams (None: the recorded ones, else the defaults). `recorded_changes`: apply the session's
    recorded live parameter changes at their times (None: when `params` is None, i.e. the recorded
    parameters). `progress(done, total)` is called every few thousand events. `strategies`: user
    strategies (`[strategies.NAME]` specs) run beside it, on the same paper venue, started at once;
    `market_maker=False` runs them alone. `latency` / `queue`: the fill models
    (lobterm/backtest/models.py; `latency` None: `latency_ms` for every request; `queue` None: the
    paper config's, risk-averse by default). `observe(kernel)` is called once the kernel is built,
    before any event (a fidelity report subscribes its fill collector there). `timer`: run the kernel's
    timer as the session did (`timer_interval_ns`): the strategies' `on_timer`, the market maker's
    heartbeat (a full diff, which sends what an event-driven requote held back); a fidelity report
    reruns a session with it (to the lot on a paper sim session); off by default, as in the fast path
    (lobterm/backtest/fast.py), which has no timer, so that the two paths agree."""
    with SessionReader(path) as reader:
        first_ts, last_ts = reader.time_range()
        if first_ts is None or last_ts is None:
            raise SessionError(path, "the session has no events: nothing to backtest")
        total = reader.last_seq
        if recorded_changes is None:
            recorded_changes = params is None
        if params is None:
            params, params_source = resolve_params(reader.config.get("mm"), None)
        if latency is None:
            latency = LatencyModel.constant(latency_ms)
        latency_ms = latency.single_ms
        rec_latency = session_latency(reader, latency, symbol)
        pcfg = apply_models(
            paper or paper_config_from(reader.config, reader.venues), latency, queue, rec_latency
        )
        venues = build_replay_venues(reader, show_recorded_orders=False, paper=pcfg)
        clock = VirtualClock(first_ts)
        kernel = kernel_for(venues, clock)
        if symbol is None:
            market = kernel.default_market
        else:
            found = [m for m in kernel.markets.values() if m.symbol == symbol]
            if not found:
                raise SessionError(path, f"the session has no market {symbol!r}")
            market = found[0]
        changes = recorded_param_changes(reader, market.venue, market.symbol)
        params_source = source_with_changes(params_source, changes, recorded_changes)
        pending = {c.seq: c for c in changes} if recorded_changes and market_maker else {}
        applied: list[dict[str, Any]] = []
        tracker = _Tracker(kernel, market, first_ts)
        if observe is not None:
            observe(kernel)
        mm = kernel.add_market_maker(params, market) if market_maker else None
        if mm is not None:
            mm.resume()
        for name, spec in (strategies or {}).items():
            kernel.add_strategy(load_strategy(kernel, name, dict(spec), market))
            problem = kernel.resume_strategy(name, source="backtest")
            if problem:
                raise ValueError(problem)
        by_name = {v.name: v for v in venues}
        # With latency, requests that reach the desk between two batches are answered at their due
        # time, before the next batch (not behind it, where the market maker would read the answer
        # only after requoting on that batch: a whole batch of extra staleness).
        latent = [v for v in venues if not latency.is_zero]
        # The kernel's timer, as the session ran it (strategies' heartbeats: the market maker's full
        # diff now and then, which sends what an event-driven requote deferred): on a virtual clock the
        # driver called it after each sim step, else the kernel's own timer ran every TIMER_INTERVAL_S.
        interval = timer_interval_ns(reader)
        next_tick = first_ts + interval if timer else None

        def tick_before(ts: int) -> None:
            nonlocal next_tick
            while next_tick is not None and next_tick < ts:
                if latent:
                    _deliver_due(latent, advance, next_tick)
                advance(next_tick)
                kernel.on_timer()
                next_tick += interval

        t0 = time.perf_counter()
        n = 0
        advance = clock.advance_to
        publish_many = kernel.bus.publish_many
        batch: list = []
        batch_ts = None
        # The events of one timestamp go out as one batch, as the venue published them: the market
        # maker requotes once per batch, not between the prints of one taker's sweep.
        for seq, ts, ev in reader.events(1, notes=bool(pending)):
            if ev.__class__ is Note:
                change = pending.get(seq)
                if change is not None:  # after the events before it, before those after it, as live
                    if batch:
                        publish_many(batch)
                        batch = []
                    if ts != batch_ts:
                        batch_ts = ts
                        tick_before(ts)
                        advance(ts)
                    applied.append(_apply_change(mm, change, first_ts))
                n += 1
                continue
            if ts != batch_ts:
                if batch:
                    publish_many(batch)
                    batch = []
                batch_ts = ts
                tick_before(ts)
                if latent:
                    _deliver_due(latent, advance, ts)
                advance(ts)
            ev_venue = getattr(ev, "venue", None)
            v = by_name.get(ev_venue) if isinstance(ev_venue, str) else None
            if v is not None:
                out = v.translate(ev)
                if out is not None:
                    batch.append(out)
            n += 1
            if progress is not None and not n & 4095:
                progress(n, total)
        if batch:
            publish_many(batch)
        tick_before(last_ts + 1)
        wall = time.perf_counter() - t0
        tracker.finish(last_ts)
        if progress is not None:
            progress(n, total)
    inst = market.instrument
    pos = kernel.inventory.position(market.venue, market.symbol)
    pnl = kernel.inventory.pnl(market.venue, market.symbol, market.top()).in_quote(inst)
    fmt = inst.format_size
    span = max(1, last_ts - first_ts)
    desk = by_name[market.venue].desk
    engine = kernel.markouts.engine
    engine.advance(last_ts + 1)
    markouts = engine.summary(inst, pnl.net, last_ts)
    return BacktestResult(
        path=str(path),
        venue=market.venue,
        symbol=market.symbol,
        params={f.name: plain(getattr(params, f.name)) for f in fields(params)},
        params_source=params_source,
        param_changes=applied,
        latency_ms=latency_ms,
        events=n,
        wall_seconds=wall,
        events_per_s=n / max(wall, 1e-9),
        replay_seconds=(last_ts - first_ts) / 1e9,
        quotes_sent=0 if mm is None else mm.quotes_sent,
        amends_sent=0 if mm is None else mm.amends_sent,
        cancels_sent=0 if mm is None else mm.cancels_sent,
        fills=pos.fills,
        fills_by_rule=dict(desk.fills_by_rule),
        buy_volume=f"{fmt(pos.bought)} {inst.base}",
        sell_volume=f"{fmt(pos.sold)} {inst.base}",
        volume=f"{fmt(pos.bought + pos.sold)} {inst.base}",
        realized_pnl=str(pnl.realized),
        unrealized_pnl=str(pnl.unrealized),
        fees=str(pnl.fees),
        net_pnl=str(pnl.net),
        position_min=f"{fmt(tracker.pos_min)} {inst.base}",
        position_max=f"{fmt(tracker.pos_max)} {inst.base}",
        position_final=f"{fmt(pos.lots)} {inst.base}",
        max_drawdown=str(to_quote(inst, Fraction(tracker.max_dd, 2 * FEE_SCALE))),
        quote_currency=inst.quote,
        quote_decimals=quote_decimals(inst),
        time_quoted_pct=round(100.0 * tracker.quoted_ns / span, 2),
        risk_rejects=dict(kernel.oms.risk_rejects),
        subscriber_errors=kernel.bus.errors,
        inventory_path=[[ts, lots] for ts, lots in tracker.path],
        markouts=markouts,
        markout_line=markout_text(engine, markouts),
        latency=latency.text(rec_latency),
        queue_model=pcfg.cancel_model,
    )


def _apply_change(mm: Any, change: ParamChange, first_ts: int) -> dict[str, Any]:
    """Apply one recorded change to the market maker; a change it refuses (a name or value this version
    does not take) is reported with its reason and leaves the parameters as they were."""
    from lobterm.trading.quoting import QuoteParamError

    entry: dict[str, Any] = {
        "ts": change.ts,
        "at_s": round((change.ts - first_ts) / 1e9, 3),
        "changes": dict(change.changes),
    }
    try:
        mm.update_params(**dict(change.changes))
    except (QuoteParamError, TypeError, ValueError) as exc:
        entry["problem"] = str(exc)
    return entry

"""`lobterm run --headless`: the same kernel and venue, no TUI, a summary at the end.

By default simulated time runs as fast as the machine can go on a virtual clock, so that a run is
deterministic: the same seed gives the same events and the same state hash. `realtime=True` paces
the sim venue on the wall clock instead, as the TUI does.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from dataclasses import dataclass
from decimal import Decimal

from lobterm.assemble import build
from lobterm.backtest.result import quote_decimals, rounded
from lobterm.config import Config
from lobterm.engine.events import Fill
from lobterm.kernel import SHUTDOWN_TIMEOUT_S, ShutdownReport
from lobterm.recording.recorder import config_as_dict
from lobterm.services import describe_services, start_recording, start_services
from lobterm.trading.inventory import FillAudit
from lobterm.trading.markouts import markout_text


@dataclass(slots=True)
class RunSummary:
    venue: str
    mode: str
    symbol: str
    seed: int
    sim_seconds: float
    wall_seconds: float
    events: int
    venue_trades: int
    venue_traded: str
    market_maker: bool
    our_orders: int
    our_fills: int
    our_volume: str
    our_rejects: int
    risk_rejects: dict
    position: str
    avg_cost: str | None
    realized_pnl: str
    unrealized_pnl: str
    fees: str
    net_pnl: str
    hedges: dict | None
    reconciled: bool
    reconcile_problems: list
    best_bid: str | None
    best_ask: str | None
    subscriber_errors: int
    book_gaps: int
    state_hash: str
    session: str | None = None  # the recording's path, when recorded
    #: The orderly shutdown: orders of ours still open after it (empty: none), and the signal, if any.
    left_open: list[str] | None = None
    interrupted: str = ""
    shutdown_s: float = 0.0
    #: Markouts of our fills per horizon and the P&L split (lobterm/trading/markouts.py `summary`).
    markouts: dict | None = None
    markout_line: str = ""
    quote_currency: str = ""
    quote_decimals: int = 8  # how many decimals the text shows money with

    def as_dict(self) -> dict:
        return {f: getattr(self, f) for f in self.__slots__}

    def as_text(self) -> str:
        """The summary a trader reads: money rounded to the quote currency's precision (the JSON is exact)."""
        pnl_label = f"P&L ({self.quote_currency or 'quote'})"

        def money(amount: str) -> str:
            return rounded(amount, self.quote_decimals)

        lines = [
            f"lobterm headless run: {self.venue} ({self.mode}) {self.symbol}, seed {self.seed}",
            f"  simulated {self.sim_seconds:g} s in {self.wall_seconds:.2f} s wall",
            f"  events processed   {self.events:,}",
            f"  venue trades       {self.venue_trades:,} ({self.venue_traded} traded)",
            f"  market maker       {'on' if self.market_maker else 'off'}",
            f"  our orders / fills {self.our_orders:,} / {self.our_fills:,} ({self.our_rejects} rejected)",
            f"  our volume         {self.our_volume}",
            f"  risk rejections    {self.risk_rejects or 'none'}",
            f"  position           {self.position} (average cost {self.avg_cost or '-'})",
            f"  {pnl_label:<18} realized {money(self.realized_pnl)}, unrealized "
            f"{money(self.unrealized_pnl)}, fees {money(self.fees)}, net {money(self.net_pnl)}",
            f"  markouts           {self.markout_line or '-'}",
            f"  hedges             {self.hedges if self.hedges is not None else 'no hedger'}",
            f"  books reconcile    {'yes' if self.reconciled else 'NO: ' + '; '.join(self.reconcile_problems)}",
            f"  final bid / ask    {self.best_bid} / {self.best_ask}",
            f"  book gaps          {self.book_gaps}",
            f"  subscriber errors  {self.subscriber_errors}",
            f"  state hash         {self.state_hash}",
        ]
        if self.session is not None:
            lines.append(f"  session            {self.session}")
        ended = f"{self.interrupted}, " if self.interrupted else ""
        if self.left_open:
            lines.append(
                f"  shutdown           {ended}NOT CLEAN after {self.shutdown_s:g} s: {len(self.left_open)} left"
            )
            lines.extend(f"    {line}" for line in self.left_open)
        else:
            lines.append(f"  shutdown           {ended}clean (nothing of ours open) in {self.shutdown_s:g} s")
        return "\n".join(lines)


def run_headless(
    config: Config,
    duration_s: float,
    *,
    realtime: bool = False,
    market_maker: bool = True,
    hedge_policy: str | None = None,
    paper: bool = False,
    record_to: str | os.PathLike[str] | None = None,
) -> RunSummary:
    """`record_to`: a directory (or .lobterm.sqlite file) to record the session to; None records nothing.

    The run ends through the kernel's orderly shutdown (strategies paused, everything cancelled, the
    venue asked until it holds none of ours), at the end of `duration_s` or on SIGINT, SIGTERM or SIGHUP;
    the summary's `left_open` names any order still open (the CLI then exits non-zero)."""
    if not duration_s > 0 or duration_s > 86_400 * 365:
        raise ValueError(f"duration {duration_s!r} must be a positive number of seconds (at most a year)")
    if config.venues:
        realtime = True  # live venues run on the wall clock
    asm = build(
        config,
        "headless",
        virtual=not realtime,
        paper=paper,
        market_maker=market_maker,
        hedge_policy=hedge_policy,
    )
    kernel, sim = asm.kernel, asm.sim
    fill_audit = FillAudit(fee_currency=kernel.inventory.fee_currency)  # running sums, no list of fills
    kernel.bus.subscribe(Fill, fill_audit.on_fill)
    if record_to is not None:
        start_recording(
            kernel,
            record_to,
            config=config,
            seed=config.simgroup.seed if config.sim_venues else config.sim.seed,
            header={
                "run": {
                    "headless": True,
                    "realtime": realtime,
                    "paper": paper,
                    "market_maker": market_maker,
                    "hedge_policy": hedge_policy,
                    "duration_s": duration_s,
                }
            },
        )

    def start_strategies() -> None:
        for mm in asm.market_makers:
            kernel.note("headless", "market_maker_on", config_as_dict(mm.params))
            mm.resume()
        for strategy in asm.user_strategies:
            kernel.resume_strategy(strategy.name, source="headless")

    t0 = time.perf_counter()
    shutdown_s = _shutdown_timeout(config)
    interrupted = ""
    if realtime:

        async def main() -> ShutdownReport:
            nonlocal interrupted
            loop = asyncio.get_running_loop()
            stop = asyncio.Event()

            def on_signal(name: str) -> None:
                nonlocal interrupted
                interrupted = name
                stop.set()

            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                loop.add_signal_handler(sig, on_signal, sig.name)
            await kernel.start()
            for problem in await start_services(kernel, config):  # a real-time run exports metrics too
                print(f"lobterm: {problem}", file=sys.stderr)
            for line in describe_services(kernel):
                print(f"lobterm: {line}", file=sys.stderr)
            start_strategies()
            try:
                await asyncio.wait_for(stop.wait(), duration_s)
            except TimeoutError:
                pass
            why = interrupted or f"the run's {duration_s:g} s are over"
            print(f"lobterm: {why}: shutting down (cancelling our orders)", file=sys.stderr, flush=True)
            return await kernel.shutdown(shutdown_s, source="headless")

        report = asyncio.run(main())
    else:
        assert sim is not None  # a virtual clock runs the sim only
        steps = max(1, round(duration_s * sim.config.rate_hz))
        sims = asm.sims  # several sim venues step in lock-step on the one virtual clock
        for s in sims:
            s.open()
        start_strategies()
        try:
            for _ in range(steps):
                for s in sims:
                    s.step()
                kernel.on_timer()
        except KeyboardInterrupt:
            interrupted = "SIGINT"
        report = asyncio.run(kernel.shutdown(shutdown_s, source="headless", stop=False))
        for s in sims:
            s.state = "closed"
        if kernel.recorder is not None:
            kernel.recorder.close()
    wall = time.perf_counter() - t0
    m = asm.quote_market
    inst = m.instrument
    pos = kernel.inventory.position(m.venue, m.symbol)
    pnl = kernel.inventory.pnl(m.venue, m.symbol, m.top()).in_quote(inst)
    problems = fill_audit.problems(kernel.inventory)
    hedger = kernel.hedger
    hedges = None
    if hedger is not None:
        st = hedger.stats
        hedges = {
            "policy": hedger.params.policy,
            "orders": st.orders,
            "fills": st.fills,
            "volume": f"{inst.format_size(st.volume)} {inst.base}",
            "slippage_bps": f"{Decimal(st.slippage_bps().numerator) / st.slippage_bps().denominator:.2f}",
        }
    bb, ba = m.l2.best_bid(), m.l2.best_ask()
    engine = kernel.markouts.engine
    end = kernel.clock.now()
    # Every event up to `end` is in: a horizon due at `end` itself is settled at the mid then, as the
    # backtest and a replay settle it at the session's last timestamp (advance settles due < its ts).
    engine.advance(end + 1)
    markouts = engine.summary(inst, pnl.net, end)
    markout_line = markout_text(engine, markouts, quote_decimals(inst))
    return RunSummary(
        venue=m.venue,
        mode=kernel.venues[m.venue].mode,
        symbol=m.symbol,
        seed=config.simgroup.seed if config.sim_venues else config.sim.seed,
        sim_seconds=duration_s if not realtime else round(wall, 3),
        wall_seconds=wall,
        events=kernel.bus.published,
        venue_trades=m.trades,
        venue_traded=f"{inst.format_size(m.traded_lots)} {inst.base}",
        market_maker=bool(asm.market_makers),
        our_orders=kernel.oms.sent,
        our_fills=kernel.oms.fills,
        our_volume=f"{inst.format_size(pos.bought + pos.sold)} {inst.base}",
        our_rejects=kernel.oms.rejects,
        risk_rejects=dict(kernel.oms.risk_rejects),
        position=f"{inst.format_size(pos.lots)} {inst.base}",
        avg_cost=None if pos.avg_cost is None else inst.format_price(round(pos.avg_cost)),
        realized_pnl=f"{pnl.realized:f}",
        unrealized_pnl=f"{pnl.unrealized:f}",
        fees=f"{pnl.fees:f}",  # positional: a zero fee reads 0.0000000000, not 0E-10
        net_pnl=f"{pnl.net:f}",
        quote_currency=inst.quote or "",
        quote_decimals=quote_decimals(inst),
        hedges=hedges,
        reconciled=not problems,
        reconcile_problems=problems,
        best_bid=inst.format_price(bb[0]) if bb else None,
        best_ask=inst.format_price(ba[0]) if ba else None,
        subscriber_errors=kernel.bus.errors,
        book_gaps=kernel.gaps,
        state_hash=kernel.state_hash(),
        session=None if kernel.recorder is None else str(kernel.recorder.path),
        left_open=report.lines(),
        interrupted=interrupted,
        shutdown_s=report.seconds,
        markouts=markouts,
        markout_line=markout_line,
    )


def _shutdown_timeout(config: Config) -> float:
    """How long the orderly shutdown sweeps: the longest `[venues.NAME] shutdown_timeout_s`, else 10 s."""
    timeouts = [getattr(vc, "shutdown_timeout_s", SHUTDOWN_TIMEOUT_S) for vc in config.venues.values()]
    return max(timeouts, default=SHUTDOWN_TIMEOUT_S)

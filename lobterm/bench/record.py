"""The recorder's sustained throughput and the event loop's lag while it records.

Real parts: the async recorder (aiosqlite writer thread, WAL, one transaction per flush) writing a real
SQLite file in a temporary directory, subscribed to a real `Bus` on a running asyncio loop. The events
are a sim session's own stream (book deltas, trades, our order events: a headless run with the market
maker, captured first), published over and over with fresh timestamps.

Two runs:
- `flat_out`: a producer publishes as fast as the recorder takes them (in chunks of `chunk` events with
  a yield to the loop between chunks, holding back while more than two flushes' worth are waiting);
  figure: events committed per second (until the last one is on disk).
- `paced`: the producer publishes `rate` events per second (default 300,000) in 1 ms slices; figure:
  whether the recorder kept up (backlog at the end, the largest backlog seen).
Both measure the loop's lag with a periodic task that sleeps 1 ms and records how late it woke
(p50/p99/max): what a keystroke or a UI frame would wait.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from lobterm.bus import Bus
from lobterm.recording.recorder import Recorder
from lobterm.recording.schema import FORMAT, FORMAT_VERSION

__all__ = ["run", "sample_events"]


def sample_events(steps: int = 2000, seed: int = 1) -> list:
    """A realistic event mix: a headless sim run with the market maker quoting."""
    from lobterm.assemble import build_sim_kernel
    from lobterm.config import Config, quote_params

    cfg = Config()
    cfg.sim.seed = seed
    kernel, venue = build_sim_kernel(cfg, virtual=True)
    events: list = []
    kernel.bus.subscribe_all(events.append)
    mm = kernel.add_market_maker(quote_params(cfg))
    venue.open()
    mm.resume()
    for _ in range(steps):
        venue.step()
        kernel.on_timer()
    return events


class _LagProbe:
    def __init__(self, period_s: float = 0.001) -> None:
        self.period = period_s
        self.lags: list[float] = []
        self._task: asyncio.Task | None = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            t = loop.time()
            await asyncio.sleep(self.period)
            self.lags.append(max(0.0, loop.time() - t - self.period))

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> dict[str, float]:
        assert self._task is not None
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
        lags = sorted(self.lags) or [0.0]
        q = statistics.quantiles(lags, n=100) if len(lags) >= 2 else [lags[0]] * 99
        return {
            "p50_ms": round(q[49] * 1e3, 3),
            "p99_ms": round(q[98] * 1e3, 3),
            "max_ms": round(lags[-1] * 1e3, 3),
            "samples": len(lags),
        }


def _header() -> dict[str, Any]:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "clock": "live",
        "venues": [],
        "instruments": [],
        "config": {},
        "seed": None,
        "created_ns": time.time_ns(),
    }


async def _one(events: list, path: Path, duration_s: float, rate: float | None, chunk: int) -> dict[str, Any]:
    bus = Bus()
    rec = Recorder(path, _header(), flush_interval_s=0.1, flush_events=50_000)
    await rec.start()
    bus.subscribe_all(rec.on_event)
    probe = _LagProbe()
    probe.start()
    loop = asyncio.get_running_loop()
    publish_many = bus.publish_many
    n_src = len(events)
    i = 0
    sent = 0
    max_backlog = 0
    t0 = loop.time()
    end = t0 + duration_s
    slice_s = 0.001
    while True:
        now = loop.time()
        if now >= end:
            break
        if rate is None:  # as fast as the recorder takes them: hold back while two flushes' worth wait
            n = chunk if rec.backlog < 2 * rec.flush_events else 0
        else:  # publish what is due by now, in at most `chunk`-sized pieces
            n = min(chunk, int((now - t0) * rate) - sent)
        if n > 0:
            j = i + n
            batch = events[i:j] if j <= n_src else events[i:] + events[: j - n_src]
            i = j % n_src
            publish_many(batch)
            sent += n
            b = rec.backlog
            if b > max_backlog:
                max_backlog = b
        await asyncio.sleep(0 if n >= chunk else slice_s)
    produced_s = loop.time() - t0
    backlog_at_end = rec.backlog
    while rec.backlog:
        await asyncio.sleep(0.005)
    committed_s = loop.time() - t0
    lag = await probe.stop()
    bus.unsubscribe(rec.on_event)
    await rec.aclose()
    size = path.stat().st_size
    return {
        "events": sent,
        "produced_s": round(produced_s, 3),
        "committed_s": round(committed_s, 3),
        "events_per_s": round(sent / committed_s),
        "offered_per_s": round(sent / produced_s),
        "lag": lag,
        "max_backlog": max_backlog,
        "backlog_at_end": backlog_at_end,
        "flushes": rec.flushes,
        "events_per_flush": round(sent / max(1, rec.flushes)),
        "max_flush_ms": round(rec.max_flush_s * 1e3, 1),
        "bytes_per_event": round(size / max(1, sent), 1),
        "errors": rec.errors,
    }


async def _idle_lag(seconds: float) -> dict[str, float]:
    """The same probe with nothing else running: the machine's own scheduling noise, for comparison."""
    probe = _LagProbe()
    probe.start()
    await asyncio.sleep(seconds)
    return await probe.stop()


def run(duration_s: float = 5.0, rate: float = 300_000, chunk: int = 500, seed: int = 1) -> dict[str, Any]:
    events = sample_events(seed=seed)
    idle = asyncio.run(_idle_lag(min(2.0, duration_s)))
    with tempfile.TemporaryDirectory(prefix="lobterm-record-bench-") as d:
        flat = asyncio.run(_one(events, Path(d) / "flat.lobterm.sqlite", duration_s, None, chunk))
        paced = asyncio.run(_one(events, Path(d) / "paced.lobterm.sqlite", duration_s, rate, chunk * 4))
    kinds: dict[str, int] = {}
    for ev in events:
        kinds[type(ev).__name__] = kinds.get(type(ev).__name__, 0) + 1
    return {
        "idle_lag": idle,
        "load_avg": os.getloadavg(),
        "flat_out": flat,
        "paced": paced,
        "paced_rate": rate,
        "sample_events": len(events),
        "mix": kinds,
        "cpus": os.cpu_count(),
    }


def report(r: dict[str, Any]) -> str:
    """The figures of `run` as lines of text."""
    lines = [
        f"recorder: async (aiosqlite, WAL, one transaction per flush), {r['sample_events']:,} sim events "
        f"replayed with the market maker's order flow; {r['cpus']} CPUs"
    ]
    for name, key in (("flat out", "flat_out"), (f"paced at {r['paced_rate']:,.0f}/s", "paced")):
        f = r[key]
        lag = f["lag"]
        lines.append(
            f"  {name:<22} {f['events_per_s']:>10,} events/s committed ({f['events']:,} events, offered "
            f"{f['offered_per_s']:,}/s)  loop lag p50 {lag['p50_ms']:.2f} ms  p99 {lag['p99_ms']:.2f} ms  "
            f"max {lag['max_ms']:.1f} ms"
        )
        lines.append(
            f"  {'':<22} {f['flushes']:,} flushes ({f['events_per_flush']:,} events each), longest "
            f"{f['max_flush_ms']} ms; backlog max {f['max_backlog']:,}, at end of production "
            f"{f['backlog_at_end']:,}; {f['bytes_per_event']} bytes/event"
        )
    idle = r["idle_lag"]
    lines.append(
        f"  loop lag with nothing running (this machine's noise): p50 {idle['p50_ms']:.2f} ms  p99 "
        f"{idle['p99_ms']:.2f} ms  max {idle['max_ms']:.1f} ms; load average {r['load_avg'][0]:.2f}"
    )
    lines.append("  goals: >= 300,000 events/s sustained, loop lag p99 <= 5 ms")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """`python benchmarks/record_bench.py [--seconds S] [--rate R] [--json]`."""
    ap = argparse.ArgumentParser(description="Prints the recorder's sustained events/s and the loop's lag.")
    ap.add_argument(
        "--seconds", type=float, default=5.0, help="how long each run produces events (default 5)"
    )
    ap.add_argument("--rate", type=float, default=300_000, help="events/s of the paced run (default 300,000)")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    a = ap.parse_args(argv)
    r = run(a.seconds, a.rate)
    print(json.dumps(r) if a.json else report(r))
    return 0

"""The soak: the kernel with the market maker for a day of market time; does memory stay flat?

Two modes, both the real assembly (`build`: sim venue, kernel, market maker, recorder with the
configured rotation):
- virtual (default): the sim on its virtual clock, stepped as fast as the machine goes (the way
  `lobterm run --headless` runs), for `--hours` of market time (24 by default). RSS is sampled after
  a full collection at every market hour; the figures are RSS at 1 h, 6 h and the end, the ratio
  end / 1 h (goal <= 1.2) and the slope (MB per market hour, least squares over the hours after the
  first). `--trace` adds tracemalloc's biggest growers between the first hour and the end (slow).
- realtime (`--realtime --minutes N`): the sim paced on the wall clock on an asyncio loop, as the TUI
  runs it, with a probe that sleeps 10 ms and records how late it woke (loop lag percentiles; goal
  p99 <= 5 ms), and RSS every minute. The lag samples go into a fixed-size histogram (`LagHistogram`,
  10 us buckets), not a list: a list of 100 floats a second is itself ~11 MB an hour of RSS growth.
  Every minute it also notes what is behind RSS (glibc malloc in use and free, SQLite's own memory,
  asyncio tasks and timers); `--trace` adds tracemalloc's Python heap and biggest growers since the
  first minute.

Both print the session files and their sizes: no file may pass the rotation bound (`[recording]
rotate_mb`). Figures, not a pass/fail test.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import functools
import gc
import json
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
from array import array
from pathlib import Path
from typing import Any

from lobterm.assemble import build
from lobterm.config import Config, MetricsConfig, load
from lobterm.services import start_metrics, start_recording

RSS_RATIO_GOAL = 1.2  # RSS after 24 h of market time / after 1 h
LAG_P99_GOAL_MS = 5.0
LAG_PERIOD_S = 0.010
SCRAPE_S = 15.0  # --metrics: how often the metrics page is read


def rss_mb() -> float:
    """This process's resident set size (MB), after a full collection so that garbage does not count."""
    gc.collect()
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class LagHistogram:
    """Loop-lag samples in fixed memory: 10 us buckets up to 100 ms, then 1 ms buckets up to 60 s (the
    last bucket takes anything longer). Quantiles are exact to the bucket (10 us under 100 ms); the
    maximum is exact. Its size never changes, however many samples it takes."""

    FINE_S = 1e-5
    FINE = 10_000  # 10 us buckets: 0 .. 100 ms
    COARSE_S = 1e-3
    COARSE = 59_900  # 1 ms buckets: 100 ms .. 60 s

    __slots__ = ("counts", "n", "max_s")

    def __init__(self) -> None:
        self.counts = array("Q", bytes(8 * (self.FINE + self.COARSE)))
        self.n = 0
        self.max_s = 0.0

    def add(self, lag_s: float) -> None:
        lag_s = max(0.0, lag_s)
        i = int(lag_s / self.FINE_S)
        if i >= self.FINE:
            i = min(self.FINE + int((lag_s - self.FINE * self.FINE_S) / self.COARSE_S), len(self.counts) - 1)
        self.counts[i] += 1
        self.n += 1
        if lag_s > self.max_s:
            self.max_s = lag_s

    def _value(self, i: int) -> float:
        """The upper edge of bucket `i` (a quantile is never understated); the last bucket has none."""
        if i == len(self.counts) - 1:
            return self.max_s
        if i < self.FINE:
            return (i + 1) * self.FINE_S
        return self.FINE * self.FINE_S + (i - self.FINE + 1) * self.COARSE_S

    def quantile(self, q: float) -> float:
        """The smallest bucket edge under which at least `q` of the samples lie (0.0 with no samples)."""
        if not self.n:
            return 0.0
        rank = max(1, min(self.n, int(q * self.n + 0.999999)))
        seen = 0
        for i, c in enumerate(self.counts):
            seen += c
            if seen >= rank:
                return min(self._value(i), self.max_s)
        return self.max_s


@functools.cache
def _libc() -> Any:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
        return libc
    except (OSError, AttributeError):
        return None


@functools.cache
def _libsqlite() -> Any:
    try:
        lib = ctypes.CDLL("libsqlite3.so.0")  # the library the sqlite3 module loaded (same soname)
        lib.sqlite3_memory_used.restype = ctypes.c_int64
        return lib
    except (OSError, AttributeError):
        return None


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost"
        )
    ]  # fmt: skip


_PYMALLOC_LINES = {
    "# arenas allocated current": "py_arenas",
    "# bytes in allocated blocks": "py_blocks",
    "# bytes in available blocks": "py_avail",
}


def pymalloc_stats() -> dict[str, float]:
    """Python's small-object allocator (sys._debugmallocstats, CPython): 1 MiB arenas held
    (`py_arenas`, a count: each is RSS as far as touched), MB in allocated blocks (`py_blocks`: live
    objects) and MB free inside used pools (`py_avail`). Arenas growing while blocks stay flat is
    fragmentation, not retained objects. Empty where unavailable."""
    debug = getattr(sys, "_debugmallocstats", None)
    if debug is None:
        return {}
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with tempfile.TemporaryFile(mode="w+") as tmp:
            os.dup2(tmp.fileno(), 2)
            try:
                debug()
            finally:
                os.dup2(saved, 2)
            tmp.seek(0)
            text = tmp.read()
    finally:
        os.close(saved)
    out: dict[str, float] = {}
    for line in text.splitlines():
        head, _, value = line.partition("=")
        key = _PYMALLOC_LINES.get(head.strip())
        if key is not None:
            n = int(value.strip().replace(",", ""))
            out[key] = n if key == "py_arenas" else round(n / _MB, 2)
    return out


def memory_breakdown() -> dict[str, float]:
    """What is behind RSS, in MB: Python's allocated blocks (thousands: retained objects grow it, an
    allocator plateau does not), tracemalloc's Python heap (if tracing), glibc malloc in use
    (`uordblks` + mmapped `hblkhd`, every thread's arena) and free but kept (`fordblks`: fragmentation),
    SQLite's own allocations (page caches of every connection, statements), and pymalloc's arenas and
    blocks (`pymalloc_stats`)."""
    with open("/proc/self/status") as f:
        rss = next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmRSS:"))
    out = {"rss": rss}
    # Python's allocator: blocks in use (every live object and buffer, however small; a count, not MB)
    out["py_kblocks"] = sys.getallocatedblocks() / 1000
    if tracemalloc.is_tracing():
        out["py_traced"] = tracemalloc.get_traced_memory()[0] / _MB
    libc = _libc()
    if libc is not None:
        mi = libc.mallinfo2()
        out["malloc_used"] = (mi.uordblks + mi.hblkhd) / _MB
        out["malloc_free"] = mi.fordblks / _MB
        out["malloc_arena"] = mi.arena / _MB
    lib = _libsqlite()
    if lib is not None:
        out["sqlite"] = lib.sqlite3_memory_used() / _MB
    out = {k: round(v, 2) for k, v in out.items()}
    out.update(pymalloc_stats())
    return out


_MB = 1024 * 1024


def _growers(snapshot: Any, first: Any, top: int = 12) -> list[str]:
    out = []
    for stat in snapshot.compare_to(first, "traceback")[:top]:
        # a Traceback runs oldest frame first: the allocation site is its last frame
        frames = " <- ".join(f"{Path(f.filename).name}:{f.lineno}" for f in list(stat.traceback)[::-1][:5])
        out.append(f"{stat.size_diff / 1e6:+.2f} MB ({stat.count_diff:+,} blocks) {frames}")
    return out


def _config(seed: int) -> Config:
    return load(use_defaults=False, overrides={"sim": {"seed": seed}})


def _record(kernel: Any, config: Config, target: Path, realtime: bool) -> None:
    start_recording(
        kernel,
        target,
        config=config,
        seed=config.sim.seed,
        header={"run": {"soak": True, "realtime": realtime}},
    )


def _files(target: Path) -> list[dict[str, Any]]:
    return [
        {"file": p.name, "mb": round(p.stat().st_size / 1e6, 1)}
        for p in sorted(target.glob("*.lobterm.sqlite*"))
    ]


def _slope(samples: list[tuple[float, float]]) -> float:
    """MB per hour, least squares over (hour, MB) samples."""
    if len(samples) < 2:
        return 0.0
    xs, ys = [s[0] for s in samples], [s[1] for s in samples]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else 0.0


def run_virtual(
    hours: float = 24.0, *, seed: int = 7, target: Path | None = None, trace: bool = False, echo: bool = True
) -> dict[str, Any]:
    """Market hours on the virtual clock; RSS at every market hour."""
    config = _config(seed)
    tmp = None
    if target is None:
        tmp = tempfile.TemporaryDirectory(prefix="lobterm-soak-")
        target = Path(tmp.name)
    asm = build(config, "headless", virtual=True)
    kernel, sim = asm.kernel, asm.sim
    assert sim is not None
    _record(kernel, config, target, realtime=False)
    steps_per_hour = round(3600 * config.sim.rate_hz)
    sim.open()
    for mm in asm.market_makers:
        mm.resume()
    if trace:
        tracemalloc.start(8)
    start_rss = rss_mb()
    samples: list[tuple[float, float]] = []
    first_snapshot = None
    t0 = time.perf_counter()
    whole = int(hours)
    hour_marks = [float(h) for h in range(1, whole + 1)] + ([hours] if hours > whole else [])
    done_steps = 0
    for mark in hour_marks:
        for _ in range(round(mark * steps_per_hour) - done_steps):
            sim.step()
            kernel.on_timer()
        done_steps = round(mark * steps_per_hour)
        rss = rss_mb()
        samples.append((mark, rss))
        if trace and first_snapshot is None:
            first_snapshot = tracemalloc.take_snapshot()
        if echo:
            print(
                f"  market {mark:5.1f} h  RSS {rss:7.1f} MB  events {kernel.bus.published:>12,}  "
                f"wall {time.perf_counter() - t0:7.1f} s",
                file=sys.stderr,
                flush=True,
            )
    wall = time.perf_counter() - t0
    growers: list[str] = []
    if trace and first_snapshot is not None:
        growers = _growers(tracemalloc.take_snapshot(), first_snapshot)
        tracemalloc.stop()
    asyncio.run(kernel.shutdown(5.0, source="soak", stop=False))
    if kernel.recorder is not None:
        kernel.recorder.close()
    by_hour = dict(samples)
    at1 = by_hour.get(1.0, samples[0][1])
    end = samples[-1][1]
    out = {
        "mode": "virtual",
        "market_hours": hours,
        "wall_s": round(wall, 1),
        "events": kernel.bus.published,
        "our_fills": kernel.oms.fills,
        "rss_start_mb": round(start_rss, 1),
        "rss_1h_mb": round(at1, 1),
        "rss_6h_mb": round(by_hour[6.0], 1) if 6.0 in by_hour else None,
        "rss_24h_mb": round(by_hour[24.0], 1) if 24.0 in by_hour else None,
        "rss_end_mb": round(end, 1),
        "rss_end_over_1h": round(end / at1, 3),
        "slope_mb_per_h": round(_slope([s for s in samples if s[0] >= 1.0]), 3),
        "rss_by_hour": {f"{h:g}": round(v, 1) for h, v in samples},
        "files": _files(target),
        "rotate_mb": config.recording.rotate_mb,
        "growers": growers,
    }
    if tmp is not None:
        tmp.cleanup()
    return out


async def _scrape(url: str, done: list[int]) -> None:
    """Read the metrics page every SCRAPE_S seconds (as Prometheus would), off the loop; `done[0]`
    counts the pages read."""
    import urllib.request

    def get() -> None:
        with urllib.request.urlopen(url, timeout=5) as resp:
            if resp.read():
                done[0] += 1

    while True:
        await asyncio.sleep(SCRAPE_S)
        with contextlib.suppress(OSError):
            await asyncio.to_thread(get)


async def _realtime(
    minutes: float, seed: int, target: Path, echo: bool, trace: bool = False, metrics: bool = False
) -> dict[str, Any]:
    config = _config(seed)
    if trace:
        tracemalloc.start(8)
    asm = build(config, "headless", virtual=False)
    kernel = asm.kernel
    _record(kernel, config, target, realtime=True)
    await kernel.start()
    scraper = None
    scrapes = [0]
    if metrics:  # as `lobterm run --headless --realtime` runs: the exporter (any free port), scraped
        m = start_metrics(kernel, MetricsConfig(enabled=True, port=0))
        assert m.address is not None
        url = f"http://{m.address[0]}:{m.address[1]}/metrics"
        scraper = asyncio.get_running_loop().create_task(_scrape(url, scrapes), name="soak-scrape")
    for mm in asm.market_makers:
        mm.resume()
    loop = asyncio.get_running_loop()
    lags = LagHistogram()
    samples: list[tuple[float, float]] = []
    breakdowns: list[dict[str, Any]] = []
    first_snapshot = None
    growers: list[str] = []
    t0 = loop.time()
    end = t0 + minutes * 60
    next_sample = t0 + 60
    while True:
        t = loop.time()
        if t >= end:
            break
        await asyncio.sleep(LAG_PERIOD_S)
        woke = loop.time()
        lags.add(woke - t - LAG_PERIOD_S)
        if woke >= next_sample:
            next_sample += 60
            # RSS without a full collection: gc.collect() here would itself be loop lag
            with open("/proc/self/status") as f:
                rss = next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmRSS:"))
            minute = (woke - t0) / 60
            samples.append((minute, rss))
            if echo:
                print(
                    f"  minute {minute:5.1f}  RSS {rss:7.1f} MB  events {kernel.bus.published:>10,}",
                    file=sys.stderr,
                    flush=True,
                )
            # what is behind RSS (a few ctypes calls, well under a millisecond)
            b: dict[str, Any] = {"minute": round(minute, 1), **memory_breakdown()}
            b["tasks"] = len(asyncio.all_tasks())
            b["timers"] = len(getattr(loop, "_scheduled", ()))
            breakdowns.append(b)
            if echo:
                print(f"    {b}", file=sys.stderr, flush=True)
            if trace:  # stalls the loop for a second or two: the lag figures of a traced run mean little
                b["gc_unreachable"] = gc.collect()
                snap = tracemalloc.take_snapshot()
                if first_snapshot is None:
                    first_snapshot = snap
                else:
                    growers = _growers(snap, first_snapshot)
                if echo:
                    for g in growers[:6]:
                        print(f"    grew: {g}", file=sys.stderr, flush=True)
                del snap
    if scraper is not None:
        scraper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await scraper
    await kernel.shutdown(5.0, source="soak")
    if trace:
        tracemalloc.stop()
    first = samples[0][1] if samples else 0.0
    last = samples[-1][1] if samples else 0.0
    return {
        "mode": "realtime",
        "minutes": minutes,
        "metrics": metrics,
        "scrapes": scrapes[0],
        "events": kernel.bus.published,
        "our_fills": kernel.oms.fills,
        "rss_1min_mb": round(first, 1),
        "rss_end_mb": round(last, 1),
        "rss_end_over_1min": round(last / first, 3) if first else None,
        "slope_mb_per_h": round(_slope([(m / 60, v) for m, v in samples]), 3),
        "rss_by_minute": {f"{m:.0f}": round(v, 1) for m, v in samples},
        "lag": {
            "p50_ms": round(lags.quantile(0.5) * 1e3, 3),
            "p99_ms": round(lags.quantile(0.99) * 1e3, 3),
            "p999_ms": round(lags.quantile(0.999) * 1e3, 3),
            "max_ms": round(lags.max_s * 1e3, 3),
            "samples": lags.n,
        },
        "files": _files(target),
        "rotate_mb": config.recording.rotate_mb,
        "memory": breakdowns,
        "growers": growers,
    }


def run_realtime(
    minutes: float = 60.0,
    *,
    seed: int = 7,
    target: Path | None = None,
    echo: bool = True,
    trace: bool = False,
    metrics: bool = False,
) -> dict:
    if target is not None:
        return asyncio.run(_realtime(minutes, seed, target, echo, trace, metrics))
    with tempfile.TemporaryDirectory(prefix="lobterm-soak-") as tmp:
        return asyncio.run(_realtime(minutes, seed, Path(tmp), echo, trace, metrics))


def run() -> dict[str, Any]:
    """`lobterm bench soak`: six market hours on the virtual clock (the full day: benchmarks/soak.py)."""
    return run_virtual(6.0, echo=False)


def format_figures(r: dict[str, Any]) -> str:
    lines = []
    if r["mode"] == "virtual":
        lines.append(
            f"soak, virtual clock: {r['market_hours']:g} market hours in {r['wall_s']:,.0f} s wall, "
            f"{r['events']:,} events, {r['our_fills']:,} fills of ours"
        )
        lines.append(
            f"  RSS  1 h {r['rss_1h_mb']} MB   6 h {r['rss_6h_mb'] or '-'} MB   24 h {r['rss_24h_mb'] or '-'} MB"
            f"   end {r['rss_end_mb']} MB"
        )
        ratio_ok = "ok" if r["rss_end_over_1h"] <= RSS_RATIO_GOAL else "ABOVE GOAL"
        lines.append(
            f"  RSS end / 1 h {r['rss_end_over_1h']:.3f} (goal <= {RSS_RATIO_GOAL})  {ratio_ok}; "
            f"slope {r['slope_mb_per_h']:+.3f} MB per market hour"
        )
        for g in r.get("growers") or []:
            lines.append(f"  grew: {g}")
    else:
        lag = r["lag"]
        lines.append(
            f"soak, realtime: {r['minutes']:g} min, {r['events']:,} events, {r['our_fills']:,} fills of ours"
        )
        lines.append(
            f"  RSS after 1 min {r['rss_1min_mb']} MB, at the end {r['rss_end_mb']} MB "
            f"(x{r['rss_end_over_1min']}), slope {r['slope_mb_per_h']:+.3f} MB/h"
        )
        ok = "ok" if lag["p99_ms"] <= LAG_P99_GOAL_MS else "ABOVE GOAL"
        lines.append(
            f"  loop lag p50 {lag['p50_ms']} ms  p99 {lag['p99_ms']} ms (goal <= {LAG_P99_GOAL_MS:g})  "
            f"p99.9 {lag['p999_ms']} ms  max {lag['max_ms']} ms  ({lag['samples']:,} samples)  {ok}"
        )
        memory = r.get("memory") or []
        for b in memory[:1] + memory[1:][-1:]:
            lines.append(f"  memory: {b}")
        for g in r.get("growers") or []:
            lines.append(f"  grew: {g}")
    bound = r["rotate_mb"]
    over = [f for f in r["files"] if bound and f["mb"] > bound]
    lines.append(
        f"  session files: {len(r['files'])}, largest {max((f['mb'] for f in r['files']), default=0)} MB "
        f"(rotation bound {bound} MB){'  OVER: ' + str(over) if over else '  ok'}"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description="A day of market time with the market maker: RSS, loop lag, files."
    )
    ap.add_argument(
        "--hours", type=float, default=24.0, help="market hours on the virtual clock (default 24)"
    )
    ap.add_argument("--realtime", action="store_true", help="pace the sim on the wall clock instead")
    ap.add_argument("--minutes", type=float, default=60.0, help="realtime: wall minutes to run (default 60)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument(
        "--dir", type=Path, default=None, help="keep the session files here (default: a temp dir)"
    )
    ap.add_argument(
        "--trace",
        action="store_true",
        help="tracemalloc's biggest growers (slow); realtime: also a memory breakdown every minute",
    )
    ap.add_argument(
        "--metrics",
        action="store_true",
        help="realtime: the metrics exporter on too (as `lobterm run --headless --realtime`), scraped every 15 s",
    )
    ap.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = ap.parse_args(argv)
    if args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)
    if args.realtime:
        r = run_realtime(
            args.minutes, seed=args.seed, target=args.dir, trace=args.trace, metrics=args.metrics
        )
    else:
        r = run_virtual(args.hours, seed=args.seed, target=args.dir, trace=args.trace)
    print(json.dumps(r) if args.json else format_figures(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())

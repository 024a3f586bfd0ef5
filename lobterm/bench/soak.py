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
  p99 <= 5 ms), and RSS every minute.

Both print the session files and their sizes: no file may pass the rotation bound (`[recording]
rotate_mb`). Figures, not a pass/fail test.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from lobterm.assemble import build
from lobterm.config import Config, load
from lobterm.services import start_recording

RSS_RATIO_GOAL = 1.2  # RSS after 24 h of market time / after 1 h
LAG_P99_GOAL_MS = 5.0
LAG_PERIOD_S = 0.010


def rss_mb() -> float:
    """This process's resident set size (MB), after a full collection so that garbage does not count."""
    gc.collect()
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


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
        diff = tracemalloc.take_snapshot().compare_to(first_snapshot, "traceback")
        for stat in diff[:12]:
            frames = " <- ".join(f"{Path(f.filename).name}:{f.lineno}" for f in list(stat.traceback)[:4])
            growers.append(f"{stat.size_diff / 1e6:+.2f} MB ({stat.count_diff:+,} blocks) {frames}")
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


async def _realtime(minutes: float, seed: int, target: Path, echo: bool) -> dict[str, Any]:
    config = _config(seed)
    asm = build(config, "headless", virtual=False)
    kernel = asm.kernel
    _record(kernel, config, target, realtime=True)
    await kernel.start()
    for mm in asm.market_makers:
        mm.resume()
    loop = asyncio.get_running_loop()
    lags: list[float] = []
    samples: list[tuple[float, float]] = []
    t0 = loop.time()
    end = t0 + minutes * 60
    next_sample = t0 + 60
    while True:
        t = loop.time()
        if t >= end:
            break
        await asyncio.sleep(LAG_PERIOD_S)
        woke = loop.time()
        lags.append(max(0.0, woke - t - LAG_PERIOD_S))
        if woke >= next_sample:
            next_sample += 60
            # RSS without a full collection: gc.collect() here would itself be loop lag
            with open("/proc/self/status") as f:
                rss = next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmRSS:"))
            samples.append(((woke - t0) / 60, rss))
            if echo:
                print(
                    f"  minute {(woke - t0) / 60:5.1f}  RSS {rss:7.1f} MB  events {kernel.bus.published:>10,}",
                    file=sys.stderr,
                    flush=True,
                )
    await kernel.shutdown(5.0, source="soak")
    lags.sort()
    q = statistics.quantiles(lags, n=1000) if len(lags) >= 2 else [0.0] * 999
    first = samples[0][1] if samples else 0.0
    last = samples[-1][1] if samples else 0.0
    return {
        "mode": "realtime",
        "minutes": minutes,
        "events": kernel.bus.published,
        "our_fills": kernel.oms.fills,
        "rss_1min_mb": round(first, 1),
        "rss_end_mb": round(last, 1),
        "rss_end_over_1min": round(last / first, 3) if first else None,
        "slope_mb_per_h": round(_slope([(m / 60, v) for m, v in samples]), 3),
        "lag": {
            "p50_ms": round(q[499] * 1e3, 3),
            "p99_ms": round(q[989] * 1e3, 3),
            "p999_ms": round(q[998] * 1e3, 3),
            "max_ms": round(lags[-1] * 1e3, 3) if lags else 0.0,
            "samples": len(lags),
        },
        "files": _files(target),
        "rotate_mb": config.recording.rotate_mb,
    }


def run_realtime(
    minutes: float = 60.0, *, seed: int = 7, target: Path | None = None, echo: bool = True
) -> dict:
    if target is not None:
        return asyncio.run(_realtime(minutes, seed, target, echo))
    with tempfile.TemporaryDirectory(prefix="lobterm-soak-") as tmp:
        return asyncio.run(_realtime(minutes, seed, Path(tmp), echo))


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
    ap.add_argument("--trace", action="store_true", help="virtual: tracemalloc's biggest growers (slow)")
    ap.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = ap.parse_args(argv)
    if args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)
    if args.realtime:
        r = run_realtime(args.minutes, seed=args.seed, target=args.dir)
    else:
        r = run_virtual(args.hours, seed=args.seed, target=args.dir, trace=args.trace)
    print(json.dumps(r) if args.json else format_figures(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""UI benchmarks (figures, not pass/fail): `lobterm bench ui` or `python benchmarks/ui_bench.py`.

1. Ladder frame time: a 40-row ladder, the sim market advanced by one UI frame's worth of book deltas
   (10,000 a second at 30 Hz) between frames, then `pull()` and every line painted (`render_line`),
   as Textual does when it composes a frame; and the worst case, every strip rebuilt.
2. CPU share of the UI: the whole app running headless (Textual's compositor renders every frame, the
   output goes nowhere) on a 30 Hz UI clock while the sim venue emits about 10,000 book deltas a second,
   as process CPU time; minus the same sim running with no UI, for the UI's own share.
3. Key press to order visible: `b` pressed on the ladder until the ladder paints the row with our order.
4. The same frame time and CPU share with the liquidity heatmap on beside the ladder (`[ui] heatmap`): the
   heatmap samples the book on the kernel's clock and redraws its 48 time steps on the ladder's axis; its
   ring buffer's size is reported (fixed by `[ui] heatmap_minutes`).
5. Three venues, the heatmap on, ~10,000 deltas/s in total: a ladder per venue (before) and one consolidated
   ladder (after), frame time and UI CPU share (`ui_xvenue.py`).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Any
from unittest.mock import patch

from lobterm.assemble import build_sim_kernel
from lobterm.bench import ui_xvenue
from lobterm.config import Config
from lobterm.engine.events import BookDelta

LADDER_ROWS = 40
UI_HZ = 30.0
DELTAS_PER_S = 10_000
# Sim settings that make about 10,000 book deltas a second (measured; the run reports what it got).
SIM_RATE_HZ = 250.0
SIM_CHURN_PER_S = 13_000.0
GOALS = {
    "ladder_frame_ms_p50": 2.0,
    "ui_cpu_share": 0.20,
    "key_to_visible_ms_p50": 50.0,
    "heatmap_frame_ms_p50": 3.0,
    "heatmap_ui_cpu_share": 0.25,
    "xvenue_frame_ms_p50": 3.0,
    "xvenue_ui_cpu_share": 0.25,
}


def _no_pull(*args: object, **kwargs: object) -> None:
    """In place of the desk's UI-clock pull while frames are timed."""


@dataclass
class _Painted:
    """What the key-to-visible probe waits for (`want`: ladder price and text) and when it was painted."""

    want: tuple[int, str] | None = None
    t: float | None = None


def _config(seed: int = 3, *, heatmap: bool = False) -> Config:
    cfg = Config()
    cfg.ui.heatmap = heatmap
    cfg.sim.seed = seed
    cfg.sim.rate_hz = SIM_RATE_HZ
    cfg.sim.churn_per_s = SIM_CHURN_PER_S
    cfg.ui.refresh_hz = UI_HZ
    cfg.ui.ticks_per_row = 1  # one tick a row, as the figures before the auto zoom
    # the market the figures before session 5 were measured on (a small move every step, seen at once)
    cfg.sim.fair_events_per_s = 0.0
    cfg.sim.lp_delay_ms = 0.0
    cfg.sim.taker_delay_ms = 0.0
    return cfg


def _quantiles(samples_s: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in samples_s)
    return {
        "p50": round(statistics.median(ms), 3),
        "p99": round(ms[min(len(ms) - 1, int(len(ms) * 0.99))], 3),
        "max": round(ms[-1], 3),
        "n": len(ms),
    }


async def _wait(pilot, condition, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise RuntimeError("the benchmark app did not get ready in time")
        await pilot.pause(0.01)


# ---- 1. ladder frame time ------------------------------------------------------------------------
async def _ladder_frames(frames: int, *, heatmap: bool = False) -> dict[str, Any]:
    from lobterm.app import LobtermApp
    from lobterm.widgets.ladder import HEADER_LINES

    cfg = _config(heatmap=heatmap)
    kernel, venue = build_sim_kernel(cfg, virtual=True)
    venue.open()
    for _ in range(50):
        venue.step()
    app = LobtermApp(cfg, kernel=kernel, live=False)
    steps_per_frame = max(1, round(SIM_RATE_HZ / UI_HZ))
    deltas = [0]
    kernel.bus.subscribe(BookDelta, lambda ev: deltas.__setitem__(0, deltas[0] + 1))
    async with app.run_test(size=(200, LADDER_ROWS + HEADER_LINES + 12)) as pilot:
        ladder = app.ladder
        ladder.styles.height = LADDER_ROWS + HEADER_LINES
        await _wait(pilot, lambda: ladder.price_rows == LADDER_ROWS and ladder.top_price is not None)
        heat = app.desk.heatmaps[0]
        if heatmap:
            await _wait(pilot, lambda: heat.display and heat.frames > 0)
        patch.object(app.desk, "pull", _no_pull).start()  # the UI clock stays out of the timed frames
        height = ladder.size.height
        typical, full, refreshed = [], [], []
        heat_lines = 0
        samples0 = heat.model.samples
        deltas[0] = 0
        for _ in range(frames):
            for _ in range(steps_per_frame):
                venue.step()
            t0 = time.perf_counter()
            refreshed.append(ladder.pull())
            for y in range(height):
                ladder.render_line(y)
            if heatmap:
                heat_lines += heat.pull()
                for y in range(height):
                    heat.render_line(y)
            typical.append(time.perf_counter() - t0)
            ladder.notify_style_update()  # drop every cached strip
            if heatmap:
                heat.notify_style_update()
            t0 = time.perf_counter()
            for y in range(height):
                ladder.render_line(y)
            if heatmap:
                for y in range(height):
                    heat.render_line(y)
            full.append(time.perf_counter() - t0)
        app.exit()
    extra = {}
    if heatmap:
        extra = {
            "heatmap_lines_refreshed_per_frame": round(heat_lines / frames, 1),
            "heatmap_samples": heat.model.samples - samples0,
            "heatmap_buffer_bytes": heat.model.nbytes,
            "heatmap_minutes": heat.model.minutes,
        }
    return {
        **extra,
        "rows": LADDER_ROWS,
        "frame_ms": _quantiles(typical),
        "full_redraw_ms": _quantiles(full),
        "lines_refreshed_per_frame": round(statistics.mean(refreshed), 1),
        "deltas_per_frame": round(deltas[0] / frames, 1),
        "n_frames": frames,
    }


# ---- 2. CPU share at 30 Hz -------------------------------------------------------------------------
async def _sim_only_cpu(seconds: float) -> tuple[float, float]:
    kernel, _venue = build_sim_kernel(_config(), virtual=False)
    deltas = [0]
    kernel.bus.subscribe(BookDelta, lambda ev: deltas.__setitem__(0, deltas[0] + 1))
    await kernel.start()
    await asyncio.sleep(0.5)
    c0, t0, d0 = time.process_time(), time.perf_counter(), deltas[0]
    await asyncio.sleep(seconds)
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    rate = (deltas[0] - d0) / wall
    await kernel.stop()
    return cpu / wall, rate


async def _app_cpu(seconds: float, *, heatmap: bool = False) -> tuple[float, float, float]:
    from lobterm.app import LobtermApp

    app = LobtermApp(_config(heatmap=heatmap))
    deltas = [0]
    app.kernel.bus.subscribe(BookDelta, lambda ev: deltas.__setitem__(0, deltas[0] + 1))
    async with app.run_test(size=(160, 50)) as pilot:
        await _wait(pilot, lambda: app.ladder.top_price is not None)
        if heatmap:
            heat = app.desk.heatmaps[0]
            await _wait(pilot, lambda: heat.display and heat.frames > 0)
        await pilot.pause(0.5)
        c0, t0, d0, k0 = time.process_time(), time.perf_counter(), deltas[0], app.ladder.lines_refreshed
        await asyncio.sleep(seconds)
        cpu, wall = time.process_time() - c0, time.perf_counter() - t0
        rate = (deltas[0] - d0) / wall
        lines = (app.ladder.lines_refreshed - k0) / wall
        app.exit()
    return cpu / wall, rate, lines


# ---- 3. key press to order visible -----------------------------------------------------------------
async def _key_to_visible(trials: int) -> dict[str, Any]:
    from lobterm.app import LobtermApp

    cfg = _config()
    cfg.sim.rate_hz = 20.0  # a normal market: this measures the key path, not a saturated loop
    cfg.sim.churn_per_s = 60.0
    cfg.sim.taker_per_s = 0.0
    app = LobtermApp(cfg)
    samples: list[float] = []
    async with app.run_test(size=(160, 50)) as pilot:
        ladder = app.ladder
        await _wait(pilot, lambda: ladder.top_price is not None and app.market.unified.best_bid() is not None)
        await pilot.press("home")
        await pilot.press(*["down"] * 12)  # well under the best bid: our buy rests
        painted = _Painted()
        original = ladder.render_line
        inst = app.market.instrument

        def watch(y: int):
            strip = original(y)
            want = painted.want
            if (
                want is not None
                and painted.t is None
                and y == ladder.row_of(want[0])
                and want[1] in strip.text
            ):
                painted.t = time.perf_counter()
            return strip

        instrumented = patch.object(ladder, "render_line", watch)
        instrumented.start()
        for _i in range(trials):
            price = ladder.cursor_price
            if price is None:
                raise RuntimeError("key-to-visible: the ladder has no cursor price")
            painted.t = None
            painted.want = (price, f"{inst.format_size(ladder.order_lots() or 0)} (1)")
            t0 = time.perf_counter()
            await pilot.press("b")
            await _wait(pilot, lambda: painted.t is not None, timeout=5.0)
            if painted.t is not None:
                samples.append(painted.t - t0)
            app.kernel.cancel_all()
            await _wait(pilot, lambda: not app.kernel.oms.working, timeout=5.0)
            await pilot.press("down")
            await pilot.pause(0.05)
        instrumented.stop()
        app.exit()
    return _quantiles(samples)


def run(*, frames: int = 300, cpu_seconds: float = 5.0, trials: int = 20) -> dict[str, Any]:
    """Every UI figure in one dict (times in ms, CPU shares as a fraction of one core)."""

    async def main() -> dict[str, Any]:
        figs: dict[str, Any] = {}
        gc.collect()
        figs["ladder"] = await _ladder_frames(frames)
        base_share, base_rate = await _sim_only_cpu(cpu_seconds)
        app_share, app_rate, lines_per_s = await _app_cpu(cpu_seconds)
        figs["cpu"] = {
            "ui_hz": UI_HZ,
            "seconds": cpu_seconds,
            "deltas_per_s_sim_only": round(base_rate),
            "deltas_per_s_with_ui": round(app_rate),
            "process_share_sim_only": round(base_share, 3),
            "process_share_with_ui": round(app_share, 3),
            "ui_share": round(max(0.0, app_share - base_share), 3),
            "ladder_lines_refreshed_per_s": round(lines_per_s),
        }
        figs["key_to_visible_ms"] = await _key_to_visible(trials)
        figs["heatmap"] = await _ladder_frames(frames, heatmap=True)
        heat_share, heat_rate, heat_lines = await _app_cpu(cpu_seconds, heatmap=True)
        figs["heatmap"]["cpu"] = {
            "deltas_per_s_with_ui": round(heat_rate),
            "process_share_with_ui": round(heat_share, 3),
            "ui_share": round(max(0.0, heat_share - base_share), 3),
            "ladder_lines_refreshed_per_s": round(heat_lines),
        }
        figs["xvenue"] = await ui_xvenue.run(frames, cpu_seconds)
        return figs

    figs = asyncio.run(main())
    figs["summary"] = {
        "ladder_frame_ms_p50": figs["ladder"]["frame_ms"]["p50"],
        "ui_cpu_share": figs["cpu"]["ui_share"],
        "key_to_visible_ms_p50": figs["key_to_visible_ms"]["p50"],
        "heatmap_frame_ms_p50": figs["heatmap"]["frame_ms"]["p50"],
        "heatmap_ui_cpu_share": figs["heatmap"]["cpu"]["ui_share"],
        "xvenue_frame_ms_p50": figs["xvenue"]["consolidated"]["frame_ms"]["p50"],
        "xvenue_ui_cpu_share": figs["xvenue"]["consolidated"]["cpu"]["ui_share"],
    }
    # The three headline figures under the names `lobterm bench` reads.
    figs["render_ms_median"] = figs["ladder"]["frame_ms"]["p50"]
    figs["cpu_percent"] = round(figs["cpu"]["ui_share"] * 100, 1)
    figs["key_to_order_ms"] = figs["key_to_visible_ms"]["p50"]
    return figs


def report(figs: dict[str, Any]) -> str:
    lad, cpu, key = figs["ladder"], figs["cpu"], figs["key_to_visible_ms"]

    def mark(name: str, value: float) -> str:
        return "ok" if value <= GOALS[name] else "ABOVE GOAL"

    s = figs["summary"]
    lines = [
        f"lobterm bench ui (Python {sys.version.split()[0]})",
        f"{'figure':<60} {'measured':>12} {'goal':>10}",
        f"{'ladder frame, 40 rows, one 30 Hz frame of deltas (p50 ms)':<60} {lad['frame_ms']['p50']:>12.3f} "
        f"{'<= 2':>10}  {mark('ladder_frame_ms_p50', s['ladder_frame_ms_p50'])}",
        f"{'UI CPU share at 30 Hz, ~10,000 deltas/s (of one core)':<60} {cpu['ui_share']:>12.1%} "
        f"{'<= 20%':>10}  {mark('ui_cpu_share', s['ui_cpu_share'])}",
        f"{'key press to order visible on the ladder (p50 ms)':<60} {key['p50']:>12.1f} "
        f"{'<= 50':>10}  {mark('key_to_visible_ms_p50', s['key_to_visible_ms_p50'])}",
        f"  ladder frame p99 {lad['frame_ms']['p99']:.3f} ms, {lad['lines_refreshed_per_frame']} lines refreshed and "
        f"{lad['deltas_per_frame']} deltas a frame; every strip rebuilt: p50 {lad['full_redraw_ms']['p50']:.3f} ms, "
        f"p99 {lad['full_redraw_ms']['p99']:.3f} ms",
        f"  process CPU: sim alone {cpu['process_share_sim_only']:.1%} at {cpu['deltas_per_s_sim_only']:,} deltas/s; "
        f"with the UI {cpu['process_share_with_ui']:.1%} at {cpu['deltas_per_s_with_ui']:,} deltas/s; "
        f"{cpu['ladder_lines_refreshed_per_s']:,} ladder lines refreshed/s",
        f"  key to visible: p99 {key['p99']:.1f} ms, max {key['max']:.1f} ms over {key['n']} presses",
    ]
    heat = figs.get("heatmap")
    if heat is not None:
        lines += [
            f"{'ladder + heatmap frame, 40 rows, 30 Hz of deltas (p50 ms)':<60} {heat['frame_ms']['p50']:>12.3f} "
            f"{'<= 3':>10}  {mark('heatmap_frame_ms_p50', s['heatmap_frame_ms_p50'])}",
            f"{'UI CPU share with the heatmap, ~10,000 deltas/s':<60} {heat['cpu']['ui_share']:>12.1%} "
            f"{'<= 25%':>10}  {mark('heatmap_ui_cpu_share', s['heatmap_ui_cpu_share'])}",
            f"  heatmap: frame p99 {heat['frame_ms']['p99']:.3f} ms, every strip rebuilt p50 "
            f"{heat['full_redraw_ms']['p50']:.3f} ms; {heat['heatmap_lines_refreshed_per_frame']} heatmap lines "
            f"refreshed a frame, {heat['heatmap_samples']} samples over {heat['n_frames']} frames; ring buffer "
            f"{heat['heatmap_buffer_bytes']:,} bytes for {heat['heatmap_minutes']:g} minutes; "
            f"{heat['cpu']['deltas_per_s_with_ui']:,} deltas/s in the CPU run",
        ]
    if "xvenue" in figs:
        lines += ui_xvenue.report_lines(figs["xvenue"])
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """`python benchmarks/ui_bench.py [--json] [--quick]`."""
    p = argparse.ArgumentParser(description="UI benchmarks: ladder frame time, UI CPU share, key to order.")
    p.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    p.add_argument("--quick", action="store_true", help="fewer frames, shorter CPU window, fewer presses")
    args = p.parse_args(argv)
    figs = run(frames=60, cpu_seconds=2.0, trials=5) if args.quick else run()
    print(json.dumps(figs) if args.json else report(figs))
    return 0

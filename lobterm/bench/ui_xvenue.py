"""UI benchmark case (figures, not pass/fail; part of `lobterm bench ui`): THREE sim venues quoting one
instrument, about 10,000 book deltas a second in total, the UI at 30 Hz, the liquidity heatmap on.

Before: the desk as it was, a ladder per venue side by side (three ladders, three heatmaps). After: one
consolidated ladder over the three venues (`[ui] consolidated`) and its heatmap. For each: the frame time
(every venue advanced by one 30 Hz frame of deltas, then `pull()` and every line painted, ladders and
heatmaps, as Textual does when it composes a frame) and the UI's CPU share (the whole app headless on a
30 Hz clock against the live sims, minus the same sims with no UI).
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any
from unittest.mock import patch

from lobterm import config as config_module
from lobterm.assemble import build
from lobterm.config import Config
from lobterm.engine.events import BookDelta

VENUES = ("simA", "simB", "simC")
UI_HZ = 30.0
RATE_HZ = 250.0  # sim steps a second (all venues step together on the group's clock)
CHURN_PER_S = 2_600.0  # per venue: about 10,000 deltas a second over the three (measured; reported)
LADDER_ROWS = 40


def xvenue_config(*, consolidated: bool) -> Config:
    """Three sim venues on one fair price, the heatmap on, the UI at 30 Hz."""
    sections = ["[simgroup]\ncorrelation = 0.9\nseed = 5\n"]
    for i, name in enumerate(VENUES):
        role = "quote" if i == 0 else "hedge" if i == 1 else "quote"
        sections.append(
            f'[venues.{name}]\nkind = "sim"\nrole = "{role}"\nrate_hz = {RATE_HZ}\nchurn_per_s = {CHURN_PER_S}\n'
            f"touch_lots = {150 * (i + 1)}\n"
            # the market the figures before session 5 were measured on (a small move every step)
            "fair_events_per_s = 0\nlp_delay_ms = 0\ntaker_delay_ms = 0\n"
        )
    sections.append(
        f"[ui]\nheatmap = true\nconsolidated = {'true' if consolidated else 'false'}\nrefresh_hz = {UI_HZ}\n"
        "ticks_per_row = 1\n"  # one tick a row, as the figures before the auto zoom
        "[metrics]\nenabled = false\n"
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "xvenue-bench.toml"
        path.write_text("\n".join(sections), encoding="utf-8")
        return config_module.load(path, use_defaults=False)


def _quantiles(samples_s: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in samples_s)
    return {
        "p50": round(statistics.median(ms), 3),
        "p99": round(ms[min(len(ms) - 1, int(len(ms) * 0.99))], 3),
    }


async def _wait(pilot: Any, condition: Any, timeout: float = 15.0) -> None:
    deadline = time.perf_counter() + timeout
    while not condition():
        if time.perf_counter() > deadline:
            raise TimeoutError("the benchmark's app did not get ready")
        await pilot.pause(0.01)


async def frames(n_frames: int, *, consolidated: bool) -> dict[str, Any]:
    """Frame time over the ladders and heatmaps shown, every venue one 30 Hz frame of deltas further."""
    from lobterm.app import LobtermApp
    from lobterm.widgets.ladder_model import HEADER_LINES

    cfg = xvenue_config(consolidated=consolidated)
    asm = build(cfg, "tui", virtual=True)
    for sim in asm.sims:
        sim.open()
    for _ in range(50):
        for sim in asm.sims:
            sim.step()
    deltas = [0]
    asm.kernel.bus.subscribe(BookDelta, lambda ev: deltas.__setitem__(0, deltas[0] + 1))
    app = LobtermApp(cfg, kernel=asm, live=False)
    steps = max(1, round(RATE_HZ / UI_HZ))
    width = 420 if not consolidated else 200
    async with app.run_test(size=(width, LADDER_ROWS + HEADER_LINES + 12)) as pilot:
        desk = app.desk
        for ladder in desk.ladders:
            ladder.styles.height = LADDER_ROWS + HEADER_LINES
        await _wait(
            pilot, lambda: all(x.top_price is not None and x.price_rows == LADDER_ROWS for x in desk.ladders)
        )
        await _wait(pilot, lambda: all(h.display and h.frames > 0 for h in desk.heatmaps))
        patch.object(desk, "pull", lambda *a, **k: None).start()  # the UI clock stays out of the timed frames
        height = desk.ladders[0].size.height
        times: list[float] = []
        cpu_times: list[float] = []  # CPU time of the frame: what a loaded machine's descheduling leaves out
        deltas[0] = 0
        for _ in range(n_frames):
            for _ in range(steps):
                for sim in asm.sims:
                    sim.step()
            t0, c0 = time.perf_counter(), time.process_time()
            for ladder, heat in zip(desk.ladders, desk.heatmaps, strict=True):
                ladder.pull()
                heat.pull()
                for y in range(height):
                    ladder.render_line(y)
                    heat.render_line(y)
            times.append(time.perf_counter() - t0)
            cpu_times.append(time.process_time() - c0)
        shown = [type(x).__name__ for x in desk.ladders]
        app.exit()
    return {
        "ladders": shown,
        "frame_ms": _quantiles(times),
        "frame_cpu_ms": _quantiles(cpu_times),
        "deltas_per_frame": round(deltas[0] / n_frames, 1),
        "n_frames": n_frames,
    }


async def _sims_only_cpu(seconds: float) -> tuple[float, float]:
    """(process CPU share, deltas a second) of the three sims with no UI."""
    asm = build(xvenue_config(consolidated=True), "headless", strategies=False)
    deltas = [0]
    asm.kernel.bus.subscribe(BookDelta, lambda ev: deltas.__setitem__(0, deltas[0] + 1))
    await asm.kernel.start()
    await asyncio.sleep(0.5)
    c0, t0, d0 = time.process_time(), time.perf_counter(), deltas[0]
    await asyncio.sleep(seconds)
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    rate = (deltas[0] - d0) / wall
    await asm.kernel.stop()
    return cpu / wall, rate


async def _app_cpu(seconds: float, *, consolidated: bool) -> tuple[float, float]:
    from lobterm.app import LobtermApp

    app = LobtermApp(xvenue_config(consolidated=consolidated))
    deltas = [0]
    app.kernel.bus.subscribe(BookDelta, lambda ev: deltas.__setitem__(0, deltas[0] + 1))
    async with app.run_test(size=(200, 50)) as pilot:
        desk = app.desk
        await _wait(pilot, lambda: all(x.top_price is not None for x in desk.ladders))
        await pilot.pause(0.5)
        c0, t0, d0 = time.process_time(), time.perf_counter(), deltas[0]
        await asyncio.sleep(seconds)
        cpu, wall = time.process_time() - c0, time.perf_counter() - t0
        rate = (deltas[0] - d0) / wall
        app.exit()
    return cpu / wall, rate


async def run(n_frames: int, cpu_seconds: float) -> dict[str, Any]:
    """Before (a ladder per venue) and after (one consolidated ladder), heatmaps on, three venues."""
    out: dict[str, Any] = {}
    base_share, base_rate = await _sims_only_cpu(cpu_seconds)
    per_delta = base_share / base_rate if base_rate else 0.0  # the sims' CPU per delta, with no UI
    for name, consolidated in (("per_venue", False), ("consolidated", True)):
        figs = await frames(n_frames, consolidated=consolidated)
        share, rate = await _app_cpu(cpu_seconds, consolidated=consolidated)
        figs["cpu"] = {
            "process_share_with_ui": round(share, 3),
            "deltas_per_s_with_ui": round(rate),
            "ui_share": round(max(0.0, share - base_share), 3),
            # When the machine cannot keep the sims at their rate with the UI on, the plain difference
            # understates the UI: this one takes off only the sims' CPU for the deltas they did make.
            "ui_share_rate_adjusted": round(max(0.0, share - per_delta * rate), 3),
        }
        out[name] = figs
    out["sims_only"] = {"process_share": round(base_share, 3), "deltas_per_s": round(base_rate)}
    return out


def report_lines(figs: dict[str, Any]) -> list[str]:
    lines = []
    for name, what in (
        ("per_venue", "before: a ladder per venue"),
        ("consolidated", "after: one consolidated"),
    ):
        f = figs[name]
        frame_ok = "ok" if f["frame_ms"]["p50"] <= 3.0 else "ABOVE GOAL"
        cpu_ok = "ok" if f["cpu"]["ui_share"] <= 0.25 else "ABOVE GOAL"
        lines += [
            f"{f'3 venues + heatmap, {what} (frame p50 ms)':<60} {f['frame_ms']['p50']:>12.3f} {'<= 3':>10}  "
            f"{frame_ok if name == 'consolidated' else ''}",
            f"{f'3 venues + heatmap, {what} (UI CPU share)':<60} {f['cpu']['ui_share']:>12.1%} {'<= 25%':>10}  "
            f"{cpu_ok if name == 'consolidated' else ''}",
            f"  {', '.join(f['ladders'])}: frame CPU p50 {f['frame_cpu_ms']['p50']:.3f} ms; UI share adjusted to the "
            f"deltas made {f['cpu']['ui_share_rate_adjusted']:.1%}; "
            f"frame p99 {f['frame_ms']['p99']:.3f} ms, {f['deltas_per_frame']} deltas "
            f"a frame; with the UI {f['cpu']['process_share_with_ui']:.1%} of a core at "
            f"{f['cpu']['deltas_per_s_with_ui']:,} deltas/s",
        ]
    s = figs["sims_only"]
    lines.append(f"  three sims alone: {s['process_share']:.1%} of a core at {s['deltas_per_s']:,} deltas/s")
    return lines

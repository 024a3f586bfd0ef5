"""Sweep scaling: `lobterm sweep` with 2 local worker processes against 1, on the same tasks.

Four recorded sim sessions (the market maker quoting, `session_s` of sim each) x four parameter sets
= 16 backtest tasks, run by `run_sweep` with `LocalBackend(1)` (in this process) and `LocalBackend(2)`
(a process pool), each into a fresh results table so nothing is skipped; best of `repeat`. The speedup
is the 1-worker wall time over the 2-worker one (the issue's goal on this 2-core machine: >= 1.7x).
The results of both runs are compared: a sweep's figures must not depend on its worker count.
Figures, not pass/fail; other processes on the machine lower the 2-worker figure.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path

__all__ = ["main", "report", "run"]

SETS = [{"spread_ticks": s, "levels": lv} for s in (2, 6) for lv in (2, 4)]


def _cpu() -> float:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _timed(sessions: list[str], db: Path, workers: int, engine: str) -> tuple[float, float, list]:
    """(wall s, CPU s of this process and its workers, ranking) of one sweep."""
    from lobterm.backtest.sweep import LocalBackend, run_sweep

    c0, t0 = _cpu(), time.perf_counter()
    out = run_sweep(sessions, SETS, db, backend=LocalBackend(workers), engine=engine)
    wall = time.perf_counter() - t0
    assert out.ran == len(sessions) * len(SETS) and not out.errors
    return wall, _cpu() - c0, [(e["params"], e["median_net_pnl"], e["fills"]) for e in out.ranking]


def run(session_s: float = 240.0, repeat: int = 2, engine: str = "auto") -> dict:
    """Best-of-`repeat` wall times of the same 16-task sweep on 1 and 2 workers, and the speedup."""
    from lobterm.backtest.fast import warm_up
    from lobterm.bench.backtest import write_sim_session

    warm_up()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        sessions = []
        events = 0
        for seed in (1, 2, 3, 4):
            p = d / f"sim-{seed}.lobterm.sqlite"
            events += write_sim_session(p, seed=seed, duration_s=session_s)
            sessions.append(str(p))
        walls: dict[int, float] = {}
        cpus: dict[int, float] = {}
        ranked: dict[int, list] = {}
        load = os.getloadavg()[0]
        for i in range(repeat):
            for workers in (1, 2):
                wall, cpu, ranked[workers] = _timed(sessions, d / f"r-{workers}-{i}.sqlite", workers, engine)
                if wall < walls.get(workers, float("inf")):
                    walls[workers], cpus[workers] = wall, cpu
    tasks = len(sessions) * len(SETS)
    return {
        "sessions": len(sessions),
        "session_seconds": session_s,
        "session_events": events // len(sessions),
        "parameter_sets": len(SETS),
        "tasks": tasks,
        "engine": engine,
        "cores": os.cpu_count(),
        "wall_1_worker_s": round(walls[1], 3),
        "wall_2_workers_s": round(walls[2], 3),
        "tasks_per_s_1_worker": round(tasks / walls[1], 2),
        "tasks_per_s_2_workers": round(tasks / walls[2], 2),
        "speedup_2_vs_1": round(walls[1] / walls[2], 2),
        # CPU seconds per wall second of the 2-worker sweep: near 2 when the workers had both cores; lower
        # when other processes took them (the load average says how many were runnable meanwhile).
        "cores_used_2_workers": round(cpus[2] / walls[2], 2),
        "load_average_1min": round(load, 2),
        "same_results": ranked[1] == ranked[2],
    }


def report(fig: dict) -> str:
    return "\n".join(
        [
            f"sweep benchmark: {fig['sessions']} sessions x {fig['parameter_sets']} parameter sets = {fig['tasks']} "
            f"tasks ({fig['session_seconds']:g} s of sim, ~{fig['session_events']:,} events each; "
            f"engine {fig['engine']}; {fig['cores']} cores)",
            f"  1 worker (in process)    {fig['wall_1_worker_s']:>8.2f} s  {fig['tasks_per_s_1_worker']:>6.2f} tasks/s",
            f"  2 workers (processes)    {fig['wall_2_workers_s']:>8.2f} s  {fig['tasks_per_s_2_workers']:>6.2f} tasks/s",
            f"  speedup 2 vs 1           {fig['speedup_2_vs_1']:>8.2f}x   (goal >= 1.7x on 2 cores)",
            f"  cores used by 2 workers  {fig['cores_used_2_workers']:>8.2f}    "
            f"(load average {fig['load_average_1min']:g} at the start: other processes take cores too)",
            f"  same ranking on both     {'yes' if fig['same_results'] else 'NO'}",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    """`python benchmarks/sweep_bench.py [--json] [--session-s S] [--reference]`."""
    ap = argparse.ArgumentParser(description="Sweep scaling: 2 local workers against 1.")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    ap.add_argument("--session-s", type=float, default=240.0, help="sim seconds per session (default 240)")
    ap.add_argument("--repeat", type=int, default=2, help="runs of each, best kept (default 2)")
    ap.add_argument("--reference", action="store_true", help="every task on the reference path")
    a = ap.parse_args(argv)
    fig = run(a.session_s, a.repeat, "reference" if a.reference else "auto")
    print(json.dumps(fig) if a.json else report(fig))
    return 0

"""`lobterm bench [engine|l2|ui|record|backtest|sweep|all] [--json]`: runs the benchmarks and prints one table,
each figure beside its goal (figures, not pass/fail: the exit code is 0 whatever they are).

Each section is the module `lobterm.bench.<name>`, imported only when its section runs, whose
`run() -> dict` gives the figures. A benchmark that raises gives a "failed: ..." row and the other
sections still run.
"""

from __future__ import annotations

import importlib
import json
import platform
import sys
from collections.abc import Callable
from typing import Any

# (figure key, label, goal, unit); a goal is a floor.
ENGINE_GOALS = [
    ("matching_ops_per_s", "matching: lob-mix-v1 ops/s (events emitted)", 600_000, "ops/s"),
    ("l2_deltas_per_s", "L2 book: apply deltas/s (best bid/ask current)", 2_000_000, "deltas/s"),
    ("l2_checked_per_s", "L2 book: sequenced BookDelta events/s", None, "deltas/s"),
]

SECTIONS = ("engine", "l2", "ui", "record", "backtest", "sweep")


class Row:
    """One line of the table: a figure, its goal (`at least` or `at most`) and the verdict."""

    __slots__ = ("section", "label", "value", "goal", "at_most", "unit")

    def __init__(
        self,
        section: str,
        label: str,
        value: float | int | str | None,
        goal: float | None = None,
        at_most: bool = False,
        unit: str = "",
    ) -> None:
        self.section, self.label, self.value, self.goal, self.at_most, self.unit = (
            section,
            label,
            value,
            goal,
            at_most,
            unit,
        )

    def verdict(self) -> str:
        if self.goal is None or not isinstance(self.value, (int, float)):
            return ""
        ok = self.value <= self.goal if self.at_most else self.value >= self.goal
        return "ok" if ok else ("ABOVE GOAL" if self.at_most else "BELOW GOAL")

    def as_dict(self) -> dict[str, Any]:
        return {
            "section": self.section,
            "figure": self.label,
            "value": self.value,
            "unit": self.unit,
            "goal": None if self.goal is None else ("<= " if self.at_most else ">= ") + f"{self.goal:g}",
            "verdict": self.verdict() or None,
        }


def _fmt(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3g}"
    return str(v)


def _dig(figs: dict, *paths: str) -> Any:
    """The first of `paths` ("a.b.c") present in `figs`."""
    for path in paths:
        node: Any = figs
        for part in path.split("."):
            if not isinstance(node, dict) or part not in node:
                break
            node = node[part]
        else:
            return node
    return None


# ---- loading ------------------------------------------------------------------------------------
def _load(name: str) -> Callable[[], dict]:
    """`run` of the benchmark `name` (a module of this package)."""
    return importlib.import_module(f"lobterm.bench.{name}").run


# ---- sections -----------------------------------------------------------------------------------
def engine_figures() -> dict:
    from lobterm.bench import engine, l2

    m = engine.run()
    r = l2.run()
    return {
        "matching_ops_per_s": m["ops_per_s"],
        "matching_events_per_s": m["events_per_s"],
        "matching_latency_ns": m["latency"],
        "matching_final_state_ok": m["final_state_ok"],
        "l2_deltas_per_s": round(r["deltas_per_s"]),
        "l2_checked_per_s": round(r["apply_delta_per_s"]),
        "l2_final_state_ok": r["checked"],
        "python": platform.python_version(),
        "machine": platform.machine(),
    }


def l2_figures() -> dict:
    from lobterm.bench import l2

    r = l2.run()
    return {
        "l2_deltas_per_s": round(r["deltas_per_s"]),
        "l2_checked_per_s": round(r["apply_delta_per_s"]),
        "l2_final_state_ok": r["checked"],
    }


def _engine_rows(figs: dict, keys: tuple[str, ...]) -> list[Row]:
    rows = [
        Row("engine", label, figs[key], goal, unit=unit)
        for key, label, goal, unit in ENGINE_GOALS
        if key in keys
    ]
    if "matching_final_state_ok" in figs:
        rows.append(
            Row(
                "engine",
                "matching: final book equals the workload's reference",
                "yes" if figs["matching_final_state_ok"] else "NO",
            )
        )
    rows.append(
        Row(
            "engine",
            "L2 book: final book equals the workload's reference",
            "yes" if figs["l2_final_state_ok"] else "NO",
        )
    )
    return rows


def _record_rows(figs: dict) -> list[Row]:
    return [
        Row(
            "record",
            "recorder: events/s committed (flat out)",
            _dig(figs, "flat_out.events_per_s", "events_per_s"),
            300_000,
            unit="events/s",
        ),
        Row(
            "record",
            "event-loop lag p99 while recording (ms)",
            _dig(figs, "paced.lag.p99_ms", "flat_out.lag.p99_ms", "lag.p99_ms", "loop_lag_p99_ms"),
            5,
            at_most=True,
            unit="ms",
        ),
        Row(
            "record",
            "recorder: backlog at the end of the paced run (events)",
            _dig(figs, "paced.backlog_at_end"),
            unit="events",
        ),
    ]


def _backtest_rows(figs: dict) -> list[Row]:
    return [
        Row(
            "backtest",
            "backtest: events/s (market maker, paper fills), fast path end to end",
            _dig(figs, "backtest_events_per_s", "events_per_s"),
            1_000_000,
            unit="events/s",
        ),
        Row(
            "backtest",
            "backtest fast path: the numba kernel alone",
            _dig(figs, "kernel_events_per_s"),
            unit="events/s",
        ),
        Row(
            "backtest",
            "backtest reference path (the kernel's objects)",
            _dig(figs, "reference_events_per_s"),
            unit="events/s",
        ),
        Row(
            "backtest",
            "session read + msgspec decode events/s",
            _dig(figs, "decode_events_per_s"),
            unit="events/s",
        ),
    ]


def _sweep_rows(figs: dict) -> list[Row]:
    return [
        Row(
            "sweep",
            "sweep: 2 local workers vs 1, speedup (16 backtests)",
            figs.get("speedup_2_vs_1"),
            1.7,
            unit="x",
        ),
        Row("sweep", "sweep: cores used by the 2 workers", figs.get("cores_used_2_workers"), unit="cores"),
        Row("sweep", "sweep: same ranking on 1 and 2 workers", "yes" if figs.get("same_results") else "NO"),
    ]


def _ui_rows(figs: dict) -> list[Row]:
    share = _dig(figs, "summary.ui_cpu_share", "cpu.ui_share")
    known = [
        (
            "ladder render per frame, median (ms, 40 rows)",
            _dig(figs, "render_ms_median", "summary.ladder_frame_ms_p50", "ladder.frame_ms.p50"),
            2,
            "ms",
        ),
        (
            "UI CPU share at 30 Hz, 10,000 deltas/s (% of a core)",
            _dig(figs, "cpu_percent") if share is None else round(share * 100, 1),
            20,
            "%",
        ),
        (
            "key press to order visible on the ladder, median (ms)",
            _dig(figs, "key_to_order_ms", "summary.key_to_visible_ms_p50", "key_to_visible_ms.p50"),
            50,
            "ms",
        ),
        (
            "ladder + heatmap render per frame, median (ms, 40 rows)",
            _dig(figs, "summary.heatmap_frame_ms_p50"),
            3,
            "ms",
        ),
        (
            "UI CPU share with the heatmap on, 10,000 deltas/s (%)",
            None if (h := _dig(figs, "summary.heatmap_ui_cpu_share")) is None else round(h * 100, 1),
            25,
            "%",
        ),
        (
            "heatmap ring buffer, 5 minutes (bytes, fixed)",
            _dig(figs, "heatmap.heatmap_buffer_bytes"),
            None,
            "bytes",
        ),
    ]
    rows = [Row("ui", label, v, goal, True, unit) for label, v, goal, unit in known if v is not None]
    if not rows:  # a UI bench whose figures have other names: show them as they come
        rows = [Row("ui", key, v) for key, v in _flat(figs) if isinstance(v, (int, float, str))]
    return rows


def _flat(d: dict, prefix: str = "") -> list[tuple[str, Any]]:
    out = []
    for k, v in d.items():
        if isinstance(v, dict):
            out += _flat(v, f"{prefix}{k}.")
        else:
            out.append((f"{prefix}{k}", v))
    return out


def run_section(name: str) -> tuple[dict, list[Row]]:
    """(figures, rows) of one section (one of SECTIONS)."""
    if name == "engine":
        figs = engine_figures()
        return figs, _engine_rows(figs, ("matching_ops_per_s", "l2_deltas_per_s", "l2_checked_per_s"))
    if name == "l2":
        figs = l2_figures()
        return figs, _engine_rows(figs, ("l2_deltas_per_s", "l2_checked_per_s"))
    try:
        figs = _load(name)()
    except Exception as exc:  # one broken benchmark must not hide the others' figures
        return {"error": f"{type(exc).__name__}: {exc}"}, [
            Row(name, f"{name} benchmark", f"failed: {type(exc).__name__}: {exc}")
        ]
    to_rows = {"record": _record_rows, "backtest": _backtest_rows, "ui": _ui_rows, "sweep": _sweep_rows}.get(
        name
    )
    if to_rows is None:
        return figs, [Row(name, key, v) for key, v in _flat(figs) if isinstance(v, (int, float, str))]
    return figs, to_rows(figs)


def run_bench(which: str, *, as_json: bool = False) -> int:
    if which != "all" and which not in SECTIONS:
        print(
            f"lobterm bench: unknown benchmark {which!r} (one of {', '.join(SECTIONS)}, all)", file=sys.stderr
        )
        return 2
    names = [n for n in SECTIONS if n != "l2"] if which == "all" else [which]  # engine includes the L2 book
    results: dict[str, Any] = {"python": platform.python_version(), "machine": platform.machine()}
    rows: list[Row] = []
    for name in names:
        if not as_json:
            print(f"running {name} ...", file=sys.stderr, flush=True)
        figs, section_rows = run_section(name)
        results[name] = figs
        rows += section_rows
    if as_json:
        results["table"] = [r.as_dict() for r in rows]
        print(json.dumps(results))
        return 0
    print(f"lobterm bench {which} (Python {results['python']}, {results['machine']}); figures, not pass/fail")
    print(f"{'figure':<58} {'measured':>14} {'goal':>14}  ")
    for r in rows:
        if isinstance(r.value, str) and len(r.value) > 14:  # a note, not a figure
            print(f"{r.label:<58} {r.value}")
            continue
        goal = "-" if r.goal is None else ("<= " if r.at_most else ">= ") + _fmt(r.goal)
        print(f"{r.label:<58} {_fmt(r.value):>14} {goal:>14}  {r.verdict()}".rstrip())
    engine = results.get("engine")
    if isinstance(engine, dict) and "matching_latency_ns" in engine:
        print("matching latency per op kind (ns, includes ~60 ns of timer overhead):")
        for kind, lat in engine["matching_latency_ns"].items():
            name = {"A": "passive limit", "C": "cancel", "M": "market", "X": "marketable limit"}[kind]
            print(
                f"  {kind} {name:<18} n={lat['count']:>7,}  p50 {lat['p50_ns']:>6,}  p99 {lat['p99_ns']:>6,}"
            )
    return 0

"""`lobterm sweep`: backtests of sessions x market maker parameter sets, ranked across sessions.

- **Parameter sets** come from a space: choices per parameter (`--grid spread_ticks=2,4,8`, or a TOML
  file's `[grid]` table of lists) and, for the random and Optuna samplers, ranges (`--range
  skew_ticks_per_lot=0..0.1`, a `[range]` table of `[low, high]`). The grid sampler takes every
  combination; `random` draws `--samples` sets, seeded; `optuna` (the optional extra) asks a seeded
  TPE sampler for `--samples` trials, maximizing the median net P&L across the sessions. Each set
  changes the session's recorded parameters from the start (its recorded live changes are not applied).
- **One task function**, `run_task(task) -> row`: one backtest of one session with one parameter set,
  deterministic, on the fast path when it can (else the reference path). It runs unchanged on both
  backends: `LocalBackend` (a process pool on this machine, `--workers`, default all cores) and
  `RayBackend` (`ray.remote(run_task)` on a Ray cluster at `--address`, or a local Ray instance).
- **Results** go to one SQLite table keyed by (session hash, parameter hash) as each task finishes,
  so an interrupted or killed sweep, rerun, skips what is done. The session hash is the file's
  SHA-256 (an edited file is a new session); the parameter hash covers the parameter set and the
  backtest options (latency, engine).
- **Fill models**: `--latency SPEC` and `--queue MODEL[:n]` as for `lobterm backtest`
  (lobterm/backtest/models.py). `--latency recorded` is per session: each task draws its latency from
  its own session's recorded request -> answer times (a session without them is a failed row naming
  why, the others run); `feed=MS` adds a market data feed delay, `feed=recorded` draws it per session
  from the session's own feed latency samples (live ccxt sessions; a session without them is a failed
  row).
- **Ranking**: per parameter set, the median and the worst-decile (10th percentile, nearest rank: the
  worst session below ten sessions) net P&L across the sessions, with fill counts.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import logging
import math
import os
import random
import sqlite3
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, fields
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

__all__ = [
    "LocalBackend",
    "RayBackend",
    "ResultStore",
    "Space",
    "SweepError",
    "grid_sets",
    "load_space",
    "parse_space",
    "random_sets",
    "rank",
    "run_sweep",
    "run_task",
    "session_hash",
    "sweep_command",
]

SCHEMA = """CREATE TABLE IF NOT EXISTS results (
    session_hash TEXT NOT NULL,
    params_hash TEXT NOT NULL,
    session TEXT NOT NULL,
    params TEXT NOT NULL,
    engine TEXT,
    events INTEGER,
    fills INTEGER,
    quotes_sent INTEGER,
    volume TEXT,
    net_pnl TEXT,
    realized_pnl TEXT,
    fees TEXT,
    max_drawdown TEXT,
    quote_currency TEXT,
    quote_decimals INTEGER,
    wall_seconds REAL,
    error TEXT,
    finished_ns INTEGER,
    PRIMARY KEY (session_hash, params_hash)
)"""
#: The session files' hashes, by path and the stat they were hashed at (see ResultStore.session_hashes).
FILES_SCHEMA = """CREATE TABLE IF NOT EXISTS session_files (
    path TEXT PRIMARY KEY,
    stat TEXT NOT NULL,
    hash TEXT NOT NULL
)"""
_COLUMNS = [
    "session_hash",
    "params_hash",
    "session",
    "params",
    "engine",
    "events",
    "fills",
    "quotes_sent",
    "volume",
    "net_pnl",
    "realized_pnl",
    "fees",
    "max_drawdown",
    "quote_currency",
    "quote_decimals",
    "wall_seconds",
    "error",
    "finished_ns",
]


class SweepError(ValueError):
    """Bad sweep input (a parameter, a value, a space file, a backend): the message is one line."""


# ---- the parameter space --------------------------------------------------------------------------
def _kinds() -> dict[str, type]:
    from lobterm.trading.quoting import QuoteParams

    return {f.name: type(f.default) for f in fields(QuoteParams)}


def _value(name: str, kind: type, raw: Any, where: str) -> Any:
    """One parameter value as its field's type, from text (the CLI) or TOML."""
    try:
        if kind is bool:
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("true", "yes", "1"):
                return True
            if text in ("false", "no", "0"):
                return False
            raise ValueError("not true or false")
        if kind is int:
            if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                raise ValueError("not a whole number")
            return int(str(raw).strip()) if not isinstance(raw, int | float) else int(raw)
        if kind is float:
            if isinstance(raw, bool):
                raise ValueError("not a number")
            v = float(str(raw).strip()) if not isinstance(raw, int | float) else float(raw)
            if not math.isfinite(v):
                raise ValueError("not a finite number")
            return v
        if kind is tuple:
            if not isinstance(raw, list):
                raise ValueError("a list of lots per level (set it in a TOML space file)")
            return tuple(_value(name, int, x, where) for x in raw)
        return str(raw)
    except (TypeError, ValueError) as exc:
        raise SweepError(f"{where}: {name} = {raw!r}: {exc}") from None


@dataclass(slots=True)
class Space:
    """Choices per parameter (the grid, or what random and Optuna pick from) and ranges [low, high]."""

    choices: dict[str, list[Any]] = field(default_factory=dict)
    ranges: dict[str, tuple[Any, Any]] = field(default_factory=dict)

    def merge(self, other: Space) -> Space:
        return Space({**self.choices, **other.choices}, {**self.ranges, **other.ranges})

    def names(self) -> list[str]:
        return sorted({*self.choices, *self.ranges})


def _name(name: str, where: str) -> type:
    kinds = _kinds()
    if name not in kinds:
        raise SweepError(
            f"{where}: {name!r} is not a market maker parameter (known: {', '.join(sorted(kinds))})"
        )
    return kinds[name]


def _range(name: str, kind: type, lo: Any, hi: Any, where: str) -> tuple[Any, Any]:
    if kind not in (int, float):
        raise SweepError(f"{where}: {name} is not a number: give its choices instead of a range")
    a, b = _value(name, kind, lo, where), _value(name, kind, hi, where)
    if a > b:
        raise SweepError(f"{where}: {name} range {a}..{b}: low above high")
    return a, b


def parse_space(grid: Iterable[str] = (), ranges: Iterable[str] = ()) -> Space:
    """The space of `--grid NAME=V1,V2,...` and `--range NAME=LOW..HIGH` options."""
    space = Space()
    for item in grid:
        name, sep, values = item.partition("=")
        name = name.strip()
        where = f"--grid {item}"
        if not sep or not values.strip():
            raise SweepError(f"{where}: expected NAME=V1,V2,... (e.g. spread_ticks=2,4,8)")
        kind = _name(name, where)
        space.choices[name] = list(dict.fromkeys(_value(name, kind, v, where) for v in values.split(",")))
    for item in ranges:
        name, sep, span = item.partition("=")
        name = name.strip()
        where = f"--range {item}"
        lo, dots, hi = span.partition("..")
        if not sep or not dots:
            raise SweepError(f"{where}: expected NAME=LOW..HIGH (e.g. skew_ticks_per_lot=0..0.1)")
        space.ranges[name] = _range(name, _name(name, where), lo, hi, where)
    return space


def load_space(path: str | os.PathLike[str]) -> Space:
    """The space of a TOML file: `[grid]` NAME = [choices...], `[range]` NAME = [low, high]."""
    import tomllib

    where = str(path)
    try:
        data = tomllib.loads(Path(path).read_text())
    except OSError as exc:
        raise SweepError(f"{where}: cannot read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SweepError(f"{where}: not TOML: {exc}") from None
    unknown = set(data) - {"grid", "range"}
    if unknown:
        raise SweepError(
            f"{where}: unknown table(s) {', '.join(sorted(unknown))} (expected [grid] and [range])"
        )
    space = Space()
    for name, values in dict(data.get("grid", {})).items():
        kind = _name(name, f"{where} [grid]")
        if not isinstance(values, list) or not values:
            raise SweepError(f"{where} [grid]: {name} must be a non-empty list of choices")
        vals = [_value(name, kind, v, f"{where} [grid]") for v in values]
        space.choices[name] = [v for i, v in enumerate(vals) if v not in vals[:i]]
    for name, span in dict(data.get("range", {})).items():
        kind = _name(name, f"{where} [range]")
        if not isinstance(span, list) or len(span) != 2:
            raise SweepError(f"{where} [range]: {name} must be [low, high]")
        space.ranges[name] = _range(name, kind, span[0], span[1], f"{where} [range]")
    return space


def grid_sets(space: Space) -> list[dict[str, Any]]:
    """Every combination of the choices (ranges are for the random and Optuna samplers)."""
    if space.ranges:
        raise SweepError(
            f"--range {', '.join(sorted(space.ranges))}: a grid takes choices; ranges need --sampler random or optuna"
        )
    names = sorted(space.choices)
    return [
        dict(zip(names, combo, strict=True))
        for combo in itertools.product(*(space.choices[n] for n in names))
    ]


def random_sets(space: Space, samples: int, seed: int) -> list[dict[str, Any]]:
    """`samples` parameter sets drawn with `random.Random(seed)`: a choice per listed parameter, uniform in
    each range (whole numbers for integer parameters); repeats dropped."""
    rng = random.Random(seed)
    kinds = _kinds()
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for _ in range(samples * 20):
        if len(out) == samples:
            break
        s: dict[str, Any] = {}
        for name in space.names():
            if name in space.choices:
                s[name] = rng.choice(space.choices[name])
            else:
                lo, hi = space.ranges[name]
                s[name] = rng.randint(lo, hi) if kinds[name] is int else round(rng.uniform(lo, hi), 6)
        key = _canonical(s)
        if key not in seen:
            seen.add(key)
            out.append(s)
    return out


# ---- hashes --------------------------------------------------------------------------------------
def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=list)


def _stat(path: str | os.PathLike[str]) -> list[int]:
    st = os.stat(path)
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns]


def session_hash(path: str | os.PathLike[str]) -> str:
    """The SHA-256 of the session file's bytes (hex, 16 digits)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()[:16]


def params_hash(params: dict[str, Any], options: dict[str, Any]) -> str:
    """The hash of one parameter set with the backtest options that change its result."""
    return hashlib.sha256(_canonical({"mm": params, **options}).encode()).hexdigest()[:16]


# ---- the task function ---------------------------------------------------------------------------
def run_task(task: dict[str, Any]) -> dict[str, Any]:
    """One backtest: the session `task["session"]` with the parameter set `task["params"]` (changing the
    recorded parameters from the start), on the fast path when it can (`task["engine"]` "auto"), else
    the reference path. Returns one results row; a backtest that cannot run is a row with `error`. The
    same function runs in a local worker process and as a Ray task."""
    from lobterm.backtest.models import LatencyModel
    from lobterm.backtest.reference import resolve_params, run_backtest
    from lobterm.recording.reader import SessionError, SessionReader
    from lobterm.trading.quoting import QuoteParamError

    path = task["session"]
    row: dict[str, Any] = dict.fromkeys(_COLUMNS)
    row.update(
        session_hash=task["session_hash"],
        params_hash=task["params_hash"],
        session=str(path),
        params=_canonical(task["params"]),
    )
    t0 = time.perf_counter()
    try:
        with SessionReader(path) as reader:
            recorded = reader.config.get("mm")
        overrides = {k: (list(v) if isinstance(v, tuple) else v) for k, v in task["params"].items()}
        params, source = resolve_params(recorded if isinstance(recorded, dict) else None, overrides)
        spec = task.get("latency")
        latency = (
            LatencyModel(**spec)
            if isinstance(spec, dict)
            else LatencyModel.constant(float(task.get("latency_ms", 0.0)))
        )
        queue = task.get("queue")
        result = None
        if task.get("engine", "auto") != "reference":
            from lobterm.backtest.fast import FastPathUnsupported, fast_path_refusal, run_fast_backtest

            if fast_path_refusal(params, latency=latency) is None:
                try:
                    result = run_fast_backtest(
                        path,
                        params,
                        params_source=source,
                        latency=latency,
                        queue=queue,
                        recorded_changes=False,
                    )
                except FastPathUnsupported:
                    result = None
        if result is None:
            result = run_backtest(
                path, params, params_source=source, latency=latency, queue=queue, recorded_changes=False
            )
    except (SessionError, QuoteParamError, TypeError, ValueError) as exc:
        row.update(error=f"{type(exc).__name__}: {exc}", wall_seconds=time.perf_counter() - t0)
        return row
    row.update(
        engine=result.engine,
        events=result.events,
        fills=result.fills,
        quotes_sent=result.quotes_sent,
        volume=result.volume,
        net_pnl=result.net_pnl,
        realized_pnl=result.realized_pnl,
        fees=result.fees,
        max_drawdown=result.max_drawdown,
        quote_currency=result.quote_currency,
        quote_decimals=result.quote_decimals,
        wall_seconds=round(time.perf_counter() - t0, 4),
    )
    return row


def _failed_row(task: dict[str, Any], exc: BaseException) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(_COLUMNS)
    row.update(
        session_hash=task["session_hash"],
        params_hash=task["params_hash"],
        session=str(task["session"]),
        params=_canonical(task["params"]),
        error=f"the task failed: {type(exc).__name__}: {exc}",
    )
    return row


# ---- the results table ---------------------------------------------------------------------------
class ResultStore:
    """The sweep's results: one SQLite table keyed by (session hash, parameter hash), one committed row
    per finished task (a killed sweep keeps every row it reported)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        try:
            self.db = sqlite3.connect(self.path)
            self.db.execute("PRAGMA journal_mode=WAL")
            # A commit per finished task, without an fsync each: in WAL mode a killed sweep (even kill -9)
            # keeps every committed row; only a power cut may lose the last few (rerun: they run again).
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute(SCHEMA)
            self.db.execute(FILES_SCHEMA)
            self.db.commit()
        except sqlite3.Error as exc:
            raise SweepError(f"{self.path}: cannot open the results table: {exc}") from None

    def session_hashes(self, paths: list[str], threads: int = 2) -> list[str]:
        """The SHA-256 (16 hex digits) of each session file: from this table when the file's device, inode,
        size and modification time are those it was hashed at, else hashed now (on `threads` threads:
        hashlib hashes large blocks without the GIL) and noted. A big sweep's sessions are hashed once,
        not before every rerun."""
        from concurrent.futures import ThreadPoolExecutor

        stats = [json.dumps(_stat(p)) for p in paths]
        known = dict(
            ((path, st), h) for path, st, h in self.db.execute("SELECT path, stat, hash FROM session_files")
        )
        out = [known.get((path, st)) for path, st in zip(paths, stats, strict=True)]
        todo = [i for i, h in enumerate(out) if h is None]
        if todo:
            with ThreadPoolExecutor(max(1, min(threads, len(todo)))) as pool:
                for i, h in zip(todo, pool.map(session_hash, [paths[i] for i in todo]), strict=True):
                    out[i] = h
            self.db.executemany(
                "INSERT OR REPLACE INTO session_files (path, stat, hash) VALUES (?, ?, ?)",
                [(paths[i], stats[i], out[i]) for i in todo],
            )
            self.db.commit()
        return [h for h in out if h is not None]

    def done(self) -> set[tuple[str, str]]:
        """The keys of the tasks that finished (an error row counts: the same inputs fail the same way)."""
        return {(a, b) for a, b in self.db.execute("SELECT session_hash, params_hash FROM results")}

    def add(self, row: dict[str, Any]) -> None:
        row = {**row, "finished_ns": time.time_ns()}
        marks = ", ".join("?" * len(_COLUMNS))
        self.db.execute(
            f"INSERT OR REPLACE INTO results ({', '.join(_COLUMNS)}) VALUES ({marks})",
            [row.get(c) for c in _COLUMNS],
        )
        self.db.commit()

    def rows(self, keys: Iterable[tuple[str, str]]) -> list[dict[str, Any]]:
        wanted = set(keys)
        cur = self.db.execute(f"SELECT {', '.join(_COLUMNS)} FROM results")
        return [dict(zip(_COLUMNS, r, strict=True)) for r in cur if (r[0], r[1]) in wanted]

    def close(self) -> None:
        self.db.close()


# ---- backends ------------------------------------------------------------------------------------
class Backend(Protocol):
    name: str

    def imap(
        self, fn: Callable[[dict[str, Any]], dict[str, Any]], tasks: list[dict[str, Any]]
    ) -> Iterator[dict[str, Any]]:
        """Run `fn` over `tasks`, yielding each row as it finishes (any order)."""
        ...


def _ignore_sigint() -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's: it stops the sweep cleanly


class LocalBackend:
    """Worker processes on this machine (`workers`; 1: in this process, no pool)."""

    name = "local"

    def __init__(self, workers: int | None = None) -> None:
        self.workers = max(1, workers or os.cpu_count() or 1)

    def imap(
        self, fn: Callable[[dict[str, Any]], dict[str, Any]], tasks: list[dict[str, Any]]
    ) -> Iterator[dict[str, Any]]:
        if self.workers == 1 or len(tasks) <= 1:
            for t in tasks:
                yield fn(t)
            return
        import multiprocessing as mp
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

        # fork: the workers start at once with what this process imported (numba's kernel loaded once,
        # here, by the caller's warm-up) instead of importing lobterm and numba again each.
        ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else None
        pool = ProcessPoolExecutor(
            max_workers=min(self.workers, len(tasks)), mp_context=ctx, initializer=_ignore_sigint
        )
        try:
            futures = {pool.submit(fn, t): t for t in tasks}
            pending = set(futures)
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for f in done:
                    try:
                        yield f.result()
                    except Exception as exc:  # a worker that died: the sweep records it and goes on
                        yield _failed_row(futures[f], exc)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


class RayBackend:
    """`ray.remote(run_task)` on the Ray cluster at `address`, or on a local Ray instance started here
    (`workers` CPUs) when there is no address and none is running in this process. The workers must
    import the same lobterm and read the sessions at the same paths (a shared file system)."""

    name = "ray"

    def __init__(self, address: str | None = None, workers: int | None = None) -> None:
        self.address = address
        self.workers = workers

    def imap(
        self, fn: Callable[[dict[str, Any]], dict[str, Any]], tasks: list[dict[str, Any]]
    ) -> Iterator[dict[str, Any]]:
        try:
            import ray
        except ImportError:
            raise SweepError(
                "--backend ray needs ray: pip install 'lobterm[sweep-ray]' (or pip install 'ray[default]')"
            ) from None
        started = False
        if not ray.is_initialized():
            # Local workers import the lobterm this process runs (a checkout, not another installed copy).
            here = str(Path(__file__).resolve().parents[2])
            pythonpath = os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH", "")) if p)
            env = {"env_vars": {"PYTHONPATH": pythonpath}}
            quiet: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
            try:
                if self.address:
                    ray.init(address=self.address, runtime_env=env, **quiet)
                else:
                    ray.init(num_cpus=self.workers, include_dashboard=False, runtime_env=env, **quiet)
            except Exception as exc:  # ray's own errors: a bad address, a cluster that does not answer
                raise SweepError(
                    f"--backend ray: cannot connect to {self.address or 'a local Ray instance'}: {exc}"
                ) from None
            started = True
        remote = ray.remote(num_cpus=1, max_retries=1)(fn)
        refs = {remote.remote(t): t for t in tasks}
        pending = list(refs)
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                for ref in done:
                    try:
                        yield ray.get(ref)
                    except Exception as exc:  # a task that raised or a worker that died
                        yield _failed_row(refs[ref], exc)
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)
            if started:
                ray.shutdown()


# ---- ranking -------------------------------------------------------------------------------------
def _median(values: list[Decimal]) -> Decimal:
    v = sorted(values)
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def _worst_decile(values: list[Decimal]) -> Decimal:
    """The 10th percentile, nearest rank: the worst session below ten sessions."""
    v = sorted(values)
    return v[max(0, math.ceil(0.1 * len(v)) - 1)]


def rank(rows: list[dict[str, Any]], sets: list[dict[str, Any]], hashes: list[str]) -> list[dict[str, Any]]:
    """One entry per parameter set: median and worst-decile net P&L across its sessions (exact, as
    strings), fills, errors; best median first, then best worst decile."""
    by_set: dict[str, list[dict[str, Any]]] = {h: [] for h in hashes}
    for r in rows:
        if r["params_hash"] in by_set:
            by_set[r["params_hash"]].append(r)
    out = []
    for params, h in zip(sets, hashes, strict=True):
        good = [r for r in by_set[h] if not r["error"]]
        nets = [Decimal(r["net_pnl"]) for r in good]
        entry: dict[str, Any] = {
            "params": params,
            "params_hash": h,
            "sessions": len(good),
            "errors": len(by_set[h]) - len(good),
            "median_net_pnl": str(_median(nets)) if nets else None,
            "worst_decile_net_pnl": str(_worst_decile(nets)) if nets else None,
            "fills": sum(r["fills"] for r in good),
            "median_fills": float(_median([Decimal(r["fills"]) for r in good])) if good else None,
            "quote_currency": good[0]["quote_currency"] if good else None,
            "quote_decimals": max((r["quote_decimals"] for r in good), default=2),
        }
        if len(good) < len(by_set[h]) or not good:  # the first failure's reason (the table shows it)
            entry["error"] = next((r["error"] for r in by_set[h] if r["error"]), "not run")
        out.append(entry)

    def key(e: dict[str, Any]) -> tuple:
        if e["median_net_pnl"] is None:
            return (1, Decimal(0), Decimal(0))
        return (0, -Decimal(e["median_net_pnl"]), -Decimal(e["worst_decile_net_pnl"]))

    out.sort(key=key)
    for i, e in enumerate(out, 1):
        e["rank"] = i
    return out


# ---- running a sweep -----------------------------------------------------------------------------
def task_options(
    latency_ms: float = 0.0, engine: str = "auto", latency: Any = None, queue: str | None = None
) -> dict[str, Any]:
    """The backtest options every task carries (and its parameter hash covers): a constant latency stays
    `latency_ms` (the hashes of sweeps run before the latency models still match), any other latency
    model is its fields (`latency`), a queue model its spec (`queue`)."""
    from dataclasses import asdict

    from lobterm.backtest.models import LatencyModel

    if latency is not None:
        if latency == LatencyModel.constant(latency.new_ms):
            latency_ms, latency = latency.new_ms, None
        elif latency_ms:
            raise SweepError("give --latency or --latency-ms, not both")
    options: dict[str, Any] = {"latency_ms": latency_ms, "engine": engine}
    if latency is not None:
        options["latency"] = asdict(latency)
    if queue:
        options["queue"] = queue
    return options


class SweepProgress:
    """One progress line on stderr: tasks done of all, those done before (skipped), rate, time left."""

    def __init__(self, total: int, skipped: int, stream: Any = None, hz: float = 4.0) -> None:
        self.total, self.skipped = total, skipped
        self.stream = stream if stream is not None else sys.stderr
        self.period = 1.0 / hz
        self.t0 = time.perf_counter()
        self._last = 0.0
        self._width = 0
        self.ran = 0

    def update(self, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - self._last < self.period:
            return
        self._last = now
        done = self.skipped + self.ran
        rate = self.ran / max(now - self.t0, 1e-9)
        left = (self.total - done) / rate if rate > 0 else float("nan")
        eta = f", {left:,.0f} s left" if math.isfinite(left) and done < self.total else ""
        before = f" ({self.skipped} done before)" if self.skipped else ""
        line = f"sweep: {done}/{self.total} tasks{before}, {rate:.1f} tasks/s{eta}"
        self.stream.write(f"\r{line}{' ' * max(0, self._width - len(line))}")  # over the longer line before
        self._width = len(line)
        self.stream.flush()

    def close(self) -> None:
        self.update(force=True)
        self.stream.write("\n")
        self.stream.flush()


@dataclass(slots=True)
class SweepOutcome:
    """What a sweep did: its tasks, those run now, those skipped (done before), the ranking."""

    sessions: list[str]
    sets: list[dict[str, Any]]
    tasks: int
    ran: int
    skipped: int
    errors: int
    wall_seconds: float
    backend: str
    workers: int | None
    results: str
    ranking: list[dict[str, Any]]
    interrupted: bool = False
    models: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "sweep": {
                "sessions": self.sessions,
                "parameter_sets": len(self.sets),
                "tasks": self.tasks,
                "ran": self.ran,
                "skipped": self.skipped,
                "errors": self.errors,
                "wall_seconds": round(self.wall_seconds, 3),
                "backend": self.backend,
                "workers": self.workers,
                "results": self.results,
                "interrupted": self.interrupted,
                "models": self.models,
            },
            "ranking": self.ranking,
        }


def _tasks(
    sessions: list[tuple[str, str]], sets: list[dict[str, Any]], options: dict[str, Any]
) -> tuple[list[str], list[dict[str, Any]]]:
    hashes = [params_hash(s, options) for s in sets]
    tasks = [
        {"session": path, "session_hash": sh, "params": s, "params_hash": ph, **options}
        for s, ph in zip(sets, hashes, strict=True)
        for path, sh in sessions
    ]
    return hashes, tasks


@dataclass(slots=True)
class _Counts:
    ran: int = 0
    errors: int = 0
    skipped: int = 0
    total: int = 0


def _run(
    backend: Backend,
    store: ResultStore,
    tasks: list[dict[str, Any]],
    progress: SweepProgress | None,
    counts: _Counts,
) -> None:
    """Run the tasks (those not in the store yet), storing each row as it comes."""
    for row in backend.imap(run_task, tasks):
        store.add(row)
        counts.ran += 1
        counts.errors += 1 if row["error"] else 0
        if progress is not None:
            progress.ran += 1
            progress.update()


def run_sweep(
    sessions: list[str],
    sets: list[dict[str, Any]],
    results: str | os.PathLike[str],
    *,
    backend: Backend | None = None,
    latency_ms: float = 0.0,
    engine: str = "auto",
    progress: bool = False,
    latency: Any = None,
    queue: str | None = None,
    optuna_trials: int = 0,
    optuna_space: Space | None = None,
    seed: int = 0,
) -> SweepOutcome:
    """Backtest every session with every parameter set (or, with `optuna_trials`, the sets an Optuna
    study asks for), skipping the (session, set) pairs the results table already holds. `latency` (a
    models.LatencyModel; None: `latency_ms` for every request) and `queue`: the fill models of every task."""
    backend = backend or LocalBackend()
    store = ResultStore(results)
    t0 = time.perf_counter()
    paths = [str(p) for p in sessions]
    hashed = list(
        zip(paths, store.session_hashes(paths, getattr(backend, "workers", None) or 1), strict=True)
    )
    options = task_options(latency_ms, engine, latency, queue)
    if engine != "reference":
        from lobterm.backtest.fast import warm_up

        warm_up()  # compile or load the numba kernel once, before the workers fork
    counts = _Counts()
    bar = SweepProgress(0, 0) if progress else None
    hashes = [params_hash(s, options) for s in sets]
    interrupted = False
    try:
        if optuna_trials:
            sets, hashes = _optuna(
                backend, store, hashed, options, optuna_space or Space(), optuna_trials, seed, bar, counts
            )
        else:
            hashes, tasks = _tasks(hashed, sets, options)
            done = store.done()
            todo = [t for t in tasks if (t["session_hash"], t["params_hash"]) not in done]
            counts.total, counts.skipped = len(tasks), len(tasks) - len(todo)
            if bar is not None:
                bar.total, bar.skipped = counts.total, counts.skipped
            _run(backend, store, todo, bar, counts)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if bar is not None:
            bar.close()
    keys = [(sh, ph) for ph in hashes for _p, sh in hashed]
    ranking = rank(store.rows(keys), sets, hashes)
    store.close()
    return SweepOutcome(
        sessions=[p for p, _h in hashed],
        sets=sets,
        tasks=counts.total,
        ran=counts.ran,
        skipped=counts.skipped,
        errors=counts.errors,
        wall_seconds=time.perf_counter() - t0,
        backend=backend.name,
        workers=getattr(backend, "workers", None),
        results=str(results),
        ranking=ranking,
        interrupted=interrupted,
        models=_models_text(options),
    )


def _models_text(options: dict[str, Any]) -> str:
    """The fill models of a sweep, in one phrase (for its summary)."""
    from lobterm.backtest.models import LatencyModel

    spec = options.get("latency")
    lat = LatencyModel(**spec) if spec else LatencyModel.constant(options["latency_ms"])
    text = f"latency {lat.text()}"
    if spec and (lat.recorded or lat.feed_recorded):
        text = f"latency {lat.text()}, per session"
    return text + f", queue {options.get('queue') or 'risk_averse'}"


def _optuna(
    backend: Backend,
    store: ResultStore,
    hashed: list[tuple[str, str]],
    options: dict[str, Any],
    space: Space,
    trials: int,
    seed: int,
    bar: SweepProgress | None,
    counts: _Counts,
) -> tuple[list[dict[str, Any]], list[str]]:
    """An Optuna study (seeded TPE, maximizing the median net P&L across the sessions), asked for as many
    trials at a time as the backend has workers; the results table serves the trials a rerun asks again."""
    try:
        import optuna
    except ImportError:
        raise SweepError("--sampler optuna needs optuna: pip install 'lobterm[optuna]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    kinds = _kinds()
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    batch = max(1, getattr(backend, "workers", None) or 1)
    sets: list[dict[str, Any]] = []
    hashes: list[str] = []
    counts.total = trials * len(hashed)
    if bar is not None:
        bar.total = counts.total
    while len(sets) < trials:
        asked = []
        for _ in range(min(batch, trials - len(sets))):
            trial = study.ask()
            s: dict[str, Any] = {}
            for name in space.names():
                if name in space.choices:
                    s[name] = trial.suggest_categorical(name, space.choices[name])
                elif kinds[name] is int:
                    s[name] = trial.suggest_int(name, *space.ranges[name])
                else:
                    s[name] = trial.suggest_float(name, *space.ranges[name])
            asked.append((trial, s))
        batch_sets = [s for _t, s in asked]
        batch_hashes, tasks = _tasks(hashed, batch_sets, options)
        done = store.done()
        todo = [t for t in tasks if (t["session_hash"], t["params_hash"]) not in done]
        counts.skipped += len(tasks) - len(todo)
        if bar is not None:
            bar.skipped = counts.skipped
        sets += batch_sets
        hashes += batch_hashes
        _run(backend, store, todo, bar, counts)
        for (trial, s), h in zip(asked, batch_hashes, strict=True):
            [entry] = rank(store.rows([(sh, h) for _p, sh in hashed]), [s], [h])
            if entry["median_net_pnl"] is None:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            else:
                study.tell(trial, float(entry["median_net_pnl"]))
    return sets, hashes


# ---- output --------------------------------------------------------------------------------------
def _money(amount: str | None, decimals: int) -> str:
    from lobterm.backtest.result import rounded

    return "-" if amount is None else rounded(amount, decimals)


def as_text(outcome: SweepOutcome, top: int = 20) -> str:
    s = outcome
    head = (
        f"lobterm sweep: {len(s.sessions)} session{'s' if len(s.sessions) != 1 else ''} x {len(s.sets)} "
        f"parameter sets = {s.tasks} tasks; ran {s.ran}, {s.skipped} done before"
        + (f", {s.errors} failed" if s.errors else "")
        + f" ({s.backend}, {s.workers or 'all'} worker{'' if s.workers == 1 else 's'}, {s.wall_seconds:.1f} s); results in {s.results}"
    )
    if s.models:
        head += f"\n  fill models: {s.models}"
    if s.interrupted:
        head += "\n  interrupted: rerun the same command to resume (finished tasks are kept)"
    ccy = next((e["quote_currency"] for e in s.ranking if e["quote_currency"]), "quote")
    lines = [
        head,
        f"  {'rank':>4}  {'median net':>12}  {'worst decile':>12}  {'fills':>7}  sessions  parameters ({ccy})",
    ]
    for e in s.ranking[:top]:
        d = e["quote_decimals"]
        params = ", ".join(f"{k}={v}" for k, v in sorted(e["params"].items())) or "(the recorded ones)"
        tail = f"  ({e['errors']} failed: {e.get('error', '')})" if e["errors"] else ""
        lines.append(
            f"  {e['rank']:>4}  {_money(e['median_net_pnl'], d):>12}  {_money(e['worst_decile_net_pnl'], d):>12}  "
            f"{e['fills']:>7,}  {e['sessions']:>8}  {params}{tail}"
        )
    if len(s.ranking) > top:
        lines.append(f"  ... {len(s.ranking) - top} more (--top N, --json or --csv for all)")
    return "\n".join(lines)


def write_csv(outcome: SweepOutcome, path: str | os.PathLike[str]) -> None:
    """The ranking, one row per parameter set, one column per swept parameter."""
    names = sorted({k for e in outcome.ranking for k in e["params"]})
    cols = [
        "rank",
        *names,
        "median_net_pnl",
        "worst_decile_net_pnl",
        "fills",
        "median_fills",
        "sessions",
        "errors",
        "quote_currency",
        "params_hash",
    ]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for e in outcome.ranking:
            w.writerow(
                [e["rank"], *(e["params"].get(n, "") for n in names), *(e[c] for c in cols[len(names) + 1 :])]
            )


def _session_files(items: list[str]) -> list[str]:
    from lobterm.recording.schema import SUFFIX

    out: list[str] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = sorted(str(x) for x in p.glob(f"*{SUFFIX}"))
            if not found:
                raise SweepError(f"{item}: no session files (*{SUFFIX}) in this directory")
            out += found
        elif p.is_file():
            out.append(str(p))
        else:
            raise SweepError(f"{item}: no such session file")
    return list(dict.fromkeys(out))


def sweep_command(args: Any, config: Any = None) -> int:
    """`lobterm sweep SESSION... (--grid NAME=V,... | --range NAME=LO..HI | --space FILE) [--sampler
    grid|random|optuna] [--samples N] [--seed S] [--backend local|ray] [--workers N] [--address ADDR]
    [--results FILE] [--json] [--csv FILE] [--top N]`; 2 and a one-line reason for bad input, 130 when
    interrupted (rerun to resume)."""
    try:
        sessions = _session_files(args.sessions)
        space = parse_space(args.grid or (), args.range or ())
        if args.space:
            space = load_space(args.space).merge(space)
        if not space.names():
            raise SweepError(
                "nothing to sweep: give --grid NAME=V1,V2,..., --range NAME=LOW..HIGH or --space FILE"
            )
        if args.samples is not None and args.samples < 1:
            raise SweepError(f"--samples {args.samples}: must be at least 1")
        if args.workers is not None and args.workers < 1:
            raise SweepError(f"--workers {args.workers}: must be at least 1")
        if args.address and args.backend != "ray":
            raise SweepError("--address is for --backend ray")
        sets: list[dict[str, Any]] = []
        trials = 0
        if args.sampler == "grid":
            sets = grid_sets(space)
        elif args.sampler == "random":
            sets = random_sets(space, args.samples or 20, args.seed)
        else:
            trials = args.samples or 20
            import importlib.util

            if importlib.util.find_spec("optuna") is None:
                raise SweepError("--sampler optuna needs optuna: pip install 'lobterm[optuna]'")
        from lobterm.backtest.command import resolve_models
        from lobterm.backtest.models import ModelError

        try:
            latency, queue = resolve_models(args, getattr(config, "backtest", None))
        except ModelError as exc:
            raise SweepError(str(exc)) from None
        backend: Backend = (
            RayBackend(args.address, args.workers) if args.backend == "ray" else LocalBackend(args.workers)
        )
        outcome = run_sweep(
            sessions,
            sets,
            args.results,
            backend=backend,
            latency=latency,
            queue=queue,
            engine="reference" if args.reference else "auto",
            progress=not args.no_progress,
            optuna_trials=trials,
            optuna_space=space,
            seed=args.seed,
        )
    except SweepError as exc:
        print(f"lobterm: {exc}", file=sys.stderr)
        return 2
    if args.csv:
        write_csv(outcome, args.csv)
    print(json.dumps(outcome.as_dict()) if args.json else as_text(outcome, args.top))
    if outcome.interrupted:
        print(
            f"lobterm: sweep interrupted after {outcome.ran} task(s) this run: rerun to resume",
            file=sys.stderr,
        )
        return 130
    return 0

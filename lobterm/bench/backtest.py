"""Backtest throughput: events per second of `lobterm backtest` with the market maker quoting and the
paper desk filling (queue-aware), on a recorded sim session.

The session is recorded here (a headless sim run with the market maker, every bus event stored as the
session format says, no checkpoints: a backtest does not use them). Figures, not pass/fail:

- `decode`: reading and decoding the events alone (SQLite + msgspec into event objects);
- `backtest`: the fast path (lobterm/backtest/fast.py): numba decoding and kernel, end to end
  (reading the file included; compiling or loading the cached kernel is reported apart);
- `reference`: the full run through the real kernel (bus, L2 book, OMS, risk, market maker, paper desk).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from lobterm.recording.schema import DDL, FORMAT, FORMAT_VERSION

if TYPE_CHECKING:
    from lobterm.backtest.result import BacktestResult
    from lobterm.config import MarketMakerConfig

__all__ = ["main", "report", "run", "write_sim_session"]


def write_sim_session(
    path: Path,
    *,
    seed: int = 1,
    duration_s: float = 300.0,
    mm: MarketMakerConfig | None = None,
    rate_hz: float = 20.0,
) -> int:
    """A headless sim run with the market maker quoting, recorded to `path`; returns the event count."""
    from lobterm.assemble import build_sim_kernel
    from lobterm.config import Config, MarketMakerConfig, quote_params
    from lobterm.venues.sim import SimConfig

    config = Config(
        sim=SimConfig(seed=seed, rate_hz=rate_hz), mm=mm if mm is not None else MarketMakerConfig()
    )
    kernel, venue = build_sim_kernel(config, virtual=True)
    rows: list = []
    encode = msgspec.msgpack.encode
    kernel.bus.subscribe_all(lambda ev: rows.append((len(rows) + 1, ev.ts, type(ev).__name__, encode(ev))))
    mmaker = kernel.add_market_maker(quote_params(config))
    venue.open()
    mmaker.resume()
    for _ in range(round(duration_s * rate_hz)):
        venue.step()
        kernel.on_timer()
    inst = venue.instrument
    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "lobterm_version": "bench",
        "created_ns": kernel.clock.now(),
        "clock": "virtual",
        "seed": seed,
        "venues": [{"name": venue.name, "mode": venue.mode, "kind": "sim"}],
        "instruments": [
            {
                "venue": venue.name,
                "symbol": inst.symbol,
                "tick_size": str(inst.tick_size),
                "lot_size": str(inst.lot_size),
                "min_lots": str(inst.min_lots),
                "price_decimals": str(inst.price_decimals),
                "size_decimals": str(inst.size_decimals),
            }
        ],
        "config": {
            "sim": {
                "seed": seed,
                "maker_fee_ppm": config.sim.maker_fee_ppm,
                "taker_fee_ppm": config.sim.taker_fee_ppm,
            },
            "mm": dict(mm or {}),
        },
        "checkpoint_every_s": 0,
    }
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    for ddl in DDL:
        db.execute(ddl)
    db.executemany("INSERT INTO header VALUES (?, ?)", [(k, json.dumps(v)) for k, v in header.items()])
    db.executemany("INSERT INTO events VALUES (?, ?, ?, ?)", rows)
    db.execute("INSERT INTO end VALUES ('closed_ns', ?)", (json.dumps(kernel.clock.now()),))
    db.commit()
    db.close()
    return len(rows)


def _speed(result: BacktestResult) -> float:
    return result.events_per_s


def run(duration_s: float = 2100.0, repeat: int = 3, reference_repeat: int = 1) -> dict:
    """A session of about 515,000 events (2,100 s of sim at 20 Hz with the market maker) backtested on
    the fast path (best of `repeat`) and the reference path (best of `reference_repeat`)."""
    from lobterm.backtest.fast import run_fast_backtest, warm_up
    from lobterm.backtest.reference import run_backtest
    from lobterm.recording.reader import SessionReader

    compile_s = warm_up()  # compile on the first run on this machine, else load the cached kernel
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.lobterm.sqlite"
        events = write_sim_session(path, duration_s=duration_s)
        best_decode = 0.0
        for _ in range(repeat):
            t0 = time.perf_counter()
            with SessionReader(path) as r:
                n = sum(1 for _ in r.events(1, notes=False))
            best_decode = max(best_decode, n / (time.perf_counter() - t0))
        # The best run of each path (max raises on zero runs: a repeat must be at least 1).
        fast = max((run_fast_backtest(str(path)) for _ in range(repeat)), key=_speed)
        best = max((run_backtest(str(path)) for _ in range(reference_repeat)), key=_speed)
    return {
        "session_events": events,
        "session_seconds": duration_s,
        "decode_events_per_s": round(best_decode),
        "backtest_events_per_s": round(fast.events_per_s),
        "backtest_wall_s": round(fast.wall_seconds, 3),
        "fast_decode_s": fast.decode_seconds,
        "kernel_events_per_s": round(fast.kernel_events_per_s),
        "kernel_s": fast.kernel_seconds,
        "compile_s": round(compile_s, 2),
        "reference_events_per_s": round(best.events_per_s),
        "reference_wall_s": round(best.wall_seconds, 3),
        "fills": fast.fills,
        "reference_fills": best.fills,
        "quotes_sent": fast.quotes_sent,
        "amends_sent": fast.amends_sent,
    }


def report(fig: dict) -> str:
    """The figures of `run` as lines of text."""
    return "\n".join(
        [
            f"backtest benchmark: a {fig['session_seconds']:g} s sim session, {fig['session_events']:,} events, "
            f"market maker quoting (ladder), queue-aware paper fills",
            f"  read + msgspec decode only      {fig['decode_events_per_s']:>12,} events/s",
            f"  fast path (numba), end to end   {fig['backtest_events_per_s']:>12,} events/s  "
            f"({fig['backtest_wall_s']} s: decode {fig['fast_decode_s']} s, kernel {fig['kernel_s']} s; "
            f"{fig['fills']:,} fills; best of 3)",
            f"  fast path, the kernel alone     {fig['kernel_events_per_s']:>12,} events/s",
            f"  fast path, compile or load      {fig['compile_s']:>12} s (once per process; not in events/s)",
            f"  reference path (the kernel)     {fig['reference_events_per_s']:>12,} events/s  "
            f"({fig['reference_wall_s']} s; {fig['reference_fills']:,} fills)",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    """`python benchmarks/backtest_bench.py [--json]`."""
    ap = argparse.ArgumentParser(
        description="Backtest throughput: the fast path, its kernel, the reference path."
    )
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    a = ap.parse_args(argv)
    fig = run()
    print(json.dumps(fig) if a.json else report(fig))
    return 0

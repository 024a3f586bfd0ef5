"""A small session writer for the replay and backtest tests, following the session format contract
(lobterm/recording/schema.py): a headless sim run on a virtual clock, every bus event stored in bus
order, a checkpoint (capture_state + Kernel.state_hash) every `checkpoint_every_s` of sim time.

The recorder (lobterm/recording/recorder.py) writes the same format from a live kernel; this helper
keeps these tests independent of its batching and of the event loop.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import msgspec

from lobterm.assemble import build_sim_kernel
from lobterm.config import Config, quote_params
from lobterm.recording.schema import DDL, FORMAT, FORMAT_VERSION
from lobterm.recording.state import capture_state
from lobterm.venues.sim import SimConfig


def record_sim_session(
    path: Path,
    *,
    seed: int = 7,
    duration_s: float = 30.0,
    checkpoint_every_s: float = 5.0,
    mm: dict | None = None,
    market_maker: bool = True,
    rate_hz: float = 20.0,
    sim: dict | None = None,
) -> dict:
    """Record a headless sim run to `path`; returns {"kernel", "fills", "checkpoints", "events"}."""
    # A 1 bp maker fee (btc-spot's market maker tier is 0): every money figure carries a fee to check.
    config = Config(
        sim=SimConfig(seed=seed, rate_hz=rate_hz, maker_fee_ppm=100, **(sim or {})), mm=dict(mm or {})
    )
    kernel, venue = build_sim_kernel(config, virtual=True)
    rows: list[tuple[int, int, str, bytes]] = []
    encode = msgspec.msgpack.encode

    def record(ev) -> None:
        rows.append((len(rows) + 1, ev.ts, type(ev).__name__, encode(ev)))

    kernel.bus.subscribe_all(record)
    mmaker = kernel.add_market_maker(quote_params(config)) if market_maker else None
    checkpoints = []
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    for ddl in DDL:
        db.execute(ddl)
    inst = venue.instrument
    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "lobterm_version": "test",
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
        "checkpoint_every_s": checkpoint_every_s,
    }
    db.executemany("INSERT INTO header VALUES (?, ?)", [(k, json.dumps(v)) for k, v in header.items()])
    venue.open()
    if mmaker is not None:
        mmaker.resume()
    steps = round(duration_s * rate_hz)
    every = max(1, round(checkpoint_every_s * rate_hz))
    for i in range(1, steps + 1):
        venue.step()
        kernel.on_timer()
        if i % every == 0 and rows:
            state = capture_state(kernel)
            h = kernel.state_hash()
            seq = len(rows)
            checkpoints.append((seq, kernel.clock.now(), h))
            db.execute(
                "INSERT INTO checkpoints VALUES (?, ?, ?, ?)", (seq, kernel.clock.now(), encode(state), h)
            )
    db.executemany("INSERT INTO events VALUES (?, ?, ?, ?)", rows)
    db.executemany(
        "INSERT INTO end VALUES (?, ?)",
        [
            ("closed_ns", json.dumps(kernel.clock.now())),
            ("events", json.dumps(len(rows))),
            ("last_seq", json.dumps(len(rows))),
        ],
    )
    db.commit()
    db.close()
    fills = [r for r in rows if r[2] == "Fill"]
    return {"kernel": kernel, "fills": fills, "checkpoints": checkpoints, "events": len(rows), "mm": mmaker}

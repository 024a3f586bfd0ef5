"""Real session files for the damage, rotation and retention tests: a headless sim run with the market
maker, recorded by the real recorder on the virtual clock, and damage done with real SQLite edits."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import msgspec

from lobterm.assemble import build_sim_kernel
from lobterm.config import Config, quote_params
from lobterm.recording.recorder import Recorder
from lobterm.services import start_recording

#: A byte msgpack never uses: a body starting with it decodes to nothing.
GARBAGE = b"\xc1\xc1\xc1\xc1"


def record(
    directory: Path,
    seconds: float = 30.0,
    *,
    checkpoint_every_s: float = 5.0,
    config: Config | None = None,
    **options,
) -> tuple[Recorder, str]:
    """A headless sim run with the market maker quoting, recorded to `directory` (options: [recording]
    settings, e.g. rotate_every=7); returns the recorder (closed) and the kernel's final state hash."""
    cfg = config or Config()
    for key, value in options.items():
        setattr(cfg.recording, key, value)
    kernel, venue = build_sim_kernel(cfg, virtual=True)
    rec = start_recording(
        kernel, directory, config=cfg, seed=cfg.sim.seed, checkpoint_every_s=checkpoint_every_s
    )
    maker = kernel.add_market_maker(quote_params(cfg))
    venue.open()
    maker.resume()
    for _ in range(round(seconds * cfg.sim.rate_hz)):
        venue.step()
        kernel.on_timer()
    rec.close()
    return rec, kernel.state_hash()


def copy_of(path: Path, directory: Path, name: str) -> Path:
    out = directory / name
    shutil.copyfile(path, out)
    return out


def edit(path: Path, sql: str, args: tuple = ()) -> None:
    db = sqlite3.connect(path)
    db.execute(sql, args)
    db.commit()
    db.close()


def checkpoint_seqs(path: Path) -> list[int]:
    db = sqlite3.connect(path)
    try:
        return [r[0] for r in db.execute("SELECT seq FROM checkpoints ORDER BY seq")]
    finally:
        db.close()


def garbage_event(path: Path, seq: int) -> None:
    """Replace event `seq`'s body with bytes that are not msgpack."""
    edit(path, "UPDATE events SET body = ? WHERE seq = ?", (GARBAGE, seq))


def garbage_checkpoint(path: Path, seq: int, blob: bytes = GARBAGE * 16) -> None:
    edit(path, "UPDATE checkpoints SET state = ? WHERE seq = ?", (blob, seq))


def wrong_layout_checkpoint(path: Path, seq: int) -> None:
    """A state blob that is valid msgpack but not a state (a map missing its books)."""
    garbage_checkpoint(path, seq, msgspec.msgpack.encode({"ts": 1, "markets": "none"}))

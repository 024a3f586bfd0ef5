"""The session recorder: every bus event into one append-only SQLite file, off the hot path.

`on_event` is the buffer's `list.append`: O(1), no I/O, no encoding (subscribe it with
`bus.subscribe_all(recorder.on_event)`). Batches are written in one transaction each (`executemany`,
WAL), at most every `flush_interval_s` or every `flush_events` events, whichever comes first:

- async mode (`await start()`, live clock): a task on the loop hands each batch to aiosqlite's writer
  thread as lazy iterators (`executemany` over blocks of ROWS_PER_INSERT rows per statement), so the
  loop only swaps the buffer; the msgpack encoding (one shared Encoder) and the parameter binding
  happen in the writer thread, which drops the GIL inside SQLite once per block. A handful of awaits
  per flush, never one per event.
- sync mode (`pump()` after each step, virtual clock): the same batches through `sqlite3` directly, so
  a headless run stays deterministic and needs no loop. `Kernel.on_timer` pumps it.

Checkpoints (state + `Kernel.state_hash()`, see recording/state.py) are taken every
`checkpoint_every_s` of kernel clock, always at a flush, where the bus is idle: every buffered event
has reached every subscriber, so the state is exactly "all events up to seq" and a replay of the
stream can reproduce its hash. A clean close writes a last checkpoint and the `end` table; a killed
process leaves every committed batch readable (WAL) and loses at most the batch in flight.

Every file starts with a checkpoint: it is created under a temporary name with its header and the
*start checkpoint* (the state before its first event) in one transaction, then linked into place, so
a session file exists only once it can be verified and replayed on its own, whenever it is killed.

Rotation (`rotate_mb`, `rotate_every_s`; either 0/None: off): at the first flush after the current
file reached the size (file + WAL) or the age (kernel clock), the batch is committed to it with a
checkpoint at its last event and an `end` table naming the next file; the next part (same
`session_id`, `part` + 1, `first_seq` = the next event's seq) starts with that same checkpoint. The
next file is prepared (in a worker thread in async mode) before the old one is closed: a part that
cannot be created leaves the recording in the current file and is tried again a minute later.

Retention (`max_total_mb`): each time a file starts (a session or a part), the oldest session files
of its directory are removed until they total at most that, never one in use (recording/retention.py).

A write that fails (disk full) keeps its batch and retries at the next flush: nothing is dropped;
`errors` and `last_error` say so, `backlog` grows.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import fields, is_dataclass
from decimal import Decimal
from fractions import Fraction
from itertools import chain
from operator import attrgetter
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import msgspec

from lobterm import __version__
from lobterm.recording import retention
from lobterm.recording.schema import (
    DDL,
    FORMAT,
    FORMAT_VERSION,
    Note,
    part_filename,
    redact,
    session_filename,
    session_id_of,
)

if TYPE_CHECKING:
    from lobterm.kernel import Kernel

__all__ = ["Recorder", "RecorderError", "build_header", "config_as_dict"]

log = logging.getLogger(__name__)

INSERT_EVENTS = "INSERT INTO events(seq, ts, kind, body) VALUES (?, ?, ?, ?)"
# Rows per INSERT statement. One statement per row hands the GIL back and forth with the event loop
# for every row (sqlite3 drops it around each step); 200 rows a statement (800 parameters, under
# SQLite's old 999 limit) cut that by 200x: measured here with a 1 ms loop ticker running, 250-390k
# rows/s instead of 120-250k.
ROWS_PER_INSERT = 200
INSERT_BLOCK = "INSERT INTO events(seq, ts, kind, body) VALUES " + ",".join(
    ["(?, ?, ?, ?)"] * ROWS_PER_INSERT
)
# OR REPLACE: a rotation may checkpoint the seq of the last periodic checkpoint again (same state).
INSERT_CHECKPOINT = "INSERT OR REPLACE INTO checkpoints(seq, ts, state, hash) VALUES (?, ?, ?, ?)"
ROTATION_RETRY_S = 60.0  # after a next part could not be created
_MB = 1024 * 1024
INSERT_END = "INSERT OR REPLACE INTO end(key, value) VALUES (?, ?)"

_ts = attrgetter("ts")
_name = attrgetter("__name__")


class RecorderError(Exception):
    """The session file cannot be created (bad directory, permissions): says where and why."""


def config_as_dict(value: Any) -> Any:
    """A config object (dataclasses, Decimals, Paths, tuples) as JSON-able data."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: config_as_dict(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, dict):
        return {str(k): config_as_dict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [config_as_dict(v) for v in value]
    if isinstance(value, (Decimal, Fraction, Path)):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def build_header(
    kernel: Kernel,
    *,
    config: Any = None,
    seed: Any = None,
    checkpoint_every_s: float = 10.0,
    extra: dict | None = None,
) -> dict[str, Any]:
    """The session header for `kernel` (format v1): venues, instruments, clock, seed, config without secrets."""
    venues = [
        {
            "name": v.name,
            "mode": getattr(v, "mode", ""),
            "kind": type(v).__name__,
            "own_in_book": bool(getattr(v, "own_in_book", True)),
        }
        for v in kernel.venues.values()
    ]
    instruments = []
    for (venue, symbol), m in kernel.markets.items():
        i = m.instrument
        instruments.append(
            {
                "venue": venue,
                "symbol": symbol,
                "tick_size": str(i.tick_size),
                "lot_size": str(i.lot_size),
                "min_lots": str(i.min_lots),
                "price_decimals": str(i.price_decimals),
                "size_decimals": str(i.size_decimals),
                "base": i.base,
                "quote": i.quote,
            }
        )
    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "lobterm_version": __version__,
        "created_ns": time.time_ns(),
        "clock": "virtual" if kernel.clock.virtual else "live",
        "start_ns": kernel.clock.now(),
        "seed": seed,
        "venues": venues,
        "instruments": instruments,
        "config": redact(config_as_dict(config)) if config is not None else {},
        "checkpoint_every_s": checkpoint_every_s,
    }
    if extra:
        header.update(redact(config_as_dict(extra)))
    return header


class Recorder:
    """Records a bus's events to `path`. See the module docstring for the two modes."""

    def __init__(
        self,
        path: str | os.PathLike,
        header: dict[str, Any],
        *,
        clock: Callable[[], int] | None = None,
        checkpoint: Callable[[], tuple[dict, str]] | None = None,
        checkpoint_every_s: float = 10.0,
        flush_interval_s: float = 0.1,
        flush_events: int = 50_000,
        rotate_mb: float | None = None,
        rotate_every_s: float | None = None,
        max_total_mb: float | None = None,
    ) -> None:
        if not flush_interval_s > 0 or flush_events < 1 or not checkpoint_every_s > 0:
            raise ValueError("flush_interval_s and checkpoint_every_s must be > 0, flush_events >= 1")
        for name, value in (
            ("rotate_mb", rotate_mb),
            ("rotate_every_s", rotate_every_s),
            ("max_total_mb", max_total_mb),
        ):
            if value is not None and not 0 <= value < float("inf"):
                raise ValueError(f"{name} {value!r} must be a finite number >= 0 (0: off)")
        self.path = Path(path)
        self.header = dict(header)
        self.header.setdefault("checkpoint_every_s", checkpoint_every_s)
        self.header.setdefault("session_id", session_id_of(self.path.name))
        self.header.setdefault("part", 1)
        self.header.setdefault("first_seq", 1)
        self.session_id: str = self.header["session_id"]
        self.part: int = self.header["part"]
        self.rotate_bytes = int(rotate_mb * _MB) if rotate_mb else None
        self.rotate_every_ns = int(rotate_every_s * 1e9) if rotate_every_s else None
        self.max_total_bytes = int(max_total_mb * _MB) if max_total_mb else None
        self._part_started_ns = 0
        self._part_first_seq = 1
        self._rotation_retry_ns = 0
        self._lock: IO[bytes] | None = None  # a shared flock on the open file: retention never removes it
        self._clock = clock or time.time_ns
        self._checkpoint = checkpoint
        self.checkpoint_every_ns = int(checkpoint_every_s * 1e9)
        self.flush_interval_s = flush_interval_s
        self.flush_events = flush_events
        self._buf: list = []
        #: Subscribe this to the bus: it is the buffer's own append (the hot path is one C call).
        self.on_event: Callable[[Any], None] = self._buf.append
        self._encoder = msgspec.msgpack.Encoder()
        self._next_seq = 1
        # A batch taken but not committed: (first seq, events, checkpoint row, rotate after it).
        self._pending: tuple[int, list, tuple | None, bool] | None = None
        self._next_checkpoint_ns: int | None = None
        self._last_checkpoint_seq = 0
        self._db: sqlite3.Connection | None = None
        self._adb: Any = None  # aiosqlite.Connection in async mode
        self._task: asyncio.Task | None = None
        self._last_flush = time.monotonic()
        self.sync = True
        self._closing = False
        self.closed = False
        self.opened = False
        # Counters (metrics, the status bar).
        self.events_written = 0
        self.checkpoints_written = 0
        self.flushes = 0
        self.errors = 0
        self.last_error: str | None = None
        self.max_backlog = 0
        self.last_flush_s = 0.0  # how long the last flush took (write + commit)
        self.max_flush_s = 0.0
        self.rotations = 0
        self.pruned: list[retention.Removed] = []  # what retention removed, oldest first

    # ---- counters ----------------------------------------------------------------------------
    @property
    def backlog(self) -> int:
        """Events received and not yet committed (buffered plus the batch being written)."""
        pending = len(self._pending[1]) if self._pending is not None else 0
        return len(self._buf) + pending

    @property
    def last_seq(self) -> int:
        return self.events_written

    def note(self, source: str, action: str, detail: Any = "") -> None:
        """Record a non-engine fact (a key action that changed state, a parameter change, a risk decision)
        in bus order with the events around it."""
        self._buf.append(Note(self._clock(), source, action, config_as_dict(detail)))

    # ---- opening -----------------------------------------------------------------------------
    def _start_checkpoint_row(self, last_seq: int, now: int) -> tuple | None:
        if self._checkpoint is None:
            return None
        state, digest = self._checkpoint()
        return (last_seq, now, self._encoder.encode(state), digest)

    @staticmethod
    def _create(path: Path, header: dict[str, Any], start_cp: tuple | None) -> None:
        """Create the session file `path` with its tables, header and start checkpoint, atomically: it is
        written under a temporary name and linked into place (never over an existing file)."""
        tmp = path.with_name(path.name + ".new")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()  # left by a process killed while creating it
        db = sqlite3.connect(tmp)
        try:
            # 64 KiB pages: an append-only table of small blobs inserts about 1.5-2x faster than with 4 KiB
            # pages (measured here); set before the first table, it is the file's page size for good.
            db.execute("PRAGMA page_size=65536")
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            for stmt in DDL:
                db.execute(stmt)
            db.executemany(
                "INSERT INTO header(key, value) VALUES (?, ?)",
                [(k, json.dumps(v)) for k, v in header.items()],
            )
            if start_cp is not None:
                db.execute(INSERT_CHECKPOINT, start_cp)
            db.commit()
        finally:
            db.close()  # the last connection: the WAL is folded into the file and removed
        try:
            os.link(tmp, path)  # fails if `path` exists: a session file is never overwritten
        finally:
            tmp.unlink()

    def open(self) -> None:
        """Create the file (header and start checkpoint, one transaction). Synchronous and quick."""
        if self.opened:
            return
        now = self._clock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self.path.exists():
                raise RecorderError(f"{self.path}: already exists (a session file is never overwritten)")
            self._create(self.path, self.header, self._start_checkpoint_row(self._next_seq - 1, now))
            db = sqlite3.connect(self.path, check_same_thread=False)
            db.execute("PRAGMA synchronous=NORMAL")
        except FileExistsError:
            raise RecorderError(
                f"{self.path}: already exists (a session file is never overwritten)"
            ) from None
        except (OSError, sqlite3.Error) as exc:
            raise RecorderError(f"cannot record to {self.path}: {exc}") from None
        self._db = db
        self.opened = True
        self._lock = retention.hold(self.path)
        self._part_started_ns = now
        self._part_first_seq = self._next_seq
        self._next_checkpoint_ns = now + self.checkpoint_every_ns
        self._prune_soon()

    # ---- retention ---------------------------------------------------------------------------
    def _prune(self) -> None:
        if self.max_total_bytes is None:
            return
        try:
            removed = retention.prune_sessions(self.path.parent, self.max_total_bytes, keep=(self.path,))
        except OSError as exc:
            log.warning("recorder: retention in %s failed: %s", self.path.parent, exc)
            return
        for r in removed:
            log.info("recorder: retention removed %s (%d bytes)", r.path, r.size_bytes)
        self.pruned.extend(removed)

    def _prune_soon(self) -> None:
        """Prune now without a loop; on a running loop in a worker thread (removing a large file can
        take tens of milliseconds)."""
        if self.max_total_bytes is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._prune()
            return
        loop.run_in_executor(None, self._prune)

    # ---- rotation ----------------------------------------------------------------------------
    def _file_bytes(self) -> int:
        total = 0
        for suffix in ("", "-wal"):
            try:
                total += os.stat(f"{self.path}{suffix}").st_size
            except OSError:
                pass
        return total

    def _rotation_due(self, now: int, n: int) -> bool:
        if self.rotate_bytes is None and self.rotate_every_ns is None:
            return False
        if self._next_seq + n - 1 < self._part_first_seq or now < self._rotation_retry_ns or self._closing:
            return False  # nothing in this part yet (a part is never empty), or backing off
        if self.rotate_every_ns is not None and now - self._part_started_ns >= self.rotate_every_ns:
            return True
        return self.rotate_bytes is not None and self._file_bytes() >= self.rotate_bytes

    def _prepare_next(self, cp: tuple | None, first_seq: int) -> tuple[Path, dict[str, Any]]:
        """Create the next part's file (header + start checkpoint `cp`); the current one stays open."""
        part = self.part + 1
        nxt = self.path.parent / part_filename(self.session_id, part)
        header = {
            **self.header,
            "part": part,
            "first_seq": first_seq,
            "created_ns": time.time_ns(),
            "start_ns": cp[1] if cp is not None else self._clock(),
        }
        self._create(nxt, header, cp)
        return nxt, header

    def _switched(self, nxt: Path, header: dict[str, Any], started_ns: int) -> None:
        """Bookkeeping once the next part is the file being written."""
        retention.release(self._lock)
        self.path = nxt
        self.header = header
        self.part = header["part"]
        self._part_first_seq = header["first_seq"]
        self._part_started_ns = started_ns
        self._lock = retention.hold(nxt)
        self.rotations += 1
        log.info("recorder: rotated to %s (part %d, from event %d)", nxt, self.part, self._part_first_seq)

    def _rotation_failed(self, exc: Exception) -> None:
        self._failed(exc)
        self._rotation_retry_ns = self._clock() + int(ROTATION_RETRY_S * 1e9)
        if self._pending is not None:
            seq0, batch, cp, _ = self._pending
            self._pending = (seq0, batch, cp, False)

    async def start(self) -> None:
        """Switch to async mode: aiosqlite's writer thread, and a flush task on the running loop."""
        import aiosqlite

        self.open()
        if self._task is not None:
            return
        if self._db is not None:
            self._db.close()
            self._db = None
        self._adb = await aiosqlite.connect(self.path)
        await self._adb.execute("PRAGMA synchronous=NORMAL")
        self.sync = False
        self._task = asyncio.get_running_loop().create_task(self._run(), name="recorder")

    # ---- batches -----------------------------------------------------------------------------
    def _take(self, final: bool = False) -> tuple[int, list, tuple | None, bool] | None:
        """Swap the buffer out (with a checkpoint row when one is due, and whether to rotate after this
        batch). Called where the bus is idle."""
        buf = self._buf
        n = len(buf)
        now = self._clock()
        cp_due = False
        next_cp = self._next_checkpoint_ns
        if self._checkpoint is not None and next_cp is not None and now >= next_cp:
            cp_due = True
        rotate = not final and self._rotation_due(now, n)
        if n == 0 and not (final or cp_due or rotate):
            return None
        batch = buf.copy()
        buf.clear()
        seq0 = self._next_seq
        self._next_seq = last = seq0 + n
        last -= 1
        cp = None
        if self._checkpoint is not None and (
            rotate or (last > self._last_checkpoint_seq and (cp_due or final))
        ):
            state, digest = self._checkpoint()
            cp = (last, now, self._encoder.encode(state), digest)
            self._last_checkpoint_seq = last
            if next_cp is not None:
                while next_cp <= now:
                    next_cp += self.checkpoint_every_ns
                self._next_checkpoint_ns = next_cp
        if n > self.max_backlog:
            self.max_backlog = n
        return (seq0, batch, cp, rotate)

    def _rows(self, seq0: int, batch: list):
        """Lazy single rows: C-level iterators, consumed (and the bodies encoded) by whoever writes them."""
        n = len(batch)
        return zip(
            range(seq0, seq0 + n),
            map(_ts, batch),
            map(_name, map(type, batch)),
            map(self._encoder.encode, batch),
            strict=False,
        )

    def _row_blocks(self, seq0: int, batch: list):
        """Lazy parameter lists of ROWS_PER_INSERT rows each, for INSERT_BLOCK; built (and encoded) by
        whoever consumes them, i.e. the writer thread. The last `len(batch) % ROWS_PER_INSERT` events are
        left for `_rows`."""
        encode = self._encoder.encode
        k = ROWS_PER_INSERT
        for j in range(0, len(batch) - k + 1, k):
            part = batch[j : j + k]
            yield list(
                chain.from_iterable(
                    zip(
                        range(seq0 + j, seq0 + j + k),
                        map(_ts, part),
                        map(_name, map(type, part)),
                        map(encode, part),
                        strict=False,
                    )
                )
            )

    def _write_plan(self, seq0: int, batch: list) -> list[tuple[str, Any]]:
        """(sql, params iterator) pairs for `executemany`: blocks of many rows per INSERT, then the rest."""
        full = len(batch) - len(batch) % ROWS_PER_INSERT
        plan: list[tuple[str, Any]] = []
        if full:
            plan.append((INSERT_BLOCK, self._row_blocks(seq0, batch[:full])))
        if full < len(batch):
            plan.append((INSERT_EVENTS, self._rows(seq0 + full, batch[full:])))
        return plan

    def _due(self) -> bool:
        if len(self._buf) >= self.flush_events:
            return True
        if time.monotonic() - self._last_flush >= self.flush_interval_s:
            return True
        nxt = self._next_checkpoint_ns
        if nxt is None:
            return False
        now = self._clock()
        # A rotation by age is due on the kernel clock too (a virtual run covers hours in seconds).
        return now >= nxt or (
            self.rotate_every_ns is not None and now - self._part_started_ns >= self.rotate_every_ns
        )

    def _done(self, n: int, cp: tuple | None, started: float) -> None:
        self._pending = None
        self.events_written += n
        self.flushes += 1
        if cp is not None:
            self.checkpoints_written += 1
        now = time.monotonic()
        self.last_flush_s = now - started
        self.max_flush_s = max(self.max_flush_s, self.last_flush_s)
        self._last_flush = now

    def _failed(self, exc: Exception) -> None:
        self.errors += 1
        self.last_error = f"{type(exc).__name__}: {exc}"
        log.error("recorder: write to %s failed (will retry): %s", self.path, self.last_error)

    # ---- sync mode ---------------------------------------------------------------------------
    def pump(self) -> None:
        """Flush if a batch is due (sync mode; call between events, e.g. after each sim step)."""
        if self._db is not None and self._due():
            self.flush()

    def flush(self, final: bool = False, end: bool = False) -> None:
        """Write everything buffered in one transaction (sync mode)."""
        db = self._db
        if db is None:
            raise RuntimeError("recorder not open in sync mode")
        started = time.monotonic()
        work = self._batch_to_write(final, end, started)
        if work is None:
            return
        seq0, batch, cp, rotate = work
        nxt: Path | None = None
        if rotate:
            try:
                nxt, header = self._prepare_next(cp, seq0 + len(batch))
            except (OSError, sqlite3.Error) as exc:
                self._rotation_failed(exc)
                rotate = False
        try:
            with db:  # one transaction
                for sql, params in self._write_plan(seq0, batch):
                    db.executemany(sql, params)
                if cp is not None:
                    db.execute(INSERT_CHECKPOINT, cp)
                if end or rotate:
                    db.executemany(INSERT_END, self._end_rows(nxt.name if nxt is not None else None))
        except Exception as exc:
            self._failed(exc)
            if nxt is not None:
                nxt.unlink(missing_ok=True)  # prepared again, with the merged batch's checkpoint
            if not isinstance(exc, sqlite3.Error):
                self._sanitize(batch)
            return
        self._done(len(batch), cp, started)
        if nxt is not None:
            db.close()
            self._db = sqlite3.connect(nxt, check_same_thread=False)
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._switched(nxt, header, cp[1] if cp is not None else self._clock())
            self._prune_soon()

    def _batch_to_write(self, final: bool, end: bool, started: float) -> tuple | None:
        """(first seq, events, checkpoint row or None) for the next transaction, or None when there is
        nothing to write. A batch that failed before is retried together with what came since."""
        if self._pending is None:
            self._pending = self._take(final)
        elif self._buf or final:
            more = self._take(final)
            if more is not None:
                seq0, batch, cp, rotate = self._pending
                self._pending = (seq0, batch + more[1], more[2] or cp, rotate or more[3])
        if self._pending is not None:
            return self._pending
        if end:
            return self._next_seq, [], None, False
        self._last_flush = started
        return None

    def _sanitize(self, batch: list) -> None:
        """Replace what cannot be stored (an object without `ts`, or that msgpack cannot encode) by a Note
        saying what it was, in place, so that one bad publisher cannot block the recording."""
        enc = self._encoder.encode
        for i, ev in enumerate(batch):
            try:
                if type(ev.ts) is not int:
                    raise TypeError("ts is not an int")
                enc(ev)
            except Exception as exc:
                batch[i] = Note(
                    self._clock(),
                    "recorder",
                    "unrecordable_event",
                    f"{type(ev).__name__}: {exc}: {repr(ev)[:200]}",
                )

    def _end_rows(self, rotated_to: str | None = None) -> list[tuple[str, str]]:
        last = self._next_seq - 1  # every event taken so far: the batch being written is the last one
        rows = [
            ("closed_ns", json.dumps(time.time_ns())),
            ("events", json.dumps(last - self._part_first_seq + 1)),
            ("last_seq", json.dumps(last)),
        ]
        if rotated_to is not None:
            rows.append(("rotated_to", json.dumps(rotated_to)))
        return rows

    def close(self) -> None:
        """Clean close (sync mode): last batch, last checkpoint and the `end` table, one transaction."""
        if self.closed or not self.opened:
            return
        if not self.sync:
            raise RuntimeError("an async recorder closes with `await aclose()`")
        try:
            for _ in range(2):  # a second time after a bad event was replaced by a Note
                self.flush(final=True, end=True)
                if self._pending is None:
                    break
        finally:
            self.closed = True
            retention.release(self._lock)
            self._lock = None
            if self._db is not None:
                self._db.close()
                self._db = None

    # ---- async mode --------------------------------------------------------------------------
    async def _run(self) -> None:
        tick = min(0.01, self.flush_interval_s)
        while not self._closing:
            await asyncio.sleep(tick)
            if not self._closing and (self._due() or self._pending is not None):
                await self._aflush()

    async def _aflush(self, final: bool = False, end: bool = False) -> None:
        started = time.monotonic()
        work = self._batch_to_write(final, end, started)
        if work is None:
            return
        seq0, batch, cp, rotate = work
        nxt: Path | None = None
        if rotate:
            try:
                nxt, header = await asyncio.to_thread(self._prepare_next, cp, seq0 + len(batch))
            except (OSError, sqlite3.Error) as exc:
                self._rotation_failed(exc)
                rotate = False
        db = self._adb
        try:
            for sql, params in self._write_plan(seq0, batch):
                await db.executemany(sql, params)
            if cp is not None:
                await db.execute(INSERT_CHECKPOINT, cp)
            if end or rotate:
                await db.executemany(INSERT_END, self._end_rows(nxt.name if nxt is not None else None))
            await db.commit()
        except Exception as exc:
            try:
                await db.rollback()
            except Exception:
                pass
            self._failed(exc)
            if nxt is not None:
                nxt.unlink(missing_ok=True)  # prepared again, with the merged batch's checkpoint
            if not isinstance(exc, sqlite3.Error):
                self._sanitize(batch)
            return
        self._done(len(batch), cp, started)
        if nxt is not None:
            import aiosqlite

            await db.close()
            self._adb = await aiosqlite.connect(nxt)
            await self._adb.execute("PRAGMA synchronous=NORMAL")
            self._switched(nxt, header, cp[1] if cp is not None else self._clock())
            if self.max_total_bytes is not None:
                await asyncio.to_thread(self._prune)

    async def aclose(self) -> None:
        """Clean close in either mode: stop the flush task, write the rest and the `end` table."""
        if self.closed or not self.opened:
            return
        if self.sync:
            self.close()
            return
        # Not cancelled: a flush in flight must finish (its statements are already in the writer thread).
        self._closing = True
        task, self._task = self._task, None
        if task is not None:
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception as exc:  # the task died: say so, and still write what is buffered
                self._failed(exc)
        try:
            for _ in range(2):
                await self._aflush(final=True, end=True)
                if self._pending is None:
                    break
        finally:
            self.closed = True
            retention.release(self._lock)
            self._lock = None
            await self._adb.close()
            self._adb = None

    # ---- building one for a kernel -----------------------------------------------------------
    @classmethod
    def for_kernel(
        cls,
        kernel: Kernel,
        target: str | os.PathLike,
        *,
        config: Any = None,
        seed: Any = None,
        header: dict | None = None,
        checkpoint_every_s: float = 10.0,
        flush_interval_s: float = 0.1,
        flush_events: int = 50_000,
        rotate_mb: float | None = None,
        rotate_every_s: float | None = None,
        max_total_mb: float | None = None,
    ) -> Recorder:
        """A recorder of `kernel`'s bus. `target` is a file, or a directory to name one in (see schema).
        Rotation and retention not given here come from `config.recording` (rotate_mb, rotate_every,
        max_total_mb) when `config` is a lobterm Config; otherwise they are off."""
        rc = getattr(config, "recording", None)
        if rotate_mb is None:
            rotate_mb = getattr(rc, "rotate_mb", None)
        if rotate_every_s is None:
            rotate_every_s = getattr(rc, "rotate_every", None)
        if max_total_mb is None:
            max_total_mb = getattr(rc, "max_total_mb", None)
        from lobterm.recording.state import capture_state

        target = Path(target)
        if target.suffix != ".sqlite" and not target.name.endswith(".sqlite"):
            m = kernel.default_market
            target = target / session_filename(m.venue, m.symbol, seed)
            if target.exists():  # two sessions in the same second: never overwrite
                stem = target.name[: -len(".lobterm.sqlite")]
                n = 2
                while (target.parent / f"{stem}-{n}.lobterm.sqlite").exists():
                    n += 1
                target = target.parent / f"{stem}-{n}.lobterm.sqlite"
        h = build_header(
            kernel, config=config, seed=seed, checkpoint_every_s=checkpoint_every_s, extra=header
        )

        def checkpoint() -> tuple[dict, str]:
            return capture_state(kernel), kernel.state_hash()

        return cls(
            target,
            h,
            clock=kernel.clock.now,
            checkpoint=checkpoint,
            checkpoint_every_s=checkpoint_every_s,
            flush_interval_s=flush_interval_s,
            flush_events=flush_events,
            rotate_mb=rotate_mb,
            rotate_every_s=rotate_every_s,
            max_total_mb=max_total_mb,
        )

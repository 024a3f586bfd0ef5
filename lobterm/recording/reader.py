"""Read a session file: open and validate it, iterate its events by seq range, find its checkpoints.

Used by `lobterm sessions`, `verify`, `export`, the player and backtests. Every problem with the file
(not SQLite, not a lobterm session, a newer format, corrupt pages, a body that does not decode) is a
`SessionError` with a one-line message for the user; nothing else escapes. A file that was not
closed cleanly (no `end` rows: the recorder was killed) is readable up to its last committed batch.

    with SessionReader(path) as s:
        s.instruments, s.venues, s.seed, s.closed, s.last_seq
        for seq, ts, event in s.events(start_seq=1):   # engine events and Notes, in bus order
            ...
        cp = s.checkpoint_before_ts(ts)                 # nearest checkpoint at or before ts (seek)
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec

from lobterm.engine.events import Event
from lobterm.engine.instrument import Instrument
from lobterm.recording.schema import FORMAT, FORMAT_VERSION, NOTE_KIND, Note

__all__ = [
    "SessionError",
    "SessionReader",
    "Checkpoint",
    "SessionInfo",
    "session_info",
    "list_sessions",
    "decode_state",
]

_BATCH = 20_000  # rows fetched per query while iterating: bounded memory on a long session


class SessionError(Exception):
    """A session file that cannot be used, with a one-line reason naming the file."""

    def __init__(self, path: str | os.PathLike, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


@dataclass(slots=True, frozen=True)
class Checkpoint:
    """`seq` is the last event included; `hash` Kernel.state_hash() there. `state` is loaded on demand
    (`SessionReader.checkpoint_state`) because a full book is large."""

    seq: int
    ts: int
    hash: str


@dataclass(slots=True, frozen=True)
class SessionInfo:
    """One line of `lobterm sessions`."""

    path: str
    created_ns: int
    first_ts: int | None
    last_ts: int | None
    venues: list[str]
    symbols: list[str]
    events: int
    checkpoints: int
    size_bytes: int
    closed: bool
    clock: str
    seed: Any

    @property
    def duration_s(self) -> float:
        if self.first_ts is None or self.last_ts is None:
            return 0.0
        return (self.last_ts - self.first_ts) / 1e9

    def as_dict(self) -> dict:
        return {
            "path": self.path,
            "created_ns": self.created_ns,
            "first_ts": self.first_ts,
            "last_ts": self.last_ts,
            "duration_s": round(self.duration_s, 3),
            "venues": self.venues,
            "symbols": self.symbols,
            "events": self.events,
            "checkpoints": self.checkpoints,
            "size_bytes": self.size_bytes,
            "closed": self.closed,
            "clock": self.clock,
            "seed": self.seed,
        }


_event_decoder = msgspec.msgpack.Decoder(Event)
_note_decoder = msgspec.msgpack.Decoder(Note)
_any_decoder = msgspec.msgpack.Decoder()


def decode_state(blob: bytes) -> dict:
    """A checkpoint's state (see recording/state.py for the layout)."""
    return _any_decoder.decode(blob)


def _db_problem(exc: sqlite3.Error) -> str:
    text = str(exc)
    if "not a database" in text:
        return "not a lobterm session (not an SQLite database)"
    if "malformed" in text or "corrupt" in text:
        return "corrupt or truncated SQLite file (database disk image is malformed)"
    return f"cannot be read: {text}"


class SessionReader:
    """An open session file (read-only in effect: the reader never writes)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise SessionError(path, "no such file")
        if self.path.is_dir():
            raise SessionError(path, "is a directory, not a session file")
        if self.path.stat().st_size == 0:
            raise SessionError(path, "empty file (not a lobterm session)")
        self._db: sqlite3.Connection | None = None
        try:
            # mode=rw: never create a file; a killed recorder's WAL is recovered on open. Fall back to
            # read-only for a file we may not write.
            try:
                self._db = sqlite3.connect(f"file:{self.path}?mode=rw", uri=True, check_same_thread=False)
                self._db.execute("PRAGMA query_only = ON")
                self._db.execute("SELECT count(*) FROM sqlite_master").fetchone()
            except sqlite3.OperationalError as exc:
                if "not a database" in str(exc) or "malformed" in str(exc):
                    raise
                self.close()
                self._db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
            self.header = self._read_header()
            self.end = self._read_end()
        except sqlite3.Error as exc:
            self.close()
            raise SessionError(path, _db_problem(exc)) from None
        except SessionError:
            self.close()
            raise

    # ---- header ------------------------------------------------------------------------------
    def _read_header(self) -> dict[str, Any]:
        db = self._db
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "header" not in tables or "events" not in tables:
            raise SessionError(self.path, "not a lobterm session (an SQLite file without a session header)")
        header: dict[str, Any] = {}
        for key, value in db.execute("SELECT key, value FROM header"):
            try:
                header[key] = json.loads(value)
            except (TypeError, ValueError):
                raise SessionError(self.path, f"corrupt header: {key!r} is not JSON") from None
        if header.get("format") != FORMAT:
            raise SessionError(
                self.path,
                f"not a lobterm session (header format is {header.get('format')!r}, expected {FORMAT!r})",
            )
        version = header.get("format_version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise SessionError(self.path, f"corrupt header: format_version {version!r}")
        if version > FORMAT_VERSION:
            raise SessionError(
                self.path,
                f"written by a newer lobterm (format version {version}; this lobterm "
                f"reads up to {FORMAT_VERSION}): upgrade lobterm to read it",
            )
        for key in ("venues", "instruments"):
            if not isinstance(header.get(key), list):
                raise SessionError(self.path, f"corrupt header: {key!r} missing or not a list")
        return header

    def _read_end(self) -> dict[str, Any]:
        tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "end" not in tables:
            return {}
        out = {}
        for key, value in self._db.execute("SELECT key, value FROM end"):
            try:
                out[key] = json.loads(value)
            except (TypeError, ValueError):
                out[key] = value
        return out

    @property
    def format_version(self) -> int:
        return self.header["format_version"]

    @property
    def seed(self) -> Any:
        return self.header.get("seed")

    @property
    def clock(self) -> str:
        return self.header.get("clock", "live")

    @property
    def venues(self) -> list[dict]:
        return self.header["venues"]

    @property
    def config(self) -> dict:
        return self.header.get("config") or {}

    @property
    def closed(self) -> bool:
        """True when the recorder closed the file cleanly (an `end` table row exists)."""
        return "closed_ns" in self.end

    def instruments(self) -> dict[tuple[str, str], Instrument]:
        """(venue, symbol) -> Instrument, rebuilt from the header."""
        out = {}
        for spec in self.header["instruments"]:
            try:
                extra = {
                    k: int(spec[k])
                    for k in ("min_lots", "price_decimals", "size_decimals")
                    if spec.get(k) is not None
                }
                extra.update({k: str(spec[k]) for k in ("base", "quote") if spec.get(k)})
                inst = Instrument(
                    spec["symbol"],
                    tick_size=Decimal(spec["tick_size"]),
                    lot_size=Decimal(spec["lot_size"]),
                    venue=spec["venue"],
                    **extra,
                )
            except Exception as exc:  # any malformed spec is the file's problem, said in one line
                raise SessionError(self.path, f"corrupt header: instrument {spec!r}: {exc}") from None
            out[(spec["venue"], spec["symbol"])] = inst
        return out

    # ---- events ------------------------------------------------------------------------------
    def _query(self, sql: str, args: tuple = ()) -> list:
        try:
            return self._db.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise SessionError(self.path, _db_problem(exc)) from None

    @property
    def last_seq(self) -> int:
        """The last committed event's seq (0 when there are none)."""
        return self._query("SELECT max(seq) FROM events")[0][0] or 0

    @property
    def event_count(self) -> int:
        return self._query("SELECT count(*) FROM events")[0][0]

    def time_range(self) -> tuple[int | None, int | None]:
        """(first ts, last ts) over the events (None, None) when empty."""
        first = self._query("SELECT ts FROM events ORDER BY seq LIMIT 1")
        last = self._query("SELECT ts FROM events ORDER BY seq DESC LIMIT 1")
        return (first[0][0] if first else None, last[0][0] if last else None)

    def seq_at_ts(self, ts: int) -> int:
        """The seq of the last event with ts <= `ts` (0 when none). Event ts never decrease in a live
        session; for safety the answer is the last such seq in seq order."""
        row = self._query("SELECT max(seq) FROM events WHERE ts <= ?", (ts,))
        return row[0][0] or 0

    def raw_events(
        self, start_seq: int = 1, end_seq: int | None = None
    ) -> Iterator[tuple[int, int, str, bytes]]:
        """(seq, ts, kind, body) rows in seq order, `start_seq <= seq <= end_seq`."""
        stop = end_seq if end_seq is not None else (1 << 62)
        nxt = start_seq
        while nxt <= stop:
            rows = self._query(
                "SELECT seq, ts, kind, body FROM events WHERE seq >= ? AND seq <= ? ORDER BY seq LIMIT ?",
                (nxt, stop, _BATCH),
            )
            if not rows:
                return
            yield from rows
            nxt = rows[-1][0] + 1

    def events(
        self, start_seq: int = 1, end_seq: int | None = None, notes: bool = True, with_skipped: bool = False
    ) -> Iterator[tuple[int, int, Any]]:
        """(seq, ts, event) in seq order: engine events (lobterm.engine.events) and, with `notes`,
        `Note` records (without: skipped, or yielded as None `with_skipped`). A body that does not decode
        is a SessionError naming its seq."""
        decode_event = _event_decoder.decode
        decode_note = _note_decoder.decode
        for seq, ts, kind, body in self.raw_events(start_seq, end_seq):
            try:
                if kind == NOTE_KIND:
                    if not notes:
                        if with_skipped:
                            yield seq, ts, None
                        continue
                    ev = decode_note(body)
                else:
                    ev = decode_event(body)
            except (msgspec.DecodeError, TypeError) as exc:
                raise SessionError(self.path, f"corrupt event at seq {seq} ({kind}): {exc}") from None
            yield seq, ts, ev

    # ---- checkpoints -------------------------------------------------------------------------
    def checkpoints(self) -> list[Checkpoint]:
        return [
            Checkpoint(s, t, h)
            for s, t, h in self._query("SELECT seq, ts, hash FROM checkpoints ORDER BY seq")
        ]

    def checkpoint_state(self, seq: int) -> dict:
        """The decoded state of the checkpoint at `seq` (layout: recording/state.py)."""
        rows = self._query("SELECT state FROM checkpoints WHERE seq = ?", (seq,))
        if not rows:
            raise SessionError(self.path, f"no checkpoint at seq {seq}")
        try:
            return decode_state(rows[0][0])
        except msgspec.DecodeError as exc:
            raise SessionError(self.path, f"corrupt checkpoint at seq {seq}: {exc}") from None

    def checkpoint_before_seq(self, seq: int) -> Checkpoint | None:
        rows = self._query(
            "SELECT seq, ts, hash FROM checkpoints WHERE seq <= ? ORDER BY seq DESC LIMIT 1", (seq,)
        )
        return Checkpoint(*rows[0]) if rows else None

    def checkpoint_before_ts(self, ts: int) -> Checkpoint | None:
        """The last checkpoint with ts <= `ts` (the starting point of a seek), None when there is none."""
        rows = self._query(
            "SELECT seq, ts, hash FROM checkpoints WHERE ts <= ? ORDER BY seq DESC LIMIT 1", (ts,)
        )
        return Checkpoint(*rows[0]) if rows else None

    # ---- lifecycle ---------------------------------------------------------------------------
    def close(self) -> None:
        if self._db is not None:
            try:
                self._db.close()
            finally:
                self._db = None

    def __enter__(self) -> SessionReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _file_size(path: Path) -> int:
    size = 0
    for p in (path, Path(str(path) + "-wal")):
        try:
            size += p.stat().st_size
        except OSError:
            pass
    return size


def session_info(path: str | os.PathLike) -> SessionInfo:
    """The summary of one session file (raises SessionError for a bad one)."""
    with SessionReader(path) as s:
        first, last = s.time_range()
        symbols = sorted(
            {f"{i['venue']}:{i['symbol']}" for i in s.header["instruments"] if isinstance(i, dict)}
        )
        return SessionInfo(
            path=str(s.path),
            created_ns=int(s.header.get("created_ns") or 0),
            first_ts=first,
            last_ts=last,
            venues=[str(v.get("name")) if isinstance(v, dict) else str(v) for v in s.venues],
            symbols=symbols,
            events=s.last_seq,
            checkpoints=len(s.checkpoints()),
            size_bytes=_file_size(s.path),
            closed=s.closed,
            clock=s.clock,
            seed=s.seed,
        )


def list_sessions(directory: str | os.PathLike) -> tuple[list[SessionInfo], list[SessionError]]:
    """Every session file in `directory` (newest first) and the problems with the unreadable ones."""
    from lobterm.recording.schema import SUFFIX

    d = Path(directory)
    if not d.is_dir():
        return [], []
    infos, problems = [], []
    for p in sorted(d.glob(f"*{SUFFIX}")):
        try:
            infos.append(session_info(p))
        except SessionError as exc:
            problems.append(exc)
    infos.sort(key=lambda i: i.created_ns, reverse=True)
    return infos, problems

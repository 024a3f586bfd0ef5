"""Read a session: open and validate its file(s), iterate its events by seq range, find its checkpoints.

Used by `lobterm sessions`, `verify`, `export`, the player and backtests. Every problem with a file
(not SQLite, not a lobterm session, a newer format, corrupt pages, a body or a checkpoint state that
does not decode) is a `SessionError` with a one-line message for the user; nothing else escapes. A
file that was not closed cleanly (no `end` rows: the recorder was killed) is readable up to its last
committed batch.

    with SessionReader(path) as s:                      # one file (one part of a rotated session)
        s.instruments, s.venues, s.seed, s.closed, s.first_seq, s.last_seq
        for seq, ts, event in s.events(start_seq=1):   # engine events and Notes, in bus order
            ...
        cp = s.checkpoint_before_ts(ts)                 # nearest checkpoint at or before ts (seek)
        s.start_checkpoint()                            # the state the file starts from (format v2)

    with open_session([part1, part2]) as s:             # several parts of one session, read as one
        ...                                             # (the same reading API: `SessionParts`)

`session_files(args, directory)` turns what a user typed (files, or a session id) into the files.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, TypedDict

import msgspec

from lobterm.engine.events import Event
from lobterm.engine.instrument import Instrument
from lobterm.recording import retention
from lobterm.recording.schema import FORMAT, FORMAT_VERSION, NOTE_KIND, SUFFIX, Note, session_id_of
from lobterm.recording.state import StateError, validate_state

__all__ = [
    "SessionError",
    "SessionReader",
    "SessionParts",
    "open_session",
    "resolve_session",
    "Checkpoint",
    "SessionInfo",
    "session_info",
    "list_sessions",
    "decode_state",
]

_BATCH = 20_000  # rows fetched per query while iterating: bounded memory on a long session


class _InstrumentExtras(TypedDict, total=False):
    """The optional `Instrument` fields a session header may carry."""

    min_lots: int
    price_decimals: int
    size_decimals: int
    base: str
    quote: str


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
    session_id: str = ""
    part: int = 1
    rotated: bool = False  # closed by rotating to the next part

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
            "session_id": self.session_id,
            "part": self.part,
            "rotated": self.rotated,
        }


_event_decoder = msgspec.msgpack.Decoder(Event)
_note_decoder = msgspec.msgpack.Decoder(Note)
_any_decoder = msgspec.msgpack.Decoder()


def decode_state(blob: bytes) -> dict:
    """A checkpoint's state (see recording/state.py for the layout): msgspec.DecodeError for bytes that
    are not msgpack, StateError for msgpack that is not a state."""
    return validate_state(_any_decoder.decode(blob))


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
        self._lock = None
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
            self._lock = retention.hold(self.path)  # a file being read is never pruned
        except sqlite3.Error as exc:
            self.close()
            raise SessionError(path, _db_problem(exc)) from None
        except SessionError:
            self.close()
            raise

    # ---- header ------------------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        db = self._db
        if db is None:
            raise SessionError(self.path, "is closed")
        return db

    def _read_header(self) -> dict[str, Any]:
        db = self._conn()
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
        tables = {r[0] for r in self._conn().execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "end" not in tables:
            return {}
        out = {}
        for key, value in self._conn().execute("SELECT key, value FROM end"):
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

    @property
    def rotated(self) -> bool:
        """True when the recorder closed this file to go on in the next part."""
        return bool(self.end.get("rotated_to"))

    @property
    def session_id(self) -> str:
        """The id shared by every part of the session (format v1: the file's name without suffix)."""
        sid = self.header.get("session_id")
        return sid if isinstance(sid, str) and sid else session_id_of(self.path.name)

    @property
    def part(self) -> int:
        part = self.header.get("part")
        return part if part.__class__ is int and part >= 1 else 1

    @property
    def first_seq(self) -> int:
        """The seq of this file's first event (1 unless it is a later part of a rotated session)."""
        first = self.header.get("first_seq")
        return first if first.__class__ is int and first >= 1 else 1

    @property
    def paths(self) -> list[Path]:
        return [self.path]

    def instruments(self) -> dict[tuple[str, str], Instrument]:
        """(venue, symbol) -> Instrument, rebuilt from the header."""
        out = {}
        for spec in self.header["instruments"]:
            try:
                extra: _InstrumentExtras = {}
                if spec.get("min_lots") is not None:
                    extra["min_lots"] = int(spec["min_lots"])
                if spec.get("price_decimals") is not None:
                    extra["price_decimals"] = int(spec["price_decimals"])
                if spec.get("size_decimals") is not None:
                    extra["size_decimals"] = int(spec["size_decimals"])
                if spec.get("base"):
                    extra["base"] = str(spec["base"])
                if spec.get("quote"):
                    extra["quote"] = str(spec["quote"])
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
            return self._conn().execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise SessionError(self.path, _db_problem(exc)) from None

    @property
    def last_seq(self) -> int:
        """The last committed event's seq (`first_seq - 1` when there are none)."""
        return self._query("SELECT max(seq) FROM events")[0][0] or self.first_seq - 1

    @property
    def event_count(self) -> int:
        return self._query("SELECT count(*) FROM events")[0][0]

    def time_range(self) -> tuple[int | None, int | None]:
        """(first ts, last ts) over the events (None, None) when empty."""
        first = self._query("SELECT ts FROM events ORDER BY seq LIMIT 1")
        last = self._query("SELECT ts FROM events ORDER BY seq DESC LIMIT 1")
        return (first[0][0] if first else None, last[0][0] if last else None)

    def raw_events(
        self, start_seq: int = 1, end_seq: int | None = None, batch: int = _BATCH
    ) -> Iterator[tuple[int, int, str, bytes]]:
        """(seq, ts, kind, body) rows in seq order, `start_seq <= seq <= end_seq`, `batch` per query."""
        stop = end_seq if end_seq is not None else (1 << 62)
        nxt = start_seq
        while nxt <= stop:
            rows = self._query(
                "SELECT seq, ts, kind, body FROM events WHERE seq >= ? AND seq <= ? ORDER BY seq LIMIT ?",
                (nxt, stop, batch),
            )
            if not rows:
                return
            yield from rows
            nxt = rows[-1][0] + 1

    def events(
        self,
        start_seq: int = 1,
        end_seq: int | None = None,
        notes: bool = True,
        with_skipped: bool = False,
        batch: int = _BATCH,
    ) -> Iterator[tuple[int, int, Any]]:
        """(seq, ts, event) in seq order: engine events (lobterm.engine.events) and, with `notes`,
        `Note` records (without: skipped, or yielded as None `with_skipped`). A body that does not decode
        is a SessionError naming its seq (everything before it was yielded)."""
        decode_event = _event_decoder.decode
        decode_note = _note_decoder.decode
        for seq, ts, kind, body in self.raw_events(start_seq, end_seq, batch):
            ev: Event | Note
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

    def notes(self) -> Iterator[tuple[int, Note]]:
        """(seq, note) of every `Note` record in seq order; a body that does not decode is skipped (a note
        is a record of what the trader did, not market data: a lost one is not worth a stop)."""
        decode = _note_decoder.decode
        nxt = 1
        while True:
            rows = self._query(
                "SELECT seq, body FROM events WHERE kind = ? AND seq >= ? ORDER BY seq LIMIT ?",
                (NOTE_KIND, nxt, _BATCH),
            )
            if not rows:
                return
            for seq, body in rows:
                try:
                    yield seq, decode(body)
                except (msgspec.DecodeError, TypeError):
                    continue
            nxt = rows[-1][0] + 1

    def recorded_of_kinds(self, kinds: tuple[str, ...], end_seq: int) -> Iterator[Any]:
        """The events of the given kinds up to `end_seq`, decoded, in seq order; a body that does not
        decode is skipped (the player rebuilds its tape from these: a lost print is not worth a stop)."""
        marks = ",".join("?" * len(kinds))
        decode = _event_decoder.decode
        nxt = 1
        while True:
            rows = self._query(
                f"SELECT seq, body FROM events WHERE kind IN ({marks}) AND seq >= ? AND seq <= ? "
                "ORDER BY seq LIMIT ?",
                (*kinds, nxt, end_seq, _BATCH),
            )
            if not rows:
                return
            for _seq, body in rows:
                try:
                    yield decode(body)
                except (msgspec.DecodeError, TypeError):
                    continue
            nxt = rows[-1][0] + 1

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
        blob = rows[0][0]
        if not isinstance(blob, bytes):
            raise SessionError(self.path, f"corrupt checkpoint at seq {seq}: its state is not a blob")
        try:
            return decode_state(blob)
        except (msgspec.DecodeError, StateError) as exc:
            raise SessionError(self.path, f"corrupt checkpoint at seq {seq}: {exc}") from None

    def start_checkpoint(self) -> Checkpoint | None:
        """The checkpoint the file starts from (`seq = first_seq - 1`), None in a file without one
        (format v1: the session starts from an empty kernel)."""
        rows = self._query("SELECT seq, ts, hash FROM checkpoints WHERE seq = ?", (self.first_seq - 1,))
        return Checkpoint(*rows[0]) if rows else None

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
        retention.release(self._lock)
        self._lock = None
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
            events=max(0, s.last_seq - s.first_seq + 1),
            checkpoints=len(s.checkpoints()),
            size_bytes=_file_size(s.path),
            closed=s.closed,
            clock=s.clock,
            seed=s.seed,
            session_id=s.session_id,
            part=s.part,
            rotated=s.rotated,
        )


def list_sessions(directory: str | os.PathLike) -> tuple[list[SessionInfo], list[SessionError]]:
    """Every session file in `directory` (newest first) and the problems with the unreadable ones."""
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


class SessionParts:
    """Several files of one rotated session, read as one: the SessionReader reading API over parts in
    order. Opening checks that they are parts of one session, in order, with no events missing
    between them, on the same instruments."""

    def __init__(self, paths: list[str | os.PathLike]) -> None:
        if not paths:
            raise SessionError("(no file)", "no session file given")
        self.parts: list[SessionReader] = []
        try:
            for p in paths:
                self.parts.append(SessionReader(p))
            self.parts.sort(key=lambda r: (r.part, r.first_seq))
            self._check()
        except BaseException:
            self.close()
            raise
        first = self.parts[0]
        self.path = first.path
        self.header = first.header
        self.end = self.parts[-1].end

    def _check(self) -> None:
        first = self.parts[0]
        for prev, nxt in zip(self.parts, self.parts[1:], strict=False):
            if nxt.session_id != first.session_id:
                raise SessionError(
                    nxt.path,
                    f"is part of session {nxt.session_id!r}, not {first.session_id!r} ({first.path})",
                )
            if nxt.part != prev.part + 1:
                raise SessionError(
                    nxt.path,
                    f"is part {nxt.part} of the session but follows part {prev.part}: a part is missing",
                )
            if nxt.first_seq != prev.last_seq + 1:
                raise SessionError(
                    nxt.path,
                    f"starts at event {nxt.first_seq} but {prev.path.name} ends at event {prev.last_seq}: "
                    f"events {prev.last_seq + 1}..{nxt.first_seq - 1} are missing",
                )
            if nxt.header.get("instruments") != first.header.get("instruments"):
                raise SessionError(nxt.path, f"lists other instruments than {first.path.name}")

    # ---- the SessionReader API ------------------------------------------------------------------
    @property
    def paths(self) -> list[Path]:
        return [r.path for r in self.parts]

    format_version = property(lambda self: self.parts[-1].format_version)
    seed = property(lambda self: self.parts[0].seed)
    clock = property(lambda self: self.parts[0].clock)
    venues = property(lambda self: self.parts[0].venues)
    config = property(lambda self: self.parts[0].config)
    closed = property(lambda self: self.parts[-1].closed)
    rotated = property(lambda self: self.parts[-1].rotated)
    session_id = property(lambda self: self.parts[0].session_id)
    part = property(lambda self: self.parts[0].part)
    first_seq = property(lambda self: self.parts[0].first_seq)
    last_seq = property(lambda self: self.parts[-1].last_seq)

    def instruments(self) -> dict[tuple[str, str], Instrument]:
        return self.parts[0].instruments()

    @property
    def event_count(self) -> int:
        return sum(r.event_count for r in self.parts)

    def time_range(self) -> tuple[int | None, int | None]:
        firsts = [t for t in (r.time_range()[0] for r in self.parts) if t is not None]
        lasts = [t for t in (r.time_range()[1] for r in reversed(self.parts)) if t is not None]
        return (firsts[0] if firsts else None, lasts[0] if lasts else None)

    def _spans(self, start_seq: int, end_seq: int | None) -> Iterator[tuple[SessionReader, int, int | None]]:
        for r in self.parts:
            lo, hi = max(start_seq, r.first_seq), r.last_seq
            if end_seq is not None:
                hi = min(hi, end_seq)
            if lo <= hi:
                yield r, lo, hi

    def raw_events(self, start_seq: int = 1, end_seq: int | None = None, batch: int = _BATCH):
        for r, lo, hi in self._spans(start_seq, end_seq):
            yield from r.raw_events(lo, hi, batch)

    def events(
        self,
        start_seq: int = 1,
        end_seq: int | None = None,
        notes: bool = True,
        with_skipped: bool = False,
        batch: int = _BATCH,
    ) -> Iterator[tuple[int, int, Any]]:
        for r, lo, hi in self._spans(start_seq, end_seq):
            yield from r.events(lo, hi, notes, with_skipped, batch)

    def notes(self) -> Iterator[tuple[int, Note]]:
        for r in self.parts:
            yield from r.notes()

    def recorded_of_kinds(self, kinds: tuple[str, ...], end_seq: int) -> Iterator[Any]:
        for r in self.parts:
            if r.first_seq > end_seq:
                return
            yield from r.recorded_of_kinds(kinds, end_seq)

    def checkpoints(self) -> list[Checkpoint]:
        """Every checkpoint once (a rotation writes the same one at the end of a part and at the start
        of the next)."""
        seen: dict[int, Checkpoint] = {}
        for r in self.parts:
            for cp in r.checkpoints():
                seen.setdefault(cp.seq, cp)
        return [seen[k] for k in sorted(seen)]

    def checkpoint_state(self, seq: int) -> dict:
        """The state at `seq`, from whichever part holds a good copy of it."""
        problem: SessionError | None = None
        for r in self.parts:
            if r.first_seq - 1 <= seq <= max(r.last_seq, r.first_seq - 1):
                try:
                    return r.checkpoint_state(seq)
                except SessionError as exc:
                    problem = problem or exc
        raise problem or SessionError(self.path, f"no checkpoint at seq {seq}")

    def start_checkpoint(self) -> Checkpoint | None:
        return self.parts[0].start_checkpoint()

    def checkpoint_before_seq(self, seq: int) -> Checkpoint | None:
        cps = [c for c in self.checkpoints() if c.seq <= seq]
        return cps[-1] if cps else None

    def checkpoint_before_ts(self, ts: int) -> Checkpoint | None:
        cps = [c for c in self.checkpoints() if c.ts <= ts]
        return cps[-1] if cps else None

    def close(self) -> None:
        for r in self.parts:
            r.close()

    def __enter__(self) -> SessionParts:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_session(paths: str | os.PathLike | list) -> SessionReader | SessionParts:
    """One file as a SessionReader, several (parts of one session) as SessionParts."""
    if isinstance(paths, (str, os.PathLike)):
        return SessionReader(paths)
    if len(paths) == 1:
        return SessionReader(paths[0])
    return SessionParts(list(paths))


def resolve_session(names: list[str], directory: str | os.PathLike) -> list[Path]:
    """The files a user named: each name is a session file, or the id of a session in `directory`
    (`lobterm sessions` shows ids), which stands for all of its parts in order."""
    out: list[Path] = []
    for name in names:
        p = Path(name)
        if p.exists() or name.endswith(SUFFIX) or os.sep in name:
            out.append(p)  # a file (a missing one is the reader's to refuse, in its words)
            continue
        parts = session_parts_in(directory, name)
        if not parts:
            raise SessionError(name, f"no such file, and no session with that id in {directory}")
        out.extend(parts)
    return out


def session_parts_in(directory: str | os.PathLike, session_id: str) -> list[Path]:
    """The files of session `session_id` in `directory`, part 1 first (by file name: see schema)."""
    d = Path(directory)
    if not d.is_dir():
        return []
    first = d / f"{session_id}{SUFFIX}"
    found = [first] if first.is_file() else []
    prefix = f"{session_id}-part"
    later = []
    for p in d.iterdir():
        n = p.name
        if n.startswith(prefix) and n.endswith(SUFFIX) and n[len(prefix) : -len(SUFFIX)].isdigit():
            later.append((int(n[len(prefix) : -len(SUFFIX)]), p))
    return found + [p for _, p in sorted(later)]

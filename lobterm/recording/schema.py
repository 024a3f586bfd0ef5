"""The session file format, version 2: table layout, header keys, the Note record, file names.

One SQLite file per session part (WAL, append-only). See the README "Sessions" section for the
contract; in short: `header(key, value JSON)`, `events(seq, ts, kind, body msgpack)`,
`checkpoints(seq, ts, state msgpack, hash)`, `end(key, value)` written only when a part is closed
(cleanly, or rotated to the next part).

Version 2 over version 1 (both are read):
- every file starts with a checkpoint (the *start checkpoint*, `seq = first_seq - 1`, 0 for the first
  part), written in the same transaction as the header, so a file verifies and replays on its own
  from the moment it exists;
- a session may rotate into several parts: the header carries `session_id` (shared by the parts),
  `part` (1, 2, ...) and `first_seq` (the seq of the part's first event: seqs run on across parts);
  a rotated part's `end` table names the next file (`rotated_to`).
"""

from __future__ import annotations

import re
import time
from typing import Any

import msgspec

FORMAT = "lobterm-session"
FORMAT_VERSION = 2
SUFFIX = ".lobterm.sqlite"

DDL = (
    "CREATE TABLE IF NOT EXISTS header(key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS events(seq INTEGER PRIMARY KEY, ts INTEGER NOT NULL, kind TEXT NOT NULL, "
    "body BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS checkpoints(seq INTEGER PRIMARY KEY, ts INTEGER NOT NULL, state BLOB NOT NULL, "
    "hash TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS end(key TEXT PRIMARY KEY, value TEXT)",
)

NOTE_KIND = "Note"

# Config keys whose values never reach a session file.
_SECRET_WORDS = ("key", "secret", "password", "token")


class Note(msgspec.Struct, frozen=True):
    """A non-engine record: a key action that changed state, a parameter change, a risk decision.

    Stored as kind "Note", body a msgpack map {ts, source, action, detail}. `detail` is a string or
    any JSON-like value (a dict of changed parameters, say).
    """

    ts: int
    source: str
    action: str
    detail: Any = ""


def redact(value: Any) -> Any:
    """A copy of a config tree with every value under a secret-looking key replaced by "<redacted>"."""
    if isinstance(value, dict):
        return {
            k: ("<redacted>" if any(w in str(k).lower() for w in _SECRET_WORDS) else redact(v))
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    return value


def session_filename(venue: str, symbol: str, seed: int | None, created_ns: int | None = None) -> str:
    """`YYYYMMDD-HHMMSS-<venue>-<symbol>-<seed or live>.lobterm.sqlite` (UTC), safe for any file system."""
    t = time.gmtime((created_ns if created_ns is not None else time.time_ns()) / 1e9)
    stamp = time.strftime("%Y%m%d-%H%M%S", t)
    safe = re.compile(r"[^A-Za-z0-9._-]+")
    parts = [
        stamp,
        safe.sub("-", venue),
        safe.sub("-", symbol.replace("/", "-")),
        "live" if seed is None else str(seed),
    ]
    return "-".join(parts) + SUFFIX


def session_id_of(filename: str) -> str:
    """The session id a first part's file name gives (its name without the suffix)."""
    return filename[: -len(SUFFIX)] if filename.endswith(SUFFIX) else filename


def part_filename(session_id: str, part: int) -> str:
    """The file name of part `part` (>= 2) of session `session_id`; part 1 is `session_id + SUFFIX`."""
    return f"{session_id}{SUFFIX}" if part <= 1 else f"{session_id}-part{part}{SUFFIX}"

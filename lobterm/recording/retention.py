"""Retention of the sessions directory: the oldest session files go first, never one in use.

`prune_sessions(directory, max_total_bytes)` removes whole session files (with their `-wal` / `-shm`
companions), oldest first by last write, until the directory's session files total at most
`max_total_bytes`. A file in use is never removed: the recorder writing it and every reader holding
it open keep a shared `flock` on it (`hold`), and the pruner skips any file it cannot lock
exclusively. A process that dies drops its locks with it, so a killed recording becomes removable.
(Where `fcntl` does not exist the pruner cannot see other processes' files: it then keeps any file
written to in the last hour.)

The recorder prunes its directory each time a new file starts (`[recording] max_total_mb`); `lobterm
sessions --prune` does it on demand and says what it removed.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from lobterm.recording.schema import SUFFIX

try:
    import fcntl
except ImportError:  # not POSIX
    fcntl = None  # type: ignore[assignment]

__all__ = ["Removed", "hold", "release", "in_use", "prune_sessions", "session_files", "total_size"]

_COMPANIONS = ("", "-wal", "-shm")
_RECENT_S = 3600.0  # without fcntl: a file written to this recently may be open elsewhere


@dataclass(slots=True, frozen=True)
class Removed:
    path: Path
    size_bytes: int


def hold(path: str | os.PathLike) -> IO[bytes] | None:
    """A shared lock on `path` for as long as the returned handle is open (None: no lock possible)."""
    if fcntl is None:
        return None
    try:
        fh = open(path, "rb")  # noqa: SIM115 - held open on purpose: the lock lives as long as it
    except OSError:
        return None
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        pass  # someone holds it exclusively (a pruner, for an instant): reading goes on regardless
    return fh


def release(handle: IO[bytes] | None) -> None:
    if handle is not None:
        try:
            handle.close()
        except OSError:
            pass


def in_use(path: Path) -> bool:
    """Whether a recorder or a reader (in this process or another) has `path` open."""
    if fcntl is None:
        return time.time() - _mtime(path) < _RECENT_S
    try:
        fh = open(path, "rb")  # noqa: SIM115
    except OSError:
        return False
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        fh.close()  # closing drops the probe's lock
    return False


def _size(path: Path) -> int:
    total = 0
    for c in _COMPANIONS:
        try:
            total += os.stat(str(path) + c).st_size
        except OSError:
            pass
    return total


def _mtime(path: Path) -> float:
    latest = 0.0
    for c in _COMPANIONS:
        try:
            latest = max(latest, os.stat(str(path) + c).st_mtime)
        except OSError:
            pass
    return latest


def session_files(directory: str | os.PathLike) -> list[Path]:
    """The session files in `directory`, oldest last write first."""
    d = Path(directory)
    if not d.is_dir():
        return []
    files = [p for p in d.iterdir() if p.name.endswith(SUFFIX) and p.is_file()]
    files.sort(key=lambda p: (_mtime(p), p.name))
    return files


def total_size(directory: str | os.PathLike) -> int:
    """Bytes taken by the session files in `directory` (with their WAL and shared-memory files)."""
    return sum(_size(p) for p in session_files(directory))


def prune_sessions(
    directory: str | os.PathLike, max_total_bytes: int, keep: tuple[Path, ...] = ()
) -> list[Removed]:
    """Remove the oldest session files of `directory` until they total at most `max_total_bytes`;
    never a file in `keep` or in use. Returns what was removed (oldest first)."""
    files = session_files(directory)
    sizes = {p: _size(p) for p in files}
    total = sum(sizes.values())
    kept = {Path(k).resolve() for k in keep}
    removed: list[Removed] = []
    for p in files:
        if total <= max_total_bytes:
            break
        if p.resolve() in kept or in_use(p):
            continue
        for c in _COMPANIONS:
            try:
                os.unlink(str(p) + c)
            except FileNotFoundError:
                pass
            except OSError:
                break  # cannot remove it (permissions): leave it and try the next
        if p.exists():
            continue
        total -= sizes[p]
        removed.append(Removed(p, sizes[p]))
    return removed

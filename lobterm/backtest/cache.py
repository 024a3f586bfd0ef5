"""The fast path's columnar cache: one session's decoded market rows on disk, read back in chunks.

Decoding a session (SQLite reads and msgpack parsing, lobterm/backtest/fast.py `decode_market`) is most
of a fast backtest's time; the rows it produces depend only on the file and on the market chosen. The
first fast backtest of a session writes them here, batch by batch as they are decoded (memory stays
flat with the session's length); later ones read them back in chunks of `CHUNK_ROWS` rows through a
numpy memmap of the file, one chunk mapped at a time.

Where: `$LOBTERM_CACHE_DIR`, else `$XDG_CACHE_HOME/lobterm/rows`, else `~/.cache/lobterm/rows`. Each
entry is two files named by its key: `KEY.npy` (an int64 array (n, fastkernel.N_COLS), numpy's
format) and `KEY.json` (the figures decoding gives besides: event count, first and last timestamps,
the price bounds, and a CRC-32 of the rows). The JSON is written last: an entry without it is not one.

The key: the session file's device, inode, size and modification time (and its SQLite write-ahead
log's size and time, where there is one: a change may sit there), a SHA-256 of its header table, the
market, whether our orders are taken out of the book, and this format's version. A file that changes
gets a new key; the stale entry is removed when the new one is written.

Beside an entry, `KEY.notes` keeps the session's recorded market maker parameter changes for the market
(`param_changes`): finding them scans every event of the file (SQLite has no index on the kind), a
sixth of a repeat run's time on a 2,000 s session. Same key, same invalidation; unreadable: rescanned.

A corrupt entry (truncated, wrong shape, CRC mismatch, unreadable JSON) is detected before use, named
in one line (the `warn` callback) and rebuilt from the session; nothing crashes on it. Any OSError
writing the cache (read-only or full disk) leaves the backtest running from memory, with one line.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "CHUNK_ROWS",
    "CachedRows",
    "InMemoryRows",
    "RowsWriter",
    "batches",
    "cache_dir",
    "cache_key",
    "market_rows",
    "kernel_cached",
    "open_cached",
    "param_changes",
    "run_kernel_chunked",
    "warm_decoder",
]

VERSION = 1
CHUNK_ROWS = 1 << 18  # rows per chunk read back (12 MB)


def cache_dir() -> Path:
    explicit = os.environ.get("LOBTERM_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lobterm" / "rows"


def _stat_part(path: Path) -> list[int]:
    st = os.stat(path)
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns]


def cache_key(
    path: str | os.PathLike[str], db: sqlite3.Connection, venue: str, symbol: str, own: bool
) -> str:
    """The key of `path`'s decoded rows for one market (see the module docstring)."""
    from lobterm.backtest import fastkernel as fk

    p = Path(path)
    parts: list[Any] = [VERSION, fk.N_COLS, _stat_part(p), venue, symbol, bool(own)]
    wal = p.with_name(p.name + "-wal")
    try:
        wal_stat = _stat_part(wal)
    except OSError:
        wal_stat = None
    if wal_stat is not None and wal_stat[2] > 0:  # an empty one is what opening the file leaves
        parts.append(wal_stat)
    h = hashlib.sha256(json.dumps(parts).encode())
    for key, value in db.execute("SELECT key, value FROM header ORDER BY key"):
        h.update(str(key).encode() + b"\0" + str(value).encode() + b"\0")
    return h.hexdigest()[:32]


def _source_tag(path: str | os.PathLike[str], venue: str, symbol: str, own: bool) -> str:
    """Names the entries of one session's market (whatever its state), to remove stale ones."""
    ident = json.dumps([str(Path(path).resolve()), venue, symbol, bool(own)])
    return hashlib.sha256(ident.encode()).hexdigest()[:16]


class CachedRows:
    """A cache entry: the rows in chunks (memmap, one chunk mapped at a time) and the decode figures."""

    cached = True  # read from the cache (False: decoded by this run, then written)
    decode_seconds = 0.0

    def __init__(self, npy: Path, meta: dict) -> None:
        self.npy = npy
        self.meta = meta
        self.n_rows = int(meta["rows"])
        self.events = int(meta["events"])
        self.first_ts = int(meta["first_ts"])
        self.last_ts = int(meta["last_ts"])
        self.lo = int(meta["lo"])
        self.hi = int(meta["hi"])
        self._offset = int(meta["offset"])

    def chunk(self, start: int, stop: int) -> np.ndarray:
        """Rows [start, stop) as a plain int64 array backed by a memmap of just those rows."""
        from lobterm.backtest import fastkernel as fk

        stop = min(stop, self.n_rows)
        if stop <= start:
            return np.zeros((0, fk.N_COLS), dtype=np.int64)
        mm = np.memmap(
            self.npy,
            dtype="<i8",
            mode="c",  # copy-on-write: typed as a writable array (one compiled kernel), never written
            offset=self._offset + start * fk.N_COLS * 8,
            shape=(stop - start, fk.N_COLS),
        )
        return np.asarray(mm)

    def chunks(self, size: int = CHUNK_ROWS) -> Iterator[np.ndarray]:
        for start in range(0, self.n_rows, size):
            yield self.chunk(start, start + size)

    @property
    def rows(self) -> np.ndarray:
        """Every row in memory (for small sessions and tests; the fast path reads `chunks`)."""
        return self.all()

    def all(self) -> np.ndarray:
        """Every row in memory (for small sessions and tests)."""
        return np.array(self.chunk(0, self.n_rows))


def _entry_problem(npy: Path, meta_path: Path) -> tuple[dict | None, str | None]:
    """(meta, None) for a sound entry; (None, why) for a corrupt one; (None, None) for none."""
    from lobterm.backtest import fastkernel as fk

    if not meta_path.exists():
        return None, None
    try:
        meta = json.loads(meta_path.read_text())
        if meta.get("version") != VERSION:
            return None, f"format version {meta.get('version')!r}, not {VERSION}"
        n, offset, crc = int(meta["rows"]), int(meta["offset"]), int(meta["crc32"])
        for k in ("events", "first_ts", "last_ts", "lo", "hi"):
            int(meta[k])
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        return None, f"unreadable index {meta_path.name} ({type(exc).__name__})"
    try:
        size = npy.stat().st_size
        if size != offset + n * fk.N_COLS * 8:
            return None, f"{npy.name} holds {size:,} bytes, the index says {offset + n * fk.N_COLS * 8:,}"
        with open(npy, "rb") as f:
            head = f.read(offset)
            if not head.startswith(b"\x93NUMPY"):
                return None, f"{npy.name} is not a numpy file"
            got = zlib.crc32(head)
            view = memoryview(bytearray(1 << 22))
            while True:
                got_n = f.readinto(view)
                if not got_n:
                    break
                got = zlib.crc32(view[:got_n], got)
    except OSError as exc:
        return None, f"{npy.name} unreadable ({exc.strerror or exc})"
    if got != crc:
        return None, f"{npy.name} fails its checksum (CRC-32 {got:08x}, the index says {crc:08x})"
    return meta, None


def open_cached(key: str, warn: Callable[[str], None] | None = None) -> CachedRows | None:
    """The sound cache entry `key`, or None (missing; or corrupt: named by `warn` and removed)."""
    d = cache_dir()
    npy, meta_path = d / f"{key}.npy", d / f"{key}.json"
    meta, why = _entry_problem(npy, meta_path)
    if meta is not None:
        return CachedRows(npy, meta)
    if why is not None:
        if warn is not None:
            warn(f"lobterm: the backtest cache entry {d / key} is corrupt ({why}): rebuilding it")
        for p in (meta_path, npy):
            try:
                p.unlink(missing_ok=True)
            except OSError:
                pass
    return None


def _npy_header(n_rows: int, n_cols: int) -> bytes:
    """numpy's format 1.0 header for an int64 (n_rows, n_cols) C-order array, padded to 128 bytes so
    that it can be written first with a placeholder count and rewritten at the end."""
    d = f"{{'descr': '<i8', 'fortran_order': False, 'shape': ({n_rows}, {n_cols}), }}"
    total = 128
    body = d.encode("latin1")
    pad = total - 10 - len(body) - 1
    return b"\x93NUMPY\x01\x00" + (total - 10).to_bytes(2, "little") + body + b" " * pad + b"\n"


class RowsWriter:
    """Writes one entry batch by batch (see the module docstring); `close` publishes it."""

    def __init__(self, key: str, source: str | os.PathLike[str], venue: str, symbol: str, own: bool) -> None:
        from lobterm.backtest import fastkernel as fk

        self.key = key
        self.dir = cache_dir()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.tag = _source_tag(source, venue, symbol, own)
        self.source = str(source)
        self._cols = fk.N_COLS
        self._tmp = self.dir / f"{key}.npy.{os.getpid()}.tmp"
        self._f = open(self._tmp, "wb")  # noqa: SIM115 - closed in close / abort
        self._f.write(_npy_header(0, self._cols))
        self.rows = 0

    def reset(self) -> None:
        """Start again (the numba decoder handed over to msgspec part way)."""
        self._f.seek(0)
        self._f.truncate()
        self._f.write(_npy_header(0, self._cols))
        self.rows = 0

    def write(self, rows: np.ndarray) -> None:
        if rows.shape[0]:
            self._f.write(np.ascontiguousarray(rows, dtype="<i8").tobytes())
            self.rows += rows.shape[0]

    def close(self, events: int, first_ts: int, last_ts: int, lo: int, hi: int) -> CachedRows:
        f = self._f
        header = _npy_header(self.rows, self._cols)
        f.seek(0)
        f.write(header)
        f.flush()
        f.close()
        crc = 0
        with open(self._tmp, "rb") as r:
            view = memoryview(bytearray(1 << 22))
            while True:
                k = r.readinto(view)
                if not k:
                    break
                crc = zlib.crc32(view[:k], crc)
        meta = {
            "version": VERSION,
            "source": self.source,
            "tag": self.tag,
            "rows": self.rows,
            "offset": len(header),
            "crc32": crc,
            "events": events,
            "first_ts": first_ts,
            "last_ts": last_ts,
            "lo": lo,
            "hi": hi,
        }
        npy = self.dir / f"{self.key}.npy"
        os.replace(self._tmp, npy)
        meta_tmp = self.dir / f"{self.key}.json.{os.getpid()}.tmp"
        meta_tmp.write_text(json.dumps(meta))
        os.replace(meta_tmp, self.dir / f"{self.key}.json")
        self._remove_stale()
        return CachedRows(npy, meta)

    def abort(self) -> None:
        try:
            self._f.close()
        finally:
            self._tmp.unlink(missing_ok=True)

    def _remove_stale(self) -> None:
        """Remove the other entries of the same session's market (written before it changed)."""
        _remove_stale(self.dir, self.key, self.tag)


def _remove_stale(d: Path, key: str, tag: str) -> None:
    """Remove the entries (rows and notes) of `tag`'s session market other than `key`."""
    for meta_path in [*d.glob("*.json"), *d.glob("*.notes")]:
        if meta_path.stem == key:
            continue
        try:
            if json.loads(meta_path.read_text()).get("tag") != tag:
                continue
            meta_path.unlink(missing_ok=True)
            if meta_path.suffix == ".json":
                (d / f"{meta_path.stem}.npy").unlink(missing_ok=True)
        except (OSError, ValueError, AttributeError):
            continue


def param_changes(
    reader: Any,
    venue: str,
    symbol: str,
    own_in_book: bool,
    compute: Callable[[Any, str, str], list],
    *,
    use_cache: bool = True,
) -> list:
    """`compute(reader, venue, symbol)` (lobterm.recording.params.recorded_param_changes, passed in), kept
    in the cache as `KEY.notes` under the key of the market's rows entry: read back on a repeat run
    instead of scanning the session. Written only when JSON gives the values back as they were (a
    tuple or a NaN would not be: those sessions are scanned each time); a file that cannot be read or
    written is no error (scanned, and not kept)."""
    from lobterm.recording.params import ParamChange

    key = None
    if use_cache:
        try:
            key = cache_key(reader.path, reader._db, venue, symbol, own_in_book)  # noqa: SLF001
        except (OSError, sqlite3.Error):
            key = None
    if key is None:
        return compute(reader, venue, symbol)
    d = cache_dir()
    path = d / f"{key}.notes"
    try:
        raw = json.loads(path.read_text())["changes"]
        return [ParamChange(int(s), int(t), dict(c), str(m)) for s, t, c, m in raw]
    except (OSError, ValueError, TypeError, KeyError):
        pass
    changes = compute(reader, venue, symbol)
    rows = [[c.seq, c.ts, c.changes, c.market] for c in changes]
    tag = _source_tag(reader.path, venue, symbol, own_in_book)
    try:
        text = json.dumps({"tag": tag, "changes": rows}, allow_nan=False)
        if json.loads(text)["changes"] == rows:
            d.mkdir(parents=True, exist_ok=True)
            tmp = d / f"{key}.notes.{os.getpid()}.tmp"
            tmp.write_text(text)
            os.replace(tmp, path)
            _remove_stale(d, key, tag)
    except (OSError, TypeError, ValueError):
        pass
    return changes


class InMemoryRows:
    """Decoded rows held in memory (no cache: disabled, or not writable), with `CachedRows`'s reads."""

    cached = False

    def __init__(self, data: Any) -> None:
        self.data = data
        self.rows = data.rows
        self.n_rows = int(data.rows.shape[0])
        self.events = data.events
        self.first_ts = data.first_ts
        self.last_ts = data.last_ts
        self.lo = data.lo
        self.hi = data.hi
        self.decode_seconds = data.decode_seconds

    def chunk(self, start: int, stop: int) -> np.ndarray:
        return self.rows[start:stop]

    def chunks(self, size: int = CHUNK_ROWS) -> Iterator[np.ndarray]:
        for start in range(0, self.n_rows, size):
            yield self.rows[start : start + size]


Rows = CachedRows | InMemoryRows


def _stderr(line: str) -> None:
    import sys

    print(line, file=sys.stderr)


def market_rows(
    reader: Any,
    venue: str,
    symbol: str,
    own_in_book: bool,
    progress: Callable[[int, int], None] | None = None,
    *,
    use_cache: bool = True,
    warn: Callable[[str], None] | None = None,
    decode: Callable[..., Any],
) -> Rows:
    """`venue`/`symbol`'s decoded rows of the session open in `reader`: from the cache when it holds
    them (sound, for this very file), else decoded (lobterm.backtest.fast.decode_market) and written to
    the cache on the way, batch by batch. `warn` (default: stderr) gets one line for a corrupt entry
    rebuilt or a cache that cannot be written. `decode`: lobterm.backtest.fast's `decode_market` (passed
    in: this module does not import the fast path, which imports it)."""
    import time

    decode_market = decode
    warn = warn or _stderr
    t0 = time.perf_counter()
    key = None
    if use_cache:
        try:
            key = cache_key(reader.path, reader._db, venue, symbol, own_in_book)  # noqa: SLF001
        except (OSError, sqlite3.Error):
            key = None
    if key is not None:
        hit = open_cached(key, warn)
        if hit is not None:
            hit.decode_seconds = time.perf_counter() - t0
            if progress is not None:
                progress(hit.events, hit.events)
            return hit
    writer = None
    if key is not None:
        try:
            writer = RowsWriter(key, reader.path, venue, symbol, own_in_book)
        except OSError as exc:
            warn(
                f"lobterm: cannot write the backtest cache in {cache_dir()} ({exc.strerror or exc}): decoding in memory"
            )
    if writer is None:
        return InMemoryRows(decode_market(reader, venue, symbol, own_in_book, progress))
    try:
        data = decode_market(reader, venue, symbol, own_in_book, progress, sink=writer)
        if data.rows.shape[0]:  # the msgspec decoder's rows (in memory): written in one go
            writer.reset()
            writer.write(data.rows)
        entry = writer.close(data.events, data.first_ts, data.last_ts, data.lo, data.hi)
    except OSError as exc:
        writer.abort()
        warn(
            f"lobterm: cannot write the backtest cache in {cache_dir()} ({exc.strerror or exc}): decoding in memory"
        )
        return InMemoryRows(decode_market(reader, venue, symbol, own_in_book, progress))
    except BaseException:
        writer.abort()
        raise
    entry.cached = False
    entry.decode_seconds = time.perf_counter() - t0
    return entry


def batches(src: Rows, size: int = CHUNK_ROWS) -> Iterator[np.ndarray]:
    """`src`'s rows in chunks of about `size` that each end where the timestamp changes (the kernel's
    batches of same-timestamp rows, a snapshot and its levels among them, are never split)."""
    from lobterm.backtest import fastkernel as fk

    n = src.n_rows
    start = 0
    step = size
    while start < n:
        end = min(start + step, n)
        if end == n:
            yield src.chunk(start, n)
            return
        c = src.chunk(start, end + 1)  # one row more: the first of the next chunk
        ts = c[:, fk.C_TS]
        t = ts[-1]
        idx = np.flatnonzero(ts[:-1] != t)
        cut = int(idx[-1]) + 1 if idx.size else 0
        if cut == 0:  # the whole chunk is one timestamp: take more
            step *= 2
            continue
        step = size
        yield c[:cut]
        start += cut


def run_kernel_chunked(
    src: Rows,
    ip: np.ndarray,
    fp: np.ndarray,
    sizes: np.ndarray,
    end_ts: int,
    size: int = CHUNK_ROWS,
    *,
    error: type[Exception] = RuntimeError,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """lobterm.backtest.fast.run_kernel over `src` in chunks (`batches`): the same (fills, scalars,
    final order slots), with one chunk of rows in memory at a time. A kernel error raises `error`
    (the fast path passes its FastPathUnsupported) with what went wrong."""
    from lobterm.backtest import fastkernel as fk

    n_levels = src.hi - src.lo + 1
    cap = max(4096, src.n_rows // 64)
    nq = 4 * sizes.shape[0] + 16
    while True:
        fills = np.zeros((cap, fk.N_FILL_COLS), dtype=np.int64)
        scalars = np.zeros(fk.N_SCALARS, dtype=np.int64)
        slots = np.zeros((nq, fk.N_QFIELDS), dtype=np.int64)
        st = fk.new_state(np.int64(src.lo), np.int64(n_levels), sizes.shape[0], scalars)
        err = fk.ERR_NONE
        for chunk in batches(src, size):
            err = fk.run_chunk(chunk, ip, fp, sizes, fills, scalars, st)
            if err != fk.ERR_NONE:
                break
        if err == fk.ERR_NONE:
            err = fk.finish(scalars, st, src.n_rows > 0, np.int64(end_ts), slots)
        if err == fk.ERR_FILLS_FULL:
            cap *= 4
            continue
        if err != fk.ERR_NONE:
            raise error(
                {
                    fk.ERR_SLOTS_FULL: "more live orders than the fast path's order slots",
                    fk.ERR_REQUESTS_FULL: "more requests in flight than the fast path's queue (latency too "
                    "long for the request rate)",
                }.get(err, f"kernel error {err}")
            )
        return fills[: scalars[fk.S_NFILLS]], scalars, slots


def warm_decoder() -> None:
    """Compile (or load) the numba decoder (lobterm/backtest/fastdecode.py) and the markouts' book walk
    (lobterm/backtest/fastmarkouts.py) on empty input."""
    from lobterm.backtest import fastdecode as fd
    from lobterm.backtest import fastkernel as fk

    e = np.zeros(0, dtype=np.uint8)
    v = np.frombuffer(b"sim", dtype=np.uint8).copy()
    out = np.zeros((0, fk.N_COLS), dtype=np.int64)
    fd.parse(e, 0, v, v, True, *fd.new_tables(), out, True)
    from lobterm.backtest import fastmarkouts as fm

    bids, asks, w = fm.new_walk(2)
    fm.walk(out, np.int64(1), bids, asks, w, np.zeros((1, 6), dtype=np.int64))
    fm.flush(w, np.zeros((1, 6), dtype=np.int64))


def kernel_cached() -> bool:
    """Whether numba's on-disk cache holds the fast path's compiled entry points (else the first run
    compiles them: tens of seconds). True when it cannot tell."""
    from lobterm.backtest import fastdecode as fd
    from lobterm.backtest import fastkernel as fk
    from lobterm.backtest import fastmarkouts as fm

    try:
        for func in (fk.new_state, fk.run_chunk, fk.finish, fd.parse, fm.walk, fm.flush):
            # numba's cache layout: an index that is missing, or stale (its source file changed), is {}
            dispatcher: Any = func
            if not dispatcher._cache._cache_file._load_index():  # noqa: SLF001
                return False
    except (AttributeError, OSError, TypeError):
        return True
    return True

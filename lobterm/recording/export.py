"""`lobterm export FILE --to csv|parquet`: a session's trades, our fills and its top-of-book series as tables.

Three tables, prices and sizes as exact decimal strings on the instrument's grid, times as integer
nanoseconds plus an ISO-8601 UTC column:
- `trades`: every venue trade print (ts_ns, time, venue, symbol, price, size, aggressor, trade_id);
- `fills`: our fills (ts_ns, time, venue, symbol, order_id, side, price, size, leaves, liquidity, fee in
  quote currency, trade_id);
- `top_of_book`: one row each time a market's best bid/ask (price or size) changed.

A damaged session (a corrupt event or page mid-file) is exported up to the damage, and the result
says where it stopped. CSV needs nothing; Parquet needs pyarrow, which lobterm does not install (ExportError says how).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lobterm.engine.events import OUR_OWNER, SIDE_NAMES, BookDelta, BookSnapshot, Fill, Trade
from lobterm.engine.l2book import L2Book
from lobterm.recording.reader import SessionError, SessionParts, SessionReader, open_session

__all__ = ["ExportError", "ExportResult", "export_session", "TABLES"]

TABLES = {
    "trades": ["ts_ns", "time", "venue", "symbol", "price", "size", "aggressor", "trade_id"],
    "fills": [
        "ts_ns",
        "time",
        "venue",
        "symbol",
        "order_id",
        "side",
        "price",
        "size",
        "leaves",
        "liquidity",
        "fee",
        "trade_id",
    ],
    "top_of_book": ["ts_ns", "time", "venue", "symbol", "bid", "bid_size", "ask", "ask_size"],
}


class ExportError(Exception):
    """An export that cannot be done (a missing optional dependency, an unwritable directory)."""


@dataclass(slots=True)
class ExportResult:
    #: table -> (file written, rows)
    tables: dict[str, tuple[Path, int]] = field(default_factory=dict)
    #: Where a damaged session stopped the export (a corrupt event, a corrupt page): the tables hold
    #: every row before it. None when the whole session was exported.
    damage: str | None = None


def iso(ts_ns: int) -> str:
    sec, ns = divmod(ts_ns, 1_000_000_000)
    return f"{datetime.fromtimestamp(sec, UTC):%Y-%m-%dT%H:%M:%S}.{ns:09d}Z"


def _rows(reader: SessionReader | SessionParts) -> Iterator[tuple[str, list]]:
    insts = reader.instruments()
    books: dict[tuple[str, str], L2Book] = {}
    tops: dict[tuple[str, str], tuple] = {}
    for _seq, ts, ev in reader.events(notes=False):
        cls = ev.__class__
        if cls is BookDelta or cls is BookSnapshot:
            key = (ev.venue, ev.symbol)
            inst = insts.get(key)
            if inst is None:
                continue
            book = books.get(key)
            if book is None:
                book = books[key] = L2Book(*key)
            if cls is BookDelta:
                book.apply_delta(ev)
            else:
                book.apply_snapshot(ev)
            bb = book.best_bid() if book.valid else None
            ba = book.best_ask() if book.valid else None
            top = (bb, ba)
            if tops.get(key) != top:
                tops[key] = top
                yield (
                    "top_of_book",
                    [
                        ts,
                        iso(ts),
                        ev.venue,
                        ev.symbol,
                        "" if bb is None else inst.format_price(bb[0]),
                        "" if bb is None else inst.format_size(bb[1]),
                        "" if ba is None else inst.format_price(ba[0]),
                        "" if ba is None else inst.format_size(ba[1]),
                    ],
                )
        elif cls is Trade:
            inst = insts.get((ev.venue, ev.symbol))
            if inst is not None:
                yield (
                    "trades",
                    [
                        ev.ts,
                        iso(ev.ts),
                        ev.venue,
                        ev.symbol,
                        inst.format_price(ev.price),
                        inst.format_size(ev.size),
                        SIDE_NAMES[ev.aggressor] if ev.aggressor in (0, 1) else str(ev.aggressor),
                        ev.trade_id,
                    ],
                )
        elif cls is Fill and ev.owner == OUR_OWNER:
            inst = insts.get((ev.venue, ev.symbol))
            if inst is not None:
                yield (
                    "fills",
                    [
                        ev.ts,
                        iso(ev.ts),
                        ev.venue,
                        ev.symbol,
                        ev.order_id,
                        SIDE_NAMES[ev.side] if ev.side in (0, 1) else str(ev.side),
                        inst.format_price(ev.price),
                        inst.format_size(ev.size),
                        inst.format_size(ev.leaves),
                        "maker" if ev.is_maker else "taker",
                        str(inst.fee(ev.fee)),
                        ev.trade_id,
                    ],
                )


def _require_pyarrow() -> None:
    try:
        import pyarrow  # noqa: F401
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise ExportError(
            "parquet export needs pyarrow, which is not installed: `pip install pyarrow` "
            "(or export with --to csv)"
        ) from None


def _write_parquet(columns: dict[str, list[list[Any]]], files: dict[str, Path]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    for t, cols in columns.items():
        arrays = [
            pa.array(c, type=pa.int64() if name in ("ts_ns", "order_id", "trade_id") else pa.string())
            for name, c in zip(TABLES[t], cols, strict=False)
        ]
        pq.write_table(pa.Table.from_arrays(arrays, names=TABLES[t]), files[t])


def export_session(
    path: str | os.PathLike | list, to: str = "csv", out_dir: str | os.PathLike | None = None
) -> ExportResult:
    """Write the three tables of the session in `path` (a file, or the parts of one session); returns
    the tables written and, for a damaged file, where the export stopped. SessionError for a file that
    cannot be opened, ExportError for a format that cannot be written."""
    if to not in ("csv", "parquet"):
        raise ExportError(f"unknown export format {to!r} (csv or parquet)")
    if to == "parquet":
        _require_pyarrow()
    src = Path(path[0] if isinstance(path, list) else path)
    with open_session(path) as reader:
        stem = src.name[: -len(".lobterm.sqlite")] if src.name.endswith(".lobterm.sqlite") else src.stem
        out = Path(out_dir) if out_dir is not None else src.parent / f"{stem}-export"
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ExportError(f"cannot create {out}: {exc.strerror or exc}") from None
        files = {t: out / f"{t}.{to}" for t in TABLES}
        counts = dict.fromkeys(TABLES, 0)
        result = ExportResult()

        def rows() -> Iterator[tuple[str, list]]:
            try:
                yield from _rows(reader)
            except SessionError as exc:
                result.damage = str(exc)

        if to == "csv":
            handles = {}
            try:
                for t, f in files.items():
                    handles[t] = open(f, "w", newline="", encoding="utf-8")
                writers = {t: csv.writer(h) for t, h in handles.items()}
                for t, w in writers.items():
                    w.writerow(TABLES[t])
                for table, row in rows():
                    writers[table].writerow(row)
                    counts[table] += 1
            except OSError as exc:
                raise ExportError(f"cannot write to {out}: {exc.strerror or exc}") from None
            finally:
                for h in handles.values():
                    h.close()
        else:
            columns: dict[str, list[list[Any]]] = {t: [[] for _ in TABLES[t]] for t in TABLES}
            for table, row in rows():
                for col, value in zip(columns[table], row, strict=False):
                    col.append(value)
                counts[table] += 1
            _write_parquet(columns, files)
        result.tables = {t: (files[t], counts[t]) for t in TABLES}
        return result

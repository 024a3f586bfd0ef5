"""The backtest fast path: one market's recorded data decoded once into arrays, walked by a numba kernel.

`run_fast_backtest(path, params, ...)` gives the same `BacktestResult` as the reference path
(`lobterm.backtest.reference.run_backtest`, the real kernel's objects on the bus) for the market
maker's ladder mode, about ten times faster:

1. **Decode** (`decode_market`): the session's event bodies are read in batches and decoded with
   msgspec (one `decode` call per batch of 50,000); the chosen market's book deltas, snapshots, trades
   and venue status become rows of one int64 array (lobterm/backtest/fastkernel.py's layout). Our
   recorded orders are removed from the L2 sizes exactly as the reference does (an `OwnRestingBook`
   fed our recorded order events, its size subtracted level by level).
2. **Kernel** (`fastkernel.run`, numba, compiled once and cached on disk): the L2 book, the paper
   desk's queue model and latency, the market maker's ladder and diff. It returns our fills.
3. **Money**, exactly, in integer columns (`book_fills`): lots, cash, fees, volumes and the inventory
   path are numpy sums over the fills; the average cost goes through the real `Inventory`'s
   `Position._trade` only for the fills since the position last went flat or flipped, and realized P&L
   follows from the Inventory's own identity (realized = cash + holdings * average cost). The
   Inventory then reports realized / unrealized P&L and fees with the reference's code; no `Fraction`
   per fill (tests/unit/test_fast_money.py checks it against booking fill by fill).
4. **Markouts** in bulk (lobterm/backtest/fastmarkouts.py `bulk_markouts`): numba walks the rows for
   the top of the book, numpy settles every horizon; the same `MarkoutEngine` state as feeding it
   change by change.

What the fast path does not do (it says so, and `lobterm backtest` then runs the reference path): the
Avellaneda-Stoikov and GLFT modes, a parameter or latency field outside the allow-lists
(`fast_path_refusal`), sessions whose prices span more than
`MAX_SPAN_TICKS`. Of the
kernel's risk checks it runs the one a backtest's market maker meets, `self_trade` (with latency, a
requote can cross our own order still in flight or being amended: the OMS refuses it before it leaves);
the others (the reference's default limits) refuse nothing it sends on the sessions measured.

How it differs from the reference, and why results agree only within a tolerance (measured in
tests/integration/test_backtest_fast.py): the reference delivers each event through the bus, so the
desk's answers to our requests (accepted, amended, done) interleave with the market maker's cycles in
bus order; the kernel delivers them after each batch of same-timestamp events, then requotes, and
again while the answers include a fill or a done order (between batches, with latency, it reads them
one by one in bus order as the market maker does: on a constant 120 ms latency the two paths then give
the same fills, where reading a batch of answers before requoting gave 66 fills against 85). The drawdown is sampled at the moment of each
fill (the reference samples when the fill is delivered, after its batch).

Compilation: the first run on a machine compiles the kernel (several seconds) and caches it next to
the module (numba `cache=True`); later runs load it in well under a second. `compile_seconds` in the
result is that time, apart from the events/s figure.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable
from dataclasses import fields
from fractions import Fraction
from typing import Any

import msgspec
import numpy as np

from lobterm.engine.events import (
    ORDER_EVENTS,
    OUR_OWNER,
    BookDelta,
    BookSnapshot,
    Event,
    Fill,
    Trade,
    VenueStatus,
)
from lobterm.recording.reader import SessionError, SessionReader
from lobterm.recording.schema import NOTE_KIND
from lobterm.venues.replay import OwnRestingBook

__all__ = [
    "FastPathUnsupported",
    "MarketRows",
    "decode_market",
    "run_fast_backtest",
    "fast_path_refusal",
    "warm_up",
]

MAX_SPAN_TICKS = 4_000_000  # dense book arrays: 4 arrays of this many int64 at most (~130 MB)
_CHUNK = 50_000
_ORDER_KINDS = frozenset({"Accepted", "Fill", "Cancelled", "Amended", "Rejected", "Done"})
_list_decoder = msgspec.msgpack.Decoder(list[Event])
_one_decoder = msgspec.msgpack.Decoder(Event)
_MAX = 10**15


class FastPathUnsupported(Exception):
    """The fast path cannot run this backtest; the message says why (the caller runs the reference)."""


class MarketRows:
    """One market's decoded rows (fastkernel layout) and what the result needs besides."""

    __slots__ = ("rows", "events", "first_ts", "last_ts", "lo", "hi", "decode_seconds")

    def __init__(
        self,
        rows: np.ndarray,
        events: int,
        first_ts: int,
        last_ts: int,
        lo: int,
        hi: int,
        decode_seconds: float,
    ) -> None:
        self.rows = rows
        self.events = events
        self.first_ts = first_ts
        self.last_ts = last_ts
        self.lo = lo
        self.hi = hi
        self.decode_seconds = decode_seconds


#: What the fast path honours, field by field. `fast_path_refusal` sends every backtest whose settings
#: leave these to the reference path, naming the field; tests/unit/test_fast_guard.py enumerates every
#: field of QuoteParams, PaperConfig and LatencyModel so that a new one must be placed here.
#: QuoteParams fields the kernel reads (lobterm/backtest/fastkernel.py, `_kernel_inputs`).
FAST_QUOTE_FIELDS = frozenset(
    {
        "mode",  # ladder only, checked apart
        "levels",
        "spread_ticks",
        "spread_bps",
        "level_step_ticks",
        "size_lots",
        "size_step_lots",
        "sizes",
        "skew_ticks_per_lot",
        "size_skew",
        "min_spread_ticks",
        "max_position_lots",
        "refresh_tolerance_ticks",
        "size_tolerance",
        "max_order_age_ms",
        "post_only",
        "use_amend",
        "reject_backoff_ms",
    }
)
#: QuoteParams fields that only other modes read (the ladder never does, on either path).
OTHER_MODE_FIELDS = frozenset(
    {
        "gamma",
        "sigma_ticks",
        "estimate_sigma",
        "vol_alpha",
        "k",
        "estimate_k",
        "k_alpha",
        "horizon_s",
        "infinite_horizon",
        "glft_gamma",
        "glft_delta",
        "adj1",
        "adj2",
        "glft_a",
        "glft_window_s",
        "glft_refit_s",
        "glft_fit_ticks",
    }
)
#: PaperConfig fields the kernel honours (fees, the queue model family and n, latency per type, jitter).
FAST_PAPER_FIELDS = frozenset(
    {
        "maker_fee_ppm",
        "taker_fee_ppm",
        "cancel_model",
        "new_latency_ns",
        "cancel_latency_ns",
        "amend_latency_ns",
        "latency_jitter_ns",
        "latency_seed",
        "recorded_latency_ns",
    }
)
#: LatencyModel fields the kernel honours (lobterm/backtest/models.py).
FAST_LATENCY_FIELDS = frozenset(
    {
        "new_ms",
        "cancel_ms",
        "amend_ms",
        "jitter_ms",
        "seed",
        "recorded",
        "feed_ms",
        "feed_jitter_ms",
        "feed_recorded",
    }
)


def _not_honoured(obj: Any, allowed: frozenset[str], also: frozenset[str] = frozenset()) -> str | None:
    """The first field of the dataclass `obj` outside `allowed` (and `also`) whose value is not its
    default: the fast path would silently ignore it."""
    from dataclasses import MISSING

    for f in fields(obj):
        if f.name in allowed or f.name in also:
            continue
        default = (
            f.default
            if f.default is not MISSING
            else (f.default_factory() if f.default_factory is not MISSING else MISSING)
        )
        value = getattr(obj, f.name)
        if default is MISSING or value != default:
            return f"{type(obj).__name__}.{f.name} = {value!r}"
    return None


def fast_path_refusal(
    params: Any, latency_ms: float = 0.0, *, paper: Any = None, latency: Any = None
) -> str | None:
    """Why the fast path cannot run this backtest (market maker parameters, paper desk settings, latency
    model), or None. Everything outside the allow-lists above (a field the kernel does not read) set to
    anything but its default sends the backtest to the reference path, naming it."""
    from lobterm.trading.quoting import LADDER

    if params.mode != LADDER:
        return (
            f"the fast path does the market maker's ladder mode only, not mode = {params.mode!r}: "
            "running the reference path"
        )
    for obj, allowed, also in (
        (params, FAST_QUOTE_FIELDS, OTHER_MODE_FIELDS),
        (paper, FAST_PAPER_FIELDS, frozenset()),
        (latency, FAST_LATENCY_FIELDS, frozenset()),
    ):
        if obj is None:
            continue
        field_ = _not_honoured(obj, allowed, also)
        if field_ is not None:
            return f"the fast path does not honour {field_}: running the reference path"
    return None


def _garbage(price: Any, size: Any) -> bool:
    return (
        price.__class__ is not int
        or size.__class__ is not int
        or not 0 < price <= _MAX
        or not 0 <= size <= _MAX
    )


def decode_market(
    reader: SessionReader,
    venue: str,
    symbol: str,
    own_in_book: bool,
    progress: Callable[[int, int], None] | None = None,
    *,
    parser: str = "numba",
    sink: Any = None,
) -> MarketRows:
    """Decode every event of the session once; keep `venue`/`symbol`'s market data as rows with our
    recorded resting size taken out of the book (when the recorded venue's book held our orders).

    `parser`: "numba" reads the bodies' bytes in numba (lobterm/backtest/fastdecode.py) and, should it
    meet anything it does not expect, hands over to "msgspec" (batched msgspec decoding, then the
    fields read in Python), which also names a corrupt event.

    `sink` (lobterm/backtest/cache.py's RowsWriter): the numba decoder writes each batch's rows to it
    instead of keeping them (the result's `rows` is then empty; memory stays flat); should it hand over
    to msgspec, the sink is reset and the rows are returned in memory."""
    if parser == "numba":
        data = _decode_numba(reader, venue, symbol, own_in_book, progress, sink)
        if data is not None:
            return data
        if sink is not None:
            sink.reset()
    return _decode_msgspec(reader, venue, symbol, own_in_book, progress)


def _priced(rows: np.ndarray) -> np.ndarray:
    from lobterm.backtest import fastkernel as fk

    kind = rows[:, fk.C_KIND]
    priced = rows[
        (kind != fk.K_SNAP) & (kind != fk.K_STATUS) & ((kind != fk.K_DELTA) | (rows[:, fk.C_SIDE] >= 0)),
        fk.C_PRICE,
    ]
    return priced[priced > 0]


def _bounds(rows: np.ndarray) -> tuple[int, int]:
    priced = _priced(rows)
    return (int(priced.min()), int(priced.max())) if priced.size else (1, 1)


def _decode_numba(
    reader: SessionReader,
    venue: str,
    symbol: str,
    own_in_book: bool,
    progress: Callable[[int, int], None] | None,
    sink: Any = None,
) -> MarketRows | None:
    import sqlite3

    from lobterm.backtest import fastdecode as fd
    from lobterm.backtest import fastkernel as fk
    from lobterm.recording.reader import _db_problem

    t0 = time.perf_counter()
    total = reader.last_seq
    tables = fd.new_tables()
    vb = np.frombuffer(venue.encode(), dtype=np.uint8).copy()
    sb = np.frombuffer(symbol.encode(), dtype=np.uint8).copy()
    parts: list[np.ndarray] = []
    lo_hi: tuple[int, int] | None = None
    n = 0
    first_ts = last_ts = None
    try:
        cur = reader._conn().execute("SELECT body FROM events WHERE kind != ? ORDER BY seq", (NOTE_KIND,))  # noqa: SLF001
        while True:
            batch = cur.fetchmany(_CHUNK * 2)
            if not batch:
                break
            buf = np.frombuffer(b"".join([r[0] for r in batch]), dtype=np.uint8)
            empty = np.zeros((0, fk.N_COLS), dtype=np.int64)
            status, cap, _f, _l = fd.parse(buf, len(batch), vb, sb, own_in_book, *tables, empty, True)
            if status != fd.OK:
                return None
            out = np.empty((cap, fk.N_COLS), dtype=np.int64)
            status, r, f, last = fd.parse(buf, len(batch), vb, sb, own_in_book, *tables, out, False)
            if status != fd.OK:
                return None
            if sink is None:
                parts.append(out[:r])
            elif r:
                sink.write(out[:r])
                pr = _priced(out[:r])
                if pr.size:
                    b_lo, b_hi = int(pr.min()), int(pr.max())
                    lo_hi = (min(lo_hi[0], b_lo), max(lo_hi[1], b_hi)) if lo_hi else (b_lo, b_hi)
            if first_ts is None:
                first_ts = int(f)
            last_ts = int(last)
            n += len(batch)
            if progress is not None:
                progress(n, total)
    except sqlite3.Error as exc:
        raise SessionError(reader.path, _db_problem(exc)) from None
    rows = np.concatenate(parts) if parts else np.zeros((0, fk.N_COLS), dtype=np.int64)
    lo, hi = _bounds(rows) if sink is None else (lo_hi or (1, 1))
    return MarketRows(rows, n, first_ts or 0, last_ts or 0, lo, hi, time.perf_counter() - t0)


def _decode_msgspec(
    reader: SessionReader,
    venue: str,
    symbol: str,
    own_in_book: bool,
    progress: Callable[[int, int], None] | None = None,
) -> MarketRows:
    from lobterm.backtest import fastkernel as fk

    t0 = time.perf_counter()
    total = reader.last_seq
    own = OwnRestingBook()
    own_bids, own_asks = own.size
    out: list[tuple] = []
    add = out.append
    n = 0
    first_ts = last_ts = None
    db = reader._conn()  # noqa: SLF001 - one sequential scan, bodies only (the reader pages by seq)
    try:
        cur = db.execute("SELECT seq, kind, body FROM events WHERE kind != ? ORDER BY seq", (NOTE_KIND,))
        while True:
            batch = cur.fetchmany(_CHUNK)
            if not batch:
                break
            bodies = [r[2] for r in batch]
            try:
                evs = _list_decoder.decode(b"\xdd" + struct.pack(">I", len(bodies)) + b"".join(bodies))
            except (msgspec.DecodeError, TypeError, ValueError):
                for seq, kind, body in batch:  # find the corrupt one, to name it
                    try:
                        _one_decoder.decode(body)
                    except (msgspec.DecodeError, TypeError) as exc:
                        raise SessionError(
                            reader.path, f"corrupt event at seq {seq} ({kind}): {exc}"
                        ) from None
                raise SessionError(
                    reader.path, f"corrupt events between seq {batch[0][0]} and {batch[-1][0]}"
                ) from None
            n += len(evs)
            if first_ts is None and evs:
                first_ts = evs[0].ts
            for ev in evs:
                if type(ev) is BookDelta:
                    if ev.symbol != symbol or ev.venue != venue:
                        continue
                    side, price, size, seq = ev.side, ev.price, ev.size, ev.seq
                    if (side != 0 and side != 1) or _garbage(price, size) or seq.__class__ is not int:
                        add((fk.K_DELTA, ev.ts, -1, 0, 0, seq if seq.__class__ is int else -1))
                        continue
                    if own_in_book:
                        ours = (own_bids if side == 0 else own_asks).get(price)
                        if ours:
                            size = size - ours if size > ours else 0
                    add((fk.K_DELTA, ev.ts, side, price, size, seq))
                elif type(ev) is Trade:
                    if ev.symbol != symbol or ev.venue != venue:
                        continue
                    if (
                        ev.price.__class__ is not int
                        or ev.size.__class__ is not int
                        or not 0 < ev.price <= _MAX
                    ):
                        continue
                    add((fk.K_TRADE, ev.ts, ev.aggressor, ev.price, ev.size, 0))
                elif type(ev) is BookSnapshot:
                    if ev.symbol != symbol or ev.venue != venue:
                        continue
                    snap = own.others(ev) if own_in_book else ev
                    pairs = [(0, lv) for lv in _pairs(snap.bids)] + [(1, lv) for lv in _pairs(snap.asks)]
                    levels = [(sd, lv[0], lv[1]) for sd, lv in pairs if lv is not None]
                    if (
                        snap.seq.__class__ is not int
                        or len(levels) != len(pairs)  # a level that is not a (price, size) pair
                        or any(_garbage(p, s) for _sd, p, s in levels)
                    ):
                        add((fk.K_SNAP, ev.ts, 0, 0, -1, 0))
                        continue
                    add((fk.K_SNAP, ev.ts, 0, 0, len(levels), snap.seq))
                    for sd, p, s in levels:
                        add((fk.K_LEVEL, ev.ts, sd, p, s, 0))
                elif type(ev) is VenueStatus:
                    if ev.venue == venue:
                        add((fk.K_STATUS, ev.ts, 0, 0, 1 if ev.state == "up" else 0, 0))
                elif (
                    isinstance(ev, ORDER_EVENTS)
                    and ev.owner == OUR_OWNER
                    and ev.symbol == symbol
                    and ev.venue == venue
                ):
                    # our recorded orders: what to take out of the book (the other events, such as
                    # BookGap, PositionMismatch, MarkPrice or Funding, carry no owner and are skipped)
                    own.on_event(ev)  # our recorded orders: what to take out of the book
            last_ts = evs[-1].ts if evs else last_ts
            if progress is not None:
                progress(n, total)
    except msgspec.ValidationError as exc:  # pragma: no cover - the list decoder raises DecodeError
        raise SessionError(reader.path, f"corrupt event: {exc}") from None
    except Exception as exc:
        import sqlite3

        if isinstance(exc, sqlite3.Error):
            from lobterm.recording.reader import _db_problem

            raise SessionError(reader.path, _db_problem(exc)) from None
        raise
    rows = np.array(out, dtype=np.int64).reshape(-1, fk.N_COLS) if out else np.zeros((0, fk.N_COLS), np.int64)
    lo, hi = _bounds(rows)
    return MarketRows(rows, n, first_ts or 0, last_ts or 0, lo, hi, time.perf_counter() - t0)


def _pairs(levels: Any) -> list[tuple[Any, Any] | None]:
    out: list[tuple[Any, Any] | None] = []
    for level in levels:
        try:
            p, s = level
        except (TypeError, ValueError):
            out.append(None)
            continue
        out.append((p, s))
    return out


def _kernel_inputs(
    params: Any, inst: Any, latency_ns: int | None, paper: Any, mm_on: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from lobterm.backtest import fastkernel as fk
    from lobterm.trading.paper import QUEUE_FAMILIES, parse_queue_model

    ip = np.zeros(fk.N_IPARAMS, dtype=np.int64)
    ip[fk.P_LEVELS] = params.levels
    ip[fk.P_STEP] = params.level_step_ticks
    ip[fk.P_SPREAD_TICKS] = params.spread_ticks
    ip[fk.P_MIN_SPREAD] = params.min_spread_ticks
    ip[fk.P_MAX_POS] = params.max_position_lots
    ip[fk.P_TOL] = params.refresh_tolerance_ticks
    ip[fk.P_MAX_AGE_NS] = params.max_order_age_ms * 1_000_000
    ip[fk.P_POST_ONLY] = 1 if params.post_only else 0
    ip[fk.P_USE_AMEND] = 1 if params.use_amend else 0
    ip[fk.P_BACKOFF_NS] = params.reject_backoff_ms * 1_000_000
    ip[fk.P_MIN_LOTS] = max(1, getattr(inst, "min_lots", 1))
    ip[fk.P_MAX_LOTS] = min(getattr(inst, "max_lots", fk.MAX_UNITS), fk.MAX_UNITS)
    family, n = parse_queue_model(paper.cancel_model)
    if latency_ns is None:  # the paper config's latencies, per request type
        ip[fk.P_LATENCY_NS] = paper.new_latency_ns
        ip[fk.P_CANCEL_LATENCY_NS] = paper.cancel_latency_ns
        ip[fk.P_AMEND_LATENCY_NS] = paper.amend_latency_ns
    else:
        ip[fk.P_LATENCY_NS] = ip[fk.P_CANCEL_LATENCY_NS] = ip[fk.P_AMEND_LATENCY_NS] = latency_ns
    ip[fk.P_JITTER_NS] = paper.latency_jitter_ns
    ip[fk.P_SEED] = paper.latency_seed
    ip[fk.P_QUEUE] = QUEUE_FAMILIES[family]
    ip[fk.P_MAKER_PPM] = paper.maker_fee_ppm
    ip[fk.P_TAKER_PPM] = paper.taker_fee_ppm
    ip[fk.P_MM_ON] = 1 if mm_on else 0
    fp = np.zeros(fk.N_FPARAMS, dtype=np.float64)
    fp[fk.PF_SPREAD_BPS] = params.spread_bps
    fp[fk.PF_SKEW] = params.skew_ticks_per_lot
    fp[fk.PF_SIZE_SKEW] = params.size_skew
    fp[fk.PF_SIZE_TOL] = params.size_tolerance
    fp[fk.PF_QUEUE_N] = n
    # Recorded latency samples (PaperConfig.recorded_latency_ns) after the parameters, per type.
    rec = paper.recorded_latency_ns
    for k, count in enumerate((fk.P_REC_NEW_N, fk.P_REC_CANCEL_N, fk.P_REC_AMEND_N)):
        ip[count] = len(rec[k])
    ip = np.concatenate([ip, np.array([v for k in rec for v in k], dtype=np.int64)])
    sizes = np.array(params.level_sizes(), dtype=np.int64)
    return ip, fp, sizes


def run_kernel(
    rows: np.ndarray, lo: int, hi: int, ip: np.ndarray, fp: np.ndarray, sizes: np.ndarray, end_ts: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fills, scalars, final order slots) of one kernel run; grows the fill buffer when it fills up."""
    from lobterm.backtest import fastkernel as fk

    # Our quotes can sit outside the recorded prices; the book arrays need only the recorded ones.
    n_levels = hi - lo + 1
    cap = max(4096, rows.shape[0] // 8)
    nq = 4 * sizes.shape[0] + 16
    while True:
        fills = np.zeros((cap, fk.N_FILL_COLS), dtype=np.int64)
        scalars = np.zeros(fk.N_SCALARS, dtype=np.int64)
        slots = np.zeros((nq, fk.N_QFIELDS), dtype=np.int64)
        err = fk.run(
            rows, np.int64(lo), np.int64(n_levels), ip, fp, sizes, fills, scalars, np.int64(end_ts), slots
        )
        if err == fk.ERR_FILLS_FULL:
            cap *= 4
            continue
        if err != fk.ERR_NONE:
            raise FastPathUnsupported(
                {
                    fk.ERR_SLOTS_FULL: "more live orders than the fast path's order slots",
                    fk.ERR_REQUESTS_FULL: "more requests in flight than the fast path's queue (latency too "
                    "long for the request rate)",
                }.get(err, f"kernel error {err}")
            )
        return fills[: scalars[fk.S_NFILLS]], scalars, slots


def warm_up() -> float:
    """Compile (first run on this machine) or load the cached kernel and decoder; returns the seconds
    it took (`lobterm.backtest.cache.kernel_cached` says beforehand which it will be)."""
    from lobterm.backtest import fastkernel as fk
    from lobterm.trading.paper import PaperConfig
    from lobterm.trading.quoting import QuoteParams

    t0 = time.perf_counter()
    ip, fp, sizes = _kernel_inputs(QuoteParams(levels=1), None, 0, PaperConfig())
    rows = np.array(
        [
            [fk.K_SNAP, 1, 0, 0, 2, 1],
            [fk.K_LEVEL, 1, 0, 10, 5, 0],
            [fk.K_LEVEL, 1, 1, 12, 5, 0],
            [fk.K_TRADE, 2, 0, 12, 1, 0],
        ],
        dtype=np.int64,
    )
    from lobterm.backtest.cache import InMemoryRows, run_kernel_chunked, warm_decoder

    # The entry points the fast path calls (the kernel over chunks, the numba decoder).
    run_kernel_chunked(
        InMemoryRows(MarketRows(rows, 4, 1, 2, 10, 12, 0.0)), ip, fp, sizes, 2, error=FastPathUnsupported
    )
    warm_decoder()
    return time.perf_counter() - t0


def _row_tuples(rows: Any) -> Any:
    """The rows as tuples: from one array, or from an iterable of arrays (chunks), one chunk at a time."""
    from itertools import chain

    if isinstance(rows, np.ndarray):
        return rows.tolist()
    return chain.from_iterable(c.tolist() for c in rows)


def fast_markouts(rows: Any, venue: str, symbol: str, fills: list[Fill], config: Any = None) -> Any:
    """The markout engine fed from the decoded rows (the others-only book, as the kernel sees it in a
    reference backtest) and the fast path's fills: a pass in Python over the rows, after the kernel.

    Each fill is marked against the mid in effect before the rows of its timestamp (the reference path
    delivers it inside that batch, after the rows before it): markouts of the two paths agree to within
    that and the fills' own differences."""
    from lobterm.backtest import fastkernel as fk
    from lobterm.engine.l2book import L2Book, L2BookError
    from lobterm.trading.markouts import MarkoutEngine

    engine = MarkoutEngine(config)
    book = L2Book(venue, symbol)
    on_book, on_trade, on_fill = engine.on_book, engine.on_trade, engine.on_fill
    apply_level = book.apply_level
    fi, nf = 0, len(fills)
    top = None
    kinds = (fk.K_DELTA, fk.K_LEVEL)
    snap_left = 0
    for kind, ts, side, price, size, _seq in _row_tuples(rows):
        while fi < nf and fills[fi].ts <= ts:
            on_fill(fills[fi], "mm")
            fi += 1
        if kind in kinds:
            if kind == fk.K_LEVEL and snap_left <= 0:
                continue  # the levels of a refused snapshot
            snap_left -= kind == fk.K_LEVEL
            try:
                apply_level(side, price, size)
            except L2BookError:
                continue
        elif kind == fk.K_SNAP:
            snap_left = size
            if size >= 0:
                book.clear()
            continue
        elif kind == fk.K_TRADE:
            if price > 0 and size > 0:
                on_trade(Trade(ts, venue, symbol, price, size, side, 0))
            continue
        else:
            continue
        bid, ask = book.best_bid(), book.best_ask()
        now = (bid, ask)
        if now != top:
            top = now
            on_book(
                venue,
                symbol,
                ts,
                None if bid is None else bid[0],
                0 if bid is None else bid[1],
                None if ask is None else ask[0],
                0 if ask is None else ask[1],
            )
    while fi < nf:
        on_fill(fills[fi], "mm")
        fi += 1
    return engine


def book_fills_loop(
    inv: Any, venue: str, sym: str, fills: np.ndarray, maker_ppm: int, taker_ppm: int
) -> tuple[list[Fill], list[list[int]], int, int]:
    """Our fills (kernel rows) booked one by one into `inv` (lobterm.trading.inventory.Inventory), as the
    reference path books them: (Fill events, inventory path [ts, lots], min and max position)."""
    path_out = []
    our_fills: list[Fill] = []
    pos_min = pos_max = 0
    pos = inv.position(venue, sym)
    for i, (ts, side, price, size, maker, oid, leaves, _rule) in enumerate(fills.tolist()):
        fee = price * size * (maker_ppm if maker else taker_ppm)
        ev = Fill(ts, venue, sym, oid, side, price, size, leaves, bool(maker), fee, i + 1, OUR_OWNER)
        inv.on_fill(ev)
        our_fills.append(ev)
        lots = pos.lots
        pos_min = min(pos_min, lots)
        pos_max = max(pos_max, lots)
        path_out.append([ts, lots])
    return our_fills, path_out, pos_min, pos_max


def book_fills(
    inv: Any, venue: str, sym: str, fills: np.ndarray, maker_ppm: int, taker_ppm: int
) -> tuple[list[Fill], list[list[int]], int, int]:
    """`book_fills_loop` in integer columns, leaving `inv`'s position exactly as the loop does.

    Lots, cash (tick*lots), fees (millionths of a tick*lot), volumes and the inventory path are sums and a
    cumulative sum of the fills' integers. Only the average cost needs the fills one by one, and only since
    the position last went flat (no average) or flipped side (the average is then that fill's price):
    those fills go through the Position's own `_trade` (Fractions, its rounding rule). Realized P&L is
    then the Inventory's identity realized = cash + holdings * average cost, which every `_trade` step
    keeps (fees here are in quote and there is no funding). Not carried: `avg_rounding` of fills before
    that point (no result reads it). Falls back to the loop where a value could leave int64 or a fill
    is one the Inventory would refuse."""
    from lobterm.engine.events import BUY

    n = int(fills.shape[0])
    pos = inv.position(venue, sym)
    if n == 0:
        return [], [], 0, 0
    ts, side, price, size, maker = (fills[:, k] for k in range(5))
    ppm = [maker_ppm, taker_ppm]
    if (
        pos.fills
        or any(type(x) is not int for x in ppm)
        or int(price.min()) <= 0
        or int(size.min()) <= 0
        or not bool(np.isin(side, (0, 1)).all())
        or inv.fee_currency.get(venue, "quote") != "quote"
        or float(price.max()) * float(size.max()) * (max(abs(x) for x in ppm) + 1) * n >= 2.0**62
    ):
        return book_fills_loop(inv, venue, sym, fills, maker_ppm, taker_ppm)
    fee = price * size * np.where(maker != 0, maker_ppm, taker_ppm)
    buy = side == BUY
    signed = np.where(buy, size, -size)
    lots = np.cumsum(signed)
    pos.fills = n
    pos.fees = int(fee.sum())
    pos.lots = int(lots[-1])
    pos.cash = -int((signed * price).sum())
    pos.bought = int(size[buy].sum())
    pos.sold = int(size[~buy].sum())
    pos.last_fill_price = int(price[-1])
    pos.version = n
    inv.version += n
    inv.booked += n
    prev = np.concatenate(([0], lots[:-1]))
    reset = np.nonzero((lots == 0) | (np.sign(prev) * np.sign(lots) < 0))[0]
    j = int(reset[-1]) if reset.size else -1
    pos.holdings = Fraction(int(lots[j])) if j >= 0 else Fraction(0)
    pos.avg_cost = Fraction(int(price[j])) if j >= 0 and lots[j] != 0 else None
    for k in range(j + 1, n):
        pos._trade(int(signed[k]), int(price[k]))  # noqa: SLF001
    avg = pos.avg_cost
    pos.realized = Fraction(pos.cash) + (pos.holdings * avg if avg is not None else 0)
    rows = fills[:, :7].tolist()
    fees = fee.tolist()
    our = [
        Fill(t, venue, sym, oid, sd, px, sz, lv, bool(mk), fees[i], i + 1, OUR_OWNER)
        for i, (t, sd, px, sz, mk, oid, lv) in enumerate(rows)
    ]
    path_out = np.column_stack((ts, lots)).tolist()
    return our, path_out, min(0, int(lots.min())), max(0, int(lots.max()))


def run_fast_backtest(
    path: str,
    params: Any = None,
    *,
    params_source: str = "given",
    latency_ms: float = 0.0,
    paper: Any = None,
    progress: Callable[[int, int], None] | None = None,
    symbol: str | None = None,
    keep_fills: list | None = None,
    recorded_changes: bool | None = None,
    markouts: Any = None,
    latency: Any = None,
    queue: str | None = None,
    use_cache: bool = True,
    warn: Callable[[str], None] | None = None,
) -> Any:
    """The backtest of `lobterm.backtest.reference.run_backtest`, on the fast path. Raises
    `FastPathUnsupported` for what it does not do (see the module docstring), among which a session's
    recorded live parameter changes when they are to apply (`recorded_changes`, as in `run_backtest`).
    `keep_fills`: a list that receives our fills as `Fill` events. `use_cache`: read the session's decoded
    rows from lobterm/backtest/cache.py's cache (written on the first run), in chunks; `warn` gets its
    one-line notices (default stderr)."""
    from lobterm.backtest import fastkernel as fk
    from lobterm.backtest.cache import market_rows, param_changes, run_kernel_chunked
    from lobterm.backtest.fastmarkouts import bulk_markouts, markouts_from_rows
    from lobterm.backtest.models import LatencyModel, apply_models, session_latency
    from lobterm.backtest.reference import recorded_param_changes, resolve_params, source_with_changes
    from lobterm.backtest.result import FEE_SCALE, BacktestResult, plain, quote_decimals
    from lobterm.recording.player import _own_in_book, paper_config_from
    from lobterm.trading.inventory import Inventory, TopOfBook, to_quote
    from lobterm.trading.markouts import markout_text

    if latency is None:
        latency = LatencyModel.constant(latency_ms)
    latency_ms = latency.single_ms
    with SessionReader(path) as reader:
        first_ts, last_ts = reader.time_range()
        if first_ts is None or last_ts is None:
            raise SessionError(path, "the session has no events: nothing to backtest")
        if recorded_changes is None:
            recorded_changes = params is None
        if params is None:
            params, params_source = resolve_params(reader.config.get("mm"), None)
        rec_latency = session_latency(reader, latency, symbol)
        pcfg = apply_models(
            paper or paper_config_from(reader.config, reader.venues), latency, queue, rec_latency
        )
        why = fast_path_refusal(params, paper=pcfg, latency=latency)
        if why is not None:
            raise FastPathUnsupported(why)
        instruments = reader.instruments()
        if not instruments:
            raise SessionError(path, "the header lists no instrument: nothing to backtest")
        venue_specs = {v.get("name"): v for v in reader.venues if isinstance(v, dict)}
        keys = [k for k in instruments if k[0] in venue_specs]
        if not keys:
            raise SessionError(path, "the header lists no venue with an instrument: nothing to replay")
        if symbol is not None:
            keys = [k for k in keys if k[1] == symbol]
            if not keys:
                raise SessionError(path, f"the session has no market {symbol!r}")
        venue, sym = keys[0]
        inst = instruments[(venue, sym)]
        changes = param_changes(
            reader, venue, sym, _own_in_book(venue_specs[venue]), recorded_param_changes, use_cache=use_cache
        )
        if changes and recorded_changes:
            # The kernel takes one parameter set for the whole run (its book and order slots live inside
            # one numba call); changing them mid-run is the reference path's job.
            n = len(changes)
            raise FastPathUnsupported(
                f"the session records {n} live market maker parameter change{'s' if n != 1 else ''}, "
                "which the fast path does not apply: running the reference path, which applies them at "
                "their recorded times (--config runs the given parameters from the start)"
            )
        params_source = source_with_changes(params_source, changes, False)
        compile_s = warm_up()
        t0 = time.perf_counter()
        data = market_rows(
            reader,
            venue,
            sym,
            _own_in_book(venue_specs[venue]),
            progress,
            use_cache=use_cache,
            warn=warn,
            decode=decode_market,
        )
    if data.hi - data.lo > MAX_SPAN_TICKS:
        raise FastPathUnsupported(
            f"prices span {data.hi - data.lo:,} ticks, more than the fast path's {MAX_SPAN_TICKS:,}"
        )
    ip, fp, sizes = _kernel_inputs(params, inst, None, pcfg)
    t1 = time.perf_counter()
    fills, S, _slots = run_kernel_chunked(data, ip, fp, sizes, last_ts, error=FastPathUnsupported)
    kernel_s = time.perf_counter() - t1
    # Money: the Inventory's own books, filled from integer columns (see `book_fills`).
    inv = Inventory({(venue, sym): inst})
    pos = inv.position(venue, sym)
    our_fills, path_out, pos_min, pos_max = book_fills(
        inv, venue, sym, fills, pcfg.maker_fee_ppm, pcfg.taker_fee_ppm
    )
    if keep_fills is not None:
        keep_fills.extend(our_fills)
    wall = time.perf_counter() - t0
    n = data.events
    lo = data.lo
    bid = int(S[fk.S_BID]) + lo if S[fk.S_BID] >= 0 else None
    ask = int(S[fk.S_ASK]) + lo if S[fk.S_ASK] <= data.hi - lo else None
    last = int(S[fk.S_LAST_TRADE]) or None
    pnl = inv.pnl(venue, sym, TopOfBook(bid, ask, last)).in_quote(inst)
    t2 = time.perf_counter()
    cols = (fills[:, 0], fills[:, 1], fills[:, 2], fills[:, 3], pos.fees) if our_fills else None
    engine = bulk_markouts(data, venue, sym, our_fills, markouts, columns=cols)
    if engine is None:  # amounts beyond int64 arithmetic: one call per change
        engine = markouts_from_rows(data, venue, sym, our_fills, markouts, fallback=fast_markouts)
    engine.advance(last_ts + 1)
    markout_summary = engine.summary(inst, pnl.net, last_ts)
    markout_s = time.perf_counter() - t2
    fmt = inst.format_size
    span = max(1, last_ts - first_ts)
    if progress is not None:
        progress(n, n)
    return BacktestResult(
        path=str(path),
        venue=venue,
        symbol=sym,
        params={f.name: plain(getattr(params, f.name)) for f in fields(params)},
        params_source=params_source,
        latency_ms=latency_ms,
        events=n,
        wall_seconds=wall,
        events_per_s=n / max(wall, 1e-9),
        replay_seconds=(last_ts - first_ts) / 1e9,
        quotes_sent=int(S[fk.S_QUOTES_SENT]),
        amends_sent=int(S[fk.S_AMENDS_SENT]),
        cancels_sent=int(S[fk.S_CANCELS_SENT]),
        fills=pos.fills,
        fills_by_rule={
            "taker": int(S[fk.S_RULE_TAKER]),
            "queue": int(S[fk.S_RULE_QUEUE]),
            "through": int(S[fk.S_RULE_THROUGH]),
            "cross": int(S[fk.S_RULE_CROSS]),
        },
        buy_volume=f"{fmt(pos.bought)} {inst.base}",
        sell_volume=f"{fmt(pos.sold)} {inst.base}",
        volume=f"{fmt(pos.bought + pos.sold)} {inst.base}",
        realized_pnl=str(pnl.realized),
        unrealized_pnl=str(pnl.unrealized),
        fees=str(pnl.fees),
        net_pnl=str(pnl.net),
        position_min=f"{fmt(pos_min)} {inst.base}",
        position_max=f"{fmt(pos_max)} {inst.base}",
        position_final=f"{fmt(pos.lots)} {inst.base}",
        max_drawdown=str(to_quote(inst, Fraction(int(S[fk.S_MAX_DD]), 2 * FEE_SCALE))),
        quote_currency=inst.quote,
        quote_decimals=quote_decimals(inst),
        time_quoted_pct=round(100.0 * int(S[fk.S_QUOTED_NS]) / span, 2),
        risk_rejects={"self_trade": int(S[fk.S_RISK_SELF_TRADE])} if S[fk.S_RISK_SELF_TRADE] else {},
        subscriber_errors=0,
        inventory_path=path_out,
        engine="fast",
        compile_seconds=round(compile_s, 3),
        decode_seconds=round(data.decode_seconds, 3),
        kernel_seconds=round(kernel_s, 4),
        kernel_events_per_s=round(n / max(kernel_s, 1e-9)),
        markouts=markout_summary,
        markout_line=markout_text(engine, markout_summary, quote_decimals(inst)),
        markout_seconds=round(markout_s, 3),
        latency=latency.text(rec_latency),
        queue_model=pcfg.cancel_model,
    )

"""The fast path's markouts with the book walk in numba: only what the markout engine reads goes to Python.

`lobterm.backtest.fast.fast_markouts` walks every decoded row in Python through an `L2Book` to find
the top of the book and feeds the `MarkoutEngine` each change of it, each trade and each of our fills
(in time order). Most rows change nothing the engine sees; walking them in Python was most of a fast
backtest's time. Here numba walks the rows (chunk by chunk, the book in dense arrays over the
session's price range, the same rules as `L2Book.apply_level` and the refused-snapshot rule of
`fast_markouts`) and emits only:

- a top-of-book change (bid price, bid size, ask price, ask size; -1 and 0 for an empty side),
- a trade (aggressor, price, size),
- a time mark where the timestamp changes (our fills are delivered before the first row at or after
  their time, as `fast_markouts` does),

and Python feeds those to the same `MarkoutEngine` calls in the same order: the markouts are exactly
those of `fast_markouts` (tests/integration/test_backtest_cache.py compares them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from itertools import chain
from typing import Any

import numpy as np
from numba import njit

from lobterm.backtest.fastkernel import (
    C_KIND,
    C_PRICE,
    C_SIDE,
    C_SIZE,
    C_TS,
    K_DELTA,
    K_LEVEL,
    K_SNAP,
    K_TRADE,
)

__all__ = ["bulk_markouts", "flush", "markouts_from_rows", "new_walk", "walk"]

E_TOP, E_TRADE, E_TIME = 0, 1, 2
BUY_SIDE = 0  # lobterm.engine.events.BUY
BASELINE_SOURCE = "market"  # lobterm.trading.markouts.BASELINE
_MAX = 10**15
# walk state (int64): best bid index, best ask index, snapshot levels left, last top (4), have top, last ts,
# have ts, bad price, a top change not yet written (for the timestamp W_TS)
W_BB, W_BA, W_SNAP, W_TB, W_TBS, W_TA, W_TAS, W_HAVE, W_TS, W_HAVE_TS, W_BAD, W_PEND = range(12)
N_W = 12


def new_walk(n_levels: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(bids, asks, state) for `walk`, empty."""
    w = np.zeros(N_W, dtype=np.int64)
    w[W_BB] = -1
    w[W_BA] = n_levels
    return np.zeros(n_levels, dtype=np.int64), np.zeros(n_levels, dtype=np.int64), w


@njit(cache=True)
def walk(rows, lo, bids, asks, w, out):
    """Walk one chunk of rows; write the events (kind, ts, a, b, c, d) to `out` (at least as many rows
    as `rows`... times two); returns how many. w[W_BAD] = 1 if a price fell outside the arrays."""
    n_levels = bids.shape[0]
    k = 0
    for i in range(rows.shape[0]):
        kind = rows[i, C_KIND]
        ts = rows[i, C_TS]
        if w[W_HAVE_TS] == 0 or ts != w[W_TS]:
            if w[W_PEND] == 1:
                k = _put_top(w, out, k)
            w[W_HAVE_TS] = 1
            w[W_TS] = ts
            out[k, 0] = E_TIME
            out[k, 1] = ts
            k += 1
        if kind == K_DELTA or kind == K_LEVEL:
            if kind == K_LEVEL:
                if w[W_SNAP] <= 0:
                    continue  # the levels of a refused snapshot
                w[W_SNAP] -= 1
            side = rows[i, C_SIDE]
            price = rows[i, C_PRICE]
            size = rows[i, C_SIZE]
            if (side != 0 and side != 1) or not (0 < price <= _MAX) or not (0 <= size <= _MAX):
                continue  # L2Book.apply_level refuses it, the book unchanged
            idx = price - lo
            if idx < 0 or idx >= n_levels:
                w[W_BAD] = 1
                return k
            if side == 0:
                bids[idx] = size
                if size > 0:
                    if idx > w[W_BB]:
                        w[W_BB] = idx
                elif idx == w[W_BB]:
                    j = idx - 1
                    while j >= 0 and bids[j] == 0:
                        j -= 1
                    w[W_BB] = j
            else:
                asks[idx] = size
                if size > 0:
                    if idx < w[W_BA]:
                        w[W_BA] = idx
                elif idx == w[W_BA]:
                    j = idx + 1
                    while j < n_levels and asks[j] == 0:
                        j += 1
                    w[W_BA] = j
        elif kind == K_SNAP:
            w[W_SNAP] = rows[i, C_SIZE]
            if rows[i, C_SIZE] >= 0:
                bids[:] = 0
                asks[:] = 0
                w[W_BB] = -1
                w[W_BA] = n_levels
            continue
        elif kind == K_TRADE:
            if rows[i, C_PRICE] > 0 and rows[i, C_SIZE] > 0:
                out[k, 0] = E_TRADE
                out[k, 1] = ts
                out[k, 2] = rows[i, C_SIDE]
                out[k, 3] = rows[i, C_PRICE]
                out[k, 4] = rows[i, C_SIZE]
                k += 1
            continue
        else:
            continue
        bb, ba = w[W_BB], w[W_BA]
        tb = bb + lo if bb >= 0 else -1
        tbs = bids[bb] if bb >= 0 else 0
        ta = ba + lo if ba < n_levels else -1
        tas = asks[ba] if ba < n_levels else 0
        if w[W_HAVE] == 1 and tb == w[W_TB] and tbs == w[W_TBS] and ta == w[W_TA] and tas == w[W_TAS]:
            continue
        w[W_HAVE] = 1
        w[W_TB] = tb
        w[W_TBS] = tbs
        w[W_TA] = ta
        w[W_TAS] = tas
        w[W_PEND] = 1  # written once, at the timestamp's last change (see `_put_top`)
    return k


@njit(cache=True)
def _put_top(w, out, k):
    """Write the top of the book of timestamp w[W_TS] (its last change). The markout engine reads a
    timestamp's top changes only through their last one: a fill or a trade at that timestamp is marked
    against the mid before it (`before2`, the last top of an earlier timestamp), and a horizon settles at
    the first input stamped later, against the top then. So one `on_book` a timestamp, after its
    trades, leaves the engine as every change would (2-3x fewer calls on a sim session)."""
    out[k, 0] = E_TOP
    out[k, 1] = w[W_TS]
    out[k, 2] = w[W_TB]
    out[k, 3] = w[W_TBS]
    out[k, 4] = w[W_TA]
    out[k, 5] = w[W_TAS]
    w[W_PEND] = 0
    return k + 1


@njit(cache=True)
def flush(w, out):
    """Write the last timestamp's pending top (after the last chunk); returns how many rows (0 or 1)."""
    if w[W_PEND] == 1:
        return _put_top(w, out, 0)
    return 0


class _OutOfRange(Exception):
    pass


def _events(chunks: Iterable[np.ndarray], lo: int, hi: int) -> Iterator[list]:
    """The walk's events, one chunk at a time (lists of rows). Raises _OutOfRange if a price falls
    outside [lo, hi]."""
    bids, asks, w = new_walk(hi - lo + 1)
    for c in chunks:
        out = np.zeros((2 * c.shape[0] + 1, 6), dtype=np.int64)
        k = walk(c, np.int64(lo), bids, asks, w, out)
        if w[W_BAD]:
            raise _OutOfRange
        yield out[:k].tolist()
    out = np.zeros((1, 6), dtype=np.int64)
    yield out[: flush(w, out)].tolist()


def markouts_from_rows(
    src: Any,
    venue: str,
    symbol: str,
    fills: list,
    config: Any = None,
    *,
    fallback: Callable[..., Any] | None = None,
) -> Any:
    """`fast_markouts(src's rows, ...)` with the book walk in numba (see the module docstring). `src`:
    lobterm/backtest/cache.py's rows (`chunks()`, `lo`, `hi`). `fallback`: lobterm.backtest.fast's
    `fast_markouts`, run instead should a price fall outside the rows' bounds (it cannot, for bounds
    computed from the rows; the fast path passes it, this module does not import it)."""
    from lobterm.engine.events import Trade
    from lobterm.trading.markouts import MarkoutEngine

    engine = MarkoutEngine(config)
    on_book, on_trade, on_fill = engine.on_book, engine.on_trade, engine.on_fill
    fi, nf = 0, len(fills)
    try:
        for kind, ts, a, b, c, d in chain.from_iterable(_events(src.chunks(), src.lo, src.hi)):
            while fi < nf and fills[fi].ts <= ts:
                on_fill(fills[fi], "mm")
                fi += 1
            if kind == E_TOP:
                on_book(venue, symbol, ts, None if a < 0 else a, b, None if c < 0 else c, d)
            elif kind == E_TRADE:
                on_trade(Trade(ts, venue, symbol, b, c, a, 0))
    except _OutOfRange:  # not for rows whose bounds were computed from them: the Python walk, anew
        if fallback is None:
            raise ValueError("a price outside the rows' bounds: pass the Python walk as fallback") from None
        return fallback(src.chunks(), venue, symbol, fills, config)
    while fi < nf:
        on_fill(fills[fi], "mm")
        fi += 1
    return engine


def _walk_arrays(src: Any) -> np.ndarray:
    """The walk's top changes and trades over `src`'s chunks, one int64 array (kind, ts, a, b, c, d): about
    one row per timestamp and one per trade (2.5 MB a 1,000 s sim session), kept whole. Raises
    _OutOfRange if a price falls outside [lo, hi]."""
    lo, hi = src.lo, src.hi
    bids, asks, w = new_walk(hi - lo + 1)
    parts = []
    for c in src.chunks():
        out = np.zeros((2 * c.shape[0] + 1, 6), dtype=np.int64)
        k = walk(c, np.int64(lo), bids, asks, w, out)
        if w[W_BAD]:
            raise _OutOfRange
        got = out[:k]
        parts.append(got[got[:, 0] != E_TIME])  # the time marks are for the Python feed only
    out = np.zeros((1, 6), dtype=np.int64)
    parts.append(out[: flush(w, out)])
    return np.concatenate(parts) if parts else np.zeros((0, 6), dtype=np.int64)


_I64_SAFE = float(2**62)


def _exact_sum(x: np.ndarray) -> int:
    """The exact sum of int64 values (Python ints where the int64 sum could overflow)."""
    if x.size == 0:
        return 0
    if float(np.abs(x.astype(np.float64)).sum()) < _I64_SAFE:
        return int(x.sum())
    return sum(x.tolist())


def bulk_markouts(
    src: Any, venue: str, symbol: str, fills: list, config: Any = None, *, columns: tuple | None = None
) -> Any:
    """`markouts_from_rows` in bulk: the same `MarkoutEngine` state (every sum, bucket, histogram,
    toxic fill and pending horizon) computed with numpy from the walk's arrays instead of one Python
    call per top-of-book change, trade and horizon. Returns None where it does not apply (a price or
    an amount too large for int64 arithmetic): the caller then runs `markouts_from_rows`.

    Why it is the same: the engine settles a horizon h of an input stamped t at the first input stamped
    after t + h, against the top in effect then, which is the top after every change stamped <= t + h;
    a fill or trade stamped t is marked against the top after every change stamped < t (`before2`). Both
    are a binary search in the walk's top changes (one per timestamp, see `_put_top`). Horizons that no
    input settles stay pending, as `_Pending`s in the engine's queues, for the caller's `advance`.
    tests/integration/test_backtest_cache.py compares the whole engine state with the Python walk's.
    `columns`: (ts, side, price, size, total fee) of `fills` where the caller has them (int64 arrays and
    an int), instead of reading them from the Fill objects."""
    from fractions import Fraction

    from lobterm.trading.markouts import MAX_DEPTH, MICRO, Bucket, MarkoutEngine, ToxicFill, _dec, _Pending

    engine = MarkoutEngine(config)
    try:
        ev = _walk_arrays(src)
    except _OutOfRange:
        return None
    kinds = ev[:, 0]
    tops = ev[kinds == E_TOP]
    trades = ev[kinds == E_TRADE]
    nf = len(fills)
    if columns is None:
        f_ts = np.fromiter((f.ts for f in fills), dtype=np.int64, count=nf)
        f_side = np.fromiter((f.side for f in fills), dtype=np.int64, count=nf)
        f_price = np.fromiter((f.price for f in fills), dtype=np.int64, count=nf)
        f_size = np.fromiter((f.size for f in fills), dtype=np.int64, count=nf)
        fee_total = sum(f.fee for f in fills)
    else:
        f_ts, f_side, f_price, f_size, fee_total = columns
    if nf and (int(f_price.min()) <= 0 or int(f_size.min()) <= 0 or bool(np.any(np.diff(f_ts) < 0))):
        return None  # the engine's no_mid rule for such fills, or fills out of time order: not in bulk
    firsts = [int(a[0]) for a in (tops[:, 1], trades[:, 1], f_ts) if a.size]
    if not firsts:
        return engine
    lasts = [int(a.max()) for a in (tops[:, 1], trades[:, 1], f_ts) if a.size]
    engine.first_ts, engine.last_ts = min(firsts), max(lasts)
    end = engine.last_ts  # a horizon settles iff some input is stamped after it is due
    m = engine._market(venue, symbol)  # noqa: SLF001
    # the top after each change: mid (half ticks), microprice (millionths of a tick), valid (two-sided)
    t_ts = tops[:, 1]
    bid, bsz, ask, asz = tops[:, 2], tops[:, 3], tops[:, 4], tops[:, 5]
    valid = (bid >= 0) & (ask >= 0)
    if tops.size:
        p_max = float(max(bid.max(), ask.max()))
        z_max = float(max(bsz.max(), asz.max()))
        if p_max * z_max * 2 * MICRO >= _I64_SAFE:
            return None
    mid2 = np.where(valid, bid + ask, 0)
    den = np.where(valid & (bsz > 0) & (asz > 0), bsz + asz, 0)
    num = (bid * asz + ask * bsz) * MICRO
    safe_den = np.where(den > 0, den, 1)
    q, r = np.divmod(num, safe_den)
    q = q + ((2 * r > safe_den) | ((2 * r == safe_den) & ((q & 1) == 1)))
    micro = np.where(den > 0, q, mid2 * MICRO // 2)
    if t_ts.size:
        last = t_ts.size - 1
        m.book_ts = int(t_ts[last])
        m.mid2 = int(mid2[last]) if valid[last] else None
        m.micro = int(micro[last]) if valid[last] else None
        m.before2 = (int(mid2[last - 1]) if valid[last - 1] else None) if last > 0 else None

    def mid_before(ts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(mid2, has mid) in effect before the changes stamped `ts`."""
        i = np.searchsorted(t_ts, ts, side="left") - 1
        ok = i >= 0
        ok[ok] = valid[i[ok]]
        return np.where(ok, mid2[np.maximum(i, 0)], 0), ok

    # our fills: counts, fees, spread captured, levels
    engine.fills = nf
    engine.fees = fee_total
    f_mid, f_ok = mid_before(f_ts)
    engine.no_mid = int(nf - f_ok.sum())
    f_sign = np.where(f_side == BUY_SIDE, 1, -1)
    engine.spread2 = _exact_sum((f_sign * (f_mid - 2 * f_price) * f_size)[f_ok])
    if f_ok.any():
        engine._sources.add("mm")  # noqa: SLF001
    depth = np.abs(f_mid - 2 * f_price) // 2
    # items: ours (with a mid) then the baseline's, each in input order; a stable sort by time gives the
    # engine's queue order (fills are delivered before the rows stamped at or after them)
    fi = np.nonzero(f_ok)[0]
    if engine.config.baseline and trades.size:
        b_mid, b_ok = mid_before(trades[:, 1])
        ti = np.nonzero(b_ok)[0]
    else:
        b_mid, ti = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    i_ts = np.concatenate([f_ts[fi], trades[ti, 1]])
    i_sign = np.concatenate([f_sign[fi], np.where(trades[ti, 2] == BUY_SIDE, -1, 1)])
    i_price = np.concatenate([f_price[fi], trades[ti, 3]])
    i_size = np.concatenate([f_size[fi], trades[ti, 4]])
    i_mid = np.concatenate([f_mid[fi], b_mid[ti]])
    ours = np.concatenate([np.ones(fi.size, dtype=bool), np.zeros(ti.size, dtype=bool)])
    order = np.argsort(i_ts, kind="stable")
    i_ts, i_sign, i_price, i_size, i_mid, ours = (
        a[order] for a in (i_ts, i_sign, i_price, i_size, i_mid, ours)
    )
    src_index = np.concatenate([fi, -1 - ti])[order]  # fill index, or -1 - trade index
    level_of = np.where(depth >= MAX_DEPTH, MAX_DEPTH, depth)
    if level_of.size:
        i_level = np.where(ours, level_of[np.maximum(src_index, 0)], -1)
    else:  # no fill of ours with a mid (a run that never filled): only the baseline's trades
        i_level = np.full(src_index.size, -1, dtype=np.int64)
    notional = i_price * i_size
    # every product below stays within int64: |a mid or price| * MICRO * size, and the toxic test's terms
    tp, tq = engine._toxic_bps.numerator, engine._toxic_bps.denominator  # noqa: SLF001
    top_max = float(np.abs(tops[:, 2:5:2]).max()) if tops.size else 0.0
    px_max = max(top_max, float(i_price.max()) if i_price.size else 0.0)
    size_max = float(i_size.max()) if i_size.size else 0.0
    span = 4 * px_max * size_max  # |mid2 - 2 * price| * size and 2 * notional are under it
    if span * MICRO >= _I64_SAFE or span * 10_000 * tq >= _I64_SAFE or span * abs(tp) >= _I64_SAFE:
        return None
    n_h = len(engine.horizons_ns)
    groups: list[tuple[tuple[str, str], np.ndarray]] = []
    if fi.size:
        groups.append((("all", "all"), ours))
        groups.append((("source", "mm"), ours))
        groups.append((("side", "buy"), ours & (i_sign > 0)))
        groups.append((("side", "sell"), ours & (i_sign < 0)))
        for lv in np.unique(i_level[ours]).tolist():
            name = f"{MAX_DEPTH}+" if lv >= MAX_DEPTH else str(lv)
            groups.append((("level", name), ours & (i_level == lv)))
    if ti.size:
        groups.append((("baseline", BASELINE_SOURCE), ~ours))
    pending: list[np.ndarray] = []
    for h_i, h in enumerate(engine.horizons_ns):
        due = i_ts + h
        settled = end > due
        s = np.searchsorted(t_ts, due, side="right") - 1
        booked = settled & (s >= 0)
        booked[booked] = valid[s[booked]]
        pending.append(~settled)
        sb = np.maximum(s, 0)
        mk2 = i_sign * (mid2[sb] - 2 * i_price) * i_size
        mv2 = i_sign * (mid2[sb] - i_mid) * i_size
        mic = i_sign * (micro[sb] - i_price * MICRO) * i_size
        for key, sel in groups:
            use = booked & sel
            n = int(use.sum())
            if not n:
                continue
            b = engine.buckets.get(key)
            if b is None:
                b = engine.buckets[key] = [Bucket() for _ in range(n_h)]
            bk = b[h_i]
            bk.fills += n
            bk.lots += _exact_sum(i_size[use])
            bk.notional += _exact_sum(notional[use])
            bk.markout2 += _exact_sum(mk2[use])
            bk.move2 += _exact_sum(mv2[use])
            bk.micro += _exact_sum(mic[use])
        mine = booked & ours
        if h_i == engine.adverse_index:
            engine.adverse2 += _exact_sum(mv2[mine])
            values, counts = np.unique(mk2[mine], return_counts=True)
            for v, c in zip(values.tolist(), counts.tolist(), strict=True):
                engine.loss_hist.add(v, c)
        if h_i == 0:
            # markout2 * 10_000 / (2 * notional) < p / q  <=>  markout2 * 10_000 * q < 2 * notional * p
            tox = np.nonzero(mine & (mk2 * 10_000 * tq < 2 * notional * tp))[0]
            engine.toxic = int(tox.size)
            ids = [fills[j].trade_id for j in src_index[tox].tolist()]
            recent = engine.recent_toxic
            keep: list[int] = []
            for j, tid in zip(tox.tolist(), ids, strict=True):
                if len(keep) == recent.maxlen:
                    engine.toxic_trade_ids.discard(fills[int(src_index[keep.pop(0)])].trade_id)
                keep.append(j)
                engine.toxic_trade_ids.add(tid)
            for j in keep:
                size, price = int(i_size[j]), int(i_price[j])
                recent.append(
                    ToxicFill(
                        int(i_ts[j]),
                        venue,
                        symbol,
                        BUY_SIDE if i_sign[j] > 0 else 1,
                        price,
                        size,
                        _dec(Fraction(int(mk2[j]) * 10_000, 2 * price * size), 2),
                        fills[int(src_index[j])].trade_id,
                    )
                )
    # what no input settled: pending, in queue order, for the caller's `advance`
    any_pending = np.nonzero(np.logical_or.reduce(pending))[0] if pending else np.zeros(0, dtype=np.int64)
    items: dict[int, _Pending] = {}
    for j in any_pending.tolist():
        k = int(src_index[j])
        if k >= 0:
            lv = int(i_level[j])
            keys: tuple[tuple[str, str], ...] = (
                ("all", "all"),
                ("source", "mm"),
                ("side", "buy" if i_sign[j] > 0 else "sell"),
                ("level", f"{MAX_DEPTH}+" if lv >= MAX_DEPTH else str(lv)),
            )
            tid = fills[k].trade_id
        else:
            keys, tid = (("baseline", BASELINE_SOURCE),), -1
        items[j] = _Pending(
            int(i_ts[j]), int(i_sign[j]), int(i_price[j]), int(i_size[j]), int(i_mid[j]), keys, tid
        )
    for h_i in range(n_h):
        m.pending[h_i].extend(items[j] for j in np.nonzero(pending[h_i])[0].tolist())
    engine.pending_count = int(pending[-1].sum()) if pending else 0
    return engine

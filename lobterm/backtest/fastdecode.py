"""The fast path's decoder: session event bodies (msgpack) to fastkernel rows, in numba.

Event bodies are msgspec's array-like, tagged encoding of lobterm.engine.events
(`["BookDelta", ts, venue, symbol, seq, side, price, size]`, ...). Decoding them into Python objects and
reading their fields back costs about 2 µs an event here; this parser reads the few shapes the
backtest needs straight from the bytes of a batch of bodies (joined) into the int64 rows of
lobterm/backtest/fastkernel.py, and keeps our recorded resting orders (`OwnRestingBook`'s rules:
lobterm/venues/replay.py) to take them out of the book on the way.

It is strict: anything it does not expect (an unknown tag, a field count or type other than the
event's, a truncated body) makes it return an error, and the caller decodes that batch with msgspec
instead (lobterm/backtest/fast.py), which either reads it or names the corrupt event. The tests
check that both decoders give the same rows.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from lobterm.backtest.fastkernel import K_DELTA, K_LEVEL, K_SNAP, K_STATUS, K_TRADE

OK = 0
BAD = -1
_MAX = 10**15

# tags: (length, first byte) identify them among lobterm's events
T_DELTA, T_SNAP, T_TRADE, T_ACCEPTED, T_FILL, T_CANCELLED, T_AMENDED, T_REJECTED, T_DONE, T_STATUS, T_GAP = (
    range(11)
)
_NFIELDS = np.array([8, 7, 8, 10, 13, 8, 9, 7, 8, 5, 6], dtype=np.int64)  # array length with the tag


@njit(cache=True)
def _int(buf, pos):
    """(ok, value, next) for a msgpack int (or bool: 0/1)."""
    n = buf.shape[0]
    if pos >= n:
        return False, 0, pos
    b = np.int64(buf[pos])
    if b <= 0x7F:
        return True, b, pos + 1
    if b >= 0xE0:
        return True, b - 256, pos + 1
    if b == 0xC2:
        return True, np.int64(0), pos + 1
    if b == 0xC3:
        return True, np.int64(1), pos + 1
    if b == 0xCC or b == 0xD0:
        w = 1
    elif b == 0xCD or b == 0xD1:
        w = 2
    elif b == 0xCE or b == 0xD2:
        w = 4
    elif b == 0xCF or b == 0xD3:
        w = 8
    else:
        return False, 0, pos
    if pos + 1 + w > n:
        return False, 0, pos
    v = np.uint64(0)
    for k in range(w):
        v = (v << np.uint64(8)) | np.uint64(buf[pos + 1 + k])
    if b >= 0xD0:  # signed: sign-extend
        bits = 8 * w
        if w < 8 and (v >> np.uint64(bits - 1)) & np.uint64(1):
            return True, np.int64(v) - (np.int64(1) << bits), pos + 1 + w
        return True, np.int64(v), pos + 1 + w
    if w == 8 and v > np.uint64(9223372036854775807):
        return False, 0, pos
    return True, np.int64(v), pos + 1 + w


@njit(cache=True)
def _str(buf, pos):
    """(ok, start, length, next) for a msgpack str."""
    n = buf.shape[0]
    if pos >= n:
        return False, 0, 0, pos
    b = buf[pos]
    if 0xA0 <= b <= 0xBF:
        ln = np.int64(b - 0xA0)
        start = pos + 1
    elif b == 0xD9:
        if pos + 2 > n:
            return False, 0, 0, pos
        ln = np.int64(buf[pos + 1])
        start = pos + 2
    elif b == 0xDA:
        if pos + 3 > n:
            return False, 0, 0, pos
        ln = (np.int64(buf[pos + 1]) << 8) | np.int64(buf[pos + 2])
        start = pos + 3
    elif b == 0xDB:
        if pos + 5 > n:
            return False, 0, 0, pos
        ln = (
            (np.int64(buf[pos + 1]) << 24)
            | (np.int64(buf[pos + 2]) << 16)
            | (np.int64(buf[pos + 3]) << 8)
            | np.int64(buf[pos + 4])
        )
        start = pos + 5
    else:
        return False, 0, 0, pos
    if start + ln > n:
        return False, 0, 0, pos
    return True, start, ln, start + ln


@njit(cache=True)
def _array(buf, pos):
    """(ok, length, next) for a msgpack array header."""
    n = buf.shape[0]
    if pos >= n:
        return False, 0, pos
    b = buf[pos]
    if 0x90 <= b <= 0x9F:
        return True, np.int64(b - 0x90), pos + 1
    if b == 0xDC:
        if pos + 3 > n:
            return False, 0, pos
        return True, (np.int64(buf[pos + 1]) << 8) | np.int64(buf[pos + 2]), pos + 3
    if b == 0xDD:
        if pos + 5 > n:
            return False, 0, pos
        v = (
            (np.int64(buf[pos + 1]) << 24)
            | (np.int64(buf[pos + 2]) << 16)
            | (np.int64(buf[pos + 3]) << 8)
            | np.int64(buf[pos + 4])
        )
        return True, v, pos + 5
    return False, 0, pos


@njit(cache=True)
def _eq(buf, start, ln, want):
    if ln != want.shape[0]:
        return False
    for k in range(ln):
        if buf[start + k] != want[k]:
            return False
    return True


@njit(cache=True)
def _tag(buf, start, ln):
    c = buf[start]
    if ln == 9:
        return T_DELTA if c == 66 else (T_CANCELLED if c == 67 else -1)  # B, C
    if ln == 12:
        return T_SNAP
    if ln == 5:
        return T_TRADE
    if ln == 8:
        return T_ACCEPTED if c == 65 else (T_REJECTED if c == 82 else -1)  # A, R
    if ln == 4:
        return T_FILL if c == 70 else (T_DONE if c == 68 else -1)  # F, D
    if ln == 7:
        return T_AMENDED if c == 65 else (T_GAP if c == 66 else -1)
    if ln == 11:
        return T_STATUS
    return -1


# Our recorded resting orders, in two small open-addressing hash tables (numpy arrays, so that their
# state carries from one batch to the next without numba's typed containers, whose first use from
# Python costs half a second): `own` (price * 2 + side) -> lots; `orders` order id -> (side, price, lots).
EMPTY = np.iinfo(np.int64).min
TABLE_SIZE = 1 << 14  # entries per table; more than half full and the parser hands over to msgspec


def new_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(own keys, own values (n, 1), order keys, order values (n, 3)), empty."""
    return (
        np.full(TABLE_SIZE, EMPTY, dtype=np.int64),
        np.zeros((TABLE_SIZE, 1), dtype=np.int64),
        np.full(TABLE_SIZE, EMPTY, dtype=np.int64),
        np.zeros((TABLE_SIZE, 3), dtype=np.int64),
    )


@njit(cache=True)
def _home(keys, key):
    h = (key ^ (key >> 29)) * np.int64(0x9E3779B97F4A7C1)
    return (h ^ (h >> 32)) & (keys.shape[0] - 1)


@njit(cache=True)
def _find(keys, key):
    """The slot of `key`, or -1 - (the empty slot where it would go)."""
    mask = keys.shape[0] - 1
    i = _home(keys, key)
    while keys[i] != EMPTY:
        if keys[i] == key:
            return i
        i = (i + 1) & mask
    return -1 - i


@njit(cache=True)
def _delete(keys, vals, i):
    """Remove slot `i`, shifting the entries after it back (linear probing without tombstones)."""
    mask = keys.shape[0] - 1
    keys[i] = EMPTY
    j = i
    while True:
        j = (j + 1) & mask
        if keys[j] == EMPTY:
            return
        k = _home(keys, keys[j])
        if (i <= j and i < k <= j) or (i > j and (k > i or k <= j)):
            continue
        keys[i] = keys[j]
        vals[i, :] = vals[j, :]
        keys[j] = EMPTY
        i = j


@njit(cache=True)
def _count(keys):
    c = 0
    for k in keys:
        if k != EMPTY:
            c += 1
    return c


@njit(cache=True)
def _own_get(okeys, ovals, side, price):
    i = _find(okeys, price * 2 + side)
    return ovals[i, 0] if i >= 0 else 0


@njit(cache=True)
def _own_add(okeys, ovals, side, price, size):
    """Add `size` lots at (side, price); returns the change in the number of entries (-1, 0, 1)."""
    key = price * 2 + side
    i = _find(okeys, key)
    left = (ovals[i, 0] if i >= 0 else 0) + size
    if left > 0:
        ovals[-1 - i if i < 0 else i, 0] = left
        if i < 0:
            okeys[-1 - i] = key
            return 1
        return 0
    if i >= 0:
        _delete(okeys, ovals, i)
        return -1
    return 0


@njit(cache=True)
def _own_set(okeys, ovals, rkeys, rvals, slot, price, size):
    """Our order in `slot` now rests at `price` with `size` lots (0: gone); returns the change in the
    number of `own` entries."""
    side, old_price, old_size = rvals[slot, 0], rvals[slot, 1], rvals[slot, 2]
    d = _own_add(okeys, ovals, side, old_price, -old_size)
    if size <= 0:
        _delete(rkeys, rvals, slot)
        return d
    rvals[slot, 1] = price
    rvals[slot, 2] = size
    return d + _own_add(okeys, ovals, side, price, size)


@njit(cache=True)
def parse(buf, count, venue, symbol, own_in_book, okeys, ovals, rkeys, rvals, out, dry):
    """Parse `count` bodies from `buf`. `dry`: only count an upper bound of the rows (nothing changes).
    Otherwise write rows into `out` and follow our orders in the tables (see `new_tables`). Returns
    (status, rows, first ts, last ts)."""
    n_own = _count(okeys)
    n_ord = _count(rkeys)
    pos = 0
    r = 0
    first_ts = np.int64(0)
    last_ts = np.int64(0)
    vals = np.zeros(10, dtype=np.int64)
    for e in range(count):
        ok, n, pos = _array(buf, pos)
        if not ok or n < 2:
            return BAD, r, first_ts, last_ts
        ok, s0, sl, pos = _str(buf, pos)
        if not ok or sl == 0:
            return BAD, r, first_ts, last_ts
        tag = _tag(buf, s0, sl)
        if tag < 0 or n != _NFIELDS[tag]:
            return BAD, r, first_ts, last_ts
        ok, ts, pos = _int(buf, pos)
        if not ok:
            return BAD, r, first_ts, last_ts
        if e == 0:
            first_ts = ts
        last_ts = ts
        ok, v0, vl, pos = _str(buf, pos)
        if not ok:
            return BAD, r, first_ts, last_ts
        ours_venue = _eq(buf, v0, vl, venue)
        if tag == T_STATUS:
            ok, a0, al, pos = _str(buf, pos)
            if not ok:
                return BAD, r, first_ts, last_ts
            ok, _d0, _dl, pos = _str(buf, pos)
            if not ok:
                return BAD, r, first_ts, last_ts
            if ours_venue:
                if not dry:
                    up = al == 2 and buf[a0] == 117 and buf[a0 + 1] == 112  # "up"
                    out[r, 0] = K_STATUS
                    out[r, 1] = ts
                    out[r, 2] = 0
                    out[r, 3] = 0
                    out[r, 4] = 1 if up else 0
                    out[r, 5] = 0
                r += 1
            continue
        ok, y0, yl, pos = _str(buf, pos)
        if not ok:
            return BAD, r, first_ts, last_ts
        mine = ours_venue and _eq(buf, y0, yl, symbol)
        if tag == T_SNAP:
            ok, seq, pos = _int(buf, pos)
            if not ok:
                return BAD, r, first_ts, last_ts
            head = r
            if mine:
                r += 1
            nlev = 0
            garbage = False
            for sd in range(2):
                ok, m, pos = _array(buf, pos)
                if not ok:
                    return BAD, r, first_ts, last_ts
                for _ in range(m):
                    ok, two, pos = _array(buf, pos)
                    if not ok or two != 2:
                        return BAD, r, first_ts, last_ts
                    ok, p, pos = _int(buf, pos)
                    if not ok:
                        return BAD, r, first_ts, last_ts
                    ok, z, pos = _int(buf, pos)
                    if not ok:
                        return BAD, r, first_ts, last_ts
                    if not mine:
                        continue
                    if dry:
                        r += 1
                        continue
                    if own_in_book and n_own > 0:
                        z = z - _own_get(okeys, ovals, sd, p)
                        if z <= 0:
                            continue
                    if not (0 < p <= _MAX and 0 <= z <= _MAX):
                        garbage = True
                    out[r, 0] = K_LEVEL
                    out[r, 1] = ts
                    out[r, 2] = sd
                    out[r, 3] = p
                    out[r, 4] = z
                    out[r, 5] = 0
                    r += 1
                    nlev += 1
            if mine and not dry:
                out[head, 0] = K_SNAP
                out[head, 1] = ts
                out[head, 2] = 0
                out[head, 3] = 0
                out[head, 4] = -1 if garbage else nlev
                out[head, 5] = seq
                if garbage:
                    r = head + 1
            continue
        # the remaining events: integers and strings only; read them into a small array
        nv = n - 4
        for k in range(nv):
            b = buf[pos] if pos < buf.shape[0] else 0
            if (0xA0 <= b <= 0xBF) or b == 0xD9 or b == 0xDA or b == 0xDB:
                ok, _s0, _sl, pos = _str(buf, pos)
                vals[k] = -1
            else:
                ok, v, pos = _int(buf, pos)
                vals[k] = v
            if not ok:
                return BAD, r, first_ts, last_ts
        if not mine:
            continue
        if tag == T_DELTA:  # seq, side, price, size
            if not dry:
                side, price, size = vals[1], vals[2], vals[3]
                if (side != 0 and side != 1) or not (0 < price <= _MAX and 0 <= size <= _MAX):
                    side = -1
                elif own_in_book and n_own > 0:
                    ours = _own_get(okeys, ovals, side, price)
                    if ours > 0:
                        size = size - ours if size > ours else 0
                out[r, 0] = K_DELTA
                out[r, 1] = ts
                out[r, 2] = side
                out[r, 3] = price if side >= 0 else 0
                out[r, 4] = size if side >= 0 else 0
                out[r, 5] = vals[0]
            r += 1
        elif tag == T_TRADE:  # price, size, aggressor, trade_id
            if not (0 < vals[0] <= _MAX):
                continue
            if not dry:
                out[r, 0] = K_TRADE
                out[r, 1] = ts
                out[r, 2] = vals[2]
                out[r, 3] = vals[0]
                out[r, 4] = vals[1]
                out[r, 5] = 0
            r += 1
        elif tag == T_GAP:
            continue
        elif not dry:
            owner = vals[nv - 1]
            if owner != 1:  # OUR_OWNER
                continue
            oid = vals[0]
            slot = _find(rkeys, oid)
            if tag == T_ACCEPTED:  # order_id, side, price, size, order_type, owner
                if vals[2] > 0 and not (1 <= vals[4] <= 3) and slot < 0:
                    if 2 * (n_ord + 1) > rkeys.shape[0] or 2 * (n_own + 1) > okeys.shape[0]:
                        return BAD, r, first_ts, last_ts
                    slot = -1 - slot
                    rkeys[slot] = oid
                    rvals[slot, 0] = vals[1]
                    rvals[slot, 1] = vals[2]
                    rvals[slot, 2] = vals[3]
                    n_ord += 1
                    n_own += _own_add(okeys, ovals, vals[1], vals[2], vals[3])
                continue
            if slot < 0:
                continue
            if tag == T_FILL:  # order_id, side, price, size, leaves, ...
                price, size = rvals[slot, 1], vals[4]
            elif tag == T_CANCELLED:  # order_id, size, reason, owner
                price, size = rvals[slot, 1], rvals[slot, 2] - vals[1]
            elif tag == T_AMENDED:  # order_id, price, size, kept, owner
                if 2 * (n_own + 1) > okeys.shape[0]:
                    return BAD, r, first_ts, last_ts
                price, size = vals[1], vals[2]
            elif tag == T_DONE:
                price, size = rvals[slot, 1], 0
            else:
                continue
            if size <= 0:
                n_ord -= 1
            n_own += _own_set(okeys, ovals, rkeys, rvals, slot, price, size)
    if pos != buf.shape[0]:
        return BAD, r, first_ts, last_ts
    return OK, r, first_ts, last_ts

"""The backtest fast path's numba kernel: L2 book, ladder market maker and paper queue model over arrays.

`run(rows, ...)` walks one market's recorded data (decoded once into an int64 array by
lobterm/backtest/fast.py, our original orders already taken out of the L2 sizes) and does, with
plain arrays and no Python objects, what the reference backtest does with the kernel's objects:

- the L2 book: dense size arrays indexed by `price - lo` (the session's price range, known before the
  run), sequence-checked deltas (a gap invalidates the book until the next snapshot; stale and
  garbage deltas change nothing), snapshots;
- the paper desk's queue model, rule for rule as lobterm/trading/paper.py: a resting order joins
  behind the level's size; trades at our price eat the queue ahead first, then fill us; trades through
  our price fill us (everything ahead is gone); the book crossing our price fills us at our price as
  maker, up to the crossing size not already taken; level decreases that trades do not explain are
  cancels (conservative: behind us; probabilistic: the expected share ahead of us); latency on new
  orders, amends and cancels (in the order sent; a request due before the next batch arrives at its
  due time and the market maker reads its answers then, one by one in the bus's order, requoting on a
  fill or a done order unless a later one is queued, as market_maker.on_order_event; one due within a
  batch arrives with the batch's first event at or after it); post-only rejection; self-trade prevention (cancel resting); taker fills
  for a plain limit order that crosses;
- the market maker's ladder mode and its diff, as lobterm/trading/market_maker.py (`quote_ladder`,
  `diff_quotes`, the send order: cancels, amends away from the other side, amends towards it, news):
  it requotes once after each batch of same-timestamp events, then again while the answers to its
  requests include a fill or a done order (as the reference does once the bus queue is drained);
  the OMS's pre-trade `self_trade` rule (lobterm/trading/risk.py) on its news and amends: with
  latency, a requote can cross our own order still in flight or being amended, and the OMS refuses it
  before it leaves (Rejected, plus Done for a new order; the market maker backs off);
- the tracker: time quoted (both sides resting), max drawdown (net P&L marked to the mid at every fill
  and every trade).

Outputs: our fills (ts, side, price, size, maker, order id, leaves, rule) and counters. Money is not
computed here beyond the exact integer drawdown: P&L is rebuilt from the integer fills in Python with
lobterm.trading.inventory (the same code as the reference path).

Units: prices ticks, sizes lots, times ns, `ahead` in millionths of a lot (paper.QUEUE_SCALE).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# ---- row layout (int64 columns) -------------------------------------------------------------------
C_KIND, C_TS, C_SIDE, C_PRICE, C_SIZE, C_SEQ = 0, 1, 2, 3, 4, 5
N_COLS = 6
K_DELTA = 0  # side, price, size, seq (side -1: a garbage level, refused by the book)
K_TRADE = 1  # side = aggressor, price, size
K_SNAP = 2  # seq, size = number of K_LEVEL rows that follow (-1: a garbage snapshot, refused)
K_LEVEL = 3  # side, price, size: one level of the snapshot above
K_STATUS = 4  # size = 1 when the venue is up, 0 otherwise
# Scripted orders of ours, for the tests of the queue model (with the market maker off: P_MM_ON = 0):
K_ORDER = 5  # side, price, size, seq = 1 for post-only (0 plain limit); order ids 1, 2, 3... in row order
K_CANCEL = 6  # seq = the order id to cancel

# ---- parameters ----------------------------------------------------------------------------------
(
    P_LEVELS,
    P_STEP,
    P_SPREAD_TICKS,
    P_MIN_SPREAD,
    P_MAX_POS,
    P_TOL,
    P_MAX_AGE_NS,
    P_POST_ONLY,
    P_USE_AMEND,
    P_BACKOFF_NS,
    P_MIN_LOTS,
    P_MAX_LOTS,
    P_LATENCY_NS,
    P_QUEUE,
    P_MAKER_PPM,
    P_TAKER_PPM,
    P_MM_ON,
    P_CANCEL_LATENCY_NS,
    P_AMEND_LATENCY_NS,
    P_JITTER_NS,
    P_SEED,
    P_REC_NEW_N,
    P_REC_CANCEL_N,
    P_REC_AMEND_N,
) = range(24)
N_IPARAMS = 24  # P_REC_*_N: recorded latency samples per request type, in IP after N_IPARAMS
P_PROBABILISTIC = P_QUEUE  # the queue model family code (paper.QUEUE_FAMILIES); 0 risk-averse
PF_SPREAD_BPS, PF_SKEW, PF_SIZE_SKEW, PF_SIZE_TOL, PF_QUEUE_N = range(5)
N_FPARAMS = 5
Q_RISK_AVERSE, Q_POWER, Q_POWER2, Q_POWER3, Q_LOG, Q_LOG2 = range(6)  # paper.QUEUE_FAMILIES

# ---- order slots: the market maker's view (Q_*) and the desk's (D_*) of one of our orders ----------
(
    Q_OID,
    Q_SIDE,
    Q_STATE,
    Q_PRICE,
    Q_SIZE,
    Q_WPRICE,
    Q_WSIZE,
    Q_PLACED,
    D_STATE,
    D_PRICE,
    D_LEAVES,
    D_AHEAD,
    D_SEQ,
    D_FILLED,
    D_POST_ONLY,
) = range(15)
N_QFIELDS = 15
FREE, SENT, WORKING, AMENDING, CANCELLING = 0, 1, 2, 3, 4  # the market maker's quote states
D_NONE, D_INFLIGHT, D_RESTING, D_GONE = 0, 1, 2, 3  # the desk's

# ---- scalars -------------------------------------------------------------------------------------
(
    S_BID,
    S_ASK,
    S_VALID,
    S_SEQ,
    S_POS,
    S_CASH,
    S_FEES,
    S_NFILLS,
    S_NEXT_OID,
    S_REST_SEQ,
    S_DIRTY,
    S_BACKOFF_UNTIL,
    S_VENUE_UP,
    S_QUOTED_SINCE,
    S_QUOTED_NS,
    S_LIVE_BID,
    S_LIVE_ASK,
    S_PEAK_SET,
    S_PEAK_A,
    S_PEAK_F,
    S_MAX_DD,
    S_QUOTES_SENT,
    S_AMENDS_SENT,
    S_CANCELS_SENT,
    S_CYCLES,
    S_REJECTS,
    S_RULE_TAKER,
    S_RULE_QUEUE,
    S_RULE_THROUGH,
    S_RULE_CROSS,
    S_LAST_TRADE,
    S_HAVE_LADDER,
    S_REQ_HEAD,
    S_REQ_TAIL,
    S_RSP_N,
    S_LAST_DUE,
    S_PULLS,
    S_HOLDS,
    S_ERROR,
    S_BOOK_IGNORED,
    S_GAPS,
    S_FILLED_LOTS,
    S_LO,
    S_NSENT,
    S_IN_BID,
    S_IN_ASK,
    S_IN_POS,
    S_RISK_SELF_TRADE,
) = range(48)
N_SCALARS = 48
ERR_NONE, ERR_FILLS_FULL, ERR_SLOTS_FULL, ERR_REQUESTS_FULL = 0, 1, 2, 3

R_ACCEPTED, R_AMENDED, R_FILL, R_CANCELLED, R_REJECTED, R_DONE = 0, 1, 2, 3, 4, 5
REQ_NEW, REQ_CANCEL, REQ_AMEND = 0, 1, 2
RULE_TAKER, RULE_QUEUE, RULE_THROUGH, RULE_CROSS = 0, 1, 2, 3

QS = 1_000_000  # paper.QUEUE_SCALE
EPS = 1e-6  # market_maker._EPS
MAX_UNITS = 10**15

# fills: ts, side, price, size, maker, order id, leaves, rule
N_FILL_COLS = 8


# ---- the book ------------------------------------------------------------------------------------
@njit(cache=True)
def _level(bids, asks, side, idx):
    if idx < 0 or idx >= bids.shape[0]:
        return 0
    return bids[idx] if side == 0 else asks[idx]


@njit(cache=True)
def _set_level(bids, asks, S, side, idx, size):
    n = bids.shape[0]
    if side == 0:
        bids[idx] = size
        if size > 0:
            if idx > S[S_BID]:
                S[S_BID] = idx
        elif idx == S[S_BID]:
            i = idx - 1
            while i >= 0 and bids[i] == 0:
                i -= 1
            S[S_BID] = i
    else:
        asks[idx] = size
        if size > 0:
            if idx < S[S_ASK]:
                S[S_ASK] = idx
        elif idx == S[S_ASK]:
            i = idx + 1
            while i < n and asks[i] == 0:
                i += 1
            S[S_ASK] = i


# ---- our orders at the desk ----------------------------------------------------------------------
@njit(cache=True)
def _at_level(Q, side, price, out):
    """Our resting orders at (side, price) in time priority, into `out`; returns how many."""
    k = 0
    for s in range(Q.shape[0]):
        if Q[s, D_STATE] == D_RESTING and Q[s, Q_SIDE] == side and Q[s, D_PRICE] == price:
            # insertion by rest sequence
            j = k
            while j > 0 and Q[out[j - 1], D_SEQ] > Q[s, D_SEQ]:
                out[j] = out[j - 1]
                j -= 1
            out[j] = s
            k += 1
    return k


@njit(cache=True)
def _our_prices(Q, side, out):
    """Distinct prices of our resting orders on `side`, best first; returns how many."""
    k = 0
    for s in range(Q.shape[0]):
        if Q[s, D_STATE] == D_RESTING and Q[s, Q_SIDE] == side:
            p = Q[s, D_PRICE]
            dup = False
            for j in range(k):
                if out[j] == p:
                    dup = True
                    break
            if dup:
                continue
            j = k
            while j > 0 and ((out[j - 1] < p) if side == 0 else (out[j - 1] > p)):
                out[j] = out[j - 1]
                j -= 1
            out[j] = p
            k += 1
    return k


@njit(cache=True)
def _has_resting(Q, side, price):
    """Whether one of our orders rests at (side, price)."""
    for s in range(Q.shape[0]):
        if Q[s, D_STATE] == D_RESTING and Q[s, Q_SIDE] == side and Q[s, D_PRICE] == price:
            return True
    return False


@njit(cache=True)
def _any_resting(S, side):
    """Whether one of our orders rests on `side`: the count `_rest` / `_unrest` / `_fill` keep."""
    return S[S_LIVE_BID] > 0 if side == 0 else S[S_LIVE_ASK] > 0


@njit(cache=True)
def _respond(RSP, S, kind, slot, oid, price, size, flag):
    n = S[S_RSP_N]
    if n >= RSP.shape[0]:
        S[S_ERROR] = ERR_REQUESTS_FULL
        return
    RSP[n, 0] = kind
    RSP[n, 1] = slot
    RSP[n, 2] = oid
    RSP[n, 3] = price
    RSP[n, 4] = size
    RSP[n, 5] = flag
    S[S_RSP_N] = n + 1


@njit(cache=True)
def _quoted_update(S, ts):
    both = S[S_LIVE_BID] > 0 and S[S_LIVE_ASK] > 0
    if both and S[S_QUOTED_SINCE] < 0:
        S[S_QUOTED_SINCE] = ts
    elif not both and S[S_QUOTED_SINCE] >= 0:
        S[S_QUOTED_NS] += ts - S[S_QUOTED_SINCE]
        S[S_QUOTED_SINCE] = -1


@njit(cache=True)
def _live_delta(S, side, d, ts):
    if side == 0:
        S[S_LIVE_BID] += d
    else:
        S[S_LIVE_ASK] += d
    _quoted_update(S, ts)


@njit(cache=True)
def _rest(Q, S, bids, asks, s, ts):
    Q[s, D_AHEAD] = _level(bids, asks, Q[s, Q_SIDE], Q[s, D_PRICE] - S[S_LO]) * QS
    S[S_REST_SEQ] += 1
    Q[s, D_SEQ] = S[S_REST_SEQ]
    Q[s, D_STATE] = D_RESTING
    _live_delta(S, Q[s, Q_SIDE], 1, ts)


@njit(cache=True)
def _unrest(Q, S, traded, s, ts):
    side = Q[s, Q_SIDE]
    price = Q[s, D_PRICE]
    Q[s, D_STATE] = D_GONE
    _live_delta(S, side, -1, ts)
    if not _has_resting(Q, side, price):
        idx = price - S[S_LO]
        if 0 <= idx < traded.shape[1]:
            traded[side, idx] = 0


@njit(cache=True)
def _drop_filled(Q, S, traded, side, price):
    if not _has_resting(Q, side, price):
        idx = price - S[S_LO]
        if 0 <= idx < traded.shape[1]:
            traded[side, idx] = 0


@njit(cache=True)
def _sample(S, bids, asks, force):
    """Max drawdown of net P&L marked to the mid: net * 2 * 1e6 = A * 1e6 - 2 * fees with
    A = 2 * cash + position * (bid + ask), tracked as (A, fees) so that nothing overflows."""
    if S[S_NFILLS] == 0 and not force:
        return
    bi = S[S_BID]
    ai = S[S_ASK]
    if bi < 0 or ai >= bids.shape[0]:
        return
    lo = S[S_LO]
    a = 2 * S[S_CASH] + S[S_POS] * (bi + lo + ai + lo)
    f = S[S_FEES]
    if S[S_PEAK_SET] == 0:
        S[S_PEAK_SET] = 1
        S[S_PEAK_A] = a
        S[S_PEAK_F] = f
        return
    diff = (a - S[S_PEAK_A]) * QS - 2 * (f - S[S_PEAK_F])  # net - peak, in the same units
    if diff > 0:
        S[S_PEAK_A] = a
        S[S_PEAK_F] = f
    elif -diff > S[S_MAX_DD]:
        S[S_MAX_DD] = -diff


@njit(cache=True)
def _fill(Q, S, FO, RSP, bids, asks, IP, s, price, size, maker, rule, ts):
    Q[s, D_LEAVES] -= size
    Q[s, D_FILLED] += size
    n = S[S_NFILLS]
    if n >= FO.shape[0]:
        S[S_ERROR] = ERR_FILLS_FULL
        return
    side = Q[s, Q_SIDE]
    FO[n, 0] = ts
    FO[n, 1] = side
    FO[n, 2] = price
    FO[n, 3] = size
    FO[n, 4] = 1 if maker else 0
    FO[n, 5] = Q[s, Q_OID]
    FO[n, 6] = Q[s, D_LEAVES]
    FO[n, 7] = rule
    S[S_NFILLS] = n + 1
    S[S_FILLED_LOTS] += size
    S[S_RULE_TAKER + rule] += 1
    if side == 0:
        S[S_POS] += size
        S[S_CASH] -= price * size
    else:
        S[S_POS] -= size
        S[S_CASH] += price * size
    S[S_FEES] += price * size * (IP[P_MAKER_PPM] if maker else IP[P_TAKER_PPM])
    _respond(RSP, S, R_FILL, s, Q[s, Q_OID], price, size, Q[s, D_LEAVES])
    if Q[s, D_LEAVES] == 0:
        if Q[s, D_STATE] == D_RESTING:
            _live_delta(S, side, -1, ts)
        Q[s, D_STATE] = D_GONE
        _respond(RSP, S, R_DONE, s, Q[s, Q_OID], 0, 0, 0)
    _sample(S, bids, asks, False)


@njit(cache=True)
def _first_liquidity(bids, asks, taken, S, taker_side, limit, has_limit):
    """Index of the best external level an order of `taker_side` would meet with lots left to us, or -1."""
    n = bids.shape[0]
    lo = S[S_LO]
    if taker_side == 0:  # meets asks, ascending
        i = S[S_ASK]
        while i < n:
            if has_limit and i + lo > limit:
                return -1
            if asks[i] - taken[1, i] > 0:
                return i
            i += 1
    else:
        i = S[S_BID]
        while i >= 0:
            if has_limit and i + lo < limit:
                return -1
            if bids[i] - taken[0, i] > 0:
                return i
            i -= 1
    return -1


@njit(cache=True)
def _take(Q, S, FO, RSP, bids, asks, taken, IP, s, limit, ts):
    """Fill slot `s` as taker against the external levels, best first (paper._take)."""
    side = Q[s, Q_SIDE]
    ext = 1 - side
    n = bids.shape[0]
    lo = S[S_LO]
    i = S[S_ASK] if side == 0 else S[S_BID]
    while 0 <= i < n:
        px = i + lo
        if (side == 0 and px > limit) or (side == 1 and px < limit):
            return
        size = asks[i] if side == 0 else bids[i]
        avail = size - taken[ext, i]
        if avail > 0:
            leaves = Q[s, D_LEAVES]
            f = avail if avail < leaves else leaves
            taken[ext, i] += f
            _fill(Q, S, FO, RSP, bids, asks, IP, s, px, f, False, RULE_TAKER, ts)
            if Q[s, D_LEAVES] == 0:
                return
        i = i + 1 if side == 0 else i - 1


@njit(cache=True)
def _own_crossing(Q, side, limit):
    """True when one of our resting opposite orders is reached by an order of `side` at `limit`."""
    for s in range(Q.shape[0]):
        if Q[s, D_STATE] == D_RESTING and Q[s, Q_SIDE] == 1 - side:
            p = Q[s, D_PRICE]
            if (side == 0 and p <= limit) or (side == 1 and p >= limit):
                return True
    return False


@njit(cache=True)
def _stp_cancel_resting(Q, S, RSP, traded, side, limit, ts):
    for s in range(Q.shape[0]):
        if Q[s, D_STATE] == D_RESTING and Q[s, Q_SIDE] == 1 - side:
            p = Q[s, D_PRICE]
            if (side == 0 and p <= limit) or (side == 1 and p >= limit):
                _unrest(Q, S, traded, s, ts)
                _respond(RSP, S, R_CANCELLED, s, Q[s, Q_OID], 0, Q[s, D_LEAVES], 0)
                _respond(RSP, S, R_DONE, s, Q[s, Q_OID], 0, 0, 0)


@njit(cache=True)
def _apply_request(Q, S, FO, RSP, bids, asks, taken, traded, IP, r):
    ts, kind, s, oid, price, size = r[0], r[1], r[2], r[3], r[4], r[5]
    if kind == REQ_NEW:
        side = Q[s, Q_SIDE]
        if S[S_VALID] == 0:
            Q[s, D_STATE] = D_GONE
            S[S_REJECTS] += 1
            _respond(RSP, S, R_REJECTED, s, oid, 0, 0, 0)
            _respond(RSP, S, R_DONE, s, oid, 0, 0, 0)
            return
        crosses = _first_liquidity(bids, asks, taken, S, side, price, True) >= 0
        own = _own_crossing(Q, side, price)
        if Q[s, D_POST_ONLY] == 1 and (crosses or own):
            Q[s, D_STATE] = D_GONE
            S[S_REJECTS] += 1
            _respond(RSP, S, R_REJECTED, s, oid, 0, 0, 0)
            _respond(RSP, S, R_DONE, s, oid, 0, 0, 0)
            return
        Q[s, D_PRICE] = price
        Q[s, D_LEAVES] = size
        Q[s, D_FILLED] = 0
        Q[s, D_STATE] = D_NONE
        _respond(RSP, S, R_ACCEPTED, s, oid, price, size, 0)
        if own:
            _stp_cancel_resting(Q, S, RSP, traded, side, price, ts)
        if crosses:
            _take(Q, S, FO, RSP, bids, asks, taken, IP, s, price, ts)
            if Q[s, D_LEAVES] == 0:
                Q[s, D_STATE] = D_GONE
                return
        _rest(Q, S, bids, asks, s, ts)
        return
    if Q[s, Q_OID] != oid or Q[s, D_STATE] != D_RESTING:
        S[S_REJECTS] += 1
        _respond(RSP, S, R_REJECTED, s, oid, 0, 0, 0)  # no longer working
        return
    if kind == REQ_CANCEL:
        _unrest(Q, S, traded, s, ts)
        _respond(RSP, S, R_CANCELLED, s, oid, 0, Q[s, D_LEAVES], 0)
        _respond(RSP, S, R_DONE, s, oid, 0, 0, 0)
        return
    # amend: price/size -1 mean "unchanged"
    new_price = Q[s, D_PRICE] if price < 0 else price
    new_size = Q[s, D_LEAVES] if size < 0 else size
    if new_price == Q[s, D_PRICE] and new_size <= Q[s, D_LEAVES]:
        Q[s, D_LEAVES] = new_size
        _respond(RSP, S, R_AMENDED, s, oid, new_price, new_size, 1)
        return
    side = Q[s, Q_SIDE]
    crosses = _first_liquidity(bids, asks, taken, S, side, new_price, True) >= 0
    own = _own_crossing(Q, side, new_price)
    if Q[s, D_POST_ONLY] == 1 and (crosses or own):
        S[S_REJECTS] += 1
        _respond(RSP, S, R_REJECTED, s, oid, 0, 0, 0)
        return
    _unrest(Q, S, traded, s, ts)
    Q[s, D_STATE] = D_NONE
    Q[s, D_PRICE] = new_price
    Q[s, D_LEAVES] = new_size
    _respond(RSP, S, R_AMENDED, s, oid, new_price, new_size, 0)
    if own:
        _stp_cancel_resting(Q, S, RSP, traded, side, new_price, ts)
    if crosses:
        _take(Q, S, FO, RSP, bids, asks, taken, IP, s, new_price, ts)
        if Q[s, D_LEAVES] == 0:
            Q[s, D_STATE] = D_GONE
            return
    _rest(Q, S, bids, asks, s, ts)


@njit(cache=True)
def _apply_due(Q, S, FO, RSP, REQ, bids, asks, taken, traded, IP, now):
    h = S[S_REQ_HEAD]
    t = S[S_REQ_TAIL]
    while h < t and REQ[h, 0] <= now:
        S[S_REQ_HEAD] = h + 1
        _apply_request(Q, S, FO, RSP, bids, asks, taken, traded, IP, REQ[h])
        h += 1
    if h == t:
        S[S_REQ_HEAD] = 0
        S[S_REQ_TAIL] = 0


RECORDED_SALT = 0x5BD1E995  # paper.RECORDED_SALT
_C1 = np.uint64(0x9E3779B97F4A7C15)
_C2 = np.uint64(0xBF58476D1CE4E5B9)
_C3 = np.uint64(0x94D049BB133111EB)


@njit(cache=True)
def _jitter(seed, i, jitter_ns):
    """paper.latency_jitter: splitmix64 of (seed, i) in wrapping uint64, uniform in [0, jitter_ns)."""
    z = np.uint64(seed) * _C1 + np.uint64(i + 1) * _C2
    z = (z ^ (z >> np.uint64(30))) * _C2
    z = (z ^ (z >> np.uint64(27))) * _C3
    z = z ^ (z >> np.uint64(31))
    return np.int64((z >> np.uint64(11)) / 9007199254740992.0 * jitter_ns)


@njit(cache=True)
def _send(Q, S, FO, RSP, REQ, bids, asks, taken, traded, IP, now, kind, s, price, size):
    """One request to the desk: due after the latency of its kind (plus the seeded jitter), never before
    an earlier one (one connection)."""
    off = N_IPARAMS
    if kind == REQ_NEW:
        lat = IP[P_LATENCY_NS]
        nrec = IP[P_REC_NEW_N]
    elif kind == REQ_CANCEL:
        lat = IP[P_CANCEL_LATENCY_NS]
        nrec = IP[P_REC_CANCEL_N]
        off += IP[P_REC_NEW_N]
    else:
        lat = IP[P_AMEND_LATENCY_NS]
        nrec = IP[P_REC_AMEND_N]
        off += IP[P_REC_NEW_N] + IP[P_REC_CANCEL_N]
    if nrec > 0:  # paper.PaperDesk._send: a draw from the recorded request -> answer times
        lat = IP[off + _jitter(IP[P_SEED] ^ RECORDED_SALT, S[S_NSENT], nrec)]
    if IP[P_JITTER_NS] > 0:
        lat += _jitter(IP[P_SEED], S[S_NSENT], IP[P_JITTER_NS])
    S[S_NSENT] += 1
    due = now + lat
    if due < S[S_LAST_DUE]:
        due = S[S_LAST_DUE]
    S[S_LAST_DUE] = due
    t = S[S_REQ_TAIL]
    if t >= REQ.shape[0]:
        h = S[S_REQ_HEAD]
        if h == 0:
            S[S_ERROR] = ERR_REQUESTS_FULL
            return
        for a in range(t - h):
            for c in range(6):
                REQ[a, c] = REQ[h + a, c]
        S[S_REQ_HEAD] = 0
        t -= h
    REQ[t, 0] = due
    REQ[t, 1] = kind
    REQ[t, 2] = s
    REQ[t, 3] = Q[s, Q_OID]
    REQ[t, 4] = price
    REQ[t, 5] = size
    S[S_REQ_TAIL] = t + 1
    _apply_due(Q, S, FO, RSP, REQ, bids, asks, taken, traded, IP, now)


# ---- market data at the desk ---------------------------------------------------------------------
@njit(cache=True)
def _cross(Q, S, FO, RSP, bids, asks, taken, traded, IP, ext_side, ts, scratch, prices):
    """External levels on `ext_side` crossing our resting orders fill them at our price (paper._cross)."""
    our = 1 - ext_side
    n = bids.shape[0]
    lo = S[S_LO]
    best = S[S_ASK] if ext_side == 1 else S[S_BID]
    if best < 0 or best >= n:
        return
    best_px = best + lo
    k = _our_prices(Q, our, prices)
    if k == 0:
        return
    for pi in range(k):
        px = prices[pi]
        if (our == 0 and px < best_px) or (our == 1 and px > best_px):
            break  # best first: the rest do not cross either
        m = _at_level(Q, our, px, scratch)
        dry = False
        for oi in range(m):
            s = scratch[oi]
            want = Q[s, D_LEAVES]
            got = 0
            i = best
            while 0 <= i < n:
                p = i + lo
                if (our == 0 and p > px) or (our == 1 and p < px):
                    break
                size = asks[i] if ext_side == 1 else bids[i]
                avail = size - taken[ext_side, i]
                if avail > 0:
                    f = avail if avail < want - got else want - got
                    taken[ext_side, i] += f
                    got += f
                    if got == want:
                        break
                i = i + 1 if ext_side == 1 else i - 1
            if got < want:
                dry = True
            if got > 0:
                Q[s, D_AHEAD] = 0
                _fill(Q, S, FO, RSP, bids, asks, IP, s, px, got, True, RULE_CROSS, ts)
            if dry:
                break
        _drop_filled(Q, S, traded, our, px)
        if dry:
            return


@njit(cache=True)
def _qf(family, n, x):
    if family == Q_LOG or family == Q_LOG2:
        return math.log(1.0 + x)
    return x**n


@njit(cache=True)
def _front_after_cancels(family, n, ahead, before, cancels):
    """paper.front_after_cancels: hftbacktest's ProbQueueModel, the same float operations."""
    if family == Q_RISK_AVERSE or cancels <= 0 or ahead <= 0 or before <= 0:
        return ahead
    if family == Q_POWER and n == 1.0:
        return ahead - ahead * cancels // before
    front = ahead / QS
    back = before - front
    if back < 0.0:
        back = 0.0
    if family == Q_POWER3:
        p = 1.0 - (front / (front + back)) ** n
    else:
        fb = _qf(family, n, back)
        if family == Q_POWER2 or family == Q_LOG2:
            p = fb / _qf(family, n, back + front)
        else:
            p = fb / (fb + _qf(family, n, front))
    if p != p:
        p = 0.0
    elif p == math.inf or p == -math.inf:
        p = 1.0
    est = front - (1.0 - p) * cancels + min(0.0, back - p * cancels)
    if est <= 0.0:
        return 0
    out = np.int64(est * QS)
    return out if out < ahead else ahead


@njit(cache=True)
def _on_delta(Q, S, FO, RSP, bids, asks, taken, traded, IP, FP, side, price, size, seq, ts, scratch, prices):
    if S[S_VALID] == 0:
        S[S_BOOK_IGNORED] += 1
        return
    expected = S[S_SEQ] + 1
    if seq != expected:
        S[S_BOOK_IGNORED] += 1
        if seq > expected:
            S[S_VALID] = 0
            S[S_GAPS] += 1
        return
    idx = price - S[S_LO]
    if side < 0 or side > 1 or idx < 0 or idx >= bids.shape[0] or size < 0 or size > MAX_UNITS:
        S[S_BOOK_IGNORED] += 1  # garbage: refused, seq not advanced (the next delta is a gap)
        return
    prev = bids[idx] if side == 0 else asks[idx]
    _set_level(bids, asks, S, side, idx, size)
    S[S_SEQ] = seq
    if taken[side, idx] > size:
        taken[side, idx] = size
    if _any_resting(S, side) and _has_resting(Q, side, price):
        tr = traded[side, idx]
        traded[side, idx] = 0
        if size < prev:
            drop = prev - size
            cancels = drop - (tr if tr < drop else drop)
            cap = size * QS
            m = _at_level(Q, side, price, scratch)
            if cancels > 0 and IP[P_QUEUE] != Q_RISK_AVERSE:
                before = prev - (drop - cancels)
                for oi in range(m):
                    s = scratch[oi]
                    Q[s, D_AHEAD] = _front_after_cancels(
                        IP[P_QUEUE], FP[PF_QUEUE_N], Q[s, D_AHEAD], before, cancels
                    )
            for oi in range(m):
                s = scratch[oi]
                if Q[s, D_AHEAD] > cap:
                    Q[s, D_AHEAD] = cap
    if _any_resting(S, 1 - side):
        _cross(Q, S, FO, RSP, bids, asks, taken, traded, IP, side, ts, scratch, prices)


@njit(cache=True)
def _on_trade(Q, S, FO, RSP, bids, asks, taken, traded, IP, aggressor, tp, size, ts, scratch, prices):
    if (aggressor != 0 and aggressor != 1) or size <= 0:
        return
    S[S_LAST_TRADE] = tp
    side = 1 - aggressor
    if not _any_resting(S, side):
        _sample(S, bids, asks, False)
        return
    volume = size
    k = _our_prices(Q, side, prices)
    for pi in range(k):
        px = prices[pi]
        if not ((side == 0 and px > tp) or (side == 1 and px < tp)):
            continue
        m = _at_level(Q, side, px, scratch)
        for oi in range(m):
            s = scratch[oi]
            Q[s, D_AHEAD] = 0
            if volume > 0:
                leaves = Q[s, D_LEAVES]
                f = volume if volume < leaves else leaves
                volume -= f
                _fill(Q, S, FO, RSP, bids, asks, IP, s, px, f, True, RULE_THROUGH, ts)
        _drop_filled(Q, S, traded, side, px)
    m = _at_level(Q, side, tp, scratch)
    if m == 0:
        _sample(S, bids, asks, False)
        return
    idx = tp - S[S_LO]
    if 0 <= idx < traded.shape[1]:
        traded[side, idx] += size
    if volume <= 0:
        _sample(S, bids, asks, False)
        return
    t = volume * QS
    ours_before = 0
    filled_before = 0
    for oi in range(m):
        s = scratch[oi]
        front = Q[s, D_AHEAD] + ours_before * QS
        ours_before += Q[s, D_LEAVES]
        f = (t - front) // QS if t > front else 0
        if f > Q[s, D_LEAVES]:
            f = Q[s, D_LEAVES]
        external = (t if t < front else front) - filled_before * QS
        if external > 0:
            Q[s, D_AHEAD] = Q[s, D_AHEAD] - external if Q[s, D_AHEAD] > external else 0
        if f > 0:
            filled_before += f
            _fill(Q, S, FO, RSP, bids, asks, IP, s, tp, f, True, RULE_QUEUE, ts)
    _drop_filled(Q, S, traded, side, tp)
    _sample(S, bids, asks, False)


@njit(cache=True)
def _on_snapshot(Q, S, FO, RSP, bids, asks, taken, traded, IP, rows, i, nlev, seq, ts, scratch, prices):
    n = bids.shape[0]
    lo = S[S_LO]
    # The reference's L2 book refuses a snapshot with a garbage level or a price listed twice.
    for j in range(i + 1, i + 1 + nlev):
        idx = rows[j, C_PRICE] - lo
        sd = rows[j, C_SIDE]
        if sd < 0 or sd > 1 or idx < 0 or idx >= n or rows[j, C_SIZE] < 0 or rows[j, C_SIZE] > MAX_UNITS:
            S[S_BOOK_IGNORED] += 1
            return
    for j in range(i + 1, i + 1 + nlev):  # duplicates: mark with a negative size, then check
        idx = rows[j, C_PRICE] - lo
        arr = bids if rows[j, C_SIDE] == 0 else asks
        if arr[idx] < 0:
            for jj in range(i + 1, j):
                a2 = bids if rows[jj, C_SIDE] == 0 else asks
                a2[rows[jj, C_PRICE] - lo] = -1 - a2[rows[jj, C_PRICE] - lo]
            S[S_BOOK_IGNORED] += 1
            return
        arr[idx] = -1 - arr[idx]
    for j in range(i + 1, i + 1 + nlev):  # undo the marks
        idx = rows[j, C_PRICE] - lo
        arr = bids if rows[j, C_SIDE] == 0 else asks
        arr[idx] = -1 - arr[idx]
    bids[:] = 0
    asks[:] = 0
    S[S_BID] = -1
    S[S_ASK] = n
    for j in range(i + 1, i + 1 + nlev):
        if rows[j, C_SIZE] > 0:
            _set_level(bids, asks, S, rows[j, C_SIDE], rows[j, C_PRICE] - lo, rows[j, C_SIZE])
    S[S_SEQ] = seq
    S[S_VALID] = 1
    for s in range(Q.shape[0]):
        if Q[s, D_STATE] == D_RESTING:
            cap = _level(bids, asks, Q[s, Q_SIDE], Q[s, D_PRICE] - lo) * QS
            if Q[s, D_AHEAD] > cap:
                Q[s, D_AHEAD] = cap
            idx = Q[s, D_PRICE] - lo
            if 0 <= idx < n:
                traded[Q[s, Q_SIDE], idx] = 0
    for sd in range(2):
        arr = bids if sd == 0 else asks
        for idx in range(n):
            if taken[sd, idx] > arr[idx]:
                taken[sd, idx] = arr[idx]
    for sd in range(2):
        if _any_resting(S, 1 - sd):
            _cross(Q, S, FO, RSP, bids, asks, taken, traded, IP, sd, ts, scratch, prices)


# ---- the market maker ----------------------------------------------------------------------------
@njit(cache=True)
def _ladder(IP, FP, sizes, bid, ask, position, LAD, LN):
    """quote_ladder in ladder mode: LAD[side, 0/1, level] = price/size, LN[side] = levels; returns
    (reservation, spread)."""
    mid = (bid + ask) / 2.0
    reservation = mid - FP[PF_SKEW] * position
    if FP[PF_SPREAD_BPS] > 0:
        spread = FP[PF_SPREAD_BPS] * mid / 1e4
    else:
        spread = float(IP[P_SPREAD_TICKS])
    LN[0] = 0
    LN[1] = 0
    if not (math.isfinite(reservation) and math.isfinite(spread)):
        return reservation, spread
    if spread < IP[P_MIN_SPREAD]:
        spread = float(IP[P_MIN_SPREAD])
    half = spread / 2.0
    bid0 = int(math.floor(reservation - half + EPS))
    if bid0 > ask - 1:
        bid0 = ask - 1
    ask0 = int(math.ceil(reservation + half - EPS))
    if ask0 < bid + 1:
        ask0 = bid + 1
    max_pos = IP[P_MAX_POS]
    ratio = position / max_pos
    if ratio > 1.0:
        ratio = 1.0
    elif ratio < -1.0:
        ratio = -1.0
    step = IP[P_STEP]
    min_lots = IP[P_MIN_LOTS]
    max_lots = IP[P_MAX_LOTS]
    for side in range(2):
        if side == 0:
            price = bid0
            d = -step
            factor = 1.0 - FP[PF_SIZE_SKEW] * ratio
            budget = max_pos - position
        else:
            price = ask0
            d = step
            factor = 1.0 + FP[PF_SIZE_SKEW] * ratio
            budget = max_pos + position
        k = 0
        for lv in range(sizes.shape[0]):
            if price < 1 or price > MAX_UNITS or budget < min_lots:
                break
            lots = int(sizes[lv] * factor + EPS)
            if lots > max_lots:
                lots = max_lots
            if lots > budget:
                lots = budget
            if lots >= min_lots:
                LAD[side, 0, k] = price
                LAD[side, 1, k] = lots
                k += 1
                budget -= lots
            price += d
        LN[side] = k
    return reservation, spread


@njit(cache=True)
def _same_ladder(LAD, LN, PLAD, PLN):
    for side in range(2):
        if LN[side] != PLN[side]:
            return False
        for k in range(LN[side]):
            if LAD[side, 0, k] != PLAD[side, 0, k] or LAD[side, 1, k] != PLAD[side, 1, k]:
                return False
    return True


@njit(cache=True)
def _diff_side(
    Q, S, IP, FP, side, LAD, LN, position, now, allow_new, CANC, AMD, NEWS, counts, cand, free, unm, matched
):
    """market_maker._diff_side over the slots; appends to CANC (slots), AMD (slot, price, size) and
    NEWS (side, price, size); counts = [n_cancels, n_amends, n_news]."""
    nq = Q.shape[0]
    sign = 1 if side == 0 else -1
    nd = LN[side]
    other = 1 - side
    has_limit = LN[other] > 0
    limit = LAD[other, 0, 0]
    budget = IP[P_MAX_POS] - position if side == 0 else IP[P_MAX_POS] + position
    count = 0
    exposure = 0
    nfree = 0
    max_age = IP[P_MAX_AGE_NS]
    for s in range(nq):  # slots are in order id order (see _new_slot): the reference's dict order
        st = Q[s, Q_STATE]
        if st == FREE or Q[s, Q_SIDE] != side:
            continue
        count += 1
        tsz = Q[s, Q_WSIZE] if st == AMENDING else Q[s, Q_SIZE]
        exposure += Q[s, Q_SIZE] if Q[s, Q_SIZE] > tsz else tsz
        if st == CANCELLING:
            continue
        if max_age > 0 and st == WORKING and now - Q[s, Q_PLACED] >= max_age:
            CANC[counts[0]] = s
            counts[0] += 1
            continue
        free[nfree] = s
        nfree += 1
    # Sort `free` by order id (slot reuse breaks slot order).
    for a in range(1, nfree):
        x = free[a]
        b = a
        while b > 0 and Q[free[b - 1], Q_OID] > Q[x, Q_OID]:
            free[b] = free[b - 1]
            b -= 1
        free[b] = x
    tol = IP[P_TOL]
    # candidates: (target price, slot), limit-filtered, sorted by price (stable)
    nc = 0
    for a in range(nfree):
        s = free[a]
        tp = Q[s, Q_WPRICE] if Q[s, Q_STATE] == AMENDING else Q[s, Q_PRICE]
        if has_limit and not (sign * (limit - tp) > 0):
            continue
        b = nc
        while b > 0:
            ps = cand[b - 1]
            pp = Q[ps, Q_WPRICE] if Q[ps, Q_STATE] == AMENDING else Q[ps, Q_PRICE]
            if pp > tp:
                cand[b] = cand[b - 1]
                b -= 1
            else:
                break
        cand[b] = s
        nc += 1
    matched[:] = False
    nun = 0
    j = 0
    size_tol = FP[PF_SIZE_TOL]
    cp = 0
    for step in range(nd):
        level = nd - 1 - step if side == 0 else step
        price = LAD[side, 0, level]
        size = LAD[side, 1, level]
        while j < nc:
            cs = cand[j]
            cp = Q[cs, Q_WPRICE] if Q[cs, Q_STATE] == AMENDING else Q[cs, Q_PRICE]
            if cp < price - tol:
                j += 1
            else:
                break
        if j < nc:
            cs = cand[j]
            cp = Q[cs, Q_WPRICE] if Q[cs, Q_STATE] == AMENDING else Q[cs, Q_PRICE]
        if j == nc or cp > price + tol:
            unm[nun, 0] = level
            unm[nun, 1] = price
            unm[nun, 2] = size
            nun += 1
            continue
        best = cand[j]
        j += 1
        matched[best] = True
        st = Q[best, Q_STATE]
        if st == SENT or st == AMENDING:
            continue
        have = Q[best, Q_SIZE]
        if have > size:
            a = counts[1]
            AMD[a, 0] = best
            AMD[a, 1] = Q[best, Q_PRICE]
            AMD[a, 2] = size
            counts[1] += 1
            exposure -= have - size
        elif have < size - int(size * size_tol + EPS):
            grow = size - have
            if budget - exposure < grow:
                grow = budget - exposure
            if grow > 0:
                a = counts[1]
                AMD[a, 0] = best
                AMD[a, 1] = price
                AMD[a, 2] = have + grow
                counts[1] += 1
                exposure += grow
    # unmatched sorted by level (best level first)
    for a in range(1, nun):
        l0, p0, z0 = unm[a, 0], unm[a, 1], unm[a, 2]
        b = a
        while b > 0 and unm[b - 1, 0] > l0:
            unm[b, 0] = unm[b - 1, 0]
            unm[b, 1] = unm[b - 1, 1]
            unm[b, 2] = unm[b - 1, 2]
            b -= 1
        unm[b, 0] = l0
        unm[b, 1] = p0
        unm[b, 2] = z0
    # the rest of `free`, best price first (stable), then the movable ones (not busy)
    nrest = 0
    for a in range(nfree):
        s = free[a]
        if matched[s]:
            continue
        key = -sign * Q[s, Q_PRICE]
        b = nrest
        while b > 0 and -sign * Q[cand[b - 1], Q_PRICE] > key:
            cand[b] = cand[b - 1]
            b -= 1
        cand[b] = s
        nrest += 1
    nmov = 0
    for a in range(nrest):
        s = cand[a]
        st = Q[s, Q_STATE]
        if st != SENT and st != AMENDING:
            free[nmov] = s
            nmov += 1
    npair = nun if nun < nmov else nmov
    # replaced levels (use_amend false) come first among the new orders: keep them in `unm` rows
    # [nun, nun + nrep) by copying
    nrep = 0
    for a in range(npair):
        s = free[a]
        level, price, size = unm[a, 0], unm[a, 1], unm[a, 2]
        if IP[P_USE_AMEND] == 0:
            CANC[counts[0]] = s
            counts[0] += 1
            unm[nun + nrep, 0] = level
            unm[nun + nrep, 1] = price
            unm[nun + nrep, 2] = size
            nrep += 1
            continue
        new_size = size
        if size > Q[s, Q_SIZE]:
            room = budget - exposure
            g = size - Q[s, Q_SIZE]
            if room < g:
                g = room
            if g < 0:
                g = 0
            new_size = Q[s, Q_SIZE] + g
        exposure += new_size - Q[s, Q_SIZE]
        a2 = counts[1]
        AMD[a2, 0] = s
        AMD[a2, 1] = price
        AMD[a2, 2] = new_size
        counts[1] += 1
    for a in range(npair, nmov):
        CANC[counts[0]] = free[a]
        counts[0] += 1
    if not allow_new:
        return
    for a in range(nrep + (nun - npair)):
        if a < nrep:
            r = nun + a
        else:
            r = npair + (a - nrep)
        if count >= IP[P_LEVELS]:
            break
        price = unm[r, 1]
        size = unm[r, 2]
        lots = size if size < budget - exposure else budget - exposure
        if lots < IP[P_MIN_LOTS]:
            break
        c = counts[2]
        NEWS[c, 0] = side
        NEWS[c, 1] = price
        NEWS[c, 2] = lots
        counts[2] += 1
        count += 1
        exposure += lots


@njit(cache=True)
def _new_slot(Q, S):
    """A free slot for a new order id. Slots are handed out lowest first; the diff sorts by id."""
    for s in range(Q.shape[0]):
        if Q[s, Q_STATE] == FREE and (Q[s, D_STATE] == D_NONE or Q[s, D_STATE] == D_GONE):
            return s
    S[S_ERROR] = ERR_SLOTS_FULL
    return -1


@njit(cache=True)
def _risk_self_trade(Q, side, price, exclude):
    """The kernel's pre-trade `self_trade` rule (lobterm/trading/risk.py `_evaluate`): an order (or an
    amend of the order in slot `exclude`) at `price` on `side` that would cross one of our orders on the
    other side that the OMS holds (sent, working or amending, not with a cancel outstanding; at the
    amend's price while one is pending) is refused before it leaves."""
    for s in range(Q.shape[0]):
        st = Q[s, Q_STATE]
        if s == exclude or st == FREE or st == CANCELLING or Q[s, Q_SIDE] == side:
            continue
        their = Q[s, Q_WPRICE] if st == AMENDING else Q[s, Q_PRICE]
        if (side == 0 and price >= their) or (side == 1 and price <= their):
            return True
    return False


@njit(cache=True)
def _send_cancel(Q, S, FO, RSP, REQ, bids, asks, taken, traded, IP, s, now):
    Q[s, Q_STATE] = CANCELLING
    S[S_CANCELS_SENT] += 1
    _send(Q, S, FO, RSP, REQ, bids, asks, taken, traded, IP, now, REQ_CANCEL, s, -1, -1)


@njit(cache=True)
def _pull(Q, S, FO, RSP, REQ, bids, asks, taken, traded, IP, now):
    S[S_DIRTY] = 1
    sent = 0
    for s in range(Q.shape[0]):
        st = Q[s, Q_STATE]
        if st != FREE and st != CANCELLING:
            _send_cancel(Q, S, FO, RSP, REQ, bids, asks, taken, traded, IP, s, now)
            sent += 1
    if sent:
        S[S_PULLS] += 1


@njit(cache=True)
def _cycle(
    Q,
    S,
    FO,
    RSP,
    REQ,
    bids,
    asks,
    taken,
    traded,
    IP,
    FP,
    sizes,
    LAD,
    LN,
    PLAD,
    PLN,
    PF,
    CANC,
    AMD,
    NEWS,
    counts,
    cand,
    free,
    unm,
    matched,
    now,
):
    if S[S_VENUE_UP] == 0 or S[S_VALID] == 0:
        _pull(Q, S, FO, RSP, REQ, bids, asks, taken, traded, IP, now)
        return
    n = bids.shape[0]
    if S[S_BID] < 0 or S[S_ASK] >= n:
        S[S_HOLDS] += 1
        S[S_DIRTY] = 1
        return
    lo = S[S_LO]
    bid = S[S_BID] + lo
    ask = S[S_ASK] + lo
    if bid >= ask:
        S[S_HOLDS] += 1
        S[S_DIRTY] = 1
        return
    position = S[S_POS]
    res = 0.0
    spread = 0.0
    if S[S_HAVE_LADDER] == 1 and bid == S[S_IN_BID] and ask == S[S_IN_ASK] and position == S[S_IN_POS]:
        # The ladder is a function of (bid, ask, position): unchanged, and LAD still holds it.
        same = True
    else:
        res, spread = _ladder(IP, FP, sizes, bid, ask, position, LAD, LN)
        same = S[S_HAVE_LADDER] == 1 and res == PF[0] and spread == PF[1] and _same_ladder(LAD, LN, PLAD, PLN)
        S[S_IN_BID] = bid
        S[S_IN_ASK] = ask
        S[S_IN_POS] = position
    if same and S[S_DIRTY] == 0 and IP[P_MAX_AGE_NS] == 0:
        return  # nothing to diff: the desired ladder is unchanged and nothing is in flight
    if not same:
        S[S_HAVE_LADDER] = 1
        PF[0] = res
        PF[1] = spread
        PLN[0] = LN[0]
        PLN[1] = LN[1]
        PLAD[:] = LAD
    S[S_CYCLES] += 1
    backoff = now < S[S_BACKOFF_UNTIL]
    counts[:] = 0
    for side in range(2):
        _diff_side(
            Q,
            S,
            IP,
            FP,
            side,
            LAD,
            LN,
            position,
            now,
            not backoff,
            CANC,
            AMD,
            NEWS,
            counts,
            cand,
            free,
            unm,
            matched,
        )
    dirty = 1 if backoff else 0
    for s in range(Q.shape[0]):
        st = Q[s, Q_STATE]
        if st == SENT or st == AMENDING:
            dirty = 1
    S[S_DIRTY] = dirty
    # send: cancels, then amends away from the other side, then towards it, then news
    for a in range(counts[0]):
        s = CANC[a]
        if Q[s, Q_STATE] != CANCELLING and Q[s, Q_STATE] != FREE:
            _send_cancel(Q, S, FO, RSP, REQ, bids, asks, taken, traded, IP, s, now)
    if backoff:
        return
    for away in (True, False):
        for a in range(counts[1]):
            s = AMD[a, 0]
            price = AMD[a, 1]
            size = AMD[a, 2]
            st = Q[s, Q_STATE]
            if st != WORKING:
                continue
            moves_away = price <= Q[s, Q_PRICE] if Q[s, Q_SIDE] == 0 else price >= Q[s, Q_PRICE]
            if moves_away != away:
                continue
            if price == Q[s, Q_PRICE] and size == Q[s, Q_SIZE]:
                continue
            if now < S[S_BACKOFF_UNTIL]:  # refused just now (mm_orders._send)
                break
            if (price != Q[s, Q_PRICE] or size > Q[s, Q_SIZE]) and _risk_self_trade(
                Q, Q[s, Q_SIDE], price, s
            ):
                # oms.amend: refused by risk, a Rejected on the bus, the order unchanged; the market
                # maker backs off (mm_orders._send_failed)
                S[S_RISK_SELF_TRADE] += 1
                S[S_DIRTY] = 1
                S[S_BACKOFF_UNTIL] = now + IP[P_BACKOFF_NS]
                _respond(RSP, S, R_REJECTED, s, Q[s, Q_OID], 0, 0, 0)
                continue
            Q[s, Q_STATE] = AMENDING
            Q[s, Q_WPRICE] = price
            Q[s, Q_WSIZE] = size
            S[S_AMENDS_SENT] += 1
            _send(
                Q,
                S,
                FO,
                RSP,
                REQ,
                bids,
                asks,
                taken,
                traded,
                IP,
                now,
                REQ_AMEND,
                s,
                price if price != Q[s, Q_PRICE] else -1,
                size if size != Q[s, Q_SIZE] else -1,
            )
    for a in range(counts[2]):
        if now < S[S_BACKOFF_UNTIL]:
            return
        s = _new_slot(Q, S)
        if s < 0:
            return
        side = NEWS[a, 0]
        S[S_NEXT_OID] += 1
        Q[s, Q_OID] = S[S_NEXT_OID]
        Q[s, Q_SIDE] = side
        Q[s, Q_STATE] = SENT
        Q[s, Q_PRICE] = NEWS[a, 1]
        Q[s, Q_SIZE] = NEWS[a, 2]
        Q[s, Q_PLACED] = now
        Q[s, D_STATE] = D_INFLIGHT
        Q[s, D_POST_ONLY] = IP[P_POST_ONLY]
        S[S_QUOTES_SENT] += 1
        if _risk_self_trade(Q, side, NEWS[a, 1], s):
            # oms.new_order: refused by risk, it never reaches the desk; Rejected + Done on the bus
            S[S_RISK_SELF_TRADE] += 1
            Q[s, D_STATE] = D_GONE
            _respond(RSP, S, R_REJECTED, s, Q[s, Q_OID], 0, 0, 0)
            _respond(RSP, S, R_DONE, s, Q[s, Q_OID], 0, 0, 0)
            continue
        _send(Q, S, FO, RSP, REQ, bids, asks, taken, traded, IP, now, REQ_NEW, s, NEWS[a, 1], NEWS[a, 2])


@njit(cache=True)
def _ends_with_fill(Q, S, RSP):
    """True when the last unread answer is a fill or a done order of a live quote (market_maker's
    `_more_coming`: the market maker defers its requote to it)."""
    a = S[S_RSP_N] - 1
    kind, s, oid = RSP[a, 0], RSP[a, 1], RSP[a, 2]
    if kind != R_FILL and kind != R_DONE:
        return False
    return Q[s, Q_OID] == oid and Q[s, Q_STATE] != FREE


@njit(cache=True)
def _answer_row(Q, S, IP, now, r):
    """One answer of the desk (a row of RSP) for the market maker; True for a fill or a done order."""
    again = False
    kind, s, oid = r[0], r[1], r[2]
    if Q[s, Q_OID] != oid or Q[s, Q_STATE] == FREE:
        return False
    st = Q[s, Q_STATE]
    if kind == R_ACCEPTED:
        if st != SENT or r[3] != Q[s, Q_PRICE] or r[4] != Q[s, Q_SIZE]:
            S[S_DIRTY] = 1
        Q[s, Q_PRICE] = r[3]
        Q[s, Q_SIZE] = r[4]
        Q[s, Q_PLACED] = now
        if st == SENT:
            Q[s, Q_STATE] = WORKING
    elif kind == R_AMENDED:
        if st != AMENDING or r[3] != Q[s, Q_WPRICE] or r[4] != Q[s, Q_WSIZE]:
            S[S_DIRTY] = 1
        if r[3] != Q[s, Q_PRICE] or r[5] == 0:
            Q[s, Q_PLACED] = now
        Q[s, Q_PRICE] = r[3]
        Q[s, Q_SIZE] = r[4]
        if st == AMENDING:
            Q[s, Q_STATE] = WORKING
    else:
        S[S_DIRTY] = 1
        if kind == R_FILL:
            Q[s, Q_SIZE] = r[5]
            again = True
        elif kind == R_REJECTED:
            S[S_BACKOFF_UNTIL] = now + IP[P_BACKOFF_NS]
            if st == AMENDING or st == CANCELLING:
                Q[s, Q_STATE] = WORKING
        elif kind == R_DONE:
            Q[s, Q_STATE] = FREE
            again = True
    return again


@njit(cache=True)
def _answers(Q, S, RSP, IP, now):
    """The market maker follows the desk's answers (market_maker._apply); True when one of them was a
    fill or a done order (the reference requotes on those)."""
    again = False
    n = S[S_RSP_N]
    for a in range(n):
        if _answer_row(Q, S, IP, now, RSP[a]):
            again = True
    S[S_RSP_N] = 0
    return again


@njit(cache=True)
def _live_fill_or_done(Q, r):
    """Whether the answer row `r` is a fill or a done order of a live quote (market_maker._more_coming)."""
    kind, s, oid = r[0], r[1], r[2]
    if kind != R_FILL and kind != R_DONE:
        return False
    return Q[s, Q_OID] == oid and Q[s, Q_STATE] != FREE


@njit(cache=True)
def _read_answers(
    Q,
    S,
    FO,
    RSP,
    REQ,
    PEND,
    bids,
    asks,
    taken,
    traded,
    IP,
    FP,
    sizes,
    LAD,
    LN,
    PLAD,
    PLN,
    PF,
    CANC,
    AMD,
    NEWS,
    counts,
    cand,
    free,
    unm,
    matched,
    now,
):
    """The market maker reads the desk's answers one by one, in the order the reference's bus delivers
    them (market_maker.on_order_event): on a fill or a done order it requotes at once, its later answers
    still unread, unless the last answer queued is itself a fill or a done order of a live quote (it
    defers to that one: `_more_coming`). Answers to the requests of those requotes queue behind."""
    npend = 0
    h = 0
    deferred = False
    cycles = 0
    while True:
        if h >= npend:
            n = S[S_RSP_N]
            if n == 0:
                break
            PEND[:n] = RSP[:n]
            S[S_RSP_N] = 0
            npend = n
            h = 0
        kind, s, oid = PEND[h, 0], PEND[h, 1], PEND[h, 2]
        known = Q[s, Q_OID] == oid and Q[s, Q_STATE] != FREE
        again = _answer_row(Q, S, IP, now, PEND[h])
        h += 1
        if not known:
            again = deferred and (kind == R_FILL or kind == R_DONE)
        if not again:
            continue
        if S[S_RSP_N] > 0:
            more = _live_fill_or_done(Q, RSP[S[S_RSP_N] - 1])
        elif h < npend:
            more = _live_fill_or_done(Q, PEND[npend - 1])
        else:
            more = False
        if more:
            deferred = True
            continue
        deferred = False
        if cycles >= 64:  # market_maker's requote loop guard: no storm within one instant
            continue
        cycles += 1
        if h < npend:  # the cycle's answers (zero-latency requests) queue behind the unread ones
            rest = npend - h
            for a in range(rest):
                for c in range(6):
                    PEND[a, c] = PEND[h + a, c]
            npend = rest
            h = 0
        _cycle(
            Q,
            S,
            FO,
            RSP,
            REQ,
            bids,
            asks,
            taken,
            traded,
            IP,
            FP,
            sizes,
            LAD,
            LN,
            PLAD,
            PLN,
            PF,
            CANC,
            AMD,
            NEWS,
            counts,
            cand,
            free,
            unm,
            matched,
            now,
        )
        if S[S_ERROR] != 0:
            return S[S_ERROR]
        if S[S_RSP_N] > 0 and h < npend:
            # Unread answers first, then the new ones: append the new ones to PEND.
            n = S[S_RSP_N]
            if npend + n > PEND.shape[0]:
                S[S_ERROR] = ERR_REQUESTS_FULL
                return S[S_ERROR]
            PEND[npend : npend + n] = RSP[:n]
            npend += n
            S[S_RSP_N] = 0
    return S[S_ERROR]


@njit(cache=True)
def new_state(lo, n_levels, L, S):
    """The kernel's state between chunks of rows (see `run_chunk`): the book, the order slots, the
    request queues and the market maker's scratch arrays; resets the scalars `S`."""
    nq = 4 * L + 16
    S[:] = 0
    S[S_LO] = lo
    S[S_BID] = -1
    S[S_ASK] = n_levels
    S[S_VENUE_UP] = 1
    S[S_QUOTED_SINCE] = -1
    S[S_DIRTY] = 1
    return (
        np.zeros(n_levels, dtype=np.int64),  # bids
        np.zeros(n_levels, dtype=np.int64),  # asks
        np.zeros((2, n_levels), dtype=np.int64),  # taken
        np.zeros((2, n_levels), dtype=np.int64),  # traded
        np.zeros((nq, N_QFIELDS), dtype=np.int64),  # Q
        np.empty((65536, 6), dtype=np.int64),  # REQ: requests in flight (head/tail in S)
        np.empty((65536, 6), dtype=np.int64),  # RSP: the desk's answers not yet read by the market maker
        np.empty((65536, 6), dtype=np.int64),  # PEND: answers queued behind a batch, read one by one
        np.zeros((2, 2, L), dtype=np.int64),  # LAD
        np.zeros(2, dtype=np.int64),  # LN
        np.zeros((2, 2, L), dtype=np.int64),  # PLAD
        np.zeros(2, dtype=np.int64),  # PLN
        np.zeros(2, dtype=np.float64),  # PF
        np.zeros(2 * nq, dtype=np.int64),  # CANC
        np.zeros((2 * nq, 3), dtype=np.int64),  # AMD
        np.zeros((2 * L + 2, 3), dtype=np.int64),  # NEWS
        np.zeros(3, dtype=np.int64),  # counts
        np.zeros(nq, dtype=np.int64),  # cand
        np.zeros(nq, dtype=np.int64),  # free
        np.zeros((2 * L + 2, 3), dtype=np.int64),  # unm
        np.zeros(nq, dtype=np.int64),  # scratch
        np.zeros(nq, dtype=np.int64),  # prices
        np.zeros(nq, dtype=np.bool_),  # matched
    )


@njit(cache=True)
def run(rows, lo, n_levels, IP, FP, sizes, FO, S, end_ts, QOUT):
    """Walk `rows` (see the row layout); `lo` the price of index 0 of the dense book arrays, `n_levels`
    their length; `end_ts` the session's last timestamp (time quoted runs to it). Fills go to FO,
    counters to S, the final order slots to QOUT (shape (4 * levels + 16, N_QFIELDS)). Returns
    S[S_ERROR] (0: done). The same as `new_state`, `run_chunk` over chunks of the rows, `finish`."""
    st = new_state(lo, n_levels, sizes.shape[0], S)
    err = run_chunk(rows, IP, FP, sizes, FO, S, st)
    if err != 0:
        return err
    return finish(S, st, rows.shape[0] > 0, end_ts, QOUT)


@njit(cache=True)
def finish(S, st, any_rows, end_ts, QOUT):
    """The end of a run over chunks: time quoted runs to `end_ts`, the last drawdown sample, the order
    slots to QOUT. Returns S[S_ERROR]."""
    bids, asks, Q = st[0], st[1], st[4]
    if any_rows:
        if S[S_QUOTED_SINCE] >= 0:
            S[S_QUOTED_NS] += max(0, end_ts - S[S_QUOTED_SINCE])
            S[S_QUOTED_SINCE] = -1
        _sample(S, bids, asks, False)
    QOUT[:] = Q
    return S[S_ERROR]


@njit(cache=True)
def run_chunk(rows, IP, FP, sizes, FO, S, st):
    """Walk one chunk of rows on the state `st` (`new_state`). A chunk must end where the timestamp
    changes (a batch of same-timestamp rows, a snapshot's levels among them, is never split): then
    the chunks give exactly the run over all the rows. Returns S[S_ERROR]."""
    (
        bids,
        asks,
        taken,
        traded,
        Q,
        REQ,
        RSP,
        PEND,
        LAD,
        LN,
        PLAD,
        PLN,
        PF,
        CANC,
        AMD,
        NEWS,
        counts,
        cand,
        free,
        unm,
        scratch,
        prices,
        matched,
    ) = st
    n = rows.shape[0]
    nq = Q.shape[0]
    i = 0
    while i < n:
        t = rows[i, C_TS]
        # Requests that reach the desk before this batch arrive at their due times, and the market
        # maker reads their answers then (requoting on a fill or a done order), as the reference
        # delivers them (reference._deliver_due): not behind the batch, a whole batch late.
        while IP[P_MM_ON] == 1 and S[S_REQ_HEAD] < S[S_REQ_TAIL] and REQ[S[S_REQ_HEAD], 0] < t:
            d = REQ[S[S_REQ_HEAD], 0]
            _apply_due(Q, S, FO, RSP, REQ, bids, asks, taken, traded, IP, d)
            if S[S_RSP_N] > 0:
                _read_answers(
                    Q,
                    S,
                    FO,
                    RSP,
                    REQ,
                    PEND,
                    bids,
                    asks,
                    taken,
                    traded,
                    IP,
                    FP,
                    sizes,
                    LAD,
                    LN,
                    PLAD,
                    PLN,
                    PF,
                    CANC,
                    AMD,
                    NEWS,
                    counts,
                    cand,
                    free,
                    unm,
                    matched,
                    d,
                )
                if S[S_ERROR] != 0:
                    return S[S_ERROR]
        k = i
        while k < n and rows[k, C_TS] == t:
            kind = rows[k, C_KIND]
            if kind == K_STATUS:
                S[S_VENUE_UP] = rows[k, C_SIZE]
                k += 1
                continue
            if S[S_REQ_HEAD] < S[S_REQ_TAIL]:
                _apply_due(Q, S, FO, RSP, REQ, bids, asks, taken, traded, IP, t)
            if kind == K_DELTA:
                _on_delta(
                    Q,
                    S,
                    FO,
                    RSP,
                    bids,
                    asks,
                    taken,
                    traded,
                    IP,
                    FP,
                    rows[k, C_SIDE],
                    rows[k, C_PRICE],
                    rows[k, C_SIZE],
                    rows[k, C_SEQ],
                    t,
                    scratch,
                    prices,
                )
            elif kind == K_TRADE:
                _on_trade(
                    Q,
                    S,
                    FO,
                    RSP,
                    bids,
                    asks,
                    taken,
                    traded,
                    IP,
                    rows[k, C_SIDE],
                    rows[k, C_PRICE],
                    rows[k, C_SIZE],
                    t,
                    scratch,
                    prices,
                )
            elif kind == K_SNAP:
                nlev = rows[k, C_SIZE]
                if nlev < 0:
                    S[S_BOOK_IGNORED] += 1
                else:
                    _on_snapshot(
                        Q,
                        S,
                        FO,
                        RSP,
                        bids,
                        asks,
                        taken,
                        traded,
                        IP,
                        rows,
                        k,
                        nlev,
                        rows[k, C_SEQ],
                        t,
                        scratch,
                        prices,
                    )
                    k += nlev
            elif kind == K_ORDER:
                s = _new_slot(Q, S)
                if s >= 0:
                    S[S_NEXT_OID] += 1
                    Q[s, Q_OID] = S[S_NEXT_OID]
                    Q[s, Q_SIDE] = rows[k, C_SIDE]
                    Q[s, Q_STATE] = SENT
                    Q[s, Q_PRICE] = rows[k, C_PRICE]
                    Q[s, Q_SIZE] = rows[k, C_SIZE]
                    Q[s, Q_PLACED] = t
                    Q[s, D_STATE] = D_INFLIGHT
                    Q[s, D_POST_ONLY] = rows[k, C_SEQ]
                    S[S_QUOTES_SENT] += 1
                    _send(
                        Q,
                        S,
                        FO,
                        RSP,
                        REQ,
                        bids,
                        asks,
                        taken,
                        traded,
                        IP,
                        t,
                        REQ_NEW,
                        s,
                        rows[k, C_PRICE],
                        rows[k, C_SIZE],
                    )
            elif kind == K_CANCEL:
                for s in range(nq):
                    if (
                        Q[s, Q_OID] == rows[k, C_SEQ]
                        and Q[s, Q_STATE] != FREE
                        and Q[s, Q_STATE] != CANCELLING
                    ):
                        _send_cancel(Q, S, FO, RSP, REQ, bids, asks, taken, traded, IP, s, t)
                        break
            k += 1
        if S[S_ERROR] != 0:
            return S[S_ERROR]
        # The batch is delivered: the market maker reads the answers, then requotes; again while the
        # answers to its requests include a fill or a done order. With latency, answers to requests that
        # arrived during the batch are queued behind it on the reference's bus: unless the last of them
        # is a fill or a done order of a live quote (the market maker waits for that one), it requotes
        # on the batch's last event first, its requests still in flight, then reads them, and requotes
        # again only for a fill or a done order among them.
        pre = IP[P_MM_ON] == 1 and S[S_RSP_N] > 0 and not _ends_with_fill(Q, S, RSP)
        if pre:
            # It requotes on the batch's last event, then on each fill or done order among the answers
            # as it reads them (market_maker.on_order_event: nothing it waits for comes after).
            npend = S[S_RSP_N]
            PEND[:npend] = RSP[:npend]
            S[S_RSP_N] = 0
            _cycle(
                Q,
                S,
                FO,
                RSP,
                REQ,
                bids,
                asks,
                taken,
                traded,
                IP,
                FP,
                sizes,
                LAD,
                LN,
                PLAD,
                PLN,
                PF,
                CANC,
                AMD,
                NEWS,
                counts,
                cand,
                free,
                unm,
                matched,
                t,
            )
            if S[S_ERROR] != 0:
                return S[S_ERROR]
            for a in range(npend):
                if _answer_row(Q, S, IP, t, PEND[a]):
                    _cycle(
                        Q,
                        S,
                        FO,
                        RSP,
                        REQ,
                        bids,
                        asks,
                        taken,
                        traded,
                        IP,
                        FP,
                        sizes,
                        LAD,
                        LN,
                        PLAD,
                        PLN,
                        PF,
                        CANC,
                        AMD,
                        NEWS,
                        counts,
                        cand,
                        free,
                        unm,
                        matched,
                        t,
                    )
                    if S[S_ERROR] != 0:
                        return S[S_ERROR]
        again = _answers(Q, S, RSP, IP, t)
        for _ in range(8 if IP[P_MM_ON] and (again or not pre) else 0):
            _cycle(
                Q,
                S,
                FO,
                RSP,
                REQ,
                bids,
                asks,
                taken,
                traded,
                IP,
                FP,
                sizes,
                LAD,
                LN,
                PLAD,
                PLN,
                PF,
                CANC,
                AMD,
                NEWS,
                counts,
                cand,
                free,
                unm,
                matched,
                t,
            )
            if S[S_ERROR] != 0:
                return S[S_ERROR]
            if S[S_RSP_N] == 0 or not _answers(Q, S, RSP, IP, t):
                break
        i = k
    return S[S_ERROR]

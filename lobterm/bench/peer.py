"""lobterm's backtest fast path beside hftbacktest's loop, on the same market data and the same ladder.

The data: one sim session recorded by lobterm (the market maker quoting, every bus event stored;
`lobterm.bench.backtest.write_sim_session`), kept in a bench directory so that repeated runs (before
and after a change) read the same file. The market rows lobterm's fast path decodes from it (our own
recorded orders already taken out of the book) are converted to hftbacktest's event format (tick size 1,
lot size 1: prices in ticks, sizes in lots; exchange and local timestamps equal): book deltas are
depth events, snapshots a depth clear then snapshot levels, trades trade events.

The strategy: the same 5+5 quoting ladder in each (5 levels a side, 2 ticks between our best bid and
ask, 1 tick between levels, 10 lots a level, at most 100 lots of position, post-only), requoted on every
batch of same-timestamp market events (hftbacktest: every `wait_next_feed` wake-up, order responses
included).

What is the same and what is not (the figures compare speed; fills are printed, not compared):
- equal: the market data (the same rows, our own recorded orders taken out), the ladder and its
  limits, zero order latency on both sides, zero feed latency, no fees (the result's maker fee is the
  session's, not charged in hftbacktest: fees change no decision of the ladder), post-only (GTX);
- queue: lobterm's conservative model (`risk_averse`: joins behind the level's size, cancels are behind
  us, trades at our price go through the queue front first) against hftbacktest's
  `risk_adverse_queue_model`, the same rule; both fill partially, sized by the trades;
- not equal: lobterm also fills on trades through our price up to the trade's size and on a crossing
  external book up to the crossing size (`cross_fills`, on by default), hftbacktest fills the whole
  order on both; lobterm's market maker reprices by amend (`use_amend`, the default), this loop cancels
  what left the ladder and submits what is missing; the ladder's prices around the mid are computed
  the same way, not by the same code; hftbacktest's orders are 10.5 lots
  (see HBT_LOT) and its order book is a hash map (lobterm: dense arrays over the session's range);
  hftbacktest 2.4.4's local position (what its loop reads for the position limit, and prints) counts
  an order's fills only once the order is completely filled (its local.rs applies fills on
  Status::Filled only), lobterm's counts every partial fill.

Figures (best of `repeat` runs and the spread; wall and CPU time, CPU being the fairer on a shared
machine; rows per CPU second over lobterm's market rows):
- end to end: lobterm's `run_fast_backtest` on the session file (a repeat run: the numba cache and the
  session's decoded-rows cache warm; opening the file, the kernel, the money and the markouts) vs
  hftbacktest's loop over its event array (building the backtester included; the conversion from
  lobterm's format not);
- kernel: lobterm's numba kernel over the decoded rows vs the same hftbacktest loop;
- peak memory (max RSS of a fresh process) of lobterm's fast path on the session and on one 10x as
  long.

hftbacktest is optional: without it the benchmark prints lobterm's figures and says so.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["main", "run", "session_file", "to_hftbacktest"]

LEVELS, SPREAD, STEP, SIZE, MAX_POS = 5, 2, 1, 10, 100
#: hftbacktest 2.4.4's partial-fill exchange stops with InvalidOrderStatus (14) when a fill exactly
#: exhausts an order's leaves quantity (nkaz001/hftbacktest #301, #312: the order is left in its book
#: as Filled and the next trade fills it again). The market's sizes are whole lots; with a lot of 0.5
#: and our orders SIZE + 0.5 lots, a fill (whole lots) never equals the leaves (n + 0.5): each order
#: fills SIZE lots in the same steps as in lobterm, then its last half lot with the next fill.
HBT_LOT = 0.5


def bench_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    d = Path(base) / "lobterm" / "bench"
    d.mkdir(parents=True, exist_ok=True)
    return d


def session_file(duration_s: float, seed: int = 1) -> Path:
    """The recorded sim session of `duration_s` seconds (recorded once, then reused)."""
    from lobterm.bench.backtest import write_sim_session

    path = bench_dir() / f"peer-sim-{duration_s:g}s-seed{seed}.lobterm.sqlite"
    if not path.exists():
        tmp = path.with_suffix(".partial")
        tmp.unlink(missing_ok=True)
        print(f"recording a {duration_s:g} s sim session to {path} (once)...", file=sys.stderr, flush=True)
        write_sim_session(tmp, seed=seed, duration_s=duration_s)
        tmp.rename(path)
    return path


def scaled_session(src: Path, times: int) -> Path:
    """A session `times` as long as `src`: its events repeated back to back, timestamps and book
    sequence numbers shifted so that each copy follows the one before (recorded once, then reused).
    Recording a 10x sim session through the kernel takes most of an hour; this takes seconds."""
    import sqlite3

    import msgspec

    from lobterm.engine.events import BookDelta, BookSnapshot, Event

    path = src.with_name(src.name.replace(".lobterm.sqlite", f"-x{times}.lobterm.sqlite"))
    if path.exists():
        return path
    tmp = path.with_suffix(".partial")
    tmp.unlink(missing_ok=True)
    print(f"writing a {times}x session to {path} (once)...", file=sys.stderr, flush=True)
    s = sqlite3.connect(src)
    d = sqlite3.connect(tmp)
    d.execute("PRAGMA journal_mode=WAL")
    for (sql,) in s.execute("SELECT sql FROM sqlite_master WHERE type = 'table'"):
        d.execute(sql)
    d.executemany("INSERT INTO header VALUES (?, ?)", s.execute("SELECT key, value FROM header"))
    first, last, n = s.execute("SELECT min(ts), max(ts), max(seq) FROM events").fetchone()
    span = last - first + 1_000_000
    max_book_seq = 0
    dec = msgspec.msgpack.Decoder(Event)
    enc = msgspec.msgpack.encode
    for (body,) in s.execute("SELECT body FROM events WHERE kind IN ('BookDelta', 'BookSnapshot')"):
        book_ev = dec.decode(body)
        if isinstance(book_ev, (BookDelta, BookSnapshot)):
            max_book_seq = max(max_book_seq, book_ev.seq)
    for k in range(times):
        out = []
        for seq, ts, kind, body in s.execute("SELECT seq, ts, kind, body FROM events ORDER BY seq"):
            ev = dec.decode(body)
            changes: dict = {"ts": ev.ts + k * span}
            if isinstance(ev, (BookDelta, BookSnapshot)):
                changes["seq"] = ev.seq + k * (max_book_seq + 1)
            out.append((seq + k * n, ts + k * span, kind, enc(msgspec.structs.replace(ev, **changes))))
        d.executemany("INSERT INTO events VALUES (?, ?, ?, ?)", out)
        d.commit()
    d.executemany("INSERT INTO end VALUES (?, ?)", s.execute("SELECT key, value FROM end"))
    d.commit()
    d.close()
    s.close()
    tmp.rename(path)
    return path


def decoded_rows(path: Path) -> Any:
    """lobterm's decoded market rows of the session (MarketRows)."""
    from lobterm.backtest.fast import decode_market
    from lobterm.recording.player import _own_in_book
    from lobterm.recording.reader import SessionReader

    with SessionReader(path) as reader:
        specs = {v.get("name"): v for v in reader.venues if isinstance(v, dict)}
        venue, sym = next(k for k in reader.instruments() if k[0] in specs)
        return decode_market(reader, venue, sym, _own_in_book(specs[venue]))


def to_hftbacktest(rows: np.ndarray) -> np.ndarray:
    """lobterm's fastkernel rows as hftbacktest's event array (tick size 1, lot size 1)."""
    from hftbacktest import (
        BUY_EVENT,
        DEPTH_CLEAR_EVENT,
        DEPTH_EVENT,
        DEPTH_SNAPSHOT_EVENT,
        EXCH_EVENT,
        LOCAL_EVENT,
        SELL_EVENT,
        TRADE_EVENT,
    )
    from hftbacktest.binding import event_dtype

    from lobterm.backtest import fastkernel as fk

    kind, side = rows[:, fk.C_KIND], rows[:, fk.C_SIDE]
    keep = (
        (kind == fk.K_TRADE)
        | (kind == fk.K_SNAP)
        | (kind == fk.K_LEVEL)
        | ((kind == fk.K_DELTA) & (side >= 0))
    )
    r = rows[keep]
    kind, side = r[:, fk.C_KIND], r[:, fk.C_SIDE]
    ev = np.zeros(r.shape[0], dtype=event_dtype)
    flags = np.full(r.shape[0], EXCH_EVENT | LOCAL_EVENT, dtype=np.uint64)
    flags |= np.where(side == 0, BUY_EVENT, SELL_EVENT).astype(np.uint64)
    typ = np.select(
        [kind == fk.K_DELTA, kind == fk.K_TRADE, kind == fk.K_LEVEL],
        [DEPTH_EVENT, TRADE_EVENT, DEPTH_SNAPSHOT_EVENT],
        DEPTH_CLEAR_EVENT,
    ).astype(np.uint64)
    snap = kind == fk.K_SNAP
    flags[snap] = EXCH_EVENT | LOCAL_EVENT  # no side: both sides cleared
    ev["ev"] = flags | typ
    ev["exch_ts"] = r[:, fk.C_TS]
    ev["local_ts"] = r[:, fk.C_TS]
    ev["px"] = np.where(snap, 0, r[:, fk.C_PRICE]).astype(np.float64)
    ev["qty"] = np.where(snap, 0, r[:, fk.C_SIZE]).astype(np.float64)
    return ev


_HBT_LOOP = None


def _hbt_loop() -> Any:
    global _HBT_LOOP
    if _HBT_LOOP is not None:
        return _HBT_LOOP
    from hftbacktest import BUY, GTX, LIMIT, SELL
    from numba import njit

    ORDER_QTY = SIZE + HBT_LOT  # see HBT_LOT

    @njit
    def loop(hbt: Any) -> int:
        """The 5+5 ladder around the mid, requoted on every market event (and order response).
        Returns the number of wake-ups, or minus hftbacktest's error code (`BacktestError`: 10 order
        id exists, 12 order not found, 13 invalid request, 14 invalid order status, ...): an error
        comes back from every later call at once, so looping on it never ends (the hang of the
        first version of this benchmark)."""
        n = 0
        while True:
            rc = hbt.wait_next_feed(True, 1_000_000_000_000)
            if rc == 1:
                break
            if rc != 0 and rc != 2 and rc != 3:
                return -rc
            n += 1
            hbt.clear_inactive_orders(0)
            depth = hbt.depth(0)
            bb, ba = depth.best_bid_tick, depth.best_ask_tick
            if bb <= 0 or ba >= 2**62 or bb >= ba:
                continue
            pos = hbt.position(0)
            mid2 = bb + ba  # twice the mid, in ticks
            top_bid = (mid2 - SPREAD) // 2
            top_ask = (mid2 + SPREAD + 1) // 2
            orders = hbt.orders(0)
            values = orders.values()
            while values.has_next():
                o = values.get()
                if not o.cancellable:
                    continue
                p = o.price_tick
                if o.side == BUY:
                    keep = top_bid - (LEVELS - 1) * STEP <= p <= top_bid and pos < MAX_POS
                else:
                    keep = top_ask <= p <= top_ask + (LEVELS - 1) * STEP and pos > -MAX_POS
                if not keep:
                    hbt.cancel(0, o.order_id, False)
            for k in range(LEVELS):
                bp = top_bid - k * STEP
                ap = top_ask + k * STEP
                if pos < MAX_POS and (2 * bp) not in orders:
                    hbt.submit_buy_order(0, 2 * bp, float(bp), ORDER_QTY, GTX, LIMIT, False)
                if pos > -MAX_POS and (2 * ap + 1) not in orders:
                    hbt.submit_sell_order(0, 2 * ap + 1, float(ap), ORDER_QTY, GTX, LIMIT, False)
        return n

    _ = SELL
    _HBT_LOOP = loop
    return loop


class PeerError(RuntimeError):
    """hftbacktest's loop stopped on one of its errors (the message has the code)."""


def run_hftbacktest(events: np.ndarray, maker_fee: float = 0.0) -> tuple[float, float, float, int]:
    """(wall seconds, CPU seconds, position, wake-ups) of hftbacktest's loop over `events`
    (building the backtester included)."""
    from hftbacktest import BacktestAsset, HashMapMarketDepthBacktest

    loop = _hbt_loop()
    t0 = time.perf_counter()
    c0 = time.process_time()
    asset = (
        BacktestAsset()
        .data(events)
        .linear_asset(1.0)
        .constant_order_latency(0, 0)
        .risk_adverse_queue_model()
        .partial_fill_exchange()
        .trading_value_fee_model(maker_fee, maker_fee)
        .tick_size(1.0)
        .lot_size(HBT_LOT)
    )
    hbt = HashMapMarketDepthBacktest([asset])
    n = loop(hbt)
    pos = hbt.position(0)
    hbt.close()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    if n < 0:
        raise PeerError(f"hftbacktest's loop stopped with its error code {-n} (BacktestError)")
    return wall, cpu, pos, n


def _lobterm_params() -> Any:
    from lobterm.trading.quoting import QuoteParams

    return QuoteParams(
        levels=LEVELS,
        spread_ticks=SPREAD,
        level_step_ticks=STEP,
        size_lots=SIZE,
        max_position_lots=MAX_POS,
        post_only=True,
    )


def run_lobterm(path: Path) -> Any:
    from lobterm.backtest.fast import run_fast_backtest

    return run_fast_backtest(str(path), _lobterm_params())


def run_kernel(data: Any) -> tuple[float, float]:
    """(wall, CPU) seconds of lobterm's numba kernel alone over the decoded rows."""
    from lobterm.backtest.fast import _kernel_inputs, run_kernel
    from lobterm.trading.paper import PaperConfig

    ip, fp, sizes = _kernel_inputs(_lobterm_params(), None, None, PaperConfig())
    t0 = time.perf_counter()
    c0 = time.process_time()
    run_kernel(data.rows, data.lo, data.hi, ip, fp, sizes, data.last_ts)
    return time.perf_counter() - t0, time.process_time() - c0


def peer_installed() -> bool:
    try:
        import hftbacktest  # noqa: F401
    except ImportError:
        return False
    return True


def _best(xs: list[float]) -> dict:
    return {"best": round(min(xs), 4), "worst": round(max(xs), 4), "runs": [round(x, 4) for x in xs]}


def peak_rss_mb(path: Path) -> float:
    """Max RSS (MB) of a fresh process running the fast path on `path` once (after a run that fills any
    cache, in another process)."""
    code = (
        "import resource, sys\n"
        "from pathlib import Path\n"
        "from lobterm.bench.peer import run_lobterm\n"
        "run_lobterm(Path(sys.argv[1]))\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)\n"
    )
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    for _ in range(2):  # the first fills any cache; the second is measured
        out = subprocess.run([sys.executable, "-c", code, str(path)], env=env, capture_output=True)
        if out.returncode != 0:
            tail = out.stderr.decode(errors="replace").strip().splitlines()[-1:]
            raise RuntimeError(f"the memory run on {path} failed: {' '.join(tail)}")
    return float(out.stdout.decode().split()[-1])


def run(
    duration_s: float = 2000.0,
    repeat: int = 3,
    memory: bool = True,
    scale: int = 10,
    memory_seconds: float | None = None,
    speed: bool = True,
    peer: bool | None = None,
) -> dict:
    """The figures; `peer` None: hftbacktest's side when it is installed."""
    path = session_file(duration_s)
    fig: dict = {"session_seconds": duration_s, "load_avg_1m": round(os.getloadavg()[0], 2)}
    if memory:
        base = session_file(memory_seconds or duration_s)
        fig["memory_session_seconds"] = memory_seconds or duration_s
        fig["peak_rss_mb_1x"] = round(peak_rss_mb(base), 1)
        fig[f"peak_rss_mb_{scale}x"] = round(peak_rss_mb(scaled_session(base, scale)), 1)
        fig["memory_ratio"] = round(fig[f"peak_rss_mb_{scale}x"] / fig["peak_rss_mb_1x"], 2)
    if not speed:
        return fig
    from lobterm.backtest.fast import warm_up

    if peer is None:
        peer = peer_installed()
    compile_s = warm_up()
    data = decoded_rows(path)
    events = to_hftbacktest(data.rows) if peer else None
    if events is not None:
        run_hftbacktest(events[:2000])  # compile hftbacktest's loop (numba) on a slice
    run_lobterm(path)  # the first run: fills any cache
    hbt: list[tuple[float, float]] = []
    lob: list[tuple[float, float]] = []
    ker: list[tuple[float, float]] = []
    wall_s: list[float] = []
    res = None
    hpos, hn = 0.0, 0
    for _ in range(repeat):
        if events is not None:
            w, c, hpos, hn = run_hftbacktest(events)
            hbt.append((w, c))
        t0, c0 = time.perf_counter(), time.process_time()
        res = run_lobterm(path)
        lob.append((time.perf_counter() - t0, time.process_time() - c0))  # opening the file to markouts
        wall_s.append(res.wall_seconds)
        ker.append(run_kernel(data))
    assert res is not None
    rows = int(data.rows.shape[0])
    fig |= {
        "session_events": data.events,
        "market_rows": rows,
        "compile_or_load_s": round(compile_s, 2),
        "lobterm_end_to_end_s": _best([w for w, _ in lob]),
        "lobterm_end_to_end_cpu_s": _best([c for _, c in lob]),
        "lobterm_kernel_s": _best([w for w, _ in ker]),
        "lobterm_kernel_cpu_s": _best([c for _, c in ker]),
        "lobterm_wall_seconds": _best(wall_s),  # the result's own figure: decode to money, no markouts
        "lobterm_fills": res.fills,
        "lobterm_position": res.position_final,
        "lobterm_decode_s": res.decode_seconds,
    }
    if events is not None:
        h_cpu = min(c for _, c in hbt)
        fig |= {
            "hftbacktest_events": int(events.shape[0]),
            "hftbacktest_s": _best([w for w, _ in hbt]),
            "hftbacktest_cpu_s": _best([c for _, c in hbt]),
            "end_to_end_ratio": round(min(w for w, _ in hbt) / min(w for w, _ in lob), 3),
            "kernel_ratio": round(min(w for w, _ in hbt) / min(w for w, _ in ker), 3),
            "end_to_end_cpu_ratio": round(h_cpu / min(c for _, c in lob), 3),
            "kernel_cpu_ratio": round(h_cpu / min(c for _, c in ker), 3),
            "hftbacktest_position": hpos,
            "hftbacktest_wakeups": hn,
        }
    fig["load_avg_1m_after"] = round(os.getloadavg()[0], 2)
    return fig


def report(fig: dict) -> str:
    lines = []
    if "lobterm_kernel_s" in fig:
        lines += _speed_lines(fig)
    if "memory_ratio" in fig:
        big = next(k for k in fig if k.startswith("peak_rss_mb_") and k != "peak_rss_mb_1x")
        lines.append(
            f"  lobterm peak memory (fast path, cache warm; 1x = {fig['memory_session_seconds']:g} s) "
            f"{fig['peak_rss_mb_1x']:.0f} MB at 1x, {fig[big]:.0f} MB at {big.rsplit('_', 1)[1]} = "
            f"{fig['memory_ratio']:.2f}x (target <= 1.5x)"
        )
    return "\n".join(lines)


def _row(name: str, wall: dict, cpu: dict, rows: int, ratio: str) -> str:
    return (
        f"  {name:<29} {wall['best']:>8.3f} {cpu['best']:>8.3f}  {rows / cpu['best']:>12,.0f}"
        f"  ({wall['best']:.3f}..{wall['worst']:.3f}){ratio}"
    )


def _speed_lines(fig: dict) -> list[str]:
    rows = fig["market_rows"]
    e, ec = fig["lobterm_end_to_end_s"], fig["lobterm_end_to_end_cpu_s"]
    k, kc = fig["lobterm_kernel_s"], fig["lobterm_kernel_cpu_s"]
    peer = "hftbacktest_s" in fig
    lines = [
        f"peer backtest: a {fig['session_seconds']:g} s sim session, {fig['session_events']:,} events, "
        f"{rows:,} market rows"
        + (f" ({fig['hftbacktest_events']:,} hftbacktest events)" if peer else "")
        + f"; 5+5 ladder requoted on every event; best of {len(e['runs'])}; load "
        f"{fig['load_avg_1m']} -> {fig['load_avg_1m_after']} (1 min)",
        f"  {'':<29} {'wall s':>8} {'CPU s':>8}  {'rows/CPU s':>12}  (wall best..worst)",
    ]
    if peer:
        h, hc = fig["hftbacktest_s"], fig["hftbacktest_cpu_s"]
        lines.append(_row("hftbacktest loop", h, hc, rows, ""))
    ratio_e = (
        f"  = {fig['end_to_end_cpu_ratio']:.2f}x hftbacktest (CPU; wall {fig['end_to_end_ratio']:.2f}x;"
        " target >= 0.5x)"
        if peer
        else ""
    )
    ratio_k = (
        f"  = {fig['kernel_cpu_ratio']:.2f}x hftbacktest (CPU; wall {fig['kernel_ratio']:.2f}x;"
        " target >= 0.75x)"
        if peer
        else ""
    )
    lines += [
        _row("lobterm fast path end to end", e, ec, rows, ratio_e),
        _row("lobterm numba kernel alone", k, kc, rows, ratio_k),
        f"  (lobterm's own wall_seconds, without opening the file and markouts: "
        f"{fig['lobterm_wall_seconds']['best']:.3f} s; decode {fig['lobterm_decode_s']:.3f} s; "
        f"compile or load once {fig['compile_or_load_s']} s, not counted)",
        f"  fills: lobterm {fig['lobterm_fills']:,}, position {fig['lobterm_position']}"
        + (
            f"; hftbacktest position {fig['hftbacktest_position']:g} ({fig['hftbacktest_wakeups']:,} wake-ups)"
            if peer
            else ""
        ),
    ]
    if not peer:
        lines.append("  hftbacktest is not installed (pip install 'lobterm[peers]'): lobterm's figures only")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="lobterm's backtest fast path beside hftbacktest's loop.")
    ap.add_argument("--seconds", type=float, default=2000.0, help="session length (default 2000)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-memory", action="store_true", help="skip the 1x / 10x peak memory figures")
    ap.add_argument("--memory-only", action="store_true", help="only the 1x / 10x peak memory figures")
    ap.add_argument(
        "--memory-seconds",
        type=float,
        default=None,
        help="the 1x session of the memory figures (default: --seconds; 10x is that repeated)",
    )
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    fig = run(a.seconds, a.repeat, not a.no_memory, memory_seconds=a.memory_seconds, speed=not a.memory_only)
    print(json.dumps(fig) if a.json else report(fig))
    return 0

"""Streams: the venue's books and trades as engine events, and the watch loops that keep every stream
(public and private) alive.

Books. `watch_order_book` hands back one live book object that ccxt mutates in place and coalesces
updates into. We keep, per side, the levels we published last (ticks -> the venue's size) and after
each resolution publish one `BookDelta` per level that differs, with contiguous sequence numbers,
converting prices and sizes to ticks and lots once (a per-price cache). The first book after a
(re)subscription is published whole as a `BookSnapshot`.

The adapter's copy and the engine's L2 book must never diverge, so nothing half-understood is
published: a frame with a malformed level (no size, not a number, off the tick grid) or a snapshot the
L2 book would refuse (a price listed twice on one side) is counted in `malformed_frames`, logged, and
the book stream restarted at once with the market stale until the new snapshot (repeated restarts back
off).

Gaps. Every break in a synced book's continuity that the adapter sees is a gap: a sequence gap ccxt
detects (`ChecksumError`, `InvalidNonce`), a frame we could not read, a receive loop a frame killed, a
dropped book connection (updates were lost meanwhile). Each is counted in `gaps` and published as a
`BookGap` (the kernel, the metrics' `lobterm_feed_gaps_total` and the headless summary count it with
the L2 book's own), once per break: the book is stale until its new snapshot, and a second failure
before then is the same gap. A quiet stream the watchdog resubscribes is a stall, not a gap.

What ccxt does not do: one undecodable frame kills a ccxt client's receive loop while the socket stays
open. Two detectors: frames waiting unread in the socket buffer for `DEAD_LOOP_S` while the client
handles no message (a dead receive loop, counted in `dead_loops` and `malformed_frames`; a frame that
has just arrived on a stream quiet for longer than that is not one: the clock starts when the watchdog
first sees the frame waiting), and a
stream quiet for longer than `stale_after_s` (a silent venue or a half-open connection). Either way the
client is closed, removed from `exchange.clients`, and the stream watched again. Errors on a stream are
retried with exponential backoff and jitter. A failure of the private (order) stream makes the venue
reconcile its orders once that stream is subscribed again.

Feed latency. Each book update and public trade carries the venue's own time (ccxt's `timestamp`: on
Binance the depth event's `E`, a trade's `T`), in ms. Per market we keep (venue time, local receive time)
pairs in ns, raw (the clock offset is the backtest's business, lobterm/backtest/models.py), at most
`FEED_SAMPLES_MAX` between two `take_feed_latency()` calls (a uniform reservoir: memory stays bounded
whatever the rate); the kernel notes them in the session file (`Note("feed", "latency", ...)`). A
missing or unreadable venue time, or one more than an hour from ours, is skipped and counted in
`bad_venue_times`.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import ccxt

from lobterm.engine.events import BUY, SELL, BookDelta, BookGap, BookSnapshot, Trade
from lobterm.engine.instrument import MAX_UNITS, Instrument, InstrumentError
from lobterm.venues.ccxt.errors import log
from lobterm.venues.resilience import Backoff

if TYPE_CHECKING:
    from lobterm.venues.ccxt.markets import Contracts
    from lobterm.venues.ccxt.venue import CcxtVenue

__all__ = ["MarketStreams", "DEAD_LOOP_S", "WATCHDOG_EVERY_S"]

DEAD_LOOP_S = 0.5  # frames unread this long while the client handles nothing: its receive loop is dead
WATCHDOG_EVERY_S = 0.1
_TICK_CACHE_MAX = 200_000
PRIVATE_STREAMS = ("orders", "mytrades")
FEED_SAMPLES_MAX = 32  # feed latency samples kept per market between two takes (a reservoir)
_MAX_SKEW_NS = 3_600_000_000_000  # a venue time further than this from ours is garbage, not latency
_MIN_VENUE_MS, _MAX_VENUE_MS = 946_684_800_000, 7_258_118_400_000  # 2000-01-01 .. 2200-01-01
_ABSENT = object()  # a level we have not published (a size of None must not look like one we have)


class MalformedFrame(ValueError):
    """A frame (or a level in it) that cannot be turned into engine events as it stands."""


class MarketStreams:
    """The stream tasks of one ccxt venue and the converters of its market data."""

    def __init__(self, venue: CcxtVenue) -> None:
        self.venue = venue
        self.tasks: dict[str, asyncio.Task[object]] = {}
        self.seq: dict[str, int] = {}
        # Per symbol, per side: ticks -> the venue's size we published for that level (as the venue gave it).
        self.published: dict[str, tuple[dict[int, Any], dict[int, Any]]] = {}
        self.book_obj: dict[str, Any] = {}
        self.unsynced: set[str] = set()
        self.book_nonce: dict[str, int | None] = {}  # the venue's update id of what we published last
        self.ticks: dict[str, dict[float, int]] = {}  # per symbol: price float -> ticks
        self.lots: dict[str, dict[float, int]] = {}  # per symbol: size float -> lots
        self.seen_trades: dict[str, int] = {}
        self.restart_backoff: dict[str, Backoff] = {}
        self.private_failed_at: float | None = None
        # The private clients' connections when the order stream last failed: "ready" means a new one.
        self.failed_connections: list[Any] = []
        # url -> (client, its last_message_at, when the watchdog first saw frames waiting unread)
        self.unread: dict[str, tuple[Any, Any, int]] = {}
        # Feed latency (module docstring): per symbol, [venue ns, local ns] pairs and how many were offered
        # since the last take; the venue time of the book we sampled last (ccxt resolves one live object).
        self.feed_samples: dict[str, list[list[int]]] = {}
        self.feed_offered: dict[str, int] = {}
        self.feed_book_ms: dict[str, Any] = {}

    # ---- starting and restarting -----------------------------------------------------------------
    def start(self) -> None:
        v = self.venue
        for symbol in v.instruments:
            self.seq.setdefault(symbol, 0)
            self.unsynced.add(symbol)
            self.start_stream(f"book:{symbol}")
            self.start_stream(f"trades:{symbol}")
        if v.config.has_keys:
            for stream in PRIVATE_STREAMS:
                self.start_stream(stream)
        self.tasks["watchdog"] = asyncio.get_running_loop().create_task(
            self._watchdog_loop(), name=f"{v.name}-watchdog"
        )

    def start_stream(self, stream: str, delay_s: float = 0.0) -> None:
        v = self.venue
        kind, _, symbol = stream.partition(":")
        coro: Awaitable[None]
        if kind == "book":
            coro = self._book_loop(symbol, delay_s)
            v.watchdog.watch(stream, v.config.stale_after_s)
        elif kind == "trades":
            coro = self._trade_loop(symbol, delay_s)
        elif kind == "orders":
            coro = self._private_loop("orders", v.orders.watch_orders_once, delay_s=delay_s)
        else:
            coro = self._private_loop("mytrades", v.orders.watch_my_trades_once, delay_s=delay_s)
        self.tasks[stream] = asyncio.get_running_loop().create_task(coro, name=f"{v.name}-{stream}")

    def restart_stream(self, stream: str, why: str, *, gap: bool = False) -> None:
        """Close the ccxt client(s) carrying `stream`, drop them from `exchange.clients`, and watch the
        stream again (a book stream resnapshots; its market is stale until then; `gap`: updates were lost,
        a gap in a synced book's stream). The first restart goes
        at once; restarts in quick succession back off (a venue that keeps sending what we cannot read
        must not make us hammer it)."""
        v = self.venue
        kind, _, symbol = stream.partition(":")
        backoff = self.restart_backoff.setdefault(stream, Backoff(0.25, 10.0, rng=v.rng))
        delay = 0.0 if backoff.attempts == 0 else backoff.next_delay()
        if backoff.attempts == 0:
            backoff.attempts = 1
        log.warning("%s %s: %s; resubscribing%s", v.name, stream, why, f" in {delay:.2f} s" if delay else "")
        task = self.tasks.pop(stream, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()
        ex = v.exchange
        if kind in ("book", "trades") and ex is not None:
            for url, client in list((ex.clients or {}).items()):
                if stream in self.streams_on(client):
                    del ex.clients[url]
                    v.spawn(_close_client(client))
        if kind == "book":
            if ex is not None and symbol in ex.orderbooks:
                del ex.orderbooks[symbol]
            self.book_obj.pop(symbol, None)
            self.mark_unsynced(symbol, why, gap=gap)
        if v.running:
            self.start_stream(stream, delay)

    def streams_on(self, client: Any) -> list[str]:
        try:
            keys = " ".join(map(str, list(client.subscriptions) + list(client.futures)))
        except Exception:
            return []
        low = keys.lower()
        out = []
        for symbol in self.venue.instruments:
            if symbol in keys and "book" in low:
                out.append(f"book:{symbol}")
            if symbol in keys and "trade" in low and "mytrade" not in low:
                out.append(f"trades:{symbol}")
        return out

    def private_stream_ready(self) -> bool:
        """The private (order) stream's client is connected and subscribed: a reconciliation now sees
        everything the stream will not."""
        ex = self.venue.exchange
        if ex is None:
            return False
        for client in list((ex.clients or {}).values()):
            if self.streams_on(client):
                continue
            try:
                connected = client.connected
                if any(connected is old for old in self.failed_connections):
                    continue  # the connection that failed, not yet replaced
                if not connected.done() or connected.cancelled() or connected.exception() is not None:
                    continue
                if not client.subscriptions:
                    continue
                if any(str(k).startswith("authenticate") for k in client.futures):
                    continue
            except Exception:
                continue
            return True
        return False

    # ---- the loops -----------------------------------------------------------------------------
    async def _book_loop(self, symbol: str, delay_s: float = 0.0) -> None:
        v = self.venue
        if delay_s:
            await asyncio.sleep(delay_s)
        backoff = Backoff(0.05, 5.0, rng=v.rng)
        stream = f"book:{symbol}"
        ex = v.exchange
        while v.running:
            try:
                ob = await ex.watch_order_book(symbol, v.config.depth)
            except BaseException as exc:
                _reraise_if_ours(exc)
                self._book_failed(symbol, exc)
                delay = backoff.next_delay()
                # The first resubscription after a gap goes at once: the venue is fine, our copy is not.
                await asyncio.sleep(
                    0 if isinstance(exc, ccxt.InvalidNonce) and backoff.attempts == 1 else delay
                )
                continue
            backoff.reset()
            v.watchdog.touch(stream)
            self.on_book(symbol, ob)
            if stream not in self.tasks or self.tasks[stream] is not asyncio.current_task():
                return  # the frame was malformed: a new task has taken over this stream

    def _book_failed(self, symbol: str, exc: BaseException) -> None:
        v = self.venue
        if isinstance(exc, ccxt.InvalidNonce):  # ChecksumError included: ccxt found a gap
            why = "sequence gap: resubscribing and fetching a new snapshot"
        else:
            v.stats["stream_errors"] += 1
            why = f"{type(exc).__name__}: {v.scrub(str(exc))[:200]}"
            log.warning("%s %s book stream: %s", v.name, symbol, why)
        self.book_obj.pop(symbol, None)
        self.mark_unsynced(symbol, why, gap=True)

    async def _trade_loop(self, symbol: str, delay_s: float = 0.0) -> None:
        async def once() -> None:
            self.on_trades(symbol, await self.venue.exchange.watch_trades(symbol))

        await self._private_loop(f"{symbol} trade", once, max_delay=5.0, delay_s=delay_s)

    async def _private_loop(
        self, what: str, once: Callable[[], Awaitable[None]], max_delay: float = 10.0, delay_s: float = 0.0
    ) -> None:
        """Run `once` until stopped; a failure is logged (scrubbed of secrets), counted and retried with
        backoff. A failure of the order stream asks for a reconciliation after it is back."""
        v = self.venue
        if delay_s:
            await asyncio.sleep(delay_s)
        backoff = Backoff(0.1, max_delay, rng=v.rng)
        while v.running:
            try:
                await once()
            except BaseException as exc:
                _reraise_if_ours(exc)
                v.stats["stream_errors"] += 1
                log.warning("%s %s stream: %s: %s", v.name, what, type(exc).__name__, v.scrub(str(exc))[:200])
                if what in PRIVATE_STREAMS:
                    self.private_failed_at = v.mono()
                    self._remember_failed_connections()
                    v.reconciler.after_reconnect(f"the {what} stream reconnected")
                await asyncio.sleep(backoff.next_delay())
                continue
            backoff.reset()

    def _remember_failed_connections(self) -> None:
        ex = self.venue.exchange
        if ex is None:
            return
        for client in list((ex.clients or {}).values()):
            connected = getattr(client, "connected", None)
            if connected is not None and not self.streams_on(client):
                if not any(connected is old for old in self.failed_connections):
                    self.failed_connections.append(connected)
        del self.failed_connections[:-20]  # bounded: only the last few can still be in `clients`

    # ---- the watchdog ----------------------------------------------------------------------------
    async def _watchdog_loop(self) -> None:
        v = self.venue
        while v.running:
            await asyncio.sleep(WATCHDOG_EVERY_S)
            try:
                self.watchdog_tick()
            except Exception as exc:  # the watchdog must outlive anything it finds
                log.warning("%s watchdog: %s: %s", v.name, type(exc).__name__, v.scrub(str(exc))[:200])

    def watchdog_tick(self) -> None:
        v = self.venue
        for stream in v.watchdog.stale():
            v.stats["stalls"] += 1
            self.restart_stream(stream, f"no update for {v.config.stale_after_s:g} s")
        now_ms = int(time.time() * 1000)
        ex = v.exchange
        for url, client in list((ex.clients or {}).items()):
            try:
                buf = client.buffer
            except Exception:
                buf = None
            last = getattr(client, "last_message_at", None)
            if not buf or last is None:
                self.unread.pop(url, None)
                continue
            seen = self.unread.get(url)
            if seen is None or seen[0] is not client or seen[1] != last:
                self.unread[url] = (client, last, now_ms)  # waiting since now (or read meanwhile)
                continue
            if now_ms - seen[2] > DEAD_LOOP_S * 1000 and now_ms - last > DEAD_LOOP_S * 1000:
                self.unread.pop(url, None)
                # Frames are waiting that nobody reads: a bad frame stopped this client's receive loop.
                v.stats["dead_loops"] += 1
                v.stats["malformed_frames"] += 1
                streams = self.streams_on(client)
                private = not streams
                if ex.clients.get(url) is client:
                    del ex.clients[url]
                    v.spawn(_close_client(client))
                for stream in streams:
                    self.restart_stream(stream, "a frame stopped the receive loop", gap=True)
                if private and v.config.has_keys:
                    # The private watchers see their futures rejected by the close and watch again.
                    log.warning("%s private stream: a frame stopped the receive loop; reconnecting", v.name)
        v.orders.on_timer()

    # ---- market data conversion --------------------------------------------------------------
    def on_book(self, symbol: str, ob: Any) -> None:
        """Publish what changed in ccxt's live book `ob`, or restart the stream if it holds garbage."""
        try:
            if self.book_obj.get(symbol) is not ob or symbol in self.unsynced:
                self._publish_snapshot(symbol, ob)
            else:
                self._publish_deltas(symbol, ob)
        except Exception as exc:  # a venue's garbage must not end the stream task
            self.malformed(symbol, exc)
            return
        try:
            ts = ob.get("timestamp")
        except Exception:
            ts = None
        if ts is None or ts != self.feed_book_ms.get(symbol):  # the same book resolved again: no news
            self.feed_book_ms[symbol] = ts
            self.sample_feed(symbol, ts, self.venue.clock.now())

    # ---- feed latency ----------------------------------------------------------------------------
    def sample_feed(self, symbol: str, venue_ms: Any, local_ns: int) -> None:
        """Keep (venue time, local receive time) of one update of `symbol` (module docstring); a venue
        time that cannot be one is counted in `bad_venue_times` and skipped."""
        venue_ns = venue_time_ns(venue_ms)
        if venue_ns is None or abs(local_ns - venue_ns) > _MAX_SKEW_NS:
            self.venue.stats["bad_venue_times"] += 1
            return
        kept = self.feed_samples.setdefault(symbol, [])
        n = self.feed_offered.get(symbol, 0) + 1
        self.feed_offered[symbol] = n
        if len(kept) < FEED_SAMPLES_MAX:
            kept.append([venue_ns, local_ns])
        else:  # reservoir sampling: each of the n offered is kept with probability FEED_SAMPLES_MAX / n
            j = self.venue.rng.randrange(n)
            if j < FEED_SAMPLES_MAX:
                kept[j] = [venue_ns, local_ns]

    def take_feed_latency(self) -> dict[str, list[list[int]]]:
        """The feed latency samples kept since the last call, per symbol: [[venue ns, local ns], ...]."""
        out = {s: sorted(v) for s, v in self.feed_samples.items() if v}
        self.feed_samples.clear()
        self.feed_offered.clear()
        return out

    def _contracts(self, symbol: str) -> Contracts | None:
        """The market's contracts when its amounts are not base units (None: as they are)."""
        c = self.venue.contracts.get(symbol)
        return None if c is None or c.is_unit else c

    def malformed(self, symbol: str, exc: BaseException) -> None:
        v = self.venue
        v.stats["malformed_frames"] += 1
        why = f"malformed book frame ({type(exc).__name__}: {v.scrub(str(exc))[:120]})"
        self.restart_stream(f"book:{symbol}", why, gap=True)

    def _publish_deltas(self, symbol: str, ob: Any) -> None:
        """One `BookDelta` per level that differs from what we published. Our copy is keyed by ticks, as
        the L2 book is: two spellings of one price cannot make the copies differ. A frame with a level
        we cannot read raises before anything is published (the caller restarts the stream: the copy,
        half updated, is thrown away with it)."""
        v = self.venue
        inst = v.instruments[symbol]
        cs = self._contracts(symbol)
        ticks = self.ticks[symbol]
        lots = self.lots[symbol]
        now = v.clock.now()
        bids_pub, asks_pub = self.published[symbol]
        out: list[BookDelta] = []
        seq = self.seq[symbol]
        name = v.name
        for side, levels, pub in ((BUY, ob["bids"], bids_pub), (SELL, ob["asks"], asks_pub)):
            present = set()
            for level in levels:
                p = level[0]
                s = level[1]
                t = ticks.get(p)
                if t is None or pub.get(t, _ABSENT) != s:
                    t, n = _level(inst, ticks, lots, p, s, cs)
                    if pub.get(t, _ABSENT) != s:
                        pub[t] = s
                        seq += 1
                        out.append(BookDelta(now, name, symbol, seq, side, t, n))
                if t in present:
                    raise MalformedFrame(f"price {p!r} listed twice on one side")
                present.add(t)
            if len(pub) != len(present):
                for t in [t for t in pub if t not in present]:
                    del pub[t]
                    seq += 1
                    out.append(BookDelta(now, name, symbol, seq, side, t, 0))
        self.seq[symbol] = seq
        self.book_nonce[symbol] = _nonce(ob)
        if out:
            v.stats["deltas"] += len(out)
            v.bus.publish_many(out)

    def _publish_snapshot(self, symbol: str, ob: Any) -> None:
        v = self.venue
        inst = v.instruments[symbol]
        cs = self._contracts(symbol)
        ticks = self.ticks.setdefault(symbol, {})
        lots = self.lots.setdefault(symbol, {})
        sides = []
        pubs: tuple[dict[int, Any], dict[int, Any]] = ({}, {})
        for side, levels in ((BUY, ob["bids"]), (SELL, ob["asks"])):
            out = []
            seen: set[int] = set()
            pub = pubs[side]
            for level in levels:
                p, s = level[0], level[1]
                t, n = _level(inst, ticks, lots, p, s, cs)
                if t in seen:
                    # The L2 book refuses such a snapshot: publishing our copy anyway would split them.
                    raise MalformedFrame(f"price {p!r} listed twice on one side")
                seen.add(t)
                if n > 0:
                    out.append((t, n))
                    pub[t] = s
            sides.append(tuple(out))
        self.published[symbol] = pubs
        self.book_obj[symbol] = ob
        self.book_nonce[symbol] = _nonce(ob)
        v.stats["snapshots"] += 1
        was_unsynced = symbol in self.unsynced
        v.bus.publish(BookSnapshot(v.clock.now(), v.name, symbol, self.seq[symbol], sides[0], sides[1]))
        backoff = self.restart_backoff.get(f"book:{symbol}")
        if backoff is not None:
            backoff.reset()
        if was_unsynced:
            self.unsynced.discard(symbol)
            if v.stats["snapshots"] > len(v.instruments):
                v.stats["resyncs"] += 1
            if v.market_state_hook is not None:
                v.market_state_hook(v.name, symbol, False)
            if not self.unsynced:
                v.status("up")

    def publish_snapshot(self, symbol: str | None = None) -> None:
        """Publish the current book(s) whole again (the kernel asks after it saw a gap)."""
        for sym in [symbol] if symbol else list(self.venue.instruments):
            ob = self.book_obj.get(sym)
            if ob is not None:
                try:
                    self._publish_snapshot(sym, ob)
                except Exception as exc:
                    self.malformed(sym, exc)

    def mark_unsynced(self, symbol: str, why: str, *, gap: bool = False) -> None:
        """The book of `symbol` is stale until its next snapshot. With `gap` (updates were lost), a book
        that was synced counts a gap and publishes a `BookGap`: one per break, however it showed."""
        v = self.venue
        if not v.attached:
            return
        first = symbol not in self.unsynced
        self.unsynced.add(symbol)
        if gap and first:
            v.stats["gaps"] += 1
            v.bus.publish(BookGap(v.clock.now(), v.name, symbol, self.seq.get(symbol, 0) + 1, 0))
        if first and v.market_state_hook is not None:
            v.market_state_hook(v.name, symbol, True)
        if v.state != "resyncing" or first:
            v.status("resyncing" if v.stats["snapshots"] else "connecting", f"{symbol}: {why}")

    def on_trades(self, symbol: str, trades: Any) -> None:
        """Publish the venue's public trades; a trade that cannot be read is counted and skipped (a print
        is not state: the next one is as good)."""
        v = self.venue
        inst = v.instruments[symbol]
        now = v.clock.now()
        out = []
        try:
            items = list(trades)
        except Exception:
            v.stats["bad_trades"] += 1
            return
        for t in items:
            try:
                price = inst.ticks(t["price"])
                size = v.lots_of(symbol, t["amount"])
                aggressor = SELL if t.get("side") == "sell" else BUY
                raw_id = t.get("id")
            except (InstrumentError, KeyError, TypeError, AttributeError, ValueError):
                v.stats["bad_trades"] += 1
                continue
            tid = int_id(raw_id)
            if isinstance(raw_id, (int, str)) and str(raw_id).isdigit():  # increasing ids: drop replays
                last = self.seen_trades.get(symbol)
                if last is not None and tid is not None and tid <= last:
                    continue  # a resubscription can hand back trades we already published
                self.seen_trades[symbol] = tid or 0
            out.append(Trade(now, v.name, symbol, price, size, aggressor, tid or 0))
            try:
                ts = t.get("timestamp")
            except Exception:
                ts = None
            self.sample_feed(symbol, ts, now)
        if out:
            v.stats["trades"] += len(out)
            v.bus.publish_many(out)


# ---- helpers -------------------------------------------------------------------------------------
def _level(
    inst: Instrument,
    ticks: dict[float, int],
    lots: dict[float, int],
    p: Any,
    s: Any,
    contracts: Contracts | None = None,
) -> tuple[int, int]:
    """(ticks, lots) of one venue level (its size in `contracts` when given: a contract market's book
    counts contracts); raises (InstrumentError, TypeError) for garbage."""
    t = ticks.get(p)
    if t is None:
        if len(ticks) > _TICK_CACHE_MAX:
            ticks.clear()
        t = ticks[p] = inst.ticks(p)
    n = lots.get(s)
    if n is None:
        if len(lots) > _TICK_CACHE_MAX:
            lots.clear()
        n = lots[s] = inst.lots(s if contracts is None else contracts.to_base(s), allow_zero=True)
    if not (0 < t <= MAX_UNITS and 0 <= n <= MAX_UNITS):
        raise MalformedFrame(f"level {p!r} x {s!r} is out of range")
    return t, n


def venue_time_ns(ms: Any) -> int | None:
    """A venue timestamp in ms (ccxt's `timestamp`: an int, or a whole float) as ns since the epoch; None
    for anything else (missing, a bool, a string, NaN, fractional garbage, before 2000 or after 2200)."""
    if type(ms) is float:
        if not ms.is_integer():
            return None
        ms = int(ms)
    if type(ms) is not int or not _MIN_VENUE_MS <= ms <= _MAX_VENUE_MS:
        return None
    return ms * 1_000_000


def _nonce(ob: Any) -> int | None:
    try:
        nonce = ob.get("nonce")
    except AttributeError:
        return None
    return nonce if isinstance(nonce, int) else None


def int_id(value: Any) -> int | None:
    """A venue id as an int for our events: a numeric id as it is, any other hashed to a positive int
    that is the same in every process (a session replayed elsewhere must match; `hash()` is salted)."""
    if value is None:
        return None
    try:
        n = int(value)
    except (TypeError, ValueError, OverflowError):
        n = -1
    if 0 <= n < (1 << 63):
        return n
    digest = hashlib.blake2b(str(value).encode("utf-8", "replace"), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 2


def _reraise_if_ours(exc: BaseException) -> None:
    """Re-raise `exc` if it is our own task being cancelled (or not an ordinary error). A ccxt client
    that is closed cancels the futures its watchers await: that CancelledError is a stream error."""
    if isinstance(exc, asyncio.CancelledError):
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise exc
        return
    if not isinstance(exc, Exception):
        raise exc


async def _close_client(client: Any) -> None:
    try:
        client.error = client.error or ccxt.NetworkError("closed by lobterm's watchdog")
        await client.close()
    except Exception:
        pass

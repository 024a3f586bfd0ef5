"""Reconciliation: the venue is the truth about our orders, our fills and our balances.

On start, after every reconnect of the private (order) stream, and every `reconcile_every_s`, the
reconciler asks the venue for its open orders, our trades since the last reconciliation and (spot) the
balances, and then:
- a trade we have not published is published as a Fill (exactly once: `OrderDesk` keys fills by the
  venue's trade id, whichever path brings them first);
- an order we think is working that the venue does not list as open is resolved, never retried
  blindly: its report (one `fetch_orders` per market, or `fetch_order`) says filled (its missing fills
  are fetched and published, then Done), cancelled or expired (Cancelled, Done); an order the venue
  has no record of (it restarted, or forgot it) is over: Cancelled and Done as expired;
- a cancel answered "unknown order" asks for the same check at once (`check`);
- each currency's balance is compared with its balance at start plus our fills since: a difference
  seen twice in a row is published as `PositionMismatch`, counted in `balance_mismatches`, and logged
  (the venue is the truth; nothing is "corrected" behind the trader's back);
- at start, orders at the venue carrying a lobterm client id from another run are orphans, handled per
  `orphan_orders`: "cancel" (the default), "adopt" (this run tracks them, applies their fills and
  cancels them on shutdown) or "leave"; what was done is logged and shown as a VenueStatus detail.
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import ccxt

from lobterm.engine.events import OUR_OWNER, PositionMismatch, Rejected
from lobterm.engine.instrument import InstrumentError, to_decimal
from lobterm.venues.ccxt.errors import classify_error, log
from lobterm.venues.ccxt.orders import CLIENT_ID, LiveOrder

if TYPE_CHECKING:
    from lobterm.venues.ccxt.venue import CcxtVenue

__all__ = ["Reconciler"]

TRADES_SLACK_MS = 5_000  # trades are fetched from this long before the last reconciliation began
READY_WAIT_S = 15.0  # how long a reconnect waits for the private stream before reconciling anyway
_ORDERS_LIMIT = 1000


class Reconciler:
    """Reconciliation of one keyed ccxt venue (see the module docstring)."""

    def __init__(self, venue: CcxtVenue) -> None:
        self.venue = venue
        self.since_ms: int | None = None
        self.start_balances: dict[str, Decimal] | None = None
        self.pending: dict[int, tuple[LiveOrder, str]] = {}
        self.lock = asyncio.Lock()
        self.runs = 0
        self.failures = 0
        self.last_run_ms: int | None = None
        self.mismatches: dict[str, tuple[Decimal, Decimal]] = {}  # asset -> (ours, the venue's), shown
        self._suspects: dict[str, tuple[Decimal, Decimal]] = {}  # seen once, not yet reported
        self.orphans: dict[str, int] = {"cancel": 0, "adopt": 0, "leave": 0}
        self.orphans_done = False
        self._check_task: asyncio.Task[object] | None = None
        self._reconnect_task: asyncio.Task[object] | None = None

    # ---- when ------------------------------------------------------------------------------------
    async def on_start(self) -> None:
        """Before any order of ours exists: the balances we start from and the orphans of earlier runs.
        A failure here is logged and retried by the first reconciliation."""
        v = self.venue
        self.since_ms = v.started_ms - TRADES_SLACK_MS
        try:
            await self._fetch_start_balances()
            await self._handle_orphans()
        except Exception as exc:
            log.warning("%s: reconciliation at start: %s", v.name, v.venue_error(exc, "start"))

    async def loop(self) -> None:
        """The background reconciliation: once the order stream is up, then every `reconcile_every_s`."""
        v = self.venue
        await self._wait_private_ready()
        await self.run("start")
        while v.running and not v.stopping:
            await asyncio.sleep(v.config.reconcile_every_s)
            if v.running and not v.stopping:
                await self.run("periodic")

    def after_reconnect(self, why: str) -> None:
        """The private stream failed: reconcile once it is subscribed again (one such wait at a time)."""
        v = self.venue
        if not v.running or v.stopping:
            return
        if self._reconnect_task is not None and not self._reconnect_task.done():
            return

        async def go() -> None:
            await asyncio.sleep(0.2)  # let the failed client go before looking for the new one
            await self._wait_private_ready()
            await self.run(why)

        self._reconnect_task = v.spawn(go())

    def check(self, o: LiveOrder, why: str) -> None:
        """Find out at once what became of `o` (coalesced with other checks asked meanwhile)."""
        v = self.venue
        if o.checking or o.order_id in self.pending:
            return
        o.checking = True
        self.pending[o.order_id] = (o, why)
        if self._check_task is None or self._check_task.done():

            async def go() -> None:
                await asyncio.sleep(0.05)  # a strategy cancels many orders at once: one request for all
                while self.pending:
                    batch = list(self.pending.values())
                    self.pending.clear()
                    async with self.lock:
                        await self._resolve([o for o, _ in batch], batch[0][1])

            self._check_task = v.spawn(go())

    async def _wait_private_ready(self) -> None:
        v = self.venue
        deadline = v.mono() + READY_WAIT_S
        while v.running and v.mono() < deadline and not v.streams.private_stream_ready():
            await asyncio.sleep(0.1)

    # ---- one reconciliation ------------------------------------------------------------------------
    async def run(self, why: str) -> bool:
        """One full reconciliation; False (logged, counted) when the venue could not be asked."""
        v = self.venue
        if not v.config.has_keys or v.exchange is None:
            return False
        async with self.lock:
            started_ms = int(time.time() * 1000)
            began = v.mono()
            try:
                if self.start_balances is None:
                    await self._fetch_start_balances()
                if not self.orphans_done:
                    await self._handle_orphans()
                open_orders = await self._open_orders()
                await self._fetch_trades()
                listed = {str(r.get("id")) for r in open_orders} | {
                    str(r.get("clientOrderId")) for r in open_orders
                }
                missing = [
                    o
                    for o in list(v.orders.orders.values())
                    if o.terminal is None
                    and not o.placing
                    and not o.checking
                    and o.known_at < began
                    and o.venue_id not in listed
                    and o.client_id not in listed
                ]
                for o in missing:
                    o.checking = True
                if missing:
                    log.info(
                        "%s: %d order(s) we hold working are not open at the venue (%s)",
                        v.name,
                        len(missing),
                        why,
                    )
                    await self._resolve(missing, why)
                await self._compare_balances()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.failures += 1
                v.stats["reconcile_failures"] += 1
                log.warning(
                    "%s: reconciliation (%s) failed: %s", v.name, why, v.venue_error(exc, "reconcile")
                )
                return False
            self.runs += 1
            v.stats["reconciliations"] += 1
            self.since_ms = started_ms - TRADES_SLACK_MS
            self.last_run_ms = started_ms
            return True

    async def _open_orders(self) -> list[dict[str, Any]]:
        v = self.venue
        out: list[dict[str, Any]] = []
        for symbol in v.instruments:
            for r in await v.exchange.fetch_open_orders(symbol):
                if isinstance(r, dict):
                    out.append(r)
        return out

    async def _fetch_trades(self) -> None:
        v = self.venue
        ex = v.exchange
        if not ex.has.get("fetchMyTrades"):
            return
        trades: list[dict[str, Any]] = []
        for symbol in v.instruments:
            for t in await ex.fetch_my_trades(symbol, self.since_ms):
                if isinstance(t, dict):
                    trades.append(t)
        trades.sort(key=lambda t: ts if isinstance(ts := t.get("timestamp"), int) else 0)
        before = v.stats["fills"]
        for t in trades:
            v.orders.on_my_trade(t, from_stream=False)
        if v.stats["fills"] > before:
            n = v.stats["fills"] - before
            v.stats["missed_fills"] += n
            log.warning("%s: %d fill(s) the order stream missed were found and applied", v.name, n)

    async def _resolve(self, orders: list[LiveOrder], why: str) -> None:
        """Ask the venue what became of `orders` and publish it (see the module docstring)."""
        v = self.venue
        ex = v.exchange
        by_symbol: dict[str, list[LiveOrder]] = {}
        for o in orders:
            by_symbol.setdefault(o.symbol, []).append(o)
        for symbol, group in by_symbol.items():
            reports: dict[str, dict[str, Any]] = {}
            complete = False
            if ex.has.get("fetchOrders"):
                since = min(o.sent_ms for o in group) - 60_000
                try:
                    listed = await ex.fetch_orders(symbol, since, _ORDERS_LIMIT)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.info("%s: order history: %s", v.name, v.venue_error(exc, "fetch orders"))
                else:
                    complete = len(listed) < _ORDERS_LIMIT
                    for r in listed:
                        if isinstance(r, dict):
                            reports[str(r.get("id"))] = r
                            if r.get("clientOrderId"):
                                reports[str(r["clientOrderId"])] = r
            for o in group:
                try:
                    report = reports.get(str(o.venue_id)) or reports.get(o.client_id)
                    if report is None and not complete:
                        report = await self._fetch_order(o)
                    await self._apply(o, report, why)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # asked again at the next reconciliation
                    log.warning("%s: order %d: %s", v.name, o.order_id, v.venue_error(exc, "check"))
                finally:
                    o.checking = False

    async def _fetch_order(self, o: LiveOrder) -> dict[str, Any] | None:
        """The venue's report of `o`, or None when it has no record of it."""
        ex = self.venue.exchange
        params = {} if o.venue_id else {"clientOrderId": o.client_id}
        try:
            report = await ex.fetch_order(o.venue_id, o.symbol, params)
        except Exception as exc:
            if classify_error(exc) == "order_not_found" or isinstance(exc, ccxt.OrderNotFound):
                return None
            raise
        return report if isinstance(report, dict) else None

    async def _apply(self, o: LiveOrder, report: dict[str, Any] | None, why: str) -> None:
        v = self.venue
        if o.terminal is not None:
            return  # the stream finished it meanwhile
        if report is None:
            v.orders.gone(o, why)
            return
        status = report.get("status")
        if status == "open":
            if o.cancel_pending and "cancel" in why:
                # The venue says "unknown order" to a cancel but lists the order open: the cancel failed.
                o.cancel_pending = False
                v.bus.publish(
                    Rejected(
                        v.clock.now(),
                        v.name,
                        o.symbol,
                        o.order_id,
                        f"{v.name}: cancel refused: {why}",
                        OUR_OWNER,
                    )
                )
            return
        try:
            filled = v.lots_of(o.symbol, report.get("filled") or 0, allow_zero=True) - o.fill_base
        except InstrumentError:
            filled = o.filled
        if filled > o.filled and v.exchange.has.get("fetchMyTrades"):
            since = o.sent_ms - TRADES_SLACK_MS
            for t in await v.exchange.fetch_my_trades(o.symbol, since):
                if isinstance(t, dict) and str(t.get("order")) == str(o.venue_id):
                    v.orders.on_my_trade(t, from_stream=False)
        v.orders.on_order_update(report)
        if o.terminal is not None and o.order_id in v.orders.orders and o.filled < o.venue_filled:
            v.orders.finish(o, synthesize=True)  # the venue lists no trades for them: its totals stand

    # ---- orphans -----------------------------------------------------------------------------------
    async def _handle_orphans(self) -> None:
        v = self.venue
        policy = v.config.orphan_orders
        mine = v.orders.prefix
        found: list[dict[str, Any]] = []
        for r in await self._open_orders():
            cid = r.get("clientOrderId")
            if isinstance(cid, str) and CLIENT_ID.match(cid) and not cid.startswith(mine):
                found.append(r)
        self.orphans_done = True
        if not found:
            return
        ids = ", ".join(str(r.get("clientOrderId")) for r in found[:10]) + (" ..." if len(found) > 10 else "")
        done = 0
        if policy == "cancel":
            for r in found:
                try:
                    await v.exchange.cancel_order(r.get("id"), r.get("symbol"))
                    done += 1
                except Exception as exc:
                    if classify_error(exc) == "order_not_found":
                        continue  # it ended meanwhile
                    log.warning(
                        "%s: orphan %s: %s", v.name, r.get("clientOrderId"), v.venue_error(exc, "cancel")
                    )
            text = f"cancelled {done} of {len(found)} orphan order(s) an earlier run left: {ids}"
        elif policy == "adopt":
            for r in found:
                if v.orders.adopt(r) is not None:
                    done += 1
            text = f"adopted {done} of {len(found)} orphan order(s) an earlier run left: {ids}"
        else:
            done = len(found)
            text = f'left {done} orphan order(s) an earlier run left working (orphan_orders = "leave"): {ids}'
        self.orphans[policy] += done
        v.stats["orphans"] += len(found)
        log.warning("%s: %s", v.name, text)
        v.status(v.state, text)

    # ---- balances -----------------------------------------------------------------------------------
    async def _fetch_balances(self) -> dict[str, Decimal]:
        v = self.venue
        out, v.balances = balances_from(await v.exchange.fetch_balance())
        return out

    async def _fetch_start_balances(self) -> None:
        v = self.venue
        if not v.exchange.has.get("fetchBalance"):
            self.start_balances = {}
            return
        now = await self._fetch_balances()
        # Fills already published are in the venue's figures too: start from before them.
        net = v.orders.net
        self.start_balances = {cur: amount - net.get(cur, Decimal(0)) for cur, amount in now.items()}

    def expected_balances(self) -> dict[str, Decimal]:
        start = self.start_balances or {}
        net = self.venue.orders.net
        assets = set(start) & self._assets() | set(net)
        return {a: start.get(a, Decimal(0)) + net.get(a, Decimal(0)) for a in assets}

    def _assets(self) -> set[str]:
        out: set[str] = set()
        for symbol, inst in self.venue.instruments.items():
            if self.venue.orders.is_contract(symbol):
                continue  # a contract's position is compared in perps.py, not as balances
            out.update(x for x in (inst.base, inst.quote) if x)
        return out

    async def _compare_balances(self) -> None:
        v = self.venue
        if self.start_balances is None or not v.exchange.has.get("fetchBalance"):
            return
        venue_has = await self._fetch_balances()
        expected = self.expected_balances()
        now = v.clock.now()
        for asset, ours in sorted(expected.items()):
            theirs = venue_has.get(asset, Decimal(0))
            if ours == theirs:
                self._suspects.pop(asset, None)
                if asset in self.mismatches:
                    del self.mismatches[asset]
                    log.warning("%s: %s balance agrees with ours again (%s)", v.name, asset, _num(ours))
                    v.bus.publish(PositionMismatch(now, v.name, asset, _num(ours), _num(theirs)))
                continue
            # A fill in flight shows as a difference for a moment: report one seen twice in a row.
            if self._suspects.get(asset) != (ours, theirs):
                self._suspects[asset] = (ours, theirs)
                continue
            if self.mismatches.get(asset) == (ours, theirs):
                continue
            self.mismatches[asset] = (ours, theirs)
            v.stats["balance_mismatches"] += 1
            log.warning(
                "%s: %s balance is %s at the venue, %s by our fills since start (difference %s)",
                v.name,
                asset,
                _num(theirs),
                _num(ours),
                _num(theirs - ours),
            )
            v.bus.publish(PositionMismatch(now, v.name, asset, _num(ours), _num(theirs)))


def balances_from(bal: Any) -> tuple[dict[str, Decimal], dict[str, tuple[Decimal, Decimal]]]:
    """From ccxt's `fetch_balance` answer: total per currency, and (free, total) per currency. What cannot
    be read (a total or free that is not a finite number below 10^30, a currency that is not a name) is
    left out, never guessed."""
    out: dict[str, Decimal] = {}
    balances: dict[str, tuple[Decimal, Decimal]] = {}
    totals = bal.get("total") if isinstance(bal, dict) else None
    frees = bal.get("free") if isinstance(bal, dict) else None
    if not isinstance(totals, dict):
        return out, balances
    if not isinstance(frees, dict):
        frees = {}
    for cur, total in totals.items():
        if total is None or not isinstance(cur, str) or not cur:
            continue
        try:
            amount = to_decimal(total)
            free = to_decimal(frees.get(cur) or 0)
        except InstrumentError:
            continue
        if abs(amount) >= _MAX_BALANCE or abs(free) >= _MAX_BALANCE:
            continue
        out[cur] = amount
        balances[cur] = (free, amount)
    return out, balances


_MAX_BALANCE = Decimal(10) ** 30  # a balance at or above this is garbage


def _num(d: Any) -> str:
    return f"{d.normalize():f}" if isinstance(d, Decimal) else str(d)

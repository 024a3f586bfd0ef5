"""Linear swaps (`BTC/USDT:USDT`) on a ccxt venue: margin terms, mark price and the venue's position.

For each configured symbol whose ccxt market is a linear swap, with keys, `PerpWatch.loop` asks the
venue every `reconcile_every_s` (and once at start) for our positions (`fetch_positions`) and, when no
position carries it, the mark (`fetch_mark_price`, else the ticker's `markPrice`), and publishes:

- `PerpInfo` (once, and again when the leverage or maintenance rate changes): the leverage from the
  position (ccxt's `leverage`, else 1 / `initialMarginPercentage`), else 1x (the safest: the margin
  rule's default max_leverage is the market's own); the maintenance rate
  from the position (`maintenanceMarginPercentage`, else `maintenanceMargin / notional`), else the
  market's `info.maintMarginPercent` (Binance USDM: the rate of its highest bracket, conservative);
  the collateral is the settle currency's total balance when the watch started (the kernel adds our
  realized P&L and fees since, as for the sim);
- `MarkPrice` at every poll: the mark from the position (else the funding-rate answer, else
  `fetch_mark_price`, else the ticker), the index and the current funding rate from
  `fetch_funding_rate` (Binance USDM: `/fapi/v1/premiumIndex`'s `lastFundingRate`) where the venue
  has it (else index = mark and rate 0);
- `Funding` for each funding payment the venue booked to our account (`fetch_funding_history`;
  Binance USDM: `/fapi/v1/income?incomeType=FUNDING_FEE`) at or after this venue first started:
  once each, keyed by the venue's id (else symbol, time and amount) across polls and the venue's
  stops and starts; a later process does not book again what was paid before it started. The amount
  is the venue's (received > 0 there, paid > 0 in a `Funding`), exactly in millionths of a tick*lot
  where it fits (rounded half-even below that); the rate and mark are the last polled, the position
  the venue's at the last poll. The inventory books it as P&L (as the sim's funding);
- `PositionMismatch` (asset "BTC/USDT:USDT") when the venue's position, in base units
  (contracts x contractSize), differs twice in a row from the one it had at the first poll plus our
  fills since, and again when they agree.

A market where neither the position nor the market gives a maintenance rate gets no `PerpInfo` (its
margin line stays empty and the margin rule does not apply to it); that is logged once.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from decimal import ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING, Any

from lobterm.engine.events import BUY, OUR_OWNER, Fill, Funding, MarkPrice, PerpInfo, PositionMismatch
from lobterm.engine.instrument import FEE_SCALE, InstrumentError, to_decimal
from lobterm.venues.ccxt.errors import log

if TYPE_CHECKING:
    from lobterm.engine.instrument import Instrument

__all__ = [
    "PerpWatch",
    "is_linear_swap",
    "perp_terms",
    "position_base",
    "mark_of",
    "rate_ppb",
    "funding_key",
    "funding_units",
]

_SEEN_FUNDING_MAX = 100_000
_FUNDING_OVERLAP_MS = 3_600_000
_PPB = Decimal(1_000_000_000)


def _dec(value: Any) -> Decimal | None:
    """A finite Decimal from a ccxt number or string; None for missing or nonsense."""
    if value is None or isinstance(value, bool):
        return None
    try:
        d = to_decimal(value)
    except InstrumentError:
        return None
    return d if d.is_finite() else None


def is_linear_swap(market: dict[str, Any]) -> bool:
    return bool(market.get("swap")) and bool(market.get("linear"))


def perp_terms(market: dict[str, Any], position: dict[str, Any] | None) -> tuple[Decimal, Decimal] | None:
    """(leverage, maintenance rate) of a linear swap from our position and the market (see the module
    docstring); None when no maintenance rate is known."""
    pos = position or {}
    lev = _dec(pos.get("leverage"))
    if lev is None:
        imr = _dec(pos.get("initialMarginPercentage"))
        lev = 1 / imr if imr is not None and imr > 0 else None
    if lev is None or lev < 1:
        lev = Decimal(1)
    mmr = _dec(pos.get("maintenanceMarginPercentage"))
    if mmr is None:
        mm, notional = _dec(pos.get("maintenanceMargin")), _dec(pos.get("notional"))
        if mm is not None and notional:
            mmr = abs(mm / notional)
    if mmr is None:
        pct = _dec((market.get("info") or {}).get("maintMarginPercent"))
        mmr = pct / 100 if pct is not None else None
    if mmr is None or not 0 < mmr < 1 / lev:
        return None
    return lev.normalize(), mmr.normalize()


def position_base(position: dict[str, Any]) -> Decimal | None:
    """The venue's position in base units, signed (long > 0): contracts x contractSize."""
    contracts = _dec(position.get("contracts"))
    if contracts is None:
        return None
    size = _dec(position.get("contractSize")) or Decimal(1)
    side = position.get("side")
    signed = -abs(contracts) if side == "short" else abs(contracts)
    return signed * size


def mark_of(position: dict[str, Any] | None) -> Decimal | None:
    d = _dec((position or {}).get("markPrice"))
    return d if d is not None and d > 0 else None


def rate_ppb(rate: Any) -> int:
    """A funding rate (a ccxt number or string, 0.0001 = 1 bp) in parts per billion, rounded half-even;
    0 for missing or nonsense (|rate| >= 1 is nonsense)."""
    d = _dec(rate)
    if d is None or abs(d) >= 1:
        return 0
    return int((d * _PPB).to_integral_value(ROUND_HALF_EVEN))


def funding_key(entry: dict[str, Any]) -> str:
    """What makes one funding payment unique: the venue's id, else its symbol, time and amount."""
    fid = entry.get("id")
    if fid is not None and fid != "":
        return f"{entry.get('symbol')}:{fid}"
    return f"{entry.get('symbol')}:{entry.get('timestamp')}:{entry.get('amount')}"


def funding_units(amount: Decimal, tick_size: Decimal, lot_size: Decimal) -> int:
    """The venue's funding amount (quote currency, received > 0) as a `Funding.amount`: millionths of
    a tick*lot, paid > 0; exact when it fits, else rounded half-even."""
    units = -amount / (tick_size * lot_size) * FEE_SCALE
    return int(units.to_integral_value(ROUND_HALF_EVEN))


class PerpWatch:
    """The poll of one ccxt venue's linear swaps (see the module docstring)."""

    def __init__(self, venue: Any) -> None:
        # `venue` is the CcxtVenue (not imported: venue.py imports this module).
        self.venue = venue
        self.symbols: list[str] = []
        self.collateral: dict[str, Decimal] = {}  # settle currency -> total balance at start
        self.terms: dict[str, tuple[Decimal, Decimal]] = {}
        self._suspects: dict[str, tuple[str, str]] = {}
        self.mismatches: dict[str, tuple[str, str]] = {}
        self.warned: set[str] = set()
        self.net_lots: dict[str, int] = {}  # our fills since the watch started, per symbol
        self.start_position: dict[str, Decimal] = {}  # the venue's position at the first poll, less those
        self.polls = 0
        self.failures = 0
        self.rates: dict[str, int] = {}  # the last polled funding rate, ppb
        self.marks: dict[str, int] = {}  # the last polled mark, ticks
        self.position_lots: dict[str, int] = {}  # the venue's position at the last poll, lots
        self.funding_seen: OrderedDict[str, None] = OrderedDict()
        self.funding_since_ms: int | None = None  # payments from this time on are ours to book
        self.funding_cursor: dict[str, int] = {}  # the newest booked payment's time, per symbol
        self.fundings = 0

    def markets(self) -> dict[str, dict[str, Any]]:
        ex = self.venue.exchange
        out = {}
        for symbol in self.venue.instruments:
            m = (ex.markets or {}).get(symbol) if ex is not None else None
            if isinstance(m, dict) and is_linear_swap(m):
                out[symbol] = m
        return out

    def on_fill(self, ev: Fill) -> None:
        if ev.venue == self.venue.name and ev.owner == OUR_OWNER:
            signed = ev.size if ev.side == BUY else -ev.size
            self.net_lots[ev.symbol] = self.net_lots.get(ev.symbol, 0) + signed

    async def loop(self) -> None:
        v = self.venue
        if not self.markets():
            return
        subscribe = getattr(v.bus, "subscribe", None)
        if subscribe is not None:
            subscribe(Fill, self.on_fill)
        while v.running and not v.stopping:
            try:
                await self.poll()
            except Exception as exc:
                self.failures += 1
                log.warning("%s: perpetual positions: %s", v.name, v.venue_error(exc, "positions"))
            await asyncio.sleep(v.config.reconcile_every_s)

    async def poll(self) -> None:
        v = self.venue
        ex = v.exchange
        markets = self.markets()
        if not markets:
            return
        if not self.collateral and ex.has.get("fetchBalance"):
            bal = await ex.fetch_balance()
            totals = bal.get("total") if isinstance(bal, dict) else None
            for m in markets.values():
                settle = m.get("settle") or m.get("quote")
                amount = _dec((totals or {}).get(settle))
                if settle and amount is not None:
                    self.collateral[settle] = amount
        positions: dict[str, dict[str, Any]] = {}
        if ex.has.get("fetchPositions"):
            for p in await ex.fetch_positions(list(markets)) or []:
                if isinstance(p, dict) and p.get("symbol") in markets:
                    positions[p["symbol"]] = p
        self.polls += 1
        for symbol, market in markets.items():
            await self._publish(symbol, market, positions.get(symbol))
        if ex.has.get("fetchFundingHistory"):
            for symbol in markets:
                try:
                    await self._funding(symbol)
                except Exception as exc:  # the marks and positions above stand; the next poll asks again
                    self.failures += 1
                    log.warning("%s %s: funding payments: %s", v.name, symbol, v.venue_error(exc, "funding"))

    async def _publish(self, symbol: str, market: dict[str, Any], position: dict[str, Any] | None) -> None:
        v = self.venue
        inst: Instrument = v.instruments[symbol]
        now = v.clock.now()
        terms = perp_terms(market, position)
        if terms is None:
            if symbol not in self.warned:
                self.warned.add(symbol)
                log.warning(
                    "%s %s: no maintenance margin rate from the venue: no margin figures", v.name, symbol
                )
        elif self.terms.get(symbol) != terms:
            self.terms[symbol] = terms
            settle = market.get("settle") or market.get("quote") or ""
            collateral = self.collateral.get(settle, Decimal(0))
            lev, mmr = terms
            v.bus.publish(
                PerpInfo(now, v.name, symbol, f"{lev:f}", f"{mmr:f}", f"{collateral.normalize():f}", 8 * 3600)
            )
        fr = await self._funding_rate(symbol)
        mark = mark_of(position) or mark_of(fr) or await self._mark(symbol)
        if mark is not None:
            tick = inst.ticks_nearest(mark)
            index = _dec((fr or {}).get("indexPrice"))
            index_tick = inst.ticks_nearest(index) if index is not None and index > 0 else tick
            rate = rate_ppb((fr or {}).get("fundingRate"))
            self.marks[symbol], self.rates[symbol] = tick, rate
            v.bus.publish(MarkPrice(now, v.name, symbol, tick, index_tick, rate))
        if position is not None:
            self._compare(symbol, inst, position)
        elif v.exchange.has.get("fetchPositions"):
            self.position_lots[symbol] = 0  # the venue lists no position: flat

    async def _funding_rate(self, symbol: str) -> dict[str, Any] | None:
        ex = self.venue.exchange
        if not ex.has.get("fetchFundingRate"):
            return None
        got = await ex.fetch_funding_rate(symbol)
        return got if isinstance(got, dict) else None

    async def _funding(self, symbol: str) -> None:
        """Publish the funding payments the venue booked to us that we have not published (see the
        module docstring)."""
        v = self.venue
        if self.funding_since_ms is None:
            self.funding_since_ms = v.started_ms or int(time.time() * 1000)
        since = self.funding_since_ms
        # Ask from a little before the newest payment booked (venues page their history: a long run
        # must not ask from its start for ever); the ids make the overlap harmless.
        ask_from = max(since, self.funding_cursor.get(symbol, since) - _FUNDING_OVERLAP_MS)
        entries = await v.exchange.fetch_funding_history(symbol, ask_from)
        inst: Instrument = v.instruments[symbol]
        out = []
        for e in sorted((e for e in entries or [] if isinstance(e, dict)), key=_entry_time):
            if e.get("symbol") not in (None, symbol):
                continue
            ts = e.get("timestamp")
            amount = _dec(e.get("amount"))
            if not isinstance(ts, int) or ts < since or amount is None:
                continue
            key = funding_key(e)
            if key in self.funding_seen:
                continue
            units = funding_units(amount, inst.tick_size, inst.lot_size)
            if abs(units) >= 1 << 62:
                log.warning("%s %s: funding amount %s is out of range: not booked", v.name, symbol, amount)
                continue
            self.funding_seen[key] = None
            self.funding_cursor[symbol] = max(self.funding_cursor.get(symbol, since), ts)
            if len(self.funding_seen) > _SEEN_FUNDING_MAX:
                self.funding_seen.popitem(last=False)
            out.append(
                Funding(
                    v.clock.now(),
                    v.name,
                    symbol,
                    self.rates.get(symbol, 0),
                    self.marks.get(symbol, 0),
                    self.position_lots.get(symbol, 0),
                    units,
                )
            )
        if out:
            self.fundings += len(out)
            v.stats["funding_payments"] += len(out)
            v.bus.publish_many(out)

    async def _mark(self, symbol: str) -> Decimal | None:
        ex = self.venue.exchange
        if ex.has.get("fetchMarkPrice"):
            got = await ex.fetch_mark_price(symbol)
            return mark_of(got) or _dec((got or {}).get("markPrice"))
        ticker = await ex.fetch_ticker(symbol)
        return mark_of(ticker)

    def _compare(self, symbol: str, inst: Instrument, position: dict[str, Any]) -> None:
        """PositionMismatch when the venue's position differs from where ours should be (twice in a row)."""
        v = self.venue
        theirs = position_base(position)
        if theirs is None:
            return
        try:
            self.position_lots[symbol] = inst.lots(abs(theirs), allow_zero=True) * (-1 if theirs < 0 else 1)
        except InstrumentError:
            pass
        ours_since = inst.size(self.net_lots.get(symbol, 0))
        start = self.start_position.get(symbol)
        if start is None:
            self.start_position[symbol] = theirs - ours_since
            return
        ours = start + ours_since
        pair = (f"{ours.normalize():f}", f"{theirs.normalize():f}")
        now = v.clock.now()
        if ours == theirs:
            self._suspects.pop(symbol, None)
            if self.mismatches.pop(symbol, None) is not None:
                v.bus.publish(PositionMismatch(now, v.name, symbol, *pair))
            return
        if self._suspects.get(symbol) != pair:
            self._suspects[symbol] = pair
            return
        if self.mismatches.get(symbol) == pair:
            return
        self.mismatches[symbol] = pair
        log.warning("%s %s: the venue's position is %s, ours %s", v.name, symbol, pair[1], pair[0])
        v.bus.publish(PositionMismatch(now, v.name, symbol, *pair))


def _entry_time(e: dict[str, Any]) -> int:
    ts = e.get("timestamp")
    return ts if isinstance(ts, int) else 0

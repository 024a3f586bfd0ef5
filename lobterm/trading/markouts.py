"""Markouts: how the mid moved after each of our fills, and the P&L split they give.

A fill's markout at horizon h is what the fill was worth h seconds of kernel time later, marked to the
mid then: for a buy `(mid(t+h) - price) * size`, for a sell `(price - mid(t+h)) * size`. Positive is
good for us. It splits in two: the spread captured (`mid(t) - price` for a buy, the edge at the moment
of the fill) plus the mid's move from t to t+h (adverse selection when negative). The same for the
microprice (`(bid * ask_size + ask * bid_size) / (bid_size + ask_size)`, rounded half-even to a
millionth of a tick).

The engine is pure and exact: it is driven by engine events (our `Fill`s with their source, market
`Trade`s, our `Accepted` / `Done`) and by top-of-book updates with their kernel timestamps, so a live
run, its replay and a backtest over the same events give the same numbers. "The mid at t+h" is the mid
in effect after every event stamped <= t+h: a horizon is settled by the first event (or `advance`)
stamped later, so it does not matter when that happens. Internally every amount is an integer: mids in
half ticks (bid + ask), markouts in half-tick*lots, microprices in millionths of a tick; Fractions and
Decimals appear only in `summary()`.

Memory is bounded: a fill is kept only until its last horizon settles; aggregates are running sums; the
worst-decile share uses a `LossHistogram` (fills and their exact sum per markout bucket: exact values
under 2**LOSS_HIST_BITS, the top LOSS_HIST_BITS bits above; bounded by the bit length of the largest
loss, not by the number of fills). The share is exact while every loss is under 1024 half-tick*lots,
else within 1/512 of its value (relative). Recent toxic fills: the last `TOXIC_FILLS`.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Context, Decimal
from fractions import Fraction
from typing import Any, Protocol

from lobterm.engine.bounds import LOSS_HIST_BITS, TOXIC_FILLS
from lobterm.engine.events import (
    BUY,
    FOK,
    IOC,
    MARKET,
    OUR_OWNER,
    Accepted,
    BookDelta,
    BookSnapshot,
    Done,
    Fill,
    Trade,
)
from lobterm.engine.instrument import FEE_SCALE, Instrument

__all__ = [
    "DEFAULT_HORIZONS_S",
    "LossHistogram",
    "MarkoutConfig",
    "MarkoutEngine",
    "MarkoutError",
    "MarkoutFeed",
    "PnlSplit",
    "markout_text",
]

NS = 1_000_000_000
MICRO = 1_000_000  # microprice resolution: a millionth of a tick
DEFAULT_HORIZONS_S = (1.0, 5.0, 30.0, 60.0)
MAX_DEPTH = 10  # levels beyond this are counted as "10+": a bounded label set
BASELINE = "market"  # the source name of the market-trades baseline
_NEVER_RESTS = (MARKET, IOC, FOK)
_WIDE = Context(prec=60)


class MarkoutError(ValueError):
    """A markout setting that cannot be used: `what` names it, `problem` says why."""

    def __init__(self, what: str, value: object, problem: str) -> None:
        self.what = what
        self.value = value
        super().__init__(f"markouts.{what} = {value!r}: {problem}")


@dataclass(frozen=True, slots=True)
class MarkoutConfig:
    """Horizons (seconds of kernel time, increasing), the horizon the P&L split calls adverse selection,
    the toxicity threshold (bps at the first horizon) and whether market trades get a baseline."""

    horizons_s: tuple[float, ...] = DEFAULT_HORIZONS_S
    adverse_horizon_s: float = 5.0
    toxic_bps: float = -2.0
    baseline: bool = True
    max_sources: int = 16  # more sources than this are counted as "other" (a bounded label set)

    def __post_init__(self) -> None:
        hs = self.horizons_s
        if not isinstance(hs, tuple) or not hs or len(hs) > 12:
            raise MarkoutError("horizons_s", hs, "give 1 to 12 horizons in seconds")
        for h in hs:
            if not isinstance(h, (int, float)) or isinstance(h, bool) or not 0 < h <= 86_400:
                raise MarkoutError("horizons_s", hs, "each horizon must be a number of seconds in (0, 86400]")
        if list(hs) != sorted(set(hs)):
            raise MarkoutError("horizons_s", hs, "horizons must be increasing, without repeats")
        if self.adverse_horizon_s not in hs:
            raise MarkoutError("adverse_horizon_s", self.adverse_horizon_s, f"must be one of {list(hs)}")
        t = self.toxic_bps
        if not isinstance(t, (int, float)) or isinstance(t, bool) or not -10_000 <= t <= 10_000:
            raise MarkoutError("toxic_bps", t, "must be a number of bps in [-10000, 10000]")
        if not isinstance(self.max_sources, int) or not 1 <= self.max_sources <= 256:
            raise MarkoutError("max_sources", self.max_sources, "must be an integer in [1, 256]")

    @property
    def horizons_ns(self) -> tuple[int, ...]:
        return tuple(round(h * NS) for h in self.horizons_s)


@dataclass(slots=True)
class Bucket:
    """Running sums of one group of fills at one horizon (integers: half-tick*lots, micro-tick*lots)."""

    fills: int = 0
    lots: int = 0
    notional: int = 0  # price ticks * lots
    markout2: int = 0  # sum of sign * (mid2(t+h) - 2 * price) * size
    move2: int = 0  # sum of sign * (mid2(t+h) - mid2(t)) * size
    micro: int = 0  # sum of sign * (micro(t+h) - price * MICRO) * size

    def add(self, lots: int, notional: int, markout2: int, move2: int, micro: int) -> None:
        self.fills += 1
        self.lots += lots
        self.notional += notional
        self.markout2 += markout2
        self.move2 += move2
        self.micro += micro


@dataclass(slots=True)
class _Pending:
    ts: int
    sign: int  # +1 bought, -1 sold
    price: int
    size: int
    mid2: int
    keys: tuple[tuple[str, str], ...]  # the groups the fill counts in
    first_horizon_trade: int  # trade id for the toxic mark (-1 when none)


@dataclass(slots=True)
class _Market:
    key: tuple[str, str]
    mid2: int | None = None
    micro: int | None = None
    book_ts: int | None = None  # the timestamp of the last top-of-book update
    before2: int | None = None  # the mid in effect before the updates stamped book_ts
    # per horizon: pending fills in ts order (so in due order), ours and the baseline's
    pending: list[deque[_Pending]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ToxicFill:
    """One of our fills whose markout at the first horizon was worse than the threshold."""

    ts: int
    venue: str
    symbol: str
    side: int
    price: int
    size: int
    bps: Decimal
    trade_id: int


@dataclass(frozen=True, slots=True)
class PnlSplit:
    """Net P&L = spread captured + adverse selection (mid move to `horizon_s`) - fees + inventory P&L
    (what holding the position did beyond that), each in quote currency, exact."""

    horizon_s: float
    spread_captured: Decimal
    adverse_selection: Decimal
    fees: Decimal
    inventory: Decimal
    net: Decimal

    def as_dict(self) -> dict[str, object]:
        return {
            "horizon_s": self.horizon_s,
            "spread_captured": f"{self.spread_captured:f}",
            "adverse_selection": f"{self.adverse_selection:f}",
            "fees": f"{self.fees:f}",
            "inventory": f"{self.inventory:f}",
            "net": f"{self.net:f}",
        }


class LossHistogram:
    """Fills per markout value, bounded: a value under 2**bits in size is its own bucket; a bigger one
    goes to the bucket of its top `bits` bits (towards zero), so a bucket spans less than 1/2**(bits-1)
    of its values. Every gain goes to bucket 0 (the share needs only their count). Each bucket keeps its
    fill count and the exact sum of its values: totals are exact, and only the one bucket the worst
    decile cuts through is estimated (by its average), an error under 1/2**(bits-1) of the worst loss."""

    __slots__ = ("bits", "buckets")

    def __init__(self, bits: int = LOSS_HIST_BITS) -> None:
        if not 1 <= bits <= 62:
            raise MarkoutError("loss_hist bits", bits, "must be in 1..62")
        self.bits = bits
        self.buckets: dict[int, list[int]] = {}  # key -> [fills, sum of values]

    def key(self, value: int) -> int:
        if value >= 0:
            return 0
        a = -value
        shift = a.bit_length() - self.bits
        return value if shift <= 0 else -((a >> shift) << shift)

    def add(self, value: int, fills: int = 1) -> None:
        b = self.buckets.get(k := self.key(value))
        if b is None:
            self.buckets[k] = [fills, value * fills]
        else:
            b[0] += fills
            b[1] += value * fills

    def __len__(self) -> int:
        return len(self.buckets)

    def fills(self) -> int:
        return sum(n for n, _ in self.buckets.values())

    def worst_decile_share(self) -> Fraction | None:
        """The share of the loss carried by the worst 10% of fills (rounded up); None without a loss."""
        total_loss = sum(-s for k, (_, s) in self.buckets.items() if k < 0)
        count = self.fills()
        if total_loss == 0 or count == 0:
            return None
        take = -(-count // 10)  # ceil
        worst = Fraction(0)
        for k in sorted(self.buckets):
            if take <= 0 or k >= 0:
                break
            n, s = self.buckets[k]
            if n <= take:
                worst -= s
            else:  # the bucket the decile cuts through: its average (exact for a one-value bucket)
                worst -= Fraction(s * take, n)
            take -= min(n, take)
        return worst / total_loss


def _dec(x: Fraction, places: int) -> Decimal:
    q = Decimal(1).scaleb(-places)
    d = _WIDE.divide(Decimal(x.numerator), Decimal(x.denominator))
    out = d.quantize(q, rounding=ROUND_HALF_EVEN, context=_WIDE)
    return out.copy_abs() if out.is_zero() else out


class MarkoutEngine:
    """Markouts of our fills (and optionally of every market trade, from its maker's side) per market.

    Feed it, in bus order: `on_book` after every top-of-book change, `on_fill(ev, source)` for each of
    our fills, `on_trade` for market trades, `on_accepted` / `on_done` for our orders (levels, fill
    ratio, quote uptime). `advance(ts)` settles horizons due before `ts` on a quiet book (the timer)."""

    def __init__(self, config: MarkoutConfig | None = None) -> None:
        self.config = config or MarkoutConfig()
        self.horizons_ns = self.config.horizons_ns
        self.adverse_index = self.config.horizons_s.index(self.config.adverse_horizon_s)
        self._toxic_bps = Fraction(str(self.config.toxic_bps))
        n = len(self.horizons_ns)
        self.markets: dict[tuple[str, str], _Market] = {}
        #: (group, value) -> one Bucket per horizon; groups: all, source, side, level, and the baseline.
        self.buckets: dict[tuple[str, str], list[Bucket]] = {}
        self._sources: set[str] = set()
        self.fills = 0
        self.no_mid = 0  # fills with no two-sided book at the time: no markout possible
        self.spread2 = 0  # sum of sign * (mid2(t) - 2 * price) * size, our fills with a mid
        self.fees = 0  # millionths of a tick*lot, our fills
        self.adverse2 = 0  # move2 at the adverse horizon, settled fills
        self.loss_hist = LossHistogram()  # markout2 at the adverse horizon -> fills, bucketed
        self.toxic = 0
        self.recent_toxic: deque[ToxicFill] = deque(maxlen=TOXIC_FILLS)
        self.toxic_trade_ids: set[int] = set()  # bounded with recent_toxic
        self.pending_count = 0
        # levels (ticks between the order's price and the mid when it was accepted), fill ratio, uptime
        self._order_level: dict[int, str] = {}
        self.placed_lots: Counter[str] = Counter()
        self.filled_lots: Counter[str] = Counter()
        self._resting: tuple[set[int], set[int]] = (set(), set())
        self._quoted_since: int | None = None
        self.quoted_ns = 0
        self.first_ts: int | None = None
        self.last_ts: int | None = None
        self._n = n

    # ---- inputs --------------------------------------------------------------------------------
    def _market(self, venue: str, symbol: str) -> _Market:
        m = self.markets.get((venue, symbol))
        if m is None:
            m = self.markets[(venue, symbol)] = _Market(
                (venue, symbol), pending=[deque() for _ in range(self._n)]
            )
        return m

    def _seen(self, ts: int) -> None:
        if self.first_ts is None:
            self.first_ts = ts
        if self.last_ts is None or ts > self.last_ts:
            self.last_ts = ts

    def on_book(
        self, venue: str, symbol: str, ts: int, bid: int | None, bid_size: int, ask: int | None, ask_size: int
    ) -> None:
        """The top of the book after an event stamped `ts` (None for an empty side)."""
        m = self._market(venue, symbol)
        self._settle(m, ts)
        self._seen(ts)
        if ts != m.book_ts:
            m.before2 = m.mid2
            m.book_ts = ts
        if bid is None or ask is None:
            m.mid2 = m.micro = None
            return
        m.mid2 = bid + ask
        if bid_size <= 0 or ask_size <= 0:
            m.micro = m.mid2 * MICRO // 2
            return
        den = bid_size + ask_size
        num = (bid * ask_size + ask * bid_size) * MICRO
        q, r = divmod(num, den)
        if 2 * r > den or (2 * r == den and q & 1):  # half-even
            q += 1
        m.micro = q

    def advance(self, ts: int) -> None:
        """Settle every horizon due before `ts` at the mid in effect (the timer on a quiet book)."""
        for m in self.markets.values():
            self._settle(m, ts)

    def on_fill(self, ev: Fill, source: str) -> None:
        """One of our fills; `source` is its order's tag (mm, manual, hedge, flatten, a strategy)."""
        m = self._market(ev.venue, ev.symbol)
        self._settle(m, ev.ts)
        self._seen(ev.ts)
        self.fills += 1
        self.fees += ev.fee
        level = self._order_level.get(ev.order_id)
        if level is not None:
            self.filled_lots[level] += ev.size
        mid2 = m.before2 if ev.ts == m.book_ts else m.mid2
        if mid2 is None or ev.size <= 0 or ev.price <= 0:
            self.no_mid += 1
            return
        sign = 1 if ev.side == BUY else -1
        self.spread2 += sign * (mid2 - 2 * ev.price) * ev.size
        if level is None:
            level = self._level(mid2, ev.price)
        if source not in self._sources:
            if len(self._sources) >= self.config.max_sources:
                source = "other"
            self._sources.add(source)
        keys = (("all", "all"), ("source", source), ("side", "buy" if sign > 0 else "sell"), ("level", level))
        self._push(m, _Pending(ev.ts, sign, ev.price, ev.size, mid2, keys, ev.trade_id))

    def on_trade(self, ev: Trade) -> None:
        """A market trade: with the baseline on, its markout from the side of its maker."""
        m = self._market(ev.venue, ev.symbol)
        self._settle(m, ev.ts)
        self._seen(ev.ts)
        mid2 = m.before2 if ev.ts == m.book_ts else m.mid2
        if not self.config.baseline or mid2 is None or ev.size <= 0 or ev.price <= 0:
            return
        sign = -1 if ev.aggressor == BUY else 1  # the maker sold to a buyer
        self._push(m, _Pending(ev.ts, sign, ev.price, ev.size, mid2, (("baseline", BASELINE),), -1))

    def on_accepted(self, ev: Accepted) -> None:
        """Our new order: its level (ticks from the mid now) for the fill ratio, and quote uptime."""
        if ev.owner != OUR_OWNER or ev.price <= 0 or ev.order_type in _NEVER_RESTS:
            return
        self._seen(ev.ts)
        m = self._market(ev.venue, ev.symbol)
        if m.mid2 is not None and ev.order_id not in self._order_level:
            level = self._level(m.mid2, ev.price)
            self._order_level[ev.order_id] = level
            self.placed_lots[level] += ev.size
        both = bool(self._resting[0]) and bool(self._resting[1])
        self._resting[ev.side].add(ev.order_id)
        if not both and self._resting[0] and self._resting[1]:
            self._quoted_since = ev.ts

    def on_done(self, ev: Done) -> None:
        if ev.owner != OUR_OWNER:
            return
        self._seen(ev.ts)
        self._order_level.pop(ev.order_id, None)
        both = bool(self._resting[0]) and bool(self._resting[1])
        self._resting[0].discard(ev.order_id)
        self._resting[1].discard(ev.order_id)
        if both and not (self._resting[0] and self._resting[1]) and self._quoted_since is not None:
            self.quoted_ns += ev.ts - self._quoted_since
            self._quoted_since = None

    # ---- mechanics -----------------------------------------------------------------------------
    @staticmethod
    def _level(mid2: int, price: int) -> str:
        """Ticks between the price and the mid, rounded down; "10+" beyond MAX_DEPTH."""
        d = abs(mid2 - 2 * price) // 2
        return f"{MAX_DEPTH}+" if d >= MAX_DEPTH else str(d)

    def _push(self, m: _Market, p: _Pending) -> None:
        for q in m.pending:
            q.append(p)
        self.pending_count += 1

    def _settle(self, m: _Market, ts: int) -> None:
        last = self._n - 1
        for i, h in enumerate(self.horizons_ns):
            q = m.pending[i]
            while q and q[0].ts + h < ts:
                p = q.popleft()
                if m.mid2 is not None:
                    self._book(i, p, m)
                if i == last:
                    self.pending_count -= 1

    def _book(self, i: int, p: _Pending, m: _Market) -> None:
        assert m.mid2 is not None and m.micro is not None
        sign, size = p.sign, p.size
        markout2 = sign * (m.mid2 - 2 * p.price) * size
        move2 = sign * (m.mid2 - p.mid2) * size
        micro = sign * (m.micro - p.price * MICRO) * size
        notional = p.price * size
        for key in p.keys:
            b = self.buckets.get(key)
            if b is None:
                b = self.buckets[key] = [Bucket() for _ in range(self._n)]
            b[i].add(size, notional, markout2, move2, micro)
        if p.keys[0][0] != "all":
            return
        if i == self.adverse_index:
            self.adverse2 += move2
            self.loss_hist.add(markout2)
        if i == 0 and Fraction(markout2 * 10_000, 2 * notional) < self._toxic_bps:
            self.toxic += 1
            if len(self.recent_toxic) == self.recent_toxic.maxlen:
                self.toxic_trade_ids.discard(self.recent_toxic[0].trade_id)
            venue, symbol = m.key
            self.recent_toxic.append(
                ToxicFill(
                    p.ts,
                    venue,
                    symbol,
                    BUY if sign > 0 else 1,
                    p.price,
                    size,
                    _dec(Fraction(markout2 * 10_000, 2 * notional), 2),
                    p.first_horizon_trade,
                )
            )
            self.toxic_trade_ids.add(p.first_horizon_trade)

    # ---- outputs -------------------------------------------------------------------------------
    def worst_decile_share(self) -> Fraction | None:
        """The share of markout loss (at the adverse horizon) carried by the worst 10% of fills; None
        when no fill lost. Exact while every loss is under 2**LOSS_HIST_BITS half-tick*lots, else
        within 1/2**(LOSS_HIST_BITS-1) of its value (see `LossHistogram`)."""
        return self.loss_hist.worst_decile_share()

    def quote_uptime(self, end_ts: int | None = None) -> Fraction | None:
        """The share of time with at least one of our orders resting on each side."""
        if self.first_ts is None:
            return None
        end = end_ts if end_ts is not None else self.last_ts or self.first_ts
        quoted = self.quoted_ns + (max(0, end - self._quoted_since) if self._quoted_since is not None else 0)
        span = end - self.first_ts
        return Fraction(quoted, span) if span > 0 else None

    def curve(self, key: tuple[str, str] = ("all", "all")) -> list[Bucket]:
        return self.buckets.get(key) or [Bucket() for _ in range(self._n)]

    def split(self, inst: Instrument, net: Decimal) -> PnlSplit:
        """The P&L split of our fills against `net` (the inventory's net P&L in quote currency)."""
        from lobterm.trading.inventory import to_quote

        spread = to_quote(inst, Fraction(self.spread2, 2))
        adverse = to_quote(inst, Fraction(self.adverse2, 2))
        fees = to_quote(inst, Fraction(self.fees, FEE_SCALE))
        return PnlSplit(
            self.config.adverse_horizon_s, spread, adverse, fees, net - spread - adverse + fees, net
        )

    def row(self, b: Bucket, inst: Instrument | None) -> dict[str, object]:
        """One bucket as exact strings: average markout per lot in ticks, notional-weighted bps, the total
        in quote currency, the mid move and the microprice markout in ticks."""
        out: dict[str, object] = {"fills": b.fills, "lots": b.lots}
        if not b.lots:
            out.update(ticks=None, bps=None, quote=None, move_ticks=None, micro_ticks=None)
            return out
        out["ticks"] = str(_dec(Fraction(b.markout2, 2 * b.lots), 4))
        out["bps"] = str(_dec(Fraction(b.markout2 * 10_000, 2 * b.notional), 3))
        if inst is not None:
            from lobterm.trading.inventory import to_quote

            out["quote"] = str(to_quote(inst, Fraction(b.markout2, 2)))
        else:
            out["quote"] = None
        out["move_ticks"] = str(_dec(Fraction(b.move2, 2 * b.lots), 4))
        out["micro_ticks"] = str(_dec(Fraction(b.micro, MICRO * b.lots), 4))
        return out

    def summary(
        self, inst: Instrument | None = None, net: Decimal | None = None, end_ts: int | None = None
    ) -> dict[str, object]:
        """Everything as JSON-able exact strings: the curve by horizon, by source / side / level, the
        worst-decile share, the baseline, fill ratio by level, quote uptime and (with `inst` and `net`)
        the P&L split."""
        hs = self.config.horizons_s

        def curve(key: tuple[str, str]) -> list[dict[str, object]]:
            return [{"horizon_s": h, **self.row(b, inst)} for h, b in zip(hs, self.curve(key), strict=True)]

        def group(name: str) -> dict[str, list[dict[str, object]]]:
            return {v: curve((g, v)) for g, v in sorted(self.buckets) if g == name}

        share = self.worst_decile_share()
        uptime = self.quote_uptime(end_ts)
        ratio = {
            lvl: str(_dec(Fraction(self.filled_lots[lvl], lots), 4))
            for lvl, lots in sorted(self.placed_lots.items(), key=lambda kv: _level_order(kv[0]))
            if lots
        }
        out: dict[str, object] = {
            "horizons_s": list(hs),
            "adverse_horizon_s": self.config.adverse_horizon_s,
            "fills": self.fills,
            "no_mid": self.no_mid,
            "pending": self.pending_count,
            "curve": curve(("all", "all")),
            "by_source": group("source"),
            "by_side": group("side"),
            "by_level": dict(sorted(group("level").items(), key=lambda kv: _level_order(kv[0]))),
            "worst_decile_share": None if share is None else str(_dec(share, 4)),
            "toxic_fills": self.toxic,
            "toxic_bps": self.config.toxic_bps,
            "baseline": curve(("baseline", BASELINE)) if self.config.baseline else None,
            "fill_ratio_by_level": ratio,
            "quote_uptime": None if uptime is None else str(_dec(uptime, 4)),
        }
        if inst is not None and net is not None:
            out["pnl_split"] = self.split(inst, net).as_dict()
        return out

    def text_line(self) -> str:
        """One line for a human: the average markout per horizon in bps, and the worst-decile share."""
        parts = []
        for h, b in zip(self.config.horizons_s, self.curve(), strict=True):
            bps = "-" if not b.lots else f"{_dec(Fraction(b.markout2 * 10_000, 2 * b.notional), 2)}"
            parts.append(f"{h:g}s {bps}")
        share = self.worst_decile_share()
        tail = "-" if share is None else f"{_dec(share * 100, 0)}%"
        return f"{', '.join(parts)} bps; worst 10% of fills carry {tail} of the loss"


def _level_order(level: str) -> int:
    return MAX_DEPTH if level.endswith("+") else int(level)


class BookTop(Protocol):
    """What the feed reads of a market's L2 book after each event (lobterm.engine.l2book.L2Book)."""

    def best_bid(self) -> tuple[int, int] | None: ...

    def best_ask(self) -> tuple[int, int] | None: ...


class BusLike(Protocol):
    def subscribe(self, event_type: type | tuple[type, ...], handler: Callable[[Any], None]) -> None: ...

    def unsubscribe(self, handler: Callable[[Any], None]) -> None: ...


class MarkoutFeed:
    """Feeds a `MarkoutEngine` from the kernel's bus: subscribed after the kernel's own handlers, so the
    books it reads already hold the event. `tag_of(order_id)` is the source of one of our fills (the
    OMS's tag). The engine sees a book update only when the top changed: a horizon settles at the mid in
    effect, which an unchanged top does not move."""

    def __init__(
        self,
        engine: MarkoutEngine,
        books: Mapping[tuple[str, str], BookTop],
        tag_of: Callable[[int], str],
    ) -> None:
        self.engine = engine
        self.books = books
        self.tag_of = tag_of
        self._tops: dict[tuple[str, str], tuple[int, int, int, int]] = {}
        self._bus: BusLike | None = None

    def subscribe(self, bus: BusLike) -> None:
        bus.subscribe((BookSnapshot, BookDelta), self.on_book)
        bus.subscribe(Trade, self.on_trade)
        bus.subscribe(Fill, self.on_fill)
        bus.subscribe(Accepted, self.on_accepted)
        bus.subscribe(Done, self.on_done)
        self._bus = bus

    def reset(self) -> None:
        """Forget everything (a replay's seek): the same settings, no fills, no books."""
        self.engine = MarkoutEngine(self.engine.config)
        self._tops.clear()

    def unsubscribe(self) -> None:
        bus, self._bus = self._bus, None
        if bus is not None:
            for h in (self.on_book, self.on_trade, self.on_fill, self.on_accepted, self.on_done):
                bus.unsubscribe(h)

    def on_book(self, ev: BookSnapshot | BookDelta) -> None:
        key = (ev.venue, ev.symbol)
        book = self.books.get(key)
        if book is None:
            return
        bid, ask = book.best_bid(), book.best_ask()
        top = (
            -1 if bid is None else bid[0],
            0 if bid is None else bid[1],
            -1 if ask is None else ask[0],
            0 if ask is None else ask[1],
        )
        if self._tops.get(key) == top:
            return
        self._tops[key] = top
        self.engine.on_book(
            ev.venue,
            ev.symbol,
            ev.ts,
            None if bid is None else bid[0],
            top[1],
            None if ask is None else ask[0],
            top[3],
        )

    def on_trade(self, ev: Trade) -> None:
        self.engine.on_trade(ev)

    def on_fill(self, ev: Fill) -> None:
        if ev.owner == OUR_OWNER:
            self.engine.on_fill(ev, self.tag_of(ev.order_id))

    def on_accepted(self, ev: Accepted) -> None:
        self.engine.on_accepted(ev)

    def on_done(self, ev: Done) -> None:
        self.engine.on_done(ev)


def markout_text(engine: MarkoutEngine, summary: dict[str, Any], decimals: int = 4) -> str:
    """The short markout line of a run's text summary: the curve in bps, the worst-decile share and the
    P&L split rounded to `decimals` of the quote currency."""
    line = engine.text_line()
    split = summary.get("pnl_split")
    if not split:
        return line

    def money(amount: str) -> str:
        q = Decimal(amount).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_EVEN, context=_WIDE)
        return f"{q.copy_abs() if q.is_zero() else q:f}"

    return (
        f"{line}\n  split of P&L      spread {money(split['spread_captured'])}, adverse selection "
        f"({split['horizon_s']:g} s) {money(split['adverse_selection'])}, fees {money(split['fees'])}, "
        f"inventory {money(split['inventory'])}"
    )

"""The embedded simulated venue, lobterm's default: a real matching book with synthetic participants.

No network and no keys. The exchange is `engine.matching.MatchingBook`; our orders rest in it and trade
against the participants for real (our fills come from the matching engine, not a coin flip).

Participants, all driven by one `random.Random(seed)`, so that the same seed and the same requests
from us give the same events:
- A **fair price** that moves as a geometric random walk in ticks, with volatility regimes (calm, and
  bursts of several times the volatility that come and go at random) and occasional jumps.
- **Liquidity providers** keep a realistic depth profile around the fair price: thin at the touch,
  thicker further out, a spread of a tick or two; they refill levels that were taken, cancel quotes
  that the fair price has moved through (with a lag, so stale quotes do get picked off) and churn the
  rest of the book at random.
- **Noise takers** send market orders and marketable IOC limits as a Poisson stream, sized from a
  heavy-tailed distribution, leaning towards the side the fair price says, so the mid follows it.

Time advances in steps of 1/`rate_hz` seconds; after each step (and after each of our requests) the
venue publishes what changed: BookDelta per changed level (coalesced, contiguous sequence numbers),
Trade per match, and the lifecycle events of our own orders. The fair price is a simulation internal
(a float); every price that leaves this module is integer ticks.
"""

from __future__ import annotations

import asyncio
import math
import random
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, cast

from lobterm.engine.errors import ParameterError
from lobterm.engine.events import (
    BUY,
    IOC,
    LIMIT,
    MARKET,
    OUR_OWNER,
    REJECTED,
    SELL,
    STP_CANCEL_RESTING,
    STP_NONE,
    BookDelta,
    BookSnapshot,
    Done,
    Fill,
    Rejected,
    Trade,
    VenueStatus,
)
from lobterm.engine.instrument import Instrument, InstrumentError
from lobterm.engine.matching import MatchingBook
from lobterm.venues.base import stop_task

if TYPE_CHECKING:
    from lobterm.engine.ports import Bus, Clock, SteppedClock

LP_OWNER = 2
TAKER_OWNER = 3
# Participant order ids live far above ours, so the two id spaces never meet in the book.
SIM_ID_BASE = 1 << 48


class SimConfigError(ParameterError):
    """A sim setting that cannot work: `name`, the `value` given and the `rule` it broke."""

    area = "sim"


# (lowest, highest) of each number. The bounds keep every run finite: the fair price is a float that
# moves by exp(gauss(0, vol)) per step and jumps by exp(jump), so volatility and jumps are capped well
# below what overflows in a long run; depth, churn and taker flow are capped where a step stays cheap.
SIM_BOUNDS: dict[str, tuple[float, float]] = {
    "seed": (-(2**63), 2**63 - 1),
    "rate_hz": (0.01, 1000.0),
    "depth_levels": (1, 1000),
    "touch_lots": (1, 10**9),
    "depth_slope": (0.0, 10.0),
    "churn_per_s": (0.0, 100_000.0),
    "taker_per_s": (0.0, 10_000.0),
    "taker_mean_lots": (1, 10**9),
    "vol_bps": (0.0, 100.0),
    "burst_per_min": (0.0, 600.0),
    "burst_mult": (1.0, 20.0),
    "burst_seconds": (0.001, 86_400.0),
    "jump_per_min": (0.0, 600.0),
    "jump_bps": (0.0, 2_000.0),
    "maker_fee_ppm": (-100_000, 100_000),
    "taker_fee_ppm": (-100_000, 100_000),
}
# The fair price is a float: keep the start well inside float's exact integers (2**53).
_MAX_START_TICKS = 10**13
_SMALLEST_STEP = Decimal("1e-12")


@dataclass(slots=True)
class SimConfig:
    """Everything that shapes the simulated market. All sizes in lots, prices in ticks of `tick_size`."""

    venue: str = "sim"
    symbol: str = "BTC/USDT"
    tick_size: Decimal = Decimal("0.1")
    lot_size: Decimal = Decimal("0.001")
    start_price: Decimal = Decimal("65000")
    seed: int = 1
    rate_hz: float = 20.0  # steps (market data batches) per second
    depth_levels: int = 30  # levels per side the liquidity providers keep
    touch_lots: int = 150  # typical size at the touch; deeper levels are thicker
    depth_slope: float = 0.12  # each level further out is this much thicker than the touch
    churn_per_s: float = 60.0  # random provider cancels (and so re-quotes) per second
    taker_per_s: float = 4.0  # noise taker orders per second (calm regime)
    taker_mean_lots: int = 120  # mean taker size; the tail is heavy
    vol_bps: float = 0.1  # fair price volatility, basis points per sqrt(second), calm regime
    burst_per_min: float = 1.0  # how often a volatility burst starts
    burst_mult: float = 4.0  # volatility and taker flow in a burst, times calm
    burst_seconds: float = 8.0  # mean length of a burst
    jump_per_min: float = 0.5  # how often the fair price jumps
    jump_bps: float = 15.0  # typical jump size
    maker_fee_ppm: int = 100  # 1 bp
    taker_fee_ppm: int = 400  # 4 bp

    def instrument(self) -> Instrument:
        return Instrument(self.symbol, tick_size=self.tick_size, lot_size=self.lot_size, venue=self.venue)

    def validate(self) -> None:
        """Raise `SimConfigError` naming the first setting that breaks its rule (see SIM_BOUNDS)."""
        for name in ("venue", "symbol"):
            v = getattr(self, name)
            if type(v) is not str or not v.strip() or len(v) > 64 or not v.isprintable():
                raise SimConfigError(name, v, "must be a name of 1 to 64 printable characters")
        for name, (lo, hi) in SIM_BOUNDS.items():
            v = getattr(self, name)
            whole = type(lo) is int
            if whole and type(v) is not int:
                raise SimConfigError(name, v, "must be a whole number")
            if not whole and (type(v) not in (int, float) or not math.isfinite(v)):
                raise SimConfigError(name, v, "must be a finite number")
            if not lo <= v <= hi:
                raise SimConfigError(name, v, f"must be in {lo:g}..{hi:g}")
        for name in ("tick_size", "lot_size"):
            v = getattr(self, name)
            # At most 12 decimals (what a screen can show) and at most 1e9: the grid of a real market.
            if (
                type(v) is not Decimal
                or not v.is_finite()
                or not _SMALLEST_STEP <= v <= 10**9
                or v.normalize().as_tuple().exponent < -12  # type: ignore[operator]
            ):
                raise SimConfigError(
                    name, v, "must be a decimal number in 1e-12..1e9 with at most 12 decimals"
                )
        if type(self.start_price) is not Decimal:
            raise SimConfigError("start_price", self.start_price, "must be a decimal number")
        try:
            inst = self.instrument()
        except InstrumentError as exc:
            raise SimConfigError(exc.what.replace(" ", "_"), exc.value, exc.rule) from None
        try:
            start = inst.ticks(self.start_price)
        except InstrumentError as exc:
            raise SimConfigError("start_price", self.start_price, exc.rule) from None
        if start > _MAX_START_TICKS:
            raise SimConfigError("start_price", self.start_price, f"must be at most {_MAX_START_TICKS} ticks")


class SimVenue:
    """A venue in-process. `step()` advances the market by one step; `run()` paces steps on the loop."""

    mode = "SIM"
    own_in_book = True

    def __init__(self, config: SimConfig | None = None) -> None:
        self.config = cfg = config or SimConfig()
        cfg.validate()
        self.name = cfg.venue
        self.instrument = cfg.instrument()
        self.instruments = {cfg.symbol: self.instrument}
        self.state = "idle"
        self.book = MatchingBook(
            cfg.venue,
            cfg.symbol,
            maker_fee_ppm=cfg.maker_fee_ppm,
            taker_fee_ppm=cfg.taker_fee_ppm,
            track_levels=True,
        )
        self.rng = random.Random(cfg.seed)
        self.fair = float(self.instrument.ticks_nearest(cfg.start_price))
        self.burst_left = 0.0  # seconds of burst remaining
        self.steps = 0
        self.seq = 0
        self.trades = 0
        self.traded_lots = 0
        self.our_requests = 0
        self._next_id = SIM_ID_BASE
        self._lp_ids: list[int] = []  # provider orders, for uniform random churn
        self._bus: Bus | None = None
        self._clock: Clock | None = None
        self._task: asyncio.Task | None = None
        self._dt = 1.0 / cfg.rate_hz
        self._sim_start_ns: int | None = None

    # ---- wiring --------------------------------------------------------------------------------
    def attach(self, bus: Bus, clock: Clock) -> None:
        self._bus = bus
        self._clock = clock

    def open(self) -> None:
        """Seed the book and publish the first snapshot (no pacing task; see `start`)."""
        assert self._bus is not None and self._clock is not None, "attach() the venue to a kernel first"
        self._status("connecting")
        self.book.now = self._clock.now()
        self._refill(full=True)
        self.book.drain()
        self.book.touched.clear()
        self.publish_snapshot()
        self._status("up")

    async def start(self) -> None:
        self.open()
        self._task = asyncio.get_running_loop().create_task(self.run(), name=f"sim-{self.name}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await stop_task(task)
        if self.state != "closed":
            self._status("closed")

    async def run(self) -> None:
        """Step the market at `rate_hz` on the loop's clock, catching up (in bounded bursts) if late."""
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            next_at += self._dt
            self.step()
            delay = next_at - loop.time()
            if delay < -1.0:  # far behind (machine suspended?): skip ahead rather than flood
                next_at = loop.time()
                delay = 0.0
            await asyncio.sleep(max(0.0, delay))

    # ---- our requests --------------------------------------------------------------------------
    def submit(
        self,
        order_id: int,
        symbol: str,
        side: int,
        price: int,
        size: int,
        order_type: int = LIMIT,
        stp: int = STP_CANCEL_RESTING,
    ) -> None:
        self._request(symbol, self.book.submit, order_id, side, price, size, order_type, OUR_OWNER, stp)

    def cancel(self, order_id: int, symbol: str) -> None:
        self._request(symbol, self.book.cancel, order_id, OUR_OWNER)

    def queue_ahead(self, order_id: int) -> int | None:
        """Lots ahead of our resting order at its price (exact: the matching book's queue)."""
        return self.book.queue_position(order_id)

    def amend(self, order_id: int, symbol: str, price: int | None = None, size: int | None = None) -> None:
        self._request(symbol, self.book.amend, order_id, price, size, OUR_OWNER)

    def _request(self, symbol: str, call, *args) -> None:
        self.our_requests += 1
        self.book.now = now = self._clock.now()
        if symbol != self.config.symbol:
            order_id = args[0]
            events = [
                Rejected(now, self.name, symbol, order_id, f"{self.name} does not list {symbol!r}", OUR_OWNER)
            ]
            if call == self.book.submit:  # a refused new order ends there; a refused cancel/amend does not
                events.append(Done(now, self.name, symbol, order_id, 0, REJECTED, OUR_OWNER))
            self._bus.publish_many(events)
            return
        call(*args)
        self._publish()

    # ---- the market ----------------------------------------------------------------------------
    def step(self) -> None:
        """One step of simulated time: the fair price moves, providers re-quote, takers trade."""
        cfg = self.config
        rng = self.rng
        dt = self._dt
        book = self.book
        self.steps += 1
        if self._clock.virtual:
            # advance_to, not advance: several venues stepping in lock-step share one virtual clock.
            if self._sim_start_ns is None:
                self._sim_start_ns = self._clock.now()
            cast("SteppedClock", self._clock).advance_to(self._sim_start_ns + round(self.steps * dt * 1e9))
        book.now = self._clock.now()

        # Regime and fair price.
        if self.burst_left > 0:
            self.burst_left -= dt
        elif rng.random() < cfg.burst_per_min / 60.0 * dt:
            self.burst_left = rng.expovariate(1.0 / cfg.burst_seconds)
        mult = cfg.burst_mult if self.burst_left > 0 else 1.0
        sigma = cfg.vol_bps * 1e-4 * mult * math.sqrt(dt)
        self.fair *= math.exp(rng.gauss(0.0, sigma))
        if rng.random() < cfg.jump_per_min / 60.0 * dt:
            self.fair *= math.exp((1 if rng.random() < 0.5 else -1) * rng.expovariate(1e4 / cfg.jump_bps))
        self.fair = max(self.fair, 10.0)

        # Providers fade quotes that the fair price moved through (most at once, a few are slow and get
        # picked off by the takers), and pull quotes that have drifted too far from it.
        fair = self.fair
        far = cfg.depth_levels + 10
        for side in (BUY, SELL):
            prices = book._prices[side]
            if side == BUY:
                stale = [px for px in reversed(prices) if px >= fair - 0.5][:64]
                stale += [px for px in prices if px < fair - far][:64]
            else:
                stale = [px for px in prices if px <= fair + 0.5][:64]
                stale += [px for px in reversed(prices) if px > fair + far][:64]
            for px in stale:
                if rng.random() < 0.7:
                    for oid, _size, owner in book.orders_at(side, px):
                        if owner == LP_OWNER:
                            book.cancel(oid)

        # Random churn of provider quotes.
        n_churn = _poisson(rng, cfg.churn_per_s * dt)
        ids = self._lp_ids
        for _ in range(n_churn):
            while ids:
                i = rng.randrange(len(ids))
                oid = ids[i]
                ids[i] = ids[-1]
                ids.pop()
                if oid in book:
                    book.cancel(oid)
                    break

        self._refill(full=False)
        if not self.steps % 200:  # forget provider ids that were filled or faded meanwhile
            self._lp_ids = [i for i in self._lp_ids if i in book]

        # Noise takers.
        n_take = _poisson(rng, cfg.taker_per_s * mult * dt)
        for _ in range(n_take):
            bb, ba = book.best_bid(), book.best_ask()
            if bb is None or ba is None:
                break
            mid = (bb + ba) / 2.0
            lean = max(-0.35, min(0.35, (fair - mid) / max(1.0, (ba - bb)) * 0.25))
            side = BUY if rng.random() < 0.5 + lean else SELL
            size = max(1, int(rng.paretovariate(2.2) * cfg.taker_mean_lots * 0.55))
            oid = self._new_id()
            if rng.random() < 0.6:
                book.submit(oid, side, 0, size, MARKET, TAKER_OWNER, STP_NONE)
            else:
                reach = rng.randint(0, 3)
                px = (ba + reach) if side == BUY else max(1, bb - reach)
                book.submit(oid, side, px, size, IOC, TAKER_OWNER, STP_NONE)
        self._publish()

    def _refill(self, full: bool) -> None:
        """Providers top levels back up towards the depth profile around the fair price."""
        cfg = self.config
        rng = self.rng
        book = self.book
        fair = self.fair
        # A spread of one or two ticks around the fair price.
        best_bid_px = math.floor(fair - 0.5)
        best_ask_px = max(best_bid_px + 1, math.ceil(fair + 0.5))
        for side in (BUY, SELL):
            # Never cross: while the other side still shows quotes through the fair price (slow providers
            # about to be picked off), this side's profile starts one tick beyond them.
            if side == BUY:
                opp = book.best_ask()
                anchor = best_bid_px if opp is None else min(best_bid_px, opp - 1)
            else:
                opp = book.best_bid()
                anchor = best_ask_px if opp is None else max(best_ask_px, opp + 1)
            for k in range(cfg.depth_levels):
                px = anchor - k if side == BUY else anchor + k
                if px <= 0:
                    break
                target = cfg.touch_lots * (1.0 + cfg.depth_slope * k)
                have = book.level_size(side, px)
                # Refill lazily, as real providers do: a level taken down gets topped up, but not always
                # at once and not always to the same size.
                if have >= target * 0.5 or (not full and rng.random() < 0.35):
                    continue
                want = int(target * rng.uniform(0.7, 1.3)) - have
                while want > 0:
                    size = min(want, max(1, int(rng.expovariate(1.0 / (target / 3.0))) + 1))
                    oid = self._new_id()
                    book.submit(oid, side, px, size, LIMIT, LP_OWNER, STP_NONE)
                    self._lp_ids.append(oid)
                    want -= size

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    # ---- publishing ----------------------------------------------------------------------------
    def _publish(self) -> None:
        """Turn what the book did since the last call into venue events on the bus."""
        book = self.book
        now = book.now
        name = self.name
        symbol = self.config.symbol
        out = []
        for ev in book.drain():
            owner = ev.owner
            if type(ev) is Fill and not ev.is_maker:
                self.trades += 1
                self.traded_lots += ev.size
                out.append(Trade(ev.ts, name, symbol, ev.price, ev.size, ev.side, ev.trade_id))
            if owner == OUR_OWNER:
                out.append(ev)
        touched = book.touched
        if touched:
            seen = set()
            qty = book._qty
            for side, px in touched:
                key = (side << 62) | px
                if key in seen:
                    continue
                seen.add(key)
                self.seq += 1
                out.append(BookDelta(now, name, symbol, self.seq, side, px, qty[side].get(px, 0)))
            touched.clear()
        if out:
            self._bus.publish_many(out)

    def publish_snapshot(self) -> None:
        book = self.book
        self._bus.publish(
            BookSnapshot(
                book.now,
                self.name,
                self.config.symbol,
                self.seq,
                tuple(book.depth(BUY)),
                tuple(book.depth(SELL)),
            )
        )

    def _status(self, state: str, detail: str = "") -> None:
        self.state = state
        self._bus.publish(VenueStatus(self._clock.now(), self.name, state, detail))


def _poisson(rng: random.Random, lam: float) -> int:
    """A Poisson draw (Knuth; lam is small here: a handful per step)."""
    if lam <= 0:
        return 0
    limit = math.exp(-lam)
    k = 0
    p = rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k

"""The embedded simulated venue, lobterm's default: a real matching book with synthetic participants.

No network and no keys. The exchange is `engine.matching.MatchingBook`; our orders rest in it and trade
against the participants for real (our fills come from the matching engine, not a coin flip).

Participants, all driven by one `random.Random(seed)`, so that the same seed and the same requests
from us give the same events:
- A **fair price** that moves as a geometric random walk in ticks, with volatility regimes (calm, and
  bursts of several times the volatility that come and go at random) and occasional jumps; either a
  small move every step or (`fair_events_per_s` > 0) discrete moves at random times, as a real price
  moves when a level is consumed or a provider re-prices.
- What the providers and the noise takers **see** of it lags (`lp_delay_ms`, `taker_delay_ms`: each
  move reaches them after a random delay). With `taker_delay_ms` > 0 the takers also come first in a
  step: they trade on the book as the last step left it (which our market maker has seen and quoted
  around), and only then the fair price moves and the providers re-quote.
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
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

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
    Event,
    Fill,
    Rejected,
    Trade,
    VenueStatus,
)
from lobterm.engine.matching import MatchingBook
from lobterm.venues.base import Attached, stop_task
from lobterm.venues.perp import MARKET_PERP, PerpConfig, PerpEngine
from lobterm.venues.simconfig import (
    PROFILE_MM,
    PROFILES,
    SIM_BOUNDS,
    ProfileSettings,
    SimConfig,
    SimConfigError,
)

__all__ = [
    "LP_OWNER",
    "PROFILES",
    "PROFILE_MM",
    "SIM_BOUNDS",
    "SIM_ID_BASE",
    "TAKER_OWNER",
    "ProfileSettings",
    "SimConfig",
    "SimConfigError",
    "SimVenue",
]

if TYPE_CHECKING:
    from lobterm.engine.ports import SteppedClock
    from lobterm.venues.simgroup import FairMember

LP_OWNER = 2
TAKER_OWNER = 3
# Participant order ids live far above ours, so the two id spaces never meet in the book.
SIM_ID_BASE = 1 << 48


class SimVenue(Attached):
    """A venue in-process. `step()` advances the market by one step; `run()` paces steps on the loop."""

    mode = "SIM"
    own_in_book = True

    def __init__(
        self,
        config: SimConfig | None = None,
        perp: PerpConfig | None = None,
        *,
        fair: FairMember | None = None,
        latency_ms: float = 0.0,
    ) -> None:
        """`fair`: draw the fair price from a group shared with other sim venues (venues/simgroup.py).
        `latency_ms`: our requests reach the book that much later (applied at the first step after)."""
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
        self.fair = self._start_fair = float(self.instrument.ticks_nearest(cfg.start_price))
        self._fair_source = fair
        self.latency_ns = round(latency_ms * 1e6)
        self._in_flight: deque[tuple[int, Callable[[], None]]] = deque()  # (due, request), by due time
        self._arriving = False
        self.impact = 0.0  # the noise takers' transient impact, ticks (impact_ticks)
        self._impact_decay = 0.5 ** (1.0 / (cfg.impact_half_life_s * cfg.rate_hz))
        self.burst_left = 0.0  # seconds of burst remaining
        self._mult = 1.0  # volatility and taker flow multiplier of the current step (bursts)
        self._takers_first = cfg.taker_delay_ms > 0  # takers trade on the last step's book (see step)
        self.steps = 0
        self.seq = 0
        self.trades = 0
        self.traded_lots = 0
        self.our_requests = 0
        self._next_id = SIM_ID_BASE
        self._lp_ids: list[int] = []  # provider orders, for uniform random churn
        self._task: asyncio.Task[None] | None = None
        self._dt = 1.0 / cfg.rate_hz
        self._sim_start_ns: int | None = None
        #: `market = "perp"`: mark, funding, margin and liquidation of our account (lobterm.venues.perp).
        self.perp = PerpEngine(self, perp) if cfg.market == MARKET_PERP else None
        # The fair price path is drawn `informed_horizon_s` ahead: (fair, burst multiplier) per step;
        # informed takers trade towards the last one (what the fair price will be), noise takers not.
        self._path: deque[tuple[float, float]] = deque()
        self._last_fair = self.fair
        # What the providers and the noise takers see of the fair price: each move, some time late.
        self._lp_view = _Lagged(cfg.lp_delay_ms * 1e-3 * cfg.rate_hz, self.fair)
        self._taker_view = _Lagged(cfg.taker_delay_ms * 1e-3 * cfg.rate_hz, self.fair)
        for _ in range(round(cfg.informed_horizon_s * cfg.rate_hz)):
            self._path.append(self._draw_fair())
        self.informed_trades = 0

    # ---- wiring --------------------------------------------------------------------------------
    def open(self) -> None:
        """Seed the book and publish the first snapshot (no pacing task; see `start`)."""
        self._status("connecting")
        self.book.now = self.clock.now()
        self._refill(full=True, fair=self.fair + self.impact)
        self.book.drain()
        self.book.touched.clear()
        self.publish_snapshot()
        if self.perp is not None:
            self.bus.publish_many(self.perp.open(self.book.now))
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
        if self._later(lambda: self.submit(order_id, symbol, side, price, size, order_type, stp)):
            return
        if not self._unlisted(symbol, order_id, new=True):
            self.book.submit(order_id, side, price, size, order_type, OUR_OWNER, stp)
            self._publish()

    def cancel(self, order_id: int, symbol: str) -> None:
        if self._later(lambda: self.cancel(order_id, symbol)):
            return
        if not self._unlisted(symbol, order_id):
            self.book.cancel(order_id, OUR_OWNER)
            self._publish()

    def queue_ahead(self, order_id: int) -> int | None:
        """Lots ahead of our resting order at its price (exact: the matching book's queue)."""
        return self.book.queue_position(order_id)

    def amend(self, order_id: int, symbol: str, price: int | None = None, size: int | None = None) -> None:
        if self._later(lambda: self.amend(order_id, symbol, price, size)):
            return
        if not self._unlisted(symbol, order_id):
            self.book.amend(order_id, price, size, OUR_OWNER)
            self._publish()

    def _later(self, request: Callable[[], None]) -> bool:
        """With latency: keep `request` in flight (True) until the first step at or after its arrival."""
        if not self.latency_ns:
            return False
        if self._arriving:  # the arriving request itself (one only: what it causes is sent anew)
            self._arriving = False
            return False
        self._in_flight.append((self.clock.now() + self.latency_ns, request))
        return True

    def _arrive(self) -> None:
        """Apply the requests in flight whose latency has elapsed, in the order they were sent."""
        now = self.clock.now()
        flight = self._in_flight
        try:
            while flight and flight[0][0] <= now:
                # Requests a strategy sends while this one is applied (reacting to its answer) travel
                # with the latency too: only the arriving request passes `_later`.
                self._arriving = True
                flight.popleft()[1]()
        finally:
            self._arriving = False

    def _unlisted(self, symbol: str, order_id: int, *, new: bool = False) -> bool:
        """Count one of our requests and set the book's time; refuse it (True) if this venue does not
        list `symbol`. A refused new order ends there (Done); a refused cancel or amend does not."""
        self.our_requests += 1
        self.book.now = now = self.clock.now()
        if symbol == self.config.symbol:
            return False
        events: list[Event] = [
            Rejected(now, self.name, symbol, order_id, f"{self.name} does not list {symbol!r}", OUR_OWNER)
        ]
        if new:
            events.append(Done(now, self.name, symbol, order_id, 0, REJECTED, OUR_OWNER))
        self.bus.publish_many(events)
        return True

    # ---- the market ----------------------------------------------------------------------------
    def step(self) -> None:
        """One step of simulated time: the fair price moves, providers re-quote, takers trade.

        With `taker_delay_ms` > 0 the takers come first: they trade on the book as the last step left
        it (which we have seen), and the fair price's move of this step reaches them later."""
        dt = self._dt
        self.steps += 1
        if self.clock.virtual:
            # advance_to, not advance: several venues stepping in lock-step share one virtual clock.
            if self._sim_start_ns is None:
                self._sim_start_ns = self.clock.now()
            cast("SteppedClock", self.clock).advance_to(self._sim_start_ns + round(self.steps * dt * 1e9))
        self.book.now = self.clock.now()
        if self._in_flight:
            self._arrive()
        if self._takers_first:
            self._takers(self._mult, self._taker_view.see(self.rng, self.steps, self.fair))
            self._move_fair()
            self._providers()
        else:
            self._move_fair()
            self._providers()
            self._takers(self._mult, self._taker_view.see(self.rng, self.steps, self.fair))
        self._publish()

    def _move_fair(self) -> None:
        """Regime and fair price of this step (drawn ahead, see _path)."""
        self._path.append(self._draw_fair())
        self.fair, self._mult = self._path.popleft()

    def _providers(self) -> None:
        """The providers quote around what they see of the fair price, plus the noise takers' transient
        impact (decaying): they fade quotes it moved through (most at once, a few are slow and get picked
        off by the takers), pull quotes that drifted too far from it, churn, and refill."""
        cfg = self.config
        rng = self.rng
        book = self.book
        lp_fair = self._lp_view.see(rng, self.steps, self.fair)
        self.impact *= self._impact_decay
        fair = lp_fair + self.impact
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
        n_churn = _poisson(rng, cfg.churn_per_s * self._dt)
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

        self._refill(full=False, fair=fair)
        if not self.steps % 200:  # forget provider ids that were filled or faded meanwhile
            self._lp_ids = [i for i in self._lp_ids if i in book]

    def _takers(self, mult: float, seen: float) -> None:
        """Takers: noise (leaning towards `seen`, what they see of the fair price, so the mid follows it)
        and informed (they know the fair price `informed_horizon_s` ahead and buy below it, sell above)."""
        cfg = self.config
        rng = self.rng
        book = self.book
        n_take = _poisson(rng, cfg.taker_per_s * mult * self._dt)
        future = self._last_fair
        for _ in range(n_take):
            bb, ba = book.best_bid(), book.best_ask()
            if bb is None or ba is None:
                break
            size = max(1, int(rng.paretovariate(cfg.taker_tail) * cfg.taker_mean_lots * _PARETO_SCALE))
            oid = self._new_id()
            if rng.random() < cfg.informed_share and (future > ba or future < bb):
                self.informed_trades += 1
                side = BUY if future > ba else SELL
                limit = math.floor(future) if side == BUY else math.ceil(future)
                if cfg.informed_reach_ticks:  # they take what is near the touch, not the whole way
                    reach = cfg.informed_reach_ticks
                    limit = min(limit, ba + reach) if side == BUY else max(limit, bb - reach)
                book.submit(oid, side, max(1, limit), size, IOC, TAKER_OWNER, STP_NONE)
                continue
            mid = (bb + ba) / 2.0
            cap = cfg.noise_lean
            lean = max(-cap, min(cap, (seen - mid) / max(1.0, (ba - bb)) * 0.25))
            side = BUY if rng.random() < 0.5 + lean else SELL
            if cfg.impact_ticks:
                push = cfg.impact_ticks * math.sqrt(size / cfg.taker_mean_lots)
                self.impact += push if side == BUY else -push
            if rng.random() < 0.6:
                book.submit(oid, side, 0, size, MARKET, TAKER_OWNER, STP_NONE)
            else:
                reach = rng.randint(0, 3)
                px = (ba + reach) if side == BUY else max(1, bb - reach)
                book.submit(oid, side, px, size, IOC, TAKER_OWNER, STP_NONE)

    def shock(self, factor: float) -> None:
        """Move the fair price (and the path already drawn ahead of it) by `factor` at once: a jump a
        test or a demo asks for. The providers re-quote around it from the next step."""
        if not (math.isfinite(factor) and factor > 0):
            raise SimConfigError("shock", factor, "must be a finite factor above 0")
        self.fair = max(self.fair * factor, 10.0)
        self._last_fair = max(self._last_fair * factor, 10.0)
        self._path = deque((max(f * factor, 10.0), m) for f, m in self._path)
        self._lp_view.shift(factor)
        self._taker_view.shift(factor)

    def _draw_fair(self) -> tuple[float, float]:
        """The next step of the fair price path: (fair, burst multiplier)."""
        if self._fair_source is not None:
            fair, mult = self._fair_source.draw(self.config, self.rng, self._start_fair)
            self._last_fair = fair
            return fair, mult
        cfg = self.config
        rng = self.rng
        dt = self._dt
        if self.burst_left > 0:
            self.burst_left -= dt
        elif rng.random() < cfg.burst_per_min / 60.0 * dt:
            self.burst_left = rng.expovariate(1.0 / cfg.burst_seconds)
        mult = cfg.burst_mult if self.burst_left > 0 else 1.0
        sigma = cfg.vol_bps * 1e-4 * mult  # per square root of a second
        if cfg.fair_events_per_s > 0:
            # Discrete events: Laplace moves (variance 2 b^2) at rate lam, so that lam * 2 b^2 = sigma^2.
            fair = self._last_fair
            b = sigma / math.sqrt(2.0 * cfg.fair_events_per_s)
            for _ in range(_poisson(rng, cfg.fair_events_per_s * dt)):
                # At most a factor e a move: a rare event at a high volatility stays finite.
                fair *= math.exp((1 if rng.random() < 0.5 else -1) * min(1.0, rng.expovariate(1.0) * b))
        else:
            fair = self._last_fair * math.exp(rng.gauss(0.0, sigma * math.sqrt(dt)))
        if cfg.jump_bps > 0 and rng.random() < cfg.jump_per_min / 60.0 * dt:
            fair *= math.exp((1 if rng.random() < 0.5 else -1) * rng.expovariate(1e4 / cfg.jump_bps))
        self._last_fair = fair = max(fair, 10.0)
        return fair, mult

    def _refill(self, full: bool, fair: float) -> None:
        """Providers top levels back up towards the depth profile around `fair` (what they see of it)."""
        cfg = self.config
        rng = self.rng
        book = self.book
        # A spread of `lp_spread_ticks` (one more when the fair price straddles the grid) around it.
        half = cfg.lp_spread_ticks / 2.0
        best_bid_px = math.floor(fair - half)
        best_ask_px = max(best_bid_px + 1, math.ceil(fair + half))
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
        out: list[Event] = []
        self._collect(out)
        if self.perp is not None:
            perp = self.perp.after(self.book.now, out)
            if self.book.events:  # a liquidation cancelled our orders: they go out before it
                self._collect(out)
            out.extend(perp)
        if out:
            self.bus.publish_many(out)

    def _collect(self, out: list[Event]) -> None:
        """Append what the book did since the last call: trades, our order events, level deltas."""
        book = self.book
        now = book.now
        name = self.name
        symbol = self.config.symbol
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

    def publish_snapshot(self) -> None:
        book = self.book
        self.bus.publish(
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
        self.bus.publish(VenueStatus(self.clock.now(), self.name, state, detail))


class _Lagged:
    """What one kind of participant sees of the fair price: each move `mean_steps` steps late on average
    (an exponential delay, rounded to steps), never out of order. A mean of 0: the fair price itself."""

    __slots__ = ("_due", "_mean", "_moves", "_sent", "value")

    def __init__(self, mean_steps: float, fair: float) -> None:
        self._mean = mean_steps
        self._moves: deque[tuple[int, float]] = deque()  # (step it is seen at, fair price)
        self._due = 0
        self._sent = self.value = fair

    def see(self, rng: random.Random, step: int, fair: float) -> float:
        """The view at `step`, the fair price being `fair` (draws a delay per move only when lagged)."""
        if self._mean <= 0:
            self.value = fair
            return fair
        if fair != self._sent:
            self._sent = fair
            self._due = max(self._due, step + round(rng.expovariate(1.0 / self._mean)))
            self._moves.append((self._due, fair))
        moves = self._moves
        while moves and moves[0][0] <= step:
            self.value = moves.popleft()[1]
        return self.value

    def shift(self, factor: float) -> None:
        """A shock (`SimVenue.shock`): everything seen and to be seen moves by `factor`."""
        self._sent = max(self._sent * factor, 10.0)
        self.value = max(self.value * factor, 10.0)
        self._moves = deque((d, max(f * factor, 10.0)) for d, f in self._moves)


# Pareto(alpha) has mean alpha / (alpha - 1): 0.55 keeps the old scale of 2.2 (mean 1.83 * 0.55 = 1).
_PARETO_SCALE = 0.55


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

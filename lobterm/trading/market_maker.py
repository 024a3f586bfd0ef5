"""The market maker: a ladder of quotes on one venue+symbol, kept in line with the book and our inventory.

Each requote cycle does three things:
1. **Desired ladder** (`lobterm.trading.quoting.quote_ladder`, pure): a reservation price and a spread
   around the others' mid (the venue's book without our own orders, so that we never quote off our own
   quotes) or the fair value `[mm] fair_value` names (`lobterm.trading.fair_value`: the microprice, or the
   consolidated microprice over every venue of the instrument, read through a `StrategyContext`), then
   `levels` bids and asks stepping away from it (modes and rules: see `quoting`). The market maker feeds
   it the model's estimates (sigma from the mid, k or the GLFT fit from trades).
2. **Diff** (`diff_quotes`, pure): desired against our working quotes, with the smallest set of
   messages: a quote within `refresh_tolerance_ticks` of a desired price and within `size_tolerance`
   of its size is kept; a size that is too big is amended down in place (keeps queue priority);
   remaining quotes are amended to the remaining desired prices (one message instead of cancel+new);
   what is left over is cancelled or placed new. A side never has more than `levels` live quotes
   (counting those being cancelled) and never more lots than its max-position budget.
3. **Send** through the OMS, cancels first, then amends that move away from the other side, then
   amends towards it, then new orders (so that our own bid and ask never meet on the way).

Requoting is event driven (book events and trades of its market, its own fills and done orders) and
coalesced: while more events of its market are queued on the bus, it waits for the last one. The
market maker tracks its own quotes from their lifecycle events and needs nothing of the OMS but
`new_order`, `amend` and `cancel`. Quotes are pulled (cancelled) when the book goes invalid (a
sequence gap), the venue is not up, the book is stale, on `pause()`, `stop()` and the risk kill switch.

Where the parts live: the ladder math in `quoting`, the diff and our quotes' states in `quote_diff`, the
model's estimates (sigma, k, GLFT fit) in `mm_estimates`, sending and following our orders in
`mm_orders` (`QuoteOrders`, a part of `MarketMaker`), the quote panel's view in `quote_view`; this module
keeps the controls, the bus handlers and the requote cycle. Every name is importable from here.
"""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from lobterm.engine.events import (
    BUY,
    OUR_OWNER,
    SELL,
    Accepted,
    Amended,
    BookDelta,
    BookGap,
    BookSnapshot,
    Cancelled,
    Done,
    Fill,
    OrderEvent,
    Rejected,
    Trade,
    VenueStatus,
)
from lobterm.engine.instrument import MAX_UNITS
from lobterm.trading.fair_value import (
    CONSOLIDATED_MICROPRICE,
    MICROPRICE,
    MID,
    FairValue,
    Touch,
    consolidated_microprice,
)
from lobterm.trading.mm_estimates import ModelEstimates
from lobterm.trading.mm_orders import QuoteOrders
from lobterm.trading.quote_diff import (
    AMENDING,
    CANCELLING,
    SENT,
    WORKING,
    QuoteActions,
    WorkingQuote,
    diff_quotes,
)
from lobterm.trading.quote_view import LadderView, QuoteRow, build_ladder_view
from lobterm.trading.quoting import (
    GLFT,
    LADDER,
    PARAM_NAMES,
    Ladder,
    QuoteParamError,
    QuoteParams,
    quote_ladder,
)

__all__ = [
    "AMENDING",
    "CANCELLING",
    "PAUSED",
    "RUNNING",
    "SENT",
    "STOPPED",
    "WORKING",
    "LadderView",
    "ModelEstimates",
    "QuoteOrders",
    "MarketMaker",
    "MarketMakerError",
    "QuoteActions",
    "QuoteRow",
    "WorkingQuote",
    "diff_quotes",
]

# Market maker states.
RUNNING = "running"
PAUSED = "paused"
STOPPED = "stopped"


# ---- errors -------------------------------------------------------------------------------------
class MarketMakerError(RuntimeError):
    """A request the market maker cannot do in its current state (e.g. resume after the kill switch)."""


# ---- the market maker ----------------------------------------------------------------------------
def _accepts(fn: Callable[..., object], name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(v.kind is inspect.Parameter.VAR_KEYWORD for v in params.values())


class MarketMaker(QuoteOrders):
    """Quotes a ladder on `market` (a kernel Market: `.venue`, `.symbol`, `.l2`, `.unified`,
    `.instrument`) through `oms`, for the position that `inventory.position(venue, symbol).lots` reports
    (or a zero-argument callable returning signed lots).

    Construct it after the kernel's own subscriptions (books, OMS, inventory): it subscribes itself to
    the bus and reads the books and the position as they stand after those handlers ran. It starts
    paused: `resume()` starts quoting."""

    def __init__(
        self,
        bus: Any,
        oms: Any,
        market: Any,
        inventory: Any,
        clock: Any,
        params: QuoteParams | None = None,
        *,
        risk: Any = None,
        tag: str = "mm",
        subscribe: bool = True,
    ) -> None:
        self.params = params or QuoteParams()
        self.params.validate()
        self.bus = bus
        self.oms = oms
        self.market = market
        self.venue: str = market.venue
        self.symbol: str = market.symbol
        # The Strategy protocol's name and market data (lobterm.trading.strategy).
        self.name = f"mm:{self.venue}:{self.symbol}"
        self.markets: tuple[tuple[str, str], ...] = ((self.venue, self.symbol),)
        self.instrument = market.instrument
        self.l2 = market.l2
        self.unified = getattr(market, "unified", None)
        self.clock = clock
        self.risk = risk
        #: Optional `side -> bool`: True means "no maker quotes on this side now" (the hedger's
        #: `blocks_quoting`, while a hedge of the position that side would add to is overdue).
        self.side_block: Callable[[int], bool] | None = None
        #: Optional `(market_maker, changes) -> None`, called after `update_params` applied `changes`
        #: (the kernel records them in the session file; the market maker knows nothing of recording).
        self.on_change: Callable[[MarketMaker, dict[str, Any]], None] | None = None
        self.tag = tag
        #: What the market maker reads of other markets (`attach_context`): the books of the venues whose
        #: consolidated microprice may be its fair value (`fair_markets`, its own market first).
        self.ctx: Any = None
        self.fair_markets: tuple[tuple[str, str], ...] = self.markets
        #: The last fair value it centred on when `params.fair_value` is not "mid" (the panel shows it).
        self.fair: FairValue | None = None
        if hasattr(inventory, "position"):
            venue, symbol = self.venue, self.symbol
            self._position: Callable[[], int] = lambda: inventory.position(venue, symbol).lots
        else:
            self._position = inventory
        self._new_kwargs = {"tag": tag} if _accepts(oms.new_order, "tag") else {}
        # The bus's pending queue, to wait for the last queued event of a batch before requoting.
        self._queue = bus.pending
        self.min_lots = max(1, getattr(self.instrument, "min_lots", 1))
        self.max_lots = getattr(self.instrument, "max_lots", MAX_UNITS)

        self.state = PAUSED
        self.reason = "paused"
        self.params_version = 0
        self.version = 0  # changes whenever something the UI shows changed
        self._quotes: dict[int, WorkingQuote] = {}
        self._ladder: Ladder | None = None
        self._assignment: dict[tuple[int, int], int] = {}
        self._in_cycle = False
        self._again = False
        self._dirty = True  # something happened that the last diff did not ask for
        self._deferred = False  # a requote is owed to the last queued event
        self._sending = False
        self._early: list[OrderEvent] = []  # events of an order that arrived before new_order returned its id
        self._backoff_until = 0
        self._venue_state: str | None = None
        self._last_md_ns = clock.now()  # the book is as fresh as it was when we were built
        self._last_request_ns = -1
        self._trigger_pc = 0
        self._started_ns: int | None = None
        self._loop_ts = -1
        self._loop_cycles = 0
        self.model = ModelEstimates(self.params)  # sigma, k and the GLFT fit, learnt as it runs

        # Counters.
        self.quotes_sent = 0
        self.amends_sent = 0
        self.cancels_sent = 0
        self.requote_cycles = 0
        self.fills = 0
        self.filled_lots = 0
        self.rejects = 0
        self.send_errors = 0
        self.pulls = 0
        self.holds = 0
        self.lost_quotes = 0
        self.last_reject: str | None = None
        self.last_tick_to_quote_ns: int | None = None

        self._handlers: list[tuple[Any, Callable[[Any], None]]] = []
        if subscribe:
            self._subscribe()
        add_on_kill = getattr(risk, "add_on_kill", None)
        if add_on_kill is not None:  # the risk kill switch stops us before it cancels every order
            add_on_kill(self._on_risk_kill)

    @classmethod
    def from_kernel(
        cls,
        kernel: Any,
        venue: str | None = None,
        symbol: str | None = None,
        params: QuoteParams | None = None,
        **kwargs: Any,
    ) -> MarketMaker:
        """A market maker on `kernel.markets[(venue, symbol)]` (default: the kernel's first market)."""
        market = kernel.default_market if venue is None else kernel.markets[(venue, symbol)]
        kwargs.setdefault("risk", getattr(kernel, "risk", None))
        return cls(kernel.bus, kernel.oms, market, kernel.inventory, kernel.clock, params, **kwargs)

    def attach_context(self, ctx: Any) -> None:
        """Read other markets through `ctx` (a `StrategyContext` whose markets are this market first, then
        the other venues of the same instrument): the consolidated microprice is computed over them."""
        self.ctx = ctx
        self.fair_markets = tuple(ctx.markets)

    def _subscribe(self) -> None:
        pairs = [
            ((BookDelta, BookSnapshot, Trade), self.on_market_data),
            ((Accepted, Fill, Cancelled, Amended, Rejected, Done), self.on_order_event),
            (BookGap, self.on_book_gap),
            (VenueStatus, self.on_venue_status),
        ]
        for types, handler in pairs:
            self.bus.subscribe(types, handler)
            self._handlers.append((types, handler))

    def close(self) -> None:
        """Stop listening to the bus (quotes are not touched: `stop()` first)."""
        for _types, handler in self._handlers:
            self.bus.unsubscribe(handler)
        self._handlers.clear()

    # ---- controls --------------------------------------------------------------------------------
    def resume(self) -> None:
        """Start (or restart after `pause`) quoting."""
        if self.state == STOPPED:
            raise MarketMakerError(
                f"market maker {self.venue}:{self.symbol} was stopped ({self.reason}); "
                "call rearm() before resume()"
            )
        if self._started_ns is None:
            self._started_ns = self.clock.now()
        self.state = RUNNING
        self.reason = ""
        self.version += 1
        self._dirty = True
        self.requote()

    def pause(self) -> None:
        """Stop quoting and cancel our quotes; `resume()` starts again."""
        if self.state == RUNNING:
            self.state = PAUSED
        self._pull("paused" if self.state == PAUSED else self.reason)

    def stop(self, reason: str = "kill switch") -> None:
        """The kill switch: cancel every quote and refuse to quote until `rearm()`."""
        self.state = STOPPED
        self._pull(reason)

    def _on_risk_kill(self, reason: str) -> None:
        self.stop(f"risk kill switch: {reason}")

    def rearm(self) -> None:
        """After `stop()`: back to paused, so that `resume()` is allowed again."""
        if self.state == STOPPED:
            self.state = PAUSED
            self.reason = "paused"
            self.version += 1

    def update_params(self, **changes: Any) -> QuoteParams:
        """Change parameters live, all or none: raises `QuoteParamError` naming the first bad one."""
        for name, value in changes.items():
            if name not in PARAM_NAMES:
                known = ", ".join(sorted(PARAM_NAMES))
                raise QuoteParamError(name, value, f"is not a quote parameter (known: {known})")
        if isinstance(changes.get("sizes"), list):
            changes["sizes"] = tuple(changes["sizes"])
        try:
            new = replace(self.params, **changes)
        except TypeError as exc:  # pragma: no cover - names were checked above
            raise QuoteParamError("?", changes, str(exc)) from None
        new.validate()
        self.model.set_params(new)
        self.params = new
        self.params_version += 1
        self._dirty = True
        self.version += 1
        if self.on_change is not None:  # before the requote: the change precedes the orders it causes
            self.on_change(self, changes)
        if self.state == RUNNING:
            self.requote()
        return new

    # ---- the Strategy protocol (lobterm.trading.strategy) ------------------------------------------
    def on_timer(self, now_ns: int) -> None:
        self.heartbeat()

    def status(self) -> dict[str, str]:
        return {
            "state": self.state,
            "reason": self.reason,
            "quotes": str(len(self._quotes)),
            "fills": str(self.fills),
        }

    def heartbeat(self) -> int:
        """Call on a timer (the UI clock): checks staleness and quote age when no event arrives."""
        if self.state != RUNNING:
            return 0
        self._dirty = True  # a full diff now and then, whatever the events said
        return self.requote()

    # ---- reading ---------------------------------------------------------------------------------
    @property
    def working_quotes(self) -> list[WorkingQuote]:
        """Our live quotes (including those with a cancel in flight), bids best first then asks."""
        qs = list(self._quotes.values())
        qs.sort(key=lambda q: (q.side, -q.price if q.side == BUY else q.price))
        return qs

    @property
    def ladder(self) -> Ladder | None:
        """The last desired ladder."""
        return self._ladder

    def ladder_view(self) -> LadderView:
        """Desired against working quotes, level by level, for the quote panel."""
        return build_ladder_view(
            self.state,
            self.reason,
            self.params.mode,
            self._position(),
            self._ladder,
            self._quotes,
            self._assignment,
        )

    def stats(self) -> dict[str, Any]:
        """Counters for the status bar and metrics."""
        return {
            "state": self.state,
            "reason": self.reason,
            "quotes": len(self._quotes),
            "quotes_sent": self.quotes_sent,
            "amends": self.amends_sent,
            "cancels": self.cancels_sent,
            "requote_cycles": self.requote_cycles,
            "fills": self.fills,
            "filled_lots": self.filled_lots,
            "rejects": self.rejects,
            "send_errors": self.send_errors,
            "pulls": self.pulls,
            "holds": self.holds,
            "last_tick_to_quote_ns": self.last_tick_to_quote_ns,
            "sigma_ticks": self.sigma_ticks,
            "k": self.k_estimate,
        }

    # The model's estimates in use (lobterm.trading.mm_estimates).
    @property
    def sigma_ticks(self) -> float:
        """The volatility in use: ticks per sqrt second (estimated, or the parameter)."""
        return self.model.sigma_ticks

    @property
    def k_estimate(self) -> float:
        """The order arrival intensity decay in use (per tick)."""
        return self.model.k_estimate

    @property
    def a_estimate(self) -> float:
        """GLFT: the fitted trade intensity at the mid (per second), or the `glft_a` prior."""
        return self.model.a_estimate

    def glft_view(self) -> dict[str, Any]:
        """GLFT calibration for the panel (`ModelEstimates.glft_view`)."""
        return self.model.glft_view()

    # ---- bus handlers ----------------------------------------------------------------------------
    def on_market_data(self, ev: BookDelta | BookSnapshot | Trade) -> None:
        if ev.venue != self.venue or ev.symbol != self.symbol:
            # Another venue of the instrument moves the consolidated fair value: requote on it too.
            if (
                self.state == RUNNING
                and self.params.fair_value == CONSOLIDATED_MICROPRICE
                and (ev.venue, ev.symbol) in self.fair_markets
                and ev.__class__ is not Trade
            ):
                if self._more_coming():
                    self._deferred = True
                else:
                    self.requote()
            return
        now = self.clock.now()
        if now != self._last_request_ns:  # the echo of our own request does not prove the feed alive
            self._last_md_ns = now
        p = self.params
        if ev.__class__ is Trade and (p.estimate_k or p.mode == GLFT):
            touch = self._others_touch()  # the book still shows the touch the trade hit
            if touch is not None:
                if p.estimate_k:
                    self.model.sample_trade(ev.price, touch[0] + touch[1])
                if p.mode == GLFT:
                    self.model.sample_arrival(now, ev, touch[0] + touch[1])
        if self.state != RUNNING:
            # Keep the volatility estimate warm while paused (the cycle samples it while running).
            if p.estimate_sigma and p.mode != LADDER and not self._more_coming():
                touch = self._others_touch()
                if touch is not None:
                    self.model.sample_mid(now, touch[0] + touch[1])
            return
        if not self.l2.valid:  # never wait for the batch to end to pull quotes off a broken book
            self._pull("book invalid")
            return
        if not self._trigger_pc:
            self._trigger_pc = time.perf_counter_ns()
        if self._more_coming():
            self._deferred = True
        else:
            self.requote()

    def on_order_event(self, ev: Any) -> None:
        if ev.owner != OUR_OWNER:
            return
        q = self._quotes.get(ev.order_id)
        cls = ev.__class__
        if q is None:
            if self._sending and ev.venue == self.venue and ev.symbol == self.symbol:
                self._early.append(ev)
            elif self._deferred and (cls is Fill or cls is Done) and not self._more_coming():
                self.requote()  # we waited for this event, but its quote is gone meanwhile
            return
        self._apply(q, ev)
        if cls is Fill or cls is Done:
            if self._more_coming():
                self._deferred = True
            elif self.state == RUNNING:
                self.requote()

    def on_book_gap(self, ev: BookGap) -> None:
        if ev.venue == self.venue and ev.symbol == self.symbol and self.state == RUNNING:
            self._pull("book invalid")

    def on_venue_status(self, ev: VenueStatus) -> None:
        if ev.venue != self.venue:
            return
        self._venue_state = ev.state
        if self.state == RUNNING:
            if ev.state != "up":
                self._pull(f"venue {ev.state}")
            else:
                self.requote()

    def _more_coming(self) -> bool:
        """True when the last queued event will reach us and trigger a requote: wait for it."""
        queue = self._queue
        if not queue:
            return False
        ev = queue[-1]
        if type(ev) is BookDelta or type(ev) is BookSnapshot or type(ev) is Trade:
            if ev.venue == self.venue and ev.symbol == self.symbol:
                return True
            return (
                type(ev) is not Trade
                and self.params.fair_value == CONSOLIDATED_MICROPRICE
                and (ev.venue, ev.symbol) in self.fair_markets
            )
        if type(ev) is Fill or type(ev) is Done:
            return ev.owner == OUR_OWNER and ev.order_id in self._quotes
        return False

    # ---- the cycle -------------------------------------------------------------------------------
    def requote(self) -> int:
        """Run a requote cycle now (re-entrant calls are folded into one more pass); messages sent."""
        if self._in_cycle:
            self._again = True
            return 0
        self._in_cycle = True
        self._deferred = False
        sent = 0
        try:
            for _ in range(4):
                self._again = False
                sent += self._cycle()
                if not self._again:
                    break
        finally:
            self._in_cycle = False
            self._trigger_pc = 0
        return sent

    def _blocker(self, now: int) -> str | None:
        """Why we must not have quotes out right now, or None."""
        if self.risk is not None and getattr(self.risk, "killed", False):
            return "risk kill switch"
        if self._venue_state is not None and self._venue_state != "up":
            return f"venue {self._venue_state}"
        if not self.l2.valid:
            return "book invalid"
        stale = self.params.stale_after_ms
        if stale and now - self._last_md_ns > stale * 1_000_000:
            return "book stale"
        return None

    def _cycle(self) -> int:
        if self.state != RUNNING:
            return self._pull(self.reason or self.state)
        now = self.clock.now()
        why = self._blocker(now)
        if why is not None:
            if why == "risk kill switch":
                self.stop(why)
                return 0
            return self._pull(why)
        # A guard against a requote storm within one instant (e.g. a venue that rejects every request).
        if now == self._loop_ts:
            self._loop_cycles += 1
            if self._loop_cycles > 200:
                return self._hold("requote loop guard")
        else:
            self._loop_ts = now
            self._loop_cycles = 0
        touch = self._others_touch()
        if touch is None:
            return self._hold("one-sided book")
        bid, ask = touch
        if bid >= ask:
            return self._hold("crossed book")
        p = self.params
        if p.estimate_sigma:
            self.model.sample_mid(now, bid + ask)
        position = self._position()
        fair = None
        if p.fair_value != MID:
            fv = self._fair_value(bid, ask)
            if fv != self.fair:
                self.fair = fv
                self.version += 1
            if fv is not None:
                fair = fv.center
        elif self.fair is not None:
            self.fair = None
            self.version += 1
        if p.mode == GLFT and self.model.fit.maybe_refit(now):
            self.version += 1
        ladder = quote_ladder(
            p,
            bid,
            ask,
            position,
            sigma_ticks=self.sigma_ticks,
            k=self.k_estimate,
            a=self.a_estimate,
            tau_s=self._tau(now),
            min_lots=self.min_lots,
            max_lots=self.max_lots,
            fair=fair,
        )
        block = self.side_block
        if block is not None and (ladder.bids or ladder.asks):
            if block(BUY):
                ladder = replace(ladder, bids=())
            if block(SELL):
                ladder = replace(ladder, asks=())
        if self.reason:
            self.reason = ""
            self.version += 1
        if ladder == self._ladder and not self._dirty and not p.max_order_age_ms:
            # Same ladder, and nothing happened to our quotes but the answers we asked for: the
            # diff would be empty (the echo of our own requests lands here).
            return 0
        if ladder != self._ladder:
            self._ladder = ladder
            self.version += 1
        self.requote_cycles += 1
        backoff = now < self._backoff_until
        actions = diff_quotes(
            ladder,
            list(self._quotes.values()),
            p,
            position,
            now,
            min_lots=self.min_lots,
            allow_new=not backoff,
        )
        self._assignment = actions.assignment
        # In a backoff, or with requests in flight, the diff could not do everything: look again.
        self._dirty = backoff or any(q.state == SENT or q.state == AMENDING for q in self._quotes.values())
        if not len(actions):
            return 0
        return self._send(actions, backoff)

    def _hold(self, reason: str) -> int:
        self.holds += 1
        self._dirty = True
        if reason != self.reason:
            self.reason = reason
            self.version += 1
        return 0

    # ---- market reading and model estimates ------------------------------------------------------
    def _others_touch(self) -> tuple[int, int] | None:
        """Best bid and ask of everybody but us (ticks), or None when a side is empty."""
        l2 = self.l2
        u = self.unified
        if u is None or not u.own_in_venue_book:
            bid, ask = l2.best_bid_price(), l2.best_ask_price()
        else:
            bid = ask = None
            ours = u.our_size
            for price, size in l2.iter_levels(BUY):
                if size > ours(BUY, price):
                    bid = price
                    break
            for price, size in l2.iter_levels(SELL):
                if size > ours(SELL, price):
                    ask = price
                    break
        if bid is None or ask is None:
            return None
        return bid, ask

    def _others_size(self, side: int, price: int) -> int:
        """The others' lots at `price` of our market (ours taken out where the venue's book holds them)."""
        size: int = self.l2.level_size(side, price)
        u = self.unified
        if u is not None and u.own_in_venue_book:
            size -= u.our_size(side, price)
        return size

    def _fair_value(self, bid: int, ask: int) -> FairValue | None:
        """The fair value `params.fair_value` asks for (lobterm/trading/fair_value.py): our market's others'
        touch (`bid`, `ask`), plus, for the consolidated microprice, the touch of every other venue of the
        instrument as the strategy context shows its book, ours taken out (left out while invalid)."""
        touches = [
            Touch(
                self.venue,
                self.instrument,
                (bid, self._others_size(BUY, bid)),
                (ask, self._others_size(SELL, ask)),
            )
        ]
        kind = self.params.fair_value
        if kind == CONSOLIDATED_MICROPRICE and self.ctx is not None:
            for key in self.fair_markets[1:]:
                book = self.ctx.book(*key)
                if not book.valid:
                    continue
                best_bid, best_ask = self.ctx.others_best(*key, BUY), self.ctx.others_best(*key, SELL)
                touches.append(Touch(key[0], self.ctx.instrument(*key), best_bid, best_ask))
        return consolidated_microprice(self.instrument, touches, MICROPRICE if len(touches) == 1 else kind)

    def _tau(self, now: int) -> float:
        p = self.params
        if p.infinite_horizon or self._started_ns is None:
            return p.horizon_s
        elapsed = (now - self._started_ns) / 1e9
        return p.horizon_s - math.fmod(elapsed, p.horizon_s)

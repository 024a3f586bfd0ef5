"""A worked user strategy: one bid and one ask a few ticks behind the touch, inside a position limit.

Run it from the config, the same in the TUI and headless (sim, paper or a live venue):

    [strategies.touch]
    class = "lobterm.examples.touch_quoter:TouchQuoter"
    market = "sim:BTC/USDT"      # optional: default the quote market
    offset_ticks = 3             # how far behind the best bid / ask
    size_lots = 5
    max_position_lots = 50       # no bid above +50, no ask below -50
    tolerance_ticks = 1          # requote when the wanted price moved further than this

It starts paused like every strategy (`lobterm run --headless` resumes it; in the TUI `U` starts and
pauses the strategies of the ladder's market). Everything here goes through `ctx`: the kernel's books, position and clock, and
order verbs that the OMS and pre-trade risk check, tagged with the strategy's name.
"""

from __future__ import annotations

from collections.abc import Mapping

from lobterm.engine.events import BUY, POST_ONLY, SELL, Done, Fill, Rejected
from lobterm.trading.strategy import RUNNING, BaseStrategy, MarketData, OrderEvent, StrategyContext


class TouchQuoter(BaseStrategy):
    def __init__(
        self,
        ctx: StrategyContext,
        *,
        offset_ticks: int = 3,
        size_lots: int = 5,
        max_position_lots: int = 50,
        tolerance_ticks: int = 1,
    ) -> None:
        super().__init__(ctx)
        for key, value, low in (
            ("offset_ticks", offset_ticks, 0),
            ("size_lots", size_lots, 1),
            ("max_position_lots", max_position_lots, 1),
            ("tolerance_ticks", tolerance_ticks, 0),
        ):
            if value.__class__ is not int or value < low:
                raise ValueError(f"{key} = {value!r} must be a whole number >= {low}")
        self.offset = offset_ticks
        self.size = size_lots
        self.max_position = max_position_lots
        self.tolerance = tolerance_ticks
        self.venue, self.symbol = ctx.markets[0]
        self.fills = 0
        self.orders_sent = 0
        self.rejects = 0
        self._working: dict[int, int | None] = {BUY: None, SELL: None}  # side -> order id
        # After a refusal (risk, the venue) wait a second: re-sending at once would loop on the refusal.
        self._quiet_until = 0
        self._requoting = False

    # ---- handlers ------------------------------------------------------------------------------
    def on_market_data(self, ev: MarketData) -> None:
        if self.state == RUNNING:
            self._requote()

    def on_order_event(self, ev: OrderEvent) -> None:
        if ev.__class__ is Fill:
            self.fills += 1
        elif ev.__class__ is Rejected:
            self.rejects += 1
            self._quiet_until = self.ctx.now() + 1_000_000_000
        if ev.__class__ is Done:
            for side, oid in self._working.items():
                if oid == ev.order_id:
                    self._working[side] = None
            if self.state == RUNNING:
                self._requote()

    def on_timer(self, now_ns: int) -> None:
        if self.state == RUNNING:
            self._requote()

    def resume(self) -> None:
        super().resume()
        self._requote()

    def status(self) -> Mapping[str, str]:
        pos = self.ctx.position(self.venue, self.symbol)
        instrument = self.ctx.instrument(self.venue, self.symbol)
        return {
            "state": self.state,
            "position": instrument.format_size(pos),
            "fills": str(self.fills),
            "sent": str(self.orders_sent),
            "rejects": str(self.rejects),
        }

    # ---- quoting -------------------------------------------------------------------------------
    def _requote(self) -> None:
        # A venue may answer an order within the call that sent it (the sim does): the book event of our
        # own order must not requote before the order's id is stored, or the side is quoted twice.
        if self._requoting or self.ctx.now() < self._quiet_until:
            return
        self._requoting = True
        try:
            self._requote_now()
        finally:
            self._requoting = False

    def _requote_now(self) -> None:
        book = self.ctx.book(self.venue, self.symbol)
        bid, ask = book.best_bid_price(), book.best_ask_price()
        if bid is None or ask is None or bid >= ask:
            return
        position = self.ctx.position(self.venue, self.symbol)
        self._keep(BUY, bid - self.offset, position + self.size <= self.max_position)
        self._keep(SELL, ask + self.offset, position - self.size >= -self.max_position)

    def _keep(self, side: int, price: int, allowed: bool) -> None:
        oid = self._working[side]
        order = None if oid is None else self.ctx.oms.order(oid)
        if order is not None and order.is_live:
            if not allowed or abs(order.price - price) > self.tolerance:
                self.ctx.cancel(order.order_id)  # the Done frees the side; the next event requotes
            return
        if allowed and price > 0:
            send = self.ctx.buy if side == BUY else self.ctx.sell
            self._working[side] = send(self.venue, self.symbol, price, self.size, POST_ONLY)
            self.orders_sent += 1

"""The order ticket: one order with every field spelled out (side, type, price, quantity, venue).

Validation is inline and runs as the trader types: a price that is not a number, off the tick grid or
far through the market (more than `ui.ticket_band_bps` from the mid, on the side where it would sweep
the book), a zero, off-grid or too large quantity (the risk limit `risk.max_order_qty`) puts a message
next to its field, and enter sends nothing until the ticket is clean. An order larger than
`ui.confirm_above_qty` asks first. A clean ticket goes out through the OMS (tag "manual"), so risk
still checks it; a risk rejection is the app's usual notice.

    app.push_screen(OrderTicket.for_ladder(ladder, config.ui))    # dismisses with the order id, or None
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Input, Label, Static

from lobterm.engine.events import BUY, FOK, IOC, LIMIT, MARKET, POST_ONLY, SELL, STP_CANCEL_RESTING
from lobterm.engine.instrument import InstrumentError
from lobterm.widgets.help import ConfirmOrderScreen, marketable_note
from lobterm.widgets.overlay import Overlay

if TYPE_CHECKING:
    from lobterm.config import UiConfig
    from lobterm.kernel import Kernel, Market
    from lobterm.widgets.ladder import PriceLadder

__all__ = ["Choice", "ConfirmOrderScreen", "OrderTicket", "TicketOrder", "ORDER_TYPES"]

SIDES = (("Buy", BUY), ("Sell", SELL))
ORDER_TYPES = (("limit", LIMIT), ("market", MARKET), ("IOC", IOC), ("FOK", FOK), ("post-only", POST_ONLY))


class Choice(Widget, can_focus=True):
    """One of a few options, changed with ← → (or space): quicker from the keyboard than a drop-down."""

    DEFAULT_CSS = """
    Choice { width: 1fr; height: 1; padding: 0 1; background: $boost; }
    Choice:focus { background: $primary 40%; text-style: bold; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("right,space", "step(1)", "Next", show=False),
        Binding("left", "step(-1)", "Previous", show=False),
    ]
    index: reactive[int] = reactive(0)

    class Changed(Message):
        def __init__(self, choice: Choice) -> None:
            self.choice = choice
            super().__init__()

    def __init__(self, options: list[str], index: int = 0, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.options = options
        self.set_reactive(Choice.index, index)

    @property
    def value(self) -> str:
        return self.options[self.index]

    def select(self, option: str) -> None:
        self.index = self.options.index(option)

    def render(self) -> Content:
        return Content.assemble(("◂ ", "$foreground-muted"), self.value, (" ▸", "$foreground-muted"))

    def action_step(self, step: int) -> None:
        self.index = (self.index + step) % len(self.options)

    def watch_index(self) -> None:
        self.post_message(self.Changed(self))


@dataclass(frozen=True, slots=True)
class TicketOrder:
    """A clean ticket, in engine units."""

    market: Market
    side: int
    order_type: int
    price: int  # ticks; 0 for a market order
    lots: int


class OrderTicket(Overlay[int | None]):
    """Dismisses with the client order id of the order sent, or None when the trader backed out."""

    DEFAULT_CSS = """
    /* An overlay (widgets/overlay.py): docked right, the ladder stays drawn and live beside it. */
    OrderTicket > Vertical {
        width: 56; max-width: 62%; height: auto; max-height: 100%; overflow-y: auto;
        border: round $accent; background: $surface; padding: 0 1;
    }
    OrderTicket .title { text-style: bold; padding-bottom: 1; width: 100%; }
    OrderTicket .row { height: auto; width: 100%; }
    OrderTicket .row > Label { width: 10; padding: 0 1 0 0; }
    OrderTicket .row > Choice { width: 24; }
    OrderTicket .row > Input { width: 24; height: 1; border: none; padding: 0 1; }
    OrderTicket .row > Input:focus { border: none; background: $primary 35%; }
    OrderTicket .row > Input.-invalid { background: $error 30%; }
    OrderTicket .row > Input.-invalid:focus { border: none; background: $error 45%; }
    OrderTicket .error { width: 100%; height: auto; color: $error; padding: 0 0 1 10; display: none; }
    OrderTicket .row { margin-bottom: 1; }
    OrderTicket #summary { width: 100%; text-style: bold; }
    OrderTicket .hint { color: $foreground-muted; width: 100%; padding-top: 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close the ticket"),
        Binding("ctrl+s", "send", "Send"),
    ]

    def __init__(
        self,
        kernel: Kernel,
        market: Market,
        *,
        side: int = BUY,
        price: int | None = None,
        qty: Decimal | None = None,
        confirm_above_qty: Decimal = Decimal(0),
        band_bps: int = 0,
    ) -> None:
        super().__init__()
        self.kernel = kernel
        self.markets = list(kernel.markets.values())
        self.market = market
        self.side = side
        self.initial_price = price
        self.initial_qty = qty
        self.confirm_above_qty = confirm_above_qty
        self.band_bps = band_bps
        self.problems: dict[str, str] = {}
        self.sent: int | None = None

    @classmethod
    def for_ladder(cls, ladder: PriceLadder, ui: UiConfig, side: int = BUY) -> OrderTicket:
        """A ticket for the ladder's market, at its cursor price and default quantity."""
        return cls(
            ladder.kernel,
            ladder.market,
            side=side,
            price=ladder.cursor_price,
            qty=ladder.default_qty,
            confirm_above_qty=ui.confirm_above_qty,
            band_bps=ui.ticket_band_bps,
        )

    # ---- layout --------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        inst = self.market.instrument
        venue_names = [self._market_name(m) for m in self.markets]
        with Vertical():
            yield Static("Order ticket", classes="title")
            with Horizontal(classes="row"):
                yield Label("Side")
                yield Choice([name for name, _ in SIDES], 0 if self.side == BUY else 1, id="side")
            with Horizontal(classes="row"):
                yield Label("Type")
                yield Choice([name for name, _ in ORDER_TYPES], 0, id="type")
            with Horizontal(classes="row"):
                yield Label("Venue")
                yield Choice(venue_names, self.markets.index(self.market), id="venue")
            with Horizontal(classes="row"):
                yield Label("Price")
                yield Input(
                    inst.format_price(self.initial_price) if self.initial_price else "",
                    placeholder=f"tick {inst.tick_size}",
                    id="price",
                )
            yield Static("", id="price-error", classes="error", markup=False)
            with Horizontal(classes="row"):
                yield Label("Quantity")
                yield Input(
                    str(self.initial_qty) if self.initial_qty is not None else "",
                    placeholder=f"lot {inst.lot_size}",
                    id="qty",
                )
            yield Static("", id="qty-error", classes="error", markup=False)
            yield Static("", id="summary", markup=False)
            yield Static(
                "tab: next field · ←/→: change a choice · enter: send · escape: close",
                classes="hint",
                markup=False,
            )

    def on_mount(self) -> None:
        self.query_one("#price", Input).focus()
        self.check()

    @staticmethod
    def _market_name(m: Market) -> str:
        return f"{m.venue} · {m.symbol}"

    # ---- validation ----------------------------------------------------------------------------
    def on_input_changed(self, _event: Input.Changed) -> None:
        self.check()

    def on_choice_changed(self, event: Choice.Changed) -> None:
        if event.choice.id == "venue":
            self.market = self.markets[event.choice.index]
            inst = self.market.instrument
            if self.is_mounted:
                self.query_one("#price", Input).placeholder = f"tick {inst.tick_size}"
                self.query_one("#qty", Input).placeholder = f"lot {inst.lot_size}"
        if self.is_mounted:
            self.check()

    def check(self) -> TicketOrder | None:
        """Validate every field, show the messages beside them; the order when the ticket is clean."""
        order, problems = self.validate()
        self.problems = problems
        for field in ("price", "qty"):
            message = problems.get(field, "")
            error = self.query_one(f"#{field}-error", Static)
            error.update(message)
            error.display = bool(message)
            self.query_one(f"#{field}", Input).set_class(bool(message), "-invalid")
        price_input = self.query_one("#price", Input)
        price_input.disabled = self._order_type() == MARKET
        self.query_one("#summary", Static).update(self.describe(order) if order else "")
        return order

    def _order_type(self) -> int:
        return ORDER_TYPES[self.query_one("#type", Choice).index][1]

    def _side(self) -> int:
        return SIDES[self.query_one("#side", Choice).index][1]

    def validate(self) -> tuple[TicketOrder | None, dict[str, str]]:
        """(the order, None when a field is bad) and {field: message} for the bad fields."""
        m = self.market
        inst = m.instrument
        side = self._side()
        order_type = self._order_type()
        problems: dict[str, str] = {}
        price = 0
        if order_type != MARKET:
            text = self.query_one("#price", Input).value.strip()
            if not text:
                problems["price"] = "enter a price"
            else:
                try:
                    price = inst.ticks(text)
                except InstrumentError as exc:
                    problems["price"] = f"{text} {exc.rule}"
                else:
                    far = self._far_through(side, price)
                    if far:
                        problems["price"] = far
        lots = 0
        text = self.query_one("#qty", Input).value.strip()
        if not text:
            problems["qty"] = "enter a quantity"
        else:
            try:
                lots = inst.order_lots(text)
            except InstrumentError as exc:
                problems["qty"] = f"{text} {exc.rule}"
            else:
                limit = self.kernel.risk.limits_for(m.venue, m.symbol).max_order_lots
                if limit is not None and lots > limit:
                    problems["qty"] = (
                        f"{text} is above the maximum order size {inst.format_size(limit)} "
                        "(risk.max_order_qty)"
                    )
        if problems:
            return None, problems
        return TicketOrder(m, side, order_type, price, lots), problems

    def _far_through(self, side: int, price: int) -> str | None:
        """Why a price is too far through the market (a buy far above the mid, a sell far below), or None."""
        if not self.band_bps:
            return None
        m = self.market
        bid, ask = m.l2.best_bid_price(), m.l2.best_ask_price()
        if bid is None or ask is None or bid >= ask:
            return None  # no reference; the risk price band (if set) refuses it at send time
        mid2 = bid + ask  # twice the mid: integers throughout
        off = (2 * price - mid2) if side == BUY else (mid2 - 2 * price)
        if off * 10_000 <= self.band_bps * mid2:
            return None
        inst = m.instrument
        mid = inst.price(mid2) / 2
        bps = off * 10_000 // mid2
        where = "above" if side == BUY else "below"
        return f"{bps} bps {where} the mid {mid}: through the market (limit {self.band_bps} bps, ui.ticket_band_bps)"

    def describe(self, order: TicketOrder) -> str:
        inst = order.market.instrument
        side = "Buy" if order.side == BUY else "Sell"
        kind = dict((v, k) for k, v in ORDER_TYPES)[order.order_type]
        qty = f"{inst.format_size(order.lots)} {inst.base}".strip()
        if order.order_type == MARKET:
            return f"{side} {qty} at market on {self._market_name(order.market)}"
        value = inst.notional(order.price * order.lots)
        return (
            f"{side} {qty} @ {inst.format_price(order.price)} {kind} on {self._market_name(order.market)} "
            f"(value {value} {inst.quote})"
        )

    # ---- sending -------------------------------------------------------------------------------
    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_send()

    def action_send(self) -> None:
        order = self.check()
        if order is None:
            bad = next(iter(self.problems))
            self.query_one(f"#{bad}", Input).focus()
            return
        inst = order.market.instrument
        if self.confirm_above_qty and inst.size(order.lots) > self.confirm_above_qty:

            def answered(yes: bool | None) -> None:
                if yes:
                    self._send(order)

            self.app.push_screen(
                ConfirmOrderScreen(
                    self.describe(order),
                    f"{self.confirm_above_qty} {inst.base}",
                    note=marketable_note(order.market, order.side, order.price),
                ),
                answered,
            )
            return
        self._send(order)

    def _send(self, order: TicketOrder) -> None:
        m = order.market
        inst = m.instrument
        self.kernel.note(
            "key",
            "ticket_order",
            {
                "market": f"{m.venue}:{m.symbol}",
                "side": "buy" if order.side == BUY else "sell",
                "type": dict((v, k) for k, v in ORDER_TYPES)[order.order_type],
                "price": inst.format_price(order.price),
                "qty": inst.format_size(order.lots),
            },
        )
        self.sent = self.kernel.oms.new_order(
            m.venue,
            m.symbol,
            order.side,
            order.price,
            order.lots,
            order.order_type,
            STP_CANCEL_RESTING,
            tag="manual",
        )
        self.dismiss(self.sent)

    def action_close(self) -> None:
        self.dismiss(None)

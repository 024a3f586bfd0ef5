"""Immutable engine events: market data, the order lifecycle and venue status.

Events are `msgspec.Struct(frozen=True, gc=False)`: about 90 ns to build (a frozen dataclass costs
850 ns, see DESIGN.md), and msgspec's msgpack encoder stores them for the recorder. Every price is
integer ticks, every size integer lots, every fee integer millionths of a tick*lot, every time
integer nanoseconds from the kernel clock. Fields are positional in this order so that the hot path
can build them without keywords.

Order lifecycle, per order: Accepted, then any of Fill / Amended, then exactly one Done. A rejected
new order gets Rejected then Done; a rejected cancel or amend of a live order gets Rejected only (the
order lives on). Cancelled always comes right before the Done that ends the order.
"""

from __future__ import annotations

import msgspec

# The owner id our own orders carry in events (sim participants and venues' other traders use others).
OUR_OWNER = 1

# Sides. Plain ints: they are compared millions of times a second.
BUY = 0
SELL = 1
SIDE_NAMES = ("buy", "sell")

# Order types.
LIMIT = 0
MARKET = 1
IOC = 2
FOK = 3
POST_ONLY = 4
ORDER_TYPE_NAMES = ("limit", "market", "ioc", "fok", "post_only")

# Self-trade prevention: what happens when an incoming order would trade with a resting order of the
# same owner.
STP_NONE = 0
STP_CANCEL_RESTING = 1
STP_CANCEL_INCOMING = 2
STP_CANCEL_BOTH = 3
STP_NAMES = ("none", "cancel_resting", "cancel_incoming", "cancel_both")

# Why an order ended (Done.reason) or was cancelled (Cancelled.reason).
FILLED = "filled"
CANCELED = "cancelled"  # by request
REJECTED = "rejected"
EXPIRED = "expired"  # IOC / market remainder with nothing left to trade against
KILLED = "killed"  # FOK that could not fill completely
STP = "self_trade"  # removed by self-trade prevention
POST_ONLY_WOULD_TRADE = "post_only_would_trade"


class _Event(msgspec.Struct, frozen=True, gc=False, array_like=True, tag=True):
    pass


# ---- market data ---------------------------------------------------------------------------
class BookSnapshot(_Event, frozen=True, gc=False):
    """The whole L2 book. `bids` best (highest) first, `asks` best (lowest) first, (price, size)."""

    ts: int
    venue: str
    symbol: str
    seq: int
    bids: tuple[tuple[int, int], ...]
    asks: tuple[tuple[int, int], ...]


class BookDelta(_Event, frozen=True, gc=False):
    """One L2 level changed to `size` (0 removes the level). `seq` is contiguous per book."""

    ts: int
    venue: str
    symbol: str
    seq: int
    side: int
    price: int
    size: int


class Trade(_Event, frozen=True, gc=False):
    """A trade printed on the venue. `aggressor` is the side of the taker."""

    ts: int
    venue: str
    symbol: str
    price: int
    size: int
    aggressor: int
    trade_id: int


# ---- order lifecycle -----------------------------------------------------------------------
class Accepted(_Event, frozen=True, gc=False):
    """The venue acknowledged a new order (the Ack)."""

    ts: int
    venue: str
    symbol: str
    order_id: int
    side: int
    price: int  # 0 for a market order
    size: int
    order_type: int
    owner: int


class Fill(_Event, frozen=True, gc=False):
    """Part or all of an order traded. `leaves` is what is still open after this fill."""

    ts: int
    venue: str
    symbol: str
    order_id: int
    side: int
    price: int
    size: int
    leaves: int
    is_maker: bool
    fee: int  # millionths of a tick*lot; negative is a rebate
    trade_id: int
    owner: int


class Cancelled(_Event, frozen=True, gc=False):
    """`size` lots of the order were removed from the book, for `reason`."""

    ts: int
    venue: str
    symbol: str
    order_id: int
    size: int
    reason: str
    owner: int


class Amended(_Event, frozen=True, gc=False):
    """The order now rests at `price` with `size` open; `kept_priority` says if it kept its place."""

    ts: int
    venue: str
    symbol: str
    order_id: int
    price: int
    size: int
    kept_priority: bool
    owner: int


class Rejected(_Event, frozen=True, gc=False):
    """A request (new, cancel or amend) was refused; the book is exactly as it was."""

    ts: int
    venue: str
    symbol: str
    order_id: int
    reason: str
    owner: int


class Done(_Event, frozen=True, gc=False):
    """The order's last event: it is no longer on the book. `filled` is its total traded size."""

    ts: int
    venue: str
    symbol: str
    order_id: int
    filled: int
    reason: str
    owner: int


# ---- venue ---------------------------------------------------------------------------------
class VenueStatus(_Event, frozen=True, gc=False):
    """A venue's connection state: connecting, up, stale, resyncing, down, closed."""

    ts: int
    venue: str
    state: str
    detail: str = ""


class BookGap(_Event, frozen=True, gc=False):
    """The L2 book saw a sequence gap (expected `expected`, got `got`) and is invalid until a snapshot."""

    ts: int
    venue: str
    symbol: str
    expected: int
    got: int


class PositionMismatch(_Event, frozen=True, gc=False):
    """A keyed venue holds a different amount of `asset` than lobterm expects (spot: its balance at start
    plus our fills since; perps: the position). `ours` and `venue_has` are exact decimal strings. The
    venue is the truth: this is reported (status bar, metrics), never corrected behind the trader's
    back. An event with `ours == venue_has` says the difference is gone."""

    ts: int
    venue: str
    asset: str
    ours: str
    venue_has: str


# ---- perpetuals ----------------------------------------------------------------------------
class PerpInfo(_Event, frozen=True, gc=False):
    """A perpetual market's margin terms for our account: exact decimal strings. `leverage` sets the
    initial margin rate (1 / leverage), `maintenance_rate` is the maintenance margin rate, `collateral` the quote-currency
    deposit behind the position (cross margin over this one market). Published when the venue opens
    (and again when the terms change), so that the kernel, a replay and a verify know them."""

    ts: int
    venue: str
    symbol: str
    leverage: str
    maintenance_rate: str
    collateral: str
    funding_interval_s: int


class MarkPrice(_Event, frozen=True, gc=False):
    """The venue's mark price (ticks; margin and liquidation are computed on it), its index price and
    the funding rate that would apply now, in parts per billion (positive: longs pay shorts)."""

    ts: int
    venue: str
    symbol: str
    mark: int
    index: int
    rate_ppb: int


class Funding(_Event, frozen=True, gc=False):
    """A funding payment on our position of `lots` (signed) at `mark`: `rate_ppb` parts per billion,
    `amount` millionths of a tick*lot (as Fill.fee): positive is paid by us, negative received."""

    ts: int
    venue: str
    symbol: str
    rate_ppb: int
    mark: int
    lots: int
    amount: int


class Liquidation(_Event, frozen=True, gc=False):
    """The venue closed `size` lots of our position (`side` is the closing trade's side) at `price`,
    because the margin ratio reached 1 at `mark`; `fee` as Fill.fee."""

    ts: int
    venue: str
    symbol: str
    side: int
    price: int
    size: int
    mark: int
    fee: int


Event = (
    BookSnapshot
    | BookDelta
    | Trade
    | Accepted
    | Fill
    | Cancelled
    | Amended
    | Rejected
    | Done
    | VenueStatus
    | BookGap
    | PositionMismatch
    | PerpInfo
    | MarkPrice
    | Funding
    | Liquidation
)
ORDER_EVENTS = (Accepted, Fill, Cancelled, Amended, Rejected, Done)
OrderEvent = Accepted | Fill | Cancelled | Amended | Rejected | Done
MARKET_DATA_EVENTS = (BookSnapshot, BookDelta, Trade)
PERP_EVENTS = (PerpInfo, MarkPrice, Funding, Liquidation)

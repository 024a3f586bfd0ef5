"""The price ladder's keys: every binding of `PriceLadder`, with the id a `[keys]` table rebinds it by, its group
in the key bar and its tooltip (a consolidated ladder adds its target-venue keys to these)."""

from __future__ import annotations

from textual.binding import Binding, BindingType

__all__ = ["LADDER_BINDINGS"]

_CURSOR_GROUP = Binding.Group("Cursor")
_PRESET_GROUP = Binding.Group("Preset", compact=True)
_CANCEL_GROUP = Binding.Group("Cancel")
_MOVE_GROUP = Binding.Group("Move", compact=True)
_ZOOM_GROUP = Binding.Group("Zoom", compact=True)
_JOIN_GROUP = Binding.Group("Join", compact=True)
_QTY_GROUP = Binding.Group("Qty", compact=True)
_COLUMNS_GROUP = Binding.Group("Columns", compact=True)

LADDER_BINDINGS: list[BindingType] = [
    Binding("b", "buy", "Buy", id="buy", tooltip="Buy the default qty at the cursor"),
    Binding("s", "sell", "Sell", id="sell", tooltip="Sell the default qty at the cursor"),
    Binding(
        "j",
        "join(0)",
        "Join bid",
        id="join_bid",
        group=_JOIN_GROUP,
        tooltip="Join the bid: buy at the best bid",
    ),
    Binding(
        "k",
        "join(1)",
        "Join offer",
        id="join_offer",
        group=_JOIN_GROUP,
        tooltip="Join the offer: sell at the best ask",
    ),
    Binding(
        "x",
        "cancel_at_cursor",
        "Cancel at cursor",
        id="cancel",
        group=_CANCEL_GROUP,
        tooltip="Cancel our orders at the cursor",
    ),
    Binding(
        "left_square_bracket",
        "cancel_side(0)",
        "Cancel bids",
        id="cancel_bids",
        group=_CANCEL_GROUP,
        tooltip="Cancel all our bids (this market)",
    ),
    Binding(
        "right_square_bracket",
        "cancel_side(1)",
        "Cancel asks",
        id="cancel_asks",
        group=_CANCEL_GROUP,
        tooltip="Cancel all our asks (this market)",
    ),
    Binding("c", "cancel_all", "Cancel all", id="cancel_all", tooltip="Cancel all our orders (this market)"),
    Binding(
        "shift+up",
        "move_order(1)",
        "Move up",
        id="move_up",
        group=_MOVE_GROUP,
        key_display="⇧↑",
        tooltip="Move our order at the cursor up a tick",
    ),
    Binding(
        "shift+down",
        "move_order(-1)",
        "Move down",
        id="move_down",
        group=_MOVE_GROUP,
        key_display="⇧↓",
        tooltip="Move our order at the cursor down a tick",
    ),
    Binding("F", "flatten", "Flatten", id="flatten", tooltip="Flatten: cancel all, pause MM, close (IOC)"),
    Binding(
        "plus,equals_sign",
        "qty_step(1)",
        "Qty +",
        id="qty_up",
        group=_QTY_GROUP,
        tooltip="Default qty: next preset up",
    ),
    Binding(
        "minus",
        "qty_step(-1)",
        "Qty -",
        id="qty_down",
        group=_QTY_GROUP,
        tooltip="Default qty: next preset down",
    ),
    Binding("1", "qty_preset(0)", "Qty preset 1", id="qty_preset_1", group=_PRESET_GROUP),
    Binding("2", "qty_preset(1)", "Qty preset 2", id="qty_preset_2", group=_PRESET_GROUP),
    Binding("3", "qty_preset(2)", "Qty preset 3", id="qty_preset_3", group=_PRESET_GROUP),
    Binding("4", "qty_preset(3)", "Qty preset 4", id="qty_preset_4", group=_PRESET_GROUP),
    Binding(
        "z", "zoom(1)", "Zoom out", id="zoom_out", group=_ZOOM_GROUP, tooltip="Zoom out: more ticks a row"
    ),
    Binding(
        "Z", "zoom(-1)", "Zoom in", id="zoom_in", group=_ZOOM_GROUP, tooltip="Zoom in: fewer ticks a row"
    ),
    Binding("r,space", "recenter", "Recenter", id="recenter"),
    Binding(
        "d",
        "toggle_column('cum')",
        "Cum depth",
        id="column_cum",
        group=_COLUMNS_GROUP,
        tooltip="Ladder column: cumulative depth from the inside market, on/off",
    ),
    Binding(
        "P",
        "toggle_column('pnl')",
        "P&L col",
        id="column_pnl",
        group=_COLUMNS_GROUP,
        tooltip="Ladder column: our net P&L were the market at that price, on/off",
    ),
    Binding("up", "cursor(1)", "Cursor up a row", id="cursor_up", group=_CURSOR_GROUP, show=False),
    Binding("down", "cursor(-1)", "Cursor down a row", id="cursor_down", group=_CURSOR_GROUP, show=False),
    Binding("pageup", "page(1)", "Page up (axis and cursor)", id="page_up", group=_CURSOR_GROUP, show=False),
    Binding(
        "pagedown",
        "page(-1)",
        "Page down (axis and cursor)",
        id="page_down",
        group=_CURSOR_GROUP,
        show=False,
    ),
    Binding(
        "home",
        "cursor_inside",
        "Cursor to the inside market",
        id="cursor_inside",
        group=_CURSOR_GROUP,
        show=False,
    ),
]

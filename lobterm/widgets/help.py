"""Small modal screens: the key help (every binding with its current key), the order confirmation (keys,
clicks and the ticket above `ui.confirm_above_qty`) and the quit confirmation."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Static

from lobterm.engine.events import BUY
from lobterm.widgets.overlay import Overlay

if TYPE_CHECKING:
    from lobterm.kernel import Market

__all__ = [
    "ConfirmOrderScreen",
    "ConfirmQuitScreen",
    "ConfirmScreen",
    "HelpScreen",
    "check_keymap",
    "describe_order",
    "key_help",
    "marketable_note",
]


def check_keymap(
    bindings: list[Binding],
    keymap: dict[str, str],
    normalize: Callable[[dict[str, str]], Mapping[str, str]],
) -> tuple[dict[str, str], list[str]]:
    """The part of a user keymap (binding id -> keys) that is safe to apply, and what was wrong with the rest.

    Unknown ids are dropped. So is any entry that would put two actions on one key: Textual then
    silently keeps one of them, and a trader whose "s" now buys must be told, not surprised.
    `normalize` is the app's key normalisation ("+" -> "plus").
    """
    ids = {b.id: b for b in bindings if b.id}
    problems = []
    unknown = sorted(set(keymap) - set(ids))
    if unknown:
        problems.append(
            f"unknown binding id{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} "
            f"(known: {', '.join(sorted(ids))})"
        )
    wanted = dict(normalize({k: v for k, v in keymap.items() if k in ids}))
    while True:
        owners: dict[str, list[str]] = {}
        for binding_id, b in ids.items():
            for key in wanted.get(binding_id, b.key).split(","):
                owners.setdefault(key.strip(), []).append(binding_id)
        clashes = {key: who for key, who in owners.items() if len(who) > 1}
        dropped = sorted({i for who in clashes.values() for i in who if i in wanted})
        if not dropped:
            return {k: keymap[k] for k in wanted}, problems
        for key, who in sorted(clashes.items()):
            problems.append(
                f"key {key!r} would do {' and '.join(who)}: keeping the defaults of "
                f"{', '.join(i for i in who if i in wanted)}"
            )
        for i in dropped:
            del wanted[i]


def key_help(screen: Screen) -> list[tuple[str, str, str]]:
    """(keys, description, binding id) for every action reachable from `screen`, with the keymap applied.

    Keys bound to the same action are listed together ("r, space"); only our own bindings (those with
    an id, which the config's [keys] table can rebind) are listed, plus any other key that reaches one
    of their actions (Textual's ctrl+q quit).
    """
    app = screen.app
    groups: dict[
        str, tuple[list[str], list[str], list[str]]
    ] = {}  # action -> our keys, other keys, [text, id]
    for active in screen.active_bindings.values():
        b = active.binding
        ours, others, about = groups.setdefault(b.action, ([], [], ["", ""]))
        (ours if b.id is not None else others).append(app.get_key_display(b))
        if b.id is not None:
            about[1] = b.id
        text = b.tooltip or b.description  # the long text where the key bar shows a short one
        if text and (b.id is not None or not about[0]):
            about[0] = text
    return [
        (", ".join(ours + others), text, binding_id)
        for ours, others, (text, binding_id) in groups.values()
        if ours
    ]


class HelpScreen(Overlay[None]):
    DEFAULT_CSS = """
    /* An overlay (widgets/overlay.py): docked right, the ladder stays drawn and live beside it. */
    HelpScreen > VerticalScroll {
        width: auto; max-width: 62%; height: auto; max-height: 100%; overflow-y: auto;
        border: round $accent; background: $surface; padding: 0 2;
    }
    HelpScreen Static { width: auto; max-width: 100%; }
    HelpScreen .title { text-style: bold; padding-bottom: 1; }
    HelpScreen .hint { color: $foreground-muted; padding-top: 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,f1,q", "dismiss", "Close help"),
    ]

    def __init__(self, rows: list[tuple[str, str, str]]) -> None:
        super().__init__()
        self.rows = rows

    def compose(self) -> ComposeResult:
        key_w = max((len(k) for k, _, _ in self.rows), default=4)
        text_w = max((len(t) for _, t, _ in self.rows), default=4)
        id_w = max((len(i) for _, _, i in self.rows), default=4)

        def cell(row: tuple[str, str, str] | None) -> Content:
            if row is None:
                return Content(" " * (key_w + text_w + id_w + 4))
            keys, description, binding_id = row
            return Content.assemble(
                (f"{keys:>{key_w}}", "bold $accent"),
                "  ",
                f"{description:<{text_w}}",
                "  ",
                (f"{binding_id:<{id_w}}", "$foreground-muted"),
            )

        # As many columns as the overlay's width holds (62% of the terminal at most, the ladder's PRICE
        # column stays in view): two at 200 columns, one with the binding ids at 160, one with wrapped
        # descriptions below.
        room = self.width_limit() - 9  # the box's border, padding and scrollbar
        if 2 * (key_w + text_w + id_w + 4) + 4 <= room and len(self.rows) > 16:
            half = (len(self.rows) + 1) // 2
            left, right = self.rows[:half], self.rows[half:]
            table = Content("\n").join(
                cell(row) + Content("    ") + cell(right[i] if i < len(right) else None)
                for i, row in enumerate(left)
            )
        elif key_w + text_w + id_w + 4 <= room:
            table = Content("\n").join(cell(row) for row in self.rows)
        else:
            wrap_w = max(room - key_w - 2, 12)
            lines: list[Content] = []
            for keys, description, binding_id in self.rows:
                parts = textwrap.wrap(description, wrap_w) or [""]
                if binding_id and len(parts[-1]) + 2 + len(binding_id) > wrap_w:
                    parts.append("")
                for i, part in enumerate(parts):
                    last = i == len(parts) - 1
                    lines.append(
                        Content.assemble(
                            (f"{keys if i == 0 else '':>{key_w}}", "bold $accent"),
                            "  ",
                            part,
                            (("  " if part else "") + binding_id, "$foreground-muted") if last else "",
                        )
                    )
            table = Content("\n").join(lines)
        with VerticalScroll():
            yield Static("lobterm keys", classes="title")
            yield Static(table, id="help-keys")
            yield Static(
                "BIDS/ASKS: everybody else's size.  OUR BIDS/OUR ASKS: ours, as size (orders) and q: the "
                "lots ahead of our first order in the queue.\n"
                'Rebind in the config\'s [keys] table: binding id = "key", e.g. buy = "B".  '
                "escape closes this help.",
                classes="hint",
                markup=False,
            )

    def on_mount(self) -> None:
        self.query_one(VerticalScroll).focus()  # up/down/page keys scroll a help longer than the screen


class ConfirmScreen(Overlay[bool]):
    """A yes/no question (re-arming after the kill switch): `y` answers yes, `n` or escape no.

    Other questions subclass it and override `body` (and their bindings' descriptions, and width)."""

    DEFAULT_CSS = """
    ConfirmScreen > Static {
        width: 64; max-width: 62%; height: auto; border: round $warning; background: $surface; padding: 1 2;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: str = "", detail: str = "") -> None:
        super().__init__()
        self.question = question
        self.detail = detail

    def body(self) -> Content:
        return Content.assemble(
            (self.question, "bold $warning"), f"\n\n{self.detail}" if self.detail else "", "\n\n"
        )

    def compose(self) -> ComposeResult:
        yield Static(
            Content.assemble(self.body(), ("y", "bold $accent"), " yes   ", ("n", "bold $accent"), " no"),
            id="confirm-text",
        )

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


def describe_order(market: Market, side: int, price: int, lots: int, kind: str = "limit") -> str:
    """One line naming side, size, price, type and market, e.g. "Sell 1.000 BTC @ 65000.0 limit on sim
    BTC-USDT (value 65000.000 USDT)"; a market order (price 0) has no price."""
    inst = market.instrument
    what = f"{'Buy' if side == BUY else 'Sell'} {inst.format_size(lots)} {inst.base}".rstrip()
    where = f"on {market.venue} {market.symbol}"
    if not price:
        return f"{what} at market {where}"
    value = inst.notional(price * lots)
    return f"{what} @ {inst.format_price(price)} {kind} {where} (value {value} {inst.quote})".replace(
        "  ", " "
    )


def marketable_note(market: Market, side: int, price: int) -> str:
    """ "" for an order that would rest; else what it crosses ("crosses the best ask 65000.1: fills at once
    as a taker"). A market order (price 0) always takes."""
    inst = market.instrument
    u = market.unified
    best = u.best_ask() if side == BUY else u.best_bid()
    name = "best ask" if side == BUY else "best bid"
    if not price:
        return "Marketable: a market order takes liquidity at once."
    if best is not None and (price >= best[0] if side == BUY else price <= best[0]):
        return f"Marketable: crosses the {name} {inst.format_price(best[0])}, fills at once as a taker."
    return ""


class ConfirmOrderScreen(ConfirmScreen):
    """An order above `ui.confirm_above_qty` (from a ladder key, a click or the ticket), named in full
    before it goes: `y` sends it, `n` or escape does not. The order is fixed when the question is asked
    (the price the trader saw), not recomputed when it is answered."""

    DEFAULT_CSS = """
    ConfirmOrderScreen > Static { width: 76; max-width: 62%; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Send"),
        Binding("n,escape", "answer(False)", "Do not send"),
    ]

    def __init__(self, summary: str, threshold: str, *, note: str = "", title: str = "Large order") -> None:
        super().__init__()
        self.summary = summary
        self.threshold = threshold
        self.note = note
        self.heading = title

    def body(self) -> Content:
        return Content.assemble(
            (self.heading, "bold $warning"),
            f" (above {self.threshold})\n\n",
            (self.summary, "bold"),
            ("\n" + self.note, "bold $error") if self.note else "",
            "\n\nSend it?   ",
        )


class ConfirmQuitScreen(Overlay[str | None]):
    """Quitting while orders are working or a position is open: `y` cancels everything and quits
    (the position stays), `f` flattens (cancel, pause, close the position with an IOC) then quits, `n`
    or escape stays. Dismisses with "quit", "flatten" or None."""

    DEFAULT_CSS = """
    ConfirmQuitScreen > Static {
        width: 64; max-width: 62%; height: auto; border: round $warning; background: $surface; padding: 1 2;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer('quit')", "Cancel all and quit"),
        Binding("f", "answer('flatten')", "Flatten and quit"),
        Binding("n,escape", "answer('')", "Stay"),
    ]

    def __init__(self, working: int, positions: list[str] | None = None) -> None:
        super().__init__()
        self.working = working
        self.positions = positions or []

    def body(self) -> Content:
        s = "s" if self.working != 1 else ""
        parts: list[str | tuple[str, str]] = []
        if self.working:
            parts.append((f"{self.working} order{s} of ours working.", "bold $warning"))
        if self.positions:
            parts.append(("\n" if parts else "") + "Open position: " + ", ".join(self.positions))
        parts.append("\n\nCancel everything and quit?\n")
        return Content.assemble(*parts)

    def compose(self) -> ComposeResult:
        keys: list[str | tuple[str, str]] = ["\n  ", ("y", "bold $accent"), "  cancel all and quit"]
        if self.positions:
            keys += ["\n  ", ("f", "bold $accent"), "  flatten, then quit"]
        keys += ["\n  ", ("n", "bold $accent"), "  stay"]
        yield Static(Content.assemble(self.body(), *keys), id="confirm-text")

    def action_answer(self, choice: str) -> None:
        if choice == "flatten" and not self.positions:
            return
        self.dismiss(choice or None)

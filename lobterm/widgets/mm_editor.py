"""The market maker's parameter editor: every parameter the quote panel shows, in one form, applied live.

Sizes are typed in base units (0.010 BTC) and become lots through the instrument: an off-grid or too
small size is refused with the instrument's rule. Every field is checked as the trader types, with the
market maker's own rules (`QuoteParams.validate`): the `QuoteParamError` of a field is shown beside it.
Enter applies every change at once through `MarketMaker.update_params` (all or nothing; a running market
maker requotes at once); escape closes the form and changes nothing.

    app.push_screen(MarketMakerEditor(mm, note=kernel.note), done)   # dismisses with the changes, or None
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Label, Static

from lobterm.engine.instrument import InstrumentError
from lobterm.trading.fair_value import FAIR_VALUES
from lobterm.trading.quoting import AVELLANEDA_STOIKOV, GLFT, QuoteParamError, QuoteParams
from lobterm.widgets.overlay import Overlay
from lobterm.widgets.ticket import Choice

if TYPE_CHECKING:
    from lobterm.engine.instrument import Instrument
    from lobterm.trading.market_maker import MarketMaker

__all__ = ["ALL_FIELDS", "EDITOR_FIELDS", "Field", "GLFT_FIELDS", "MarketMakerEditor", "describe_changes"]

# How a field's text becomes a parameter value.
INT, NUMBER, SIZE, SIZE_OR_ZERO, SIZES, YES_NO = "int", "number", "size", "size0", "sizes", "yes/no"
FAIR = "fair"  # one of FAIR_VALUES, chosen with ← →
#: The fair values as the form shows them (the Choice is narrow), in FAIR_VALUES' order.
FAIR_LABELS = ("mid", "micro", "consolidated")


@dataclass(frozen=True, slots=True)
class Field:
    name: str  # the QuoteParams field
    label: str
    kind: str
    hint: str = ""


EDITOR_FIELDS = (
    Field("levels", "levels per side", INT, "1..50"),
    Field("spread_ticks", "spread, ticks", INT, "best bid to best ask"),
    Field("spread_bps", "spread, bps", NUMBER, "> 0: overrides ticks"),
    Field("level_step_ticks", "level step, ticks", INT),
    Field("size_lots", "size", SIZE, "first level, base units"),
    Field("size_step_lots", "size step", SIZE_OR_ZERO, "added per level"),
    Field("sizes", "sizes per level", SIZES, "e.g. 0.01 0.02; empty: size+step"),
    Field("skew_ticks_per_lot", "skew, ticks/lot", NUMBER),
    Field("size_skew", "size skew", NUMBER, "0..1"),
    Field("min_spread_ticks", "min spread, ticks", INT),
    Field("max_position_lots", "max position", SIZE, "base units"),
    Field("refresh_tolerance_ticks", "refresh tolerance", INT, "ticks"),
    Field("max_order_age_ms", "max order age, ms", INT, "0: no limit"),
    Field("post_only", "post-only", YES_NO),
    Field("fair_value", "fair value", FAIR, "where the quotes centre"),
)
# Shown only in GLFT mode (the model's own parameters; A and k are fitted, sigma estimated).
GLFT_FIELDS = (
    Field("glft_gamma", "GLFT gamma", NUMBER, "risk aversion, > 0"),
    Field("glft_delta", "GLFT delta", NUMBER, "order size in the model, > 0"),
    Field("adj1", "adj1 (half-spread)", NUMBER, "scales the half-spread, > 0"),
    Field("adj2", "adj2 (skew)", NUMBER, "scales the skew, >= 0"),
)
ALL_FIELDS = EDITOR_FIELDS + GLFT_FIELDS
_LOT_KINDS = (SIZE, SIZE_OR_ZERO, SIZES)


def field_text(f: Field, p: QuoteParams, inst: Instrument) -> str:
    """A parameter as the trader reads and types it."""
    value = getattr(p, f.name)
    if f.kind in (SIZE, SIZE_OR_ZERO):
        return inst.format_size(value)
    if f.kind == SIZES:
        return " ".join(inst.format_size(s) for s in value)
    if f.kind == NUMBER:
        return f"{value:g}"
    if f.kind == FAIR and value in FAIR_VALUES:
        return FAIR_LABELS[FAIR_VALUES.index(value)]
    return str(value)


def parse_field(f: Field, text: str, inst: Instrument) -> Any:
    """The parameter value of `text`; ValueError with the reason when it is not one."""
    text = text.strip()
    if f.kind == INT:
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{text or 'nothing'}: must be a whole number") from None
    if f.kind == NUMBER:
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"{text or 'nothing'}: must be a number") from None
    try:
        if f.kind == SIZE:
            return inst.order_lots(text)
        if f.kind == SIZE_OR_ZERO:
            return inst.lots(text, allow_zero=True)
        return tuple(inst.order_lots(s) for s in text.replace(",", " ").split())
    except InstrumentError as exc:
        raise ValueError(f"{exc.value or 'nothing'}: {exc.rule}") from None


def describe_changes(changes: dict[str, Any], inst: Instrument) -> str:
    """'levels 3, size 0.020' in the trader's units."""
    by_name = {f.name: f for f in ALL_FIELDS}
    parts = []
    for name, value in changes.items():
        f = by_name.get(name)
        if f is None:
            parts.append(f"{name} {value}")
            continue
        shown = (
            field_text(f, replace(QuoteParams(), **{name: value}), inst)
            if f.kind != YES_NO
            else ("yes" if value else "no")
        )
        parts.append(f"{f.label} {shown or '-'}")
    return ", ".join(parts)


class MarketMakerEditor(Overlay[dict[str, Any] | None]):
    """Dismisses with the changes applied ({parameter: value}), or None when nothing was applied."""

    DEFAULT_CSS = """
    /* An overlay (widgets/overlay.py): docked right, the ladder stays drawn and live beside it. */
    MarketMakerEditor > Vertical {
        width: 96; max-width: 62%; height: auto; max-height: 100%; overflow-y: auto;
        border: round $accent; background: $surface; padding: 0 1;
    }
    MarketMakerEditor .title { text-style: bold; padding-bottom: 1; width: 100%; }
    MarketMakerEditor .row { height: auto; width: 100%; }
    MarketMakerEditor .row > Label { width: 20; padding: 0 1 0 0; }
    MarketMakerEditor .row > Choice { width: 16; }
    MarketMakerEditor .row > Input { width: 16; height: 1; border: none; padding: 0 1; }
    MarketMakerEditor .row > Input:focus { border: none; background: $primary 35%; }
    MarketMakerEditor .row > Input.-invalid { background: $error 30%; }
    MarketMakerEditor .row > Input.-invalid:focus { border: none; background: $error 45%; }
    MarketMakerEditor .field-hint { width: 1fr; height: auto; color: $foreground-muted; padding: 0 0 0 1; }
    MarketMakerEditor .field-hint.-error { color: $error; }
    MarketMakerEditor #mm-edit-summary { width: 100%; padding-top: 1; }
    MarketMakerEditor .hint { color: $foreground-muted; width: 100%; padding-top: 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close, change nothing"),
        Binding("enter,ctrl+s", "apply", "Apply"),
    ]

    def __init__(
        self,
        market_maker: MarketMaker,
        *,
        note: Callable[[str, str, Any], None] | None = None,
        max_position_lots: int | None = None,
    ) -> None:
        """`max_position_lots`: the risk limit on this market's position; a quote size above it is refused
        (risk would refuse every such quote: the form says so instead)."""
        super().__init__()
        self.market_maker = market_maker
        self.note = note
        self.max_position_lots = max_position_lots
        self.problems: dict[str, str] = {}
        self.applied: dict[str, Any] | None = None
        # The fields of this mode: GLFT's own appear only when the market maker quotes GLFT.
        self.fields = ALL_FIELDS if market_maker.params.mode == GLFT else EDITOR_FIELDS

    # ---- layout --------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        mm = self.market_maker
        p, inst = mm.params, mm.instrument
        with Vertical():
            title = f"Market maker {mm.venue} {mm.symbol}: parameters"
            if p.mode == AVELLANEDA_STOIKOV:
                title += " (Avellaneda-Stoikov: gamma sets the spread, not the spread fields)"
            elif p.mode == GLFT:
                title += " (GLFT: gamma, delta, adj1, adj2 set the spread; A and k are fitted)"
            yield Static(title, classes="title", markup=False)
            for f in self.fields:
                with Horizontal(classes="row"):
                    yield Label(f.label)
                    if f.kind == YES_NO:
                        yield Choice(["yes", "no"], 0 if getattr(p, f.name) else 1, id=f.name)
                    elif f.kind == FAIR:
                        yield Choice(list(FAIR_LABELS), FAIR_VALUES.index(getattr(p, f.name)), id=f.name)
                    else:
                        yield Input(field_text(f, p, inst), id=f.name)
                    yield Static(self._hint(f), id=f"{f.name}-error", classes="field-hint", markup=False)
            yield Static("", id="mm-edit-summary", markup=False)
            yield Static(
                "tab: next field · ←/→: choose · enter: apply all · escape: close, change nothing",
                classes="hint",
                markup=False,
            )

    def _hint(self, f: Field) -> str:
        return f.hint.replace("base units", self.market_maker.instrument.base or "base units")

    def on_mount(self) -> None:
        self.query_one(f"#{self.fields[0].name}", Input).focus()
        self.check()

    # ---- validation ----------------------------------------------------------------------------
    def on_input_changed(self, _event: Input.Changed) -> None:
        self.check()

    def on_choice_changed(self, _event: Choice.Changed) -> None:
        if self.is_mounted:
            self.check()

    def values(self) -> tuple[dict[str, Any], dict[str, str]]:
        """({parameter: value} of every field that parses and keeps its rule, {parameter: message})."""
        mm = self.market_maker
        p, inst = mm.params, mm.instrument
        values: dict[str, Any] = {}
        problems: dict[str, str] = {}
        for f in self.fields:
            if f.kind == YES_NO:
                values[f.name] = self.query_one(f"#{f.name}", Choice).value == "yes"
                continue
            if f.kind == FAIR:
                values[f.name] = FAIR_VALUES[self.query_one(f"#{f.name}", Choice).index]
                continue
            text = self.query_one(f"#{f.name}", Input).value
            try:
                value = parse_field(f, text, inst)
                replace(p, **{f.name: value}).validate()  # this field's own rule, against the current rest
                self._check_against_risk(f, value)
            except ValueError as exc:  # QuoteParamError is one
                problems[f.name] = _message(f, text, exc)
            else:
                values[f.name] = value
        if not problems:
            try:
                replace(p, **values).validate()  # the rules between fields, if any
            except QuoteParamError as exc:
                problems[exc.name if exc.name in values else ""] = str(exc)
        return values, problems

    def _check_against_risk(self, f: Field, value: Any) -> None:
        """A quote size above the risk max position: every such quote would be refused, so is the size."""
        limit = self.max_position_lots
        if limit is None or f.name not in ("size_lots", "sizes"):
            return
        biggest = max(value, default=0) if f.name == "sizes" else value
        if biggest > limit:
            inst = self.market_maker.instrument
            raise ValueError(
                f"{inst.format_size(biggest)}: above the risk max position "
                f"{inst.format_size(limit)} {inst.base} (risk.max_position_qty)".replace("  ", " ")
            )

    def changes(self) -> dict[str, Any] | None:
        """What differs from the market maker's parameters now; None while a field is bad."""
        values, problems = self.values()
        self.problems = problems
        if problems:
            return None
        p = self.market_maker.params
        return {name: v for name, v in values.items() if getattr(p, name) != v}

    def check(self) -> dict[str, Any] | None:
        """Validate every field, show the messages beside them; the changes when the form is clean."""
        changes = self.changes()
        for f in self.fields:
            message = self.problems.get(f.name, "")
            hint = self.query_one(f"#{f.name}-error", Static)
            hint.update(message or self._hint(f))
            hint.set_class(bool(message), "-error")
            if f.kind not in (YES_NO, FAIR):
                self.query_one(f"#{f.name}", Input).set_class(bool(message), "-invalid")
        summary = self.query_one("#mm-edit-summary", Static)
        if changes is None and "" in self.problems:
            summary.update(self.problems[""])
        elif changes is None:
            summary.update(
                f"{len(self.problems)} field{'s' if len(self.problems) != 1 else ''} to fix; "
                "nothing is applied until every field is clean"
            )
        elif changes:
            summary.update("enter applies: " + describe_changes(changes, self.market_maker.instrument))
        else:
            summary.update("no changes")
        return changes

    # ---- applying ------------------------------------------------------------------------------
    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_apply()

    def action_apply(self) -> None:
        changes = self.check()
        if changes is None:
            bad = next((name for name in self.problems if name), None)
            if bad is not None:
                self.query_one(f"#{bad}").focus()
            self.notify(
                next(iter(self.problems.values()), "a field is not valid"),
                title="Not applied",
                severity="error",
                timeout=4,
                markup=False,
            )
            return
        if not changes:
            self.dismiss(None)
            return
        mm = self.market_maker
        try:
            replace(mm.params, **changes).validate()
        except QuoteParamError as exc:  # the form checked this; a last guard keeps the all-or-nothing promise
            self.query_one("#mm-edit-summary", Static).update(str(exc))
            return
        if self.note is not None:  # the key action first, then the parameter change it caused
            self.note("key", "mm_edit", {"market": f"{mm.venue}:{mm.symbol}", "fields": sorted(changes)})
        mm.update_params(**changes)
        self.applied = changes
        self.dismiss(changes)

    def action_close(self) -> None:
        self.dismiss(None)


def _message(f: Field, text: str, exc: ValueError) -> str:
    if isinstance(exc, QuoteParamError):
        unit = " lots" if f.kind in _LOT_KINDS else ""
        return f"{text.strip() or 'nothing'}: {exc.rule}{unit}"
    return str(exc)

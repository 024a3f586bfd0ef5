"""The strategies panel: each of the user's strategies ([strategies.NAME]) with its state, the figures its
`status()` reports, its handler errors and the last problem; hidden when the config names none. `U`
starts and pauses the strategies of the ladder's market. Pulled on the UI clock, redrawn when what it
shows changed (checked a few times a second).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.content import Content
from textual.widgets import Static

from lobterm.trading.strategy import FAILED, RUNNING, STOPPED

if TYPE_CHECKING:
    from lobterm.kernel import Kernel
    from lobterm.trading.strategy import Strategy

__all__ = ["StrategyPanel", "user_strategies"]

CHECK_S = 0.25
MAX_FIELDS = 8  # status() figures shown per strategy (a strategy may report more)
MAX_TEXT = 40  # characters of one figure or problem shown


def user_strategies(kernel: Kernel) -> list[Strategy]:
    """The kernel's strategies other than the built-in market makers and hedger, in attach order."""
    builtin = {mm.name for mm in kernel.market_makers}
    if kernel.hedger is not None:
        builtin.add(kernel.hedger.name)
    return [s for name, s in kernel.strategies.items() if name not in builtin]


def _clip(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


class StrategyPanel(Static):
    DEFAULT_CSS = """
    StrategyPanel {
        height: auto;
        padding: 0 1;
        background: $surface;
        border-top: solid $panel-lighten-2;
    }
    """

    def __init__(self, kernel: Kernel, *, id: str | None = None) -> None:
        super().__init__("", id=id, markup=False)
        self.kernel = kernel
        self._shown: tuple | None = None
        self._next_check = 0.0

    def on_mount(self) -> None:
        self.display = bool(user_strategies(self.kernel))

    def pull(self, now: float) -> bool:
        if now < self._next_check:
            return False
        self._next_check = now + CHECK_S
        rows = self.rows()
        if rows == self._shown:
            return False
        self._shown = rows
        self.display = bool(rows)
        if rows:
            self.update(self.render_rows(rows))
        return True

    def rows(self) -> tuple:
        """What the panel shows, as plain values: (name, state, market, ((key, value), ...), errors,
        problem) per strategy. A status() that raises shows its error instead of figures."""
        k = self.kernel
        out = []
        for s in user_strategies(k):
            try:
                figures = tuple(
                    (_clip(key), _clip(value)) for key, value in s.status().items() if key != "state"
                )[:MAX_FIELDS]
            except Exception as exc:  # a user's status() must not take the panel down
                figures = (("status", _clip(f"{type(exc).__name__}: {exc}")),)
            markets = getattr(s, "markets", ()) or ()  # BaseStrategy keeps them; the protocol need not
            where = ", ".join(f"{v}:{sym}" for v, sym in markets)
            out.append(
                (
                    s.name,
                    s.state,
                    where,
                    figures,
                    k.strategy_errors.get(s.name, 0),
                    _clip(k.strategy_problems.get(s.name, "")),
                )
            )
        return tuple(out)

    def render_rows(self, rows: tuple) -> Content:
        parts = [
            Content.assemble(Content.styled("STRATEGIES", "bold"), ("  U start/pause", "$foreground-muted"))
        ]
        for name, state, where, figures, errors, problem in rows:
            style = (
                "bold $success"
                if state == RUNNING
                else "bold $error"
                if state in (FAILED, STOPPED)
                else "bold $warning"
            )
            parts.append(
                Content.assemble(
                    (name, "bold $accent"),
                    "  ",
                    (f" {state.upper()} ", f"reverse {style}"),
                    (f"  {where}" if where else "", "$foreground-muted"),
                )
            )
            line: list = []
            for key, value in figures:
                line += [(f"{key} ", "$foreground-muted"), (value, "bold"), "  "]
            if errors:
                line += [("errors ", "$foreground-muted"), (str(errors), "bold $error")]
            if line:
                parts.append(Content.assemble(*line))
            if problem:
                parts.append(Content.styled(problem, "$error"))
        return Content("\n").join(parts)

"""The market maker's parameter changes a session recorded, with their values and places in the session.

Every live change of a market maker's parameters (the `>` / `)` keys, the `e` form, a strategy's call) goes
through `MarketMaker.update_params`, and the kernel notes it in the session file as
`Note("mm", "params", {"market": "venue:symbol", **changes})`: the new values, in bus order with the events
around it. (The key action that caused it is noted just before, e.g. `Note("key", "mm_edit", {"market",
"fields"})`: which fields the form changed; the values are in the `mm params` note that follows.) Every
session format that has the key note has the values note too (both came in one change), so reading the
values from `mm params` notes reads old sessions as well.

Both readers of a session use this one list: the backtest applies each change at its place (recorded
parameters), and the replay shows the parameters in force at every moment (the market-maker panel, a seek).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["ParamChange", "recorded_param_changes", "all_param_changes"]


@dataclass(frozen=True, slots=True)
class ParamChange:
    """One live change of the market maker's parameters, as the session recorded it."""

    seq: int
    ts: int
    changes: dict[str, Any]
    market: str = ""  # "venue:symbol"


def all_param_changes(reader: Any) -> list[ParamChange]:
    """Every market maker parameter change the session recorded (any market), in seq order. A note that
    does not have the expected shape is left out (a note is untrusted input)."""
    out = []
    for seq, note in reader.notes():
        detail = note.detail
        if note.source != "mm" or note.action != "params" or not isinstance(detail, dict):
            continue
        market = detail.get("market")
        if not isinstance(market, str):
            continue
        changes = {k: v for k, v in detail.items() if k != "market" and isinstance(k, str)}
        if changes:
            out.append(ParamChange(seq, note.ts, changes, market))
    return out


def recorded_param_changes(reader: Any, venue: str, symbol: str) -> list[ParamChange]:
    """The market maker parameter changes the session recorded for `venue`/`symbol`, in order."""
    market = f"{venue}:{symbol}"
    return [c for c in all_param_changes(reader) if c.market == market]

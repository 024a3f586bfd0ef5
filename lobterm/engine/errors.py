"""The shapes of refused input: the engine's `EngineInputError` and the settings' `ParameterError`.

Every engine object refuses bad input the same way: an `EngineInputError` (a `ValueError`) naming
where it happened, which field, the value given and the rule it broke, with the object left exactly
as it was. Each area has its subclass (`InstrumentError`, `L2BookError`, `MatchingBookError`,
`UnifiedBookError`, `AnalyticsError`) so that a caller can catch one area's refusals.

Why the engine insists on `int` itself, not "anything that compares like an int": `True == 1`,
`1.0 == 1` and `numpy.int64(1) == 1`, and all three hash like 1, so they slip through dict lookups
and range checks and then travel inside events that the recorder stores typed (a float or a numpy
scalar there cannot be encoded or read back as the int the schema says). Converting such values is
the job of the edge (`Instrument.ticks` / `lots`, where a venue's number becomes ticks and lots,
once); past the edge, one class-identity check is both the cheapest test and the exact one.

`ParameterError` is the one shape of a refused setting: which setting, the value given and the rule
it broke. Every parameter class (risk limits, hedger and market-maker parameters, the sim's config,
the paper desk's) raises a subclass of it, so that `lobterm.config` can turn any of them into a
`ConfigError` naming the `section.key` without knowing each class.
"""

from __future__ import annotations

from typing import TypeGuard

__all__ = ["EngineInputError", "ParameterError", "is_side", "is_whole"]


class EngineInputError(ValueError):
    """Input an engine object refused. `where` says which object, `what` the field, `value` what was
    given and `rule` what it broke; the object is unchanged."""

    def __init__(self, where: str, what: str, value: object, rule: str) -> None:
        self.where = where
        self.what = what
        self.value = value
        self.rule = rule
        super().__init__(f"{where}: {what} {value!r} rejected: {rule}")


def is_whole(value: object) -> TypeGuard[int]:
    """True for a Python int that is not a bool (see the module docstring for why exactly int)."""
    return value.__class__ is int


def is_side(value: object) -> TypeGuard[int]:
    """True for BUY (0) or SELL (1) given as a Python int (not True, 1.0 or numpy.int64(1))."""
    return value.__class__ is int and (value == 0 or value == 1)


class ParameterError(ValueError):
    """A setting that cannot be used: `name` the setting, `value` what was given, `rule` what it broke.
    Nothing was changed. Subclasses say which area (`area`) the setting belongs to."""

    area = "parameter"

    def __init__(self, name: str, value: object, rule: str) -> None:
        self.name = name
        self.value = value
        self.rule = rule
        super().__init__(f"{self.area} {name} = {value!r} rejected: {rule}")

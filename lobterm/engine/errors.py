"""The one shape of a refused setting: which setting, the value given and the rule it broke.

Every parameter class (risk limits, hedger and market-maker parameters, the sim's config, the paper
desk's) raises a subclass of `ParameterError`, so that `lobterm.config` can turn any of them into a
`ConfigError` naming the `section.key` without knowing each class.
"""

from __future__ import annotations

__all__ = ["ParameterError"]


class ParameterError(ValueError):
    """A setting that cannot be used: `name` the setting, `value` what was given, `rule` what it broke.
    Nothing was changed. Subclasses say which area (`area`) the setting belongs to."""

    area = "parameter"

    def __init__(self, name: str, value: object, rule: str) -> None:
        self.name = name
        self.value = value
        self.rule = rule
        super().__init__(f"{self.area} {name} = {value!r} rejected: {rule}")

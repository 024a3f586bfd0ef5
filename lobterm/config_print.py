"""`lobterm config`: the effective configuration (defaults, then the files, then the flags) as TOML.

Every value under a key whose name contains "key", "secret", "password" or "token" is replaced by
"<redacted>" (the `[keys]` table of key bindings excepted: its entries are binding ids), so that the
output can be pasted into a bug report. Without secrets the output loads back to the same config.
"""

from __future__ import annotations

import json
import re
from dataclasses import fields, is_dataclass
from decimal import Decimal
from pathlib import PurePath
from typing import Any

from lobterm.config import Config

__all__ = ["REDACTED", "config_tree", "effective_toml", "is_secret_key", "redact", "to_toml"]

REDACTED = "<redacted>"
_SECRET_WORDS = ("key", "secret", "password", "token")
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_NOT_CONFIG = ("sources",)  # Config fields that are not settings


def is_secret_key(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in _SECRET_WORDS)


def redact(tree: Any, *, top: bool = True) -> Any:
    """A copy of a config tree with the values of secret-looking keys replaced (an unset, empty value
    stays empty: whether a secret is set is not a secret)."""
    if isinstance(tree, dict):
        out = {}
        for k, v in tree.items():
            if top and k == "keys":  # the key bindings table
                out[k] = redact(v, top=False)
            elif is_secret_key(str(k)):
                out[k] = REDACTED if v not in ("", None, [], {}) else v
            else:
                out[k] = redact(v, top=False)
        return out
    if isinstance(tree, list):
        return [redact(v, top=False) for v in tree]
    return tree


def _plain(value: Any) -> Any:
    """Config values as TOML-ready plain values: tables, lists, str, int, float, bool (None dropped)."""
    if is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: _plain(getattr(value, f.name))
            for f in fields(value)
            if getattr(value, f.name) is not None
        }
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    if isinstance(value, (Decimal, PurePath)):
        return str(value)
    return value


def config_tree(cfg: Config) -> dict[str, Any]:
    tree = {f.name: _plain(getattr(cfg, f.name)) for f in fields(cfg) if f.name not in _NOT_CONFIG}
    for _name, table in tree.get("venues", {}).items():
        table.pop("name", None)  # the table's own name
    return tree


def _key(k: str) -> str:
    return k if _BARE_KEY.match(k) else json.dumps(k, ensure_ascii=False)


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if v != v:
            return "nan"
        return repr(v) if abs(v) != float("inf") else ("inf" if v > 0 else "-inf")
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)  # JSON's string escapes are TOML's basic-string escapes
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_key(k)} = {_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"cannot write a {type(v).__name__} as TOML")


def to_toml(tree: dict[str, Any], prefix: str = "") -> str:
    """TOML text for a tree of tables: plain values first, then one [table] per nested table."""
    lines: list[str] = []
    tables: list[tuple[str, dict]] = []
    for k, v in tree.items():
        if isinstance(v, dict):
            tables.append((k, v))
        else:
            lines.append(f"{_key(k)} = {_value(v)}")
    out = "\n".join(lines) + ("\n" if lines else "")
    for k, table in tables:
        name = f"{prefix}.{_key(k)}" if prefix else _key(k)
        has_values = any(not isinstance(v, dict) for v in table.values())
        body = to_toml(table, name)
        if has_values or not table:
            out += f"\n[{name}]\n" + body
        else:
            out += body  # only sub-tables: their headers say it all
    return out


def effective_toml(cfg: Config) -> str:
    sources = ", ".join(cfg.sources) if cfg.sources else "none (defaults only)"
    head = (
        "# lobterm effective configuration: defaults, then the files, then the flags.\n"
        f"# files read: {sources}\n"
        "# [mm], [risk], [hedge] list only the keys that were set; the rest are the parameters' defaults.\n"
        f'# values of keys naming a key, secret, password or token are shown as "{REDACTED}".\n'
    )
    return head + to_toml(redact(config_tree(cfg)))

"""`lobterm config`: the effective configuration printed back as TOML, secrets redacted."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import fields, is_dataclass
from decimal import Decimal
from fractions import Fraction
from pathlib import PurePath
from typing import Any

from lobterm.config.limits import (
    effective_risk,
)
from lobterm.config.model import (
    AUTO,
    OFF,
    _Section,
)
from lobterm.config.sections import (
    Config,
)

# ---- printing: `lobterm config` -------------------------------------------------------------------
REDACTED = "<redacted>"
_SECRET_WORDS = ("key", "secret", "password", "token")
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_NOT_CONFIG = ("sources", "sim_venues")  # Config fields that are not settings


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
    """Config values as TOML-ready plain values: tables, lists, str, int, float, bool (None: "off")."""
    if isinstance(value, _Section):  # every parameter, None ("no limit", "market orders") as "off"
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}  # type: ignore[arg-type]
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
    if isinstance(value, Fraction):
        if value.denominator == 1:
            return int(value)
        d = Decimal(value.numerator) / Decimal(value.denominator)
        return str(d) if Fraction(d) == value else str(value)  # "0.25" if exact, else "1/3"
    if isinstance(value, (Decimal, PurePath)):
        return str(value)
    if value is None:
        return OFF
    return value


_INT_SHOWN = ("price_band_bps", "messages_per_s", "min_liquidation_bps")


def _risk_tree(cfg: Config) -> tuple[dict[str, Any], dict[str, str]]:
    """[risk] as it applies (on the sim's instrument unless venues are configured), and a comment per
    derived or switched-off limit."""
    eff = effective_risk(cfg)
    tree: dict[str, Any] = {}
    notes: dict[str, str] = {}
    for key, lim in eff.items():
        v = lim.value
        if v is None:
            v = "all" if key == "duplicate_tags" else OFF
        elif isinstance(v, Decimal) and key in _INT_SHOWN and v == int(v):
            v = int(v)
        tree[key] = _plain(v)
        if lim.how.startswith(AUTO):
            notes[key] = lim.how
        elif lim.how == OFF:
            notes[key] = "off: not checked"
    return tree, notes


def config_tree(cfg: Config) -> dict[str, Any]:
    tree = {f.name: _plain(getattr(cfg, f.name)) for f in fields(cfg) if f.name not in _NOT_CONFIG}
    for _name, table in tree.get("venues", {}).items():
        table.pop("name", None)  # the table's own name
    if cfg.sim_venues:
        tree.setdefault("venues", {}).update({n: _plain(t) for n, t in cfg.sim_venues.items()})
    tree["risk"] = _risk_tree(cfg)[0]
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


def to_toml(tree: dict[str, Any], prefix: str = "", notes: Mapping[str, str] | None = None) -> str:
    """TOML text for a tree of tables: plain values first, then one [table] per nested table. `notes`
    maps a dotted key ("risk.max_order_qty") to a comment written after its value."""
    notes = notes or {}
    lines: list[str] = []
    tables: list[tuple[str, dict]] = []
    for k, v in tree.items():
        if isinstance(v, dict):
            tables.append((k, v))
        else:
            line = f"{_key(k)} = {_value(v)}"
            note = notes.get(f"{prefix}.{k}" if prefix else k)
            lines.append(f"{line:<40} # {note}" if note else line)
    out = "\n".join(lines) + ("\n" if lines else "")
    for k, table in tables:
        name = f"{prefix}.{_key(k)}" if prefix else _key(k)
        has_values = any(not isinstance(v, dict) for v in table.values())
        body = to_toml(table, name, notes)
        if has_values or not table:
            out += f"\n[{name}]\n" + body
        else:
            out += body  # only sub-tables: their headers say it all
    return out


def effective_toml(cfg: Config) -> str:
    sources = ", ".join(cfg.sources) if cfg.sources else "none (defaults only)"
    risk_on = "the sim's instrument" if not cfg.venues else "the sim's lot grid (live markets: their own)"
    head = (
        "# lobterm effective configuration: defaults, then the files, then the flags.\n"
        f"# files read: {sources}\n"
        f'# [risk]: every limit as it applies on {risk_on}; "auto" ones are derived (the rule follows\n'
        '# the value), "off" ones are not checked. Write a value, "auto" or "off" to change one.\n'
        f'# values of keys naming a key, secret, password or token are shown as "{REDACTED}".\n'
    )
    tree = config_tree(cfg)
    tree["risk"], notes = _risk_tree(cfg)
    tree["hedge"] = {"enabled": tree["hedge"].pop("enabled"), **tree["hedge"]}  # on or off first
    all_notes = {f"risk.{k}": v for k, v in notes.items()}
    m = cfg.metrics
    if m.enabled and m.port and not port_is_free(m.host, m.port):
        all_notes["metrics.port"] = (
            "in use now: lobterm would export on a free port (the status bar shows it)"
        )
    return head + to_toml(redact(tree), notes=all_notes)


def port_is_free(host: str, port: int) -> bool:
    """Whether a TCP listener could bind `host:port` now (a second lobterm on the host holds 9464)."""
    import socket

    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
            s.bind((host, port))
    except OSError:
        return False
    return True

"""Settings of one live venue (`[venues.NAME]` in the config), validated, with secrets kept out of reprs.

No ccxt import here: the config is parsed on the TUI start-up path.

    [venues.binance]
    exchange = "binance"            # the ccxt id (default: the section name)
    symbols = ["BTC/USDT"]
    rest_url = "https://testnet.binance.vision"   # replaces scheme://host of every REST URL
    ws_url = "wss://stream.testnet.binance.vision" # replaces scheme://host of every websocket URL
    order_transport = "rest"        # or "ws" (the venue's websocket API, where ccxt has createOrderWs)
    cancel_on_shutdown = true
    reconcile_every_s = 30          # with keys: open orders, our trades and balances asked this often
    orphan_orders = "cancel"        # our orders left by an earlier run: "cancel", "adopt" or "leave"
    role = "quote"                  # or "hedge": the hedger hedges the quote venue's position here
    [venues.binance.urls]           # exact ccxt URL entries (dotted paths in exchange.urls), applied last
    "api.ws.spot" = "wss://stream.testnet.binance.vision/stream"
    [venues.binance.options]        # ccxt options, merged last (lobterm already loads only the market
    fetchCurrencies = false         # types the symbols need: spot symbols -> spot, no currencies/margin)

Every number is range-checked here (finite, within the bounds below, positive where zero would spin or
divide); a refusal names the key, the value and the rule.

Keys come from the environment (`LOBTERM_<VENUE>_API_KEY`, `LOBTERM_<VENUE>_SECRET`,
`LOBTERM_<VENUE>_PASSWORD`) or from the file (`api_key`, `secret`, `password`); a file holding them
must be readable by its owner only (mode 0600), see `lobterm.config`.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field, fields
from typing import Any

__all__ = ["SECRET_FIELDS", "VenueConfig", "VenueConfigError", "env_prefix", "venue_from_dict"]

SECRET_FIELDS = ("api_key", "secret", "password")
TRANSPORTS = ("rest", "ws")
ROLES = ("quote", "hedge")
ORPHAN_POLICIES = ("cancel", "adopt", "leave")

#: Sane bounds per numeric key: (lowest, highest), both inclusive.
BOUNDS: dict[str, tuple[float, float]] = {
    "depth": (1, 5000),
    "stale_after_s": (0.2, 3600.0),
    "orders_per_s": (0.01, 10_000.0),
    "order_burst": (1, 100_000),
    "breaker_errors": (1, 10_000),
    "breaker_cooldown_s": (0.01, 86_400.0),
    "order_retries": (0, 10),
    "timeout_ms": (100, 600_000),
    "reconcile_every_s": (1.0, 86_400.0),
}


class VenueConfigError(ValueError):
    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        self.problem = problem
        super().__init__(f"{key}: {problem}")


@dataclass(slots=True)
class VenueConfig:
    name: str
    exchange: str = ""
    symbols: tuple[str, ...] = ()
    rest_url: str = ""
    ws_url: str = ""
    urls: dict[str, str] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    api_key: str = field(default="", repr=False)
    secret: str = field(default="", repr=False)
    password: str = field(default="", repr=False)
    order_transport: str = "rest"
    cancel_on_shutdown: bool = True
    role: str = "quote"
    sandbox: bool = False  # ccxt's set_sandbox_mode: the venue's own testnet URLs
    depth: int = 100  # levels asked for in the book snapshot
    stale_after_s: float = 10.0  # a stream quiet for this long is closed and watched again
    orders_per_s: float = 10.0  # token bucket for order traffic
    order_burst: int = 20
    breaker_errors: int = 5  # consecutive order errors that open the circuit breaker
    breaker_cooldown_s: float = 10.0
    order_retries: int = 2  # network errors on an order request: retries with backoff
    timeout_ms: int = 10_000
    reconcile_every_s: float = 30.0  # open orders, our trades and balances asked this often (with keys)
    orphan_orders: str = "cancel"  # our client-id prefix, placed by an earlier run: cancel, adopt, leave

    @property
    def exchange_id(self) -> str:
        return self.exchange or self.name

    @property
    def has_keys(self) -> bool:
        return bool(self.api_key and self.secret)

    def secrets(self) -> list[str]:
        return [s for s in (self.api_key, self.secret, self.password) if s]

    def with_env_secrets(self, environ: dict[str, str] | None = None) -> VenueConfig:
        """Fill missing keys from LOBTERM_<VENUE>_API_KEY / _SECRET / _PASSWORD (environment wins
        over nothing, the file wins over the environment)."""
        env = os.environ if environ is None else environ
        prefix = env_prefix(self.name)
        for f, suffix in (("api_key", "API_KEY"), ("secret", "SECRET"), ("password", "PASSWORD")):
            if not getattr(self, f):
                value = env.get(prefix + suffix, "")
                if value:
                    setattr(self, f, value.strip())
        return self


def env_prefix(venue: str) -> str:
    return "LOBTERM_" + re.sub(r"[^A-Z0-9]", "_", venue.upper()) + "_"


def venue_from_dict(name: str, values: dict[str, Any], base: VenueConfig | None = None) -> VenueConfig:
    """A VenueConfig from a TOML table; raises VenueConfigError naming the key."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,40}", name):
        raise VenueConfigError(f"venues.{name}", "a venue name is letters, digits, '_', '-' or '.'")
    cfg = base or VenueConfig(name)
    known = {f.name for f in fields(VenueConfig)} - {"name"}
    for key, raw in values.items():
        where = f"venues.{name}.{key}"
        if key not in known:
            raise VenueConfigError(where, f"unknown key (known: {', '.join(sorted(known))})")
        current = getattr(cfg, key)
        if key == "symbols":
            if isinstance(raw, str):
                raw = [raw]
            if not isinstance(raw, list) or not raw or not all(isinstance(s, str) and s.strip() for s in raw):
                raise VenueConfigError(where, 'must be a non-empty list of symbols such as ["BTC/USDT"]')
            value: Any = tuple(s.strip() for s in raw)
        elif key in ("urls", "options"):
            if not isinstance(raw, dict):
                raise VenueConfigError(where, "must be a table")
            if key == "urls" and not all(isinstance(v, str) for v in raw.values()):
                raise VenueConfigError(where, "every entry must be a URL string")
            value = {**current, **raw}
        elif isinstance(current, bool):
            if not isinstance(raw, bool):
                raise VenueConfigError(where, "must be true or false")
            value = raw
        elif isinstance(current, int):
            low, high = BOUNDS[key]
            if isinstance(raw, bool) or not isinstance(raw, int) or not low <= raw <= high:
                raise VenueConfigError(where, f"{_show(raw)} must be a whole number from {low:g} to {high:g}")
            value = raw
        elif isinstance(current, float):
            low, high = BOUNDS[key]
            if (
                isinstance(raw, bool)
                or not isinstance(raw, (int, float))
                or not math.isfinite(raw)
                or not low <= raw <= high
            ):
                raise VenueConfigError(where, f"{_show(raw)} must be a number from {low:g} to {high:g}")
            value = float(raw)
        else:
            if not isinstance(raw, str):
                # Never echo a secret's value, even a mistyped one.
                raise VenueConfigError(where, "must be a string")
            value = raw.strip()
        setattr(cfg, key, value)
    if cfg.order_transport not in TRANSPORTS:
        raise VenueConfigError(f"venues.{name}.order_transport", f"must be one of {', '.join(TRANSPORTS)}")
    if cfg.role not in ROLES:
        raise VenueConfigError(f"venues.{name}.role", f"must be one of {', '.join(ROLES)}")
    if cfg.orphan_orders not in ORPHAN_POLICIES:
        raise VenueConfigError(
            f"venues.{name}.orphan_orders",
            f"{cfg.orphan_orders!r} must be one of {', '.join(ORPHAN_POLICIES)}",
        )
    for key in ("rest_url", "ws_url"):
        url = getattr(cfg, key)
        if url and not re.match(r"^(https?|wss?)://[^/\s]+", url):
            raise VenueConfigError(f"venues.{name}.{key}", f"{url!r} is not an http(s):// or ws(s):// URL")
    return cfg


def _show(raw: object) -> str:
    """A value for an error message: short, and a string quoted (it is never a secret: those are strings
    checked above without echoing)."""
    text = repr(raw)
    return text if len(text) <= 40 else text[:37] + "..."

"""The configuration's types: the errors (a `ConfigError` subclass per area), the plain sections
([ui] [metrics] [feed] [recording]) and the typed trading sections ([mm] [hedge] [risk]); `Config`,
which reads a table given for a typed section, is in sections.py."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, fields
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

from lobterm.engine.instrument import MAX_UNITS
from lobterm.trading.hedger import HedgeParams
from lobterm.trading.quoting import QuoteParamError, QuoteParams

OFF = "off"  # a risk limit switched off, explicitly
AUTO = "auto"  # a risk limit derived from the instrument and the config (the default)


# ---- errors ---------------------------------------------------------------------------------------
_NO_VALUE = object()


def default_sessions_dir() -> Path:
    """Where sessions go unless `sessions_dir` says otherwise: the user's state directory
    ($XDG_STATE_HOME/lobterm/sessions, else ~/.local/state/lobterm/sessions), never the working directory."""
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "lobterm" / "sessions"


class ConfigError(ValueError):
    """A configuration problem: the file (`where`), the `key` (`section.key`), the `value` and the rule
    (`problem`). One class per area below; catch this one."""

    def __init__(self, where: str, key: str, problem: str, value: object = _NO_VALUE) -> None:
        self.where = where
        self.key = key
        self.problem = problem
        self.value = None if value is _NO_VALUE else value
        shown = "" if value is _NO_VALUE else f" = {_show(value)}"
        super().__init__(f"{where}: {key}{shown}: {problem}")


class FileConfigError(ConfigError):
    """The file itself: missing, unreadable, not TOML, readable by others while holding keys."""


class SimConfigError(ConfigError):
    """[sim]"""


class UiConfigError(ConfigError):
    """[ui] and [keys]"""


class TradingConfigError(ConfigError):
    """[mm], [risk], [hedge]"""


class ServiceConfigError(ConfigError):
    """[metrics], [feed], [recording], sessions_dir"""


class VenueSectionError(ConfigError):
    """[venues.NAME]"""


_AREA = {
    "sim": SimConfigError,
    "perp": SimConfigError,
    "ui": UiConfigError,
    "keys": UiConfigError,
    "mm": TradingConfigError,
    "risk": TradingConfigError,
    "hedge": TradingConfigError,
    "markouts": TradingConfigError,
    "metrics": ServiceConfigError,
    "feed": ServiceConfigError,
    "recording": ServiceConfigError,
    "sessions_dir": ServiceConfigError,
    "venues": VenueSectionError,
    "simgroup": SimConfigError,
    "strategies": TradingConfigError,
    "backtest": TradingConfigError,
}


def _refuse(where: str, key: str, problem: str, value: object = _NO_VALUE) -> ConfigError:
    return _AREA.get(key.split(".", 1)[0], ConfigError)(where, key, problem, value)


def _show(value: object) -> str:
    """A value as the user wrote it, cut short: a refusal must not print a megabyte of TOML back."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# ---- plain sections -------------------------------------------------------------------------------
@dataclass(slots=True)
class UiConfig:
    default_qty: Decimal = Decimal("0.010")
    qty_presets: tuple[Decimal, ...] = (
        Decimal("0.001"),
        Decimal("0.010"),
        Decimal("0.100"),
        Decimal("1.000"),
    )
    ladder_rows: int = 0  # 0: as many as fit
    #: "auto": chosen once from the market's first seconds (widgets/auto_zoom.py); a number: that many ticks.
    ticks_per_row: int | str = "auto"
    auto_recenter: bool = True  # recenter when the market moves out of the ladder (not when you scroll)
    refresh_hz: float = 25.0
    flash_ms: int = 300  # how long a changed ladder size stays highlighted (0: no flash)
    theme: str = "dark"  # dark, light, high-contrast or a user theme (~/.config/lobterm/themes/*.toml)
    confirm_above_qty: Decimal = Decimal("0.500")  # ask before sending more than this (0: never)
    ticket_band_bps: int = 200  # order ticket: refuse a price this far through the mid (0: no check)
    ladder_columns: tuple[str, ...] = ()  # optional ladder columns shown from the start: "cum", "pnl"
    mouse_trading: bool = (
        True  # clicks on the ladder trade (BIDS/ASKS buy/sell, our size cancels, drag moves)
    )
    side_panels: str = "auto"  # "auto" (shown when the width leaves them room), "shown" or "hidden"
    heatmap: bool = False  # the liquidity heatmap beside each ladder from the start (`h` toggles it)
    heatmap_minutes: float = 5.0  # how much history the heatmap keeps and shows
    consolidated: bool = False  # one ladder per instrument over its venues (`L` toggles per-venue ladders)


@dataclass(slots=True)
class MetricsConfig:
    """[metrics]: the Prometheus exporter (lobterm/metrics.py). Loopback only unless `host` says otherwise."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 9464  # 0: any free port
    interval_s: float = 1.0  # how often position, P&L, exposure and staleness gauges are refreshed


@dataclass(slots=True)
class FeedConfig:
    """[feed]: the read-only WebSocket feed (lobterm/feed.py), off by default. The token may also come
    from the environment (LOBTERM_FEED_TOKEN); it is never shown, logged or recorded."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 8765  # 0: any free port
    token: str = field(default="", repr=False)
    top_n: int = 10  # book levels per side
    interval_ms: int = 50  # how often book changes are sent (coalesced)
    queue_size: int = 1000  # messages a client may lag behind before it is dropped


@dataclass(slots=True)
class RecordingConfig:
    """[recording]: every session is recorded (lobterm/recording/recorder.py) unless `enabled = false`
    or `--no-record`. `sessions_dir` (here or top-level) is where the files go."""

    enabled: bool = True
    checkpoint_every_s: float = 10.0  # kernel-clock seconds between checkpoints (seek, verify)
    flush_interval_ms: int = 100  # a batch is written at most this often ...
    flush_events: int = 50_000  # ... or when this many events are waiting, whichever comes first
    rotate_mb: int = 512  # a session goes on in a new file past this size (0: no size limit) ...
    rotate_every: float = 3600.0  # ... or after this many kernel-clock seconds (0: no time limit)
    max_total_mb: int = 2048  # oldest session files removed past this total, never an open one (0: keep all)


# (lowest, highest) of every number in the plain sections; quantities are base-currency Decimals.
_MAX_QTY = Decimal(10) ** 12
_BOUNDS: dict[str, tuple[Any, Any]] = {
    "ui.default_qty": (Decimal("1e-12"), _MAX_QTY),
    "ui.qty_presets": (Decimal("1e-12"), _MAX_QTY),
    "ui.ladder_rows": (0, 1000),
    "ui.refresh_hz": (1.0, 60.0),
    "ui.flash_ms": (0, 10_000),
    "ui.confirm_above_qty": (Decimal(0), _MAX_QTY),
    "ui.ticket_band_bps": (0, 1_000_000),
    "ui.heatmap_minutes": (0.5, 120.0),
    "metrics.port": (0, 65535),
    "metrics.interval_s": (0.05, 3600.0),
    "feed.port": (0, 65535),
    "feed.top_n": (1, 500),
    "feed.interval_ms": (5, 60_000),
    "feed.queue_size": (8, 1_000_000),
    "recording.checkpoint_every_s": (0.1, 86_400.0),
    "recording.flush_interval_ms": (5, 10_000),
    "recording.flush_events": (100, 10_000_000),
    "recording.rotate_mb": (0, 1_048_576),  # 0: no size limit
    "recording.rotate_every": (0.0, 31_536_000.0),  # 0: no time limit
    "recording.max_total_mb": (0, 1_073_741_824),  # 0: keep everything
}
_MAX_STRING = 256  # hosts, themes, tokens, key names: longer is a paste gone wrong


# ---- typed trading sections -----------------------------------------------------------------------
class _Section:
    """What the trading sections share: which keys the files set (the rest are defaults).

    `keys()` and `[key]` give the keys that were set, so that `dict(section)` is the section as written
    (the backtest applies a file's [mm] over the recorded one this way); `bool(section)` says whether
    anything was set."""

    _set: ClassVar[frozenset[str]] = frozenset()  # per instance once set (see `_with_set`)

    def _with_set(self, keys: frozenset[str]) -> None:
        object.__setattr__(self, "_set", keys)

    def keys(self) -> list[str]:
        return [f.name for f in fields(self) if f.name in self._set]  # type: ignore[arg-type]

    def __getitem__(self, key: str) -> Any:
        if key not in self._set:
            raise KeyError(key)
        return getattr(self, key)

    def __bool__(self) -> bool:
        return bool(self._set)


@dataclass(frozen=True)
class MarketMakerConfig(QuoteParams, _Section):
    """[mm]: the market maker's `QuoteParams` as configured, with the config's sane upper bounds."""

    # Upper bounds the parameter class leaves open; past them a quote is nonsense or a float overflows.
    BOUNDS: ClassVar[dict[str, float]] = {
        "spread_ticks": 10**6,
        "level_step_ticks": 10**6,
        "min_spread_ticks": 10**6,
        "refresh_tolerance_ticks": 10**6,
        "skew_ticks_per_lot": 1e6,
        "max_order_age_ms": 86_400_000,
        "stale_after_ms": 86_400_000,
        "reject_backoff_ms": 3_600_000,
        "gamma": 1e6,
        "sigma_ticks": 1e6,
        "k": 1e6,
        "horizon_s": 86_400.0,
    }
    LOWEST: ClassVar[dict[str, float]] = {"gamma": 1e-12, "k": 1e-12}  # 2/gamma and gamma/k stay finite

    def check(self) -> None:
        """`QuoteParams.validate` plus the bounds above; `QuoteParamError` naming the parameter."""
        self.validate()
        for name, top in self.BOUNDS.items():
            v = getattr(self, name)
            if v > top or v < self.LOWEST.get(name, 0):
                raise QuoteParamError(name, v, f"must be in {self.LOWEST.get(name, 0):g}..{top:g}")
        if len(self.sizes) > 50:
            raise QuoteParamError("sizes", self.sizes, "must list at most 50 sizes (one per level)")


@dataclass
class HedgeConfig(HedgeParams, _Section):
    """[hedge]: the hedger's `HedgeParams`, validated; `enabled` defaults to whether any key was set."""

    enabled: bool = False

    def __bool__(self) -> bool:
        return self.enabled


@dataclass
class RiskConfig(_Section):
    """[risk]: pre-trade limits in the units a trader writes. Each is a value, "auto" (derived from the
    instrument and the config: see `effective_risk`) or "off" (switched off, explicitly)."""

    max_order_qty: Decimal | str = AUTO  # base currency, on the lot grid
    max_order_value: Decimal | str = AUTO  # quote currency
    max_position_qty: Decimal | str = AUTO  # base currency, on the lot grid
    price_band_bps: Decimal | str = AUTO  # |price - mid| in bps of the mid
    messages_per_s: Decimal | str = AUTO  # per venue: new orders, amends, cancels
    burst: int | str = AUTO  # messages at once above the rate
    daily_loss_limit: Decimal | str = AUTO  # quote currency
    duplicate_window_ms: int | str = 250
    duplicate_tags: tuple[str, ...] | str = ("manual",)  # or "all"
    max_book_age_ms: int | str = 5000
    stale_book_tags: tuple[str, ...] = ("mm",)
    max_leverage: Decimal | str = AUTO  # perpetuals: notional / equity at the mark
    min_liquidation_bps: Decimal | str = AUTO  # perpetuals: liquidation price's distance from the mark


# key -> (kind, lowest, highest, may be "off", may be "auto"); kinds: qty, money, number, int, tags
_RISK_KEYS: dict[str, tuple[str, Any, Any, bool, bool]] = {
    "max_order_qty": ("qty", Decimal("1e-12"), _MAX_QTY, True, True),
    "max_order_value": ("money", Decimal(0), Decimal("1e30"), True, True),
    "max_position_qty": ("qty", Decimal("1e-12"), _MAX_QTY, True, True),
    "price_band_bps": ("number", Decimal(0), Decimal(1_000_000), True, True),
    "messages_per_s": ("number", Decimal("0.001"), Decimal(1_000_000), True, True),
    "burst": ("int", 1, 1_000_000, False, True),
    "daily_loss_limit": ("money", Decimal(0), Decimal("1e30"), True, True),
    "duplicate_window_ms": ("int", 1, 86_400_000, True, False),
    "duplicate_tags": ("tags", None, None, False, False),
    "max_book_age_ms": ("int", 1, 86_400_000, True, False),
    "stale_book_tags": ("tags", None, None, False, False),
    "max_leverage": ("number", Decimal(1), Decimal(1000), True, True),
    "min_liquidation_bps": ("number", Decimal(0), Decimal(10_000), True, True),
}
_TAG = re.compile(r"[A-Za-z0-9_.:-]{1,32}")
# Caps on derived limits (an extreme but valid sim grid must not derive a limit RiskLimits refuses).
_MAX_NOTIONAL = MAX_UNITS * MAX_UNITS
_MAX_MONEY = Decimal(10) ** 29
_MAX_BAND_BPS = Decimal(1_000_000)
# The default least distance from the mark to the liquidation price on a perpetual: 5%. At the sim
# perpetual's 10x and 0.5% maintenance a position at full leverage is 9.5% away.
MIN_LIQUIDATION_BPS = 500

"""Configuration: TOML files, then command-line flags, validated into typed sections, with friendly errors;
and `lobterm config`, the effective configuration printed back as TOML.

Looked up in order, later ones overriding earlier ones key by key:
1. `$XDG_CONFIG_HOME/lobterm/config.toml` (default `~/.config/lobterm/config.toml`)
2. `./lobterm.toml`
3. the file given with `--config FILE`
4. command-line flags (`--seed`, `--rate`, ...)

Example:

    [sim]
    symbol = "BTC/USDT"
    tick_size = "0.1"
    lot_size = "0.001"
    start_price = "65000"
    seed = 1
    rate_hz = 20

    [ui]
    default_qty = "0.010"       # in base units, on the lot grid
    qty_presets = ["0.001", "0.010", "0.100", "1.000"]

    [risk]                      # every limit is on by default, derived from the instrument and config
    max_order_qty = "2.000"     # or "off" (explicit, and shown as off), or "auto" (the derived default)

    [keys]                      # binding id = key(s); see `lobterm keys` or the help screen
    buy = "b"
    sell = "s"

Unknown sections or keys are errors (a typo should not silently do nothing). Every value is range-checked
when it is read: finite, within sane bounds, positive where zero would spin or divide. A refusal is a
`ConfigError` (a subclass per section) naming the file, the `section.key`, the value and the rule.

The trading sections are typed: `[mm]` is a `MarketMakerConfig` (the market maker's `QuoteParams`),
`[hedge]` a `HedgeConfig` (the hedger's `HedgeParams` plus `enabled`), `[risk]` a `RiskConfig` (limits in
base and quote units, "auto" or "off"). Other modules get the trading objects from `quote_params(cfg)`,
`hedge_params(cfg)` and `risk_limits(cfg, instrument)`.
"""

from __future__ import annotations

import json
import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass, replace
from decimal import Decimal
from fractions import Fraction
from pathlib import Path, PurePath
from typing import Any, ClassVar

from lobterm.engine.errors import ParameterError
from lobterm.engine.instrument import MAX_UNITS, Instrument, InstrumentError, to_decimal
from lobterm.trading.hedger import HedgeParamError, HedgeParams, validate_params
from lobterm.trading.market_maker import QuoteParamError, QuoteParams
from lobterm.trading.markouts import MarkoutConfig, MarkoutError
from lobterm.trading.risk import RiskLimitError, RiskLimits, money
from lobterm.venues.settings import SECRET_FIELDS, VenueConfig, VenueConfigError, venue_from_dict
from lobterm.venues.sim import SimConfig

__all__ = [
    "OFF",
    "AUTO",
    "REDACTED",
    "Config",
    "ConfigError",
    "FeedConfig",
    "HedgeConfig",
    "MarketMakerConfig",
    "MetricsConfig",
    "RecordingConfig",
    "RiskConfig",
    "UiConfig",
    "config_tree",
    "effective_risk",
    "effective_toml",
    "hedge_params",
    "load",
    "quote_params",
    "redact",
    "risk_limits",
    "to_toml",
]

OFF = "off"  # a risk limit switched off, explicitly
AUTO = "auto"  # a risk limit derived from the instrument and the config (the default)


# ---- errors ---------------------------------------------------------------------------------------
_NO_VALUE = object()


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
    "strategies": TradingConfigError,
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
    auto_recenter: bool = True  # recenter when the market moves out of the ladder (not when you scroll)
    refresh_hz: float = 25.0
    flash_ms: int = 300  # how long a changed ladder size stays highlighted (0: no flash)
    theme: str = "dark"  # dark, light, high-contrast or a user theme (~/.config/lobterm/themes/*.toml)
    confirm_above_qty: Decimal = Decimal("0.500")  # ask before sending more than this (0: never)
    ticket_band_bps: int = 200  # order ticket: refuse a price this far through the mid (0: no check)


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
}
_TAG = re.compile(r"[A-Za-z0-9_.:-]{1,32}")
# Caps on derived limits (an extreme but valid sim grid must not derive a limit RiskLimits refuses).
_MAX_NOTIONAL = MAX_UNITS * MAX_UNITS
_MAX_MONEY = Decimal(10) ** 29
_MAX_BAND_BPS = Decimal(1_000_000)


@dataclass(slots=True)
class Config:
    sim: SimConfig = field(default_factory=SimConfig)
    ui: UiConfig = field(default_factory=UiConfig)
    keys: dict[str, str] = field(default_factory=dict)
    mm: MarketMakerConfig = field(default_factory=MarketMakerConfig)
    risk: RiskConfig = field(default_factory=RiskConfig)
    hedge: HedgeConfig = field(default_factory=HedgeConfig)
    #: [markouts]: horizons (s), the adverse-selection horizon, the toxic threshold (bps), the baseline.
    markouts: MarkoutConfig = field(default_factory=MarkoutConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    feed: FeedConfig = field(default_factory=FeedConfig)
    recording: RecordingConfig = field(default_factory=RecordingConfig)
    #: Live venues ([venues.NAME], lobterm.venues.settings.VenueConfig); empty: the sim venue.
    venues: dict[str, VenueConfig] = field(default_factory=dict)
    #: [strategies.NAME]: user strategies, `class = "package.module:Class"` plus its parameters.
    strategies: dict[str, dict[str, Any]] = field(default_factory=dict)
    sessions_dir: Path = Path("sessions")
    sources: list[str] = field(default_factory=list)

    def __setattr__(self, name: str, value: Any) -> None:
        # `Config(hedge={...})` and `cfg.risk = {...}` read the dict as that section's TOML table.
        if name in _SECTIONS and isinstance(value, Mapping):
            value = _read_section(name, value, "(code)", None)
        object.__setattr__(self, name, value)


# ---- loading --------------------------------------------------------------------------------------
def default_paths() -> list[Path]:
    xdg = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return [Path(xdg) / "lobterm" / "config.toml", Path("lobterm.toml")]


def load(
    path: str | os.PathLike | None = None,
    *,
    use_defaults: bool = True,
    overrides: dict[str, dict[str, Any]] | None = None,
) -> Config:
    """The configuration from the default files (if `use_defaults`), then `path`, then `overrides`."""
    cfg = Config()
    paths = default_paths() if use_defaults else []
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise FileConfigError(str(p), "(file)", "no such file")
        paths.append(p)
    for p in paths:
        if not p.is_file():
            continue
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise FileConfigError(str(p), "(file)", f"not valid TOML: {exc}") from None
        except OSError as exc:
            raise FileConfigError(str(p), "(file)", f"cannot be read: {exc.strerror}") from None
        if _holds_secrets(data):
            _check_private(p)
        _apply(cfg, data, str(p))
        cfg.sources.append(str(p))
    env_dir = os.environ.get("LOBTERM_SESSIONS_DIR", "").strip()
    if env_dir:  # after the files, before the flags: a per-shell (or per-test-run) place for recordings
        cfg.sessions_dir = Path(env_dir)
    if overrides:
        _apply(cfg, overrides, "command line")
    for vc in cfg.venues.values():
        vc.with_env_secrets()
    _check_together(cfg, cfg.sources[-1] if cfg.sources else "defaults")
    return cfg


def _holds_secrets(data: dict[str, Any]) -> bool:
    venues = data.get("venues")
    if not isinstance(venues, dict):
        return False
    return any(isinstance(v, dict) and any(v.get(k) for k in SECRET_FIELDS) for v in venues.values())


def _check_private(path: Path) -> None:
    """A file holding API keys must be readable by its owner only: anyone else who can read it can trade."""
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise FileConfigError(
            str(path),
            "(file)",
            f"holds API keys but its mode is {mode:04o}: other users can read "
            f"it. Run `chmod 600 {path}` (or put the keys in LOBTERM_<VENUE>_API_KEY / "
            "LOBTERM_<VENUE>_SECRET instead)",
        )


_KNOWN_SECTIONS = (
    "sim, ui, keys, mm, risk, hedge, markouts, metrics, feed, recording, venues, strategies, sessions_dir"
)


def _apply(cfg: Config, data: Mapping[str, Any], where: str) -> None:
    for section, values in data.items():
        if section == "sessions_dir":
            if not isinstance(values, str) or not values.strip() or len(values) > 4096:
                raise _refuse(where, "sessions_dir", "must be a directory path", values)
            cfg.sessions_dir = Path(values)
            continue
        if section not in _AREA:
            raise ConfigError(where, str(section), f"unknown section (known: {_KNOWN_SECTIONS})")
        if not isinstance(values, dict):
            raise _refuse(where, section, "must be a [section]", values)
        if section == "sim":
            sim = replace(cfg.sim)  # the old one stays if the new one is refused
            _apply_dataclass(sim, values, where, "sim")
            try:
                sim.validate()
            except ParameterError as exc:
                name, value, rule = exc.name, exc.value, exc.rule
                if name == "start_price" and "start_price" not in values and "tick_size" in values:
                    # The grid changed under the start price set elsewhere: name the key this file set.
                    name, value = "tick_size", sim.tick_size
                    rule = f"sim.start_price {sim.start_price} {rule}"
                raise _refuse(where, f"sim.{name}", rule, value) from None
            cfg.sim = sim
        elif section == "ui":
            ui = replace(cfg.ui)
            _apply_dataclass(ui, values, where, "ui")
            if not ui.theme.strip():
                raise _refuse(where, "ui.theme", "must name a theme", ui.theme)
            cfg.ui = ui
        elif section in _SECTIONS:
            setattr(cfg, section, _read_section(section, values, where, getattr(cfg, section)))
        elif section == "markouts":
            cfg.markouts = _markouts_section(values, cfg.markouts, where)
        elif section == "recording":
            values = dict(values)
            if "sessions_dir" in values:
                d = values.pop("sessions_dir")
                if not isinstance(d, str) or not d.strip() or len(d) > 4096:
                    raise _refuse(where, "recording.sessions_dir", "must be a directory path", d)
                cfg.sessions_dir = Path(d)
            rec = replace(cfg.recording)
            _apply_dataclass(rec, values, where, "recording")
            if 0 < rec.rotate_every < 1:
                raise _refuse(
                    where, "recording.rotate_every", "must be 0 (off) or at least 1 second", rec.rotate_every
                )
            cfg.recording = rec
        elif section in ("metrics", "feed"):
            service = replace(getattr(cfg, section))
            _apply_dataclass(service, values, where, section)
            if not service.host.strip():
                raise _refuse(
                    where, f"{section}.host", 'must be an address such as "127.0.0.1"', service.host
                )
            setattr(cfg, section, service)
        elif section == "venues":
            for name, table in values.items():
                if not isinstance(table, dict):
                    raise _refuse(where, f"venues.{name}", "must be a [venues.NAME] section", table)
                try:
                    cfg.venues[name] = venue_from_dict(name, table, cfg.venues.get(name))
                except VenueConfigError as exc:
                    raise VenueSectionError(where, exc.key, exc.problem) from None
        elif section == "strategies":
            for name, table in values.items():
                if not isinstance(table, dict):
                    raise _refuse(where, f"strategies.{name}", "must be a [strategies.NAME] section", table)
                target = table.get("class")
                if not isinstance(target, str) or ":" not in target:
                    raise _refuse(where, f"strategies.{name}.class", 'must be "package.module:Class"', target)
                cfg.strategies[name] = {**cfg.strategies.get(name, {}), **table}
        elif section == "keys":
            for k, v in values.items():
                if not isinstance(v, str) or not v.strip() or len(v) > 64:
                    raise _refuse(where, f"keys.{k}", 'must be a key name such as "b" or "ctrl+x"', v)
                cfg.keys[k] = v.strip()


def _markouts_section(values: Mapping[str, Any], base: MarkoutConfig, where: str) -> MarkoutConfig:
    known = {f.name for f in fields(MarkoutConfig)}
    kw: dict[str, Any] = {k: getattr(base, k) for k in known}
    for key, raw in values.items():
        if key not in known:
            raise _refuse(where, f"markouts.{key}", f"unknown key (known: {', '.join(sorted(known))})")
        kw[key] = tuple(raw) if key == "horizons_s" and isinstance(raw, list) else raw
    if (
        "horizons_s" in values
        and "adverse_horizon_s" not in values
        and kw["adverse_horizon_s"] not in kw["horizons_s"]
    ):
        kw["adverse_horizon_s"] = (
            kw["horizons_s"][min(1, len(kw["horizons_s"]) - 1)] if kw["horizons_s"] else 0
        )
    try:
        return MarkoutConfig(**kw)
    except MarkoutError as exc:
        raise _refuse(where, f"markouts.{exc.what}", str(exc).split(": ", 1)[1], exc.value) from None
    except TypeError as exc:
        raise _refuse(where, "markouts", str(exc), dict(values)) from None


def _apply_dataclass(obj: Any, values: Mapping[str, Any], where: str, prefix: str) -> None:
    known = {f.name for f in fields(obj)}
    for key, raw in values.items():
        name = f"{prefix}.{key}"
        if key not in known:
            raise _refuse(where, name, f"unknown key (known: {', '.join(sorted(known))})")
        current = getattr(obj, key)
        try:
            value = _coerce(current, raw)
        except (TypeError, ValueError) as exc:
            raise _refuse(where, name, str(exc), raw) from None
        _check_bounds(name, value, raw, where)
        setattr(obj, key, value)


def _coerce(current: Any, raw: Any) -> Any:
    """`raw` (a TOML value) as the type of `current` (the default); TypeError/ValueError says why not."""
    if isinstance(current, bool):
        if not isinstance(raw, bool):
            raise TypeError("must be true or false")
        return raw
    if isinstance(current, Decimal):
        return _decimal(raw)
    if isinstance(current, int):
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise TypeError("must be a whole number")
        return raw
    if isinstance(current, float):
        if isinstance(raw, bool) or not isinstance(raw, (int, float)):
            raise TypeError("must be a number")
        if not math.isfinite(raw):
            raise ValueError("must be finite")
        return float(raw)
    if isinstance(current, str):
        if not isinstance(raw, str):
            raise TypeError("must be a string")
        if len(raw) > _MAX_STRING:
            raise ValueError(f"must be at most {_MAX_STRING} characters")
        return raw
    if isinstance(current, tuple):
        if not isinstance(raw, list) or not raw or len(raw) > 50:
            raise TypeError("must be a list of 1 to 50 values")
        return tuple(_decimal(x) for x in raw)
    raise TypeError(f"cannot set a {type(current).__name__}")


def _decimal(raw: Any) -> Decimal:
    if isinstance(raw, str) and len(raw) > 64:
        raise ValueError("must be a number of at most 64 characters")
    try:
        d = to_decimal(raw, what="value")
    except InstrumentError as exc:
        raise ValueError(exc.rule) from None
    if d and not -40 <= d.adjusted() <= 40:
        raise ValueError("must be a number of sensible size (between 1e-40 and 1e40)")
    return d


def _check_bounds(name: str, value: Any, raw: Any, where: str) -> None:
    bounds = _BOUNDS.get(name)
    if bounds is None:
        return
    lo, hi = bounds
    for v in value if isinstance(value, tuple) else (value,):
        if not lo <= v <= hi:
            raise _refuse(where, name, f"must be in {lo}..{hi}", raw)


# ---- the typed trading sections: reading ----------------------------------------------------------
def _read_section(section: str, table: Mapping[str, Any], where: str, base: Any) -> Any:
    """The typed [mm], [risk] or [hedge] section from a TOML table, over `base`'s keys (later files
    override earlier ones key by key). Raises the section's ConfigError naming `section.key`."""
    cls = _SECTIONS[section]
    known = [f.name for f in fields(cls)]
    written = {} if base is None else {k: getattr(base, k) for k in base.keys()}
    for key, raw in table.items():
        if key not in known:
            raise _refuse(where, f"{section}.{key}", f"unknown key (known: {', '.join(sorted(known))})")
        written[key] = raw
    reader = {"mm": _mm_section, "risk": _risk_section, "hedge": _hedge_section}[section]
    out = reader(written, where)
    out._with_set(frozenset(written))
    return out


def _mm_section(written: dict[str, Any], where: str) -> MarketMakerConfig:
    values: dict[str, Any] = {}
    defaults = MarketMakerConfig()
    for key, raw in written.items():
        current = getattr(defaults, key)
        try:
            if isinstance(current, tuple):  # sizes: lots per level
                if isinstance(raw, tuple):
                    raw = list(raw)
                if not isinstance(raw, list) or len(raw) > 50:
                    raise TypeError("must be a list of at most 50 sizes in lots")
                values[key] = tuple(raw)
            else:
                values[key] = _coerce(current, raw)
        except (TypeError, ValueError) as exc:
            raise _refuse(where, f"mm.{key}", str(exc), raw) from None
    section = MarketMakerConfig(**values)
    try:
        section.check()
    except QuoteParamError as exc:
        raise _refuse(where, f"mm.{exc.name}", exc.rule, exc.value) from None
    return section


def _hedge_section(written: dict[str, Any], where: str) -> HedgeConfig:
    values: dict[str, Any] = {}
    for key, raw in written.items():
        if isinstance(raw, float) and not math.isfinite(raw):
            raise _refuse(where, f"hedge.{key}", "must be finite", raw)
        if key in ("max_slippage_bps", "max_order_lots") and raw in (OFF, None):
            raw = None  # market orders / no cap per hedge order
        elif key == "enabled" and not isinstance(raw, bool):
            raise _refuse(where, "hedge.enabled", "must be true or false", raw)
        values[key] = raw
    enabled = values.pop("enabled", bool(values))
    try:
        params = validate_params(HedgeParams(**values))
    except HedgeParamError as exc:
        raise _refuse(where, f"hedge.{exc.name}", exc.rule, exc.value) from None
    return HedgeConfig(**{f.name: getattr(params, f.name) for f in fields(HedgeParams)}, enabled=enabled)


def _risk_section(written: dict[str, Any], where: str) -> RiskConfig:
    values: dict[str, Any] = {}
    for key, raw in written.items():
        kind, lo, hi, may_off, may_auto = _RISK_KEYS[key]
        name = f"risk.{key}"
        if isinstance(raw, str) and raw.strip().lower() in (OFF, AUTO):
            word = raw.strip().lower()
            if (word == OFF and not may_off) or (word == AUTO and not may_auto):
                raise _refuse(where, name, f'cannot be "{word}"', raw)
            values[key] = word
            continue
        if kind == "tags":
            if key == "duplicate_tags" and raw == "all":
                values[key] = "all"
                continue
            if isinstance(raw, tuple):
                raw = list(raw)
            if not isinstance(raw, list) or len(raw) > 32 or not all(isinstance(t, str) for t in raw):
                raise _refuse(where, name, 'must be a list of tag names such as ["manual"]', raw)
            bad = next((t for t in raw if not _TAG.fullmatch(t)), None)
            if bad is not None:
                raise _refuse(where, name, f"{bad!r} is not a tag name (letters, digits, _ . : -)", raw)
            values[key] = tuple(raw)
            continue
        words = (', "off"' if may_off else "") + (' or "auto"' if may_auto else "")
        if kind == "int":
            if isinstance(raw, bool) or not isinstance(raw, int) or not lo <= raw <= hi:
                raise _refuse(where, name, f"must be a whole number in {lo}..{hi}{words}", raw)
            values[key] = raw
            continue
        low = "above 0" if kind == "qty" else f"{lo:g}"
        rule = f"must be a number in {low}..{hi:g}{words}"
        try:
            d = money(key, raw) if kind == "money" else _decimal(raw)
        except (RiskLimitError, ValueError):
            raise _refuse(where, name, rule, raw) from None
        if not lo <= d <= hi or (kind == "qty" and d == 0):
            raise _refuse(where, name, rule, raw)
        values[key] = d
    return RiskConfig(**values)


_SECTIONS: dict[str, type] = {"mm": MarketMakerConfig, "risk": RiskConfig, "hedge": HedgeConfig}


def _check_together(cfg: Config, where: str) -> None:
    """What involves several sections: the derived risk limits on the sim's grid (explicit quantities
    must be on it when the sim is the venue)."""
    if cfg.venues:
        return  # the live instruments are only known once their markets are loaded
    try:
        risk_limits(cfg)
    except ParameterError as exc:
        raise _refuse(where, f"risk.{exc.name}", exc.rule, exc.value) from None


# ---- the trading objects --------------------------------------------------------------------------
def quote_params(cfg: Config) -> QuoteParams:
    """The market maker's parameters from [mm]."""
    mm = cfg.mm
    return QuoteParams(**{f.name: getattr(mm, f.name) for f in fields(QuoteParams)})


def hedge_params(cfg: Config, *, policy: str | None = None) -> HedgeParams:
    """The hedger's parameters from [hedge] (`policy` overrides the configured one, as `--hedge` does)."""
    h = cfg.hedge
    p = HedgeParams(**{f.name: getattr(h, f.name) for f in fields(HedgeParams)})
    return validate_params(p if policy is None else replace(p, policy=policy))


@dataclass(frozen=True, slots=True)
class EffectiveLimit:
    """One risk limit as it applies: `value` (user units; None when off), `how` it came about."""

    value: Any
    how: str  # "set", "off" or "auto: <the rule>"


def _lots_up(inst: Instrument, qty: Decimal) -> int:
    """A derived quantity in lots of `inst`, rounded up onto its grid (one lot to MAX_UNITS)."""
    return max(1, min(MAX_UNITS, math.ceil(Fraction(qty) / Fraction(inst.lot_size))))


def _whole(amount: Decimal) -> Decimal:
    """A derived money limit shown (and applied) in whole units of the quote currency."""
    return Decimal(int(amount)) if amount >= 1 else amount


def _derived_sizes(cfg: Config, inst: Instrument) -> tuple[int, int]:
    """(max order, max position) in lots as derived (see `effective_risk`); the position from the
    order size in force (set or derived)."""
    levels = cfg.mm.level_sizes()
    basis = max(max(cfg.ui.qty_presets), cfg.ui.default_qty, max(levels, default=1) * inst.lot_size)
    derived_order = min(MAX_UNITS, 2 * _lots_up(inst, basis))
    set_order = cfg.risk.max_order_qty
    order_lots = _lots_up(inst, set_order) if isinstance(set_order, Decimal) else derived_order
    mm_reach = 2 * (cfg.mm.max_position_lots + sum(levels))
    return derived_order, min(MAX_UNITS, max(2 * order_lots, mm_reach))


def _money_basis(cfg: Config, inst: Instrument) -> tuple[int, int]:
    """The order and position sizes (lots) the money limits derive from: the ones set, else the derived
    ones (also where a size limit is off: the desk still trades those sizes)."""
    order_lots, position_lots = _derived_sizes(cfg, inst)
    r = cfg.risk
    if isinstance(r.max_order_qty, Decimal):
        order_lots = _lots_up(inst, r.max_order_qty)
    if isinstance(r.max_position_qty, Decimal):
        position_lots = _lots_up(inst, r.max_position_qty)
    return order_lots, position_lots


def effective_risk(cfg: Config, instrument: Instrument | None = None) -> dict[str, EffectiveLimit]:
    """Every [risk] limit as it applies to `instrument` (default: the sim's): the value set, "off", or
    the default derived from the instrument and the config. The rules (for the default config, a
    BTC/USDT-like sim at 65000, the figures in brackets):

    - max_order_qty: 2 x the largest order the config sends: the largest of `ui.qty_presets`,
      `ui.default_qty` and the market maker's largest level (the 1.000 BTC preset: [2.000 BTC]).
    - max_position_qty: 2 x max_order_qty, at least 2 x (the market maker's max position plus its
      whole ladder) [4.000 BTC].
    - max_order_value: 1.25 x max_order_qty at the reference price [162500 USDT].
    - daily_loss_limit: 2% of max_position_qty at the reference price [5200 USDT].
    - price_band_bps: 500, at least 2 x `ui.ticket_band_bps` and 2 x the market maker's `spread_bps`
      [500 bps].
    - messages_per_s: 40 per quote level of the market maker, at least 50 [200/s]; burst: 2 seconds'
      worth [400]. A runaway loop sends thousands a second; the market maker peaks at 103-159/s.

    The reference price is `sim.start_price` on the sim. For a live market (its price is not known
    when the limits are built) the two money limits are the value of that many lots at the market's
    first valid mid, frozen for the session (`RiskLimits.max_order_value_lots`, `daily_loss_lots`).
    """
    r = cfg.risk
    inst = instrument or cfg.sim.instrument()
    on_sim = not cfg.venues and (
        instrument is None or (instrument.venue, instrument.symbol) == (cfg.sim.venue, cfg.sim.symbol)
    )
    mm = cfg.mm
    out: dict[str, EffectiveLimit] = {}

    def pick(key: str, derived: Any, how: str) -> Any:
        v = getattr(r, key)
        if v == OFF:
            out[key] = EffectiveLimit(None, OFF)
        elif v == AUTO:
            out[key] = EffectiveLimit(derived, f"{AUTO}: {how}")
        else:
            out[key] = EffectiveLimit(v, "set")
        return out[key].value

    derived_order_lots, derived_position_lots = _derived_sizes(cfg, inst)
    pick(
        "max_order_qty",
        inst.size(derived_order_lots),
        "2 x the largest of ui.qty_presets, ui.default_qty and the market maker's level size",
    )
    pick(
        "max_position_qty",
        inst.size(derived_position_lots),
        "2 x max_order_qty, at least 2 x (the market maker's max position + its ladder)",
    )
    order_lots, position_lots = _money_basis(cfg, inst)
    if on_sim:
        ref = inst.ticks_nearest(cfg.sim.start_price)
        where = f"at {cfg.sim.start_price} (sim.start_price)"
        value = _whole(inst.notional(min(_MAX_NOTIONAL, order_lots * ref * 5 // 4)))
        pick("max_order_value", value, f"1.25 x max_order_qty {where}")
        loss = min(_MAX_MONEY, _whole(inst.notional(position_lots * ref) / 50))
        pick("daily_loss_limit", loss, f"2% of max_position_qty {where}")
    else:
        pick("max_order_value", AUTO, "1.25 x max_order_qty at the first mid of each market")
        pick("daily_loss_limit", AUTO, "2% of max_position_qty at the first mid")
    band = max(Decimal(500), 2 * Decimal(cfg.ui.ticket_band_bps), 2 * Decimal(repr(float(mm.spread_bps))))
    band = min(band, _MAX_BAND_BPS)
    pick(
        "price_band_bps", band.quantize(Decimal(1)), "500, at least 2 x ui.ticket_band_bps and mm.spread_bps"
    )
    # Measured: the default market maker peaks at 103 messages/s on the sim, 159/s with position skew.
    rate = pick("messages_per_s", Decimal(max(50, 40 * mm.levels)), "40 per market-maker level, at least 50")
    pick(
        "burst",
        min(1_000_000, max(1, math.ceil(2 * rate))) if rate is not None else 1,
        "2 s of messages_per_s",
    )
    for key in ("duplicate_window_ms", "max_book_age_ms"):
        v = getattr(r, key)
        out[key] = EffectiveLimit(None, OFF) if v == OFF else EffectiveLimit(v, "set")
    tags = r.duplicate_tags
    out["duplicate_tags"] = EffectiveLimit(None if tags == "all" else tags, "set")
    out["stale_book_tags"] = EffectiveLimit(r.stale_book_tags, "set")
    return out


def risk_limits(cfg: Config, instrument: Instrument | None = None) -> RiskLimits:
    """The effective risk limits in units of `instrument` (default: the sim's): every limit on unless
    [risk] says "off" (see `effective_risk` for how each default is derived)."""
    inst = instrument or cfg.sim.instrument()
    eff = effective_risk(cfg, instrument)

    def value(key: str) -> Any:
        return eff[key].value

    def lots(key: str) -> int | None:
        v = value(key)
        if v is None:
            return None
        return _lots_up(inst, v) if eff[key].how.startswith(AUTO) else _limit_lots(inst, key, v)

    order_lots = lots("max_order_qty")
    position_lots = lots("max_position_qty")
    basis_order, basis_position = _money_basis(cfg, inst)
    notional = value_lots = None
    if value("max_order_value") == AUTO:
        value_lots = min(MAX_UNITS, math.ceil(basis_order * Fraction(5, 4)))
    elif eff["max_order_value"].how.startswith(AUTO):  # derived on the sim: exact in tick*lots, capped
        ref = inst.ticks_nearest(cfg.sim.start_price)
        notional = min(_MAX_NOTIONAL, basis_order * ref * 5 // 4)
    elif value("max_order_value") is not None:
        notional = RiskLimits.in_units(inst, max_order_value=value("max_order_value")).max_order_notional
    loss = loss_lots = None
    if value("daily_loss_limit") == AUTO:
        loss_lots = max(1, basis_position // 50)
    else:
        loss = value("daily_loss_limit")
    band = value("price_band_bps")
    rate = value("messages_per_s")
    return RiskLimits(
        max_order_lots=order_lots,
        max_order_notional=notional,
        max_position_lots=position_lots,
        price_band_bps=None if band is None else (int(band) if band == band.to_integral_value() else band),
        messages_per_s=None if rate is None else float(rate),
        burst=None if rate is None else value("burst"),
        duplicate_window_ms=value("duplicate_window_ms"),
        duplicate_tags=None if value("duplicate_tags") is None else frozenset(value("duplicate_tags")),
        daily_loss_limit=loss,
        max_book_age_ms=value("max_book_age_ms"),
        stale_book_tags=frozenset(value("stale_book_tags")),
        max_order_value_lots=value_lots,
        daily_loss_lots=loss_lots,
    )


def _limit_lots(inst: Instrument, key: str, qty: Decimal) -> int:
    try:
        return inst.lots(qty)
    except InstrumentError as exc:
        raise RiskLimitError(key, qty, exc.rule) from None


# ---- printing: `lobterm config` -------------------------------------------------------------------
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
        elif isinstance(v, Decimal) and key in ("price_band_bps", "messages_per_s") and v == int(v):
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
    tree = {f.name: _plain(getattr(cfg, f.name)) for f in fields(cfg) if f.name not in _NOT_CONFIG}
    for _name, table in tree.get("venues", {}).items():
        table.pop("name", None)
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

"""Configuration: TOML files, then command-line flags, validated, with friendly errors.

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

    [keys]                      # binding id = key(s); see `lobterm keys` or the help screen
    buy = "b"
    sell = "s"

Unknown sections or keys are errors (a typo should not silently do nothing).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields
from decimal import Decimal
from pathlib import Path
from typing import Any

from lobterm.engine.instrument import InstrumentError, to_decimal
from lobterm.venues.settings import SECRET_FIELDS, VenueConfig, VenueConfigError, venue_from_dict
from lobterm.venues.sim import SimConfig


class ConfigError(ValueError):
    """A configuration problem, naming the file, the key and what is wrong."""

    def __init__(self, where: str, key: str, problem: str) -> None:
        self.where = where
        self.key = key
        self.problem = problem
        super().__init__(f"{where}: {key}: {problem}")


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
    confirm_above_qty: Decimal = Decimal(
        "0.500"
    )  # order ticket: ask before sending more than this (0: never)
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


@dataclass(slots=True)
class Config:
    sim: SimConfig = field(default_factory=SimConfig)
    ui: UiConfig = field(default_factory=UiConfig)
    keys: dict[str, str] = field(default_factory=dict)
    #: Market maker parameters (lobterm.trading.market_maker.QuoteParams fields), validated at load.
    mm: dict[str, Any] = field(default_factory=dict)
    #: Risk limits: max_order_qty, max_order_value, max_position_qty (base/quote units, on the grid),
    #: and RiskLimits fields (price_band_bps, messages_per_s, daily_loss_limit in quote currency, ...).
    risk: dict[str, Any] = field(default_factory=dict)
    #: Hedger parameters (lobterm.trading.hedger.HedgeParams fields); empty: no hedger.
    hedge: dict[str, Any] = field(default_factory=dict)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    feed: FeedConfig = field(default_factory=FeedConfig)
    recording: RecordingConfig = field(default_factory=RecordingConfig)
    #: Live venues ([venues.NAME], lobterm.venues.settings.VenueConfig); empty: the sim venue.
    venues: dict[str, VenueConfig] = field(default_factory=dict)
    sessions_dir: Path = Path("sessions")
    sources: list[str] = field(default_factory=list)


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
            raise ConfigError(str(p), "(file)", "no such file")
        paths.append(p)
    for p in paths:
        if not p.is_file():
            continue
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(str(p), "(file)", f"not valid TOML: {exc}") from None
        except OSError as exc:
            raise ConfigError(str(p), "(file)", f"cannot be read: {exc.strerror}") from None
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
        raise ConfigError(
            str(path),
            "(file)",
            f"holds API keys but its mode is {mode:04o}: other users can read "
            f"it. Run `chmod 600 {path}` (or put the keys in LOBTERM_<VENUE>_API_KEY / "
            "LOBTERM_<VENUE>_SECRET instead)",
        )


def _apply(cfg: Config, data: dict[str, Any], where: str) -> None:
    for section, values in data.items():
        if section == "sessions_dir":
            cfg.sessions_dir = Path(str(values))
            continue
        if not isinstance(values, dict):
            raise ConfigError(where, section, "must be a [section]")
        if section == "sim":
            _apply_dataclass(cfg.sim, values, where, "sim")
            try:
                cfg.sim.instrument()  # validates the grid
                cfg.sim.instrument().ticks(cfg.sim.start_price)
            except InstrumentError as exc:
                raise ConfigError(where, "sim", str(exc)) from None
            if not cfg.sim.rate_hz > 0 or cfg.sim.rate_hz > 1000:
                raise ConfigError(where, "sim.rate_hz", f"{cfg.sim.rate_hz} must be in (0, 1000]")
        elif section == "ui":
            _apply_dataclass(cfg.ui, values, where, "ui")
            for key in ("ticket_band_bps", "confirm_above_qty"):
                if getattr(cfg.ui, key) < 0:
                    raise ConfigError(where, f"ui.{key}", f"{getattr(cfg.ui, key)} must not be negative")
        elif section in ("mm", "risk", "hedge"):
            merged = {**getattr(cfg, section), **values}
            _validate_trading(section, merged, where, cfg)
            setattr(cfg, section, merged)
        elif section == "recording":
            values = dict(values)
            if "sessions_dir" in values:
                d = values.pop("sessions_dir")
                if not isinstance(d, str) or not d.strip():
                    raise ConfigError(where, "recording.sessions_dir", f"{d!r} must be a directory path")
                cfg.sessions_dir = Path(d)
            _apply_dataclass(cfg.recording, values, where, "recording")
            r = cfg.recording
            if not 0.1 <= r.checkpoint_every_s <= 86_400:
                raise ConfigError(
                    where, "recording.checkpoint_every_s", f"{r.checkpoint_every_s} must be in 0.1..86400"
                )
            if not 5 <= r.flush_interval_ms <= 10_000:
                raise ConfigError(
                    where, "recording.flush_interval_ms", f"{r.flush_interval_ms} must be in 5..10000"
                )
            if not 100 <= r.flush_events <= 10_000_000:
                raise ConfigError(
                    where, "recording.flush_events", f"{r.flush_events} must be in 100..10000000"
                )
            if not (r.rotate_mb == 0 or 1 <= r.rotate_mb <= 1_048_576):
                raise ConfigError(
                    where, "recording.rotate_mb", f"{r.rotate_mb} must be 0 (off) or 1..1048576"
                )
            if not (r.rotate_every == 0 or 1 <= r.rotate_every <= 31_536_000):
                raise ConfigError(
                    where,
                    "recording.rotate_every",
                    f"{r.rotate_every} must be 0 (off) or 1..31536000 seconds",
                )
            if not (r.max_total_mb == 0 or 1 <= r.max_total_mb <= 1_073_741_824):
                raise ConfigError(
                    where, "recording.max_total_mb", f"{r.max_total_mb} must be 0 (no limit) or 1..1073741824"
                )
        elif section in ("metrics", "feed"):
            _apply_dataclass(getattr(cfg, section), values, where, section)
            _validate_service(getattr(cfg, section), where, section)
        elif section == "venues":
            for name, table in values.items():
                if not isinstance(table, dict):
                    raise ConfigError(where, f"venues.{name}", "must be a [venues.NAME] section")
                try:
                    cfg.venues[name] = venue_from_dict(name, table, cfg.venues.get(name))
                except VenueConfigError as exc:
                    raise ConfigError(where, exc.key, exc.problem) from None
        elif section == "keys":
            for k, v in values.items():
                if not isinstance(v, str) or not v.strip():
                    raise ConfigError(where, f"keys.{k}", f'{v!r} must be a key name such as "b" or "ctrl+x"')
                cfg.keys[k] = v.strip()
        else:
            raise ConfigError(
                where,
                section,
                "unknown section (known: sim, ui, keys, mm, risk, hedge, metrics, feed, recording, venues, sessions_dir)",
            )


def _apply_dataclass(obj: Any, values: dict[str, Any], where: str, prefix: str) -> None:
    known = {f.name: f for f in fields(obj)}
    for key, raw in values.items():
        f = known.get(key)
        if f is None:
            raise ConfigError(where, f"{prefix}.{key}", f"unknown key (known: {', '.join(sorted(known))})")
        current = getattr(obj, key)
        try:
            value = _coerce(current, raw)
        except (TypeError, ValueError, InstrumentError) as exc:
            raise ConfigError(where, f"{prefix}.{key}", f"{raw!r}: {exc}") from None
        setattr(obj, key, value)


def _coerce(current: Any, raw: Any) -> Any:
    if isinstance(current, bool):
        if not isinstance(raw, bool):
            raise TypeError("must be true or false")
        return raw
    if isinstance(current, Decimal):
        return to_decimal(raw, what="value")
    if isinstance(current, int):
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise TypeError("must be a whole number")
        return raw
    if isinstance(current, float):
        if isinstance(raw, bool) or not isinstance(raw, (int, float)):
            raise TypeError("must be a number")
        return float(raw)
    if isinstance(current, str):
        if not isinstance(raw, str):
            raise TypeError("must be a string")
        return raw
    if isinstance(current, tuple):
        if not isinstance(raw, list) or not raw:
            raise TypeError("must be a non-empty list")
        return tuple(to_decimal(x, what="value") for x in raw)
    raise TypeError(f"cannot set a {type(current).__name__}")


def _validate_service(obj: MetricsConfig | FeedConfig, where: str, section: str) -> None:
    if not obj.host.strip():
        raise ConfigError(where, f"{section}.host", 'must be an address such as "127.0.0.1"')
    if not 0 <= obj.port <= 65535:
        raise ConfigError(where, f"{section}.port", f"{obj.port} must be in 0..65535 (0: any free port)")
    if isinstance(obj, MetricsConfig) and not 0.05 <= obj.interval_s <= 3600:
        raise ConfigError(where, "metrics.interval_s", f"{obj.interval_s} must be in 0.05..3600")
    if isinstance(obj, FeedConfig):
        for key, lo, hi in (("top_n", 1, 500), ("interval_ms", 5, 60_000), ("queue_size", 8, 1_000_000)):
            if not lo <= getattr(obj, key) <= hi:
                raise ConfigError(where, f"feed.{key}", f"{getattr(obj, key)} must be in {lo}..{hi}")


def quote_params(cfg: Config):
    from lobterm.trading.market_maker import QuoteParams

    p = QuoteParams(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in cfg.mm.items()})
    p.validate()
    return p


def hedge_params(cfg: Config):
    from lobterm.trading.hedger import HedgeParams, validate_params

    return validate_params(HedgeParams(**cfg.hedge))


def risk_limits(cfg: Config, instrument=None):
    """Risk limits in units of `instrument` (default: the sim's)."""
    from lobterm.trading.risk import RiskLimits

    values = dict(cfg.risk)
    for key in ("price_band_bps", "daily_loss_limit"):
        if key in values and values[key] is not None and not isinstance(values[key], int):
            values[key] = to_decimal(values[key], what=key)
    for key in ("duplicate_tags", "stale_book_tags"):
        if key in values:
            values[key] = frozenset(values[key])
    return RiskLimits.in_units(instrument or cfg.sim.instrument(), **values)


def _validate_trading(section: str, values: dict[str, Any], where: str, cfg: Config) -> None:
    """Build the section's parameter object once, so a bad key or value fails at load, naming the key."""
    from dataclasses import replace

    probe = replace(cfg, **{section: values})
    build = {"mm": quote_params, "risk": risk_limits, "hedge": hedge_params}[section]
    try:
        build(probe)
    except TypeError as exc:  # an unknown keyword
        raise ConfigError(where, section, str(exc).replace("__init__() ", "")) from None
    except (ValueError, InstrumentError) as exc:  # the parameter classes' typed errors are ValueErrors
        raise ConfigError(where, section, str(exc)) from None

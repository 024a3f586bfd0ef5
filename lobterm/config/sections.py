"""Reading one section's table: values coerced to the field's type and range-checked, with the
`section.key` named in a refusal ([sim] venues, [backtest], [markouts], [ui] columns, [mm] [hedge] [risk]);
and `Config`, the whole configuration (`Config(mm={...})` reads the dict as that section's table)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from lobterm.config.model import (
    _BOUNDS,
    _MAX_STRING,
    _RISK_KEYS,
    _TAG,
    AUTO,
    OFF,
    FeedConfig,
    HedgeConfig,
    MarketMakerConfig,
    MetricsConfig,
    RecordingConfig,
    RiskConfig,
    UiConfig,
    _refuse,
    default_sessions_dir,
)
from lobterm.engine.errors import ParameterError
from lobterm.engine.instrument import InstrumentError, to_decimal
from lobterm.trading.hedger import HedgeParamError, HedgeParams, validate_params
from lobterm.trading.markouts import MarkoutConfig, MarkoutError
from lobterm.trading.quoting import QuoteParamError
from lobterm.trading.risk import RiskLimitError, money
from lobterm.venues.perp import PerpConfig
from lobterm.venues.settings import VenueConfig
from lobterm.venues.sim import PROFILES, SimConfig
from lobterm.venues.simgroup import GroupConfig

VENUE_KINDS = ("ccxt", "sim")
#: [venues.NAME] keys of a sim venue besides [sim]'s (SimConfig's fields): (lowest, highest).
_SIM_VENUE_KEYS: dict[str, tuple[float, float]] = {"lag_ms": (0, 60_000), "latency_ms": (0, 10_000)}
ROLES = ("quote", "hedge")


@dataclass(frozen=True, slots=True)
class SimVenueSpec:
    """One sim venue of [venues.NAME] kind = "sim": its SimConfig (over [sim]), role, lag and latency."""

    name: str
    role: str
    sim: SimConfig
    lag_ms: float = 0.0
    latency_ms: float = 0.0


def _simgroup_section(values: Mapping[str, Any], base: GroupConfig, where: str) -> GroupConfig:
    out = dict(correlation=base.correlation, seed=base.seed, basis_halflife_s=base.basis_halflife_s)
    bounds = {"correlation": (0.0, 1.0), "seed": (0, 2**62), "basis_halflife_s": (0.01, 86_400.0)}
    for key, raw in values.items():
        name = f"simgroup.{key}"
        if key not in out:
            raise _refuse(where, name, f"unknown key (known: {', '.join(sorted(out))})")
        try:
            v = _coerce(out[key], raw)
        except (TypeError, ValueError) as exc:
            raise _refuse(where, name, str(exc), raw) from None
        lo, hi = bounds[key]
        if not lo <= v <= hi:
            raise _refuse(where, name, f"must be in {lo:g}..{hi:g}", raw)
        out[key] = v
    return GroupConfig(**out)  # type: ignore[arg-type]


def sim_venue_specs(cfg: Config, where: str = "config") -> list[SimVenueSpec]:
    """The sim venues of [venues.NAME] kind = "sim", in the order written: each one's SimConfig is
    [sim] with `venue = NAME`, then its `profile`, then its other [sim] keys (seed by default derived from
    [simgroup] seed and its position). Raises the ConfigError naming `venues.NAME.key`."""
    specs: list[SimVenueSpec] = []
    for i, (name, table) in enumerate(cfg.sim_venues.items()):
        prefix = f"venues.{name}"
        values = {k: v for k, v in table.items() if k not in ("kind", "role", *_SIM_VENUE_KEYS)}
        sim = replace(cfg.sim, venue=name, seed=(cfg.simgroup.seed * 7919 + 104729 * (i + 1)) % 2**62)
        if "profile" in values:
            try:
                sim = sim.with_profile(values["profile"])
            except (ParameterError, TypeError):
                raise _refuse(
                    where, f"{prefix}.profile", f"must be one of {', '.join(PROFILES)}", values["profile"]
                ) from None
        if "venue" in values:
            raise _refuse(where, f"{prefix}.venue", "is the section's name: rename the section")
        _apply_dataclass(sim, values, where, prefix)
        try:
            sim.validate()
        except ParameterError as exc:
            raise _refuse(where, f"{prefix}.{exc.name}", exc.rule, exc.value) from None
        role = table.get("role", "quote")
        if role not in ROLES:
            raise _refuse(where, f"{prefix}.role", f"must be one of {', '.join(ROLES)}", role)
        extra: dict[str, float] = {}
        for key, (lo, hi) in _SIM_VENUE_KEYS.items():
            raw = table.get(key, 0)
            if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not lo <= raw <= hi:
                raise _refuse(where, f"{prefix}.{key}", f"must be a number in {lo:g}..{hi:g}", raw)
            extra[key] = float(raw)
        if specs and sim.rate_hz != specs[0].sim.rate_hz:
            raise _refuse(
                where,
                f"{prefix}.rate_hz",
                f"must equal venues.{specs[0].name}.rate_hz ({specs[0].sim.rate_hz:g}): sim venues step "
                "together",
                sim.rate_hz,
            )
        specs.append(SimVenueSpec(name, role, sim, **extra))
    if specs and cfg.venues:
        raise _refuse(
            where,
            f"venues.{specs[0].name}.kind",
            "sim venues and live venues cannot run together (yet)",
            "sim",
        )
    return specs


def _backtest_section(values: Mapping[str, Any], base: dict[str, str], where: str) -> dict[str, str]:
    """[backtest] queue / latency: the queue model is checked here; the latency spec when a backtest
    command reads it (lobterm/backtest/models.py; the config must not import the backtests)."""
    from lobterm.trading.paper import PaperConfigError, parse_queue_model

    out = dict(base)
    for key, raw in values.items():
        if key not in ("queue", "latency"):
            raise _refuse(where, f"backtest.{key}", "unknown key (known: latency, queue)")
        text = str(raw) if isinstance(raw, (int, float)) and not isinstance(raw, bool) else raw
        if not isinstance(text, str) or not text.strip():
            raise _refuse(where, f"backtest.{key}", "must be a text such as power:2 or new=5,cancel=3", raw)
        if key == "queue":
            try:
                parse_queue_model(text)
            except PaperConfigError as exc:
                raise _refuse(where, "backtest.queue", exc.rule, raw) from None
        out[key] = text
    return out


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


#: The ladder's optional columns (lobterm/widgets/ladder_model.py OPTIONAL_COLUMNS) and side-panel modes.
LADDER_OPTIONAL_COLUMNS = ("cum", "pnl")
SIDE_PANELS = ("auto", "shown", "hidden")


def _ladder_columns(raw: object, where: str) -> tuple[str, ...]:
    """`[ui] ladder_columns`: a list of optional column names, each once."""
    known = ", ".join(LADDER_OPTIONAL_COLUMNS)
    if not isinstance(raw, list) or len(raw) > len(LADDER_OPTIONAL_COLUMNS):
        raise _refuse(where, "ui.ladder_columns", f"must be a list of optional columns ({known})", raw)
    for name in raw:
        if name not in LADDER_OPTIONAL_COLUMNS:
            raise _refuse(where, "ui.ladder_columns", f"unknown column (optional columns: {known})", name)
    if len(set(raw)) != len(raw):
        raise _refuse(where, "ui.ladder_columns", "names a column twice", raw)
    return tuple(raw)


TICKS_PER_ROW_MAX = 1000  # the zoom keys' coarsest step (ladder_model.ZOOMS)


def _ticks_per_row(raw: object, where: str) -> int | str:
    """`[ui] ticks_per_row`: "auto" or a whole number of ticks in 1..TICKS_PER_ROW_MAX."""
    if raw == "auto" or (type(raw) is int and 1 <= raw <= TICKS_PER_ROW_MAX):
        return raw
    raise _refuse(
        where, "ui.ticks_per_row", f'must be "auto" or a whole number in 1..{TICKS_PER_ROW_MAX}', raw
    )


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


def mm_from_table(table: dict[str, Any], where: str) -> MarketMakerConfig:
    """An [mm] table (from a file, or a session header) as the validated section; ConfigError naming the
    key otherwise."""
    return _mm_section(table, where)


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


@dataclass(slots=True)
class Config:
    sim: SimConfig = field(default_factory=SimConfig)
    #: [perp]: the sim perpetual's terms (leverage, maintenance rate, collateral, funding), used when
    #: `[sim] market = "perp"`.
    perp: PerpConfig = field(default_factory=PerpConfig)
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
    #: Sim venues ([venues.NAME] with kind = "sim"): each table as written, over [sim]; see
    #: `sim_venue_specs` (several sim venues on one shared fair price, lobterm/venues/simgroup.py).
    sim_venues: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: [simgroup]: the sim venues' shared fair price (correlation, seed, basis half-life).
    simgroup: GroupConfig = field(default_factory=GroupConfig)
    #: [strategies.NAME]: user strategies, `class = "package.module:Class"` plus its parameters.
    strategies: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: [backtest]: the fill models of `lobterm backtest` / `fidelity` / `calibrate` (queue = "power:2",
    #: latency = "new=5,cancel=3" or ms; lobterm/backtest/models.py); the command line's flags win.
    backtest: dict[str, str] = field(default_factory=dict)
    sessions_dir: Path = field(default_factory=default_sessions_dir)
    sources: list[str] = field(default_factory=list)

    def __setattr__(self, name: str, value: Any) -> None:
        # `Config(hedge={...})` and `cfg.risk = {...}` read the dict as that section's TOML table.
        if name in _SECTIONS and isinstance(value, Mapping):
            value = _read_section(name, value, "(code)", None)
        object.__setattr__(self, name, value)

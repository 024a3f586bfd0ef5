"""Loading: the files looked up in order (`load`), the shipped profiles, the private-file check, and
`_apply`, which hands each table of a file to its section's reader (lobterm/config/sections.py)."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from lobterm.config.limits import risk_limits
from lobterm.config.model import (
    _AREA,
    ConfigError,
    FileConfigError,
    VenueSectionError,
    _refuse,
)
from lobterm.config.sections import (
    _SECTIONS,
    SIDE_PANELS,
    VENUE_KINDS,
    Config,
    _apply_dataclass,
    _backtest_section,
    _ladder_columns,
    _markouts_section,
    _read_section,
    _simgroup_section,
    _ticks_per_row,
    sim_venue_specs,
)
from lobterm.engine.errors import ParameterError
from lobterm.venues.settings import SECRET_FIELDS, VenueConfigError, venue_from_dict
from lobterm.venues.sim import PROFILES


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
        if not p.is_file() and shipped_profile(str(path)) is not None:
            p = shipped_profile(str(path))  # type: ignore[assignment]
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


PROFILES_DIR = Path(__file__).parent.parent / "profiles"


def shipped_profile(name: str) -> Path | None:
    """The config file shipped with lobterm under `name` (`lobterm --config demo-xvenue`), or None."""
    if not name.replace("-", "").replace("_", "").isalnum():
        return None
    p = PROFILES_DIR / f"{name}.toml"
    return p if p.is_file() else None


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
    "sim, perp, ui, keys, mm, risk, hedge, markouts, metrics, feed, recording, venues, simgroup, strategies, "
    "backtest, sessions_dir"
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
            if "profile" in values:  # the profile's settings first, then this section's other keys
                try:
                    sim = sim.with_profile(values["profile"])
                except (ParameterError, TypeError):
                    raise _refuse(
                        where, "sim.profile", f"must be one of {', '.join(PROFILES)}", values["profile"]
                    ) from None
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
        elif section == "perp":
            perp = replace(cfg.perp)
            _apply_dataclass(perp, values, where, "perp")
            try:
                perp.validate()
            except ParameterError as exc:
                raise _refuse(where, f"perp.{exc.name}", exc.rule, exc.value) from None
            cfg.perp = perp
        elif section == "ui":
            ui = replace(cfg.ui)
            values = dict(values)
            if "ladder_columns" in values:
                ui.ladder_columns = _ladder_columns(values.pop("ladder_columns"), where)
            if "ticks_per_row" in values:
                ui.ticks_per_row = _ticks_per_row(values.pop("ticks_per_row"), where)
            _apply_dataclass(ui, values, where, "ui")
            if ui.side_panels not in SIDE_PANELS:
                raise _refuse(
                    where, "ui.side_panels", f"must be one of {', '.join(SIDE_PANELS)}", ui.side_panels
                )
            if not ui.theme.strip():
                raise _refuse(where, "ui.theme", "must name a theme", ui.theme)
            cfg.ui = ui
        elif section in _SECTIONS:
            setattr(cfg, section, _read_section(section, values, where, getattr(cfg, section)))
        elif section == "markouts":
            cfg.markouts = _markouts_section(values, cfg.markouts, where)
        elif section == "backtest":
            cfg.backtest = _backtest_section(values, cfg.backtest, where)
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
        elif section == "simgroup":
            cfg.simgroup = _simgroup_section(values, cfg.simgroup, where)
        elif section == "venues":
            for name, table in values.items():
                if not isinstance(table, dict):
                    raise _refuse(where, f"venues.{name}", "must be a [venues.NAME] section", table)
                kind = table.get("kind", "sim" if name in cfg.sim_venues else "ccxt")
                if kind not in VENUE_KINDS:
                    raise _refuse(
                        where, f"venues.{name}.kind", f"must be one of {', '.join(VENUE_KINDS)}", kind
                    )
                if kind == "sim":
                    if name in cfg.venues:
                        raise _refuse(where, f"venues.{name}.kind", "is a live venue elsewhere", kind)
                    cfg.sim_venues[name] = {**cfg.sim_venues.get(name, {}), **table}
                    continue
                if name in cfg.sim_venues:
                    raise _refuse(where, f"venues.{name}.kind", "is a sim venue elsewhere", kind)
                table = {k: v for k, v in table.items() if k != "kind"}
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


def _check_together(cfg: Config, where: str) -> None:
    """What involves several sections: the derived risk limits on the sim's grid (explicit quantities
    must be on it when the sim is the venue)."""
    if cfg.sim_venues:
        specs = sim_venue_specs(cfg, where)
        first = specs[0].sim.instrument()
        try:
            risk_limits(replace(cfg, sim=specs[0].sim), first)
        except ParameterError as exc:
            raise _refuse(where, f"risk.{exc.name}", exc.rule, exc.value) from None
        return
    if cfg.venues:
        return  # the live instruments are only known once their markets are loaded
    try:
        risk_limits(cfg)
    except ParameterError as exc:
        raise _refuse(where, f"risk.{exc.name}", exc.rule, exc.value) from None

"""Config fuzzing: any TOML file either loads or is refused with a ConfigError naming the key it came from;
a file that loads gives trading objects and a sim market that run without overflow.

Generated files mix the real schema (every section and key lobterm reads) with unknown ones, and values of
every TOML type: huge and tiny numbers, NaN, infinities, negative numbers, numeric and non-numeric strings,
"off"/"auto", arrays, inline tables, dates and times.
"""

from __future__ import annotations

import datetime as dt
import math
import signal
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from lobterm.assemble import build_sim_kernel
from lobterm.config import (
    Config,
    ConfigError,
    FeedConfig,
    HedgeConfig,
    MarketMakerConfig,
    MetricsConfig,
    RecordingConfig,
    RiskConfig,
    UiConfig,
    hedge_params,
    load,
    quote_params,
    risk_limits,
)
from lobterm.venues.sim import SimConfig

SCHEMA: dict[str, list[str]] = {
    "sim": [f.name for f in fields(SimConfig)],
    "ui": [f.name for f in fields(UiConfig)],
    "mm": [f.name for f in fields(MarketMakerConfig)],
    "risk": [f.name for f in fields(RiskConfig)],
    "hedge": [f.name for f in fields(HedgeConfig)],
    "metrics": [f.name for f in fields(MetricsConfig)],
    "feed": [f.name for f in fields(FeedConfig)],
    "recording": [f.name for f in fields(RecordingConfig)] + ["sessions_dir"],
    "keys": ["buy", "sell", "quit", "flatten"],
    "venues": ["binance", "okx"],
}
VENUE_KEYS = ["exchange", "symbols", "rest_url", "role", "depth", "order_transport", "options", "sandbox"]
UNKNOWN = ["colour", "x", "max_order_qtty", "", "a.b", "ünïcode"]

# ---- values ------------------------------------------------------------------------------------
INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
EDGE_INTS = st.sampled_from([0, 1, -1, 2, 5, 10, 100, 1000, 2**31, 2**53, 2**62, 2**63 - 1, -(2**63)])
FLOATS = st.floats(allow_nan=True, allow_infinity=True)
EDGE_FLOATS = st.sampled_from(
    [0.0, -0.0, 0.1, 0.5, 1.0, 1e-308, 5e-324, 1e308, -1e308, math.inf, -math.inf, math.nan]
)
NUMERIC_STRINGS = st.sampled_from(
    [
        "0",
        "1",
        "-1",
        "0.001",
        "0.010",
        "1.000",
        "2.5",
        "65000",
        "0.1",
        "1e308",
        "-1e308",
        "1e-308",
        "1e999999",
        "1e-999999",
        "NaN",
        "inf",
        "-inf",
        "1/3",
        "1/0",
        "0x10",
        "1_000",
        "",
        " ",
        "off",
        "auto",
        "OFF",
        "all",
        "immediate",
        "twap",
        "ladder",
        "avellaneda_stoikov",
        "avg_cost",
        "quote",
        "hedge",
        "rest",
        "ws",
        "9" * 80,
    ]
)
DATES = st.one_of(
    st.dates(min_value=dt.date(1, 1, 1), max_value=dt.date(9999, 12, 31)),
    st.times(),
    st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31)),
)
SCALARS = st.one_of(
    EDGE_INTS, INT64, EDGE_FLOATS, FLOATS, st.booleans(), NUMERIC_STRINGS, st.text(max_size=12), DATES
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(UNKNOWN + ["a", "b"]), inner, max_size=3)
    ),
    max_leaves=6,
)
# Mostly the kinds of value a key takes, at its edges, so that many files load and reach the run.
PLAUSIBLE = st.one_of(EDGE_INTS, EDGE_FLOATS, NUMERIC_STRINGS, st.booleans(), st.lists(EDGE_INTS, max_size=3))


@st.composite
def documents(draw) -> dict:
    doc: dict = {}
    sections = draw(st.lists(st.sampled_from([*SCHEMA, "sessions_dir", "nope"]), max_size=5, unique=True))
    for section in sections:
        if section == "sessions_dir":
            doc[section] = draw(st.one_of(st.text(max_size=8), VALUES))
            continue
        if section == "nope" or draw(st.integers(0, 30)) == 0:
            doc[section] = draw(VALUES)  # an unknown section, or a known one that is not a table
            continue
        if section == "venues":
            doc[section] = draw(
                st.dictionaries(
                    st.sampled_from(SCHEMA["venues"] + ["bad name!"]),
                    st.one_of(
                        st.dictionaries(st.sampled_from(VENUE_KEYS + UNKNOWN), VALUES, max_size=4), VALUES
                    ),
                    max_size=2,
                )
            )
            continue
        keys = (
            st.sampled_from(SCHEMA[section] + UNKNOWN)
            if draw(st.booleans())
            else st.sampled_from(SCHEMA[section])
        )
        doc[section] = draw(st.dictionaries(keys, st.one_of(PLAUSIBLE, PLAUSIBLE, VALUES), max_size=6))
    return doc


# ---- TOML writing ------------------------------------------------------------------------------
def toml_string(text: str) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped, the rest as is."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def toml_key(k: str) -> str:
    return toml_string(k)


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return toml_string(v)
    if isinstance(v, (dt.date, dt.time)):
        return v.isoformat()
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{toml_key(k)} = {toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(type(v))


def to_toml(doc: dict) -> str:
    # Every top-level entry as `key = value` (inline tables): one line each, any nesting, valid TOML.
    return "".join(f"{toml_key(k)} = {toml_value(v)}\n" for k, v in doc.items())


def paths(tree, prefix: str = "") -> set[str]:
    out = set()
    for k, v in tree.items():
        p = f"{prefix}.{k}" if prefix else str(k)
        out.add(p)
        if isinstance(v, dict):
            out |= paths(v, p)
    return out


@contextmanager
def time_limit(seconds: int):
    """A hang is a failure, not a stuck test run."""

    def expired(signum, frame):
        raise TimeoutError(f"took more than {seconds} s")

    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def load_or_refuse(path: Path, doc: dict) -> Config | None:
    path.write_text(to_toml(doc), encoding="utf-8")
    path.chmod(0o600)
    try:
        with time_limit(10):
            return load(path, use_defaults=False)
    except ConfigError as err:
        named = paths(doc)
        # The key that was set, or (a rule across keys, e.g. an explicit risk quantity off the lot grid
        # the file set) a real key of a section the file set.
        section, _, key = err.key.partition(".")
        across = section in doc and key in SCHEMA.get(section, ())
        assert err.key in named or across, (
            f"{err} names {err.key!r}, which is not in the file: {sorted(named)}"
        )
        assert err.key in str(err)
        return None


def run_a_little(cfg: Config) -> None:
    """The trading objects and a sim market with the market maker (and the hedger if configured),
    stepped: overflow or a hang at use is a failure."""
    quote_params(cfg)
    risk_limits(cfg)
    hedge = hedge_params(cfg) if cfg.hedge else None
    with time_limit(20):
        kernel, venue = build_sim_kernel(cfg, virtual=True)
        mm = kernel.add_market_maker(quote_params(cfg))
        if hedge is not None:
            kernel.add_hedger(hedge)
        venue.open()
        mm.resume()
        for _ in range(5):
            venue.step()
            kernel.on_timer()
        kernel.risk.state()


FUZZ = settings(
    max_examples=5000,
    deadline=None,  # time_limit catches hangs; a slow first example (imports) is not one
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
    database=None,
)


def check_any_toml_file(tmp_path_factory, doc) -> None:
    path = tmp_path_factory.getbasetemp() / "fuzz.toml"
    cfg = load_or_refuse(path, doc)
    event("loaded" if cfg is not None else "refused")
    if cfg is not None:
        quote_params(cfg)
        risk_limits(cfg)
        if cfg.hedge:
            hedge_params(cfg)


@settings(FUZZ, max_examples=800)
@given(doc=documents())
def test_any_toml_file_loads_or_is_refused_naming_a_key_that_is_in_it(tmp_path_factory, doc) -> None:
    """800 random files in CI (about 15 s); the thorough run below takes 5,000."""
    check_any_toml_file(tmp_path_factory, doc)


@pytest.mark.slow
@FUZZ
@given(doc=documents())
def test_5000_toml_files_load_or_are_refused_naming_a_key_that_is_in_them(tmp_path_factory, doc) -> None:
    check_any_toml_file(tmp_path_factory, doc)


# Only the sections that shape a sim run, each key given a value of its own type at the edges of its
# range (and now and then anything): most files load and then run.
DEFAULTS = {
    "sim": SimConfig(),
    "ui": UiConfig(),
    "mm": MarketMakerConfig(),
    "risk": RiskConfig(),
    "hedge": HedgeConfig(),
}
WORDS = [
    "off",
    "auto",
    "all",
    "immediate",
    "twap",
    "opportunistic",
    "avg_cost",
    "quote_mid",
    "ladder",
    "avellaneda_stoikov",
    "dark",
    "BTC/USDT",
    "sim",
]
EDGE_DECIMALS = st.sampled_from(
    [
        "0",
        "0.001",
        "0.01",
        "0.1",
        "1",
        "2.5",
        "7",
        "100",
        "65000",
        "1e9",
        "1e12",
        "1e-12",
        "0.0001",
        "123456.789",
        "1e29",
    ]
)


def typed_value(default):
    if isinstance(default, bool):
        return st.booleans()
    if isinstance(default, int):
        return st.one_of(EDGE_INTS, st.integers(-5, 2000), INT64)
    if isinstance(default, float):
        return st.one_of(EDGE_FLOATS, st.floats(-10, 5000), FLOATS)
    if isinstance(default, tuple):
        return st.one_of(
            st.lists(st.integers(1, 2000), max_size=4), st.lists(EDGE_DECIMALS, min_size=1, max_size=4)
        )
    return st.one_of(EDGE_DECIMALS, st.sampled_from(WORDS), st.integers(-5, 2000), EDGE_FLOATS)


@st.composite
def runnable_documents(draw) -> dict:
    doc: dict = {}
    for section in draw(st.lists(st.sampled_from(list(DEFAULTS)), max_size=4, unique=True)):
        table = {}
        for key in draw(st.lists(st.sampled_from(SCHEMA[section]), max_size=3, unique=True)):
            table[key] = draw(
                typed_value(getattr(DEFAULTS[section], key)) if draw(st.integers(0, 9)) else VALUES
            )
        doc[section] = table
    return doc


@pytest.mark.slow
@settings(FUZZ, max_examples=1500)
@given(doc=runnable_documents())
def test_a_config_that_loads_runs_a_sim_market_without_overflow(tmp_path_factory, doc) -> None:
    path = tmp_path_factory.getbasetemp() / "fuzz-run.toml"
    cfg = load_or_refuse(path, doc)
    event("loaded and ran" if cfg is not None else "refused")
    if cfg is not None:
        run_a_little(cfg)


@pytest.mark.parametrize(
    "text, key",
    [
        ("[risk]\nmax_order_value = 1e308\n", "risk.max_order_value"),
        ("[sim]\nvol_bps = inf\n", "sim.vol_bps"),
        ("[sim]\nvol_bps = 1e308\n", "sim.vol_bps"),
        ("[sim]\nvol_bps = 9223372036854775807\n", "sim.vol_bps"),
        ("[sim]\nvol_bps = -9223372036854775808\n", "sim.vol_bps"),
        ("[sim]\ndepth_slope = 1e308\n", "sim.depth_slope"),
        ("[sim]\ndepth_levels = 9223372036854775807\n", "sim.depth_levels"),
        ("[hedge]\nretry_interval_s = 0\n", "hedge.retry_interval_s"),
        ("risk = 1\n", "risk"),
        ("[risk]\nduplicate_tags = 1\n", "risk.duplicate_tags"),
        ("[mm]\nsizes = 5\n", "mm.sizes"),
        ('[hedge]\ntwap_seconds = "1e999999"\n', "hedge.twap_seconds"),
        ('[ui]\nqty_presets = ["1e999999"]\n', "ui.qty_presets"),
    ],
)
def test_the_values_that_once_crashed_or_froze_are_refused_naming_key_value_and_rule(tmp_path, text, key):
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load(path, use_defaults=False)
    assert err.value.key == key
    assert err.value.value is not None  # the value given is carried, and shown after the key
    assert str(err.value).startswith(f"{path}: {key} = ") and err.value.problem, str(err.value)

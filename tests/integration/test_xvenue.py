"""Several sim venues from config ([venues.NAME] kind = "sim", [simgroup]) on one correlated fair price.

Real parts: the config loader on TOML files, `assemble.build`, real SimVenues stepping in lock-step on
one virtual clock, the real hedger, the real recorder (SQLite) and `lobterm verify`'s replay.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lobterm import config
from lobterm.assemble import build
from lobterm.config import ConfigError
from lobterm.engine.events import BUY, IOC, Accepted, Fill
from lobterm.headless import run_headless
from lobterm.recording.player import Player
from lobterm.recording.reader import SessionReader
from lobterm.recording.verify import verify

# Shallow, quiet books: the fair price process is what is measured, and shallow books step fast.
FAST = {"depth_levels": 6, "churn_per_s": 5.0, "jump_per_min": 0.0, "burst_per_min": 0.0}


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "lobterm.toml"
    p.write_text(text, encoding="utf-8")
    return p


def _two_sims(
    tmp_path: Path, *, correlation: float, lag_ms: float, seed: int = 7, extra: str = ""
) -> config.Config:
    fast = "\n".join(f"{k} = {v}" for k, v in FAST.items())
    text = f"""
[simgroup]
correlation = {correlation}
seed = {seed}
basis_halflife_s = 30

[venues.simA]
kind = "sim"
role = "quote"
{fast}

[venues.simB]
kind = "sim"
role = "hedge"
touch_lots = 600
lag_ms = {lag_ms}
{fast}
{extra}
"""
    return config.load(_write(tmp_path, text), use_defaults=False)


def _mids(cfg: config.Config, seconds: float) -> tuple[list[float], list[float]]:
    """The two venues' mids (ticks) after every step of `seconds` of lock-step simulated time."""
    asm = build(cfg, "headless", virtual=True, strategies=False)
    k = asm.kernel
    assert [s.name for s in asm.sims] == ["simA", "simB"]
    for s in asm.sims:
        s.open()
    ma, mb = k.markets[("simA", "BTC/USDT")], k.markets[("simB", "BTC/USDT")]
    a: list[float] = []
    b: list[float] = []
    for _ in range(round(seconds * asm.sims[0].config.rate_hz)):
        for s in asm.sims:
            s.step()
        assert asm.sims[0].clock.now() == asm.sims[1].clock.now()  # one clock
        for m, out in ((ma, a), (mb, b)):
            t = m.top()
            out.append((t.bid + t.ask) / 2 if t.bid and t.ask else out[-1])
    return a, b


def _corr(x: list[float], y: list[float]) -> float:
    n = len(x)
    mx, my = sum(x) / n, sum(y) / n
    sxy = sum((p - mx) * (q - my) for p, q in zip(x, y, strict=True))
    sx = math.sqrt(sum((p - mx) ** 2 for p in x))
    sy = math.sqrt(sum((q - my) ** 2 for q in y))
    return sxy / (sx * sy)


def _lagged_corr(a: list[float], b: list[float], lag: int, h: int = 20) -> float:
    """Correlation of `h`-step log returns of a and of b `lag` steps later."""
    idx = range(40, len(a) - h - 40, 5)
    ra = [math.log(a[i + h] / a[i]) for i in idx]
    rb = [math.log(b[i + lag + h] / b[i + lag]) for i in idx]
    return _corr(ra, rb)


@pytest.mark.parametrize(("rho", "lag_ms"), [(0.9, 250), (0.5, 0)])
def test_correlation_and_lead_lag_measured_from_the_two_mids(tmp_path: Path, rho: float, lag_ms: int) -> None:
    a, b = _mids(_two_sims(tmp_path, correlation=rho, lag_ms=lag_ms), 150)
    by_lag = {lag: _lagged_corr(a, b, lag) for lag in range(-12, 13)}
    best = max(by_lag, key=lambda k: by_lag[k])
    # Steps of 50 ms: simB follows simA by lag_ms, measured from the mids (a step either way: the mids
    # follow each venue's fair price through its takers, a little slower on the deeper book).
    assert abs(best * 50 - lag_ms) <= 50
    assert rho - 0.2 <= by_lag[best] <= min(1.0, rho + 0.12), by_lag[best]
    if lag_ms:  # at zero lag the correlation is visibly lower: simB really lags
        assert by_lag[0] < by_lag[best] - 0.05
    # The prices stay together (the basis reverts): within 10 bp over the whole run.
    assert max(abs(p - q) / p for p, q in zip(a, b, strict=True)) < 10e-4


def test_the_same_seed_gives_the_same_two_markets_and_another_seed_others(tmp_path: Path) -> None:
    one = _mids(_two_sims(tmp_path, correlation=0.8, lag_ms=100, seed=3), 10)
    two = _mids(_two_sims(tmp_path, correlation=0.8, lag_ms=100, seed=3), 10)
    other = _mids(_two_sims(tmp_path, correlation=0.8, lag_ms=100, seed=4), 10)
    assert one == two
    assert one != other


def test_demo_profile_loads_by_name_with_roles_fees_and_latency() -> None:
    cfg = config.load("demo-xvenue", use_defaults=False)
    asm = build(cfg, "headless", virtual=True)
    d = asm.describe()
    assert d["markets"] == ["simA:BTC/USDT", "simB:BTC/USDT"]
    assert (d["quote"], d["hedge"]) == ("simA:BTC/USDT", "simB:BTC/USDT")
    assert d["strategies"] == ["hedger", "mm:simA:BTC/USDT"]  # no market maker on the hedge venue
    a, b = asm.sims
    assert (a.config.taker_fee_ppm, b.config.taker_fee_ppm) == (400, 250)
    assert (a.config.touch_lots, b.config.touch_lots) == (150, 600)
    assert (a.latency_ns, b.latency_ns) == (0, 20_000_000)
    assert a.config.seed != b.config.seed


def test_the_hedger_hedges_on_simB_after_a_fill_on_simA(tmp_path: Path) -> None:
    cfg = config.load("demo-xvenue", use_defaults=False)
    asm = build(cfg, "headless", virtual=True, market_maker=False)
    k = asm.kernel
    for s in asm.sims:
        s.open()
    for _ in range(20):
        for s in asm.sims:
            s.step()
    fills: list[Fill] = []
    accepted_at: dict[str, int] = {}
    k.bus.subscribe(Fill, fills.append)
    k.bus.subscribe(Accepted, lambda ev: accepted_at.setdefault(ev.venue, ev.ts))
    qa = asm.quote_market
    sent = k.clock.now()
    k.place(qa, BUY, qa.top().ask, 25, IOC)  # a taker buy on simA: long 25 lots there
    assert k.inventory.position("simA", "BTC/USDT").lots == 25
    for _ in range(40):  # 2 s
        for s in asm.sims:
            s.step()
        k.on_timer()
    pos_b = k.inventory.position("simB", "BTC/USDT").lots
    assert pos_b == -25, pos_b  # the hedge: sold on simB
    assert {f.venue for f in fills} == {"simA", "simB"}
    assert k.inventory.position("simA", "BTC/USDT").lots == 25  # the quote venue is left alone
    assert asm.hedger.stats.fills >= 1
    # simB's 20 ms latency: the hedge order reached its book after it was sent, at a later step.
    assert accepted_at["simB"] - sent >= 20_000_000


def test_record_and_replay_a_two_sim_session(tmp_path: Path) -> None:
    cfg = config.load("demo-xvenue", use_defaults=False)
    summary = run_headless(cfg, 30.0, record_to=tmp_path)
    assert summary.reconciled
    (path,) = list(tmp_path.glob("*.lobterm.sqlite"))
    with SessionReader(path) as reader:
        assert sorted(v["name"] for v in reader.venues) == ["simA", "simB"]
        venues = {ev.venue for _seq, _ts, ev in reader.events(notes=False) if hasattr(ev, "venue")}
        assert {"simA", "simB"} <= venues
    result = verify(path)  # replays both venues' events and checks every checkpoint's state hash
    assert result.ok, (result.mismatch, result.damage)
    assert result.checkpoints >= 2
    player = Player(path)  # the replay TUI's engine: both venues, their books, our fills on each
    try:
        assert sorted(v.name for v in player.venues) == ["simA", "simB"]
        player.run_to_seq(player.last_seq)
        k = player.kernel
        for venue in ("simA", "simB"):
            top = k.markets[(venue, "BTC/USDT")].top()
            assert top.bid is not None and top.ask is not None and top.bid < top.ask
        assert k.inventory.position("simA", "BTC/USDT").lots == -k.inventory.position("simB", "BTC/USDT").lots
        assert (
            k.inventory.position("simB", "BTC/USDT").bought + k.inventory.position("simB", "BTC/USDT").sold
            > 0
        )
    finally:
        player.close()
    # The same seed records the same session.
    again = tmp_path / "again"
    again.mkdir()
    run_headless(cfg, 30.0, record_to=again)
    (path2,) = list(again.glob("*.lobterm.sqlite"))
    with SessionReader(path) as r1, SessionReader(path2) as r2:
        e1 = [ev for _s, _t, ev in r1.events(notes=False)]
        e2 = [ev for _s, _t, ev in r2.events(notes=False)]
    assert e1 == e2


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[venues.simA]\nkind = "simm"', "venues.simA.kind"),
        ('[venues.simA]\nkind = "sim"\nrole = "maker"', "venues.simA.role"),
        ('[venues.simA]\nkind = "sim"\ntouchlots = 5', "venues.simA.touchlots"),
        ('[venues.simA]\nkind = "sim"\ntouch_lots = 0', "venues.simA.touch_lots"),
        ('[venues.simA]\nkind = "sim"\nprofile = "nope"', "venues.simA.profile"),
        ('[venues.simA]\nkind = "sim"\nlag_ms = -5', "venues.simA.lag_ms"),
        ('[venues.simA]\nkind = "sim"\nlatency_ms = "fast"', "venues.simA.latency_ms"),
        ('[venues.simA]\nkind = "sim"\ntick_size = "0"', "venues.simA.tick_size"),
        ('[venues.simA]\nkind = "sim"\n[venues.simB]\nkind = "sim"\nrate_hz = 10', "venues.simB.rate_hz"),
        ("[simgroup]\ncorrelation = 1.5", "simgroup.correlation"),
        ("[simgroup]\ncorr = 0.5", "simgroup.corr"),
        ('[venues.simA]\nkind = "sim"\n[venues.bin]\nexchange = "binance"', "venues.simA.kind"),
    ],
)
def test_config_refusals_name_the_key(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        config.load(_write(tmp_path, text), use_defaults=False)
    assert info.value.key == key, str(info.value)
    assert key in str(info.value)


def test_the_command_line_loads_the_shipped_profile_by_name_and_its_seed_flag_seeds_the_group(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from lobterm.cli import main

    assert main(["--no-default-config", "--config", "demo-xvenue", "--seed", "11", "config"]) == 0
    out = capsys.readouterr().out
    back = config.load(_write(tmp_path, out), use_defaults=False)  # the printed config reads back the same
    assert list(back.sim_venues) == ["simA", "simB"]
    assert back.sim_venues["simB"]["role"] == "hedge"
    assert back.simgroup.seed == 11
    with pytest.raises(ConfigError, match="no such file"):
        config.load("demo-nope", use_defaults=False)


_VALUES = st.one_of(
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(max_size=12),
    st.sampled_from(["sim", "ccxt", "quote", "hedge", "btc-spot", "alt-thin", "0.1", "1e999", "-1"]),
    st.lists(st.integers(), max_size=3),
)
_KEYS = st.sampled_from(
    [
        "kind",
        "role",
        "lag_ms",
        "latency_ms",
        "profile",
        "touch_lots",
        "tick_size",
        "seed",
        "rate_hz",
        "maker_fee_ppm",
        "taker_fee_ppm",
        "vol_bps",
        "venue",
        "start_price",
        "depth_levels",
        "bogus",
    ]
)


@settings(max_examples=150, deadline=None)
@given(
    a=st.dictionaries(_KEYS, _VALUES, max_size=5),
    b=st.dictionaries(_KEYS, _VALUES, max_size=5),
    group=st.dictionaries(
        st.sampled_from(["correlation", "seed", "basis_halflife_s", "x"]), _VALUES, max_size=3
    ),
)
def test_fuzzed_sim_venue_tables_load_and_build_or_are_refused_naming_a_key(
    a: dict[str, object], b: dict[str, object], group: dict[str, object]
) -> None:
    data = {"simgroup": group, "venues": {"simA": {"kind": "sim", **a}, "simB": {"kind": "sim", **b}}}
    try:
        cfg = config.Config()
        config._apply(cfg, data, "fuzz")  # the loader's own path, without a file per example
        config._check_together(cfg, "fuzz")
    except ConfigError as exc:
        assert exc.key.startswith(("venues.simA", "venues.simB", "simgroup", "risk.")), exc
        return
    if not cfg.sim_venues:
        return  # both tables said another kind: live venues, not built here
    asm = build(cfg, "headless", virtual=True, strategies=False)
    for s in asm.sims:
        s.open()
    for _ in range(5):
        for s in asm.sims:
            s.step()

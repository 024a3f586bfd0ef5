"""`lobterm config`: the effective configuration as TOML, secrets redacted; a bad file exits 2 naming the key."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

from lobterm.config import REDACTED, config_tree, effective_toml, load, redact

ROOT = Path(__file__).resolve().parents[2]
SECRETS = ("AKfile-0123456789", "SECfile-abcdef", "pw-file-777", "feed-token-xyz", "AKenv-ABCDEF")


def lobterm(*args: str, home: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("LOBTERM_")}
    environ.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "lobterm", *args],
        cwd=home,
        env={**environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_lobterm_config_prints_the_effective_config_with_every_secret_redacted(tmp_path):
    cfg = tmp_path / "desk.toml"
    cfg.write_text(f"""
[ui]
default_qty = "0.020"
[keys]
buy = "z"
[feed]
token = "{SECRETS[3]}"
[venues.fileex]
exchange = "binance"
symbols = ["BTC/USDT"]
api_key = "{SECRETS[0]}"
secret = "{SECRETS[1]}"
password = "{SECRETS[2]}"
[venues.envex]
exchange = "kraken"
symbols = ["ETH/USD"]
""")
    cfg.chmod(0o600)
    out = lobterm("--config", str(cfg), "config", home=tmp_path, env={"LOBTERM_ENVEX_API_KEY": SECRETS[4]})
    assert out.returncode == 0, out.stderr
    for secret in SECRETS:
        assert secret not in out.stdout and secret not in out.stderr
    printed = tomllib.loads(out.stdout)
    file_venue = printed["venues"]["fileex"]
    assert (file_venue["api_key"], file_venue["secret"], file_venue["password"]) == (REDACTED,) * 3
    assert printed["venues"]["envex"]["api_key"] == REDACTED  # from the environment: redacted too
    assert printed["venues"]["envex"]["secret"] == ""  # not set: shown as not set
    assert printed["feed"]["token"] == REDACTED
    # Everything else is the effective value: the file's, then the defaults.
    assert printed["ui"]["default_qty"] == "0.020" and printed["ui"]["theme"] == "dark"
    assert printed["keys"] == {"buy": "z"}  # key bindings are not secrets
    assert printed["sim"]["symbol"] == "BTC/USDT" and printed["venues"]["fileex"]["symbols"] == ["BTC/USDT"]
    assert str(cfg) in out.stdout  # says which files it read


def test_lobterm_config_applies_flags_over_files(tmp_path):
    (tmp_path / "lobterm.toml").write_text("[sim]\nseed = 5\nrate_hz = 10\n")
    out = lobterm("config", "--help", home=tmp_path)
    assert out.returncode == 0
    out = lobterm("--seed", "9", "config", home=tmp_path)
    assert out.returncode == 0, out.stderr
    printed = tomllib.loads(out.stdout)
    assert printed["sim"]["seed"] == 9 and printed["sim"]["rate_hz"] == 10.0


def test_a_bad_config_file_exits_2_naming_the_key(tmp_path):
    for text, key in (
        ('[ui]\ndefault_qty = "lots"\n', "ui.default_qty"),
        ("[ui]\ncolour = 1\n", "ui.colour"),
        ("[ui]\nticket_band_bps = -5\n", "ui.ticket_band_bps"),
        ("[sim\n", "(file)"),
    ):
        (tmp_path / "lobterm.toml").write_text(text)
        out = lobterm("config", home=tmp_path)
        assert out.returncode == 2, text
        assert out.stdout == ""
        assert out.stderr.startswith("lobterm: configuration error: lobterm.toml: " + key), out.stderr


def test_the_printed_config_loads_back_to_the_same_config(tmp_path):
    cfg = tmp_path / "a.toml"
    cfg.write_text(
        '[ui]\nqty_presets = ["0.005", "0.050"]\ntheme = "light"\n[mm]\nlevels = 3\n'
        '[risk]\nmax_order_qty = "2.000"\n[keys]\nsell = "S"\n[venues.x]\nexchange = "okx"\n'
        'symbols = ["BTC/USDT"]\n[venues.x.options]\nfetchCurrencies = false\n'
        '[venues.x.urls]\n"api.ws.spot" = "wss://example.invalid/ws"\n'
    )
    original = load(cfg, use_defaults=False)
    printed = tmp_path / "printed.toml"
    printed.write_text(effective_toml(original))
    again = load(printed, use_defaults=False)
    assert config_tree(again) == config_tree(original)


def test_redact_covers_nested_secrets_but_not_the_key_bindings():
    tree = {
        "keys": {"buy": "b"},
        "venues": {"v": {"api_key": "x", "apiKey": "y", "options": {"SECRET_THING": "z"}, "secret": ""}},
        "feed": {"token": "t", "top_n": 10},
    }
    assert redact(tree) == {
        "keys": {"buy": "b"},
        "venues": {
            "v": {
                "api_key": REDACTED,
                "apiKey": REDACTED,
                "options": {"SECRET_THING": REDACTED},
                "secret": "",
            }
        },
        "feed": {"token": REDACTED, "top_n": 10},
    }

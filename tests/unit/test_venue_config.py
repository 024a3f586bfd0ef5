"""[venues.NAME] sections: validation, secrets from the environment, the 0600 rule, no ccxt import."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from lobterm.config import ConfigError, load
from lobterm.venues.settings import env_prefix

VENUE = """
[venues.binance]
symbols = ["BTC/USDT"]
rest_url = "https://testnet.binance.vision"
order_transport = "rest"
[venues.binance.options]
fetchCurrencies = false
"""


def write(tmp_path, text, mode):
    p = tmp_path / "lobterm.toml"
    p.write_text(text)
    os.chmod(p, mode)
    return p


def test_a_venue_section_is_read_and_validated(tmp_path):
    cfg = load(write(tmp_path, VENUE, 0o644), use_defaults=False)
    vc = cfg.venues["binance"]
    assert (
        vc.exchange_id == "binance"
        and vc.symbols == ("BTC/USDT",)
        and vc.options == {"fetchCurrencies": False}
    )
    assert not vc.has_keys
    with pytest.raises(ConfigError, match="venues.binance.order_transport"):
        load(write(tmp_path, VENUE.replace('"rest"', '"fax"'), 0o644), use_defaults=False)
    with pytest.raises(ConfigError, match="venues.binance.colour: unknown key"):
        load(write(tmp_path, VENUE.replace("symbols", "colour = 1\nsymbols"), 0o644), use_defaults=False)


def test_a_config_file_with_keys_readable_by_others_is_refused_saying_why(tmp_path):
    text = VENUE.replace('order_transport = "rest"', 'api_key = "AK-123456"\nsecret = "SK-abcdef"')
    p = write(tmp_path, text, 0o644)
    with pytest.raises(ConfigError) as err:
        load(p, use_defaults=False)
    msg = str(err.value)
    assert "0644" in msg and "chmod 600" in msg and "AK-123456" not in msg and "SK-abcdef" not in msg
    os.chmod(p, 0o600)
    vc = load(p, use_defaults=False).venues["binance"]
    assert vc.has_keys and "SK-abcdef" not in repr(vc) and "AK-123456" not in repr(vc)


def test_keys_come_from_the_environment(tmp_path, monkeypatch):
    assert env_prefix("binance-us") == "LOBTERM_BINANCE_US_"
    monkeypatch.setenv("LOBTERM_BINANCE_API_KEY", "AK-env")
    monkeypatch.setenv("LOBTERM_BINANCE_SECRET", "SK-env")
    vc = load(write(tmp_path, VENUE, 0o644), use_defaults=False).venues["binance"]
    assert vc.api_key == "AK-env" and vc.secret == "SK-env" and vc.secrets() == ["AK-env", "SK-env"]


def test_loading_a_venue_config_and_the_assembly_does_not_import_ccxt(tmp_path):
    p = write(tmp_path, VENUE, 0o644)
    code = (
        "import sys; from lobterm.config import load; import lobterm.assemble; "
        f"load({str(p)!r}, use_defaults=False); print('ccxt' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"

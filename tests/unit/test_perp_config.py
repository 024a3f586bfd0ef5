"""[perp] and the margin limits in [risk]: read, checked, defaults on, "off" explicit."""

from __future__ import annotations

from decimal import Decimal

import pytest

from lobterm.config import ConfigError, effective_risk, effective_toml, load, risk_limits


def test_the_margin_limits_default_on_and_switch_off_explicitly():
    cfg = load(use_defaults=False, overrides={"sim": {"market": "perp"}, "perp": {"leverage": "20"}})
    lim = risk_limits(cfg)
    assert lim.max_leverage == Decimal(20) and lim.min_liquidation_bps == 500
    assert effective_risk(cfg)["max_leverage"].how.startswith("auto: perp.leverage")
    spot = risk_limits(load(use_defaults=False))
    assert spot.max_leverage is None and spot.leverage_from_market  # live perps: each market's own
    off = load(use_defaults=False, overrides={"risk": {"max_leverage": "off", "min_liquidation_bps": "off"}})
    lim = risk_limits(off)
    assert (lim.max_leverage, lim.leverage_from_market, lim.min_liquidation_bps) == (None, False, None)
    assert 'max_leverage = "off"' in effective_toml(off)


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        ("perp", "leverage", "0.5"),
        ("perp", "maintenance_rate", "0.2"),  # above 1 / leverage at 10x
        ("perp", "funding_interval_s", 1),
        ("perp", "collateral", "-1"),
        ("sim", "market", "future"),
        ("risk", "max_leverage", "0"),
        ("risk", "min_liquidation_bps", "-5"),
    ],
)
def test_bad_perp_settings_are_refused_naming_the_key(section, key, value):
    with pytest.raises(ConfigError, match=f"{section}.{key}"):
        load(use_defaults=False, overrides={section: {key: value}})

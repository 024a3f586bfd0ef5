"""Fail closed by default: a fresh config puts every risk limit on, derived from the instrument and the
config; "off" is explicit and shown as off; the default market maker still trades under the defaults."""

from __future__ import annotations

import tomllib
from decimal import Decimal

import pytest

from lobterm.assemble import build_sim_kernel
from lobterm.config import Config, ConfigError, effective_toml, hedge_params, load, quote_params, risk_limits
from lobterm.engine.events import BUY, SELL
from lobterm.engine.instrument import Instrument
from lobterm.headless import run_headless
from lobterm.trading.risk import RiskManager


def fresh() -> Config:
    return load(use_defaults=False)


def opened_kernel(cfg: Config):
    kernel, venue = build_sim_kernel(cfg, virtual=True)
    venue.open()
    for _ in range(20):
        venue.step()
    return kernel


def test_a_fresh_config_has_every_limit_on() -> None:
    lim = risk_limits(fresh())
    assert lim.max_order_lots == 2000  # 2.000 BTC: twice the largest quantity preset (1.000)
    assert lim.max_position_lots == 4000  # 4.000 BTC
    assert lim.max_order_notional == 162_500 * 10_000  # 162500 USDT in tick*lots (0.1 x 0.001)
    assert lim.daily_loss_limit == Decimal(5200)
    assert lim.price_band_bps == 500
    assert (lim.messages_per_s, lim.burst) == (200.0, 400)
    assert lim.duplicate_window_ms == 250 and lim.max_book_age_ms == 5000


def test_lobterm_config_prints_the_effective_limits_and_how_each_was_derived() -> None:
    text = effective_toml(fresh())
    printed = tomllib.loads(text)["risk"]
    assert printed["max_order_qty"] == "2.000" and printed["max_position_qty"] == "4.000"
    assert printed["max_order_value"] == "162500" and printed["daily_loss_limit"] == "5200"
    assert printed["price_band_bps"] == 500 and printed["messages_per_s"] == 200
    line = next(x for x in text.splitlines() if x.startswith("max_order_qty"))
    assert "# auto: 2 x the largest of ui.qty_presets" in line


def test_a_limit_turned_off_is_off_and_printed_as_off(tmp_path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[risk]\nmax_order_qty = "off"\ndaily_loss_limit = "OFF"\n')
    cfg = load(path, use_defaults=False)
    lim = risk_limits(cfg)
    assert lim.max_order_lots is None and lim.daily_loss_limit is None and lim.daily_loss_lots is None
    assert lim.max_position_lots == 4000, "the position limit still derives from the order size it would have"
    printed = tomllib.loads(effective_toml(cfg))["risk"]
    assert printed["max_order_qty"] == "off" and printed["daily_loss_limit"] == "off"
    again = tmp_path / "again.toml"
    again.write_text(effective_toml(cfg))
    assert risk_limits(load(again, use_defaults=False)) == lim


def test_the_derived_limits_follow_the_config() -> None:
    cfg = load(
        use_defaults=False, overrides={"ui": {"qty_presets": ["0.001", "5.000"]}, "mm": {"levels": 10}}
    )
    lim = risk_limits(cfg)
    assert lim.max_order_lots == 10_000 and lim.max_position_lots == 20_000
    assert lim.messages_per_s == 400.0
    cfg = load(use_defaults=False, overrides={"risk": {"max_order_qty": "0.500"}})
    lim = risk_limits(cfg)
    assert lim.max_order_lots == 500 and lim.max_position_lots == 1000
    assert lim.max_order_notional == 65_000 * 10 * 500 * 5 // 4


def test_a_50_btc_order_is_refused_by_max_order_qty_and_a_1_btc_order_passes() -> None:
    cfg = fresh()
    kernel = opened_kernel(cfg)
    m = kernel.default_market
    bid = m.l2.best_bid_price()
    refused = kernel.risk.check_new(m.venue, m.symbol, SELL, bid, 50_000)
    assert refused is not None and refused.startswith(
        "max_order_lots: size 50.000 is above the maximum order size 2.000"
    )
    assert kernel.risk.check_new(m.venue, m.symbol, SELL, bid, 1000) is None
    assert m.instrument.size(1000) > cfg.ui.confirm_above_qty, "a 1.000 BTC order asks first"


def test_an_order_far_through_the_mid_is_refused_by_the_default_price_band() -> None:
    kernel = opened_kernel(fresh())
    m = kernel.default_market
    mid = (m.l2.best_bid_price() + m.l2.best_ask_price()) // 2
    far = mid * 106 // 100  # 6% above the mid: beyond the 500 bps band
    assert kernel.risk.check_new(m.venue, m.symbol, BUY, far, 10).startswith("price_band:")


def test_the_default_market_maker_trades_a_minute_under_the_default_limits() -> None:
    summary = run_headless(fresh(), 60.0).as_dict()
    assert summary["our_fills"] > 20
    assert summary["risk_rejects"] == {} and summary["our_rejects"] == 0


def test_on_a_live_market_the_money_limits_are_valued_at_its_first_mid() -> None:
    cfg = fresh()
    cfg.venues = {}  # the sim kernel, but limits built as for a market whose price is not known
    eth = Instrument("ETH/USDT", tick_size=Decimal("0.01"), lot_size=Decimal("0.001"), venue="x")
    lim = risk_limits(cfg, instrument=eth)
    assert lim.max_order_notional is None and lim.max_order_value_lots == 2500
    assert lim.daily_loss_limit is None and lim.daily_loss_lots == 80
    kernel = opened_kernel(cfg)
    m = kernel.default_market
    risk = RiskManager(kernel.markets, kernel.clock, lim, position=lambda v, s: 0, pnl=kernel.net_pnl)
    assert risk.first_mid_ticks(m.venue, m.symbol) is None
    bid = m.l2.best_bid_price()
    assert risk.check_new(m.venue, m.symbol, BUY, bid, 10) is None
    mid = risk.first_mid_ticks(m.venue, m.symbol)
    assert mid is not None and abs(mid - bid) < 5


def test_explicit_quantities_must_be_on_the_lot_grid_and_name_the_key() -> None:
    with pytest.raises(ConfigError) as err:
        load(use_defaults=False, overrides={"risk": {"max_order_qty": "0.0005"}})
    assert err.value.key == "risk.max_order_qty" and "lot size" in err.value.problem


def test_the_trading_sections_are_typed_and_dicts_read_as_their_toml_table() -> None:
    cfg = Config(hedge={"policy": "twap", "threshold_lots": 5})
    assert (
        cfg.hedge.enabled
        and cfg.hedge.policy == "twap"
        and dict(cfg.hedge) == {"policy": "twap", "threshold_lots": 5}
    )
    assert hedge_params(cfg).twap_slices == 5 and hedge_params(cfg, policy="immediate").policy == "immediate"
    assert not Config().hedge and not Config(hedge={"enabled": False, "policy": "twap"}).hedge
    cfg.mm = {"levels": 3}
    assert quote_params(cfg).levels == 3 and dict(cfg.mm) == {"levels": 3}
    with pytest.raises(ConfigError) as err:
        cfg.risk = {"max_order_qty": -1}
    assert err.value.key == "risk.max_order_qty"

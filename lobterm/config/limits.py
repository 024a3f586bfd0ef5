"""The trading objects made from a config: the market maker's `QuoteParams`, the hedger's `HedgeParams`
and the risk limits (`effective_risk` says where each came from: set, derived or off)."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from decimal import Decimal
from fractions import Fraction
from typing import Any

from lobterm.config.model import (
    _MAX_BAND_BPS,
    _MAX_MONEY,
    _MAX_NOTIONAL,
    AUTO,
    MIN_LIQUIDATION_BPS,
    OFF,
)
from lobterm.config.sections import (
    Config,
)
from lobterm.engine.instrument import MAX_UNITS, Instrument, InstrumentError
from lobterm.trading.hedger import HedgeParams, validate_params
from lobterm.trading.quoting import QuoteParams
from lobterm.trading.risk import RiskLimitError, RiskLimits


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
    if on_sim and cfg.sim.market == "perp":
        pick("max_leverage", cfg.perp.leverage, "perp.leverage (perpetuals only)")
    else:
        pick("max_leverage", AUTO, "each perpetual market's own leverage (perpetuals only)")
    pick("min_liquidation_bps", Decimal(MIN_LIQUIDATION_BPS), "perpetuals only")
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
        max_leverage=None if value("max_leverage") in (None, AUTO) else value("max_leverage"),
        leverage_from_market=value("max_leverage") == AUTO,
        min_liquidation_bps=_bps(value("min_liquidation_bps")),
    )


def _bps(v: Decimal | None) -> int | Decimal | None:
    return None if v is None else (int(v) if v == v.to_integral_value() else v)


def _limit_lots(inst: Instrument, key: str, qty: Decimal) -> int:
    try:
        return inst.lots(qty)
    except InstrumentError as exc:
        raise RiskLimitError(key, qty, exc.rule) from None

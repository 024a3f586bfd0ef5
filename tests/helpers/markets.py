"""The btc-spot market as it was before session 5's recalibration (a small fair-price move every step that
everyone sees at once, a 150-lot touch, 4 takers a second): screens and tests written on it keep it."""

from __future__ import annotations

from typing import Any

OLD_BTC_SPOT: dict[str, Any] = {
    "touch_lots": 150,
    "depth_slope": 0.12,
    "taker_tail": 2.2,
    "taker_per_s": 4.0,
    "vol_bps": 0.7,
    "jump_per_min": 0.1,
    "jump_bps": 8.0,
    "fair_events_per_s": 0.0,
    "taker_delay_ms": 0.0,
}


def old_btc_spot(sim: Any) -> Any:
    """Set `sim` (a SimConfig) to the old btc-spot market; returns it."""
    for key, value in OLD_BTC_SPOT.items():
        setattr(sim, key, value)
    return sim

"""GLFT quotes on the real sim: A and k get fitted from the sim's trades, the market maker quotes and
gets filled, and the panel's calibration view carries the fit."""

from __future__ import annotations

import math

from lobterm.assemble import build
from lobterm.config import load


def test_glft_market_maker_quotes_and_fits_on_the_sim() -> None:
    cfg = load(
        use_defaults=False, overrides={"sim": {"seed": 5}, "mm": {"mode": "glft", "glft_refit_s": 5.0}}
    )
    asm = build(cfg, "headless", virtual=True)
    kernel, sim = asm.kernel, asm.sim
    mm = asm.market_makers[0]
    sim.open()
    mm.resume()
    for _ in range(20 * 90):  # 90 s at 20 Hz
        sim.step()
    view = mm.glft_view()
    assert view["fitted"] and view["refits"] >= 10
    assert view["k"] > 0 and view["a"] > 0 and view["sigma"] > 0
    assert math.isfinite(view["half_spread"]) and view["half_spread"] > 0
    assert mm.fills > 0 and mm.quotes_sent > 0
    ladder = mm.ladder
    assert ladder is not None and ladder.bids and ladder.asks
    assert kernel.clock.now() - view["last_refit_ns"] <= 5_000_000_000 + 100_000_000

"""The market maker centred on the consolidated microprice of two sim venues (`[mm] fair_value =
"consolidated_microprice"`): live on the lock-step sims, recorded, verified by replay, and the same in the
reference backtest. Real parts: the demo-xvenue profile, `assemble.build`, the real sims, recorder, verify."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

from lobterm import config
from lobterm.assemble import build
from lobterm.backtest.fast import fast_path_refusal
from lobterm.backtest.reference import run_backtest
from lobterm.engine.events import BUY, SELL
from lobterm.headless import run_headless
from lobterm.kernel import Kernel
from lobterm.recording.verify import verify

SYMBOL = "BTC/USDT"
FAIR = {"mm": {"fair_value": "consolidated_microprice", "levels": 1, "spread_ticks": 2}}


def _expected_half_ticks(k: Kernel) -> int:
    """The consolidated microprice, computed here from the two books on their own (ours taken out of a
    venue's book where it holds them), in half ticks of simA, rounded half-even."""
    a, b = k.markets[("simA", SYMBOL)], k.markets[("simB", SYMBOL)]
    levels = []
    for m in (a, b):
        bid = ask = None
        for side in (BUY, SELL):
            for price, size in m.l2.iter_levels(side):
                mine = 0
                if m.unified.own_in_venue_book:
                    mine = m.unified.our_size(side, price)
                if size > mine:
                    if side == BUY:
                        bid = (price, size - mine)
                    else:
                        ask = (price, size - mine)
                    break
        levels.append((bid, ask))
    (ab, aa), (bb, ba) = levels
    assert ab and aa and bb and ba
    bid_px = max(ab[0], bb[0])
    bid_q = sum(q for p, q in (ab, bb) if p == bid_px)
    ask_px = min(aa[0], ba[0])
    ask_q = sum(q for p, q in (aa, ba) if p == ask_px)  # the same lot on both venues in the profile
    exact = Fraction(bid_px * ask_q + ask_px * bid_q, bid_q + ask_q)
    return round(exact * 2)


def test_a_sim_run_centres_the_quotes_on_the_consolidated_microprice() -> None:
    cfg = config.load("demo-xvenue", use_defaults=False, overrides=FAIR)
    asm = build(cfg, "headless", virtual=True)
    k = asm.kernel
    for s in asm.sims:
        s.open()
    for _ in range(20):
        for s in asm.sims:
            s.step()
    (mm,) = asm.market_makers
    assert mm.fair_markets == (("simA", SYMBOL), ("simB", SYMBOL))
    mm.resume()
    off_mid = checked = 0
    for _ in range(120):  # 6 s
        for s in asm.sims:
            s.step()
        k.on_timer()
        mm.requote()
        fv, lad = mm.fair, mm.ladder
        assert fv is not None and lad is not None
        assert fv.venues == ("simA", "simB")
        assert fv.half_ticks == _expected_half_ticks(k)
        assert lad.reservation == fv.half_ticks / 2  # ladder mode, no skew: centred on it exactly
        top = k.markets[("simA", SYMBOL)].top()
        assert top.bid is not None and top.ask is not None
        if lad.bids:
            assert lad.bids[0][0] == min(math.floor(fv.half_ticks / 2 - 1), top.ask - 1)
        if lad.asks:
            assert lad.asks[0][0] == max(math.ceil(fv.half_ticks / 2 + 1), top.bid + 1)
        checked += 1
        off_mid += fv.half_ticks != top.bid + top.ask
    assert checked == 120
    assert off_mid > 60  # it is not simA's mid: simB's book moves it


def test_a_session_recorded_with_the_option_verifies_and_backtests_on_it(tmp_path: Path) -> None:
    cfg = config.load("demo-xvenue", use_defaults=False, overrides=FAIR)
    summary = run_headless(cfg, 15.0, record_to=tmp_path)
    assert summary.reconciled
    (path,) = list(tmp_path.glob("*.lobterm.sqlite"))
    result = verify(path)
    assert result.ok, (result.mismatch, result.damage)
    seen: list[Kernel] = []
    bt = run_backtest(str(path), observe=seen.append)  # the recorded [mm], fair_value included
    (k,) = seen
    (mm,) = k.market_makers
    assert mm.params.fair_value == "consolidated_microprice"
    assert mm.fair is not None and mm.fair.venues == ("simA", "simB")
    assert mm.fair.half_ticks == _expected_half_ticks(k)
    assert bt.fills > 0
    # The fast path does not do it: `lobterm backtest` hands this session to the reference path, saying so.
    assert "fair_value" in (fast_path_refusal(mm.params) or "")
    # Same file, same parameters: the same result.
    again: list[Kernel] = []
    bt2 = run_backtest(str(path), observe=again.append)
    assert (bt2.fills, bt2.volume) == (bt.fills, bt.volume)

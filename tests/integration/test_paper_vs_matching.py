"""Paper fills against the sim's matching engine (issue 13, item 4: "paper fills you can believe").

Two comparisons (lobterm/bench/paper_shadow.py):

1. **Same session, same quotes** (`shadow_session`): one sim session with the market maker in the
   matching book and a shadow `PaperDesk` that gets every request at the same moment and the session's
   public feed with our own lots taken out of the book. A trade that met one of our orders is, for the
   desk, the trade a market without us would have printed: at our price if others are left there at the
   end of the update, else one tick beyond it (the taker meets the next lots). Compared, all within 15%:
   fill count, lots and fees as plain ratios; the P&L of the fills, measured the same way against the
   same mid (spread captured, adverse selection at 5 s, net = the fills marked to the last mid less
   fees), as differences against the P&L the fills moved: |spread| + |adverse| (+ fees for net). Not
   plain ratios, because each part can sit near zero: net P&L of a 300 s run is a small difference of
   larger sums (spread ~ +6.5, adverse ~ -50 USDT), and on seed 6 (60 s) adverse selection was +0.21
   USDT matched against +0.12 paper on 4144 and 4134 lots: a ratio of 0.58 from one fill.
   Measured (btc-spot, default [mm], 300 s, seeds 1-3): fills 1.000 / 1.000 / 0.994, lots 1.000 /
   1.000 / 0.993, spread 1.000 / 1.000 / 0.965, adverse 1.000 / 1.000 / 0.996, net -44.41 / -34.97 /
   -38.81 against -44.41 / -34.97 / -39.06 USDT.
   With the trades printed where they met our order (`reprice=False`: the desk keeps its queue estimate
   behind lots the same update cancelled): fills 0.99-1.00, lots 0.96-0.98, spread 0.61-0.70, adverse
   0.96-1.06, net 0.77-1.30; 90% of our orders still fill identically (same step, price and lots).

2. **Two runs** (`lobterm run --headless` and `--paper` on one seed): not the same market. The sim's
   fair price and its participants share one random stream, so the runs part within the first steps
   (the fair price differs from step 102 on, seed 1), and the sim's participants react to our orders
   when they are in its book (its providers never quote through them: seed 1, 60 s, our best quote
   was inside the others' touch 67% of the steps against 7% in the paper run, first in its queue 78%
   against 41%).
   Measured (300 s, seeds 1-3): fills 1.02 / 0.86 / 0.85, net P&L 1.26 / 1.08 / 0.92 (below).
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from lobterm.bench.paper_shadow import Shadow, shadow_session
from lobterm.config import load
from lobterm.headless import run_headless

TOLERANCE = Decimal("0.15")


def _within(paper: int | Decimal, matched: int | Decimal, what: str) -> None:
    assert matched, f"no {what} in the matched run: nothing to compare"
    ratio = Decimal(paper) / Decimal(matched)
    assert abs(ratio - 1) <= TOLERANCE, f"{what}: paper {paper} / matched {matched} = {ratio:.3f}"


def _check(r: Shadow) -> None:
    m, p = r.matched, r.paper
    assert m.fills > 100, m.fills  # enough fills that 15% means something
    _within(p.fills, m.fills, "fills")
    _within(p.lots, m.lots, "lots")
    if m.fees:
        _within(p.fees, m.fees, "fees")
    else:
        assert p.fees == 0, p.fees
    # The P&L parts against the P&L the fills moved (a part can sit near zero: see the docstring).
    moved2 = abs(m.spread2) + abs(m.adverse2)  # half ticks x lots
    for what, a, b in (
        ("spread captured", p.spread2, m.spread2),
        ("adverse selection", p.adverse2, m.adverse2),
    ):
        assert abs(a - b) <= TOLERANCE * moved2, (
            f"{what}: paper {a} matched {b} (half ticks x lots), scale {moved2}"
        )
    scale = moved2 * r.tick_lot / 2 + Decimal(m.fees) * r.tick_lot / 1_000_000
    gap = abs(r.net(p) - r.net(m))
    assert gap <= TOLERANCE * scale, f"net: paper {r.net(p)} matched {r.net(m)}, scale {scale}"


def test_paper_desk_fills_what_the_matching_engine_fills_one_seed_with_fees() -> None:
    # 1 bp maker fee so that the fee component is compared too.
    r = shadow_session(4, 60.0, sim={"maker_fee_ppm": 100})
    assert r.matched.fees > 0
    _check(r)
    # The comparison can fail: a desk that joined the queue ahead of everything would fill too much.
    assert r.fills_by_rule["through"] > 0 and r.fills_by_rule["cross"] == 0


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_paper_desk_tracks_the_matching_engine_same_session(seed: int) -> None:
    _check(shadow_session(seed, 120.0))


def test_the_shadow_comparison_sees_a_wrong_desk() -> None:
    # The comparison is not a tautology: a desk whose requests arrive 200 ms later than the venue's
    # (the sim's are instant here) fills other quotes at other times, and the check says so.
    late = dict.fromkeys(("new_latency_ns", "cancel_latency_ns", "amend_latency_ns"), 200_000_000)
    r = shadow_session(1, 60.0, paper=late)
    with pytest.raises(AssertionError):
        _check(r)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_paper_fills_track_matching_two_runs(seed: int) -> None:
    """Two runs of one seed: different markets (see the module docstring); a loose check that the paper
    run trades the same order of magnitude. Their net P&L is not compared: on the recalibrated btc-spot
    two runs' P&L differ by more than their size (300 s, seeds 1/2/3, paper vs matched: -13.7/-6.0,
    -2.9/+7.5, +1.6/-6.0 USDT); the same-session shadow
    test above is the P&L check."""
    base = {"sim": {"seed": seed}}
    matched = run_headless(load(use_defaults=False, overrides=base), 300.0)
    paper = run_headless(load(use_defaults=False, overrides=base), 300.0, paper=True)
    ratio = paper.our_fills / matched.our_fills
    assert 0.75 <= ratio <= 1.25, (paper.our_fills, matched.our_fills)  # measured 1.13, 0.83, 0.98


def test_the_cross_rule_is_the_optimistic_part() -> None:
    cfg = {"sim": {"seed": 1}}
    matched = run_headless(load(use_defaults=False, overrides=cfg), 60.0)
    crossing = run_headless(
        load(use_defaults=False, overrides={"sim": {"seed": 1, "paper_cross_fills": True}}), 60.0, paper=True
    )
    assert crossing.our_fills > 1.3 * matched.our_fills, (crossing.our_fills, matched.our_fills)


def test_sim_group_paper_mode_keeps_the_cross_rule_off() -> None:
    # [venues.NAME] kind = "sim" with --paper: the desk follows [sim] paper_cross_fills as [sim] does.
    from lobterm.assemble import build

    for cross in (False, True):
        cfg = load(
            use_defaults=False,
            overrides={"sim": {"paper_cross_fills": cross}, "venues": {"simA": {"kind": "sim"}}},
        )
        asm = build(cfg, "headless", virtual=True, paper=True, strategies=False)
        venue = asm.kernel.venues["simA"]
        assert venue.desk.config.cross_fills is cross

"""Each in-memory history stays within its bound under a long run (lobterm/engine/bounds.py)."""

from __future__ import annotations

import random
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lobterm.assemble import build, build_sim_kernel
from lobterm.config import MetricsConfig, load
from lobterm.engine.bounds import (
    DONE_ORDERS,
    HEDGE_ORDERS,
    LOSS_HIST_BITS,
    METRIC_REASONS,
    OUR_FILLS,
    PNL_SNAPSHOTS,
    RECENT_ERRORS,
    TAPE,
    TOXIC_FILLS,
    VOLUME_PRICES,
    add_volume,
)
from lobterm.engine.events import BUY, OUR_OWNER, Fill, Rejected, Trade
from lobterm.metrics import Metrics
from lobterm.trading.inventory import FillAudit
from lobterm.trading.markouts import LossHistogram, MarkoutConfig, MarkoutEngine
from lobterm.widgets.tape import OurFills


def test_volume_at_price_keeps_at_most_its_bound_and_the_prices_nearest_the_last_trade() -> None:
    vap: dict[int, int] = {}
    for i in range(5 * VOLUME_PRICES):  # a price that walks away without coming back
        add_volume(vap, 10_000 + i, 2)
        assert len(vap) <= VOLUME_PRICES
    last = 10_000 + 5 * VOLUME_PRICES - 1
    assert vap[last] == 2 and max(abs(p - last) for p in vap) < VOLUME_PRICES


def test_volume_at_price_adds_up_while_under_its_bound() -> None:
    vap: dict[int, int] = {}
    for _ in range(3):
        add_volume(vap, 100, 5)
    add_volume(vap, 101, 1)
    assert vap == {100: 15, 101: 1}


def test_the_kernels_volume_at_price_stays_bounded_when_the_price_walks_for_a_long_run() -> None:
    kernel, _sim = build_sim_kernel(load(use_defaults=False, overrides={"sim": {"seed": 7}}), virtual=True)
    m = kernel.default_market
    trades = [Trade(i, m.venue, m.symbol, 50_000 + i, 1, BUY, i) for i in range(3 * VOLUME_PRICES)]
    kernel.bus.publish_many(trades)
    assert m.trades == len(trades) and len(m.volume_at_price) <= VOLUME_PRICES
    assert m.volume_at_price[trades[-1].price] == 1


def test_headless_fill_audit_keeps_no_fill_list_and_still_finds_a_wrong_book() -> None:
    kernel, sim = build_sim_kernel(load(use_defaults=False, overrides={"sim": {"seed": 7}}), virtual=True)
    audit = FillAudit(fee_currency=kernel.inventory.fee_currency)
    seen: list[Fill] = []
    kernel.bus.subscribe(Fill, audit.on_fill)
    kernel.bus.subscribe(Fill, lambda ev: seen.append(ev) if ev.owner == OUR_OWNER else None)
    sim.open()
    m = kernel.default_market
    for i in range(400):
        sim.step()
        if i % 20 == 0 and m.l2.best_ask_price() is not None:
            kernel.buy(m, m.l2.best_ask_price(), 1)
    assert seen and audit.problems(kernel.inventory) == [] == kernel.inventory.reconcile(seen)
    assert not any(isinstance(v, list) and len(v) >= len(seen) for v in vars(audit).values())
    kernel.inventory.position(m.venue, m.symbol).cash += 1
    assert audit.problems(kernel.inventory) == kernel.inventory.reconcile(seen) != []


def _exact_worst_decile_share(values: list[int]) -> Fraction | None:
    total = sum(-v for v in values if v < 0)
    if not total:
        return None
    worst = sorted(values)[: -(-len(values) // 10)]
    return Fraction(sum(-v for v in worst if v < 0), total)


def test_loss_histogram_is_exact_under_its_bits_and_stays_within_its_bucket_bound() -> None:
    rng = random.Random(16)
    h = LossHistogram()
    small = [rng.randint(-(2**LOSS_HIST_BITS) + 1, 2**LOSS_HIST_BITS) for _ in range(20_000)]
    for v in small:
        h.add(v)
    assert h.worst_decile_share() == _exact_worst_decile_share(small)
    big = [-rng.randint(1, 2**40) for _ in range(200_000)]  # 200,000 distinct-ish losses up to 2**40
    for v in big:
        h.add(v)
    half = 2 ** (LOSS_HIST_BITS - 1)
    assert len(h) <= 2**LOSS_HIST_BITS + half * (40 + 1 - LOSS_HIST_BITS) < len(set(big)) // 10
    exact = _exact_worst_decile_share(small + big)
    got = h.worst_decile_share()
    assert exact is not None and got is not None and abs(got - exact) <= exact / half


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(-(2**50), 2**20), min_size=1, max_size=300), st.integers(1, 12))
def test_loss_histogram_share_is_within_its_stated_error(values: list[int], bits: int) -> None:
    h = LossHistogram(bits)
    for v in values:
        h.add(v)
    exact = _exact_worst_decile_share(values)
    got = h.worst_decile_share()
    if exact is None:
        assert got is None
    else:
        assert got is not None and abs(got - exact) <= exact / 2 ** (bits - 1)
        if all(abs(v) < 2**bits for v in values):
            assert got == exact


def test_the_markout_engines_loss_histogram_stays_bounded_over_many_distinct_losses() -> None:
    e = MarkoutEngine(MarkoutConfig(horizons_s=(1.0,), adverse_horizon_s=1.0, baseline=False))
    e.on_book("sim", "X", 0, 99, 5, 101, 5)
    for i in range(20_000):  # each fill loses a different amount: price 101 + i, size 1..7
        e.on_fill(Fill(1 + i, "sim", "X", 7, BUY, 101 + i, 1 + i % 7, 0, True, 0, i, OUR_OWNER), "mm")
    e.advance(10**10)
    assert (
        e.loss_hist.fills() == 20_000
        and len(e.loss_hist) <= 2**LOSS_HIST_BITS + 2 ** (LOSS_HIST_BITS - 1) * 8
    )
    share = e.worst_decile_share()
    assert share is not None and Fraction(1, 10) < share < 1


RUN_STEPS = 700  # 140 market seconds of a busy sim at 5 Hz: every bound below is passed at least once
BUSY_SIM = {"seed": 7, "depth_levels": 8, "churn_per_s": 10.0, "rate_hz": 5.0, "taker_per_s": 8.0}
SNAPSHOTS_PER_STEP = 6


@pytest.fixture(scope="module")
def long_run() -> dict[str, Any]:
    """The market maker and an immediate hedger on the virtual sim; every fill counts as toxic; two P&L
    snapshots a step (the UI takes one a second); rejects with more distinct reasons than the metrics keep."""
    config = load(use_defaults=False, overrides={"sim": BUSY_SIM, "markouts": {"toxic_bps": 10_000}})
    asm = build(config, "headless", virtual=True, hedge_policy="immediate")
    kernel, sim = asm.kernel, asm.sim
    assert sim is not None and asm.hedger is not None
    metrics = Metrics(kernel, MetricsConfig(enabled=False))
    metrics.start()
    fills = OurFills(kernel)
    sim.open()
    for mm in asm.market_makers:
        mm.resume()
    m = kernel.default_market
    snapshots = 0
    for i in range(RUN_STEPS):
        sim.step()
        kernel.on_timer()
        for _ in range(SNAPSHOTS_PER_STEP):
            kernel.inventory.snapshot(kernel.clock.now(), kernel.marks())
            snapshots += 1
        if i % 10 == 0:  # a distinct reason each time: "reason aa", "reason ab", ...
            reason = "reason " + "".join(chr(97 + (i // 10 // 26**k) % 26) for k in (1, 0))
            kernel.bus.publish(Rejected(kernel.clock.now(), m.venue, m.symbol, 10**9 + i, reason, OUR_OWNER))
    metrics.stop()
    return {
        "kernel": kernel,
        "hedger": asm.hedger,
        "fills": fills,
        "metrics": metrics,
        "snapshots": snapshots,
    }


def _tape(r: dict[str, Any]) -> tuple[int, int, int]:
    m = r["kernel"].default_market
    return len(m.tape), TAPE, m.trades


def _done_orders(r: dict[str, Any]) -> tuple[int, int, int]:
    oms = r["kernel"].oms
    return max(len(oms.recent), len(oms._done_by_id)), DONE_ORDERS, oms.done


def _our_fills(r: dict[str, Any]) -> tuple[int, int, int]:
    f = r["fills"]
    key = r["kernel"].default_market.key
    return max(len(f.by_market[key]), len(f.trade_ids[key])), OUR_FILLS, r["kernel"].oms.fills


def _hedge_orders(r: dict[str, Any]) -> tuple[int, int, int]:
    h = r["hedger"]
    return len(h.recent), HEDGE_ORDERS, h.stats.orders


def _pnl_series(r: dict[str, Any]) -> tuple[int, int, int]:
    return len(r["kernel"].inventory.series), PNL_SNAPSHOTS, r["snapshots"]


def _toxic_fills(r: dict[str, Any]) -> tuple[int, int, int]:
    e = r["kernel"].markouts.engine
    return max(len(e.recent_toxic), len(e.toxic_trade_ids)), TOXIC_FILLS, e.toxic


def _metric_reasons(r: dict[str, Any]) -> tuple[int, int, int]:
    values = r["metrics"]._counts["rejects"].values
    per_prefix: dict[tuple, int] = {}
    for key in values:
        per_prefix[key[:-1]] = per_prefix.get(key[:-1], 0) + 1
    reasons = len({key[-1] for key in values})
    return max(per_prefix.values()), METRIC_REASONS + 1, max(reasons, RUN_STEPS // 10)  # + 1: "other"


def _recent_rejects(r: dict[str, Any]) -> tuple[int, int, int]:
    oms = r["kernel"].oms
    return len(oms.recent_rejects), RECENT_ERRORS, oms.rejects


@pytest.mark.parametrize(
    "measure",
    [
        _tape,
        _done_orders,
        _our_fills,
        _hedge_orders,
        _pnl_series,
        _toxic_fills,
        _metric_reasons,
        _recent_rejects,
    ],
)
def test_each_history_stays_within_its_bound_over_a_long_virtual_run(
    long_run: dict[str, Any], measure: Callable[[dict[str, Any]], tuple[int, int, int]]
) -> None:
    kept, bound, seen = measure(long_run)
    assert seen > bound, f"{measure.__name__}: the run saw only {seen}, not past the bound {bound}"
    assert 0 < kept <= bound, f"{measure.__name__}: keeps {kept}, bound {bound}"


def test_the_long_runs_markout_and_volume_histories_stay_within_their_bounds(
    long_run: dict[str, Any],
) -> None:
    kernel = long_run["kernel"]
    e = kernel.markouts.engine
    assert e.loss_hist.fills() > 2**LOSS_HIST_BITS // 2 or len(e.loss_hist) <= 2**LOSS_HIST_BITS
    assert len(kernel.default_market.volume_at_price) <= VOLUME_PRICES
    assert len(kernel.bus.last_errors) <= RECENT_ERRORS

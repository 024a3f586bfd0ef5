"""Queue position models (hftbacktest's families) on hand-made queues, on both backtest paths: the paper
desk (lobterm/trading/paper.py, the reference path) and the fast path's numba kernel.

The expected positions are computed here from hftbacktest's formulas as its documentation states them
(ProbQueueModel.depth: est_front = front - (1 - p) * chg + min(0, back - p * chg), capped at the new
level size; p = f(back) / (f(back) + f(front)) for power and log, f(back) / f(back + front) for power2
and log2, 1 - f(front / (front + back)) for power3; f(x) = x**n or log(1 + x)), written out
independently of the code under test. One difference: the position never goes below 0 (hftbacktest's
power2 can take it there; a cancel never fills us here)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lobterm.engine.events import BUY
from lobterm.trading.paper import (
    QUEUE_FAMILIES,
    QUEUE_SCALE,
    PaperConfig,
    PaperConfigError,
    front_after_cancels,
    latency_jitter,
    parse_queue_model,
)
from tests.helpers.paper import Tape

pytest.importorskip("numba")

from lobterm.backtest import fastkernel as fk  # noqa: E402
from tests.helpers.fastkernel import book, delta, order, run  # noqa: E402


def hft_front(model: str, n: float, front: float, back: float, chg: float, new_qty: float) -> float:
    """hftbacktest's ProbQueueModel.depth for a decrease of `chg` lots not explained by trades."""
    f = (lambda x: math.log(1 + x)) if model.startswith("log") else (lambda x: x**n)
    if model in ("power", "log"):
        p = f(back) / (f(back) + f(front))
    elif model in ("power2", "log2"):
        p = f(back) / f(back + front)
    else:  # power3
        p = 1 - f(front / (front + back))
    est = front - (1 - p) * chg + min(0.0, back - p * chg)
    # hftbacktest lets est go below 0 (power2 with n > 1 can); lobterm clamps it at 0: a cancel puts us
    # at the front of the queue but never fills us (only trades and crossings do).
    return max(0.0, min(est, new_qty))


SPECS = [
    ("power:1", "power", 1.0),
    ("power:2", "power", 2.0),
    ("power:3", "power", 3.0),
    ("power2:2", "power2", 2.0),
    ("power3:3", "power3", 3.0),
    ("power3:0.5", "power3", 0.5),
    ("log", "log", 1.0),
    ("log2", "log2", 1.0),
]


@pytest.mark.parametrize(("spec", "family", "n"), SPECS)
def test_each_model_moves_the_queue_by_hftbacktests_formula_on_the_desk_and_in_the_kernel(
    spec: str, family: str, n: float
) -> None:
    # The level at 1000 shows 10 when we join (front 10); 30 more join behind us (level 40, back 30);
    # then 8 are cancelled (level 32) and later 20 more (level 12).
    tape = Tape(PaperConfig(cancel_model=spec))
    tape.buy(1, 1000, 5)
    tape.delta(BUY, 1000, 40)
    tape.delta(BUY, 1000, 32)
    want1 = hft_front(family, n, 10.0, 30.0, 8.0, 32.0)
    got1 = tape.desk.order(1).ahead / QUEUE_SCALE
    assert got1 == pytest.approx(want1, abs=1e-6), (spec, got1, want1)
    tape.delta(BUY, 1000, 12)
    want2 = hft_front(family, n, got1, 32.0 - got1, 20.0, 12.0)
    got2 = tape.desk.order(1).ahead / QUEUE_SCALE
    assert got2 == pytest.approx(want2, abs=1e-6), (spec, got2, want2)
    # The kernel, scripted the same way, lands on the same millionths of a lot.
    _f, _S, orders = run(
        book(bid=100, size=10)
        + [order(2, BUY, 100, 5), delta(3, 2, BUY, 100, 40), delta(4, 3, BUY, 100, 32)]
        + [delta(5, 4, BUY, 100, 12)],
        cancel_model=spec,
    )
    assert orders[1][fk.D_AHEAD] == tape.desk.order(1).ahead


def test_the_models_differ_as_their_shapes_say() -> None:
    # Front 10, back 30, 8 cancelled: power:2 puts most cancels behind us (back is large), power:1 a
    # quarter ahead, risk-averse none ahead; power3:3 (1 - (front/level)^3) almost all behind.
    def ahead(spec: str) -> float:
        tape = Tape(PaperConfig(cancel_model=spec))
        tape.buy(1, 1000, 5)
        tape.delta(BUY, 1000, 40)
        tape.delta(BUY, 1000, 32)
        return tape.desk.order(1).ahead / QUEUE_SCALE

    assert ahead("risk_averse") == ahead("conservative") == 10.0
    assert ahead("power:1") == ahead("probabilistic") == 8.0  # 10 - 8 * 10/40
    assert ahead("power:2") == pytest.approx(10 - 8 * 0.1)  # p = 900 / (900 + 100) = 0.9
    assert ahead("power3:3") == pytest.approx(10 - 8 * (0.25**3))
    assert ahead("risk_averse") > ahead("power3:3") > ahead("power:2") > ahead("power:1")


def test_a_cancel_larger_than_the_back_takes_the_rest_from_the_front() -> None:
    # front 10, back 2, 6 cancelled: power:1 p = 2/12; est = 10 - 10/12*6 + min(0, 2 - 1) = 5.
    tape = Tape(PaperConfig(cancel_model="power2:1"))
    tape.buy(1, 1000, 5)
    tape.delta(BUY, 1000, 12)
    tape.delta(BUY, 1000, 6)
    assert tape.desk.order(1).ahead / QUEUE_SCALE == pytest.approx(hft_front("power2", 1, 10, 2, 6, 6))
    assert tape.desk.order(1).ahead == 5 * QUEUE_SCALE


@pytest.mark.parametrize(
    ("spec", "ok"),
    [
        ("risk_averse", ("risk_averse", 1.0)),
        ("Power:2.5", ("power", 2.5)),
        ("power3", ("power3", 1.0)),
        ("log2", ("log2", 1.0)),
        ("probabilistic", ("power", 1.0)),
    ],
)
def test_queue_model_specs_parse(spec: str, ok: tuple) -> None:
    assert parse_queue_model(spec) == ok


@pytest.mark.parametrize(
    "spec", ["optimistic", "power:0", "power:-1", "power:x", "log:2", "risk_averse:3", 7]
)
def test_bad_queue_model_specs_name_the_setting(spec: object) -> None:
    with pytest.raises(PaperConfigError, match="cancel_model"):
        PaperConfig(cancel_model=spec)  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(
    family=st.sampled_from(sorted(QUEUE_FAMILIES)),
    n=st.sampled_from([0.5, 1.0, 1.5, 2.0, 3.0, 7.0]),
    ahead=st.integers(0, 10**12),
    extra=st.integers(0, 10**6),
    cancels=st.integers(0, 10**6),
)
def test_the_kernel_computes_the_same_position_as_the_desk_to_the_millionth(
    family: str, n: float, ahead: int, extra: int, cancels: int
) -> None:
    before = -(-ahead // QUEUE_SCALE) + extra
    cancels = min(cancels, before)
    want = front_after_cancels(family, n, ahead, before, cancels)
    got = fk._front_after_cancels(
        QUEUE_FAMILIES[family], n, np.int64(ahead), np.int64(before), np.int64(cancels)
    )  # noqa: SLF001
    assert int(got) == want
    assert 0 <= want <= ahead


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), i=st.integers(0, 10**9), jitter=st.integers(0, 60 * 10**9))
def test_seeded_latency_draws_are_the_same_in_the_kernel_and_on_the_desk(
    seed: int, i: int, jitter: int
) -> None:
    want = latency_jitter(seed, i, jitter)
    assert fk._jitter(seed, i, jitter) == want if jitter else want == 0  # noqa: SLF001
    assert 0 <= want <= max(0, jitter - 1)


def test_the_desk_counts_the_cancels_that_tell_the_queue_models_apart() -> None:
    # Front 10 when we join, 5 join behind us (level 15), 3 are cancelled: the probabilistic models put
    # some of them behind us (a different position: counted). Alone at the back of a level (nothing
    # joined behind us), a cancel moves us the same under every model: not counted. Risk-averse never
    # counts (it is the reference).
    for spec in ("risk_averse", "power:1", "power3:2", "log"):
        tape = Tape(PaperConfig(cancel_model=spec))
        tape.buy(1, 1000, 5)
        tape.delta(BUY, 1000, 15)
        tape.delta(BUY, 1000, 12)
        ahead = tape.desk.order(1).ahead
        if spec == "risk_averse":
            assert (ahead, tape.desk.queue_sensitive_cancels) == (10 * QUEUE_SCALE, 0)
        else:
            assert ahead < 10 * QUEUE_SCALE and tape.desk.queue_sensitive_cancels == 1, (spec, ahead)
        back = Tape(PaperConfig(cancel_model=spec))
        back.buy(1, 1000, 5)
        back.delta(BUY, 1000, 6)
        assert (back.desk.order(1).ahead, back.desk.queue_sensitive_cancels) == (6 * QUEUE_SCALE, 0), spec

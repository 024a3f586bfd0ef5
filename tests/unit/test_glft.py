"""GLFT: the closed form against hftbacktest's tutorial formulas, the intensity fit on synthetic
arrivals with known A and k, and GLFT quotes from quote_ladder."""

from __future__ import annotations

import math
import random

import pytest

from lobterm.trading.quoting import (
    GLFT,
    IntensityFit,
    QuoteParams,
    fit_intensity,
    glft,
    glft_coeff,
    quote_ladder,
)


def _hftbacktest_coeff(xi, gamma, delta, a, k):
    # hftbacktest "GLFT Market Making Model and Grid Trading": compute_coeff, written out by hand.
    inv_k = 1 / k
    c1 = 1 / (xi * delta) * math.log(1 + xi * delta * inv_k)
    c2 = math.sqrt((gamma / (2 * a * delta * k)) * ((1 + xi * delta * inv_k) ** (k / (xi * delta) + 1)))
    return c1, c2


@pytest.mark.parametrize(
    "gamma,delta,a,k,sigma",
    [(0.05, 1.0, 2.0, 0.5, 2.0), (0.01, 1.0, 10.0, 1.5, 30.0), (0.2, 2.0, 0.3, 0.05, 5.0)],
)
def test_closed_form_matches_hftbacktest(gamma, delta, a, k, sigma) -> None:
    c1, c2 = glft_coeff(gamma, gamma, delta, a, k)
    r1, r2 = _hftbacktest_coeff(gamma, gamma, delta, a, k)
    assert c1 == pytest.approx(r1, rel=1e-12) and c2 == pytest.approx(r2, rel=1e-12)
    adj1, adj2, q, mid = 1.0, 0.05, 3.0, 1000.5
    res, half, skew = glft(mid, q, gamma, delta, a, k, sigma, adj1, adj2)
    assert half == pytest.approx((r1 + delta / 2 * r2 * sigma) * adj1, rel=1e-12)
    assert skew == pytest.approx(r2 * sigma * adj2, rel=1e-12)
    assert res == pytest.approx(mid - skew * q, rel=1e-12)


@pytest.mark.parametrize("a,k", [(2.0, 0.5), (5.0, 0.2), (1.0, 1.0)])
def test_fit_recovers_known_a_and_k(a: float, k: float) -> None:
    rng = random.Random(7)
    window = 3600.0
    depths = [rng.expovariate(k) for _ in range(int(a * window))]
    # Only the bins with a decent count are trustworthy: fit up to where ~20 arrivals are expected.
    max_ticks = int(math.log(a * window / 20) / k)
    fit = fit_intensity(depths, window, max_ticks)
    assert fit is not None
    fa, fk = fit
    assert fa == pytest.approx(a, rel=0.15)
    assert fk == pytest.approx(k, rel=0.1)


def test_rolling_fit_refits_on_schedule_and_forgets_old_arrivals() -> None:
    fit = IntensityFit(window_s=60.0, refit_s=5.0, max_ticks=20)
    rng = random.Random(1)
    s = 1_000_000_000
    for i in range(120 * 4):  # 4 arrivals a second, depth Exp(k=0.5)
        fit.add(i * s // 4, rng.expovariate(0.5))
    assert fit.maybe_refit(120 * s)
    assert not fit.maybe_refit(121 * s)  # not due yet
    assert fit.maybe_refit(125 * s)
    assert all(ts >= 65 * s for ts, _ in fit.arrivals)
    assert fit.k == pytest.approx(0.5, rel=0.3) and fit.a == pytest.approx(4.0, rel=0.4)
    assert fit.last_refit_ns == 125 * s and fit.refits == 2


def test_glft_ladder_skews_against_the_position() -> None:
    p = QuoteParams(mode=GLFT, levels=1, size_lots=10, glft_gamma=0.05, adj2=0.5)
    flat = quote_ladder(p, 1000, 1002, 0, sigma_ticks=3.0, a=2.0, k=0.5)
    long = quote_ladder(p, 1000, 1002, 50, sigma_ticks=3.0, a=2.0, k=0.5)
    _r, half, skew = glft(1001.0, 5.0, 0.05, 1.0, 2.0, 0.5, 3.0, 1.0, 0.5)
    assert flat.spread == pytest.approx(2 * half)
    assert long.reservation == pytest.approx(1001.0 - 5.0 * skew)
    assert long.asks[0][0] < flat.asks[0][0] and long.bids[0][0] < flat.bids[0][0]


def test_glft_params_are_checked() -> None:
    from lobterm.trading.quoting import QuoteParamError

    for name, bad in (
        ("glft_gamma", 0.0),
        ("adj1", -1.0),
        ("glft_fit_ticks", 1),
        ("glft_window_s", math.inf),
    ):
        with pytest.raises(QuoteParamError) as exc:
            QuoteParams(mode=GLFT, **{name: bad}).validate()
        assert exc.value.name == name

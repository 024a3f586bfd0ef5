"""The market maker's model estimates, learnt from its market as it runs: sigma (an EWMA of the mid's
changes), k (an EWMA of trades' distance to the mid, Avellaneda-Stoikov) and the GLFT intensity fit
(A and k from trade arrivals by depth). Pure: fed by `MarketMaker.on_market_data` and read by its
requote cycle (lobterm/trading/quoting.py turns them into a ladder)."""

from __future__ import annotations

import math
from typing import Any

from lobterm.engine.events import BUY, Trade
from lobterm.trading.quoting import GLFT, IntensityFit, QuoteParams, glft

__all__ = ["ModelEstimates"]

_SQRT_HALF_PI = math.sqrt(math.pi / 2.0)


def _new_fit(p: QuoteParams) -> IntensityFit:
    return IntensityFit(p.glft_window_s, p.glft_refit_s, p.glft_fit_ticks)


class ModelEstimates:
    """The estimates in use for `params` (the parameter values where nothing was estimated yet)."""

    def __init__(self, params: QuoteParams) -> None:
        self.params = params
        self.sigma_est: float | None = None  # EWMA estimate of sigma, ticks per sqrt second
        self.vol_prev: tuple[int, int] | None = None  # (ts, 2*mid) at the end of the previous batch
        self.vol_batch: tuple[int, int] | None = None  # (ts, 2*mid) latest of the current batch
        self.trade_depth: float | None = None  # EWMA of a trade's distance to the mid, ticks
        self.trade_samples = 0
        self.fit = _new_fit(params)  # GLFT: A and k from trade arrivals by depth
        self.arrival_key: tuple[int, int] | None = None  # (ts, aggressor) of the last arrival

    def set_params(self, new: QuoteParams) -> None:
        """New parameters; a new GLFT fit window keeps the arrivals seen (a new window, not a cold start)."""
        if (new.glft_window_s, new.glft_refit_s, new.glft_fit_ticks) != (
            self.params.glft_window_s,
            self.params.glft_refit_s,
            self.params.glft_fit_ticks,
        ):
            old, self.fit = self.fit, _new_fit(new)
            for ts, depth in old.arrivals:
                self.fit.add(ts, depth)
        self.params = new

    @property
    def sigma_ticks(self) -> float:
        """The volatility in use: ticks per sqrt second (estimated, or the parameter)."""
        if self.params.estimate_sigma and self.sigma_est is not None:
            return self.sigma_est
        return self.params.sigma_ticks

    @property
    def k_estimate(self) -> float:
        """The order arrival intensity decay in use (per tick)."""
        p = self.params
        if p.mode == GLFT:
            return p.k if self.fit.k is None else self.fit.k
        if p.estimate_k and self.trade_depth is not None and self.trade_samples >= 10:
            return min(100.0, max(0.01, 1.0 / max(self.trade_depth, 0.01)))
        return p.k

    @property
    def a_estimate(self) -> float:
        """GLFT: the fitted trade intensity at the mid (per second), or the `glft_a` prior."""
        return self.params.glft_a if self.fit.a is None else self.fit.a

    def glft_view(self) -> dict[str, Any]:
        """GLFT calibration for the panel: A, k, sigma in use, the half-spread and skew (ticks, skew
        per order of size_lots) they imply, the refit count and the kernel time of the last refit."""
        p = self.params
        a, k, sigma = self.a_estimate, self.k_estimate, self.sigma_ticks
        try:
            _r, half, skew = glft(0.0, 0.0, p.glft_gamma, p.glft_delta, a, k, sigma, p.adj1, p.adj2)
        except (ArithmeticError, ValueError):
            half = skew = math.nan
        return {
            "a": a,
            "k": k,
            "sigma": sigma,
            "half_spread": half,
            "skew": skew,
            "fitted": self.fit.a is not None,
            "refits": self.fit.refits,
            "last_refit_ns": self.fit.last_refit_ns if self.fit.refits else None,
            "arrivals": len(self.fit.arrivals),
        }

    def sample_mid(self, now: int, mid2: int) -> None:
        """EWMA estimate of sigma from the mid's changes, sampled once per timestamp (a venue batch)."""
        batch = self.vol_batch
        if batch is None or now == batch[0]:
            self.vol_batch = (now, mid2)
            return
        if now < batch[0]:
            return
        prev = self.vol_prev
        if prev is not None:
            dt = (batch[0] - prev[0]) / 1e9
            # |change| / sqrt(dt) * sqrt(pi/2) estimates sigma for a Brownian mid; unlike squared
            # changes it is not swamped by one jump.
            x = abs(batch[1] - prev[1]) / 2.0 / math.sqrt(dt) * _SQRT_HALF_PI
            v = self.sigma_est
            self.sigma_est = x if v is None else v + self.params.vol_alpha * (x - v)
        self.vol_prev = batch
        self.vol_batch = (now, mid2)

    def sample_trade(self, price: int, mid2: int) -> None:
        depth = abs(2 * price - mid2) / 2.0
        d = self.trade_depth
        self.trade_depth = depth if d is None else d + self.params.k_alpha * (depth - d)
        self.trade_samples += 1

    def sample_arrival(self, now: int, ev: Trade, mid2: int) -> None:
        """GLFT: one arrival per venue batch and side, at the depth of its deepest trade."""
        depth = (2 * ev.price - mid2) / 2.0 if ev.aggressor == BUY else (mid2 - 2 * ev.price) / 2.0
        if depth < 0:  # the mid moved past the trade within the batch: not an arrival at a depth
            return
        key = (now, ev.aggressor)
        arrivals = self.fit.arrivals
        if key == self.arrival_key and arrivals:
            if depth > arrivals[-1][1]:
                arrivals[-1] = (now, depth)
            return
        self.arrival_key = key
        self.fit.add(now, depth)

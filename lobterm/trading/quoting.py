"""Quote computation, pure: the parameters and the functions that turn the market's state into the
quotes the market maker wants (`lobterm.trading.market_maker` keeps them in line with the book).

Modes:
- `ladder`: r = mid - skew * position; spread from `spread_ticks` (or `spread_bps` of the mid).
- `avellaneda_stoikov`: r = s - q*gamma*sigma^2*tau and spread = gamma*sigma^2*tau +
  (2/gamma)*ln(1 + gamma/k), with sigma estimated from the mid (EWMA, ticks per sqrt second) and k
  configured or estimated from the trades' distance to the mid. tau is the time left to the horizon,
  or the fixed `horizon_s` in the infinite-horizon variant.
- `glft` (Gueant-Lehalle-Fernandez-Tapia, infinite horizon, as in hftbacktest's GLFT tutorial): with
  c1 = 1/(xi*D) * ln(1 + xi*D/k) and c2 = sqrt(gamma/(2*A*D*k) * (1 + xi*D/k)^(k/(xi*D) + 1)), xi =
  gamma, D = `glft_delta`: half-spread = (c1 + D/2 * c2 * sigma) * adj1, skew = c2 * sigma * adj2,
  r = mid - skew * q (q: position in units of `size_lots`). A and k (trade intensity
  lambda(d) = A*exp(-k*d) at depth d ticks from the mid) are fitted from the trades' depths
  (`IntensityFit`), sigma is the mid's (ticks per sqrt second).
Then, in all modes: the spread is at least `min_spread_ticks`; bids round down and asks up onto the
tick grid; bids are clamped below the others' best ask and asks above their best bid (never cross);
sizes shrink on the side that would add to the position and grow on the other (`size_skew`); a side
stops at `max_position_lots`. The model may use floats; everything that leaves as an order is integer
ticks and lots.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, fields

from lobterm.engine.instrument import MAX_UNITS
from lobterm.trading.fair_value import FAIR_VALUES, MID

__all__ = [
    "AVELLANEDA_STOIKOV",
    "GLFT",
    "IntensityFit",
    "LADDER",
    "MODES",
    "PARAM_NAMES",
    "Ladder",
    "QuoteParamError",
    "QuoteParams",
    "avellaneda_stoikov",
    "fit_intensity",
    "glft",
    "glft_coeff",
    "quote_ladder",
]

LADDER = "ladder"
AVELLANEDA_STOIKOV = "avellaneda_stoikov"
GLFT = "glft"
MODES = (LADDER, AVELLANEDA_STOIKOV, GLFT)

# Floats that should be whole ticks (100.5 - 0.5) must not round a whole tick away.
_EPS = 1e-6


# ---- parameters ---------------------------------------------------------------------------------
class QuoteParamError(ValueError):
    """A quote parameter that was refused: `name` the parameter, `value` what was given, `rule` why."""

    def __init__(self, name: str, value: object, rule: str) -> None:
        self.name = name
        self.value = value
        self.rule = rule
        super().__init__(f"quote parameter {name} = {value!r} rejected: {rule}")


@dataclass(frozen=True, slots=True)
class QuoteParams:
    """Everything that shapes the quote ladder. Prices in ticks, sizes in lots, times in ms/s."""

    mode: str = LADDER
    levels: int = 5  # per side
    spread_ticks: int = 2  # full spread between our best bid and best ask (ladder mode)
    spread_bps: float = 0.0  # > 0: the spread is this many bps of the mid instead (ladder mode)
    level_step_ticks: int = 1  # distance between two levels of one side
    size_lots: int = 10  # size of the first level
    size_step_lots: int = 0  # each further level is this much bigger
    sizes: tuple[int, ...] = ()  # explicit sizes per level (the last repeats); overrides size_lots
    skew_ticks_per_lot: float = 0.0  # ladder mode: reservation price = mid - skew * position
    size_skew: float = 0.0  # 0..1: at max position the adding side is (1 - x) times, the other (1 + x)
    min_spread_ticks: int = 1
    max_position_lots: int = 100  # |position| limit; a side never offers more than what is left
    refresh_tolerance_ticks: int = 0  # keep a quote this close to its desired price
    size_tolerance: float = 0.0  # keep a quote whose size is down to (1 - x) of the desired size
    max_order_age_ms: int = 0  # > 0: requote orders older than this
    post_only: bool = True
    use_amend: bool = True  # False: reprice by cancel and new
    stale_after_ms: int = 0  # > 0: pull quotes when no market data came for this long
    reject_backoff_ms: int = 100  # after a rejection, only cancels for this long
    # Avellaneda-Stoikov
    gamma: float = 0.001  # risk aversion, per tick*lot
    sigma_ticks: float = 1.0  # volatility prior (ticks per sqrt second); fixed if not estimate_sigma
    estimate_sigma: bool = True
    vol_alpha: float = 0.05  # EWMA weight of one mid sample
    k: float = 1.5  # order arrival intensity decay per tick; prior if estimate_k
    estimate_k: bool = False
    k_alpha: float = 0.05  # EWMA weight of one trade's distance to the mid
    horizon_s: float = 1.0  # T; the infinite-horizon variant uses it as a fixed tau
    infinite_horizon: bool = True
    # GLFT
    glft_gamma: float = 0.05  # risk aversion (xi = gamma), per tick * order of size_lots
    glft_delta: float = 1.0  # D: the order size in the model (units of size_lots)
    adj1: float = 1.0  # scales the half-spread
    adj2: float = 0.05  # scales the skew
    glft_a: float = 1.0  # A prior (trades per second at the mid) until the first fit
    glft_window_s: float = 600.0  # trades of this long are fitted
    glft_refit_s: float = 5.0  # refit this often
    glft_fit_ticks: int = 70  # fit depths up to this many ticks from the mid
    #: Where the quotes centre (lobterm/trading/fair_value.py): "mid", "microprice" (the quote venue's
    #: touch weighted by size) or "consolidated_microprice" (over every venue listing the instrument).
    fair_value: str = MID

    def validate(self) -> None:
        """Raise `QuoteParamError` naming the first parameter that breaks its rule."""
        if self.mode not in MODES:
            raise QuoteParamError("mode", self.mode, f"must be one of {', '.join(MODES)}")
        if self.fair_value not in FAIR_VALUES:
            raise QuoteParamError("fair_value", self.fair_value, f"must be one of {', '.join(FAIR_VALUES)}")
        _int("levels", self.levels, 1, 50)
        _int("spread_ticks", self.spread_ticks, 0)
        _num("spread_bps", self.spread_bps, 0.0, 10_000.0)
        _int("level_step_ticks", self.level_step_ticks, 1)
        _int("size_lots", self.size_lots, 1, MAX_UNITS)
        _int("size_step_lots", self.size_step_lots, 0, MAX_UNITS)
        if not isinstance(self.sizes, tuple):
            raise QuoteParamError("sizes", self.sizes, "must be a list of lots per level")
        for s in self.sizes:
            if s.__class__ is not int or not 0 < s <= MAX_UNITS:
                raise QuoteParamError(
                    "sizes", self.sizes, f"every size must be a whole number of lots > 0, not {s!r}"
                )
        _num("skew_ticks_per_lot", self.skew_ticks_per_lot, 0.0)
        _num("size_skew", self.size_skew, 0.0, 1.0)
        _int("min_spread_ticks", self.min_spread_ticks, 1)
        _int("max_position_lots", self.max_position_lots, 1, MAX_UNITS)
        _int("refresh_tolerance_ticks", self.refresh_tolerance_ticks, 0)
        _num("size_tolerance", self.size_tolerance, 0.0, 1.0, hi_open=True)
        _int("max_order_age_ms", self.max_order_age_ms, 0)
        _int("stale_after_ms", self.stale_after_ms, 0)
        _int("reject_backoff_ms", self.reject_backoff_ms, 0)
        for name in ("post_only", "use_amend", "estimate_sigma", "estimate_k", "infinite_horizon"):
            if getattr(self, name).__class__ is not bool:
                raise QuoteParamError(name, getattr(self, name), "must be true or false")
        _num("gamma", self.gamma, 0.0, lo_open=True)
        _num("sigma_ticks", self.sigma_ticks, 0.0)
        _num("vol_alpha", self.vol_alpha, 0.0, 1.0, lo_open=True)
        _num("k", self.k, 0.0, lo_open=True)
        _num("k_alpha", self.k_alpha, 0.0, 1.0, lo_open=True)
        _num("horizon_s", self.horizon_s, 0.0, lo_open=True)
        _num("glft_gamma", self.glft_gamma, 0.0, 1e6, lo_open=True)
        _num("glft_delta", self.glft_delta, 0.0, 1e6, lo_open=True)
        _num("adj1", self.adj1, 0.0, 1e3, lo_open=True)
        _num("adj2", self.adj2, 0.0, 1e3)
        _num("glft_a", self.glft_a, 0.0, 1e9, lo_open=True)
        _num("glft_window_s", self.glft_window_s, 1.0, 86_400.0)
        _num("glft_refit_s", self.glft_refit_s, 0.1, 86_400.0)
        _int("glft_fit_ticks", self.glft_fit_ticks, 2, 10_000)

    def level_sizes(self) -> list[int]:
        """The unskewed size of each level, best first."""
        if self.sizes:
            last = len(self.sizes) - 1
            return [self.sizes[min(i, last)] for i in range(self.levels)]
        return [self.size_lots + i * self.size_step_lots for i in range(self.levels)]


PARAM_NAMES = frozenset(f.name for f in fields(QuoteParams))


def _int(name: str, value: object, lo: int, hi: int | None = None) -> None:
    if value.__class__ is not int:
        raise QuoteParamError(name, value, "must be a whole number")
    if value < lo or (hi is not None and value > hi):
        raise QuoteParamError(name, value, f"must be >= {lo}" if hi is None else f"must be in {lo}..{hi}")


def _num(
    name: str,
    value: object,
    lo: float,
    hi: float | None = None,
    *,
    lo_open: bool = False,
    hi_open: bool = False,
) -> None:
    if value.__class__ not in (int, float) or not math.isfinite(value):
        raise QuoteParamError(name, value, "must be a finite number")
    v = float(value)
    if v < lo or (lo_open and v == lo) or (hi is not None and (v > hi or (hi_open and v == hi))):
        low = f"{'(' if lo_open else '['}{lo:g}"
        high = "inf)" if hi is None else f"{hi:g}{')' if hi_open else ']'}"
        raise QuoteParamError(name, value, f"must be in {low}, {high}")


# ---- the desired ladder (pure) -------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Ladder:
    """A desired quote ladder: (price ticks, size lots) per level, best first on each side.

    `reservation` and `spread` are the model's values in ticks (floats, for the UI to round; orders
    use the integer prices of the levels)."""

    reservation: float
    spread: float
    bids: tuple[tuple[int, int], ...]
    asks: tuple[tuple[int, int], ...]


def avellaneda_stoikov(
    mid: float, position: int, gamma: float, sigma2: float, tau_s: float, k: float
) -> tuple[float, float]:
    """(reservation price, optimal total spread), both in ticks.

    r = s - q*gamma*sigma^2*tau; spread = gamma*sigma^2*tau + (2/gamma)*ln(1 + gamma/k), with sigma^2 in
    ticks^2 per second, tau in seconds, q in lots."""
    reservation = mid - position * gamma * sigma2 * tau_s
    spread = gamma * sigma2 * tau_s + (2.0 / gamma) * math.log1p(gamma / k)
    return reservation, spread


def glft_coeff(xi: float, gamma: float, delta: float, a: float, k: float) -> tuple[float, float]:
    """hftbacktest's `compute_coeff`: (c1, c2) of the GLFT closed form."""
    inv_k = 1.0 / k
    c1 = 1.0 / (xi * delta) * math.log1p(xi * delta * inv_k)
    c2 = math.sqrt(gamma / (2.0 * a * delta * k) * (1.0 + xi * delta * inv_k) ** (k / (xi * delta) + 1.0))
    return c1, c2


def glft(
    mid: float,
    q: float,
    gamma: float,
    delta: float,
    a: float,
    k: float,
    sigma: float,
    adj1: float = 1.0,
    adj2: float = 1.0,
) -> tuple[float, float, float]:
    """(reservation price, half-spread, skew per unit of q), ticks; sigma in ticks per sqrt second."""
    c1, c2 = glft_coeff(gamma, gamma, delta, a, k)
    half_spread = (c1 + delta / 2.0 * c2 * sigma) * adj1
    skew = c2 * sigma * adj2
    return mid - skew * q, half_spread, skew


def fit_intensity(depths: Iterable[float], window_s: float, max_ticks: int) -> tuple[float, float] | None:
    """Fit lambda(d) = A*exp(-k*d) to trade arrivals: `depths` are the deepest trade of each arrival
    (ticks from the mid before it), over `window_s` seconds. lambda at d_i = i + 0.5 ticks is the
    rate of arrivals reaching d_i; least squares of ln(lambda) on d over the bins that have any.
    None when fewer than two bins do or the slope is not negative."""
    counts = [0] * max_ticks
    for d in depths:
        n = min(max_ticks, math.floor(d + 0.5))  # arrivals with d >= i + 0.5 reach bins 0..n-1
        for i in range(n):
            counts[i] += 1
    xs = [i + 0.5 for i, c in enumerate(counts) if c > 0]
    ys = [math.log(c / window_s) for c in counts if c > 0]
    w = len(xs)
    if w < 2:
        return None
    sx, sy = sum(xs), sum(ys)
    sxx = sum(x * x for x in xs)
    sxy = sum(x * y for x, y in zip(xs, ys, strict=True))
    den = w * sxx - sx * sx
    slope = (w * sxy - sx * sy) / den
    if not slope < 0:
        return None
    return math.exp((sy - slope * sx) / w), -slope


class IntensityFit:
    """The rolling fit of A and k: trade arrivals by depth over the last `window_s`, refitted every
    `refit_s` (kernel time). `add(ts_ns, depth)` once per arrival (a venue batch's deepest trade of a
    side); `maybe_refit(now_ns)` refits when due and returns True when it did."""

    def __init__(self, window_s: float, refit_s: float, max_ticks: int) -> None:
        self.window_s = window_s
        self.refit_s = refit_s
        self.max_ticks = max_ticks
        self.arrivals: deque[tuple[int, float]] = deque()
        self.a: float | None = None
        self.k: float | None = None
        self.last_refit_ns: int | None = None
        self._first_ns: int | None = None
        self.refits = 0

    def add(self, ts_ns: int, depth: float) -> None:
        if self._first_ns is None:
            self._first_ns = ts_ns
        self.arrivals.append((ts_ns, depth))

    def maybe_refit(self, now_ns: int) -> bool:
        last = self.last_refit_ns
        if last is not None and now_ns - last < self.refit_s * 1e9:
            return False
        if self._first_ns is None:
            return False
        horizon = now_ns - int(self.window_s * 1e9)
        arrivals = self.arrivals
        while arrivals and arrivals[0][0] < horizon:
            arrivals.popleft()
        # Until a whole window has passed, the rate is over the time seen so far.
        span = min(self.window_s, (now_ns - self._first_ns) / 1e9)
        if span < min(self.window_s, 10.0):
            return False
        self.last_refit_ns = now_ns
        fit = fit_intensity((d for _, d in arrivals), span, self.max_ticks)
        if fit is None:
            return False
        self.a, self.k = fit
        self.refits += 1
        return True


def quote_ladder(
    p: QuoteParams,
    best_bid: int,
    best_ask: int,
    position: int,
    *,
    sigma_ticks: float | None = None,
    k: float | None = None,
    tau_s: float | None = None,
    a: float | None = None,
    min_lots: int = 1,
    max_lots: int = MAX_UNITS,
    fair: float | None = None,
) -> Ladder:
    """The desired ladder around the others' best bid/ask (ticks) for a signed `position` (lots).

    `sigma_ticks`, `k` and `tau_s` feed the Avellaneda-Stoikov mode, `sigma_ticks`, `a` and `k` the GLFT
    mode (defaults: the parameters' priors and `horizon_s`). `fair`: the centre in ticks in place of the mid
    (a microprice, lobterm/trading/fair_value.py); the quotes still never cross the others' touch."""
    mid = (best_bid + best_ask) / 2.0 if fair is None else fair
    if p.mode == GLFT:
        sig = p.sigma_ticks if sigma_ticks is None else sigma_ticks
        try:
            reservation, half, _skew = glft(
                mid,
                position / p.size_lots,
                p.glft_gamma,
                p.glft_delta,
                p.glft_a if a is None else a,
                p.k if k is None else k,
                sig,
                p.adj1,
                p.adj2,
            )
        except (ArithmeticError, ValueError):  # a degenerate fit (overflow): no quotes rather than a crash
            return Ladder(math.nan, math.nan, (), ())
        spread = 2.0 * half
    elif p.mode == AVELLANEDA_STOIKOV:
        sig = p.sigma_ticks if sigma_ticks is None else sigma_ticks
        reservation, spread = avellaneda_stoikov(
            mid,
            position,
            p.gamma,
            sig * sig,
            p.horizon_s if tau_s is None else tau_s,
            p.k if k is None else k,
        )
    else:
        reservation = mid - p.skew_ticks_per_lot * position
        spread = p.spread_bps * mid / 1e4 if p.spread_bps > 0 else float(p.spread_ticks)
    if not (math.isfinite(reservation) and math.isfinite(spread)):
        return Ladder(reservation, spread, (), ())
    spread = max(spread, float(p.min_spread_ticks))
    half = spread / 2.0
    # Bids round down, asks up: the spread is at least what was asked for. Then never cross the others.
    bid0 = min(math.floor(reservation - half + _EPS), best_ask - 1)
    ask0 = max(math.ceil(reservation + half - _EPS), best_bid + 1)

    base = p.level_sizes()
    ratio = max(-1.0, min(1.0, position / p.max_position_lots))
    step = p.level_step_ticks
    bids = _side(
        bid0, -step, base, 1.0 - p.size_skew * ratio, p.max_position_lots - position, min_lots, max_lots
    )
    asks = _side(
        ask0, step, base, 1.0 + p.size_skew * ratio, p.max_position_lots + position, min_lots, max_lots
    )
    return Ladder(reservation, spread, bids, asks)


def _side(
    top: int, step: int, base: list[int], factor: float, budget: int, min_lots: int, max_lots: int
) -> tuple[tuple[int, int], ...]:
    out = []
    price = top
    for size in base:
        if price < 1 or price > MAX_UNITS or budget < min_lots:
            break
        lots = min(int(size * factor + _EPS), max_lots, budget)
        if lots >= min_lots:
            out.append((price, lots))
            budget -= lots
        price += step
    return tuple(out)

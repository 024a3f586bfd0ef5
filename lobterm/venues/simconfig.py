"""The sim venue's settings: `SimConfig` (the `[sim]` section), its bounds, and the named profiles.

Split out of lobterm/venues/sim.py (the venue and its participants); `lobterm.venues.sim` re-exports
every name here, so `from lobterm.venues.sim import SimConfig, PROFILES` keeps working.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import NotRequired, TypedDict

from lobterm.engine.errors import ParameterError
from lobterm.engine.instrument import Instrument, InstrumentError
from lobterm.venues.perp import MARKETS

__all__ = ["PROFILES", "PROFILE_MM", "SIM_BOUNDS", "ProfileSettings", "SimConfig", "SimConfigError"]


class SimConfigError(ParameterError):
    """A sim setting that cannot work: `name`, the `value` given and the `rule` it broke."""

    area = "sim"


# (lowest, highest) of each number. The bounds keep every run finite: the fair price is a float that
# moves by exp(gauss(0, vol)) per step and jumps by exp(jump), so volatility and jumps are capped well
# below what overflows in a long run; depth, churn and taker flow are capped where a step stays cheap.
SIM_BOUNDS: dict[str, tuple[float, float]] = {
    "seed": (-(2**63), 2**63 - 1),
    "rate_hz": (0.01, 1000.0),
    "depth_levels": (1, 1000),
    "touch_lots": (1, 10**9),
    "depth_slope": (0.0, 10.0),
    "churn_per_s": (0.0, 100_000.0),
    "taker_per_s": (0.0, 10_000.0),
    "taker_mean_lots": (1, 10**9),
    "vol_bps": (0.0, 100.0),
    "burst_per_min": (0.0, 600.0),
    "burst_mult": (1.0, 20.0),
    "burst_seconds": (0.001, 86_400.0),
    "jump_per_min": (0.0, 600.0),
    "jump_bps": (0.0, 2_000.0),
    "fair_events_per_s": (0.0, 1_000.0),
    "lp_delay_ms": (0.0, 60_000.0),
    "taker_delay_ms": (0.0, 60_000.0),
    "lp_spread_ticks": (1, 1_000),
    "taker_tail": (1.2, 10.0),
    "informed_share": (0.0, 1.0),
    "informed_horizon_s": (0.0, 600.0),
    "informed_reach_ticks": (0, 1_000_000),
    "noise_lean": (0.0, 0.5),
    "impact_ticks": (0.0, 10_000.0),
    "impact_half_life_s": (0.001, 3_600.0),
    "maker_fee_ppm": (-100_000, 100_000),
    "taker_fee_ppm": (-100_000, 100_000),
}
# The fair price is a float: keep the start well inside float's exact integers (2**53).
_MAX_START_TICKS = 10**13
_SMALLEST_STEP = Decimal("1e-12")


@dataclass(slots=True)
class SimConfig:
    """Everything that shapes the simulated market. All sizes in lots, prices in ticks of `tick_size`."""

    venue: str = "sim"
    symbol: str = "BTC/USDT"
    tick_size: Decimal = Decimal("0.1")
    lot_size: Decimal = Decimal("0.001")
    start_price: Decimal = Decimal("65000")
    seed: int = 1
    rate_hz: float = 20.0  # steps (market data batches) per second
    # The rest is the "btc-spot" profile (PROFILES below); `profile` names the one these came from.
    profile: str = "btc-spot"
    depth_levels: int = 40  # levels per side the liquidity providers keep
    touch_lots: int = 60  # typical size at the touch; deeper levels are thicker
    depth_slope: float = 0.15  # each level further out is this much thicker than the touch
    lp_spread_ticks: int = 1  # the providers' spread around the fair price (one more when it straddles)
    churn_per_s: float = 60.0  # random provider cancels (and so re-quotes) per second
    taker_per_s: float = 6.0  # taker orders per second (calm regime)
    taker_mean_lots: int = 120  # scale of taker sizes; the tail is Pareto with index `taker_tail`
    taker_tail: float = 1.5  # Pareto index of taker sizes: smaller is heavier (2.2: finite variance)
    informed_share: float = 0.1  # share of takers that know the fair price `informed_horizon_s` ahead
    informed_horizon_s: float = 5.0
    #: > 0: informed takers take at most this many ticks beyond the touch (0: up to the future fair price).
    informed_reach_ticks: int = 0
    #: How far the noise takers lean towards the fair price (the buy share is 0.5 +- at most this): the
    #: lean makes them trade with quotes the fair price has left behind, i.e. informed about the present.
    noise_lean: float = 0.35
    #: Transient impact of the noise takers: a noise order of the mean size moves the point the providers
    #: quote around by `impact_ticks` (square root of size), decaying with `impact_half_life_s`; the fair
    #: price does not move. 0 (every profile): measured, it hurts a market maker (see issue 13 report).
    impact_ticks: float = 0.0
    impact_half_life_s: float = 2.0
    vol_bps: float = 0.5  # fair price volatility, basis points per sqrt(second), calm regime
    burst_per_min: float = 0.5  # how often a volatility burst starts
    burst_mult: float = 3.0  # volatility and taker flow in a burst, times calm
    burst_seconds: float = 8.0  # mean length of a burst
    jump_per_min: float = 0.3  # how often the fair price jumps
    jump_bps: float = 6.0  # mean jump size (exponential)
    #: > 0: the fair price moves in discrete events, this many a second (Poisson), each a move of random
    #: sign and exponential size scaled so that the volatility is still `vol_bps`; between events it
    #: stands still. 0: a small gaussian move every step (a continuous diffusion).
    fair_events_per_s: float = 4.0
    #: The providers see a move of the fair price this late (exponential delay, mean in ms; in order):
    #: until then they quote around where it was. 0: in the step it happens.
    lp_delay_ms: float = 0.0
    #: The noise takers' lean sees a move of the fair price this late (as `lp_delay_ms`). 0: at once.
    taker_delay_ms: float = 150.0
    maker_fee_ppm: int = 0  # a market maker's tier (see PROFILES: btc-spot)
    taker_fee_ppm: int = 400  # 4 bp
    market: str = "spot"  # or "perp": a linear perpetual with mark, funding and margin ([perp])
    #: Paper trading the sim (`--paper`): the paper desk's optimistic "book crosses our price" rule
    #: (`PaperConfig.cross_fills`). Off: paper fills track the matching engine's (see paper.py).
    paper_cross_fills: bool = False

    def with_profile(self, name: str) -> SimConfig:
        """A copy with profile `name`'s settings (PROFILES); raises SimConfigError for an unknown name."""
        if name not in PROFILES:
            raise SimConfigError("profile", name, f"must be one of {', '.join(PROFILES)}")
        return replace(self, profile=name, **PROFILES[name])

    def instrument(self) -> Instrument:
        return Instrument(self.symbol, tick_size=self.tick_size, lot_size=self.lot_size, venue=self.venue)

    def validate(self) -> None:
        """Raise `SimConfigError` naming the first setting that breaks its rule (see SIM_BOUNDS)."""
        if self.profile not in PROFILES:
            raise SimConfigError("profile", self.profile, f"must be one of {', '.join(PROFILES)}")
        if type(self.paper_cross_fills) is not bool:
            raise SimConfigError("paper_cross_fills", self.paper_cross_fills, "must be true or false")
        for name in ("venue", "symbol"):
            v = getattr(self, name)
            if type(v) is not str or not v.strip() or len(v) > 64 or not v.isprintable():
                raise SimConfigError(name, v, "must be a name of 1 to 64 printable characters")
        for name, (lo, hi) in SIM_BOUNDS.items():
            v = getattr(self, name)
            whole = type(lo) is int
            if whole and type(v) is not int:
                raise SimConfigError(name, v, "must be a whole number")
            if not whole and (type(v) not in (int, float) or not math.isfinite(v)):
                raise SimConfigError(name, v, "must be a finite number")
            if not lo <= v <= hi:
                raise SimConfigError(name, v, f"must be in {lo:g}..{hi:g}")
        for name in ("tick_size", "lot_size"):
            v = getattr(self, name)
            # At most 12 decimals (what a screen can show) and at most 1e9: the grid of a real market.
            if (
                type(v) is not Decimal
                or not v.is_finite()
                or not _SMALLEST_STEP <= v <= 10**9
                or v.normalize().as_tuple().exponent < -12  # type: ignore[operator]
            ):
                raise SimConfigError(
                    name, v, "must be a decimal number in 1e-12..1e9 with at most 12 decimals"
                )
        if self.market not in MARKETS:
            raise SimConfigError("market", self.market, f"must be one of {', '.join(MARKETS)}")
        if type(self.start_price) is not Decimal:
            raise SimConfigError("start_price", self.start_price, "must be a decimal number")
        try:
            inst = self.instrument()
        except InstrumentError as exc:
            raise SimConfigError(exc.what.replace(" ", "_"), exc.value, exc.rule) from None
        try:
            start = inst.ticks(self.start_price)
        except InstrumentError as exc:
            raise SimConfigError("start_price", self.start_price, exc.rule) from None
        if start > _MAX_START_TICKS:
            raise SimConfigError("start_price", self.start_price, f"must be at most {_MAX_START_TICKS} ticks")


class ProfileSettings(TypedDict):
    """The `SimConfig` fields a profile sets (PROFILES): `SimConfig`'s names and types."""

    symbol: str
    tick_size: Decimal
    lot_size: Decimal
    start_price: Decimal
    depth_levels: int
    touch_lots: int
    depth_slope: float
    lp_spread_ticks: int
    churn_per_s: float
    taker_per_s: float
    taker_mean_lots: int
    taker_tail: float
    informed_share: float
    informed_horizon_s: float
    informed_reach_ticks: int
    noise_lean: float
    impact_ticks: float
    impact_half_life_s: float
    vol_bps: float
    burst_per_min: float
    burst_mult: float
    burst_seconds: float
    jump_per_min: float
    jump_bps: float
    fair_events_per_s: float
    lp_delay_ms: float
    taker_delay_ms: float
    maker_fee_ppm: int
    taker_fee_ppm: int
    market: NotRequired[str]


#: Named markets (`[sim] profile`): settings calibrated so that the sim's own export shows the stated
#: statistics (tests/integration/test_sim_profiles.py measures them; `profile_stats` computes them).
#: - btc-spot: BTC/USDT spot, annualised volatility 40-70%: a calm fair price that moves in discrete
#:   events (4 a second, `fair_events_per_s`, 0.5 bp/sqrt s), rare volatility bursts, a jump about
#:   every 3 min of ~6 bp; a 1-3 tick spread (0.1 USDT) over a thin touch (60 lots, +15% a level),
#:   heavy-tailed taker sizes (Pareto 1.5), ~6 taker orders/s, 10% informed takers (they know the
#:   fair price 5 s ahead). The providers see a move at once; the noise takers 150 ms late on average
#:   (`taker_delay_ms`), and they trade on the book as the last step left it, which a market maker has
#:   seen: a quote that re-centres on the mid each step is not picked off by the step's own move.
#:   Measured from its own export (seed 1, 300 s, python -m lobterm.bench.sim_profiles): annualised
#:   volatility 41% (26% without the jumps), median spread 3 ticks (p90 12), 6.6 taker orders/s
#:   (54 prints/s), trade size p99 9x and max 35x the median, median touch 0.075 BTC.
#:   Fees: a market maker's account, 0 bp maker (Binance's Spot Liquidity Provider Program, tier 1:
#:   maker 0.0000%, announcement of 2022-02-14; Binance's regular spot tiers run from 10 bp at VIP 0 to
#:   1.2 bp at VIP 9, 0.9 bp paying in BNB), 4 bp taker. Fees belong to the account, not the market:
#:   `[sim] maker_fee_ppm = 100` (VIP 9) costs 1 bp of 65000, 65 ticks a fill, against the ~3 ticks
#:   a quote here captures. Market makers measured (lobterm run --headless --duration 600 --seed 1/2/3; 5 s
#:   markout; USDT; seeds 1/2/3):
#:    [mm] setting                    fills           spread captured    adverse selection   net (fees 0)
#:    PROFILE_MM: levels 1, spread 8, 1225/1241/985   +8.91/+9.03/+7.04  -1.39/-6.07/-3.87   +5.04/+0.88/+3.05
#:      size 30, skew 0.2 t/lot, max 60
#:    the same, no skew               513/536/600     +6.01/+6.65/+6.83  -18.7/-9.63/-2.83   -10.7/+1.14/-1.26
#:    default: 5 levels, spread 2,    6201/6252/6532  +13.5/+13.9/+14.9  -15.8/-15.6/-42.1   -9.19/+6.77/-14.8
#:      size 10, no skew, max 100
#:   (net = spread captured + adverse selection + inventory P&L - fees). Where the fills come from
#:   (python -m lobterm.bench.sim_fill_sources 1 PROFILE_MM, 600 s): noise market orders 715 fills
#:   +2.4 ticks against the fair price, noise IOCs 393 at +2.8, informed 105 at -3.8 with the mid
#:   79 ticks against us 5 s later: uninformed flow pays the spread, informed flow takes most of it
#:   back, and an unskewed or touch-hugging quote loses. The per-seed spread of net (inventory P&L
#:   over 600 s is +-3 USDT) is as large as the edge: judge a setting on several seeds.
#:   Before (the fair price diffusing ~10 ticks a step, everyone reacting within the step): no setting
#:   won; spread 20: net -7.6/-12.4/-15.0, default -76 to -96 adverse selection.
#: - alt-thin: a thin altcoin: wider spread (4-5 ticks of 0.4 bp), thin book, fewer and burstier
#:   trades with a heavier size tail, higher volatility and bigger jumps, 20% informed. Like btc-perp,
#:   still the continuous fair price (a move every step) that everyone sees at once.
#: - btc-perp: the BTC perpetual: its price process and flow (more and bigger trades, a little more
#:   volatility, perp fees) on a perp market (`market = "perp"`: mark, funding, margin; [perp]).
PROFILES: dict[str, ProfileSettings] = {
    "btc-spot": {
        "symbol": "BTC/USDT",
        "tick_size": Decimal("0.1"),
        "lot_size": Decimal("0.001"),
        "start_price": Decimal("65000"),
        "depth_levels": 40,
        "touch_lots": 60,
        "depth_slope": 0.15,
        "lp_spread_ticks": 1,
        "churn_per_s": 60.0,
        "taker_per_s": 6.0,
        "taker_mean_lots": 120,
        "taker_tail": 1.5,
        "informed_share": 0.1,
        "informed_horizon_s": 5.0,
        "informed_reach_ticks": 0,
        "noise_lean": 0.35,
        "impact_ticks": 0.0,
        "impact_half_life_s": 2.0,
        "vol_bps": 0.5,
        "burst_per_min": 0.5,
        "burst_mult": 3.0,
        "burst_seconds": 8.0,
        "jump_per_min": 0.3,
        "jump_bps": 6.0,
        "fair_events_per_s": 4.0,
        "lp_delay_ms": 0.0,
        "taker_delay_ms": 150.0,
        "maker_fee_ppm": 0,  # a market maker's tier (above)
        "taker_fee_ppm": 400,
    },
    "alt-thin": {
        "symbol": "ALT/USDT",
        "tick_size": Decimal("0.0001"),
        "lot_size": Decimal("0.001"),
        "start_price": Decimal("2.5"),
        "depth_levels": 25,
        "touch_lots": 20_000,
        "depth_slope": 0.3,
        "lp_spread_ticks": 4,
        "churn_per_s": 15.0,
        "taker_per_s": 0.8,
        "taker_mean_lots": 15_000,
        "taker_tail": 1.6,
        "informed_share": 0.2,
        "informed_horizon_s": 10.0,
        "informed_reach_ticks": 0,
        "noise_lean": 0.35,
        "impact_ticks": 0.0,
        "impact_half_life_s": 2.0,
        "vol_bps": 2.0,
        "burst_per_min": 1.0,
        "burst_mult": 3.0,
        "burst_seconds": 10.0,
        "jump_per_min": 0.5,
        "jump_bps": 25.0,
        "fair_events_per_s": 0.0,
        "lp_delay_ms": 0.0,
        "taker_delay_ms": 0.0,
        "maker_fee_ppm": 200,
        "taker_fee_ppm": 600,
    },
    "btc-perp": {
        "symbol": "BTC/USDT:USDT",
        "tick_size": Decimal("0.1"),
        "lot_size": Decimal("0.001"),
        "start_price": Decimal("65000"),
        "depth_levels": 40,
        "touch_lots": 400,
        "depth_slope": 0.15,
        "lp_spread_ticks": 1,
        "churn_per_s": 120.0,
        "taker_per_s": 8.0,
        "taker_mean_lots": 250,
        "taker_tail": 2.0,
        "informed_share": 0.15,
        "informed_horizon_s": 5.0,
        "informed_reach_ticks": 0,
        "noise_lean": 0.35,
        "impact_ticks": 0.0,
        "impact_half_life_s": 2.0,
        "vol_bps": 0.8,
        "burst_per_min": 0.6,
        "burst_mult": 3.0,
        "burst_seconds": 8.0,
        "jump_per_min": 0.15,
        "jump_bps": 8.0,
        "fair_events_per_s": 0.0,
        "lp_delay_ms": 0.0,
        "taker_delay_ms": 0.0,
        "maker_fee_ppm": 200,
        "taker_fee_ppm": 500,
        "market": "perp",  # mark, funding, margin and liquidation ([perp]; lobterm.venues.perp)
    },
}

#: A market-maker setting (`[mm]` keys) measured to net a profit on a profile (see the table above
#: PROFILES; tests/integration/test_sim_mm_edge.py holds it to that): one level 4 ticks each side of the
#: mid, 30 lots, skewed 0.2 ticks a lot of position, at most 60 lots long or short.
PROFILE_MM: dict[str, dict[str, int | float]] = {
    "btc-spot": {
        "levels": 1,
        "spread_ticks": 8,
        "size_lots": 30,
        "skew_ticks_per_lot": 0.2,
        "max_position_lots": 60,
    },
}

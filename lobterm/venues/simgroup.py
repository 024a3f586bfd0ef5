"""Several sim venues on one shared, correlated fair price (`[venues.NAME] kind = "sim"`, `[simgroup]`).

Each member venue draws its fair price from two parts:

- a **common** process shared by the group, drawn from `random.Random(seed)`: per step a standard normal
  shock, the volatility regime (a burst on or off) and jumps (sign and an Exp(1) size); each member
  scales them by its own `vol_bps`, `burst_mult` and `jump_bps`. Burst and jump frequencies are the
  first member's (`burst_per_min`, `burst_seconds`, `jump_per_min`);
- an **idiosyncratic basis**, a mean-reverting (Ornstein-Uhlenbeck) deviation in log price drawn from
  the member's own random stream, with half-life `basis_halflife_s`.

Per step, member i's log return is `vol_i * (sqrt(rho) * z_common + sqrt(1 - rho) * dz_i)`, so two
members' short-horizon returns correlate at `correlation` (rho) while their prices stay together (the
basis reverts). A member with `lag_ms` > 0 sees the common shocks that many milliseconds late: the
other venues lead it. All members step at the same `rate_hz` (checked by the config), so the lag is
a whole number of steps and everything is a pure function of the seeds: the same run every time,
whether the venues step in lock-step on one virtual clock or each on its own task on the wall clock.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Protocol

__all__ = ["FairGroup", "FairMember", "GroupConfig"]


class Scales(Protocol):
    """What a member scales the common shocks by (SimConfig has these)."""

    vol_bps: float
    burst_mult: float
    jump_bps: float


@dataclass(frozen=True, slots=True)
class GroupConfig:
    """[simgroup]: the shared fair price of the sim venues."""

    correlation: float = 0.9  # of the members' short-horizon log returns (0..1)
    seed: int = 1
    basis_halflife_s: float = 30.0  # how fast a member's price returns to the common one


class FairGroup:
    """The common shocks, drawn lazily and shared by index (step number) between the members."""

    def __init__(
        self,
        config: GroupConfig,
        rate_hz: float,
        burst_per_min: float,
        burst_seconds: float,
        jump_per_min: float,
    ) -> None:
        self.config = config
        self.dt = 1.0 / rate_hz
        self.rng = random.Random(config.seed)
        self._burst_per_step = burst_per_min / 60.0 * self.dt
        self._burst_seconds = burst_seconds
        self._jump_per_step = jump_per_min / 60.0 * self.dt
        self._burst_left = 0.0
        self._shocks: list[tuple[float, bool, float]] = []  # (z, in a burst, signed jump in Exp(1) units)
        self._base = 0  # index of _shocks[0]
        self.members: list[FairMember] = []

    def member(self, lag_ms: float) -> FairMember:
        m = FairMember(self, round(lag_ms / 1000.0 / self.dt))
        self.members.append(m)
        return m

    def shock(self, i: int) -> tuple[float, bool, float]:
        """The common shock of step `i` (before the first step: none)."""
        if i < 0:
            return 0.0, False, 0.0
        shocks = self._shocks
        while self._base + len(shocks) <= i:
            rng = self.rng
            if self._burst_left > 0:
                self._burst_left -= self.dt
            elif rng.random() < self._burst_per_step:
                self._burst_left = rng.expovariate(1.0 / self._burst_seconds)
            z = rng.gauss(0.0, 1.0)
            jump = 0.0
            if rng.random() < self._jump_per_step:
                jump = (1.0 if rng.random() < 0.5 else -1.0) * rng.expovariate(1.0)
            shocks.append((z, self._burst_left > 0, jump))
        if len(shocks) > 4096:  # forget what every member has used
            low = min(m.drawn - m.lag for m in self.members) if self.members else i
            drop = max(0, min(low, i) - self._base - 1)
            if drop:
                del shocks[:drop]
                self._base += drop
        return shocks[i - self._base]


class FairMember:
    """One venue's view of the group: its lag (in steps) and its own basis, drawn from the venue's own
    random stream. `draw` is SimVenue's hook (`SimVenue(..., fair=member)`)."""

    def __init__(self, group: FairGroup, lag_steps: int) -> None:
        self.group = group
        self.lag = lag_steps
        self.drawn = 0
        self.basis = 0.0  # log deviation from the common price
        self.common = 0.0  # cumulative common log return (scaled by this member's volatility)

    def draw(self, cfg: Scales, rng: random.Random, start: float) -> tuple[float, float]:
        """The venue's next fair price (from its `start`) and burst multiplier (see the module docstring);
        the basis is drawn from `rng`, the venue's own random stream."""
        g = self.group
        z, burst, jump = g.shock(self.drawn - self.lag)
        self.drawn += 1
        mult = cfg.burst_mult if burst else 1.0
        rho = g.config.correlation
        sigma = cfg.vol_bps * 1e-4 * mult * math.sqrt(g.dt)
        self.common += sigma * math.sqrt(rho) * z + jump * cfg.jump_bps * 1e-4
        keep = math.exp(-math.log(2.0) * g.dt / g.config.basis_halflife_s)
        self.basis = self.basis * keep + sigma * math.sqrt(1.0 - rho) * rng.gauss(0.0, 1.0)
        return max(10.0, start * math.exp(self.common + self.basis)), mult

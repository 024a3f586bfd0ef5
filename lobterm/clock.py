"""Kernel clocks: all time in lobterm comes from one of these, as integer nanoseconds since the epoch.

- `LiveClock`: wall time, for live venues and the interactive sim.
- `VirtualClock`: time that only moves when told to: the headless sim (as fast as the machine can run
  it, yet with believable timestamps) and replay (recorded timestamps). Same input, same times.
"""

from __future__ import annotations

import time


class LiveClock:
    __slots__ = ()
    virtual = False

    def now(self) -> int:
        return time.time_ns()


class VirtualClock:
    __slots__ = ("_now",)
    virtual = True

    def __init__(self, start_ns: int = 0) -> None:
        self._now = start_ns

    def now(self) -> int:
        return self._now

    def advance_to(self, ts_ns: int) -> None:
        """Move to `ts_ns`; time never runs backwards (an older timestamp leaves the clock where it is)."""
        if ts_ns > self._now:
            self._now = ts_ns

    def advance(self, dt_ns: int) -> None:
        if dt_ns > 0:
            self._now += dt_ns


Clock = LiveClock | VirtualClock

# The virtual clock's default start: 2026-01-01T00:00:00Z, so that headless sim timestamps read as dates.
VIRTUAL_EPOCH_NS = 1_767_225_600 * 1_000_000_000

"""`lobterm run --headless`: the same kernel and venue, no TUI, a summary at the end.

By default simulated time runs as fast as the machine can go on a virtual clock, so that a run is
deterministic: the same seed gives the same events and the same state hash. `realtime=True` paces
the sim venue on the wall clock instead, as the TUI does.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from lobterm.clock import VIRTUAL_EPOCH_NS, LiveClock, VirtualClock
from lobterm.config import Config
from lobterm.kernel import Kernel
from lobterm.venues.sim import SimVenue


@dataclass(slots=True)
class RunSummary:
    venue: str
    symbol: str
    seed: int
    sim_seconds: float
    wall_seconds: float
    events: int
    venue_trades: int
    venue_traded: str
    our_orders: int
    our_fills: int
    our_rejects: int
    position: str
    best_bid: str | None
    best_ask: str | None
    subscriber_errors: int
    book_gaps: int
    state_hash: str

    def as_dict(self) -> dict:
        return {f: getattr(self, f) for f in self.__slots__}

    def as_text(self) -> str:
        lines = [f"lobterm headless run: {self.venue} {self.symbol}, seed {self.seed}",
                 f"  simulated {self.sim_seconds:g} s in {self.wall_seconds:.2f} s wall",
                 f"  events processed   {self.events:,}",
                 f"  venue trades       {self.venue_trades:,} ({self.venue_traded} traded)",
                 f"  our orders / fills {self.our_orders:,} / {self.our_fills:,} ({self.our_rejects} rejected)",
                 f"  position           {self.position}",
                 f"  final bid / ask    {self.best_bid} / {self.best_ask}",
                 f"  book gaps          {self.book_gaps}",
                 f"  subscriber errors  {self.subscriber_errors}",
                 f"  state hash         {self.state_hash}"]
        return "\n".join(lines)


def build_sim_kernel(config: Config, *, virtual: bool) -> tuple[Kernel, SimVenue]:
    venue = SimVenue(config.sim)
    clock = VirtualClock(VIRTUAL_EPOCH_NS) if virtual else LiveClock()
    return Kernel([venue], clock), venue


def run_headless(config: Config, duration_s: float, *, realtime: bool = False) -> RunSummary:
    if not duration_s > 0:
        raise ValueError(f"duration {duration_s!r} must be a positive number of seconds")
    kernel, venue = build_sim_kernel(config, virtual=not realtime)
    t0 = time.perf_counter()
    steps = max(1, round(duration_s * config.sim.rate_hz))
    if realtime:
        async def main() -> None:
            await kernel.start()
            await asyncio.sleep(duration_s)
            await kernel.stop()

        asyncio.run(main())
    else:
        venue.open()
        for _ in range(steps):
            venue.step()
        venue.state = "closed"
    wall = time.perf_counter() - t0
    m = kernel.default_market
    inst = m.instrument
    pos = kernel.inventory.position(m.venue, m.symbol)
    bb, ba = m.l2.best_bid(), m.l2.best_ask()
    return RunSummary(
        venue=m.venue, symbol=m.symbol, seed=config.sim.seed,
        sim_seconds=duration_s if not realtime else round(wall, 3), wall_seconds=wall,
        events=kernel.bus.published, venue_trades=m.trades, venue_traded=f"{inst.format_size(m.traded_lots)} {inst.base}",
        our_orders=kernel.oms.sent, our_fills=kernel.oms.fills, our_rejects=kernel.oms.rejects,
        position=f"{inst.format_size(pos.lots)} {inst.base}",
        best_bid=inst.format_price(bb[0]) if bb else None, best_ask=inst.format_price(ba[0]) if ba else None,
        subscriber_errors=kernel.bus.errors, book_gaps=kernel.gaps, state_hash=kernel.state_hash())

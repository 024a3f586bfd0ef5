"""Kernels from the config: every `[venues.NAME]` as a live venue (or the sim venue when none is set).

A venue with keys trades live (mode LIVE); without keys its orders are paper orders filled against its
live book (`trading.paper.PaperVenue`, mode PAPER). ccxt is imported only here, and only when a live
venue is configured.

The kernel needs every venue's instruments when it is built, and ccxt loads them over the network:
`build_kernel_async` does that on the running loop; `build_kernel` (the CLI, before the TUI's loop
exists) loads them in a short-lived loop of its own, and each venue opens a fresh exchange on the
loop it is started on (ccxt's sessions belong to one loop).
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import TYPE_CHECKING

from lobterm.clock import Clock, LiveClock

if TYPE_CHECKING:
    from lobterm.config import Config
    from lobterm.kernel import Kernel, Market

__all__ = ["build_kernel", "build_kernel_async", "live_venues", "market_roles", "quote_params_for"]


def live_venues(config: Config) -> list:
    """The CcxtVenue of each configured venue (markets not loaded yet)."""
    from lobterm.venues.ccxt import CcxtVenue

    return [CcxtVenue(vc) for vc in config.venues.values()]


def _kernel(config: Config, venues: list, clock: Clock | None) -> Kernel:
    from lobterm.config import risk_limits
    from lobterm.kernel import Kernel
    from lobterm.trading.paper import PaperConfig, PaperVenue

    traded = [v if v.config.has_keys else PaperVenue(v, PaperConfig()) for v in venues]
    first = next(iter(venues[0].instruments.values()))
    return Kernel(traded, clock or LiveClock(), risk_limits=risk_limits(config, instrument=first))


async def build_kernel_async(config: Config, *, clock: Clock | None = None) -> Kernel:
    """A kernel on the configured venues, markets loaded on the running loop (or on the sim)."""
    if not config.venues:
        from lobterm.headless import build_sim_kernel

        return build_sim_kernel(config, virtual=False)[0]
    venues = live_venues(config)
    for v in venues:
        await v.load()
    return _kernel(config, venues, clock)


def build_kernel(config: Config, *, clock: Clock | None = None) -> Kernel:
    """As `build_kernel_async`, from synchronous code (no loop running yet). Raises VenueError (its
    message names the venue and is free of secrets) when a venue's markets cannot be loaded."""
    if not config.venues:
        from lobterm.headless import build_sim_kernel

        return build_sim_kernel(config, virtual=False)[0]
    venues = live_venues(config)

    async def load_all() -> None:
        try:
            for v in venues:
                await v.load()
        finally:
            for v in venues:
                await v.release()

    asyncio.run(load_all())
    return _kernel(config, venues, clock)


def market_roles(kernel: Kernel, config: Config) -> tuple[Market, Market | None]:
    """(quote market, hedge market or None): the first market of the first venue with role "quote",
    and the first market of a venue with role "hedge"."""
    quote = hedge = None
    for name, vc in config.venues.items():
        m = next((mk for (v, _s), mk in kernel.markets.items() if v == name), None)
        if m is None:
            continue
        if vc.role == "hedge" and hedge is None:
            hedge = m
        elif vc.role == "quote" and quote is None:
            quote = m
    return quote or kernel.default_market, hedge


def quote_params_for(kernel: Kernel, market: Market, params):
    """Market maker parameters for `market`: a live venue refuses amends (ccxt's edit is cancel-and-
    replace), so the market maker reprices there by cancel and new."""
    venue = kernel.venues[market.venue]
    if getattr(venue, "mode", "") == "LIVE" and getattr(params, "use_amend", False):
        return replace(params, use_amend=False)
    return params

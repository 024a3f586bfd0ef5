"""THE composition root: the one place that builds a `Kernel`, its venues and its strategies.

Every mode goes through here, so the TUI and a headless run are the same program:

    build(config, "tui")                  the interactive sim (or the configured live venues), live clock
    build(config, "headless", virtual=..) the same, driven on a virtual clock (or paced on the wall clock)
    kernel_for(venues, clock, ...)        replay, verify and the reference backtest: a kernel over the
                                          session's replay venues, then `attach_strategies` as configured

What `build` attaches, in every mode alike:
- venues: the sim (`[sim]`) when no `[venues.NAME]` is configured, else each live venue (keyed: LIVE;
  without keys: PAPER, filled by the paper desk against its live book); `--paper` paper-trades the sim;
  `[venues.NAME] kind = "sim"`: several sim venues on one shared fair price ([simgroup]) and one clock;
- risk limits from `[risk]` in the units of the quote market's instrument;
- a market maker (paused) on every market of a venue with role "quote" (the sim's one market), with
  the venue's capabilities: a live venue reprices by cancel and new (ccxt's edit is cancel-and-replace,
  lobterm's amend means "the same order moved");
- the hedger when `[hedge]` is configured (or a policy is asked for), hedging the quote market's
  position on the hedge-role venue (or the quote market itself);
- the user's strategies from `[strategies.NAME]` (class and parameters), paused.
Services (recorder, metrics, feed) attach through `lobterm.services`.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from lobterm.clock import VIRTUAL_EPOCH_NS, Clock, LiveClock, VirtualClock
from lobterm.kernel import Kernel, Market
from lobterm.trading.strategy import Strategy, StrategyError

if TYPE_CHECKING:
    from lobterm.config import Config
    from lobterm.trading.markouts import MarkoutConfig, MarkoutFeed
    from lobterm.trading.risk import RiskLimits
    from lobterm.venues.base import Venue
    from lobterm.venues.sim import SimVenue

__all__ = [
    "MODES",
    "Assembly",
    "adopt",
    "attach_strategies",
    "build",
    "build_sim_kernel",
    "kernel_for",
    "load_strategy",
]

MODES = ("tui", "headless", "serve", "replay", "verify", "backtest")


@dataclass(slots=True)
class Assembly:
    """What `build` made: the kernel, the sim venue a virtual-clock driver steps (None for live venues),
    the quote and hedge markets (by the venues' roles) and the strategies attached."""

    kernel: Kernel
    mode: str
    sim: SimVenue | None
    quote_market: Market
    hedge_market: Market | None
    market_makers: list[Any] = field(default_factory=list)
    hedger: Any = None
    user_strategies: list[Strategy] = field(default_factory=list)
    #: Every sim venue, to step in lock-step on a virtual clock (`sim` is the first): several with
    #: [venues.NAME] kind = "sim", else [sim]'s one (or none).
    sims: list[SimVenue] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.sims and self.sim is not None:
            self.sims = [self.sim]

    def describe(self) -> dict[str, Any]:
        """The shape of what was built: markets, strategies, roles and parameters (tests compare modes)."""
        k = self.kernel
        return {
            "markets": sorted(f"{v}:{s}" for v, s in k.markets),
            "quote": "{}:{}".format(*self.quote_market.key),
            "hedge": None if self.hedge_market is None else "{}:{}".format(*self.hedge_market.key),
            "strategies": sorted(k.strategies),
            "mm_params": {mm.name: mm.params for mm in self.market_makers},
            "hedger": None
            if self.hedger is None
            else {"quote": self.hedger.quote, "hedge": self.hedger.hedge, "params": self.hedger.params},
            "risk": k.risk.limits,
        }


def build(
    config: Config,
    mode: str,
    *,
    virtual: bool = False,
    paper: bool = False,
    market_maker: bool = True,
    hedge_policy: str | None = None,
    loaded_venues: list[Any] | None = None,
    strategies: bool = True,
) -> Assembly:
    """The kernel for `mode` from `config`. `virtual`: a virtual clock (the headless sim, stepped by its
    driver). `paper`: paper-trade the sim through the paper desk. `market_maker=False`: no market maker.
    `hedge_policy`: run the hedger with this policy even without a [hedge] section. `loaded_venues`:
    live venues whose markets are already loaded (`load_live_venues`). `strategies=False`: a bare kernel
    (no market maker, hedger or user strategy), for tests and benchmarks that add their own."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r} (one of {', '.join(MODES)})")
    from lobterm.config import risk_limits

    sim = None
    sims: list[SimVenue] = []
    if config.sim_venues:
        sims, kernel = _sim_group_kernel(config, virtual=virtual, paper=paper)
        sim = sims[0]
    elif config.venues:
        venues = loaded_venues if loaded_venues is not None else load_live_venues(config)
        traded = _live_traded(venues)
        first = next(iter(venues[0].instruments.values()))
        kernel = kernel_for(
            traded,
            LiveClock(),
            risk_limits=risk_limits(config, instrument=first),
            markouts=config.markouts,
        )
    else:
        from lobterm.venues.sim import SimVenue

        sim = SimVenue(config.sim, config.perp)
        venue: Venue = sim
        if paper:
            from lobterm.trading.paper import PaperConfig, PaperVenue

            s = config.sim
            paper_cfg = PaperConfig(
                maker_fee_ppm=s.maker_fee_ppm, taker_fee_ppm=s.taker_fee_ppm, cross_fills=s.paper_cross_fills
            )
            venue = PaperVenue(sim, paper_cfg)
        clock: Clock = VirtualClock(VIRTUAL_EPOCH_NS) if virtual else LiveClock()
        kernel = kernel_for([venue], clock, risk_limits=risk_limits(config), markouts=config.markouts)
    quote, hedge = market_roles(kernel, config)
    asm = Assembly(kernel, mode, sim, quote, hedge, sims=sims)
    if strategies:
        attach_strategies(asm, config, market_maker=market_maker, hedge_policy=hedge_policy)
    return asm


def _sim_group_kernel(config: Config, *, virtual: bool, paper: bool) -> tuple[list[SimVenue], Kernel]:
    """Several sim venues ([venues.NAME] kind = "sim") on one fair price group ([simgroup]) and one
    clock; risk limits in the units of the quote venue's instrument, derived at its start price."""
    from lobterm.config import risk_limits, sim_venue_specs
    from lobterm.venues.sim import SimVenue
    from lobterm.venues.simgroup import FairGroup

    specs = sim_venue_specs(config)
    lead = specs[0].sim
    group = FairGroup(
        config.simgroup, lead.rate_hz, lead.burst_per_min, lead.burst_seconds, lead.jump_per_min
    )
    sims = [SimVenue(s.sim, config.perp, fair=group.member(s.lag_ms), latency_ms=s.latency_ms) for s in specs]
    venues: list[Venue] = list(sims)
    if paper:
        from lobterm.trading.paper import PaperConfig, PaperVenue

        venues = [
            PaperVenue(
                v,
                PaperConfig(
                    maker_fee_ppm=v.config.maker_fee_ppm,
                    taker_fee_ppm=v.config.taker_fee_ppm,
                    cross_fills=v.config.paper_cross_fills,  # as [sim]'s --paper: off unless asked for
                ),
            )
            for v in sims
        ]
    quote = next((s for s in specs if s.role == "quote"), specs[0])
    clock: Clock = VirtualClock(VIRTUAL_EPOCH_NS) if virtual else LiveClock()
    limits = risk_limits(replace(config, sim=quote.sim), quote.sim.instrument())
    return sims, kernel_for(venues, clock, risk_limits=limits, markouts=config.markouts)


def build_sim_kernel(config: Config, *, virtual: bool, paper: bool = False) -> tuple[Kernel, SimVenue]:
    """A bare kernel on the sim venue (no strategies), and the sim venue to step: for tests and benchmarks.
    With `paper`, our orders never reach the sim's matching book: the paper desk fills them against its
    published book and trades, with queue position (the way lobterm paper-trades a venue without keys)."""
    sim_only = replace(config, venues={}, sim_venues={}) if config.venues or config.sim_venues else config
    asm = build(sim_only, "headless", virtual=virtual, paper=paper, strategies=False)
    assert asm.sim is not None
    return asm.kernel, asm.sim


def adopt(config: Config, kernel: Kernel, mode: str = "tui") -> Assembly:
    """An Assembly around a kernel that a test or a benchmark built bare (`build_sim_kernel`): the
    strategies `build` would attach, unless the kernel already has some."""
    from lobterm.venues.sim import SimVenue

    sim = next((v for v in kernel.venues.values() if isinstance(v, SimVenue)), None)
    quote, hedge = market_roles(kernel, config)
    asm = Assembly(kernel, mode, sim, quote, hedge)
    if kernel.strategies:
        asm.market_makers = list(kernel.market_makers)
        asm.hedger = kernel.hedger
        return asm
    return attach_strategies(asm, config)


async def build_async(config: Config, mode: str = "headless", **kw: Any) -> Assembly:
    """As `build`, on a running loop: live venues' markets are loaded on it (their exchanges then live on
    this loop)."""
    loaded = await load_live_venues_async(config) if config.venues else None
    return build(config, mode, loaded_venues=loaded, **kw)


def kernel_for(
    venues: Sequence[Venue],
    clock: Clock,
    *,
    risk_limits: RiskLimits | None = None,
    markouts: MarkoutConfig | None = None,
) -> Kernel:
    """A kernel over `venues` (the one constructor call in lobterm outside tests), with its markout
    observer (every mode: live, replay and backtest measure fills the same way)."""
    kernel = Kernel(list(venues), clock, risk_limits=risk_limits)
    attach_markouts(kernel, markouts)
    return kernel


def attach_strategies(
    asm: Assembly, config: Config, *, market_maker: bool = True, hedge_policy: str | None = None
) -> Assembly:
    """The hedger (first: market makers ask it which side is overdue), the market makers on the quote
    markets, then the user's strategies: all paused but the hedger, the same in every mode."""
    from lobterm.config import hedge_params, quote_params

    k = asm.kernel
    if hedge_policy is not None or config.hedge.enabled:
        hp = hedge_params(config, policy=hedge_policy)
        asm.hedger = k.add_hedger(hp, quote=asm.quote_market, hedge=asm.hedge_market)
    if market_maker:
        base = quote_params(config)
        for market in quote_markets(k, config):
            asm.market_makers.append(k.add_market_maker(quote_params_for(k, market, base), market))
    for name, spec in _strategy_specs(config).items():
        asm.user_strategies.append(k.add_strategy(load_strategy(k, name, spec, asm.quote_market)))
    return asm


def _strategy_specs(config: Config) -> dict[str, dict[str, Any]]:
    return dict(getattr(config, "strategies", {}) or {})


def load_strategy(kernel: Kernel, name: str, spec: dict[str, Any], default_market: Market) -> Strategy:
    """Build the user strategy `[strategies.NAME]`: `class = "package.module:Class"`, optional `market =
    "venue:SYMBOL"` (default: the quote market), the rest its parameters: `Class(ctx, **params)`."""
    spec = dict(spec)
    target = spec.pop("class", None)
    if not isinstance(target, str) or ":" not in target:
        raise StrategyError(name, f'class = {target!r}: give it as "package.module:Class"')
    module_name, _, cls_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # an import error of the user's module: name it, no traceback
        raise StrategyError(name, f"cannot import {module_name}: {type(exc).__name__}: {exc}") from None
    cls = getattr(module, cls_name, None)
    if cls is None:
        raise StrategyError(name, f"{module_name} has no {cls_name}")
    market = default_market
    where = spec.pop("market", None)
    if where is not None:
        venue, _, symbol = str(where).partition(":")
        found = kernel.markets.get((venue, symbol))
        if found is None:
            known = ", ".join(f"{v}:{s}" for v, s in kernel.markets)
            raise StrategyError(name, f"market = {where!r} is not a market of this run (known: {known})")
        market = found
    ctx = kernel.strategy_context(name, markets=(market.key,))
    try:
        strategy = cls(ctx, **spec)
    except Exception as exc:
        raise StrategyError(
            name, f"{target}({', '.join(spec)}) failed: {type(exc).__name__}: {exc}"
        ) from None
    if not isinstance(strategy, Strategy):
        raise StrategyError(name, f"{target} does not have the Strategy methods (lobterm.trading.strategy)")
    if strategy.name != name:
        raise StrategyError(name, f"{target} named itself {strategy.name!r}: take the name from ctx.tag")
    return strategy


# ---- venues and roles ---------------------------------------------------------------------------
def load_live_venues(config: Config) -> list[Any]:
    """The CcxtVenue of each configured venue with its markets loaded (in a short-lived loop of its own:
    each venue opens a fresh exchange on the loop it is started on, since ccxt's sessions belong to one
    loop). Raises VenueError (its message names the venue and is free of secrets)."""
    venues = _live_venues(config)

    async def load_all() -> None:
        try:
            for v in venues:
                await v.load()
        finally:
            for v in venues:
                await v.release()

    asyncio.run(load_all())
    return venues


async def load_live_venues_async(config: Config) -> list[Any]:
    """As `load_live_venues`, on the running loop."""
    venues = _live_venues(config)
    for v in venues:
        await v.load()
    return venues


def _live_venues(config: Config) -> list[Any]:
    from lobterm.venues.ccxt import CcxtVenue

    return [CcxtVenue(vc) for vc in config.venues.values()]


def _live_traded(venues: list[Any]) -> list[Venue]:
    """A keyed venue trades live; without keys our orders are paper orders against its live book."""
    from lobterm.trading.paper import PaperConfig, PaperVenue

    return [v if v.config.has_keys else PaperVenue(v, PaperConfig()) for v in venues]


def market_roles(kernel: Kernel, config: Config) -> tuple[Market, Market | None]:
    """(quote market, hedge market or None): the first market of the first venue with role "quote",
    and the first market of a venue with role "hedge"."""
    quote = hedge = None
    for name, role in venue_roles(config).items():
        m = next((mk for (v, _s), mk in kernel.markets.items() if v == name), None)
        if m is None:
            continue
        if role == "hedge" and hedge is None:
            hedge = m
        elif role == "quote" and quote is None:
            quote = m
    return quote or kernel.default_market, hedge


def venue_roles(config: Config) -> dict[str, str]:
    """Each configured venue's role ("quote" or "hedge"): the live venues' and the sim venues'."""
    roles = {name: vc.role for name, vc in config.venues.items()}
    roles.update({name: str(t.get("role", "quote")) for name, t in config.sim_venues.items()})
    return roles


def quote_markets(kernel: Kernel, config: Config) -> list[Market]:
    """The markets a market maker quotes: every market of a venue whose role is not "hedge"."""
    hedging = {name for name, role in venue_roles(config).items() if role == "hedge"}
    return [m for (v, _s), m in kernel.markets.items() if v not in hedging]


def quote_params_for(kernel: Kernel, market: Market, params: Any) -> Any:
    """Market maker parameters for `market`: a live venue refuses amends (ccxt's edit is cancel-and-
    replace), so the market maker reprices there by cancel and new."""
    venue = kernel.venues[market.venue]
    if venue.mode == "LIVE" and params.use_amend:
        return replace(params, use_amend=False)
    return params


# ---- the markout observer (every mode) ----------------------------------------------------------
class _MarkoutService:
    """Settles markout horizons on a quiet book from the kernel's timer."""

    def __init__(self, kernel: Kernel, feed: MarkoutFeed) -> None:
        self.kernel = kernel
        self.feed = feed

    async def start(self) -> None:
        return None

    def on_timer(self) -> None:
        self.feed.engine.advance(self.kernel.clock.now())

    async def stop(self) -> None:
        return None


def attach_markouts(kernel: Kernel, config: MarkoutConfig | None = None) -> MarkoutFeed:
    """The markouts of `kernel`'s fills (lobterm/trading/markouts.py): fed from its bus, sources from the
    OMS's order tags, horizons settled on the timer too. Idempotent; returns the feed (`.engine`)."""
    from lobterm.trading.markouts import MarkoutEngine, MarkoutFeed

    if kernel.markouts is not None:
        return kernel.markouts
    oms = kernel.oms

    def tag_of(order_id: int) -> str:
        o = oms.order(order_id)
        return "unknown" if o is None else o.tag

    feed = MarkoutFeed(MarkoutEngine(config), {k: m.l2 for k, m in kernel.markets.items()}, tag_of)
    feed.subscribe(kernel.bus)
    kernel.markouts = feed
    kernel.services.append(_MarkoutService(kernel, feed))
    return feed

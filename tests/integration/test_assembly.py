"""One assembly: the TUI and headless build the same program; strategies are a protocol.

These build through `lobterm.assemble` (the only place a kernel is put together) and drive the real
sim venue, the real headless runner, and the Binance loopback venue speaking its own wire protocol.
"""

from __future__ import annotations

import asyncio

import pytest
from binance_loopback import BinanceLoopback

from lobterm.assemble import build, build_async, build_sim_kernel
from lobterm.config import Config, load
from lobterm.engine.events import BUY, SELL
from lobterm.headless import run_headless
from lobterm.trading.strategy import FAILED, RUNNING, BaseStrategy, StrategyError
from tests.helpers.ccxt import KEY, SECRET, seed_book, venue_config, wait_for

TOUCH = {"class": "lobterm.examples.touch_quoter:TouchQuoter", "offset_ticks": 2, "size_lots": 3}


def config(**sections) -> Config:
    return load(use_defaults=False, overrides=sections)


def test_the_tui_and_headless_build_the_same_program() -> None:
    cfg = config(strategies={"touch": TOUCH}, hedge={"enabled": True, "policy": "twap"})
    tui = build(cfg, "tui").describe()
    headless = build(cfg, "headless").describe()
    assert tui == headless
    assert sorted(tui["strategies"]) == ["hedger", "mm:sim:BTC/USDT", "touch"]
    assert tui["risk"].max_order_lots is not None, "risk limits are on by default in every mode"


def test_a_strategy_that_cannot_be_built_is_one_clear_line() -> None:
    for spec, words in [
        ({"class": "no.such.module:X"}, "cannot import no.such.module"),
        ({"class": "lobterm.examples.touch_quoter:Nope"}, "has no Nope"),
        ({**TOUCH, "size_lots": -1}, "size_lots"),
        ({**TOUCH, "market": "sim:ETH/USDT"}, "not a market of this run"),
        ({**TOUCH, "colour": "red"}, "colour"),
    ]:
        with pytest.raises(StrategyError) as err:
            build(config(strategies={"x": spec}), "headless")
        assert words in str(err.value) and "\n" not in str(err.value)


def test_the_example_strategy_trades_headless_and_its_orders_are_gone_at_the_end() -> None:
    cfg = config(strategies={"touch": TOUCH})
    summary = run_headless(cfg, 60.0, market_maker=False)
    assert summary.our_orders > 0 and summary.our_fills > 0
    assert summary.left_open == []
    assert summary.reconciled


class Exploding(BaseStrategy):
    """Quotes one bid, then raises on every 20th book event."""

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        self.seen = 0

    def on_market_data(self, ev) -> None:
        if self.state != RUNNING:
            return
        self.seen += 1
        venue, symbol = self.markets[0]
        if self.seen == 1:
            bid = self.ctx.book(venue, symbol).best_bid()
            self.ctx.buy(venue, symbol, bid[0] - 5, 1)
        if self.seen % 20 == 0:
            raise RuntimeError("bug in user code")


def test_a_strategy_that_raises_is_paused_its_orders_cancelled_and_the_kernel_goes_on() -> None:
    kernel, sim = build_sim_kernel(config(), virtual=True)
    m = kernel.default_market
    sim.open()
    for _ in range(20):
        sim.step()
    s = kernel.add_strategy(Exploding(kernel.strategy_context("boom", markets=(m.key,))))
    kernel.resume_strategy("boom")
    for _ in range(60):
        sim.step()
        kernel.on_timer()
    assert s.state == FAILED
    assert kernel.strategy_errors["boom"] == 1
    assert "RuntimeError: bug in user code" in kernel.strategy_problems["boom"]
    assert not [o for o in kernel.oms.working.values() if o.tag == "boom"], "its orders are cancelled"
    before = kernel.bus.published
    sim.step()
    assert kernel.bus.published > before, "the kernel goes on"
    # Resuming tries again (a trader fixed nothing, so it fails again, counted again).
    assert kernel.resume_strategy("boom") == ""
    for _ in range(30):
        sim.step()
    assert s.state == FAILED and kernel.strategy_errors["boom"] == 2


def test_flatten_is_a_kernel_verb_headless_can_use() -> None:
    kernel, sim = build_sim_kernel(config(), virtual=True)
    m = kernel.default_market
    inst = m.instrument
    sim.open()
    for _ in range(20):
        sim.step()
    ask = m.l2.best_ask()
    kernel.place(m, BUY, ask[0] + 10, inst.lots("0.003"), source="test")
    for _ in range(5):
        sim.step()
    assert kernel.inventory.position(m.venue, m.symbol).lots == inst.lots("0.003")
    kernel.place(m, SELL, ask[0] + 2000, inst.lots("0.001"), source="test")  # a resting ask
    result = kernel.flatten(m, source="test")
    assert result.order_id is not None and not result.problem, result
    assert result.cancelled == 1
    for _ in range(5):
        sim.step()
    assert kernel.inventory.position(m.venue, m.symbol).lots == 0
    assert not kernel.oms.working


# ---- live venues: roles, amends, shutdown --------------------------------------------------------
@pytest.fixture
async def two_venues():
    quote, hedge = BinanceLoopback(api_key=KEY, secret=SECRET), BinanceLoopback(api_key=KEY, secret=SECRET)
    for s in (quote, hedge):
        seed_book(s)
        await s.start()
    yield quote, hedge
    for s in (quote, hedge):
        await s.stop()


async def test_the_tui_hedges_on_the_hedge_venue_and_reprices_live_by_cancel_and_new(two_venues) -> None:
    quote, hedge = two_venues
    cfg = Config(
        venues={
            "q": venue_config(quote, name="q"),
            "h": venue_config(hedge, name="h", role="hedge"),
        }
    )
    cfg.hedge = {"enabled": True, "policy": "twap"}
    asm = await build_async(cfg, "tui")
    headless = (await build_async(cfg, "headless")).describe()
    try:
        d = asm.describe()
        assert d == headless
        assert d["quote"] == "q:BTC/USDT" and d["hedge"] == "h:BTC/USDT"
        assert asm.hedger.hedge == asm.hedge_market.key and asm.hedger.quote == asm.quote_market.key
        assert [mm.market.venue for mm in asm.market_makers] == ["q"], "no market maker on a hedge venue"
        assert not asm.market_makers[0].params.use_amend, "a live venue refuses amends: cancel and new"
    finally:
        for v in asm.kernel.venues.values():
            close = getattr(v, "close", None)
            if close is not None:
                await close()


@pytest.fixture
async def srv():
    s = BinanceLoopback(api_key=KEY, secret=SECRET)
    seed_book(s)
    await s.start()
    yield s
    await s.stop()


async def test_shutdown_with_the_market_maker_quoting_leaves_nothing_at_the_venue(srv) -> None:
    cfg = Config(venues={"binance": venue_config(srv)})
    cfg.mm = {"levels": 3, "spread_ticks": 20}
    asm = await build_async(cfg, "headless")
    k = asm.kernel
    mm = asm.market_makers[0]
    await k.start()
    try:
        await wait_for(lambda: k.default_market.l2.valid, 5, "the first book")
        mm.resume()
        await wait_for(lambda: len(srv.open_orders()) >= 6, 5, "six quotes at the venue")
        report = await k.shutdown(10.0, source="test")
    finally:
        if k._started:
            await k.stop()
    assert report.clean, report.lines()
    assert srv.open_orders() == [], "the venue holds none of ours"
    assert report.seconds < 3.0


async def test_shutdown_sweeps_orders_the_oms_does_not_know(srv) -> None:
    """An order of ours left at the venue by an earlier run (same client-id prefix) is cancelled too."""
    cfg = Config(venues={"binance": venue_config(srv)})
    asm = await build_async(cfg, "headless", strategies=False)
    k = asm.kernel
    await k.start()
    try:
        await wait_for(lambda: k.default_market.l2.valid, 5, "the first book")
        venue = k.venues["binance"]
        live = getattr(venue, "data", venue)
        srv.add_orphan(live.orders.prefix + "old1", BUY, "64000.00", "0.01")
        await asyncio.sleep(0)
        report = await k.shutdown(10.0, source="test")
    finally:
        if k._started:
            await k.stop()
    assert report.clean, report.lines()
    assert srv.open_orders() == []


def test_the_example_strategy_never_has_more_than_one_order_a_side() -> None:
    cfg = config(strategies={"touch": TOUCH})
    asm = build(cfg, "headless", virtual=True, market_maker=False)
    k, sim = asm.kernel, asm.sim
    sim.open()
    k.resume_strategy("touch")
    most = {BUY: 0, SELL: 0}
    for _ in range(3000):
        sim.step()
        k.on_timer()
        for side in most:
            n = sum(1 for o in k.oms.working.values() if o.tag == "touch" and o.side == side)
            most[side] = max(most[side], n)
    assert most == {BUY: 1, SELL: 1}
    assert k.strategies["touch"].fills > 0


def test_the_example_strategy_runs_in_a_reference_backtest(tmp_path) -> None:
    from lobterm.backtest.reference import run_backtest
    from lobterm.cli import main

    summary = run_headless(config(), 120.0, market_maker=False, record_to=tmp_path)
    session = summary.session
    alone = run_backtest(session, strategies={"touch": TOUCH}, market_maker=False)
    assert alone.fills > 0 and alone.quotes_sent == 0, "the strategy traded, no market maker"
    both = run_backtest(session, strategies={"touch": TOUCH})
    mm_only = run_backtest(session)
    assert both.fills > 0 and mm_only.fills > 0 and both.fills != mm_only.fills, "the strategy traded too"
    # The same from the command line, with the strategy named in a config file.
    cfg = tmp_path / "touch.toml"
    cfg.write_text(
        '[strategies.touch]\nclass = "lobterm.examples.touch_quoter:TouchQuoter"\noffset_ticks = 2\nsize_lots = 3\n'
    )
    assert main(["backtest", session, "--config", str(cfg), "--no-mm", "--json", "--no-progress"]) == 0
    bad = tmp_path / "bad.toml"
    bad.write_text('[strategies.x]\nclass = "no.such:X"\n')
    assert main(["backtest", session, "--config", str(bad), "--no-progress"]) == 2

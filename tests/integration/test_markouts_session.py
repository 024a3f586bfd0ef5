"""The same session gives the same markouts live (a recorded headless run), in replay (the player) and in
the reference backtest; the headless summary and `lobterm backtest --json` carry them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lobterm.backtest.reference import run_backtest
from lobterm.cli import main
from lobterm.config import Config
from lobterm.headless import RunSummary, run_headless
from lobterm.recording.player import Player
from tests.helpers.markets import old_btc_spot

# What does not depend on who sent the orders: a replay knows our recorded orders by id, not by tag.
SAME = ("curve", "by_side", "by_level", "worst_decile_share", "fills", "no_mid", "baseline", "pnl_split")


def replayed(session: str) -> dict[str, Any]:
    p = Player(session)
    try:
        while p.step() is not None:
            pass
        k = p.kernel
        m = k.default_market
        engine = k.markouts.engine
        engine.advance(p.last_ts)
        net = k.inventory.pnl(m.venue, m.symbol, m.top()).in_quote(m.instrument).net
        return engine.summary(m.instrument, net, p.last_ts)  # type: ignore[no-any-return]
    finally:
        p.close()


@pytest.fixture(scope="module")
def paper_run(tmp_path_factory: pytest.TempPathFactory) -> RunSummary:
    # The paper desk's cross rule on, as for a keyless live venue: the fast path models it, so the fast
    # and reference backtests of this session can be compared with it (the sim's --paper default is off).
    cfg = Config()
    cfg.sim.paper_cross_fills = True
    # The market this test was written on (btc-spot before its recalibration: a gaussian move every
    # step, everyone sees it at once, a 150-lot touch). Known: live and backtest paper fills differ by a
    # few lots on other paths (this market on seed 2, today's btc-spot on seed 1): a paper-desk or
    # backtest edge case, not the sim's; see the simedge5 report.
    old_btc_spot(cfg.sim)
    return run_headless(cfg, 40.0, paper=True, record_to=tmp_path_factory.mktemp("mk"))


def test_a_paper_session_gives_the_same_markouts_live_in_replay_and_in_the_backtest(paper_run) -> None:
    live = paper_run.markouts
    assert live is not None and live["curve"][0]["fills"] > 50
    assert paper_run.session is not None
    rep = replayed(paper_run.session)
    bt = run_backtest(paper_run.session).markouts
    assert bt is not None
    for key in SAME:
        assert rep[key] == live[key], key
        assert bt[key] == live[key], key
    assert bt["by_source"] == live["by_source"] and set(live["by_source"]) == {"mm"}
    assert set(rep["by_source"]) == {"recorded"}


def test_a_matching_engine_session_gives_the_same_markouts_live_and_in_replay(tmp_path: Path) -> None:
    run = run_headless(Config(), 30.0, record_to=tmp_path)
    assert run.markouts is not None and run.markouts["curve"][0]["fills"] > 20
    assert run.session is not None
    rep = replayed(run.session)
    for key in SAME:
        assert rep[key] == run.markouts[key], key


def test_the_pnl_split_adds_up_to_the_net_pnl_of_the_run(paper_run) -> None:
    from decimal import Decimal

    s = paper_run.markouts["pnl_split"]
    parts = Decimal(s["spread_captured"]) + Decimal(s["adverse_selection"]) - Decimal(s["fees"])
    assert parts + Decimal(s["inventory"]) == Decimal(paper_run.net_pnl)
    assert Decimal(s["fees"]) == Decimal(paper_run.fees)


def test_headless_and_backtest_json_carry_markouts_per_horizon_and_the_split(
    paper_run, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "markouts           1s " in paper_run.as_text() and "split of P&L" in paper_run.as_text()
    assert main(["backtest", str(paper_run.session), "--reference", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    mk = out["markouts"]
    assert [r["horizon_s"] for r in mk["curve"]] == [1.0, 5.0, 30.0, 60.0]
    assert set(mk["pnl_split"]) >= {"spread_captured", "adverse_selection", "fees", "inventory", "net"}
    assert mk["pnl_split"]["net"] == out["net_pnl"]


def test_the_fast_path_gives_the_reference_paths_markouts(paper_run) -> None:
    from lobterm.backtest.fast import run_fast_backtest

    ref = run_backtest(paper_run.session)
    fast = run_fast_backtest(paper_run.session)
    assert fast.fills == ref.fills > 50
    assert fast.markouts is not None and ref.markouts is not None
    # by_level differs: the fast path has no Accepted events, so a fill's level is its depth at the fill
    for key in ("curve", "by_side", "worst_decile_share", "baseline", "pnl_split"):
        assert fast.markouts[key] == ref.markouts[key], key


def test_lobterm_backtest_json_on_the_default_fast_path_carries_markouts(
    paper_run, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["backtest", str(paper_run.session), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["engine"] == "fast"
    assert out["markouts"]["curve"][0]["fills"] > 0 and out["markouts"]["pnl_split"]["net"] == out["net_pnl"]

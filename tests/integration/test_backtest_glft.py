"""GLFT in the reference backtest: the market maker in GLFT mode reruns over a recorded sim session,
fits A and k from the recorded trades, quotes and gets paper fills; its own parameters shape the result
(a wider adj1 quotes further out and gets fewer fills)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest_replay import record_sim_session

from lobterm.backtest.reference import run_backtest
from lobterm.trading.quoting import QuoteParams


@pytest.fixture(scope="module")
def session(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("btglft") / "sim-7.lobterm.sqlite"
    record_sim_session(path, seed=7, duration_s=40.0, mm={"levels": 2})
    return path


def test_glft_runs_in_the_reference_backtest_and_gets_fills(session) -> None:
    res = run_backtest(str(session), QuoteParams(mode="glft", levels=2))
    assert res.engine == "reference"
    assert res.params["mode"] == "glft" and res.params["glft_gamma"] == 0.05
    assert res.fills > 10 and res.quotes_sent > 0
    assert res.subscriber_errors == 0 and not res.risk_rejects
    assert res.time_quoted_pct > 50


def test_glft_parameters_shape_the_backtest(session) -> None:
    near = run_backtest(str(session), QuoteParams(mode="glft", levels=2))
    again = run_backtest(str(session), QuoteParams(mode="glft", levels=2))
    far = run_backtest(str(session), QuoteParams(mode="glft", levels=2, adj1=4.0))
    assert (near.fills, near.net_pnl) == (again.fills, again.net_pnl)  # deterministic
    assert far.fills < near.fills

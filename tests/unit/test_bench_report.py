"""`lobterm bench`'s table: goals and verdicts, and benchmarks missing from a build."""

from __future__ import annotations

import pytest

from lobterm.bench.report import NOT_AVAILABLE, Row, run_bench, run_section
from lobterm.cli import _parser


def test_a_floor_and_a_ceiling_give_their_verdicts():
    assert Row("x", "events/s", 350_000, 300_000).verdict() == "ok"
    assert Row("x", "events/s", 250_000, 300_000).verdict() == "BELOW GOAL"
    assert Row("x", "lag p99 ms", 4.2, 5, at_most=True).verdict() == "ok"
    assert Row("x", "lag p99 ms", 13.9, 5, at_most=True).verdict() == "ABOVE GOAL"
    assert Row("x", "no goal", 1).verdict() == ""
    assert Row("x", "lag", 6, 5, at_most=True).as_dict()["goal"] == "<= 5"


def test_a_benchmark_missing_from_the_build_is_a_row_not_a_failure():
    figs, rows = run_section("no_such_benchmark")
    assert figs is None
    assert [(r.label, r.value) for r in rows] == [("no_such_benchmark benchmark", NOT_AVAILABLE)]


def test_unknown_benchmarks_are_refused(capsys):
    assert run_bench("bogus") == 2
    assert "unknown benchmark 'bogus'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _parser().parse_args(["bench", "bogus"])
    for which in ("engine", "l2", "ui", "record", "backtest", "all"):
        assert _parser().parse_args(["bench", which, "--json"]).which == which

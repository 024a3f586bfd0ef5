"""`lobterm bench`'s table: goals and verdicts, and benchmarks missing from a build."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from lobterm.bench.report import SECTIONS, Row, run_bench, run_section
from lobterm.cli import _parser

ROOT = Path(__file__).resolve().parents[2]


def test_a_floor_and_a_ceiling_give_their_verdicts():
    assert Row("x", "events/s", 350_000, 300_000).verdict() == "ok"
    assert Row("x", "events/s", 250_000, 300_000).verdict() == "BELOW GOAL"
    assert Row("x", "lag p99 ms", 4.2, 5, at_most=True).verdict() == "ok"
    assert Row("x", "lag p99 ms", 13.9, 5, at_most=True).verdict() == "ABOVE GOAL"
    assert Row("x", "no goal", 1).verdict() == ""
    assert Row("x", "lag", 6, 5, at_most=True).as_dict()["goal"] == "<= 5"


def test_a_benchmark_that_fails_is_a_row_naming_the_error_not_a_crash():
    figs, rows = run_section("no_such_benchmark")
    assert figs["error"].startswith("ModuleNotFoundError")
    assert [r.label for r in rows] == ["no_such_benchmark benchmark"]
    assert rows[0].value.startswith("failed: ModuleNotFoundError")


def test_every_section_of_lobterm_bench_is_a_module_of_the_package_with_run_and_main():
    for name in SECTIONS:
        module = importlib.import_module(f"lobterm.bench.{name}")
        assert callable(module.run) and callable(module.main), name


@pytest.mark.parametrize("script", sorted(p.name for p in (ROOT / "benchmarks").glob("*.py")))
def test_every_benchmark_script_runs_the_packages_main_from_this_checkout(script):
    # --help parses the arguments in lobterm.bench's main and exits before measuring anything.
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
    )
    assert out.returncode == 0, out.stderr
    assert "--json" in out.stdout
    text = (ROOT / "benchmarks" / script).read_text()
    assert "from lobterm.bench." in text and "def " not in text  # thin: no benchmark code of its own


def test_unknown_benchmarks_are_refused(capsys):
    assert run_bench("bogus") == 2
    assert "unknown benchmark 'bogus'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _parser().parse_args(["bench", "bogus"])
    for which in ("engine", "l2", "ui", "record", "backtest", "all"):
        assert _parser().parse_args(["bench", which, "--json"]).which == which

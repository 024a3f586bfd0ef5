"""`lobterm sweep`: sessions x parameter sets on a local process pool (and on Ray), results in one SQLite
table keyed by (session hash, parameter hash), a rerun resumes, ranked by median and worst-decile net
P&L. Tiny sessions (5 s of sim each) keep these tests to seconds."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
from conftest_replay import record_sim_session

from lobterm.backtest.fast import run_fast_backtest
from lobterm.backtest.models import LatencyModel
from lobterm.backtest.reference import resolve_params, run_backtest
from lobterm.backtest.sweep import SweepError, grid_sets, parse_space, random_sets, session_hash
from lobterm.cli import main
from lobterm.config import Config
from lobterm.recording.reader import SessionReader
from lobterm.venues.sim import SimVenue

ROOT = Path(__file__).resolve().parents[2]
GRID = ["--grid", "spread_ticks=2,4,8,12", "--grid", "levels=1,3"]  # 8 parameter sets


@pytest.fixture(scope="module")
def sessions(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("sweep-sessions")
    for seed in (1, 2, 3):
        record_sim_session(
            d / f"sim-{seed}.lobterm.sqlite",
            seed=seed,
            duration_s=5.0,
            mm={"levels": 2},
            checkpoint_every_s=60,
        )
    return d


def _sweep(capsys, *args: str) -> tuple[int, dict]:
    code = main(["--no-default-config", "sweep", *args, "--json", "--no-progress"])
    out = capsys.readouterr().out
    return code, (json.loads(out) if out.strip() else {})


def test_a_grid_of_8_sets_over_3_sessions_runs_on_local_workers_and_is_ranked(
    sessions, tmp_path, capsys
) -> None:
    db, out_csv = tmp_path / "r.sqlite", tmp_path / "r.csv"
    code, d = _sweep(
        capsys, str(sessions), *GRID, "--workers", "2", "--results", str(db), "--csv", str(out_csv)
    )
    assert code == 0
    s = d["sweep"]
    assert (s["tasks"], s["ran"], s["skipped"], s["errors"], s["workers"]) == (24, 24, 0, 0, 2)
    ranking = d["ranking"]
    assert len(ranking) == 8 and [e["rank"] for e in ranking] == list(range(1, 9))
    medians = [Decimal(e["median_net_pnl"]) for e in ranking]
    assert medians == sorted(medians, reverse=True)
    assert all(
        e["sessions"] == 3 and Decimal(e["worst_decile_net_pnl"]) <= Decimal(e["median_net_pnl"])
        for e in ranking
    )
    # Wider quotes, fewer fills: the figures are the backtests'.
    fills = {(e["params"]["spread_ticks"], e["params"]["levels"]): e["fills"] for e in ranking}
    assert fills[(2, 3)] > fills[(12, 1)]
    # One entry checked against the backtests run here: median and worst of the 3 sessions, exactly.
    best = ranking[0]
    params, _ = resolve_params({"levels": 2}, best["params"])
    nets = sorted(
        Decimal(run_backtest(str(p), params).net_pnl) for p in sorted(sessions.glob("*.lobterm.sqlite"))
    )
    assert Decimal(best["median_net_pnl"]) == nets[1] and Decimal(best["worst_decile_net_pnl"]) == nets[0]
    # One row per (session hash, parameter hash) in the results table; the CSV has the ranking.
    con = sqlite3.connect(db)
    keys = con.execute("SELECT session_hash, params_hash FROM results").fetchall()
    con.close()
    assert len(set(keys)) == 24
    assert {k[0] for k in keys} == {session_hash(p) for p in sessions.glob("*.lobterm.sqlite")}
    rows = out_csv.read_text().splitlines()
    assert len(rows) == 9 and rows[0].startswith("rank,levels,spread_ticks,median_net_pnl")


def test_a_rerun_skips_what_is_done_and_runs_only_the_new_sets(sessions, tmp_path, capsys) -> None:
    db = str(tmp_path / "r.sqlite")
    assert (
        _sweep(capsys, str(sessions), "--grid", "spread_ticks=2,4", "--workers", "1", "--results", db)[0] == 0
    )
    code, d = _sweep(capsys, str(sessions), "--grid", "spread_ticks=2,4,6", "--workers", "1", "--results", db)
    assert code == 0
    assert (d["sweep"]["tasks"], d["sweep"]["ran"], d["sweep"]["skipped"]) == (9, 3, 6)
    assert len(d["ranking"]) == 3 and all(e["sessions"] == 3 for e in d["ranking"])


def test_an_interrupted_sweep_resumes_where_it_stopped(sessions, tmp_path) -> None:
    """SIGINT (Ctrl-C) after a few tasks: the finished ones are kept; the rerun runs only the rest."""
    db = tmp_path / "r.sqlite"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "lobterm", "--no-default-config", "sweep", str(sessions), *GRID]
    cmd += ["--workers", "2", "--results", str(db), "--reference", "--json", "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def done() -> int:
        if not db.exists():
            return 0
        try:
            con = sqlite3.connect(db)
            try:
                return con.execute("SELECT count(*) FROM results").fetchone()[0]
            finally:
                con.close()
        except sqlite3.OperationalError:
            return 0

    deadline = time.monotonic() + 60
    while done() < 3 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    first = json.loads(out)["sweep"]
    assert first["interrupted"] and 3 <= first["ran"] < 24
    assert "rerun to resume" in err
    kept = done()
    assert kept == first["ran"]

    again = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    second = json.loads(again.stdout)["sweep"]
    assert (second["ran"], second["skipped"]) == (24 - kept, kept)
    assert done() == 24


def test_a_sweep_killed_outright_resumes_from_every_row_it_committed(sessions, tmp_path) -> None:
    """kill -9 (no chance to clean up) after a few tasks: each finished task's row was committed as it
    came, so the rerun skips them all and runs only the rest."""
    db = tmp_path / "r.sqlite"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [
        sys.executable,
        "-m",
        "lobterm",
        "--no-default-config",
        "sweep",
        str(sessions),
        "--grid",
        "spread_ticks=2,4,8,12",
    ]
    cmd += ["--workers", "1", "--results", str(db), "--reference", "--json", "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while _rows(db) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.kill()
    proc.wait(timeout=30)
    kept = _rows(db)
    assert 2 <= kept < 12, kept
    again = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    second = json.loads(again.stdout)["sweep"]
    assert (second["ran"], second["skipped"], second["errors"]) == (12 - kept, kept, 0)
    assert _rows(db) == 12


def _rows(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        con = sqlite3.connect(db)
        try:
            return con.execute("SELECT count(*) FROM results").fetchone()[0]
        finally:
            con.close()
    except sqlite3.OperationalError:
        return 0


def test_the_random_sampler_is_seeded() -> None:
    space = parse_space(["levels=1,2,3"], ["spread_ticks=1..20", "skew_ticks_per_lot=0..0.1"])
    a, b = random_sets(space, 6, seed=5), random_sets(space, 6, seed=5)
    assert a == b and len(a) == 6 and a != random_sets(space, 6, seed=6)
    assert all(1 <= s["spread_ticks"] <= 20 and isinstance(s["spread_ticks"], int) for s in a)
    assert all(0.0 <= s["skew_ticks_per_lot"] <= 0.1 for s in a)


def test_the_random_sampler_sweeps_from_the_command(sessions, tmp_path, capsys) -> None:
    args = [str(sessions), "--sampler", "random", "--samples", "3", "--range", "spread_ticks=2..12"]
    code, d = _sweep(capsys, *args, "--seed", "3", "--workers", "1", "--results", str(tmp_path / "r.sqlite"))
    assert code == 0 and d["sweep"]["tasks"] == 9 and len(d["ranking"]) == 3


def test_optuna_asks_for_trials_and_ranks_them(sessions, tmp_path, capsys) -> None:
    pytest.importorskip("optuna", reason="optuna is the optional extra lobterm[optuna]")
    args = [str(sessions), "--sampler", "optuna", "--samples", "4", "--range", "spread_ticks=2..12"]
    code, d = _sweep(
        capsys, *args, "--grid", "levels=1,3", "--workers", "2", "--results", str(tmp_path / "r.sqlite")
    )
    assert code == 0 and d["sweep"]["tasks"] == 12 and len(d["ranking"]) == 4
    assert all(e["sessions"] == 3 for e in d["ranking"])


def test_bad_sweep_input_is_one_line_and_exit_2(sessions, tmp_path, capsys) -> None:
    db = str(tmp_path / "r.sqlite")
    for args, said in [
        (["--grid", "sprad=1,2"], "'sprad' is not a market maker parameter"),
        (["--grid", "spread_ticks=2,x"], "spread_ticks = 'x'"),
        (["--range", "spread_ticks=2..12"], "ranges need --sampler random or optuna"),
        (["--grid", "post_only=maybe"], "not true or false"),
        ([], "nothing to sweep"),
    ]:
        assert main(["--no-default-config", "sweep", str(sessions), *args, "--results", db]) == 2
        err = capsys.readouterr().err
        assert said in err and err.count("\n") == 1, err
    assert main(["--no-default-config", "sweep", str(tmp_path / "none.lobterm.sqlite"), *GRID]) == 2
    assert "no such session file" in capsys.readouterr().err


def test_a_parameter_set_the_market_maker_refuses_is_a_failed_row_not_a_stop(
    sessions, tmp_path, capsys
) -> None:
    code, d = _sweep(
        capsys, str(sessions), "--grid", "levels=0,2", "--workers", "1",
        "--results", str(tmp_path / "r.sqlite"),
    )  # fmt: skip
    assert code == 0 and d["sweep"]["errors"] == 3
    bad = [e for e in d["ranking"] if e["params"]["levels"] == 0][0]
    assert bad["rank"] == 2 and bad["sessions"] == 0 and "levels" in bad["error"]
    assert bad["median_net_pnl"] is None


# ---- --latency recorded: each session's own request -> answer times -------------------------------
VENUE_LATENCY_MS = 100
RECORDED = ["--grid", "spread_ticks=2,6", "--latency", "recorded,seed=3"]


@pytest.fixture(scope="module")
def noted(tmp_path_factory) -> Path:
    """Two sessions: one recorded by the recorder from a sim venue answering every request 100 ms after it
    was sent (its notes say so), and one written without notes (no request times)."""
    from session_files import record

    d = tmp_path_factory.mktemp("sweep-noted")
    original = SimVenue.__init__

    def with_latency(self, *args, **kwargs) -> None:
        kwargs["latency_ms"] = VENUE_LATENCY_MS
        original(self, *args, **kwargs)

    SimVenue.__init__ = with_latency  # type: ignore[method-assign]
    try:
        record(d, 8.0, config=Config())
    finally:
        SimVenue.__init__ = original  # type: ignore[method-assign]
    record_sim_session(d / "plain.lobterm.sqlite", seed=2, duration_s=3.0, checkpoint_every_s=60)
    return d


def _recorded_figures(d: dict) -> list:
    return sorted(
        (json.dumps(e["params"], sort_keys=True), e["median_net_pnl"], e["fills"], e["sessions"], e["errors"])
        for e in d["ranking"]
    )


def test_a_sweep_with_recorded_latency_uses_each_sessions_own_times(noted, tmp_path, capsys) -> None:
    """The session with request times is backtested with them (the same figures as a constant 100 ms,
    not those of no latency); the one without is a failed row naming why; the sweep goes on."""
    db = tmp_path / "r.sqlite"
    code, d = _sweep(capsys, str(noted), *RECORDED, "--workers", "2", "--results", str(db))
    assert code == 0
    s = d["sweep"]
    assert (s["tasks"], s["ran"], s["errors"]) == (4, 4, 2) and "recorded" in s["models"], s
    [with_times] = [p for p in noted.glob("*.lobterm.sqlite") if p.name != "plain.lobterm.sqlite"]
    with SessionReader(with_times) as reader:
        mm = reader.config.get("mm")
    for e in d["ranking"]:
        assert (e["sessions"], e["errors"]) == (1, 1), e
        params, _ = resolve_params(mm, e["params"])
        want = run_fast_backtest(
            str(with_times), params, latency=LatencyModel.constant(VENUE_LATENCY_MS), recorded_changes=False
        )
        none = run_fast_backtest(str(with_times), params, latency=LatencyModel(), recorded_changes=False)
        assert want.fills >= 10 and (e["median_net_pnl"], e["fills"]) == (want.net_pnl, want.fills)
        assert (none.net_pnl, none.fills) != (want.net_pnl, want.fills)
    con = sqlite3.connect(db)
    errors = con.execute("SELECT session, error FROM results WHERE error IS NOT NULL").fetchall()
    con.close()
    assert len(errors) == 2 and all(
        p.endswith("plain.lobterm.sqlite") and "recorded no request -> answer times" in err
        for p, err in errors
    ), errors
    # A rerun with a constant latency is another parameter hash: it runs again, it does not skip.
    code, again = _sweep(capsys, str(noted), "--grid", "spread_ticks=2,6", "--latency", "100",
                         "--workers", "1", "--results", str(db))  # fmt: skip
    assert code == 0 and (again["sweep"]["ran"], again["sweep"]["errors"]) == (4, 0)


def test_the_grid_is_every_combination() -> None:
    sets = grid_sets(parse_space(["levels=1,3", "spread_ticks=2,4,8"]))
    assert len(sets) == 6 and {"levels": 3, "spread_ticks": 8} in sets
    with pytest.raises(SweepError):
        parse_space(["levels"])


# ---- Ray -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ray_cluster():
    """A local Ray instance started by this test process (2 CPUs); its workers import this checkout."""
    ray = pytest.importorskip("ray", reason="ray is the optional extra lobterm[sweep-ray]")
    import logging

    ctx = ray.init(
        num_cpus=2,
        include_dashboard=False,
        logging_level=logging.WARNING,
        runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}},
    )
    yield ctx.address_info["gcs_address"]
    ray.shutdown()


def test_the_ray_backend_runs_the_same_tasks_on_a_ray_cluster(
    ray_cluster, sessions, tmp_path, capsys
) -> None:
    """The same sweep on the cluster at --address and on local workers: the same results."""
    ray_db, local_db = tmp_path / "ray.sqlite", tmp_path / "local.sqlite"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "lobterm", "--no-default-config", "sweep", str(sessions), *GRID]
    cmd += ["--backend", "ray", "--address", ray_cluster, "--results", str(ray_db), "--json", "--no-progress"]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    on_ray = json.loads(done.stdout)
    assert (
        on_ray["sweep"]["backend"] == "ray"
        and on_ray["sweep"]["ran"] == 24
        and on_ray["sweep"]["errors"] == 0
    )
    code, local = _sweep(capsys, str(sessions), *GRID, "--workers", "1", "--results", str(local_db))
    assert code == 0

    def figures(d: dict) -> list:
        return [
            (e["params"], e["median_net_pnl"], e["worst_decile_net_pnl"], e["fills"]) for e in d["ranking"]
        ]

    assert figures(on_ray) == figures(local)


@pytest.mark.slow  # ~25 s: Ray's workers load numba; the Ray backend itself is tested above
def test_the_ray_backend_takes_recorded_latency_per_session(ray_cluster, noted, tmp_path, capsys) -> None:
    """`--latency recorded` on Ray: each task reads its own session's request times, as on local workers."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "lobterm", "--no-default-config", "sweep", str(noted), *RECORDED]
    cmd += ["--backend", "ray", "--address", ray_cluster, "--results", str(tmp_path / "ray.sqlite")]
    done = subprocess.run([*cmd, "--json", "--no-progress"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=180)  # fmt: skip
    assert done.returncode == 0, done.stderr
    on_ray = json.loads(done.stdout)
    assert on_ray["sweep"]["backend"] == "ray" and (on_ray["sweep"]["ran"], on_ray["sweep"]["errors"]) == (
        4,
        2,
    )
    code, local = _sweep(
        capsys, str(noted), *RECORDED, "--workers", "1", "--results", str(tmp_path / "l.sqlite")
    )
    assert code == 0 and _recorded_figures(on_ray) == _recorded_figures(local)


def test_session_hashes_are_noted_and_a_changed_file_is_hashed_again(sessions, tmp_path) -> None:
    import shutil

    from lobterm.backtest.sweep import ResultStore

    src = sorted(sessions.glob("*.lobterm.sqlite"))[0]
    copy = tmp_path / "copy.lobterm.sqlite"
    shutil.copyfile(src, copy)
    store = ResultStore(tmp_path / "r.sqlite")
    try:
        [h] = store.session_hashes([str(copy)])
        assert h == session_hash(src)
        noted = store.db.execute("SELECT path, hash FROM session_files").fetchall()
        assert noted == [(str(copy), h)]
        with open(copy, "ab") as f:  # an edited file: another size and time, another hash
            f.write(b"\0")
        [h2] = store.session_hashes([str(copy)])
        assert h2 == session_hash(copy) != h
    finally:
        store.close()

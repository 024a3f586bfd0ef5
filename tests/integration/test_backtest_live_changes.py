"""What was recorded is what is backtested: a session whose market maker was tuned live (each change
noted by the kernel in the session file) is backtested with its changes at their recorded times; a
`--config` runs its parameters from the start instead, and the result says which."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lobterm.backtest.fast import FastPathUnsupported, run_fast_backtest
from lobterm.backtest.reference import recorded_param_changes, resolve_params, run_backtest
from lobterm.cli import main
from lobterm.recording.reader import SessionReader
from tests.helpers.live_changes import SECONDS, _record


@pytest.fixture(scope="module")
def tuned(tmp_path_factory) -> Path:
    """Tuned live half-way: a spread three times as wide and one level fewer."""
    return _record(tmp_path_factory.mktemp("tuned"), SECONDS / 2, {"spread_ticks": 6, "levels": 2})


def test_the_session_records_the_live_change_with_its_time(tuned) -> None:
    with SessionReader(tuned) as reader:
        first, _last = reader.time_range()
        changes = recorded_param_changes(reader, "sim", "BTC/USDT")
    assert [c.changes for c in changes] == [{"spread_ticks": 6, "levels": 2}]
    assert abs((changes[0].ts - first) / 1e9 - SECONDS / 2) < 0.2


def test_a_session_tuned_live_is_backtested_with_its_changes_at_their_times(tuned) -> None:
    live = run_backtest(str(tuned))
    assert live.params_source == "recorded + 1 live change at their recorded times"
    assert live.params["levels"] == 3 and live.params["spread_ticks"] == 2  # the start
    [change] = live.param_changes
    assert change["changes"] == {"spread_ticks": 6, "levels": 2} and "problem" not in change
    assert abs(change["at_s"] - SECONDS / 2) < 0.2
    assert "live change        at 10.0 s: levels=2, spread_ticks=6" in live.as_text()

    start_only, source = resolve_params({"levels": 3}, None)
    unchanged = run_backtest(str(tuned), start_only, params_source=source)
    assert unchanged.params_source == "recorded; 1 live change recorded, not applied"
    assert unchanged.param_changes == []
    # Half the session at a wider spread with fewer levels: fewer fills than the start's ladder all along.
    assert live.fills < unchanged.fills, (live.fills, unchanged.fills)
    assert live.as_dict()["net_pnl"] != unchanged.as_dict()["net_pnl"]

    wide, _ = resolve_params({"levels": 2, "spread_ticks": 6}, None)
    wide_all_along = run_backtest(str(tuned), wide)
    assert wide_all_along.fills < live.fills < unchanged.fills


def test_the_fast_path_refuses_a_session_with_live_changes_and_says_why(tuned) -> None:
    with pytest.raises(FastPathUnsupported, match="1 live market maker parameter change"):
        run_fast_backtest(str(tuned))
    start_only, source = resolve_params({"levels": 3}, None)
    fast = run_fast_backtest(str(tuned), start_only, params_source=source)  # given parameters: runs
    ref = run_backtest(str(tuned), start_only, params_source=source)
    assert fast.engine == "fast" and fast.fills == ref.fills
    assert fast.params_source == ref.params_source


def test_the_command_applies_recorded_changes_by_default_and_config_overrides_from_the_start(
    tuned, tmp_path, capsys
) -> None:
    assert main(["--no-default-config", "backtest", str(tuned), "--json", "--no-progress"]) == 0
    out, err = capsys.readouterr()
    d = json.loads(out)
    assert d["engine"] == "reference" and "live market maker parameter change" in err
    assert d["params_source"] == "recorded + 1 live change at their recorded times"
    assert len(d["param_changes"]) == 1

    mm = tmp_path / "mm.toml"
    mm.write_text("[mm]\nspread_ticks = 4\n")
    args = ["--no-default-config", "backtest", str(tuned), "--config", str(mm), "--json", "--no-progress"]
    assert main(args) == 0
    d2 = json.loads(capsys.readouterr().out)
    assert d2["engine"] == "fast" and d2["params"]["spread_ticks"] == 4
    assert d2["params_source"] == "recorded + --config; 1 live change recorded, not applied"
    assert d2["param_changes"] == []


def test_a_session_without_live_changes_says_recorded_and_runs_the_fast_path(tmp_path, capsys) -> None:
    plain = _record(tmp_path, None, {})
    assert main(["--no-default-config", "backtest", str(plain), "--json", "--no-progress"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["engine"] == "fast" and d["params_source"] == "recorded" and d["param_changes"] == []


def test_a_recorded_change_this_version_refuses_is_reported_and_the_run_goes_on(tmp_path) -> None:
    """A session from another version may name a parameter this one does not have."""
    import sqlite3

    import msgspec

    from lobterm.recording.schema import Note

    path = _record(tmp_path, 5.0, {"spread_ticks": 4})
    with SessionReader(path) as reader:
        [change] = recorded_param_changes(reader, "sim", "BTC/USDT")
    db = sqlite3.connect(path)
    (body,) = db.execute("SELECT body FROM events WHERE seq = ?", (change.seq,)).fetchone()
    note = msgspec.msgpack.decode(body, type=Note)
    bad = Note(note.ts, note.source, note.action, {**note.detail, "spread_ticks": -3})
    seq = change.seq
    db.execute("UPDATE events SET body = ? WHERE seq = ?", (msgspec.msgpack.encode(bad), seq))
    db.commit()
    db.close()
    res = run_backtest(str(path))
    [change] = res.param_changes
    assert "spread_ticks" in change["problem"] and res.params["spread_ticks"] == 2
    assert res.fills > 0 and "refused" in res.as_text()


def test_the_recorded_changes_are_kept_beside_the_rows_cache_and_read_back(tuned) -> None:
    """A repeat fast run reads the changes from the cache (finding them scans the whole session); an
    unreadable copy is rescanned and rewritten."""
    from lobterm.backtest.cache import cache_dir, cache_key, param_changes

    def must_not_scan(*_a: object) -> list:
        raise AssertionError("scanned the session again")

    for _ in range(2):  # the repeat run refuses the same way, from the kept copy
        with pytest.raises(FastPathUnsupported, match="1 live market maker parameter change"):
            run_fast_backtest(str(tuned))
    with SessionReader(tuned) as reader:
        kept = cache_dir() / f"{cache_key(tuned, reader._db, 'sim', 'BTC/USDT', True)}.notes"
        assert kept.exists()
        scanned = recorded_param_changes(reader, "sim", "BTC/USDT")
        assert param_changes(reader, "sim", "BTC/USDT", True, must_not_scan) == scanned
        kept.write_text('{"tag": "x", "changes": [[1, 2]]}')  # damaged
        assert param_changes(reader, "sim", "BTC/USDT", True, recorded_param_changes) == scanned
        assert param_changes(reader, "sim", "BTC/USDT", True, must_not_scan) == scanned  # rewritten
        calls: list[int] = []
        assert (
            param_changes(reader, "sim", "BTC/USDT", True, lambda *a: calls.append(1) or [], use_cache=False)
            == []
        )
        assert calls == [1]
    assert len(scanned) == 1

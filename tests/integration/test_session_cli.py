"""The session commands through the real CLI in a subprocess: bad files, verify, sessions, and a recording
process killed with SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lobterm.assemble import build_sim_kernel
from lobterm.config import Config, quote_params
from lobterm.recording.reader import SessionError, SessionReader
from lobterm.recording.schema import FORMAT_VERSION
from lobterm.recording.verify import verify
from lobterm.services import start_recording

ROOT = Path(__file__).resolve().parents[2]


def lobterm(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "lobterm", "--no-default-config", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture(scope="module")
def good_session(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("good")
    cfg = Config()
    kernel, venue = build_sim_kernel(cfg, virtual=True)
    rec = start_recording(kernel, d, config=cfg, seed=1, checkpoint_every_s=2.0)
    mm = kernel.add_market_maker(quote_params(cfg))
    venue.open()
    mm.resume()
    for _ in range(200):
        venue.step()
        kernel.on_timer()
    rec.close()
    return rec.path


def bad_file(kind: str, good: Path, d: Path) -> Path:
    p = d / f"{kind}.lobterm.sqlite"
    data = good.read_bytes()
    if kind == "truncated":
        p.write_bytes(data[: len(data) // 2])
    elif kind == "corrupt":
        p.write_bytes(os.urandom(64 * 1024))
    elif kind == "empty":
        p.write_bytes(b"")
    elif kind == "not_lobterm":
        db = sqlite3.connect(p)
        db.execute("CREATE TABLE prices(ts INTEGER, price TEXT)")
        db.commit()
        db.close()
    elif kind == "newer":
        p.write_bytes(data)
        db = sqlite3.connect(p)
        db.execute("UPDATE header SET value = ? WHERE key = 'format_version'", (str(FORMAT_VERSION + 1),))
        db.commit()
        db.close()
    return p


EXPECTED = {
    "truncated": "corrupt or truncated",
    "corrupt": "not an SQLite database",
    "empty": "empty file",
    "not_lobterm": "not a lobterm session",
    "newer": f"newer lobterm (format version {FORMAT_VERSION + 1}",
}


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_a_bad_file_gets_one_clear_line_and_exit_code_2(kind, good_session, tmp_path) -> None:
    path = bad_file(kind, good_session, tmp_path)
    r = lobterm("verify", str(path), cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"lobterm: {path}: ") and EXPECTED[kind] in lines[0]
    with pytest.raises(SessionError, match=EXPECTED[kind].split(" (")[0]):
        SessionReader(path)


def test_export_of_a_bad_file_is_refused_the_same_way(good_session, tmp_path) -> None:
    path = bad_file("truncated", good_session, tmp_path)
    r = lobterm("export", str(path), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "corrupt or truncated" in r.stderr


def test_verify_and_sessions_on_a_good_file(good_session, tmp_path) -> None:
    r = lobterm("verify", str(good_session), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "OK:" in r.stdout and "checkpoints match" in r.stdout
    bad_file("corrupt", good_session, good_session.parent)
    r = lobterm("sessions", "--json", "--dir", str(good_session.parent), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    listing = json.loads(r.stdout)
    assert [Path(s["path"]).name for s in listing["sessions"]] == [good_session.name]
    assert listing["sessions"][0]["closed"] is True and listing["sessions"][0]["events"] > 1000
    assert [Path(u["path"]).name for u in listing["unreadable"]] == ["corrupt.lobterm.sqlite"]


def test_verify_exits_1_naming_the_first_mismatching_checkpoint(good_session, tmp_path) -> None:
    path = tmp_path / "tampered.lobterm.sqlite"
    path.write_bytes(good_session.read_bytes())
    db = sqlite3.connect(path)
    seq, ts = db.execute("SELECT seq, ts FROM checkpoints ORDER BY seq LIMIT 1 OFFSET 1").fetchone()
    db.execute("UPDATE checkpoints SET hash = ? WHERE seq = ?", ("f" * 64, seq))
    db.commit()
    db.close()
    r = lobterm("verify", str(path), cwd=tmp_path)
    assert r.returncode == 1
    assert f"seq {seq}, ts {ts}: expected {'f' * 64}, got " in r.stderr and "Traceback" not in r.stderr


def test_a_recording_killed_with_sigkill_opens_and_verifies_up_to_its_last_flush(tmp_path) -> None:
    (tmp_path / "lobterm.toml").write_text("[sim]\nrate_hz = 100\n[recording]\ncheckpoint_every_s = 0.3\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LOBTERM_SESSIONS_DIR": str(tmp_path / "sessions")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lobterm",
            "--config",
            "lobterm.toml",
            "--no-default-config",
            "run",
            "--headless",
            "--realtime",
            "--duration",
            "120",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        seen_seq = seen_cps = 0
        while time.monotonic() < deadline and seen_cps < 4:
            assert proc.poll() is None, proc.stderr.read().decode()
            files = list((tmp_path / "sessions").glob("*.lobterm.sqlite"))
            if files:
                try:
                    with SessionReader(files[0]) as s:
                        seen_seq, seen_cps = s.last_seq, len(s.checkpoints())
                except SessionError:
                    pass  # caught between creating the file and writing its header
            time.sleep(0.05)
        assert seen_cps >= 4, "the recording never got going"
        killed_ns = time.time_ns()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    path = files[0]
    with SessionReader(path) as s:
        assert not s.closed  # no end table: it was killed
        assert s.last_seq >= seen_seq  # everything committed before the kill is still there
        first_ts, last_ts = s.time_range()
        # At most the last unflushed batch is lost: flushes are 100 ms apart (1.5 s of slack for a busy CI).
        assert killed_ns - last_ts < 1_500_000_000
        assert len(s.checkpoints()) >= 4
    result = verify(path)
    assert result.ok and result.checkpoints == result.total_checkpoints >= 4 and not result.closed
    r = lobterm("verify", str(path), cwd=tmp_path)
    assert r.returncode == 0 and "not closed cleanly" in r.stdout


def test_lobterm_sessions_dir_from_the_environment_comes_before_flags_but_after_files(
    tmp_path, monkeypatch
) -> None:
    from lobterm.config import load

    cfg_file = tmp_path / "c.toml"
    cfg_file.write_text('sessions_dir = "from-file"\n')
    monkeypatch.setenv("LOBTERM_SESSIONS_DIR", str(tmp_path / "from-env"))
    assert load(cfg_file, use_defaults=False).sessions_dir == tmp_path / "from-env"
    assert (
        load(cfg_file, use_defaults=False, overrides={"sessions_dir": str(tmp_path / "flag")}).sessions_dir
        == tmp_path / "flag"
    )
    monkeypatch.delenv("LOBTERM_SESSIONS_DIR")
    assert load(cfg_file, use_defaults=False).sessions_dir == Path("from-file")


def test_sessions_go_to_the_users_state_directory_by_default_not_the_working_directory(tmp_path, monkeypatch):
    from lobterm.config import Config, load

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("LOBTERM_SESSIONS_DIR", raising=False)
    assert Config().sessions_dir == tmp_path / "state" / "lobterm" / "sessions"
    assert load(None, use_defaults=False).sessions_dir == tmp_path / "state" / "lobterm" / "sessions"
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert Config().sessions_dir == tmp_path / "home" / ".local" / "state" / "lobterm" / "sessions"
    assert Config().sessions_dir.is_absolute()

"""Damaged session files never crash the reader: the player stops before a corrupt event and says so,
skips a corrupt checkpoint for an earlier one, verify checks every checkpoint's state and tells
mismatch (1) from damaged (2) from nothing to verify yet (3), export stops at the damage and says
where. Every file here is a real recording, damaged with real SQLite edits."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import msgspec
import pytest
from session_files import (
    checkpoint_seqs,
    copy_of,
    edit,
    garbage_checkpoint,
    garbage_event,
    record,
    wrong_layout_checkpoint,
)

from lobterm.engine.events import BookDelta
from lobterm.recording.export import export_session
from lobterm.recording.player import Player
from lobterm.recording.reader import SessionError, SessionReader
from lobterm.recording.verify import verify

ROOT = Path(__file__).resolve().parents[2]


def lobterm(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lobterm", "--no-default-config", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    rec, _ = record(tmp_path_factory.mktemp("good"), 30.0, checkpoint_every_s=5.0)
    return rec.path


@pytest.fixture
def straight(good):
    """A player over the undamaged file: the reference for every damaged one."""
    p = Player(str(good))
    yield p
    p.close()


def middle_seq(path: Path) -> int:
    with SessionReader(path) as s:
        return s.last_seq // 2


# ---- the start checkpoint ------------------------------------------------------------------------
def test_a_new_session_file_starts_with_a_checkpoint_before_its_first_event(good) -> None:
    with SessionReader(good) as s:
        cp = s.start_checkpoint()
        assert cp is not None and cp.seq == 0 and s.checkpoints()[0] == cp
        assert s.checkpoint_state(0)["markets"]  # the books as they were before the first event


# ---- the player ----------------------------------------------------------------------------------
def test_replay_stops_before_a_corrupt_event_and_says_where(good, tmp_path, straight) -> None:
    path = copy_of(good, tmp_path, "bad-event.lobterm.sqlite")
    bad = middle_seq(path)
    garbage_event(path, bad)
    p = Player(str(path))
    try:
        p.resume()
        p.set_speed(None)
        for _ in range(10_000):
            if p.play(0.01, budget_s=None) == 0 and p.paused:
                break
        assert p.seq == bad - 1 and p.paused and p.at_end
        assert p.problems == 1 and f"corrupt event at seq {bad}" in p.problem
        assert f"playback stopped at event {bad - 1:,}" in p.problem
        straight.run_to_seq(bad - 1)
        assert p.kernel.state_hash() == straight.kernel.state_hash()  # everything before it is right
        p.resume()  # at the damage: nothing more to play
        assert p.play(1.0) == 0 and p.seq == bad - 1
    finally:
        p.close()


def test_seek_across_a_corrupt_event_stops_at_it_and_a_later_checkpoint_gets_past_it(
    good, tmp_path, straight
) -> None:
    path = copy_of(good, tmp_path, "bad-event.lobterm.sqlite")
    bad = middle_seq(path)
    garbage_event(path, bad)
    with SessionReader(path) as s:
        ts_after = next(ts for seq, ts, _ in s.events(bad + 3, bad + 3))
        ts_before = next(ts for seq, ts, _ in s.events(bad - 1, bad - 1))
    p = Player(str(path))
    try:
        assert p.seek(ts_after) == bad - 1 and p.problems == 1
        assert p.replay_ns == ts_before  # the transport does not claim a time it did not reach
        target = bad - 10
        assert p.seek_seq(target) == target
        straight.seek_seq(target)
        assert p.kernel.state_hash() == straight.kernel.state_hash()
        # The end is reached from the last checkpoint, which is past the damage.
        assert p.seek(p.last_ts) == p.last_seq
        straight.seek(straight.last_ts)
        assert p.kernel.state_hash() == straight.kernel.state_hash() and not p.paused or p.at_end
    finally:
        p.close()


def test_an_event_the_kernel_cannot_take_stops_playback_like_a_corrupt_one(good, tmp_path) -> None:
    path = copy_of(good, tmp_path, "odd-event.lobterm.sqlite")
    bad = middle_seq(path)
    with SessionReader(path) as s:
        venue, symbol = next(iter(s.instruments()))
    odd = BookDelta(1, venue, symbol, 1, 7, 100, 1)  # side 7: decodes, but no book has a seventh side
    edit(
        path,
        "UPDATE events SET kind = 'BookDelta', body = ? WHERE seq = ?",
        (msgspec.msgpack.encode(odd), bad),
    )
    p = Player(str(path))
    try:
        assert p.seek_seq(bad + 3) == bad - 1
        assert f"event at seq {bad} (BookDelta) cannot be replayed: IndexError" in p.problem
    finally:
        p.close()


@pytest.mark.parametrize("damage", [garbage_checkpoint, wrong_layout_checkpoint])
def test_seek_through_a_corrupt_checkpoint_uses_an_earlier_one_and_lands_right(
    damage, good, tmp_path, straight
) -> None:
    path = copy_of(good, tmp_path, "bad-cp.lobterm.sqlite")
    seqs = checkpoint_seqs(path)
    bad = seqs[3]
    damage(path, bad)
    p = Player(str(path))
    try:
        target = bad + 5
        assert p.seek_seq(target) == target
        straight.seek_seq(target)
        assert p.kernel.state_hash() == straight.kernel.state_hash()
        assert p.problems == 1 and f"checkpoint at seq {bad} is unusable" in p.problem
        assert f"using the one at seq {seqs[2]}" in p.problem
        p.seek_seq(target)  # remembered: no second notice, same landing
        assert p.problems == 1 and p.kernel.state_hash() == straight.kernel.state_hash()
    finally:
        p.close()


# ---- verify --------------------------------------------------------------------------------------
def test_verify_fails_a_file_whose_checkpoint_state_is_garbage_though_its_hashes_match(
    good, tmp_path
) -> None:
    path = copy_of(good, tmp_path, "bad-cp.lobterm.sqlite")
    bad = checkpoint_seqs(path)[2]
    garbage_checkpoint(path, bad)
    r = verify(path)
    assert not r.ok and r.exit_code == 2 and r.mismatch is None
    assert r.damage.startswith(f"corrupt checkpoint at seq {bad}: ")
    cli = lobterm("verify", str(path), cwd=tmp_path)
    assert cli.returncode == 2 and "Traceback" not in cli.stderr and cli.stdout == ""
    assert cli.stderr.strip().splitlines() == [
        f"lobterm: {path}: damaged: {r.damage} (2 checkpoint(s) and {r.events:,} events before it are good)"
    ]


def test_verify_fails_a_checkpoint_state_that_decodes_but_is_not_a_state(good, tmp_path) -> None:
    path = copy_of(good, tmp_path, "odd-cp.lobterm.sqlite")
    bad = checkpoint_seqs(path)[1]
    wrong_layout_checkpoint(path, bad)
    r = verify(path)
    assert r.exit_code == 2 and f"corrupt checkpoint at seq {bad}: markets" in r.damage


def test_verify_of_a_corrupt_event_is_damage_checked_up_to_it(good, tmp_path) -> None:
    path = copy_of(good, tmp_path, "bad-event.lobterm.sqlite")
    bad = middle_seq(path)
    garbage_event(path, bad)
    r = verify(path)
    with SessionReader(path) as s:  # the events before it, not counting notes (request times, keys)
        notes_before = sum(1 for seq, _ in s.notes() if seq < bad)
    assert r.exit_code == 2 and f"corrupt event at seq {bad}" in r.damage
    assert r.events == bad - 1 - notes_before
    assert r.checkpoints == sum(1 for s in checkpoint_seqs(path) if s < bad)
    cli = lobterm("verify", str(path), cwd=tmp_path)
    assert cli.returncode == 2 and len(cli.stderr.strip().splitlines()) == 1 and "Traceback" not in cli.stderr


def test_verify_exit_codes_tell_mismatch_from_damage_from_nothing_yet(good, tmp_path) -> None:
    mismatch = copy_of(good, tmp_path, "mismatch.lobterm.sqlite")
    edit(mismatch, "UPDATE checkpoints SET hash = ? WHERE seq = ?", ("0" * 64, checkpoint_seqs(good)[2]))
    damaged = copy_of(good, tmp_path, "damaged.lobterm.sqlite")
    garbage_event(damaged, 10)
    nothing = copy_of(good, tmp_path, "nothing.lobterm.sqlite")
    edit(nothing, "DELETE FROM checkpoints")
    codes = {p.name: lobterm("verify", str(p), cwd=tmp_path) for p in (good, mismatch, damaged, nothing)}
    assert [codes[p.name].returncode for p in (good, mismatch, damaged, nothing)] == [0, 1, 2, 3]
    assert "nothing to verify yet: no checkpoint" in codes["nothing.lobterm.sqlite"].stderr
    assert all("Traceback" not in r.stderr for r in codes.values())


def test_a_truncated_file_is_refused_or_checked_up_to_the_cut_never_a_traceback(good, tmp_path) -> None:
    data = good.read_bytes()
    for fraction in (0.3, 0.6, 0.9):
        path = tmp_path / f"cut-{fraction}.lobterm.sqlite"
        path.write_bytes(data[: int(len(data) * fraction)])
        cli = lobterm("verify", str(path), cwd=tmp_path)
        assert cli.returncode == 2 and "Traceback" not in cli.stderr, cli.stderr
        assert len(cli.stderr.strip().splitlines()) == 1
        try:
            p = Player(str(path))
        except SessionError as exc:
            assert str(path) in str(exc)
            continue
        try:
            p.seek(p.last_ts)
            assert p.at_end
        finally:
            p.close()


# ---- export --------------------------------------------------------------------------------------
def test_export_of_a_corrupt_event_writes_the_rows_before_it_and_says_where(good, tmp_path) -> None:
    path = copy_of(good, tmp_path, "bad-event.lobterm.sqlite")
    bad = middle_seq(path)
    garbage_event(path, bad)
    whole = export_session(good, "csv", tmp_path / "whole")
    part = export_session(path, "csv", tmp_path / "part")
    assert whole.damage is None and f"corrupt event at seq {bad}" in part.damage
    assert 0 < part.tables["top_of_book"][1] < whole.tables["top_of_book"][1]
    cli = lobterm("export", str(path), "--out", str(tmp_path / "cli"), cwd=tmp_path)
    assert cli.returncode == 2 and "Traceback" not in cli.stderr
    assert (
        cli.stderr.strip().splitlines()
        == [
            f"lobterm: {path}: corrupt event at seq {bad} (BookDelta): the export stopped there (the tables "
            "hold everything before it)"
        ]
        or "the export stopped there" in cli.stderr
    )
    assert "top_of_book" in cli.stdout


# ---- a session killed early ----------------------------------------------------------------------
def test_a_session_killed_before_its_first_periodic_checkpoint_verifies(tmp_path) -> None:
    (tmp_path / "lobterm.toml").write_text("[sim]\nrate_hz = 50\n")  # checkpoint_every_s: the default 10
    sessions = tmp_path / "sessions"
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
        env={**os.environ, "PYTHONPATH": str(ROOT), "LOBTERM_SESSIONS_DIR": str(sessions)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        events = 0
        while time.monotonic() < deadline and events < 200:
            files = list(sessions.glob("*.lobterm.sqlite"))
            if files:
                with SessionReader(files[0]) as s:  # never half-made: created whole, then linked
                    events = s.last_seq
            time.sleep(0.05)
        assert events >= 200, "the recording never got going"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    r = verify(files[0])
    with SessionReader(files[0]) as s:  # what survived the kill: every row, and the engine events
        rows = s.last_seq
        engine_events = sum(1 for _, _, ev in s.events(notes=False) if ev is not None)
    # last_seq counts notes too (parameters, markers), so the events verify replays are compared with
    # the engine events in the file, not with the 200 rows awaited above
    assert rows >= 200 and engine_events > 0
    assert r.ok and r.checkpoints == r.total_checkpoints == 1 and not r.closed
    assert r.events == engine_events
    cli = lobterm("verify", str(files[0]), cwd=tmp_path)
    assert cli.returncode == 0 and "not closed cleanly" in cli.stdout

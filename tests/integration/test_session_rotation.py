"""Rotating sessions and retention, on real recordings: a session rotated by time or size is a set of
files sharing a session id, each verifying and replaying on its own, together replaying across every
boundary to the same states as the same session unrotated; retention removes the oldest files first
and never one in use; `lobterm sessions --prune` says what it removed."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from session_files import copy_of, record

from lobterm.assemble import build_sim_kernel
from lobterm.config import Config, ConfigError, load
from lobterm.recording.export import export_session
from lobterm.recording.player import Player
from lobterm.recording.reader import SessionError, SessionParts, SessionReader, resolve_session
from lobterm.recording.retention import prune_sessions, session_files, total_size
from lobterm.recording.verify import verify_files
from lobterm.services import start_recording

ROOT = Path(__file__).resolve().parents[2]
MB = 1024 * 1024


def lobterm(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lobterm", "--no-default-config", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> tuple[Path, list[Path], str]:
    """The same 40 s sim session (same seed) recorded whole and rotated every 7 s of its clock."""
    whole, final_hash = record(tmp_path_factory.mktemp("whole"), 40.0, checkpoint_every_s=5.0)
    rotated, rotated_hash = record(
        tmp_path_factory.mktemp("rotated"), 40.0, checkpoint_every_s=5.0, rotate_every=7.0
    )
    assert rotated_hash == final_hash  # recording (and rotating) is an observer: the same run
    parts = resolve_session([rotated.session_id], rotated.path.parent)
    return whole.path, parts, final_hash


def test_a_session_rotates_into_numbered_parts_sharing_its_id(pair) -> None:
    whole, parts, _ = pair
    assert len(parts) == 6  # 40 s in 7 s parts
    first_seq = 1
    ids = set()
    for n, path in enumerate(parts, start=1):
        with SessionReader(path) as s:
            ids.add(s.session_id)
            assert s.part == n and s.first_seq == first_seq
            cp = s.start_checkpoint()
            assert cp is not None and cp.seq == first_seq - 1  # every part starts with a checkpoint
            assert s.closed and s.rotated == (n < len(parts))
            if s.rotated:
                assert s.end["rotated_to"] == parts[n].name
            first_seq = s.last_seq + 1
    assert ids == {parts[0].name.removesuffix(".lobterm.sqlite")}
    with SessionReader(whole) as s:
        assert s.last_seq == first_seq - 1  # no event lost or doubled at a boundary


def test_each_part_verifies_on_its_own(pair) -> None:
    _, parts, _ = pair
    results = verify_files(parts)
    assert [r.exit_code for r in results] == [0] * len(parts)
    assert all(r.checkpoints == r.total_checkpoints >= 2 for r in results)


def test_each_part_replays_on_its_own_from_its_start_checkpoint(pair) -> None:
    _, parts, _ = pair
    with SessionReader(parts[2]) as s:
        start = s.start_checkpoint()
        last = s.last_seq
    p = Player(str(parts[2]))
    try:
        assert p.seq == start.seq and p.kernel.state_hash() == start.hash
        assert p.kernel.default_market.l2.valid  # the book as it stood, not an empty one
        p.run_to_seq(last)
        assert p.seq == last and p.problems == 0
    finally:
        p.close()


def test_the_parts_replay_across_every_boundary_with_the_hashes_of_the_unrotated_session(pair) -> None:
    whole_path, parts, final_hash = pair
    whole, rotated = Player(str(whole_path)), Player([str(p) for p in reversed(parts)])  # any order
    try:
        assert rotated.first_ts == whole.first_ts and rotated.last_seq == whole.last_seq
        boundaries = []
        for path in parts[1:]:
            with SessionReader(path) as s:
                boundaries.append(s.first_seq)
        # Straight through: at every checkpoint of either recording the two kernels agree.
        stops = sorted({c.seq for c in rotated.checkpoints + whole.checkpoints if c.seq > 0})
        for seq in stops:
            rotated.run_to_seq(seq)
            whole.run_to_seq(seq)
            assert rotated.kernel.state_hash() == whole.kernel.state_hash(), seq
        rotated.run_to_seq(rotated.last_seq)
        assert rotated.kernel.state_hash() == final_hash and rotated.problems == 0
        # Seeks that land on each side of every boundary.
        for b in boundaries:
            for seq in (b - 2, b - 1, b, b + 3):
                rotated.seek_seq(seq)
                whole.seek_seq(seq)
                assert rotated.seq == whole.seq == seq
                assert rotated.kernel.state_hash() == whole.kernel.state_hash(), seq
    finally:
        whole.close()
        rotated.close()


def test_verify_export_and_replay_take_a_session_id(pair, tmp_path) -> None:
    whole, parts, _ = pair
    sid = parts[0].name.removesuffix(".lobterm.sqlite")
    r = lobterm("verify", sid, "--dir", str(parts[0].parent), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.strip().splitlines()) == len(parts) and r.stdout.count(": OK: ") == len(parts)
    r = lobterm(
        "export", sid, "--dir", str(parts[0].parent), "--out", str(tmp_path / "rotated"), cwd=tmp_path
    )
    assert r.returncode == 0, r.stderr
    export_session(whole, "csv", tmp_path / "whole")
    for table in ("trades", "fills", "top_of_book"):
        assert (tmp_path / "rotated" / f"{table}.csv").read_text() == (
            tmp_path / "whole" / f"{table}.csv"
        ).read_text()
    r = lobterm("verify", "no-such-session", "--dir", str(parts[0].parent), cwd=tmp_path)
    assert r.returncode == 2 and "no such file, and no session with that id" in r.stderr


def test_parts_with_a_gap_between_them_are_refused_naming_the_missing_part(pair, tmp_path) -> None:
    _, parts, _ = pair
    with pytest.raises(SessionError, match="part 3 of the session but follows part 1: a part is missing"):
        SessionParts([parts[0], parts[2]])
    r = lobterm("verify", str(parts[0]), str(parts[2]), cwd=tmp_path)
    assert r.returncode == 2 and "a part is missing" in r.stderr and "Traceback" not in r.stderr


def test_a_session_rotates_by_size_and_no_part_grows_far_past_the_limit(tmp_path) -> None:
    rec, _ = record(tmp_path, 40.0, checkpoint_every_s=5.0, rotate_mb=0.5)
    parts = resolve_session([rec.session_id], tmp_path)
    assert len(parts) >= 3 and rec.rotations == len(parts) - 1
    for p in parts:
        # Past the limit by at most one flush's batch with its index pages and the closing checkpoint:
        # measured 0.25-0.5 MB on the btc-spot profile (~2,000 events/s), 0.1% of the default 512 MB.
        assert p.stat().st_size < 0.5 * MB + 640 * 1024
    assert [r.exit_code for r in verify_files(parts)] == [0] * len(parts)


async def test_the_async_recorder_rotates_on_the_live_clock_without_losing_an_event(tmp_path) -> None:
    cfg = Config()
    cfg.recording.rotate_every = 0.25
    kernel, venue = build_sim_kernel(cfg, virtual=False)
    rec = start_recording(kernel, tmp_path, config=cfg, checkpoint_every_s=0.2, flush_interval_s=0.02)
    await kernel.start()
    assert not rec.sync
    venue.open()  # the sim's own flow: book deltas and trades every step
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 1.2
    while loop.time() < deadline:
        venue.step()
        await asyncio.sleep(0.005)
    await kernel.stop()
    parts = resolve_session([rec.session_id], tmp_path)
    assert len(parts) >= 3 and rec.rotations == len(parts) - 1
    with SessionParts(parts) as s:
        assert s.last_seq == rec.events_written and s.closed
    assert all(r.ok for r in verify_files(parts))


# ---- retention ---------------------------------------------------------------------------------------
@pytest.fixture
def old_sessions(pair, tmp_path) -> Path:
    """A sessions directory holding four old sessions, oldest first by last write."""
    whole, _, _ = pair
    d = tmp_path / "sessions"
    d.mkdir()
    for i in range(4):
        p = copy_of(whole, d, f"2026010{i}-000000-sim-BTC-USDT-{i}.lobterm.sqlite")
        os.utime(p, (1_700_000_000 + i * 3600, 1_700_000_000 + i * 3600))
    return d


def test_retention_removes_the_oldest_files_first_never_one_in_use(old_sessions) -> None:
    files = session_files(old_sessions)
    size = files[0].stat().st_size
    held = SessionReader(files[0])  # being replayed: not removable
    try:
        removed = prune_sessions(old_sessions, int(size * 2.5))
    finally:
        held.close()
    assert [r.path for r in removed] == files[1:3]
    assert session_files(old_sessions) == [files[0], files[3]]


def test_a_new_session_prunes_its_directory_to_max_total_mb_keeping_itself(old_sessions) -> None:
    before = session_files(old_sessions)
    limit_mb = (before[0].stat().st_size * 2.5) / MB
    cfg = Config()
    cfg.recording.max_total_mb = limit_mb
    rec, _ = record(old_sessions, 10.0, config=cfg)
    # When it starts (small: a header and a checkpoint), the oldest go until the total is under the limit.
    assert [r.path for r in rec.pruned] == before[:2]
    assert session_files(old_sessions) == [before[2], before[3], rec.path]


def test_sessions_prune_removes_what_is_over_the_limit_and_says_what(old_sessions, tmp_path) -> None:
    before = session_files(old_sessions)
    limit_mb = max(1, int(total_size(old_sessions) / MB / 2))
    (tmp_path / "c.toml").write_text(f"[recording]\nmax_total_mb = {limit_mb}\n")
    r = lobterm(
        "--config", str(tmp_path / "c.toml"), "sessions", "--prune", "--dir", str(old_sessions), cwd=tmp_path
    )
    assert r.returncode == 0, r.stderr
    gone = [p for p in before if not p.exists()]
    assert gone and gone == before[: len(gone)]
    lines = r.stdout.strip().splitlines()
    for line, p in zip(lines, gone, strict=False):
        assert line.startswith(f"removed {p.name} (") and line.endswith((" KB)", " MB)"))
    assert f"removed {len(gone)} file(s)" in lines[-1] and f"limit {limit_mb:,} MB" in lines[-1]
    assert total_size(old_sessions) <= limit_mb * MB
    r = lobterm(
        "--config",
        str(tmp_path / "c.toml"),
        "sessions",
        "--prune",
        "--json",
        "--dir",
        str(old_sessions),
        cwd=tmp_path,
    )
    assert json.loads(r.stdout)["removed"] == []


@pytest.mark.parametrize(
    "key, value",
    [
        ("rotate_mb", -1),
        ("rotate_mb", 10**9),
        ("rotate_every", 0.5),
        ("rotate_every", "nan"),
        ("max_total_mb", -5),
    ],
)
def test_rotation_and_retention_settings_are_range_checked_naming_the_key(key, value, tmp_path) -> None:
    f = tmp_path / "c.toml"
    f.write_text(f"[recording]\n{key} = {value}\n")
    with pytest.raises(ConfigError) as err:
        load(f, use_defaults=False)
    assert f"recording.{key}" in str(err.value)


def test_rotation_and_retention_have_defaults_that_keep_a_file_under_a_gigabyte() -> None:
    r = Config().recording
    assert 0 < r.rotate_mb <= 1024 and r.rotate_every == 3600 and r.max_total_mb == 2048

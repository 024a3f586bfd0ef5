"""Fuzzing what a session file holds (hypothesis): any checkpoint state blob and any event body, garbage
or a real one with a field changed, is replayed, sought through and verified without an exception
escaping: the player reports a problem or plays on, verify reports damage or a mismatch."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from session_files import checkpoint_seqs, copy_of, record

from lobterm.recording.player import Player
from lobterm.recording.reader import SessionError, SessionReader
from lobterm.recording.verify import verify

# Values msgpack can carry, the kinds a damaged or hostile file could hold.
VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=True)
    | st.text(max_size=8)
    | st.binary(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)

SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    rec, _ = record(tmp_path_factory.mktemp("fuzz"), 12.0, checkpoint_every_s=3.0)
    return rec.path


@pytest.fixture(scope="module")
def work(good, tmp_path_factory) -> Path:
    return copy_of(good, tmp_path_factory.mktemp("fuzz-work"), "work.lobterm.sqlite")


def mutate(value, data, depth: int = 0):
    """`value` with one nested part (chosen by hypothesis) replaced by an arbitrary value."""
    if depth > 6 or not isinstance(value, (dict, list)) or not value or data.draw(st.booleans()):
        return data.draw(VALUES)
    if isinstance(value, dict):
        key = data.draw(st.sampled_from(sorted(value, key=str)))
        return {**value, key: mutate(value[key], data, depth + 1)}
    i = data.draw(st.integers(0, len(value) - 1))
    return [*value[:i], mutate(value[i], data, depth + 1), *value[i + 1 :]]


def put(path: Path, sql: str, args: tuple) -> None:
    db = sqlite3.connect(path)
    db.execute(sql, args)
    db.commit()
    db.close()


def replay_everything(path: Path, target_seq: int) -> Player:
    """Seek to `target_seq`, play to the end: what a trader's keys could make the player do."""
    p = Player(str(path))
    p.seek_seq(target_seq)
    p.seek(p.last_ts)
    p.seek_seq(0)
    p.set_speed(None)
    p.resume()
    while not p.paused:
        p.play(0.01, budget_s=None)
    return p


@SETTINGS
@given(data=st.data(), as_bytes=st.booleans())
def test_any_checkpoint_state_is_a_notice_or_a_good_restore_never_an_exception(
    good, work, data, as_bytes
) -> None:
    seqs = checkpoint_seqs(good)
    seq = data.draw(st.sampled_from(seqs[1:-1]))
    with SessionReader(good) as s:
        real = msgspec.msgpack.decode(
            s._db.execute("SELECT state FROM checkpoints WHERE seq = ?", (seq,)).fetchone()[0]
        )
    blob = data.draw(st.binary(max_size=64)) if as_bytes else msgspec.msgpack.encode(mutate(real, data))
    put(work, "UPDATE checkpoints SET state = ? WHERE seq = ?", (blob, seq))
    try:
        p = replay_everything(work, seq + 3)
        p.close()
        result = verify(work)
        assert result.exit_code in (0, 1, 2)
        if result.exit_code == 0:  # accepted: it restores to the recorded hash, so it is the real state
            assert result.checkpoints == result.total_checkpoints
    finally:
        put(work, "UPDATE checkpoints SET state = ? WHERE seq = ?", (msgspec.msgpack.encode(real), seq))


@SETTINGS
@given(data=st.data(), as_bytes=st.booleans())
def test_any_event_body_stops_playback_with_a_notice_or_plays_never_an_exception(
    good, work, data, as_bytes
) -> None:
    with SessionReader(good) as s:
        last = s.last_seq
        seq = data.draw(st.integers(2, last - 1))
        kind, body = s._db.execute("SELECT kind, body FROM events WHERE seq = ?", (seq,)).fetchone()
    if as_bytes:
        new = data.draw(st.binary(max_size=64))
    else:
        new = msgspec.msgpack.encode(mutate(msgspec.msgpack.decode(body), data))
    put(work, "UPDATE events SET body = ? WHERE seq = ?", (new, seq))
    try:
        p = replay_everything(work, seq - 1)
        assert p.seq == last or (p.problems >= 1 and p.seq < last)
        p.close()
        try:
            assert verify(work).exit_code in (0, 1, 2)
        except SessionError:
            pytest.fail("verify raised for a file it had opened")
    finally:
        put(work, "UPDATE events SET body = ? WHERE seq = ?", (body, seq))
    assert kind

"""The player: a recorded sim session replayed through a fresh kernel lands on the recorded state,
straight through and after any seek; recorded orders are shown as they were; paper trading on top."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest_replay import record_sim_session

from lobterm.cli import main
from lobterm.engine.events import BUY, Rejected
from lobterm.recording.player import Player, SessionError, parse_seek
from lobterm.venues.replay import PAPER_ID_BASE, OwnRestingBook


@pytest.fixture(scope="module")
def session(tmp_path_factory) -> tuple[Path, dict]:
    path = tmp_path_factory.mktemp("replay") / "sim.lobterm.sqlite"
    rec = record_sim_session(path, seed=7, duration_s=30.0, checkpoint_every_s=5.0)
    return path, rec


@pytest.fixture
def player(session):
    p = Player(str(session[0]))
    yield p
    p.close()


def test_straight_replay_matches_every_recorded_checkpoint_hash(session, player) -> None:
    path, rec = session
    expected = {seq: h for seq, _ts, h in rec["checkpoints"]}
    assert len(expected) >= 5
    seen = {}
    while player.step() is not None:
        if player.seq in expected:
            seen[player.seq] = player.kernel.state_hash()
    assert seen == expected
    assert player.kernel.state_hash() == rec["kernel"].state_hash()
    assert player.kernel.bus.errors == 0


def test_seek_to_each_checkpoint_lands_on_its_recorded_hash_forwards_and_backwards(player) -> None:
    cps = player.checkpoints
    for cp in list(cps) + list(reversed(cps)):
        player.seek_seq(cp.seq)
        assert player.seq == cp.seq
        assert player.kernel.state_hash() == cp.hash, f"seek to checkpoint {cp.seq}"


def test_seek_between_checkpoints_equals_a_straight_replay_to_the_same_event(session, player) -> None:
    cps = player.checkpoints
    targets = [cps[0].seq // 2, (cps[1].seq + cps[2].seq) // 2, cps[-2].seq + 7]
    for target in targets:
        player.seek_seq(target)
        straight = Player(str(session[0]))
        try:
            straight.run_to_seq(target)
            assert player.kernel.state_hash() == straight.kernel.state_hash()
            m, s = player.kernel.default_market, straight.kernel.default_market
            assert m.volume_at_price == s.volume_at_price
            assert list(m.tape) == list(s.tape)
            assert sorted(player.kernel.oms.working) == sorted(straight.kernel.oms.working)
        finally:
            straight.close()


def test_seek_by_time_lands_where_a_straight_replay_to_that_time_does(session, player) -> None:
    target = player.first_ts + 17_500_000_000  # between the 3rd and 4th checkpoint
    player.seek_seq(player.last_seq)  # from the end, backwards
    player.seek(target)
    straight = Player(str(session[0]))
    try:
        straight.run_to_ts(target)
        assert player.seq == straight.seq
        assert player.replay_ns == target
        assert player.kernel.state_hash() == straight.kernel.state_hash()
        assert player.kernel.clock.now() == target
    finally:
        straight.close()


def test_recorded_orders_are_shown_as_they_were_and_cannot_be_cancelled(session, player) -> None:
    rec = session[1]
    player.seek_seq(player.last_seq)
    recorded = rec["kernel"]
    assert sorted(player.kernel.oms.working) == sorted(recorded.oms.working)
    m = player.kernel.default_market
    assert m.unified.own_orders() == recorded.default_market.unified.own_orders()
    pos, rpos = (
        player.kernel.inventory.position("sim", "BTC/USDT"),
        recorded.inventory.position("sim", "BTC/USDT"),
    )
    assert (pos.lots, pos.cash, pos.fees, pos.realized) == (rpos.lots, rpos.cash, rpos.fees, rpos.realized)
    rejects: list = []
    player.kernel.bus.subscribe(Rejected, rejects.append)
    oid = next(iter(player.kernel.oms.working))
    before = player.kernel.state_hash()
    player.kernel.oms.cancel(oid)
    assert rejects and "recorded order" in rejects[-1].reason
    assert player.kernel.state_hash() == before
    assert oid in player.kernel.oms.working


def test_paper_order_during_a_replay_trades_on_the_replayed_book_and_is_reset_on_seek(player) -> None:
    # Our recorded orders count as ours for the risk rules (a paper buy through our own recorded ask is
    # refused as a self-trade): find a checkpoint where the others' best ask is below our recorded asks.
    k = player.kernel
    m = k.default_market
    for cp in player.checkpoints:
        player.seek_seq(cp.seq)
        ask = m.l2.best_ask_price()
        our_asks = [p for _oid, side, p, _size in m.unified.own_orders() if side == 1]
        if m.unified.others_size(1, ask) > 3 and (not our_asks or min(our_asks) > ask):
            break
    else:
        pytest.fail("no checkpoint with an ask of others' only")
    oid = k.buy(m, ask, 3)  # marketable: takes the others' ask at once
    assert oid >= PAPER_ID_BASE
    pos = k.inventory.position(m.venue, m.symbol)
    assert oid not in k.oms.working and k.oms.order(oid).filled == 3
    lots_after_buy = pos.lots
    bid = m.l2.best_bid_price()
    resting = k.buy(m, bid - 3, 2)
    assert resting in k.oms.working
    assert m.unified.our_size(BUY, bid - 3) >= 2
    player.seek_seq(cp.seq)
    assert resting not in k.oms.working
    assert k.state_hash() == cp.hash
    assert k.inventory.position(m.venue, m.symbol).lots == lots_after_buy - 3


def test_play_covers_wall_time_times_speed_and_pauses_at_the_end(player) -> None:
    player.set_speed(2.0)
    start = player.replay_ns
    player.play(1.5, budget_s=None)
    assert player.replay_ns == start + 3_000_000_000
    assert all(ts <= player.replay_ns for ts in [player.kernel.clock.now()])
    player.pause()
    seq = player.seq
    assert player.play(10.0) == 0 and player.seq == seq
    player.resume()
    player.set_speed(None)
    while not player.paused:
        player.play(0.01)
    assert player.at_end and player.seq == player.last_seq


def test_speed_steps_run_from_a_quarter_to_max() -> None:
    from lobterm.recording.player import SPEEDS

    assert SPEEDS[0] == 0.25 and SPEEDS[-2] == 100.0 and SPEEDS[-1] is None


@pytest.mark.parametrize(
    "text,expected_s",
    [("0:00:10", 10), ("1:30", 90), ("42", 42), ("+5", 105), ("-2.5", 97.5), ("01:02:03", 3723)],
)
def test_parse_seek_understands_clock_times_and_relative_seconds(text: str, expected_s: float) -> None:
    first = 1_000_000_000_000
    now = first + 100 * 10**9
    assert parse_seek(text, now, first) == first + round(expected_s * 1e9)


@pytest.mark.parametrize("text", ["", "abc", "1:2:3:4", "+x", "0:75", "-"])
def test_parse_seek_refuses_garbage_with_a_reason(text: str) -> None:
    with pytest.raises(ValueError):
        parse_seek(text, 0, 0)


def test_own_resting_book_subtracts_our_recorded_size_per_level() -> None:
    from lobterm.engine.events import Accepted, BookDelta, Cancelled, Done, Fill

    ours = OwnRestingBook()
    ours.on_event(Accepted(1, "v", "S", 5, BUY, 100, 10, 0, 1))
    ours.on_event(Accepted(1, "v", "S", 6, BUY, 100, 4, 0, 1))
    assert ours.others(BookDelta(2, "v", "S", 1, BUY, 100, 30)).size == 16
    ours.on_event(Fill(3, "v", "S", 5, BUY, 100, 3, 7, True, 0, 1, 1))
    assert ours.others(BookDelta(3, "v", "S", 2, BUY, 100, 27)).size == 16
    ours.on_event(Cancelled(4, "v", "S", 6, 4, "cancelled", 1))
    ours.on_event(Done(4, "v", "S", 6, 0, "cancelled", 1))
    assert ours.others(BookDelta(4, "v", "S", 3, BUY, 100, 23)).size == 16
    assert ours.others(BookDelta(4, "v", "S", 4, BUY, 101, 9)).size == 9


@pytest.mark.parametrize("content", [None, b"", b"not a database at all" * 100, "sqlite-other"])
def test_replay_of_a_bad_file_exits_2_with_a_clear_error(tmp_path: Path, capsys, content) -> None:
    path = tmp_path / "bad.lobterm.sqlite"
    if content == "sqlite-other":
        import sqlite3

        db = sqlite3.connect(path)
        db.execute("CREATE TABLE t(x)")
        db.commit()
        db.close()
    elif content is not None:
        path.write_bytes(content)
    assert main(["--no-default-config", "replay", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lobterm: cannot replay ") and "Traceback" not in err
    assert str(path) in err


def test_a_session_without_events_is_refused(tmp_path: Path) -> None:
    import json
    import sqlite3

    from lobterm.recording.schema import DDL

    path = tmp_path / "empty.lobterm.sqlite"
    db = sqlite3.connect(path)
    for ddl in DDL:
        db.execute(ddl)
    for k, v in {"format": "lobterm-session", "format_version": 1, "venues": [], "instruments": []}.items():
        db.execute("INSERT INTO header VALUES (?, ?)", (k, json.dumps(v)))
    db.commit()
    db.close()
    with pytest.raises(SessionError, match="no events"):
        Player(str(path))

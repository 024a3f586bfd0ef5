"""The backtest fast path (lobterm/backtest/fast.py, numba) against the reference path
(lobterm/backtest/reference.py, the kernel's objects on the bus), on recorded sim sessions.

Tolerance: fills and volume within 2% of the reference with the same parameters. Measured on these
sessions and on a 300 s one: identical fills, volume, P&L and order counts for the ladder with the
recorded parameters, a wider spread, price and size skew, and max order age; with `use_amend = false`
up to 1 fill in 150 apart (the reference's market maker requotes on each done order as the bus
delivers it, interleaved with the desk's other answers; the kernel reads the answers of a batch
together, then requotes). The max drawdown differs in the last digits: the reference samples it when a
fill is delivered (after its batch), the kernel when the fill happens.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from conftest_replay import record_sim_session

from lobterm.backtest.fast import decode_market, run_fast_backtest
from lobterm.backtest.reference import resolve_params, run_backtest
from lobterm.cli import main
from lobterm.recording.reader import SessionReader
from lobterm.trading.inventory import recompute_from_fills

TOLERANCE = 0.02


@pytest.fixture(scope="module")
def session(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("btf") / "sim-7.lobterm.sqlite"
    record_sim_session(path, seed=7, duration_s=40.0, mm={"levels": 4})
    return path


def _lots(volume: str) -> int:
    return round(Decimal(volume.split()[0]) * 1000)


@pytest.mark.parametrize(
    "overrides",
    [
        None,
        {"spread_ticks": 12},
        {"skew_ticks_per_lot": 0.05, "size_skew": 0.5},
        {"max_order_age_ms": 500},
        {"use_amend": False, "max_order_age_ms": 2000},
    ],
)
def test_the_fast_path_agrees_with_the_reference_path_within_tolerance(session, overrides) -> None:
    params, source = resolve_params({"levels": 4}, overrides)
    ref = run_backtest(str(session), params, params_source=source)
    fast = run_fast_backtest(str(session), params, params_source=source)
    assert fast.engine == "fast" and ref.engine == "reference"
    assert abs(fast.fills - ref.fills) <= TOLERANCE * max(ref.fills, 50), (fast.fills, ref.fills)
    assert abs(_lots(fast.volume) - _lots(ref.volume)) <= TOLERANCE * max(_lots(ref.volume), 500)
    if overrides is None:  # measured: exactly the same
        for key in (
            "fills",
            "fills_by_rule",
            "volume",
            "realized_pnl",
            "unrealized_pnl",
            "fees",
            "net_pnl",
            "quotes_sent",
            "amends_sent",
            "cancels_sent",
            "position_min",
            "position_max",
            "position_final",
            "time_quoted_pct",
            "inventory_path",
        ):
            assert getattr(fast, key) == getattr(ref, key), key
        assert abs(Decimal(fast.max_drawdown) - Decimal(ref.max_drawdown)) <= Decimal("0.01")


def test_positions_reconcile_with_the_fast_paths_fills_and_pnl_is_recomputed_from_them(session) -> None:
    fills: list = []
    res = run_fast_backtest(str(session), keep_fills=fills)
    assert res.fills == len(fills) > 50
    signed = sum(f.size if f.side == 0 else -f.size for f in fills)
    assert res.position_final == f"{Decimal(signed) / 1000:.3f} BTC"
    assert res.inventory_path[-1][1] == signed
    inv = recompute_from_fills(fills)
    assert inv.reconcile(fills) == []
    pos = inv.position("sim", "BTC/USDT")
    assert pos.fills == res.fills and _lots(res.volume) == pos.bought + pos.sold
    assert Decimal(res.net_pnl) == Decimal(res.realized_pnl) + Decimal(res.unrealized_pnl) - Decimal(res.fees)


def test_the_numba_decoder_gives_the_same_rows_as_msgspec(session) -> None:
    with SessionReader(session) as reader:
        a = decode_market(reader, "sim", "BTC/USDT", True, parser="numba")
        b = decode_market(reader, "sim", "BTC/USDT", True, parser="msgspec")
    assert a.rows.shape[0] > 5000 and np.array_equal(a.rows, b.rows)
    assert (a.events, a.first_ts, a.last_ts, a.lo, a.hi) == (b.events, b.first_ts, b.last_ts, b.lo, b.hi)


def test_the_fast_path_is_the_default_and_reports_compile_time_apart(session, capsys) -> None:
    assert main(["--no-default-config", "backtest", str(session), "--json", "--no-progress"]) == 0
    out, err = capsys.readouterr()
    d = json.loads(out)
    assert d["engine"] == "fast" and err == ""
    assert (
        d["compile_seconds"] >= 0 and d["kernel_events_per_s"] > d["events_per_s"] > 0
    )  # compile not in events/s
    assert main(["--no-default-config", "backtest", str(session), "--reference", "--no-progress"]) == 0
    assert "engine             reference" in capsys.readouterr().out


def test_what_the_fast_path_does_not_do_runs_on_the_reference_path_saying_why(
    session, tmp_path, capsys
) -> None:
    mm = tmp_path / "mm.toml"
    mm.write_text('[mm]\nmode = "avellaneda_stoikov"\n')
    assert (
        main(
            ["--no-default-config", "backtest", str(session), "--config", str(mm), "--json", "--no-progress"]
        )
        == 0
    )
    out, err = capsys.readouterr()
    assert json.loads(out)["engine"] == "reference"
    assert "ladder mode only" in err and "reference path" in err
    mm.write_text("[mm]\nstale_after_ms = 500\n")
    assert (
        main(
            ["--no-default-config", "backtest", str(session), "--config", str(mm), "--json", "--no-progress"]
        )
        == 0
    )
    out, err = capsys.readouterr()
    d = json.loads(out)
    assert d["engine"] == "reference" and "QuoteParams.stale_after_ms" in err
    assert "stale_after_ms" in d["engine_reason"]
    # Latency and queue models run on the fast path now.
    argv = ["--no-default-config", "backtest", str(session), "--latency", "new=20,cancel=5,jitter=3,seed=2"]
    assert main([*argv, "--queue", "power:2", "--json", "--no-progress"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["engine"] == "fast" and d["queue_model"] == "power:2" and "seed 2" in d["latency"]


def test_events_without_an_owner_are_skipped_by_the_msgspec_decoder(session, tmp_path) -> None:
    """A session with events that carry no owner (a book gap, perpetual-market events, a position
    mismatch) decodes to the same rows on both parsers: the msgspec decoder used to read `ev.owner` on
    them and stop with AttributeError (the numba parser refuses the perpetual events' tags and hands
    such a session over to it)."""
    import shutil
    import sqlite3

    import msgspec

    from lobterm.engine.events import BookGap, Funding, Liquidation, MarkPrice, PerpInfo, PositionMismatch

    path = tmp_path / "with-others.lobterm.sqlite"
    shutil.copy(session, path)
    db = sqlite3.connect(path)
    seq, ts = db.execute("SELECT seq, ts FROM events ORDER BY seq DESC LIMIT 1").fetchone()
    extra = [
        BookGap(ts, "sim", "BTC/USDT", 5, 9),
        PositionMismatch(ts, "sim", "BTC", "1", "2"),
        PerpInfo(ts, "sim", "BTC/USDT", "10", "0.005", "1000", 28800),
        MarkPrice(ts, "sim", "BTC/USDT", 650000, 650001, 100),
        Funding(ts, "sim", "BTC/USDT", 100, 650000, 3, 7),
        Liquidation(ts, "sim", "BTC/USDT", 1, 650000, 1, 650000, 0),
    ]
    db.executemany(
        "INSERT INTO events VALUES (?, ?, ?, ?)",
        [(seq + i + 1, ts, type(ev).__name__, msgspec.msgpack.encode(ev)) for i, ev in enumerate(extra)],
    )
    db.commit()
    db.close()
    with SessionReader(session) as reader:
        before = decode_market(reader, "sim", "BTC/USDT", True, parser="msgspec")
    with SessionReader(path) as reader:
        slow = decode_market(reader, "sim", "BTC/USDT", True, parser="msgspec")
        default = decode_market(reader, "sim", "BTC/USDT", True)
    assert slow.events == before.events + len(extra) == default.events
    assert np.array_equal(slow.rows, before.rows) and np.array_equal(default.rows, before.rows)
    assert run_fast_backtest(str(path)).fills == run_fast_backtest(str(session)).fills

"""The fast path's decoded-rows cache (lobterm/backtest/cache.py) on real recorded SQLite sessions:
written on the first run, reused, invalidated when the file changes, rebuilt (with one line) when
corrupt; a backtest from the cache, in chunks, gives exactly the results of one without it."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from conftest_replay import record_sim_session

from lobterm.backtest import cache
from lobterm.backtest import fastkernel as fk
from lobterm.backtest.fast import _kernel_inputs, decode_market, run_fast_backtest, run_kernel
from lobterm.backtest.reference import resolve_params
from lobterm.recording.reader import SessionReader
from lobterm.trading.paper import PaperConfig


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("btc") / "sim-11.lobterm.sqlite"
    record_sim_session(path, seed=11, duration_s=30.0, mm={"levels": 3})
    return path


@pytest.fixture
def session(recorded, tmp_path) -> Path:
    """A fresh copy of the recorded session (its own inode, so its own cache entry)."""
    path = tmp_path / recorded.name
    shutil.copyfile(recorded, path)
    return path


@pytest.fixture
def cache_dir(tmp_path, monkeypatch) -> Path:
    d = tmp_path / "cache"
    monkeypatch.setenv("LOBTERM_CACHE_DIR", str(d))
    return d


def _entries(d: Path) -> list[str]:
    return sorted(p.stem for p in d.glob("*.json"))


def _result(path: Path, **kw) -> dict:
    notes: list[str] = []
    fills: list = []
    res = run_fast_backtest(str(path), keep_fills=fills, warn=notes.append, **kw)
    out = res.as_dict(inventory_path=True)
    for k in ("wall_seconds", "events_per_s", "compile_seconds", "decode_seconds", "kernel_seconds"):
        out.pop(k, None)
    out.pop("kernel_events_per_s", None)
    out.pop("markout_seconds", None)
    out["_fills"] = fills
    out["_notes"] = notes
    return out


def test_the_cache_is_written_on_the_first_run_and_reused(session, cache_dir) -> None:
    first = _result(session)
    assert first["_notes"] == []
    (key,) = _entries(cache_dir)
    npy = cache_dir / f"{key}.npy"
    meta = json.loads((cache_dir / f"{key}.json").read_text())
    # A numpy file: np.load reads the rows the decoder gives.
    with SessionReader(session) as reader:
        data = decode_market(reader, "sim", "BTC/USDT", True)
    assert np.array_equal(np.load(npy, mmap_mode="r"), data.rows)
    assert meta["rows"] == data.rows.shape[0] > 1000 and (meta["lo"], meta["hi"]) == (data.lo, data.hi)
    mtime = npy.stat().st_mtime_ns
    with SessionReader(session) as reader:
        hit = cache.market_rows(reader, "sim", "BTC/USDT", True, decode=decode_market)
    assert hit.cached and np.array_equal(hit.all(), data.rows)
    second = _result(session)
    assert npy.stat().st_mtime_ns == mtime and _entries(cache_dir) == [key]  # read, not rewritten
    assert second == first


def test_the_fast_path_with_the_cache_gives_exactly_the_results_without_it(session, cache_dir) -> None:
    for overrides in (None, {"spread_ticks": 6, "skew_ticks_per_lot": 0.05}):
        params, source = resolve_params({"levels": 3}, overrides)
        without = _result(session, params=params, params_source=source, use_cache=False)
        if overrides is None:
            assert _entries(cache_dir) == []
        cold = _result(session, params=params, params_source=source)  # decodes and writes (first time)
        warm = _result(session, params=params, params_source=source)  # reads
        assert len(_entries(cache_dir)) == 1
        assert len(without["_fills"]) > 20
        assert without == cold == warm


def test_chunks_cut_at_timestamp_changes_give_the_same_kernel_run(session) -> None:
    """The kernel over chunks of a few hundred rows (many cuts, snapshots and same-timestamp batches
    among them) gives the fills and counters of one run over all the rows."""
    with SessionReader(session) as reader:
        data = decode_market(reader, "sim", "BTC/USDT", True)
    params, _ = resolve_params({"levels": 3}, None)
    ip, fp, sizes = _kernel_inputs(params, None, None, PaperConfig())
    whole = run_kernel(data.rows, data.lo, data.hi, ip, fp, sizes, data.last_ts)
    src = cache.InMemoryRows(data)
    chunks = list(cache.batches(src, 300))
    assert len(chunks) > 10 and sum(c.shape[0] for c in chunks) == data.rows.shape[0]
    for a, b in zip(chunks, chunks[1:], strict=False):
        assert a[-1, fk.C_TS] != b[0, fk.C_TS]
    parts = cache.run_kernel_chunked(src, ip, fp, sizes, data.last_ts, size=300)
    assert np.array_equal(whole[0], parts[0]) and len(parts[0]) > 20
    assert np.array_equal(whole[1], parts[1]) and np.array_equal(whole[2], parts[2])


def test_a_changed_file_gets_a_new_entry_and_the_stale_one_goes(session, cache_dir) -> None:
    _result(session)
    (old,) = _entries(cache_dir)
    db = sqlite3.connect(session)
    db.execute("UPDATE header SET value = ? WHERE key = 'lobterm_version'", (json.dumps("changed"),))
    db.commit()
    db.close()
    with SessionReader(session) as reader:
        assert cache.cache_key(reader.path, reader._db, "sim", "BTC/USDT", True) != old  # noqa: SLF001
        hit = cache.market_rows(reader, "sim", "BTC/USDT", True, decode=decode_market)
    assert not hit.cached
    (new,) = _entries(cache_dir)
    assert new != old and not (cache_dir / f"{old}.npy").exists()


def test_a_touched_file_is_decoded_again(session, cache_dir) -> None:
    _result(session)
    (old,) = _entries(cache_dir)
    st = session.stat()
    os.utime(session, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    with SessionReader(session) as reader:
        assert not cache.market_rows(reader, "sim", "BTC/USDT", True, decode=decode_market).cached
    assert _entries(cache_dir) != [old]


@pytest.mark.parametrize("damage", ["truncate", "flip", "index", "garbage-index", "no-rows"])
def test_a_corrupt_entry_is_named_in_one_line_and_rebuilt(session, cache_dir, damage) -> None:
    good = _result(session)
    (key,) = _entries(cache_dir)
    npy, meta = cache_dir / f"{key}.npy", cache_dir / f"{key}.json"
    if damage == "truncate":
        with open(npy, "r+b") as f:
            f.truncate(npy.stat().st_size - 100)
    elif damage == "flip":
        with open(npy, "r+b") as f:
            f.seek(npy.stat().st_size // 2)
            b = f.read(1)
            f.seek(-1, 1)
            f.write(bytes([b[0] ^ 0xFF]))
    elif damage == "index":
        meta.write_text(meta.read_text()[:20])
    elif damage == "garbage-index":
        meta.write_text(json.dumps({"version": 1, "rows": "many"}))
    else:
        npy.unlink()
    again = _result(session)
    notes = again.pop("_notes")
    good.pop("_notes")
    assert again == good
    assert len(notes) == 1, notes
    assert "corrupt" in notes[0] and "rebuilding" in notes[0] and key in notes[0] and "\n" not in notes[0]
    assert _entries(cache_dir) == [key]
    third = _result(session)
    assert third.pop("_notes") == [] and third == good  # rebuilt and sound


def test_an_unwritable_cache_dir_runs_from_memory_with_one_line(session, tmp_path, monkeypatch) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache directory should be")
    monkeypatch.setenv("LOBTERM_CACHE_DIR", str(blocker / "rows"))
    res = _result(session)
    notes = res.pop("_notes")
    assert len(notes) == 1 and "cannot write the backtest cache" in notes[0]
    monkeypatch.setenv("LOBTERM_CACHE_DIR", str(tmp_path / "ok"))
    res2 = _result(session, use_cache=False)
    res2.pop("_notes")
    assert res == res2


def test_lobterm_backtest_warm_alone_and_no_file(capsys) -> None:
    from lobterm.cli import main

    assert main(["backtest", "--warm"]) == 0
    err = capsys.readouterr().err
    assert "the backtest kernel is ready" in err
    assert main(["backtest"]) == 2
    assert capsys.readouterr().err.strip() == "lobterm: backtest needs a session FILE (or --warm alone)"


def test_the_first_run_on_a_machine_says_it_compiles_once(monkeypatch) -> None:
    import io

    from lobterm.backtest import command

    monkeypatch.setattr(cache, "kernel_cached", lambda: False)
    out = io.StringIO()
    seconds = command.warm(out)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("lobterm: compiling the backtest kernel once (~30 s")
    assert lines[1] == f"lobterm: compiled in {seconds:.1f} s"


def test_the_cli_gives_the_same_result_from_the_cache_and_without_it(session, cache_dir, capsys) -> None:
    from lobterm.cli import main

    outs = []
    for extra in ([], [], ["--no-cache"]):
        assert main(["backtest", str(session), "--json", "--no-progress", *extra]) == 0
        out = json.loads(capsys.readouterr().out)
        for k in ("wall_seconds", "events_per_s", "compile_seconds", "decode_seconds", "kernel_seconds"):
            out.pop(k, None)
        for k in ("kernel_events_per_s", "markout_seconds"):
            out.pop(k, None)
        outs.append(out)
    assert outs[0]["engine"] == "fast" and outs[0]["fills"] > 20
    assert outs[0] == outs[1] == outs[2]
    assert len(_entries(cache_dir)) == 1


def test_the_markouts_book_walk_in_numba_gives_exactly_the_python_walks_markouts(session) -> None:
    from lobterm.backtest.fast import fast_markouts
    from lobterm.backtest.fastmarkouts import markouts_from_rows
    from lobterm.recording.reader import SessionReader as Reader

    fills: list = []
    run_fast_backtest(str(session), keep_fills=fills, use_cache=False)
    with Reader(session) as reader:
        data = decode_market(reader, "sim", "BTC/USDT", True)
        inst = reader.instruments()[("sim", "BTC/USDT")]
    src = cache.InMemoryRows(data)
    py = fast_markouts(data.rows, "sim", "BTC/USDT", fills)
    nb = markouts_from_rows(src, "sim", "BTC/USDT", fills)
    for e in (py, nb):
        e.advance(data.last_ts + 1)
    a, b = py.summary(inst, None, data.last_ts), nb.summary(inst, None, data.last_ts)
    assert len(fills) > 20 and json.dumps(a, sort_keys=True, default=str).count('"') > 50
    assert a == b


def _engine_state(e) -> dict:
    """Everything a MarkoutEngine holds that its outputs read."""
    markets = {
        k: (m.mid2, m.micro, m.book_ts, m.before2, [[tuple(vars_of(p)) for p in q] for q in m.pending])
        for k, m in e.markets.items()
    }
    buckets = {
        k: [(b.fills, b.lots, b.notional, b.markout2, b.move2, b.micro) for b in v]
        for k, v in e.buckets.items()
    }
    return {
        "markets": markets,
        "buckets": buckets,
        "sources": sorted(e._sources),
        "scalars": (
            e.fills,
            e.no_mid,
            e.spread2,
            e.fees,
            e.adverse2,
            e.toxic,
            e.pending_count,
            e.first_ts,
            e.last_ts,
        ),
        "loss_hist": e.loss_hist.buckets,
        "recent_toxic": list(e.recent_toxic),
        "toxic_trade_ids": e.toxic_trade_ids,
    }


def vars_of(p) -> tuple:
    return (p.ts, p.sign, p.price, p.size, p.mid2, p.keys, p.first_horizon_trade)


@pytest.mark.parametrize(
    "config",
    [
        None,
        {"baseline": False},
        # a horizon shorter than the sim's 50 ms batches, a toxic threshold most fills cross (the recent
        # toxic fills' eviction), the adverse horizon not the second
        {"horizons_s": (0.01, 0.3, 2.0), "adverse_horizon_s": 2.0, "toxic_bps": 0.5},
    ],
)
def test_the_bulk_markouts_leave_the_engine_exactly_as_one_call_per_change(session, config) -> None:
    from lobterm.backtest.fast import fast_markouts
    from lobterm.backtest.fastmarkouts import bulk_markouts
    from lobterm.recording.reader import SessionReader as Reader
    from lobterm.trading.markouts import MarkoutConfig

    cfg = None if config is None else MarkoutConfig(**config)
    fills: list = []
    run_fast_backtest(str(session), keep_fills=fills, use_cache=False)
    with Reader(session) as reader:
        data = decode_market(reader, "sim", "BTC/USDT", True)
    py = fast_markouts(data.rows, "sim", "BTC/USDT", fills, cfg)
    bulk = bulk_markouts(cache.InMemoryRows(data), "sim", "BTC/USDT", fills, cfg)
    cols = tuple(
        np.array([getattr(f, k) for f in fills], dtype=np.int64) for k in ("ts", "side", "price", "size")
    )
    given = bulk_markouts(
        cache.InMemoryRows(data), "sim", "BTC/USDT", fills, cfg, columns=(*cols, sum(f.fee for f in fills))
    )
    assert bulk is not None and given is not None and len(fills) > 20
    a, b = _engine_state(py), _engine_state(bulk)
    assert a["scalars"][0] == len(fills) and a["buckets"] and any(m[4][-1] for m in a["markets"].values())
    assert a == b == _engine_state(given)
    for e in (py, bulk):  # and what the backtest's `advance` settles afterwards
        e.advance(data.last_ts + 1)
    assert _engine_state(py) == _engine_state(bulk)


def test_the_progress_bar_pads_a_shorter_line_over_a_longer_one() -> None:
    import io

    from lobterm.backtest.command import ProgressBar

    out = io.StringIO()
    bar = ProgressBar(1_000_000, stream=out)
    bar.t0 -= 1e-6  # a huge first rate: a long line
    bar.update(900_000, force=True)
    bar.t0 -= 1000.0  # then a short one
    bar.update(1_000_000, force=True)
    first, second = out.getvalue().split("\r")[1:]
    assert len(second) >= len(first) and second.rstrip().endswith("/s")
    assert "/s/s" not in out.getvalue()

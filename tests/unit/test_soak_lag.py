"""The soak's own loop-lag record stays within its bound under a long run (lobterm/bench/soak.py).

A realtime soak samples the loop ~100 times a second; kept as a list of floats that is ~11 MB an hour
of RSS growth, which is what a realtime soak measured as its own "growth" (35.5 -> 39.4 MB in 20
minutes). The histogram has a fixed size and still gives the percentiles to its 10 us resolution.
"""

from __future__ import annotations

import math
import random
import sys
import tracemalloc
from pathlib import Path

import pytest

from lobterm.bench import soak
from lobterm.bench.soak import LagHistogram, memory_breakdown, pymalloc_stats, run_realtime


def test_lag_histogram_keeps_its_size_over_an_hour_of_samples() -> None:
    h = LagHistogram()
    size = len(h.counts)
    rng = random.Random(16)
    tracemalloc.start()
    try:
        h.add(0.001)
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(120_000):  # 20 minutes at 100 samples a second
            h.add(rng.expovariate(2000.0))
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(h.counts) == size and h.n == 120_001
    assert grown < 10_000  # bytes: nothing per sample (a list of them: 3.9 MB, measured the same way)


def test_lag_histogram_quantiles_are_within_one_bucket_of_the_exact_ones() -> None:
    rng = random.Random(7)
    xs = [rng.expovariate(1 / 0.0008) for _ in range(50_000)] + [0.25, 1.75, 75.0]
    h = LagHistogram()
    for x in xs:
        h.add(x)
    ranked = sorted(xs)
    for q in (0.5, 0.99, 0.999):
        got = h.quantile(q)
        exact = ranked[math.ceil(q * len(xs)) - 1]  # nearest rank
        assert exact <= got <= exact + LagHistogram.FINE_S + 1e-12, (q, got, exact)  # never understated
    assert h.max_s == 75.0  # the maximum is exact, past the last bucket too
    assert h.quantile(1.0) == 75.0


def test_lag_histogram_takes_negative_and_huge_lags_without_error() -> None:
    h = LagHistogram()
    for x in (-0.001, 0.0, 0.15, 1e6):
        h.add(x)
    assert h.n == 4 and sum(h.counts) == 4 and h.counts[0] == 2 and h.counts[-1] == 1
    assert LagHistogram().quantile(0.99) == 0.0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc and glibc")
def test_memory_breakdown_names_what_is_behind_rss() -> None:
    b = memory_breakdown()
    assert b["rss"] > 0 and b["malloc_used"] > 0 and "malloc_free" in b and b["sqlite"] >= 0
    assert b["py_arenas"] > 0 and b["py_blocks"] > 0 and b["py_kblocks"] > 0


@pytest.mark.skipif(not hasattr(sys, "_debugmallocstats"), reason="CPython's allocator stats")
def test_pymalloc_stats_tell_retained_objects_from_held_arenas() -> None:
    before = pymalloc_stats()
    kept = [(i, str(i)) for i in range(200_000)]  # ~20 MB of small objects, retained
    during = pymalloc_stats()
    # the blocks grow; the arenas may not (a long-lived worker can hold enough part-free arenas)
    assert during["py_blocks"] - before["py_blocks"] > 10 and during["py_arenas"] >= before["py_arenas"]
    del kept
    after = pymalloc_stats()
    assert after["py_blocks"] < during["py_blocks"] - 10  # freed blocks leave py_blocks at once
    assert sys.stderr is not None  # fd 2 is given back


def test_a_short_realtime_soak_reports_lag_from_its_histogram_with_the_metrics_scraped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(soak, "SCRAPE_S", 0.5)
    r = run_realtime(0.05, seed=7, target=tmp_path, echo=False, metrics=True)  # 3 s on the wall clock
    lag = r["lag"]
    assert lag["samples"] > 50
    assert 0 < lag["p50_ms"] <= lag["p99_ms"] <= lag["p999_ms"] and lag["p999_ms"] <= lag["max_ms"] + 0.01
    assert r["events"] > 0 and r["files"]
    assert r["metrics"] and r["scrapes"] >= 2  # the exporter answered, off the loop

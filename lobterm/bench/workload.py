"""Loads the lob-mix-v1 workload once per process and checks it is the reference one."""

from __future__ import annotations

from functools import lru_cache

from lobterm.bench import lob_mix_v1

REFERENCE_SHA256_PREFIX = "ec754bb2"  # n=200_000, seed=42, per the workload's docstring


@lru_cache(maxsize=4)
def workload(n: int = 200_000, seed: int = 42) -> dict:
    wl = lob_mix_v1.generate(n, seed)
    if n == 200_000 and seed == 42 and not wl["sha256"].startswith(REFERENCE_SHA256_PREFIX):
        raise RuntimeError(f"lob-mix-v1 workload differs from the reference: sha256 {wl['sha256'][:16]}")
    return wl

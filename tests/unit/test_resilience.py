"""Backoff, staleness watchdog, token bucket, circuit breaker and secret scrubbing, on a hand-driven clock."""

from __future__ import annotations

import random

import pytest

from lobterm.venues.resilience import (
    CLOSED,
    HALF_OPEN,
    OPEN,
    Backoff,
    CircuitBreaker,
    StreamWatchdog,
    TokenBucket,
    scrub,
)


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_backoff_grows_exponentially_up_to_the_cap_with_seeded_jitter():
    b = Backoff(0.1, 2.0, factor=2.0, jitter=0.5, rng=random.Random(7))
    delays = [b.next_delay() for _ in range(8)]
    raw = [0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0, 2.0]
    assert all(r * 0.5 <= d <= r for d, r in zip(delays, raw, strict=False))
    again = Backoff(0.1, 2.0, factor=2.0, jitter=0.5, rng=random.Random(7))
    assert [again.next_delay() for _ in range(8)] == delays  # same seed, same delays
    b.reset()
    assert b.next_delay() <= 0.1


def test_backoff_refuses_nonsense():
    with pytest.raises(ValueError):
        Backoff(0, 1)
    with pytest.raises(ValueError):
        Backoff(0.1, 1, jitter=1.0)


def test_watchdog_reports_a_quiet_stream_once_per_window():
    clock = Clock()
    w = StreamWatchdog(clock)
    w.watch("book:BTC/USDT", 2.0)
    w.watch("trades:BTC/USDT", 2.0)
    clock.t += 1.5
    w.touch("trades:BTC/USDT")
    assert w.stale() == []
    clock.t += 1.0
    assert w.stale() == ["book:BTC/USDT"]
    assert w.stale() == []  # restarted: the resubscription gets a full window
    assert w.stalls("book:BTC/USDT") == 1 and w.stalls("trades:BTC/USDT") == 0


def test_token_bucket_spends_its_burst_then_refills_at_its_rate():
    clock = Clock()
    b = TokenBucket(2.0, 3, clock)
    assert [b.take() for _ in range(4)] == [True, True, True, False]
    assert b.refused == 1 and b.wait_s() == pytest.approx(0.5)
    clock.t += 0.5
    assert b.take() and not b.take()
    clock.t += 10
    assert sum(b.take() for _ in range(10)) == 3  # never more than the burst


def test_circuit_breaker_opens_after_n_failures_then_half_opens_for_one_probe():
    clock = Clock()
    br = CircuitBreaker(threshold=3, cooldown_s=5.0, clock=clock)
    for _ in range(2):
        br.failure("boom")
    assert br.state == CLOSED and br.allow()
    br.success()  # a success resets the count
    for _ in range(3):
        br.failure("boom")
    assert br.state == OPEN and not br.allow() and br.retry_in_s() == 5.0
    clock.t += 5.0
    assert br.allow() and br.state == HALF_OPEN
    assert not br.allow()  # one probe at a time
    br.failure("still down")
    assert br.state == OPEN and br.trips == 2
    clock.t += 5.0
    assert br.allow()
    br.success()
    assert br.state == CLOSED and br.allow()


def test_scrub_replaces_secrets_and_their_url_encoded_forms():
    secret = "s3cr3t+/=key"
    text = f"binance {{'X-MBX-APIKEY': '{secret}'}} url=?k=s3cr3t%2B%2F%3Dkey"
    out = scrub(text, [secret, None, ""])
    assert secret not in out and "s3cr3t%2B" not in out and out.count("***") == 2

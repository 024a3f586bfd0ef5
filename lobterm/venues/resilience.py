"""What keeps a live venue safe: backoff, staleness watchdog, order token bucket, circuit breaker, scrubbing.

No ccxt here (the TUI start-up path must not pay for importing it) and no asyncio: each piece is a small
object driven by the venue adapter with explicit times, so tests drive them with their own clock.

- `Backoff`: exponential delays with jitter from a seeded generator (`next_delay`, `reset`).
- `StreamWatchdog`: the last time each stream delivered something; `stale(now)` lists the streams that
  went quiet for longer than their limit (a stalled ccxt receive loop looks exactly like that).
- `TokenBucket`: order traffic per venue (`take()` False means "not now": the request is refused, not
  queued, so that the trader sees it at once).
- `CircuitBreaker`: closed -> open after `threshold` consecutive order errors; open refuses everything
  for `cooldown_s`; then half-open lets one request through: success closes it, failure reopens it.
- `scrub(text, secrets)`: a message with every secret value (and its URL-encoded form) replaced, and
  every signed URL's signature and key parameters (`signature=`, `apiKey=`, ...) redacted.
- `SecretsFilter`: a `logging.Filter` doing `scrub` on every record (message, arguments, traceback) of
  the logger it is attached to (`lobterm.venues`, the ccxt venue's logger).
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import quote

__all__ = [
    "Backoff",
    "CircuitBreaker",
    "StreamWatchdog",
    "TokenBucket",
    "scrub",
    "SecretsFilter",
    "CLOSED",
    "OPEN",
    "HALF_OPEN",
    "REDACTED",
]

REDACTED = "***"
CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


class Backoff:
    """Delays base, base*factor, ... up to `cap` seconds, each scaled by a random factor in
    [1 - jitter, 1] (so that many clients do not reconnect in lock-step). Seed it for tests."""

    def __init__(
        self,
        base_s: float = 0.1,
        cap_s: float = 5.0,
        factor: float = 2.0,
        jitter: float = 0.5,
        rng: random.Random | None = None,
    ) -> None:
        if not 0 < base_s <= cap_s:
            raise ValueError(f"backoff base {base_s!r} must be > 0 and <= cap {cap_s!r}")
        if factor < 1 or not 0 <= jitter < 1:
            raise ValueError(f"backoff factor {factor!r} must be >= 1 and jitter {jitter!r} in [0, 1)")
        self.base_s = base_s
        self.cap_s = cap_s
        self.factor = factor
        self.jitter = jitter
        self.rng = rng or random.Random()
        self.attempts = 0

    def next_delay(self) -> float:
        raw = min(self.cap_s, self.base_s * self.factor ** min(self.attempts, 64))
        self.attempts += 1
        return raw * (1.0 - self.jitter * self.rng.random())

    def reset(self) -> None:
        self.attempts = 0


@dataclass(slots=True)
class _Stream:
    limit_s: float
    last: float
    stalls: int = 0


class StreamWatchdog:
    """Per stream: when it last delivered. A stream that was quiet for more than its limit is stale."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.streams: dict[str, _Stream] = {}

    def watch(self, stream: str, limit_s: float) -> None:
        """Start (or restart) watching `stream`: it counts as fresh from now."""
        old = self.streams.get(stream)
        self.streams[stream] = _Stream(limit_s, self.clock(), old.stalls if old else 0)

    def forget(self, stream: str) -> None:
        self.streams.pop(stream, None)

    def touch(self, stream: str) -> None:
        s = self.streams.get(stream)
        if s is not None:
            s.last = self.clock()

    def age(self, stream: str) -> float | None:
        s = self.streams.get(stream)
        return None if s is None else self.clock() - s.last

    def stale(self) -> list[str]:
        """Streams quiet for longer than their limit; each is counted as one stall and restarted."""
        now = self.clock()
        out = []
        for name, s in self.streams.items():
            if now - s.last > s.limit_s:
                s.stalls += 1
                s.last = now  # give the resubscription its own full window
                out.append(name)
        return out

    def stalls(self, stream: str) -> int:
        s = self.streams.get(stream)
        return 0 if s is None else s.stalls


class TokenBucket:
    """`rate_per_s` tokens a second, at most `burst` saved up. `take()` spends one if there is one."""

    def __init__(self, rate_per_s: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        if not rate_per_s > 0 or burst < 1:
            raise ValueError(f"token bucket rate {rate_per_s!r}/s must be > 0 and burst {burst!r} >= 1")
        self.rate = float(rate_per_s)
        self.burst = int(burst)
        self.clock = clock
        self.tokens = float(burst)
        self._at = clock()
        self.refused = 0

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self._at) * self.rate)
        self._at = now

    def take(self, n: int = 1) -> bool:
        self._refill()
        if self.tokens >= n:
            self.tokens -= n
            return True
        self.refused += 1
        return False

    def wait_s(self, n: int = 1) -> float:
        """Seconds until `n` tokens are there (0 if they are now)."""
        self._refill()
        return max(0.0, (n - self.tokens) / self.rate)


@dataclass(slots=True)
class CircuitBreaker:
    """Stops order traffic to a venue that keeps failing, then probes it with one request."""

    threshold: int = 5
    cooldown_s: float = 10.0
    clock: Callable[[], float] = time.monotonic
    state: str = CLOSED
    failures: int = 0
    opened_at: float = 0.0
    trips: int = 0
    last_error: str = ""
    _probe_out: bool = field(default=False, repr=False)

    def allow(self) -> bool:
        """May a request go out now? In half-open state only one probe at a time."""
        if self.state == CLOSED:
            return True
        if self.state == OPEN:
            if self.clock() - self.opened_at < self.cooldown_s:
                return False
            self.state = HALF_OPEN
            self._probe_out = False
        if self._probe_out:
            return False
        self._probe_out = True
        return True

    def success(self) -> None:
        self.state = CLOSED
        self.failures = 0
        self._probe_out = False

    def failure(self, why: str = "") -> None:
        self.last_error = why
        self._probe_out = False
        if self.state == HALF_OPEN:
            self._open()
            return
        self.failures += 1
        if self.state == CLOSED and self.failures >= self.threshold:
            self._open()

    def _open(self) -> None:
        self.state = OPEN
        self.opened_at = self.clock()
        self.trips += 1

    def retry_in_s(self) -> float:
        return max(0.0, self.cooldown_s - (self.clock() - self.opened_at)) if self.state == OPEN else 0.0


# Query and header parameters that carry a credential or a signature in signed requests (Binance's
# `signature`, OKX's `sign`, Kraken's `API-Sign`, `apiKey` in WS-API params, ...). The value runs to the
# next separator of a query string, a header dump or a JSON/repr dump.
_SIGNED_PARAM = re.compile(
    r"""(?ix)
    (?P<key>\b(?:signature|sign|api[-_]?key|api[-_]?sign|access[-_]?key|secret(?:[-_]?key)?|passphrase|password|
        x-mbx-apikey|ok-access-key|ok-access-sign|ok-access-passphrase|listenkey)\b)
    (?P<sep>["']?\s*[=:]\s*["']?)
    (?P<value>[^&\s"',;}}\]\)]+)
    """
)


def scrub(text: str, secrets: Iterable[str | None] = ()) -> str:
    """`text` with each secret (as is and URL-encoded) replaced by `***`, and the value of every
    signature or key parameter of a signed URL (`...&signature=abc`, `apiKey=...`) redacted too: a
    signature is no secret by itself, but it authorises that very request and names the account.
    Secrets shorter than 4 characters are still replaced (a key is never that short, but a test key
    might be)."""
    for s in secrets:
        if not s:
            continue
        for form in {s, quote(s, safe=""), quote(s)}:
            if form:
                text = text.replace(form, REDACTED)
    if "=" in text or ":" in text:
        text = _SIGNED_PARAM.sub(lambda m: m["key"] + m["sep"] + REDACTED, text)
    return text


class SecretsFilter(logging.Filter):
    """Scrubs every record of the logger it is attached to: the message, its arguments and the
    traceback (formatted here, scrubbed, and kept as the record's `exc_text`). `secrets` is shared by
    every venue of the process (each adds its own key, secret and password)."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()
        self._formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            record.msg = scrub(record.getMessage(), self.secrets)
        except Exception:  # a broken format string must not lose the record: keep it raw, scrubbed
            record.msg = scrub(str(record.msg), self.secrets)
        record.args = None
        if record.exc_info:
            record.exc_text = scrub(self._formatter.formatException(record.exc_info), self.secrets)
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = scrub(record.exc_text, self.secrets)
        if record.stack_info:
            record.stack_info = scrub(record.stack_info, self.secrets)
        return True


#: The process's one secrets filter: each venue adds its key, secret and password; the venue loggers and
#: the log file's handlers (lobterm/logs.py) scrub every record with it.
SECRETS = SecretsFilter()

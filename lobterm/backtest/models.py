"""The backtest's fill models: the queue model and the latency model, as a trader names them on the
command line (`--queue MODEL[:n]`, `--latency SPEC`) and as both backtest paths apply them (through the
paper desk's `PaperConfig`, lobterm/trading/paper.py).

Queue models (hftbacktest's families; see `lobterm.trading.paper.queue_prob`): `risk_averse` (alias
`conservative`, the default: cancels are behind us), `power:n`, `power2:n`, `power3:n`, `log`, `log2`
(`probabilistic` is `power:1`: cancels spread evenly over the level).

Latency: one request latency per type (new, cancel, amend), constant, plus a seeded random part
(uniform in [0, jitter), drawn per request from (seed, request number): the same on both paths and on
every rerun). `--latency 5` is 5 ms for every request; `--latency new=8,cancel=3,amend=5,jitter=4,seed=7`
spells it out. No response latency is modelled: our events are stamped when the request arrives.

`--latency recorded` (or `recorded,seed=N`) takes the latency from the session itself: a session
recorded by this lobterm notes, per request it sent (new, cancel, amend), the local send time and the
time of the venue's answer (`Note("oms", "request_times", ...)`, lobterm/trading/oms.py); each request
of the backtest draws its latency from the recorded request -> answer times of its type (a type the
session never sent draws from all types), deterministically by seed. A session recorded before these
notes existed has none: the backtest says so and stops.

Feed latency (`feed=MS`, `feed_jitter=MS`): market data (and our own order events, which come over the
same kind of connection) reach the strategy that much after the venue matched them. A strategy whose
whole view lags by `d` decides at venue time `t + d` on what the venue knew at `t`, and its request,
sent then, reaches the venue `d + L` after `t` (L: the request's own latency). So a feed delay is
modelled as `d` added to every request's latency (to each recorded sample with `recorded`): exact for a
constant delay, on both paths, with no change to either loop (shifting the market rows' timestamps
alone would move the venue's matching with them and change nothing). `feed_jitter` adds a seeded
uniform [0, MS) per request; with `jitter` as well, the two are drawn as one uniform of their summed
width.

`feed=recorded` takes the feed delay from the session: a live session on a ccxt venue notes, per market,
the venue's own time of book updates and trades next to our local receive time (`Note("feed",
"latency", {venue: {symbol: [[venue ns, local ns], ...]}})`, lobterm/venues/ccxt/streams.py), a bounded
sample of them. The delay of a sample is local - venue, raw: no clock offset is estimated. Subtracting
the window's minimum (the usual offset estimate) would also subtract the floor of the real latency,
which for a trader far from the venue is most of it, while a host on NTP is within a millisecond or two
of the venue's clock; so a negative delay (our clock behind the venue's) is clamped to 0 and counted,
and the result shows how many were. Each request then draws its feed delay from the backtested market's
samples (all markets' when it has none), as the recorded request times are drawn: per request number,
by seed, the same on both paths. With `recorded` request times as well, each type's samples are paired
with feed samples drawn by the seed (a sample of their sum). A session without feed samples (a sim
session, one recorded before lobterm noted them) is refused with one line.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace
from typing import Any

from lobterm.trading.paper import PaperConfig, PaperConfigError, parse_queue_model

__all__ = [
    "LatencyModel",
    "session_latency",
    "RecordedLatency",
    "recorded_latency",
    "add_model_arguments",
    "ModelError",
    "apply_models",
    "parse_latency",
    "parse_queue",
]

_MAX_MS = 60_000.0
_KEYS = ("new", "cancel", "amend", "jitter", "seed", "feed", "feed_jitter")
_FEED_SALT = 0x27D4EB2F
_MAX_SAMPLES = 20_000  # samples handed to the paper config per request type (the fast kernel's arrays)
_MAX_DELAY_NS = 3_600_000_000_000


class ModelError(ValueError):
    """A queue or latency model spec that cannot work; the message names it and the rule."""


@dataclass(frozen=True, slots=True)
class LatencyModel:
    """Request latency per type in ms, plus a seeded random part in [0, jitter_ms)."""

    new_ms: float = 0.0
    cancel_ms: float = 0.0
    amend_ms: float = 0.0
    jitter_ms: float = 0.0
    seed: int = 0
    #: The session's own recorded request -> answer times, per type (see the module docstring).
    recorded: bool = False
    #: Feed latency: the strategy sees the venue's data (and its own order events) this much later, plus
    #: a seeded uniform [0, feed_jitter_ms) per request (see the module docstring).
    feed_ms: float = 0.0
    feed_jitter_ms: float = 0.0
    #: The feed delay drawn from the session's own feed latency samples (`feed=recorded`).
    feed_recorded: bool = False

    @classmethod
    def constant(cls, ms: float) -> LatencyModel:
        _check_ms("latency", ms)
        return cls(ms, ms, ms)

    @property
    def is_zero(self) -> bool:
        return not (
            self.new_ms
            or self.cancel_ms
            or self.amend_ms
            or self.jitter_ms
            or self.recorded
            or self.feed_ms
            or self.feed_jitter_ms
            or self.feed_recorded
        )

    @property
    def single_ms(self) -> float:
        """The one figure for `latency_ms` in results: the new-order latency."""
        return self.new_ms

    def text(self, recorded: RecordedLatency | None = None) -> str:
        """What the model is, for a result; `recorded`: the session's times it drew from (their medians
        are shown)."""
        if self.is_zero:
            return "none"
        feed = ""
        if self.feed_recorded:
            feed = f"; feed recorded (seed {self.seed})"
            if recorded is not None and recorded.feed:
                feed = "; feed recorded: " + recorded.feed_text() + f" (seed {self.seed})"
            if self.feed_jitter_ms:
                feed += f" + uniform [0, {self.feed_jitter_ms:g}) ms"
        elif self.feed_ms or self.feed_jitter_ms:
            feed = f"; feed {self.feed_ms:g} ms" + (
                f" + uniform [0, {self.feed_jitter_ms:g}) ms (seed {self.seed})"
                if self.feed_jitter_ms
                else ""
            )
        return self._request_text(recorded) + feed

    def _request_text(self, recorded: RecordedLatency | None) -> str:
        if not (self.new_ms or self.cancel_ms or self.amend_ms or self.jitter_ms or self.recorded):
            return "requests none"
        if self.recorded:
            base = f"recorded request -> answer times (seed {self.seed})"
            if recorded is not None:
                figs = ", ".join(
                    f"{k} median {v['median_ms']:g} ms (n={v['n']:g})" for k, v in recorded.summary().items()
                )
                base = f"recorded: {figs} (seed {self.seed})"
            return base + (f" + uniform [0, {self.jitter_ms:g}) ms" if self.jitter_ms else "")
        if self.new_ms == self.cancel_ms == self.amend_ms:
            base = f"{self.new_ms:g} ms per request"
        else:
            base = f"new {self.new_ms:g} ms, cancel {self.cancel_ms:g} ms, amend {self.amend_ms:g} ms"
        if self.jitter_ms:
            base += f" + uniform [0, {self.jitter_ms:g}) ms (seed {self.seed})"
        return base

    def paper(self, base: PaperConfig, samples: RecordedLatency | None = None) -> PaperConfig:
        ns = round
        if self.recorded and samples is None:
            raise ModelError("--latency recorded: the session's request -> answer times were not read")
        if self.feed_recorded and (samples is None or not samples.feed):
            raise ModelError("--latency feed=recorded: the session's feed latency samples were not read")
        feed = ns(self.feed_ms * 1e6)  # a feed delay adds to every request's latency (module docstring)
        rec: tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]] = ((), (), ())
        if self.recorded and samples is not None:
            n, c, a = samples.by_type()
            rec = (_plus(n, feed), _plus(c, feed), _plus(a, feed))
        if self.feed_recorded and samples is not None:
            fs = samples.feed
            if self.recorded:  # each type's request times paired with feed delays drawn by the seed
                rng = random.Random(self.seed ^ _FEED_SALT)
                rec = tuple(_paired(k, fs, rng) for k in rec)  # type: ignore[assignment]
            else:  # the constant request latency of each type plus each feed delay
                lat = (self.new_ms, self.cancel_ms, self.amend_ms)
                rec = tuple(_plus(fs, ns(m * 1e6)) for m in lat)  # type: ignore[assignment]
        return replace(
            base,
            recorded_latency_ns=rec,
            new_latency_ns=ns(self.new_ms * 1e6) + feed,
            cancel_latency_ns=ns(self.cancel_ms * 1e6) + feed,
            amend_latency_ns=ns(self.amend_ms * 1e6) + feed,
            latency_jitter_ns=ns(self.jitter_ms * 1e6) + ns(self.feed_jitter_ms * 1e6),
            latency_seed=self.seed,
        )


def _plus(samples: tuple[int, ...], ns: int) -> tuple[int, ...]:
    return tuple(x + ns for x in samples) if ns else samples


def _paired(a: tuple[int, ...], b: tuple[int, ...], rng: random.Random) -> tuple[int, ...]:
    """A sample of the sum of a draw from `a` and one from `b` (as many as the larger has, capped)."""
    n = min(max(len(a), len(b)), _MAX_SAMPLES)
    return tuple(a[rng.randrange(len(a))] + b[rng.randrange(len(b))] for _ in range(n))


@dataclass(frozen=True, slots=True)
class RecordedLatency:
    """A session's recorded request -> answer times in ns, per type, in recorded order."""

    new: tuple[int, ...] = ()
    cancel: tuple[int, ...] = ()
    amend: tuple[int, ...] = ()
    #: Feed delays in ns (local receive time - venue time, negative ones clamped to 0), in recorded order;
    #: how many were clamped, and the market they are from ("venue symbol", or "all
    #: markets" when the backtested one had none).
    feed: tuple[int, ...] = ()
    feed_clamped: int = 0
    feed_market: str = ""

    def feed_text(self) -> str:
        """The feed delays in a phrase: median and p90, how many, how many were clamped."""
        v = sorted(self.feed)
        if not v:
            return "none"
        text = (
            f"median {v[len(v) // 2] / 1e6:g} ms, p90 {v[min(len(v) - 1, len(v) * 9 // 10)] / 1e6:g} ms "
            f"(n={len(v)} on {self.feed_market}"
        )
        if self.feed_clamped:
            text += f", {self.feed_clamped} negative clamped to 0: our clock behind the venue's"
        return text + ")"

    @property
    def count(self) -> int:
        return len(self.new) + len(self.cancel) + len(self.amend)

    def by_type(self) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        """(new, cancel, amend) samples; a type with none draws from all of them."""
        pooled = self.new + self.cancel + self.amend
        return (self.new or pooled, self.cancel or pooled, self.amend or pooled)

    def summary(self) -> dict[str, dict[str, float]]:
        """Per type: n, and the median, p90 and max in ms (for the result and the tests)."""
        out = {}
        for kind in ("new", "cancel", "amend"):
            v = sorted(getattr(self, kind))
            if v:
                out[kind] = {
                    "n": len(v),
                    "median_ms": v[len(v) // 2] / 1e6,
                    "p90_ms": v[min(len(v) - 1, (len(v) * 9) // 10)] / 1e6,
                    "max_ms": v[-1] / 1e6,
                }
        return out


def recorded_latency(reader: Any) -> RecordedLatency:
    """The request -> answer times a session recorded (`Note("oms", "request_times", {kind: [[sent
    ns, answer ns], ...]})`); ModelError when it recorded none (a session from before these notes)."""
    got: dict[str, list[int]] = {"new": [], "cancel": [], "amend": []}
    for _seq, note in reader.notes():
        if note.source != "oms" or note.action != "request_times" or not isinstance(note.detail, dict):
            continue
        for kind, pairs in note.detail.items():
            out = got.get(kind)
            if out is None or not isinstance(pairs, list):
                continue
            for pair in pairs:
                if (
                    isinstance(pair, list)
                    and len(pair) == 2
                    and all(type(x) is int for x in pair)
                    and 0 <= pair[1] - pair[0] <= 3_600_000_000_000
                ):
                    out.append(pair[1] - pair[0])
    rec = RecordedLatency(tuple(got["new"]), tuple(got["cancel"]), tuple(got["amend"]))
    if not rec.count:
        raise ModelError(
            "--latency recorded: the session recorded no request -> answer times (recorded before "
            "lobterm noted them, or it sent no order): give a constant --latency instead"
        )
    return rec


def feed_latency(reader: Any, market: tuple[str, str] | None = None) -> tuple[tuple[int, ...], int, str]:
    """The feed delays a session recorded (`Note("feed", "latency", {venue: {symbol: [[venue ns, local
    ns], ...]}})`): (delays in ns of `market`'s samples, or of all markets' when it has none; how many
    were negative and clamped to 0; which market). ModelError when it recorded none. Garbage is skipped."""
    got: dict[tuple[str, str], list[int]] = {}
    clamped: dict[tuple[str, str], int] = {}
    for _seq, note in reader.notes():
        if note.source != "feed" or note.action != "latency" or not isinstance(note.detail, dict):
            continue
        for venue, markets in note.detail.items():
            if not isinstance(markets, dict):
                continue
            for symbol, pairs in markets.items():
                if not isinstance(pairs, list):
                    continue
                key = (str(venue), str(symbol))
                out = got.setdefault(key, [])
                for pair in pairs:
                    if not (isinstance(pair, list) and len(pair) == 2 and all(type(x) is int for x in pair)):
                        continue
                    d = pair[1] - pair[0]
                    if abs(d) > _MAX_DELAY_NS:
                        continue
                    if d < 0:
                        clamped[key] = clamped.get(key, 0) + 1
                        d = 0
                    out.append(d)
    if market is not None and got.get(market):
        return tuple(got[market]), clamped.get(market, 0), f"{market[0]} {market[1]}"
    pooled = tuple(d for v in got.values() for d in v)
    if not pooled:
        raise ModelError(
            "--latency feed=recorded: the session recorded no feed latency (only live ccxt sessions "
            "note the venue's time): give feed=MS"
        )
    return pooled, sum(clamped.values()), "all markets"


def session_latency(reader: Any, latency: LatencyModel, symbol: str | None = None) -> RecordedLatency | None:
    """What `latency` takes from the session (`reader`): the recorded request -> answer times
    (`recorded`) and the feed delays (`feed_recorded`) of the backtested market (the header's first, on
    `symbol` when given); None when it takes nothing. ModelError when the session lacks what it takes."""
    if not (latency.recorded or latency.feed_recorded):
        return None
    rec = recorded_latency(reader) if latency.recorded else RecordedLatency()
    if latency.feed_recorded:
        keys = [k for k in reader.instruments() if symbol is None or k[1] == symbol]
        feed, clamped, where = feed_latency(reader, keys[0] if keys else None)
        if len(feed) > _MAX_SAMPLES:  # evenly spaced over the session
            feed = tuple(feed[i * len(feed) // _MAX_SAMPLES] for i in range(_MAX_SAMPLES))
        rec = replace(rec, feed=feed, feed_clamped=clamped, feed_market=where)
    return rec


def _check_ms(what: str, v: object) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v) or not 0 <= v <= _MAX_MS:
        raise ModelError(f"{what} {v!r} ms must be a number between 0 and {_MAX_MS:g}")
    return float(v)


def parse_latency(text: str) -> LatencyModel:
    """`MS` (every request) or `new=MS,cancel=MS,amend=MS,jitter=MS,seed=N,feed=MS,feed_jitter=MS` (any
    subset; unnamed ones 0), or `recorded[,jitter=MS,seed=N,feed=MS,feed_jitter=MS]`."""
    t = text.strip()
    if not t:
        raise ModelError("--latency: give MS or new=MS,cancel=MS,amend=MS,jitter=MS,seed=N")
    head, _, rest = t.partition(",")
    if head.strip().lower() == "recorded":
        spec = parse_latency(rest) if rest.strip() else LatencyModel()
        if spec.new_ms or spec.cancel_ms or spec.amend_ms:
            raise ModelError(
                f"--latency {text!r}: recorded takes only jitter=MS, seed=N, feed=MS|recorded and feed_jitter=MS"
            )
        return replace(spec, recorded=True)
    if "=" not in t:
        try:
            return LatencyModel.constant(float(t))
        except ValueError:
            raise ModelError(f"--latency {text!r}: not a number of ms") from None
    values: dict[str, float | int] = {}
    for part in t.split(","):
        key, _, val = part.partition("=")
        key = key.strip().lower()
        if key not in _KEYS:
            raise ModelError(f"--latency {text!r}: unknown key {key!r} ({', '.join(_KEYS)})")
        if key == "feed" and val.strip().lower() == "recorded":
            values["feed_recorded"] = True
            continue
        try:
            if key == "seed":
                seed = int(val)
                if not 0 <= seed < 2**31:
                    raise ValueError
                values[key] = seed
            else:
                values[f"{key}_ms"] = _check_ms(f"--latency {key}", float(val))
        except ValueError:
            raise ModelError(
                f"--latency {text!r}: {key} must be {'a whole number in [0, 2^31)' if key == 'seed' else f'a number of ms between 0 and {_MAX_MS:g}'}"
            ) from None
    if values.get("feed_recorded") and "feed_ms" in values:
        raise ModelError(f"--latency {text!r}: give feed=MS or feed=recorded, not both")
    return LatencyModel(**values)  # type: ignore[arg-type]


def parse_queue(text: str) -> str:
    """The queue model spec, checked (see the module docstring)."""
    try:
        family, n = parse_queue_model(text)
    except PaperConfigError as exc:
        raise ModelError(f"--queue {text!r}: {exc.rule}") from None
    return family if n == 1.0 else f"{family}:{n:g}"


def apply_models(
    base: PaperConfig,
    latency: LatencyModel | None,
    queue: str | None,
    recorded: RecordedLatency | None = None,
) -> PaperConfig:
    """The paper config of a backtest: `base` (the recorded fees) with the latency and queue models
    (`recorded`: the session's request -> answer times, for `--latency recorded`)."""
    cfg = (latency or LatencyModel()).paper(base, recorded)
    return replace(cfg, cancel_model=queue) if queue else cfg


def add_model_arguments(parser: Any) -> None:
    """`--queue MODEL[:n]` and `--latency SPEC` (lobterm/backtest/models.py) on a backtest-like command."""
    parser.add_argument(
        "--queue",
        metavar="MODEL[:n]",
        help="queue position model: risk_averse (default), power:n, power2:n, power3:n, log, log2 "
        "(hftbacktest's families; probabilistic = power:1)",
    )
    parser.add_argument(
        "--latency",
        metavar="SPEC",
        help="request latency: MS for every request, or new=MS,cancel=MS,amend=MS,jitter=MS,seed=N "
        "(jitter: a seeded uniform extra per request), or recorded[,seed=N] (the session's own "
        "request -> answer times, drawn per request type); feed=MS[,feed_jitter=MS] adds a market data "
        "feed delay (the strategy sees the venue's data that much late); feed=recorded draws it from the "
        "session's own venue-time vs receive-time samples (live ccxt sessions)",
    )

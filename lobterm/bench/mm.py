"""Tick-to-quote: how long from a book event on the bus to the market maker's first order out.

Measured on the real thing: a SimVenue + Kernel on a VirtualClock, the market maker quoting
`levels` a side, a few thousand sim steps. Time is `time.perf_counter_ns()`:
- start: just before the venue publishes the book event(s) on the bus (a proxy in front of the bus
  the venue was attached to);
- end: on entry to the venue's `submit`/`amend`/`cancel` (the instance's methods, wrapped), i.e. the
  first request of the requote cycle reaching the venue. Everything in between is real: the bus, the
  kernel's L2 and unified books, the OMS, the inventory, the market maker's model, diff and sending.

Figures:
- `tick_to_quote_us`: one `BookDelta` in, orders out. After every step the providers' best bid level is
  pulled from the matching book (the venue's book, so it stays consistent) and the venue publishes that
  one delta; the others' mid moves half a tick, so the ladder always moves.
- `step_to_quote_us`: a whole step's batch (every delta, trade and fill of the step) in, orders out.
- `events_per_s_mm` / `events_per_s_no_mm`: bus events per wall second of a headless run (same seed,
  same steps) with and without the market maker.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from lobterm.assemble import build_sim_kernel
from lobterm.config import load
from lobterm.engine.events import BUY
from lobterm.trading.market_maker import MarketMaker
from lobterm.trading.quoting import QuoteParams
from lobterm.venues.sim import LP_OWNER

PARAMS = QuoteParams(
    levels=5, spread_ticks=2, size_lots=10, skew_ticks_per_lot=0.1, size_skew=0.5, max_position_lots=60
)


class _Probe:
    """Start on the venue's publish (when armed), stop on its first request after that."""

    __slots__ = ("armed", "t0", "samples")

    def __init__(self) -> None:
        self.armed = False
        self.t0 = 0
        self.samples: list[int] = []

    def request(self) -> None:
        if self.t0:
            self.samples.append(time.perf_counter_ns() - self.t0)
            self.t0 = 0


class _BusProxy:
    """What the venue publishes through: marks the start of a measured publish, then forwards."""

    def __init__(self, bus: Any, probe: _Probe) -> None:
        self._bus = bus
        self._probe = probe

    def publish(self, event: Any) -> None:
        self._mark()
        self._bus.publish(event)

    def publish_many(self, events: list) -> None:
        self._mark()
        self._bus.publish_many(events)

    def _mark(self) -> None:
        p = self._probe
        if p.armed:
            p.armed = False
            p.t0 = time.perf_counter_ns()


def _wrap_requests(venue: Any, probe: _Probe) -> None:
    for name in ("submit", "amend", "cancel"):
        fn = getattr(venue, name)

        def wrapped(*args: Any, _fn: Any = fn, **kwargs: Any) -> None:
            probe.request()
            _fn(*args, **kwargs)

        setattr(venue, name, wrapped)


def _pct(samples: list[int], q: float) -> float:
    s = sorted(samples)
    return round(s[min(len(s) - 1, int(q * (len(s) - 1) + 0.5))] / 1e3, 1) if s else float("nan")


def _summary(samples: list[int]) -> dict:
    return {
        "n": len(samples),
        "p50": _pct(samples, 0.50),
        "p90": _pct(samples, 0.90),
        "p99": _pct(samples, 0.99),
        "max": _pct(samples, 1.0),
    }


def _pull_best_bid(venue: Any) -> bool:
    """Cancel the providers' orders at the best bid in the venue's matching book; True if any."""
    book = venue.book
    bid = book.best_bid()
    if bid is None:
        return False
    ids = [oid for oid, _size, owner in book.orders_at(BUY, bid) if owner == LP_OWNER]
    for oid in ids:
        book.cancel(oid)
    return bool(ids)


def _kernel(seed: int):
    return build_sim_kernel(load(use_defaults=False, overrides={"sim": {"seed": seed}}), virtual=True)


def _throughput(steps: int, seed: int, params: QuoteParams | None) -> dict:
    kernel, venue = _kernel(seed)
    venue.open()
    mm = None
    if params is not None:
        mm = MarketMaker.from_kernel(kernel, params=params)
        mm.resume()
    t0 = time.perf_counter()
    for _ in range(steps):
        venue.step()
    wall = time.perf_counter() - t0
    events = kernel.bus.published
    return {
        "events": events,
        "seconds": round(wall, 3),
        "events_per_s": round(events / wall),
        "sim_seconds_per_wall_s": round(steps / venue.config.rate_hz / wall, 1),
        "fills": mm.fills if mm else 0,
        "errors": kernel.bus.errors,
    }


def run(steps: int = 3000, seed: int = 1, warmup: int = 100) -> dict:
    """Measure tick-to-quote over `steps` sim steps (after `warmup`) and headless events/s."""
    kernel, venue = _kernel(seed)
    venue.open()
    mm = MarketMaker.from_kernel(kernel, params=PARAMS)
    probe = _Probe()
    venue._bus = _BusProxy(venue._bus, probe)  # the venue publishes through the probe
    _wrap_requests(venue, probe)
    mm.resume()
    for _ in range(warmup):
        venue.step()

    one_delta: list[int] = []
    batch: list[int] = []
    no_requote = 0
    for _ in range(steps):
        probe.samples = batch
        probe.armed = True
        venue.step()
        probe.armed = False
        if probe.t0:  # nothing of ours needed to change after this step
            probe.t0 = 0
            no_requote += 1
        if _pull_best_bid(venue):
            probe.samples = one_delta
            probe.armed = True
            venue._publish()  # exactly what the venue does after a change: here, one BookDelta
            probe.armed = False
            probe.t0 = 0
    with_mm = _throughput(steps, seed, PARAMS)
    without = _throughput(steps, seed, None)
    return {
        "steps": steps,
        "seed": seed,
        "levels_per_side": PARAMS.levels,
        "tick_to_quote_us": _summary(one_delta),
        "step_to_quote_us": _summary(batch),
        "steps_without_requote": no_requote,
        "events_per_s_mm": with_mm["events_per_s"],
        "events_per_s_no_mm": without["events_per_s"],
        "sim_seconds_per_wall_s_mm": with_mm["sim_seconds_per_wall_s"],
        "sim_seconds_per_wall_s_no_mm": without["sim_seconds_per_wall_s"],
        "headless_events_mm": with_mm["events"],
        "headless_fills_mm": with_mm["fills"],
        "mm": {
            "quotes_sent": mm.quotes_sent,
            "amends": mm.amends_sent,
            "cancels": mm.cancels_sent,
            "requote_cycles": mm.requote_cycles,
            "fills": mm.fills,
            "rejects": mm.rejects,
            "max_working": PARAMS.levels * 2,
            "bus_errors": kernel.bus.errors,
        },
    }


def report(r: dict) -> str:
    """The figures of `run` as lines of text."""
    lines = [
        f"market maker on SimVenue + Kernel (VirtualClock), {r['levels_per_side']} levels a side, "
        f"{r['steps']:,} steps, seed {r['seed']}"
    ]
    for key, label in (
        ("tick_to_quote_us", "one BookDelta in -> first order out"),
        ("step_to_quote_us", "a step's batch in -> first order out"),
    ):
        s = r[key]
        lines.append(
            f"  {label:<40} p50 {s['p50']:>7.1f} us  p90 {s['p90']:>7.1f} us  p99 {s['p99']:>7.1f} us  "
            f"max {s['max']:>8.1f} us  (n={s['n']:,})"
        )
    lines.append(f"  steps with nothing to requote            {r['steps_without_requote']:,}")
    for label, key in (("with MM", "mm"), ("no MM  ", "no_mm")):
        lines.append(
            f"  headless events/s  {label} {r['events_per_s_' + key]:>10,}  "
            f"({r['sim_seconds_per_wall_s_' + key]}x real time)"
        )
    m = r["mm"]
    lines.append(
        f"  market maker: {m['quotes_sent']:,} new, {m['amends']:,} amends, {m['cancels']:,} cancels, "
        f"{m['requote_cycles']:,} cycles, {m['fills']:,} fills, {m['rejects']} rejects"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """`python benchmarks/mm_bench.py [--steps N] [--seed S] [--json]`."""
    ap = argparse.ArgumentParser(
        description="Prints the market maker's tick-to-quote latency and headless events/s."
    )
    ap.add_argument("--steps", type=int, default=3000, help="sim steps measured (default 3,000)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    a = ap.parse_args(argv)
    r = run(a.steps, a.seed)
    print(json.dumps(r) if a.json else report(r))
    return 0

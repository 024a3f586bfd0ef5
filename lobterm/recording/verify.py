"""`lobterm verify FILE`: replay a session's events through a fresh kernel and compare every checkpoint hash.

The fresh kernel is built on the session's own instruments (`replay_kernel`), with a venue that only
names them (`RecordedVenue`: it sends nothing and refuses requests), on a virtual clock that follows
the recorded timestamps. Each recorded event is published on its bus in seq order; at each
checkpoint's seq the kernel's `state_hash()` must equal the recorded hash. Notes are not state and
are skipped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lobterm.clock import VirtualClock
from lobterm.engine.events import LIMIT, OUR_OWNER, REJECTED, STP_CANCEL_RESTING, Done, Rejected
from lobterm.recording.reader import SessionError, SessionReader

if TYPE_CHECKING:
    from lobterm.bus import Bus
    from lobterm.clock import Clock
    from lobterm.engine.instrument import Instrument
    from lobterm.kernel import Kernel

__all__ = ["RecordedVenue", "replay_kernel", "verify", "VerifyResult", "Mismatch"]


class RecordedVenue:
    """A venue as a session recorded it: its name and instruments. It publishes nothing by itself (the
    recorded events are the feed) and refuses any order sent to it."""

    mode = "REPLAY"

    def __init__(self, name: str, instruments: dict[str, Instrument], own_in_book: bool = True) -> None:
        self.name = name
        self.instruments = instruments
        self.own_in_book = own_in_book
        self.state = "replay"
        self._bus: Bus | None = None
        self._clock: Clock | None = None

    def attach(self, bus: Bus, clock: Clock) -> None:
        self._bus = bus
        self._clock = clock

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    def _refuse(self, order_id: int, symbol: str, new: bool) -> None:
        now = self._clock.now() if self._clock is not None else 0
        events = [Rejected(now, self.name, symbol, order_id, "a recorded venue takes no orders", OUR_OWNER)]
        if new:
            events.append(Done(now, self.name, symbol, order_id, 0, REJECTED, OUR_OWNER))
        if self._bus is not None:
            self._bus.publish_many(events)

    def submit(
        self,
        order_id: int,
        symbol: str,
        side: int,
        price: int,
        size: int,
        order_type: int = LIMIT,
        stp: int = STP_CANCEL_RESTING,
    ) -> None:
        self._refuse(order_id, symbol, True)

    def cancel(self, order_id: int, symbol: str) -> None:
        self._refuse(order_id, symbol, False)

    def amend(self, order_id: int, symbol: str, price: int | None = None, size: int | None = None) -> None:
        self._refuse(order_id, symbol, False)


def replay_kernel(reader: SessionReader, start_ns: int | None = None) -> Kernel:
    """A fresh kernel on the session's venues and instruments, on a virtual clock (no events yet)."""
    from lobterm.assemble import kernel_for

    instruments = reader.instruments()
    venues = []
    for spec in reader.venues:
        name = spec.get("name") if isinstance(spec, dict) else None
        if not isinstance(name, str):
            raise SessionError(reader.path, f"corrupt header: venue {spec!r}")
        insts = {sym: inst for (v, sym), inst in instruments.items() if v == name}
        venues.append(RecordedVenue(name, insts, bool(spec.get("own_in_book", True))))
    if not venues:
        raise SessionError(reader.path, "corrupt header: no venues")
    start = start_ns if start_ns is not None else int(reader.header.get("start_ns") or 0)
    return kernel_for(venues, VirtualClock(start))


@dataclass(slots=True, frozen=True)
class Mismatch:
    seq: int
    ts: int
    expected: str
    got: str


@dataclass(slots=True)
class VerifyResult:
    events: int  # events replayed
    checkpoints: int  # checkpoints compared (all matched, or up to and including the mismatch)
    total_checkpoints: int
    closed: bool
    mismatch: Mismatch | None = None

    @property
    def ok(self) -> bool:
        return self.mismatch is None and self.checkpoints > 0


def verify(path, progress: Callable[[int, int], None] | None = None) -> VerifyResult:
    """Replay `path` and compare its checkpoint hashes; stops at the first mismatch. SessionError for a
    file that cannot be read (including events missing from the sequence)."""
    with SessionReader(path) as reader:
        checkpoints = reader.checkpoints()
        last_seq = reader.last_seq
        kernel = replay_kernel(reader)
        clock: VirtualClock = kernel.clock  # type: ignore[assignment]
        publish = kernel.bus.publish
        advance = clock.advance_to
        result = VerifyResult(0, 0, len(checkpoints), reader.closed)
        cps = iter(checkpoints)
        cp = next(cps, None)
        expected_seq = 1
        for seq, ts, ev in reader.events(notes=False, with_skipped=True):
            if seq != expected_seq:
                raise SessionError(path, f"events missing: expected seq {expected_seq}, found {seq}")
            expected_seq = seq + 1
            if ev is not None:
                advance(ts)
                publish(ev)
                result.events += 1
            while cp is not None and cp.seq == seq:
                result.checkpoints += 1
                got = kernel.state_hash()
                if got != cp.hash:
                    result.mismatch = Mismatch(cp.seq, cp.ts, cp.hash, got)
                    return result
                cp = next(cps, None)
            if progress is not None and seq % 50_000 == 0:
                progress(seq, last_seq)
        if cp is not None:
            raise SessionError(
                path, f"checkpoint at seq {cp.seq} is past the last event ({expected_seq - 1})"
            )
        return result

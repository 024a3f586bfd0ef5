"""`lobterm verify FILE...`: replay a session's events through a fresh kernel and check every checkpoint.

The fresh kernel is built on the session's own instruments (`replay_kernel`), with a venue that only
names them (`RecordedVenue`: it sends nothing and refuses requests), on a virtual clock that follows
the recorded timestamps. Each recorded event is published on its bus in seq order; at each
checkpoint's seq the kernel's `state_hash()` must equal the recorded hash, and the checkpoint's recorded
state (what a seek restores) must decode and restore to that same hash. Notes are not state and are
skipped. Exit codes of the command: 0 every checkpoint good; 1 a mismatch (the replay differs from the
recording); 2 the file cannot be used or is damaged (a corrupt event or checkpoint: checked up to it);
3 nothing to verify yet (no checkpoint: a format-v1 file killed before its first one).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lobterm.clock import VirtualClock
from lobterm.engine.events import LIMIT, OUR_OWNER, REJECTED, STP_CANCEL_RESTING, Done, Rejected
from lobterm.recording.reader import Checkpoint, SessionError, SessionParts, SessionReader
from lobterm.recording.state import restore_state

if TYPE_CHECKING:
    from lobterm.engine.instrument import Instrument
    from lobterm.engine.ports import Bus, Clock
    from lobterm.kernel import Kernel
    from lobterm.venues.base import Venue

__all__ = ["RecordedVenue", "replay_kernel", "verify", "verify_files", "VerifyResult", "Mismatch"]


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
        events: list[Rejected | Done] = [
            Rejected(now, self.name, symbol, order_id, "a recorded venue takes no orders", OUR_OWNER)
        ]
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


def replay_kernel(
    reader: SessionReader, start_ns: int | None = None, *, clock: VirtualClock | None = None
) -> Kernel:
    """A fresh kernel on the session's venues and instruments, on a virtual clock (`clock`, else one at
    `start_ns`, else at the session's start; no events yet)."""
    from lobterm.assemble import kernel_for

    instruments = reader.instruments()
    venues: list[Venue] = []
    for spec in reader.venues:
        name = spec.get("name") if isinstance(spec, dict) else None
        if not isinstance(name, str):
            raise SessionError(reader.path, f"corrupt header: venue {spec!r}")
        insts = {sym: inst for (v, sym), inst in instruments.items() if v == name}
        venues.append(RecordedVenue(name, insts, bool(spec.get("own_in_book", True))))
    if not venues:
        raise SessionError(reader.path, "corrupt header: no venues")
    if clock is None:
        clock = VirtualClock(start_ns if start_ns is not None else _start_ns(reader))
    return kernel_for(venues, clock)


def _start_ns(reader: SessionReader) -> int:
    return int(reader.header.get("start_ns") or 0)


@dataclass(slots=True, frozen=True)
class Mismatch:
    seq: int
    ts: int
    expected: str
    got: str


#: `lobterm verify` exit codes (also VerifyResult.exit_code).
EXIT_OK, EXIT_MISMATCH, EXIT_UNUSABLE, EXIT_NOTHING_YET = 0, 1, 2, 3


@dataclass(slots=True)
class VerifyResult:
    path: str
    events: int  # events replayed
    checkpoints: int  # checkpoints checked (all good, or up to and including the first bad one)
    total_checkpoints: int
    closed: bool
    mismatch: Mismatch | None = None
    #: Where the file is damaged (a corrupt event or checkpoint, events missing): verification
    #: stopped there, everything before it was checked.
    damage: str | None = None

    @property
    def ok(self) -> bool:
        return self.mismatch is None and self.damage is None and self.checkpoints > 0

    @property
    def exit_code(self) -> int:
        if self.mismatch is not None:
            return EXIT_MISMATCH
        if self.damage is not None:
            return EXIT_UNUSABLE
        return EXIT_OK if self.checkpoints > 0 else EXIT_NOTHING_YET


def _restored_hash(reader: SessionReader, cp: Checkpoint, kernel: Kernel, clock: VirtualClock) -> str:
    """The state hash of `kernel` (on `clock`) after restoring checkpoint `cp` into it. SessionError naming the
    checkpoint when its state does not decode or cannot be restored."""
    state = reader.checkpoint_state(cp.seq)
    try:
        restore_state(kernel, state)
    except Exception as exc:  # a decoded blob is untrusted input: any refusal is the file's problem
        raise SessionError(
            reader.path, f"corrupt checkpoint at seq {cp.seq}: its state cannot be restored: {exc}"
        ) from None
    clock.advance_to(cp.ts)
    return kernel.state_hash()


def verify(path, progress: Callable[[int, int], None] | None = None) -> VerifyResult:
    """Replay `path` on its own and check every checkpoint: the replayed state's hash must equal the
    recorded hash (else a Mismatch), and the recorded state, restored into a fresh kernel (what a seek
    does), must give that hash too (else damage). A later part of a rotated session starts from its
    start checkpoint. Stops at the first mismatch or damage. SessionError for a file that cannot be
    opened at all."""
    with SessionReader(path) as reader:
        checkpoints = reader.checkpoints()
        first_seq = reader.first_seq
        last_seq = reader.last_seq
        clock = VirtualClock(_start_ns(reader))
        kernel = replay_kernel(reader, clock=clock)
        publish = kernel.bus.publish
        advance = clock.advance_to
        result = VerifyResult(str(path), 0, 0, len(checkpoints), reader.closed)
        start = reader.start_checkpoint()
        cps = iter(c for c in checkpoints if c.seq >= first_seq)
        try:
            if start is not None:
                result.checkpoints += 1
                got = _restored_hash(reader, start, kernel, clock)
                if got != start.hash:
                    result.damage = (
                        f"the start checkpoint (seq {start.seq}) does not restore to its recorded hash"
                    )
                    return result
            elif first_seq > 1:
                result.damage = (
                    f"starts at event {first_seq} without a start checkpoint: it cannot be checked on its own"
                )
                return result
            cp = next(cps, None)
            expected_seq = first_seq
            for seq, ts, ev in reader.events(first_seq, notes=False, with_skipped=True):
                if seq != expected_seq:
                    result.damage = f"events missing: expected seq {expected_seq}, found {seq}"
                    return result
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
                    fresh = VirtualClock(cp.ts)
                    if _restored_hash(reader, cp, replay_kernel(reader, clock=fresh), fresh) != cp.hash:
                        result.damage = (
                            f"the checkpoint at seq {cp.seq} does not restore to its recorded hash"
                        )
                        return result
                    cp = next(cps, None)
                if progress is not None and seq % 50_000 == 0:
                    progress(seq, last_seq)
        except SessionError as exc:
            result.damage = exc.problem
            return result
        if cp is not None:
            result.damage = f"checkpoint at seq {cp.seq} is past the last event ({expected_seq - 1})"
        return result


def verify_files(paths: list, progress: Callable[[int, int], None] | None = None) -> list[VerifyResult]:
    """Verify each file on its own, after checking (for several) that they are the parts of one
    session in order with no events missing between them (SessionError otherwise)."""
    if len(paths) > 1:
        SessionParts(list(paths)).close()
    return [verify(p, progress) for p in paths]

"""The player: a recorded session played back through a real kernel, with pause, speed, step and seek.

    player = Player("sessions/2026...lobterm.sqlite")
    player.step()                 # one recorded event onto the kernel's bus
    player.seek(ts_ns)            # through the nearest checkpoint at or before ts, then forward
    player.play(wall_seconds)     # what `speed` says that much wall time covers (None: as fast as allowed)
    player.kernel.state_hash()    # the recorded checkpoint hash at a checkpoint's seq

The kernel is built from the session header (its instruments and venues) on a `ReplayClock` driven
by the recorded timestamps; each recorded venue becomes a `ReplayVenue` (lobterm/venues/replay.py:
our original orders are shown as they were, and our orders during the replay are paper orders).

A session of several files (the parts of a rotated session: `Player([part1, part2])`) plays as one. A
file that starts from a checkpoint (every format-v2 file; a later part of a rotated session) starts
there.

Damaged files never raise out of the player: a corrupt event (or one the kernel cannot take) stops
playback at the event before it, a corrupt checkpoint is skipped for an earlier one (the seek still
lands where asked, replaying more events); either way `problem` says what and where and `problems`
counts them (the TUI shows each as a notification).

Determinism: the same file and the same calls give the same kernel state. Seek resets the kernel in
place (the TUI's widgets keep their references): books, our recorded orders, positions and trade
counters come back from the checkpoint (`recording.state.restore_state`), the volume-at-price column
and the tape from the recorded trades up to it, the OMS's view of our recorded working orders from
the checkpoint's `oms_working`; then events are replayed forward to the target. Paper orders and
their fills are forgotten on seek (trading during a replay is reset on seek).

History over time: the views that keep one (the inventory panel's sparklines, the heatmap) do not sample on
the wall clock in a replay but through `samplers`: each is called at every multiple of `SAMPLE_NS` of
session time that the replay passes, with the state as it was then (every event up to that time out, none
after). A straight play and a seek's fast-forward pass the same times in the same order, so both draw the
same history; a seek restores the checkpoint at or before `lookback()` ns before its target (the history the
views show), not just before the target.

The market maker's parameters: the recorded live changes (`recording.params`, the `mm params` notes with
their values) apply at their places in the session as the replay passes them, and a seek sets each market
maker to the parameters in force at its target (the recorded start, `bind_market_makers`, plus the changes
before it): the market-maker panel shows what was in force at that moment. Changes made during the replay
(paper trading) last until the next seek or recorded change.

Pacing (`run_paced`, started by the venue when the kernel starts on the TUI's loop) publishes, every
few milliseconds, the events whose recorded time the replay clock has reached; never more than
`BUDGET_S` of work per slice, so the UI stays responsive at any speed, including "max".
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

from lobterm.assemble import kernel_for
from lobterm.clock import VirtualClock
from lobterm.engine.bounds import add_volume
from lobterm.engine.events import OUR_OWNER, Accepted, Fill, VenueStatus
from lobterm.recording.params import ParamChange, all_param_changes
from lobterm.recording.reader import Checkpoint, SessionError, SessionParts, SessionReader, open_session
from lobterm.recording.state import restore_state
from lobterm.trading.oms import PENDING_NEW, WorkingOrder
from lobterm.trading.paper import PaperConfig
from lobterm.trading.quoting import QuoteParamError
from lobterm.trading.strategy import RUNNING
from lobterm.venues.replay import PAPER_ID_BASE, RECORDED_TAG, ReplayVenue, adopt_recorded_order

__all__ = [
    "Player",
    "ReplayClock",
    "SAMPLE_NS",
    "SPEEDS",
    "SessionError",
    "build_replay_venues",
    "parse_seek",
]

#: The speed steps of `[` and `]`; None is "as fast as possible".
SPEEDS: tuple[float | None, ...] = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, None)
BUDGET_S = 0.008  # most wall time one pacing slice may spend publishing
SLICE_S = 0.01  # pacing period
CHUNK = 2048  # events read per query while playing
SAMPLE_NS = 250_000_000  # the samplers' step in session time (the heatmap's; the sparklines take every 4th)
_NEVER = 1 << 62
_ORDER_KINDS = ("Accepted", "Fill", "Cancelled", "Amended", "Rejected", "Done")
# The OMS's counters: zero at the start of a session, so zero before a seek replays up to its target.
_OMS_COUNTERS = (
    "sent",
    "fills",
    "filled_lots",
    "rejects",
    "cancels_sent",
    "amends_sent",
    "cancel_rejects",
    "amend_rejects",
    "done",
    "unknown_events",
    "late_events",
    "forgotten_events",
    "venue_errors",
)

log = logging.getLogger(__name__)


class ReplayClock(VirtualClock):
    """A virtual clock that a seek may move backwards."""

    __slots__ = ()

    def reset(self, ts_ns: int) -> None:
        self._now = ts_ns


def _own_in_book(venue_spec: dict) -> bool:
    """Whether the recorded venue's L2 book included our resting orders (sim and live venues: yes;
    a paper desk's virtual orders: no)."""
    return str(venue_spec.get("mode", "")).upper() != "PAPER"


def build_replay_venues(
    reader: SessionReader | SessionParts, *, show_recorded_orders: bool, paper: PaperConfig | None = None
) -> list[ReplayVenue]:
    """One ReplayVenue per recorded venue (with its recorded instruments)."""
    instruments = reader.instruments()
    venues = []
    seen = set()
    for spec in reader.venues:
        name = spec.get("name") if isinstance(spec, dict) else None
        if not isinstance(name, str) or name in seen:
            raise SessionError(reader.path, f"corrupt header: venue {spec!r}")
        seen.add(name)
        insts = {sym: inst for (v, sym), inst in instruments.items() if v == name}
        if not insts:
            continue
        venues.append(
            ReplayVenue(
                name,
                insts,
                recorded_own_in_book=_own_in_book(spec),
                show_recorded_orders=show_recorded_orders,
                paper=paper,
            )
        )
    if not venues:
        raise SessionError(reader.path, "the header lists no venue with an instrument: nothing to replay")
    return venues


def paper_config_from(header_config: dict, venues: list | None = None) -> PaperConfig:
    """The paper desk's config as the session ran it: the fees from the recorded sim config (what the
    venue charged), no latency; and when the session paper-traded the sim (its recorded `venues` list
    the [sim] venue in mode PAPER), the recorded `sim.paper_cross_fills` (off by default there: `lobterm
    run --paper` fills as the matching engine would). A live venue's paper desk ran with the defaults."""
    sim = header_config.get("sim") if isinstance(header_config, dict) else None
    sim = sim if isinstance(sim, dict) else {}
    try:
        cfg = PaperConfig(
            maker_fee_ppm=int(sim.get("maker_fee_ppm", 0)), taker_fee_ppm=int(sim.get("taker_fee_ppm", 0))
        )
    except (TypeError, ValueError):
        cfg = PaperConfig()
    cross = sim.get("paper_cross_fills")
    if isinstance(cross, bool) and venues:
        name = sim.get("venue", "sim")
        if any(isinstance(v, dict) and v.get("name") == name and v.get("mode") == "PAPER" for v in venues):
            cfg = replace(cfg, cross_fills=cross)
    return cfg


def parse_seek(text: str, now_ns: int, first_ns: int) -> int:
    """A seek target from the user: "HH:MM:SS" (or "MM:SS", "SS") of replay time since the session's
    first event, or "+N" / "-N" seconds from now. Raises ValueError with what is wrong."""
    t = text.strip()
    if not t:
        raise ValueError("type a time: HH:MM:SS from the start, or +/-seconds")
    if t[0] in "+-":
        try:
            secs = float(t[1:])
        except ValueError:
            raise ValueError(f"{text!r}: +/- must be followed by seconds, e.g. +30 or -5.5") from None
        if not secs == secs or secs in (float("inf"),):
            raise ValueError(f"{text!r} is not a number of seconds")
        return now_ns + round((secs if t[0] == "+" else -secs) * 1e9)
    parts = t.split(":")
    if len(parts) > 3:
        raise ValueError(f"{text!r}: at most HH:MM:SS")
    try:
        nums = [float(p) for p in parts]
    except ValueError:
        raise ValueError(f"{text!r} is not HH:MM:SS or +/-seconds") from None
    if any(n < 0 or n != n for n in nums) or any(n >= 60 for n in nums[1:]):
        raise ValueError(f"{text!r}: minutes and seconds run 0..59")
    secs = 0.0
    for n in nums:
        secs = secs * 60 + n
    return first_ns + round(secs * 1e9)


class Player:
    """A session played back through a kernel (see the module docstring)."""

    def __init__(
        self,
        path: str | os.PathLike | list,
        *,
        risk_limits: Any = None,
        paper: PaperConfig | None = None,
    ) -> None:
        self.reader = reader = open_session(path)
        try:
            n = len(reader.paths)
            self.path = str(reader.path) + (f" (+{n - 1} more part{'s' if n > 2 else ''})" if n > 1 else "")
            first_ts, last_ts = reader.time_range()
            if first_ts is None or last_ts is None:
                raise SessionError(reader.path, "the session has no events: nothing to replay")
            self.first_ts: int = first_ts
            self.last_ts: int = last_ts
            self.last_seq = reader.last_seq
            self.checkpoints: list[Checkpoint] = reader.checkpoints()
            self.clock = ReplayClock(self.first_ts)
            self.venues = build_replay_venues(
                reader,
                show_recorded_orders=True,
                paper=paper or paper_config_from(reader.config, reader.venues),
            )
            self.kernel = kernel_for(self.venues, self.clock, risk_limits=risk_limits)
        except BaseException:
            reader.close()
            raise
        self.kernel.oms._next_id = PAPER_ID_BASE  # paper order ids never meet recorded ones
        self._by_name = {v.name: v for v in self.venues}
        for v in self.venues:
            v.on_recorded_accept = self._adopt
            v.driver = self.run_paced
        self.venues[0].driver = self.run_paced
        for v in self.venues[1:]:
            v.driver = None  # one pacing task for the whole session
        self.seq = 0  # the last published event's seq
        self.replay_ns = self.first_ts  # the transport's position in replay time
        self.paused = False
        self.speed_index = SPEEDS.index(1.0)
        self.published = 0
        self.seeks = 0
        #: Our fills from the session's start to the checkpoint the last seek restored (the views' fill lists
        #: start from these; the fills after it come through the bus as the replay runs to the target).
        self.restored_fills: list[Fill] = []
        #: Called after every reset to a checkpoint (or to the start), before the replay runs on to the
        #: target: views that keep their own history (fill lists, sparklines) start again from here.
        self.on_restore: list[Callable[[], None]] = []
        self.version = 0  # bumps on anything the transport bar shows
        self._pending: deque = deque()
        self._source: Iterator[tuple[int, int, Any]] | None = None
        self._exhausted = False
        #: The last problem with the file, in one line (a corrupt event or checkpoint); `problems` counts.
        self.problem: str | None = None
        self.problems = 0
        self._damaged = False  # playback stopped at a damaged event (until the next seek)
        self._bad_checkpoints: set[int] = set()
        #: Called with each multiple of SAMPLE_NS of session time the replay passes (see the docstring).
        self.samplers: list[Callable[[int], None]] = []
        #: ns of history before a seek's target that the seek replays (the views' history); 0: none.
        self.lookback: Callable[[], int] = lambda: 0
        #: At most this many events replayed for that history beyond the nearest checkpoint (None: no bound).
        self.lookback_events: int | None = None
        #: Boundaries further than this before an event are not sampled (a long gap in the session): no view
        #: keeps more history than this.
        self.sample_horizon_ns = 3 * 3600 * 10**9
        self._next_sample_ns = _NEVER
        try:
            self.param_changes: list[ParamChange] = all_param_changes(reader)
        except SessionError as exc:  # a damaged page: the panel keeps the recorded start
            self.param_changes = []
            self._report(f"{exc}; the recorded parameter changes are not shown")
        self._param_i = 0
        self._next_param_seq = _NEVER
        self._mm_base: dict[str, Any] = {}  # "venue:symbol" -> the recorded start's QuoteParams
        self._start_cp = reader.start_checkpoint()
        self._restore(self._start_cp)

    # ---- problems ------------------------------------------------------------------------------------
    def _report(self, problem: str) -> None:
        self.problem = problem
        self.problems += 1
        self.version += 1
        log.warning("replay: %s", problem)

    def _stop(self, problem: str) -> None:
        """Playback cannot go past here: say so, and behave as at the end until the next seek."""
        self._pending.clear()
        self._exhausted = True
        self._damaged = True
        self.paused = True
        self._report(f"{problem}; playback stopped at event {self.seq:,}")

    # ---- transport state ---------------------------------------------------------------------------
    @property
    def speed(self) -> float | None:
        return SPEEDS[self.speed_index]

    @property
    def at_end(self) -> bool:
        return self._peek() is None

    @property
    def progress(self) -> float:
        """0..1 through the session by replay time."""
        span = self.last_ts - self.first_ts
        if span <= 0:
            return 1.0 if self.at_end else 0.0
        return min(1.0, max(0.0, (self.replay_ns - self.first_ts) / span))

    def pause(self) -> None:
        self.paused = True
        self.version += 1

    def resume(self) -> None:
        if self.at_end:
            return
        self.paused = False
        self.version += 1

    def toggle_pause(self) -> bool:
        """Pause or resume; returns True when now paused."""
        if self.paused:
            self.resume()
        else:
            self.pause()
        return self.paused

    def faster(self) -> float | None:
        self.speed_index = min(len(SPEEDS) - 1, self.speed_index + 1)
        self.version += 1
        return self.speed

    def slower(self) -> float | None:
        self.speed_index = max(0, self.speed_index - 1)
        self.version += 1
        return self.speed

    def set_speed(self, speed: float | None) -> None:
        if speed not in SPEEDS:
            raise ValueError(f"speed {speed!r} must be one of {SPEEDS}")
        self.speed_index = SPEEDS.index(speed)
        self.version += 1

    # ---- events in ---------------------------------------------------------------------------------
    def _open_source(self, after_seq: int) -> Iterator[tuple[int, int, Any]]:
        self._pending.clear()
        # Small chunks per query: one fetch must not stall the UI. Notes are not replayed.
        self._source = source = self.reader.events(after_seq + 1, notes=False, batch=CHUNK)
        self._exhausted = False
        self._damaged = False
        return source

    def _peek(self) -> tuple[int, int, Any] | None:
        if not self._pending:
            source = self._source
            if source is None:
                source = self._open_source(self.seq)
            if self._exhausted:
                return None
            try:
                nxt = next(source, None)
            except SessionError as exc:  # a corrupt event or page: stop before it
                self._stop(str(exc))
                return None
            if nxt is None:
                self._exhausted = True
                return None
            self._pending.append(nxt)
        return self._pending[0]

    def _publish(self, seq: int, ts: int, ev: Any) -> None:
        if ts > self._next_sample_ns:  # the times before this event, with every event before it out
            self._sample_through(ts - 1)
        if seq > self._next_param_seq:
            self._params_through(seq - 1)
        name = getattr(ev, "venue", None)
        venue = self._by_name.get(name) if isinstance(name, str) else None
        if venue is not None:
            before = self.clock.now()
            self.clock.advance_to(ts)
            try:
                venue.replay(ev)
            except Exception as exc:  # a recorded event is untrusted input: it stops playback, not the app
                self.clock.reset(before)
                self._stop(
                    f"{self.reader.path}: event at seq {seq} ({type(ev).__name__}) cannot be replayed: "
                    f"{type(exc).__name__}: {exc}"
                )
                return
        else:
            self.clock.advance_to(ts)
        self.seq = seq
        if ts > self.replay_ns:
            self.replay_ns = ts
        self.published += 1

    def _adopt(self, ev: Any) -> None:
        adopt_recorded_order(self.kernel.oms, ev)

    # ---- stepping and playing ------------------------------------------------------------------------
    def step(self) -> Any | None:
        """Publish the next recorded event; returns it, or None at the end."""
        nxt = self._peek()
        if nxt is None:
            return None
        self._pending.popleft()
        self._publish(*nxt)
        self.version += 1
        if self._peek() is None:
            self.paused = True
            if self.kernel.markouts is not None:  # the session is all in: horizons due at its end settle
                self.kernel.markouts.engine.advance(self.last_ts + 1)
        return nxt[2]

    def run_to_seq(self, seq: int) -> int:
        """Publish events up to and including `seq`; returns how many."""
        n = 0
        while True:
            nxt = self._peek()
            if nxt is None or nxt[0] > seq:
                break
            self._pending.popleft()
            self._publish(*nxt)
            n += 1
        self._params_through(self.seq)
        self.version += 1
        return n

    def run_to_ts(self, ts: int, budget_s: float | None = None) -> int:
        """Publish the events with a recorded time <= `ts` (stopping early after `budget_s` of work);
        the replay position moves to `ts` when all of them went out."""
        n = 0
        deadline = None if budget_s is None else time.perf_counter() + budget_s
        pending = self._pending
        while True:
            nxt = pending[0] if pending else self._peek()
            if nxt is None or nxt[1] > ts:
                break
            pending.popleft()
            self._publish(*nxt)
            n += 1
            if deadline is not None and not n & 127 and time.perf_counter() > deadline:
                self.version += 1
                return n
        if not self._damaged:
            # Every event up to `ts` is out: the recorded changes and the sample times up to it too.
            nxt = pending[0] if pending else self._peek()
            self._params_through(self.seq if nxt is None else nxt[0] - 1, ts)
            self._sample_through(ts)
        if ts > self.replay_ns and not self._damaged:
            self.replay_ns = min(ts, max(self.last_ts, self.replay_ns))
            self.clock.advance_to(self.replay_ns)
        self.version += 1
        return n

    # ---- history over time: samplers, parameter changes ----------------------------------------------
    def _sample_through(self, limit: int) -> None:
        """Call the samplers at every multiple of SAMPLE_NS up to `limit` not called yet (the state is that
        of those times: every event up to them is out, none after)."""
        b = self._next_sample_ns
        if b > limit:
            return
        step = SAMPLE_NS
        end = limit - limit % step  # the last boundary to sample
        skip_to = limit - self.sample_horizon_ns
        if b < skip_to:  # a gap longer than any view keeps: its start is not worth sampling
            b = skip_to + (-skip_to) % step
        samplers = self.samplers
        if samplers:
            while b <= end:
                for sample in samplers:
                    sample(b)
                b += step
        self._next_sample_ns = end + step

    def bind_market_makers(self) -> None:
        """Take the kernel's market makers' parameters as the recorded start (the app builds them from the
        session header's [mm]) and apply the recorded changes up to here."""
        for mm in self.kernel.market_makers:
            self._mm_base[f"{mm.venue}:{mm.symbol}"] = mm.params
        self._set_params_at(self.seq)

    def _set_params_at(self, seq: int) -> None:
        """Every market maker to the parameters in force just after `seq`: its start and the recorded
        changes up to there (a change this version refuses is left out, as the backtest leaves it)."""
        changes = self.param_changes
        i = 0
        while i < len(changes) and changes[i].seq <= seq:
            i += 1
        for mm in self.kernel.market_makers:
            market = f"{mm.venue}:{mm.symbol}"
            params = self._mm_base.setdefault(market, mm.params)
            for c in changes[:i]:
                if c.market == market:
                    params = _changed(params, c.changes) or params
            if params != mm.params:
                diff = {
                    name: getattr(params, name)
                    for name in params.__dataclass_fields__
                    if getattr(params, name) != getattr(mm.params, name)
                }
                mm.update_params(**diff)
        self._param_i = i
        self._next_param_seq = changes[i].seq if i < len(changes) else _NEVER

    def _params_through(self, seq: int, ts: int | None = None) -> None:
        """Apply the recorded changes noted up to `seq` (and at or before `ts`) not applied yet."""
        changes = self.param_changes
        i = self._param_i
        while i < len(changes) and changes[i].seq <= seq and (ts is None or changes[i].ts <= ts):
            c = changes[i]
            for mm in self.kernel.market_makers:
                market = f"{mm.venue}:{mm.symbol}"
                if c.market == market:
                    self._mm_base.setdefault(market, mm.params)
                    try:
                        mm.update_params(**dict(c.changes))
                    except (QuoteParamError, TypeError, ValueError) as exc:
                        log.info("replay: recorded parameter change at seq %d not applied: %s", c.seq, exc)
            i += 1
        self._param_i = i
        self._next_param_seq = changes[i].seq if i < len(changes) else _NEVER

    def play(self, wall_s: float, budget_s: float | None = BUDGET_S) -> int:
        """What `wall_s` of wall time covers at the current speed (the pacing loop's slice)."""
        if self.paused:
            return 0
        speed = self.speed
        if speed is None:
            n = self._run_max(budget_s if budget_s is not None else 3600.0)
        else:
            n = self.run_to_ts(self.replay_ns + round(wall_s * speed * 1e9), budget_s)
        for v in self.venues:
            v.on_time(self.clock.now())
        if self._peek() is None:
            if not self._damaged:
                self.replay_ns = max(self.replay_ns, self.last_ts)
            self.paused = True
            self.version += 1
        return n

    def _run_max(self, budget_s: float) -> int:
        deadline = time.perf_counter() + budget_s
        n = 0
        while True:
            nxt = self._peek()
            if nxt is None:
                break
            self._pending.popleft()
            self._publish(*nxt)
            n += 1
            if not n & 127 and time.perf_counter() > deadline:
                break
        self.version += 1
        return n

    async def run_paced(self) -> None:
        """Pace playback on the running loop (the replay venue starts this with the kernel)."""
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            await asyncio.sleep(SLICE_S)
            now = loop.time()
            # A long stall (machine suspended) must not turn into a flood of replay time.
            self.play(min(now - last, 0.25))
            last = now

    # ---- seeking ---------------------------------------------------------------------------------------
    def _usable(self) -> list[Checkpoint]:
        return [c for c in self.checkpoints if c.seq not in self._bad_checkpoints]

    def _checkpoint_for(self, *, ts: int | None = None, seq: int | None = None) -> Checkpoint | None:
        """The last usable checkpoint at or before `ts` (or `seq`); else the file's start checkpoint
        (a later part of a session cannot start from nothing); else None (the empty start)."""
        if ts is not None:
            limit, by_ts = ts, True
        elif seq is not None:
            limit, by_ts = seq, False
        else:
            raise ValueError("a checkpoint is looked up by ts or by seq")
        cp = None
        for c in self._usable():
            if (c.ts if by_ts else c.seq) <= limit:
                cp = c
            else:
                break
        if cp is None and self._start_cp is not None and self._start_cp.seq not in self._bad_checkpoints:
            cp = self._start_cp
        return cp

    def seek(self, ts: int) -> int:
        """Move to replay time `ts` (clamped to the session): restore the nearest checkpoint at or
        before it, then replay forward. Returns the seq reached. Paper trading is reset."""
        ts = max(self.first_ts, min(int(ts), self.last_ts))
        self.seeks += 1
        running = self._pause_strategies()
        self._restore(self._seek_checkpoint(ts))
        self.run_to_ts(ts)
        if not self._damaged:
            self.replay_ns = ts
            self.clock.advance_to(ts)
        self._resume_strategies(running)
        self.version += 1
        return self.seq

    def _seek_checkpoint(self, ts: int) -> Checkpoint | None:
        """The checkpoint a seek to `ts` starts from: at or before `lookback()` ns before it (the views'
        history), but no more than `lookback_events` events before the checkpoint nearest the target (a seek
        stays quick in a busy session: the history then starts later)."""
        back = max(0, int(self.lookback()))
        cp = self._checkpoint_for(ts=ts - back)
        budget = self.lookback_events
        if not back or budget is None:
            return cp
        near = self._checkpoint_for(ts=ts)
        if near is None or near.seq - (cp.seq if cp is not None else 0) <= budget:
            return cp
        return next((c for c in self._usable() if c.seq >= near.seq - budget and c.ts <= ts), near)

    def seek_seq(self, seq: int) -> int:
        """Move to just after event `seq` (through the nearest checkpoint at or before it)."""
        seq = max(0, min(int(seq), self.last_seq))
        self.seeks += 1
        running = self._pause_strategies()
        self._restore(self._checkpoint_for(seq=seq))
        self.run_to_seq(seq)
        self._resume_strategies(running)
        self.version += 1
        return self.seq

    def _pause_strategies(self) -> list[str]:
        """Strategies running during a replay (the market maker, the hedger, the user's) trade paper
        orders that a seek forgets: they are paused before it and started again after it, so each
        begins afresh at the new time instead of waiting on orders that no longer exist."""
        k = self.kernel
        running = [name for name, s in k.strategies.items() if s.state == RUNNING]
        for name in running:
            k.pause_strategy(name, source="seek")
        return running

    def _resume_strategies(self, names: list[str]) -> None:
        for name in names:
            self.kernel.resume_strategy(name, source="seek")

    def _reset_kernel(self) -> None:
        k = self.kernel
        for m in k.markets.values():
            m.l2.clear()
            m.unified.clear_own()
            m.last_trade = None
            m.trades = m.traded_lots = 0
            m.volume_at_price.clear()
            m.tape.clear()
            m.trade_version += 1
            m.stale = False
        oms = k.oms
        oms.working.clear()
        oms._by_market.clear()
        oms._by_venue_id.clear()
        oms.recent.clear()
        oms._done_by_id.clear()
        oms._done_at.clear()
        for counter in _OMS_COUNTERS:  # a straight replay to the target counts from zero too
            setattr(oms, counter, 0)
        oms.risk_rejects.clear()
        oms.recent_rejects.clear()
        oms.last_reject = None
        self.restored_fills = []
        k.inventory.positions.clear()
        k.inventory.version += 1
        if k.markouts is not None:
            k.markouts.reset()
        for v in self.venues:
            v.reset()
            v.state = k.venue_state[v.name] = "idle"

    def _restore(self, cp: Checkpoint | None) -> None:
        """Reset the kernel in place to the checkpoint `cp` (None: the empty start of the session). A
        checkpoint whose state is unusable is reported, remembered and replaced by an earlier one."""
        while cp is not None:
            self._reset_kernel()
            try:
                self._restore_checkpoint(cp)
                break
            except Exception as exc:  # a decoded state is untrusted input: any refusal is the file's
                self._bad_checkpoints.add(cp.seq)
                problem = exc.problem if isinstance(exc, SessionError) else f"{type(exc).__name__}: {exc}"
                earlier = self._checkpoint_for(seq=cp.seq - 1)
                self._report(
                    f"{self.reader.path}: checkpoint at seq {cp.seq} is unusable ({problem}); "
                    + (f"using the one at seq {earlier.seq}" if earlier else "replaying from the start")
                )
                cp = earlier
        if cp is None:
            self._reset_kernel()
            self.seq = self.reader.first_seq - 1
            self.clock.reset(self.first_ts)
            self.replay_ns = self.first_ts
        restored = self.clock.now()
        self._next_sample_ns = restored + (-restored) % SAMPLE_NS  # the first sample time not before it
        self._set_params_at(self.seq)
        for callback in self.on_restore:
            callback()
        self._open_source(self.seq)

    def _restore_checkpoint(self, cp: Checkpoint) -> None:
        k = self.kernel
        state = self.reader.checkpoint_state(cp.seq)
        self.clock.reset(cp.ts)
        restore_state(k, state)
        self._restore_trades(cp.seq)
        self._restore_orders(cp.seq)
        for od in state.get("oms_working", ()):  # what the recorded order events did not bring back
            if od.get("order_id") not in k.oms.working:
                self._adopt_working(od)
        for md in state["markets"]:
            v = self._by_name.get(md["venue"])
            if v is None or md["symbol"] not in v.ours:
                continue
            ours = v.ours[md["symbol"]]
            for oid, side, price, size in md["own_orders"]:
                ours.orders[oid] = [side, price, size]
                ours._add(side, price, size)
            m = k.markets.get((md["venue"], md["symbol"]))
            if m is not None and m.l2.valid:
                # The paper desk starts from the others' book at the checkpoint.
                v.seed_desk(m.l2.to_snapshot(cp.ts))
        self.seq = cp.seq
        self.replay_ns = max(cp.ts, self.first_ts) if cp.seq >= self.reader.first_seq else self.first_ts

    def _restore_orders(self, seq: int) -> None:
        """The OMS as a straight replay leaves it at `seq`: our recorded order events up to there, applied
        to the OMS alone (the positions come from the checkpoint), so that the blotter's finished orders,
        its counters (FILLS) and our latest fills (`restored_fills`, for the views) are those of that
        moment, not of wherever the replay was before the seek."""
        k = self.kernel
        oms = k.oms
        shown = {v.name for v in self.venues if v.show_recorded_orders}
        if not shown:
            return
        try:
            for ev in self.reader.recorded_of_kinds(_ORDER_KINDS, seq):
                if ev.owner != OUR_OWNER or ev.venue not in shown or (ev.venue, ev.symbol) not in k.markets:
                    continue
                if ev.__class__ is Accepted:
                    adopt_recorded_order(oms, ev)
                oms.on_event(ev)
                if ev.__class__ is Fill:
                    self.restored_fills.append(ev)
        except SessionError as exc:  # a damaged page: the blotter's history is partial, the book is not
            self._report(f"{exc}; the orders before seq {seq} are incomplete")

    def _adopt_working(self, od: dict) -> None:
        oms = self.kernel.oms
        try:
            o = WorkingOrder(
                od["order_id"],
                od["venue"],
                od["symbol"],
                od["side"],
                od["price"],
                od["size"],
                od["leaves"],
                od["filled"],
                od.get("order_type", 0),
                od.get("state", PENDING_NEW),
                RECORDED_TAG,
            )
        except (KeyError, TypeError):
            return
        o.routed = True
        o.acked = o.state != PENDING_NEW
        oms.working[o.order_id] = o
        oms._by_market.setdefault((o.venue, o.symbol), {})[o.order_id] = o

    def _restore_trades(self, seq: int) -> None:
        """Volume at price, the tape and the venue states, from the recorded trades and status events up
        to `seq` (a checkpoint does not hold them; a print that does not decode is left out)."""
        k = self.kernel
        status: dict[str, VenueStatus] = {}
        try:
            for ev in self.reader.recorded_of_kinds(("Trade", "VenueStatus"), seq):
                if ev.__class__ is VenueStatus:
                    status[ev.venue] = ev
                    continue
                m = k.markets.get((ev.venue, ev.symbol))
                if m is None:
                    continue
                add_volume(m.volume_at_price, ev.price, ev.size)
                m.tape.append(ev)
        except SessionError as exc:  # a damaged page: the tape is partial, the book is not
            self._report(f"{exc}; the tape before seq {seq} is incomplete")
        for name, ev in status.items():  # through the bus: risk and the status bar follow it
            v = self._by_name.get(name)
            if v is not None:
                v.replay(ev)

    def close(self) -> None:
        self.reader.close()


def _changed(params: Any, changes: dict[str, Any]) -> Any:
    """`params` with a recorded change (JSON lists back to tuples), None when it does not validate."""
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in changes.items()}
    try:
        new = replace(params, **values)
        new.validate()
    except (QuoteParamError, TypeError, ValueError):
        return None
    return new

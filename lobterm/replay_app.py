"""`lobterm replay FILE`: the TUI on a replay kernel, with a transport bar and its keys.

`ReplayApp` is the LobtermApp (same ladder, status bar, help, order keys) on the kernel of a
`Player` (lobterm/recording/player.py): the ladder, the status bar and the inventory show what they
showed then, and orders placed during the replay are paper orders against the replayed book
(reset on seek). The transport keys are priority bindings (they win over the ladder's own keys while
the main screen is active; in the seek prompt and the help screen they are off):

    space      pause / resume          [ ]   slower / faster (0.25x .. 100x, then max)
    .          step one event           g     seek to a time (HH:MM:SS or +/-seconds)
    Home       back to the start        End   to the end

A damaged session file never ends the app: the player stops before a corrupt event (or skips a corrupt
checkpoint for an earlier one) and the app shows what and where in a notification; after quitting,
`lobterm replay` prints the same line on stderr and exits 2.

In a replay the ladder recenters with `r` only (space pauses), its "cursor to the inside market"
moves from Home to `i` and "cancel our bids / asks" from `[` / `]` to `u` / `O`; all stay rebindable
under [keys].
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType

from lobterm.app import LobtermApp
from lobterm.config import Config
from lobterm.recording.player import Player, parse_seek
from lobterm.venues.replay import PAPER_ID_BASE
from lobterm.widgets.inventory import HISTORY, SPARK_WIDTH
from lobterm.widgets.inventory import SAMPLE_S as INVENTORY_SAMPLE_S
from lobterm.widgets.transport import SeekScreen, TransportBar, format_offset, format_speed

__all__ = ["ReplayApp"]

#: The most events a seek replays for the views' history beyond the checkpoint nearest its target (measured:
#: ~45 us an event through the kernel, so about a second on a loaded machine); a longer history starts later.
HISTORY_EVENTS = 25_000

_TRANSPORT = Binding.Group("Replay")
_TRANSPORT_ACTIONS = {
    "replay_pause",
    "replay_slower",
    "replay_faster",
    "replay_step",
    "replay_seek",
    "replay_start",
    "replay_end",
}
# The ladder's keys that the transport takes over in a replay, and where they go instead.
# (`o` is the markout panel's key and `p` the side panels': a replay leaves them theirs.)
REPLAY_LADDER_KEYS = {"recenter": "r", "cursor_inside": "i", "cancel_bids": "u", "cancel_asks": "O"}


class ReplayApp(LobtermApp):
    BINDINGS: ClassVar[list[BindingType]] = [
        *LobtermApp.BINDINGS,
        Binding("space", "replay_pause", "Pause/resume", id="replay_pause", priority=True, group=_TRANSPORT),
        Binding(
            "left_square_bracket",
            "replay_slower",
            "Slower",
            id="replay_slower",
            priority=True,
            group=_TRANSPORT,
        ),
        Binding(
            "right_square_bracket",
            "replay_faster",
            "Faster",
            id="replay_faster",
            priority=True,
            group=_TRANSPORT,
        ),
        Binding(
            "full_stop", "replay_step", "Step one event", id="replay_step", priority=True, group=_TRANSPORT
        ),
        Binding("g", "replay_seek", "Seek to a time", id="replay_seek", priority=True, group=_TRANSPORT),
        Binding("home", "replay_start", "To the start", id="replay_start", priority=True, group=_TRANSPORT),
        Binding("end", "replay_end", "To the end", id="replay_end", priority=True, group=_TRANSPORT),
    ]

    def __init__(self, config: Config, player: Player, *, live: bool = True) -> None:
        from dataclasses import replace

        keys = {**REPLAY_LADDER_KEYS, **config.keys}
        if keys != config.keys:
            config = replace(config, keys=keys)
        config, mm_problem = _recorded_mm(config, player)
        super().__init__(config, player.kernel, live=live)
        self.player = player
        self.title = f"lobterm replay · {player.path}"
        self.transport = TransportBar(player, id="transport")
        self._problems_shown = 0
        self._mm_problem = mm_problem
        player.on_restore.append(self._on_player_restore)
        # The views' history over time is sampled on session time by the player (a seek then rebuilds it
        # as a straight play drew it); the market makers start from the recorded [mm] and follow its changes.
        desk = self.desk
        desk.inventory_panel.external_clock = True
        player.samplers.append(desk.inventory_panel.sample_at)
        for heatmap in desk.heatmaps:
            heatmap.external_clock = True
            player.samplers.append(heatmap.sample_at)
        player.lookback = self._history_ns
        player.lookback_events = HISTORY_EVENTS
        history_s = max(
            HISTORY * INVENTORY_SAMPLE_S, desk.heatmaps[0].model.minutes * 60 if desk.heatmaps else 0
        )
        player.sample_horizon_ns = round((history_s + 1) * 1e9)
        player.bind_market_makers()

    def _history_ns(self) -> int:
        """How much history a seek replays before its target: what the sparklines show, and the heatmap's
        window while the heatmap is on (`h`: the rest of the time it keeps sampling, from the seek's
        checkpoint)."""
        desk = self.desk
        seconds = SPARK_WIDTH * INVENTORY_SAMPLE_S
        if desk.heatmap_wanted and desk.heatmaps:
            seconds = max(seconds, desk.heatmaps[0].model.minutes * 60)
        return round((seconds + 1) * 1e9)

    async def on_mount(self) -> None:
        await super().on_mount()
        if self._mm_problem:
            self.notify(self._mm_problem, title="Replay", severity="warning", timeout=10)

    def _on_player_restore(self) -> None:
        """A seek reset the kernel to a checkpoint: the views that keep a history of their own start
        again from that moment (the replay then runs on to the target through the bus, as it played)."""
        desk = self.desk
        desk.fills.reset(self.player.restored_fills)
        desk.inventory_panel.reset_history()
        for heatmap in desk.heatmaps:
            heatmap.reset()
        desk.blotter._shown = None
        desk.tape._drawn = None

    def compose(self) -> ComposeResult:
        # The LobtermApp's screen, with the transport bar right above the status bar.
        for widget in super().compose():
            if widget is self.status:
                yield self.transport
            yield widget

    def _tick(self) -> None:
        super()._tick()
        if self.transport.is_attached:
            self.transport.pull()
        self._show_problems()

    def _show_problems(self) -> None:
        p = self.player
        if p.problems != self._problems_shown and p.problem is not None:
            self._problems_shown = p.problems
            self.notify(p.problem, title="Session file damaged", severity="error", timeout=10)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # The transport keys belong to the main screen: not while typing a seek target or reading help.
        if action in _TRANSPORT_ACTIONS and self.screen is not self.screen_stack[0]:
            return False
        return True

    # ---- transport actions -------------------------------------------------------------------------
    def action_replay_pause(self) -> None:
        p = self.player
        if p.paused and p.at_end:
            self.notify("At the end of the session: Home goes back to the start.", timeout=3)
            return
        p.toggle_pause()
        self._tick()

    def action_replay_slower(self) -> None:
        self.player.slower()
        self._tick()

    def action_replay_faster(self) -> None:
        self.player.faster()
        self._tick()

    def action_replay_step(self) -> None:
        p = self.player
        p.pause()
        if p.step() is None:
            self.notify("End of the session.", timeout=3)
        self._tick()

    def action_replay_seek(self) -> None:
        def chosen(text: str | None) -> None:
            if text:
                p = self.player
                try:
                    target = parse_seek(text, p.replay_ns, p.first_ts)
                except ValueError as exc:  # validated by the prompt; a race with playback cannot make it bad
                    self.notify(str(exc), title="Seek", severity="error")
                    return
                self._seek(target)

        self.push_screen(SeekScreen(self.player), chosen)

    def action_replay_start(self) -> None:
        self._seek(self.player.first_ts)

    def action_replay_end(self) -> None:
        self._seek(self.player.last_ts)

    def _seek(self, target: int) -> None:
        p = self.player
        had_paper = any(o.order_id >= PAPER_ID_BASE for o in self.kernel.oms.working.values())
        problems = p.problems
        p.seek(target)
        self.ladder.recenter()
        if p.problems != problems:  # the seek met damage: that notice says where it stopped
            self._tick()
            return
        note = " Paper orders were reset." if had_paper else ""
        self.notify(
            f"At {format_offset(p.replay_ns - p.first_ts)} (event {p.seq:,}), speed "
            f"{format_speed(p.speed)}.{note}",
            title="Seek",
            timeout=3,
        )
        self._tick()

    # ---- quitting: a replay has nothing to cancel (recorded orders are history, paper orders virtual)
    async def action_quit(self) -> None:
        if self._shutting_down:
            return
        self._shutting_down = True
        await self.kernel.shutdown(1.0, source="quit")
        self.exit()


def _recorded_mm(config: Config, player: Player) -> tuple[Config, str | None]:
    """The config with the market maker's parameters the session recorded in its header (`[mm]`), not
    this machine's defaults; unchanged (and why) when the header has none or they do not load."""
    from dataclasses import replace

    recorded = player.reader.config.get("mm") if isinstance(player.reader.config, dict) else None
    if not isinstance(recorded, dict) or not recorded:
        return config, None
    from lobterm.config import mm_from_table

    try:
        # read as the [mm] table of a config file: validated the same way
        out = replace(config, mm=mm_from_table(dict(recorded), "the session header"))
    except Exception as exc:  # a header is untrusted input: a notice, the local parameters kept
        return config, f"the recorded [mm] parameters do not load ({exc}); showing this machine's"
    return out, None


def replay_command(args, config: Config) -> int:
    """`lobterm replay FILE... | ID`: 2 and a one-line reason for a session that cannot be replayed, or
    (after the app) for one found damaged while it played."""
    import sys
    from pathlib import Path

    from lobterm.recording.player import SPEEDS, SessionError
    from lobterm.recording.reader import resolve_session

    if args.speed not in SPEEDS:
        print(
            f"lobterm: --speed {args.speed:g} must be one of {', '.join(f'{s:g}' for s in SPEEDS if s)}",
            file=sys.stderr,
        )
        return 2
    names = args.file if isinstance(args.file, list) else [args.file]
    directory = Path(args.dir) if getattr(args, "dir", None) else config.sessions_dir
    try:
        player = Player([str(p) for p in resolve_session(names, directory)])
    except SessionError as exc:
        print(f"lobterm: cannot replay {exc}", file=sys.stderr)
        return 2
    player.set_speed(args.speed)
    if args.paused:
        player.pause()
    try:
        app = ReplayApp(config, player)
        app.run()
    finally:
        player.close()
    if player.problem is not None:
        print(f"lobterm: {player.problem}", file=sys.stderr)
        return app.return_code or 2
    return app.return_code or 0

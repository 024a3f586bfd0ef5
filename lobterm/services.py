"""The observers that run beside a kernel: the session recorder (the kernel's journal), the Prometheus
metrics exporter and the WebSocket feed.

The kernel never imports them (DESIGN.md): each is attached here as a `KernelService` (or, for the
recorder, the `Journal` that notes go to) and the kernel only starts, ticks and stops what it was given.
Metrics and the feed listen on 127.0.0.1 unless the config says otherwise; the feed is off by default. A
service that cannot start (its port is taken) does not stop the workstation: the problem comes back as a
message for the user (a notice in the TUI, a line on stderr headless).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lobterm.config import Config
    from lobterm.feed import BookFeed
    from lobterm.kernel import Kernel
    from lobterm.metrics import Metrics
    from lobterm.recording.recorder import Recorder

__all__ = [
    "describe_services",
    "start_feed",
    "start_metrics",
    "start_recording",
    "start_services",
    "stop_recording",
]


class RecorderJournal:
    """The recorder as the kernel's journal: notes, a flush on every timer tick when writing
    synchronously (virtual clock), aiosqlite's writer task on a live clock, a clean close last."""

    def __init__(self, kernel: Kernel, recorder: Recorder) -> None:
        self.kernel = kernel
        self.recorder = recorder

    def note(self, source: str, action: str, detail: object = "") -> None:
        rec = self.recorder
        if not rec.closed:
            rec.note(source, action, detail)

    async def start(self) -> None:
        rec = self.recorder
        if rec.sync and not rec.closed and not self.kernel.clock.virtual:
            await rec.start()  # a live clock: flush from a task on the loop (aiosqlite)

    def on_timer(self) -> None:
        rec = self.recorder
        if rec.sync and not rec.closed:
            rec.pump()

    async def stop(self) -> None:
        rec = self.recorder
        if rec.closed:
            return
        self.kernel.bus.unsubscribe(rec.on_event)
        await rec.aclose()


def start_recording(
    kernel: Kernel,
    target: str | os.PathLike[str],
    *,
    config: Any = None,
    seed: Any = None,
    header: dict[str, Any] | None = None,
    checkpoint_every_s: float | None = None,
    flush_interval_s: float | None = None,
    flush_events: int | None = None,
    rotate_mb: float | None = None,
    rotate_every_s: float | None = None,
    max_total_mb: float | None = None,
) -> Recorder:
    """Record every bus event of `kernel` from now on to a session file (`target`: a file, or a directory
    to name one in). Before `kernel.start()` the recorder starts with the kernel; on a running kernel
    with a live clock, `await kernel.journal.start()` moves it to its flush task. Returns the Recorder
    (`.path`, `.events_written`, `.backlog`); RecorderError if the file cannot be created. Checkpoints,
    flushing, rotation and retention not given come from `config.recording` (else the defaults)."""
    from lobterm.recording.recorder import Recorder

    rc = getattr(config, "recording", None)
    if checkpoint_every_s is None:
        checkpoint_every_s = rc.checkpoint_every_s if rc is not None else 10.0
    if flush_interval_s is None:
        flush_interval_s = rc.flush_interval_ms / 1000 if rc is not None else 0.1
    if flush_events is None:
        flush_events = rc.flush_events if rc is not None else 50_000

    rec = kernel.recorder
    if rec is not None and not rec.closed:
        return rec
    rec = Recorder.for_kernel(
        kernel,
        target,
        config=config,
        seed=seed,
        header=header,
        checkpoint_every_s=checkpoint_every_s,
        flush_interval_s=flush_interval_s,
        flush_events=flush_events,
        rotate_mb=rotate_mb,
        rotate_every_s=rotate_every_s,
        max_total_mb=max_total_mb,
    )
    rec.open()
    if kernel.oms.request_times is None:  # the session's own request -> answer times (Kernel.on_timer)
        kernel.oms.request_times = []
    kernel.bus.subscribe_all(rec.on_event)
    kernel.recorder = rec
    kernel.journal = RecorderJournal(kernel, rec)
    return rec


async def stop_recording(kernel: Kernel) -> None:
    """Close the kernel's session file cleanly (last batch, last checkpoint, `end` table). Idempotent."""
    journal = kernel.journal
    if journal is not None:
        await journal.stop()


class _MetricsService:
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    async def start(self) -> None:  # started when attached (its exporter listens at once)
        return None

    def on_timer(self) -> None:
        self.metrics.on_timer()

    async def stop(self) -> None:
        self.metrics.stop()


class _FeedService:
    def __init__(self, feed: BookFeed) -> None:
        self.feed = feed

    async def start(self) -> None:  # started when attached
        return None

    def on_timer(self) -> None:
        return None

    async def stop(self) -> None:
        await self.feed.stop()


def start_metrics(kernel: Kernel, config: Any = None) -> Metrics:
    """Prometheus metrics of `kernel` (lobterm/metrics.py), with the exporter if `config.enabled` (a
    MetricsError if it cannot listen; the metrics count on without it). Returns the Metrics."""
    from lobterm.metrics import Metrics

    if kernel.metrics is None:
        kernel.metrics = Metrics(kernel, config)
        kernel.services.append(_MetricsService(kernel.metrics))
    kernel.metrics.start()
    return kernel.metrics


async def start_feed(kernel: Kernel, config: Any = None) -> BookFeed:
    """The read-only WebSocket feed of `kernel`'s books (lobterm/feed.py); OSError if it cannot listen."""
    from lobterm.feed import BookFeed

    if kernel.feed is None:
        kernel.feed = BookFeed(kernel, config)
        kernel.services.append(_FeedService(kernel.feed))
    await kernel.feed.start()
    return kernel.feed


async def start_services(kernel: Kernel, config: Config) -> list[str]:
    """Start the services `config` enables on a running loop; returns the problems, if any."""
    problems: list[str] = []
    if config.metrics.enabled:
        from lobterm.metrics import MetricsError

        try:
            start_metrics(kernel, config.metrics)
        except MetricsError as exc:
            problems.append(f"{exc}; metrics are not exported.")
    if config.feed.enabled:
        f = config.feed
        try:
            await start_feed(kernel, f)
        except OSError as exc:
            problems.append(f"the WebSocket feed cannot listen on {f.host}:{f.port}: {exc.strerror or exc}.")
    return problems


def describe_services(kernel: Kernel) -> list[str]:
    """Where the running services listen, one line each."""
    lines = []
    metrics = kernel.metrics
    if metrics is not None and metrics.address is not None:
        lines.append(
            f"metrics: http://{metrics.address[0]}:{metrics.address[1]}/metrics"
            + (f" (port {metrics.port_taken} was in use)" if metrics.port_taken is not None else "")
        )
    feed = kernel.feed
    if feed is not None and feed.address is not None:
        lines.append(
            f"feed: ws://{feed.address[0]}:{feed.address[1]}/"
            + (" (token required)" if feed.token_required else "")
        )
    return lines

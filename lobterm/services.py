"""What the `lobterm` command starts beside the kernel: the metrics exporter and the WebSocket feed.

Both listen on 127.0.0.1 unless the config says otherwise; the feed is off by default. A service
that cannot start (its port is taken) does not stop the workstation: the problem comes back as a
message for the user (a notice in the TUI, a line on stderr headless).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lobterm.config import Config
    from lobterm.kernel import Kernel

__all__ = ["start_services", "describe_services"]


async def start_services(kernel: Kernel, config: Config) -> list[str]:
    """Start the services `config` enables on a running loop; returns the problems, if any."""
    problems: list[str] = []
    if config.metrics.enabled:
        from lobterm.metrics import MetricsError

        try:
            kernel.start_metrics(config.metrics)
        except MetricsError as exc:
            problems.append(f"{exc}; metrics are not exported.")
    if config.feed.enabled:
        f = config.feed
        try:
            await kernel.start_feed(f)
        except OSError as exc:
            problems.append(f"the WebSocket feed cannot listen on {f.host}:{f.port}: {exc.strerror or exc}.")
    return problems


def describe_services(kernel: Kernel) -> list[str]:
    """Where the running services listen, one line each."""
    lines = []
    metrics = getattr(kernel, "metrics", None)
    if metrics is not None and metrics.address is not None:
        lines.append(f"metrics: http://{metrics.address[0]}:{metrics.address[1]}/metrics")
    feed = getattr(kernel, "feed", None)
    if feed is not None and feed.address is not None:
        lines.append(
            f"feed: ws://{feed.address[0]}:{feed.address[1]}/"
            + (" (token required)" if feed.token_required else "")
        )
    return lines

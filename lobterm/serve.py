"""`lobterm serve`: the same TUI in a web browser, through textual-serve, on 127.0.0.1.

textual-serve runs a small web server; each browser tab that opens the page starts its own
`lobterm` process (with the same config options as this command) and relays its screen and keys over
a WebSocket. The server has no login of its own: anyone who can reach the port can trade, so it
listens on 127.0.0.1 unless `--host` says otherwise.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import shlex
import sys

__all__ = ["serve_command", "app_command"]


def app_command(args: argparse.Namespace) -> str:
    """The shell command that starts the TUI with this invocation's config options."""
    parts = [sys.executable, "-m", "lobterm"]
    if getattr(args, "config", None):
        parts += ["--config", os.path.abspath(args.config)]
    if getattr(args, "no_default_config", False):
        parts.append("--no-default-config")
    if getattr(args, "seed", None) is not None:
        parts += ["--seed", str(args.seed)]
    if getattr(args, "rate", None) is not None:
        parts += ["--rate", str(args.rate)]
    for name in getattr(args, "venue", None) or ():
        parts += ["--venue", name]
    for symbol in getattr(args, "symbol", None) or ():
        parts += ["--symbol", symbol]
    if getattr(args, "no_record", False):
        parts.append("--no-record")
    return " ".join(shlex.quote(p) for p in parts)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve_command(args: argparse.Namespace, argv: list[str] | None = None) -> int:
    if not 1 <= args.port <= 65535:
        print(f"lobterm serve: --port {args.port} must be in 1..65535", file=sys.stderr)
        return 2
    try:
        from textual_serve.server import Server
    except ImportError:
        print("lobterm serve: textual-serve is not installed (pip install textual-serve)", file=sys.stderr)
        return 2
    if not _is_loopback(args.host):
        print(
            f"lobterm serve: listening on {args.host}: anyone who can reach it can see and trade "
            "(there is no login)",
            file=sys.stderr,
        )
    server = Server(app_command(args), host=args.host, port=args.port, title="lobterm")
    try:
        server.serve()
    except OSError as exc:
        print(
            f"lobterm serve: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr
        )
        return 2
    return 0

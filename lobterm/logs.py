"""Where lobterm's log goes: one rotating file, scrubbed of secrets; the screen and stderr stay clean.

`setup_logging` sends every record (lobterm's own, ccxt's, asyncio's "Future exception was never
retrieved", aiohttp's) to `--log FILE` (default `$XDG_STATE_HOME/lobterm/lobterm.log`, i.e.
`~/.local/state/lobterm/lobterm.log`), a file only you can read, rotated at `MAX_BYTES` with `BACKUPS`
old files kept. Every record passes the process's `SecretsFilter` at the handler (so a record of any
logger, propagated from any depth, is scrubbed of keys, secrets and URL signatures before it is
written). Headless runs also print lobterm's own warnings on stderr, one line each, no traceback (the
traceback is in the file); the TUI prints nothing on the terminal it draws on.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
from pathlib import Path

from lobterm.venues.resilience import SECRETS

__all__ = ["BACKUPS", "MAX_BYTES", "OneLine", "default_log_path", "setup_logging"]

MAX_BYTES = 10 * 1024 * 1024  # a log file rotates past 10 MB ...
BACKUPS = 5  # ... and 5 old ones are kept: at most 60 MB of log
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_OURS = "lobterm.log"  # marks the handlers this module installed (so a second call replaces them)


def default_log_path() -> Path:
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "lobterm" / "lobterm.log"


class _Stderr(logging.StreamHandler):
    """stderr as it is when a record is written (a test or a redirect may have replaced sys.stderr)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


class OneLine(logging.Formatter):
    """`lobterm: message` on one line: no traceback, no newlines (they are in the log file)."""

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage().replace("\n", " ").strip()
        return f"lobterm: {text}"[:500]


def setup_logging(
    path: str | os.PathLike[str] | None = None,
    *,
    stderr: bool = False,
    max_bytes: int = MAX_BYTES,
    backups: int = BACKUPS,
) -> str:
    """Log to `path` (default `default_log_path()`); with `stderr`, lobterm's warnings also go to stderr
    as one line each. Returns "" or one line saying why the file could not be opened (then nothing is
    written anywhere: never onto the TUI's screen)."""
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, _OURS.replace(".", "_"), False):
            root.removeHandler(h)
            h.close()
    root.setLevel(logging.INFO)
    secrets = SECRETS
    target = Path(path) if path is not None else default_log_path()
    problem = ""
    handler: logging.Handler
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.close(fd)
        handler = logging.handlers.RotatingFileHandler(
            target, maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
        )
        handler.setFormatter(logging.Formatter(_FORMAT))
    except OSError as exc:
        problem = f"cannot write the log file {target}: {exc.strerror or exc}"
        handler = logging.NullHandler()  # no log rather than Python's last-resort print on the screen
    handler.addFilter(secrets)
    setattr(handler, _OURS.replace(".", "_"), True)
    root.addHandler(handler)
    if stderr:
        err = _Stderr(sys.stderr)
        err.setLevel(logging.WARNING)
        err.setFormatter(OneLine())
        err.addFilter(secrets)
        err.addFilter(logging.Filter("lobterm"))  # ours only: ccxt's and asyncio's noise stays in the file
        setattr(err, _OURS.replace(".", "_"), True)
        root.addHandler(err)
    logging.captureWarnings(True)
    return problem

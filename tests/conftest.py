"""Suite-wide: recordings made by the tests (the CLI in subprocesses, the TUI in tmux) go to a temporary
directory, never into the repository's (or the user's) sessions/."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest


@pytest.fixture(autouse=True, scope="session")
def _sessions_outside_the_repo():
    path = tempfile.mkdtemp(prefix="lobterm-test-sessions-")
    old = os.environ.get("LOBTERM_SESSIONS_DIR")
    os.environ["LOBTERM_SESSIONS_DIR"] = path
    yield path
    if old is None:
        os.environ.pop("LOBTERM_SESSIONS_DIR", None)
    else:
        os.environ["LOBTERM_SESSIONS_DIR"] = old
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(autouse=True, scope="session")
def _logs_outside_the_home():
    """The CLI's log file (lobterm/logs.py) goes under XDG_STATE_HOME: a temporary one for the tests."""
    path = tempfile.mkdtemp(prefix="lobterm-test-state-")
    old = os.environ.get("XDG_STATE_HOME")
    os.environ["XDG_STATE_HOME"] = path
    yield path
    if old is None:
        os.environ.pop("XDG_STATE_HOME", None)
    else:
        os.environ["XDG_STATE_HOME"] = old
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(autouse=True, scope="session")
def _backtest_cache_outside_the_home():
    """The fast path's decoded-rows cache (lobterm/backtest/cache.py) goes to a temporary directory."""
    path = tempfile.mkdtemp(prefix="lobterm-test-cache-")
    old = os.environ.get("LOBTERM_CACHE_DIR")
    os.environ["LOBTERM_CACHE_DIR"] = path
    yield path
    if old is None:
        os.environ.pop("LOBTERM_CACHE_DIR", None)
    else:
        os.environ["LOBTERM_CACHE_DIR"] = old
    shutil.rmtree(path, ignore_errors=True)

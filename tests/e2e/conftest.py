"""The e2e tests' fixtures: `pane`, a tmux server of its own (killed after the test)."""

from __future__ import annotations

import subprocess
import uuid

import pytest

from tests.helpers.tmux import TMUX, Pane


@pytest.fixture
def pane(tmp_path):
    if TMUX is None:
        pytest.skip("tmux is not installed")
    socket = f"lobterm-e2e-{uuid.uuid4().hex[:8]}"
    conf = tmp_path / "tmux.conf"
    conf.write_text("set -g status off\nset -g history-limit 100\n")
    p = Pane(socket)
    p.conf = conf  # type: ignore[attr-defined]
    try:
        yield p
    finally:
        subprocess.run([TMUX, "-L", socket, "kill-server"], capture_output=True, timeout=10)

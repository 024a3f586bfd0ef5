"""The log file: every logger's records, scrubbed of secrets at the handler, rotated, 0600; stderr gets
lobterm's own warnings as one line each and none of ccxt's or asyncio's noise."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from lobterm.logs import default_log_path, setup_logging
from lobterm.venues.resilience import SECRETS

ROOT = Path(__file__).resolve().parents[2]
KEY = "lobKEY-log-9d8c7b6a"


@pytest.fixture
def clean_root():
    root = logging.getLogger()
    before = list(root.handlers)
    level = root.level
    yield
    for h in list(root.handlers):
        if h not in before:
            root.removeHandler(h)
            h.close()
    root.setLevel(level)
    SECRETS.secrets.discard(KEY)


def test_records_of_any_logger_are_scrubbed_in_the_file(tmp_path, clean_root) -> None:
    SECRETS.secrets.add(KEY)
    log_file = tmp_path / "state" / "lobterm.log"
    assert setup_logging(log_file) == ""
    deep = logging.getLogger("lobterm.venues.ccxt.orders.deeper")  # a child: logger filters miss it
    deep.warning("GET https://x/api/v3/order?symbol=BTCUSDT&signature=abcdef0123 key %s", KEY)
    logging.getLogger("asyncio").error("Future exception was never retrieved: apiKey=%s", KEY)
    try:
        raise RuntimeError(f"boom {KEY}")
    except RuntimeError:
        logging.getLogger("ccxt").exception("request failed")
    for h in logging.getLogger().handlers:
        h.flush()
    text = log_file.read_text()
    assert "signature=" in text and "abcdef0123" not in text
    assert KEY not in text
    assert "Future exception was never retrieved" in text and "request failed" in text
    assert stat.S_IMODE(log_file.stat().st_mode) == 0o600


def test_the_log_rotates_and_keeps_a_bounded_number_of_files(tmp_path, clean_root) -> None:
    log_file = tmp_path / "lobterm.log"
    setup_logging(log_file, max_bytes=2_000, backups=2)
    for i in range(400):
        logging.getLogger("lobterm.test").info("line %d %s", i, "x" * 40)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["lobterm.log", "lobterm.log.1", "lobterm.log.2"]
    assert all((tmp_path / f).stat().st_size <= 2_200 for f in files)


def test_stderr_gets_our_warnings_on_one_line_and_no_noise(tmp_path, clean_root, capsys) -> None:
    setup_logging(tmp_path / "lobterm.log", stderr=True)
    try:
        raise ValueError("inner")
    except ValueError:
        logging.getLogger("lobterm.venues").exception("binance: order stream down\nretrying")
    logging.getLogger("asyncio").error("Future exception was never retrieved")
    logging.getLogger("ccxt.base.exchange").warning("GET /api/v3/openOrders 503")
    logging.getLogger("lobterm.kernel").info("informational")
    err = capsys.readouterr().err
    assert err == "lobterm: binance: order stream down retrying\n"


def test_an_unwritable_log_file_is_one_line_and_nothing_on_the_screen(tmp_path, clean_root, capsys) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    problem = setup_logging(blocker / "sub" / "lobterm.log")
    assert problem.startswith("cannot write the log file") and "\n" not in problem
    logging.getLogger("lobterm.x").warning("goes nowhere")
    assert capsys.readouterr().err == ""


def test_the_default_log_is_under_xdg_state_home(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert default_log_path() == tmp_path / "lobterm" / "lobterm.log"


def test_the_cli_writes_its_log_where_told(tmp_path) -> None:
    log_file = tmp_path / "run.log"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "lobterm",
            "--no-default-config",
            "--no-record",
            "--log",
            str(log_file),
            "run",
            "--headless",
            "--duration",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 0, proc.stderr
    assert log_file.exists() and stat.S_IMODE(log_file.stat().st_mode) == 0o600

"""`lobterm backtest FILE`: the fast path by default, the reference path for what it does not do, with a
progress bar on stderr and the result as text or JSON on stdout."""

from __future__ import annotations

import sys
import time
from typing import Any

from lobterm.backtest.reference import resolve_params, run_backtest
from lobterm.backtest.result import BacktestResult
from lobterm.recording.reader import SessionError, SessionReader

__all__ = ["ProgressBar", "backtest_command"]


class ProgressBar:
    """A one-line progress bar on a text stream (stderr), redrawn at most `hz` times a second."""

    def __init__(self, total: int, stream: Any = None, width: int = 30, hz: float = 8.0) -> None:
        self.total = max(1, total)
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.period = 1.0 / hz
        self.t0 = time.perf_counter()
        self._last = 0.0
        self.drawn = 0

    def update(self, done: int, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - self._last < self.period:
            return
        self._last = now
        frac = min(1.0, done / self.total)
        filled = int(frac * self.width)
        rate = done / max(now - self.t0, 1e-9)
        self.stream.write(
            f"\r[{'#' * filled}{'.' * (self.width - filled)}] {frac * 100:5.1f}% "
            f"{done:,}/{self.total:,} events {rate:,.0f}/s"
        )
        self.stream.flush()
        self.drawn += 1

    def close(self) -> None:
        self.update(self.total, force=True)
        self.stream.write("\n")
        self.stream.flush()


def _try_fast(
    path: str, params: Any, source: str, latency_ms: float, progress: Any, recorded_changes: bool
) -> BacktestResult | None:
    """The fast path's result, or None (with the reason on stderr) when it cannot run this backtest."""
    from lobterm.backtest.fast import FastPathUnsupported, fast_path_refusal

    why = fast_path_refusal(params, latency_ms)
    if why is None:
        try:
            from lobterm.backtest.fast import run_fast_backtest

            return run_fast_backtest(
                path,
                params,
                params_source=source,
                latency_ms=latency_ms,
                progress=progress,
                recorded_changes=recorded_changes,
            )
        except FastPathUnsupported as exc:
            why = f"the fast path cannot run this backtest ({exc}): running the reference path"
    print(f"lobterm: {why}", file=sys.stderr)
    return None


def backtest_command(args: Any) -> int:
    """`lobterm backtest FILE [--config mm.toml] [--json [--path]] [--fast | --reference]`; 2 and a one-line
    reason for bad input. The fast path (lobterm/backtest/fast.py) is the default; it hands over to the
    reference path, saying why, for what it does not do. The session's recorded live parameter changes
    apply at their times unless `--config` gives parameters (from the start)."""
    import json

    from lobterm.config import ConfigError, load
    from lobterm.trading.market_maker import QuoteParamError

    if args.path and not args.json:
        print("lobterm: --path adds the inventory path to the --json output: add --json", file=sys.stderr)
        return 2
    overrides = None
    strategies: dict[str, dict[str, Any]] = {}
    if args.mm_config:
        try:
            file_config = load(args.mm_config, use_defaults=False)
        except ConfigError as exc:
            print(f"lobterm: configuration error: {exc}", file=sys.stderr)
            return 2
        overrides = file_config.mm
        strategies = dict(file_config.strategies)
    no_mm = bool(getattr(args, "no_mm", False))
    if no_mm and not strategies:
        print(
            "lobterm: --no-mm leaves nothing to trade: give a --config with [strategies.NAME]",
            file=sys.stderr,
        )
        return 2
    bar = None
    try:
        with SessionReader(args.file) as reader:
            recorded = reader.config.get("mm")
            total = reader.last_seq
        params, source = resolve_params(recorded if isinstance(recorded, dict) else None, overrides)
        if not args.no_progress:
            bar = ProgressBar(total)
        progress = None if bar is None else (lambda done, _total: bar.update(done))
        # What was recorded is what is backtested: the recorded live changes apply at their times,
        # unless --config gives the parameters from the start.
        recorded_changes = overrides is None
        result = None
        if strategies or no_mm:
            if getattr(args, "engine", None) == "fast":
                print(
                    "lobterm: the fast path runs the market maker only: running the reference path "
                    "for [strategies.NAME]",
                    file=sys.stderr,
                )
        elif getattr(args, "engine", None) != "reference":
            result = _try_fast(args.file, params, source, args.latency_ms, progress, recorded_changes)
        if result is None:
            result = run_backtest(
                args.file,
                params,
                params_source=source,
                latency_ms=args.latency_ms,
                progress=progress,
                strategies=strategies,
                market_maker=not no_mm,
                recorded_changes=recorded_changes,
            )
    except SessionError as exc:
        print(f"lobterm: cannot backtest {exc}", file=sys.stderr)
        return 2
    except (QuoteParamError, TypeError) as exc:
        print(f"lobterm: bad market maker parameters: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"lobterm: {exc}", file=sys.stderr)
        return 2
    finally:
        if bar is not None:
            bar.close()
    print(json.dumps(result.as_dict(inventory_path=args.path)) if args.json else result.as_text())
    return 0

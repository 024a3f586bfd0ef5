"""`lobterm backtest FILE`: the fast path by default, the reference path for what it does not do, with a
progress bar on stderr and the result as text or JSON on stdout."""

from __future__ import annotations

import sys
import time
from typing import Any

from lobterm.backtest.models import LatencyModel, ModelError, parse_latency, parse_queue
from lobterm.backtest.reference import resolve_params, run_backtest
from lobterm.backtest.result import BacktestResult
from lobterm.recording.reader import SessionError, SessionReader

__all__ = ["ProgressBar", "backtest_command", "resolve_models"]


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
        self._width_drawn = 0

    def update(self, done: int, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - self._last < self.period:
            return
        self._last = now
        frac = min(1.0, done / self.total)
        filled = int(frac * self.width)
        rate = done / max(now - self.t0, 1e-9)
        line = (
            f"[{'#' * filled}{'.' * (self.width - filled)}] {frac * 100:5.1f}% "
            f"{done:,}/{self.total:,} events {rate:,.0f}/s"
        )
        # Padded over the previous line: a shorter rate must not leave the end of a longer one.
        self.stream.write("\r" + line.ljust(self._width_drawn))
        self._width_drawn = len(line)
        self.stream.flush()
        self.drawn += 1

    def close(self) -> None:
        self.update(self.total, force=True)
        self.stream.write("\n")
        self.stream.flush()


def resolve_models(args: Any, *sections: dict[str, str] | None) -> tuple[LatencyModel | None, str | None]:
    """The latency and queue models of a command: its flags, else the first [backtest] section (the
    --config file's, then the configuration's) that sets them, else `--latency-ms`. Raises ModelError."""
    queue_text = getattr(args, "queue", None)
    latency_text = getattr(args, "latency", None)
    latency_ms = float(getattr(args, "latency_ms", 0.0) or 0.0)
    if latency_text is not None and latency_ms:
        raise ModelError("give --latency or --latency-ms, not both")
    for section in sections:
        if not section:
            continue
        if queue_text is None:
            queue_text = section.get("queue")
        if latency_text is None and not latency_ms:
            latency_text = section.get("latency")
    latency = parse_latency(latency_text) if latency_text is not None else LatencyModel.constant(latency_ms)
    queue = parse_queue(queue_text) if queue_text is not None else None
    return latency, queue


def _try_fast(
    path: str,
    params: Any,
    source: str,
    latency: LatencyModel | None,
    queue: str | None,
    progress: Any,
    recorded_changes: bool,
    use_cache: bool = True,
) -> tuple[BacktestResult | None, str]:
    """The fast path's result, or None and why (also on stderr) when it cannot run this backtest."""
    from lobterm.backtest.fast import FastPathUnsupported, fast_path_refusal

    why = fast_path_refusal(params, latency=latency)
    if why is None:
        try:
            from lobterm.backtest.fast import run_fast_backtest

            return (
                run_fast_backtest(
                    path,
                    params,
                    params_source=source,
                    latency=latency,
                    queue=queue,
                    progress=progress,
                    recorded_changes=recorded_changes,
                    use_cache=use_cache,
                ),
                "",
            )
        except FastPathUnsupported as exc:
            why = str(exc)
            if "reference path" not in why:
                why = f"the fast path cannot run this backtest ({exc}): running the reference path"
    print(f"lobterm: {why}", file=sys.stderr)
    return None, why


def warm(stream: Any = None) -> float:
    """Compile the fast path's numba code, or load it from numba's cache; on its first run on a machine
    says so first, in one line (the compile takes tens of seconds). Returns the seconds taken."""
    from lobterm.backtest.cache import kernel_cached
    from lobterm.backtest.fast import warm_up

    stream = stream if stream is not None else sys.stderr
    if not kernel_cached():
        stream.write(
            "lobterm: compiling the backtest kernel once (~30 s on 2 cores, more on a busy machine; "
            "later runs load it)...\n"
        )
        stream.flush()
        seconds = warm_up()
        stream.write(f"lobterm: compiled in {seconds:.1f} s\n")
        stream.flush()
        return seconds
    return warm_up()


def backtest_command(args: Any, config: Any = None) -> int:
    """`lobterm backtest FILE [--config mm.toml] [--json [--path]] [--fast | --reference]`; 2 and a one-line
    reason for bad input. The fast path (lobterm/backtest/fast.py) is the default; it hands over to the
    reference path, saying why, for what it does not do. The session's recorded live parameter changes
    apply at their times unless `--config` gives parameters (from the start)."""
    import json

    from lobterm.config import ConfigError, load
    from lobterm.trading.quoting import QuoteParamError

    if getattr(args, "warm", False):
        seconds = warm()
        if args.file is None:
            print(f"lobterm: the backtest kernel is ready ({seconds:.1f} s)", file=sys.stderr)
            return 0
    if args.file is None:
        print("lobterm: backtest needs a session FILE (or --warm alone)", file=sys.stderr)
        return 2
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
        file_models = file_config.backtest
    else:
        file_models = None
    try:
        latency, queue = resolve_models(args, file_models, getattr(config, "backtest", None))
    except ModelError as exc:
        print(f"lobterm: {exc}", file=sys.stderr)
        return 2
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
        reason = ""
        if strategies or no_mm:
            if getattr(args, "engine", None) == "fast":
                print(
                    "lobterm: the fast path runs the market maker only: running the reference path "
                    "for [strategies.NAME]",
                    file=sys.stderr,
                )
        elif getattr(args, "engine", None) != "reference":
            warm()  # compiles on the first run on this machine, saying so; not in the events/s
            if bar is not None:
                bar.t0 = time.perf_counter()
            result, reason = _try_fast(
                args.file,
                params,
                source,
                latency,
                queue,
                progress,
                recorded_changes,
                use_cache=not getattr(args, "no_cache", False),
            )
        if result is None:
            result = run_backtest(
                args.file,
                params,
                params_source=source,
                latency=latency,
                queue=queue,
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
    if result.engine != "fast" and reason:
        result.engine_reason = reason
    print(json.dumps(result.as_dict(inventory_path=args.path)) if args.json else result.as_text())
    return 0

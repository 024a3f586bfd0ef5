"""The `lobterm` command.

lobterm                         the TUI on the embedded sim venue
lobterm run --headless ...      the kernel without the TUI; prints a summary
lobterm replay FILE             a recorded session played back in the TUI
lobterm backtest FILE ...       the market maker rerun over a recorded session
lobterm fidelity FILE...        a session rerun with its recorded parameters, diffed against its fills
lobterm calibrate FILE...       queue models (and latencies) ranked by error against recorded fills
lobterm sweep SESSION... --grid NAME=V,...   sessions x parameter sets, ranked (local pool or Ray)
lobterm bench [WHICH] [--json]  benchmarks, each figure beside its goal (figures, not pass/fail)
lobterm serve [--port N]        the TUI in a web browser, on 127.0.0.1
lobterm config                  the effective configuration as TOML, secrets redacted
"""

from __future__ import annotations

import argparse
import gc
import json
import sys

from lobterm import __version__


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lobterm", description="A keyboard-driven terminal trading workstation.")
    p.add_argument("--version", action="version", version=f"lobterm {__version__}")
    p.add_argument(
        "--config",
        metavar="FILE",
        help="a TOML config file (after ~/.config/lobterm/config.toml and ./lobterm.toml), or the name of "
        "one shipped with lobterm: demo-xvenue (quote on sim venue simA, hedge on simB)",
    )
    p.add_argument("--seed", type=int, help="seed of the sim venue (default 1)")
    p.add_argument("--rate", type=float, metavar="HZ", help="sim market data steps per second (default 20)")
    p.add_argument("--no-default-config", action="store_true", help="ignore the default config files")
    p.add_argument(
        "--venue",
        action="append",
        metavar="NAME",
        help="trade this live venue (a ccxt exchange id or "
        "a [venues.NAME] config section; repeat for several): keys from LOBTERM_<NAME>_API_KEY / "
        "_SECRET, without keys paper trading on its live book",
    )
    p.add_argument("--symbol", action="append", metavar="SYMBOL", help="symbol(s) for --venue, e.g. BTC/USDT")
    p.add_argument(
        "--log",
        metavar="FILE",
        help="the log file (default $XDG_STATE_HOME/lobterm/lobterm.log; rotated at 10 MB, 5 kept)",
    )
    p.add_argument(
        "--no-record",
        action="store_true",
        help="do not record this session (recording is on by default, to sessions_dir)",
    )
    sub = p.add_subparsers(dest="command")
    run = sub.add_parser("run", help="run the kernel")
    run.add_argument("--headless", action="store_true", help="no TUI: run, then print a summary")
    run.add_argument(
        "--duration",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="simulated seconds to run (default 60)",
    )
    run.add_argument("--seed", type=int, dest="run_seed", help="seed of the sim venue")
    run.add_argument(
        "--realtime",
        action="store_true",
        help="pace the sim on the wall clock "
        "(default: as fast as possible on a virtual clock, deterministic)",
    )
    run.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    run.add_argument(
        "--paper",
        action="store_true",
        help="paper-trade: our orders are filled by the paper desk "
        "against the sim's published book (queue position, no access to its matching engine)",
    )
    run.add_argument(
        "--no-mm", action="store_true", help="do not run the market maker (on by default headless)"
    )
    run.add_argument(
        "--hedge",
        choices=["immediate", "twap", "opportunistic"],
        help="run the hedger with this policy (parameters from the [hedge] config section)",
    )
    run.add_argument(
        "--no-record",
        action="store_true",
        dest="run_no_record",
        help="do not record this run (recording is on by default, to sessions_dir)",
    )
    replay = sub.add_parser("replay", help="play a recorded session back in the TUI")
    replay.add_argument(
        "file",
        nargs="+",
        help="a session file (sessions/*.lobterm.sqlite), the parts of a rotated session, or a session id",
    )
    replay.add_argument("--dir", metavar="DIR", help="where to look for a session id (default: sessions_dir)")
    replay.add_argument("--paused", action="store_true", help="start paused at the first event")
    replay.add_argument(
        "--speed", type=float, default=1.0, help="start at this speed (0.25 .. 100; default 1)"
    )
    backtest = sub.add_parser(
        "backtest", help="rerun the market maker over a recorded session with paper fills"
    )
    backtest.add_argument("file", nargs="?", help="a session file (sessions/*.lobterm.sqlite)")
    backtest.add_argument(
        "--warm",
        action="store_true",
        help="compile the fast path's numba kernel now, once per machine (later runs load it); "
        "alone, or before backtesting FILE",
    )
    backtest.add_argument(
        "--no-cache",
        action="store_true",
        help="decode the session again instead of reading its decoded rows from the cache "
        "($XDG_CACHE_HOME/lobterm/rows; written on the first fast backtest of a file)",
    )
    backtest.add_argument(
        "--config",
        dest="mm_config",
        metavar="FILE",
        help="a TOML file whose [mm] section changes the recorded market maker parameters, from the "
        "start (the session's recorded live changes are then not applied), and whose "
        "[strategies.NAME] sections run beside it (on the reference path)",
    )
    backtest.add_argument(
        "--no-mm",
        action="store_true",
        help="no market maker: only the --config file's [strategies.NAME] trade",
    )
    backtest.add_argument(
        "--latency-ms",
        type=float,
        default=0.0,
        metavar="MS",
        help="order entry latency of the paper desk, per request (default 0)",
    )
    from lobterm.backtest.models import add_model_arguments

    add_model_arguments(backtest)
    backtest.add_argument("--json", action="store_true", help="print the result as one JSON object")
    backtest.add_argument(
        "--path",
        action="store_true",
        help="with --json: include the inventory path, [time ns, position in lots] after each fill",
    )
    backtest.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    engine = backtest.add_mutually_exclusive_group()
    engine.add_argument(
        "--fast",
        dest="engine",
        action="store_const",
        const="fast",
        help="the numba fast path (the default; ladder mode; falls back to --reference, saying "
        "why, for what it does not do)",
    )
    engine.add_argument(
        "--reference",
        "--exact",
        dest="engine",
        action="store_const",
        const="reference",
        help="the full-object path: the kernel's bus, books, OMS, risk, market maker, paper desk",
    )
    sweep = sub.add_parser(
        "sweep",
        help="backtest sessions x market maker parameter sets, ranked by median and worst-decile net P&L",
    )
    sweep.add_argument("sessions", nargs="+", help="session files, or directories of them")
    sweep.add_argument(
        "--grid",
        action="append",
        metavar="NAME=V1,V2,...",
        help="choices of one [mm] parameter (repeat for more: the grid is every combination)",
    )
    sweep.add_argument(
        "--range",
        action="append",
        metavar="NAME=LOW..HIGH",
        help="a numeric parameter's range, for --sampler random or optuna",
    )
    sweep.add_argument(
        "--space", metavar="FILE", help="a TOML file: [grid] NAME = [choices], [range] NAME = [low, high]"
    )
    sweep.add_argument(
        "--sampler",
        choices=["grid", "random", "optuna"],
        default="grid",
        help="grid: every combination (default); random: --samples sets, seeded; optuna: --samples trials "
        "(the optional extra lobterm[optuna])",
    )
    sweep.add_argument("--samples", type=int, metavar="N", help="random sets or Optuna trials (default 20)")
    sweep.add_argument(
        "--seed", type=int, default=0, help="seed of the random and Optuna samplers (default 0)"
    )
    sweep.add_argument(
        "--backend",
        choices=["local", "ray"],
        default="local",
        help="local: worker processes on this machine (default); ray: a Ray cluster (lobterm[sweep-ray])",
    )
    sweep.add_argument("--workers", type=int, metavar="N", help="local worker processes (default: all cores)")
    sweep.add_argument(
        "--address",
        metavar="ADDR",
        help="--backend ray: the cluster's address (default: a local Ray instance)",
    )
    sweep.add_argument(
        "--results",
        metavar="FILE",
        default="sweep-results.sqlite",
        help="the results table (default ./sweep-results.sqlite); a rerun skips the tasks it holds",
    )
    sweep.add_argument(
        "--latency-ms", type=float, default=0.0, metavar="MS", help="order latency per request (default 0)"
    )
    add_model_arguments(sweep)
    sweep.add_argument("--reference", action="store_true", help="every task on the reference path")
    sweep.add_argument(
        "--json", action="store_true", help="print the sweep and its ranking as one JSON object"
    )
    sweep.add_argument("--csv", metavar="FILE", help="write the ranking as CSV")
    sweep.add_argument(
        "--top", type=int, default=20, metavar="N", help="rows of the ranking printed (default 20)"
    )
    sweep.add_argument("--no-progress", action="store_true", help="no progress line on stderr")
    bench = sub.add_parser("bench", help="run benchmarks and print their figures")
    bench.add_argument(
        "which",
        nargs="?",
        default="all",
        choices=["engine", "l2", "ui", "record", "backtest", "sweep", "all"],
        help="which benchmarks (default all)",
    )
    sub.add_parser("config", help="print the effective configuration as TOML (secrets redacted)")
    serve = sub.add_parser("serve", help="serve the TUI to a web browser (textual-serve), on 127.0.0.1")
    serve.add_argument("--port", type=int, default=8000, help="the port to listen on (default 8000)")
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="the address to listen on (default 127.0.0.1: this "
        "machine only; anyone who can reach it can trade)",
    )
    bench.add_argument("--json", action="store_true", help="print the figures as JSON")
    from lobterm.recording.commands import add_parsers as add_session_parsers

    add_session_parsers(sub)  # sessions, verify, export
    from lobterm.backtest.fidelity import add_parsers as add_fidelity_parsers

    add_fidelity_parsers(sub)  # fidelity, calibrate
    return p


def _record_to(args: argparse.Namespace, config):
    """Where to record this session: the sessions directory, or None with --no-record / [recording] enabled = false."""
    if args.no_record or getattr(args, "run_no_record", False) or not config.recording.enabled:
        return None
    return config.sessions_dir


def _config(args: argparse.Namespace):
    from lobterm.config import load

    overrides: dict = {}
    seed = getattr(args, "run_seed", None) or args.seed
    if seed is not None:
        overrides.setdefault("sim", {})["seed"] = seed
        if 0 <= seed < 2**62:  # several sim venues ([venues.NAME] kind = "sim") share [simgroup]'s seed
            overrides["simgroup"] = {"seed": seed}
    if args.rate is not None:
        overrides.setdefault("sim", {})["rate_hz"] = args.rate
    if args.venue:
        overrides["venues"] = {name: ({"symbols": args.symbol} if args.symbol else {}) for name in args.venue}
    config = load(args.config, use_defaults=not args.no_default_config, overrides=overrides)
    if args.venue:  # only the venues named on the command line
        config.venues = {name: config.venues[name] for name in args.venue}
    return config


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    finally:
        if argv is None:  # the program itself (not a caller passing arguments): the process ends next
            # The interpreter's exit would collect every object (ccxt alone brings thousands of
            # classes): 0.3-0.7 s between the last line printed and the process ending.
            gc.freeze()


def _main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from lobterm.config import ConfigError
    from lobterm.recording.recorder import RecorderError

    try:
        config = _config(args)
    except ConfigError as exc:
        print(f"lobterm: configuration error: {exc}", file=sys.stderr)
        return 2

    from lobterm.logs import setup_logging

    problem = setup_logging(
        args.log, stderr=args.command not in (None, "run") or bool(getattr(args, "headless", False))
    )
    if problem:
        print(f"lobterm: {problem} (logging off)", file=sys.stderr)

    if args.command == "run":
        if not args.headless:
            return _tui(config, _record_to(args, config))
        from lobterm.headless import run_headless

        try:
            summary = run_headless(
                config,
                args.duration,
                realtime=args.realtime,
                market_maker=not args.no_mm,
                hedge_policy=args.hedge,
                paper=args.paper,
                record_to=_record_to(args, config),
            )
        except (ValueError, RecorderError) as exc:
            print(f"lobterm: {exc}", file=sys.stderr)
            return 2
        print(json.dumps(summary.as_dict()) if args.json else summary.as_text())
        if summary.left_open:
            print(
                f"lobterm: {len(summary.left_open)} order(s) of ours may still be open at the venue:",
                file=sys.stderr,
            )
            for line in summary.left_open:
                print(f"lobterm:   {line}", file=sys.stderr)
            return 3
        return 130 if summary.interrupted == "SIGINT" else 0
    from lobterm.recording.commands import COMMANDS as SESSION_COMMANDS

    if args.command in SESSION_COMMANDS:
        from lobterm.recording.commands import run_command

        return run_command(args, config)
    if args.command == "replay":
        from lobterm.replay_app import replay_command

        return replay_command(args, config)
    if args.command == "backtest":
        from lobterm.backtest.command import backtest_command

        return backtest_command(args, config)
    if args.command in ("fidelity", "calibrate"):
        from lobterm.backtest.fidelity import calibrate_command, fidelity_command

        return fidelity_command(args) if args.command == "fidelity" else calibrate_command(args)
    if args.command == "sweep":
        from lobterm.backtest.sweep import sweep_command

        return sweep_command(args, config)
    if args.command == "serve":
        from lobterm.serve import serve_command

        return serve_command(args, argv if argv is not None else sys.argv[1:])
    if args.command == "config":
        from lobterm.config import effective_toml

        print(effective_toml(config), end="")
        return 0
    if args.command == "bench":
        from lobterm.bench.report import run_bench

        return run_bench(args.which, as_json=args.json)
    return _tui(config, _record_to(args, config))


def _tui(config, record_to=None) -> int:
    from lobterm.app import LobtermApp
    from lobterm.assemble import build
    from lobterm.recording.recorder import RecorderError
    from lobterm.services import start_recording

    try:
        asm = build(config, "tui")
    except Exception as exc:  # VenueError and friends: their messages are scrubbed of keys
        print(f"lobterm: {exc}", file=sys.stderr)
        return 2
    if record_to is not None:
        try:
            start_recording(
                asm.kernel,
                record_to,
                config=config,
                seed=None if config.venues else config.sim.seed,
                header={"run": {"tui": True}},
            )
        except RecorderError as exc:
            print(f"lobterm: {exc} (run with --no-record to trade without recording)", file=sys.stderr)
            return 2
    app = LobtermApp(config, asm)
    app.services = True  # the [metrics] exporter and the [feed], as configured
    app.hard_exit = True  # a dead terminal cannot keep the process alive after the shutdown
    app.run()
    for line in app.exit_lines:
        print(f"lobterm: {line}", file=sys.stderr)
    return app.return_code or 0


if __name__ == "__main__":
    sys.exit(main())

"""The `lobterm` command.

    lobterm                         the TUI on the embedded sim venue
    lobterm run --headless ...      the kernel without the TUI; prints a summary
    lobterm bench engine [--json]   the engine benchmarks (figures, not pass/fail)
"""

from __future__ import annotations

import argparse
import json
import sys

from lobterm import __version__


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lobterm", description="A keyboard-driven terminal trading workstation.")
    p.add_argument("--version", action="version", version=f"lobterm {__version__}")
    p.add_argument("--config", metavar="FILE", help="a TOML config file (after ~/.config/lobterm/config.toml "
                   "and ./lobterm.toml)")
    p.add_argument("--seed", type=int, help="seed of the sim venue (default 1)")
    p.add_argument("--rate", type=float, metavar="HZ", help="sim market data steps per second (default 20)")
    p.add_argument("--no-default-config", action="store_true", help="ignore the default config files")
    sub = p.add_subparsers(dest="command")
    run = sub.add_parser("run", help="run the kernel")
    run.add_argument("--headless", action="store_true", help="no TUI: run, then print a summary")
    run.add_argument("--duration", type=float, default=60.0, metavar="SECONDS",
                     help="simulated seconds to run (default 60)")
    run.add_argument("--seed", type=int, dest="run_seed", help="seed of the sim venue")
    run.add_argument("--realtime", action="store_true", help="pace the sim on the wall clock "
                     "(default: as fast as possible on a virtual clock, deterministic)")
    run.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    run.add_argument("--paper", action="store_true", help="paper-trade: our orders are filled by the paper desk "
                     "against the sim's published book (queue position, no access to its matching engine)")
    run.add_argument("--no-mm", action="store_true", help="do not run the market maker (on by default headless)")
    run.add_argument("--hedge", choices=["immediate", "twap", "opportunistic"],
                     help="run the hedger with this policy (parameters from the [hedge] config section)")
    bench = sub.add_parser("bench", help="run benchmarks and print their figures")
    bench.add_argument("which", nargs="?", default="engine", choices=["engine"], help="which benchmarks")
    bench.add_argument("--json", action="store_true", help="print the figures as JSON")
    return p


def _config(args: argparse.Namespace):
    from lobterm.config import load

    overrides: dict = {}
    seed = getattr(args, "run_seed", None) or args.seed
    if seed is not None:
        overrides.setdefault("sim", {})["seed"] = seed
    if args.rate is not None:
        overrides.setdefault("sim", {})["rate_hz"] = args.rate
    return load(args.config, use_defaults=not args.no_default_config, overrides=overrides)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from lobterm.config import ConfigError

    try:
        config = _config(args)
    except ConfigError as exc:
        print(f"lobterm: configuration error: {exc}", file=sys.stderr)
        return 2

    if args.command == "run":
        if not args.headless:
            return _tui(config)
        from lobterm.headless import run_headless

        try:
            summary = run_headless(config, args.duration, realtime=args.realtime, market_maker=not args.no_mm,
                                   hedge_policy=args.hedge, paper=args.paper)
        except ValueError as exc:
            print(f"lobterm: {exc}", file=sys.stderr)
            return 2
        print(json.dumps(summary.as_dict()) if args.json else summary.as_text())
        return 0
    if args.command == "bench":
        from lobterm.bench.report import run_bench

        return run_bench(args.which, as_json=args.json)
    return _tui(config)


def _tui(config) -> int:
    from lobterm.app import LobtermApp

    app = LobtermApp(config)
    app.run()
    return app.return_code or 0


if __name__ == "__main__":
    sys.exit(main())

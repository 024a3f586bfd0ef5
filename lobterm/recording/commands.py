"""The session commands of the CLI: `lobterm sessions [--prune]`, `lobterm verify`, `lobterm export`.

`verify` and `export` take session files, or a session id (every part of a rotated session, in order;
ids are in `lobterm sessions`). Exit codes: 0 done; 1 verify found a mismatch (the replay differs
from the recording); 2 a file cannot be used or is damaged (missing, empty, corrupt, truncated, not a
lobterm session, a newer format, a corrupt event or checkpoint: checked or exported up to it) or the
export cannot be written; 3 verify found nothing to verify yet (no checkpoint). One line on stderr
per problem, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

__all__ = ["add_parsers", "run_command", "COMMANDS"]

COMMANDS = ("sessions", "verify", "export")


_SESSION_HELP = "session files (the parts of one session, in any order) or a session id"
_DIR_HELP = "the sessions directory (default: sessions_dir from the config)"


def add_parsers(sub) -> None:
    s = sub.add_parser("sessions", help="list recorded sessions (--prune: apply the retention limit)")
    s.add_argument("--dir", metavar="DIR", help=_DIR_HELP)
    s.add_argument("--json", action="store_true", help="print one JSON object per session, as a list")
    s.add_argument(
        "--prune",
        action="store_true",
        help="remove the oldest session files until the directory holds at most "
        "[recording] max_total_mb (never one in use) and say what was removed",
    )
    v = sub.add_parser("verify", help="replay a session and check every checkpoint (exit 0/1/2/3)")
    v.add_argument("file", metavar="FILE", nargs="+", help=_SESSION_HELP)
    v.add_argument("--dir", metavar="DIR", help=_DIR_HELP)
    v.add_argument("--json", action="store_true", help="print the result as JSON")
    e = sub.add_parser("export", help="export a session's trades, our fills and top of book")
    e.add_argument("file", metavar="FILE", nargs="+", help=_SESSION_HELP)
    e.add_argument("--dir", metavar="DIR", help=_DIR_HELP)
    e.add_argument(
        "--to",
        choices=["csv", "parquet"],
        default="csv",
        help="file format (default csv; parquet needs pyarrow)",
    )
    e.add_argument("--out", metavar="DIR", help="output directory (default: FILE's name + '-export')")


def _fail(message: str) -> int:
    print(f"lobterm: {message}", file=sys.stderr)
    return 2


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def _duration(seconds: float) -> str:
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}"


def _prune(directory: Path, config, as_json: bool) -> int:
    from lobterm.recording.retention import prune_sessions, total_size

    limit_mb = config.recording.max_total_mb
    if limit_mb <= 0:
        print(f"no retention limit ([recording] max_total_mb = 0): nothing removed from {directory}")
        return 0
    removed = prune_sessions(directory, limit_mb * 1024 * 1024)
    left = total_size(directory)
    if as_json:
        print(
            json.dumps(
                {
                    "dir": str(directory),
                    "max_total_mb": limit_mb,
                    "removed": [{"path": str(r.path), "size_bytes": r.size_bytes} for r in removed],
                    "total_bytes": left,
                }
            )
        )
        return 0
    for r in removed:
        print(f"removed {r.path.name} ({_size(r.size_bytes)})")
    freed = sum(r.size_bytes for r in removed)
    what = f"removed {len(removed)} file(s), {_size(freed)}" if removed else "nothing to remove"
    print(f"{what}: {directory} holds {_size(left)} of session files (limit {limit_mb:,} MB)")
    if left > limit_mb * 1024 * 1024:
        print("  still over the limit: the files left are in use (recording or being read)")
    return 0


def cmd_sessions(args: argparse.Namespace, config) -> int:
    from lobterm.recording.reader import list_sessions

    directory = Path(args.dir) if args.dir else config.sessions_dir
    if args.dir and not directory.is_dir():
        return _fail(f"{directory}: no such directory")
    if args.prune:
        return _prune(directory, config, args.json)
    infos, problems = list_sessions(directory)
    if args.json:
        print(
            json.dumps(
                {
                    "dir": str(directory),
                    "sessions": [i.as_dict() for i in infos],
                    "unreadable": [{"path": p.path, "problem": p.problem} for p in problems],
                }
            )
        )
        return 0
    if not infos and not problems:
        print(f"no sessions in {directory}")
        return 0
    header = f"{'start (UTC)':19}  {'duration':>8}  {'venues':10}  {'symbols':18}  {'events':>10}  {'size':>9}  closed  part  file"
    print(header)
    for i in infos:
        start = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(i.created_ns / 1e9))
        print(
            f"{start:19}  {_duration(i.duration_s):>8}  {','.join(i.venues)[:10]:10}  "
            f"{','.join(s.split(':', 1)[-1] for s in i.symbols)[:18]:18}  {i.events:>10,}  {_size(i.size_bytes):>9}  "
            f"{'yes' if i.closed else 'NO':6}  {i.part:>4}  {Path(i.path).name}"
        )
    if any(i.part > 1 or i.rotated for i in infos):
        print(
            "a rotated session's parts share an id (the first part's name): "
            "`lobterm replay|verify|export ID` takes them all"
        )
    for p in problems:
        print(f"unreadable: {Path(p.path).name}: {p.problem}")
    return 0


def _files(args: argparse.Namespace, config) -> list[Path]:
    from lobterm.recording.reader import resolve_session

    directory = Path(args.dir) if getattr(args, "dir", None) else config.sessions_dir
    return resolve_session(list(args.file), directory)


_SEVERITY = {0: 0, 3: 1, 1: 2, 2: 3}


def cmd_verify(args: argparse.Namespace, config) -> int:
    from lobterm.recording.reader import SessionError
    from lobterm.recording.verify import verify_files

    t0 = time.perf_counter()
    try:
        results = verify_files(_files(args, config))
    except SessionError as exc:
        return _fail(str(exc))
    wall = time.perf_counter() - t0
    # Several files: the worst one says it (unusable, then mismatch, then nothing yet).
    code = max((r.exit_code for r in results), key=_SEVERITY.__getitem__)
    if args.json:
        out = [
            {
                "file": r.path,
                "ok": r.ok,
                "exit_code": r.exit_code,
                "events": r.events,
                "checkpoints_checked": r.checkpoints,
                "checkpoints": r.total_checkpoints,
                "closed": r.closed,
                "damage": r.damage,
                "mismatch": None
                if r.mismatch is None
                else {
                    "seq": r.mismatch.seq,
                    "ts": r.mismatch.ts,
                    "expected": r.mismatch.expected,
                    "got": r.mismatch.got,
                },
            }
            for r in results
        ]
        print(json.dumps({"files": out, "exit_code": code, "seconds": round(wall, 3)}))
        return code
    for r in results:
        checked = f"{r.checkpoints} of {r.total_checkpoints} checkpoints"
        if r.mismatch is not None:
            m = r.mismatch
            print(
                f"{r.path}: MISMATCH at checkpoint {r.checkpoints} of {r.total_checkpoints}: seq {m.seq}, "
                f"ts {m.ts}: expected {m.expected}, got {m.got}",
                file=sys.stderr,
            )
        elif r.damage is not None:
            good = max(0, r.checkpoints - 1) if "checkpoint" in r.damage else r.checkpoints
            print(
                f"lobterm: {r.path}: damaged: {r.damage} ({good} checkpoint(s) and {r.events:,} events "
                "before it are good)",
                file=sys.stderr,
            )
        elif r.checkpoints == 0:
            print(
                f"{r.path}: nothing to verify yet: no checkpoint ({r.events:,} events readable, "
                f"{'closed cleanly' if r.closed else 'not closed cleanly'})",
                file=sys.stderr,
            )
        else:
            state = "closed cleanly" if r.closed else "not closed cleanly: verified up to its last flush"
            print(f"{r.path}: OK: {checked} match over {r.events:,} events ({state}; {wall:.2f} s)")
    return code


def cmd_export(args: argparse.Namespace, config) -> int:
    from lobterm.recording.export import ExportError, export_session
    from lobterm.recording.reader import SessionError

    try:
        result = export_session(_files(args, config), args.to, args.out)
    except (SessionError, ExportError) as exc:
        return _fail(str(exc))
    for table, (path, rows) in result.tables.items():
        print(f"{table:12} {rows:>10,} rows  {path}")
    if result.damage is not None:
        return _fail(f"{result.damage}: the export stopped there (the tables hold everything before it)")
    return 0


def run_command(args: argparse.Namespace, config) -> int:
    return {"sessions": cmd_sessions, "verify": cmd_verify, "export": cmd_export}[args.command](args, config)

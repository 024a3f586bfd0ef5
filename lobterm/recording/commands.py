"""The session commands of the CLI: `lobterm sessions`, `lobterm verify FILE`, `lobterm export FILE`.

Exit codes: 0 done; 1 verify found a mismatch (or nothing to verify); 2 the file cannot be used
(missing, empty, corrupt, truncated, not a lobterm session, a newer format) or the export cannot be
written: one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

__all__ = ["add_parsers", "run_command", "COMMANDS"]

COMMANDS = ("sessions", "verify", "export")


def add_parsers(sub) -> None:
    s = sub.add_parser("sessions", help="list recorded sessions")
    s.add_argument(
        "--dir", metavar="DIR", help="the sessions directory (default: sessions_dir from the config)"
    )
    s.add_argument("--json", action="store_true", help="print one JSON object per session, as a list")
    v = sub.add_parser("verify", help="replay a session and compare every checkpoint's state hash")
    v.add_argument("file", metavar="FILE")
    v.add_argument("--json", action="store_true", help="print the result as JSON")
    e = sub.add_parser("export", help="export a session's trades, our fills and top of book")
    e.add_argument("file", metavar="FILE")
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


def _size(n: int) -> str:
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


def cmd_sessions(args: argparse.Namespace, config) -> int:
    from lobterm.recording.reader import list_sessions

    directory = Path(args.dir) if args.dir else config.sessions_dir
    if args.dir and not directory.is_dir():
        return _fail(f"{directory}: no such directory")
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
    header = f"{'start (UTC)':19}  {'duration':>8}  {'venues':10}  {'symbols':18}  {'events':>10}  {'size':>9}  closed  file"
    print(header)
    for i in infos:
        start = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(i.created_ns / 1e9))
        print(
            f"{start:19}  {_duration(i.duration_s):>8}  {','.join(i.venues)[:10]:10}  "
            f"{','.join(s.split(':', 1)[-1] for s in i.symbols)[:18]:18}  {i.events:>10,}  {_size(i.size_bytes):>9}  "
            f"{'yes' if i.closed else 'NO':6}  {Path(i.path).name}"
        )
    for p in problems:
        print(f"unreadable: {Path(p.path).name}: {p.problem}")
    return 0


def cmd_verify(args: argparse.Namespace, config) -> int:
    from lobterm.recording.reader import SessionError
    from lobterm.recording.verify import verify

    t0 = time.perf_counter()
    try:
        r = verify(args.file)
    except SessionError as exc:
        return _fail(str(exc))
    wall = time.perf_counter() - t0
    if args.json:
        out = {
            "file": args.file,
            "ok": r.ok,
            "events": r.events,
            "checkpoints_checked": r.checkpoints,
            "checkpoints": r.total_checkpoints,
            "closed": r.closed,
            "seconds": round(wall, 3),
            "mismatch": None
            if r.mismatch is None
            else {
                "seq": r.mismatch.seq,
                "ts": r.mismatch.ts,
                "expected": r.mismatch.expected,
                "got": r.mismatch.got,
            },
        }
        print(json.dumps(out))
    elif r.mismatch is not None:
        m = r.mismatch
        print(
            f"{args.file}: MISMATCH at checkpoint {r.checkpoints} of {r.total_checkpoints}: seq {m.seq}, "
            f"ts {m.ts}: expected {m.expected}, got {m.got}",
            file=sys.stderr,
        )
    elif r.checkpoints == 0:
        print(
            f"{args.file}: no checkpoint to verify ({r.events:,} events readable, "
            f"{'closed cleanly' if r.closed else 'not closed cleanly'})",
            file=sys.stderr,
        )
    else:
        print(
            f"{args.file}: OK: {r.checkpoints} of {r.total_checkpoints} checkpoints match over {r.events:,} events "
            f"({'closed cleanly' if r.closed else 'not closed cleanly: verified up to its last flush'}; "
            f"{wall:.2f} s)"
        )
    return 0 if r.ok else 1


def cmd_export(args: argparse.Namespace, config) -> int:
    from lobterm.recording.export import ExportError, export_session
    from lobterm.recording.reader import SessionError

    try:
        written = export_session(args.file, args.to, args.out)
    except (SessionError, ExportError) as exc:
        return _fail(str(exc))
    for table, (path, rows) in written.items():
        print(f"{table:12} {rows:>10,} rows  {path}")
    return 0


def run_command(args: argparse.Namespace, config) -> int:
    return {"sessions": cmd_sessions, "verify": cmd_verify, "export": cmd_export}[args.command](args, config)

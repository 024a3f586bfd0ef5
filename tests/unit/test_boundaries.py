"""The layering rules of DESIGN.md, checked on the source and at run time.

- engine/ is pure: no I/O, no asyncio, no wall time, no global random state, no textual.
- engine/, trading/, venues/, recording/, backtest/ never import textual.
- Starting the TUI path does not import ccxt (0.6 s of start-up for nothing).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[2] / "lobterm"

ENGINE_ALLOWED = {
    "__future__",
    "bisect",
    "dataclasses",
    "decimal",
    "fractions",
    "typing",
    "math",
    "collections",
    "functools",
    "itertools",
    "heapq",
    "enum",
    "operator",
    "msgspec",
    "sortedcontainers",
    "numpy",
    "numba",
    "lobterm",
}
ENGINE_FORBIDDEN_REASON = "engine/ must stay pure (no I/O, clocks, randomness or UI)"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def _modules(sub: str) -> list[Path]:
    return sorted((PKG / sub).rglob("*.py"))


@pytest.mark.parametrize("path", _modules("engine"), ids=lambda p: p.name)
def test_engine_module_imports_only_pure_modules(path: Path) -> None:
    bad = {n for n in _imports(path) if n.split(".")[0] not in ENGINE_ALLOWED}
    assert not bad, f"{path.name} imports {sorted(bad)}: {ENGINE_FORBIDDEN_REASON}"
    engine_internal = {
        n for n in _imports(path) if n.startswith("lobterm") and not n.startswith("lobterm.engine")
    }
    assert not engine_internal, f"{path.name} imports {sorted(engine_internal)} from outside engine/"


@pytest.mark.parametrize("sub", ["engine", "trading", "venues", "recording", "backtest"])
def test_core_packages_never_import_textual(sub: str) -> None:
    for path in _modules(sub):
        bad = {n for n in _imports(path) if n.split(".")[0] in ("textual", "rich")}
        assert not bad, f"{path.relative_to(PKG)} imports {sorted(bad)}: the core must run without the TUI"


def test_starting_the_tui_path_does_not_import_ccxt() -> None:
    code = (
        "import sys, lobterm.cli, lobterm.app, lobterm.headless, lobterm.kernel; "
        "from lobterm.config import load; from lobterm.assemble import build_sim_kernel; "
        "build_sim_kernel(load(use_defaults=False), virtual=True); "
        "print('ccxt' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"

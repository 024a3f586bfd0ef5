"""The layering rules of DESIGN.md, checked on the source and at run time.

`lint-imports` (contracts in pyproject.toml) checks the import graph, including imports inside
functions and under TYPE_CHECKING. These tests check what actually happens: each layer is imported in
a fresh interpreter and `sys.modules` is read, so an indirect import (A imports B, B imports textual)
counts, and a module added later is checked without anyone listing it (the contracts can only name
modules that exist today).

- engine/ is pure: no I/O, no asyncio, no wall time, no global random state, no textual; it imports
  nothing of lobterm.
- trading/ pulls in engine/ only; venues/ pull in engine/ and trading/ only.
- Nothing below the app (every top-level module but the UI ones) pulls in textual or the UI modules.
- The kernel does not pull in its observers (metrics, feed, recorder).
- Starting the TUI path does not import ccxt (0.6 s of start-up for nothing).
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PKG = ROOT / "lobterm"

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
    "numbers",
    "operator",
    "msgspec",
    "sortedcontainers",
    "numpy",
    "numba",
    "lobterm",
}
ENGINE_FORBIDDEN_REASON = "engine/ must stay pure (no I/O, clocks, randomness or UI)"

# The modules that may import textual: the app, its screens and widgets, the web server of the app,
# and the tools around them (the `lobterm` command, the UI benchmark). Everything else is "below the app".
UI_MODULES = {"app", "replay_app", "widgets", "themes", "serve", "cli", "__main__", "bench"}
UI_PACKAGES = ("textual", "rich")
# Never pulled in by the engine at run time (stdlib internals such as `random` or `threading` come with
# msgspec and decimal and are not the engine's doing: the source check above covers direct imports).
ENGINE_FORBIDDEN_AT_RUN_TIME = (
    "asyncio",
    "sqlite3",
    "socket",
    "aiosqlite",
    "websockets",
    "ccxt",
    "prometheus_client",
)

# Imports that break a rule today and are being removed (issue 10). A new violation fails; delete an
# entry when its import is gone.
KNOWN_VIOLATIONS: dict[
    str, set[str]
] = {}  # none left: trading/ and venues/ type the clock and bus with engine.ports


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


def _module_names(sub: str) -> list[str]:
    """Dotted names of every module of the package `lobterm.<sub>` (or of the module itself)."""
    path = PKG / sub
    if path.with_suffix(".py").is_file():
        return [f"lobterm.{sub}"]
    names = []
    for p in sorted(path.rglob("*.py")):
        parts = p.relative_to(ROOT).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def _top_level() -> list[str]:
    names = [p.stem for p in PKG.glob("*.py") if p.stem != "__init__"]
    names += [p.name for p in PKG.iterdir() if (p / "__init__.py").is_file()]
    return sorted(names)


_PROBE = """
import importlib, json, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
print(json.dumps(sorted(sys.modules)))
"""


def _loaded_by(modules: list[str]) -> set[str]:
    """Every module in sys.modules after importing `modules` in a fresh interpreter (this tree first)."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, *modules],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return set(json.loads(out.stdout))


def _offenders(modules: list[str], bad: set[str]) -> dict[str, list[str]]:
    """Which of `modules`, each imported alone, pulls in which of `bad` (to say where a violation is)."""
    found = {}
    for m in modules:
        pulled = _loaded_by([m]) & bad
        if pulled:
            # textual or rich pull in dozens of submodules: name the package once.
            found[m] = sorted({p if p.startswith("lobterm.") else p.split(".")[0] for p in pulled})
    return found


def _outside(loaded: set[str], allowed_prefixes: tuple[str, ...]) -> set[str]:
    return {
        m
        for m in loaded
        if (m == "lobterm" or m.startswith("lobterm."))
        and m != "lobterm"
        and not any(m == a or m.startswith(a + ".") for a in allowed_prefixes)
    }


# ---- source: direct imports --------------------------------------------------------------------
@pytest.mark.parametrize("path", _modules("engine"), ids=lambda p: p.name)
def test_engine_module_imports_only_pure_modules(path: Path) -> None:
    bad = {n for n in _imports(path) if n.split(".")[0] not in ENGINE_ALLOWED}
    assert not bad, f"{path.name} imports {sorted(bad)}: {ENGINE_FORBIDDEN_REASON}"
    engine_internal = {
        n for n in _imports(path) if n.startswith("lobterm") and not n.startswith("lobterm.engine")
    }
    assert not engine_internal, f"{path.name} imports {sorted(engine_internal)} from outside engine/"


# ---- run time: what importing a layer pulls in ----------------------------------------------------
@pytest.mark.parametrize(
    "layer, allowed",
    [
        ("engine", ("lobterm.engine",)),
        ("trading", ("lobterm.engine", "lobterm.trading")),
        ("venues", ("lobterm.engine", "lobterm.trading", "lobterm.venues")),
    ],
)
def test_a_layer_pulls_in_only_the_layers_below_it(layer: str, allowed: tuple[str, ...]) -> None:
    modules = _module_names(layer)
    loaded = _loaded_by(modules)
    new = _outside(loaded, allowed) - KNOWN_VIOLATIONS.get(layer, set())
    if new:
        where = _offenders(modules, new)
        pytest.fail(f"importing lobterm.{layer} pulls in {sorted(new)}: {where}")


def test_the_engine_pulls_in_no_io_asyncio_or_ui_at_run_time() -> None:
    loaded = _loaded_by(_module_names("engine"))
    bad = {m for m in loaded if m.split(".")[0] in ENGINE_FORBIDDEN_AT_RUN_TIME + UI_PACKAGES}
    assert not bad, f"importing lobterm.engine pulls in {sorted(bad)}: {ENGINE_FORBIDDEN_REASON}"


def test_nothing_below_the_app_pulls_in_textual_or_the_ui() -> None:
    below = [m for top in _top_level() if top not in UI_MODULES for m in _module_names(top)]
    loaded = _loaded_by(below)
    ui = {f"lobterm.{m}" for m in UI_MODULES}
    bad = {
        m
        for m in loaded
        if m.split(".")[0] in UI_PACKAGES or any(m == u or m.startswith(u + ".") for u in ui)
    }
    if bad:
        where = _offenders(below, bad)
        pytest.fail(f"modules below the app pull in the UI: {where}")


def test_the_kernel_does_not_pull_in_its_observers() -> None:
    loaded = _loaded_by(["lobterm.kernel"])
    observers = {"lobterm.metrics", "lobterm.feed", "lobterm.recording.recorder"}
    assert not loaded & observers, f"importing lobterm.kernel pulls in {sorted(loaded & observers)}"


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

"""No import cycle in lobterm/ (issue 10), over the whole package, not only between siblings (the
`lint-imports` acyclic_siblings contract): the run-time imports read from the source (module level and
inside functions; an import of a.b.c also runs the packages a and a.b). Imports under TYPE_CHECKING
name types only and are left out (the ccxt venue's parts name the venue class, risk the OMS's order)."""

from __future__ import annotations

import ast
from pathlib import Path

import lobterm

ROOT = Path(lobterm.__file__).parent


def _modules() -> dict[str, Path]:
    mods = {}
    for p in ROOT.rglob("*.py"):
        rel = p.relative_to(ROOT.parent).with_suffix("")
        mods[".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)] = p
    return mods


def import_graph() -> dict[str, set[str]]:
    mods = _modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m, path in mods.items():
        tree = ast.parse(path.read_text())
        typing_only = {
            id(s)
            for n in ast.walk(tree)
            if isinstance(n, ast.If) and "TYPE_CHECKING" in ast.unparse(n.test)
            for s in ast.walk(n)
        }
        for n in ast.walk(tree):
            if id(n) in typing_only or not isinstance(n, ast.Import | ast.ImportFrom):
                continue
            if isinstance(n, ast.Import):
                names = [a.name for a in n.names]
            else:
                base = n.module or ""
                if n.level:
                    pkg = m.split(".") if path.name == "__init__.py" else m.split(".")[:-1]
                    pkg = pkg[: len(pkg) - (n.level - 1)]
                    base = ".".join([*pkg, base] if base else pkg)
                names = [base] + [f"{base}.{a.name}" for a in n.names]
            for t in names:
                parts = t.split(".")
                for i in range(1, len(parts) + 1):  # the module and the packages it runs
                    dep = ".".join(parts[:i])
                    if dep in mods and dep != m and not m.startswith(dep + "."):
                        graph[m].add(dep)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))
    return found


def test_the_check_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]


def test_lobterm_has_no_import_cycle() -> None:
    graph = import_graph()
    assert len(graph) > 100 and sum(map(len, graph.values())) > 300  # it read the package
    assert cycles(graph) == []

"""The package's imports point one way: no module reaches back to one that imports it.

The graph is read from the source (every ``import``, lazy ones inside functions
included), so a cycle hidden in a function body fails here too, and so does a module
that imports names from its own package's ``__init__`` while that ``__init__`` imports it.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("alphadev", "pipelines")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(module: str, is_package: bool, level: int, target: str | None) -> str:
    if level == 0:
        return target or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (level - 1)] if level > 1 else base
    return ".".join([*base, target] if target else base)


def import_graph() -> dict[str, set[str]]:
    """module -> the package modules it imports (anywhere in its source)."""
    files = {_module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in files}

    def known(name: str) -> str | None:
        while name and name not in files:
            name = name.rpartition(".")[0]
        return name or None

    for name, path in files.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                # ``from pkg import sub`` imports the module ``pkg.sub``; ``from pkg import
                # name`` imports ``pkg`` itself, also from a module inside ``pkg``.
                base = _resolve(name, is_package, node.level, node.module)
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in files
                           else base for alias in node.names]
            for target in targets:
                hit = known(target)
                if hit is not None and hit != name:
                    graph[name].add(hit)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_a_child_importing_its_package_back_is_seen(tmp_path, monkeypatch) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("from pkg.child import run\n")
    (package / "child.py").write_text("def run():\n    from pkg import helper\n")
    (package / "sibling.py").write_text("from pkg import child\n")  # a module: no cycle
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    monkeypatch.setattr(sys.modules[__name__], "PACKAGES", ("pkg",))
    graph = import_graph()
    assert graph["pkg.sibling"] == {"pkg.child"}
    assert find_cycle(graph) == ["pkg", "pkg.child", "pkg"]


def test_find_cycle_sees_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_package_import_graph_has_no_cycle() -> None:
    graph = import_graph()
    assert "alphadev.engine.kernel" in graph and graph["pipelines"], "graph not read"
    cycle = find_cycle(graph)
    assert cycle is None, " -> ".join(cycle or [])


def test_the_layers_point_down() -> None:
    """job <- pool <- backtester <- spec <- pipelines; the Backtester knows no Luigi.

    (tests/engine/test_engine_imports.py checks that the engine imports nothing above it.)
    """
    graph = import_graph()
    assert "alphadev.backtester" not in graph["alphadev.pool"]
    assert "alphadev.backtester" not in graph["alphadev.job"]
    assert "alphadev.spec" not in graph["alphadev.pool"]
    assert not {m for m in graph if m.startswith("pipelines")} & set().union(
        *(graph[m] for m in graph if m.startswith("alphadev"))
    )


def subpackage_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The graph with each subpackage (``alphadev.out_of_sample``, ``alphadev.report``, ...)
    as one node: a module that imports from a subpackage whose modules import it back
    makes a cycle here even when no single module imports another back."""
    subpackages = {m for m in graph if m.count(".") >= 1 and any(
        other.startswith(f"{m}.") for other in graph)}

    def node(module: str) -> str:
        for sub in subpackages:
            if module == sub or module.startswith(f"{sub}."):
                return sub
        return module

    collapsed: dict[str, set[str]] = {}
    for module, targets in graph.items():
        here = node(module)
        collapsed.setdefault(here, set()).update(node(t) for t in targets if node(t) != here)
    return collapsed


def test_subpackages_are_layers_too() -> None:
    cycle = find_cycle(subpackage_graph(import_graph()))
    assert cycle is None, " -> ".join(cycle or [])


def test_a_subpackage_cycle_is_seen() -> None:
    graph = {"p.stats": {"p.sub.trials"}, "p.sub": set(), "p.sub.trials": set(),
             "p.sub.files": {"p.comparison"}, "p.comparison": {"p.stats"}}
    assert find_cycle(graph) is None
    assert find_cycle(subpackage_graph(graph)) == ["p.comparison", "p.stats", "p.sub",
                                                   "p.comparison"]


def architecture_rows() -> dict[str, int]:
    """module -> row of the picture in docs/architecture.md (``engine/`` stands for the
    whole subpackage; the top-level package ``alphadev`` is the row of ``__main__``)."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    picture = text.split("```", 2)[1]
    rows: dict[str, int] = {}
    modules = import_graph()
    row = 0
    for line in picture.splitlines():
        head = line.split(" ..")[0].strip()
        if not head or line.startswith("  "):
            continue
        row += 1
        for item, members in re.findall(r"([^,(]+)(?:\(([^)]*)\))?", head):
            item = item.strip()
            if not item:
                continue
            package = item[:-1] if item.startswith("pipelines") else f"alphadev.{item[:-1]}"
            for member in filter(None, (m.strip() for m in members.split(","))):
                if f"{package}.{member}" not in modules:  # a subpackage's members
                    raise AssertionError(f"docs/architecture.md names {item}{member}, "
                                         "not a module")
            if item.endswith("/"):
                rows.update({m: row for m in modules if m == package or
                             m.startswith(f"{package}.")})
            elif item == "__main__":
                rows.update({"alphadev.__main__": row, "alphadev": row})
            elif f"alphadev.{item}" in modules:
                rows[f"alphadev.{item}"] = row
            else:
                raise AssertionError(f"docs/architecture.md names {item!r}, not a module")
    return rows


def test_the_architecture_picture_is_the_import_graph() -> None:
    rows = architecture_rows()
    graph = import_graph()
    private = {m for m in graph
               if m.rpartition(".")[2].startswith("_") and m != "alphadev.__main__"}
    missing = sorted(set(graph) - set(rows) - private)
    assert not missing, f"docs/architecture.md does not place {missing}"
    against = sorted(f"{m} (row {rows[m]}) imports {t} (row {rows[t]})"
                     for m, targets in graph.items() if m in rows
                     for t in targets if t in rows and rows[t] > rows[m])
    assert not against, "\n".join(against)

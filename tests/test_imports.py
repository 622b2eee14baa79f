"""No import cycle among the daemon's modules.

Every import counts, wherever it is written: at the top, inside a function (a lazy import only
hides a cycle until that function runs) and under `if TYPE_CHECKING:` (a cycle there is the same
tangle of dependencies, kept out of sight of the interpreter but not of a reader). So the graph is
read from the source with `ast`, never by importing.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("monitord", "probes", "rules", "notices", "notifiers")


def modules(root: Path) -> dict[str, Path]:
    """Dotted module name -> its file, for every module of PACKAGES under `root`."""
    found = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The known modules module `name` (at `path`) imports: `import a.b`; `from a.b import c`,
    a.b.c when c is a module, else a.b; relative imports resolved against its package (so a
    package's modules may import each other with `from . import x` without naming the package)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
    return {m for m in found if m in known}


def graph(root: Path) -> dict[str, set[str]]:
    known = modules(root)
    return {name: imports(name, path, known) - {name} for name, path in known.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component that has one (Tarjan), each as a path."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return [_path(sorted(c), edges) for c in components]


def _path(component: list[str], edges: dict[str, set[str]]) -> list[str]:
    """A cycle through the component's first module, for the failure message."""
    start, members = component[0], set(component)
    trail, seen = [start], {start}
    while True:
        step = sorted(edges[trail[-1]] & members)
        if start in step:
            return [*trail, start]
        following = next((s for s in step if s not in seen), None)
        if following is None:
            return [*trail, "..."]
        trail.append(following)
        seen.add(following)


def test_the_daemons_modules_import_each_other_without_a_cycle() -> None:
    edges = graph(ROOT)
    assert {"monitord.daemon", "monitord.http", "monitord.view", "rules.engine", "probes.snmp"} <= set(edges)
    assert "monitord.view" in edges["monitord.metrics"], "TYPE_CHECKING imports are read"
    assert "monitord.http_server" in edges["monitord.daemon"], "imports inside functions are read"
    found = cycles(edges)
    assert not found, "import cycles: " + "; ".join(" -> ".join(c) for c in found)


def test_a_cycle_is_found_however_it_is_written(tmp_path: Path) -> None:
    """The checker itself: a cycle through a TYPE_CHECKING import and a function-level import."""
    package = tmp_path / "monitord"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from monitord.b import B\n")
    (package / "b.py").write_text("def f():\n    from . import c\n")
    (package / "c.py").write_text("import monitord.a\n")
    (package / "d.py").write_text("from monitord import a\nfrom monitord.b import f\n")
    edges = graph(tmp_path)
    assert edges["monitord.d"] == {"monitord.a", "monitord.b"}
    assert cycles(edges) == [["monitord.a", "monitord.b", "monitord.c", "monitord.a"]]

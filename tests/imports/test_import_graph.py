"""The import graph of the installed packages: no cycle, and each package in its lane.

Walked statically (ast) over every module of `fleet`, `fleetcore`, `bot` and `agents` as
installed, counting every import statement wherever it is: at the top, inside functions,
and under `if TYPE_CHECKING:` (a typing-only import is still a dependency a reader follows,
and the easiest way to hide a cycle).

An import's edges are the modules Python runs for it:

- `import a.b.c` runs `a`, `a.b` and `a.b.c` (each package's `__init__` first), so it is an
  edge to each of them;
- `from a.b import c` runs `a` and `a.b`, then `a.b.c` when `c` is a submodule; when `c` is a
  name defined in `a/b/__init__.py`, it needs that module's namespace, so it is an edge to
  `a.b` even from inside `a.b` itself (the import that fails with "partially initialized
  module" when there is a cycle);
- the importer's own enclosing packages are already initialised (or initialising) when its
  code runs, so the implicit parent-package part of an import is no edge for them:
  `fleetcore/safety/detector.py` doing `from fleetcore.safety import normalise` depends on
  `fleetcore.safety.normalise`, not on `fleetcore/safety/__init__.py`.

Rules: no cycle; `bot` and `agents` never import each other; `fleetcore` imports none of
`bot`, `agents`, `fleet`; no product module imports the test doubles (`fleettest`, `tests`).
"""

from __future__ import annotations

import ast
import itertools
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

PACKAGES = ("fleet", "fleetcore", "bot", "agents")
TEST_PACKAGES = ("fleettest", "tests")


@dataclass
class Graph:
    files: dict[str, Path] = field(default_factory=dict)  # module -> file
    packages: set[str] = field(default_factory=set)  # modules that are packages
    # module -> {imported module: "file:line" of the first import that makes the edge}
    edges: dict[str, dict[str, str]] = field(default_factory=dict)
    # (module, imported name, "file:line") for imports of the test doubles
    test_imports: list[tuple[str, str, str]] = field(default_factory=list)


def installed_locations() -> dict[str, list[str]]:
    """Where each package is installed, asked of a fresh interpreter outside the checkout.

    Not `find_spec` here: pytest puts `tests/` on sys.path, where `tests/bot` and
    `tests/agents` would pass for the packages.
    """
    code = (
        "import importlib.util, json\n"
        f"names = {list(PACKAGES)!r}\n"
        "print(json.dumps({n: list(importlib.util.find_spec(n).submodule_search_locations)"
        " for n in names}))"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd="/", env=env, capture_output=True, text=True, check=True
    )
    return dict(json.loads(out.stdout))


def _modules(package: str, roots: list[str]) -> Iterator[tuple[str, Path, bool]]:
    for root in roots:
        base = Path(root)
        assert (base / "__init__.py").is_file(), f"{package} at {base} is not a regular package"
        for path in sorted(base.rglob("*.py")):
            rel = path.relative_to(base).with_suffix("")
            parts = [package, *rel.parts]
            is_package = parts[-1] == "__init__"
            if is_package:
                parts = parts[:-1]
            yield ".".join(parts), path, is_package


def _prefixes(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def _imports(tree: ast.AST, own_package: str) -> Iterator[tuple[list[str], list[str], int]]:
    """Each import statement as (module chain it runs, names it takes, line).

    `import a.b` is (["a.b"], [], line); `from .x import y, z` is (["<pkg>.x"], ["y", "z"], line).
    """
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield [alias.name], [], node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = own_package.split(".")
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            yield [source], [alias.name for alias in node.names], node.lineno


def build_graph() -> Graph:
    g = Graph()
    for package, roots in installed_locations().items():
        for module, path, is_package in _modules(package, roots):
            g.files[module] = path
            if is_package:
                g.packages.add(module)
    for module, path in g.files.items():
        own_package = module if module in g.packages else module.rpartition(".")[0]
        # Initialised before this module's code runs: no edge for running them again.
        ancestors = set(_prefixes(own_package)) | {module}
        edges = g.edges.setdefault(module, {})
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for (source,), names, line in _imports(tree, own_package):
            where = f"{path}:{line}"
            if source.split(".")[0] in TEST_PACKAGES:
                g.test_imports.append((module, source, where))
            targets = [p for p in _prefixes(source) if p not in ancestors]
            for name in names:
                if f"{source}.{name}" in g.files:
                    targets.append(f"{source}.{name}")
                else:  # a name from the package's own namespace: it must be initialised
                    targets.append(source)
            for target in targets:
                if target in g.files and target != module:
                    edges.setdefault(target, where)
    return g


def cycles(g: Graph) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in sorted(g.edges):
        if root in index:
            continue
        work = [(root, iter(sorted(g.edges.get(root, {}))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(g.edges.get(child, {})))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def describe_cycle(g: Graph, component: list[str]) -> str:
    """One concrete loop through the component, each step with the line that makes it."""
    members = set(component)
    start = component[0]
    path = [start]
    seen = {start}
    node = start
    while True:
        nxt = next(
            t for t in sorted(g.edges[node]) if t in members and (t == start or t not in seen)
        )
        if nxt == start or nxt in seen:
            path.append(nxt)
            break
        path.append(nxt)
        seen.add(nxt)
        node = nxt
        if start in g.edges[node]:
            path.append(start)
            break
    steps = [f"  {a} -> {b}  ({g.edges[a][b]})" for a, b in itertools.pairwise(path)]
    return f"cycle among {', '.join(component)}:\n" + "\n".join(steps)


GRAPH = build_graph()


def lane_violations(g: Graph) -> list[str]:
    out = []
    for module, targets in sorted(g.edges.items()):
        top = module.split(".")[0]
        for target, where in sorted(targets.items()):
            other = target.split(".")[0]
            if {top, other} == {"bot", "agents"}:
                out.append(f"{module} imports {target} ({where}): bot and agents never meet")
            if top == "fleetcore" and other in ("bot", "agents", "fleet"):
                out.append(f"{module} imports {target} ({where}): fleetcore is the shared core")
    return out


def test_the_walk_sees_every_package_and_every_kind_of_import() -> None:
    for package in PACKAGES:
        assert package in GRAPH.files, package
    # A function-level import and a TYPE_CHECKING import are edges too.
    assert "agents.wolf" in GRAPH.edges["fleet.cli"]  # inside cmd_wolf
    assert "bot.services" in GRAPH.edges["bot.commands.declare"]  # under TYPE_CHECKING
    # Inside a package, `from fleetcore.safety import normalise` needs the submodule only;
    # `from fleetcore.safety import Verdict` needs the package's namespace.
    assert "fleetcore.safety.normalise" in GRAPH.edges["fleetcore.safety.detector"]
    assert "fleetcore.safety" not in GRAPH.edges["fleetcore.safety.detector"]
    assert "fleetcore.safety" in GRAPH.edges["fleetcore.safety.protocol"]
    # Importing a stage runs its package's __init__: an edge from outside the package.
    assert "bot.pipeline" in GRAPH.edges["bot.matrix.client"]


def test_no_import_cycle() -> None:
    found = cycles(GRAPH)
    assert not found, "\n\n".join(describe_cycle(GRAPH, c) for c in found)


def test_bot_and_agents_never_meet_and_fleetcore_stays_below() -> None:
    assert lane_violations(GRAPH) == []


def test_product_code_never_imports_the_test_doubles() -> None:
    assert GRAPH.test_imports == []


def test_the_rules_catch_what_they_are_for() -> None:
    """The checks themselves, on a made-up graph: a cycle and each forbidden edge."""
    g = Graph(
        edges={
            "bot.a": {"bot.b": "x:1"},
            "bot.b": {"bot.a": "x:2", "agents.w": "x:3"},
            "fleetcore.c": {"fleet.cli": "x:4"},
            "agents.w": {},
            "fleet.cli": {},
        }
    )
    assert cycles(g) == [["bot.a", "bot.b"]]
    assert "bot.a -> bot.b  (x:1)" in describe_cycle(g, ["bot.a", "bot.b"])
    assert len(lane_violations(g)) == 2

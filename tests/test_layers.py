"""The package's import graph: layers a newcomer can see, and no circles.

Every module of ``lingma_mcp`` belongs to one part (by its path, see :func:`part_of`); a
part imports only from itself and the parts :data:`MAY_IMPORT` lists for it. Every import
counts: top-level, inside a function, or only for type checking. Lowest first:

    base        errors, events, redact, the version: used everywhere, import nothing
    process     supervised children, any protocol
    workspace   the workspace host: files, commands, approvals, the change journal
    contract    backend.py: the values and interfaces between the face and the backends
    lingma      the IDE binary's dialect -> the contract's values
    acp         the CLI's Agent Client Protocol -> the contract's values
    config      every flag and its variable (builds the IDE backend's launch options)
    server      the MCP face; of it only server/backends.py names a backend
    cli         the command line
    sim         the simulators, which stand beside the rest and use only the framing

The contract sits below the backends because they build its values; the face above
reads only those. The two backends are siblings: neither imports the other. Outside
``sim/`` the graph has no circle, not even through an import made only for type checking.
The folders a later step adds get their row in :data:`MAY_IMPORT` and :func:`part_of`.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from pathlib import Path

import lingma_mcp

PACKAGE = Path(lingma_mcp.__file__).parent
NAME = "lingma_mcp"

BASE = {"lingma_mcp", "lingma_mcp.errors", "lingma_mcp.events", "lingma_mcp.redact"}

MAY_IMPORT: dict[str, set[str]] = {
    "base": set(),
    "process": {"base"},
    "workspace": {"base"},
    "contract": {"base", "process", "workspace"},
    "lingma": {"base", "process", "workspace", "contract"},
    "acp": {"base", "process", "workspace", "contract"},
    "config": {"base", "workspace", "lingma"},
    "server": {"base", "process", "workspace", "contract", "lingma", "acp", "config"},
    "cli": {"base", "workspace", "config", "server"},
    "sim": set(),
}

# Single modules a part may import beyond its table, each with the reason.
ALSO: dict[str, dict[str, str]] = {
    "sim": {"lingma_mcp.lingma.framing": "it speaks LSP frames with the same codec"},
}

# The face reaches a backend's package only where it chooses one.
CHOOSES_THE_BACKEND = {"lingma_mcp.server.backends"}
BACKENDS = {"lingma", "acp"}


def part_of(module: str) -> str:
    if module in BASE:
        return "base"
    if module == "lingma_mcp.backend":
        return "contract"
    if module == "lingma_mcp.config":
        return "config"
    if module in ("lingma_mcp.cli", "lingma_mcp.__main__"):
        return "cli"
    folder = module.split(".")[1]
    if folder in MAY_IMPORT:
        return folder
    raise AssertionError(f"{module} belongs to no part: add it to test_layers.py")


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def imports_of(module: str, path: Path, known: set[str]) -> Iterator[tuple[str, int]]:
    """Every module of the package that ``module`` imports, with the line."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                origin = ".".join([*base, node.module] if node.module else base)
            else:
                origin = node.module or ""
            # "from . import x" and "from .pkg import mod" name modules too.
            targets = [f"{origin}.{alias.name}" for alias in node.names]
            targets = [t if t in known else origin for t in targets]
        else:
            continue
        for target in targets:
            if target == NAME or target.startswith(NAME + "."):
                while target not in known:  # a name inside a module: that module
                    target = target.rpartition(".")[0]
                if target != module:
                    yield target, node.lineno


@functools.cache
def graph() -> dict[str, dict[str, int]]:
    found = modules()
    known = set(found)
    return {m: dict(imports_of(m, path, known)) for m, path in found.items()}


Graph = dict[str, dict[str, int]]  # module -> the modules it imports, with the line


def breaches(imports: Graph) -> list[str]:
    """Imports that climb a layer, or leave for a part the table does not list."""
    wrong = []
    for module, targets in imports.items():
        mine = part_of(module)
        for target, line in targets.items():
            theirs = part_of(target)
            allowed = theirs == mine or theirs in MAY_IMPORT[mine]
            if not allowed and target not in ALSO.get(mine, {}):
                wrong.append(f"{module}:{line} ({mine}) imports {target} ({theirs})")
    return wrong


def crossings(imports: Graph) -> list[str]:
    """Imports from one backend into the other."""
    return [
        f"{module}:{line} imports {target}"
        for module, targets in imports.items()
        for target, line in targets.items()
        if {part_of(module), part_of(target)} == BACKENDS
    ]


def backends_named_by_the_face(imports: Graph) -> list[str]:
    return [
        f"{module}:{line} imports {target}"
        for module, targets in imports.items()
        if part_of(module) == "server" and module not in CHOOSES_THE_BACKEND
        for target, line in targets.items()
        if part_of(target) in BACKENDS
    ]


def circles(imports: Graph) -> list[set[str]]:
    """Modules that import each other, directly or round a longer loop (``sim/`` aside)."""
    edges = {
        module: [t for t in targets if part_of(t) != "sim"]
        for module, targets in imports.items()
        if part_of(module) != "sim"
    }
    return [c for c in strongly_connected(edges) if len(c) > 1]


def test_every_import_goes_down_a_layer_or_stays_in_its_part() -> None:
    assert breaches(graph()) == [], "\n".join(breaches(graph()))


def test_the_two_backends_never_import_each_other() -> None:
    assert crossings(graph()) == []


def test_of_the_face_only_the_backend_choice_names_a_backend() -> None:
    named = backends_named_by_the_face(graph())
    assert named == [], "\n".join(named)


def test_no_circle_outside_the_simulator() -> None:
    found = circles(graph())
    assert found == [], "\n".join(" <-> ".join(sorted(c)) for c in found)


def strongly_connected(edges: dict[str, list[str]]) -> list[set[str]]:
    """Tarjan's components, iteratively (the graph is small, recursion would do as well)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(edges[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(edges.get(child, []))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                components.append(component)
    return components


# -- the checker itself ---------------------------------------------------------------------


def test_each_kind_of_wrong_import_is_caught() -> None:
    imports: Graph = {
        "lingma_mcp.lingma.client": {"lingma_mcp.server.bridge": 3},  # climbs
        "lingma_mcp.acp.backend": {"lingma_mcp.lingma.auth": 7},  # crosses
        "lingma_mcp.lingma.auth": {},
        "lingma_mcp.server.views": {"lingma_mcp.lingma.auth": 9},  # the face names a backend
        "lingma_mcp.server.bridge": {"lingma_mcp.server.agent": 1},
        "lingma_mcp.server.agent": {"lingma_mcp.server.bridge": 2},  # a circle
        "lingma_mcp.sim.chat": {"lingma_mcp.sim.agent": 1},
        "lingma_mcp.sim.agent": {"lingma_mcp.sim.chat": 1},  # a circle the simulator may have
    }
    assert breaches(imports) == [
        "lingma_mcp.lingma.client:3 (lingma) imports lingma_mcp.server.bridge (server)",
        "lingma_mcp.acp.backend:7 (acp) imports lingma_mcp.lingma.auth (lingma)",
    ]
    assert crossings(imports) == ["lingma_mcp.acp.backend:7 imports lingma_mcp.lingma.auth"]
    assert backends_named_by_the_face(imports) == [
        "lingma_mcp.server.views:9 imports lingma_mcp.lingma.auth"
    ]
    assert circles(imports) == [{"lingma_mcp.server.bridge", "lingma_mcp.server.agent"}]


def test_relative_and_absolute_imports_name_the_same_modules() -> None:
    found = graph()
    assert "lingma_mcp.backend" in found["lingma_mcp.lingma.client"]  # from ..backend import
    assert "lingma_mcp.lingma.framing" in found["lingma_mcp.sim.connection"]  # absolute
    assert "lingma_mcp.sim.methods" in found["lingma_mcp.sim.connection"]  # from pkg import mod

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
    asking      the asking service, knowing no MCP; of it only asking/backend_choice.py
                names a backend
    server      the MCP face, the one part that imports the MCP SDK
    cli         the command line, on top
    sim         the simulators, which stand beside the rest and use only the framing

The contract sits below the backends because they build its values; the asking service
and the face above read only those. The two backends are siblings: neither imports the
other. Outside ``sim/`` the graph has no circle, not even through an import made only for
type checking. The MCP SDK is imported by the face and by the demo (which drives a real
server as a host would), and the command line's own commands start without it.
"""

from __future__ import annotations

import ast
import functools
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

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
    "asking": {"base", "workspace", "contract", "lingma", "acp", "config"},
    "server": {"base", "workspace", "contract", "config", "asking"},
    "cli": {"base", "workspace", "contract", "config", "asking", "server"},
    "sim": set(),
}

# Single modules a part may import beyond its table, each with the reason.
ALSO: dict[str, dict[str, str]] = {
    "sim": {"lingma_mcp.lingma.framing": "it speaks LSP frames with the same codec"},
}

# Above the backends, a backend's package is reached only where one is chosen.
CHOOSES_THE_BACKEND = {"lingma_mcp.asking.backend_choice"}
BACKENDS = {"lingma", "acp"}
ABOVE_THE_BACKENDS = {"asking", "server", "cli"}

# The MCP SDK's packages, and the modules that may import them: the face, and the demo,
# which drives a real stdio server through the SDK's client as a host would.
MCP_SDK = {"mcp", "mcp_types"}
MAY_IMPORT_THE_SDK = {"server"}
ALSO_THE_SDK = {"lingma_mcp.cli.demo", "lingma_mcp.cli.demo_cli_backend"}


def part_of(module: str) -> str:
    if module in BASE:
        return "base"
    if module == "lingma_mcp.backend":
        return "contract"
    if module == "lingma_mcp.config":
        return "config"
    if module == "lingma_mcp.__main__":
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


def backends_named_above_them(imports: Graph) -> list[str]:
    """Imports of a backend's package from above the backends, but for the one choice."""
    return [
        f"{module}:{line} imports {target}"
        for module, targets in imports.items()
        if part_of(module) in ABOVE_THE_BACKENDS and module not in CHOOSES_THE_BACKEND
        for target, line in targets.items()
        if part_of(target) in BACKENDS
    ]


def sdk_imports_of(path: Path) -> dict[str, int]:
    """The MCP SDK's modules that the module at ``path`` imports, with the line."""
    found = {}
    for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level:
            names = [node.module or ""]
        else:
            continue
        for name in names:
            if name.split(".")[0] in MCP_SDK:
                found[name] = node.lineno
    return found


def sdk_outside_the_face(sdk_imports: Graph) -> list[str]:
    return [
        f"{module}:{line} imports {target}"
        for module, targets in sdk_imports.items()
        if part_of(module) not in MAY_IMPORT_THE_SDK and module not in ALSO_THE_SDK
        for target, line in targets.items()
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


def test_above_the_backends_only_the_backend_choice_names_one() -> None:
    named = backends_named_above_them(graph())
    assert named == [], "\n".join(named)


def test_only_the_mcp_face_and_the_demo_import_the_mcp_sdk() -> None:
    found = {module: sdk_imports_of(path) for module, path in modules().items()}
    assert any(found[m] for m in found if part_of(m) == "server")  # the check sees imports
    outside = sdk_outside_the_face(found)
    assert outside == [], "\n".join(outside)


# -- what the command line loads ----------------------------------------------------------

# Run one after another in one process (one start instead of six); after each, its exit
# code and the SDK modules loaded so far, so the first command that loads one is the culprit.
SDK_LOADED_AFTER = """
import json, sys
from lingma_mcp.cli.main import main
commands, report = json.loads(sys.argv[1]), sys.argv[2]
loaded = {}
for argv in commands:
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    sdk = sorted(m for m in sys.modules if m.partition(".")[0] in ("mcp", "mcp_types"))
    loaded[" ".join(argv)] = (code, sdk)
with open(report, "w") as out:
    json.dump(loaded, out)
"""

# The commands that serve no MCP: help and version, and a whole doctor and terminal ask
# against the simulator (which import everything they use on the way). The demo and
# serving import the SDK, as they must; nothing listed here does.
WITHOUT_THE_SDK = ["--version", "--help", "ask --help", "doctor --help", "doctor", "ask"]


@pytest.fixture(scope="module")
def sdk_loaded_after(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Any]]:
    tmp = tmp_path_factory.mktemp("no-sdk")
    simulated = ["--simulate", "--work-dir", str(tmp / "work"), "--workspace", str(tmp)]
    argv = {command: command.split() for command in WITHOUT_THE_SDK}
    argv["doctor"] = [*simulated, "doctor"]
    argv["ask"] = [*simulated, "ask", "say hello"]
    report = tmp / "loaded.json"
    subprocess.run(
        [sys.executable, "-c", SDK_LOADED_AFTER, json.dumps(list(argv.values())), str(report)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=90,
        check=False,
    )
    loaded = json.loads(report.read_text())
    return {command: loaded[" ".join(args)] for command, args in argv.items()}


@pytest.mark.parametrize("command", WITHOUT_THE_SDK)
def test_the_command_line_runs_without_the_mcp_sdk(
    command: str, sdk_loaded_after: dict[str, list[Any]]
) -> None:
    code, sdk = sdk_loaded_after[command]
    assert code in (0, None)  # it ran to its end: whatever it needed was loaded
    assert sdk == []


def test_serving_loads_the_mcp_sdk_so_the_check_can_see_it() -> None:
    code = "import sys; import lingma_mcp.server.app; print('mcp' in sys.modules)"
    shown = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert shown.stdout.strip() == "True"


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
        "lingma_mcp.lingma.ide_client": {"lingma_mcp.asking.bridge": 3},  # climbs
        "lingma_mcp.asking.ask": {"lingma_mcp.server.progress": 4},  # climbs to the face
        "lingma_mcp.acp.cli_backend": {"lingma_mcp.lingma.auth": 7},  # crosses
        "lingma_mcp.lingma.auth": {},
        "lingma_mcp.asking.views": {"lingma_mcp.lingma.auth": 9},  # names a backend
        "lingma_mcp.asking.bridge": {"lingma_mcp.acp.cli_backend": 5},  # so does the service
        "lingma_mcp.asking.backend_choice": {"lingma_mcp.acp.cli_backend": 6},  # chooses
        "lingma_mcp.asking.agent_calls": {"lingma_mcp.asking.ask": 1},
        "lingma_mcp.server.progress": {"lingma_mcp.asking.agent_calls": 2},  # a circle
        "lingma_mcp.sim.chat": {"lingma_mcp.sim.agent_mode": 1},
        "lingma_mcp.sim.agent_mode": {"lingma_mcp.sim.chat": 1},  # one the simulator may have
    }
    assert breaches(imports) == [
        "lingma_mcp.lingma.ide_client:3 (lingma) imports lingma_mcp.asking.bridge (asking)",
        "lingma_mcp.asking.ask:4 (asking) imports lingma_mcp.server.progress (server)",
        "lingma_mcp.acp.cli_backend:7 (acp) imports lingma_mcp.lingma.auth (lingma)",
    ]
    assert crossings(imports) == ["lingma_mcp.acp.cli_backend:7 imports lingma_mcp.lingma.auth"]
    assert backends_named_above_them(imports) == [
        "lingma_mcp.asking.views:9 imports lingma_mcp.lingma.auth",
        "lingma_mcp.asking.bridge:5 imports lingma_mcp.acp.cli_backend",
    ]
    assert circles(imports) == [
        {"lingma_mcp.asking.ask", "lingma_mcp.asking.agent_calls", "lingma_mcp.server.progress"}
    ]


def test_sdk_imports_outside_the_face_are_caught() -> None:
    sdk_imports: Graph = {
        "lingma_mcp.server.app": {"mcp.server.mcpserver": 13},
        "lingma_mcp.cli.demo": {"mcp": 21},
        "lingma_mcp.asking.agent_calls": {"mcp.server.mcpserver": 27},
        "lingma_mcp.cli.doctor": {"mcp_types": 5},
    }
    assert sdk_outside_the_face(sdk_imports) == [
        "lingma_mcp.asking.agent_calls:27 imports mcp.server.mcpserver",
        "lingma_mcp.cli.doctor:5 imports mcp_types",
    ]


def test_relative_and_absolute_imports_name_the_same_modules() -> None:
    found = graph()
    assert "lingma_mcp.backend" in found["lingma_mcp.lingma.ide_client"]  # from ..backend
    assert "lingma_mcp.lingma.framing" in found["lingma_mcp.sim.connection"]  # absolute
    assert "lingma_mcp.sim.methods" in found["lingma_mcp.sim.connection"]  # from pkg import mod

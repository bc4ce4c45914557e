"""Finding the official Lingma CLI (``qoderclicn``, or the international ``qodercli``).

Order: ``--cli-bin`` / ``LINGMA_CLI_BIN`` if given (a path, or a name looked up on PATH);
else ``qoderclicn`` on PATH, then ``qodercli``; else the npm global bin folder, which is
often not on the PATH an MCP host starts servers with. That folder is found without
running npm where possible (``NPM_CONFIG_PREFIX``, the npmrc ``prefix``, the usual
prefixes); only then is ``npm prefix -g`` asked, with a short bound.

The CLI is a Node script (``#!/usr/bin/env node``), so it also needs ``node`` on the PATH
it runs with, which a host started from a desktop (or nvm, which adds node only in shells)
often lacks: :func:`node_path` finds a node beside the CLI or in the usual folders, or
raises :class:`NodeMissing` with the fix, instead of ``/usr/bin/env: 'node': No such file``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from lingma_mcp.errors import LingmaNotFound, LingmaStartupError

CLI_NAMES = ("qoderclicn", "qodercli")
INSTALL_HINT = (
    "Install the Lingma CLI with `npm install -g @qodercn-ai/qoderclicn` (Node 20 or newer), "
    "or point --cli-bin (LINGMA_CLI_BIN) at it."
)
NPM_TIMEOUT_S = 5.0


class CliNotFound(LingmaNotFound):
    """No Lingma CLI in any place looked; the text names each place and the install."""

    def __init__(self, places: list[str]) -> None:
        super().__init__(places)
        where = "; ".join(places) if places else "nowhere"
        self.instructions = f"The Lingma CLI was not found. Looked in: {where}. {INSTALL_HINT}"
        self.args = (self.instructions,)


class NodeMissing(LingmaStartupError):
    """The CLI is a Node script and no ``node`` is on the PATH it would run with."""

    def __init__(self, cli: str, path_env: str) -> None:
        self.instructions = (
            f"The Lingma CLI ({cli}) is a Node program, and `node` is not on the PATH "
            f"lingma-mcp runs with (PATH={path_env or '(empty)'}). An MCP host started from "
            "the desktop gets a shorter PATH than a terminal, and nvm puts node on the PATH "
            "only in shells. Give the server node's folder: in the host's MCP config, add "
            '"env": {"PATH": "<node\'s folder>:/usr/local/bin:/usr/bin:/bin"} to the '
            'lingma-mcp entry, with the folder `dirname "$(command -v node)"` prints in a '
            "terminal; or point --cli-bin (LINGMA_CLI_BIN) at the qoderclicn in node's own "
            "folder (with nvm: ~/.nvm/versions/node/<version>/bin/qoderclicn), which is run "
            "with the node beside it. Then run `lingma-mcp doctor` from that config to check."
        )
        super().__init__(self.instructions, waited_for="node to be found")


@dataclass(frozen=True)
class CliCommand:
    """How to start the CLI: ``argv`` (``--acp`` is added by the caller) and its origin."""

    argv: tuple[str, ...]
    source: str  # --cli-bin, PATH, npm global bin, simulator
    cwd: Path | None = None


def _runnable(path: Path) -> bool:
    return path.is_file() and (sys.platform == "win32" or os.access(path, os.X_OK))


def _on_path(name: str, path_env: str | None) -> Path | None:
    found = shutil.which(name, path=path_env)
    return Path(found) if found else None


def _npmrc_prefix(home: Path) -> str | None:
    try:
        lines = (home / ".npmrc").read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    for line in lines:
        key, _, value = line.partition("=")
        if key.strip() == "prefix" and value.strip():
            return os.path.expanduser(value.strip())
    return None


def npm_prefixes(env: Mapping[str, str], home: Path) -> list[Path]:
    """npm global prefixes worth looking in, cheapest first, without running npm."""
    found: list[str] = []
    for raw in (env.get("NPM_CONFIG_PREFIX"), env.get("npm_config_prefix"), _npmrc_prefix(home)):
        if raw:
            found.append(raw)
    found += [str(home / ".npm-global"), str(home / ".local"), "/usr/local", "/opt/homebrew"]
    return [Path(p) for p in dict.fromkeys(found)]


def _bin_dir(prefix: Path) -> Path:
    return prefix if sys.platform == "win32" else prefix / "bin"


def _npm_prefix_from_npm(path_env: str | None) -> Path | None:
    npm = shutil.which("npm", path=path_env)
    if npm is None:
        return None
    try:
        done = subprocess.run(
            [npm, "prefix", "-g"],
            capture_output=True,
            text=True,
            timeout=NPM_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    out = done.stdout.strip()
    return Path(out) if done.returncode == 0 and out else None


def find_cli(
    explicit: str | None = None,
    *,
    env: Mapping[str, str] | None = None,
    home: Path | None = None,
    run_npm: bool = True,
) -> CliCommand:
    """The CLI to start, or :class:`CliNotFound` naming every place looked.

    Args:
        explicit: ``--cli-bin``: a path, or a program name looked up on PATH.
        env, home: the environment (``PATH``, ``NPM_CONFIG_PREFIX``) and home folder;
            the real ones by default (tests inject).
        run_npm: ask ``npm prefix -g`` (bounded) when nothing else found it.
    """
    env = os.environ if env is None else env
    home = Path.home() if home is None else home
    path_env = env.get("PATH", "")
    places: list[str] = []
    if explicit:
        candidate = Path(explicit).expanduser()
        if _runnable(candidate):
            return CliCommand((str(candidate),), "--cli-bin")
        if os.sep not in explicit:
            on_path = _on_path(explicit, path_env)
            if on_path is not None:
                return CliCommand((str(on_path),), "--cli-bin (on PATH)")
        raise CliNotFound([f"{explicit} (--cli-bin / LINGMA_CLI_BIN; missing or not runnable)"])
    for name in CLI_NAMES:
        on_path = _on_path(name, path_env)
        if on_path is not None:
            return CliCommand((str(on_path),), "PATH")
        places.append(f"{name} on PATH")
    prefixes: Sequence[Path] = npm_prefixes(env, home)
    for prefix in prefixes:
        for name in CLI_NAMES:
            candidate = _bin_dir(prefix) / name
            if _runnable(candidate):
                return CliCommand((str(candidate),), "npm global bin")
    places.append("npm global bin in " + ", ".join(str(_bin_dir(p)) for p in prefixes))
    if run_npm:
        prefix = _npm_prefix_from_npm(path_env)
        if prefix is not None and prefix not in prefixes:
            for name in CLI_NAMES:
                candidate = _bin_dir(prefix) / name
                if _runnable(candidate):
                    return CliCommand((str(candidate),), "npm global bin")
            places.append(f"{_bin_dir(prefix)} (npm prefix -g)")
    raise CliNotFound(places)


def _runs_node_from_path(program: Path) -> bool:
    """Whether ``program`` is a script whose first line asks ``env`` for ``node``."""
    try:
        with open(program, "rb") as fh:
            first = fh.readline(256)
    except OSError:
        return False
    if not first.startswith(b"#!"):
        return False
    words = first[2:].decode("utf-8", "replace").split()
    if not words or os.path.basename(words[0]) != "env":
        return False
    rest = [w for w in words[1:] if not w.startswith("-")]
    return bool(rest) and os.path.basename(rest[0]) == "node"


def node_path(
    program: str | Path, env: Mapping[str, str], *, home: Path | None = None
) -> str | None:
    """The PATH to run ``program`` with when the one in ``env`` lacks the node it needs.

    ``None``: nothing to change (not a Node script run through ``env``, node is on the
    PATH, or Windows, where npm writes launchers that name node themselves). Else the PATH
    with the folder of a node found beside the program, or in an npm global prefix's bin
    folder, put first.

    Raises:
        NodeMissing: it needs node and none was found; the text says how to fix the PATH.
    """
    if sys.platform == "win32":
        return None
    program = Path(program)
    path_env = env.get("PATH", "")
    if not _runs_node_from_path(program) or _on_path("node", path_env) is not None:
        return None
    home = Path.home() if home is None else home
    for folder in (program.parent, *(_bin_dir(p) for p in npm_prefixes(env, home))):
        if _runnable(folder / "node"):
            return os.pathsep.join(p for p in (str(folder), path_env) if p)
    raise NodeMissing(str(program), path_env)

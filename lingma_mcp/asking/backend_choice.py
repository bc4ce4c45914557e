"""Choosing what serves: the IDE plugin's Lingma binary or the official Lingma CLI.

``--backend ide`` and ``--backend cli`` are taken at their word. ``auto`` (the default)
prefers the IDE binary when one is found (or named: ``--lingma-bin``, ``--lingma-port``),
else the CLI when one is found; with neither it stays with the IDE backend, whose error
says where it looked (``doctor`` names the fix for both). ``--simulate`` runs the IDE
simulator, or the ACP simulator with ``--backend cli``, each started as its program is.

The face receives a :class:`~lingma_mcp.backend.Backend` and never asks which one: this
module is the only one of the face that names either backend's package.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..acp.cli_backend import CliBackend, CliLaunch, CliOptions
from ..acp.cli_discovery import CliCommand, find_cli, node_path
from ..acp.credentials import INHERITED_WARNING, credential_in
from ..backend import Backend, BackendKind
from ..config import Settings, _package_parent
from ..errors import LingmaNotFound

if TYPE_CHECKING:
    from ..lingma.binary_discovery import LingmaCommand

log = logging.getLogger(__name__)

SIM_STATE_ENV = "LINGMA_SIM_ACP_STATE_DIR"
SIM_LOG_ENV = "LINGMA_SIM_ACP_LOG"


@dataclass(frozen=True)
class Choice:
    """Which backend serves, and why (shown by ``doctor`` and logged at start)."""

    kind: BackendKind
    reason: str


def acp_simulator_command() -> tuple[str, ...]:
    """The bundled ACP simulator, run as the CLI is (``--acp`` is added)."""
    return (sys.executable, "-m", "lingma_mcp.sim", "acp")


def choose(settings: Settings, *, find_ide: bool = True, run_npm: bool = True) -> Choice:
    """The backend ``settings`` ask for, looking for the programs only under ``auto``."""
    requested = (settings.backend or "auto").lower()
    if requested == "ide":
        return Choice("ide", "--backend ide")
    if requested == "cli":
        return Choice("cli", "--backend cli")
    if settings.simulate:
        return Choice("ide", "--simulate without --backend cli runs the IDE simulator")
    if settings.lingma_port:
        return Choice("ide", "--lingma-port attaches to a running Lingma")
    if settings.lingma_bin:
        return Choice("ide", "--lingma-bin names the IDE binary")
    if find_ide:
        try:
            found = find_ide_for(settings)
            return Choice("ide", f"the IDE plugin's Lingma binary was found ({found.argv[0]})")
        except LingmaNotFound:
            pass
    try:
        cli = find_cli(settings.cli_bin, run_npm=run_npm)
    except LingmaNotFound:
        return Choice("ide", "neither the IDE plugin's Lingma binary nor the Lingma CLI was found")
    return Choice("cli", f"no IDE plugin binary; the Lingma CLI was found ({cli.argv[0]})")


def cli_options(settings: Settings) -> CliOptions:
    """What the CLI backend needs; ``--simulate`` becomes the ACP simulator's command."""
    work_dir = settings.resolved_work_dir
    env: dict[str, str] | None = None
    if settings.simulate:
        # The simulator keeps its conversations beside the IDE simulator's state, so a
        # restarted server continues them (session/load), and never in the real CLI's.
        env = dict(os.environ)
        env.setdefault(SIM_STATE_ENV, str(work_dir / "acp"))
    # The simulator's own state, and the log of what it received where a test asks for one.
    sim_state = []
    if env is not None:
        sim_state.append(Path(env[SIM_STATE_ENV]))
        if env.get(SIM_LOG_ENV):
            sim_state.append(Path(env[SIM_LOG_ENV]).parent)
    launch, per_workspace = cli_launch(
        settings, env if env is not None else os.environ, tuple(sim_state)
    )
    return CliOptions(
        workspace=settings.workspace,
        cli_bin=settings.cli_bin,
        command=acp_simulator_command() if settings.simulate else None,
        command_source="simulator" if settings.simulate else "command line",
        command_cwd=_package_parent() if settings.simulate else _cwd(settings.workspace),
        env=env,
        work_dir=Path(env[SIM_STATE_ENV]) if env else None,
        startup_timeout=settings.startup_timeout,
        control_timeout=settings.control_timeout,
        session_timeout=settings.cli_session_timeout,
        launch=launch,
        per_workspace=per_workspace,
    )


def cli_launch(
    settings: Settings, env: Mapping[str, str], sim_state: tuple[Path, ...] = ()
) -> tuple[Callable[[Path | None], CliLaunch] | None, bool]:
    """How the CLI is started under the OS sandbox, and whether each workspace needs a
    process of its own; ``(None, False)`` where it runs unconfined (``--sandbox off``, or
    no sandbox on this machine: ``auth_status`` and ``doctor`` say so).

    The CLI may write its own state folders (and the simulator its state), a private
    temporary folder, and, in ``workspace-write`` mode, the one workspace of an agent-mode
    chat; never the work dir, never a workspace's ``.git``. Its network stays on.
    """
    from ..workspace.sandbox import cli_spec, cli_state_dirs, wrap

    mode = settings.sandbox_mode
    if mode == "off" or not settings.sandbox_enforced:
        return None, False
    state = (*cli_state_dirs(env), *sim_state)
    work_dir = settings.resolved_work_dir

    def launch(workspace: Path | None) -> CliLaunch:
        # Made for each start; the process's own TMPDIR, removed when the server exits.
        tmp = Path(tempfile.mkdtemp(prefix="lingma-cli-"))
        atexit.register(shutil.rmtree, tmp, ignore_errors=True)
        spec = cli_spec(
            workspace if mode == "workspace-write" else None,
            state,
            mode,  # type: ignore[arg-type]
            # The records of changes stay out of reach even where a writable folder holds
            # them (the simulator keeps its state in the work dir).
            protected=(work_dir / "checkpoints", work_dir / "changes"),
            tmpdir=tmp,
        )
        return CliLaunch(wrap=lambda argv: wrap(argv, spec), env={"TMPDIR": str(tmp)})

    return launch, mode == "workspace-write"


def _cwd(workspace: Path) -> Path | None:
    return workspace if workspace.is_dir() else None


def find_cli_for(settings: Settings) -> CliCommand:
    """The CLI ``settings`` would start (the simulator's command under ``--simulate``)."""
    return cli_options(settings).find()


def find_ide_for(settings: Settings) -> LingmaCommand:
    """The IDE binary ``settings`` would start (the simulator's command under
    ``--simulate``): its ``argv`` and the ``source`` that found it.

    Raises:
        LingmaNotFound: no binary in any of the places looked (the error names them).
    """
    from ..lingma.binary_discovery import find_lingma  # not imported where the CLI serves

    return find_lingma(settings.launch_options())


def make_backend(settings: Settings) -> Backend:
    """The backend that serves, per ``--backend`` (see :func:`choose`)."""
    # Made while the server starts, before it answers initialize: no program is run to
    # decide (npm's global prefix is read from its config and the usual places instead).
    choice = choose(settings, run_npm=False)
    log.info("backend: %s (%s)", choice.kind, choice.reason)
    if choice.kind == "cli":
        return CliBackend(cli_options(settings))
    from ..lingma.supervisor import LingmaSupervisor

    return LingmaSupervisor(settings)


def node_beside(command: CliCommand) -> str | None:
    """The PATH to run a Node script with when ``node`` is not on ours (doctor says so)."""
    return node_path(command.argv[0], os.environ)


def cli_credential() -> tuple[str, str | None]:
    """The credential the CLI started from this environment logs in with (named, never its
    value), and what a person should know about it: a token in the environment is
    inherited by the commands the CLI runs itself."""
    credential = credential_in(os.environ)
    return str(credential), INHERITED_WARNING if credential.token else None

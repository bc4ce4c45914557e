"""Settings of the command line and the MCP face, and the narrower options the core takes.

Every option has a flag and an environment variable (the names are a contract: users' MCP
configs set them). Flags win over the environment, the environment over the defaults.
The Lingma side never sees these: it takes :class:`LaunchOptions` built by
:meth:`Settings.launch_options`, where ``--simulate`` becomes a command like any binary's.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .lingma.launch_options import LaunchOptions

Mode = Literal["chat", "agent"]
MODES: tuple[str, ...] = ("chat", "agent")

DEFAULT_STARTUP_TIMEOUT = 60.0
DEFAULT_REQUEST_TIMEOUT = 300.0
# Control calls (auth/status, config/queryModels, ...) answer in milliseconds when Lingma is
# healthy; waiting the whole chat timeout for one would only hide a hang.
CONTROL_CALL_TIMEOUT = 30.0
# The longest prompt sent to Lingma; a longer one is refused before asking (a frame that
# large drops the connection and fails every concurrent question).
DEFAULT_MAX_PROMPT_CHARS = 1_000_000
# Agent mode: a command Lingma runs is killed (its whole process group) after this long.
DEFAULT_COMMAND_TIMEOUT = 300.0
# The longest silence on a call's progress before a keepalive goes out (server/progress.py).
DEFAULT_KEEPALIVE_S = 10.0
# Agent mode: files larger than this are listed when a call changes them, but their
# contents are not kept in the checkpoints (so they are not shown as a diff nor reverted).
DEFAULT_CHECKPOINT_MAX_FILE_MB = 10.0
# The CLI's session/new scans the workspace first: 30 s was seen in a large repository,
# so it gets a bound of its own, longer than a control call's.
DEFAULT_CLI_SESSION_TIMEOUT = 90.0
# Agent mode: how long an approval question waits for the person before the approval
# setting decides (deny). A person reading a diff needs minutes, and a background job's
# question waits for the next check_lingma_job; but Lingma's tool call is held open all that
# time. Five minutes matches the default request timeout and stays inside the ten minutes a
# 2026-07-28 request_state lives by default.
DEFAULT_APPROVAL_TIMEOUT = 300.0
# --sandbox: the same as workspace.sandbox.MODES (a test keeps them equal), spelt out here so
# that reading the settings does not load the workspace host.
SANDBOX_MODES: tuple[str, ...] = ("workspace-write", "read-only", "off")


def _state_dir() -> Path:
    home = Path.home()
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA") or home / "AppData" / "Local")
    if sys.platform == "darwin":
        return home / "Library" / "Application Support"
    return Path(os.environ.get("XDG_STATE_HOME") or home / ".local" / "state")


# Answers longer than this come back cut, the whole behind lingma://answers/{request_id}.
DEFAULT_MAX_RESULT_CHARS = 40000
MIN_MAX_RESULT_CHARS = 1000


def absolute_path(raw: str | Path) -> Path:
    """``raw`` (``~`` expanded) made absolute against the folder we started in, without
    following links. Path options are resolved once, at start: Lingma and the simulator run
    in other folders, where a relative path would name somewhere else."""
    return Path(os.path.abspath(Path(raw).expanduser()))


def absolute_program(raw: str) -> str:
    """A program option: a path made absolute (:func:`absolute_path`); a bare name (no
    folder in it) is left as it is, to be looked up on PATH."""
    names_a_folder = raw.startswith(("~", ".")) or any(
        sep and sep in raw for sep in (os.sep, os.altsep)
    )
    return str(absolute_path(raw)) if names_a_folder else raw


def default_work_dir() -> Path:
    """A per-user state folder for Lingma's --workDir and its .info file."""
    return _state_dir() / "lingma-mcp"


def default_simulator_work_dir() -> Path:
    """The simulator's own work dir: it never shares the real Lingma's."""
    return _state_dir() / "lingma-mcp" / "simulator"


def simulator_command() -> tuple[str, ...]:
    """The bundled simulator, run exactly like the binary (``<argv> start --workDir X``)."""
    return (sys.executable, "-m", "lingma_mcp.sim")


def _package_parent() -> Path:
    # `-m lingma_mcp.sim` run from here resolves to this very package even when it is not
    # installed.
    return Path(__file__).resolve().parents[1]


@dataclass
class Settings:
    """Everything the bridge needs to find, start and talk to Lingma."""

    lingma_bin: str | None = None  # --lingma-bin / LINGMA_BIN
    lingma_port: int | None = None  # --lingma-port / LINGMA_PORT (attach mode)
    # --work-dir / LINGMA_WORK_DIR; None: default_work_dir(), or the simulator's own folder
    work_dir: Path | None = None
    workspace: Path = field(default_factory=Path.cwd)  # --workspace / LINGMA_WORKSPACE
    # True when the workspace was named (flag or variable), not the folder we started in.
    workspace_explicit: bool = False
    model: str | None = None  # --model / LINGMA_MODEL
    # --reasoning-effort / LINGMA_REASONING_EFFORT: a value the CLI offers (its own list),
    # used where the session's model has effort levels and skipped where it has none.
    reasoning_effort: str | None = None
    mode: Mode = "chat"  # --mode / LINGMA_MODE
    startup_timeout: float = DEFAULT_STARTUP_TIMEOUT  # --startup-timeout
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT  # --request-timeout
    log_level: str = "WARNING"  # --log-level / LINGMA_MCP_LOG_LEVEL
    simulate: bool = False  # --simulate: run against the bundled simulator
    max_prompt_chars: int = DEFAULT_MAX_PROMPT_CHARS  # --max-prompt-chars
    # --detach-after / LINGMA_DETACH_AFTER: seconds before a foreground ask returns and
    # continues as a job; None: chosen per host (server/job_tools.py); 0: never.
    detach_after: float | None = None
    max_result_chars: int = DEFAULT_MAX_RESULT_CHARS  # --max-result-chars
    # --approval / LINGMA_APPROVAL: class=decision pairs over the default policy (agent mode).
    approval: str | None = None
    command_timeout: float = DEFAULT_COMMAND_TIMEOUT  # --command-timeout
    approval_timeout: float = DEFAULT_APPROVAL_TIMEOUT  # --approval-timeout
    checkpoint_max_file_mb: float = DEFAULT_CHECKPOINT_MAX_FILE_MB  # --checkpoint-max-file-mb
    cli_session_timeout: float = DEFAULT_CLI_SESSION_TIMEOUT  # --cli-session-timeout
    # --backend / LINGMA_BACKEND: auto | ide | cli (chosen in asking/backend_choice.py).
    backend: str = "auto"
    cli_bin: str | None = None  # --cli-bin / LINGMA_CLI_BIN: the Lingma CLI (qoderclicn)
    # --sandbox / LINGMA_SANDBOX: what commands (and the CLI process) may write; None: not
    # set, which is workspace-write where this machine can enforce it (sandbox_mode).
    sandbox: str | None = None
    sandbox_network: bool = False  # --sandbox-network on|off / LINGMA_SANDBOX_NETWORK
    # --command-env / LINGMA_COMMAND_ENV: names passed on to commands besides the allowlist
    command_env: tuple[str, ...] = ()
    # Not an option: a seam so tests see keepalives without waiting the default's 10 s.
    keepalive_s: float = DEFAULT_KEEPALIVE_S

    @property
    def control_timeout(self) -> float:
        return min(CONTROL_CALL_TIMEOUT, self.request_timeout)

    @property
    def resolved_work_dir(self) -> Path:
        if self.work_dir is not None:
            return self.work_dir
        return default_simulator_work_dir() if self.simulate else default_work_dir()

    @property
    def sandbox_mode(self) -> str:
        """The sandbox mode in force: as set, else ``workspace-write`` where this machine
        can enforce it and ``off`` where it cannot (see :meth:`effective_approval`)."""
        if self.sandbox is not None:
            return self.sandbox
        from .workspace.sandbox import default_mode

        return default_mode()

    @property
    def sandbox_enforced(self) -> bool:
        """Whether commands run confined (probes the machine once)."""
        from .workspace.sandbox import support

        return self.sandbox_mode != "off" and support().available

    def sandbox_report(self) -> dict[str, Any]:
        """``auth_status.bridge.sandbox`` and ``doctor``: what is enforced, and what not."""
        from .workspace.sandbox import report

        return report(self.sandbox_mode, self.sandbox_network)

    def _run_denied_for_want_of_a_sandbox(self) -> bool:
        if self.sandbox == "off" or self.sandbox_enforced:
            return False  # confined, or the person accepted unconfined commands
        named = (
            piece.partition("=")[0].strip().lower() for piece in (self.approval or "").split(",")
        )
        return "run" not in named  # an explicit run= is the person's own choice

    def effective_approval(self) -> str | None:
        """The approval setting the policy is built from.

        Where no sandbox can be enforced, ``run`` defaults to ``deny``: writes made by
        commands could not be prevented. Not when the person set ``run=`` themselves, or
        accepted unconfined commands with ``--sandbox off``.
        """
        if not self._run_denied_for_want_of_a_sandbox():
            return self.approval
        if self.approval and self.approval.strip():
            return f"{self.approval},run=deny"
        return "run=deny"

    def run_refusal_note(self) -> str | None:
        """What a refused command's message adds when ``run=deny`` came from the missing
        sandbox (``None`` otherwise)."""
        if not self._run_denied_for_want_of_a_sandbox():
            return None
        from .workspace.sandbox import support

        why = support().reason or f"the {self.sandbox_mode} sandbox cannot be enforced here"
        return (
            f"No OS sandbox can confine commands on this machine ({why}), so writes made "
            "by commands cannot be prevented and commands are refused. To accept that and "
            "run them unconfined, start lingma-mcp with --sandbox off (LINGMA_SANDBOX=off), "
            "or set run=ask or run=allow in LINGMA_APPROVAL yourself."
        )

    def launch_options(self) -> LaunchOptions:
        """What the Lingma side needs; ``--simulate`` becomes the simulator's command."""
        return LaunchOptions(
            # Absolute: the simulator runs in the package's folder, not ours.
            work_dir=absolute_path(self.resolved_work_dir),
            workspace=self.workspace,
            binary=None if self.simulate else self.lingma_bin,
            command=simulator_command() if self.simulate else None,
            command_source="simulator" if self.simulate else "command line",
            command_cwd=_package_parent() if self.simulate else None,
            port=self.lingma_port,
            startup_timeout=self.startup_timeout,
            control_timeout=self.control_timeout,
        )

"""What the Lingma side needs to start and reach Lingma, and nothing the MCP face decides.

Model, mode and log level belong to the MCP face; the core takes only these. The command
line builds them from its settings (``Settings.launch_options()``); a test or a pool builds
them directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_STARTUP_TIMEOUT = 60.0
DEFAULT_CONTROL_TIMEOUT = 30.0


@dataclass(frozen=True)
class LaunchOptions:
    """How to find, start and reach one Lingma.

    Attributes:
        work_dir: the shared work dir; each server takes its own folder under it.
        workspace: the folder sent in ``initialize``.
        binary: a path to the binary or its folder (``--lingma-bin``); searched when None.
        command: a whole command to run instead of searching (``argv`` before
            ``start --workDir DIR``), e.g. another program that speaks like Lingma.
        command_source: how ``command`` was chosen, shown by ``status().source``.
        command_cwd: the folder ``command`` runs in (default: ours).
        port: attach to a Lingma already on this port: nothing is spawned or killed.
        startup_timeout: one start-up attempt's bound, in seconds.
        control_timeout: the bound on control calls (``initialize``, ``auth/status`` ...).
    """

    work_dir: Path
    workspace: Path = field(default_factory=Path.cwd)
    binary: str | None = None
    command: tuple[str, ...] | None = None
    command_source: str = "command line"
    command_cwd: Path | None = None
    port: int | None = None
    startup_timeout: float = DEFAULT_STARTUP_TIMEOUT
    control_timeout: float = DEFAULT_CONTROL_TIMEOUT

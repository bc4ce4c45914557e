"""Settings shared by the command line, the supervisor and the MCP face.

Every option has a flag and an environment variable (the names are a contract: users' MCP
configs set them). Flags win over the environment, the environment over the defaults.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Mode = Literal["chat", "agent"]
MODES: tuple[str, ...] = ("chat", "agent")

DEFAULT_STARTUP_TIMEOUT = 60.0
DEFAULT_REQUEST_TIMEOUT = 300.0
# Control calls (auth/status, config/queryModels, ...) answer in milliseconds when Lingma is
# healthy; waiting the whole chat timeout for one would only hide a hang.
CONTROL_CALL_TIMEOUT = 30.0
# Agent mode: a command Lingma runs is killed (its whole process group) after this long.
DEFAULT_COMMAND_TIMEOUT = 300.0


def default_work_dir() -> Path:
    """A per-user state folder for Lingma's --workDir and its .info file."""
    home = Path.home()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or home / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = home / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_STATE_HOME") or home / ".local" / "state")
    return base / "lingma-mcp"


@dataclass
class Settings:
    """Everything the bridge needs to find, start and talk to Lingma."""

    lingma_bin: str | None = None  # --lingma-bin / LINGMA_BIN
    lingma_port: int | None = None  # --lingma-port / LINGMA_PORT (attach mode)
    work_dir: Path = field(default_factory=default_work_dir)  # --work-dir / LINGMA_WORK_DIR
    workspace: Path = field(default_factory=Path.cwd)  # --workspace / LINGMA_WORKSPACE
    model: str | None = None  # --model / LINGMA_MODEL
    mode: Mode = "chat"  # --mode / LINGMA_MODE
    startup_timeout: float = DEFAULT_STARTUP_TIMEOUT  # --startup-timeout
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT  # --request-timeout
    log_level: str = "WARNING"  # --log-level / LINGMA_MCP_LOG_LEVEL
    simulate: bool = False  # --simulate: run against the bundled simulator
    # --approval / LINGMA_APPROVAL: class=decision pairs over the default policy (agent mode).
    approval: str | None = None
    command_timeout: float = DEFAULT_COMMAND_TIMEOUT  # --command-timeout

    @property
    def control_timeout(self) -> float:
        return min(CONTROL_CALL_TIMEOUT, self.request_timeout)

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
# Answers longer than this come back cut, the whole behind lingma://answers/{request_id}.
DEFAULT_MAX_RESULT_CHARS = 40000
MIN_MAX_RESULT_CHARS = 1000


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
    # --detach-after / LINGMA_DETACH_AFTER: seconds before a foreground ask returns and
    # continues as a job; None: chosen per host (server/job_tools.py); 0: never.
    detach_after: float | None = None
    max_result_chars: int = DEFAULT_MAX_RESULT_CHARS  # --max-result-chars

    @property
    def control_timeout(self) -> float:
        return min(CONTROL_CALL_TIMEOUT, self.request_timeout)

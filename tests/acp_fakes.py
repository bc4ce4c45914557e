"""Stand-ins for the workspace host and approval gate, and the ACP simulator started as the CLI."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lingma_mcp.acp import AgentHandle, start_agent
from lingma_mcp.sim.acp import simulator_command

SIM_ARGS = simulator_command()[1:]


@dataclass
class Output:
    output: str
    truncated: bool
    exit_code: int | None
    running: bool


class FakeWorkspace:
    """Files under ``root`` and real commands, with every call recorded."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.calls: list[tuple[str, Any]] = []
        self.terminals: dict[str, asyncio.subprocess.Process] = {}
        self.outputs: dict[str, bytes] = {}

    def _inside(self, path: str) -> Path:
        full = (self.root / path).resolve()
        if not full.is_relative_to(self.root.resolve()):
            raise PermissionError(f"{path} is outside the workspace")
        return full

    async def read_text(self, path: str, line: int | None = None, limit: int | None = None) -> str:
        self.calls.append(("read", path))
        return self._inside(path).read_text()

    async def write_text(self, path: str, text: str) -> None:
        self.calls.append(("write", path))
        target = self._inside(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)

    async def create_terminal(
        self,
        command: str,
        args: list[str] | None = None,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        output_byte_limit: int | None = None,
        background: bool = True,
    ) -> str:
        self.calls.append(("run", [command, *(args or [])]))
        process = await asyncio.create_subprocess_exec(
            command, *(args or []), cwd=self.root, stdout=asyncio.subprocess.PIPE
        )
        terminal_id = f"term-{len(self.terminals) + 1}"
        self.terminals[terminal_id] = process
        return terminal_id

    async def terminal_output(self, terminal_id: str) -> Output:
        process = self.terminals[terminal_id]
        return Output(self.outputs.get(terminal_id, b"").decode(), False, process.returncode, False)

    async def wait_for_exit(self, terminal_id: str) -> int | None:
        process = self.terminals[terminal_id]
        out, _ = await process.communicate()
        self.outputs[terminal_id] = out
        return process.returncode

    async def kill_terminal(self, terminal_id: str) -> None:
        self.calls.append(("kill", terminal_id))
        process = self.terminals[terminal_id]
        if process.returncode is None:
            process.kill()

    async def release_terminal(self, terminal_id: str) -> None:
        self.calls.append(("release", terminal_id))

    async def close(self) -> None:
        pass


@dataclass
class FakeGate:
    """Answers every authorize with ``allow``, recording what it was asked."""

    allow: bool = True
    asked: list[tuple[str, str, str, str | None]] = field(default_factory=list)
    hold: asyncio.Event | None = None  # when set, authorize waits for it

    async def authorize(
        self, action: str, tool: str, target: str, preview: str | None = None
    ) -> bool:
        self.asked.append((action, tool, target, preview))
        if self.hold is not None:
            await self.hold.wait()
        return self.allow


def sim_env(state: Path, log: Path | None = None, **switches: str) -> dict[str, str]:
    """The simulator's environment. Its agent hands file and command work to the client
    (``fs/*``, ``terminal/*``), which the client's handler tests need; a test of the agent
    that acts on the disk itself, as the real CLI does, passes ``client_tools="0"``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINGMA_SIM_ACP_")}
    env["LINGMA_SIM_ACP_STATE_DIR"] = str(state)
    env["LINGMA_SIM_ACP_SIGTERM_DELAY"] = "0"
    env["LINGMA_SIM_ACP_CLIENT_TOOLS"] = "1"
    if log is not None:
        env["LINGMA_SIM_ACP_LOG"] = str(log)
    for key, value in switches.items():
        env["LINGMA_SIM_ACP_" + key.upper()] = value
    return env


@asynccontextmanager
async def running_sim(
    workspace: Path, state: Path, log: Path | None = None, **switches: str
) -> AsyncIterator[AgentHandle]:
    handle = await start_agent(
        sys.executable,
        extra_args=SIM_ARGS,
        cwd=workspace,
        env=sim_env(state, log, **switches),
        startup_timeout=60,
        control_timeout=30,
        terminate_grace=10,
    )
    try:
        yield handle
    finally:
        await handle.close()


def received(log: Path) -> list[dict[str, Any]]:
    """Every message the simulator received, in order."""
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]

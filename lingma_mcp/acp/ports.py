"""What the ACP client needs from the rest of lingma-mcp, as Protocols.

The agent's ``fs/*`` and ``terminal/*`` requests go to a :class:`WorkspacePort` (the
workspace host, with its confinement), and ``session/request_permission`` to an
:class:`ApprovalPort` (the approval gate). Both are given per session or prompt; none
given means chat-only, where every such request is refused. The workspace host is one
object that satisfies both. Failures are exceptions whose message a person can read; the
handlers turn them into ACP errors.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

ACTIONS = ("read", "write", "delete", "run")


class TerminalOutput(Protocol):
    """What ``terminal_output`` returns (attributes, not a mapping)."""

    output: str
    truncated: bool
    exit_code: int | None
    running: bool


@runtime_checkable
class WorkspacePort(Protocol):
    """Files and commands inside the workspace, already confined by the host."""

    async def read_text(
        self, path: str, line: int | None = None, limit: int | None = None
    ) -> str: ...

    async def write_text(self, path: str, text: str) -> None: ...

    async def create_terminal(
        self,
        command: str,
        args: list[str] | None = None,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        output_byte_limit: int | None = None,
        background: bool = True,
    ) -> str: ...

    async def terminal_output(self, terminal_id: str) -> TerminalOutput: ...

    async def wait_for_exit(self, terminal_id: str) -> int | None: ...

    async def kill_terminal(self, terminal_id: str) -> None: ...

    async def release_terminal(self, terminal_id: str) -> None: ...

    async def close(self) -> None: ...


@runtime_checkable
class ApprovalPort(Protocol):
    """The workspace host's decision on an action the agent will take itself: are its
    ``targets`` inside the workspace, and may ``tool`` do ``action`` (read/write/delete/run)?
    ``command`` is a run's command line; ``call_id`` and ``content`` bind the approval to
    that tool call and that content."""

    async def authorize(
        self,
        action: str,
        tool: str,
        targets: list[str],
        preview: str | None = None,
        *,
        command: str | None = None,
        call_id: str | None = None,
        content: str | None = None,
    ) -> bool: ...

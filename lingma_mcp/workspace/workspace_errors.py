"""Typed errors of the workspace host.

Their messages go to the agent as they are (Lingma reads them in ``errorMessage``, an ACP
agent in the JSON-RPC error), so each says what was refused and what is possible instead.
"""

from __future__ import annotations

from pathlib import Path


class WorkspaceError(Exception):
    """A file or terminal operation could not be done; the message is for the agent."""


class OutsideWorkspace(WorkspaceError):
    """A path resolved to somewhere outside the call's workspace (or to a special file)."""


class WorkspaceNotAllowed(WorkspaceError):
    """A call asked for a workspace that lies outside every folder the server may serve."""

    def __init__(self, message: str, allowed: list[Path]) -> None:
        self.allowed = list(allowed)
        super().__init__(message)


class ApprovalDenied(WorkspaceError):
    """The approval gate said no: by the setting, by the person, or because it could not ask."""

    def __init__(self, message: str, *, action: str, tool: str, target: str, by: str) -> None:
        self.action = action
        self.tool = tool
        self.target = target
        self.by = by
        super().__init__(message)


class UnknownChangeRecord(WorkspaceError, KeyError):
    """The change journal holds no record for a request id."""

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        super().__init__(request_id)

    def __str__(self) -> str:
        # KeyError would quote the argument; this message is read by people.
        return (
            f"no changes are recorded for request id {self.request_id!r}: either that call "
            "changed no files, or its record was dropped (only the last 100 calls are kept). "
            "Use the request_id of an agent-mode result whose changes list is not empty"
        )

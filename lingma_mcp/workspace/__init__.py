"""The workspace host: confined file and terminal work for one call, the approval gate,
and the change journal. Knows neither Lingma's frames nor MCP: plain data in and out.
"""

from __future__ import annotations

from .files import FileText
from .gate import ApprovalGate, ApprovalRecord, ApprovalRequest, Asker
from .host import WorkspaceHost
from .journal import CallRecord, ChangeJournal
from .paths import check_workspace, resolve_path
from .policy import ACTIONS, DEFAULT_POLICY, Policy, classify_tool, parse_policy
from .terminals import TerminalOutput
from .workspace_errors import (
    ApprovalDenied,
    OutsideWorkspace,
    UnknownChangeRecord,
    WorkspaceError,
    WorkspaceNotAllowed,
)

__all__ = [
    "ACTIONS",
    "DEFAULT_POLICY",
    "ApprovalDenied",
    "ApprovalGate",
    "ApprovalRecord",
    "ApprovalRequest",
    "Asker",
    "CallRecord",
    "ChangeJournal",
    "FileText",
    "OutsideWorkspace",
    "Policy",
    "TerminalOutput",
    "UnknownChangeRecord",
    "WorkspaceError",
    "WorkspaceHost",
    "WorkspaceNotAllowed",
    "check_workspace",
    "classify_tool",
    "parse_policy",
    "resolve_path",
]

"""The CLI backend: ``qoderclicn --acp`` spoken to over the Agent Client Protocol.

Layers, lowest first: ``transport`` (ACP lines on the stdio of the shared
:class:`~lingma_mcp.process.ChildProcess`), ``updates``, ``permissions``, ``models``,
``attachments``, ``usage``, ``replay`` and ``credentials`` (pure mappings), ``handlers``
(the agent's requests to us), ``prompt`` (one prompt's event stream), ``client``
(sessions, prompts, models), ``attempt`` (one start-up: spawn + initialize).
``ports`` names what the workspace host and approval gate provide.
"""

from __future__ import annotations

from lingma_mcp.acp.acp_client import AcpClient, AgentInfo, ListedSession
from lingma_mcp.acp.attempt import AgentHandle, start_agent
from lingma_mcp.acp.cli_errors import AcpRpcError, CapabilityMissing, CliNotLoggedIn, UnknownModel
from lingma_mcp.acp.models import ModelOption, ModelState
from lingma_mcp.acp.ports import ApprovalPort, TerminalOutput, WorkspacePort
from lingma_mcp.acp.prompt import PromptStream

__all__ = [
    "AcpClient",
    "AcpRpcError",
    "AgentHandle",
    "AgentInfo",
    "ApprovalPort",
    "CapabilityMissing",
    "CliNotLoggedIn",
    "ListedSession",
    "ModelOption",
    "ModelState",
    "PromptStream",
    "TerminalOutput",
    "UnknownModel",
    "WorkspacePort",
    "start_agent",
]

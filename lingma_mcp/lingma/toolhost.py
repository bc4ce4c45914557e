"""The port through which a chat's IDE tools are served: what Lingma asks of "the IDE".

In agent mode Lingma asks its client to run tools (``tool/invoke``) and to confirm its own
tool calls (``tool/call/sync`` with status PENDING, answered by ``tool/call/approve``).
The RPC core routes each such request to the handler of the chat it belongs to; the
handler (the workspace host behind an adapter) does the work. This module only names the
shape of that hand-over, so the routing and the work can be written and tested apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass
class ToolOutcome:
    """What one hosted tool did, before it is dressed as a ``ToolInvokeResponse``."""

    success: bool
    result: dict[str, Any] = field(default_factory=dict)
    error_message: str | None = None


class IdeToolHandler(Protocol):
    """Serves one chat's IDE tools.

    ``invoke`` runs a tool Lingma asked the IDE for (names and parameters in the plugin's
    spelling) and never raises for the tool's own failures: those are ``success=False``
    with an ``error_message`` Lingma can read. ``confirm`` decides a PENDING tool call of
    Lingma's own (True: go ahead).
    """

    async def invoke(self, name: str, parameters: dict[str, Any]) -> ToolOutcome: ...

    async def confirm(
        self, tool_name: str, parameters: dict[str, Any], tool_call_id: str
    ) -> bool: ...

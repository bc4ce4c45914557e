"""The port through which a chat's IDE tools are served: what Lingma asks of "the IDE".

In agent mode Lingma asks its client to run tools (``tool/invoke``) and to confirm its own
tool calls (``tool/call/sync`` with status PENDING, answered by ``tool/call/approve``).
The RPC core routes each such request to the handler of the chat it belongs to; the
handler (the workspace host behind an adapter) does the work. This module names the shape
of that hand-over and the plugin-dialect payloads on either side of it (pure functions),
so the routing and the work can be written and tested apart.
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

    async def invoke(
        self, name: str, parameters: dict[str, Any], tool_call_id: str = ""
    ) -> ToolOutcome: ...

    async def confirm(
        self, tool_name: str, parameters: dict[str, Any], tool_call_id: str
    ) -> bool: ...


# What a chat without a tool handler says to ``tool/invoke``: the truth. A silent success
# would tell Lingma a file was read or a command run when nothing happened.
NO_HANDLER = (
    "not supported by this host for this chat: lingma-mcp runs IDE tools only in an "
    "agent-mode ask that has a workspace host; nothing was run"
)
NO_CHAT = "no open chat of this connection owns this tool call; nothing was run"


@dataclass(frozen=True)
class ToolInvoke:
    """One ``tool/invoke`` request, read from Lingma's params."""

    request_id: str | None
    tool_call_id: str
    name: str
    parameters: dict[str, Any]
    is_async: bool

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> ToolInvoke:
        parameters = params.get("parameters")
        return cls(
            request_id=_text(params.get("requestId")),
            tool_call_id=_text(params.get("toolCallId") or params.get("tool_call_id")) or "",
            name=_text(params.get("name") or params.get("toolName")) or "",
            parameters=parameters if isinstance(parameters, dict) else {},
            # Absent means the reply carries the outcome, as with false (PROTOCOL.md 5).
            is_async=params.get("async") is True,
        )


def invoke_response(
    call: ToolInvoke, outcome: ToolOutcome, *, start_ms: int, time_ms: int
) -> dict[str, Any]:
    """The ``ToolInvokeResponse`` Lingma reads: the reply, or a ``tool/invokeResult``'s params.

    ``startTime`` is epoch milliseconds, ``timeConsuming`` milliseconds.
    """
    return {
        "toolCallId": call.tool_call_id,
        "name": call.name,
        "success": outcome.success,
        "errorMessage": "" if outcome.success else (outcome.error_message or "failed"),
        "result": outcome.result,
        "startTime": start_ms,
        "timeConsuming": time_ms,
    }


def async_ack(call: ToolInvoke) -> dict[str, Any]:
    """The empty success an ``async`` invoke gets at once; the outcome follows later."""
    return {"toolCallId": call.tool_call_id, "name": call.name, "success": True}


def approve_params(
    *, session_id: str, request_id: str, tool_call_id: str, approval: bool
) -> dict[str, Any]:
    """``tool/call/approve``'s params, in Lingma's spelling."""
    return {
        "sessionId": session_id,
        "requestId": request_id,
        "toolCallId": tool_call_id,
        "approval": approval,
    }


def _text(value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return (value.strip() or None) if isinstance(value, str) else None

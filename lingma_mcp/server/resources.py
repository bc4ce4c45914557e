"""Resources: the status, the models and this workspace's conversations, as JSON."""

from __future__ import annotations

import json
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError
from mcp.shared.exceptions import MCPError

from ..asking.bridge import Bridge

JSON = "application/json"
# The protocol's code for a resource that does not exist (MCP 2025-06-18, "Resource not
# found"); the SDK would send -32603, an internal error, for the same thing.
RESOURCE_NOT_FOUND = -32002


def _dump(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def register_resources(app: MCPServer, bridge: Bridge) -> None:
    """Add ``lingma://status``, ``lingma://models``, ``lingma://sessions`` and the template
    ``lingma://sessions/{session_id}`` to ``app``."""

    @app.resource(
        "lingma://status",
        name="status",
        title="Lingma status",
        description="Login state (in words, never a token) and this bridge's Lingma state: "
        "the same as the auth_status tool.",
        mime_type=JSON,
    )
    async def status() -> str:
        info = await bridge.auth()
        return _dump(info.model_dump(mode="json"))

    @app.resource(
        "lingma://models",
        name="models",
        title="Lingma models",
        description="The models this account can use, by scene: the same as list_models.",
        mime_type=JSON,
    )
    async def models() -> str:
        try:
            listing = await bridge.model_list()
        except Exception as exc:
            raise ResourceError(bridge.error_text(exc)) from exc
        return _dump(listing.model_dump(mode="json"))

    @app.resource(
        "lingma://sessions",
        name="sessions",
        title="Lingma conversations",
        description="This workspace's Lingma conversations: session_id (pass it to "
        "ask_lingma to continue), title, created, modified, number of turns.",
        mime_type=JSON,
    )
    async def sessions() -> str:
        try:
            listing = await bridge.sessions()
        except Exception as exc:
            raise ResourceError(bridge.error_text(exc)) from exc
        return _dump({"workspace": str(bridge.workspace), "sessions": listing})

    @app.resource(
        "lingma://sessions/{session_id}",
        name="session",
        title="One Lingma conversation",
        description="One conversation's turns: question and answer of each.",
        mime_type=JSON,
    )
    async def session(session_id: str) -> str:
        try:
            detail = await bridge.session(session_id)
        except Exception as exc:
            raise ResourceError(bridge.error_text(exc)) from exc
        if detail is None:
            raise MCPError(
                code=RESOURCE_NOT_FOUND,
                message=f"Resource not found: no conversation {session_id!r}. Read "
                "lingma://sessions for the ids.",
                data={"uri": f"lingma://sessions/{session_id}"},
            )
        return _dump(detail)

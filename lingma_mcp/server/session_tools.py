"""The conversation tools: list_lingma_sessions and delete_lingma_session.

A model works through tools, not resources: these put Lingma's conversations within its
reach (``lingma://sessions`` shows the same list to a host that reads resources). A
conversation is continued, or forked with ``fork=true``, by passing its ``session_id`` to
``ask_lingma``; its turns are at ``lingma://sessions/{session_id}``.
"""

from __future__ import annotations

import json
from typing import Annotated

from mcp.server.mcpserver import MCPServer
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field

from ..asking.bridge import Bridge
from ..asking.views import session_info
from .tool_schemas import DeletedSession, SessionList

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


def _error(text: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True)


def _ok(text: str, model: BaseModel) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(type="text", text=text)],
        structured_content=model.model_dump(mode="json"),
    )


def register_session_tools(app: MCPServer, bridge: Bridge) -> None:
    """Add ``list_lingma_sessions`` and ``delete_lingma_session`` to ``app``."""

    @app.tool(
        name="list_lingma_sessions",
        title="List Lingma conversations",
        description="This workspace's Lingma conversations, newest first: session_id (pass "
        "it to ask_lingma to continue one, with fork=true to try an alternative in a copy), "
        "title, when it was last updated, which backend holds it. At most limit of them; "
        "total says how many there are. lingma://sessions/{session_id} shows one's turns.",
        annotations=ToolAnnotations(
            title="List Lingma conversations",
            read_only_hint=True,
            destructive_hint=False,
            idempotent_hint=True,
            open_world_hint=False,
        ),
    )
    async def list_lingma_sessions(
        limit: Annotated[
            int,
            Field(
                strict=True,
                ge=1,
                le=MAX_LIMIT,
                description=f"The newest this many (1 to {MAX_LIMIT}; default {DEFAULT_LIMIT}).",
            ),
        ] = DEFAULT_LIMIT,
    ) -> Annotated[CallToolResult, SessionList]:
        try:
            found = await bridge.session_list()
        except Exception as exc:
            return _error(bridge.error_text(exc))
        listing = SessionList(
            sessions=[session_info(s) for s in found[:limit]],
            total=len(found),
            workspace=str(bridge.workspace),
        )
        text = json.dumps(listing.model_dump(mode="json"), indent=2, ensure_ascii=False)
        return _ok(text, listing)

    @app.tool(
        name="delete_lingma_session",
        title="Delete a Lingma conversation",
        description="Delete one Lingma conversation for good (the session_id from "
        "list_lingma_sessions or an ask_lingma result). It can no longer be continued.",
        annotations=ToolAnnotations(
            title="Delete a Lingma conversation",
            read_only_hint=False,
            destructive_hint=True,
            idempotent_hint=True,
            open_world_hint=False,
        ),
    )
    async def delete_lingma_session(
        session_id: Annotated[
            str, Field(strict=True, min_length=1, description="The conversation to delete.")
        ],
    ) -> Annotated[CallToolResult, DeletedSession]:
        try:
            await bridge.delete_session(session_id.strip())
        except Exception as exc:
            return _error(bridge.error_text(exc))
        deleted = DeletedSession(session_id=session_id.strip(), deleted=True)
        return _ok(f"Deleted the Lingma conversation {deleted.session_id}.", deleted)

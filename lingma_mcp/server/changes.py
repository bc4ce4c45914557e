"""Reviewing and undoing what an agent-mode call changed.

The resource template ``lingma://changes/{request_id}`` shows a call's changes as one
unified diff; the tool ``revert_changes`` puts its files back as they were before the
call, refusing (and naming) any file changed again since. Both read the server's
records of changes (``workspace/recording.py``: checkpoints, else the journal), which
live on disk and so outlast a restart.

``revert_changes(paths=[...])`` reverts only those files (the review page's per-file
buttons); the page (``review_app.py``) reads a call through :func:`call_changes` and
:func:`call_diff`, like the resource.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.shared.exceptions import MCPError
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import Field

from ..asking.bridge import Bridge
from ..asking.error_texts import invalid_argument
from ..workspace import UnknownChangeRecord, WorkspaceError
from .roots import host_roots
from .tool_schemas import RevertResult

if TYPE_CHECKING:
    from ..asking.agent_calls import AgentCalls

DIFF = "text/x-diff"
# The protocol's code for a resource that does not exist (MCP 2025-06-18).
RESOURCE_NOT_FOUND = -32002

REVERT_DESCRIPTION = """Undo what one agent-mode ask_lingma call changed: every file it \
created is removed, every file it modified or deleted is put back as it was before the \
call. A file changed again since that call is left as it is and listed under refused, with \
the reason. Pass the request_id from the call's result; lingma://changes/{request_id} shows \
the diff first."""


def _text(text: str, *, error: bool = False) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=text)], is_error=error)


def revert_summary(outcome: RevertResult) -> str:
    """The revert's outcome in a few lines, for the text content and the terminal."""
    lines = []
    if outcome.restored:
        lines.append(f"Restored {len(outcome.restored)} file(s): {', '.join(outcome.restored)}.")
    if outcome.refused:
        lines.append(f"Left {len(outcome.refused)} file(s) as they are:")
        lines.extend(f"- {r.path}: {r.reason}" for r in outcome.refused)
    if not lines:
        lines.append(f"Call {outcome.request_id} changed no files: nothing to revert.")
    return "\n".join(lines)


async def call_changes(agents: AgentCalls, request_id: str) -> list[dict[str, Any]]:
    """``[{path, action, lines_added, lines_removed, by, binary?, skipped?}]`` of one call.

    Raises:
        UnknownChangeRecord: no record of that call.
        WorkspaceError: its record cannot be read.
    """
    return await anyio.to_thread.run_sync(agents.records.changes, request_id)


async def call_diff(agents: AgentCalls, request_id: str) -> str:
    """One call's changes as one unified diff.

    Raises:
        UnknownChangeRecord: no record of that call.
        WorkspaceError: its record cannot be read.
    """
    return await anyio.to_thread.run_sync(agents.records.diff, request_id)


def register_changes(app: MCPServer, bridge: Bridge) -> None:
    """Add the tool ``revert_changes`` and the template ``lingma://changes/{request_id}``."""
    agents = bridge.agents

    @app.tool(
        name="revert_changes",
        title="Revert Lingma's changes",
        description=REVERT_DESCRIPTION,
        annotations=ToolAnnotations(
            title="Revert Lingma's changes",
            read_only_hint=False,
            destructive_hint=True,  # it overwrites and removes files
            idempotent_hint=True,  # a second revert refuses what the first restored
            open_world_hint=False,
        ),
    )
    async def revert_changes(
        ctx: Context,
        request_id: Annotated[
            str, Field(description="The request_id of an agent-mode ask_lingma result.")
        ],
        paths: Annotated[
            list[str] | None,
            Field(
                description="Only these files (paths as the call's changes list them); "
                "default: every file the call changed."
            ),
        ] = None,
    ) -> Annotated[CallToolResult, RevertResult]:
        request_id = request_id.strip()
        if paths is not None and not paths:
            send = "the files to revert as the call's changes name them, or no paths for all"
            return _text(str(invalid_argument("paths", "it is empty", send)), error=True)
        if agents.is_running(request_id):
            return _text(
                f"Call {request_id} is still running; revert its changes once it has ended.",
                error=True,
            )
        # The record's own word for where it was made is not trusted: it must lie in a
        # folder this server may serve now (the host's roots, else --workspace).
        allowed = await host_roots(ctx) or [bridge.settings.workspace]
        try:
            outcome = await anyio.to_thread.run_sync(
                agents.records.revert, request_id, allowed, paths
            )
        except UnknownChangeRecord as exc:
            return _text(str(exc), error=True)
        except WorkspaceError as exc:
            return _text(
                f"Call {request_id} was not reverted: {exc}. Nothing was changed.", error=True
            )
        result = RevertResult.model_validate(outcome)
        return CallToolResult(
            content=[TextContent(type="text", text=revert_summary(result))],
            structured_content=result.model_dump(mode="json"),
        )

    @app.resource(
        "lingma://changes/{request_id}",
        name="changes",
        title="Changes of one Lingma call",
        description="The files one agent-mode ask_lingma call changed, as one unified diff "
        "(request_id from its result).",
        mime_type=DIFF,
    )
    async def changes(request_id: str) -> str:
        try:
            return await call_diff(agents, request_id)
        except UnknownChangeRecord as exc:
            raise MCPError(
                code=RESOURCE_NOT_FOUND,
                message=f"Resource not found: {exc}",
                data={"uri": f"lingma://changes/{request_id}"},
            ) from None
        except WorkspaceError as exc:  # a damaged record: only this call's
            raise MCPError(
                code=RESOURCE_NOT_FOUND,
                message=f"The changes of {request_id} cannot be shown: {exc}",
                data={"uri": f"lingma://changes/{request_id}"},
            ) from None

"""Asking the client to run an IDE tool (``tool/invoke``) and waiting for its answer.

Two ways an IDE answers (PROTOCOL.md, agent mode): with ``async: false`` the reply to
``tool/invoke`` carries the outcome ``{toolCallId, name, success, errorMessage, result}``;
with ``async: true`` the reply is only an acknowledgement and the outcome follows as a
``tool/invokeResult`` request. Which one the binary uses per tool is unknown, so the
simulator does either (``LINGMA_SIM_TOOL_ASYNC``). Whatever the client answered is
returned, logged, and written to the message log so tests can see it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lingma_mcp.sim.connection import Connection

log = logging.getLogger("lingma_mcp.sim")

TOOL_REPLY_TIMEOUT = 30.0


async def invoke(
    conn: Connection,
    stop: asyncio.Event,
    *,
    request_id: str,
    tool_id: str,
    name: str,
    parameters: dict[str, Any],
    use_async: bool,
) -> dict[str, Any] | None:
    """Send ``tool/invoke`` and return the client's outcome; ``None`` if the chat was stopped.

    A client that never answers gets a stand-in failure after :data:`TOOL_REPLY_TIMEOUT`.
    """
    params = {
        "requestId": request_id,
        "toolCallId": tool_id,
        "name": name,
        "parameters": parameters,
        "async": use_async,
    }
    result_future: asyncio.Future[Any] | None = None
    if use_async:
        result_future = asyncio.get_running_loop().create_future()
        conn.tool_results[tool_id] = result_future
    try:
        reply_future = await conn.request("tool/invoke", params, want_reply=True)
        assert reply_future is not None
        reply = await _until(reply_future, stop)
        if reply is _STOPPED:
            return None
        if result_future is None or reply is None or "error" in reply or _refused(reply):
            outcome = _outcome_of_reply(reply)
        else:
            result = await _until(result_future, stop)
            if result is _STOPPED:
                return None
            outcome = (
                result
                if isinstance(result, dict)
                else {"success": False, "errorMessage": "no tool/invokeResult after the ack"}
            )
    finally:
        conn.tool_results.pop(tool_id, None)
    log.info(
        "tool/invoke %s (%s) answered: success=%s errorMessage=%s",
        tool_id,
        "async" if use_async else "sync",
        outcome.get("success"),
        outcome.get("errorMessage"),
    )
    conn.state.messages.write(
        "event", conn.id, event="tool_invoke_reply", toolCallId=tool_id, outcome=outcome
    )
    return outcome


_STOPPED = object()


async def _until(future: asyncio.Future[Any], stop: asyncio.Event) -> Any:
    """The future's result, ``None`` on timeout, or ``_STOPPED`` if the chat was stopped."""
    stopped = asyncio.ensure_future(stop.wait())
    try:
        done, _ = await asyncio.wait(
            {future, stopped}, timeout=TOOL_REPLY_TIMEOUT, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        stopped.cancel()
    if future in done:
        return future.result()
    return _STOPPED if stop.is_set() else None


def _refused(reply: dict[str, Any]) -> bool:
    """An async ``tool/invoke`` answered with a failure at once: no invokeResult will follow."""
    result = reply.get("result")
    return isinstance(result, dict) and result.get("success") is False


def _outcome_of_reply(reply: dict[str, Any] | None) -> dict[str, Any]:
    if reply is None:
        return {"success": False, "errorMessage": "no reply to tool/invoke"}
    if "error" in reply:
        return {"success": False, "errorMessage": f"JSON-RPC error {reply['error']}"}
    if isinstance(reply.get("result"), dict):
        return reply["result"]
    return {"success": False, "errorMessage": f"unexpected reply {reply.get('result')!r}"}

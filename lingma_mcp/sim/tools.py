"""Asking the client to run an IDE tool (``tool/invoke``) and waiting for its answer.

Two ways an IDE answers (PROTOCOL.md, agent mode): with ``async: false`` the reply to
``tool/invoke`` carries the outcome ``{toolCallId, name, success, errorMessage, result}``;
with ``async: true`` the reply is only an acknowledgement and the outcome follows as a
``tool/invokeResult`` request. Which one the binary uses per tool is unknown, so the
simulator does either (``LINGMA_SIM_TOOL_ASYNC``, or ``@async`` in a prompt), or leaves
the field out, when the client must answer as for ``false``. Whatever the client answered
is returned, logged, and written to the message log so tests can see it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lingma_mcp.sim.connection import Connection

log = logging.getLogger("lingma_mcp.sim")


class ChatStopped(Exception):
    """``chat/stop`` arrived (or the connection went): finish with reason ``cancelled``."""


async def invoke(
    conn: Connection,
    stop: asyncio.Event,
    *,
    request_id: str,
    tool_id: str,
    name: str,
    parameters: dict[str, Any],
    use_async: bool | None,
    timeout: float,
) -> dict[str, Any] | None:
    """Send ``tool/invoke`` and return the client's outcome; ``None`` if the chat was stopped.

    Args:
        use_async: the ``async`` field; ``None`` leaves it out.
        timeout: seconds to wait for each answer before a stand-in failure is used.
    """
    params: dict[str, Any] = {
        "requestId": request_id,
        "toolCallId": tool_id,
        "name": name,
        "parameters": parameters,
    }
    if use_async is not None:
        params["async"] = use_async
    ack: Any = None
    result_future: asyncio.Future[Any] | None = None
    if use_async:
        result_future = asyncio.get_running_loop().create_future()
        conn.tool_results[tool_id] = result_future
    try:
        reply_future = await conn.request("tool/invoke", params, want_reply=True)
        assert reply_future is not None
        reply = await until(reply_future, stop, timeout)
        if reply is STOPPED:
            return None
        if result_future is None or reply is None or "error" in reply or _refused(reply):
            outcome = _outcome_of_reply(reply, timeout)
        else:
            ack = reply.get("result")
            result = await until(result_future, stop, timeout)
            if result is STOPPED:
                return None
            outcome = (
                result
                if isinstance(result, dict)
                else {
                    "success": False,
                    "errorMessage": f"no tool/invokeResult within {timeout:g} s of the ack",
                }
            )
    finally:
        conn.tool_results.pop(tool_id, None)
    log.info(
        "tool/invoke %s (%s) answered: success=%s errorMessage=%s",
        tool_id,
        {True: "async", False: "sync", None: "no async field"}[use_async],
        outcome.get("success"),
        outcome.get("errorMessage"),
    )
    form = {True: "async", False: "sync", None: "absent"}[use_async]
    conn.state.messages.write(
        "event",
        conn.id,
        event="tool_invoke_reply",
        toolCallId=tool_id,
        form=form,
        ack=ack,
        outcome=outcome,
    )
    return outcome


STOPPED = object()


async def until(future: asyncio.Future[Any], stop: asyncio.Event, timeout: float) -> Any:
    """The future's result, ``None`` on timeout, or :data:`STOPPED` if the chat was stopped."""
    stopped = asyncio.ensure_future(stop.wait())
    try:
        done, _ = await asyncio.wait(
            {future, stopped}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        stopped.cancel()
    if future.cancelled():  # the connection went: as good as stopped
        return STOPPED
    if future in done:
        return future.result()
    return STOPPED if stop.is_set() else None


def _refused(reply: dict[str, Any]) -> bool:
    """An async ``tool/invoke`` answered with a failure at once: no invokeResult will follow."""
    result = reply.get("result")
    return isinstance(result, dict) and result.get("success") is False


def _outcome_of_reply(reply: dict[str, Any] | None, timeout: float) -> dict[str, Any]:
    if reply is None:
        return {"success": False, "errorMessage": f"no reply to tool/invoke within {timeout:g} s"}
    if "error" in reply:
        return {"success": False, "errorMessage": f"JSON-RPC error {reply['error']}"}
    if isinstance(reply.get("result"), dict):
        return reply["result"]
    return {"success": False, "errorMessage": f"unexpected reply {reply.get('result')!r}"}

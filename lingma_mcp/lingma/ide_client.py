"""LingmaClient: the IDE backend's :class:`~lingma_mcp.backend.BackendClient`, in Lingma's
plugin dialect.

One client per connection. It builds the payloads the IDE plugins send, reads Lingma's
replies into the contract's values (:mod:`.auth`, :mod:`.catalog`, :mod:`.conversations`),
opens chat streams, and answers the requests Lingma makes of an IDE: ``tool/invoke`` and
PENDING ``tool/call/sync`` go to the tool handler of the chat they belong to (see
:mod:`.toolhost`; in agent mode the plugin-dialect adapter over the request's workspace
host), as tasks of that chat, so they never hold up the read loop and end with the chat.
It knows nothing of processes (the supervisor) or of MCP (the server).
"""

from __future__ import annotations

import asyncio
import locale
import logging
import os
import time
import uuid
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

from .. import __version__
from ..backend import ChatRequest, Login, Model, Session, SessionSummary
from ..errors import LingmaConnectionLost, LingmaError, RequestRefused, UnknownSession
from .attachments import CLI_BACKEND, context_items
from .auth import login_from_status
from .catalog import models_from_scenes
from .conversations import session_from_record, summary_from_record
from .ide_tools import IdeTools
from .jsonrpc import RpcConnection
from .streams import ChatStream, StreamRouter
from .tool_events import observe
from .toolhost import (
    NO_CHAT,
    NO_HANDLER,
    IdeToolHandler,
    ToolInvoke,
    ToolOutcome,
    approve_params,
    async_ack,
    invoke_response,
)

log = logging.getLogger(__name__)

CLIENT_NAME = "lingma-mcp"
# How long a question continuing a session waits for the late chat/finish of a stopped
# chat in it (which names the session Lingma filed it under). Lingma sends that finish
# within moments of chat/stop; a question asked sooner than that would start a new
# conversation without it.
LATE_FINISH_WAIT_S = 5.0


class LingmaClient:
    """High-level calls on one Lingma connection.

    Args:
        conn: a started connection.
        control_timeout: seconds to wait for control calls (auth, models, sessions, stop).
    """

    def __init__(self, conn: RpcConnection, *, control_timeout: float = 30.0) -> None:
        self.conn = conn
        self.control_timeout = control_timeout
        self.router = StreamRouter()
        self.server_info: dict[str, Any] = {}
        self._background: set[asyncio.Task[Any]] = set()
        conn.add_listener(self.router)
        # After the router: a PENDING tool call's owner is known by then.
        conn.add_listener(self._on_event)
        conn.add_close_listener(self.router.connection_lost)
        conn.add_close_listener(self._cancel_background)
        conn.set_request_handler("tool/invoke", self._on_tool_invoke)

    @property
    def version(self) -> str | None:
        version = self.server_info.get("version")
        return str(version) if version is not None else None

    # ------------------------------------------------------------------ control calls

    async def initialize(self, workspace: Path) -> dict[str, Any]:
        """The LSP handshake; Lingma wants a workspace or logs ``workspacePath is empty``."""
        workspace = _absolute(workspace)
        uri = workspace.as_uri()
        result = await self.conn.request(
            "initialize",
            {
                "processId": os.getpid(),
                "clientInfo": {"name": CLIENT_NAME, "version": __version__},
                "rootUri": uri,
                "rootPath": str(workspace),
                "capabilities": {},
                "workspaceFolders": [{"uri": uri, "name": workspace.name or str(workspace)}],
            },
            timeout=self.control_timeout,
        )
        result = result if isinstance(result, dict) else {}
        info = result.get("serverInfo")
        self.server_info = info if isinstance(info, dict) else {}
        return result

    async def login_state(self) -> Login:
        """``auth/status``, with tokens already dropped (see :mod:`.auth`)."""
        return login_from_status(await self._call("auth/status"))

    async def models(self) -> list[Model]:
        """``config/queryModels``' scene map as models; ``[]`` when logged out."""
        return models_from_scenes(await self._call("config/queryModels"))

    async def login_url(self) -> str:
        reply = await self._call("login/generateUrl")
        if isinstance(reply, str):
            return reply
        if isinstance(reply, dict):
            for key in ("loginUrl", "url", "login_url"):
                if isinstance(reply.get(key), str) and reply[key]:
                    return reply[key]
        raise LingmaError("Lingma did not return a login URL")

    async def sessions(self, project: Path) -> list[SessionSummary]:
        """``chat/listAllSessions``: the conversations filed under ``project``."""
        reply = await self._call(
            "chat/listAllSessions", {"projectUri": _absolute(project).as_uri()}
        )
        if isinstance(reply, dict):  # some versions wrap the list
            reply = reply.get("sessions") or reply.get("data") or []
        listed = [summary_from_record(s) for s in reply] if isinstance(reply, list) else []
        return [s for s in listed if s is not None]

    async def session(self, session_id: str) -> Session | None:
        """``chat/getSessionById``: one conversation with its turns."""
        reply = await self._call("chat/getSessionById", {"sessionId": session_id})
        return session_from_record(reply)

    async def delete_session(self, session_id: str) -> None:
        """``chat/deleteSessionById``, once ``chat/getSessionById`` has found the session (the
        delete's own reply has no known way of saying "no such session").

        Raises:
            UnknownSession: Lingma knows no such id.
            LingmaError: Lingma answered the delete with a failure (its words quoted).
        """
        if await self.session(session_id) is None:
            raise UnknownSession(session_id)
        reply = await self._call("chat/deleteSessionById", {"sessionId": session_id})
        if isinstance(reply, dict) and (
            reply.get("success") is False or reply.get("isSuccess") is False
        ):
            why = reply.get("errorMessage") or reply.get("errorCode") or "no reason given"
            raise LingmaError(f"Lingma did not delete conversation {session_id}: {why}")

    async def _call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        return await self.conn.request(method, params or {}, timeout=self.control_timeout)

    # ------------------------------------------------------------------ chat

    async def open_chat(
        self, request: ChatRequest, *, tool_handler: IdeToolHandler | None = None
    ) -> ChatStream:
        """Send ``chat/ask`` and return the stream of its events.

        The IDE tools Lingma asks for during the chat are served by ``tool_handler``, by
        default the plugin-dialect adapter over ``request.host``; with neither they are
        refused, honestly. A ``request.session_id`` that was the hint of a stopped chat is
        asked as the session Lingma filed that chat under (see
        :class:`.session_hints.SessionHints`).

        The stream is registered before the question is sent, so no early delta is lost;
        the reply to ``chat/ask`` (it only means "accepted") is not awaited, so it cannot
        delay the first delta.

        What the plugin dialect cannot carry is refused before anything is sent
        (:class:`RequestRefused`): a fork, a reasoning effort the question asked for (the
        server's default is left out), images and folders (see :mod:`.attachments`).
        """
        context = self._refuse_what_cannot_go(request)
        if tool_handler is None and request.host is not None:
            tool_handler = IdeTools(request.host)
        if request.session_id is not None:
            session_id = await self.router.hints.upstream(
                request.session_id, wait=LATE_FINISH_WAIT_S
            )
        else:
            session_id = str(uuid.uuid4())
        stream = self.router.open(
            request.request_id,
            session_id,
            stop=self._stop_stream,
            tool_handler=tool_handler,
            continuing=request.session_id is not None,
        )
        try:
            accepted = await self.conn.send_request(
                "chat/ask", self._ask_payload(request, session_id, context)
            )
        except BaseException:
            await stream.aclose()
            raise
        self.router.watch_accept(stream, accepted)
        return stream

    async def _stop_stream(self, stream: ChatStream) -> None:
        # Sent, not awaited: see ChatStream.aclose. Cancelling the reply's future forgets
        # the request, so a Lingma that never answers leaves nothing behind.
        if not self.conn.closed:
            params = {"requestId": stream.request_id, "sessionId": stream.session_hint or ""}
            (await self.conn.send_request("chat/stop", params)).cancel()

    @staticmethod
    def _refuse_what_cannot_go(request: ChatRequest) -> list[dict[str, Any]]:
        """The question's context items, once everything it asks for can be sent."""
        if request.fork:
            raise RequestRefused(
                "fork",
                "the IDE backend cannot fork a conversation (its plugin protocol has no call "
                "for it)",
                f"fork=false to continue the conversation itself, {CLI_BACKEND}, which forks",
            )
        if request.reasoning_effort and not request.effort_optional:
            raise RequestRefused(
                "reasoning_effort",
                "the IDE backend has no reasoning effort option (its plugin protocol has "
                "none; a reasoning model thinks as it does)",
                "no reasoning_effort, or run lingma-mcp with --backend cli: the Lingma CLI "
                "offers one where its model has effort levels",
            )
        return context_items(request.attachments)

    def _ask_payload(
        self, request: ChatRequest, session_id: str, context: list[dict[str, Any]]
    ) -> dict[str, Any]:
        agent = request.mode == "agent"
        workspace = _absolute(request.workspace or Path.cwd())
        language = _preferred_language()
        extra: dict[str, Any] = {"workspacePath": str(workspace), "context": context}
        if request.model:
            extra["modelConfig"] = {"key": request.model}
        payload: dict[str, Any] = {
            "requestId": request.request_id,
            "sessionId": session_id,
            "sessionType": "developer" if agent else "chat",
            "chatTask": "FREE_INPUT",
            "mode": request.mode,
            "stream": True,
            "source": 1,
            "isReply": request.session_id is not None,
            "taskDefinitionType": "system",
            "questionText": request.prompt,
            "extra": extra,
            "pluginPayloadConfig": {"isEnableAskAgent": agent, "isEnableAutoMemory": True},
            # The question goes once, in questionText, the field the binary reads (PROTOCOL.md
            # section 9): a copy elsewhere doubled every frame's size.
            "chatContext": {
                "features": [],
                "preferredLanguage": language,
                "localeLang": language,
            },
        }
        return payload

    # ------------------------------------------------------------------ Lingma's requests

    def _on_tool_invoke(self, params: dict[str, Any]) -> Any:
        """Answer ``tool/invoke``: run the tool through its chat's handler.

        Without ``async`` the reply is the outcome, so the connection gets a coroutine to
        await in a task of its own; with ``async: true`` the reply is an empty success now
        and the outcome follows as a ``tool/invokeResult`` request.
        """
        call = ToolInvoke.from_params(params)
        stream = self.router.stream_for_tool(call.request_id, call.tool_call_id)
        start_ms = int(time.time() * 1000)
        started = time.monotonic()
        outcome: asyncio.Future[ToolOutcome] = asyncio.get_running_loop().create_future()
        task = stream.run(self._invoke(call, stream)) if stream is not None else None
        if task is None:
            log.info("Lingma asked to run IDE tool %s for no open chat", call.name)
            outcome.set_result(ToolOutcome(success=False, error_message=NO_CHAT))
        else:
            task.add_done_callback(lambda t: _settle(t, outcome, call))

        async def response() -> dict[str, Any]:
            done = await outcome
            elapsed = round((time.monotonic() - started) * 1000)
            return invoke_response(call, done, start_ms=start_ms, time_ms=elapsed)

        if not call.is_async:
            return response()
        self._spawn(self._send_invoke_result(response()))
        return async_ack(call)

    async def _invoke(self, call: ToolInvoke, stream: ChatStream | None) -> ToolOutcome:
        handler = stream.tool_handler if stream is not None else None
        if handler is None:
            log.info("Lingma asked to run IDE tool %s in a chat without a tool host", call.name)
            return ToolOutcome(success=False, error_message=NO_HANDLER)
        return await handler.invoke(call.name, call.parameters, call.tool_call_id)

    async def _send_invoke_result(self, response: Awaitable[dict[str, Any]]) -> None:
        try:
            await self.conn.request(
                "tool/invokeResult", await response, timeout=self.control_timeout
            )
        except LingmaConnectionLost as exc:
            log.debug("could not deliver tool/invokeResult: %s", exc)
        except LingmaError as exc:
            log.warning("could not deliver tool/invokeResult: %s", exc)

    def _on_event(self, method: str, params: dict[str, Any]) -> None:
        """Ask the chat's handler about a PENDING tool call, then tell Lingma."""
        if method != "tool/call/sync":
            return
        seen = observe(method, params)
        if seen is None or (seen.status or "").upper() != "PENDING":
            return
        stream = self.router.stream_for_tool(seen.request_id, seen.id)
        if stream is None:
            log.info("PENDING tool call %s belongs to no open chat; not answered", seen.id)
            return
        if seen.id in stream._confirming:
            return  # Lingma said PENDING again; the question is already out
        stream._confirming.add(seen.id)
        session_id = params.get("sessionId")
        approve = approve_params(
            session_id=session_id if isinstance(session_id, str) else stream.session_hint or "",
            request_id=stream.request_id,
            tool_call_id=seen.id,
            approval=False,
        )
        parameters = seen.input if isinstance(seen.input, dict) else {}
        stream.run(self._confirm(stream, seen.name or "", parameters, approve))

    async def _confirm(
        self, stream: ChatStream, name: str, parameters: dict[str, Any], approve: dict[str, Any]
    ) -> None:
        tool_call_id = approve["toolCallId"]
        handler = stream.tool_handler
        approval = False
        try:
            if handler is None:
                log.info("PENDING tool call %s in a chat without a tool host: denied", tool_call_id)
            else:
                approval = await handler.confirm(name, parameters, tool_call_id) is True
        except asyncio.CancelledError:
            # The chat ended while the person was being asked: that is a no. Told in a
            # task of the client's, since this one is being cancelled.
            self._spawn(self._approve({**approve, "approval": False}))
            raise
        except Exception:
            log.exception("confirming tool call %s failed; denied", tool_call_id)
        await self._approve({**approve, "approval": approval})

    async def _approve(self, params: dict[str, Any]) -> None:
        try:
            await self.conn.request("tool/call/approve", params, timeout=self.control_timeout)
        except LingmaConnectionLost as exc:
            log.debug("could not send tool/call/approve: %s", exc)
        except LingmaError as exc:
            log.warning("could not send tool/call/approve for %s: %s", params["toolCallId"], exc)

    def _cancel_background(self, reason: BaseException) -> None:
        # Nothing sent from here can arrive any more.
        for task in list(self._background):
            task.cancel()

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)


def _settle(
    task: asyncio.Task[ToolOutcome], outcome: asyncio.Future[ToolOutcome], call: ToolInvoke
) -> None:
    """Turn the handler task's end into the outcome Lingma hears, whatever the end was."""
    if outcome.done():
        return
    if task.cancelled():
        result = ToolOutcome(success=False, error_message="cancelled: the chat ended first")
    elif (error := task.exception()) is not None:
        log.error("IDE tool %s failed in the tool host", call.name, exc_info=error)
        result = ToolOutcome(
            success=False, error_message=f"the tool host failed running {call.name}: {error}"
        )
    else:
        result = task.result()
    outcome.set_result(result)


def _preferred_language() -> str:
    """Lingma's answer language follows the user's locale (zh-CN or en-US)."""
    lang = os.environ.get("LANG") or (locale.getlocale()[0] or "")
    return "zh-CN" if lang.lower().startswith("zh") else "en-US"


def _absolute(path: Path) -> Path:
    # abspath, not resolve(): no file system access, and a symlinked workspace keeps the
    # name the user gave it.
    return Path(os.path.abspath(path))

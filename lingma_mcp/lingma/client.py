"""LingmaClient: what the bridge asks of Lingma, in Lingma's plugin dialect.

One client per connection. It builds the payloads the IDE plugins send, answers the
requests Lingma makes of an IDE, and opens chat streams. It knows nothing of processes
(the supervisor) or of MCP (the server).
"""

from __future__ import annotations

import asyncio
import locale
import logging
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import LingmaError
from .auth import AuthStatus
from .jsonrpc import RpcConnection
from .streams import ChatStream, StreamRouter

log = logging.getLogger(__name__)

CLIENT_NAME = "lingma-mcp"

# What the bridge tells Lingma when it asks the IDE to run a tool. Until the bridge hosts
# IDE tools itself, saying "not supported" is the truth; a silent success would tell
# Lingma a file was read or a command run when nothing happened.
TOOL_NOT_SUPPORTED = "not supported by this host: lingma-mcp does not run IDE tools yet"


@dataclass
class ChatRequest:
    """One question for Lingma."""

    prompt: str
    model: str | None = None  # a model key from config/queryModels; None = Lingma's default
    mode: str = "chat"  # chat | agent
    session_id: str | None = None  # an upstream sessionId to continue, from a ChatResult
    workspace: Path | None = None
    tool_config: dict[str, Any] | None = None
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    tool_handler: Any = None  # serves the chat's IDE tools (agent mode); None refuses them


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
        conn.add_close_listener(self.router.connection_lost)
        conn.set_request_handler("tool/invoke", self._refuse_tool)

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

    async def auth_status(self) -> AuthStatus:
        """The login state, with tokens already dropped (see :mod:`.auth`)."""
        return AuthStatus.from_reply(await self._call("auth/status"))

    async def query_models(self) -> dict[str, list[dict[str, Any]]]:
        """Models by scene (``chat``, ``developer``, ...); ``{}`` when logged out."""
        reply = await self._call("config/queryModels")
        if not isinstance(reply, dict):
            return {}
        return {
            scene: [m for m in models if isinstance(m, dict)]
            for scene, models in reply.items()
            if isinstance(models, list)
        }

    async def login_url(self) -> str:
        reply = await self._call("login/generateUrl")
        if isinstance(reply, str):
            return reply
        if isinstance(reply, dict):
            for key in ("loginUrl", "url", "login_url"):
                if isinstance(reply.get(key), str) and reply[key]:
                    return reply[key]
        raise LingmaError("Lingma did not return a login URL")

    async def list_sessions(self, workspace: Path) -> list[dict[str, Any]]:
        reply = await self._call(
            "chat/listAllSessions", {"projectUri": _absolute(workspace).as_uri()}
        )
        if isinstance(reply, dict):  # some versions wrap the list
            reply = reply.get("sessions") or reply.get("data") or []
        return [s for s in reply if isinstance(s, dict)] if isinstance(reply, list) else []

    async def get_session(self, session_id: str) -> dict[str, Any] | None:
        reply = await self._call("chat/getSessionById", {"sessionId": session_id})
        return reply if isinstance(reply, dict) and reply else None

    async def delete_session(self, session_id: str) -> None:
        await self._call("chat/deleteSessionById", {"sessionId": session_id})

    async def _call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        return await self.conn.request(method, params or {}, timeout=self.control_timeout)

    # ------------------------------------------------------------------ chat

    async def open_chat(self, request: ChatRequest) -> ChatStream:
        """Send ``chat/ask`` and return the stream of its events.

        The stream is registered before the question is sent, so no early delta is lost;
        the reply to ``chat/ask`` (it only means "accepted") is not awaited, so it cannot
        delay the first delta.
        """
        session_id = request.session_id or str(uuid.uuid4())
        stream = self.router.open(request.request_id, session_id, stop=self._stop_stream)
        try:
            accepted = await self.conn.send_request(
                "chat/ask", self._ask_payload(request, session_id)
            )
        except BaseException:
            await stream.aclose()
            raise
        self.router.watch_accept(stream, accepted)
        return stream

    async def stop_chat(self, request_id: str, session_id: str | None) -> None:
        await self._call("chat/stop", {"requestId": request_id, "sessionId": session_id or ""})

    async def _stop_stream(self, stream: ChatStream) -> None:
        if not self.conn.closed:
            await self.stop_chat(stream.request_id, stream.session_hint)

    def _ask_payload(self, request: ChatRequest, session_id: str) -> dict[str, Any]:
        agent = request.mode == "agent"
        workspace = _absolute(request.workspace or Path.cwd())
        language = _preferred_language()
        extra: dict[str, Any] = {"workspacePath": str(workspace), "context": []}
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
            "chatContext": {
                "text": request.prompt,
                "features": [],
                "preferredLanguage": language,
                "localeLang": language,
            },
        }
        if request.tool_config is not None:
            payload["toolConfig"] = request.tool_config
        return payload

    # ------------------------------------------------------------------ Lingma's requests

    def _refuse_tool(self, params: dict[str, Any]) -> dict[str, Any] | None:
        """Answer ``tool/invoke`` with an explicit failure (see TOOL_NOT_SUPPORTED)."""
        failure = {
            "toolCallId": params.get("toolCallId") or params.get("tool_call_id"),
            "name": params.get("name") or params.get("toolName"),
            "success": False,
            "errorMessage": TOOL_NOT_SUPPORTED,
            "result": {},
            "startTime": int(time.time() * 1000),
            "timeConsuming": 0,
        }
        log.info(
            "Lingma asked to run IDE tool %s; refused (%s)", failure["name"], TOOL_NOT_SUPPORTED
        )
        if params.get("async") is True:
            # Async protocol: acknowledge now, deliver the outcome as tool/invokeResult.
            task = asyncio.ensure_future(self._send_invoke_result(failure))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
            return None
        return failure

    async def _send_invoke_result(self, failure: dict[str, Any]) -> None:
        try:
            await self.conn.send_request("tool/invokeResult", failure)
        except LingmaError as exc:
            log.debug("could not send tool/invokeResult: %s", exc)


def _preferred_language() -> str:
    """Lingma's answer language follows the user's locale (zh-CN or en-US)."""
    lang = os.environ.get("LANG") or (locale.getlocale()[0] or "")
    return "zh-CN" if lang.lower().startswith("zh") else "en-US"


def _absolute(path: Path) -> Path:
    # abspath, not resolve(): no file system access, and a symlinked workspace keeps the
    # name the user gave it.
    return Path(os.path.abspath(path))

"""What the simulator answers to each method of the plugin dialect (PROTOCOL.md section 5).

Control methods answer at once from the process state; ``chat/ask`` replies "accepted" and
hands the streaming to :mod:`lingma_mcp.sim.chat`. A method not known here gets JSON-RPC
error -32601 when it carries an id, and a log line when it does not (as ``initialized``
does with the binary).
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from lingma_mcp.sim.chat import ChatRun, ChatSpec
from lingma_mcp.sim.context import attachments
from lingma_mcp.sim.start_options import SIM_VERSION
from lingma_mcp.sim.state import noise

if TYPE_CHECKING:
    from lingma_mcp.sim.connection import Connection

log = logging.getLogger("lingma_mcp.sim")

METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603

OK = {"success": True, "errorCode": None, "errorMessage": None}

# The initialize result's capabilities of Lingma 2.11.1, as recorded (PROTOCOL.md section 9).
CAPABILITIES: dict[str, Any] = {
    "textDocumentSync": {"openClose": True, "change": 2, "save": {}},
    "completionProvider": {"triggerCharacters": [".", " ", "\r"], "resolveProvider": True},
    "signatureHelpProvider": {},
    "codeLensProvider": {},
    "documentLinkProvider": {},
    "documentOnTypeFormattingProvider": {"firstTriggerCharacter": ""},
    "executeCommandProvider": {"commands": []},
    "workspace": {
        "workspaceFolders": {
            "supported": True,
            "changeNotifications": "workspace/didChangeWorkspaceFolders",
        }
    },
}


def handle(conn: Connection, method: str, raw_params: Any, msg_id: Any, has_id: bool) -> None:
    """Answer one message from the client (a request when ``has_id``, else a notification).

    Params must be a JSON object, as the binary's Go handlers decode them into structs:
    anything else gets the error Go's decoder gives (PROTOCOL.md section 9 saw it for an
    array sent to ``config/queryModels``). Absent params are taken as ``{}``, except by
    ``config/queryModels``, which the binary is known to insist on ``{}`` for.
    """
    handler = _CHAT.get(method) or _CONTROL.get(method)
    if handler is None:
        log.warning("unknown method: %s", method)
        if has_id:
            conn.reply_error(msg_id, METHOD_NOT_FOUND, f"method not found: {method}")
        return
    refusal = _params_refusal(method, raw_params)
    if refusal is not None:
        log.warning("%s refused: %s", method, refusal)
        if has_id:
            conn.reply_error(msg_id, INVALID_PARAMS, refusal)
        return
    params: dict[str, Any] = raw_params if isinstance(raw_params, dict) else {}
    try:
        result = handler(conn, params)
    except Exception as exc:  # params of an unexpected shape: say so, keep serving
        log.warning("%s failed on params %r: %r", method, params, exc)
        if has_id:
            conn.reply_error(msg_id, INTERNAL_ERROR, f"{method} failed: {exc!r}")
        return
    if has_id:
        conn.reply(msg_id, result)
    after = _AFTER_REPLY.get(method)
    if after is not None:
        after(conn)


_GO_KINDS: tuple[tuple[type, str], ...] = (
    (bool, "bool"),
    (int, "number"),
    (float, "number"),
    (str, "string"),
    (list, "array"),
)


def _params_refusal(method: str, raw: Any) -> str | None:
    """Go's decoding error for params that are not an object, or ``None`` if they are."""
    if isinstance(raw, dict):
        return None
    if raw is None:
        return "unexpected end of JSON input" if method in _OBJECT_REQUIRED else None
    kind = next((name for typ, name in _GO_KINDS if isinstance(raw, typ)), "value")
    return f"json: cannot unmarshal {kind} into Go value of type map[string]interface {{}}"


# -- handshake and account ----------------------------------------------------------------


def _initialize(conn: Connection, params: dict[str, Any]) -> dict[str, Any]:
    folders = params.get("workspaceFolders") or []
    root = params.get("rootUri") or (
        folders[0].get("uri") if folders and isinstance(folders[0], dict) else None
    )
    if root:
        conn.project_uri = root
        conn.workspace = _uri_to_path(root)
    else:
        log.warning("workspacePath is empty")
    client = params.get("clientInfo") or {}
    log.info(
        "initialize from %s (workspace %s)", client.get("name", "unknown client"), conn.workspace
    )
    return {
        "capabilities": CAPABILITIES,
        "serverInfo": {"name": "lingma", "version": SIM_VERSION},
        "experimental": {},
    }


def _broadcast_register(conn: Connection) -> None:
    """After a handshake, send ``extension/register`` to every initialized client.

    The binary broadcasts this request to its clients (PROTOCOL.md section 9); its params
    were not recorded, so the simulator sends an empty extension list. A client must answer
    it (any reply, an error included) like every request, or its window fills.
    """
    conn.initialized = True
    for other in conn.state.live_connections():
        if other.initialized:
            other.spawn(other.request("extension/register", {"extensions": []}))


def _auth_status(conn: Connection, params: dict[str, Any]) -> dict[str, Any]:
    return conn.state.account.status()


def _query_models(conn: Connection, params: dict[str, Any]) -> dict[str, Any]:
    return conn.state.account.models()


def _login_url(conn: Connection, params: dict[str, Any]) -> dict[str, Any]:
    return conn.state.account.login_url()


def _logout(conn: Connection, params: dict[str, Any]) -> dict[str, Any]:
    conn.state.account.logout()
    log.info("logged out")
    return dict(OK)


def _get_endpoint(conn: Connection, params: dict[str, Any]) -> dict[str, Any]:
    return {"endpoint": conn.state.account.endpoint}


def _update_endpoint(conn: Connection, params: dict[str, Any]) -> dict[str, Any]:
    endpoint = params.get("endpoint")
    if not isinstance(endpoint, str) or not endpoint.startswith(("http://", "https://")):
        return {
            "success": False,
            "errorCode": "INVALID_PARAM",
            "errorMessage": f"bad endpoint: {endpoint!r}",
        }
    conn.state.account.endpoint = endpoint
    return dict(OK)


def _approve(conn: Connection, params: dict[str, Any]) -> dict[str, Any]:
    """``tool/call/approve {sessionId, requestId, toolCallId, approval}`` for a PENDING call.

    The decision reaches the chat waiting for it only when the ids match the PENDING
    event and ``approval`` is a boolean; otherwise the reply says what was wrong and the
    call keeps waiting. (The binary's reply is unrecorded; this one has the shape of the
    ``tool/invokeResult`` acknowledgement.)
    """
    tool_id = str(params.get("toolCallId") or "")
    waiting = conn.approvals.get(tool_id)
    if waiting is None:
        log.warning("tool/call/approve for %r, which no chat is waiting for", tool_id)
        return _tool_error("TOOL_CALL_NOT_FOUND", f"no tool call {tool_id!r} awaits approval")
    session_id, request_id, decision = waiting
    approval = params.get("approval")
    wrong = [
        name
        for name, expected in (("sessionId", session_id), ("requestId", request_id))
        if params.get(name) != expected
    ]
    if wrong or not isinstance(approval, bool):
        problem = (
            f"{' and '.join(wrong)} do not match the PENDING tool/call/sync"
            if wrong
            else f"approval must be true or false, got {approval!r}"
        )
        log.warning("tool/call/approve for %s refused: %s", tool_id, problem)
        return _tool_error("INVALID_PARAM", problem)
    del conn.approvals[tool_id]
    if not decision.done():
        decision.set_result(approval)
    return {"errorCode": None, "errorMessage": None}


def _tool_error(code: str, message: str) -> dict[str, Any]:
    return {"errorCode": code, "errorMessage": message}


def _tool_invoke_result(conn: Connection, params: dict[str, Any]) -> dict[str, Any]:
    """The outcome of an async ``tool/invoke``, delivered to the chat waiting for it."""
    tool_id = params.get("toolCallId") or params.get("tool_call_id")
    waiting = conn.tool_results.pop(str(tool_id), None)
    if waiting is None:
        log.warning("tool/invokeResult for %r, which no chat is waiting for", tool_id)
    elif not waiting.done():
        waiting.set_result(params)
    return {"errorCode": None, "errorMessage": None}


# -- conversations ------------------------------------------------------------------------


def _list_sessions(conn: Connection, params: dict[str, Any]) -> list[dict[str, Any]]:
    return conn.state.store.list(params.get("projectUri"))


def _get_session(conn: Connection, params: dict[str, Any]) -> dict[str, Any] | None:
    return conn.state.store.get(str(params.get("sessionId", "")))


def _delete_session(conn: Connection, params: dict[str, Any]) -> dict[str, Any]:
    found = conn.state.store.delete(str(params.get("sessionId", "")))
    return dict(OK) if found else {**OK, "success": False, "errorMessage": "session not found"}


def _delete_chat(conn: Connection, params: dict[str, Any]) -> dict[str, Any]:
    found = conn.state.store.delete_chat(str(params.get("requestId", "")))
    return dict(OK) if found else {**OK, "success": False, "errorMessage": "chat record not found"}


def _clear_sessions(conn: Connection, params: dict[str, Any]) -> dict[str, Any]:
    conn.state.store.clear()
    return dict(OK)


# -- chats --------------------------------------------------------------------------------


def _chat_ask(conn: Connection, params: dict[str, Any]) -> dict[str, Any]:
    request_id = str(params.get("requestId") or f"sim-req-{uuid.uuid4()}")
    question = _question_of(params)
    refused = None
    if not question.strip():
        refused = ("INVALID_PARAM", "question is empty: send the question in questionText")
    elif not conn.state.account.usable:
        refused = (
            "NOT_LOGIN",
            f"Lingma is not logged in ({conn.state.account.state}); log in first",
        )
    elif request_id in conn.chats:
        refused = ("DUPLICATE_REQUEST", f"a chat with requestId {request_id} is already running")
    if refused is not None:
        log.warning("chat/ask %s refused: %s", request_id, refused[1])
        return _accepted(request_id, False, *refused)
    extra = params.get("extra") if isinstance(params.get("extra"), dict) else {}
    model = (extra.get("modelConfig") or {}).get("key") or "auto"
    mode = str(params.get("mode") or "chat")
    workspace = str(extra.get("workspacePath") or conn.workspace or conn.options.work_dir)
    spec = ChatSpec(
        request_id=request_id,
        question=question,
        model=str(model),
        agent=mode == "agent" or params.get("sessionType") == "developer",
        chat_task=str(params.get("chatTask") or "FREE_INPUT"),
        session_hint=params.get("sessionId") or None,
        is_reply=bool(params.get("isReply")),
        workspace=os.path.abspath(workspace),
        attached=attachments(params),
    )
    project_uri = conn.project_uri or Path(spec.workspace).as_uri()
    noise(f"[chat] ask requestId={request_id} mode={mode} model={model}")
    run = ChatRun(conn, spec, project_uri)
    conn.chats[request_id] = run
    conn.spawn(run.run())
    return _accepted(request_id, True)


def _chat_stop(conn: Connection, params: dict[str, Any]) -> dict[str, Any]:
    run = conn.chats.get(str(params.get("requestId", "")))
    if run is None:
        return {**OK, "success": False, "errorMessage": "no running chat with that requestId"}
    run.stop()
    return dict(OK)


def _chat_stop_session(conn: Connection, params: dict[str, Any]) -> dict[str, Any]:
    session_id = params.get("sessionId")
    for run in list(conn.chats.values()):
        if run.session_id == session_id:
            run.stop()
    return dict(OK)


def _accepted(
    request_id: str, ok: bool, code: str | None = None, message: str | None = None
) -> dict[str, Any]:
    """The chat/ask reply, as Lingma 2.11.1 sent it (PROTOCOL.md section 9).

    On success the binary sent ``{"requestId":"","success":true,"errorCode":"",
    "errorMessage":"","data":null}``: empty strings, not nulls, and an empty requestId. A
    refusal was not recorded; it keeps that shape with a code and a message.
    """
    return {
        "requestId": "",
        "success": ok,
        "errorCode": code or "",
        "errorMessage": message or "",
        "data": None,
    }


def _question_of(params: dict[str, Any]) -> str:
    """The question: ``questionText`` alone, the one field the binary reads.

    A client that puts the prompt only in ``text``, ``content``, ``message`` or
    ``chatContext.text`` (duplicates the seed client used to send) gets "question is empty".
    """
    value = params.get("questionText")
    return value if isinstance(value, str) else ""


def _uri_to_path(uri: str) -> str:
    parsed = urlparse(uri)
    return unquote(parsed.path) if parsed.scheme == "file" else uri


Handler = Callable[["Connection", dict[str, Any]], Any]

_CHAT: dict[str, Handler] = {
    "chat/ask": _chat_ask,
    "chat/stop": _chat_stop,
    "chat/stopSession": _chat_stop_session,
}
_CONTROL: dict[str, Handler] = {
    "initialize": _initialize,
    "auth/status": _auth_status,
    "config/queryModels": _query_models,
    "login/generateUrl": _login_url,
    "auth/logout": _logout,
    "config/getEndpoint": _get_endpoint,
    "config/updateEndpoint": _update_endpoint,
    "chat/listAllSessions": _list_sessions,
    "chat/getSessionById": _get_session,
    "chat/deleteSessionById": _delete_session,
    "chat/deleteChatById": _delete_chat,
    "chat/clearAllSessions": _clear_sessions,
    "tool/call/approve": _approve,
    "tool/invokeResult": _tool_invoke_result,
}

# Run after the reply is queued, so the client sees the reply first.
_AFTER_REPLY: dict[str, Callable[[Connection], None]] = {
    "initialize": _broadcast_register,
}
_OBJECT_REQUIRED = frozenset({"config/queryModels"})

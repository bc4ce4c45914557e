"""JSON-RPC 2.0 bookkeeping for one connection, without any I/O.

Decoded messages go in through :meth:`RpcProtocol.receive`, small events come out; a
request to send comes out of :meth:`RpcProtocol.start_request` as a message and an id.
The protocol object keeps the ids and the pending requests (each with an opaque
``waiter`` the caller chose: the asyncio shell uses a future) and decides what a request
of Lingma's gets as its answer when nobody handles it. It never raises on what the peer
sent: a malformed message becomes a :class:`Malformed` event, so one bad reply cannot
take the connection with it.

A message is classified by the presence of ``method`` alone, never by its id: with a
method it is a request (it has an ``id``) or a notification (it has none); without one it
is a response to one of ours.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ..errors import RpcError

W = TypeVar("W")

METHOD_NOT_FOUND = -32601
INVALID_REQUEST = -32600
INTERNAL_ERROR = -32603

# Methods Lingma sends as requests only so that it hears back; a null reply is the truth
# for them (the IDE plugins and every public gateway answer these with null or {}).
EVENT_METHODS: frozenset[str] = frozenset(
    {
        "chat/answer",
        "chat/think",
        "chat/finish",
        "chat/process_step_callback",
        "chat/summary",
        "tool/call/sync",
        "tool/call/approve",
        "tool/call/results",
        "tool/invokeResult",
        "session/title/update",
        "session/update",
        "window/logMessage",
        "window/showMessage",
        "$/progress",
        # Broadcast by the binary to every connected client (PROTOCOL.md section 9); a
        # client with no extensions to register has nothing to say but "heard".
        "extension/register",
    }
)


# ---------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class Request:
    """Lingma asks something and waits for the reply that carries ``id``."""

    id: Any
    method: str
    params: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Notification:
    """Lingma tells something and expects no reply."""

    method: str
    params: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Response(Generic[W]):
    """The result of one of our requests."""

    id: int
    method: str
    waiter: W
    result: Any


@dataclass(frozen=True, slots=True)
class ErrorResponse(Generic[W]):
    """Lingma answered one of our requests with a well-formed error object."""

    id: int
    method: str
    waiter: W
    error: RpcError


@dataclass(frozen=True, slots=True)
class Malformed(Generic[W]):
    """A message that breaks JSON-RPC; it was skipped.

    ``waiter`` is set when the message could still be tied to one of our requests (a reply
    with a bad error object, say): that request is over, and its caller should hear so at
    once rather than wait out its timeout. ``answer`` is the error reply to send back when
    the message was a request we cannot take.
    """

    reason: str
    method: str | None = None
    waiter: W | None = None
    answer: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Unmatched:
    """A reply to no request we are waiting for (abandoned, timed out, or never sent)."""

    id: Any


Event = Request | Notification | Response[W] | ErrorResponse[W] | Malformed[W] | Unmatched


# ---------------------------------------------------------------------- messages


def request_message(msg_id: int, method: str, params: Any) -> dict[str, Any]:
    # Lingma's Go side unmarshals params into a struct: `{}` is what it wants for "none"
    # (config/queryModels rejects an array, PROTOCOL.md section 9).
    return {"jsonrpc": "2.0", "id": msg_id, "method": method, "params": _or_empty(params)}


def notification_message(method: str, params: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "method": method, "params": _or_empty(params)}


def result_message(msg_id: Any, result: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": msg_id, "result": result}


def error_message(msg_id: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": msg_id, "error": {"code": code, "message": message}}


def unhandled_answer(request: Request) -> dict[str, Any]:
    """The reply to a request nobody handles: null for an event, else "method not found"."""
    if request.method in EVENT_METHODS:
        return result_message(request.id, None)
    return error_message(request.id, METHOD_NOT_FOUND, f"method not found: {request.method}")


def _or_empty(params: Any) -> Any:
    return {} if params is None else params


def _params(message: dict[str, Any]) -> dict[str, Any]:
    params = message.get("params")
    if isinstance(params, dict):
        return params
    return {} if params is None else {"value": params}


def _valid_request_id(value: Any) -> bool:
    # JSON-RPC ids are strings, numbers or null; a bool is a JSON true/false, not a number.
    return (
        value is None
        or isinstance(value, str)
        or (isinstance(value, (int, float)) and not isinstance(value, bool))
    )


# ---------------------------------------------------------------------- the protocol


class RpcProtocol(Generic[W]):
    """Ids, pending requests and the classification of what Lingma sends.

    Cost: O(1) per message; the pending table holds one entry per request in flight and
    loses it when the reply comes, when :meth:`forget` is called, or on :meth:`fail_all`.
    """

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._pending: dict[int, tuple[str, W]] = {}

    @property
    def pending(self) -> int:
        return len(self._pending)

    def waiters(self) -> list[W]:
        """The waiters of every request still pending, oldest first."""
        return [waiter for _, waiter in self._pending.values()]

    def start_request(self, method: str, params: Any, waiter: W) -> tuple[int, dict[str, Any]]:
        """Register a request; return its id and the message to send."""
        msg_id = next(self._ids)
        self._pending[msg_id] = (method, waiter)
        return msg_id, request_message(msg_id, method, params)

    def forget(self, msg_id: int) -> None:
        """Nobody waits for this reply any more: a late one must find nothing to keep."""
        self._pending.pop(msg_id, None)

    def fail_all(self) -> list[W]:
        """Drop every pending request (the connection ended); return their waiters."""
        pending, self._pending = self._pending, {}
        return [waiter for _, waiter in pending.values()]

    def receive(self, message: Any) -> Event[W]:
        """Classify one decoded message. Never raises on what the peer sent."""
        if not isinstance(message, dict):
            return Malformed(f"not a JSON object: {_preview(message)}")
        if "method" in message:
            return self._incoming_call(message)
        if "id" not in message:
            return Malformed(f"neither method nor id: {_preview(message)}")
        return self._response(message)

    def _incoming_call(self, message: dict[str, Any]) -> Event[W]:
        method = message["method"]
        has_id = "id" in message
        if not isinstance(method, str) or (has_id and not _valid_request_id(message["id"])):
            # The spec's answer to a request whose id cannot be trusted: -32600, id null.
            answer = error_message(None, INVALID_REQUEST, "invalid request") if has_id else None
            return Malformed(f"invalid request: {_preview(message)}", answer=answer)
        if has_id:
            return Request(message["id"], method, _params(message))
        return Notification(method, _params(message))

    def _response(self, message: dict[str, Any]) -> Event[W]:
        msg_id = message["id"]
        # Our ids are ints; anything else (a string, a list that cannot even be a dict key)
        # answers nothing of ours.
        if type(msg_id) is not int:
            return Unmatched(msg_id)
        entry = self._pending.pop(msg_id, None)
        if entry is None:
            return Unmatched(msg_id)
        method, waiter = entry
        # Lingma's error envelopes carry "result": null beside "error" (PROTOCOL.md
        # section 9): an error wins.
        error = message.get("error")
        if error is not None:
            parsed = _rpc_error(method, error)
            if isinstance(parsed, str):
                return Malformed(f"reply to {method}: {parsed}", method=method, waiter=waiter)
            return ErrorResponse(msg_id, method, waiter, parsed)
        if "result" not in message:
            return Malformed(
                f"reply to {method} has neither result nor error", method=method, waiter=waiter
            )
        return Response(msg_id, method, waiter, message["result"])


def _rpc_error(method: str, error: Any) -> RpcError | str:
    """The error object as an RpcError, or why it is not one."""
    if not isinstance(error, dict):
        return f"error is not an object: {_preview(error)}"
    code = error.get("code")
    if type(code) is not int:
        return f"error code is not an integer: {_preview(code)}"
    message = error.get("message", "")
    return RpcError(
        method, code, message if isinstance(message, str) else str(message), error.get("data")
    )


def _preview(value: Any) -> str:
    return repr(value)[:200]

"""JSON-RPC 2.0 over one WebSocket to Lingma: requests, replies, notifications.

This module knows requests, responses and who is waiting for what; it knows nothing of
chats. Messages Lingma sends with a method are handed to listeners (the stream router)
after they have been answered.

Lingma declares its chat events (``chat/answer``, ``chat/finish``, ``tool/call/sync`` ...)
as *requests*: each carries an id and Lingma may stall until it gets a reply. So every
message with an id is answered at once, before it is processed further, and the answer
says the truth: ``null`` for events that expect nothing, a handler's result for requests
that ask something (``tool/invoke``), and "method not found" for the rest.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from ..errors import LingmaConnectionLost, RpcError, RpcTimeout
from .framing import DEFAULT_MAX_BODY, FrameDecoder, FrameError, encode_frame_text

log = logging.getLogger(__name__)

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
    }
)

METHOD_NOT_FOUND = -32601
INTERNAL_ERROR = -32603

RequestHandler = Callable[[dict[str, Any]], Any | Awaitable[Any]]
Listener = Callable[[str, dict[str, Any]], None]
CloseListener = Callable[[BaseException], None]


def _params(message: dict[str, Any]) -> dict[str, Any]:
    params = message.get("params")
    if isinstance(params, dict):
        return params
    return {} if params is None else {"value": params}


def _reply_frame(msg_id: Any, *, result: Any = None, error: dict[str, Any] | None = None) -> str:
    if error is None and result is None and type(msg_id) is int:
        # The reply to every chat delta: formatted directly, as it is the one message the
        # bridge sends per delta Lingma streams.
        body = f'{{"jsonrpc":"2.0","id":{msg_id},"result":null}}'
        return f"Content-Length: {len(body)}\r\n\r\n{body}"
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": msg_id}
    if error is None:
        message["result"] = result
    else:
        message["error"] = error
    return encode_frame_text(message)


def _many_writer(ws: Any) -> Callable[[list[str]], Awaitable[None]] | None:
    """A way to write several whole WebSocket messages in one socket write, if ``ws`` has one.

    ``websockets``' connections queue frames on their sans-I/O ``protocol`` and flush them
    when ``send_context`` exits; that is exactly what its own ``send()`` does for one
    message. Anything else (a test double, another library) gets one ``send()`` per reply.
    """
    protocol = getattr(ws, "protocol", None)
    send_context = getattr(ws, "send_context", None)
    if protocol is None or send_context is None or not hasattr(protocol, "send_text"):
        return None

    async def write_many(texts: list[str]) -> None:
        async with send_context():
            for text in texts:  # no await in between: nothing can interleave
                protocol.send_text(text.encode("utf-8"))

    return write_many


class WebSocketLike(Protocol):
    """What the connection needs of a WebSocket (``websockets``' client connection fits)."""

    async def send(self, message: str | bytes) -> None: ...

    async def recv(self) -> str | bytes: ...

    async def close(self) -> None: ...


class RpcConnection:
    """One JSON-RPC session with Lingma over an open WebSocket.

    Args:
        ws: the open connection.
        name: a label for log lines (useful once there is a pool).
        max_body: the largest frame body accepted, in bytes.
        request_handlers: replies for requests Lingma sends that ask for something;
            a handler takes the params and returns the result (or a coroutine of it).
    """

    def __init__(
        self,
        ws: WebSocketLike,
        *,
        name: str = "lingma",
        max_body: int = DEFAULT_MAX_BODY,
        request_handlers: Mapping[str, RequestHandler] | None = None,
    ) -> None:
        self._ws = ws
        self._name = name
        self._decoder = FrameDecoder(max_body=max_body)
        self._handlers: dict[str, RequestHandler] = dict(request_handlers or {})
        self._ids = itertools.count(1)
        self._pending: dict[int, tuple[str, asyncio.Future[Any]]] = {}
        self._listeners: list[Listener] = []
        self._close_listeners: list[CloseListener] = []
        self._reader: asyncio.Task[None] | None = None
        self._handler_tasks: set[asyncio.Task[None]] = set()
        self._closed: asyncio.Future[BaseException] | None = None
        self._write_many = _many_writer(ws)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Begin reading from the socket. Call once, from the event loop."""
        loop = asyncio.get_running_loop()
        self._closed = loop.create_future()
        self._reader = loop.create_task(self._read_loop(), name=f"{self._name}-rpc-reader")

    @property
    def closed(self) -> bool:
        return self._closed is not None and self._closed.done()

    @property
    def pending_requests(self) -> int:
        """Requests sent and not yet answered (for leak checks)."""
        return len(self._pending)

    async def wait_closed(self) -> BaseException:
        """Wait until the connection has ended; return why."""
        assert self._closed is not None, "start() was not called"
        return await asyncio.shield(self._closed)

    async def close(self, reason: str = "closed by the bridge") -> None:
        """Close the socket and fail everything still waiting on it."""
        self._finish(LingmaConnectionLost(f"connection to Lingma {reason}"))
        try:
            await self._ws.close()
        except Exception as exc:  # a socket already gone has nothing left to close
            log.debug("%s: error closing socket: %s", self._name, exc)
        if self._reader is not None and self._reader is not asyncio.current_task():
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(method, params)`` for every method message Lingma sends."""
        self._listeners.append(listener)

    def add_close_listener(self, listener: CloseListener) -> None:
        """Call ``listener(exc)`` once when the connection ends, whatever the cause."""
        if self._closed is not None and self._closed.done():
            listener(self._closed.result())
        else:
            self._close_listeners.append(listener)

    def set_request_handler(self, method: str, handler: RequestHandler) -> None:
        self._handlers[method] = handler

    # ------------------------------------------------------------------ outgoing

    async def request(self, method: str, params: Any = None, *, timeout: float) -> Any:
        """Send a request and wait for its result.

        Raises:
            RpcError: Lingma answered with an error object.
            RpcTimeout: no answer within ``timeout`` seconds.
            LingmaConnectionLost: the connection ended first.
        """
        msg_id, future = await self._start_request(method, params)
        try:
            return await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            raise RpcTimeout(method, timeout) from None
        finally:
            # Answered, timed out or abandoned: nobody waits any more, so a late reply
            # must find nothing to keep.
            self._pending.pop(msg_id, None)

    async def send_request(self, method: str, params: Any = None) -> asyncio.Future[Any]:
        """Send a request; return the future of its result without waiting for it.

        For ``chat/ask``, whose reply only means "accepted": the caller streams events
        while the reply is still on its way. The entry is dropped when the reply comes or
        the connection ends.
        """
        return (await self._start_request(method, params))[1]

    async def _start_request(self, method: str, params: Any) -> tuple[int, asyncio.Future[Any]]:
        if self.closed:
            raise self._closed_error()
        msg_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[msg_id] = (method, future)
        # A caller that gives up cancels the future; its entry goes with it, whether or not
        # Lingma ever replies (the earlier client saw chat/ask go unanswered).
        future.add_done_callback(lambda f: f.cancelled() and self._pending.pop(msg_id, None))
        try:
            await self._send(
                {"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params or {}}
            )
        except BaseException:
            self._pending.pop(msg_id, None)
            raise
        return msg_id, future

    async def notify(self, method: str, params: Any = None) -> None:
        """Send a notification (no reply expected)."""
        if self.closed:
            raise self._closed_error()
        await self._send({"jsonrpc": "2.0", "method": method, "params": params or {}})

    async def _send(self, message: dict[str, Any]) -> None:
        try:
            await self._ws.send(encode_frame_text(message))
        except Exception as exc:
            # A failed write means the socket is gone; the reader will see it too, but
            # failing here at once spares callers a wait.
            self._finish(LingmaConnectionLost(f"connection to Lingma lost while sending: {exc}"))
            raise self._closed_error() from exc

    # ------------------------------------------------------------------ incoming

    async def _read_loop(self) -> None:
        reason: BaseException
        try:
            while True:
                data = await self._ws.recv()
                messages = []
                for item in self._decoder.feed(data):
                    if isinstance(item, FrameError):
                        log.warning("%s: malformed frame from Lingma: %s", self._name, item)
                    elif not isinstance(item, dict):
                        log.warning("%s: ignoring non-object message: %.200r", self._name, item)
                    else:
                        messages.append(item)
                # Every request in this message is answered before any of it is processed,
                # in one write: Lingma streams a request per delta, and one write per reply
                # was the largest cost per delta.
                replies = [
                    text
                    for message in messages
                    if "id" in message and isinstance(message.get("method"), str)
                    if (text := self._reply_text(message)) is not None
                ]
                if replies:
                    await self._write_replies(replies)
                for message in messages:
                    self._dispatch(message)
        except asyncio.CancelledError:
            reason = LingmaConnectionLost("connection to Lingma closed by the bridge")
        except Exception as exc:
            # ConnectionClosed and friends: the normal way a connection ends.
            reason = LingmaConnectionLost(f"connection to Lingma lost: {exc}")
            log.info("%s: %s", self._name, reason)
        self._finish(reason)

    def _dispatch(self, message: dict[str, Any]) -> None:
        method = message.get("method")
        if isinstance(method, str):
            params = _params(message)
            for listener in self._listeners:
                try:
                    listener(method, params)
                except Exception:
                    log.exception("%s: listener failed on %s", self._name, method)
            return
        if "id" in message:
            self._resolve(message)
            return
        log.warning("%s: ignoring message with neither method nor id: %.200r", self._name, message)

    def _reply_text(self, message: dict[str, Any]) -> str | None:
        """The framed reply to one of Lingma's requests; None if a handler answers later."""
        msg_id, method = message["id"], message["method"]
        handler = self._handlers.get(method)
        if handler is None:
            if method in EVENT_METHODS:
                return _reply_frame(msg_id, result=None)
            log.info("%s: Lingma asked %s, which the bridge does not implement", self._name, method)
            error = {"code": METHOD_NOT_FOUND, "message": f"method not found: {method}"}
            return _reply_frame(msg_id, error=error)
        try:
            result = handler(_params(message))
        except Exception as exc:
            log.exception("%s: handler for %s failed", self._name, method)
            return _reply_frame(msg_id, error={"code": INTERNAL_ERROR, "message": str(exc)})
        if inspect.isawaitable(result):
            # A slow handler must not hold up the deltas queued behind it.
            self._spawn(self._reply_later(msg_id, method, result))
            return None
        return _reply_frame(msg_id, result=result)

    async def _write_replies(self, texts: list[str]) -> None:
        try:
            if self._write_many is not None and len(texts) > 1:
                await self._write_many(texts)
            else:
                for text in texts:
                    await self._ws.send(text)
        except Exception as exc:
            # Nobody waits on a reply we send, and the reader will see the socket end after
            # it has delivered what was already received, so nothing is lost by going on.
            log.debug("%s: could not send %d replies: %s", self._name, len(texts), exc)

    async def _reply_later(self, msg_id: Any, method: str, pending: Awaitable[Any]) -> None:
        try:
            result = await pending
        except Exception as exc:
            log.exception("%s: handler for %s failed", self._name, method)
            await self._reply(msg_id, error={"code": INTERNAL_ERROR, "message": str(exc)})
        else:
            await self._reply(msg_id, result=result)

    async def _reply(
        self, msg_id: Any, *, result: Any = None, error: dict[str, Any] | None = None
    ) -> None:
        await self._write_replies([_reply_frame(msg_id, result=result, error=error)])

    def _resolve(self, message: dict[str, Any]) -> None:
        entry = self._pending.pop(message["id"], None)
        if entry is None:
            log.debug("%s: reply to unknown or abandoned request id %r", self._name, message["id"])
            return
        method, future = entry
        if future.done():
            return
        error = message.get("error")
        if error is not None:
            if not isinstance(error, dict):
                error = {"code": INTERNAL_ERROR, "message": str(error)}
            future.set_exception(
                RpcError(
                    method,
                    int(error.get("code", INTERNAL_ERROR)),
                    str(error.get("message", "")),
                    error.get("data"),
                )
            )
        else:
            future.set_result(message.get("result"))

    # ------------------------------------------------------------------ ending

    def _finish(self, reason: BaseException) -> None:
        """Mark the connection ended and fail every waiter at once (idempotent)."""
        if self._closed is None or self._closed.done():
            return
        self._closed.set_result(reason)
        pending, self._pending = self._pending, {}
        for _, future in pending.values():
            if not future.done():
                future.set_exception(LingmaConnectionLost(str(reason)))
                future.exception()  # mark retrieved: a caller may have given up on it
        listeners, self._close_listeners = self._close_listeners, []
        for listener in listeners:
            try:
                listener(reason)
            except Exception:
                log.exception("%s: close listener failed", self._name)

    def _closed_error(self) -> LingmaConnectionLost:
        if self._closed is not None and self._closed.done():
            return LingmaConnectionLost(str(self._closed.result()))
        return LingmaConnectionLost("connection to Lingma is closed")

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._handler_tasks.add(task)
        task.add_done_callback(self._handler_tasks.discard)

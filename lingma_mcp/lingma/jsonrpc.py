"""JSON-RPC 2.0 over one WebSocket to Lingma: the asyncio shell around :mod:`.rpc`.

The bookkeeping (ids, pending requests, what each message is, what to answer) lives in
:class:`~.rpc.RpcProtocol`, without I/O; this module reads and writes the socket, keeps
one future per request, and runs handlers. It knows nothing of chats. Messages Lingma
sends with a method are handed to listeners (the stream router) after they were answered.

Lingma declares its chat events (``chat/answer``, ``chat/finish``, ``tool/call/sync`` ...)
as *requests*: each carries an id and Lingma may stall until it gets a reply. So every
message with an id is answered at once, before it is processed further, and the answer
says the truth: ``null`` for events that expect nothing, a handler's result for requests
that ask something (``tool/invoke``), and "method not found" for the rest.

What ends a connection: the socket closing, a failed write, or a frame after which the
decoder cannot find the next one (:attr:`FrameError.fatal`). Nothing else does: a
malformed message is logged and skipped (its waiter, if any, gets a
:class:`ProtocolError` at once), and a failing handler or listener is a bug, logged whole
and answered with -32603.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from ..errors import LingmaConnectionLost, ProtocolError, RpcTimeout
from .framing import DEFAULT_MAX_BODY, FrameDecoder, FrameError, encode_frame_text
from .rpc import (
    EVENT_METHODS,
    INTERNAL_ERROR,
    METHOD_NOT_FOUND,
    ErrorResponse,
    Malformed,
    Notification,
    Request,
    Response,
    RpcProtocol,
    Unmatched,
    error_message,
    notification_message,
    result_message,
    unhandled_answer,
)

__all__ = [
    "EVENT_METHODS",
    "INTERNAL_ERROR",
    "METHOD_NOT_FOUND",
    "RpcConnection",
    "WebSocketLike",
]

log = logging.getLogger(__name__)

RequestHandler = Callable[[dict[str, Any]], Any | Awaitable[Any]]
Listener = Callable[[str, dict[str, Any]], None]
CloseListener = Callable[[BaseException], None]


def _frame(message: dict[str, Any]) -> str:
    if (
        "result" in message
        and message["result"] is None
        and type(message.get("id")) is int
        and len(message) == 3
    ):
        # The reply to every chat delta: formatted directly, as it is the one message the
        # bridge sends per delta Lingma streams.
        body = f'{{"jsonrpc":"2.0","id":{message["id"]},"result":null}}'
        return f"Content-Length: {len(body)}\r\n\r\n{body}"
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
        self._rpc: RpcProtocol[asyncio.Future[Any]] = RpcProtocol()
        self._handlers: dict[str, RequestHandler] = dict(request_handlers or {})
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
        """Requests whose caller still waits for the reply (for leak checks).

        A request its caller gave up on (its future cancelled) is not counted: its entry
        goes in the callback the cancellation schedules, one loop turn later.
        """
        return sum(not future.done() for future in self._rpc.waiters())

    async def wait_closed(self) -> BaseException:
        """Wait until the connection has ended; return why."""
        assert self._closed is not None, "start() was not called"
        return await asyncio.shield(self._closed)

    async def close(self, reason: str = "closed by the bridge") -> None:
        """Close the socket, fail everything still waiting on it, end every task it ran."""
        self._finish(LingmaConnectionLost(f"connection to Lingma {reason}"))
        try:
            await self._ws.close()
        except Exception as exc:  # a socket already gone has nothing left to close
            log.debug("%s: error closing socket: %s", self._name, exc)
        tasks = [task for task in self._handler_tasks if task is not asyncio.current_task()]
        if self._reader is not None and self._reader is not asyncio.current_task():
            tasks.append(self._reader)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

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
            ProtocolError: Lingma's reply was not a well-formed JSON-RPC response.
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
            self._rpc.forget(msg_id)

    async def send_request(self, method: str, params: Any = None) -> asyncio.Future[Any]:
        """Send a request; return the future of its result without waiting for it.

        For ``chat/ask``, whose reply only means "accepted", and ``chat/stop``, whose reply
        nobody needs: the caller goes on while the reply is still on its way. Cancel the
        future to forget the request; its entry also goes when the reply comes or the
        connection ends.
        """
        return (await self._start_request(method, params))[1]

    async def _start_request(self, method: str, params: Any) -> tuple[int, asyncio.Future[Any]]:
        if self.closed:
            raise self._closed_error()
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        msg_id, message = self._rpc.start_request(method, params, future)
        # A caller that gives up cancels the future; its entry goes with it, whether or not
        # Lingma ever replies (the earlier client saw chat/ask go unanswered).
        future.add_done_callback(lambda f: f.cancelled() and self._rpc.forget(msg_id))
        try:
            await self._send(message)
        except BaseException:
            self._rpc.forget(msg_id)
            raise
        return msg_id, future

    async def notify(self, method: str, params: Any = None) -> None:
        """Send a notification (no reply expected)."""
        if self.closed:
            raise self._closed_error()
        await self._send(notification_message(method, params))

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
        reason: LingmaConnectionLost | None = None
        try:
            while reason is None:
                data = await self._ws.recv()
                try:
                    reason = await self._take(data)
                except Exception:
                    # Our bug, not a lost connection: say so loudly and read on.
                    log.exception("%s: failed to process a message from Lingma", self._name)
        except asyncio.CancelledError:
            reason = LingmaConnectionLost("connection to Lingma closed by the bridge")
        except Exception as exc:
            # ConnectionClosed and friends: the normal way a connection ends.
            reason = LingmaConnectionLost(f"connection to Lingma lost: {exc}")
            log.info("%s: %s", self._name, reason)
        else:
            # A fatal frame: fail everyone at once, then let go of the socket, so the
            # supervisor sees a lost connection and starts a new one.
            log.warning("%s: %s; dropping the connection", self._name, reason)
            self._finish(reason)
            try:
                await self._ws.close()
            except Exception as exc:
                log.debug("%s: error closing socket: %s", self._name, exc)
        self._finish(reason)

    async def _take(self, data: str | bytes) -> LingmaConnectionLost | None:
        """Handle one WebSocket message; return why to stop reading, if it was fatal."""
        events: list[Any] = []
        fatal: LingmaConnectionLost | None = None
        for item in self._decoder.feed(data):
            if isinstance(item, FrameError):
                if item.fatal:
                    # What was decoded before it is still good and is delivered below.
                    fatal = LingmaConnectionLost(f"Lingma sent an unreadable frame: {item}")
                    break
                log.warning("%s: malformed frame from Lingma: %s", self._name, item)
            else:
                events.append(self._rpc.receive(item))
        # A request with a handler (tool/invoke) starts work of its own: what came before it
        # in this message is delivered first, so the text Lingma wrote before a tool call is
        # in the chat's stream before the tool (and any approval question it asks) runs.
        start = 0
        for at, event in enumerate(events):
            if at > start and isinstance(event, Request) and event.method in self._handlers:
                await self._deliver(events[start:at])
                start = at
        await self._deliver(events[start:])
        return fatal

    async def _deliver(self, events: list[Any]) -> None:
        # Every request here is answered before any of it is processed, in one write:
        # Lingma streams a request per delta, and one write per reply was the largest cost
        # per delta.
        replies = [answer for event in events if (answer := self._answer_now(event)) is not None]
        if replies:
            await self._write_replies(replies)
        for event in events:
            self._dispatch(event)

    def _answer_now(self, event: Any) -> str | None:
        """The framed reply owed for this event now; None if none (or a handler answers later)."""
        if isinstance(event, Malformed):
            return _frame(event.answer) if event.answer is not None else None
        if not isinstance(event, Request):
            return None
        handler = self._handlers.get(event.method)
        if handler is None:
            if event.method not in EVENT_METHODS:
                log.info(
                    "%s: Lingma asked %s, which the bridge does not implement",
                    self._name,
                    event.method,
                )
            return _frame(unhandled_answer(event))
        try:
            result = handler(event.params)
        except Exception as exc:
            log.exception("%s: handler for %s failed", self._name, event.method)
            return _frame(error_message(event.id, INTERNAL_ERROR, str(exc)))
        if inspect.isawaitable(result):
            # A slow handler must not hold up the deltas queued behind it.
            self._spawn(self._reply_later(event, result))
            return None
        return _frame(result_message(event.id, result))

    def _dispatch(self, event: Any) -> None:
        if isinstance(event, (Request, Notification)):
            for listener in self._listeners:
                try:
                    listener(event.method, event.params)
                except Exception:
                    log.exception("%s: listener failed on %s", self._name, event.method)
        elif isinstance(event, Response):
            if not event.waiter.done():
                event.waiter.set_result(event.result)
        elif isinstance(event, ErrorResponse):
            if not event.waiter.done():
                event.waiter.set_exception(event.error)
        elif isinstance(event, Malformed):
            log.warning("%s: malformed message from Lingma skipped: %s", self._name, event.reason)
            if event.waiter is not None and not event.waiter.done():
                event.waiter.set_exception(
                    ProtocolError(f"Lingma's reply to {event.method} was malformed: {event.reason}")
                )
        elif isinstance(event, Unmatched):
            log.debug("%s: reply to unknown or abandoned request id %.80r", self._name, event.id)

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

    async def _reply_later(self, request: Request, pending: Awaitable[Any]) -> None:
        try:
            result = await pending
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("%s: handler for %s failed", self._name, request.method)
            reply = error_message(request.id, INTERNAL_ERROR, str(exc))
        else:
            reply = result_message(request.id, result)
        await self._write_replies([_frame(reply)])

    # ------------------------------------------------------------------ ending

    def _finish(self, reason: BaseException) -> None:
        """Mark the connection ended and fail every waiter at once (idempotent)."""
        if self._closed is None or self._closed.done():
            return
        self._closed.set_result(reason)
        for future in self._rpc.fail_all():
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

"""Chat streams: Lingma's events, sorted into one ordered stream per ``chat/ask``.

The router listens to every method message on a connection and hands each to the stream
whose ``requestId`` it carries. Tool events sometimes carry only a tool call id; those go
to the stream that first announced that tool call with a request id. An event no stream
claims is logged at debug and dropped: keeping it would grow memory for a consumer that
will never come.

Every ``chat/finish`` also tells the router's :class:`~.session_hints.SessionHints` which
upstream session a new conversation's hint became, the late finish of a chat released
before its end included, so a question naming that hint continues that conversation.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

from ..errors import ChatRejected, LingmaConnectionLost, LingmaError, RpcError
from ..events import (
    ChatEvent,
    ChatResult,
    Finish,
    Step,
    TextDelta,
    Thinking,
    ToolCall,
    ToolUpdate,
)
from .session_hints import SessionHints
from .tool_events import TOOL_METHODS, merge, observe
from .usage import usage_from_finish

if TYPE_CHECKING:
    from .toolhost import IdeToolHandler

log = logging.getLogger(__name__)

_END = object()  # queued after Finish, or when the stream is released


class ChatStream:
    """The events of one chat, as an async iterator that ends after ``Finish``.

    Iterating raises :class:`LingmaConnectionLost` if Lingma goes away mid-answer, and
    :class:`ChatRejected` if Lingma refused the ``chat/ask``. The stream keeps what it
    saw, so :meth:`result` works during and after iteration.

    ``continuing``: the question was asked to continue ``session_hint``, so the result
    says whether Lingma did (its finish names the same session) or started a new one.
    """

    def __init__(
        self,
        request_id: str,
        session_hint: str | None,
        *,
        release: Callable[[ChatStream], None],
        stop: Callable[[ChatStream], Awaitable[None]] | None = None,
        tool_handler: IdeToolHandler | None = None,
        continuing: bool = False,
    ) -> None:
        self.request_id = request_id
        self.session_hint = session_hint
        self.continuing = continuing
        self.tool_handler = tool_handler
        self.title: str | None = None
        self._release = release
        self._stop = stop
        # Work done for this chat's tool requests: it ends when the chat does.
        self._tasks: set[asyncio.Task[Any]] = set()
        self._confirming: set[str] = set()  # PENDING tool calls already put to the handler
        # Unbounded on purpose: Lingma cannot be paused, so the only alternative to
        # queueing is dropping text. Each item is one small delta, and the consumer (the
        # progress relay) coalesces what piles up.
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._parts: list[str] = []
        self._thinking: list[str] = []
        self._tools: dict[str, ToolCall] = {}
        self.finish: Finish | None = None
        self._failure: LingmaError | None = None
        self._released = False
        self._accepted: asyncio.Future[Any] | None = None  # the reply to chat/ask
        self.started_at = time.monotonic()
        self.first_token_at: float | None = None
        self.finished_at: float | None = None

    # ------------------------------------------------------------------ consumer side

    def __aiter__(self) -> ChatStream:
        return self

    async def __anext__(self) -> ChatEvent:
        item = await self._queue.get()
        if item is _END:
            self._queue.put_nowait(_END)  # stay ended for any later call
            if self._failure is not None:
                raise self._failure
            raise StopAsyncIteration
        return item

    @property
    def done(self) -> bool:
        return self.finish is not None or self._failure is not None

    def text_so_far(self) -> str:
        return "".join(self._parts)

    def result(self) -> ChatResult:
        """What the chat produced so far (all of it, once finished)."""
        finish = self.finish
        answer = (
            finish.full_answer if finish is not None and finish.full_answer else self.text_so_far()
        )
        continued = None
        if self.continuing and finish is not None:
            continued = finish.session_id == self.session_hint
        return ChatResult(
            answer=answer,
            session_id=(finish.session_id if finish is not None else None) or self.session_hint,
            request_id=self.request_id,
            finish_reason=finish.reason if finish is not None else None,
            status_code=finish.status_code if finish is not None else None,
            tool_events=list(self._tools.values()),
            thinking="".join(self._thinking),
            first_token_ms=_ms(self.started_at, self.first_token_at),
            total_ms=_ms(self.started_at, self.finished_at),
            finish_message=finish.message if finish is not None else "",
            title=self.title,
            continued=continued,
            usage=finish.usage if finish is not None else None,
        )

    async def aclose(self) -> None:
        """Release the stream; if Lingma is still answering, ask it to stop.

        The stop is sent, not waited for: nothing the caller does depends on Lingma's
        reply, and a wedged Lingma would hold every cancelled call for a whole timeout.
        """
        if self._released:
            return
        unfinished = not self.done
        self._end()
        if unfinished and self._stop is not None:
            try:
                await self._stop(self)
            except LingmaError as exc:
                log.debug("chat/stop for %s failed: %s", self.request_id, exc)

    def run(self, work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any] | None:
        """Run ``work`` for this chat; it is cancelled when the chat ends or is released.

        Returns None (and never starts ``work``) if the chat is already over.
        """
        if self._released:
            work.close()
            return None
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # ------------------------------------------------------------------ router side

    def _push(self, event: ChatEvent) -> None:
        self._queue.put_nowait(event)

    def _on_text(self, text: str, overwrite: bool) -> None:
        if overwrite:
            self._parts = [text]
        elif text:
            self._parts.append(text)
        if text and self.first_token_at is None:
            self.first_token_at = time.monotonic()
        self._push(TextDelta(text, overwrite))

    def _on_tool(self, tool: ToolCall) -> None:
        self._tools[tool.id] = tool
        self._push(ToolUpdate(tool))

    def _on_finish(self, finish: Finish) -> None:
        self.finish = finish
        self.finished_at = time.monotonic()
        if finish.full_answer:
            # The deltas are now a second copy of the answer; with many long answers
            # finishing together they were a third of the bridge's peak memory.
            self._parts = [finish.full_answer]
        self._push(finish)
        self._end()

    def _fail(self, error: LingmaError) -> None:
        if not self.done:
            self._failure = error
            self.finished_at = time.monotonic()
        self._end()

    def _end(self) -> None:
        if self._released:
            return
        self._released = True
        self._queue.put_nowait(_END)
        if self._accepted is not None and not self._accepted.done():
            self._accepted.cancel()  # no reply is worth keeping for a chat that is over
        for task in list(self._tasks):
            task.cancel()
        self._release(self)


class StreamRouter:
    """Routes a connection's chat events to their streams (one router per connection)."""

    def __init__(self) -> None:
        self._streams: dict[str, ChatStream] = {}
        self._tool_owner: dict[str, str] = {}  # tool call id -> request id
        self._lost: LingmaError | None = None
        self.hints = SessionHints()

    @property
    def open_streams(self) -> int:
        return len(self._streams)

    @property
    def tracked_tools(self) -> int:
        return len(self._tool_owner)

    def open(
        self,
        request_id: str,
        session_hint: str | None,
        stop: Callable[[ChatStream], Awaitable[None]] | None = None,
        tool_handler: IdeToolHandler | None = None,
        continuing: bool = False,
    ) -> ChatStream:
        if self._lost is not None:
            raise LingmaConnectionLost(str(self._lost))
        if request_id in self._streams:
            raise ValueError(f"a chat with requestId {request_id} is already open")
        stream = ChatStream(
            request_id,
            session_hint,
            release=self._release,
            stop=stop,
            tool_handler=tool_handler,
            continuing=continuing,
        )
        self._streams[request_id] = stream
        if session_hint and not continuing:
            self.hints.track(request_id, session_hint)
        return stream

    def watch_accept(self, stream: ChatStream, accepted: asyncio.Future[Any]) -> None:
        """Fail the stream if Lingma's reply to its chat/ask says it was refused."""

        def check(future: asyncio.Future[Any]) -> None:
            if future.cancelled():
                return
            error = future.exception()
            if isinstance(error, RpcError):
                stream._fail(ChatRejected(f"Lingma refused the question: {error.message}"))
                return
            if error is not None:
                return  # connection loss reaches the stream through connection_lost()
            reply = future.result()
            if isinstance(reply, dict) and (
                reply.get("success") is False or reply.get("isSuccess") is False
            ):
                message = reply.get("errorMessage") or reply.get("errorCode") or "no reason given"
                stream._fail(ChatRejected(f"Lingma refused the question: {message}"))

        accepted.add_done_callback(check)
        stream._accepted = accepted

    def connection_lost(self, reason: BaseException) -> None:
        """Fail every open stream at once; nothing waits for a timeout."""
        self._lost = LingmaConnectionLost(f"Lingma stopped while answering ({reason})")
        for stream in list(self._streams.values()):
            stream._fail(self._lost)
        self.hints.drop_all()

    def stream_for_tool(self, request_id: str | None, tool_call_id: str) -> ChatStream | None:
        """The open chat a tool request belongs to: by request id, else by the tool call's
        first-seen request."""
        if request_id is not None and request_id in self._streams:
            return self._streams[request_id]
        owner = self._tool_owner.get(tool_call_id)
        return self._streams.get(owner) if owner is not None else None

    def _release(self, stream: ChatStream) -> None:
        if self._streams.get(stream.request_id) is stream:
            del self._streams[stream.request_id]
        owned = [
            tool_id for tool_id, owner in self._tool_owner.items() if owner == stream.request_id
        ]
        for tool_id in owned:
            del self._tool_owner[tool_id]
        # Released before its end but asked: Lingma still finishes it (after chat/stop),
        # and that finish names its session. Refused, failed or never sent: it will not.
        asked = stream._accepted is not None and stream._failure is None
        if stream.finish is None and not asked:
            self.hints.drop(stream.request_id)

    # ------------------------------------------------------------------ dispatch

    def __call__(self, method: str, params: dict[str, Any]) -> None:
        """The connection listener: route one method message from Lingma."""
        if method == "chat/answer":
            stream = self._stream_for(params)
            if stream is not None:
                text = params.get("text")
                stream._on_text(
                    text if isinstance(text, str) else "", params.get("overwrite") is True
                )
        elif method in TOOL_METHODS:
            self._route_tool(method, params)
        elif method == "chat/think":
            stream = self._stream_for(params)
            if stream is not None:
                text = params.get("text")
                text = text if isinstance(text, str) else ""
                stream._thinking.append(text)
                stream._push(Thinking(text, _str_or_none(params.get("step"))))
        elif method == "chat/process_step_callback":
            stream = self._stream_for(params)
            if stream is not None:
                stream._push(
                    Step(
                        step=str(params.get("step") or ""),
                        description=str(params.get("description") or ""),
                        status=str(params.get("status") or ""),
                        message=str(params.get("message") or ""),
                    )
                )
        elif method == "chat/finish":
            request_id = params.get("requestId")
            if (
                isinstance(request_id, str)
                and request_id not in self._streams
                and request_id in self.hints
            ):
                # A chat released before its end: only its session is still wanted.
                self.hints.confirm(request_id, _str_or_none(params.get("sessionId")))
                return
            stream = self._stream_for(params)
            if stream is not None:
                self.hints.confirm(stream.request_id, _str_or_none(params.get("sessionId")))
                stream._on_finish(_finish(params))
        elif method == "session/title/update":
            # Names a conversation, not a request: every open chat of that session.
            session_id, title = params.get("sessionId"), params.get("sessionTitle")
            if isinstance(session_id, str) and isinstance(title, str):
                for stream in self._streams.values():
                    if stream.session_hint == session_id:
                        stream.title = title
        else:
            log.debug("no chat handles %s", method)

    def _stream_for(self, params: dict[str, Any]) -> ChatStream | None:
        request_id = params.get("requestId")
        stream = self._streams.get(request_id) if isinstance(request_id, str) else None
        if stream is None:
            log.debug("dropping event for unknown or finished chat %r", request_id)
        return stream

    def _route_tool(self, method: str, params: dict[str, Any]) -> None:
        seen = observe(method, params)
        if seen is None:
            log.debug("dropping %s that names no tool call", method)
            return
        owner = seen.request_id
        if owner is not None and owner in self._streams:
            self._tool_owner.setdefault(seen.id, owner)
        else:
            owner = self._tool_owner.get(seen.id)
        stream = self._streams.get(owner) if owner is not None else None
        if stream is None:
            log.debug("dropping %s for tool call %s: no open chat owns it", method, seen.id)
            return
        tool, changed = merge(stream._tools.get(seen.id), seen)
        if changed:
            stream._on_tool(tool)


def _finish(params: dict[str, Any]) -> Finish:
    status = params.get("statusCode")
    try:
        status_code = int(status) if status is not None else None
    except (TypeError, ValueError):
        status_code = None
    full_answer = params.get("fullAnswer")
    message = params.get("errorMessage") or params.get("message") or params.get("errorMsg") or ""
    return Finish(
        reason=str(params.get("reason") or "success"),
        status_code=status_code,
        session_id=_str_or_none(params.get("sessionId")),
        full_answer=full_answer if isinstance(full_answer, str) else None,
        message=str(message),
        usage=usage_from_finish(params),
    )


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _ms(start: float, end: float | None) -> int | None:
    return None if end is None else round((end - start) * 1000)

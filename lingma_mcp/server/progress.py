"""The relay from a chat's events to MCP progress notifications.

Goals, in order: the first text reaches the host at once; later text is coalesced but never
held longer than ``coalesce_s`` (~100 ms) beyond the send before it; ``progress`` strictly
increases; a keepalive goes out while Lingma is silent so hosts that reset their timeout on
progress keep waiting; and once :meth:`ProgressRelay.aclose` returns, nothing more is sent
for this request (one host drops the whole connection when that happens).

Plan: producers (``text``, ``status``) only append to one pending buffer and set an event;
they never await. A single sender task drains the buffer. While a send is in flight (a slow
host), new text keeps joining the same pending string instead of queueing notifications, so
memory is bounded by the answer itself, not by how many deltas Lingma sent.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable

import anyio

from ..events import ChatEvent, Step, TextDelta, Thinking, ToolUpdate

log = logging.getLogger(__name__)

SendFn = Callable[[float, str], Awaitable[None]]
"""``send(progress, message)``: deliver one progress notification."""

STATUS_PREFIX = "[lingma] "
"""Status messages start with this; every other progress message is answer text."""

DEFAULT_COALESCE_S = 0.05
DEFAULT_KEEPALIVE_S = 10.0
MAX_STATUS_CHARS = 200


def status_line(text: str) -> str:
    """A status message as hosts see it: prefixed, one line, short."""
    one_line = " ".join(text.split())
    if len(one_line) > MAX_STATUS_CHARS:
        one_line = one_line[: MAX_STATUS_CHARS - 1] + "…"
    return STATUS_PREFIX + one_line


class ProgressRelay:
    """Coalesces streamed text and status lines into progress notifications.

    Use as ``async with ProgressRelay(send) as relay:``; call :meth:`text` and
    :meth:`status` from the consumer of the chat stream. Leaving the block (normally, by
    error or by cancellation) stops the sender; nothing is sent afterwards.

    Args:
        send: coroutine function delivering one notification; exceptions from it end
            the relay quietly (a host that went away must not fail the tool call).
        coalesce_s: the longest a piece of text waits behind the previous send.
        keepalive_s: the longest silence before a keepalive status goes out.
        clock: monotonic clock, replaceable in tests.
    """

    def __init__(
        self,
        send: SendFn,
        *,
        coalesce_s: float = DEFAULT_COALESCE_S,
        keepalive_s: float = DEFAULT_KEEPALIVE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._send = send
        self._coalesce_s = coalesce_s
        self._keepalive_s = keepalive_s
        self._clock = clock
        # Parts joined once per send: appending stays O(1) however much piles up behind a
        # slow host (a str += would copy the pending text on every delta).
        self._pending_text: list[str] = []
        # Statuses are few (thinking, steps, tool states); keep them in order but
        # collapse repeats of the same line so a chatty tool cannot grow the list.
        self._pending_status: list[str] = []
        self._wake = anyio.Event()
        self._progress = 0
        self._last_send = clock()  # end of the last send: keepalives count from here
        self._send_started = self._last_send  # start of the last send: the window's origin
        self._sent_text = False
        self._closed = False
        self._broken = False
        self._started_at = clock()
        self._tg: anyio.abc.TaskGroup | None = None
        # One drain at a time, so the sender task and flush() never interleave sends.
        self._drain_lock = anyio.Lock()

    # -- producer side (never awaits) ----------------------------------------------

    def text(self, delta: str) -> None:
        """Queue newly streamed answer text."""
        if delta and not self._closed:
            self._pending_text.append(delta)
            self._wake.set()

    def status(self, line: str) -> None:
        """Queue a short status line (thinking, a step, a tool state)."""
        if self._closed:
            return
        msg = status_line(line)
        if not self._pending_status or self._pending_status[-1] != msg:
            self._pending_status.append(msg)
            if len(self._pending_status) > 20:
                del self._pending_status[:-20]
        self._wake.set()

    @property
    def sent(self) -> int:
        """How many notifications went out."""
        return self._progress

    # -- lifecycle ---------------------------------------------------------------------

    async def __aenter__(self) -> ProgressRelay:
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        self._tg.start_soon(self._run)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
        assert self._tg is not None
        # The body's own exception is not handed to the task group, which would wrap it in
        # an ExceptionGroup; it propagates unchanged once the sender has stopped.
        await self._tg.__aexit__(None, None, None)

    async def aclose(self) -> None:
        """Stop: drop what is pending and never send again."""
        self._closed = True
        self._pending_text.clear()
        self._pending_status.clear()
        if self._tg is not None:
            self._tg.cancel_scope.cancel()

    async def flush(self) -> None:
        """Send what is pending now (used before a result that should follow the text)."""
        await self._drain()

    # -- the sender --------------------------------------------------------------------

    async def _run(self) -> None:
        while not self._closed and not self._broken:
            idle_for = self._clock() - self._last_send
            wait = max(0.0, self._keepalive_s - idle_for)
            with anyio.move_on_after(wait):
                await self._wake.wait()
            if self._closed or self._broken:
                return
            if not self._has_pending():
                if self._clock() - self._last_send >= self._keepalive_s:
                    elapsed = math.floor(self._clock() - self._started_at)
                    await self._emit(status_line(f"still working ({elapsed} s)"))
                continue
            # The first text goes at once; later text waits out the coalescing window, which
            # runs from the start of the previous send: nothing waits longer than the window,
            # and after a slow send (a slow host) what piled up goes at once, as one message.
            if self._sent_text or not self._pending_text:
                delay = self._coalesce_s - (self._clock() - self._send_started)
                if delay > 0:
                    await anyio.sleep(delay)
            await self._drain()

    def _has_pending(self) -> bool:
        return bool(self._pending_text or self._pending_status)

    async def _drain(self) -> None:
        async with self._drain_lock:
            self._wake = anyio.Event()
            statuses, self._pending_status = self._pending_status, []
            text = "".join(self._pending_text)
            self._pending_text = []
            for line in statuses:
                await self._emit(line)
            if text:
                self._sent_text = True
                await self._emit(text)

    async def _emit(self, message: str) -> None:
        if self._closed or self._broken:
            return
        self._progress += 1
        self._send_started = self._last_send = self._clock()
        try:
            await self._send(float(self._progress), message)
        except anyio.get_cancelled_exc_class():
            raise
        except Exception as exc:  # a host that left must not fail the call
            log.debug("progress notification failed, relay stops: %r", exc)
            self._broken = True
        self._last_send = self._clock()


class EventNarrator:
    """Turns chat events into relay calls: answer text as text, the rest as short status.

    Thinking is announced once when it starts and once when it is done (its text is in the
    result, not in the notifications); steps and tool calls say their name and state.
    """

    def __init__(self, relay: ProgressRelay) -> None:
        self._relay = relay
        self._thinking = False

    def __call__(self, event: ChatEvent) -> None:
        relay = self._relay
        if isinstance(event, TextDelta):
            if event.overwrite:
                relay.status("answer restarted; the text below replaces what came before")
            if self._thinking:
                self._thinking = False
            relay.text(event.text)
        elif isinstance(event, Thinking):
            if event.step == "done":
                if self._thinking:
                    relay.status("done thinking")
                self._thinking = False
            elif not self._thinking:
                self._thinking = True
                relay.status("thinking…")
        elif isinstance(event, Step):
            label = event.description or event.step
            relay.status(f"{label}: {event.status}" if event.status else label)
        elif isinstance(event, ToolUpdate):
            tool = event.tool
            relay.status(f"{tool.name}: {tool.status}" if tool.status else tool.name)

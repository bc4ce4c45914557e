"""The relay from a chat's events to MCP progress notifications.

Goals, in order: the first text reaches the host at once; later text is coalesced but never
held longer than ``coalesce_s`` (~100 ms) beyond the send before it; ``progress`` strictly
increases; a keepalive goes out while Lingma is silent so hosts that reset their timeout on
progress keep waiting; and once :meth:`ProgressRelay.aclose` returns, nothing more is sent
for this request (one host drops the whole connection when that happens).

Plan: producers (``text``, ``status``, ``note``) only append to one pending queue, in
arrival order, and set an event; they never await. A single sender task drains the queue.
While a send is in flight (a slow host), new text keeps joining the last pending text
instead of queueing notifications, so memory is bounded by the answer itself, not by how
many deltas Lingma sent. Status lines behind a slow host are bounded (the oldest go);
notes (what the approval gate allowed, denied or changed) are never dropped.

The end of a call: the answer text goes out in order, and nothing closes it (no "answer
complete" status). Some clients handle a notification that arrives just before the result
after the result and drop it (typescript-sdk#2580); the result always holds the whole answer.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

import anyio

from ..config import DEFAULT_KEEPALIVE_S
from ..events import ChatEvent, Step, TextDelta, Thinking, ToolUpdate

log = logging.getLogger(__name__)

SendFn = Callable[[float, str], Awaitable[None]]
"""``send(progress, message)``: deliver one progress notification."""


class Timer:
    """The relay's sense of time: real by default, replaced by a manual one in tests so
    the coalescing window and keepalives are checked without waiting for them."""

    def now(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)

    async def wait(self, event: anyio.Event, timeout: float) -> None:  # noqa: ASYNC109 - a port, not a caller bound
        """Until ``event`` is set or ``timeout`` passes, whichever comes first."""
        with anyio.move_on_after(timeout):
            await event.wait()


STATUS_PREFIX = "[lingma] "
"""Status messages start with this; every other progress message is answer text."""

DEFAULT_COALESCE_S = 0.05
MAX_STATUS_CHARS = 200
MAX_PENDING_STATUS = 20
RESTARTED = "answer restarted; the text below replaces what came before"


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
        timer: the clock and the waits, replaceable in tests (see :class:`Timer`).
    """

    def __init__(
        self,
        send: SendFn,
        *,
        coalesce_s: float = DEFAULT_COALESCE_S,
        keepalive_s: float = DEFAULT_KEEPALIVE_S,
        timer: Timer | None = None,
    ) -> None:
        self._send = send
        self._coalesce_s = coalesce_s
        self._keepalive_s = keepalive_s
        self._timer = timer if timer is not None else Timer()
        clock = self._clock = self._timer.now
        # What waits to be sent, in arrival order: status lines as str, and runs of answer
        # text as lists of parts joined once per send (appending stays O(1) however much
        # piles up behind a slow host; a str += would copy the pending text on every delta).
        # Statuses are few (thinking, steps, tool states): repeats of the same line collapse
        # and at most MAX_PENDING_STATUS wait, so a chatty tool cannot grow the queue.
        # Notes (approvals, changed files) wait as 1-tuples: never collapsed or dropped,
        # and as many as the call's actions; the per-delta path never looks at them.
        self._pending: list[str | list[str] | tuple[str]] = []
        self._pending_status = 0
        self._wake = anyio.Event()
        self._progress = 0
        self._last_send = clock()  # end of the last send: keepalives count from here
        self._send_started = self._last_send  # start of the last send: the window's origin
        self._sent_text = False
        self._text_out = False  # text was taken for sending (a restart must say so)
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
            if self._pending and isinstance(self._pending[-1], list):
                self._pending[-1].append(delta)
            else:
                self._pending.append([delta])
            self._wake.set()

    def status(self, line: str) -> None:
        """Queue a short status line (thinking, a step, a tool state)."""
        if self._closed:
            return
        msg = status_line(line)
        if self._pending and self._pending[-1] == msg:
            return
        if self._pending_status >= MAX_PENDING_STATUS:
            # Drop the oldest waiting status; text and notes are never dropped.
            for index, item in enumerate(self._pending):
                if isinstance(item, str):
                    del self._pending[index]
                    self._pending_status -= 1
                    break
        self._pending.append(msg)
        self._pending_status += 1
        self._wake.set()

    def note(self, line: str) -> None:
        """Queue a line the person must see (an approval, a changed file, a command run):
        unlike a status it is never collapsed nor dropped, however many wait."""
        if not self._closed:
            self._pending.append((status_line(line),))
            self._wake.set()

    def restart(self) -> None:
        """The answer starts over and the text that follows replaces it: text not yet sent
        is dropped; text already out cannot be taken back, so a status line says so."""
        if self._closed:
            return
        self._pending = [item for item in self._pending if not isinstance(item, list)]
        if self._text_out:
            self.status(RESTARTED)

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
        self._pending.clear()
        self._pending_status = 0
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
            await self._timer.wait(self._wake, wait)
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
            if self._sent_text or not self._has_pending_text():
                delay = self._coalesce_s - (self._clock() - self._send_started)
                if delay > 0:
                    await self._timer.sleep(delay)
            await self._drain()

    def _has_pending(self) -> bool:
        return bool(self._pending)

    def _has_pending_text(self) -> bool:
        return any(isinstance(item, list) for item in self._pending)

    async def _drain(self) -> None:
        async with self._drain_lock:
            self._wake = anyio.Event()
            items, self._pending = self._pending, []
            self._pending_status = 0
            if not self._text_out:
                self._text_out = any(isinstance(item, list) for item in items)
            for item in items:
                if isinstance(item, list):
                    self._sent_text = True
                    await self._emit("".join(item))
                else:
                    await self._emit(item if isinstance(item, str) else item[0])

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


CLOSING_STEPS = frozenset({"step_end"})
"""Steps that only say the answer is over; never sent as progress."""


class NarrationSink(Protocol):
    """What a narrator feeds: a :class:`ProgressRelay`, or a job that keeps the text."""

    def text(self, delta: str) -> None: ...

    def status(self, line: str) -> None: ...

    def note(self, line: str) -> None:
        """Queue a line the person must see (an approval, a changed file, a command run):
        unlike a status it is never collapsed nor dropped, however many wait."""
        if not self._closed:
            self._pending.append((status_line(line),))
            self._wake.set()

    def restart(self) -> None:
        """The answer starts over; the text that follows replaces the text so far."""
        ...


class EventNarrator:
    """Turns chat events into sink calls: answer text as text, the rest as short status.

    Thinking is announced once when it starts and once when it is done (its text is in the
    result, not in the notifications); steps and tool calls say their name and state. An
    ``overwrite`` delta restarts the answer: it replaces the text so far, never joins it.
    """

    def __init__(self, relay: NarrationSink) -> None:
        self._relay = relay
        self._thinking = False

    def __call__(self, event: ChatEvent) -> None:
        relay = self._relay
        if isinstance(event, TextDelta):
            if event.overwrite:
                relay.restart()
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
            if event.step in CLOSING_STEPS:
                return  # the result says the call is done; a closing status only races it
            label = event.description or event.step
            relay.status(f"{label}: {event.status}" if event.status else label)
        elif isinstance(event, ToolUpdate):
            tool = event.tool
            relay.status(f"{tool.name}: {tool.status}" if tool.status else tool.name)

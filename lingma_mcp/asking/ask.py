"""One question to its end: within its deadline, asked again once, stopped when left.

Everything a question takes, the stop of an unfinished answer included, fits in its
``timeout_s``: Lingma is told to stop in the background and nobody waits for that. A
Lingma that died while idle is noticed only by the next question; if it had said nothing
about that question yet, nothing ran, so the restarted Lingma is asked once more. A chat
that hears nothing at all for a while is the sign of a wedged Lingma: the backend is told
(:mod:`.health_watch`) while the question keeps waiting for its own deadline.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import anyio

from ..backend import BackendClient, ChatEvent, ChatRequest, ChatStreamLike, Step
from ..errors import ChatFailed, LingmaConnectionLost, LingmaError
from .arguments import AskParams
from .error_texts import AskTimedOut, ChangedThenFailed, ChatCancelled
from .health_watch import HealthWatch
from .login_check import LoginCheck
from .model_cache import ModelCache
from .results import AskResult
from .views import attached_line, attachment_info, tool_event, usage_info

log = logging.getLogger(__name__)

# How long a chat/stop sent in the background may take; the call that sent it does not wait.
STOP_GRACE_S = 5.0
# A chat that hears nothing at all (not even a step or a thinking event) within this bound
# (or its timeout_s, if shorter) makes the supervisor check Lingma's health: a healthy Lingma
# sends its first step within a second, and a reasoning model's first thought within a
# minute. The call itself keeps waiting until its own timeout_s.
FIRST_EVENT_S = 120.0

ClientFor = Callable[[float | None], Awaitable[BackendClient]]
"""``client(wait_s)``: a ready client, waiting at most ``wait_s``."""


class AskRunner:
    """Runs questions to their end, and keeps the stops they leave behind.

    Args:
        client: hands out a ready client.
        login: checked before each question (cached).
        models: checks a model key; names the default model in the result.
        watch: told when a chat hears nothing.
        control_timeout: the most the model list may take when fetched only to name the
            default model in a result.
    """

    def __init__(
        self,
        client: ClientFor,
        login: LoginCheck,
        models: ModelCache,
        watch: HealthWatch,
        *,
        control_timeout: float,
    ) -> None:
        self._client = client
        self._login = login
        self._models = models
        self._watch = watch
        self._control_timeout = control_timeout
        # chat/stop requests on their way out; close() waits for them (bounded).
        self._stops: set[asyncio.Task[None]] = set()

    async def close(self) -> None:
        """Wait (at most ``STOP_GRACE_S``) for the stops still on their way out."""
        if self._stops:
            with anyio.move_on_after(STOP_GRACE_S):
                await asyncio.gather(*self._stops, return_exceptions=True)

    def _stop_later(self, stream: ChatStreamLike) -> None:
        """Release ``stream`` and send chat/stop without waiting for the reply: the call
        that ends must fit in its timeout_s, stop included."""

        async def stop() -> None:
            with anyio.move_on_after(STOP_GRACE_S):
                await stream.aclose()

        task = asyncio.ensure_future(stop())
        self._stops.add(task)
        task.add_done_callback(self._stops.discard)

    async def ask(
        self,
        params: AskParams,
        on_event: Callable[[ChatEvent], None] | None = None,
        *,
        on_note: Callable[[str], None] | None = None,
    ) -> AskResult:
        """Ask one question and wait for the whole answer (see :meth:`_ask`).

        In agent mode the result carries what the person should know beyond the answer
        (actions denied because the host cannot ask, and how to allow them); a failure
        after files changed says which, and how to see and undo them. ``on_note`` hears
        the lines the person must see as the answer starts (what the question carried).
        """
        try:
            result = await self._ask(params, on_event, on_note)
        except Exception as exc:
            note = params.agent.error_note() if params.agent is not None else ""
            if note:
                raise ChangedThenFailed(exc, note) from exc
            raise
        if params.agent is not None:
            result.set_note(params.agent.result_note())
        return result

    async def _ask(
        self,
        params: AskParams,
        on_event: Callable[[ChatEvent], None] | None = None,
        on_note: Callable[[str], None] | None = None,
    ) -> AskResult:
        """Ask one question and wait for the whole answer.

        Everything, the stop of an unfinished answer included, fits in ``params.timeout_s``:
        chat/stop is sent in the background and not waited for.

        Raises:
            InvalidArgument: unknown model key.
            AskTimedOut: ``params.timeout_s`` passed (Lingma was asked to stop).
            LingmaError: anything the supervisor or the chat raised, typed.
        """
        stream: ChatStreamLike | None = None
        client: BackendClient | None = None
        result = None
        heard = False
        with anyio.CancelScope(deadline=anyio.current_time() + params.timeout_s) as deadline:
            try:
                for attempt in (1, 2):
                    client = await self._client(params.timeout_s)
                    await self._login.ensure(client)
                    if params.model is not None:
                        await self._models.check(client, params.model, params.mode)
                    heard = False

                    def seen(event: ChatEvent) -> None:
                        nonlocal heard
                        heard = True
                        if params.agent is not None:
                            params.agent.observe(event)  # where changes are attributed
                        if on_event is not None:
                            on_event(event)

                    if params.agent is not None:
                        # The snapshot before Lingma acts (waits for another call on the
                        # same workspace to end, saying so).
                        await params.agent.open()
                    try:
                        stream = await client.open_chat(
                            ChatRequest(
                                prompt=params.prompt,
                                model=params.model,
                                mode="agent" if params.mode == "agent" else "chat",
                                session_id=params.session_id,
                                workspace=params.workspace,
                                attachments=params.attachments,
                                fork=params.fork,
                                reasoning_effort=params.reasoning_effort,
                                effort_optional=params.effort_optional,
                                status=lambda line: seen(Step(line, status="doing")),
                                **(params.agent.request_fields() if params.agent else {}),
                            )
                        )
                        if params.attachments and on_note is not None and attempt == 1:
                            # Told once the backend took them (it refuses what it cannot
                            # send before sending anything).
                            on_note(attached_line(params.attachments))
                        await self._follow(stream, params.timeout_s, seen)
                        break
                    except LingmaConnectionLost:
                        # A Lingma that died while idle is only noticed by the next question.
                        # If it said nothing about this one, nothing ran: ask the restarted
                        # Lingma once more. Once it has answered anything, report the crash.
                        if heard or attempt == 2:
                            raise
                        log.info("Lingma went away before answering; asking once more")
                        if stream is not None:
                            self._stop_later(stream)
                            stream = None
                assert stream is not None and client is not None
                result = stream.result()
                if result.finish_reason == "error" or result.status_code not in (None, 200):
                    if result.status_code in (401, 403):
                        await self._login.ensure(client, force=True)
                if (
                    result.finish_reason not in ("cancelled", "error")
                    and params.model is None
                    and self._models.cached is None
                ):
                    # Only to name Lingma's default model in the result; never fails it.
                    try:
                        with anyio.move_on_after(self._control_timeout):
                            await self._models.models(client)
                    except LingmaError as exc:
                        log.debug("model list unavailable: %s", exc)
            finally:
                if stream is not None and stream.done:
                    # Finished: releasing it sends nothing and never waits.
                    with anyio.CancelScope(shield=True):
                        await stream.aclose()
                elif stream is not None:
                    # A cancelled caller (notifications/cancelled, a host that left) or the
                    # timeout: Lingma must still hear chat/stop, but nobody waits for it.
                    self._stop_later(stream)
                if params.agent is not None:
                    # Its commands die with the call, however it ends; then the record's
                    # last snapshot, which a cancelled call needs as much as any.
                    with anyio.move_on_after(STOP_GRACE_S, shield=True):
                        await params.agent.close()
                    with anyio.CancelScope(shield=True):
                        await params.agent.finish()
        if deadline.cancelled_caught and (result is None or result.finish_reason is None):
            if stream is not None and not heard and params.timeout_s <= FIRST_EVENT_S:
                # The silence bound was the call's own timeout: the same signal.
                self._watch.suspect(
                    f"a chat heard nothing from Lingma within {params.timeout_s:g} s"
                )
            so_far = stream.text_so_far() if stream is not None else ""
            session = stream.session_hint if stream is not None else params.session_id
            if stream is not None and stream.finish is not None:
                session = stream.finish.session_id or session
            raise AskTimedOut(
                params.timeout_s, so_far, stopped=stream is not None, session_id=session
            )
        assert result is not None
        if result.finish_reason == "cancelled":
            raise ChatCancelled()
        if result.finish_reason == "error" or result.status_code not in (None, 200):
            raise ChatFailed(
                result.finish_reason or "error", result.status_code, result.finish_message
            )
        return AskResult(
            answer=result.answer,
            session_id=result.session_id,
            # The backend's word: true only where Lingma confirmed the conversation went on.
            continued=result.continued if params.session_id is not None else None,
            forked_from=params.session_id if params.fork else None,
            request_id=result.request_id,
            model=params.model or self._models.default_for(params.mode),
            mode=params.mode,
            finish_reason=result.finish_reason,
            status_code=result.status_code,
            tool_events=[tool_event(t) for t in result.tool_events],
            thinking=result.thinking,
            first_token_ms=result.first_token_ms,
            total_ms=result.total_ms,
            usage=usage_info(result.usage),
            attachments=[attachment_info(a) for a in params.attachments],
            **(params.agent.result_fields() if params.agent else {}),
        )

    async def _follow(
        self,
        stream: ChatStreamLike,
        timeout_s: float,
        on_event: Callable[[ChatEvent], None] | None,
    ) -> None:
        """Hand each event to ``on_event``; say Lingma may be wedged if none comes in time."""
        quiet_bound = min(timeout_s, FIRST_EVENT_S)
        first = True
        while True:
            try:
                if first:
                    with anyio.move_on_after(quiet_bound) as quiet:
                        event = await stream.__anext__()
                    if quiet.cancelled_caught:
                        self._watch.suspect(
                            f"a chat heard nothing from Lingma within {quiet_bound:g} s"
                        )
                        first = False
                        continue
                    first = False
                else:
                    event = await stream.__anext__()
            except StopAsyncIteration:
                return
            if on_event is not None:
                on_event(event)

"""The bridge service: what the tools, the resources and the command line ask of Lingma.

It owns the backend (:class:`~lingma_mcp.backend.Backend`: the IDE binary or the CLI, it
never asks which) and the small caches that sit above it (the model list, the last good
login check), validates requests before Lingma sees them, and runs one question to its
end: bounded by ``timeout_s``, stopped upstream when its caller leaves. It knows nothing
of MCP; :mod:`.tools` turns what it returns (or raises) into tool results.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from ..backend import (
    CHAT_SCENE,
    SCENE_FOR_MODE,
    Attachment,
    Backend,
    BackendClient,
    ChatEvent,
    ChatRequest,
    ChatStreamLike,
    Model,
    SessionSummary,
    Step,
)
from ..config import MODES, Settings
from ..errors import ChatFailed, LingmaConnectionLost, LingmaError, RpcTimeout
from ..redact import redact
from .arguments import SEND, checked_timeout, checked_workspace, replace_lone_surrogates
from .errors import (
    AskTimedOut,
    Audience,
    ChangedThenFailed,
    ChatCancelled,
    error_text,
    invalid_argument,
    is_expected,
)
from .models import AskResult, AuthInfo, BridgeState, ModelList
from .views import (
    attached_line,
    attachment_info,
    auth_info,
    default_key,
    model_info,
    model_keys,
    models_by_scene,
    newest_first,
    session_detail,
    session_summary,
    tool_event,
    usage_info,
)

if TYPE_CHECKING:
    from .agent import AgentCall

log = logging.getLogger(__name__)

# A login that was fine this recently is not re-checked before each question.
AUTH_RECHECK_S = 60.0
# An unknown model key triggers one fresh fetch of the list, at most this often.
MODELS_REFRESH_S = 10.0
# The longest a status check (auth_status, lingma://status) waits for Lingma to start.
STATUS_WAIT_S = 15.0
# How long a chat/stop sent in the background may take; the call that sent it does not wait.
STOP_GRACE_S = 5.0
# A chat that hears nothing at all (not even a step or a thinking event) within this bound
# (or its timeout_s, if shorter) makes the supervisor check Lingma's health: a healthy Lingma
# sends its first step within a second, and a reasoning model's first thought within a
# minute. The call itself keeps waiting until its own timeout_s.
FIRST_EVENT_S = 120.0
# The longest reasoning effort value passed on; the CLI's are single words.
MAX_EFFORT_CHARS = 64


@dataclass
class AskParams:
    """One question, as validated arguments."""

    prompt: str
    model: str | None
    mode: str
    session_id: str | None
    workspace: Path
    timeout_s: float
    agent: AgentCall | None = None  # agent mode: the call's workspace host (server/agent.py)
    attachments: tuple[Attachment, ...] = ()  # resolved and confined (server/attachments.py)
    fork: bool = False
    reasoning_effort: str | None = None
    effort_optional: bool = False  # the server's --reasoning-effort, not the call's own


class Bridge:
    """Lingma for the MCP face and the command line.

    Args:
        settings: every option.
        supervisor: the :class:`~lingma_mcp.backend.Backend` that serves; by default the
            one ``settings`` choose (:func:`.backends.make_backend`).
        audience: where error texts are read ("host" names tools, "terminal" commands).
    """

    def __init__(
        self, settings: Settings, supervisor: Backend | None = None, *, audience: Audience = "host"
    ) -> None:
        if supervisor is None:
            from .backends import make_backend  # the IDE binary or the CLI, per --backend

            supervisor = make_backend(settings)
        self.settings = settings
        self.supervisor = supervisor
        from .agent import AgentCalls  # agent mode: approvals, workspace hosts, journal

        self.agents = AgentCalls(settings)
        # "This workspace" for the sessions resource: the host's first root once a call has
        # seen one, else --workspace.
        self.workspace: Path = settings.workspace
        self.audience: Audience = audience
        # The caches remember the client they came from by identity (a strong reference):
        # an id() could be reused by a new client after a reconnect and match a stale cache.
        self._models: list[Model] | None = None
        self._models_client: BackendClient | None = None
        self._models_at = 0.0
        self._auth_ok_at: float | None = None
        self._auth_client: BackendClient | None = None
        # chat/stop requests on their way out; close() waits for them (bounded).
        self._stops: set[asyncio.Task[None]] = set()

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Start Lingma in the background; returns at once."""
        self.supervisor.start()

    async def close(self) -> None:
        if self._stops:
            with anyio.move_on_after(STOP_GRACE_S):
                await asyncio.gather(*self._stops, return_exceptions=True)
        await self.agents.close()
        await self.supervisor.close()

    def _suspect(self, reason: str) -> None:
        try:
            self.supervisor.suspect(reason)
        except Exception:  # a health check must never fail the call that noticed
            log.exception("supervisor.suspect failed")

    @contextmanager
    def _watch(self) -> Iterator[None]:
        """A control request that times out means Lingma may be wedged: say so."""
        try:
            yield
        except RpcTimeout as exc:
            self._suspect(str(exc))
            raise

    def _stop_later(self, stream: ChatStreamLike) -> None:
        """Release ``stream`` and send chat/stop without waiting for the reply: the call
        that ends must fit in its timeout_s, stop included."""

        async def stop() -> None:
            with anyio.move_on_after(STOP_GRACE_S):
                await stream.aclose()

        task = asyncio.ensure_future(stop())
        self._stops.add(task)
        task.add_done_callback(self._stops.discard)

    async def client(self, wait_s: float | None = None) -> BackendClient:
        """A ready client, waiting at most ``wait_s``.

        By default the supervisor's own bound applies (a little over the start-up timeout),
        so a failed start reports its precise error (which file, port or reply it waited
        for) instead of a generic "not ready in time".
        """
        return await self.supervisor.client(timeout=wait_s)

    def state(self) -> BridgeState:
        """The backend's status, as an allow-listed model.

        Read field by field with a default each: a status must never fail the call (often
        an error's text) that shows it.
        """
        status = self.supervisor.status()

        def get(name: str) -> Any:
            return getattr(status, name, None)

        state = get("state")
        pid, port, version, work_dir = get("pid"), get("port"), get("version"), get("work_dir")
        return BridgeState(
            state=str(getattr(state, "value", state) or "unknown"),
            pid=pid if isinstance(pid, int) else None,
            port=port if isinstance(port, int) else None,
            version=str(version) if version is not None else None,
            last_error=redact(str(get("last_error"))) if get("last_error") else None,
            work_dir=str(work_dir) if work_dir is not None else None,
            log_hint=str(get("log_hint")) if get("log_hint") is not None else None,
            simulated=bool(self.settings.simulate),
            backend=getattr(self.supervisor, "kind", None),
            sandbox=self.settings.sandbox_report(),
        )

    def error_text(self, exc: BaseException) -> str:
        """The user's text for ``exc``, with the bridge's state; logs it once, here."""
        try:
            state = self.state()
        except Exception:  # the status must never hide the error itself
            state = None
        text = error_text(exc, status=state, audience=self.audience)
        if is_expected(exc):
            log.info("%s: %s", type(exc).__name__, text.splitlines()[0][:300])
        else:
            log.error("unexpected failure, reported as: %s", text, exc_info=exc)
        return text

    # -- models --------------------------------------------------------------------------

    async def models(self, client: BackendClient, *, refresh: bool = False) -> list[Model]:
        """The account's models, fetched once per Lingma connection and cached.

        An empty list (what Lingma says while logged out) is not cached: after a login
        the next call fetches the real one.
        """
        if refresh or not self._models or self._models_client is not client:
            with self._watch():
                models = await client.models()
            self._models = models or None
            self._models_client = client
            self._models_at = time.monotonic()
            return models
        return self._models

    async def model_list(self, scene: str | None = None) -> ModelList:
        client = await self.client()
        models = await self.models(client)
        by_scene = models_by_scene(models)
        if not by_scene:
            # Lingma lists no models while logged out: say that, not "no models".
            await self._check_auth(client, force=True)
        if scene is not None and scene not in by_scene:
            known = ", ".join(sorted(by_scene)) or "none (is Lingma logged in?)"
            raise invalid_argument(
                "scene", f"Lingma has no scene {scene!r}", f"one of: {known}, or none for all"
            )
        scenes = {
            name: [model_info(m, self.settings.model or default_key(listed, name)) for m in listed]
            for name, listed in by_scene.items()
            if scene is None or name == scene
        }
        default = self.settings.model or default_key(models, CHAT_SCENE)
        return ModelList(scenes=scenes, default_model=default)

    async def _check_model(self, client: BackendClient, model: str, mode: str) -> None:
        scene = SCENE_FOR_MODE.get(mode, CHAT_SCENE)
        keys = model_keys(await self.models(client), scene)
        if model in keys:
            return
        if time.monotonic() - self._models_at > MODELS_REFRESH_S:
            keys = model_keys(await self.models(client, refresh=True), scene)
        if not keys:
            # No list at all usually means no login; say that rather than "unknown model".
            await self._check_auth(client, force=True)
            return
        if model not in keys:
            # The keys are listed here; in a host, list_models adds their names.
            more = "" if self.audience == "terminal" else " (list_models shows their names)"
            raise invalid_argument(
                "model",
                f"{model!r} is not a model key for {mode} mode",
                f"one of: {', '.join(keys)}{more}",
            )

    # -- auth ----------------------------------------------------------------------------

    async def _check_auth(self, client: BackendClient, *, force: bool = False) -> None:
        fresh = (
            self._auth_ok_at is not None
            and self._auth_client is client
            and time.monotonic() - self._auth_ok_at < AUTH_RECHECK_S
        )
        if fresh and not force:
            return
        with self._watch():
            login = await client.login_state()
        if not login.logged_in:
            self._auth_ok_at = None
            raise login.not_logged_in()
        self._auth_ok_at = time.monotonic()
        self._auth_client = client

    async def auth(self, *, wait_s: float | None = None) -> AuthInfo:
        """Login state and the bridge's own state; never raises for Lingma's failures.

        A status check waits at most ``STATUS_WAIT_S`` for a Lingma that is still starting:
        "still starting, waiting for X" is the answer then, not a minute of silence.
        """
        if wait_s is None:
            wait_s = min(self.settings.startup_timeout, STATUS_WAIT_S)
        try:
            client = await self.client(wait_s)
            with self._watch():
                login = await client.login_state()
        except LingmaError as exc:
            return AuthInfo(
                logged_in=None,
                status="unknown (Lingma is not available)",
                problem=self.error_text(exc),
                bridge=self.state(),
            )
        return auth_info(login, self.state())

    async def login_url(self) -> str:
        client = await self.client()
        with self._watch():
            return await client.login_url()

    # -- conversations ---------------------------------------------------------------------

    async def session_list(self) -> list[SessionSummary]:
        """This workspace's conversations, newest first.

        Lingma files a conversation under a project; whether that is the folder Lingma was
        started with or the one a question named is not known, so both are asked.
        """
        client = await self.client()
        found: dict[str, SessionSummary] = {}
        for folder in dict.fromkeys([self.workspace, self.settings.workspace]):
            with self._watch():
                listed = await client.sessions(folder)
            for summary in listed:
                found.setdefault(summary.session_id, summary)
        return newest_first(found.values())

    async def sessions(self) -> list[dict[str, Any]]:
        """``lingma://sessions``: :meth:`session_list` as the resource shows it."""
        return [session_summary(s) for s in await self.session_list()]

    async def delete_session(self, session_id: str) -> None:
        """Delete one conversation (see :meth:`BackendClient.delete_session`)."""
        client = await self.client()
        with self._watch():
            await client.delete_session(session_id)

    async def session(self, session_id: str) -> dict[str, Any] | None:
        client = await self.client()
        with self._watch():
            found = await client.session(session_id)
        return session_detail(found) if found is not None else None

    # -- asking ----------------------------------------------------------------------------

    def validate(
        self,
        prompt: Any,
        *,
        model: str | None = None,
        mode: str | None = None,
        session_id: str | None = None,
        workspace: str | Path | None = None,
        timeout_s: Any = None,
        attachments: tuple[Attachment, ...] = (),
        fork: bool = False,
        reasoning_effort: str | None = None,
    ) -> AskParams:
        """Refuse bad arguments before Lingma is asked; every refusal says what to send.

        ``attachments`` come resolved (:func:`.attachments.resolve_attachments`); a
        ``reasoning_effort`` not given falls back to the server's, which the backend then
        skips where the model offers none.
        """
        if not isinstance(prompt, str) or not prompt.strip():
            raise invalid_argument("prompt", "it is empty", SEND["prompt"])
        limit = self.settings.max_prompt_chars
        if len(prompt) > limit:
            raise invalid_argument(
                "prompt",
                f"it has {len(prompt):,} characters, over this server's limit of {limit:,} "
                "(--max-prompt-chars, LINGMA_MAX_PROMPT_CHARS)",
                "a shorter prompt: quote only the parts of files Lingma needs, or raise the limit",
            )
        prompt = replace_lone_surrogates(prompt)
        mode = (mode or self.settings.mode or "chat").strip().lower()
        if mode not in MODES:
            raise invalid_argument("mode", f"{mode!r} is not a mode", SEND["mode"])
        model = (model or self.settings.model or "").strip() or None
        if session_id is not None:
            session_id = session_id.strip() or None
        if timeout_s is None:
            timeout_s = self.settings.request_timeout
        timeout_s = checked_timeout(timeout_s)
        folder = self.settings.workspace
        if workspace:
            folder = checked_workspace(str(workspace))
        if fork and session_id is None:
            raise invalid_argument(
                "fork", "it needs the session_id of the conversation to fork", SEND["fork"]
            )
        effort = (reasoning_effort or "").strip() or None
        if effort is not None and len(effort) > MAX_EFFORT_CHARS:
            raise invalid_argument(
                "reasoning_effort", f"it has {len(effort)} characters", SEND["reasoning_effort"]
            )
        optional = effort is None and bool(self.settings.reasoning_effort)
        return AskParams(
            prompt=prompt,
            model=model,
            mode=mode,
            session_id=session_id,
            workspace=folder,
            timeout_s=timeout_s,
            attachments=attachments,
            fork=fork,
            reasoning_effort=effort or self.settings.reasoning_effort,
            effort_optional=optional,
        )

    async def check_model(self, params: AskParams) -> None:
        """Refuse an unknown model key now, for a caller that cannot wait for :meth:`ask`
        (a background ask must refuse a bad argument at once, not in its job)."""
        if params.model is not None:
            client = await self.client(params.timeout_s)
            await self._check_model(client, params.model, params.mode)

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
                    client = await self.client(params.timeout_s)
                    await self._check_auth(client)
                    if params.model is not None:
                        await self._check_model(client, params.model, params.mode)
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
                        await self._check_auth(client, force=True)
                if (
                    result.finish_reason not in ("cancelled", "error")
                    and params.model is None
                    and self._models is None
                ):
                    # Only to name Lingma's default model in the result; never fails it.
                    try:
                        with anyio.move_on_after(self.settings.control_timeout):
                            await self.models(client)
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
                self._suspect(f"a chat heard nothing from Lingma within {params.timeout_s:g} s")
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
            model=params.model or self._default_model(params.mode),
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

    def _default_model(self, mode: str) -> str | None:
        """The model Lingma used for a question in ``mode`` that named none, if known."""
        return default_key(self._models or [], SCENE_FOR_MODE.get(mode, CHAT_SCENE))

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
                        self._suspect(f"a chat heard nothing from Lingma within {quiet_bound:g} s")
                        first = False
                        continue
                    first = False
                else:
                    event = await stream.__anext__()
            except StopAsyncIteration:
                return
            if on_event is not None:
                on_event(event)

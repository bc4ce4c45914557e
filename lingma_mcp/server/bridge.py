"""The bridge service: what the tools, the resources and the command line ask of Lingma.

It owns the supervisor and the small caches that sit above the RPC core (the model list,
the last good login check), validates requests before Lingma sees them, and runs one
question to its end: bounded by ``timeout_s``, stopped upstream when its caller leaves.
It knows nothing of MCP; :mod:`.tools` turns what it returns (or raises) into tool results.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from ..config import MODES, Settings
from ..errors import ChatFailed, LingmaConnectionLost, LingmaError
from ..events import ChatEvent
from ..lingma.client import ChatRequest, LingmaClient
from .errors import AskTimedOut, ChatCancelled, InvalidArgument, error_text, is_expected
from .models import AskResult, AuthInfo, BridgeState, ModelList
from .views import (
    auth_info,
    default_key,
    int_or_none,
    model_info,
    model_keys,
    session_detail,
    session_summary,
    sort_number,
    str_or_none,
    tool_event,
)

log = logging.getLogger(__name__)

# A login that was fine this recently is not re-checked before each question.
AUTH_RECHECK_S = 60.0
# An unknown model key triggers one fresh fetch of the list, at most this often.
MODELS_REFRESH_S = 10.0
# The longest a status check (auth_status, lingma://status) waits for Lingma to start.
STATUS_WAIT_S = 15.0
# How long releasing a stream (and sending chat/stop) may take after a cancellation.
STOP_GRACE_S = 5.0

SCENE_FOR_MODE = {"chat": "chat", "agent": "developer"}


@dataclass
class AskParams:
    """One question, as validated arguments."""

    prompt: str
    model: str | None
    mode: str
    session_id: str | None
    workspace: Path
    timeout_s: float


class Bridge:
    """Lingma for the MCP face and the command line.

    Args:
        settings: every option.
        supervisor: anything with ``start()``, ``await client(timeout)``, ``status()`` and
            ``await close()``; by default a :class:`LingmaSupervisor` for ``settings``.
    """

    def __init__(self, settings: Settings, supervisor: Any = None) -> None:
        if supervisor is None:
            from .backends import make_backend  # the IDE binary or the CLI, per --backend

            supervisor = make_backend(settings)
        self.settings = settings
        self.supervisor = supervisor
        # "This workspace" for the sessions resource: the host's first root once a call has
        # seen one, else --workspace.
        self.workspace: Path = settings.workspace
        self._models: dict[str, list[dict[str, Any]]] | None = None
        self._models_client: int | None = None
        self._models_at = 0.0
        self._auth_ok_at: float | None = None
        self._auth_client: int | None = None

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Start Lingma in the background; returns at once."""
        self.supervisor.start()

    async def close(self) -> None:
        await self.supervisor.close()

    async def client(self, wait_s: float | None = None) -> LingmaClient:
        """A ready client, waiting at most ``wait_s``.

        By default the supervisor's own bound applies (a little over the start-up timeout),
        so a failed start reports its precise error (which file, port or reply it waited
        for) instead of a generic "not ready in time".
        """
        return await self.supervisor.client(timeout=wait_s)

    def state(self) -> BridgeState:
        """The supervisor's status, as an allow-listed model."""
        status = self.supervisor.status()

        def get(name: str) -> Any:
            if isinstance(status, dict):
                return status.get(name)
            return getattr(status, name, None)

        state = get("state")
        return BridgeState(
            state=str(getattr(state, "value", state) or "unknown"),
            pid=int_or_none(get("pid")),
            port=int_or_none(get("port")),
            version=str_or_none(get("version")),
            last_error=str_or_none(get("last_error")),
            work_dir=str_or_none(get("work_dir")),
            log_hint=str_or_none(get("log_hint")),
            simulated=bool(self.settings.simulate),
            backend=getattr(self.supervisor, "kind", None),
        )

    def error_text(self, exc: BaseException) -> str:
        """The user's text for ``exc``, with the bridge's state; logs it once, here."""
        try:
            state = self.state()
        except Exception:  # the status must never hide the error itself
            state = None
        text = error_text(exc, status=state)
        if is_expected(exc):
            log.info("%s: %s", type(exc).__name__, text.splitlines()[0][:300])
        else:
            log.error("unexpected failure, reported as: %s", text, exc_info=exc)
        return text

    # -- models --------------------------------------------------------------------------

    async def models(self, client: LingmaClient, *, refresh: bool = False) -> dict[str, Any]:
        """Models by scene, fetched once per Lingma connection and cached.

        An empty list (what Lingma says while logged out) is not cached: after a login
        the next call fetches the real one.
        """
        if refresh or not self._models or self._models_client != id(client):
            models = await client.query_models()
            self._models = models or None
            self._models_client = id(client)
            self._models_at = time.monotonic()
            return models
        return self._models

    async def model_list(self, scene: str | None = None) -> ModelList:
        client = await self.client()
        by_scene = await self.models(client)
        if not by_scene:
            # Lingma lists no models while logged out: say that, not "no models".
            await self._check_auth(client, force=True)
        if scene is not None and scene not in by_scene:
            known = ", ".join(sorted(by_scene)) or "none (is Lingma logged in?)"
            raise InvalidArgument(f"Unknown scene {scene!r}. Scenes Lingma offers: {known}.")
        scenes = {
            name: [model_info(m, self.settings.model or default_key(models)) for m in models]
            for name, models in by_scene.items()
            if scene is None or name == scene
        }
        default = self.settings.model or default_key(by_scene.get("chat", []))
        return ModelList(scenes=scenes, default_model=default)

    async def _check_model(self, client: LingmaClient, model: str, mode: str) -> None:
        scene = SCENE_FOR_MODE.get(mode, "chat")
        by_scene = await self.models(client)
        if model_keys(by_scene, scene) and model in model_keys(by_scene, scene):
            return
        if time.monotonic() - self._models_at > MODELS_REFRESH_S:
            by_scene = await self.models(client, refresh=True)
        keys = model_keys(by_scene, scene)
        if not keys:
            # No list at all usually means no login; say that rather than "unknown model".
            await self._check_auth(client, force=True)
            return
        if model not in keys:
            raise InvalidArgument(
                f"Unknown model key {model!r} for {mode} mode. Valid keys: "
                f"{', '.join(keys)}. Call list_models to see them with their names."
            )

    # -- auth ----------------------------------------------------------------------------

    async def _check_auth(self, client: LingmaClient, *, force: bool = False) -> None:
        fresh = (
            self._auth_ok_at is not None
            and self._auth_client == id(client)
            and time.monotonic() - self._auth_ok_at < AUTH_RECHECK_S
        )
        if fresh and not force:
            return
        status = await client.auth_status()
        if not status.logged_in:
            self._auth_ok_at = None
            raise status.not_logged_in()
        self._auth_ok_at = time.monotonic()
        self._auth_client = id(client)

    async def auth(self, *, wait_s: float | None = None) -> AuthInfo:
        """Login state and the bridge's own state; never raises for Lingma's failures.

        A status check waits at most ``STATUS_WAIT_S`` for a Lingma that is still starting:
        "still starting, waiting for X" is the answer then, not a minute of silence.
        """
        if wait_s is None:
            wait_s = min(self.settings.startup_timeout, STATUS_WAIT_S)
        try:
            client = await self.client(wait_s)
            status = await client.auth_status()
        except LingmaError as exc:
            return AuthInfo(
                logged_in=None,
                status="unknown (Lingma is not available)",
                problem=self.error_text(exc),
                bridge=self.state(),
            )
        return auth_info(status, self.state())

    async def login_url(self) -> str:
        client = await self.client()
        return await client.login_url()

    # -- conversations ---------------------------------------------------------------------

    async def sessions(self) -> list[dict[str, Any]]:
        """This workspace's conversations, newest first.

        Lingma files a conversation under a project; whether that is the folder Lingma was
        started with or the one a question named is not known, so both are asked.
        """
        client = await self.client()
        found: dict[str, dict[str, Any]] = {}
        for folder in dict.fromkeys([self.workspace, self.settings.workspace]):
            for raw in await client.list_sessions(folder):
                summary = session_summary(raw)
                if summary["session_id"] and summary["session_id"] not in found:
                    found[summary["session_id"]] = summary
        return sorted(found.values(), key=lambda s: sort_number(s["modified"]), reverse=True)

    async def session(self, session_id: str) -> dict[str, Any] | None:
        client = await self.client()
        raw = await client.get_session(session_id)
        return session_detail(raw) if raw is not None else None

    # -- asking ----------------------------------------------------------------------------

    def validate(
        self,
        prompt: str,
        *,
        model: str | None = None,
        mode: str | None = None,
        session_id: str | None = None,
        workspace: str | Path | None = None,
        timeout_s: float | None = None,
    ) -> AskParams:
        """Refuse bad arguments before Lingma is asked."""
        if not isinstance(prompt, str) or not prompt.strip():
            raise InvalidArgument("The prompt is empty: pass the question for Lingma as prompt.")
        mode = (mode or self.settings.mode or "chat").strip().lower()
        if mode not in MODES:
            raise InvalidArgument(f"Unknown mode {mode!r}. Use one of: {', '.join(MODES)}.")
        model = (model or self.settings.model or "").strip() or None
        if session_id is not None:
            session_id = session_id.strip() or None
        if timeout_s is None:
            timeout_s = self.settings.request_timeout
        if not timeout_s > 0:
            raise InvalidArgument(f"timeout_s must be a positive number of seconds: {timeout_s}")
        folder = Path(workspace).expanduser() if workspace else self.settings.workspace
        if workspace and not folder.is_dir():
            raise InvalidArgument(f"workspace {str(folder)!r} is not a folder on this machine.")
        return AskParams(
            prompt=prompt,
            model=model,
            mode=mode,
            session_id=session_id,
            workspace=folder,
            timeout_s=float(timeout_s),
        )

    async def ask(
        self, params: AskParams, on_event: Callable[[ChatEvent], None] | None = None
    ) -> AskResult:
        """Ask one question and wait for the whole answer.

        Raises:
            InvalidArgument: unknown model key.
            AskTimedOut: ``params.timeout_s`` passed (Lingma was asked to stop).
            LingmaError: anything the supervisor or the chat raised, typed.
        """
        stream = None
        try:
            with anyio.move_on_after(params.timeout_s) as deadline:
                for attempt in (1, 2):
                    client = await self.client(params.timeout_s)
                    await self._check_auth(client)
                    if params.model is not None:
                        await self._check_model(client, params.model, params.mode)
                    heard = False
                    try:
                        stream = await client.open_chat(
                            ChatRequest(
                                prompt=params.prompt,
                                model=params.model,
                                mode=params.mode,
                                session_id=params.session_id,
                                workspace=params.workspace,
                            )
                        )
                        async for event in stream:
                            heard = True
                            if on_event is not None:
                                on_event(event)
                        break
                    except LingmaConnectionLost:
                        # A Lingma that died while idle is only noticed by the next question.
                        # If it said nothing about this one, nothing ran: ask the restarted
                        # Lingma once more. Once it has answered anything, report the crash.
                        if heard or attempt == 2:
                            raise
                        log.info("Lingma went away before answering; asking once more")
                        if stream is not None:
                            with anyio.move_on_after(STOP_GRACE_S, shield=True):
                                await stream.aclose()
                            stream = None
            if deadline.cancelled_caught:
                so_far = stream.text_so_far() if stream is not None else ""
                raise AskTimedOut(params.timeout_s, so_far, stopped=stream is not None)
            assert stream is not None
            result = stream.result()
        finally:
            if stream is not None:
                # Shielded: a cancelled caller (notifications/cancelled, a host that left)
                # must still reach Lingma with chat/stop.
                with anyio.move_on_after(STOP_GRACE_S, shield=True):
                    await stream.aclose()
        if result.finish_reason == "cancelled":
            raise ChatCancelled()
        if result.finish_reason == "error" or result.status_code not in (None, 200):
            if result.status_code in (401, 403):
                await self._check_auth(client, force=True)
            raise ChatFailed(
                result.finish_reason or "error", result.status_code, result.finish_message
            )
        if params.model is None and self._models is None:
            # Only to name Lingma's default model in the result; never fails the answer.
            try:
                with anyio.move_on_after(self.settings.control_timeout):
                    await self.models(client)
            except LingmaError as exc:
                log.debug("model list unavailable: %s", exc)
        return AskResult(
            answer=result.answer,
            session_id=result.session_id,
            request_id=result.request_id,
            model=params.model or default_key(self._scene_models(params.mode)),
            mode=params.mode,
            finish_reason=result.finish_reason,
            status_code=result.status_code,
            tool_events=[tool_event(t) for t in result.tool_events],
            thinking=result.thinking,
            first_token_ms=result.first_token_ms,
            total_ms=result.total_ms,
        )

    def _scene_models(self, mode: str) -> list[dict[str, Any]]:
        if not self._models:
            return []
        return list(self._models.get(SCENE_FOR_MODE.get(mode, "chat"), []))

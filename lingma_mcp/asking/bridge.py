"""The bridge: the asking service the MCP face and the command line hold.

It owns the backend (:class:`~lingma_mcp.backend.Backend`: the IDE binary or the CLI, it
never asks which) and wires the parts that each do one job above it: the argument checks
(:mod:`.arguments`), the login check and the model list with their caches
(:mod:`.login_check`, :mod:`.model_cache`), the health watch (:mod:`.health_watch`), the
ask itself (:mod:`.ask`) and agent mode's calls (:mod:`.agent_calls`). Itself it answers for
the backend's state, the text of an error with that state, the login state and the
conversations. It knows nothing of MCP; the face turns what it returns (or raises) into
tool results.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..backend import Backend, BackendClient, ChatEvent, SessionSummary
from ..config import Settings
from ..errors import LingmaError
from ..redact import redact
from .agent_calls import AgentCalls
from .arguments import AskParams
from .ask import AskRunner
from .error_texts import Audience, error_text, is_expected
from .health_watch import HealthWatch
from .login_check import LoginCheck
from .model_cache import ModelCache
from .results import AskResult, AuthInfo, BridgeState, ModelList
from .views import auth_info, newest_first, session_detail, session_summary

log = logging.getLogger(__name__)

# The longest a status check (auth_status, lingma://status) waits for Lingma to start.
STATUS_WAIT_S = 15.0


class Bridge:
    """Lingma for the MCP face and the command line.

    Args:
        settings: every option.
        supervisor: the :class:`~lingma_mcp.backend.Backend` that serves; by default the
            one ``settings`` choose (:func:`.backend_choice.make_backend`).
        audience: where error texts are read ("host" names tools, "terminal" commands).
    """

    def __init__(
        self, settings: Settings, supervisor: Backend | None = None, *, audience: Audience = "host"
    ) -> None:
        if supervisor is None:
            from .backend_choice import make_backend  # the IDE binary or the CLI, per --backend

            supervisor = make_backend(settings)
        self.settings = settings
        self.supervisor = supervisor
        self.agents = AgentCalls(settings)  # agent mode: approvals, workspace hosts, record
        # "This workspace" for the sessions resource: the host's first root once a call has
        # seen one, else --workspace.
        self.workspace: Path = settings.workspace
        self.audience: Audience = audience
        self.watch = HealthWatch(supervisor)
        self.login = LoginCheck(self.watch)
        self.models = ModelCache(self.watch, self.login, audience)
        self.asks = AskRunner(
            self.client,
            self.login,
            self.models,
            self.watch,
            control_timeout=settings.control_timeout,
        )

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Start Lingma in the background; returns at once."""
        self.supervisor.start()

    async def close(self) -> None:
        await self.asks.close()
        await self.agents.close()
        await self.supervisor.close()

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

    # -- models and login ------------------------------------------------------------------

    async def model_list(self, scene: str | None = None) -> ModelList:
        client = await self.client()
        return await self.models.listing(client, scene, self.settings.model)

    async def auth(self, *, wait_s: float | None = None) -> AuthInfo:
        """Login state and the bridge's own state; never raises for Lingma's failures.

        A status check waits at most ``STATUS_WAIT_S`` for a Lingma that is still starting:
        "still starting, waiting for X" is the answer then, not a minute of silence.
        """
        if wait_s is None:
            wait_s = min(self.settings.startup_timeout, STATUS_WAIT_S)
        try:
            client = await self.client(wait_s)
            with self.watch.control():
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
        with self.watch.control():
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
            with self.watch.control():
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
        with self.watch.control():
            await client.delete_session(session_id)

    async def session(self, session_id: str) -> dict[str, Any] | None:
        client = await self.client()
        with self.watch.control():
            found = await client.session(session_id)
        return session_detail(found) if found is not None else None

    # -- asking ----------------------------------------------------------------------------

    async def check_model(self, params: AskParams) -> None:
        """Refuse an unknown model key now, for a caller that cannot wait for :meth:`ask`
        (a background ask must refuse a bad argument at once, not in its job)."""
        if params.model is not None:
            client = await self.client(params.timeout_s)
            await self.models.check(client, params.model, params.mode)

    async def ask(
        self,
        params: AskParams,
        on_event: Callable[[ChatEvent], None] | None = None,
        *,
        on_note: Callable[[str], None] | None = None,
    ) -> AskResult:
        """Ask one question and wait for the whole answer (:meth:`.ask.AskRunner.ask`);
        ``on_note`` hears the lines the person must see as the answer starts."""
        return await self.asks.ask(params, on_event, on_note=on_note)

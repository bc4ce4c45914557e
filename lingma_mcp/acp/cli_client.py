"""What the face asks of one running Lingma CLI: the login, models, conversations, chats.

:class:`CliClient` is the :class:`~lingma_mcp.backend.BackendClient` for one process: the
login read from the agent's answer to a session call (-32000 = logged out), models from the
session's config options or models state, sessions from ``session/list`` (a conversation's
turns from the replay of ``session/load``), all as the contract's values, and chats as
:class:`CliChatStream`: a new, continued or forked session, the question's attachments as
content blocks, its model and reasoning effort set first. Which process serves a chat is the
backend's to say (:attr:`CliClient.route`, set by ``cli_backend``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

from lingma_mcp.acp.acp_client import AcpClient, ListedSession
from lingma_mcp.acp.attachments import prompt_blocks
from lingma_mcp.acp.cli_errors import CapabilityMissing, CliNotLoggedIn
from lingma_mcp.acp.credentials import LOGIN_INSTRUCTIONS, Credential
from lingma_mcp.acp.models import as_models
from lingma_mcp.acp.prompt import PromptStream
from lingma_mcp.backend import (
    AGENT_SCENE,
    CHAT_SCENE,
    ChatEvent,
    ChatRequest,
    ChatResult,
    Finish,
    Login,
    Model,
    Session,
    SessionSummary,
    TextDelta,
)
from lingma_mcp.errors import LingmaError

log = logging.getLogger("lingma_mcp.acp.cli_client")

# The scenes the face asks about: chat mode and agent mode list the same models, the CLI
# having one list for everything.
SCENES = (CHAT_SCENE, AGENT_SCENE)


class CliLoginInstructions(LingmaError):
    """The CLI logs in from a terminal or a token, not a URL; the text says how."""

    def __init__(self) -> None:
        self.instructions = LOGIN_INSTRUCTIONS
        super().__init__(LOGIN_INSTRUCTIONS)


def _time(stamp: str | None) -> datetime | None:
    """The agent's ISO 8601 time, aware (a time without a zone is taken as UTC)."""
    if not stamp:
        return None
    try:
        when = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=timezone.utc)


def _summary(listed: ListedSession) -> SessionSummary:
    return SessionSummary(
        session_id=listed.session_id,
        title=listed.title,
        backend="cli",
        workspace=Path(listed.cwd) if listed.cwd else None,
        updated=_time(listed.updated_at),
    )


class CliClient:
    """What the face asks of one running CLI (a :class:`~lingma_mcp.backend.BackendClient`).

    Args:
        acp: the initialized ACP connection.
        workspace: the folder for sessions opened without a chat (login check, models).
        credential: the credential the CLI was started with (:func:`credential_in`).
    """

    def __init__(
        self, acp: AcpClient, workspace: Path, credential: Credential | None = None
    ) -> None:
        self.acp = acp
        self.workspace = workspace
        self.credential = credential if credential is not None else Credential()
        # A session opened to read the login or the models, handed to the next new chat
        # in the same folder rather than wasted.
        self._spare: tuple[str, Path] | None = None
        # Where an agent-mode chat runs when a process may write only in its own workspace
        # (set by CliBackend): the client of that workspace's process.
        self.route: Callable[[Path], Awaitable[CliClient]] | None = None

    @property
    def version(self) -> str | None:
        return self.acp.agent_info.version or None

    async def _spare_session(self, cwd: Path) -> str:
        if self._spare is None or self._spare[1] != cwd:
            self._spare = (await self.acp.new_session(cwd), cwd)
        return self._spare[0]

    def _take_spare(self, cwd: Path) -> str | None:
        spare, self._spare = self._spare, None
        if spare is not None and spare[1] == cwd:
            return spare[0]
        self._spare = spare
        return None

    async def login_state(self) -> Login:
        """Logged in or not, read from a session call: the CLI answers -32000 logged out.

        ``session/list`` where the agent has it (no session is made), else ``session/new``
        (kept for the next chat). ``authenticate`` is never sent: the CLI never answers it.
        Nothing more is known of the account; the CLI logs in from a terminal or a token,
        so a logged-out state carries the instructions for that (a token it was given and
        did not accept is named).
        """
        credential = str(self.credential)
        try:
            if self.acp.can_list:
                await self.acp.list_sessions(self.workspace)
            else:
                await self._spare_session(self.workspace)
        except CliNotLoggedIn:
            return Login(
                logged_in=False,
                state="not logged in",
                credential=credential,
                instructions=self.credential.refused(),
            )
        return Login(logged_in=True, state="logged in", credential=credential)

    async def models(self) -> list[Model]:
        """The agent's models, each serving both scenes; ``[]`` if it offers none.

        Raises:
            CliNotLoggedIn: the session the models come from could not be opened.
        """
        state = self.acp.models()
        if state is None:
            state = self.acp.models(await self._spare_session(self.workspace))
        return as_models(state, SCENES)

    async def login_url(self) -> str:
        raise CliLoginInstructions()

    async def sessions(self, project: Path) -> list[SessionSummary]:
        """This folder's sessions from ``session/list``.

        Raises:
            CapabilityMissing: the agent has no ``session/list`` (the text says so).
        """
        if not self.acp.can_list:
            raise CapabilityMissing(
                "this Lingma CLI cannot list its conversations (it has no session/list); "
                "continue one with the session_id an answer returned"
            )
        return [_summary(s) for s in await self.acp.list_sessions(project)]

    async def session(self, session_id: str) -> Session | None:
        """The session's summary from ``session/list`` and its turns from the replay of a
        ``session/load`` in the folder it was asked in (none where the agent cannot load)."""
        if not self.acp.can_list:
            raise CapabilityMissing(
                "this Lingma CLI cannot list its conversations (it has no session/list)"
            )
        for listed in await self.acp.list_sessions(None):
            if listed.session_id == session_id:
                summary = _summary(listed)
                if not self.acp.can_load:
                    return Session(summary)
                turns = await self.acp.history(session_id, Path(listed.cwd or self.workspace))
                return Session(replace(summary, turns=len(turns)), turns)
        return None

    async def delete_session(self, session_id: str) -> None:
        """``session/delete``.

        Raises:
            UnknownSession, RequestRefused (the agent cannot delete).
        """
        await self.acp.delete_session(session_id)
        if self._spare is not None and self._spare[0] == session_id:
            self._spare = None

    async def open_chat(self, request: ChatRequest) -> CliChatStream:
        """Open (or continue, or fork) the session and start ``session/prompt``.

        In agent mode ``request.host`` serves the agent's ``fs/*`` and ``terminal/*``
        requests and decides its permission requests; without one the chat is chat-only
        and those are refused. A session asked for is continued as it is or not at all (the
        agent refuses an id it does not know), so such a chat always reports ``continued``;
        a fork continues it in a copy (``session/fork``), whose id the result carries.
        Attachments the agent cannot take are refused before any session is opened.

        Raises:
            CliNotLoggedIn, UnknownModel, UnknownSession, RequestRefused, CapabilityMissing,
            AcpRpcError, RpcTimeout.
        """
        if request.host is not None and self.route is not None:
            target = await self.route(request.host.root)
            if target is not self:
                return await target.open_chat(request)
        blocks = prompt_blocks(request.prompt, request.attachments, self.acp.prompt_capabilities)
        cwd = Path(request.workspace or self.workspace)
        session_id = request.session_id
        if session_id is None:
            spare = self._take_spare(cwd)
            session_id = spare or await _said_if_slow(self.acp.new_session(cwd), request)
        elif request.fork:
            session_id = await _said_if_slow(self.acp.fork_session(session_id, cwd), request)
        else:
            session_id = await _said_if_slow(self.acp.open_session(session_id, cwd), request)
        if request.model:
            await self.acp.set_model(session_id, request.model)
        if request.reasoning_effort:
            await self.acp.set_effort(
                session_id, request.reasoning_effort, optional=request.effort_optional
            )
        host = request.host
        started = time.monotonic()
        prompt = self.acp.prompt(session_id, blocks, workspace=host, approvals=host)
        return CliChatStream(
            prompt, request.request_id, started, continuing=request.session_id is not None
        )


SLOW_SESSION_S = 2.0
SLOW_SESSION_LINE = (
    "Opening a Lingma CLI session: the CLI scans the workspace first, which takes a while "
    "in a large folder"
)


async def _said_if_slow(opening: Awaitable[str], request: ChatRequest) -> str:
    """Await a session call; if it takes longer than :data:`SLOW_SESSION_S`, tell the
    request's status line why the answer has not begun."""
    task = asyncio.ensure_future(opening)
    done, _ = await asyncio.wait({task}, timeout=SLOW_SESSION_S)
    if not done and request.status is not None:
        request.status(SLOW_SESSION_LINE)
    return await task


# -- one chat --------------------------------------------------------------------------


class CliChatStream:
    """One prompt's events (a :class:`~lingma_mcp.backend.ChatStreamLike`)."""

    def __init__(
        self, prompt: PromptStream, request_id: str, started: float, *, continuing: bool = False
    ) -> None:
        self.prompt = prompt
        self.request_id = request_id
        self.continuing = continuing
        self._started = started
        self._first_token_ms: int | None = None
        self._total_ms: int | None = None

    def __aiter__(self) -> CliChatStream:
        return self

    async def __anext__(self) -> ChatEvent:
        try:
            event = await self.prompt.__anext__()
        except StopAsyncIteration:
            if self._total_ms is None:
                self._total_ms = self._elapsed()
            raise
        if isinstance(event, TextDelta) and self._first_token_ms is None:
            self._first_token_ms = self._elapsed()
        if isinstance(event, Finish):
            self._total_ms = self._elapsed()
        return event

    @property
    def done(self) -> bool:
        """Finished or failed: releasing it sends nothing upstream."""
        return self.prompt.done

    @property
    def finish(self) -> Finish | None:
        return self.prompt.finish

    @property
    def session_hint(self) -> str:
        """The session this prompt runs in (ACP sessions keep their id)."""
        return self.prompt.session_id

    def _elapsed(self) -> int:
        return int((time.monotonic() - self._started) * 1000)

    @property
    def session_id(self) -> str:
        return self.prompt.session_id

    def text_so_far(self) -> str:
        return self.prompt.answer

    def result(self) -> ChatResult:
        finish = self.prompt.finish
        return ChatResult(
            answer=self.prompt.answer or (finish.full_answer or "" if finish else ""),
            session_id=self.prompt.session_id,
            request_id=self.request_id,
            finish_reason=finish.reason if finish else None,
            status_code=finish.status_code if finish else None,
            tool_events=self.prompt.tools,
            thinking=self.prompt.thinking,
            first_token_ms=self._first_token_ms,
            total_ms=self._total_ms if self._total_ms is not None else self._elapsed(),
            finish_message=finish.message if finish else "",
            continued=True if self.continuing and finish else None,
            usage=finish.usage if finish else None,
        )

    async def aclose(self) -> None:
        """Cancel the prompt (``session/cancel``) if it still runs; bounded."""
        await self.prompt.aclose()

"""AcpClient: the Lingma CLI's sessions, prompts and models over one ACP connection.

The SDK's ``ClientSideConnection`` does the JSON-RPC work: ids, replies, request routing
to :class:`~lingma_mcp.acp.handlers.ClientHandlers`, waiting for a prompt's last updates
before its reply. It already tells the agent's requests from its replies by the presence
of ``method``, never by id, which matters because the CLI numbers its own requests from 0
just as we do. What this module adds for the CLI's quirks:

- every control call is bounded (``control_timeout``); ``authenticate`` is never sent: the
  CLI never answers it. A -32000 reply becomes :class:`CliNotLoggedIn`, whose message
  says how to log in;
- ``session/cancel`` goes out only as a notification (the CLI refuses the request form),
  and pending permission requests of that session are answered ``cancelled``;
- the schema the SDK validates with has no field for the older ``models`` state of
  ``session/new`` nor a ``session/set_model`` or ``session/delete`` call, which agents
  still use; the raw replies are read beside the SDK (the transport's observer) and
  those calls sent through the SDK connection's raw request;
- an id the CLI does not know (-32602 with ``data.code`` ``INVALID_SESSION_IDENTIFIER``,
  for load, resume, fork and delete alike) becomes :class:`UnknownSession`;
- ``session/load`` replays the history partly before and partly after its reply: a load
  collects it until the CLI's closing update (:mod:`.replay`), bounded, so none of it
  lands in the next prompt's answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from acp import PROTOCOL_VERSION, RequestError, connect_to_agent, text_block
from acp.client.connection import ClientSideConnection
from acp.schema import (
    ClientCapabilities,
    FileSystemCapabilities,
    Implementation,
    InitializeResponse,
    PromptCapabilities,
)

from lingma_mcp import __version__
from lingma_mcp.acp.attachments import PromptBlock
from lingma_mcp.acp.cli_errors import (
    AUTH_REQUIRED,
    AcpRpcError,
    CapabilityMissing,
    CliNotLoggedIn,
    UnknownModel,
)
from lingma_mcp.acp.handlers import ClientHandlers
from lingma_mcp.acp.models import (
    EffortState,
    ModelOption,
    ModelState,
    effort_from_config,
    models_from_config,
    models_from_raw,
)
from lingma_mcp.acp.ports import ApprovalPort, WorkspacePort
from lingma_mcp.acp.prompt import PromptEnd, PromptStream
from lingma_mcp.acp.replay import Replay, turns_from
from lingma_mcp.acp.transport import LineTransport
from lingma_mcp.acp.updates import UpdateMapper
from lingma_mcp.acp.usage import usage_from
from lingma_mcp.backend import Turn
from lingma_mcp.errors import (
    LingmaConnectionLost,
    LingmaError,
    RequestRefused,
    RpcTimeout,
    UnknownSession,
)
from lingma_mcp.events import ChatEvent

log = logging.getLogger("lingma_mcp.acp.acp_client")

T = TypeVar("T")

CONTROL_TIMEOUT = 30.0
SESSION_TIMEOUT = 90.0
# Methods whose replies carry a session's model state.
_SESSION_METHODS = frozenset({"session/new", "session/load", "session/resume", "session/fork"})
# The CLI's words for an id it does not know (in the error's data), whatever the call.
INVALID_SESSION = "INVALID_SESSION_IDENTIFIER"
INVALID_PARAMS = -32602
# How long a load waits, after its reply and a round trip, for the update that closes
# the replay. The CLI sends it within milliseconds; an agent that never sends it costs a
# reader of the history this much, no more.
REPLAY_END_WAIT_S = 2.0


@dataclass(frozen=True, slots=True)
class AgentInfo:
    """Who answers: from ``initialize``'s ``agentInfo``."""

    name: str
    title: str
    version: str


@dataclass(frozen=True, slots=True)
class ListedSession:
    """One entry of ``session/list``, as the agent sent it (``updated_at`` in ISO 8601)."""

    session_id: str
    cwd: str
    title: str | None
    updated_at: str | None


class AcpClient:
    """One ACP connection to the CLI. Build it on a transport, then :meth:`initialize`."""

    def __init__(
        self,
        transport: LineTransport,
        *,
        control_timeout: float = CONTROL_TIMEOUT,
        session_timeout: float = SESSION_TIMEOUT,
    ) -> None:
        self.control_timeout = control_timeout
        # session/new scans the workspace first (30 s seen in a large repository), and
        # load/resume may too: a bound of their own, longer than a control call's.
        self.session_timeout = max(session_timeout, control_timeout)
        self.handlers = ClientHandlers()
        self._models: dict[str, ModelState] = {}
        self._efforts: dict[str, EffortState | None] = {}
        self._outgoing: dict[Any, tuple[str, str | None]] = {}
        transport.observer = self._observe
        self.transport = transport
        self.conn: ClientSideConnection = connect_to_agent(self.handlers, transport)
        self.init: InitializeResponse | None = None

    # -- raw replies the schema drops --------------------------------------------------
    def _observe(self, direction: str, message: dict[str, Any]) -> None:
        method = message.get("method")
        if direction == "out":
            if method in _SESSION_METHODS and "id" in message:
                params = message.get("params") or {}
                self._outgoing[message["id"]] = (method, params.get("sessionId"))
            return
        if method is not None or "id" not in message:
            return  # the agent's own requests and notifications; ids may collide with ours
        sent = self._outgoing.pop(message["id"], None)
        result = message.get("result")
        if sent is None or not isinstance(result, dict):
            return
        session_id = result.get("sessionId") or sent[1]
        state = models_from_raw(result.get("models"))
        if session_id and state is not None:
            self._models.setdefault(str(session_id), state)

    async def _call(self, method: str, call: Awaitable[T], *, timeout: float | None) -> T:
        """Await one SDK call, bounded, with the SDK's errors as ours."""
        try:
            if timeout is None:
                return await call
            return await asyncio.wait_for(call, timeout)
        except asyncio.TimeoutError:
            raise RpcTimeout(method, timeout or 0.0) from None
        except RequestError as exc:
            if exc.code == AUTH_REQUIRED:
                raise CliNotLoggedIn(method) from None
            data = exc.data if isinstance(exc.data, dict) else {}
            if exc.code == INVALID_PARAMS and data.get("code") == INVALID_SESSION:
                raise UnknownSession(str(data.get("sessionId") or "")) from None
            raise AcpRpcError(method, exc.code, str(exc), exc.data) from None
        except ConnectionError as exc:
            raise LingmaConnectionLost(f"the Lingma CLI went away during {method}") from exc

    # -- handshake ---------------------------------------------------------------------
    async def initialize(self) -> InitializeResponse:
        """``initialize``, declaring file reads and writes and terminals."""
        capabilities = ClientCapabilities(
            fs=FileSystemCapabilities(read_text_file=True, write_text_file=True),
            terminal=True,
        )
        self.init = await self._call(
            "initialize",
            self.conn.initialize(
                protocol_version=PROTOCOL_VERSION,
                client_capabilities=capabilities,
                client_info=Implementation(
                    name="lingma-mcp", title="lingma-mcp", version=__version__
                ),
            ),
            timeout=self.session_timeout,
        )
        return self.init

    @property
    def agent_info(self) -> AgentInfo:
        info = self.init.agent_info if self.init is not None else None
        if info is None:
            return AgentInfo("", "", "")
        return AgentInfo(info.name, info.title or info.name, info.version)

    def _session_caps(self) -> Any:
        caps = self.init.agent_capabilities if self.init is not None else None
        return caps.session_capabilities if caps is not None else None

    @property
    def can_load(self) -> bool:
        caps = self.init.agent_capabilities if self.init is not None else None
        return bool(caps and caps.load_session)

    @property
    def can_resume(self) -> bool:
        caps = self._session_caps()
        return caps is not None and caps.resume is not None

    @property
    def can_list(self) -> bool:
        caps = self._session_caps()
        return caps is not None and caps.list is not None

    @property
    def can_fork(self) -> bool:
        caps = self._session_caps()
        return caps is not None and caps.fork is not None

    @property
    def can_delete(self) -> bool:
        caps = self._session_caps()
        return caps is not None and caps.delete is not None

    @property
    def prompt_capabilities(self) -> PromptCapabilities | None:
        """What a prompt may carry beside text and links (images, embedded context)."""
        caps = self.init.agent_capabilities if self.init is not None else None
        return caps.prompt_capabilities if caps is not None else None

    # -- sessions ----------------------------------------------------------------------
    async def new_session(self, cwd: Path) -> str:
        """``session/new {cwd}``; the session's id.

        Raises:
            CliNotLoggedIn: nobody is logged in to the CLI.
        """
        reply = await self._call(
            "session/new",
            self.conn.new_session(cwd=str(cwd), mcp_servers=[]),
            timeout=self.session_timeout,
        )
        self.handlers.bind(reply.session_id, cwd)
        self._remember_models(reply.session_id, reply.config_options)
        return reply.session_id

    async def load_session(self, session_id: str, cwd: Path) -> list[ChatEvent]:
        """``session/load``: continue a session of an earlier process; its history as events."""
        replayed = await self._load(session_id, cwd)
        mapper = UpdateMapper(session_id)
        return [event for update in replayed.updates for event in mapper.map(update)]

    async def history(self, session_id: str, cwd: Path) -> tuple[Turn, ...]:
        """A conversation's turns, from the replay of a ``session/load`` (see :mod:`.replay`).

        Raises:
            CapabilityMissing: the agent cannot load sessions.
            LingmaError: the session is answering a prompt here (its replay would mix
                with the answer).
            UnknownSession: the agent knows no such id.
        """
        binding = self.handlers.sessions.get(session_id)
        if binding is not None and binding.sink is not None:
            raise LingmaError(
                f"conversation {session_id} is answering a question now; read it again once "
                "the answer is in"
            )
        return turns_from((await self._load(session_id, cwd)).updates)

    async def _load(self, session_id: str, cwd: Path) -> Replay:
        """``session/load``, collecting its replay until the agent closes it (bounded)."""
        if not self.can_load:
            raise CapabilityMissing("the Lingma CLI does not declare loadSession")
        known = session_id in self.handlers.sessions
        binding = self.handlers.bind(session_id, cwd)
        replay = binding.replay = Replay()
        try:
            reply = await self._call(
                "session/load",
                self.conn.load_session(cwd=str(cwd), session_id=session_id, mcp_servers=[]),
                timeout=self.control_timeout,
            )
            self._remember_models(session_id, reply.config_options)
            # What the agent wrote before answering a later request is in by then; the
            # closing update may still follow.
            await self._fence()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(replay.over.wait(), REPLAY_END_WAIT_S)
        except BaseException:
            if not known:  # not open after all: the next ask must not take it as open
                self.handlers.sessions.pop(session_id, None)
            raise
        finally:
            binding.replay = None
        return replay

    async def _fence(self) -> None:
        """One round trip, so updates the agent sent before its reply have been handled.

        The CLI may replay a loaded session's history *after* answering ``session/load``;
        left alone, a late replay would land in the next prompt's answer. The agent writes
        its messages in order and the SDK hands them on in order, so once the reply to a
        later request arrives, the replay is in. Any reply will do: an extension method
        the agent does not know gets -32601 at once.
        """
        with contextlib.suppress(AcpRpcError):
            await self._call(
                "_lingma/fence",
                self.conn.ext_method("lingma/fence", {}),
                timeout=self.control_timeout,
            )

    async def ping(self) -> None:
        """One round trip the agent answers at once, logged in or not (a health probe)."""
        await self._fence()

    async def resume_session(self, session_id: str, cwd: Path) -> None:
        """``session/resume``: continue a session without replaying its history."""
        if not self.can_resume:
            raise CapabilityMissing("the Lingma CLI does not declare sessionCapabilities.resume")
        known = session_id in self.handlers.sessions
        self.handlers.bind(session_id, cwd)
        try:
            reply = await self._call(
                "session/resume",
                self.conn.resume_session(session_id=session_id, cwd=str(cwd), mcp_servers=[]),
                timeout=self.session_timeout,
            )
        except BaseException:
            if not known:
                self.handlers.sessions.pop(session_id, None)
            raise
        self._remember_models(session_id, reply.config_options)

    async def open_session(self, session_id: str | None, cwd: Path) -> str:
        """A session to prompt: a new one, the same one in this process, or one continued
        from an earlier process by ``session/resume`` or ``session/load``, whichever the
        agent declares (resume first: it does not replay the history)."""
        if session_id is None:
            return await self.new_session(cwd)
        if session_id in self.handlers.sessions:
            return session_id
        if self.can_resume:
            await self.resume_session(session_id, cwd)
        elif self.can_load:
            await self.load_session(session_id, cwd)
        else:
            raise CapabilityMissing(
                "the Lingma CLI declares neither session/load nor session/resume, "
                "so a conversation cannot be continued after a restart"
            )
        return session_id

    async def fork_session(self, session_id: str, cwd: Path) -> str:
        """``session/fork``: a new session holding a copy of ``session_id``'s history; its id.

        Raises:
            RequestRefused: the agent does not declare ``sessionCapabilities.fork``.
            UnknownSession: the agent knows no such id.
        """
        if not self.can_fork:
            raise RequestRefused(
                "fork",
                "this Lingma CLI cannot fork a conversation (it declares no session/fork)",
                "fork=false to continue the conversation itself",
            )
        reply = await self._call(
            "session/fork",
            self.conn.fork_session(session_id=session_id, cwd=str(cwd), mcp_servers=[]),
            timeout=self.control_timeout,
        )
        self.handlers.bind(reply.session_id, cwd)
        self._remember_models(reply.session_id, reply.config_options)
        return reply.session_id

    async def delete_session(self, session_id: str) -> None:
        """``session/delete``: the conversation leaves ``session/list`` for good.

        Raises:
            RequestRefused: the agent does not declare ``sessionCapabilities.delete``.
            UnknownSession: the agent knows no such id.
        """
        if not self.can_delete:
            raise RequestRefused(
                "session_id",
                "this Lingma CLI cannot delete conversations (it declares no session/delete)",
                "nothing: the conversation stays in its list",
            )
        binding = self.handlers.sessions.get(session_id)
        if binding is not None and binding.sink is not None:
            raise LingmaError(
                f"conversation {session_id} is answering a question now: cancel that first"
            )
        # The SDK has no method for it; the request goes out raw, as session/set_model.
        await self._call(
            "session/delete",
            self.conn._conn.send_request("session/delete", {"sessionId": session_id}),
            timeout=self.control_timeout,
        )
        self.handlers.sessions.pop(session_id, None)
        self._models.pop(session_id, None)
        self._efforts.pop(session_id, None)

    async def list_sessions(self, cwd: Path | None = None) -> list[ListedSession]:
        """``session/list`` (every page), where the agent declares it."""
        if not self.can_list:
            raise CapabilityMissing("the Lingma CLI does not declare sessionCapabilities.list")
        sessions: list[ListedSession] = []
        cursor: str | None = None
        while True:
            reply = await self._call(
                "session/list",
                self.conn.list_sessions(cwd=str(cwd) if cwd else None, cursor=cursor),
                timeout=self.control_timeout,
            )
            sessions += [
                ListedSession(s.session_id, s.cwd, s.title, s.updated_at) for s in reply.sessions
            ]
            cursor = reply.next_cursor
            if not cursor:
                return sessions

    # -- models and reasoning effort -----------------------------------------------------
    def _remember_models(self, session_id: str, config_options: list[Any] | None) -> None:
        state = models_from_config(config_options)
        if state is not None:
            self._models[session_id] = state
        if config_options is not None:
            # The effort option comes and goes with the model: each full list replaces it.
            self._efforts[session_id] = effort_from_config(config_options)

    def effort(self, session_id: str) -> EffortState | None:
        """The session's reasoning effort option, where its model has one."""
        return self._efforts.get(session_id)

    def models(self, session_id: str | None = None) -> ModelState | None:
        """The model state of ``session_id`` (or of any session seen), if the agent said."""
        if session_id is not None:
            return self._models.get(session_id)
        return next(iter(self._models.values()), None)

    async def list_models(self, cwd: Path) -> list[ModelOption]:
        """What the agent offers; opens a session in ``cwd`` when none was seen yet."""
        state = self.models()
        if state is None:
            state = self.models(await self.new_session(cwd))
        return list(state.options) if state is not None else []

    async def set_model(self, session_id: str, key: str) -> None:
        """Select ``key`` for the session, the way the agent declared models.

        Raises:
            UnknownModel: ``key`` is not offered (the message names the valid keys).
            CapabilityMissing: the agent declares no model selection at all.
        """
        state = self._models.get(session_id)
        if state is None:
            raise CapabilityMissing("the Lingma CLI offers no model selection for this session")
        valid = [option.key for option in state.options]
        if key not in valid:
            raise UnknownModel(key, valid)
        if state.current == key:
            return
        if state.config_id is not None:
            reply = await self._call(
                "session/set_config_option",
                self.conn.set_config_option(
                    config_id=state.config_id, session_id=session_id, value=key
                ),
                timeout=self.control_timeout,
            )
            # Another model may offer other effort levels, or none.
            self._remember_models(session_id, reply.config_options if reply else None)
        else:
            # The SDK models only the config-option way; the older call goes out raw
            # through its connection (no public method sends an arbitrary request).
            raw = self.conn._conn
            await self._call(
                "session/set_model",
                raw.send_request("session/set_model", {"sessionId": session_id, "modelId": key}),
                timeout=self.control_timeout,
            )
        self._models[session_id] = ModelState(state.options, key, state.config_id)

    async def set_effort(self, session_id: str, value: str, *, optional: bool = False) -> None:
        """Set the session's reasoning effort through its config option.

        ``optional`` (the server's default rather than the question's own): a session whose
        model offers no effort levels keeps going without one instead of refusing.

        Raises:
            RequestRefused: the model offers no effort levels, or not ``value`` (the text
                names the values it offers).
        """
        state = self._efforts.get(session_id)
        if state is None:
            if optional:
                log.info("reasoning effort %r skipped: this session's model offers none", value)
                return
            raise RequestRefused(
                "reasoning_effort",
                "this Lingma CLI offers no reasoning effort for this session's model",
                "no reasoning_effort (this model reasons as it does), or another model",
            )
        if value not in state.values:
            asked = f"the server's --reasoning-effort {value!r}" if optional else repr(value)
            raise RequestRefused(
                "reasoning_effort",
                f"{asked} is not offered for this session's model",
                f"one of {', '.join(state.values)} (the values the Lingma CLI offers), or nothing",
            )
        if state.current == value:
            return
        reply = await self._call(
            "session/set_config_option",
            self.conn.set_config_option(
                config_id=state.config_id, session_id=session_id, value=value
            ),
            timeout=self.control_timeout,
        )
        if reply is not None and reply.config_options:
            self._remember_models(session_id, reply.config_options)
        else:
            self._efforts[session_id] = EffortState(state.config_id, state.values, value)

    # -- prompts -----------------------------------------------------------------------
    def prompt(
        self,
        session_id: str,
        content: str | Sequence[PromptBlock],
        *,
        workspace: WorkspacePort | None = None,
        approvals: ApprovalPort | None = None,
    ) -> PromptStream:
        """Start ``session/prompt`` with ``content`` (a text, or the blocks of
        :func:`~.attachments.prompt_blocks`); its events stream from the returned object.

        ``workspace`` serves the agent's ``fs/*`` and ``terminal/*`` requests and
        ``approvals`` its permission requests, for this prompt only; without them the
        prompt is chat-only and such requests are refused.
        """
        binding = self.handlers.sessions.get(session_id)
        if binding is None:
            raise LingmaError(f"session {session_id} is not open here: open it first")
        if binding.sink is not None:
            raise LingmaError(f"session {session_id} is already answering a prompt")
        binding.workspace = workspace
        binding.approvals = approvals
        binding.cancelled.clear()
        blocks = [text_block(content)] if isinstance(content, str) else list(content)
        stream = PromptStream(self, binding)
        stream._start(blocks)
        return stream

    async def send_prompt(self, session_id: str, blocks: list[PromptBlock]) -> PromptEnd:
        """``session/prompt`` with ``blocks``, unbounded (the answer takes what it takes; the
        caller bounds it and cancels); the agent's stop reason and what the answer cost."""
        reply = await self._call(
            "session/prompt",
            self.conn.prompt(session_id=session_id, prompt=blocks),
            timeout=None,
        )
        return PromptEnd(str(reply.stop_reason), usage_from(reply.usage, reply.field_meta))

    async def cancel(self, session_id: str) -> None:
        """``session/cancel`` (a notification: the CLI refuses the request form).

        Permission requests of the session still waiting are answered ``cancelled``, and
        commands the prompt started are killed.
        """
        binding = self.handlers.sessions.get(session_id)
        port, started = None, set()
        if binding is not None:
            binding.cancelled.set()
            # Taken before the notice: the prompt may end, and drop its ports, at once.
            port, started = binding.workspace, set(binding.terminals)
        await self._call(
            "session/cancel",
            self.conn.cancel(session_id=session_id),
            timeout=self.control_timeout,
        )
        if port is not None and started:
            await self.handlers.kill_terminals(port, started)

    async def close(self) -> None:
        """Close the connection (the process owner ends the CLI itself)."""
        await self.conn.close()

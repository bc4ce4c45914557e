"""The interface both ways of reaching Lingma implement; the MCP face knows only this.

Two backends: the IDE plugin's binary (``lingma/``, JSON-RPC in LSP frames over a
WebSocket; :class:`~lingma_mcp.lingma.supervisor.LingmaSupervisor`) and the official CLI
(``acp/``, the Agent Client Protocol over stdio; :class:`~lingma_mcp.acp.backend.CliBackend`).
Each is a supervised process (``process/``) plus, once it is ready, a client for one
connection; ``server/backends.py`` chooses which serves.
The face asks the :class:`Backend` for a ready :class:`BackendClient` and talks to that; a
restart hands out a new client, so anything cached per client is keyed by
``status().generation``.

Chat events are the shared types of :mod:`lingma_mcp.events`; errors are the typed errors
of :mod:`lingma_mcp.errors`, turned into text at the MCP face alone.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal, Protocol

from .events import ChatEvent, Finish

BackendKind = Literal["ide", "cli"]


class ChatRequestLike(Protocol):
    """One question, as both backends read it (``lingma.client.ChatRequest``).

    For agent mode a backend also looks for a workspace host: the CLI backend takes
    ``host`` if the request has one, else the ``host`` of its ``tool_handler``.
    """

    prompt: str
    model: str | None
    mode: str
    session_id: str | None
    workspace: Path | None
    request_id: str
    tool_handler: Any


class ChatStreamLike(Protocol):
    """One chat's events, ending after ``Finish``; raises if Lingma goes away."""

    def __aiter__(self) -> AsyncIterator[ChatEvent]: ...

    async def __anext__(self) -> ChatEvent: ...

    @property
    def done(self) -> bool:
        """Finished or failed: releasing it sends nothing upstream."""
        ...

    @property
    def finish(self) -> Finish | None:
        """The ``Finish`` event once read (its ``session_id`` is the one to continue)."""
        ...

    @property
    def session_hint(self) -> str | None:
        """The session this chat was asked in, before Lingma confirms one."""
        ...

    def result(self) -> Any:
        """The ``ChatResult`` once finished (answer, session_id, request_id, ...)."""
        ...

    def text_so_far(self) -> str: ...

    async def aclose(self) -> None:
        """Release the chat; stops it upstream if it had not finished (never waits long)."""
        ...


class BackendClient(Protocol):
    """What the face asks of a ready Lingma."""

    async def auth_status(self) -> Any:
        """An allow-listed login state (``lingma.auth.AuthStatus``): never a token."""
        ...

    async def query_models(self) -> dict[str, list[dict[str, Any]]]:
        """Models by scene (``chat``, ``developer`` = agent mode, ...)."""
        ...

    async def login_url(self) -> str: ...

    async def list_sessions(self, project: Path) -> list[dict[str, Any]]: ...

    async def get_session(self, session_id: str) -> dict[str, Any] | None: ...

    async def open_chat(self, request: ChatRequestLike) -> ChatStreamLike:
        """Start one question (a ``ChatRequest``) and stream its events."""
        ...


class Backend(Protocol):
    """A supervised Lingma: started in the background, restarted when lost."""

    kind: BackendKind

    def start(self) -> None: ...

    async def client(self, timeout: float | None = None) -> BackendClient: ...

    def status(self) -> Any:
        """A snapshot: state, pid, port, version, last_error, work_dir, log_hint, generation."""
        ...

    def suspect(self, reason: str) -> None:
        """Lingma may be wedged: check its health and restart it if the check fails."""
        ...

    async def close(self) -> None: ...

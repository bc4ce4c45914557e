"""The contract between the MCP face and the two ways of reaching Lingma.

Two backends implement it: the IDE plugin's binary (``lingma/``, JSON-RPC in LSP frames
over a WebSocket) and the official CLI (``acp/``, the Agent Client Protocol over stdio).
Each translates its own wire into the values here, in its own folder; the asking service
and the face above it read only these values, never a backend's dialect, and
``asking/backend_choice.py`` is the one place above them that names a backend. The backends
import this module and never each other.

- Values: :class:`Login`, :class:`Model`, :class:`SessionSummary`, :class:`Session` and its
  :class:`Turn`, the :class:`ChatRequest` and its attachments (:class:`FileAttachment`,
  :class:`FolderAttachment`, :class:`ImageAttachment`), and the chat events,
  :class:`Usage` and :class:`ChatResult` of :mod:`lingma_mcp.events` (re-exported here).
  All are frozen records of plain data, and none has a field that could hold a token.
- Interfaces: a :class:`Backend` (a supervised process) hands out a ready
  :class:`BackendClient` (one connection), whose chats are :class:`ChatStreamLike`. A
  restart hands out a new client, so anything cached per client is keyed by it or by
  ``status().generation``.

Errors are the typed errors of :mod:`lingma_mcp.errors`, turned into text at the face alone.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from .errors import LingmaNotLoggedIn
from .events import (
    ChatEvent,
    ChatResult,
    Finish,
    Step,
    TextDelta,
    Thinking,
    ToolCall,
    ToolUpdate,
    Usage,
)

if TYPE_CHECKING:
    from .process.states import State
    from .workspace import WorkspaceHost

__all__ = [
    "AGENT_SCENE",
    "CHAT_SCENE",
    "SCENE_FOR_MODE",
    "Attachment",
    "Backend",
    "BackendClient",
    "BackendKind",
    "BackendStatus",
    "ChatEvent",
    "ChatRequest",
    "ChatResult",
    "ChatStreamLike",
    "FileAttachment",
    "Finish",
    "FolderAttachment",
    "ImageAttachment",
    "Login",
    "Mode",
    "Model",
    "Session",
    "SessionSummary",
    "Step",
    "TextDelta",
    "Thinking",
    "ToolCall",
    "ToolUpdate",
    "Turn",
    "Usage",
]

BackendKind = Literal["ide", "cli"]
Mode = Literal["chat", "agent"]

# Scenes are the groups a model list comes in; the tools show them by these names. Chat
# mode asks in the chat scene, agent mode in the developer scene.
CHAT_SCENE = "chat"
AGENT_SCENE = "developer"
SCENE_FOR_MODE: Mapping[str, str] = {"chat": CHAT_SCENE, "agent": AGENT_SCENE}


# -- values --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Login:
    """Who is logged in to Lingma, as far as the backend can tell. Never a token.

    ``state`` is the login state in words ("logged in", "login expired", ...).
    ``instructions`` is the complete advice for a person who is not logged in, where this
    backend does not log in through the ``login`` tool's URL (the CLI); None where it does.
    ``credential`` names the kind of credential in use where known (never its value).
    """

    logged_in: bool
    state: str
    user_name: str | None = None
    user_id: str | None = None
    user_type: str | None = None
    org_name: str | None = None
    whitelist: str | None = None  # in words, where the backend has a whitelist
    expires_at: datetime | None = None  # aware (UTC)
    quota: float | Mapping[str, float] | None = None  # numbers only, never text
    credential: str | None = None
    instructions: str | None = None

    def not_logged_in(self) -> LingmaNotLoggedIn:
        """The error for a question asked with this login (logged out)."""
        error = LingmaNotLoggedIn(self.state)
        if self.instructions:
            error.instructions = self.instructions
        return error


@dataclass(frozen=True, slots=True)
class Model:
    """One model the account can use.

    ``key`` is what a :class:`ChatRequest` names. ``scenes`` are the scenes that list it, in
    the backend's order; ``default_in`` those where Lingma uses it when asked for none.
    ``reasoning`` and ``vision`` are None where the backend does not say.
    """

    key: str
    name: str
    description: str = ""
    reasoning: bool | None = None
    vision: bool | None = None
    scenes: tuple[str, ...] = ()
    default_in: tuple[str, ...] = ()

    @property
    def default(self) -> bool:
        """Lingma's default in some scene."""
        return bool(self.default_in)


@dataclass(frozen=True, slots=True)
class SessionSummary:
    """One conversation, as a listing shows it (times are aware, UTC)."""

    session_id: str
    title: str | None
    backend: BackendKind
    workspace: Path | None = None  # the folder it was asked in, where known
    created: datetime | None = None
    updated: datetime | None = None
    turns: int | None = None  # how many, where the listing says


@dataclass(frozen=True, slots=True)
class Turn:
    """One question and its answer in a conversation."""

    question: str | None
    answer: str | None
    request_id: str | None = None
    created: datetime | None = None


@dataclass(frozen=True, slots=True)
class Session:
    """One conversation with its turns (none where the backend could not read them)."""

    summary: SessionSummary
    turns: tuple[Turn, ...] = ()


@dataclass(frozen=True, slots=True)
class FileAttachment:
    """A workspace file the question points Lingma at.

    ``path`` is resolved and inside the call's workspace (the face confined it); ``name``
    is that path relative to the workspace. ``text`` is the file's content where it is
    UTF-8 text within the face's bound (a backend may embed it), None otherwise (a backend
    that sends files by reference sends it anyway).
    """

    path: Path
    name: str
    mime_type: str
    size: int
    text: str | None = None


@dataclass(frozen=True, slots=True)
class FolderAttachment:
    """A workspace folder the question points Lingma at (resolved, inside the workspace)."""

    path: Path
    name: str


@dataclass(frozen=True, slots=True)
class ImageAttachment:
    """An image for Lingma to look at: its bytes (checked to be the image ``mime_type``
    says, within the face's bound) and, when it came from the workspace, its file."""

    data: bytes
    mime_type: str
    name: str  # the file relative to the workspace, or "image N" for data sent inline
    path: Path | None = None


Attachment = FileAttachment | FolderAttachment | ImageAttachment


def _new_request_id() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """One question for Lingma.

    ``model`` is a :attr:`Model.key` (None: Lingma's default). ``session_id`` continues a
    conversation (a :attr:`ChatResult.session_id`); with ``fork`` the question goes to a
    copy of it instead, and the result's session is the copy's. ``host`` is the call's
    workspace host in agent mode: each backend serves Lingma's file and terminal work
    through it, in its own dialect; without one the chat runs no tools and says so to
    Lingma. ``status`` hears a line a person should see while the backend prepares the
    chat (a slow session start).

    ``attachments`` go with the prompt as the backend's protocol carries them; what it
    cannot carry is refused (:class:`~lingma_mcp.errors.RequestRefused`) before anything
    is sent. ``reasoning_effort`` is one of the values the backend offers for the
    session's model, refused otherwise; with ``effort_optional`` (the server's default, not
    the question's own) a backend or model that offers no effort levels skips it instead.
    """

    prompt: str
    model: str | None = None
    mode: Mode = "chat"
    session_id: str | None = None
    workspace: Path | None = None
    request_id: str = field(default_factory=_new_request_id)
    host: WorkspaceHost | None = None
    attachments: tuple[Attachment, ...] = ()
    fork: bool = False
    reasoning_effort: str | None = None
    effort_optional: bool = False
    status: Callable[[str], None] | None = field(default=None, compare=False)


# -- interfaces ----------------------------------------------------------------------------


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
        """The session this chat was asked in, before Lingma confirms one; a later question
        naming it continues this conversation."""
        ...

    def result(self) -> ChatResult:
        """What the chat produced so far (all of it, once finished)."""
        ...

    def text_so_far(self) -> str: ...

    async def aclose(self) -> None:
        """Release the chat; stops it upstream if it had not finished (never waits long)."""
        ...


class BackendClient(Protocol):
    """What the face asks of a ready Lingma."""

    async def login_state(self) -> Login: ...

    async def models(self) -> list[Model]:
        """Every model of the account (``[]`` when logged out, for some backends)."""
        ...

    async def login_url(self) -> str:
        """A URL to log in at; a backend without one raises an error with instructions."""
        ...

    async def sessions(self, project: Path) -> list[SessionSummary]:
        """The conversations filed under ``project``."""
        ...

    async def session(self, session_id: str) -> Session | None:
        """One conversation, or None where Lingma knows no such id."""
        ...

    async def delete_session(self, session_id: str) -> None:
        """Delete one conversation.

        Raises:
            UnknownSession: Lingma knows no such id.
            RequestRefused: this backend cannot delete conversations.
        """
        ...

    async def open_chat(self, request: ChatRequest) -> ChatStreamLike:
        """Start one question and stream its events."""
        ...


class BackendStatus(Protocol):
    """A snapshot of a backend's process, for the status the tools show."""

    @property
    def state(self) -> State: ...

    @property
    def pid(self) -> int | None: ...

    @property
    def port(self) -> int | None: ...

    @property
    def version(self) -> str | None: ...

    @property
    def last_error(self) -> str | None: ...

    @property
    def last_exception(self) -> BaseException | None: ...

    @property
    def work_dir(self) -> Path | None: ...

    @property
    def log_hint(self) -> str: ...

    @property
    def generation(self) -> int:
        """Up by one each time a new connection becomes ready."""
        ...


class Backend(Protocol):
    """A supervised Lingma: started in the background, restarted when lost."""

    @property
    def kind(self) -> BackendKind: ...

    def start(self) -> None:
        """Begin start-up in the background and return at once (from the event loop)."""
        ...

    async def client(self, timeout: float | None = None) -> BackendClient:
        """A ready client, starting or restarting as needed; ``timeout`` bounds the wait
        (None: a little over the backend's own start-up bound, so its error comes first)."""
        ...

    def status(self) -> BackendStatus: ...

    def suspect(self, reason: str) -> None:
        """Lingma may be wedged: check its health and restart it if the check fails."""
        ...

    async def close(self) -> None: ...

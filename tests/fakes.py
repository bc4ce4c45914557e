"""Test doubles, one of each: Lingma's end of a socket, a tool handler, a scripted Lingma
behind the real MCP face, and the host's side of a call (the person asked through
elicitation, the progress a host receives)."""

from __future__ import annotations

import asyncio
import json
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import anyio

from lingma_mcp.asking.bridge import Bridge
from lingma_mcp.backend import ChatRequest, ChatResult, Login, Model, Session
from lingma_mcp.config import Settings
from lingma_mcp.errors import RpcTimeout
from lingma_mcp.events import Finish, TextDelta
from lingma_mcp.lingma.auth import login_from_status
from lingma_mcp.lingma.framing import FrameDecoder, encode_frame
from lingma_mcp.lingma.ide_tools import IdeTools
from lingma_mcp.lingma.toolhost import ToolOutcome
from lingma_mcp.server.progress import STATUS_PREFIX
from lingma_mcp.workspace import ApprovalRequest


class Closed(Exception):
    """What recv() raises once the fake socket is closed (like ConnectionClosed)."""


class FakeSocket:
    """The bridge's end of a socket; the test plays Lingma through ``deliver`` and ``sent``."""

    def __init__(self) -> None:
        self._inbox: asyncio.Queue[Any] = asyncio.Queue()
        self.sent: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._decoder = FrameDecoder()
        self.closed = False

    # what RpcConnection calls
    async def send(self, message: str | bytes) -> None:
        if self.closed:
            raise Closed("socket closed")
        for item in self._decoder.feed(message):
            self.sent.put_nowait(item)

    async def recv(self) -> str | bytes:
        item = await self._inbox.get()
        if item is Closed:
            self._inbox.put_nowait(Closed)
            raise Closed("socket closed by peer")
        return item

    async def close(self) -> None:
        self.drop()

    # what the test (playing Lingma) calls
    def deliver(self, data: str | bytes) -> None:
        self._inbox.put_nowait(data)

    def deliver_message(self, message: dict[str, Any]) -> None:
        self.deliver(encode_frame(message))

    def drop(self) -> None:
        self.closed = True
        self._inbox.put_nowait(Closed)

    async def next_sent(self, timeout: float = 2.0) -> dict[str, Any]:  # noqa: ASYNC109
        return await asyncio.wait_for(self.sent.get(), timeout)


def frame(message: dict[str, Any]) -> bytes:
    return encode_frame(message)


def body_len(message: dict[str, Any]) -> int:
    return len(json.dumps(message).encode())


class FakeToolHandler:
    """An IdeToolHandler whose answers the test sets, and that records what it was asked.

    ``gate``, when set, holds every call until the test opens it; ``started`` is set as
    each call begins and ``cancelled`` when one is cancelled.
    """

    def __init__(
        self,
        outcome: ToolOutcome | None = None,
        *,
        approve: bool = True,
        fail_with: Exception | None = None,
        gate: asyncio.Event | None = None,
    ) -> None:
        self.outcome = outcome or ToolOutcome(success=True, result={"ok": True})
        self.approve = approve
        self.fail_with = fail_with
        self.gate = gate
        self.invoked: list[tuple[str, dict[str, Any]]] = []
        self.confirmed: list[tuple[str, dict[str, Any], str]] = []
        self.started = asyncio.Event()
        self.cancelled = asyncio.Event()

    async def _wait(self) -> None:
        self.started.set()
        if self.gate is not None:
            try:
                await self.gate.wait()
            except asyncio.CancelledError:
                self.cancelled.set()
                raise
        if self.fail_with is not None:
            raise self.fail_with

    async def invoke(
        self, name: str, parameters: dict[str, Any], tool_call_id: str = ""
    ) -> ToolOutcome:
        self.invoked.append((name, parameters))
        await self._wait()
        return self.outcome

    async def confirm(self, tool_name: str, parameters: dict[str, Any], tool_call_id: str) -> bool:
        self.confirmed.append((tool_name, parameters, tool_call_id))
        await self._wait()
        return self.approve


class FakeAsker:
    """The person, scripted: each question takes the next answer (an exception is raised)."""

    def __init__(self, *answers: object) -> None:
        self.answers = list(answers)
        self.requests: list[ApprovalRequest] = []

    async def __call__(self, request: ApprovalRequest) -> str:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer  # type: ignore[return-value]


# -- the host's side of a call ---------------------------------------------------------------


class Person:
    """An elicitation callback: the person answering approval forms.

    Each form gets the next of ``decisions`` (``approve``, ``approve_all``, ``deny``), then
    ``always`` for every form after them (none: a form too many fails the test); with
    ``action`` other than ``accept`` every form is declined or cancelled that way instead.
    ``asked`` keeps each form's params (``.message`` is the question); ``log``, when given,
    gets one ``asked: <first line>`` entry per form, to be read beside a call's progress.
    """

    def __init__(
        self,
        *decisions: str,
        always: str | None = None,
        action: str = "accept",
        log: list[str] | None = None,
    ) -> None:
        self.decisions = list(decisions)
        self.always = always
        self.action = action
        self.log = log
        self.asked: list[Any] = []

    @property
    def questions(self) -> list[str]:
        return [params.message for params in self.asked]

    async def __call__(self, _: Any, params: Any) -> Any:
        from mcp.types import ElicitResult

        self.asked.append(params)
        if self.log is not None:
            self.log.append(f"asked: {params.message.splitlines()[0]}")
        if self.action != "accept":
            return ElicitResult(action=self.action)  # type: ignore[arg-type]
        if not self.decisions:
            assert self.always is not None, f"asked once too often: {params.message}"
            return ElicitResult(action="accept", content={"decision": self.always})
        return ElicitResult(action="accept", content={"decision": self.decisions.pop(0)})


class Progress:
    """A progress callback keeping what a host received: every message in order, the
    answer text among them (``text``) apart from the status lines (``status``)."""

    def __init__(self, log: list[str] | None = None) -> None:
        self.values: list[float] = []
        self.messages: list[str] = log if log is not None else []
        self.first_text = anyio.Event()

    async def __call__(self, progress: float, total: float | None, message: str | None) -> None:
        self.values.append(progress)
        self.messages.append(message or "")
        if message and not message.startswith(STATUS_PREFIX):
            self.first_text.set()

    @property
    def texts(self) -> list[str]:
        """The answer's pieces, as they came."""
        return [m for m in self.messages if not _status_or_question(m)]

    @property
    def text(self) -> str:
        return "".join(self.texts)

    @property
    def status(self) -> list[str]:
        return [m for m in self.messages if m.startswith(STATUS_PREFIX)]


def _status_or_question(message: str) -> bool:
    return message.startswith((STATUS_PREFIX, "asked: "))


def text_of(result: Any) -> str:
    """A tool result's text, all its text blocks joined."""
    return "".join(getattr(block, "text", "") for block in result.content)


def png() -> bytes:
    """A 1×1 PNG that decodes: what an attached image needs to be."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
        + chunk(b"IEND", b"")
    )


# -- a scripted Lingma behind the real MCP face ---------------------------------------------


@dataclass
class Invoke:
    """Lingma asks the IDE to run a tool (``tool/invoke``)."""

    name: str
    params: dict[str, Any]


@dataclass
class Confirm:
    """Lingma pauses one of its own tools for the person (PENDING ``tool/call/sync``)."""

    name: str
    params: dict[str, Any]


class Forever:
    """Lingma goes quiet until the call ends."""


DONE = [TextDelta("done"), Finish("success", 200, "s1")]
# Three edits of the ``project`` fixture's folder: a file created, one replaced, one deleted.
EDITS = [
    Invoke("create_file_with_text", {"filePath": "notes/new.txt", "text": "hello\n"}),
    Invoke("replace_text_by_path", {"filePath": "keep.txt", "text": "one\n2\n"}),
    Invoke("delete_file_by_path", {"filePath": "old.txt"}),
    *DONE,
]


@dataclass
class ScriptedStream:
    """One chat, played from a script: chat events are yielded, an exception is raised
    (Lingma failing), an ``anyio.Event`` is silence until the test sets it, :class:`Forever`
    is silence for good, :class:`Invoke` and :class:`Confirm` are Lingma's tool calls, served
    by ``handler`` as the RPC core serves them (their outcomes kept in ``outcomes``)."""

    request: ChatRequest
    script: list[Any]
    handler: IdeTools | None = None
    session_hint: str | None = None
    continuing: bool = False  # asked to continue session_hint
    stop_gate: anyio.Event | None = None  # set: chat/stop "replies"; None: at once
    stop_sent: bool = False
    closed: bool = False
    outcomes: list[Any] = field(default_factory=list)
    _parts: list[str] = field(default_factory=list)
    _finish: Finish | None = None
    _failed: bool = False

    @property
    def finish(self) -> Finish | None:
        return self._finish

    @property
    def done(self) -> bool:
        return self._finish is not None or self._failed

    def __aiter__(self) -> ScriptedStream:
        return self

    async def __anext__(self) -> Any:
        while self.script:
            item = self.script.pop(0)
            if isinstance(item, Invoke):
                if self.handler is None:
                    self.outcomes.append(ToolOutcome(False, {}, "no tool host"))
                else:
                    self.outcomes.append(await self.handler.invoke(item.name, item.params))
                continue
            if isinstance(item, Confirm):
                assert self.handler is not None, "a confirm needs agent mode's tool host"
                self.outcomes.append(await self.handler.confirm(item.name, item.params, "call-1"))
                continue
            if isinstance(item, Forever):
                await anyio.sleep_forever()
            if isinstance(item, anyio.Event):
                await item.wait()
                continue
            if isinstance(item, BaseException):
                self._failed = True
                raise item
            if isinstance(item, TextDelta):
                self._parts.append(item.text)
            if isinstance(item, Finish):
                self._finish = item
            return item
        raise StopAsyncIteration

    def text_so_far(self) -> str:
        return "".join(self._parts)

    def result(self) -> ChatResult:
        finish = self._finish
        return ChatResult(
            answer=self.text_so_far(),
            session_id=finish.session_id if finish else None,
            request_id=self.request.request_id,
            finish_reason=finish.reason if finish else None,
            status_code=finish.status_code if finish else None,
            finish_message=finish.message if finish else "",
            first_token_ms=1,
            total_ms=2,
            continued=finish.session_id == self.session_hint
            if finish and self.continuing
            else None,
        )

    async def aclose(self) -> None:
        if not self.done:
            self.stop_sent = True
            if self.stop_gate is not None:
                await self.stop_gate.wait()
        self.closed = True


class ScriptedLingma:
    """A backend client whose chats play ``script``: one script for every chat, or a list
    of scripts played one per chat (a retry gets the next). ``auth`` holds the
    ``auth/status`` codes successive login checks get (the last one repeats)."""

    def __init__(self, script: list[Any], auth: list[int] | None = None) -> None:
        self.script = script
        self.auth = list(auth or [2])
        self.streams: list[ScriptedStream] = []
        self.sessions: dict[str, Session] = {}
        self.auth_hangs = False
        self.stop_gate: anyio.Event | None = None
        self.backend = ScriptedBackend(self)
        self.bridge: Bridge | None = None  # set by scripted_app

    async def login_state(self) -> Login:
        if self.auth_hangs:
            raise RpcTimeout("auth/status", 30)
        status = self.auth.pop(0) if len(self.auth) > 1 else self.auth[0]
        return login_from_status({"status": status, "name": "me"})

    async def models(self) -> list[Model]:
        return [Model("auto", "Auto", scenes=("chat",), default_in=("chat",))]

    async def open_chat(self, request: ChatRequest) -> ScriptedStream:
        if self.script and isinstance(self.script[0], list):
            script = list(self.script.pop(0))
        else:
            script = list(self.script)
        # What the IDE backend does: its plugin-dialect adapter over the call's host.
        handler = IdeTools(request.host) if request.host is not None else None
        stream = ScriptedStream(request, script, handler=handler, stop_gate=self.stop_gate)
        stream.session_hint = request.session_id or "new-session"
        stream.continuing = request.session_id is not None
        self.streams.append(stream)
        return stream

    async def session(self, session_id: str) -> Session | None:
        return self.sessions.get(session_id)


class ScriptedBackend:
    """The supervisor of a :class:`ScriptedLingma`: always ready; keeps the timeouts
    callers waited with and the suspicions reported to it."""

    kind = "ide"

    def __init__(self, lingma: ScriptedLingma) -> None:
        self.lingma = lingma
        self.closed = False
        self.waits: list[float | None] = []
        self.suspicions: list[str] = []

    def start(self) -> None:
        pass

    async def client(self, timeout: float | None = None) -> ScriptedLingma:  # noqa: ASYNC109 - the supervisor contract
        self.waits.append(timeout)
        return self.lingma

    def status(self) -> Any:
        return SimpleNamespace(state="ready", log_hint="the fake's logs")

    def suspect(self, reason: str) -> None:
        self.suspicions.append(reason)

    async def close(self) -> None:
        self.closed = True


def scripted_app(
    tmp_path: Path, script: list[Any], *, auth: list[int] | None = None, **settings: Any
) -> tuple[Any, ScriptedLingma]:
    """The real MCP server (``build_app``) on a :class:`ScriptedLingma`; ``settings`` on top
    of a workspace and a work dir in ``tmp_path``."""
    from lingma_mcp.server.app import build_app

    lingma = ScriptedLingma(script, auth)
    options = {"workspace": tmp_path, "work_dir": tmp_path / "work", **settings}
    config = Settings(**options)
    lingma.bridge = Bridge(config, lingma.backend)
    return build_app(config, lingma.bridge), lingma


def agent_app(
    tmp_path: Path, project: Path, script: list[Any], **settings: Any
) -> tuple[Any, ScriptedLingma]:
    """:func:`scripted_app` in agent mode on ``project``."""
    return scripted_app(tmp_path, script, workspace=project, mode="agent", **settings)

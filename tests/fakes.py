"""Test doubles for the RPC core: an in-memory WebSocket and a tool handler."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from lingma_mcp.lingma.framing import FrameDecoder, encode_frame
from lingma_mcp.lingma.toolhost import ToolOutcome
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

    async def next_sent(self, timeout: float = 2.0) -> dict[str, Any]:
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


class Person:
    """An elicitation callback: answers each approval form with the next decision, keeping
    what it was shown (``asked``: the form's params, ``.message`` the question)."""

    def __init__(self, *decisions: str) -> None:
        self.decisions = list(decisions)
        self.asked: list[Any] = []

    async def __call__(self, _: Any, params: Any) -> Any:
        from mcp.types import ElicitResult

        self.asked.append(params)
        return ElicitResult(action="accept", content={"decision": self.decisions.pop(0)})

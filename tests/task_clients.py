"""Clients that speak MCP Tasks, for the tests: the Python SDK's client ships no Tasks.

- :class:`RawClient`: JSON-RPC by hand on protocol 2025-11-25 (the experimental Tasks of
  the core protocol), over the SDK's in-memory transport (:func:`raw_inprocess`). It
  answers elicitations with ``person`` and keeps every notification.
- :class:`TasksExtension`: the SDK ``Client``'s own extension seam on 2026-07-28: it
  declares ``io.modelcontextprotocol/tasks`` and claims ``resultType: "task"`` results,
  so a call answered with a task comes back to the test as that task.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Literal

import anyio
import anyio.abc
from mcp.client import ClaimContext, ClientExtension, ResultClaim
from mcp.client._memory import InMemoryTransport
from mcp.shared.message import SessionMessage
from mcp.types import CallToolResult, Request, RequestParams, Result, TextContent
from mcp_types import jsonrpc_message_adapter
from pydantic import ConfigDict, Field

LEGACY = "2025-11-25"
TASKS = "io.modelcontextprotocol/tasks"

Person = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
"""Answers an ``elicitation/create``'s params with an ``ElicitResult`` (as a dict)."""


class RawError(Exception):
    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(f"{error.get('code')}: {error.get('message')}")
        self.code = error.get("code")
        self.message = str(error.get("message"))


class RawClient:
    """One connection, one JSON-RPC message at a time each way, replies matched by id."""

    def __init__(
        self,
        send: Callable[[dict[str, Any]], Awaitable[None]],
        person: Person | None = None,
    ) -> None:
        self._send = send
        self.person = person
        self.notifications: list[dict[str, Any]] = []
        self.elicitations: list[dict[str, Any]] = []
        self._replies: dict[int, dict[str, Any]] = {}
        self._arrived = anyio.Event()
        self._next_id = 0

    async def feed(self, message: dict[str, Any]) -> None:
        """One message from the server."""
        if "method" in message and "id" in message:
            await self._answer(message)
        elif "method" in message:
            self.notifications.append(message)
        else:
            self._replies[message["id"]] = message
        arrived, self._arrived = self._arrived, anyio.Event()
        arrived.set()

    async def _answer(self, request: dict[str, Any]) -> None:
        if request["method"] == "elicitation/create" and self.person is not None:
            self.elicitations.append(request["params"])
            result = await self.person(request["params"])
            await self._send({"jsonrpc": "2.0", "id": request["id"], "result": result})
        else:
            error = {"code": -32601, "message": "Method not found"}
            await self._send({"jsonrpc": "2.0", "id": request["id"], "error": error})

    async def request(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send a request and wait for its reply; an error reply raises :class:`RawError`."""
        self._next_id += 1
        request_id = self._next_id
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            message["params"] = params
        await self._send(message)
        while request_id not in self._replies:
            await self._arrived.wait()
        reply = self._replies.pop(request_id)
        if "error" in reply:
            raise RawError(reply["error"])
        return reply["result"]

    async def initialize(self, *, elicitation: bool = True) -> dict[str, Any]:
        capabilities: dict[str, Any] = {"elicitation": {"form": {}}} if elicitation else {}
        result = await self.request(
            "initialize",
            {
                "protocolVersion": LEGACY,
                "capabilities": capabilities,
                "clientInfo": {"name": "raw-tasks-client", "version": "1"},
            },
        )
        await self._send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return result

    async def wait_for_notification(self, condition: Callable[[dict[str, Any]], bool]) -> None:
        while not any(condition(n) for n in self.notifications):
            await self._arrived.wait()

    def statuses(self, task_id: str) -> list[str]:
        """The statuses ``notifications/tasks/status`` told of for one task, in order."""
        return [
            n["params"]["status"]
            for n in self.notifications
            if n["method"] == "notifications/tasks/status" and n["params"]["taskId"] == task_id
        ]


@asynccontextmanager
async def raw_inprocess(app: Any, person: Person | None = None) -> AsyncIterator[RawClient]:
    """A :class:`RawClient` on ``app`` in this process (the SDK's in-memory transport)."""
    async with InMemoryTransport(app) as (read_stream, write_stream):

        async def send(message: dict[str, Any]) -> None:
            parsed = jsonrpc_message_adapter.validate_python(message)
            await write_stream.send(SessionMessage(parsed))

        client = RawClient(send, person)
        async with anyio.create_task_group() as tg:

            async def read() -> None:
                async for item in read_stream:
                    if isinstance(item, SessionMessage):
                        message = item.message
                        wire = message.model_dump(by_alias=True, mode="json", exclude_none=True)
                        tg.start_soon(client.feed, wire)

            tg.start_soon(read)
            yield client
            tg.cancel_scope.cancel()


# -- 2026-07-28: the SDK Client's extension seam ---------------------------------------------


class CreatedTask(Result):
    """A ``CreateTaskResult`` of the 2026-07-28 extension (``resultType: "task"``)."""

    model_config = ConfigDict(extra="allow")
    result_type: Literal["task"] = Field(alias="resultType")
    task_id: str = Field(alias="taskId")
    status: str


class TaskParams(RequestParams):
    model_config = ConfigDict(extra="allow")
    task_id: str = Field(alias="taskId")


class GetTask(Request[TaskParams, Literal["tasks/get"]]):
    method: Literal["tasks/get"] = "tasks/get"
    params: TaskParams


class UpdateTask(Request[TaskParams, Literal["tasks/update"]]):
    method: Literal["tasks/update"] = "tasks/update"
    params: TaskParams


class CancelTask(Request[TaskParams, Literal["tasks/cancel"]]):
    method: Literal["tasks/cancel"] = "tasks/cancel"
    params: TaskParams


class AnyResult(Result):
    model_config = ConfigDict(extra="allow")


class TasksExtension(ClientExtension):
    """Declares the Tasks extension and drives each task it is handed to its end, as a
    client that surfaces only the final result would: ``tasks/get`` until the task ends,
    each new input request put to ``person`` and answered by ``tasks/update``.

    Args:
        person: answers an elicitation's params with an ``ElicitResult`` dict.
        on_status: sees every ``tasks/get`` result first (a test may cancel there).
        poll_s: the test's own poll interval (the server suggests a second; a client may
            ask sooner, and the protocol gives it no event to wait on instead).
    """

    identifier = TASKS

    def __init__(
        self,
        person: Person | None = None,
        on_status: Callable[[Any, dict[str, Any]], Awaitable[None]] | None = None,
        poll_s: float = 0.02,
    ) -> None:
        self.person = person
        self.on_status = on_status
        self.poll_s = poll_s
        self.created: list[CreatedTask] = []
        self.seen: list[dict[str, Any]] = []
        self.asked: list[dict[str, Any]] = []

    def claims(self) -> list[ResultClaim[Any]]:
        return [ResultClaim(result_type="task", model=CreatedTask, resolve=self._drive)]

    async def _drive(self, task: CreatedTask, ctx: ClaimContext) -> CallToolResult:
        self.created.append(task)
        answered: set[str] = set()
        while True:
            got = await task_request(ctx.session, GetTask(params=TaskParams(taskId=task.task_id)))
            self.seen.append(got)
            if self.on_status is not None:
                await self.on_status(ctx.session, got)
            if got["status"] == "completed":
                return CallToolResult.model_validate(got["result"], by_name=False)
            if got["status"] in ("failed", "cancelled"):
                text = f"task {got['status']}: {got.get('statusMessage')}"
                return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True)
            for key, request in (got.get("inputRequests") or {}).items():
                if key in answered or self.person is None:
                    continue
                answered.add(key)
                self.asked.append(request["params"])
                answer = await self.person(request["params"])
                update = TaskParams(taskId=task.task_id, inputResponses={key: answer})
                await task_request(ctx.session, UpdateTask(params=update))
            await anyio.sleep(self.poll_s)  # polling is the protocol here: no event to await


async def task_request(session: Any, request: Request[Any, Any]) -> dict[str, Any]:
    """Send ``request`` through an SDK client's session; its result as a dict."""
    result = await session.send_request(request, AnyResult)
    return result.model_dump(by_alias=True, mode="json", exclude_none=True)

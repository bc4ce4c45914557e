"""``ask_lingma`` as an MCP task, on both wire generations, served from the job registry.

Every ask already runs as a job (:mod:`.job_tools`): a task is that job under its own id,
so there is no second registry, and a task's status, result and cancel are the job's. The
server speaks the generation the client speaks (shapes in :mod:`.task_shapes`):

- **2025-11-25** (experimental Tasks in the core protocol). ``initialize`` declares
  ``tasks: {list, cancel, requests: {tools: {call}}}`` and ``tools/list`` gives
  ``ask_lingma`` ``execution.taskSupport: "optional"``. A ``tools/call`` of ``ask_lingma``
  with a ``task`` field starts the ask as a background job and answers ``{task}``;
  ``tasks/get``, ``tasks/result`` (blocks until the result, then the same result a plain
  call gets), ``tasks/cancel`` and ``tasks/list`` follow, and each change of status goes
  out as ``notifications/tasks/status``. A question for the person is sent while the
  client waits on ``tasks/result``, as an elicitation tied to the task
  (``io.modelcontextprotocol/related-task``).
- **2026-07-28** (the ``io.modelcontextprotocol/tasks`` extension, advertised in
  ``server/discover``). The server chooses per request: a ``background: true`` ask from a
  client whose request declares the extension is answered with a task
  (``resultType: "task"``); ``tasks/get`` carries the result inline or, while a question
  waits, its form in ``inputRequests``; ``tasks/update`` brings the person's answer;
  ``tasks/cancel`` stops Lingma. (Status notifications there ride ``subscriptions/listen``,
  which this server does not serve: clients poll.)

A client that uses neither keeps the plain call, ``background`` and the job tools.

Why a middleware for 2025-11-25: the SDK checks every ``tools/call`` result against the
plain tool-result shape at that version, also inside an extension's interceptor, so a
``CreateTaskResult`` must be answered above that check. On 2026-07-28 a result whose
``resultType`` is the extension's own is not checked, and the interceptor suffices.

Questions: a task's questions are the job's parked
:class:`~lingma_mcp.asking.jobs.Question`, the same ones a following call or
``check_lingma_job`` would ask (one at a time per server: the gate's rule). A client that
declared no form elicitation is never asked: the approval setting decides, recorded as
``policy (nobody could be asked)``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectSendStream
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import Extension, MethodBinding, require_client_extension
from mcp.server.session import ServerSession
from mcp.shared.exceptions import MCPError
from mcp.types import (
    INVALID_PARAMS,
    METHOD_NOT_FOUND,
    CallToolRequestParams,
    CallToolResult,
    CancelTaskRequestParams,
    GetTaskPayloadRequestParams,
    GetTaskRequestParams,
    PaginatedRequestParams,
    RequestParams,
    TaskStatusNotification,
    TaskStatusNotificationParams,
)
from mcp_types import methods
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import Field

from ..asking.jobs import Job, UnknownJob
from .approvals import ask_in_call, form_elicitation_declared
from .job_tools import AskJobs
from .task_shapes import (
    IMMEDIATE_RESPONSE,
    LEGACY_TASKS_VERSION,
    TASKS_EXTENSION,
    Generation,
    decision_in,
    generation_of,
    input_requests,
    legacy_task,
    modern_task,
    related_task,
    view,
)

log = logging.getLogger(__name__)

TASK_TOOL = "ask_lingma"
LIST_PAGE = 50
# Status notifications waiting to be sent; past this many (a client that stopped reading)
# the newest are dropped, since clients poll anyway.
MAX_QUEUED_NOTIFICATIONS = 256

_ALL_WITH_TASKS = frozenset({LEGACY_TASKS_VERSION, *MODERN_PROTOCOL_VERSIONS})
_LEGACY_ONLY = frozenset({LEGACY_TASKS_VERSION})

SERVER_TASKS_CAPABILITY: dict[str, Any] = {
    "list": {},
    "cancel": {},
    "requests": {"tools": {"call": {}}},
}


class UpdateTaskParams(RequestParams):
    """``tasks/update`` (2026-07-28): answers to a task's outstanding input requests."""

    task_id: str = Field(alias="taskId")
    input_responses: dict[str, Any] = Field(default_factory=dict, alias="inputResponses")


Outbox = MemoryObjectSendStream[tuple[ServerSession, dict[str, Any]]]


class LingmaTasks(Extension):
    """The Tasks of this server: an SDK extension (methods, the 2026-07-28 interceptor)
    and a server middleware (the 2025-11-25 capability and task creation).

    Args:
        asks: the server's asks and their job registry.
    """

    identifier = TASKS_EXTENSION

    def __init__(self, asks: AskJobs) -> None:
        self.asks = asks
        self._outbox: Outbox | None = None

    @asynccontextmanager
    async def running(self) -> AsyncIterator[LingmaTasks]:
        """The server's lifetime: status notifications are sent while inside."""
        send, receive = anyio.create_memory_object_stream[tuple[ServerSession, dict[str, Any]]](
            MAX_QUEUED_NOTIFICATIONS
        )
        async with anyio.create_task_group() as tg, send, receive:
            tg.start_soon(self._send_notifications, receive)
            self._outbox = send
            try:
                yield self
            finally:
                self._outbox = None
                tg.cancel_scope.cancel()

    # -- the extension ---------------------------------------------------------------------

    def methods(self) -> list[MethodBinding]:
        return [
            MethodBinding("tasks/get", GetTaskRequestParams, self._get, _ALL_WITH_TASKS),
            MethodBinding("tasks/cancel", CancelTaskRequestParams, self._cancel, _ALL_WITH_TASKS),
            MethodBinding("tasks/result", GetTaskPayloadRequestParams, self._result, _LEGACY_ONLY),
            MethodBinding("tasks/list", PaginatedRequestParams, self._list, _LEGACY_ONLY),
            MethodBinding(
                "tasks/update", UpdateTaskParams, self._update, frozenset(MODERN_PROTOCOL_VERSIONS)
            ),
        ]

    async def intercept_tool_call(
        self,
        params: CallToolRequestParams,
        ctx: ServerRequestContext[Any, Any],
        call_next: CallNext,
    ) -> HandlerResult:
        """2026-07-28: a ``background`` ask from a client that declared the extension is
        answered with its task instead of the job tools' "started" result."""
        result = await call_next(ctx)
        arguments = params.arguments or {}
        if (
            params.name != TASK_TOOL
            or arguments.get("background") is not True
            or generation_of(ctx.protocol_version) is not Generation.MODERN
            or not _declared_extension(ctx)
        ):
            return result
        job = self._started_job(result)
        if job is None:  # refused before it started: the plain error result is the answer
            return result
        log.info("task %s created (2026-07-28)", job.id)
        task = view(job, Generation.MODERN, keep_s=self._keep_s, status="working")
        return {"resultType": "task", **modern_task(task)}

    # -- the 2025-11-25 middleware ---------------------------------------------------------

    async def middleware(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        """Declares Tasks at ``initialize`` (2025-11-25) and answers task-augmented calls."""
        if ctx.method == "initialize":
            return _with_tasks_capability(await call_next(ctx))
        params = ctx.params
        if (
            ctx.method == "tools/call"
            and isinstance(params, Mapping)
            and params.get("task") is not None
            and generation_of(ctx.protocol_version) is Generation.LEGACY
        ):
            return await self._create_legacy(ctx, params, call_next)
        return await call_next(ctx)

    async def _create_legacy(
        self, ctx: ServerRequestContext[Any, Any], params: Mapping[str, Any], call_next: CallNext
    ) -> HandlerResult:
        name = params.get("name")
        if name != TASK_TOOL:
            raise MCPError(
                code=METHOD_NOT_FOUND,
                message=f"{name!r} does not run as a task: only {TASK_TOOL} does (its "
                "execution.taskSupport is optional). Call this tool without task.",
            )
        arguments = params.get("arguments")
        arguments = dict(arguments) if isinstance(arguments, Mapping) else {}
        arguments["background"] = True  # the task is the background job the ask starts
        result = await call_next(replace(ctx, params={**params, "arguments": arguments}))
        job = self._started_job(result)
        if job is None:
            # Refused before a job started (arguments, workspace, Lingma missing): no task
            # was created, and the error says why, as the plain call's result would.
            raise MCPError(code=INVALID_PARAMS, message=_text_of(result))
        log.info("task %s created (2025-11-25)", job.id)
        self._notify_changes(ctx.session, job)
        task = view(job, Generation.LEGACY, keep_s=self._keep_s, status="working")
        immediate = (
            f"Lingma is answering as task {job.id}; the host follows it and brings the "
            "answer when it is done."
        )
        return {"task": legacy_task(task), "_meta": {IMMEDIATE_RESPONSE: immediate}}

    def _notify_changes(self, session: ServerSession, job: Job) -> None:
        """Send ``notifications/tasks/status`` through ``session``'s connection on each
        change of the task's status (not for every line of progress)."""
        sent = ["working"]

        def changed(job: Job) -> None:
            task = view(job, Generation.LEGACY, keep_s=self._keep_s)
            if task.status == sent[0] or self._outbox is None:
                return
            sent[0] = task.status
            try:
                self._outbox.send_nowait((session, legacy_task(task)))
            except anyio.WouldBlock:
                log.info("task %s: status notification dropped (client not reading)", job.id)

        job.watch(changed)
        changed(job)  # it may have moved on already

    async def _send_notifications(self, outbox: Any) -> None:
        async for session, task in outbox:
            notification = _StatusNotification(
                params=TaskStatusNotificationParams.model_validate(task, by_name=False)
            )
            try:
                await session.send_notification(notification)  # type: ignore[arg-type]
            except Exception as exc:  # the client left: nothing to tell
                log.debug("task %s: status notification not sent: %r", task["taskId"], exc)

    # -- the methods -------------------------------------------------------------------------

    async def _get(
        self, ctx: ServerRequestContext[Any, Any], params: GetTaskRequestParams
    ) -> dict[str, Any]:
        generation = self._generation(ctx)
        job = self._job(params.task_id)
        task = view(job, generation, keep_s=self._keep_s)
        if generation is Generation.LEGACY:
            return legacy_task(task)
        shaped = modern_task(task)
        question = job.question if not job.finished else None
        if task.status == "input_required" and question is not None:
            shaped["inputRequests"] = input_requests(question)
        elif task.status == "completed":
            shaped["result"] = _wire(self.asks.final_result(job), ctx.protocol_version)
        return shaped

    async def _result(
        self, ctx: ServerRequestContext[Any, Any], params: GetTaskPayloadRequestParams
    ) -> dict[str, Any]:
        """2025-11-25: wait for the task to end, putting its questions to the person on
        the way (the elicitation names the task), then the plain call's result."""
        job = self._job(params.task_id)
        can_ask = form_elicitation_declared(ctx.session) and ctx.session.can_send_request
        meta = related_task(job.id)
        while not job.finished:
            await job.wait(or_question=can_ask)
            question = job.question
            if question is not None and not job.finished:
                await ask_in_call(ctx, question, meta=meta)
        result = _wire(self.asks.final_result(job), ctx.protocol_version)
        result["_meta"] = {**(result.get("_meta") or {}), **meta}
        return result

    async def _cancel(
        self, ctx: ServerRequestContext[Any, Any], params: CancelTaskRequestParams
    ) -> dict[str, Any]:
        generation = self._generation(ctx)
        job = self._job(params.task_id)
        if job.finished:
            if generation is Generation.MODERN:
                return {}  # an acknowledgement; the task's status says how it ended
            raise MCPError(
                code=INVALID_PARAMS,
                message=f"Task {job.id} has already ended ({job.state.value}); there is "
                "nothing to cancel. tasks/result returns how it ended.",
            )
        await self.asks.stop(job)
        log.info("task %s cancelled by the client", job.id)
        if generation is Generation.MODERN:
            return {}
        return legacy_task(view(job, generation, keep_s=self._keep_s))

    async def _list(
        self, ctx: ServerRequestContext[Any, Any], params: PaginatedRequestParams
    ) -> dict[str, Any]:
        jobs = self.asks.registry.jobs()
        start = _cursor(params.cursor, len(jobs))
        page = jobs[start : start + LIST_PAGE]
        shaped: dict[str, Any] = {
            "tasks": [legacy_task(view(j, Generation.LEGACY, keep_s=self._keep_s)) for j in page]
        }
        if start + LIST_PAGE < len(jobs):
            shaped["nextCursor"] = str(start + LIST_PAGE)
        return shaped

    async def _update(
        self, ctx: ServerRequestContext[Any, Any], params: UpdateTaskParams
    ) -> dict[str, Any]:
        """2026-07-28: the person's answer to the question a task waits on. Answers to
        anything else (never asked, already answered) are ignored, as the extension says."""
        self._generation(ctx)
        job = self._job(params.task_id)
        question = job.question if not job.finished else None
        decision = None if question is None else decision_in(params.input_responses, question)
        if question is not None and decision is not None and question.answer(decision):
            log.info("task %s: the person answered %s", job.id, decision)
        else:
            log.info("task %s: an update answered nothing outstanding; ignored", job.id)
        return {}

    # -- helpers -----------------------------------------------------------------------------

    @property
    def _keep_s(self) -> float:
        return self.asks.registry.keep_s

    def _generation(self, ctx: ServerRequestContext[Any, Any]) -> Generation:
        generation = generation_of(ctx.protocol_version) or Generation.LEGACY
        if generation is Generation.MODERN:
            # The extension's methods are for clients that declared it (-32021 otherwise).
            require_client_extension(ctx, TASKS_EXTENSION)
        return generation

    def _job(self, task_id: str) -> Job:
        try:
            return self.asks.registry.get(task_id)
        except UnknownJob as exc:
            raise MCPError(code=INVALID_PARAMS, message=f"Failed to retrieve task: {exc}") from None

    def _started_job(self, result: HandlerResult) -> Job | None:
        """The job a ``background`` ask's result names (running), or None if it names none."""
        if isinstance(result, CallToolResult):
            data = None if result.is_error else result.structured_content
        elif isinstance(result, Mapping):
            data = None if result.get("isError") else result.get("structuredContent")
        else:
            data = None
        if not isinstance(data, Mapping) or data.get("status") != "running":
            return None
        job_id = data.get("job_id")
        try:
            return self.asks.registry.get(job_id) if isinstance(job_id, str) else None
        except UnknownJob:
            return None


class _StatusNotification(TaskStatusNotification):
    """``notifications/tasks/status`` with its ``ttl`` even when null (unlimited, while the
    task runs): the session leaves null fields out of what it sends, but ``ttl`` is
    required, and a client that checks the shape drops a notification without it."""

    def model_dump(self, **kwargs: Any) -> dict[str, Any]:
        dumped = super().model_dump(**kwargs)
        dumped["params"].setdefault("ttl", self.params.ttl)
        return dumped


def _declared_extension(ctx: ServerRequestContext[Any, Any]) -> bool:
    capabilities = ctx.session.client_capabilities
    declared = capabilities.extensions if capabilities is not None else None
    return bool(declared) and TASKS_EXTENSION in declared  # type: ignore[operator]


def _with_tasks_capability(result: HandlerResult) -> HandlerResult:
    """An ``initialize`` result that declares Tasks where the negotiated protocol has them."""
    if not isinstance(result, dict) or result.get("protocolVersion") != LEGACY_TASKS_VERSION:
        return result
    capabilities = dict(result.get("capabilities") or {})
    capabilities["tasks"] = SERVER_TASKS_CAPABILITY
    return {**result, "capabilities": capabilities}


def _wire(result: CallToolResult, protocol_version: str) -> dict[str, Any]:
    """A tool result as a plain call's would go on this protocol's wire (the SDK's shaping)."""
    dumped = result.model_dump(by_alias=True, mode="json", exclude_none=True)
    return methods.serialize_server_result("tools/call", protocol_version, dumped)


def _text_of(result: HandlerResult) -> str:
    if isinstance(result, Mapping):
        for block in result.get("content") or ():
            if isinstance(block, Mapping) and isinstance(block.get("text"), str):
                return block["text"]
    return "The ask was refused before it started; the server log has the details."


def _cursor(cursor: str | None, total: int) -> int:
    if cursor is None:
        return 0
    if not cursor.isdigit() or int(cursor) > total:
        raise MCPError(
            code=INVALID_PARAMS,
            message=f"Invalid cursor {cursor[:40]!r}: pass the nextCursor of the previous "
            "tasks/list page, or none for the first page.",
        )
    return int(cursor)

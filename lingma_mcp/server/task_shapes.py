"""A job as an MCP task, in the words of each wire generation (pure: no I/O, no session).

Tasks are jobs (:mod:`lingma_mcp.asking.jobs`): a task id is a job id, and a task's status
is read off its job each time it is asked for, so the two never disagree. The wire has two
generations:

- 2025-11-25, the core protocol's experimental Tasks: ``ttl`` and ``pollInterval``; a tool
  call that failed (an ``isError`` result) is a ``failed`` task; the result comes from
  ``tasks/result``, and a question for the person is an elicitation sent while the client
  waits on ``tasks/result``.
- 2026-07-28, the ``io.modelcontextprotocol/tasks`` extension: ``ttlMs`` and
  ``pollIntervalMs``; ``failed`` is kept for JSON-RPC errors, so a tool call that failed is
  a ``completed`` task carrying its ``isError`` result; ``tasks/get`` carries the result
  inline, and a question for the person is listed in ``inputRequests``.

A job is kept ``keep_s`` after it finishes and never dropped while it runs, so its ttl is
unlimited (null) while running and "how long it ran plus ``keep_s``" once it ended.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from typing import Any

from mcp.types import ElicitRequest, ElicitRequestFormParams
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from ..asking.jobs import Job, JobStatus, Question
from .approvals import DECISION_SCHEMA, decision_of
from .input_required import input_key

TASKS_EXTENSION = "io.modelcontextprotocol/tasks"
RELATED_TASK = "io.modelcontextprotocol/related-task"
IMMEDIATE_RESPONSE = "io.modelcontextprotocol/model-immediate-response"
# The one protocol of the handshake era that has Tasks.
LEGACY_TASKS_VERSION = "2025-11-25"
# Lingma answers in seconds to minutes: polling once a second shows progress soon enough
# without a host flooding the server.
POLL_MS = 1000
MESSAGE_CHARS = 200


class Generation(str, enum.Enum):
    """Which Tasks a request speaks, from its protocol version."""

    LEGACY = "2025-11-25"
    MODERN = "2026-07-28"


def generation_of(protocol_version: str | None) -> Generation | None:
    """The Tasks generation of a protocol version; None where the protocol has no Tasks."""
    if protocol_version in MODERN_PROTOCOL_VERSIONS:
        return Generation.MODERN
    if protocol_version == LEGACY_TASKS_VERSION:
        return Generation.LEGACY
    return None


@dataclass(frozen=True)
class TaskView:
    """One job seen as a task at one moment."""

    task_id: str
    status: str  # working, input_required, completed, failed, cancelled
    message: str
    created_at: str
    updated_at: str
    ttl_ms: int | None
    poll_ms: int | None


def task_status(job: Job, generation: Generation) -> str:
    """The task status of ``job``: a waiting question is ``input_required``."""
    if job.state is JobStatus.RUNNING:
        return "input_required" if job.question is not None else "working"
    if job.state is JobStatus.DONE:
        return "completed"
    if job.state is JobStatus.FAILED:
        return "failed" if generation is Generation.LEGACY else "completed"
    return "cancelled"


def status_message(job: Job) -> str:
    """A line on what the job is doing, from its latest progress, for a person to read."""
    question = job.question if not job.finished else None
    if question is not None:
        return _cut("Waiting for your approval: " + question.message.strip().splitlines()[0])
    written = f"{job.text_chars} characters written"
    if job.state is JobStatus.RUNNING:
        latest = f"{job.last_status}; " if job.last_status else ""
        return _cut(f"Lingma is working: {latest}{written} so far.")
    if job.state is JobStatus.DONE:
        return f"Lingma answered ({written})."
    if job.state is JobStatus.FAILED:
        return _cut(job.error or "Lingma failed; the server log has the details.")
    return "Cancelled; Lingma was told to stop."


def view(job: Job, generation: Generation, *, keep_s: float, status: str | None = None) -> TaskView:
    """``job`` as a task; ``status`` overrides the one read off the job (a task is created
    ``working``, whatever its job did in the meantime)."""
    ttl_ms = None
    if job.finished:
        ttl_ms = round((job.changed_wall - job.started_wall + keep_s) * 1000)
    return TaskView(
        task_id=job.id,
        status=status or task_status(job, generation),
        message=status_message(job),
        created_at=_iso(job.started_wall),
        updated_at=_iso(job.changed_wall),
        ttl_ms=ttl_ms,
        poll_ms=None if job.finished else POLL_MS,
    )


def legacy_task(task: TaskView) -> dict[str, Any]:
    """A ``Task`` of 2025-11-25 (also the params of ``notifications/tasks/status``)."""
    shaped: dict[str, Any] = {
        "taskId": task.task_id,
        "status": task.status,
        "statusMessage": task.message,
        "createdAt": task.created_at,
        "lastUpdatedAt": task.updated_at,
        "ttl": task.ttl_ms,
    }
    if task.poll_ms is not None:
        shaped["pollInterval"] = task.poll_ms
    return shaped


def modern_task(task: TaskView) -> dict[str, Any]:
    """A ``Task`` of the 2026-07-28 extension (without the status's own payload)."""
    shaped: dict[str, Any] = {
        "taskId": task.task_id,
        "status": task.status,
        "statusMessage": task.message,
        "createdAt": task.created_at,
        "lastUpdatedAt": task.updated_at,
        "ttlMs": task.ttl_ms,
    }
    if task.poll_ms is not None:
        shaped["pollIntervalMs"] = task.poll_ms
    return shaped


def related_task(task_id: str) -> dict[str, Any]:
    """The ``_meta`` entry that ties a message to its task."""
    return {RELATED_TASK: {"taskId": task_id}}


def input_requests(question: Question) -> dict[str, Any]:
    """A waiting question as the extension's ``inputRequests``: the same form, under the
    same key, as an ``InputRequiredResult`` asks it (the key is unique to the question,
    so it is never reused within a task)."""
    form = ElicitRequestFormParams(message=question.message, requested_schema=DECISION_SCHEMA)
    request = ElicitRequest(params=form).model_dump(by_alias=True, mode="json", exclude_none=True)
    return {input_key(question): request}


def decision_in(responses: dict[str, Any], question: Question) -> str | None:
    """The person's decision on ``question`` among a ``tasks/update``'s ``inputResponses``,
    or None if they hold no answer to it (answers to anything else are ignored).

    A declined or cancelled form, or a decision outside the enum, is a deny.
    """
    response = responses.get(input_key(question))
    if not isinstance(response, dict):
        return None
    content = response.get("content")
    return decision_of(str(response.get("action")), content if isinstance(content, dict) else None)


def _iso(wall: float) -> str:
    moment = dt.datetime.fromtimestamp(wall, dt.timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _cut(text: str) -> str:
    return text if len(text) <= MESSAGE_CHARS else text[: MESSAGE_CHARS - 1] + "…"

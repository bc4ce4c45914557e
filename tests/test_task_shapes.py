"""A job seen as an MCP task on each wire generation: statuses, ttl, questions, answers.

Pure shaping (``server/task_shapes.py``): jobs run here on plain coroutines, no server.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import anyio
import pytest

from lingma_mcp.asking.jobs import Job, JobRegistry
from lingma_mcp.server.approvals import DECISION_SCHEMA
from lingma_mcp.server.input_required import input_key, input_required
from lingma_mcp.server.task_shapes import (
    POLL_MS,
    Generation,
    decision_in,
    generation_of,
    input_requests,
    legacy_task,
    modern_task,
    view,
)

LEGACY, MODERN = Generation.LEGACY, Generation.MODERN


@dataclass(frozen=True)
class Ask:
    message: str


def fail(exc: BaseException) -> str:
    return f"failed: {exc}"


async def ended(work: Any) -> Job:
    async with JobRegistry(fail, keep_s=60.0) as registry:
        job = registry.start(work)
        await job.wait()
    return job


async def test_a_running_job_is_a_working_task_with_unlimited_ttl_and_its_latest_status() -> None:
    reported, release = anyio.Event(), anyio.Event()

    async def work(job: Job) -> str:
        job.text("abc")
        job.status("read_file: RUNNING")
        reported.set()
        await release.wait()
        return "done"

    async with JobRegistry(fail) as registry:
        job = registry.start(work)
        await reported.wait()
        for generation in (LEGACY, MODERN):
            task = view(job, generation, keep_s=60.0)
            assert (task.status, task.ttl_ms, task.poll_ms) == ("working", None, POLL_MS)
            assert task.message == (
                "Lingma is working: read_file: RUNNING; 3 characters written so far."
            )
        release.set()


async def test_a_waiting_question_makes_the_task_input_required_until_it_is_answered() -> None:
    async def work(job: Job) -> str:
        question = job.park(Ask("Lingma wants to change a.txt\n--- diff"))
        await question.settled()
        return question.decision or ""

    changes: list[str] = []
    async with JobRegistry(fail) as registry:
        job = registry.start(work)
        job.watch(lambda j: changes.append(view(j, LEGACY, keep_s=1).status))
        assert await job.wait(or_question=True)
        task = view(job, MODERN, keep_s=60.0)
        assert task.status == "input_required"
        assert task.message == "Waiting for your approval: Lingma wants to change a.txt"
        assert job.question is not None
        job.question.answer("approve")
        await job.wait()
    assert changes[:3] == ["input_required", "working", "completed"]
    assert job.result == "approve"


async def test_a_failed_ask_is_failed_on_2025_but_a_completed_error_result_on_2026() -> None:
    async def work(job: Job) -> str:
        raise RuntimeError("rate limited")

    job = await ended(work)
    assert view(job, LEGACY, keep_s=60.0).status == "failed"
    assert view(job, MODERN, keep_s=60.0).status == "completed"
    assert view(job, LEGACY, keep_s=60.0).message == "failed: rate limited"


async def test_an_ended_task_lives_as_long_as_it_ran_plus_the_time_jobs_are_kept() -> None:
    async def work(job: Job) -> str:
        return "answer"

    job = await ended(work)
    task = view(job, LEGACY, keep_s=60.0)
    assert task.status == "completed"
    assert task.poll_ms is None
    ran_ms = round((job.changed_wall - job.started_wall) * 1000)
    assert task.ttl_ms == ran_ms + 60_000


async def test_each_generation_names_its_fields_in_its_own_words() -> None:
    async def work(job: Job) -> str:
        return "answer"

    task = view(await ended(work), LEGACY, keep_s=1.0)
    assert set(legacy_task(task)) == {
        "taskId",
        "status",
        "statusMessage",
        "createdAt",
        "lastUpdatedAt",
        "ttl",
    }
    assert set(modern_task(task)) == {
        "taskId",
        "status",
        "statusMessage",
        "createdAt",
        "lastUpdatedAt",
        "ttlMs",
    }
    assert legacy_task(task)["createdAt"].endswith("Z")


async def test_a_tasks_input_request_is_the_same_form_under_the_same_key_as_input_required() -> (
    None
):
    async def work(job: Job) -> str:
        question = job.park(Ask("Run `make`?"))
        await question.settled()
        return ""

    async with JobRegistry(fail) as registry:
        job = registry.start(work)
        await job.wait(or_question=True)
        question = job.question
        assert question is not None
        requests = input_requests(question)
        asked = input_required(question, job_id=job.id, tool="ask_lingma", server="s")
        key = input_key(question)
        assert list(requests) == [key]
        form = asked.input_requests[key].params
        assert requests[key]["method"] == "elicitation/create"
        assert requests[key]["params"]["message"] == form.message == "Run `make`?"
        assert requests[key]["params"]["requestedSchema"] == DECISION_SCHEMA
        job.cancel()


@pytest.mark.parametrize(
    ("response", "decision"),
    [
        ({"action": "accept", "content": {"decision": "approve_all"}}, "approve_all"),
        ({"action": "accept", "content": {"decision": "yes please"}}, "deny"),
        ({"action": "decline"}, "deny"),
        ({"action": "accept", "content": "approve"}, "deny"),
        ("approve", None),
    ],
)
async def test_an_update_answers_the_waiting_question_and_anything_unknown_is_a_deny(
    response: Any, decision: str | None
) -> None:
    async def work(job: Job) -> str:
        question = job.park(Ask("?"))
        await question.settled()
        return ""

    async with JobRegistry(fail) as registry:
        job = registry.start(work)
        await job.wait(or_question=True)
        question = job.question
        assert question is not None
        assert decision_in({input_key(question): response}, question) == decision
        assert decision_in({"lingma-approval-other": response}, question) is None
        job.cancel()


def test_only_2025_11_25_and_2026_07_28_have_tasks() -> None:
    assert generation_of("2025-11-25") is LEGACY
    assert generation_of("2026-07-28") is MODERN
    assert generation_of("2025-06-18") is None
    assert generation_of(None) is None

"""Asking the person, piece by piece: questions parked on a job, the asker, the retry's
reading, and how the gate records what nobody answered. No MCP client, no Lingma."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import anyio
import pytest
from fakes import FakeAsker
from mcp.types import ElicitResult, ListRootsResult

from lingma_mcp.asking.jobs import MAX_SETTLED_QUESTIONS, Job, JobRegistry, QuestionState
from lingma_mcp.config import Settings
from lingma_mcp.server.approvals import JobAsker, decision_of
from lingma_mcp.server.input_required import (
    RetryRefused,
    input_key,
    input_required,
    read_retry,
)
from lingma_mcp.server.job_tools import AskJobs
from lingma_mcp.workspace import ApprovalDenied, ApprovalGate, ApprovalRequest, parse_policy
from lingma_mcp.workspace.gate import AskFailed, NobodyToAsk

WRITE = ApprovalRequest("write", "create_file_with_text", "a.txt", "+hello")


def describe(exc: BaseException) -> str:
    return str(exc)


def job() -> Job:
    return Job("job-1", "label", clock=lambda: 0.0)


# -- a question settles once ---------------------------------------------------------------


def test_a_question_takes_the_first_settlement_only() -> None:
    question = job().park(WRITE)
    assert question.answer("approve")
    assert not question.answer("deny")
    assert not question.expire() and not question.withdraw() and not question.fail("x")
    assert (question.state, question.decision) == (QuestionState.ANSWERED, "approve")


async def test_parking_a_question_wakes_whoever_follows_the_job() -> None:
    the_job = job()
    woke = anyio.Event()

    async def follower() -> None:
        assert await the_job.wait(or_question=True)
        woke.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(follower)
        await anyio.wait_all_tasks_blocked()
        assert not woke.is_set()
        question = the_job.park(WRITE)
    assert woke.is_set()
    assert the_job.question is question and question.message == WRITE.message


async def test_a_job_that_ends_withdraws_its_waiting_questions() -> None:
    parked: list[Any] = []

    async def work(the_job: Job) -> None:
        parked.append(the_job.park(WRITE))

    async with JobRegistry(describe) as registry:
        started = registry.start(work)
        await started.wait()
    assert parked[0].state is QuestionState.WITHDRAWN
    assert started.question is None


def test_a_job_remembers_only_the_last_settled_questions() -> None:
    the_job = job()
    first = the_job.park(WRITE)
    first.answer("approve")
    for _ in range(MAX_SETTLED_QUESTIONS + 5):
        the_job.park(WRITE).answer("deny")
    assert the_job.find_question(first.id) is None
    waiting = the_job.park(WRITE)
    assert the_job.find_question(waiting.id) is waiting and the_job.question is waiting


# -- the asker -------------------------------------------------------------------------------


async def test_a_host_without_forms_is_nobody_to_ask_at_once_with_a_note() -> None:
    asker = JobAsker(reachable=False, timeout_s=300)
    the_job = job()
    asker.bind(the_job)
    with pytest.raises(NobodyToAsk, match="offers no form elicitation"):
        await asker(WRITE)
    assert the_job.question is None
    (note,) = the_job.notes
    assert "create_file_with_text a.txt" in note and "LINGMA_APPROVAL=write=allow" in note
    assert "use a host that supports elicitation" in asker.why_nobody


async def test_a_question_nobody_answers_in_time_expires_as_nobody_to_ask() -> None:
    asker = JobAsker(reachable=True, timeout_s=0)
    the_job = job()
    asker.bind(the_job)
    with pytest.raises(NobodyToAsk, match="approval timeout of 0 s"):
        await asker(WRITE)
    assert "LINGMA_APPROVAL=write=allow" in the_job.notes[0]
    # A host that can show forms is never told to find one that can.
    assert "use a host that supports elicitation" not in asker.why_nobody + the_job.notes[0]


@pytest.mark.parametrize(
    ("settle", "expected"),
    [
        (lambda q: q.answer("approve_all"), "approve_all"),
        (lambda q: q.fail("the form crashed"), AskFailed),
    ],
)
async def test_the_asker_returns_the_answer_or_raises_the_form_failure(
    settle: Any, expected: Any
) -> None:
    asker = JobAsker(reachable=True, timeout_s=300)
    the_job = job()
    asker.bind(the_job)
    outcome: list[Any] = []

    async def ask() -> None:
        try:
            outcome.append(await asker(WRITE))
        except AskFailed as exc:
            outcome.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(ask)
        await the_job.wait(or_question=True)
        assert the_job.question is not None
        settle(the_job.question)
    if expected is AskFailed:
        assert isinstance(outcome[0], AskFailed) and "crashed" in the_job.notes[0]
    else:
        assert outcome == [expected]


async def test_a_call_that_ends_takes_its_question_with_it() -> None:
    asker = JobAsker(reachable=True, timeout_s=300)
    the_job = job()
    asker.bind(the_job)
    async with anyio.create_task_group() as tg:
        tg.start_soon(asker, WRITE)
        await the_job.wait(or_question=True)
        question = the_job.question
        tg.cancel_scope.cancel()
    assert question is not None and question.state is QuestionState.WITHDRAWN


@pytest.mark.parametrize(
    ("action", "content", "decision"),
    [
        ("accept", {"decision": "approve"}, "approve"),
        ("accept", {"decision": "approve_all"}, "approve_all"),
        ("accept", {"decision": "APPROVE"}, "deny"),
        ("accept", {"decision": ["approve"]}, "deny"),
        ("accept", None, "deny"),
        ("decline", {"decision": "approve"}, "deny"),
        ("cancel", None, "deny"),
    ],
)
def test_only_an_accepted_known_decision_counts(
    action: str, content: dict[str, Any] | None, decision: str
) -> None:
    assert decision_of(action, content) == decision


# -- the gate records who (did not) decide -------------------------------------------------


@pytest.mark.parametrize(
    ("failure", "by", "said"),
    [
        (NobodyToAsk("no answer in time"), "policy (nobody could be asked)", "LINGMA_APPROVAL"),
        (AskFailed("error -32603"), "host form failed", "approval form failed"),
    ],
)
async def test_the_gate_records_nobody_and_a_failed_form_not_as_the_persons_no(
    failure: Exception, by: str, said: str
) -> None:
    gate = ApprovalGate(parse_policy(None), asker=FakeAsker(failure))
    with pytest.raises(ApprovalDenied) as denied:
        await gate.require("write", "create_file_with_text", "a.txt")
    assert said in str(denied.value) and "declined" not in str(denied.value)
    assert [r.as_dict()["by"] for r in gate.records] == [by]


# -- reading a retry ------------------------------------------------------------------------


def retry_of(question: Any, *, server: str = "me", tool: str = "ask_lingma", **change: Any) -> Any:
    asked = input_required(question, job_id="job-1", tool=tool, server=server)
    responses = {
        input_key(question): ElicitResult(action="accept", content={"decision": "approve"})
    }
    fields = {"request_state": asked.request_state, "input_responses": responses, **change}
    return SimpleNamespace(**fields)


def test_a_retry_brings_the_decision_for_the_question_its_state_names() -> None:
    question = job().park(WRITE)
    answer = read_retry(retry_of(question), tool="ask_lingma", server="me")
    assert (answer.job_id, answer.question_id, answer.decision) == ("job-1", question.id, "approve")


@pytest.mark.parametrize(
    ("case", "refusal"),
    [
        ("another server", "not issued by this lingma-mcp server"),
        ("another tool", "not issued by this lingma-mcp server"),
        ("not json", "not issued by this lingma-mcp server"),
        ("no state", "no request_state"),
        ("an unasked question", r"did not ask \(lingma-approval-other\)"),
        ("no answer", "no form answer"),
        ("not a form answer", "no form answer"),
    ],
)
def test_a_retry_that_does_not_answer_this_servers_question_is_refused(
    case: str, refusal: str
) -> None:
    question = job().park(WRITE)
    key = input_key(question)
    ctx = {
        "another server": retry_of(question, server="them"),
        "another tool": retry_of(question, tool="check_lingma_job"),
        "not json": retry_of(question, request_state="{not json"),
        "no state": retry_of(question, request_state=None),
        "an unasked question": retry_of(
            question,
            input_responses={
                key: ElicitResult(action="accept", content={"decision": "approve"}),
                "lingma-approval-other": ElicitResult(action="decline"),
            },
        ),
        "no answer": retry_of(question, input_responses={}),
        "not a form answer": retry_of(question, input_responses={key: ListRootsResult(roots=[])}),
    }[case]
    with pytest.raises(RetryRefused, match=refusal):
        read_retry(ctx, tool="ask_lingma", server="me")


def test_the_form_and_state_of_a_question() -> None:
    question = job().park(WRITE)
    asked = input_required(question, job_id="job-1", tool="ask_lingma", server="me")
    (key, form) = next(iter((asked.input_requests or {}).items()))
    assert key == input_key(question) and form.method == "elicitation/create"
    assert form.params.message == WRITE.message
    assert form.params.requested_schema["required"] == ["decision"]
    state = json.loads(asked.request_state or "")
    assert state == {
        "v": 1,
        "server": "me",
        "tool": "ask_lingma",
        "job": "job-1",
        "question": question.id,
    }


# -- a job's state while it waits -----------------------------------------------------------


async def test_a_check_that_cannot_ask_says_the_job_waits_for_your_approval() -> None:
    bridge = SimpleNamespace(settings=Settings(), error_text=describe)
    registry = JobRegistry(describe)
    asks = AskJobs(bridge, registry=registry)  # type: ignore[arg-type]
    release = anyio.Event()

    async def work(the_job: Job) -> str:
        the_job.park(WRITE)
        await release.wait()
        return "done"

    async with registry:
        started = registry.start(work)
        await started.wait(or_question=True)
        state = await asks.check(started.id, 0)  # no context: nobody to ask through it
        listing = asks.listing()
        release.set()
    assert not state.is_error
    assert state.structured_content["status"] == "running"
    assert state.structured_content["waiting_for_approval"] == WRITE.message
    assert "is waiting for your approval" in state.content[0].text
    assert listing["jobs"][0]["waiting_for_approval"] == WRITE.message

"""Approvals that reach the person, whatever the protocol era or the shape of the call.

The server runs in this process (the SDK's in-memory client) with the IDE simulator behind
it: its agent mode turns the prompt's ``@`` lines into Lingma's tool calls
(``lingma-sim --help-agent``). On 2026-07-28 (the SDK ``Client``'s default) a question comes
back as an ``InputRequiredResult`` and the client's retry carries the answer; on 2025-11-25
(``mode="legacy"``) it is a form elicited in the middle of the call. Either way the person
sees the same form, and the result is the same.

Tests that need the server's own state (a parked job, its question) reach its job registry
through :class:`Served`, which keeps the :class:`AskJobs` the app was built with (the
``asks`` fixture).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
from fakes import Person, text_of
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp.types import CallToolResult, ElicitResult, ErrorData, InputRequiredResult
from servers import mcp_server, sent_to_lingma

from lingma_mcp.asking.jobs import Job, QuestionState
from lingma_mcp.server.approvals import DECISION_SCHEMA
from lingma_mcp.server.job_tools import AskJobs

pytestmark = pytest.mark.timeout(60)

NOBODY = "policy (nobody could be asked)"
ERAS = ["2026-07-28", "legacy"]

ONE_EDIT = "tidy up\n@create a.txt one\\n"
TWO_EDITS = ONE_EDIT + "\n@create b.txt two\\n"


class Served:
    """The server under test in agent mode, and the job registry of the last one built."""

    def __init__(self, tmp_path: Path, asks: list[AskJobs]) -> None:
        self.tmp_path = tmp_path
        self.project = tmp_path / "project"
        self.project.mkdir()
        self._asks = asks

    @property
    def asks(self) -> AskJobs:
        return self._asks[-1]

    @asynccontextmanager
    async def client(
        self, era: str = "2026-07-28", *, settings: dict[str, Any] | None = None, **host: Any
    ) -> AsyncIterator[Client]:
        protocol = {"mode": "legacy" if era == "legacy" else "auto"}
        options = {"mode": "agent", "request_timeout": 45.0, **(settings or {})}
        fast = {"LINGMA_SIM_DELTA_DELAY": "0.001"}
        async with mcp_server(self.tmp_path, fast, host={**protocol, **host}, **options) as client:
            yield client

    def job(self, job_id: str) -> Job:
        return self.asks.registry.get(job_id)

    def only_job(self) -> Job:
        (job,) = self.asks.registry.jobs()
        return job


@pytest.fixture
def served(tmp_path: Path, asks: list[AskJobs]) -> Served:
    return Served(tmp_path, asks)


def answer_text(progress: list[str]) -> str:
    """The answer text among progress messages (the rest are status lines)."""
    return "".join(m for m in progress if not m.startswith(("[lingma] ", "asked: ")))


def approvals(result: CallToolResult) -> list[tuple[str, str, str]]:
    data = result.structured_content or {}
    return [(a["target"], a["decision"], a["by"]) for a in data["approvals"]]


# -- asking on each protocol --------------------------------------------------------------


@pytest.mark.parametrize("era", ERAS)
async def test_an_approved_edit_lands_and_is_recorded_as_the_persons(
    served: Served, era: str
) -> None:
    person = Person("approve")
    async with served.client(era, elicitation_callback=person) as client:
        result = await client.call_tool("ask_lingma", {"prompt": ONE_EDIT})
    assert not result.is_error, text_of(result)
    assert (served.project / "a.txt").read_text() == "one\n"
    data = result.structured_content
    assert data["changes"] == [
        {
            "path": "a.txt",
            "action": "created",
            "lines_added": 1,
            "lines_removed": 0,
            "by": "create_file_with_text",
        }
    ]
    assert approvals(result) == [("a.txt", "allowed", "person")]
    (form,) = person.asked
    assert form.mode == "form" and form.requested_schema == DECISION_SCHEMA
    assert "a.txt" in form.message and "create_file_with_text" in form.message
    assert "+one" in form.message


@pytest.mark.parametrize("era", ERAS)
async def test_a_denied_edit_leaves_the_folder_as_it_was(served: Served, era: str) -> None:
    async with served.client(era, elicitation_callback=Person("deny")) as client:
        result = await client.call_tool("ask_lingma", {"prompt": ONE_EDIT})
    assert not result.is_error, text_of(result)
    assert list(served.project.iterdir()) == []
    assert "the person declined" in result.structured_content["answer"]
    assert approvals(result) == [("a.txt", "denied", "person")]


@pytest.mark.parametrize("era", ERAS)
async def test_approve_all_answers_both_questions_with_one_form(served: Served, era: str) -> None:
    person = Person("approve_all")
    async with served.client(era, elicitation_callback=person) as client:
        result = await client.call_tool("ask_lingma", {"prompt": TWO_EDITS})
    assert len(person.asked) == 1
    assert sorted(p.name for p in served.project.iterdir()) == ["a.txt", "b.txt"]
    assert approvals(result) == [("a.txt", "allowed", "person"), ("b.txt", "allowed", "person")]


async def test_each_question_comes_back_the_same_way_on_2026_07_28(served: Served) -> None:
    person = Person("approve", "deny")
    async with served.client(elicitation_callback=person) as client:
        result = await client.call_tool("ask_lingma", {"prompt": TWO_EDITS})
    assert [p.message.splitlines()[0] for p in person.asked] == [
        "Lingma wants to change a.txt (create_file_with_text).",
        "Lingma wants to change b.txt (create_file_with_text).",
    ]
    assert [p.name for p in served.project.iterdir()] == ["a.txt"]
    assert approvals(result) == [("a.txt", "allowed", "person"), ("b.txt", "denied", "person")]


@pytest.mark.parametrize("era", ERAS)
async def test_text_written_before_a_question_reaches_the_client_before_the_question(
    served: Served, era: str
) -> None:
    log: list[str] = []

    async def progress(_: float, __: float | None, message: str | None) -> None:
        log.append(message or "")

    async with served.client(era, elicitation_callback=Person("approve", log=log)) as client:
        await client.call_tool("ask_lingma", {"prompt": ONE_EDIT}, progress_callback=progress)
    asked = log.index("asked: Lingma wants to change a.txt (create_file_with_text).")
    # The tool card Lingma wrote into its answer just before the tool call (it may come in
    # pieces: progress carries the text as it was coalesced).
    assert "toolCall::create_file_with_text" in answer_text(log[:asked])
    assert any("created a.txt" in m for m in log[asked:])


async def test_the_retry_carries_the_progress_and_the_final_result(served: Served) -> None:
    first: list[str] = []
    second: list[str] = []

    async def on_first(_: float, __: float | None, message: str | None) -> None:
        first.append(message or "")

    async def on_second(_: float, __: float | None, message: str | None) -> None:
        second.append(message or "")

    async with served.client(elicitation_callback=Person()) as client:
        asked = await client.session.call_tool(
            "ask_lingma",
            {"prompt": ONE_EDIT},
            progress_callback=on_first,
            allow_input_required=True,
        )
        assert isinstance(asked, InputRequiredResult)
        (key,) = asked.input_requests or {}
        answer = ElicitResult(action="accept", content={"decision": "approve"})
        done = await client.session.call_tool(
            "ask_lingma",
            {"prompt": ONE_EDIT},
            progress_callback=on_second,
            input_responses={key: answer},
            request_state=asked.request_state,
            allow_input_required=True,
        )
    assert isinstance(done, CallToolResult) and not done.is_error
    assert "toolCall::create_file_with_text" in answer_text(first)
    assert not any("created a.txt" in m for m in first)
    assert any("created a.txt" in m for m in second)
    assert "create_file_with_text a.txt: ok" in done.structured_content["answer"]
    assert approvals(done) == [("a.txt", "allowed", "person")]


# -- jobs: a background ask, a call that detached -----------------------------------------


@pytest.mark.parametrize("era", ERAS)
async def test_a_background_jobs_question_waits_and_the_next_check_asks_it(
    served: Served, era: str
) -> None:
    seen: list[str] = []
    clients: list[Client] = []

    async def person(_: Any, params: Any) -> ElicitResult:
        # While the person reads the form, the job says what it waits for.
        listing = await clients[0].read_resource("lingma://jobs")
        seen.append(listing.contents[0].text)
        return ElicitResult(action="accept", content={"decision": "approve"})

    async with served.client(era, elicitation_callback=person) as client:
        clients.append(client)
        started = await client.call_tool("ask_lingma", {"prompt": ONE_EDIT, "background": True})
        job_id = started.structured_content["job_id"]
        await served.job(job_id).wait(or_question=True)
        check = await client.call_tool("check_lingma_job", {"job_id": job_id, "wait_s": 50})
    assert not check.is_error, text_of(check)
    state = check.structured_content
    assert state["status"] == "done" and state["waiting_for_approval"] is None
    assert (served.project / "a.txt").read_text() == "one\n"
    assert approvals_of(state) == [("a.txt", "allowed", "person")]
    (listing,) = seen
    assert '"waiting_for_approval": "Lingma wants to change a.txt' in listing


def approvals_of(state: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(a["target"], a["decision"], a["by"]) for a in state["result"]["approvals"]]


WAIT_FOR_GO = "@run while [ ! -e go ]; do sleep 0.01; done"


@pytest.mark.parametrize("era", ERAS)
async def test_a_detached_calls_question_is_asked_by_the_next_check(
    served: Served, era: str
) -> None:
    # Lingma's first command holds the ask until the test says go, so the call surely
    # detaches (after 0.05 s) before the edit needs the person.
    prompt = f"work\n{WAIT_FOR_GO}\n@create a.txt one\\n"
    settings = {"approval": "run=allow", "detach_after": 0.05}
    person = Person("approve")
    async with served.client(era, elicitation_callback=person, settings=settings) as client:
        first = await client.call_tool("ask_lingma", {"prompt": prompt})
        assert first.structured_content["status"] == "running", text_of(first)
        job_id = first.structured_content["job_id"]
        assert person.asked == []
        (served.project / "go").touch()
        await served.job(job_id).wait(or_question=True)
        check = await client.call_tool("check_lingma_job", {"job_id": job_id, "wait_s": 50})
    state = check.structured_content
    assert state["status"] == "done", text_of(check)
    assert (served.project / "a.txt").read_text() == "one\n"
    assert approvals_of(state)[-1] == ("a.txt", "allowed", "person")
    assert len(person.asked) == 1


async def test_a_question_nobody_answers_falls_back_to_the_policy_and_says_how_to_allow(
    served: Served,
) -> None:
    asked = anyio.Event()

    async def away(_: Any, params: Any) -> ElicitResult:
        asked.set()
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    settings = {"approval_timeout": 0.2}
    async with served.client("legacy", elicitation_callback=away, settings=settings) as client:
        started = await client.call_tool("ask_lingma", {"prompt": ONE_EDIT, "background": True})
        job_id = started.structured_content["job_id"]
        check = await client.call_tool("check_lingma_job", {"job_id": job_id, "wait_s": 50})
    assert asked.is_set()  # the form was shown; nobody came back for it
    state = check.structured_content
    assert state["status"] == "done", text_of(check)
    assert not (served.project / "a.txt").exists()
    assert approvals_of(state) == [("a.txt", "denied", NOBODY)]
    (note,) = state["notes"]
    assert "approval timeout of 0.2 s" in note and "LINGMA_APPROVAL=write=allow" in note
    result_text = state["result"]["answer"] + text_of(check)
    assert "LINGMA_APPROVAL=write=allow" in result_text
    # This host can show forms: it is never told to find one that can.
    assert "use a host that supports elicitation" not in note + text_of(check)


@pytest.mark.parametrize("era", ERAS)
async def test_a_host_without_elicitation_gets_the_policy_at_once_with_the_hint(
    served: Served, era: str
) -> None:
    async with served.client(era) as client:
        started = await client.call_tool("ask_lingma", {"prompt": ONE_EDIT, "background": True})
        job_id = started.structured_content["job_id"]
        check = await client.call_tool("check_lingma_job", {"job_id": job_id, "wait_s": 50})
    state = check.structured_content
    assert state["status"] == "done", text_of(check)
    assert approvals_of(state) == [("a.txt", "denied", NOBODY)]
    (note,) = state["notes"]
    assert "offers no form elicitation" in note and "LINGMA_APPROVAL=write=allow" in note
    assert "use a host that supports elicitation" in text_of(check)


@pytest.mark.parametrize("failure", ["error answer", "crash"])
async def test_a_host_form_that_fails_is_recorded_as_that(served: Served, failure: str) -> None:
    async def broken(_: Any, params: Any) -> ErrorData:
        if failure == "crash":
            raise RuntimeError("the form crashed")
        return ErrorData(code=-32603, message="the form could not be drawn")

    async with served.client("legacy", elicitation_callback=broken) as client:
        result = await client.call_tool("ask_lingma", {"prompt": ONE_EDIT})
    assert not (served.project / "a.txt").exists()
    assert approvals(result) == [("a.txt", "denied", "host form failed")]
    assert "approval form failed" in result.structured_content["answer"]
    assert "declined" not in result.structured_content["answer"]


# -- hostile retries (2026-07-28) ---------------------------------------------------------


def answer(asked: InputRequiredResult, decision: str = "approve") -> dict[str, Any]:
    (key,) = asked.input_requests or {}
    return {key: ElicitResult(action="accept", content={"decision": decision})}


@dataclass
class Rounds:
    """Drives the 2026-07-28 rounds by hand, as a client that persists its state would."""

    client: Client
    prompt: str = ONE_EDIT

    async def first(self) -> InputRequiredResult:
        asked = await self.client.session.call_tool(
            "ask_lingma", {"prompt": self.prompt}, allow_input_required=True
        )
        assert isinstance(asked, InputRequiredResult), asked
        return asked

    async def retry(
        self,
        state: str | None,
        responses: dict[str, Any] | None,
        arguments: dict[str, Any] | None = None,
    ) -> CallToolResult | InputRequiredResult:
        return await self.client.session.call_tool(
            "ask_lingma",
            arguments or {"prompt": self.prompt},
            input_responses=responses,
            request_state=state,
            allow_input_required=True,
        )


@pytest.mark.parametrize("how", ["forged", "truncated", "another prompt"])
async def test_a_state_that_is_not_the_one_issued_is_refused_and_nothing_is_applied(
    served: Served, how: str
) -> None:
    async with served.client(elicitation_callback=Person()) as client:
        rounds = Rounds(client)
        asked = await rounds.first()
        state = asked.request_state
        assert state is not None
        if how == "forged":
            state = "v1." + "A" * len(state)
        elif how == "truncated":
            state = state[:-8]
        arguments = {"prompt": "something else\n@create a.txt evil\\n"}
        with pytest.raises(MCPError) as refused:
            await rounds.retry(state, answer(asked), arguments if how == "another prompt" else None)
        assert refused.value.error.message == "Invalid or expired requestState"
        assert not (served.project / "a.txt").exists()
        question = served.only_job().question
        assert question is not None and question.waiting  # still the person's to answer
        done = await rounds.retry(asked.request_state, answer(asked))
    assert isinstance(done, CallToolResult) and not done.is_error
    assert (served.project / "a.txt").read_text() == "one\n"


async def test_a_replayed_answer_is_refused_and_nothing_is_applied_twice(
    served: Served,
) -> None:
    async with served.client(elicitation_callback=Person()) as client:
        rounds = Rounds(client)
        asked = await rounds.first()
        done = await rounds.retry(asked.request_state, answer(asked, "approve"))
        assert isinstance(done, CallToolResult) and not done.is_error
        (served.project / "a.txt").unlink()
        replayed = await rounds.retry(asked.request_state, answer(asked, "approve"))
    assert isinstance(replayed, CallToolResult) and replayed.is_error
    assert "already answered (approve)" in text_of(replayed)
    assert "Nothing was done twice" in text_of(replayed)
    assert not (served.project / "a.txt").exists()
    assert approvals(done) == [("a.txt", "allowed", "person")]


async def test_an_answer_after_the_approval_timeout_is_refused(served: Served) -> None:
    settings = {"approval_timeout": 0.2}
    async with served.client(elicitation_callback=Person(), settings=settings) as client:
        rounds = Rounds(client)
        asked = await rounds.first()
        job = served.only_job()
        question = job.question
        assert question is not None
        await question.settled()
        late = await rounds.retry(asked.request_state, answer(asked))
        await job.wait()
    assert question.state is QuestionState.EXPIRED
    assert isinstance(late, CallToolResult) and late.is_error
    assert "nobody answered this approval within the approval timeout" in text_of(late)
    assert not (served.project / "a.txt").exists()
    assert [(r.target, r.by) for r in job.result.approvals] == [("a.txt", NOBODY)]


async def test_answers_to_questions_that_were_not_asked_are_refused(served: Served) -> None:
    async with served.client(elicitation_callback=Person()) as client:
        rounds = Rounds(client)
        asked = await rounds.first()
        bogus = {**answer(asked), "lingma-approval-0000": ElicitResult(action="accept")}
        extra = await rounds.retry(asked.request_state, bogus)
        stateless = await client.session.call_tool(
            "ask_lingma",
            {"prompt": "other\n@create c.txt x\\n"},
            input_responses=answer(asked),
            allow_input_required=True,
        )
        question = served.only_job().question
        assert question is not None and question.waiting  # still the person's to answer
    for refused in (extra, stateless):
        assert isinstance(refused, CallToolResult) and refused.is_error
        assert "nothing was applied" in text_of(refused)
    assert "did not ask (lingma-approval-0000)" in text_of(extra)
    assert "no request_state" in text_of(stateless)
    assert list(served.project.iterdir()) == []


@pytest.mark.parametrize(
    "reply",
    [
        ElicitResult(action="accept", content={"decision": "yes please"}),
        ElicitResult(action="accept", content={}),
        ElicitResult(action="decline"),
        ElicitResult(action="cancel"),
    ],
    ids=["outside the enum", "no decision", "decline", "cancel"],
)
async def test_anything_but_an_approving_decision_is_a_deny(
    served: Served, reply: ElicitResult
) -> None:
    async with served.client(elicitation_callback=Person()) as client:
        rounds = Rounds(client)
        asked = await rounds.first()
        (key,) = asked.input_requests or {}
        done = await rounds.retry(asked.request_state, {key: reply})
    assert isinstance(done, CallToolResult) and not done.is_error
    assert list(served.project.iterdir()) == []
    assert approvals(done) == [("a.txt", "denied", "person")]


async def test_a_retry_for_a_job_that_ended_is_refused(served: Served) -> None:
    async with served.client(elicitation_callback=Person()) as client:
        rounds = Rounds(client)
        asked = await rounds.first()
        job = served.only_job()
        cancelled = await client.call_tool("cancel_lingma_job", {"job_id": job.id})
        late = await rounds.retry(asked.request_state, answer(asked))
    assert cancelled.structured_content["status"] == "cancelled"
    assert isinstance(late, CallToolResult) and late.is_error
    assert "the call that asked this approval ended" in text_of(late)
    assert f"Job {job.id} has ended (cancelled)" in text_of(late)
    assert list(served.project.iterdir()) == []


async def test_a_state_from_another_server_is_refused(served: Served) -> None:
    async with served.client(elicitation_callback=Person()) as one:
        asked = await Rounds(one).first()
    async with served.client(elicitation_callback=Person()) as other:
        with pytest.raises(MCPError) as refused:
            await Rounds(other).retry(asked.request_state, answer(asked))
    assert refused.value.error.message == "Invalid or expired requestState"
    assert list(served.project.iterdir()) == []


async def test_cancelling_the_retry_stops_lingma(served: Served) -> None:
    prompt = f"{ONE_EDIT}\n{WAIT_FOR_GO}"
    created = anyio.Event()

    async def progress(_: float, __: float | None, message: str | None) -> None:
        if "created a.txt" in (message or ""):
            created.set()

    settings = {"approval": "run=allow"}
    async with served.client(elicitation_callback=Person(), settings=settings) as client:
        rounds = Rounds(client, prompt)
        asked = await rounds.first()
        async with anyio.create_task_group() as tg:

            async def resume() -> None:
                await client.session.call_tool(
                    "ask_lingma",
                    {"prompt": prompt},
                    progress_callback=progress,
                    input_responses=answer(asked),
                    request_state=asked.request_state,
                )

            tg.start_soon(resume)
            await created.wait()
            tg.cancel_scope.cancel()
        job = served.only_job()
        await job.wait()
    assert job.state.value == "cancelled"
    assert sent_to_lingma(served.tmp_path, "chat/stop")


async def test_parked_calls_never_resumed_are_each_released_after_the_timeout(
    served: Served,
) -> None:
    # One question at a time per server, and one changing call at a time per workspace:
    # the calls' questions are put to the person in turn, each parked (its call answering
    # InputRequiredResult) once the one before it was settled, here by its timeout
    # because no retry ever comes.
    settings = {"approval_timeout": 0.3, "request_timeout": 120.0}
    calls = 4
    async with served.client(elicitation_callback=Person(), settings=settings) as client:
        async with anyio.create_task_group() as tg:
            for n in range(calls):
                prompt = f"edit {n}\n@create f{n}.txt x\\n"
                tg.start_soon(Rounds(client, prompt).first)
        # Each call returned its question (Rounds.first checks) and left its job parked.
        registry = served.asks.registry
        jobs = registry.jobs()
        assert len(jobs) == calls <= registry.max_jobs
        for job in jobs:
            await job.wait()
        # Released: no question waits, and each went to the policy when its time was up.
        assert all(job.question is None and job.state.value == "done" for job in jobs)
        assert all([r.by for r in job.result.approvals] == [NOBODY] for job in jobs)
        assert len(registry.jobs()) <= registry.max_jobs
    assert list(served.project.iterdir()) == []


async def test_the_cli_backends_permission_requests_are_asked_the_same_way_on_2026_07_28(
    served: Served,
) -> None:
    person = Person("approve")
    settings = {"backend": "cli"}  # with --simulate: the CLI's simulator, over ACP
    async with served.client(elicitation_callback=person, settings=settings) as client:
        result = await client.call_tool("ask_lingma", {"prompt": "@create notes.txt hello"})
    assert not result.is_error, text_of(result)
    assert (served.project / "notes.txt").read_text() == "hello"
    assert "notes.txt" in person.asked[0].message
    assert [(a["decision"], a["by"]) for a in result.structured_content["approvals"]] == [
        ("allowed", "person")
    ]

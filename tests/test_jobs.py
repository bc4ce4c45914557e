"""The job registry on its own: no MCP, no Lingma, a fake clock where time matters."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import anyio
import pytest

from lingma_mcp.asking.jobs import Job, JobRegistry, JobsClosed, JobStatus, UnknownJob
from lingma_mcp.config import Settings
from lingma_mcp.events import TextDelta
from lingma_mcp.server.job_tools import DEFAULT_HOST_DETACH_S, AskJobs, detach_after_for
from lingma_mcp.server.progress import EventNarrator


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def describe(exc: BaseException) -> str:
    return f"described: {exc}"


class Gate:
    """Work that writes what it is told, then waits to be released."""

    def __init__(self, pieces: list[str], result: Any = "the result") -> None:
        self.pieces = pieces
        self.result = result
        self.release = anyio.Event()
        self.written = anyio.Event()
        self.ended = anyio.Event()

    async def __call__(self, job: Job) -> Any:
        try:
            for piece in self.pieces:
                job.text(piece)
            job.status("a status line")
            self.written.set()
            await self.release.wait()
            if isinstance(self.result, Exception):
                raise self.result
            return self.result
        finally:
            self.ended.set()


class Recorder:
    def __init__(self) -> None:
        self.texts: list[str] = []
        self.statuses: list[str] = []
        self.restarts = 0

    def text(self, delta: str) -> None:
        self.texts.append(delta)

    def status(self, line: str) -> None:
        self.statuses.append(line)

    def note(self, line: str) -> None:
        self.statuses.append(line)

    def restart(self) -> None:
        self.restarts += 1


async def test_a_job_keeps_its_text_and_each_read_returns_what_is_new() -> None:
    async with JobRegistry(describe) as jobs:
        work = Gate(["Hel", "lo", " world"])
        job = jobs.start(work, label="greet")
        await work.written.wait()
        assert job.state is JobStatus.RUNNING and not job.finished
        assert job.read_new() == "Hello world"
        assert job.read_new() == ""
        job.text("!")
        assert job.read_new() == "!"
        work.release.set()
        assert await job.wait(5)
    assert job.state is JobStatus.DONE and job.result == "the result"
    assert job.all_text() == "Hello world!" and job.error is None


async def test_a_read_with_a_limit_leaves_the_rest_for_the_next_read() -> None:
    async with JobRegistry(describe) as jobs:
        work = Gate(["abcdef", "ghij"])
        job = jobs.start(work)
        await work.written.wait()
        assert job.read_new(4) == "abcd" and job.unread_chars == 6
        assert job.read_new(4) == "efgh"
        assert job.read_new(4) == "ij" and job.unread_chars == 0
        job.mark_read(2)  # never moves back
        assert job.read_new() == ""
        work.release.set()


async def test_a_follower_gets_text_and_status_only_while_it_follows() -> None:
    async with JobRegistry(describe) as jobs:
        host = Recorder()
        work = Gate(["one", "two"])
        job = jobs.start(work, listed=False)
        job.follow(host)
        assert job.attached
        await work.written.wait()
        job.follow(None)
        job.text("three")
        work.release.set()
        await job.wait()
    assert host.texts == ["one", "two"] and host.statuses == ["a status line"]
    assert job.all_text() == "onetwothree"


async def test_an_overwrite_replaces_the_job_text_instead_of_joining_the_draft() -> None:
    job = Job("job-1", "", Clock())
    narrate = EventNarrator(job)
    narrate(TextDelta("a draft, "))
    narrate(TextDelta("then more"))
    narrate(TextDelta("The final", overwrite=True))
    narrate(TextDelta(" answer."))
    assert job.all_text() == "The final answer." and job.text_chars == len("The final answer.")
    assert job.read_new() == "The final answer." and job.notes == []


async def test_a_draft_already_read_is_followed_by_the_whole_replacement_and_a_note() -> None:
    job = Job("job-1", "", Clock())
    host = Recorder()
    job.follow(host)
    narrate = EventNarrator(job)
    narrate(TextDelta("a draft"))
    assert job.read_new() == "a draft"
    narrate(TextDelta("The answer", overwrite=True))
    assert job.read_new() == "The answer" and job.unread_chars == 0
    assert any("replaces" in note for note in job.notes)
    # The call following the job hears of the restart too: sent text cannot be taken back.
    assert host.texts == ["a draft", "The answer"] and host.restarts == 1


async def test_a_failure_becomes_the_describe_text_and_the_registry_lives_on() -> None:
    async with JobRegistry(describe) as jobs:
        work = Gate([], result=ValueError("no quota"))
        job = jobs.start(work)
        work.release.set()
        await job.wait()
        after = jobs.start(Gate([]))
        after.cancel()
        await after.wait()
    assert job.state is JobStatus.FAILED
    assert job.error == "described: no quota" and job.result is None
    assert after.state is JobStatus.CANCELLED


async def test_cancel_stops_the_work_and_a_second_cancel_changes_nothing() -> None:
    async with JobRegistry(describe) as jobs:
        work = Gate(["partial"])
        job = jobs.start(work)
        await work.written.wait()
        job.cancel()
        assert await job.wait(5)
        job.cancel()
    assert work.ended.is_set()
    assert job.state is JobStatus.CANCELLED and job.all_text() == "partial"


async def test_wait_says_not_yet_without_failing() -> None:
    async with JobRegistry(describe) as jobs:
        work = Gate([])
        job = jobs.start(work)
        assert await job.wait(0.01) is False
        work.release.set()
        assert await job.wait(5) is True


async def test_leaving_the_registry_ends_every_running_job() -> None:
    works = [Gate(["x"]), Gate(["y"])]
    async with JobRegistry(describe) as jobs:
        started = [jobs.start(w) for w in works]
        for w in works:
            await w.written.wait()
    assert all(w.ended.is_set() for w in works)
    assert [j.state for j in started] == [JobStatus.CANCELLED] * 2
    with pytest.raises(JobsClosed, match="shutting down"):
        jobs.start(Gate([]))


async def test_an_unlisted_job_is_found_only_once_published() -> None:
    async with JobRegistry(describe) as jobs:
        work = Gate([])
        job = jobs.start(work, listed=False)
        with pytest.raises(UnknownJob):
            jobs.get(job.id)
        assert jobs.jobs() == []
        jobs.publish(job)
        assert jobs.get(job.id) is job and jobs.jobs() == [job]
        work.release.set()


async def test_unknown_ids_say_unknown_or_dropped_and_where_to_look() -> None:
    async with JobRegistry(describe) as jobs:
        with pytest.raises(UnknownJob) as caught:
            jobs.get("job-nope")
    text = str(caught.value)
    assert "No job 'job-nope'" in text and "60 min" in text and "lingma://jobs" in text


async def test_finished_jobs_are_dropped_an_hour_after_they_end_running_ones_never() -> None:
    clock = Clock()
    async with JobRegistry(describe, clock=clock) as jobs:
        done_work, running_work = Gate([]), Gate([])
        done = jobs.start(done_work)
        running = jobs.start(running_work)
        done_work.release.set()
        await done.wait()
        clock.now += 3600
        assert jobs.get(done.id) is done  # exactly an hour: still kept
        clock.now += 1
        with pytest.raises(UnknownJob):
            jobs.get(done.id)
        assert jobs.get(running.id) is running
        running_work.release.set()


async def test_past_the_count_the_oldest_finished_jobs_go_first() -> None:
    clock = Clock()
    async with JobRegistry(describe, max_jobs=3, clock=clock) as jobs:
        running_work = Gate([])
        running = jobs.start(running_work)
        finished = []
        for _ in range(4):
            work = Gate([])
            job = jobs.start(work)
            work.release.set()
            await job.wait()
            clock.now += 1
            finished.append(job)
        kept = jobs.jobs()
        running_work.release.set()
    assert running in kept and len(kept) == 3
    assert [j.id for j in kept if j is not running] == [finished[3].id, finished[2].id]


async def test_notes_are_kept_for_the_person_to_read() -> None:
    async with JobRegistry(describe) as jobs:
        work = Gate([])
        job = jobs.start(work)
        job.note("denied: write notes.txt (no host to ask)")
        work.release.set()
    assert job.notes == ["denied: write notes.txt (no host to ask)"]


@pytest.mark.parametrize(
    ("name", "setting", "expected"),
    [
        ("claude-ai", None, DEFAULT_HOST_DETACH_S),  # Claude Desktop
        ("codex-mcp-client", None, DEFAULT_HOST_DETACH_S),
        ("gemini-cli-mcp-client", None, DEFAULT_HOST_DETACH_S),
        ("gemini-cli-mcp-client-lingma", None, DEFAULT_HOST_DETACH_S),
        ("Codex-MCP-Client", None, DEFAULT_HOST_DETACH_S),
        ("claude-code", None, None),  # waits on progress
        ("Visual Studio Code", None, None),
        ("mcp", None, None),
        (None, None, None),  # no name: not assumed to cut calls
        ("claude-ai", 0.0, None),  # 0: never, for every host
        ("claude-code", 2.0, 2.0),  # a number: for every host
        ("codex-mcp-client", 120.0, 120.0),
    ],
)
def test_detach_time_by_host_and_setting(
    name: str | None, setting: float | None, expected: float | None
) -> None:
    assert detach_after_for(name, setting) == expected


async def test_a_check_waits_at_most_50_s_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float | None] = []

    async def no_wait(self: Job, timeout: float | None = None, **_: object) -> bool:  # noqa: ASYNC109
        waits.append(timeout)
        return False

    bridge = SimpleNamespace(settings=Settings(), error_text=describe)
    registry = JobRegistry(describe)
    asks = AskJobs(bridge, registry=registry)  # type: ignore[arg-type]
    async with registry:
        work = Gate(["so far"])
        job = registry.start(work)
        await work.written.wait()
        monkeypatch.setattr(Job, "wait", no_wait)
        state = await asks.check(job.id, 500)
        normal = await asks.check(job.id, 3)
        work.release.set()
    assert waits == [50.0, 3.0]
    assert not state.is_error and state.structured_content["status"] == "running"
    assert "wait_s is at most 50 s" in state.content[0].text
    assert state.structured_content["text"] == "so far"
    assert "at most 50" not in normal.content[0].text


async def test_a_check_of_a_long_running_text_stays_within_the_limit_and_loses_nothing() -> None:
    bridge = SimpleNamespace(settings=Settings(max_result_chars=1000), error_text=describe)
    registry = JobRegistry(describe)
    asks = AskJobs(bridge, registry=registry)  # type: ignore[arg-type]
    whole = "".join(f"line {i:04d}\n" for i in range(400))  # 4,000 characters
    async with registry:
        work = Gate([whole])
        job = registry.start(work)
        await work.written.wait()
        checks = [await asks.check(job.id, 0) for _ in range(6)]
        work.release.set()
    texts = [c.structured_content["text"] for c in checks]
    assert "".join(texts) == whole
    for check, text in zip(checks, texts, strict=True):
        content = check.content[0].text
        assert len(content) <= 1000
        assert content.startswith(text), "the content shows exactly what was read"
    assert checks[0].structured_content["unread_chars"] > 0
    assert "more text is waiting" in checks[0].content[0].text

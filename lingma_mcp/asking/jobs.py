"""Jobs: asks that outlive the tool call that started them.

A host that cuts tool calls at about 60 s cannot wait for a long agent-mode answer. A job
runs the ask in a task owned by the server (not by the request), keeps the text Lingma
writes, and hands out its state on demand: ``check_lingma_job`` reads what was written
since the previous check, then the result or the error; ``cancel_lingma_job`` stops it.

This module knows nothing of MCP or of Lingma: a job runs any ``work(job)`` coroutine
function and keeps whatever it returns. That is deliberate: the face's
:mod:`lingma_mcp.server.job_tools` exposes jobs as tools (``check_lingma_job``,
``cancel_lingma_job``) and :mod:`lingma_mcp.server.tasks` exposes the same jobs as MCP Tasks
(a task id is a job id). For Tasks a job also keeps its latest status line
(:attr:`Job.last_status`), when its state last changed (:attr:`Job.changed_wall`), and
tells its watchers (:meth:`Job.watch`) of each change: a question parked or settled, the
job finished.

Text: the work (through the face's :class:`~lingma_mcp.server.progress.EventNarrator`)
calls :meth:`Job.text` and :meth:`Job.status`, the same two calls a
:class:`~lingma_mcp.server.progress.ProgressRelay` takes, so one narrator feeds both. While
a tool call waits on the job, it *follows* it: text and status also go to that call's
relay, until the call returns (then nothing more is sent for it).

Approvals: a question for the person is *parked* on the job (:meth:`Job.park`) and waits
there, one :class:`Question` each, until whichever live tool call follows the job puts it
to the person and settles it with the answer (the face's :mod:`lingma_mcp.server.approvals`
decides how, per protocol),
or until it expires or its call ends. :meth:`Job.wait` with ``or_question`` wakes a
follower for it. What the person should know later (an approval nobody could give) goes to
:meth:`Job.note`; ``check_lingma_job`` shows the notes. :attr:`Job.attached` tells whether
a tool call is following the job.

Bounds: a finished job is kept for ``keep_s`` (an hour); past ``max_jobs`` (100) jobs the
oldest finished ones are dropped first; running jobs are never dropped. A job holds its
text and its result, so memory is bounded by about twice those answers.
"""

from __future__ import annotations

import enum
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import anyio
import anyio.abc

log = logging.getLogger(__name__)

DEFAULT_KEEP_S = 3600.0
DEFAULT_MAX_JOBS = 100
MAX_NOTES = 50
# Settled questions a job remembers, so that a second answer to one is told "already
# answered" rather than "never asked"; older ones are forgotten (memory stays bounded).
MAX_SETTLED_QUESTIONS = 20


class JobStatus(str, enum.Enum):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class QuestionState(str, enum.Enum):
    WAITING = "waiting"
    ANSWERED = "answered"  # the person's decision is in
    FAILED = "failed"  # the host's form failed: nobody answered
    EXPIRED = "expired"  # nobody answered within the approval timeout
    WITHDRAWN = "withdrawn"  # the call that asked ended first


class Asked(Protocol):
    """What a question is about (the approval gate's request); only its text is read here."""

    @property
    def message(self) -> str: ...


class Question:
    """One approval question parked on a job until it is settled, once.

    The first of :meth:`answer`, :meth:`fail`, :meth:`expire` and :meth:`withdraw` settles
    it; the others then return False and change nothing, so an answer is applied at most
    once however many channels put the question to the person.
    """

    def __init__(
        self,
        question_id: str,
        request: Asked,
        clock: Callable[[], float],
        on_settle: Callable[[], None] | None = None,
    ) -> None:
        self.id = question_id
        self.request = request
        self.state = QuestionState.WAITING
        self.decision: str | None = None
        self.failure: str | None = None
        self._clock = clock
        self.parked_at = clock()
        self._settled = anyio.Event()
        self._on_settle = on_settle

    @property
    def message(self) -> str:
        return self.request.message

    @property
    def waiting(self) -> bool:
        return self.state is QuestionState.WAITING

    @property
    def waited_s(self) -> float:
        return self._clock() - self.parked_at

    def answer(self, decision: str) -> bool:
        """The person's decision (``approve``, ``approve_all`` or ``deny``)."""
        if self._settle(QuestionState.ANSWERED):
            self.decision = decision
            return True
        return False

    def fail(self, why: str) -> bool:
        """The host's form failed; ``why`` says how (for the record, not the person's no)."""
        if self._settle(QuestionState.FAILED):
            self.failure = why
            return True
        return False

    def expire(self) -> bool:
        return self._settle(QuestionState.EXPIRED)

    def withdraw(self) -> bool:
        return self._settle(QuestionState.WITHDRAWN)

    async def settled(self) -> None:
        await self._settled.wait()

    def _settle(self, state: QuestionState) -> bool:
        if self.state is not QuestionState.WAITING:
            return False
        self.state = state
        self._settled.set()
        if self._on_settle is not None:
            self._on_settle()
        return True


class UnknownJob(LookupError):
    """No job with this id: never started here, or finished long enough ago to be dropped."""

    def __init__(self, job_id: str, keep_s: float, max_jobs: int) -> None:
        self.job_id = job_id
        minutes = max(1, round(keep_s / 60))
        super().__init__(
            f"No job {job_id!r}: it is unknown to this server, or it finished more than "
            f"{minutes} min ago (or more than {max_jobs} jobs ago) and was dropped. Jobs "
            "also end when the server restarts. Read the lingma://jobs resource for the "
            "jobs there are, or ask again."
        )


class JobsClosed(RuntimeError):
    """The registry is not running (the server is starting up or shutting down)."""


class Follower(Protocol):
    """Where a job's text also goes while a tool call waits on it (a progress relay)."""

    def text(self, delta: str) -> None: ...

    def status(self, line: str) -> None: ...

    def note(self, line: str) -> None: ...

    def restart(self) -> None: ...


Work = Callable[["Job"], Awaitable[Any]]
"""``work(job)``: the job's body; its return value becomes :attr:`Job.result`."""

Describe = Callable[[BaseException], str]
"""Turns a failure into the text a user reads (the same a foreground call gives)."""

Watcher = Callable[["Job"], None]
"""Called (synchronously, never awaited) after each change of a job's state."""


class Job:
    """One ask running in the background. Created by :meth:`JobRegistry.start`."""

    def __init__(self, job_id: str, label: str, clock: Callable[[], float]) -> None:
        self.id = job_id
        self.label = label
        self.state = JobStatus.RUNNING
        self.result: Any = None
        self.error: str | None = None
        self.started_wall = time.time()
        self.changed_wall = self.started_wall
        self.last_status: str | None = None
        self._watchers: list[Watcher] = []
        self._clock = clock
        self._started = clock()
        self._finished: float | None = None
        # Text as appended pieces, joined lazily when read: appending stays O(1) per delta
        # and each read joins once, so a job costs O(answer) however often it is checked.
        self._parts: list[str] = []
        self._length = 0
        self._read = 0
        self._notes: list[str] = []
        self._follower: Follower | None = None
        self._done = anyio.Event()
        # Set (and replaced) whenever a waiter may have something new: a question parked,
        # or the job finished.
        self._changed = anyio.Event()
        # Waiting questions and the last few settled ones, oldest first.
        self._questions: dict[str, Question] = {}
        self._scope: anyio.CancelScope | None = None
        self._cancel_requested = False

    # -- fed by the work (never awaits) ----------------------------------------------

    def text(self, delta: str) -> None:
        """Answer text Lingma wrote."""
        if not delta:
            return
        self._parts.append(delta)
        self._length += len(delta)
        if self._follower is not None:
            self._follower.text(delta)

    def restart(self) -> None:
        """Lingma started its answer over: the text that follows replaces the text so far.
        A reader who already took part of the old text is told so in the notes."""
        if self._read:
            self.note(
                "Lingma restarted its answer: the text from here on replaces the text read before."
            )
        self._parts = []
        self._length = self._read = 0
        if self._follower is not None:
            self._follower.restart()

    def status(self, line: str) -> None:
        """A status line (thinking, a step, a tool state): followed; only the latest kept."""
        self.last_status = line
        if self._follower is not None:
            self._follower.status(line)

    def tell(self, line: str) -> None:
        """A line the person must see now (an approval, a changed file): followed like a
        status, but never collapsed nor dropped on the way."""
        if self._follower is not None:
            self._follower.note(line)

    def note(self, line: str) -> None:
        """Something the person should know later, e.g. an approval that was denied."""
        if len(self._notes) < MAX_NOTES:
            self._notes.append(line)

    def park(self, request: Asked) -> Question:
        """Park a question for the person; whoever follows the job is woken to ask it."""
        question = Question(self._new_question_id(), request, self._clock, self._state_changed)
        self._questions[question.id] = question
        settled = [q for q in self._questions.values() if not q.waiting]
        for old in settled[: max(0, len(settled) - MAX_SETTLED_QUESTIONS)]:
            del self._questions[old.id]
        self._poke()
        self._state_changed()
        return question

    # -- read by the tools -----------------------------------------------------------------

    @property
    def question(self) -> Question | None:
        """The oldest question still waiting for the person, if any."""
        return next((q for q in self._questions.values() if q.waiting), None)

    def find_question(self, question_id: str) -> Question | None:
        """A question of this job by id (waiting, or among the last settled ones)."""
        return self._questions.get(question_id)

    @property
    def notes(self) -> list[str]:
        return list(self._notes)

    @property
    def attached(self) -> bool:
        """True while a tool call waits on this job (it follows the text)."""
        return self._follower is not None

    @property
    def finished(self) -> bool:
        return self.state is not JobStatus.RUNNING

    @property
    def elapsed_s(self) -> float:
        end = self._finished if self._finished is not None else self._clock()
        return end - self._started

    @property
    def finished_at(self) -> float | None:
        """Monotonic time it finished, or None while running."""
        return self._finished

    @property
    def text_chars(self) -> int:
        return self._length

    def all_text(self) -> str:
        """Every piece of answer text written so far."""
        if len(self._parts) > 1:
            self._parts = ["".join(self._parts)]
        return self._parts[0] if self._parts else ""

    def read_new(self, limit: int | None = None) -> str:
        """Text written since the previous read, at most ``limit`` characters.

        What is not returned (over the limit) stays unread, so the next read goes on from
        exactly there.
        """
        new = self.all_text()[self._read :]
        if limit is not None and len(new) > limit:
            new = new[:limit]
        self._read += len(new)
        return new

    def mark_read(self, chars: int) -> None:
        """Count the first ``chars`` characters as read (a detached call returned them)."""
        self._read = max(self._read, min(chars, self._length))

    @property
    def unread_chars(self) -> int:
        return self._length - self._read

    # -- following and waiting -------------------------------------------------------------

    def follow(self, follower: Follower | None) -> None:
        """Send text and status to ``follower`` too; ``None`` stops following."""
        self._follower = follower

    def watch(self, watcher: Watcher) -> None:
        """Call ``watcher(job)`` after each change of state: a question parked or settled,
        the job finished. It must not block: it runs inside the change."""
        self._watchers.append(watcher)

    async def wait(
        self,
        timeout: float | None = None,  # noqa: ASYNC109
        *,
        or_question: bool = False,
    ) -> bool:
        """Wait at most ``timeout`` seconds (``None``: no bound) for the job to finish, or
        (``or_question``) for a question to wait for the person.

        (A timeout parameter, not a cancel scope around the call: "not yet" is an answer
        here, not a failure.)

        Returns:
            True if it finished (or, with ``or_question``, a question is waiting).
        """

        def ready() -> bool:
            return self._done.is_set() or (or_question and self.question is not None)

        with anyio.move_on_after(None if timeout is None else max(0.0, timeout)):
            while not ready():
                await self._changed.wait()
        return ready()

    def cancel(self) -> None:
        """Stop the work as a cancelled call would; :meth:`wait` to see it end."""
        if self.finished:
            return
        self._cancel_requested = True
        if self._scope is not None:
            self._scope.cancel()

    def _poke(self) -> None:
        changed, self._changed = self._changed, anyio.Event()
        changed.set()

    def _state_changed(self) -> None:
        self.changed_wall = time.time()
        for watcher in list(self._watchers):
            try:
                watcher(self)
            except Exception:  # a watcher's fault must not break the job
                log.exception("job %s: a watcher of its state failed", self.id)

    def _new_question_id(self) -> str:
        while True:
            question_id = secrets.token_hex(8)
            if question_id not in self._questions:
                return question_id

    # -- run by the registry ---------------------------------------------------------------

    async def _run(self, work: Work, describe: Describe) -> None:
        try:
            with anyio.CancelScope() as scope:
                self._scope = scope
                if self._cancel_requested:
                    scope.cancel()
                try:
                    self.result = await work(self)
                    self.state = JobStatus.DONE
                except anyio.get_cancelled_exc_class():
                    self.state = JobStatus.CANCELLED
                    raise
                except Exception as exc:  # a failed job is a state, not a server failure
                    self.state = JobStatus.FAILED
                    self.error = describe(exc)
        except anyio.get_cancelled_exc_class():
            # The server is closing: the work already told Lingma to stop (shielded).
            self.state = JobStatus.CANCELLED
            raise
        finally:
            if self.state is JobStatus.RUNNING:
                self.state = JobStatus.CANCELLED
            self._finished = self._clock()
            self._follower = None
            for question in self._questions.values():
                question.withdraw()  # a question cannot outlive its call
            self._done.set()
            self._poke()
            self._state_changed()
            log.info("job %s %s after %.1f s", self.id, self.state.value, self.elapsed_s)


class JobRegistry:
    """The server's jobs: started, listed, found by id, dropped when old, ended at exit.

    Use as ``async with JobRegistry(...) as jobs:`` around the server's life; leaving the
    block cancels every job still running and waits (bounded) for them to end.

    Args:
        describe: failure -> user text, for :attr:`Job.error`.
        keep_s: how long a finished job stays readable.
        max_jobs: how many jobs are kept at most (finished ones dropped, oldest first).
        clock: monotonic clock, replaceable in tests.
    """

    def __init__(
        self,
        describe: Describe,
        *,
        keep_s: float = DEFAULT_KEEP_S,
        max_jobs: int = DEFAULT_MAX_JOBS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._describe = describe
        self.keep_s = keep_s
        self.max_jobs = max_jobs
        self._clock = clock
        self._jobs: dict[str, Job] = {}  # insertion order = start order
        self._tg: anyio.abc.TaskGroup | None = None
        self._closed = False

    async def __aenter__(self) -> JobRegistry:
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Cancel every job and wait for them to end (each stops Lingma, shielded)."""
        if self._tg is None or self._closed:
            return
        self._closed = True
        tg, self._tg = self._tg, None
        # Each job's work tells Lingma to stop in a shielded, bounded clean-up, so waiting
        # for the tasks to end is bounded too. The caller's exception is not handed to the
        # task group, which would wrap it in an ExceptionGroup.
        tg.cancel_scope.cancel()
        await tg.__aexit__(None, None, None)

    def start(self, work: Work, *, label: str = "", listed: bool = True) -> Job:
        """Run ``work`` as a new job; returns at once.

        Args:
            listed: False for a tool call that waits on its own ask: the job is only
                findable by id after :meth:`publish` (when the call detaches).

        Raises:
            JobsClosed: the registry is not running (outside its ``async with``).
        """
        if self._tg is None:
            raise JobsClosed("lingma-mcp is shutting down; no new asks are accepted.")
        job = Job(self._new_id(), label, self._clock)
        if listed:
            self.publish(job)
        self._tg.start_soon(job._run, work, self._describe, name=f"job {job.id}")
        return job

    def publish(self, job: Job) -> None:
        """Make ``job`` findable by id and listed."""
        self._jobs[job.id] = job
        self._prune()

    def get(self, job_id: str) -> Job:
        """The job with this id.

        Raises:
            UnknownJob: never started here, or dropped since it finished.
        """
        self._prune()
        job = self._jobs.get(job_id.strip()) if isinstance(job_id, str) else None
        if job is None:
            raise UnknownJob(str(job_id), self.keep_s, self.max_jobs)
        return job

    def jobs(self) -> list[Job]:
        """Every job kept, newest first."""
        self._prune()
        return list(reversed(self._jobs.values()))

    def _new_id(self) -> str:
        while True:
            job_id = "job-" + secrets.token_hex(6)
            if job_id not in self._jobs:
                return job_id

    def _prune(self) -> None:
        now = self._clock()
        for job_id, job in list(self._jobs.items()):
            if job.finished_at is not None and now - job.finished_at > self.keep_s:
                del self._jobs[job_id]
        excess = len(self._jobs) - self.max_jobs
        if excess > 0:
            finished = [j for j in self._jobs.values() if j.finished_at is not None]
            finished.sort(key=lambda j: j.finished_at or 0.0)
            for job in finished[:excess]:
                del self._jobs[job.id]

"""Asks as jobs, for MCP: background asks, automatic detach, and the job tools.

Every ``ask_lingma`` runs as a job of the :class:`~lingma_mcp.asking.jobs.JobRegistry` (a
task owned by the server, not by the request), so a call can hand its ask over instead of
ending it:

- ``background=true``: the call returns at once with a ``job_id``;
- a foreground call waits on its job and relays its text as progress (through the
  call's :class:`~.progress.ProgressRelay`, which the tool owns); if the job is still
  running after the detach time, the call returns the text so far and the ``job_id``, and
  the ask goes on (nothing more is sent for that call);
- ``check_lingma_job`` follows a job, ``cancel_lingma_job`` stops it, ``lingma://jobs``
  lists them, and ``lingma://answers/{request_id}`` holds whole answers that were cut.

A call that follows a job also puts the job's approval questions to the person
(:mod:`.approvals`): in the middle of the call before protocol 2026-07-28; on 2026-07-28 by
answering ``InputRequiredResult`` (:mod:`.input_required`), after which the job is parked
until the client's retry of the same call brings the answer and follows the job again.

The detach time is ``--detach-after``, or by default chosen per host from the client name
it gives at ``initialize`` (:func:`detach_after_for`).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError
from mcp.types import CallToolResult, InputRequiredResult, TextContent, ToolAnnotations
from pydantic import Field

from ..asking.answer_store import AnswerStore
from ..asking.arguments import AskParams
from ..asking.ask import STOP_GRACE_S
from ..asking.bridge import Bridge
from ..asking.jobs import Job, JobRegistry, JobsClosed, JobStatus, UnknownJob
from ..asking.results import AskResult
from .answers import ANSWER_MIME, ANSWER_URI, result_size_meta, shape_answer
from .approvals import JobAsker, follow_asking
from .input_required import RetryRefused, apply_answer, input_required, is_retry
from .progress import EventNarrator, ProgressRelay
from .tool_schemas import JobState

log = logging.getLogger(__name__)

MAX_WAIT_S = 50.0
DEFAULT_WAIT_S = 20.0
DEFAULT_HOST_DETACH_S = 45.0
LABEL_CHARS = 80

# Hosts known to cut a tool call at about 60 s whatever progress says, by the clientInfo
# name they send at initialize. A name matches exactly or as a prefix followed by "-"
# (Gemini CLI appends the server's name: gemini-cli-mcp-client-<server>).
HOSTS_THAT_CUT_CALLS: dict[str, str] = {
    "claude-ai": "Claude Desktop",
    "codex-mcp-client": "Codex",
    "gemini-cli-mcp-client": "Gemini CLI",
}


def detach_after_for(client_name: str | None, setting: float | None) -> float | None:
    """Seconds before a foreground ask detaches, or None for never.

    ``setting`` is ``--detach-after``: a number wins for every host, 0 means never. Unset,
    hosts known to cut calls get :data:`DEFAULT_HOST_DETACH_S`; others never detach (a
    host that sends no progress token is not by that alone assumed to cut calls).
    """
    if setting is not None:
        return None if setting <= 0 else setting
    name = (client_name or "").strip().lower()
    for known in HOSTS_THAT_CUT_CALLS:
        if name == known or name.startswith(known + "-"):
            return DEFAULT_HOST_DETACH_S
    return None


def client_name(ctx: Context) -> str | None:
    """The name the host gave in ``initialize`` (None on a connection without one)."""
    try:
        params = ctx.session.client_params
        return params.client_info.name if params is not None else None
    except Exception:  # no live session: no name
        return None


Outcome = CallToolResult | InputRequiredResult
"""A call that follows a job ends with a tool result, or (2026-07-28) with a question."""


def _error(text: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True)


async def _nothing_to_flush() -> None:
    return None


def _label(prompt: str) -> str:
    line = " ".join(prompt.split())
    return line if len(line) <= LABEL_CHARS else line[: LABEL_CHARS - 1] + "…"


def _follow_hint(job_id: str) -> str:
    return (
        f'call check_lingma_job with job_id "{job_id}" to follow it (it waits up to wait_s '
        f"seconds, at most {MAX_WAIT_S:g}, and returns the text written since the previous "
        "check, then the whole result); cancel_lingma_job stops it"
    )


class AskJobs:
    """The jobs side of ``ask_lingma`` and the job tools, for one server.

    Args:
        bridge: runs the asks and words their failures.
        registry: where jobs run; by default one with the standard bounds.
        answers: where whole answers that were cut are kept.
    """

    def __init__(
        self,
        bridge: Bridge,
        *,
        registry: JobRegistry | None = None,
        answers: AnswerStore | None = None,
    ) -> None:
        self.bridge = bridge
        self.registry = registry if registry is not None else JobRegistry(bridge.error_text)
        self.answers = answers if answers is not None else AnswerStore()
        # Names this server in the request_state it issues, so a state from any other
        # server (or an earlier run of this one) is refused even where keys are shared.
        self.server_id = secrets.token_hex(8)

    @property
    def limit(self) -> int:
        return self.bridge.settings.max_result_chars

    @asynccontextmanager
    async def running(self) -> AsyncIterator[AskJobs]:
        """The server's lifetime: jobs can start inside; all of them end on leaving."""
        async with self.registry:
            yield self

    # -- ask_lingma ------------------------------------------------------------------------

    def _work(self, params: AskParams, asker: JobAsker | None) -> Any:
        """The job's body: the same ``bridge.ask`` a waiting call makes.

        Agent mode: the call's approval asker parks its questions on this job, where the
        call that follows it (or the next ``check_lingma_job``) asks them; what nobody could
        be asked goes to ``job.note(...)``, which ``check_lingma_job`` shows as ``notes``.
        """

        async def work(job: Job) -> AskResult:
            if asker is not None:
                asker.bind(job)
            # The job is the narrator's sink: it keeps the text and passes text and status
            # on to the call that follows it, if any; what it must tell goes the same way.
            narrator = EventNarrator(job)  # type: ignore[arg-type]
            return await self.bridge.ask(params, narrator, on_note=job.tell)

        return work

    async def ask(
        self,
        ctx: Context,
        params: AskParams,
        relay: ProgressRelay,
        *,
        background: bool,
        asker: JobAsker | None = None,
    ) -> Outcome:
        """Run one validated ask: in the background, or followed through ``relay`` (the
        call's progress) with automatic detach; ``asker`` is its approval gate's (agent
        mode), bound to the job it runs as."""
        label = _label(params.prompt)
        work = self._work(params, asker)
        try:
            if background:
                # Refused now, as a foreground call would be, not later in the job.
                await self.bridge.check_model(params)
                job = self.registry.start(work, label=label)
                return self._started(job)
            job = self.registry.start(work, label=label, listed=False)
        except JobsClosed as exc:
            return _error(str(exc))
        except Exception as exc:  # an unknown model key, Lingma not found or not logged in
            return _error(self.bridge.error_text(exc))
        return await self._follow(ctx, job, relay)

    async def resume(self, ctx: Context, relay: ProgressRelay) -> Outcome:
        """A retry of ``ask_lingma`` (2026-07-28) with the person's answer: apply it, then
        follow the same job again through this call's ``relay``, as the first call did."""
        job = self._take_answer(ctx, "ask_lingma")
        if isinstance(job, CallToolResult):
            return job
        return await self._follow(ctx, job, relay)

    async def _follow(self, ctx: Context, job: Job, relay: ProgressRelay) -> Outcome:
        """Follow ``job`` through ``relay`` until it finishes (its result), the detach time
        passes (the text so far and the job id), or a question must go back to the client
        (an ``InputRequiredResult``); the job's other questions are asked on the way."""
        detach_after = detach_after_for(client_name(ctx), self.bridge.settings.detach_after)
        job.follow(relay)
        try:
            question = await follow_asking(ctx, job, detach_after, relay.flush)
        except BaseException:
            # The host cancelled the call or went away: the ask ends with it, and Lingma
            # is told to stop before this call is done.
            job.follow(None)
            job.cancel()
            with anyio.move_on_after(STOP_GRACE_S + 1, shield=True):
                await job.wait()
            raise
        job.follow(None)
        if not job.finished:
            # Detached, or parked on a question: from now on the job is found by its id.
            self.registry.publish(job)
        # The last text goes out before the result; after the result nothing does.
        await relay.flush()
        if question is not None:
            return input_required(question, job_id=job.id, tool="ask_lingma", server=self.server_id)
        if job.finished:
            return self.final_result(job)
        return self._detached(job, detach_after or 0.0)

    def _take_answer(self, ctx: Context, tool: str) -> Job | CallToolResult:
        """Apply the answer a retry of ``tool`` brings, once; the job it answers, or a
        refusal saying why nothing was applied."""
        try:
            return apply_answer(ctx, self.registry, tool=tool, server=self.server_id)
        except RetryRefused as exc:
            log.info("%s retry refused: %s", tool, str(exc).split(".")[0])
            return _error(str(exc))

    def _started(self, job: Job) -> CallToolResult:
        text = f"Started job {job.id}: Lingma is answering in the background. Now " + (
            _follow_hint(job.id) + ". lingma://jobs lists the jobs."
        )
        return self._running(job, "", text)

    def _detached(self, job: Job, after_s: float) -> CallToolResult:
        note = (
            f"\n\n[lingma] Lingma is still writing. This call returned after {after_s:g} s "
            f"so the host does not cut it off; the ask continues as job {job.id}: "
            + _follow_hint(job.id)
            + "."
        )
        so_far = job.read_new(max(0, self.limit - len(note)))
        return self._running(job, so_far, so_far + note)

    def _running(self, job: Job, so_far: str, text: str) -> CallToolResult:
        running = AskResult(
            answer=so_far,
            session_id=None,
            request_id=None,
            model=None,
            mode=None,
            finish_reason=None,
            status_code=None,
            tool_events=None,
            thinking=None,
            first_token_ms=None,
            total_ms=None,
            job_id=job.id,
            status="running",
            answer_truncated=None,
            answer_chars=None,
        )
        return CallToolResult(
            content=[TextContent(type="text", text=text)],
            structured_content=running.model_dump(mode="json"),
        )

    def final_result(self, job: Job) -> CallToolResult:
        """What a plain call of the ask returns, for a job that has ended (a task's result)."""
        if job.state is JobStatus.DONE:
            return shape_answer(job.result, self.answers, self.limit)
        if job.state is JobStatus.FAILED:
            return _error(job.error or "Lingma failed; the server log has the details.")
        return _error(
            "The ask was cancelled before it finished (cancelled by the host, or the server "
            "is closing); Lingma was told to stop."
        )

    async def stop(self, job: Job) -> None:
        """Cancel ``job`` and wait for it to end: its clean-up tells Lingma to stop, bounded
        by that clean-up's grace (a job still running after it is left to end on its own)."""
        job.cancel()
        await job.wait(STOP_GRACE_S + 1)

    # -- check_lingma_job, cancel_lingma_job -------------------------------------------------

    async def check(self, job_id: str, wait_s: float | None, ctx: Context | None = None) -> Outcome:
        """Follow a job for at most ``wait_s``; through ``ctx`` (the check's own call), the
        person is asked the job's questions, and a retry (2026-07-28) answers one first."""
        if ctx is not None and is_retry(ctx):
            answered = self._take_answer(ctx, "check_lingma_job")
            if isinstance(answered, CallToolResult):
                return answered
            job = answered
        else:
            try:
                job = self.registry.get(job_id)
            except UnknownJob as exc:
                return _error(str(exc))
        wait = DEFAULT_WAIT_S if wait_s is None else min(max(0.0, wait_s), MAX_WAIT_S)
        if not job.finished:
            question = await follow_asking(ctx, job, wait, _nothing_to_flush)
            if question is not None:
                return input_required(
                    question, job_id=job.id, tool="check_lingma_job", server=self.server_id
                )
        head = None
        if wait_s is not None and wait_s > MAX_WAIT_S and not job.finished:
            head = (
                f"[lingma] wait_s is at most {MAX_WAIT_S:g} s (so hosts that cut calls at "
                f"60 s get an answer): waited {MAX_WAIT_S:g} s. Job {job.id} is still "
                f"running ({job.elapsed_s:.0f} s); call check_lingma_job again to follow it."
            )
        return self._state(job, head=head)

    async def cancel(self, job_id: str) -> CallToolResult:
        try:
            job = self.registry.get(job_id)
        except UnknownJob as exc:
            return _error(str(exc))
        if job.finished:
            head = f"Job {job.id} had already ended ({job.state.value}); nothing to cancel."
            return self._state(job, head=head, read=False)
        await self.stop(job)
        head = f"Cancelled job {job.id}; Lingma was told to stop."
        if not job.finished:
            head = f"Asked job {job.id} to stop; it has not ended yet (check it again)."
        return self._state(job, head=head, read=False)

    def _state(self, job: Job, *, head: str | None = None, read: bool = True) -> CallToolResult:
        """A job's state as a tool result; reading it moves the job's text cursor.

        The text content stays within the limit: a done job's is the (cut) answer; any
        other's is the new text, then one line on the state, and the new text is read only
        as far as fits before that line, so what the content shows is what was read.
        """
        data: dict[str, Any] | None = None
        if job.state is JobStatus.DONE and head is None:
            shaped = shape_answer(job.result, self.answers, self.limit)
            content = list(shaped.content)  # a done job's text content is the answer
            data = shaped.structured_content
            new = job.read_new(self.limit) if read else ""
        else:
            room = self.limit - len(self._state_line(job, head, more=True)) - 2
            new = job.read_new(max(0, room)) if read else ""
            line = self._state_line(job, head, more=job.unread_chars > 0)
            text = f"{new}\n\n{line}" if new else line
            content = [TextContent(type="text", text=text)]
        state = JobState(
            job_id=job.id,
            status=job.state.value,
            text=new,
            unread_chars=job.unread_chars,
            elapsed_s=round(job.elapsed_s, 1),
            result=AskResult.model_validate(data) if data is not None else None,
            error=job.error,
            notes=job.notes,
            waiting_for_approval=_waiting_for(job),
        )
        return CallToolResult(content=content, structured_content=state.model_dump(mode="json"))

    def _state_line(self, job: Job, head: str | None, *, more: bool) -> str:
        elapsed = f"{job.elapsed_s:.0f} s"
        if head is not None:
            line = head
        elif job.state is JobStatus.RUNNING and job.question is not None:
            line = (
                f"[lingma] Job {job.id} is waiting for your approval "
                f"({job.question.waited_s:.0f} s so far): {job.question.message}\n"
                "check_lingma_job puts the question to you where the host supports form "
                "elicitation; unanswered, the approval setting decides (deny) after the "
                "approval timeout."
            )
        elif job.state is JobStatus.RUNNING:
            waiting = " (more text is waiting)" if more else ""
            line = (
                f"[lingma] Job {job.id} is still running ({elapsed}){waiting}. Call "
                "check_lingma_job again to follow it."
            )
        elif job.state is JobStatus.FAILED:
            line = f"Job {job.id} failed after {elapsed}: {job.error}"
        else:
            line = f"Job {job.id} was cancelled after {elapsed}; Lingma was told to stop."
        if job.notes:
            line += "\nNotes:\n" + "\n".join(f"- {n}" for n in job.notes)
        return line

    # -- lingma://jobs ---------------------------------------------------------------------

    def listing(self) -> dict[str, Any]:
        jobs = []
        for job in self.registry.jobs():
            jobs.append(
                {
                    "job_id": job.id,
                    "status": job.state.value,
                    "prompt": job.label,
                    "started_at": dt.datetime.fromtimestamp(job.started_wall, dt.timezone.utc)
                    .isoformat(timespec="seconds")
                    .replace("+00:00", "Z"),
                    "elapsed_s": round(job.elapsed_s, 1),
                    "text_chars": job.text_chars,
                    "unread_chars": job.unread_chars,
                    "error": job.error,
                    "waiting_for_approval": _waiting_for(job),
                    # The conversation to continue, once the answer is in.
                    "session_id": getattr(job.result, "session_id", None),
                }
            )
        return {"jobs": jobs}


def _waiting_for(job: Job) -> str | None:
    """The question a job waits on the person for, if any."""
    question = job.question if not job.finished else None
    return question.message if question is not None else None


def register_job_tools(app: MCPServer, asks: AskJobs) -> None:
    """Add ``check_lingma_job``, ``cancel_lingma_job``, ``lingma://jobs`` and the template
    ``lingma://answers/{request_id}`` to ``app``."""

    @app.tool(
        name="check_lingma_job",
        title="Check a Lingma job",
        description="Follow a background ask_lingma job (started with background=true, or "
        "a call that continued as a job). Waits up to wait_s seconds (at most 50) for it to "
        "finish, then returns its status (running, done, failed, cancelled), the answer text "
        "written since the previous check, and when done the whole result (the text content "
        "is then the answer) or when failed the error. An agent-mode job that waits for "
        "the person's approval is asked here (waiting_for_approval holds the question).",
        annotations=ToolAnnotations(
            title="Check a Lingma job",
            # Not read-only: the person's answer to a question asked here lets the job go
            # on and change the workspace. Not destructive: nothing changes here that the
            # person did not approve.
            read_only_hint=False,
            destructive_hint=False,
            idempotent_hint=False,  # each check returns the text since the previous one
            open_world_hint=False,
        ),
        meta=result_size_meta(asks.limit),
    )
    async def check_lingma_job(
        ctx: Context,
        job_id: Annotated[str, Field(description="The job_id ask_lingma returned.")],
        wait_s: Annotated[
            float,
            Field(description="Seconds to wait for the job to finish (0 to 50; default 20)."),
        ] = DEFAULT_WAIT_S,
    ) -> Annotated[CallToolResult, JobState] | InputRequiredResult:
        return await asks.check(job_id, wait_s, ctx)

    @app.tool(
        name="cancel_lingma_job",
        title="Cancel a Lingma job",
        description="Stop a background ask_lingma job as a cancelled call would: Lingma is "
        "told to stop. Returns the job's state.",
        annotations=ToolAnnotations(
            title="Cancel a Lingma job",
            read_only_hint=False,
            destructive_hint=False,
            idempotent_hint=True,
            open_world_hint=False,
        ),
    )
    async def cancel_lingma_job(
        job_id: Annotated[str, Field(description="The job_id ask_lingma returned.")],
    ) -> Annotated[CallToolResult, JobState]:
        return await asks.cancel(job_id)

    @app.resource(
        "lingma://jobs",
        name="jobs",
        title="Lingma jobs",
        description="Background ask_lingma jobs with their status (kept an hour after they "
        "finish, at most 100): job_id, status, prompt, started_at, elapsed_s, text_chars, "
        "unread_chars, error, session_id.",
        mime_type="application/json",
    )
    async def jobs() -> str:
        return json.dumps(asks.listing(), indent=2, ensure_ascii=False)

    @app.resource(
        ANSWER_URI,
        name="answer",
        title="One whole Lingma answer",
        description="The whole text of an answer that came back cut to --max-result-chars "
        "(kept in memory for an hour).",
        mime_type=ANSWER_MIME,
    )
    async def answer(request_id: str) -> str:
        whole = asks.answers.get(request_id)
        if whole is None:
            raise ResourceError(asks.answers.missing_text(request_id))
        return whole

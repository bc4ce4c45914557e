"""Approval questions on protocol 2026-07-28: ``InputRequiredResult`` out, the retry in.

On 2026-07-28 a tool cannot send a request in the middle of its call. A call that has a
question for the person answers instead with an ``InputRequiredResult`` holding the same
form the older protocol elicits (:data:`~.approvals.DECISION_SCHEMA`, the same message)
and a ``request_state`` naming this server, the tool, the parked job and the question.
The client asks its user and retries the same call with the answer and the state; the
retry resumes the job.

The SDK seals the state (``mcp.server.request_state``: encrypted and authenticated under
this process's key, bound to the tool, its arguments and this server's name, and expiring),
so a client can neither read nor forge one, nor move one to another call. What the seal
cannot know is whether a genuine state was already used: the job refuses a second answer to
a question (:class:`~lingma_mcp.asking.jobs.Question` settles once). This module builds the
result, reads a retry and applies its answer to the job; it keeps no state of its own.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from mcp.server.mcpserver import Context
from mcp.types import ElicitRequest, ElicitRequestFormParams, ElicitResult, InputRequiredResult

from ..asking.jobs import Job, JobRegistry, Question, QuestionState, UnknownJob
from .approvals import DECISION_SCHEMA, decision_of

log = logging.getLogger(__name__)

STATE_VERSION = 1
_KEY_PREFIX = "lingma-approval-"


class RetryRefused(Exception):
    """A retry that cannot be applied; the message says why and what to do, for the host."""


@dataclass(frozen=True)
class Answer:
    """What one retry brings: the person's decision on one question of one job."""

    job_id: str
    question_id: str
    decision: str


def input_key(question: Question) -> str:
    """The key of the question's form in ``input_requests`` (and of its answer)."""
    return _KEY_PREFIX + question.id


def input_required(
    question: Question, *, job_id: str, tool: str, server: str
) -> InputRequiredResult:
    """The result that puts ``question`` to the person and parks the call."""
    state = {
        "v": STATE_VERSION,
        "server": server,
        "tool": tool,
        "job": job_id,
        "question": question.id,
    }
    form = ElicitRequest(
        params=ElicitRequestFormParams(message=question.message, requested_schema=DECISION_SCHEMA)
    )
    return InputRequiredResult(
        input_requests={input_key(question): form},
        request_state=json.dumps(state, separators=(",", ":")),
    )


def is_retry(ctx: Context) -> bool:
    """Whether this call carries answers or a state: a retry, not a new call."""
    try:
        return ctx.request_state is not None or bool(ctx.input_responses)
    except Exception:  # no request behind the context: a plain call
        return False


def read_retry(ctx: Context, *, tool: str, server: str) -> Answer:
    """The answer a retry of ``tool`` brings.

    The state was unsealed by the SDK, so it is one this process minted; it is still checked
    field by field, and the answers must answer exactly the question it names.

    Raises:
        RetryRefused: answers without a state, a state of another server or tool, no answer
            to the question, or answers to questions that were not asked.
    """
    responses = ctx.input_responses or {}
    state = _parse(ctx.request_state)
    if state is None:
        asked = ", ".join(sorted(responses)) or "none"
        raise RetryRefused(
            f"This {tool} call carries answers ({asked}) but no request_state naming the "
            "question they answer, so nothing was applied. Answer a question only with the "
            "request_state of the InputRequiredResult that asked it."
        )
    if state.get("server") != server or state.get("tool") != tool:
        raise RetryRefused(
            f"The request_state of this {tool} call was not issued by this lingma-mcp server "
            "for this tool (it comes from another server, an earlier run of this one, or "
            "another tool), so nothing was applied. Call the tool again without it."
        )
    job_id, question_id = state["job"], state["question"]
    key = _KEY_PREFIX + question_id
    unasked = sorted(k for k in responses if k != key)
    if unasked:
        raise RetryRefused(
            f"This {tool} call answers questions this server did not ask "
            f"({', '.join(unasked)}), so nothing was applied. Send only the answer to "
            f"{key}, with the request_state that asked it."
        )
    response = responses.get(key)
    if not isinstance(response, ElicitResult):
        raise RetryRefused(
            f"This {tool} call carries the request_state of an approval question for job "
            f"{job_id} but no form answer under {key}, so nothing was applied. Retry with "
            "the person's answer to that form."
        )
    return Answer(job_id, question_id, decision_of(response.action, response.content))


def apply_answer(ctx: Context, registry: JobRegistry, *, tool: str, server: str) -> Job:
    """Settle the question a retry of ``tool`` answers with the person's decision, once.

    Returns:
        The job the question belongs to, to be followed again.

    Raises:
        RetryRefused: the retry does not answer a question of this server (see
            :func:`read_retry`), its job is gone, or the question is no longer waiting
            (answered, expired, failed, or its call ended): nothing was applied.
    """
    answer = read_retry(ctx, tool=tool, server=server)
    try:
        job = registry.get(answer.job_id)
    except UnknownJob as exc:
        raise RetryRefused(
            f"{exc} The approval this retry answers can no longer be applied."
        ) from None
    question = job.find_question(answer.question_id)
    if question is None or not question.answer(answer.decision):
        raise RetryRefused(_not_waiting(job, question))
    log.info("job %s: the person answered %s", job.id, answer.decision)
    return job


def _not_waiting(job: Job, question: Question | None) -> str:
    """Why an answer to ``question`` cannot be applied (it was settled, or is unknown)."""
    follow = (
        f"Job {job.id} has ended ({job.state.value}): check_lingma_job returns its result."
        if job.finished
        else f"Job {job.id} goes on: check_lingma_job follows it."
    )
    if question is None:
        why = f"job {job.id} has no such question waiting (it was settled long ago)"
    elif question.state is QuestionState.ANSWERED:
        why = f"this approval was already answered ({question.decision}); an answer applies once"
    elif question.state is QuestionState.EXPIRED:
        why = (
            "nobody answered this approval within the approval timeout, so the approval "
            "setting decided it (denied)"
        )
    elif question.state is QuestionState.FAILED:
        why = "the host's form for this approval failed, so it was denied"
    else:
        why = "the call that asked this approval ended before the answer came"
    return f"The answer was not applied: {why}. Nothing was done twice. {follow}"


def _parse(text: str | None) -> dict[str, str] | None:
    if text is None:
        return None
    try:
        state = json.loads(text)
    except ValueError:
        return {}
    fields = ("server", "tool", "job", "question")
    if (
        not isinstance(state, dict)
        or state.get("v") != STATE_VERSION
        or not all(isinstance(state.get(f), str) for f in fields)
    ):
        return {}
    return {f: state[f] for f in fields}

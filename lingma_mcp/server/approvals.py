"""Asking the person, through their host, whether Lingma may go ahead.

The approval gate (``lingma_mcp.workspace``) decides by policy and, where the policy says
``ask``, calls an *asker*. Every agent-mode ask runs as a job
(:mod:`lingma_mcp.asking.jobs`), which may outlive the tool call that started it, so the
asker here never talks to a host itself: it parks the question on the job and waits.
Whichever live tool call follows the job at that moment puts the question to the person,
the way its protocol allows:

- before 2026-07-28, a form elicitation sent in the middle of that call
  (:func:`ask_in_call`);
- on 2026-07-28, where a tool cannot send requests mid-call, the call answers an
  ``InputRequiredResult`` carrying the same form, and the client's retry brings the answer
  (:mod:`.input_required`).

The call that follows is ``ask_lingma`` itself while it waits, or ``check_lingma_job`` for a
``background`` job or a call that detached. (MCP Tasks can put the same parked questions:
``job.question`` is a task's ``input_required`` state, and ``question.answer(...)`` what the
task's input brings.) Only where nobody can be asked (the host
declared no form elicitation, or nobody answered within ``--approval-timeout``) does the
asker raise :class:`~lingma_mcp.workspace.gate.NobodyToAsk`, and the gate falls back to the
policy (deny); a host whose form fails raises :class:`~lingma_mcp.workspace.gate.AskFailed`.
Nothing here ever says yes on its own.

The form has one required string, ``decision``, with the enum ``approve`` / ``approve_all``
/ ``deny`` (names hosts and tests rely on). A declined or cancelled form, or a decision
outside the enum, is a deny.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from mcp.server.mcpserver import Context
from mcp.shared.exceptions import MCPError
from mcp.shared.message import ServerMessageMetadata
from mcp.types import ElicitRequest, ElicitRequestFormParams, ElicitResult
from mcp_types.version import is_version_at_least

from ..asking.jobs import Job, Question, QuestionState
from ..workspace import ApprovalRequest
from ..workspace.gate import AskFailed, NobodyToAsk

log = logging.getLogger(__name__)

DECISIONS = ("approve", "approve_all", "deny")

# The protocol from which a tool can no longer send requests in the middle of its call
# (it answers InputRequiredResult instead, and the client retries with the answers).
NO_MIDCALL_REQUESTS_FROM = "2026-07-28"

DECISION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "decision": {
            "type": "string",
            "title": "Decision",
            "description": "approve: this action; approve_all: every action of this kind "
            "for the rest of this call; deny: refuse it.",
            "enum": list(DECISIONS),
            "enumNames": ["Approve", "Approve all of this kind", "Deny"],
        }
    },
    "required": ["decision"],
}


class Reach(str, enum.Enum):
    """How a live tool call can put a question to the person."""

    IN_CALL = "in_call"  # an elicitation request in the middle of the call
    INPUT_REQUIRED = "input_required"  # an InputRequiredResult, answered by the retry


def form_elicitation_declared(ctx: Any) -> bool:
    """Whether the client said it can show forms (``elicitation`` with ``form``, or empty).

    ``ctx``: a tool's context or a request's session (both tell ``client_capabilities``).
    """
    try:
        caps = ctx.client_capabilities
    except Exception:  # a context without a live session declares nothing
        return False
    elicitation = caps.elicitation if caps is not None else None
    if elicitation is None:
        return False
    # An empty elicitation capability (older protocols) means form mode.
    return elicitation.form is not None or elicitation.url is None


def reach(ctx: Context | None) -> Reach | None:
    """How this call can ask the person now, or None where it cannot."""
    if ctx is None or not form_elicitation_declared(ctx):
        return None
    try:
        version = ctx.protocol_version or ""
        if is_version_at_least(version, NO_MIDCALL_REQUESTS_FROM):
            return Reach.INPUT_REQUIRED
        return Reach.IN_CALL if ctx.session.can_send_request else None
    except Exception as exc:  # no live session: nobody to reach through it
        log.debug("cannot tell how this call can ask: %r", exc)
        return None


def decision_of(action: str, content: dict[str, Any] | None) -> str:
    """The decision a form answer carries: anything but an accepted known decision is deny."""
    if action != "accept" or not content:
        return "deny"
    decision = content.get("decision")
    return decision if decision in DECISIONS else "deny"


class JobAsker:
    """The approval gate's asker for one agent-mode call, which runs as a job.

    Args:
        reachable: the client declared form elicitation, so a person can be asked through
            some later call if not this one; False makes every question :class:`NobodyToAsk`
            at once.
        timeout_s: how long a question waits for an answer (``--approval-timeout``).
    """

    def __init__(self, *, reachable: bool, timeout_s: float) -> None:
        self.reachable = reachable
        self.timeout_s = timeout_s
        self._job: Job | None = None
        self._why_nobody = ""

    def bind(self, job: Job) -> None:
        """The job the call runs as (set before the job asks anything)."""
        self._job = job

    def status(self, line: str) -> None:
        """The gate's progress line: to the job, which passes it to whoever follows it."""
        if self._job is not None:
            self._job.tell(line)

    @property
    def why_nobody(self) -> str:
        """Why the last question nobody answered went to the policy, for the result's note.

        Only a host that declared no form elicitation is told to use one that has it.
        """
        if self._why_nobody and not self.reachable:
            return self._why_nobody + "; to be asked instead, use a host that supports elicitation"
        return self._why_nobody

    async def __call__(self, request: ApprovalRequest) -> str:
        """Park ``request`` on the job and wait for the person's decision.

        Raises:
            NobodyToAsk: the host declared no form elicitation, or nobody answered within
                the approval timeout.
            AskFailed: the host's form failed.
        """
        job = self._job
        if job is None:  # bound before the job's work starts: a question cannot come sooner
            raise NobodyToAsk("the call asking was not running as a job")
        if not self.reachable:
            raise self._nobody(request, "this MCP host offers no form elicitation")
        question = job.park(request)
        try:
            with anyio.move_on_after(self.timeout_s) as waiting:
                await question.settled()
            if waiting.cancelled_caught:
                question.expire()
        finally:
            question.withdraw()  # no-op once settled; a call that ends takes its question
        if question.state is QuestionState.ANSWERED and question.decision is not None:
            return question.decision
        if question.state is QuestionState.FAILED:
            job.note(
                f"{request.tool} {request.target} was denied: the host's approval form failed "
                f"({question.failure})."
            )
            raise AskFailed(question.failure or "the form failed")
        raise self._nobody(
            request,
            f"nobody answered within the approval timeout of {self.timeout_s:g} s "
            "(--approval-timeout)",
        )

    def _nobody(self, request: ApprovalRequest, why: str) -> NobodyToAsk:
        self._why_nobody = why
        if self._job is not None:
            self._job.note(
                f"{request.tool} {request.target} needed your approval, but {why}; the approval "
                f"setting denied it. To allow it without asking, start lingma-mcp with "
                f"LINGMA_APPROVAL={request.action}=allow."
            )
        return NobodyToAsk(why)


async def ask_in_call(ctx: Any, question: Question, *, meta: dict[str, Any] | None = None) -> None:
    """Put ``question`` to the person by a form elicitation on this live call (protocols
    before 2026-07-28) and settle it with the answer.

    ``ctx`` is the call's context (a tool's, or a lower-level request's: only its
    ``session`` and ``request_id`` are used); ``meta`` goes in the request's ``_meta`` (a
    task's question names its task there).

    The form is abandoned if the question is settled meanwhile (it expired, or its call
    ended). A host that answers the form with an error, or whose form crashes, fails the
    question: that is recorded as the form failing, not as the person declining.
    """
    async with anyio.create_task_group() as tg:

        async def abandon_when_settled() -> None:
            await question.settled()
            tg.cancel_scope.cancel()

        tg.start_soon(abandon_when_settled)
        try:
            form = ElicitRequestFormParams(
                message=question.message, requested_schema=DECISION_SCHEMA, meta=meta
            )
            result = await ctx.session.send_request(
                ElicitRequest(params=form),
                ElicitResult,
                metadata=ServerMessageMetadata(related_request_id=ctx.request_id),
            )
        except MCPError as exc:
            log.info("the host's approval form failed: %s", exc.error.message)
            question.fail(f"the host answered the form with error {exc.error.code}")
        except Exception as exc:  # a crashed form, a connection gone mid-form
            log.info("the host's approval form failed: %r", exc)
            question.fail(f"the form could not be shown ({type(exc).__name__})")
        else:
            question.answer(decision_of(result.action, result.content))
        tg.cancel_scope.cancel()


async def follow_asking(
    ctx: Context | None,
    job: Job,
    within_s: float | None,
    flush: Callable[[], Awaitable[None]],
) -> Question | None:
    """Wait at most ``within_s`` (None: no bound) for ``job`` to finish, putting each of its
    questions to the person through this call (``ctx``) as they come.

    A question is never left waiting for the clock: one that waits when the time is up is
    still asked. ``flush`` sends the text relayed so far, so text Lingma wrote before a
    question reaches the client before the question does.

    Returns:
        A question this call must answer with an ``InputRequiredResult`` (2026-07-28), else
        None (the job finished, the time is up, or this call cannot ask).
    """
    how = reach(ctx)
    deadline = None if within_s is None else anyio.current_time() + within_s
    left = within_s
    while True:
        await job.wait(left, or_question=how is not None)
        question = job.question
        if job.finished or question is None or how is None:
            return None
        await flush()
        if how is Reach.INPUT_REQUIRED:
            return question
        assert ctx is not None
        await ask_in_call(ctx, question)
        if deadline is not None:
            left = deadline - anyio.current_time()

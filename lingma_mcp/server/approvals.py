"""Asking the person, through their host, whether Lingma may go ahead.

The approval gate (``lingma_mcp.workspace``) decides by policy and, where the policy says
``ask``, calls an *asker*: this module makes one from a tool call's MCP context. It sends a
form elicitation whose ``requestedSchema`` has one required string, ``decision``, with the
enum ``approve`` / ``approve_all`` / ``deny`` (names hosts and tests rely on). Declined,
cancelled or failed elicitations are a deny; nothing here ever says yes on its own.

Where the host cannot ask (no form elicitation, or a connection whose protocol has no
server-to-client requests mid-call, as on 2026-07-28), there is no asker: the gate then
turns ``ask`` into a deny and says how to allow it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import anyio
from mcp.server.mcpserver import Context

log = logging.getLogger(__name__)

DECISIONS = ("approve", "approve_all", "deny")

# The protocol from which a tool can no longer send requests in the middle of its call
# (its resolvers ask before the call, through InputRequiredResult, instead).
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


class ApprovalQuestion(Protocol):
    """What the gate asks about (the workspace's approval request)."""

    action: str
    tool: str
    target: str
    preview: str | None


Asker = Callable[[Any], Awaitable[str]]


def question_text(question: ApprovalQuestion) -> str:
    """The message the person reads: who wants to do what, where, and a preview."""
    verbs = {
        "read": "read",
        "write": "change",
        "delete": "delete",
        "run": "run",
    }
    verb = verbs.get(question.action, question.action)
    text = f"Lingma wants to {verb} {question.target} ({question.tool})."
    if question.preview:
        text += "\n\n" + question.preview
    return text


def host_can_ask(ctx: Context) -> bool:
    """Whether this call can put a form in front of the person right now."""
    try:
        caps = ctx.client_capabilities
        elicitation = caps.elicitation if caps is not None else None
        if elicitation is None:
            return False
        # An empty elicitation capability (older protocols) means form mode.
        if elicitation.form is None and elicitation.url is not None:
            return False
        version = ctx.protocol_version or ""
        if version >= NO_MIDCALL_REQUESTS_FROM:
            return False
        return bool(ctx.session.can_send_request)
    except Exception as exc:  # a context without a live session cannot ask
        log.debug("cannot tell whether the host can ask: %r", exc)
        return False


def host_asker(ctx: Context, *, timeout_s: float | None = None) -> Asker | None:
    """An asker that elicits through ``ctx``'s host, or None where the host cannot ask.

    The check is made again at each question: a call that outlived its request (a job
    that detached) can no longer ask, and its questions become denials.
    """
    if not host_can_ask(ctx):
        return None

    async def ask(question: Any) -> str:
        if not host_can_ask(ctx):
            return "deny"
        try:
            with anyio.fail_after(timeout_s):  # None: no bound but the call's own
                result = await ctx.session.elicit_form(
                    question_text(question), DECISION_SCHEMA, related_request_id=ctx.request_id
                )
        except Exception as exc:  # no answer is a no
            log.info("approval request failed, taken as deny: %r", exc)
            return "deny"
        if result.action != "accept" or not result.content:
            return "deny"
        decision = result.content.get("decision")
        return decision if decision in DECISIONS else "deny"

    return ask

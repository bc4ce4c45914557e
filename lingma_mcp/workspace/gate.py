"""The approval gate: one per call, deciding each action by the setting or by the person.

Plain data in (a class of action, a tool, a target, a preview), a decision out, and a
record of every decision. The person is reached through an *asker* port that the MCP face
implements with elicitation; the gate knows nothing of MCP. A call may narrow what the
server allows (``read_only``), never widen it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from .errors import ApprovalDenied
from .policy import ACTIONS, Policy

log = logging.getLogger("lingma_mcp.workspace.gate")

APPROVE = "approve"
APPROVE_ALL = "approve_all"
DENY = "deny"
ANSWERS: tuple[str, ...] = (APPROVE, APPROVE_ALL, DENY)

BY_POLICY = "policy"
BY_PERSON = "person"
BY_READ_ONLY = "read_only"
BY_CANNOT_ASK = "host cannot ask"
BY_NOBODY = "policy (nobody could be asked)"
BY_FORM_FAILED = "host form failed"

_CHANGING = ("write", "delete", "run")


class NobodyToAsk(Exception):
    """No person can be reached for this question now (the host offers no elicitation,
    or nobody came back for it within the approval timeout)."""


class AskFailed(Exception):
    """The host's form failed (an error answer, a crashed form): not the person declining."""


@dataclass(frozen=True)
class ApprovalRequest:
    """What the person is asked about."""

    action: str
    tool: str
    target: str
    preview: str | None = None

    @property
    def message(self) -> str:
        """A prompt naming the tool and its target, with the diff preview for a write."""
        verb = {
            "read": "read",
            "write": "change",
            "delete": "delete",
            "run": "run",
        }.get(self.action, self.action)
        text = f"Lingma wants to {verb} {self.target} ({self.tool})."
        if self.preview:
            text += "\n\n" + self.preview
        return text


Asker = Callable[[ApprovalRequest], Awaitable[str]]
NoteSink = Callable[[str], None]


@dataclass(frozen=True)
class ApprovalRecord:
    """One decision, as the call's result lists it."""

    action: str
    tool: str
    target: str
    decision: str  # "allowed" | "denied"
    by: str  # "policy" | "person" | "read_only" | "host cannot ask"

    def as_dict(self) -> dict[str, str]:
        return {"tool": self.tool, "target": self.target, "decision": self.decision, "by": self.by}


class ApprovalGate:
    """Decides the actions of one call.

    Args:
        policy: the server's setting.
        read_only: deny write, delete and run whatever the setting says.
        asker: asks the person and returns ``approve``, ``approve_all`` or ``deny``;
            ``None`` when the host cannot ask, which turns every ``ask`` into a deny whose
            text says how to allow it.
        on_note: receives one line per decision and per change, for progress.
    """

    def __init__(
        self,
        policy: Policy,
        *,
        read_only: bool = False,
        asker: Asker | None = None,
        on_note: NoteSink | None = None,
    ) -> None:
        self.policy = policy
        self.read_only = read_only
        self._asker = asker
        self._on_note = on_note
        self._approved_all: set[str] = set()
        self._records: list[ApprovalRecord] = []

    @property
    def records(self) -> list[ApprovalRecord]:
        return list(self._records)

    def note(self, text: str) -> None:
        """Pass a progress line on; a failing sink never fails the action."""
        if self._on_note is None:
            return
        try:
            self._on_note(text)
        except Exception:
            log.exception("progress note sink failed")

    async def require(
        self, action: str, tool: str, target: str, preview: str | None = None
    ) -> None:
        """Decide, and raise when denied.

        Raises:
            ApprovalDenied: with a message the agent can read (and that says how to allow
                it when a setting would).
            ValueError: ``action`` is not one of the four classes.
        """
        if action not in ACTIONS:
            raise ValueError(f"unknown class of action {action!r}; known: {', '.join(ACTIONS)}")
        if self.read_only and action in _CHANGING:
            self._record(action, tool, target, allowed=False, by=BY_READ_ONLY)
            raise ApprovalDenied(
                f"{tool} on {target} was denied: this call is read-only, so nothing may be "
                "written, deleted or run; ask again without read_only to allow changes",
                action=action,
                tool=tool,
                target=target,
                by=BY_READ_ONLY,
            )
        decision = self.policy.decision(action)
        if decision == "allow":
            self._record(action, tool, target, allowed=True, by=BY_POLICY)
            return
        if decision == "deny":
            self._record(action, tool, target, allowed=False, by=BY_POLICY)
            raise ApprovalDenied(
                f"{tool} on {target} was denied by the server's approval setting "
                f"({action}=deny); to allow it, set LINGMA_APPROVAL={action}=ask "
                f"(or {action}=allow) when starting lingma-mcp",
                action=action,
                tool=tool,
                target=target,
                by=BY_POLICY,
            )
        if action in self._approved_all:
            self._record(action, tool, target, allowed=True, by=BY_PERSON)
            return
        if self._asker is None:
            self._record(action, tool, target, allowed=False, by=BY_CANNOT_ASK)
            raise ApprovalDenied(
                f"{tool} on {target} needs the person's approval, but this MCP host cannot "
                f"ask; to allow it without asking, set LINGMA_APPROVAL={action}=allow "
                f"(or pass --approval {action}=allow) when starting lingma-mcp",
                action=action,
                tool=tool,
                target=target,
                by=BY_CANNOT_ASK,
            )
        try:
            answer = await self._ask(ApprovalRequest(action, tool, target, preview))
        except NobodyToAsk as exc:
            # The policy's fallback for "ask" is deny: fail closed.
            self._record(action, tool, target, allowed=False, by=BY_NOBODY)
            raise ApprovalDenied(
                f"{tool} on {target} needs the person's approval, but nobody could be asked; "
                f"to allow it without asking, set LINGMA_APPROVAL={action}=allow (or pass "
                f"--approval {action}=allow) when starting lingma-mcp ({exc})",
                action=action,
                tool=tool,
                target=target,
                by=BY_NOBODY,
            ) from None
        except AskFailed as exc:
            self._record(action, tool, target, allowed=False, by=BY_FORM_FAILED)
            raise ApprovalDenied(
                f"{tool} on {target} was not done: the host's approval form failed ({exc}), "
                "so nobody approved it; it may be asked again",
                action=action,
                tool=tool,
                target=target,
                by=BY_FORM_FAILED,
            ) from None
        if answer == APPROVE_ALL:
            self._approved_all.add(action)
        if answer in (APPROVE, APPROVE_ALL):
            self._record(action, tool, target, allowed=True, by=BY_PERSON)
            return
        self._record(action, tool, target, allowed=False, by=BY_PERSON)
        raise ApprovalDenied(
            f"the person declined {tool} on {target}; do not try it again in another way, "
            "and say what you would have changed instead",
            action=action,
            tool=tool,
            target=target,
            by=BY_PERSON,
        )

    async def decide(self, action: str, tool: str, target: str, preview: str | None = None) -> bool:
        """Like :meth:`require`, as a boolean (the denial is still recorded)."""
        try:
            await self.require(action, tool, target, preview)
        except ApprovalDenied:
            return False
        return True

    async def _ask(self, request: ApprovalRequest) -> str:
        assert self._asker is not None
        try:
            answer = await self._asker(request)
        except asyncio.CancelledError:
            # Our own task being cancelled means the call is ending: deny, and let the
            # cancellation go on. An asker that was cancelled on its own side is a deny.
            task = asyncio.current_task()
            cancelling = getattr(task, "cancelling", None)  # Python 3.11+
            if cancelling is None or cancelling():
                self._record(request.action, request.tool, request.target, False, BY_PERSON)
                raise
            return DENY
        except (NobodyToAsk, AskFailed):
            raise  # recorded by require() as what they are, not as the person's no
        except Exception:
            log.warning("asking the person about %s failed; denying", request.tool, exc_info=True)
            return DENY
        return answer if answer in ANSWERS else DENY

    def _record(self, action: str, tool: str, target: str, allowed: bool, by: str) -> None:
        record = ApprovalRecord(action, tool, target, "allowed" if allowed else "denied", by)
        self._records.append(record)
        if allowed and by == BY_POLICY and action == "read":
            return  # routine reads are recorded, not announced: progress stays readable
        who = {
            BY_POLICY: "by the approval setting",
            BY_PERSON: "by the person",
            BY_READ_ONLY: "(read-only call)",
            BY_CANNOT_ASK: "(this host cannot ask)",
            BY_NOBODY: "by the approval setting (nobody could be asked)",
            BY_FORM_FAILED: "(the host's approval form failed)",
        }[by]
        self.note(f"{record.decision} {tool} {target} {who}")

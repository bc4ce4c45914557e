"""The approval gate: one per call, deciding each action by the setting or by the person.

Plain data in (a class of action, a tool, a target, a preview), a decision out, and a
record of every decision. The person is reached through an *asker* port that the MCP face
implements (elicitation, a parked question, a terminal prompt); the gate knows nothing of
MCP. A call may narrow what the server allows (``read_only``), never widen it.

What the gate guarantees, whatever the asker does:

- **Fail closed.** A target outside the workspace is refused before any question
  (:meth:`ApprovalGate.refuse_outside`, recorded ``by: confinement``). An action whose target
  is unknown, or that touches a protected folder (``.git``, the work dir), is never allowed
  by the setting alone: it is asked with a warning, and denied where nobody can be asked.
- **One question at a time per server.** Every gate of a server shares one
  :class:`ApprovalDesk`; questions wait their turn in arrival order. An ``approve_all``
  answered for one question settles the waiting questions of the same call and class
  (``approve_all`` covers this call only).
- **A question cannot outlive its call.** :meth:`ApprovalGate.close` withdraws a question
  being asked or waiting, and every decision after it is a denial; callers re-check
  :attr:`ApprovalGate.live` after an answer, before acting.
- **Nobody is recorded as having decided who did not.** An asker that cannot reach anyone
  raises :class:`NobodyToAsk` (recorded ``by: "policy (nobody could be asked)"``, denied:
  the setting's fallback for ``ask``); a host whose form fails raises :class:`AskFailed`
  (recorded as that, not as the person declining).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from .policy import ACTIONS, Policy
from .workspace_errors import ApprovalDenied, OutsideWorkspace

log = logging.getLogger("lingma_mcp.workspace.gate")

APPROVE = "approve"
APPROVE_ALL = "approve_all"
DENY = "deny"
ANSWERS: tuple[str, ...] = (APPROVE, APPROVE_ALL, DENY)

# Who decided, as the call's result lists it (``approvals[].by``: a contract).
BY_POLICY = "policy"
BY_PERSON = "person"
BY_READ_ONLY = "read_only"
BY_CONFINEMENT = "confinement"
BY_NOBODY = "policy (nobody could be asked)"
BY_FORM_FAILED = "host form failed"
BY_WITHDRAWN = "withdrawn (the call ended)"
BY_VALUES: tuple[str, ...] = (
    BY_POLICY,
    BY_PERSON,
    BY_READ_ONLY,
    BY_CONFINEMENT,
    BY_NOBODY,
    BY_FORM_FAILED,
    BY_WITHDRAWN,
)
# Kept for callers that name the old constant: a host that cannot ask is now "nobody".
BY_CANNOT_ASK = BY_NOBODY

_CHANGING = ("write", "delete", "run")
_VERBS = {"read": "read", "write": "change", "delete": "delete", "run": "run"}

# What a question shows of one text (a target, a preview): long texts are cut with a count.
TARGET_CHARS = 500
PREVIEW_CHARS = 6000

UNKNOWN_TARGET_WARNING = (
    "Lingma did not say which file this would touch: check the details before approving."
)


class NobodyToAsk(Exception):
    """No person can be reached for this question now (the host offers no elicitation,
    or nobody came back for it within the approval timeout)."""


class AskFailed(Exception):
    """The host's form failed (an error answer, a crashed form): not the person declining."""


def visible(text: str, limit: int) -> str:
    """``text`` as a person may safely read it: control characters and escapes shown as
    escapes (never interpreted by a terminal or a form), cut at ``limit`` with a count.

    Newlines and tabs stay: a diff or a multi-line command must stay readable.
    """
    out: list[str] = []
    for ch in text:
        code = ord(ch)
        if ch in "\n\t":
            out.append(ch)
        elif code < 0x20 or code == 0x7F or 0x80 <= code < 0xA0:
            out.append(f"\\x{code:02x}")
        elif code in (0x200E, 0x200F, 0x2028, 0x2029) or 0x202A <= code <= 0x202E:
            out.append(f"\\u{code:04x}")  # direction overrides can disguise a command
        elif 0x2066 <= code <= 0x2069:
            out.append(f"\\u{code:04x}")
        else:
            out.append(ch)
    shown = "".join(out)
    if len(shown) > limit:
        cut = len(shown) - limit
        shown = f"{shown[:limit]}… ({cut:,} more characters not shown)"
    return shown


@dataclass(frozen=True)
class ApprovalRequest:
    """What the person is asked about."""

    action: str
    tool: str
    target: str
    preview: str | None = None
    warning: str | None = None  # shown first: an unknown target, a protected folder

    @property
    def message(self) -> str:
        """The whole question: who wants to do what, where, a warning, and the preview.

        Every part passes :func:`visible`, so what the person reads is what the agent sent.
        """
        verb = _VERBS.get(self.action, self.action)
        text = (
            f"Lingma wants to {verb} {visible(self.target, TARGET_CHARS)} "
            f"({visible(self.tool, 80)})."
        )
        if self.warning:
            text += "\n\n⚠ " + visible(self.warning, TARGET_CHARS)
        if self.preview:
            text += "\n\n" + visible(self.preview, PREVIEW_CHARS)
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
    by: str  # one of BY_VALUES

    def as_dict(self) -> dict[str, str]:
        return {"tool": self.tool, "target": self.target, "decision": self.decision, "by": self.by}


class ApprovalDesk:
    """The server's one place where the person is asked: one question at a time.

    ``asyncio.Lock`` wakes waiters in arrival order, so questions are asked in the order
    they came. One desk per server (every call's gate shares it); a gate made without one
    gets its own, which is the same thing for a lone call.
    """

    def __init__(self) -> None:
        self._lock = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        async with self._lock:
            yield


class ApprovalGate:
    """Decides the actions of one call.

    Args:
        policy: the server's setting.
        read_only: deny write, delete and run whatever the setting says.
        asker: asks the person and returns ``approve``, ``approve_all`` or ``deny``, or raises
            :class:`NobodyToAsk` / :class:`AskFailed`; ``None`` when nobody can be asked at
            all, which turns every ``ask`` into the fallback's deny with a text that says how
            to allow it.
        on_note: receives one line per decision and per change, for progress.
        desk: the server's :class:`ApprovalDesk` (one question at a time across calls).
    """

    def __init__(
        self,
        policy: Policy,
        *,
        read_only: bool = False,
        asker: Asker | None = None,
        on_note: NoteSink | None = None,
        desk: ApprovalDesk | None = None,
    ) -> None:
        self.policy = policy
        self.read_only = read_only
        self._asker = asker
        self._on_note = on_note
        self._desk = desk if desk is not None else ApprovalDesk()
        self._approved_all: set[str] = set()
        self._records: list[ApprovalRecord] = []
        self._closed = asyncio.Event()

    @property
    def records(self) -> list[ApprovalRecord]:
        return list(self._records)

    @property
    def live(self) -> bool:
        """False once the call has ended: nothing may be done for it any more."""
        return not self._closed.is_set()

    def close(self) -> None:
        """The call ended: withdraw open questions; every later decision is a denial."""
        self._closed.set()

    def note(self, text: str) -> None:
        """Pass a progress line on; a failing sink never fails the action."""
        if self._on_note is None:
            return
        try:
            self._on_note(text)
        except Exception:
            log.exception("progress note sink failed")

    # -- deciding ----------------------------------------------------------------------

    def refuse_outside(self, action: str, tool: str, target: str, reason: str) -> None:
        """Record a refusal by confinement and raise it; nobody is asked.

        Raises:
            OutsideWorkspace: always, with ``reason`` (the confinement decision's text).
        """
        self._record(action, tool, target, allowed=False, by=BY_CONFINEMENT)
        raise OutsideWorkspace(reason)

    async def require(
        self,
        action: str,
        tool: str,
        target: str,
        preview: str | None = None,
        *,
        warning: str | None = None,
    ) -> None:
        """Decide, and raise when denied.

        Args:
            warning: set for an action the setting alone may never allow (an unknown target,
                a protected folder): it is asked with this warning even where the setting
                says ``allow``, and ``approve_all`` does not cover it.

        Raises:
            ApprovalDenied: with a message the agent can read (and that says how to allow it
                when a setting would).
            ValueError: ``action`` is not one of the four classes.
        """
        if action not in ACTIONS:
            raise ValueError(f"unknown class of action {action!r}; known: {', '.join(ACTIONS)}")
        if not self.live:
            self._withdrawn(action, tool, target)
        if self.read_only and action in _CHANGING:
            self._deny(
                action,
                tool,
                target,
                BY_READ_ONLY,
                f"{tool} on {target} was denied: this call is read-only, so nothing may be "
                "written, deleted or run; ask again without read_only to allow changes",
            )
        decision = self.policy.decision(action)
        if decision == "deny":
            self._deny(
                action,
                tool,
                target,
                BY_POLICY,
                f"{tool} on {target} was denied by the server's approval setting "
                f"({action}=deny); to allow it, set LINGMA_APPROVAL={action}=ask "
                f"(or {action}=allow) when starting lingma-mcp",
            )
        if decision == "allow" and warning is None:
            self._record(action, tool, target, allowed=True, by=BY_POLICY)
            return
        if warning is None and action in self._approved_all:
            self._record(action, tool, target, allowed=True, by=BY_PERSON)
            return
        request = ApprovalRequest(action, tool, target, preview, warning)
        answer = await self._ask_in_turn(request)
        if not self.live:
            self._withdrawn(action, tool, target)
        if answer == APPROVE_ALL and warning is None:
            self._approved_all.add(action)
        if answer in (APPROVE, APPROVE_ALL):
            self._record(action, tool, target, allowed=True, by=BY_PERSON)
            return
        self._deny(
            action,
            tool,
            target,
            BY_PERSON,
            f"the person declined {tool} on {target}; do not try it again in another way, "
            "and say what you would have changed instead",
        )

    async def decide(
        self,
        action: str,
        tool: str,
        target: str,
        preview: str | None = None,
        *,
        warning: str | None = None,
    ) -> bool:
        """Like :meth:`require`, as a boolean (the denial is still recorded)."""
        try:
            await self.require(action, tool, target, preview, warning=warning)
        except ApprovalDenied:
            return False
        return True

    # -- asking ------------------------------------------------------------------------

    async def _ask_in_turn(self, request: ApprovalRequest) -> str:
        """Wait for the desk, then ask; every way of not getting an answer is handled here."""
        if self._asker is None:
            self._nobody(request)
        async with self._desk.turn():
            # Settled while waiting: an approve_all for this class, or the call ended.
            if not self.live:
                self._withdrawn(request.action, request.tool, request.target)
            if request.warning is None and request.action in self._approved_all:
                return APPROVE
            return await self._ask(request)

    async def _ask(self, request: ApprovalRequest) -> str:
        assert self._asker is not None
        asking = asyncio.ensure_future(self._asker(request))
        ended = asyncio.ensure_future(self._closed.wait())
        try:
            await asyncio.wait({asking, ended}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            # Our own task is being cancelled: the call is ending. Withdraw the question
            # (the form must not stay open) and let the cancellation go on.
            asking.cancel()
            self._record(request.action, request.tool, request.target, False, BY_WITHDRAWN)
            raise
        finally:
            ended.cancel()
        if not asking.done():
            asking.cancel()
            with contextlib.suppress(BaseException):
                await asking
            self._withdrawn(request.action, request.tool, request.target)
        try:
            answer = asking.result()
        except NobodyToAsk as exc:
            self._nobody(request, str(exc))
        except AskFailed as exc:
            log.warning("the host's approval form failed for %s: %s", request.tool, exc)
            self._deny(
                request.action,
                request.tool,
                request.target,
                BY_FORM_FAILED,
                f"{request.tool} on {request.target} was not done: the host's approval form "
                f"failed ({exc}), so nobody could approve it; nothing was changed",
            )
        except asyncio.CancelledError:
            # The asker's own side was cancelled (a form closed): nobody said yes.
            return DENY
        except Exception as exc:
            log.warning("asking about %s failed; denying", request.tool, exc_info=True)
            self._deny(
                request.action,
                request.tool,
                request.target,
                BY_FORM_FAILED,
                f"{request.tool} on {request.target} was not done: asking the person failed "
                f"({type(exc).__name__}); nothing was changed",
            )
        return answer if answer in ANSWERS else DENY

    # -- records -----------------------------------------------------------------------

    def _nobody(self, request: ApprovalRequest, why: str = "") -> None:
        action, tool, target = request.action, request.tool, request.target
        why = f" ({why})" if why else ""
        if request.warning is not None:
            how = (
                "it needs the person's approval whatever the setting says "
                f"({request.warning.rstrip('.')}), and nobody could be asked; use a host that "
                "shows approval questions, or check the job with check_lingma_job while it waits"
            )
        else:
            how = (
                "it needs the person's approval and nobody could be asked; to allow it "
                f"without asking, set LINGMA_APPROVAL={action}=allow (or pass --approval "
                f"{action}=allow) when starting lingma-mcp"
            )
        self._deny(action, tool, target, BY_NOBODY, f"{tool} on {target} was denied: {how}{why}")

    def _withdrawn(self, action: str, tool: str, target: str) -> None:
        self._deny(
            action,
            tool,
            target,
            BY_WITHDRAWN,
            f"{tool} on {target} was not done: the call it belonged to has ended",
        )

    def _deny(self, action: str, tool: str, target: str, by: str, message: str) -> None:
        self._record(action, tool, target, allowed=False, by=by)
        raise ApprovalDenied(message, action=action, tool=tool, target=target, by=by)

    def _record(self, action: str, tool: str, target: str, allowed: bool, by: str) -> None:
        record = ApprovalRecord(
            action, tool, visible(target, TARGET_CHARS), "allowed" if allowed else "denied", by
        )
        self._records.append(record)
        if allowed and by == BY_POLICY and action == "read":
            return  # routine reads are recorded, not announced: progress stays readable
        who = {
            BY_POLICY: "by the approval setting",
            BY_PERSON: "by the person",
            BY_READ_ONLY: "(read-only call)",
            BY_CONFINEMENT: "(outside the workspace)",
            BY_NOBODY: "(nobody could be asked)",
            BY_FORM_FAILED: "(the host's form failed)",
            BY_WITHDRAWN: "(the call ended)",
        }[by]
        self.note(f"{record.decision} {visible(tool, 80)} {record.target} {who}")

"""Agent mode at the MCP face: each call's workspace, approval gate, host and record.

An agent-mode ``ask_lingma`` lets Lingma read, write, delete and run inside one folder.
This module sets that up per call and takes it down again: it checks the folder against
what the server may serve (the host's roots, else ``--workspace``), makes the call's
:class:`~lingma_mcp.workspace.ApprovalGate` (the server's setting, the call's
``read_only``, the person reached through :mod:`.approvals`), its
:class:`~lingma_mcp.workspace.WorkspaceHost` recording into the server's
:class:`~lingma_mcp.workspace.ChangeJournal`, which the chat request carries to the
backend. The work itself belongs to the workspace package; MCP's side of asking belongs
to :mod:`.approvals`.
"""

from __future__ import annotations

import logging
import os
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from urllib.request import url2pathname

import anyio
from mcp.server.mcpserver import Context

from ..config import Settings
from ..workspace import (
    ACTIONS,
    ApprovalGate,
    Asker,
    ChangeJournal,
    WorkspaceError,
    WorkspaceHost,
    check_workspace,
    parse_policy,
)
from ..workspace.gate import BY_NOBODY, ApprovalDesk

log = logging.getLogger(__name__)

ROOTS_TIMEOUT_S = 5.0
# Ended calls whose approvals are kept for the review (in memory only, like the calls).
KEPT_APPROVALS = 100
# How long closing a call may take (killing its commands' process groups).
CLOSE_GRACE_S = 5.0


# -- the call's workspace ----------------------------------------------------------------


def _path_from_uri(uri: str) -> Path | None:
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        return None
    return Path(url2pathname(parsed.path))  # url2pathname also percent-decodes


async def host_roots(ctx: Context) -> list[Path]:
    """Every folder the host offers as a root (existing ones), or ``[]`` without roots."""
    try:
        caps = ctx.client_capabilities
        if caps is None or caps.roots is None or not ctx.session.can_send_request:
            return []
        with anyio.fail_after(ROOTS_TIMEOUT_S), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # roots are deprecated in the newest protocol
            result = await ctx.session.list_roots()
    except Exception as exc:  # a host without working roots falls back to --workspace
        log.debug("roots/list failed, using --workspace: %r", exc)
        return []
    roots = [_path_from_uri(str(root.uri)) for root in result.roots]
    return [p for p in roots if p is not None and p.is_dir()]


async def call_workspace(ctx: Context, requested: str | None, default: Path) -> tuple[Path, bool]:
    """The call's workspace and whether it came from the host's roots.

    Without ``requested``: the host's first root, else ``default`` (``--workspace``). With
    it: that folder (relative to the first allowed folder), which must lie inside one of
    the host's roots when the host offers roots, else inside ``default``.

    Raises:
        WorkspaceNotAllowed: ``requested`` lies outside every allowed folder (the message
            names them).
        WorkspaceError: ``requested`` does not exist or is not a folder.
    """
    roots = await host_roots(ctx)
    if requested is None or not requested.strip():
        return (roots[0], True) if roots else (default, False)
    return _checked(requested, roots or [default]), False


def _checked(requested: str, allowed: list[Path]) -> Path:
    try:
        candidate = Path(requested).expanduser()
    except RuntimeError:  # "~nosuchuser": no such user to expand
        raise WorkspaceError(
            f"{requested!r} starts with '~' but names no user on this machine"
        ) from None
    if not candidate.is_absolute():
        candidate = allowed[0] / candidate
    return check_workspace(candidate, allowed)


# -- one call ----------------------------------------------------------------------------


class AgentCall:
    """One agent-mode call: its request id, host, changes and approvals.

    Made by :meth:`AgentCalls.begin`; :meth:`close` (idempotent) ends it and kills every
    command it started.
    """

    def __init__(
        self,
        owner: AgentCalls,
        request_id: str,
        host: WorkspaceHost,
        why_nobody: Callable[[], str] | None = None,
    ) -> None:
        self._owner = owner
        self.request_id = request_id
        self.host = host
        self._why_nobody = why_nobody

    def request_fields(self) -> dict[str, Any]:
        """What the chat request carries: the request id the journal knows, the host."""
        return {"request_id": self.request_id, "host": self.host}

    def result_fields(self) -> dict[str, Any]:
        """What the call's result lists: ``changes`` and ``approvals``."""
        return {"changes": self.host.changes, "approvals": self.host.approvals}

    def result_note(self) -> str:
        """Text for the call's result when nobody could be asked, saying how to allow.

        Empty when nothing was denied for that reason. Why nobody could be asked comes from
        the asker: only a host without form elicitation is told to use one that has it.
        """
        records = [r for r in self.host.gate.records if r.by == BY_NOBODY]
        if not records:
            return ""
        classes = [a for a in ACTIONS if any(r.action == a for r in records)]
        setting = ",".join(f"{a}=allow" for a in classes)
        denied = "; ".join(f"{r.tool} {r.target}" for r in records[:5])
        more = f" and {len(records) - 5} more" if len(records) > 5 else ""
        why = (self._why_nobody() if self._why_nobody is not None else "") or (
            "nobody could be asked"
        )
        return (
            f"{len(records)} action(s) needed the person's approval, but {why}; the approval "
            f"setting denied them: {denied}{more}. To allow them without asking, start "
            f"lingma-mcp with LINGMA_APPROVAL={setting} (or --approval {setting})."
        )

    def error_note(self) -> str:
        """For a call that failed after changing files: which, and how to undo them."""
        changes = self.host.changes
        if not changes:
            return ""
        names = ", ".join(f"{c['path']} ({c['action']})" for c in changes[:10])
        more = f" and {len(changes) - 10} more" if len(changes) > 10 else ""
        return (
            f"Before it ended, this call changed {names}{more}. See the diff at "
            f"lingma://changes/{self.request_id}; undo with revert_changes(request_id="
            f'"{self.request_id}").'
        )

    async def close(self) -> None:
        """End the call: kill its commands (whole process groups). Idempotent."""
        try:
            await self.host.close()
        finally:
            self._owner._live.pop(self.request_id, None)
            self._owner._keep_approvals(self.request_id, self.host.approvals)


class AgentCalls:
    """Agent mode for one server: the setting, the journal and the calls in flight.

    Args:
        settings: ``approval`` (checked here: a malformed setting raises ``ValueError``
            with the syntax), ``command_timeout`` and the work dir (the journal lives in
            its ``changes`` folder, opened on first use).
    """

    def __init__(self, settings: Settings) -> None:
        self.policy = parse_policy(settings.approval)
        self.command_timeout = settings.command_timeout
        # The shared work dir, not this server's instance folder: a restarted server (in
        # whichever slot) finds the calls made before.
        self.work_dir = settings.resolved_work_dir
        self._journal: ChangeJournal | None = None
        self._live: dict[str, AgentCall] = {}
        self._approvals: dict[str, list[dict[str, str]]] = {}  # of ended calls, oldest first
        # One question to the person at a time, across every call of this server.
        self.desk = ApprovalDesk()

    @property
    def journal(self) -> ChangeJournal:
        """The change journal, opened (and its records read from disk) on first use."""
        if self._journal is None:
            self._journal = ChangeJournal(self.work_dir)
        return self._journal

    def is_running(self, request_id: str) -> bool:
        return request_id in self._live

    def approvals(self, request_id: str) -> list[dict[str, str]] | None:
        """The approvals of a call running or ended in this process (the last 100 ended);
        None where this server does not know them."""
        call = self._live.get(request_id)
        return call.host.approvals if call is not None else self._approvals.get(request_id)

    def _keep_approvals(self, request_id: str, approvals: list[dict[str, str]]) -> None:
        self._approvals[request_id] = approvals
        while len(self._approvals) > KEPT_APPROVALS:
            del self._approvals[next(iter(self._approvals))]

    def begin(
        self,
        root: Path,
        *,
        read_only: bool = False,
        asker: Asker | None = None,
        on_note: Callable[[str], None] | None = None,
        why_nobody: Callable[[], str] | None = None,
    ) -> AgentCall:
        """Set up one call in ``root`` (already checked with :func:`call_workspace`).

        ``why_nobody`` says, for the result's note, why questions that nobody answered
        went to the policy (the asker knows: no elicitation, or the approval timeout).
        """
        request_id = str(uuid.uuid4())
        gate = ApprovalGate(
            self.policy, read_only=read_only, asker=asker, on_note=on_note, desk=self.desk
        )
        record = self.journal.begin(request_id, Path(os.path.realpath(root)))
        host = WorkspaceHost(
            root,
            gate,
            record,
            command_timeout=self.command_timeout,
            guarded=(self.work_dir,),
        )
        call = AgentCall(self, request_id, host, why_nobody)
        self._live[request_id] = call
        return call

    async def close(self) -> None:
        """The server is stopping: end every call still in flight."""
        for call in list(self._live.values()):
            with anyio.move_on_after(CLOSE_GRACE_S, shield=True):
                await call.close()

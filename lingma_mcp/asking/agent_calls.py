"""Agent mode per call: its approval gate, workspace host and change record.

An agent-mode question lets Lingma read, write, delete and run inside one folder. This
module sets that up per call and takes it down again: it makes the call's
:class:`~lingma_mcp.workspace.ApprovalGate` (the server's setting, the call's
``read_only``, the person reached through the asker the caller brings), its
:class:`~lingma_mcp.workspace.WorkspaceHost` recording into the server's
:class:`~lingma_mcp.workspace.ChangeJournal`, which the chat request carries to the
backend. The folder comes checked (the MCP face checks it against the host's roots); the
work itself belongs to the workspace package; how the person is asked belongs to whoever
brings the asker (the MCP face, or the terminal).
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio

from ..config import Settings
from ..workspace import (
    ACTIONS,
    ApprovalGate,
    Asker,
    ChangeJournal,
    WorkspaceHost,
    parse_policy,
)
from ..workspace.gate import BY_NOBODY, ApprovalDesk

log = logging.getLogger(__name__)

# How long closing a call may take (killing its commands' process groups).
CLOSE_GRACE_S = 5.0


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

    def begin(
        self,
        root: Path,
        *,
        read_only: bool = False,
        asker: Asker | None = None,
        on_note: Callable[[str], None] | None = None,
        why_nobody: Callable[[], str] | None = None,
    ) -> AgentCall:
        """Set up one call in ``root`` (already checked: the face checks it against the roots).

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

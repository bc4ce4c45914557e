"""Agent mode per call: its approval gate, workspace host and change record.

An agent-mode question lets Lingma read, write, delete and run inside one folder. This
module sets that up per call and takes it down again: it makes the call's
:class:`~lingma_mcp.workspace.ApprovalGate` (the server's setting, the call's
``read_only``, the person reached through the asker the caller brings), its
:class:`~lingma_mcp.workspace.WorkspaceHost` (sandboxed commands), which the chat
request carries to the backend, and its record of changes
(:class:`~lingma_mcp.workspace.recording.CallRecording`: checkpoints, else the journal).
The folder comes checked (the MCP face checks it against the host's roots); the work
itself belongs to the workspace package; how the person is asked belongs to whoever
brings the asker (the MCP face, or the terminal).
"""

from __future__ import annotations

import logging
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
    WorkspaceHost,
    parse_policy,
)
from ..workspace.gate import BY_NOBODY, ApprovalDesk
from ..workspace.recording import CallRecording, ChangeRecords
from ..workspace.sandbox import command_spec

log = logging.getLogger(__name__)

ROOTS_TIMEOUT_S = 5.0
# Ended calls whose approvals are kept for the review (in memory only, like the calls).
KEPT_APPROVALS = 100
# How long closing a call may take (killing its commands' process groups).
CLOSE_GRACE_S = 5.0


# -- one call ----------------------------------------------------------------------------


class AgentCall:
    """One agent-mode call: its request id, host, record of changes and approvals.

    Made by :meth:`AgentCalls.begin`. The asking service calls :meth:`open` before Lingma
    starts (the record's first snapshot), :meth:`observe` with each chat event, then
    :meth:`close` (idempotent: kills every command it started) and :meth:`finish` (the last
    snapshot) however the call ends.
    """

    def __init__(
        self,
        owner: AgentCalls,
        request_id: str,
        host: WorkspaceHost,
        why_nobody: Callable[[], str] | None = None,
        *,
        read_only: bool = False,
    ) -> None:
        self._owner = owner
        self.request_id = request_id
        self.host = host
        self.read_only = read_only
        self.recording: CallRecording | None = None
        self._why_nobody = why_nobody

    def request_fields(self) -> dict[str, Any]:
        """What the chat request carries: the request id the record knows, the host."""
        return {"request_id": self.request_id, "host": self.host}

    async def open(self) -> None:
        """Start the call's record of changes: the snapshot before Lingma acts.

        A second call that may change the same workspace waits here for the first (the
        changes of two calls at once could not be told apart), saying so.
        """
        if self.recording is not None:
            return
        self.recording = await self._owner.records.begin(
            self.request_id,
            self.host.root,
            read_only=self.read_only,
            on_wait=self.host.gate.note,
        )
        self.host.record_into(self.recording)

    def observe(self, event: object) -> None:
        """A chat event: an ended tool call is where the record attributes changes."""
        if self.recording is not None:
            self.recording.observe(event)

    def ran(self, command: str) -> None:
        """A command the workspace host ran has ended (the record attributes to it)."""
        if self.recording is not None:
            self.recording.ran(command)

    @property
    def changes(self) -> list[dict[str, Any]]:
        if self.recording is not None:
            return self.recording.changes()
        return self.host.changes

    def result_fields(self) -> dict[str, Any]:
        """What the call's result lists: ``changes`` and ``approvals``."""
        return {"changes": self.changes, "approvals": self.host.approvals}

    def result_note(self) -> str:
        """Text for the call's result: actions denied because nobody could be asked (and
        how to allow them), and what the record of changes could not see."""
        notes = [self._nobody_note()]
        if self.recording is not None:
            notes.append(self.recording.note)
        return " ".join(n for n in notes if n)

    def _nobody_note(self) -> str:
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
        changes = self.changes
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

    async def finish(self) -> None:
        """The record's last snapshot, once the commands are gone. Idempotent; call it
        shielded: a cancelled call's record must still be completed."""
        if self.recording is not None:
            await self.recording.finish()


class AgentCalls:
    """Agent mode for one server: the setting, the records of changes, the calls in flight.

    Args:
        settings: ``approval`` (checked here: a malformed setting raises ``ValueError``
            with the syntax), ``command_timeout``, the sandbox and the work dir (where the
            records of changes live: checkpoints, and the journal where git is missing).
    """

    def __init__(self, settings: Settings) -> None:
        # Where no sandbox can confine commands, run= defaults to deny (config.py).
        self.policy = parse_policy(settings.effective_approval())
        self.run_note = settings.run_refusal_note()
        self.command_timeout = settings.command_timeout
        # The shared work dir, not this server's instance folder: a restarted server (in
        # whichever slot) finds the calls made before.
        self.work_dir = settings.resolved_work_dir
        self.sandbox_mode = settings.sandbox_mode
        self.sandbox_network = settings.sandbox_network
        self.command_env = settings.command_env
        self.records = ChangeRecords(
            self.work_dir, max_file_bytes=int(settings.checkpoint_max_file_mb * 2**20)
        )
        self._live: dict[str, AgentCall] = {}
        self._approvals: dict[str, list[dict[str, str]]] = {}  # of ended calls, oldest first
        # One question to the person at a time, across every call of this server.
        self.desk = ApprovalDesk()

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
        """Set up one call in ``root`` (already checked: the face checks it against the roots).

        ``why_nobody`` says, for the result's note, why questions that nobody answered
        went to the policy (the asker knows: no elicitation, or the approval timeout).
        The record of changes starts later, in :meth:`AgentCall.open`, inside the ask.
        """
        request_id = str(uuid.uuid4())
        gate = ApprovalGate(
            self.policy, read_only=read_only, asker=asker, on_note=on_note, desk=self.desk
        )
        calls: list[AgentCall] = []
        host = WorkspaceHost(
            root,
            gate,
            command_timeout=self.command_timeout,
            guarded=(self.work_dir,),
            sandbox=command_spec(
                root,
                mode=self.sandbox_mode,  # type: ignore[arg-type]
                network=self.sandbox_network,
                protected=(self.work_dir,),
            ),
            passthrough_env=self.command_env,
            run_note=self.run_note,
            on_ran=lambda command: calls[0].ran(command) if calls else None,
        )
        call = AgentCall(self, request_id, host, why_nobody, read_only=read_only)
        calls.append(call)
        self._live[request_id] = call
        return call

    async def close(self) -> None:
        """The server is stopping: end every call still in flight."""
        for call in list(self._live.values()):
            with anyio.move_on_after(CLOSE_GRACE_S, shield=True):
                await call.close()

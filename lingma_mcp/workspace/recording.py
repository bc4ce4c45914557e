"""Each agent-mode call's record of changes, whatever made them, and the records of all.

Where git is at hand the record is the workspace's checkpoints (``checkpoints.py``): a
snapshot before Lingma starts, one at each tool event this call sees (so that the files
changed since the last one are attributed to that tool) and one when the call ends. That
sees every change: the hosted tools', the commands', the CLI's own Edit and Bash, Lingma's
own tools, the person's. Where git is missing, or the workspace cannot be snapshotted (too
many files, git failing), the record falls back to the journal of hosted writes
(``journal.py``), and the call's note says what that leaves out. One record per call,
never two.

The event loop is never blocked: snapshots run in threads, one at a time per call, in the
order the events came; the end of the call waits for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..events import ToolUpdate
from .checkpoints import (
    CallCheckpoint,
    CheckpointError,
    Checkpoints,
    CheckpointsUnavailable,
    DamagedRecord,
)
from .journal import CallRecord, ChangeJournal
from .paths import check_workspace
from .workspace_errors import UnknownChangeRecord, WorkspaceError

log = logging.getLogger("lingma_mcp.workspace.recording")

NOT_RECORDED = (
    "Changes made by commands and by Lingma's own tools are not recorded for this call "
    "({why}): only files written through lingma-mcp's own file tools are listed, shown and "
    "revertible."
)


class CallRecording:
    """The record of one call's changes; made by :meth:`ChangeRecords.begin`.

    It is also the workspace host's recorder: :meth:`record` is called just before a hosted
    write, with the tool that makes it.
    """

    def __init__(
        self,
        request_id: str,
        *,
        checkpoint: CallCheckpoint | None = None,
        journal: CallRecord | None = None,
        note: str = "",
    ) -> None:
        self.request_id = request_id
        self.note = note  # for the call's result: what this record cannot see
        self._checkpoint = checkpoint
        self._journal = journal
        self._by: dict[str, str] = {}  # journal fallback: who wrote each file
        self._marked: set[str] = set()  # tool call ids already marked
        self._marks: asyncio.Queue[str | None] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._final: list[dict[str, Any]] | None = None

    @property
    def checkpointed(self) -> bool:
        """True when every change is seen (checkpoints), not only hosted writes."""
        return self._checkpoint is not None

    # -- the workspace host's recorder ---------------------------------------------------

    def record(
        self,
        path: str,
        before: bytes | None,
        after: bytes | None,
        *,
        mode_before: int | None = None,
        made_dirs: list[str] | None = None,
        by: str = "",
    ) -> Callable[[], None]:
        """A hosted write of ``path`` (relative) is about to be made by ``by``.

        With checkpoints only the attribution is kept (the snapshots hold the contents);
        with the journal, the contents are kept now. Returns the undo for a failed write.
        """
        if self._checkpoint is not None:
            with contextlib.suppress(WorkspaceError):
                self._checkpoint.attribute(path, by or "write")
            return lambda: None
        if self._journal is None:
            return lambda: None
        if by:
            self._by.setdefault(path, by)
        return self._journal.record(
            path, before, after, mode_before=mode_before, made_dirs=made_dirs
        )

    def changes(self) -> list[dict[str, Any]]:
        """``[{path, action, lines_added, lines_removed, by, ...}]`` so far."""
        if self._final is not None:
            return list(self._final)
        if self._checkpoint is not None:
            try:
                return self._checkpoint.changes()
            except (CheckpointError, OSError) as exc:
                log.warning("cannot list the changes of %s: %s", self.request_id, exc)
                return []
        return self._journal_changes()

    def _journal_changes(self) -> list[dict[str, Any]]:
        if self._journal is None:
            return []
        return [{**c, "by": self._by.get(c["path"], "unknown")} for c in self._journal.changes()]

    # -- what happened during the call ---------------------------------------------------

    def observe(self, event: object) -> None:
        """A chat event: a tool call that has ended gets a snapshot attributed to it."""
        if not isinstance(event, ToolUpdate) or self._checkpoint is None:
            return
        tool = event.tool
        if tool.ended and tool.id not in self._marked:
            self._marked.add(tool.id)
            self._mark(tool.label())

    def ran(self, command: str) -> None:
        """A command the workspace host ran has ended."""
        if self._checkpoint is not None:
            self._mark(f"command: {' '.join(command.split())}")

    def _mark(self, by: str) -> None:
        if self._marks is None:
            self._marks = asyncio.Queue()
            self._worker = asyncio.ensure_future(self._take_marks(self._marks))
        self._marks.put_nowait(by)

    async def _take_marks(self, marks: asyncio.Queue[str | None]) -> None:
        checkpoint = self._checkpoint
        assert checkpoint is not None
        while (by := await marks.get()) is not None:
            try:
                await asyncio.to_thread(checkpoint.mark, by)
            except (CheckpointError, OSError) as exc:
                log.warning("a checkpoint of %s failed (%s); the call goes on", by, exc)

    async def finish(self) -> list[dict[str, Any]]:
        """The last snapshot; the call's changes. Idempotent; never raises."""
        if self._final is not None:
            return list(self._final)
        if self._marks is not None and self._worker is not None:
            self._marks.put_nowait(None)
            # The marks already queued are taken first: attribution needs them.
            with contextlib.suppress(Exception):
                await asyncio.shield(self._worker)
        if self._checkpoint is None:
            self._final = self._journal_changes()
            return list(self._final)
        try:
            self._final = await asyncio.to_thread(self._checkpoint.finish)
        except (CheckpointError, OSError) as exc:
            log.warning("the last checkpoint of %s failed: %s", self.request_id, exc)
            self.note = (
                f"The last snapshot of this call failed ({exc}); the changes listed are those "
                "seen up to the one before."
            )
            self._final = self.changes()
        return list(self._final)

    def abandon(self) -> None:
        """Let go of the workspace at once (a server dying); the record says interrupted."""
        if self._worker is not None:
            self._worker.cancel()
        if self._checkpoint is not None and self._final is None:
            self._checkpoint.release()


class ChangeRecords:
    """Every call's record of changes under one work dir: checkpoints, else the journal.

    Args:
        work_dir: the server's (shared) work dir.
        max_file_bytes: files larger than this are listed when they change, not kept.
        checkpoints: for tests; made from the two above by default.
    """

    def __init__(
        self,
        work_dir: Path,
        *,
        max_file_bytes: int | None = None,
        checkpoints: Checkpoints | None = None,
    ) -> None:
        self.work_dir = Path(work_dir)
        if checkpoints is None:
            options = {} if max_file_bytes is None else {"max_file_bytes": max_file_bytes}
            checkpoints = Checkpoints(self.work_dir, **options)
        self.checkpoints = checkpoints
        self._journal: ChangeJournal | None = None
        self._journal_lock = threading.Lock()

    @property
    def why_no_checkpoints(self) -> str:
        """Empty where every change can be recorded; else why only hosted writes are."""
        return self.checkpoints.why_unavailable

    def journal(self) -> ChangeJournal:
        """The journal of hosted writes, read from disk on first use (blocking: call it in
        a thread)."""
        with self._journal_lock:
            if self._journal is None:
                self._journal = ChangeJournal(self.work_dir)
            return self._journal

    # -- one call ------------------------------------------------------------------------

    async def begin(
        self,
        request_id: str,
        workspace: Path,
        *,
        read_only: bool = False,
        on_wait: Callable[[str], None] | None = None,
    ) -> CallRecording:
        """The record of a call about to start in ``workspace``: its "before" snapshot.

        A second call that may change the same workspace waits for the first (``on_wait``
        says so once); cancelling the caller stops the wait and lets go of anything taken.
        """
        why = self.checkpoints.why_unavailable
        if not why:
            try:
                checkpoint = await self._begin_checkpoint(
                    request_id, workspace, read_only=read_only, on_wait=on_wait
                )
                return CallRecording(request_id, checkpoint=checkpoint)
            except CheckpointsUnavailable as exc:
                why = str(exc)
            except (CheckpointError, OSError) as exc:
                why = f"the workspace could not be snapshotted: {exc}"
        journal = await asyncio.to_thread(self.journal)
        record = journal.begin(request_id, Path(workspace))
        return CallRecording(request_id, journal=record, note=NOT_RECORDED.format(why=why))

    async def _begin_checkpoint(
        self,
        request_id: str,
        workspace: Path,
        *,
        read_only: bool,
        on_wait: Callable[[str], None] | None,
    ) -> CallCheckpoint:
        cancel = threading.Event()
        loop = asyncio.get_running_loop()
        started = loop.run_in_executor(
            None,
            lambda: self.checkpoints.begin(
                request_id,
                workspace,
                read_only=read_only,
                on_wait=_on_loop(loop, on_wait),
                cancel=cancel,
            ),
        )
        try:
            return await asyncio.shield(started)
        except asyncio.CancelledError:
            # The thread cannot be stopped from here: it is told to give up its wait, and
            # whatever it took is let go when it returns.
            cancel.set()
            started.add_done_callback(_release_late)
            raise

    # -- after the call: what a person reads and undoes ----------------------------------

    def _which(self, request_id: str) -> str:
        """``checkpoints`` or ``journal``: which record holds that call (blocking)."""
        if not self.checkpoints.why_unavailable:
            try:
                self.checkpoints.workspace_of(request_id)
                return "checkpoints"
            except UnknownChangeRecord:
                pass
        return "journal"

    def changes(self, request_id: str) -> list[dict[str, Any]]:
        """That call's changes (blocking).

        Raises:
            UnknownChangeRecord: no record holds it.
        """
        if self._which(request_id) == "checkpoints":
            return self.checkpoints.changes(request_id)
        return self.journal().changes(request_id)

    def diff(self, request_id: str) -> str:
        """That call's changes as one unified diff, cut when large (blocking).

        Raises:
            UnknownChangeRecord: no record holds it.
        """
        if self._which(request_id) == "checkpoints":
            return self.checkpoints.diff(request_id)
        return self.journal().diff(request_id)

    def revert(
        self, request_id: str, allowed: list[Path], paths: list[str] | None = None
    ) -> dict[str, Any]:
        """Put that call's files back as they were before it (blocking).

        Nothing read back from the work dir is trusted: the workspace a record names must
        lie inside a folder this server may serve now (``allowed``: the host's roots, else
        ``--workspace``), and every path is written beneath it without following links.

        Raises:
            UnknownChangeRecord: no record holds it.
            WorkspaceError: the record's workspace is not one this server may serve, the
                record is damaged, or the call is still running.
        """
        if self._which(request_id) == "checkpoints":
            claimed = self.checkpoints.workspace_of(request_id)
            root = check_workspace(claimed, allowed)
            return self.checkpoints.revert(request_id, root, paths)
        journal = self.journal()
        claimed = journal.workspace_of(request_id)
        root = check_workspace(claimed, allowed)
        return journal.revert(request_id, root, paths)


def _on_loop(
    loop: asyncio.AbstractEventLoop, sink: Callable[[str], None] | None
) -> Callable[[str], None] | None:
    """``sink`` called on the event loop, from the thread that waits."""
    if sink is None:
        return None
    return lambda line: loop.call_soon_threadsafe(sink, line)


def _release_late(started: asyncio.Future[CallCheckpoint]) -> None:
    if started.cancelled() or started.exception() is not None:
        return
    started.result().close()


__all__ = [
    "NOT_RECORDED",
    "CallRecording",
    "ChangeRecords",
    "DamagedRecord",
]

"""Workspace checkpoints: every file an agent-mode call changed, whatever changed it.

A call is snapshotted before it starts (:meth:`Checkpoints.begin`), at each tool event the
caller sees (:meth:`CallCheckpoint.mark`, which attributes what changed since the last
one), and when it ends (:meth:`CallCheckpoint.finish`). The changes are the difference
between the first and the last snapshot, so a file written by a command, by the CLI's own
Edit or by Lingma's own tools is listed as surely as one written through the workspace
host, and a file the person changed meanwhile is listed too (``by: "unknown"`` when no
event explains it). Nobody is told less than happened.

The parts: ``shadow_git`` (the repository and its plumbing), ``checkpoint_store`` (where
things live), ``checkpoint_records`` (the record of a call, checked when read back;
private files; locks), ``checkpoint_changes`` (changes listed, shown and reverted),
``checkpoint_upkeep`` (the bounds), ``beneath`` (link-safe writes for a revert).

Two calls on one workspace cannot be told apart by snapshots, so a call that may change it
holds the workspace's ``call.lock`` from :meth:`Checkpoints.begin` to
:meth:`CallCheckpoint.finish`; a second one waits (saying so once). Read-only calls are
snapshotted too, without waiting. Locks are ``flock`` locks, so two servers on one work
dir share them, and a crashed server's locks are gone with it; its call's record is then
``interrupted``, listing what its last snapshot saw.

Every method blocks (git runs in child processes, files are read and written): async
callers use ``asyncio.to_thread``. Nothing here needs an event loop.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import beneath
from .beneath import Beneath
from .checkpoint_changes import render_diff, revert_entries, skipped_differences
from .checkpoint_records import (
    CallRecord,
    DamagedRecord,
    FileEntry,
    FileLock,
    fcntl,
    write_private,
)
from .checkpoint_store import (
    Store,
    all_records,
    call_refs,
    find_record,
    read_record,
    request_key,
)
from .checkpoint_upkeep import Upkeep
from .paths import is_inside
from .shadow_git import CheckpointError, GitFailed, Snapshot, TooManyFiles, find_git
from .workspace_errors import UnknownChangeRecord, WorkspaceError

log = logging.getLogger("lingma_mcp.workspace.checkpoints")

MAX_FILE_BYTES = 10 * 2**20
MAX_FILES = 100_000
MAX_CALLS = 100
MAX_BYTES = 2 * 2**30
DIFF_MAX_CHARS = 200_000
SCAN_TIMEOUT = 60.0
MIN_GIT = (2, 20)
_FIND: Any = object()

__all__ = [
    "CallCheckpoint",
    "CheckpointError",
    "Checkpoints",
    "CheckpointsUnavailable",
    "DamagedRecord",
    "GitFailed",
    "TooManyFiles",
    "WorkspaceBusy",
]


class CheckpointsUnavailable(CheckpointError):
    """Checkpoints cannot be taken here (no git, an old git, not a POSIX system)."""


class WorkspaceBusy(CheckpointError):
    """Another call is changing that workspace; a revert now would be mixed into it."""


class CallCheckpoint:
    """The checkpoints of one running call; made by :meth:`Checkpoints.begin`.

    Thread-safe. :meth:`finish` (or :meth:`close`) must end it: it holds the workspace.
    """

    def __init__(
        self,
        owner: Checkpoints,
        store: Store,
        record: CallRecord,
        path: Path,
        alive: FileLock,
        holds: FileLock | None,
    ) -> None:
        self._owner = owner
        self._store = store
        self._record = record
        self._path = path
        self._alive = alive  # held while the call runs: its record is never dropped
        self._holds = holds  # the workspace's call lock (None for a read-only call)
        self._pending: dict[str, str] = {}
        self._lock = threading.Lock()
        self._finished = False

    @property
    def request_id(self) -> str:
        return self._record.request_id

    @property
    def workspace(self) -> Path:
        return self._store.workspace

    @property
    def finished(self) -> bool:
        return self._finished

    def attribute(self, path: str, by: str) -> None:
        """Say what changed ``path`` (relative): a hosted write knows what it wrote.

        Taken at the next snapshot if ``path`` changed by then, in place of that mark's
        label (or ``unknown``).
        """
        beneath.split_relative(path)
        with self._lock:
            self._pending[path] = by

    def mark(self, by: str) -> list[str]:
        """Snapshot now; the files changed since the last snapshot are attributed to ``by``
        (``"Edit"``, ``"Bash: sed -i …"``, ``"command: ls"``, ``"write_text"``).

        Returns:
            The paths changed since the last snapshot.

        Raises:
            CheckpointError: the snapshot failed (the call goes on; later marks may work).
        """
        with self._lock:
            if self._finished:
                raise CheckpointError(f"the call {self.request_id} has already finished")
            with self._store.repo_lock():  # the last tree stays reachable until compared
                snapshot = self._snapshot()
                changed = self._attribute(snapshot, by)
            # Only a crash would read it before the call ends: not worth an fsync a mark.
            self._save(durable=False)
            return changed

    def _snapshot(self) -> Snapshot:
        last = self._record.last
        snapshot = self._store.git.snapshot(
            max_file_bytes=self._owner.max_file_bytes,
            max_files=self._owner.max_files,
            previous=last,
        )
        if snapshot.tree != last.tree:
            self._store.git.set_refs({call_refs(self._path.stem)[1]: snapshot.tree})
        return snapshot

    def _attribute(self, snapshot: Snapshot, by: str) -> list[str]:
        last = self._record.last
        changed = set(self._store.git.changed_paths(last.tree, snapshot.tree))
        changed |= skipped_differences(last.skipped, snapshot.skipped)
        for path in sorted(changed):
            label = self._pending.get(path) or by
            labels = self._record.attribution.setdefault(path, [])
            if label not in labels:
                labels.append(label)
        self._pending.clear()  # a hosted write that changed nothing leaves nothing to say
        self._record.last = snapshot
        self._record.stored_bytes += snapshot.added_bytes
        return sorted(changed)

    def _save(self, *, durable: bool = True) -> None:
        write_private(self._path, self._record.to_json(), durable=durable)

    def changes(self) -> list[dict[str, Any]]:
        """``[{path, action, lines_added, lines_removed, by, binary?, skipped?}]`` so far
        (up to the last snapshot while the call runs)."""
        with self._lock:
            if self._record.entries is not None:
                return [e.public() for e in self._record.entries]
            with self._store.repo_lock():
                entries = self._store.entries(self._record, self._record.last)
            return [e.public() for e in entries]

    def finish(self) -> list[dict[str, Any]]:
        """Take the last snapshot, keep the record, let go of the workspace.

        Returns:
            The call's changes, as :meth:`changes`.

        Raises:
            CheckpointError: the last snapshot failed; the record keeps what the snapshots
                before it saw (and says so), and the workspace is let go all the same.
        """
        with self._lock:
            if self._finished:
                return [e.public() for e in self._record.entries or []]
            error: str | None = None
            try:
                try:
                    with self._store.repo_lock():
                        snapshot = self._snapshot()
                        self._attribute(snapshot, "unknown")
                        self._record.entries = self._store.entries(self._record, snapshot)
                except (CheckpointError, OSError) as exc:
                    error = f"the last checkpoint failed: {exc}"
                    self._record.entries = self._entries_so_far()
                self._record.state = "finished"
                self._record.ended_at = time.time()
                self._record.error = error
                self._save()
            finally:
                self._finished = True
                self.release()
        self._owner._upkeep(self._store, self._path)
        if error is not None:
            raise CheckpointError(error)
        return [e.public() for e in self._record.entries or []]

    def release(self) -> None:
        """Let go of the workspace and of the record, as a dying server's kernel would.

        :meth:`finish` does this; called alone, it leaves the record ``running`` with its
        lock free, which the next reader completes as ``interrupted``.
        """
        with contextlib.suppress(OSError):
            self._alive.path.unlink()
        self._alive.release()
        if self._holds is not None:
            self._holds.release()

    def _entries_so_far(self) -> list[FileEntry]:
        try:
            with self._store.repo_lock():
                return self._store.entries(self._record, self._record.last)
        except (CheckpointError, OSError) as exc:
            log.warning("cannot list the changes of %s: %s", self.request_id, exc)
            return []

    def close(self) -> None:
        """Finish if not finished (crash and cancel paths); never raises. Idempotent."""
        if self._finished:
            return
        try:
            self.finish()
        except Exception as exc:
            log.warning("checkpoints of %s ended with an error: %s", self.request_id, exc)


class Checkpoints:
    """The checkpoints of every call under one work dir. Thread-safe; no asyncio.

    Args:
        work_dir: the server's (shared) work dir; checkpoints live in its ``checkpoints``.
        max_file_bytes: files larger are left out of snapshots (listed when they change).
        max_files: a workspace with more files (ignored ones aside) is refused.
        max_calls, max_bytes: bounds on what is kept; the oldest calls go first.
        git: the git program; by default the one on ``PATH``; ``None``: no git.
        scan_timeout: seconds one walk of a workspace may take.
    """

    def __init__(
        self,
        work_dir: Path,
        *,
        max_file_bytes: int = MAX_FILE_BYTES,
        max_files: int = MAX_FILES,
        max_calls: int = MAX_CALLS,
        max_bytes: int = MAX_BYTES,
        git: str | None = _FIND,
        scan_timeout: float = SCAN_TIMEOUT,
    ) -> None:
        self.directory = Path(work_dir) / "checkpoints"
        self.max_file_bytes = max_file_bytes
        self.max_files = max_files
        self.max_calls = max_calls
        self.max_bytes = max_bytes
        self.scan_timeout = scan_timeout
        self.git: str | None = find_git() if git is _FIND else git
        self.why_unavailable = self._why_unavailable()
        self._upkeep_guard = threading.Lock()

    @property
    def available(self) -> bool:
        return not self.why_unavailable

    def _why_unavailable(self) -> str:
        if fcntl is None or not beneath.SUPPORTED:
            return "checkpoints need a POSIX system (Linux or macOS)"
        if self.git is None:
            return (
                "git is not on PATH: changes made by commands and by Lingma's own tools are "
                "not recorded; install git to record them"
            )
        try:
            out = subprocess.run(
                [self.git, "--version"], capture_output=True, timeout=30, check=True
            ).stdout.decode("ascii", "replace")
        except (OSError, subprocess.SubprocessError) as exc:
            return f"git at {self.git} does not run ({exc}); checkpoints are off"
        found = re.search(r"(\d+)\.(\d+)", out)
        version = (int(found[1]), int(found[2])) if found else (0, 0)
        if version < MIN_GIT:
            return f"git {out.strip()} is older than 2.20, which checkpoints need; update git"
        return ""

    # -- beginning a call ----------------------------------------------------------------

    def begin(
        self,
        request_id: str,
        workspace: Path,
        *,
        read_only: bool = False,
        on_wait: Callable[[str], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> CallCheckpoint:
        """Take the "before" snapshot of a call in ``workspace``.

        A call that may change files (not ``read_only``) holds the workspace until it
        finishes; a second one waits, calling ``on_wait`` once with a sentence to show.
        Setting ``cancel`` gives up the wait (``InterruptedError``).

        Raises:
            CheckpointsUnavailable: no usable git here.
            TooManyFiles: the workspace is too large to snapshot.
            CheckpointError: the workspace holds the checkpoint store, the request id is
                taken, or git failed.
            InterruptedError: ``cancel`` was set while waiting.
        """
        if self.why_unavailable:
            raise CheckpointsUnavailable(self.why_unavailable)
        if not isinstance(request_id, str) or not request_id:
            raise CheckpointError("a checkpoint needs a request id (text)")
        root = Path(os.path.realpath(workspace))
        if not root.is_dir():
            raise CheckpointError(f"the workspace {workspace} does not exist or is not a folder")
        if is_inside(Path(os.path.realpath(self.directory)), root):
            raise CheckpointError(
                f"the workspace {root} holds the checkpoint store {self.directory}: snapshots "
                "would record themselves and the agent could rewrite them. Use a work dir "
                "outside the workspace"
            )
        if find_record(self.directory, request_id) is not None:
            raise CheckpointError(f"the request id {request_id!r} already has checkpoints")
        store = self._store(root)
        store.ensure()
        holds = None if read_only else store.call_lock()
        if holds is not None and not holds.try_acquire():
            if on_wait is not None:
                on_wait(
                    f"waiting for another agent call in {root} to end: the changes of two "
                    "calls at once could not be told apart"
                )
            holds.acquire(cancel)
        stem = f"{time.time_ns():020d}-{request_key(request_id)}"
        alive = FileLock(store.records / f"{stem}.lock")
        try:
            if not alive.try_acquire():  # pragma: no cover - a fresh name
                raise CheckpointError(f"the record {stem} is in use")
            with store.repo_lock():
                before = store.git.snapshot(
                    max_file_bytes=self.max_file_bytes, max_files=self.max_files
                )
                # A failure after this leaves refs without a record: upkeep deletes them.
                store.git.set_refs(dict.fromkeys(call_refs(stem), before.tree))
            record = CallRecord(
                request_id=request_id,
                workspace=str(root),
                before=before,
                last=before,
                read_only=read_only,
                began_at=time.time(),
                stored_bytes=before.added_bytes,
            )
            path = store.records / f"{stem}.json"
            write_private(path, record.to_json())
        except BaseException:
            with contextlib.suppress(OSError):
                alive.path.unlink()
            alive.release()
            if holds is not None:
                holds.release()
            raise
        return CallCheckpoint(self, store, record, path, alive, holds)

    # -- reading records -----------------------------------------------------------------

    def _store(self, workspace: Path) -> Store:
        return Store(self.directory, workspace, self.git or "git", scan_timeout=self.scan_timeout)

    def _load(self, request_id: str) -> tuple[Store, CallRecord, Path]:
        """The store, the record and its path, with a crashed call's record completed.

        Raises:
            UnknownChangeRecord: no record for that id.
            DamagedRecord: the record is damaged.
        """
        path = find_record(self.directory, request_id)
        if path is None:
            raise UnknownChangeRecord(request_id)
        record = read_record(path)
        if record.request_id != request_id:
            raise DamagedRecord(path.name, "it holds another request id")
        store = self._store(Path(record.workspace))
        if record.state == "running" and FileLock(path.with_suffix(".lock")).is_free():
            if self.why_unavailable:
                raise CheckpointsUnavailable(self.why_unavailable)
            # The server that ran it stopped before its last snapshot: keep what the
            # snapshots it took saw, and say so.
            with store.repo_lock():
                record.entries = store.entries(record, record.last)
            record.state = "interrupted"
            record.error = (
                "the call ended without its last checkpoint (its server stopped?): changes "
                "after its last tool event are not listed"
            )
            write_private(path, record.to_json())
            with contextlib.suppress(OSError):
                path.with_suffix(".lock").unlink()
        return store, record, path

    def request_ids(self) -> list[str]:
        """Request ids with a readable record, oldest first."""
        ids = []
        for path in all_records(self.directory):
            try:
                ids.append(read_record(path).request_id)
            except DamagedRecord as exc:
                log.warning("%s", exc)
        return ids

    def workspace_of(self, request_id: str) -> Path:
        """The workspace a call's record names: a claim, to be checked by the caller
        (e.g. with ``check_workspace``) before it is passed to :meth:`revert`.

        Raises:
            UnknownChangeRecord, DamagedRecord.
        """
        path = find_record(self.directory, request_id)
        if path is None:
            raise UnknownChangeRecord(request_id)
        return Path(read_record(path).workspace)

    def changes(self, request_id: str) -> list[dict[str, Any]]:
        """``[{path, action, lines_added, lines_removed, by, binary?, skipped?}]`` of that
        call (so far, while it runs).

        Raises:
            UnknownChangeRecord, DamagedRecord, CheckpointError.
        """
        store, record, _ = self._load(request_id)
        if record.entries is None:
            with store.repo_lock():
                return [e.public() for e in store.entries(record, record.last)]
        return [e.public() for e in record.entries]

    def diff(self, request_id: str, *, max_chars: int = DIFF_MAX_CHARS) -> str:
        """That call's changes as one unified diff: binary files named, files left out of
        snapshots described, cut at ``max_chars`` with a count of what was cut.

        Raises:
            UnknownChangeRecord, DamagedRecord, CheckpointError.
        """
        if self.why_unavailable:
            raise CheckpointsUnavailable(self.why_unavailable)
        store, record, _ = self._load(request_id)
        with store.repo_lock():
            entries = record.entries
            if entries is None:
                entries = store.entries(record, record.last)
            return render_diff(
                store.git,
                record.before.tree,
                record.last.tree,
                entries,
                max_chars,
                max_file_bytes=self.max_file_bytes,
            )

    # -- reverting -----------------------------------------------------------------------

    def revert(
        self, request_id: str, workspace: Path, paths: list[str] | None = None
    ) -> dict[str, Any]:
        """Put the files that call changed back as they were before it.

        ``workspace`` is the workspace the caller serves now: a record naming another is
        refused whole. Each file is restored only if it is still as the call left it;
        files the call created are removed (and folders it made, when empty). ``paths``
        reverts only those files. Nothing is written through a link or outside
        ``workspace`` (beneath.py).

        Returns:
            ``{request_id, restored: [path], refused: [{path, reason}]}``.

        Raises:
            UnknownChangeRecord, DamagedRecord: no usable record.
            WorkspaceBusy: a call is changing that workspace now.
            CheckpointError: the record names another workspace, or the call still runs.
        """
        if self.why_unavailable:
            raise CheckpointsUnavailable(self.why_unavailable)
        store, record, path = self._load(request_id)
        root = Path(os.path.realpath(workspace))
        if record.workspace != str(root):
            raise CheckpointError(
                f"the call {request_id} was made in {record.workspace}, not in the workspace "
                f"{root}; it is not reverted here"
            )
        if record.state == "running" or record.entries is None:
            raise CheckpointError(
                f"the call {request_id} is still running; revert it once it has ended"
            )
        call = store.call_lock()
        if not call.try_acquire():
            raise WorkspaceBusy(
                f"another agent call is changing {root} now; revert {request_id} once it ends"
            )
        try:
            entries = record.entries
            refused: list[dict[str, str]] = []
            if paths is not None:
                wanted = set(paths)
                known = {e.path for e in entries}
                refused += [
                    {"path": p, "reason": "this call did not change it"}
                    for p in paths
                    if p not in known
                ]
                entries = [e for e in entries if e.path in wanted]
            done = set(record.reverted)
            refused += [
                {"path": e.path, "reason": "already reverted"} for e in entries if e.path in done
            ]
            entries = [e for e in entries if e.path not in done]
            with Beneath(root) as ws, store.repo_lock():
                restored, failed = revert_entries(
                    ws,
                    store.git,
                    record.before.tree,
                    entries,
                    max_file_bytes=self.max_file_bytes,
                )
            refused += failed
            if restored:
                record.reverted += restored
                write_private(path, record.to_json())
        finally:
            call.release()
        return {"request_id": request_id, "restored": restored, "refused": refused}

    # -- bounds --------------------------------------------------------------------------

    def _upkeep(self, store: Store, record: Path) -> None:
        """Apply the bounds after a call ended; a failure is logged, never raised."""
        if self.git is None:
            return
        try:
            with self._upkeep_guard:
                Upkeep(
                    self.directory, self.git, max_calls=self.max_calls, max_bytes=self.max_bytes
                ).after_call(store.folder, record)
        except (OSError, WorkspaceError) as exc:
            log.warning("checkpoint upkeep failed (tried again after the next call): %s", exc)

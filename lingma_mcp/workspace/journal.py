"""The change journal: what every call changed, kept on disk to be shown and reverted.

Layout under ``<work dir>/changes`` (folders 0700, files 0600)::

    <ns since epoch, 20 digits>-<hash of request id>/
        record.json      request id, workspace, and one entry per changed file
        <sha256>.blob    file contents before and after, once per call

An entry holds the file's content before the call's first change to it and after its last,
so a file written three times is one change. Every file is written atomically and flushed
before it counts; a record is written before the change it describes is made, and taken
back if the change fails, so a crash never leaves a change without its record. Old calls
are dropped, oldest first, past 100 calls or 200 MB.

Nothing read back is trusted: a record is loaded only if every field is what this module
writes (text ids, canonical relative paths, content hashes as blob names), so a damaged or
hand-edited one is skipped alone; a missing blob refuses only its own file; a revert given
the workspace it serves now refuses a record that names another; and every revert write
goes through :class:`~.beneath.Beneath`, never through a link nor outside the workspace.

This journal records only writes made through the workspace host; it is the fallback of
the checkpoints (``checkpoints.py``) where git is missing.

All methods do blocking file I/O: async callers run them in a thread
(``asyncio.to_thread``); a lock makes concurrent calls safe.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import diffs
from .beneath import Beneath, UnsafePath, split_relative
from .files import CHANGE_LIMIT, atomic_write
from .workspace_errors import UnknownChangeRecord, WorkspaceError

log = logging.getLogger("lingma_mcp.workspace.journal")

MAX_CALLS = 100
MAX_BYTES = 200 * 1024 * 1024
RECORD = "record.json"


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


_BLOB_NAME = re.compile(r"[0-9a-f]{64}")


class _Unreadable(ValueError):
    """A record on disk that is not what this module writes."""


def _checked_path(value: Any) -> str:
    if not isinstance(value, str):
        raise _Unreadable(f"a path is {type(value).__name__}, not text")
    try:
        split_relative(value)
    except UnsafePath as exc:
        raise _Unreadable(f"a path is not plain and relative: {exc}") from None
    return value


def _checked_change(value: Any) -> FileChange:
    """A change entry read back from disk, every field checked."""
    if not isinstance(value, dict):
        raise _Unreadable("a change is not an object")
    for key in ("before", "after"):
        name = value.get(key)
        if name is not None and not (isinstance(name, str) and _BLOB_NAME.fullmatch(name)):
            raise _Unreadable(f"{key} is not a content hash")
    counts = [value.get("lines_added", 0), value.get("lines_removed", 0)]
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in counts):
        raise _Unreadable("line counts are not counts")
    mode = value.get("mode_before")
    if mode is not None and (isinstance(mode, bool) or not isinstance(mode, int)):
        raise _Unreadable("mode_before is not a number")
    made = value.get("made_dirs", [])
    if not isinstance(made, list) or not isinstance(value.get("reverted", False), bool):
        raise _Unreadable("made_dirs or reverted is malformed")
    return FileChange(
        path=_checked_path(value.get("path")),
        before=value.get("before"),
        after=value.get("after"),
        mode_before=None if mode is None else mode & 0o7777,
        lines_added=counts[0],
        lines_removed=counts[1],
        made_dirs=[_checked_path(d) for d in made],
        reverted=value.get("reverted", False),
    )


@dataclass
class FileChange:
    """One file's change within a call (before the first write, after the last)."""

    path: str
    before: str | None  # blob name (content hash), None: the file did not exist
    after: str | None  # None: the file was deleted
    mode_before: int | None = None
    lines_added: int = 0
    lines_removed: int = 0
    made_dirs: list[str] = field(default_factory=list)  # relative, top first
    reverted: bool = False

    @property
    def action(self) -> str:
        if self.before is None:
            return "created"
        return "deleted" if self.after is None else "modified"

    def summary(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "action": self.action,
            "lines_added": self.lines_added,
            "lines_removed": self.lines_removed,
        }


class CallRecord:
    """The changes of one call; the workspace host records each change here."""

    def __init__(
        self,
        journal: ChangeJournal,
        request_id: str,
        workspace: Path,
        folder: Path,
        changes: list[FileChange] | None = None,
    ) -> None:
        self._journal = journal
        self.request_id = request_id
        self.workspace = workspace
        self.folder = folder
        self._changes: list[FileChange] = changes or []
        self.size = 0

    def changes(self) -> list[dict[str, Any]]:
        """``[{path, action, lines_added, lines_removed}]``, in the order first changed."""
        with self._journal.lock:
            return [c.summary() for c in self._changes]

    def record(
        self,
        path: str,
        before: bytes | None,
        after: bytes | None,
        *,
        mode_before: int | None = None,
        made_dirs: list[str] | None = None,
        by: str = "",  # who writes it: kept by the call's recording, not here
    ) -> Callable[[], None]:
        """Record (durably) that ``path`` (relative) goes from ``before`` to ``after``.

        Call it just before making the change; if the change then fails, call the function
        it returns to take the record back.
        """
        with self._journal.lock:
            self._collect()
            index = next((i for i, c in enumerate(self._changes) if c.path == path), None)
            old = self._changes[index] if index is not None else None
            saved = list(self._changes)
            first_before = old.before if old is not None else self._store(before)
            original = self._load(first_before) if first_before is not None else None
            after_name = self._store(after)
            added, removed = diffs.count_lines(original, after)
            change = FileChange(
                path,
                first_before,
                after_name,
                mode_before=old.mode_before if old is not None else mode_before,
                lines_added=added,
                lines_removed=removed,
                made_dirs=(old.made_dirs if old is not None else list(made_dirs or [])),
            )
            if old is not None:
                del self._changes[index]  # type: ignore[arg-type]
            if change.before != change.after:  # created+deleted, or put back: no change
                self._changes.insert(index if index is not None else len(self._changes), change)
            self._save()

        def undo() -> None:
            with self._journal.lock:
                self._changes[:] = saved
                self._save()

        return undo

    # -- storage, under the journal's lock ---------------------------------------------

    def _store(self, data: bytes | None) -> str | None:
        if data is None:
            return None
        name = _digest(data)
        blob = self.folder / f"{name}.blob"
        if not blob.exists():
            self._journal._ensure_folder(self.folder)
            atomic_write(blob, data, mode=0o600)
            self.size += len(data)
        return name

    def _load(self, name: str) -> bytes:
        """A stored content. Raises OSError when it is missing or unreadable."""
        if not _BLOB_NAME.fullmatch(name):  # only hashes name blobs, never a path
            raise FileNotFoundError(name)
        return (self.folder / f"{name}.blob").read_bytes()

    def _collect(self) -> None:
        # Contents no entry refers to any more (a file written twice keeps only its first
        # and last). Collected before the next change rather than at each save, so that an
        # undo can still go back to the contents the previous save referred to.
        if not self.folder.exists():
            return
        referenced = {n for c in self._changes for n in (c.before, c.after) if n}
        for blob in self.folder.glob("*.blob"):
            if blob.stem not in referenced:
                self.size -= blob.stat().st_size
                blob.unlink()

    def _save(self) -> None:
        self._journal._ensure_folder(self.folder)
        payload = {
            "version": 1,
            "request_id": self.request_id,
            "workspace": str(self.workspace),
            "saved_at": time.time(),
            "size": self.size,
            "changes": [asdict(c) for c in self._changes],
        }
        atomic_write(self.folder / RECORD, json.dumps(payload, indent=1).encode(), mode=0o600)
        self._journal._saved(self)


class ChangeJournal:
    """Every call's changes under ``<work_dir>/changes``, bounded, surviving restarts.

    Args:
        work_dir: the server's work dir; the journal lives in its ``changes`` folder.
        max_calls, max_bytes: bounds; the oldest calls are dropped first.
    """

    def __init__(
        self, work_dir: Path, *, max_calls: int = MAX_CALLS, max_bytes: int = MAX_BYTES
    ) -> None:
        self.directory = Path(work_dir) / "changes"
        self.max_calls = max_calls
        self.max_bytes = max_bytes
        self.lock = threading.RLock()
        self._records: dict[str, CallRecord] = {}
        self._ensure_folder(self.directory.parent)
        self._ensure_folder(self.directory)
        self._load_all()

    # -- public ------------------------------------------------------------------------

    def begin(self, request_id: str, workspace: Path) -> CallRecord:
        """The record of a call's changes; the same one again for a request id seen before.

        Nothing is written until the first change.
        """
        with self.lock:
            record = self._records.get(request_id)
            if record is None:
                stamp = f"{time.time_ns():020d}"
                name = f"{stamp}-{_digest(request_id.encode())[:16]}"
                record = CallRecord(self, request_id, Path(workspace), self.directory / name)
                self._records[request_id] = record
            return record

    def request_ids(self) -> list[str]:
        """Request ids with a record, oldest first."""
        with self.lock:
            return [r.request_id for r in self._ordered()]

    def changes(self, request_id: str) -> list[dict[str, Any]]:
        """``[{path, action, lines_added, lines_removed}]`` of that call.

        Raises:
            UnknownChangeRecord: no such call is recorded.
        """
        return self._get(request_id).changes()

    def diff(self, request_id: str) -> str:
        """That call's changes as one unified diff.

        Raises:
            UnknownChangeRecord: no such call is recorded.
        """
        record = self._get(request_id)
        parts: list[str] = []
        with self.lock:
            for c in record._changes:
                try:
                    before = record._load(c.before) if c.before else None
                    after = record._load(c.after) if c.after else None
                except OSError:
                    parts.append(f"# {c.path}: its recorded content is missing from the journal\n")
                    continue
                parts.append(diffs.unified_diff(c.path, before, after))
        return "".join(parts)

    def workspace_of(self, request_id: str) -> Path:
        """The workspace that call's record names (not trusted: check it before use).

        Raises:
            UnknownChangeRecord: no such call is recorded.
        """
        return Path(self._get(request_id).workspace)

    def revert(
        self,
        request_id: str,
        workspace: Path | None = None,
        paths: list[str] | None = None,
    ) -> dict[str, Any]:
        """Put every file that call changed back as it was before the call.

        A file changed again since (its content is not what the call left) is refused and
        named, and left as it is. ``workspace`` is the workspace the caller serves now:
        when given, a record naming another is refused whole (a record read back from
        disk is not trusted to say where to write). Returns ``{request_id, restored:
        [path], refused: [{path, reason}]}``. ``paths`` reverts only those files.

        Raises:
            UnknownChangeRecord: no such call is recorded.
        """
        record = self._get(request_id)
        restored: list[str] = []
        refused: list[dict[str, str]] = []
        wanted = None if paths is None else set(paths)
        if wanted is not None:
            known = {c.path for c in record._changes}
            refused += [
                {"path": p, "reason": "this call did not change it"}
                for p in paths or []
                if p not in known
            ]
        with self.lock:
            root = Path(os.path.realpath(record.workspace))
            if workspace is not None and Path(os.path.realpath(workspace)) != root:
                reason = (
                    f"this call was made in {record.workspace}, not in the workspace "
                    f"{workspace}; it is not reverted here"
                )
                return {
                    "request_id": request_id,
                    "restored": [],
                    "refused": [{"path": c.path, "reason": reason} for c in record._changes],
                }
            try:
                ws = Beneath(root)
            except WorkspaceError:
                ws = None
            try:
                for change in reversed(record._changes):
                    if wanted is not None and change.path not in wanted:
                        continue
                    reason = self._revert_one(record, ws, root, change)
                    if reason is None:
                        change.reverted = True
                        restored.append(change.path)
                    else:
                        refused.append({"path": change.path, "reason": reason})
            finally:
                if ws is not None:
                    ws.close()
            if restored:
                record._save()
        return {
            "request_id": request_id,
            "restored": list(reversed(restored)),
            "refused": list(reversed(refused)),
        }

    # -- internals ---------------------------------------------------------------------

    def _revert_one(
        self, record: CallRecord, ws: Beneath | None, root: Path, change: FileChange
    ) -> str | None:
        if change.reverted:
            return "already reverted"
        if ws is None:
            return f"the workspace {root} no longer exists"
        try:
            # No link followed, on the way or at the end; a file larger than any change
            # could have left is not read whole to be told apart.
            current = ws.read_bytes(change.path, max_bytes=CHANGE_LIMIT)
            expected = record._load(change.after) if change.after else None
            before = record._load(change.before) if change.before else None
        except OSError:
            return "its recorded content is missing from the change journal"
        except WorkspaceError as exc:
            return str(exc)
        if current != expected:
            if expected is None:
                return "created again since this call deleted it"
            if current is None:
                return "deleted since this call changed it"
            return "changed since this call changed it"
        try:
            if before is None:
                ws.remove_file(change.path)
                for rel in reversed(change.made_dirs):
                    ws.remove_folder(rel)  # kept when no longer empty
            else:
                ws.write_bytes(change.path, before, mode=change.mode_before)
        except WorkspaceError as exc:
            return f"could not be restored: {exc}"
        return None

    def _get(self, request_id: str) -> CallRecord:
        with self.lock:
            record = self._records.get(request_id)
        if record is None:
            raise UnknownChangeRecord(request_id)
        return record

    def _ensure_folder(self, folder: Path) -> None:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            if folder.stat().st_mode & 0o077 and folder != self.directory.parent:
                os.chmod(folder, 0o700)

    def _ordered(self) -> list[CallRecord]:
        return sorted(self._records.values(), key=lambda r: r.folder.name)

    def _load_all(self) -> None:
        for folder in sorted(self.directory.iterdir()):
            try:
                payload = json.loads((folder / RECORD).read_text())
                if not isinstance(payload, dict):
                    raise _Unreadable("not a JSON object")
                request_id, workspace = payload.get("request_id"), payload.get("workspace")
                if not isinstance(request_id, str) or not request_id:
                    raise _Unreadable("its request id is not text")
                if not isinstance(workspace, str) or not os.path.isabs(workspace):
                    raise _Unreadable("its workspace is not an absolute path")
                changes = payload.get("changes")
                if not isinstance(changes, list):
                    raise _Unreadable("changes is not a list")
                record = CallRecord(
                    self, request_id, Path(workspace), folder, [_checked_change(c) for c in changes]
                )
                size = payload.get("size", 0)
                record.size = size if isinstance(size, int) and size >= 0 else 0
            except (OSError, ValueError) as exc:
                log.warning("skipping unreadable change record %s: %s", folder.name, exc)
                continue
            if request_id in self._records:
                log.warning("skipping change record %s: its request id is taken", folder.name)
                continue
            self._records[record.request_id] = record

    def _saved(self, current: CallRecord) -> None:
        """Drop the oldest calls (never ``current``) while over either bound."""
        on_disk = [r for r in self._ordered() if r.folder.exists()]
        total = sum(r.size for r in on_disk)
        for record in list(on_disk):
            if len(on_disk) <= self.max_calls and total <= self.max_bytes:
                break
            if record is current:
                continue
            shutil.rmtree(record.folder, ignore_errors=True)
            self._records.pop(record.request_id, None)
            on_disk.remove(record)
            total -= record.size
            log.info("dropped the change record of %s (journal bounds)", record.request_id)

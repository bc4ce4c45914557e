"""The record of one call's checkpoints, and the private files and locks around it.

A record is a small JSON file beside its workspace's shadow repository: the request id,
the workspace, the snapshots (tree ids and the files left out), who changed what, and,
once the call ended, one entry per changed file. It is written atomically (temporary
file, rename; flushed to disk when the call begins and ends, not at each mark), 0600 in
0700 folders.

Nothing read back is trusted. :meth:`CallRecord.from_json` checks every field (types,
object ids, canonical relative paths, known modes) and raises :class:`DamagedRecord`
saying what is wrong, so a damaged or hand-edited record affects only its own call. Where
the record says its workspace is, is checked by the caller against the workspace it was
asked about; nothing is ever written because a record says so.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .beneath import UnsafePath, split_relative
from .git_output import OBJECT_ID
from .shadow_git import CheckpointError, Snapshot

try:
    import fcntl
except ImportError:  # Windows: no checkpoints (Checkpoints says so)
    fcntl = None  # type: ignore[assignment]

RECORD_VERSION = 1
STATES = ("running", "finished", "interrupted")
ACTIONS = ("created", "modified", "deleted")
# What a tree entry of ours can be: a file, an executable file, a symbolic link.
MODES = ("100644", "100755", "120000")


class DamagedRecord(CheckpointError):
    """A record on disk is unreadable or does not hold what a record must."""

    def __init__(self, name: str, why: str) -> None:
        self.why = why
        super().__init__(
            f"the checkpoint record {name} is damaged ({why}); that call's changes cannot be "
            "shown or reverted. Other calls are not affected"
        )


# -- private files and locks ---------------------------------------------------------------


def private_folder(path: Path) -> None:
    """Create ``path`` (and parents) 0700, and make it 0700 if it was not."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        if os.stat(path).st_mode & 0o077:
            os.chmod(path, 0o700)


def write_private(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` atomically, mode 0600; flushed to disk if ``durable``."""
    temp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    if not durable:
        return
    with contextlib.suppress(OSError):
        folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


class FileLock:
    """An exclusive lock on a file (``flock``): across processes, and across threads too,
    since each holder opens the file anew and ``flock`` locks belong to the open file.

    It dies with the process that held it, however it died.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._guard = threading.Lock()

    @property
    def held(self) -> bool:
        return self._fd is not None

    def _open(self) -> int:
        return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)

    def try_acquire(self) -> bool:
        """Take the lock if it is free; False (at once) if someone holds it."""
        with self._guard:
            if self._fd is not None:
                raise RuntimeError(f"{self.path} is already held by this handle")
            fd = self._open()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                return False
            self._fd = fd
            return True

    def acquire(self, cancel: threading.Event | None = None) -> None:
        """Wait for the lock; with ``cancel``, give up (``InterruptedError``) once it is set.

        Without ``cancel`` this blocks in the kernel until the holder lets go. With it,
        the lock is tried again at short, growing intervals, each wait ending early when
        ``cancel`` is set: ``flock`` itself cannot be interrupted from another thread.
        """
        if cancel is None:
            with self._guard:
                if self._fd is not None:
                    raise RuntimeError(f"{self.path} is already held by this handle")
                fd = self._open()
                fcntl.flock(fd, fcntl.LOCK_EX)
                self._fd = fd
            return
        interval = 0.01
        while not self.try_acquire():
            if cancel.wait(interval):
                raise InterruptedError("gave up waiting for the workspace")
            interval = min(interval * 2, 0.25)

    def release(self) -> None:
        with self._guard:
            fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def is_free(self) -> bool:
        """True when nobody holds the lock now (it is taken and let go at once).

        A lock file that does not exist is free, and is not created by asking.
        """
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            return True
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        finally:
            os.close(fd)  # closing lets go of a lock taken here
        return True


# -- the record -----------------------------------------------------------------------------


@dataclass
class FileEntry:
    """One changed file of a finished call, with what a revert needs."""

    path: str
    action: str
    lines_added: int = 0
    lines_removed: int = 0
    by: str = "unknown"
    binary: bool = False
    skipped: bool = False
    before: tuple[str, str] | None = None  # (mode, object id) in the before tree
    after: tuple[str, str] | None = None
    before_stat: tuple[int, int, int] | None = None  # (size, mtime_ns, inode), skipped files
    after_stat: tuple[int, int, int] | None = None

    def public(self) -> dict[str, Any]:
        """What a person is shown: ``{path, action, lines_added, lines_removed, by}``, and
        ``binary`` / ``skipped`` when true."""
        shown: dict[str, Any] = {
            "path": self.path,
            "action": self.action,
            "lines_added": self.lines_added,
            "lines_removed": self.lines_removed,
            "by": self.by,
        }
        if self.binary:
            shown["binary"] = True
        if self.skipped:
            shown["skipped"] = True
        return shown

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "action": self.action,
            "lines_added": self.lines_added,
            "lines_removed": self.lines_removed,
            "by": self.by,
            "binary": self.binary,
            "skipped": self.skipped,
            "before": list(self.before) if self.before else None,
            "after": list(self.after) if self.after else None,
            "before_stat": list(self.before_stat) if self.before_stat else None,
            "after_stat": list(self.after_stat) if self.after_stat else None,
        }


@dataclass
class CallRecord:
    """Everything kept of one call."""

    request_id: str
    workspace: str
    before: Snapshot
    last: Snapshot
    state: str = "running"
    read_only: bool = False
    began_at: float = 0.0
    ended_at: float | None = None
    attribution: dict[str, list[str]] = field(default_factory=dict)
    entries: list[FileEntry] | None = None
    reverted: list[str] = field(default_factory=list)
    stored_bytes: int = 0
    error: str | None = None

    def to_json(self) -> bytes:
        payload = {
            "version": RECORD_VERSION,
            "request_id": self.request_id,
            "workspace": self.workspace,
            "state": self.state,
            "read_only": self.read_only,
            "began_at": self.began_at,
            "ended_at": self.ended_at,
            "before": _snapshot_json(self.before),
            "last": _snapshot_json(self.last),
            "attribution": self.attribution,
            "entries": None if self.entries is None else [e.to_json() for e in self.entries],
            "reverted": self.reverted,
            "stored_bytes": self.stored_bytes,
            "error": self.error,
        }
        # Compact: json's C encoder serves only without indent, and a record of a call
        # that changed 100,000 files is written on every revert of it.
        return json.dumps(payload, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes, name: str) -> CallRecord:
        """A record from its file's bytes, every field checked.

        Raises:
            DamagedRecord: not JSON, or any field is missing or not what it must be.
        """
        try:
            payload = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise DamagedRecord(name, f"not JSON: {exc}") from None
        check = _Checker(name)
        if not isinstance(payload, dict):
            raise DamagedRecord(name, "not a JSON object")
        if payload.get("version") != RECORD_VERSION:
            raise DamagedRecord(name, f"version {payload.get('version')!r}, not {RECORD_VERSION}")
        workspace = check.text(payload, "workspace")
        if not os.path.isabs(workspace):
            raise DamagedRecord(name, "its workspace is not an absolute path")
        state = check.text(payload, "state")
        if state not in STATES:
            raise DamagedRecord(name, f"unknown state {state!r}")
        entries = payload.get("entries")
        if entries is not None and not isinstance(entries, list):
            raise DamagedRecord(name, "entries is not a list")
        attribution = payload.get("attribution")
        if not isinstance(attribution, dict):
            raise DamagedRecord(name, "attribution is not an object")
        reverted = payload.get("reverted")
        if not isinstance(reverted, list):
            raise DamagedRecord(name, "reverted is not a list")
        ended_at = payload.get("ended_at")
        return cls(
            request_id=check.text(payload, "request_id"),
            workspace=workspace,
            before=check.snapshot(payload, "before"),
            last=check.snapshot(payload, "last"),
            state=state,
            read_only=check.flag(payload, "read_only"),
            began_at=check.number(payload, "began_at"),
            ended_at=None if ended_at is None else check.number(payload, "ended_at"),
            attribution={
                check.path(p): [check.label(b) for b in check.items(by, "attribution")]
                for p, by in attribution.items()
            },
            entries=None if entries is None else [check.entry(e) for e in entries],
            reverted=[check.path(p) for p in reverted],
            stored_bytes=check.count(payload, "stored_bytes"),
            error=None if payload.get("error") is None else check.text(payload, "error"),
        )


def _snapshot_json(snapshot: Snapshot) -> dict[str, Any]:
    return {
        "tree": snapshot.tree,
        "skipped": {p: list(s) for p, s in snapshot.skipped.items()},
        "added_bytes": snapshot.added_bytes,
    }


class _Checker:
    """Field checks for one record; each failure names the record and the field."""

    def __init__(self, name: str) -> None:
        self.name = name

    def fail(self, why: str) -> DamagedRecord:
        return DamagedRecord(self.name, why)

    def text(self, payload: dict[str, Any], key: str) -> str:
        value = payload.get(key)
        if not isinstance(value, str):
            raise self.fail(f"{key} is {type(value).__name__}, not text")
        return value

    def label(self, value: Any) -> str:
        if not isinstance(value, str):
            raise self.fail(f"an attribution is {type(value).__name__}, not text")
        return value

    def flag(self, payload: dict[str, Any], key: str) -> bool:
        value = payload.get(key, False)
        if not isinstance(value, bool):
            raise self.fail(f"{key} is not true or false")
        return value

    def number(self, payload: dict[str, Any], key: str) -> float:
        value = payload.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(f"{key} is not a number")
        return float(value)

    def count(self, payload: dict[str, Any], key: str) -> int:
        value = payload.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self.fail(f"{key} is not a count")
        return value

    def items(self, value: Any, what: str) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(f"{what} holds something other than a list")
        return value

    def path(self, value: Any) -> str:
        if not isinstance(value, str):
            raise self.fail(f"a path is {type(value).__name__}, not text")
        try:
            split_relative(value)
        except UnsafePath as exc:
            raise self.fail(f"a path is not plain and relative: {exc}") from None
        return value

    def object_id(self, value: Any) -> str:
        if not isinstance(value, str) or not OBJECT_ID.fullmatch(value):
            raise self.fail(f"{str(value)[:80]!r} is not an object id")
        return value

    def stat(self, value: Any) -> tuple[int, int, int]:
        if (
            not isinstance(value, list)
            or len(value) != 3
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)
        ):
            raise self.fail("a file's size, time and inode are not three counts")
        return (value[0], value[1], value[2])

    def snapshot(self, payload: dict[str, Any], key: str) -> Snapshot:
        value = payload.get(key)
        if not isinstance(value, dict):
            raise self.fail(f"{key} is not a snapshot")
        skipped = value.get("skipped", {})
        if not isinstance(skipped, dict):
            raise self.fail(f"{key}'s skipped files are not an object")
        return Snapshot(
            tree=self.object_id(value.get("tree")),
            skipped={self.path(p): self.stat(s) for p, s in skipped.items()},
            added_bytes=self.count(value, "added_bytes"),
        )

    def side(self, value: Any) -> tuple[str, str] | None:
        if value is None:
            return None
        if not isinstance(value, list) or len(value) != 2 or value[0] not in MODES:
            raise self.fail("a file's mode and object id are not what a checkpoint holds")
        return (value[0], self.object_id(value[1]))

    def entry(self, value: Any) -> FileEntry:
        if not isinstance(value, dict):
            raise self.fail("an entry is not an object")
        action = value.get("action")
        if action not in ACTIONS:
            raise self.fail(f"an entry's action is {str(action)[:40]!r}")
        before_stat = value.get("before_stat")
        after_stat = value.get("after_stat")
        return FileEntry(
            path=self.path(value.get("path")),
            action=action,
            lines_added=self.count(value, "lines_added"),
            lines_removed=self.count(value, "lines_removed"),
            by=self.text(value, "by"),
            binary=self.flag(value, "binary"),
            skipped=self.flag(value, "skipped"),
            before=self.side(value.get("before")),
            after=self.side(value.get("after")),
            before_stat=None if before_stat is None else self.stat(before_stat),
            after_stat=None if after_stat is None else self.stat(after_stat),
        )

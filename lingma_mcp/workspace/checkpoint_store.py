"""Where checkpoints live: one folder per workspace under ``<work_dir>/checkpoints``.

Layout (folders 0700, files 0600)::

    home/                      an empty HOME for git (no user config is ever read)
    <workspace key>/           one per workspace: a hash of its resolved path
        git/                   the shadow repository (shadow_git.py)
        records/<stamp>-<request key>.json   one record per call (checkpoint_records.py)
        records/<stamp>-<request key>.lock   held while that call runs
        call.lock              held by the call that may change the workspace
        repo.lock              held for each short piece of git work on the repository
        upkeep.json            the store's size, and drops since it was last packed

Each call keeps its snapshots reachable by two refs of its own,
``refs/lingma-calls/<record stem>/before`` and ``.../last``, pointing at trees.

A record is found by its request id through the name alone (a hash of the id), and is
believed only when its content agrees with its name and its folder (:func:`read_record`).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from .checkpoint_changes import merge_changes
from .checkpoint_records import CallRecord, DamagedRecord, FileEntry, FileLock, private_folder
from .shadow_git import ShadowGit, Snapshot

REFS = "refs/lingma-calls"
HOME = "home"


def workspace_key(workspace: Path) -> str:
    """The name of a workspace's folder: a hash of its resolved path."""
    return hashlib.sha256(os.fsencode(str(workspace))).hexdigest()[:20]


def request_key(request_id: str) -> str:
    """The part of a record's name that comes from its request id."""
    return hashlib.sha256(request_id.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def call_refs(stem: str) -> tuple[str, str]:
    """The refs that keep one call's first and last snapshots."""
    return f"{REFS}/{stem}/before", f"{REFS}/{stem}/last"


def find_record(directory: Path, request_id: str) -> Path | None:
    """The record file of a request id under ``<work_dir>/checkpoints``, if there is one."""
    if not isinstance(request_id, str) or not directory.is_dir():
        return None
    found = sorted(directory.glob(f"*/records/*-{request_key(request_id)}.json"))
    return found[-1] if found else None


def all_records(directory: Path) -> list[Path]:
    """Every record file under ``<work_dir>/checkpoints``, oldest first (by its name)."""
    if not directory.is_dir():
        return []
    return sorted(directory.glob("*/records/*.json"), key=lambda p: p.name)


def read_record(path: Path) -> CallRecord:
    """A record, checked: every field, its request id against its name, its workspace
    against its folder.

    Raises:
        DamagedRecord: any of it is wrong.
    """
    name = f"{path.parent.parent.name}/{path.name}"
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DamagedRecord(name, f"unreadable: {exc.strerror}") from None
    record = CallRecord.from_json(data, name)
    if not path.stem.endswith("-" + request_key(record.request_id)):
        raise DamagedRecord(name, "its request id does not match its file name")
    if workspace_key(Path(record.workspace)) != path.parent.parent.name:
        raise DamagedRecord(name, "the workspace it names is not the one of its folder")
    return record


class Store:
    """The checkpoint folder of one workspace: repository, records and locks.

    Args:
        directory: ``<work_dir>/checkpoints``.
        workspace: the workspace, resolved.
        git: the git program.
        scan_timeout: seconds one walk of the workspace may take.
    """

    def __init__(self, directory: Path, workspace: Path, git: str, *, scan_timeout: float) -> None:
        self.workspace = workspace
        self.folder = directory / workspace_key(workspace)
        self.records = self.folder / "records"
        self.git = ShadowGit(
            git, self.folder / "git", workspace, directory / HOME, scan_timeout=scan_timeout
        )

    def ensure(self) -> None:
        """Create the folders and the repository where they are missing."""
        for folder in (self.folder.parent, self.git.home, self.folder, self.records):
            private_folder(folder)  # one by one: mkdir's mode is only the last one's
        with self.repo_lock():
            self.git.ensure()

    def repo_lock(self) -> FileLock:
        return FileLock(self.folder / "repo.lock")

    def call_lock(self) -> FileLock:
        return FileLock(self.folder / "call.lock")

    def entries(self, record: CallRecord, after: Snapshot) -> list[FileEntry]:
        """The changes from the record's first snapshot to ``after``, attributed."""

        def stat_now(path: str) -> tuple[int, int, int] | None:
            try:
                st = os.lstat(os.path.join(self.workspace, path))
            except OSError:
                return None
            return (st.st_size, st.st_mtime_ns, st.st_ino)

        changes = self.git.diff_entries(record.before.tree, after.tree)
        return merge_changes(changes, record.before, after, record.attribution, stat_now)

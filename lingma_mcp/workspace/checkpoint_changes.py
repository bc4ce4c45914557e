"""One call's changes from its checkpoints: listed, shown as a diff, undone.

The changes are the difference between the first and the last snapshot, plus the files
left out of snapshots (over the size bound) whose size, time or inode moved.

A revert puts each file back only where it is still exactly as the call left it (same
content and type, the same executable bit); anything changed since is refused and named,
never overwritten. Every write and removal goes through :class:`~.beneath.Beneath`, so
none follows a link or leaves the workspace, whatever the record says.

Cost: one pass over the entries to check them (each file still there is hashed once),
one ``cat-file --batch`` process streaming the earlier contents in order, one write per
file: linear in the files and bytes of the call. Nothing is held in memory but the file
being written. The writes are not flushed one by one (two ``fsync`` a file made a revert
of 20,000 files take most of a minute) but all at once by one ``os.sync()`` at the end;
each is still an atomic rename, so a crash mid-way leaves every file old or new.
"""

from __future__ import annotations

import itertools
import logging
import os
import stat
from collections import defaultdict
from collections.abc import Callable

from .beneath import Beneath
from .checkpoint_records import FileEntry
from .git_output import TreeChange, blob_id, diff_header, file_blob_id, git_quote
from .shadow_git import ShadowGit, Snapshot
from .workspace_errors import WorkspaceError

log = logging.getLogger("lingma_mcp.workspace.checkpoint_changes")

LINK = "120000"
EXECUTABLE = "100755"


def skipped_differences(
    old: dict[str, tuple[int, int, int]], new: dict[str, tuple[int, int, int]]
) -> set[str]:
    """Files left out of either snapshot whose size, time or inode differ (or that came
    or went)."""
    return {p for p in old.keys() | new.keys() if old.get(p) != new.get(p)}


def merge_changes(
    tree_changes: list[TreeChange],
    before: Snapshot,
    after: Snapshot,
    attribution: dict[str, list[str]],
    stat_now: Callable[[str], tuple[int, int, int] | None],
) -> list[FileEntry]:
    """One entry per changed file, from the trees' difference and the skipped files.

    A file that crossed the size bound is in one tree and skipped in the other snapshot:
    it is one ``modified`` entry marked skipped, not a deletion and a creation. A file
    skipped before and in neither tree after is looked at now (``stat_now``): it may
    only have become ignored.
    """
    entries: dict[str, FileEntry] = {}
    for change in tree_changes:
        entry = FileEntry(change.path, "modified", change.added, change.removed)
        entry.binary = change.binary
        if change.status != "A":
            entry.before = (change.old_mode, change.old_id)
        if change.status != "D":
            entry.after = (change.new_mode, change.new_id)
        entry.action = (
            "created" if entry.before is None else "deleted" if entry.after is None else "modified"
        )
        entries[change.path] = entry
    for path in sorted(skipped_differences(before.skipped, after.skipped)):
        old_stat, new_stat = before.skipped.get(path), after.skipped.get(path)
        in_trees = entries.pop(path, None)
        entry = FileEntry(path, "modified", skipped=True)
        entry.before_stat, entry.after_stat = old_stat, new_stat
        if in_trees is not None:  # crossed the bound: one side is in a tree
            entry.before, entry.after = in_trees.before, in_trees.after
        elif old_stat is None:
            entry.action = "created"
        elif new_stat is None:
            current = stat_now(path)
            if current == old_stat:
                continue  # still there, unchanged: only left out of the last snapshot
            if current is None:
                entry.action = "deleted"
            else:
                entry.after_stat = current
        entries[path] = entry
    for entry in entries.values():
        entry.by = "; ".join(attribution.get(entry.path, [])) or "unknown"
    return sorted(entries.values(), key=lambda e: e.path)


def _size(n: int) -> str:
    return f"{n / 2**20:g} MB" if n >= 2**20 else f"{n:,} bytes"


def _current(ws: Beneath, path: str) -> tuple[str, str] | str | None:
    """What is at ``path`` now: ``(mode, object id)`` of a file or link, ``"folder"``,
    ``"special"``, or None.

    Raises:
        WorkspaceError: a link on the way (UnsafePath) or an unreadable file.
    """
    st = ws.lstat(path)
    if st is None:
        return None
    if stat.S_ISDIR(st.st_mode):
        return "folder"
    if stat.S_ISLNK(st.st_mode):
        target = ws.read_link(path)
        return None if target is None else (LINK, blob_id(os.fsencode(target)))
    if not stat.S_ISREG(st.st_mode):
        return "special"
    fd = ws.open_file(path)
    if fd is None:
        return None
    try:
        object_id = file_blob_id(fd)
    finally:
        os.close(fd)
    return (EXECUTABLE if st.st_mode & stat.S_IXUSR else "100644", object_id)


def _why_not(ws: Beneath, entry: FileEntry, max_file_bytes: int) -> str | None:
    """Why ``entry`` cannot be reverted, or None: is it still as the call left it?"""
    gone = (
        "already gone: deleted since this call created it"
        if entry.before is None and entry.before_stat is None
        else "deleted since this call changed it"
    )
    if entry.before is None and entry.before_stat is not None:
        return (
            "its earlier content was not kept (files over "
            f"{_size(max_file_bytes)}, or unreadable, are left out of checkpoints), so it "
            "cannot be put back"
        )
    try:
        if entry.after_stat is not None:  # left out of the last snapshot: by its stat
            st = ws.lstat(entry.path)
            if st is None:
                return gone
            if (st.st_size, st.st_mtime_ns, st.st_ino) != entry.after_stat:
                return "changed since this call changed it"
            return None
        now = _current(ws, entry.path)
    except WorkspaceError as exc:
        return str(exc)
    if entry.after is None:
        if now is None or now == "folder":
            return None  # a folder where the file was is dealt with when writing
        return "created again since this call deleted it"
    if now is None:
        return gone
    if isinstance(now, str):
        return f"a {'folder' if now == 'folder' else 'device, fifo or socket'} now"
    if now[1] != entry.after[1] or (now[0] == LINK) != (entry.after[0] == LINK):
        return "changed since this call changed it"
    if now[0] != entry.after[0]:
        return "its executable bit changed since this call changed it"
    return None


def _restore_mode(ws: Beneath, entry: FileEntry) -> int | None:
    """The mode to write a restored file with (None: keep the present one, or the usual)."""
    assert entry.before is not None
    want_exec = entry.before[0] == EXECUTABLE
    st = ws.lstat(entry.path)
    if st is not None and stat.S_ISREG(st.st_mode):
        mode = stat.S_IMODE(st.st_mode)
        if bool(mode & stat.S_IXUSR) == want_exec:
            return None
        return mode | ((mode & 0o444) >> 2) if want_exec else mode & ~0o111
    return 0o755 if want_exec else None


def _parents(path: str) -> list[str]:
    parts = path.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def revert_entries(
    ws: Beneath,
    git: ShadowGit,
    before_tree: str,
    entries: list[FileEntry],
    *,
    max_file_bytes: int,
) -> tuple[list[str], list[dict[str, str]]]:
    """Put each entry's file back as it was in ``before_tree``.

    Files the call created are removed first (deepest first), then the folders it made
    when they are empty, then earlier contents are written back, streamed from the store.

    Returns:
        (paths restored, ``[{path, reason}]`` refused), each in the entries' order.
    """
    refused: dict[str, str] = {}
    ready: list[FileEntry] = []
    for entry in entries:
        reason = _why_not(ws, entry, max_file_bytes)
        if reason is None:
            ready.append(entry)
        else:
            refused[entry.path] = reason
    restored: set[str] = set()

    removals = [e for e in ready if e.before is None]
    for entry in sorted(removals, key=lambda e: e.path.count("/"), reverse=True):
        try:
            st = ws.lstat(entry.path)
            if st is not None and not stat.S_ISDIR(st.st_mode):
                ws.remove_file(entry.path, durable=False)
            restored.add(entry.path)
        except WorkspaceError as exc:
            refused[entry.path] = f"could not be removed: {exc}"
    removed = [e.path for e in removals if e.path in restored]
    if removed:
        had = git.folders(before_tree)
        made = {p for path in removed for p in _parents(path)} - had
        for folder in sorted(made, key=lambda p: p.count("/"), reverse=True):
            try:
                ws.remove_folder(folder, durable=False)  # kept when not empty
            except WorkspaceError as exc:
                log.info("left the folder %s: %s", folder, exc)

    waiting: dict[str, list[FileEntry]] = defaultdict(list)
    for entry in ready:
        if entry.before is not None:
            waiting[entry.before[1]].append(entry)
    for object_id, content in git.read_blobs(list(waiting)):
        for entry in waiting[object_id]:
            assert entry.before is not None
            if content is None:
                refused[entry.path] = "its earlier content is missing from the checkpoint store"
                continue
            try:
                if entry.before[0] == LINK:
                    ws.write_link(entry.path, os.fsdecode(content), durable=False)
                else:
                    mode = _restore_mode(ws, entry)
                    ws.write_bytes(entry.path, content, mode=mode, replace_link=True, durable=False)
                restored.add(entry.path)
            except WorkspaceError as exc:
                refused[entry.path] = f"could not be restored: {exc}"

    if restored:
        os.sync()  # every write above made durable at once (see the module's cost note)
    order = {e.path: i for i, e in enumerate(entries)}
    return (
        sorted(restored, key=order.__getitem__),
        [{"path": p, "reason": r} for p, r in sorted(refused.items(), key=lambda i: order[i[0]])],
    )


def _skipped_note(entry: FileEntry, max_file_bytes: int) -> str:
    old, new = entry.before_stat, entry.after_stat
    if old is not None and new is not None:
        sizes = f"{old[0]:,} bytes → {new[0]:,} bytes"
    elif new is not None:
        sizes = f"now {new[0]:,} bytes"
    else:
        sizes = f"was {old[0]:,} bytes" if old is not None else "size unknown"
    return (
        f"# {git_quote(entry.path)}: {entry.action} ({sizes}); not shown: files over "
        f"{_size(max_file_bytes)} (or unreadable) are left out of checkpoints\n"
    )


def render_diff(
    git: ShadowGit,
    before_tree: str,
    after_tree: str,
    entries: list[FileEntry],
    max_chars: int,
    *,
    max_file_bytes: int,
) -> str:
    """The unified diff of a call, at most ``max_chars`` characters, then what was cut.

    Git's own diff (binary files named as git names them), without the sections of files
    that crossed the size bound (their other side was not kept: a diff would show a whole
    file deleted or created), then one ``#`` line per file left out of the snapshots.
    """
    skipped = [e for e in entries if e.skipped]
    hidden = {diff_header(e.path) for e in skipped}
    out: list[str] = []
    size = cut_lines = cut_files = 0
    cutting = hiding = False
    notes = (_skipped_note(e, max_file_bytes) for e in skipped)
    # Streamed: past the cut, lines are only counted, never held.
    for line in itertools.chain(git.patch(before_tree, after_tree), notes):
        if line.startswith("diff --git ") or line.startswith("# "):
            hiding = line.rstrip("\n") in hidden
            if cutting and not hiding:
                cut_files += 1
        if hiding:
            continue
        if not cutting and size + len(line) > max_chars:
            cutting = True
        if cutting:
            cut_lines += 1
            continue
        out.append(line)
        size += len(line)
    if cutting:
        out.append(
            f"\n[lingma-mcp: the diff is cut at {max_chars:,} characters: {cut_lines:,} more "
            f"lines, {cut_files:,} more files after the one cut, are not shown]\n"
        )
    return "".join(out)

"""The shadow git repository of one workspace: snapshots, diffs and objects, by plumbing.

The repository is ours (``GIT_DIR`` under the work dir) and the workspace is only its
work tree; the person's own ``.git`` is never its repository. Git skips every ``.git`` by
name while it walks the work tree; it looks at a nested one only to see that it is a
repository (and then lists that folder's files separately, see :meth:`ShadowGit.snapshot`),
never writing to it and never reading its config or hooks.

Nothing in the workspace can make our git run anything: it runs with an environment built
from scratch (no ``GIT_*`` of the server's, a private ``HOME``, no system or global config),
``-c`` options that switch off hooks, fsmonitor, credential helpers and protocols, and an
``info/attributes`` that overrides any ``.gitattributes``: no filter, no end-of-line or
encoding conversion (a snapshot holds the bytes as they are, so a revert writes them back
exactly), no diff or merge driver. Diffs run with ``--no-ext-diff --no-textconv``.

Cost of a snapshot: ``git diff-files`` and ``git ls-files --others`` walk the tree (a stat
per tracked file, a readdir per folder, using the index as a stat cache), a Python
``lstat`` per changed or new file (for the size bound), ``update-index`` hashing only those,
then ``write-tree`` (cached subtrees reused): about five short processes when little
changed. The first snapshot hashes every file once.

Blocking: every method runs git and waits; call from a thread.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import subprocess
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .git_output import OBJECT_ID, TreeChange, index_entry_count, parse_raw_numstat, split_nul
from .workspace_errors import WorkspaceError

# What overrides every .gitattributes in the workspace ($GIT_DIR/info/attributes wins over
# them): bytes stored as they are, no filter or driver named by the workspace is looked up.
ATTRIBUTES = "* -text !eol -filter -ident !diff !merge -working-tree-encoding\n"
# Our own temporary files (beneath.py's atomic writes) are never part of a snapshot.
EXCLUDE = ".*.lingma-tmp\n"
# Passed on every call, so that even a damaged config of our own cannot turn these on.
SAFE_CONFIG = (
    "core.bare=false",
    "core.hooksPath=/dev/null",
    "core.fsmonitor=false",
    "core.untrackedCache=false",
    "core.splitIndex=false",
    "core.attributesFile=/dev/null",
    "core.excludesFile=/dev/null",
    "core.autocrlf=false",
    "core.safecrlf=false",
    "core.symlinks=true",
    "core.quotePath=false",
    "core.logAllRefUpdates=false",
    "core.pager=cat",
    "core.askPass=",
    "credential.helper=",
    "protocol.allow=never",
    # Loose objects stored, not deflated: a changed 50 MB file costs 0.4 s instead of 2 s
    # a snapshot; packing (upkeep's gc) compresses them once.
    "core.looseCompression=0",
    "gc.auto=0",
    "maintenance.auto=false",
    "safe.directory=*",
    "index.sparse=false",
    "diff.external=",
    "diff.noprefix=false",
    "diff.renames=false",
    "color.ui=false",
)
# Tracked files whose stat or content differ from the index (stat-only changes included,
# so that update-index refreshes them instead of each later walk hashing them again).
DIRTY = ("diff-files", "--name-only", "-z")
UNTRACKED = ("ls-files", "-z", "--others", "--exclude-standard")
ADD = ("update-index", "-z", "--add", "--remove", "--replace", "--stdin")
FORGET = ("update-index", "-z", "--force-remove", "--stdin")
PATCH = ("diff-tree", "-p", "-r", "--no-renames", "--no-ext-diff", "--no-textconv",
         "--no-color", "--src-prefix=a/", "--dst-prefix=b/")  # fmt: skip
RAW_NUMSTAT = ("diff-tree", "-r", "-z", "--no-renames", "--no-ext-diff", "--no-textconv",
               "--raw", "--numstat")  # fmt: skip


class CheckpointError(WorkspaceError):
    """A checkpoint could not be taken, shown or reverted; the message says why."""


class TooManyFiles(CheckpointError):
    """The workspace has more files than a snapshot may hold."""

    def __init__(self, workspace: Path, count: int, limit: int) -> None:
        self.count = count
        self.limit = limit
        super().__init__(
            f"the workspace {workspace} has more than {limit:,} files to snapshot (at least "
            f"{count:,}, ignored files aside); checkpoints are off for it, so changes made by "
            "commands and by Lingma's own tools are not recorded. Add the bulky folders to "
            ".gitignore, or work in a smaller folder"
        )


class GitFailed(CheckpointError):
    """Our git failed (or took longer than allowed)."""


@dataclass(frozen=True)
class Snapshot:
    """One state of the workspace: a tree of the files kept, and the files left out.

    ``skipped`` maps each file over the size bound (or unreadable) to ``(size, mtime_ns,
    inode)``: enough to tell that it changed, not what changed.
    """

    tree: str
    skipped: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    added_bytes: int = 0  # bytes hashed into the store by this snapshot (new or changed)
    # The index file as this snapshot left it (not kept in records): while it is the
    # same, nobody else has snapshotted since, and an unchanged workspace has this tree.
    index: tuple[int, int, int] | None = field(default=None, compare=False)


def find_git() -> str | None:
    """The ``git`` program on ``PATH``, or None."""
    return shutil.which("git")


# -- the repository -----------------------------------------------------------------------


class ShadowGit:
    """Our repository of one workspace.

    Args:
        git: the git program.
        git_dir: the repository (created by :meth:`ensure`).
        workspace: the work tree (resolved).
        home: an empty private folder used as git's ``HOME`` and ``XDG_CONFIG_HOME``.
        scan_timeout: seconds a walk of the workspace may take before it is given up.
    """

    def __init__(
        self, git: str, git_dir: Path, workspace: Path, home: Path, *, scan_timeout: float = 120.0
    ) -> None:
        self.git = git
        self.git_dir = git_dir
        self.workspace = workspace
        self.home = home
        self.scan_timeout = scan_timeout
        git_bin = os.path.dirname(os.path.abspath(git))
        self.env = {
            "PATH": os.pathsep.join(p for p in (git_bin, os.defpath) if p),
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home),
            "LC_ALL": "C",
            "LANG": "C",
            "GIT_DIR": str(git_dir),
            "GIT_WORK_TREE": str(workspace),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_SYSTEM": os.devnull,
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_ATTR_NOSYSTEM": "1",
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_NO_REPLACE_OBJECTS": "1",
            "GIT_LITERAL_PATHSPECS": "1",
            "GIT_PROTOCOL_FROM_USER": "0",
        }

    # -- running git -------------------------------------------------------------------

    def _argv(self, args: Iterable[str]) -> list[str]:
        argv = [self.git]
        for option in SAFE_CONFIG:
            argv += ["-c", option]
        return [*argv, *args]

    def start(
        self,
        args: Iterable[str],
        *,
        stdin: int | None = subprocess.DEVNULL,
        stderr: int | None = subprocess.PIPE,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start git with our environment; stdout piped, stderr piped unless told."""
        try:
            return subprocess.Popen(
                self._argv(args),
                stdin=stdin,
                stdout=subprocess.PIPE,
                stderr=stderr,
                env=env or self.env,
                # Commands that walk the work tree run in it; the rest in the store, so a
                # workspace that is gone does not keep a diff from being shown.
                cwd=cwd or self.git_dir,
                umask=0o077,  # what git writes in the store is ours alone
            )
        except OSError as exc:
            raise GitFailed(f"cannot run {self.git}: {exc.strerror}") from None

    def wait(
        self,
        proc: subprocess.Popen[bytes],
        what: str,
        *,
        input: bytes | None = None,
        timeout: float | None = None,
    ) -> bytes:
        """Wait for a started git; its stdout. Raises :class:`GitFailed` with git's words."""
        try:
            out, err = proc.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise GitFailed(
                f"git {what} in {self.workspace} took longer than {timeout:.0f} s and was "
                "stopped; the workspace is too large to snapshot in time"
            ) from None
        if proc.returncode != 0:
            words = err.decode("utf-8", "replace").strip().splitlines()
            raise GitFailed(
                f"git {what} failed in the checkpoint store of {self.workspace}: "
                + (" / ".join(words[-3:]) or f"exit {proc.returncode}")
            )
        return out

    def run(
        self,
        *args: str,
        input: bytes | None = None,
        timeout: float | None = None,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> bytes:
        """Run git and wait; its stdout. Raises :class:`GitFailed` with git's own words."""
        stdin = subprocess.PIPE if input is not None else subprocess.DEVNULL
        proc = self.start(args, stdin=stdin, env=env, cwd=cwd)
        return self.wait(proc, args[0], input=input, timeout=timeout)

    def ensure(self) -> None:
        """Create the repository if it is missing, and (re)write its attributes and excludes."""
        if not (self.git_dir / "HEAD").exists():
            self.git_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            env = {k: v for k, v in self.env.items() if k not in ("GIT_DIR", "GIT_WORK_TREE")}
            self.run(
                "init",
                "--quiet",
                "--bare",
                "--template=",
                str(self.git_dir),
                env=env,
                cwd=self.git_dir,
            )
        info = self.git_dir / "info"
        info.mkdir(mode=0o700, exist_ok=True)
        for name, text in (("attributes", ATTRIBUTES), ("exclude", EXCLUDE)):
            target = info / name
            with contextlib.suppress(OSError):
                if target.read_text() == text:
                    continue
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(text)

    # -- snapshots ---------------------------------------------------------------------

    def _nested(self, folder: str) -> list[str]:
        """The files of a nested repository at ``folder``, as git would add them.

        Git shows a nested repository as ``sub/`` and will not walk into it for the outer
        work tree. Its files are listed by a walk with that folder as the work tree and an
        empty index, so that its own ``.gitignore`` files apply, as they would for it.
        Once some of its files are in our index, git walks into it like any folder.
        """
        env = {**self.env, "GIT_WORK_TREE": str(self.workspace / folder),
               "GIT_INDEX_FILE": str(self.git_dir / "nested-index-none")}  # fmt: skip
        out = self.run(*UNTRACKED, timeout=self.scan_timeout, env=env, cwd=self.workspace / folder)
        return self._expand(out, f"{folder}/")

    def _expand(self, out: bytes, prefix: str = "") -> list[str]:
        files: list[str] = []
        for name in split_nul(out):
            if name.endswith("/"):
                files += self._nested(prefix + name.rstrip("/"))
            else:
                files.append(prefix + name)
        return files

    def _index_identity(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.git_dir / "index")
        except OSError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def snapshot(
        self, *, max_file_bytes: int, max_files: int, previous: Snapshot | None = None
    ) -> Snapshot:
        """The workspace now, as a tree in the store (and the files left out of it).

        ``previous`` is this caller's last snapshot: when nothing changed and nobody else
        snapshotted since (the index is as it was left), its tree is the answer, and only
        the walk is paid for. Call under the store's lock: the index is shared.

        Raises:
            TooManyFiles: more than ``max_files`` files would be in it.
            GitFailed: git failed or the walk took longer than ``scan_timeout``.
        """
        # The two walks read the same index and folders; run side by side, they overlap.
        walks = [self.start(args, cwd=self.workspace) for args in (DIRTY, UNTRACKED)]
        try:
            outs = [self.wait(p, "status", timeout=self.scan_timeout) for p in walks]
        finally:
            for proc in walks:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        dirty = set(split_nul(outs[0]))
        untracked = self._expand(outs[1])
        tracked = index_entry_count(self.git_dir / "index")
        if tracked + len(untracked) > max_files:
            raise TooManyFiles(self.workspace, tracked + len(untracked), max_files)
        update: list[str] = []
        drop: list[str] = []
        skipped: dict[str, tuple[int, int, int]] = {}
        added_bytes = 0
        for path in [*dirty, *untracked]:
            is_tracked = path in dirty
            full = os.path.join(self.workspace, path)
            try:
                st = os.lstat(full)
            except OSError:
                if is_tracked:
                    update.append(path)  # gone: --remove takes it out
                continue
            if stat.S_ISREG(st.st_mode):
                if st.st_size > max_file_bytes or not os.access(full, os.R_OK):
                    skipped[path] = (st.st_size, st.st_mtime_ns, st.st_ino)
                    if is_tracked:
                        drop.append(path)
                    continue
                added_bytes += st.st_size
                update.append(path)
            elif stat.S_ISLNK(st.st_mode) or stat.S_ISDIR(st.st_mode):
                update.append(path)  # a folder where a tracked file was: --remove
            elif is_tracked:
                drop.append(path)  # now a fifo, socket or device: not kept
        index = self._index_identity()
        if not update and not drop and previous is not None and previous.index == index:
            return Snapshot(previous.tree, skipped, 0, index)
        if drop:
            self.run(*FORGET, input=_nul(drop), cwd=self.workspace)
        if update:
            self.run(*ADD, input=_nul(update), cwd=self.workspace)
        tree = self.run("write-tree").decode().strip()
        return Snapshot(tree, skipped, added_bytes, self._index_identity())

    # -- reading the store -------------------------------------------------------------

    def diff_entries(self, old: str, new: str) -> list[TreeChange]:
        """Every path that differs between two trees, with its line counts."""
        if old == new:
            return []
        out = self.run(*RAW_NUMSTAT, old, new)
        return parse_raw_numstat(out)

    def changed_paths(self, old: str, new: str) -> list[str]:
        """The paths that differ between two trees (names only: cheap)."""
        if old == new:
            return []
        return split_nul(self.run("diff-tree", "-r", "-z", "--no-renames", "--name-only", old, new))

    def patch(self, old: str, new: str) -> Iterator[str]:
        """The unified diff between two trees, line by line (binary files named)."""
        proc = self.start([*PATCH, old, new], stderr=subprocess.DEVNULL)
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                yield line.decode("utf-8", "replace")
        finally:
            proc.stdout.close()
            if proc.poll() is None:
                proc.kill()
            proc.wait()

    def read_blobs(self, ids: Iterable[str]) -> Iterator[tuple[str, bytes | None]]:
        """``(id, content)`` for each id in order; ``None`` where the store lacks it.

        One ``cat-file --batch`` for all: a thread writes the ids while the caller reads
        the contents, so neither pipe waits on the other (and no round trip per object).
        """
        wanted = list(ids)
        proc = self.start(["cat-file", "--batch"], stdin=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert proc.stdin is not None and proc.stdout is not None
        stdin, stdout = proc.stdin, proc.stdout

        def feed() -> None:
            with contextlib.suppress(OSError, ValueError):  # git ended, or reading stopped
                for object_id in wanted:
                    # Anything but an object id would break the line protocol: ask for a
                    # name that is surely missing instead.
                    name = object_id if OBJECT_ID.fullmatch(object_id) else "invalid"
                    stdin.write(name.encode("ascii") + b"\n")
                stdin.close()

        writer = threading.Thread(target=feed, name="cat-file feed", daemon=True)
        writer.start()
        try:
            for object_id in wanted:
                header = stdout.readline().split()
                if not header:
                    raise GitFailed(f"git cat-file ended early in the store of {self.workspace}")
                if len(header) != 3 or header[1] != b"blob":
                    if len(header) == 3:  # another type: skip its content
                        stdout.read(int(header[2]) + 1)
                    yield object_id, None
                    continue
                content = stdout.read(int(header[2]))
                stdout.read(1)
                yield object_id, content
        finally:
            if proc.poll() is None:
                proc.kill()
            stdout.close()
            proc.wait()
            writer.join()

    def folders(self, tree: str) -> set[str]:
        """Every folder in a tree (relative paths)."""
        return set(split_nul(self.run("ls-tree", "-r", "-d", "--name-only", "-z", tree)))

    # -- refs and upkeep ---------------------------------------------------------------

    def set_refs(self, refs: dict[str, str | None]) -> None:
        """Point each ref at its object, or delete it (``None``), in one transaction."""
        if not refs:
            return
        lines = [
            f"update {ref} {target}" if target else f"delete {ref}" for ref, target in refs.items()
        ]
        self.run("update-ref", "--stdin", input=("\n".join(lines) + "\n").encode())

    def refs(self, prefix: str) -> list[str]:
        """The names of the refs under ``prefix``."""
        out = self.run("for-each-ref", "--format=%(refname)", prefix)
        return out.decode("utf-8", "replace").split()

    def object_stats(self) -> tuple[int, int]:
        """(loose objects, bytes on disk of all objects)."""
        counts: dict[str, int] = {}
        for line in self.run("count-objects", "-v").decode().splitlines():
            key, _, value = line.partition(":")
            with contextlib.suppress(ValueError):
                counts[key.strip()] = int(value)
        size = (counts.get("size", 0) + counts.get("size-pack", 0)) * 1024
        return counts.get("count", 0), size

    def gc(self) -> None:
        """Pack what is kept and delete every object no ref (nor the index) reaches."""
        self.run("gc", "--quiet", "--prune=now")


def _nul(paths: list[str]) -> bytes:
    return b"".join(os.fsencode(p) + b"\0" for p in paths)

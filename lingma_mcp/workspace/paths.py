"""Confinement: every path a call names is resolved, then must land inside its workspace.

Resolution follows what the operating system would do with the path (``~``, ``..``,
symbolic links of every existing component), so the check is made on the file that would
really be touched, not on the spelling. Containment is decided by identity rather than by
text where the text alone cannot tell: on a case-insensitive file system ``/Work/Proj`` and
``/work/proj`` are one folder, and an ancestor that is the workspace folder itself (same
device and inode) proves the path is inside whatever the spelling.

What remains open: a folder inside the workspace replaced by a symbolic link between the
check and the use (a race only a command the call itself runs could win). Final components
are opened without following links, which closes the common case of that race.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from .workspace_errors import OutsideWorkspace, WorkspaceError, WorkspaceNotAllowed

# POSIX limits on Linux and macOS; a longer path fails deep inside the OS with a less
# helpful message, so it is refused first.
MAX_PATH_BYTES = 4095
MAX_NAME_BYTES = 255


def outside_message(raw: str, root: Path, *, why: str = "") -> str:
    extra = f" ({why})" if why else ""
    return (
        f"{raw} is outside the workspace {root}{extra}; only files inside it can be read or changed"
    )


def expand_user(raw: str) -> str:
    """``~`` and ``~user`` expanded, or a clear error when the user does not exist."""
    if not raw.startswith("~"):
        return raw
    expanded = os.path.expanduser(raw)
    if expanded.startswith("~"):
        head = raw.split("/", 1)[0]
        raise WorkspaceError(
            f"cannot resolve {raw}: there is no user {head[1:]!r} (or no home folder); "
            "give a path inside the workspace"
        )
    return expanded


def _check_lengths(raw: str, path: str) -> None:
    encoded = os.fsencode(path)
    if len(encoded) > MAX_PATH_BYTES or any(
        len(part) > MAX_NAME_BYTES for part in encoded.split(b"/")
    ):
        raise WorkspaceError(
            f"the path {raw[:80]}… is too long (at most {MAX_PATH_BYTES} bytes, "
            f"{MAX_NAME_BYTES} per name); give a shorter path inside the workspace"
        )


def _identity(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def is_inside(path: Path, root: Path) -> bool:
    """True when resolved ``path`` is ``root`` or below it (``root`` resolved too).

    The textual test settles nearly every case at no cost; when it fails, the path's
    existing ancestors are compared with the root by identity, which is what makes a
    differently-cased spelling on a case-insensitive file system count as inside.
    """
    if path == root or root in path.parents:
        return True
    root_id = _identity(str(root))
    if root_id is None:
        return False
    for candidate in (path, *path.parents):
        if _identity(str(candidate)) == root_id:
            return True
    return False


def resolve_path(raw: str, root: Path) -> Path:
    """Resolve ``raw`` against the workspace ``root`` (already resolved) and confine it.

    Raises:
        OutsideWorkspace: the path lands outside ``root`` (also through a symbolic link).
        WorkspaceError: a NUL byte, an empty, over-long or unresolvable path.
    """
    if not isinstance(raw, str) or not raw.strip():
        raise WorkspaceError("the path is empty; give a file path inside the workspace")
    if "\x00" in raw:
        shown = raw.replace("\x00", "\\0")
        raise WorkspaceError(
            f"the path {shown!r} contains a NUL byte; give a plain file path inside the workspace"
        )
    expanded = expand_user(raw)
    joined = os.path.join(str(root), expanded)  # an absolute ``expanded`` wins
    _check_lengths(raw, joined)
    lexical = Path(os.path.normpath(joined))
    resolved = Path(os.path.realpath(joined))
    if not is_inside(resolved, root):
        why = "a symbolic link leads out of it" if is_inside(lexical, root) else ""
        raise OutsideWorkspace(outside_message(raw, root, why=why))
    return resolved


def special_kind(mode: int) -> str | None:
    """The name of a non-regular, non-folder file type, for refusals."""
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISFIFO(mode):
        return "a fifo (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return None


def refuse_special(raw: str, path: Path) -> os.stat_result | None:
    """The file's stat (``None`` when it does not exist), refusing devices, fifos, sockets."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise WorkspaceError(f"cannot use {raw}: {exc.strerror}") from None
    kind = special_kind(st.st_mode)
    if kind is not None:
        raise OutsideWorkspace(
            f"{raw} is {kind}, not a regular file; only regular files inside the workspace "
            "can be read or changed"
        )
    return st


def relative_to_root(path: Path, root: Path) -> str:
    """The path as shown to people: relative to the workspace, with ``/`` separators."""
    try:
        return path.relative_to(root).as_posix() or "."
    except ValueError:  # inside by identity only (case-insensitive spelling)
        return str(path)


def check_workspace(candidate: Path, allowed: list[Path]) -> Path:
    """The call's workspace, resolved, if it lies inside one of the ``allowed`` folders.

    ``allowed`` is what the server may serve: the host's roots when it offers them, else
    the ``--workspace`` folder. A call can narrow it to a folder below, never widen it.

    Raises:
        WorkspaceNotAllowed: outside every allowed folder, or nothing is allowed.
        WorkspaceError: the folder cannot be resolved, does not exist or is not a folder.
    """
    roots = [Path(os.path.realpath(expand_user(str(p)))) for p in allowed]
    names = ", ".join(str(p) for p in roots)
    raw = str(candidate)
    if "\x00" in raw:
        raise WorkspaceError("the workspace path contains a NUL byte")
    expanded = expand_user(raw)
    _check_lengths(raw, os.path.abspath(expanded))
    resolved = Path(os.path.realpath(expanded))
    if not roots:
        raise WorkspaceNotAllowed(
            f"no workspace folder is allowed for {raw}: start the server with --workspace "
            "or use a host that offers roots",
            roots,
        )
    if not any(is_inside(resolved, root) for root in roots):
        raise WorkspaceNotAllowed(
            f"the workspace {raw} is outside the folders this server may work in ({names}); "
            "give one of them or a folder inside one",
            roots,
        )
    if not resolved.is_dir():
        raise WorkspaceError(f"the workspace {raw} does not exist or is not a folder")
    return resolved


def final_is_symlink(raw: str, root: Path) -> bool:
    """True when the last component of ``raw`` (in the workspace) is itself a symbolic link.

    Deleting through such a name would delete the link's target, not what the name shows.
    """
    joined = os.path.join(str(root), expand_user(raw))
    name = os.path.basename(joined.rstrip("/"))
    if name in ("", ".", ".."):
        return False
    parent = os.path.realpath(os.path.dirname(joined.rstrip("/")))
    return os.path.islink(os.path.join(parent, name))


def check_agent_workspace(root: Path, *, explicit: bool, work_dir: Path) -> None:
    """Refuse a folder agent mode must not act in.

    ``/`` and the home folder itself are what a host that offers no roots often starts a
    server in; acting there by default would put every file the person has in reach. They
    are accepted only when named on purpose (``--workspace``, ``LINGMA_WORKSPACE`` or a host
    root: ``explicit``). A folder that contains lingma-mcp's work dir is always refused: the
    change record and the approvals' state would be in the agent's reach.

    Raises:
        WorkspaceNotAllowed: with what to do instead.
    """
    resolved = Path(os.path.realpath(root))
    how = (
        "start lingma-mcp with --workspace /path/to/project (or LINGMA_WORKSPACE in the host "
        "config's env), use a host that offers roots, or pass workspace= for a folder inside "
        "the allowed one"
    )
    home = Path(os.path.realpath(os.path.expanduser("~")))
    if not explicit and (resolved == Path(resolved.anchor) or resolved == home):
        which = "the root folder" if resolved == Path(resolved.anchor) else "your home folder"
        raise WorkspaceNotAllowed(
            f"agent mode will not act in {resolved} ({which}) unless it is named on purpose: {how}",
            [resolved],
        )
    work = Path(os.path.realpath(work_dir))
    if is_inside(work, resolved):
        raise WorkspaceNotAllowed(
            f"agent mode will not act in {resolved}: it contains lingma-mcp's work dir {work}, "
            f"which holds the record of changes; {how}, or move the work dir with --work-dir",
            [resolved],
        )

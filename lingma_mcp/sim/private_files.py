"""Private, durable files: the simulator's conversation store and its message log.

Both hold prompts and answers, so files are 0600 in 0700 folders. A store write is
atomic and durable: a temporary file in the same folder, fsync, rename over the old
file, fsync of the folder, so a kill or a power cut leaves the old file or the new one,
never half of one. A kill between create and rename leaves the temporary file behind;
:func:`remove_leftovers` clears those at start.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path
from typing import IO

log = logging.getLogger("lingma_mcp.sim")

FILE_MODE = 0o600
FOLDER_MODE = 0o700
TMP_SUFFIX = ".tmp"


def private_folder(path: Path) -> None:
    """Create ``path`` as 0700, or narrow it to 0700 when it already exists wider."""
    path.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.info("narrowing %s from %o to %o: it holds conversations", path, mode, FOLDER_MODE)
        path.chmod(FOLDER_MODE)


def temp_name(path: Path) -> Path:
    """The temporary file a write of ``path`` uses (one per process)."""
    return path.with_name(f"{path.name}.{os.getpid()}{TMP_SUFFIX}")


def write_durably(path: Path, text: str, mode: int = FILE_MODE) -> None:
    """Replace ``path`` with ``text``: a reader sees the old file or the new, whole.

    Raises:
        OSError: the folder cannot be written; the old file is then left as it was.
    """
    tmp = temp_name(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)  # a leftover of another mode keeps its mode under O_CREAT
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise
    _fsync_folder(path.parent)


def _fsync_folder(folder: Path) -> None:
    # The rename is only durable once the folder's entry is on disk. Windows cannot open
    # a folder for fsync; there the rename is all we can do.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_leftovers(path: Path) -> list[Path]:
    """Delete temporary files of earlier writes of ``path`` (a killed process leaves them).

    A temporary file whose process still runs is another simulator's write in progress
    (two of them on one work dir): it is left alone.
    """
    removed = []
    for leftover in path.parent.glob(f"{path.name}.*{TMP_SUFFIX}"):
        owner = leftover.name[len(path.name) + 1 : -len(TMP_SUFFIX)]
        if owner.isdigit() and int(owner) != os.getpid() and _alive(int(owner)):
            continue
        try:
            leftover.unlink()
        except OSError as exc:
            log.warning("cannot remove the leftover %s: %s", leftover, exc)
            continue
        log.info("removed %s, left by an interrupted write", leftover)
        removed.append(leftover)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError, OverflowError):
        return True  # exists but is not ours, or cannot be asked: leave its file alone
    return True


def open_private_log(path: Path) -> IO[str]:
    """Open ``path`` for appending as a 0600 file (narrowed if it exists wider)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, FILE_MODE)
    os.fchmod(fd, FILE_MODE)
    return os.fdopen(fd, "a", encoding="utf-8")

"""A folder of its own per server under a shared work dir, held by a lock while it lives.

Two servers started on one work dir (a host with two entries, or two hosts) must never
read, kill or delete each other's child. Each takes a *slot*: the work dir itself first,
then ``<work_dir>/instances/1``, ``/2`` ... and holds an exclusive lock on the slot's
``.lingma-mcp.lock`` for as long as it lives; its child gets that folder as its work dir.
The lock dies with the process that held it, however it died, so a slot whose lock can be
taken is free, unless a child left in it (a ``.info`` naming a live process) still runs:
that slot is skipped, never taken over.

Slots are kept, not removed: the child keeps its own state there (the conversations it
saved), and a lone server, the usual case, gets the work dir itself on every start, so
nothing moves for it. Folders are 0700, the lock file 0600.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

INSTANCES = "instances"
LOCK_NAME = ".lingma-mcp.lock"
MAX_SLOTS = 64


def _try_lock(handle: IO[bytes]) -> bool:
    """Take an exclusive lock on an open file without waiting; False if someone holds it."""
    try:
        if sys.platform == "win32":
            import msvcrt

            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def make_private(path: Path) -> None:
    """Create ``path`` (and parents) and make it 0700, whatever the umask or its past."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        os.chmod(path, 0o700)


def _open_lock(path: Path) -> IO[bytes]:
    """The slot's lock file, created 0600 (every file the server writes is private) and
    made 0600 if an older version left it readable to others."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
    if hasattr(os, "fchmod"):  # not on Windows, where modes mean little
        with contextlib.suppress(OSError):
            os.fchmod(fd, 0o600)
    return os.fdopen(fd, "a+b")


def slot_path(work_dir: Path, number: int) -> Path:
    return work_dir if number == 0 else work_dir / INSTANCES / str(number)


class InstanceDir:
    """This server's slot under ``work_dir``; :meth:`release` (or the process's end) frees it.

    Args:
        work_dir: the shared work dir.
        occupied: whether a free slot still holds a live child (``.info`` of a running
            process); such a slot is skipped.

    Raises:
        OSError: the work dir cannot be created, or every slot is taken.
    """

    def __init__(self, work_dir: Path, occupied: Callable[[Path], bool]) -> None:
        self.work_dir = work_dir
        for number in range(MAX_SLOTS):
            path = slot_path(work_dir, number)
            make_private(path)
            handle = _open_lock(path / LOCK_NAME)
            if not _try_lock(handle):
                handle.close()
                continue  # another server lives here
            if occupied(path):
                handle.close()
                log.warning(
                    "%s is free, but a child left in it still runs; using another folder", path
                )
                continue
            self.number, self.path, self._lock = number, path, handle
            return
        raise OSError(f"all {MAX_SLOTS} folders under {work_dir} are in use by other servers")

    @property
    def held(self) -> bool:
        return self._lock is not None

    def release(self) -> None:
        """Drop the lock (the child must be stopped first); the folder stays for next time."""
        handle, self._lock = self._lock, None
        if handle is not None:
            handle.close()

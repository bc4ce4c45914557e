"""A private folder per server under a shared work dir, held by a lock while the server lives.

Two servers started on one work dir (a host with two entries, or two hosts) must never
read, kill or delete each other's child. Each takes ``<work_dir>/instances/<unique>/``,
creates it 0700 and holds an exclusive lock on its ``lock`` file for as long as it lives;
the child gets that folder as its own work dir. The lock dies with the process that held
it, however it died, so a folder whose lock can be taken belongs to a dead server: it is
removed at the next start, unless a child listed in it (its ``.info``) still runs, which
is left alone rather than orphaned further.

Taking a lock and removing a folder race: a cleaner may lock a new folder's lock file in
the instant before its owner does. The owner therefore checks, once it holds the lock,
that the file it locked is still the one at that path, and starts over if not.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

INSTANCES = "instances"
LOCK_NAME = "lock"
# A folder without a lock file is one being born (or one whose birth crashed): only the
# second kind is old.
UNBORN_AGE_S = 60.0


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


def _make_private(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        os.chmod(path, 0o700)  # mkdir's mode is cut by the umask, and exist_ok skips it


class InstanceDir:
    """This server's own folder under ``work_dir``; :meth:`release` (or exit) frees it.

    Raises:
        OSError: the work dir cannot be created or written.
    """

    def __init__(self, work_dir: Path) -> None:
        self.work_dir = work_dir
        self.root = work_dir / INSTANCES
        _make_private(work_dir)
        _make_private(self.root)
        self.path, self._lock = self._take()

    def _take(self) -> tuple[Path, IO[bytes]]:
        while True:
            path = self.root / f"{os.getpid()}-{secrets.token_hex(4)}"
            path.mkdir(mode=0o700)
            lock_path = path / LOCK_NAME
            handle = open(lock_path, "a+b")
            if _try_lock(handle):
                try:
                    same = os.path.samestat(os.fstat(handle.fileno()), os.stat(lock_path))
                except OSError:
                    same = False
                if same:
                    return path, handle
            handle.close()  # a cleaner took it in between: start over with a new name

    def release(self) -> None:
        """Drop the lock and remove the folder (the child must be stopped first)."""
        handle, self._lock = self._lock, None
        if handle is None:
            return
        handle.close()  # first: Windows cannot remove a file that is open
        shutil.rmtree(self.path, ignore_errors=True)

    @property
    def held(self) -> bool:
        return self._lock is not None


def clean_stale(work_dir: Path, child_alive: Callable[[Path], bool]) -> list[Path]:
    """Remove the folders of dead servers under ``work_dir``; return what was removed.

    Args:
        child_alive: whether a child listed in that folder still runs; such a folder
            is kept.
    """
    root = work_dir / INSTANCES
    removed: list[Path] = []
    try:
        entries = list(root.iterdir())
    except OSError:
        return removed
    for folder in entries:
        if not folder.is_dir():
            continue
        lock_path = folder / LOCK_NAME
        try:
            handle = open(lock_path, "r+b")
        except FileNotFoundError:
            with contextlib.suppress(OSError):
                if time.time() - folder.stat().st_mtime > UNBORN_AGE_S:
                    shutil.rmtree(folder, ignore_errors=True)
                    removed.append(folder)
            continue
        except OSError:
            continue
        with handle:
            if not _try_lock(handle):
                continue  # its server lives
            if child_alive(folder):
                log.warning(
                    "%s belongs to a server that is gone, but its child still runs; left in place",
                    folder,
                )
                continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed

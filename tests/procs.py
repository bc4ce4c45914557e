"""Process checks shared by the tests that start and stop Lingma (or its stand-ins)."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path


def alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie waiting for a reaper counts as gone.

    The zombie check reads ``/proc`` (Linux); where there is none, signal 0 is all there
    is, and a zombie counts as running.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


async def wait_gone(pid: int, what: str, within: float = 10.0) -> None:
    """Wait until ``pid`` is gone; fail naming ``what`` if it is not within ``within`` s.

    No event exists for the death of a process that is not our child: poll. The bound is
    generous so a loaded machine does not fail a test that is only slow.
    """
    deadline = time.monotonic() + within
    while alive(pid):
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.02)


def with_marker(marker: str) -> list[int]:
    """Pids (as this process sees them) of live processes whose command line holds
    ``marker``: a command run in a sandbox's own PID namespace cannot tell us its pid
    (``$$`` and ``$!`` are that namespace's), so it is found by what it runs (Linux)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmdline and alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def sleeper() -> str:
    """A number of seconds for ``sleep`` that no other process runs with: a valid duration
    (days) that :func:`with_marker` finds the sleeper by."""
    import secrets

    return str(10**7 + secrets.randbelow(9 * 10**7))

"""Waiting on what is no event: processes, files and ``/proc``.

Most waits in the tests are events (a message arrived, a callback ran). What another
process does (it exits, it writes a file, a grandchild appears) can only be polled:
:func:`wait_until` is the one poller, bounded so a test fails saying what it waited for.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import anyio

T = TypeVar("T")

POLL_S = 0.01
# Generous: a loaded machine must not fail a test that is only slow.
WITHIN_S = 15.0


async def wait_until(
    condition: Callable[[], T], within: float = WITHIN_S, what: str | None = None
) -> T:
    """Poll ``condition`` until it returns something truthy, and return that.

    Fails (``TimeoutError``) after ``within`` seconds, naming ``what`` (or the condition).
    Runs on asyncio and trio alike (anyio)."""
    try:
        with anyio.fail_after(within):
            while not (value := condition()):  # noqa: ASYNC110 - no event to await
                await anyio.sleep(POLL_S)
    except TimeoutError:
        raise TimeoutError(f"waited {within} s for {what or condition}") from None
    return value


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


async def wait_gone(pid: int, what: str, within: float = WITHIN_S) -> None:
    """Wait until ``pid`` is gone; fail naming ``what`` if it is not within ``within`` s."""
    await wait_until(lambda: not alive(pid), within, what)


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

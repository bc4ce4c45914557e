"""Spawning, draining and reaping the Lingma child process.

The child gets stdin closed and stdout discarded: our stdout is the MCP stream, and
Lingma (like the simulator) prints there. Its stderr is read as it arrives, logged line by
line at DEBUG and kept in a small ring buffer so a start-up failure can quote its last lines.

We use a plain ``asyncio.SubprocessProtocol`` rather than ``create_subprocess_exec``:
``Process.wait()`` resolves only once the child has exited *and* its pipes are closed, so a
grandchild that inherited stderr would hide the exit. ``process_exited`` fires on the exit
itself, which is what the supervisor must notice.

Orphans: on Linux the child asks for SIGKILL when its parent dies (``PR_SET_PDEATHSIG``),
so a server killed with SIGKILL takes Lingma with it. The signal is tied to the *thread*
that forked, so spawn from the event loop thread (which ``loop.subprocess_exec`` does). On
macOS and Windows there is no such switch: a SIGKILLed server leaves Lingma running until
it is killed by hand or the next start finds it; an orderly exit (EOF, SIGTERM, SIGINT)
always reaps it through :meth:`LingmaProcess.terminate`.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import logging
import os
import signal
import subprocess
import sys
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path

log = logging.getLogger("lingma_mcp.lingma.process")
stderr_log = logging.getLogger("lingma_mcp.lingma.stderr")

STDERR_TAIL_LINES = 50
TERMINATE_GRACE = 5.0
# A line longer than this is cut: one runaway line must not grow memory without bound.
MAX_LINE_CHARS = 8192

_PR_SET_PDEATHSIG = 1


def _parent_death_signal_hook() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child die with its parent (Linux only)."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def hook() -> None:  # runs in the child between fork and exec
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        # The parent may have died before prctl took effect; then nobody would signal us.
        if os.getppid() != parent:
            os._exit(1)

    return hook


class _Protocol(asyncio.SubprocessProtocol):
    def __init__(self, owner: LingmaProcess) -> None:
        self._owner = owner
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._partial = ""

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        if fd != 2:
            return
        text = self._partial + self._decoder.decode(data)
        *lines, self._partial = text.split("\n")
        if len(self._partial) > MAX_LINE_CHARS:
            lines.append(self._partial)
            self._partial = ""
        for line in lines:
            self._owner._stderr_line(line)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if fd == 2:
            rest = self._partial + self._decoder.decode(b"", final=True)
            self._partial = ""
            if rest:
                self._owner._stderr_line(rest)
            if not self._owner._stderr_closed.done():
                self._owner._stderr_closed.set_result(None)

    def process_exited(self) -> None:
        self._owner._on_exit()


class LingmaProcess:
    """One running child. Create with :meth:`spawn`."""

    def __init__(self, name: str, tail_lines: int) -> None:
        self.name = name
        self.pid: int = 0
        self._transport: asyncio.SubprocessTransport | None = None
        self._tail: deque[str] = deque(maxlen=tail_lines)
        loop = asyncio.get_running_loop()
        self._exited: asyncio.Future[int] = loop.create_future()
        self._stderr_closed: asyncio.Future[None] = loop.create_future()

    @classmethod
    async def spawn(
        cls,
        argv: Sequence[str],
        *,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        name: str = "lingma",
        tail_lines: int = STDERR_TAIL_LINES,
    ) -> LingmaProcess:
        """Start ``argv``: stdin closed, stdout discarded, stderr drained.

        Must run on the event loop's thread (see the module note on the parent-death signal).

        Raises:
            OSError: the program could not be started (missing, not executable, bad cwd).
        """
        loop = asyncio.get_running_loop()
        self = cls(name, tail_lines)
        kwargs: dict[str, object] = {}
        hook = _parent_death_signal_hook()
        if hook is not None:
            kwargs["preexec_fn"] = hook
        transport, _ = await loop.subprocess_exec(
            lambda: _Protocol(self),
            *argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            cwd=str(cwd) if cwd is not None else None,
            env=env,
            **kwargs,
        )
        self._transport = transport
        self.pid = transport.get_pid()
        log.debug("[%s] spawned pid %d: %s", name, self.pid, " ".join(argv))
        # A very fast child may already have exited before the transport was handed back.
        if transport.get_returncode() is not None:
            self._on_exit()
        return self

    # -- called by the protocol ----------------------------------------------------------
    def _stderr_line(self, line: str) -> None:
        line = line.rstrip("\r")[:MAX_LINE_CHARS]
        self._tail.append(line)
        stderr_log.debug("[%s %d] %s", self.name, self.pid, line)

    def _on_exit(self) -> None:
        if self._exited.done() or self._transport is None:
            return
        code = self._transport.get_returncode()
        if code is None:
            return
        log.debug("[%s] pid %d exited with %s", self.name, self.pid, code)
        self._exited.set_result(code)

    # -- public --------------------------------------------------------------------------
    @property
    def returncode(self) -> int | None:
        """The exit code once the child has exited (negative: killed by that signal)."""
        return self._exited.result() if self._exited.done() else None

    @property
    def exited(self) -> asyncio.Future[int]:
        """Resolves with the exit code when the child exits. Await it via ``asyncio.shield``
        if you may cancel the waiter; it is shared."""
        return self._exited

    async def wait(self) -> int:
        return await asyncio.shield(self._exited)

    async def stderr_drained(self, timeout: float) -> None:
        """Wait (up to ``timeout``) for stderr's end, so a tail read after an exit is whole.

        The exit and the last bytes of stderr arrive on different paths, in either order.
        """
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._stderr_closed), timeout)

    def stderr_tail(self) -> list[str]:
        """The last lines Lingma wrote to stderr (at most ``tail_lines``)."""
        return list(self._tail)

    async def terminate(self, grace: float = TERMINATE_GRACE) -> int | None:
        """SIGTERM, wait ``grace`` seconds, SIGKILL, reap. Idempotent; returns the exit code.

        On Windows ``terminate`` is already a hard kill. If the caller is cancelled while
        waiting, the child gets SIGKILL at once: a shutdown cut short never leaves it running.
        """
        transport = self._transport
        if transport is None:
            return None
        try:
            await self._stop(transport, grace)
        except asyncio.CancelledError:
            self.kill_now()
            raise
        transport.close()
        return self.returncode

    async def _stop(self, transport: asyncio.SubprocessTransport, grace: float) -> None:
        if not self._exited.done():
            with contextlib.suppress(ProcessLookupError):
                transport.terminate()
            try:
                await asyncio.wait_for(asyncio.shield(self._exited), grace)
            except asyncio.TimeoutError:
                log.warning(
                    "[%s] pid %d ignored SIGTERM for %g s; sending SIGKILL",
                    self.name,
                    self.pid,
                    grace,
                )
                with contextlib.suppress(ProcessLookupError):
                    transport.kill()
                # After SIGKILL the exit is a matter of the kernel; bound it anyway.
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(asyncio.shield(self._exited), 5.0)

    def kill_now(self) -> None:
        """Send SIGKILL without waiting (for last-resort cleanup paths that cannot await)."""
        if self._transport is not None and not self._exited.done():
            with contextlib.suppress(ProcessLookupError):
                self._transport.kill()

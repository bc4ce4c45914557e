"""Spawning, draining and reaping one supervised child process (any protocol).

By default the child gets stdin closed and stdout discarded: our stdout is the MCP stream,
and the IDE binary (like the simulator) prints there. With ``pipes=True`` stdin and stdout
are kept for a protocol spoken over stdio (the official CLI speaks ACP that way): bytes
written with :meth:`ChildProcess.write` (or :attr:`ChildProcess.stdin`, which also waits for
room and closes) go to its stdin, and its stdout feeds :attr:`ChildProcess.stdout`. Stderr
is read as it arrives, redacted, logged line by line at DEBUG and kept in a small ring
buffer so a start-up failure or a crash can quote its last lines (:attr:`ChildProcess.ended`
says when they are all in).

The child leads its own session and process group, so stopping it stops whatever it
started too: SIGTERM goes to the whole group, then after a grace SIGKILL to the whole
group, then the exit is reaped. Nothing it forked is left behind as an orphan.

We use a plain ``asyncio.SubprocessProtocol`` rather than ``create_subprocess_exec``:
``Process.wait()`` resolves only once the child has exited *and* its pipes are closed, so a
grandchild that inherited stderr would hide the exit. ``process_exited`` fires on the exit
itself, which is what the supervisor must notice.

Orphans: on Linux the child asks for SIGKILL when its parent dies (``PR_SET_PDEATHSIG``),
so a server killed with SIGKILL takes Lingma with it. The signal is tied to the *thread*
that forked, so spawn from the event loop thread (which ``loop.subprocess_exec`` does). On
macOS and Windows there is no such switch: a SIGKILLed server leaves Lingma running until
it is killed by hand or the next start finds it; an orderly exit (EOF, SIGTERM, SIGINT)
always reaps it through :meth:`ChildProcess.terminate`.
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

from ..redact import redact

log = logging.getLogger("lingma_mcp.process")
# Kept under the old name: users raise this one logger to DEBUG to see Lingma's stderr.
stderr_log = logging.getLogger("lingma_mcp.lingma.stderr")

STDERR_TAIL_LINES = 50
TERMINATE_GRACE = 5.0
# After the exit, how long the last of stderr may take to arrive (a grandchild holding the
# pipe open must not hold the news of the exit back longer).
STDERR_AFTER_EXIT = 0.5
# After stdout ends, how long its end waits for the exit that usually follows at once.
STDOUT_END_WAIT = 1.0
# asyncio's own default: how long a line ``StreamReader.readuntil`` may hold on stdout.
STDOUT_LIMIT = 64 * 1024
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


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid runs (a zombie counts as gone where it can be told).

    Never signals on Windows, where ``os.kill`` would terminate the process.
    """
    if pid <= 0:
        return False
    if sys.platform == "win32":
        import ctypes

        kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return False
        code = ctypes.c_ulong()
        try:
            kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
        finally:
            kernel32.CloseHandle(handle)
        return code.value == 259  # STILL_ACTIVE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc (macOS): signal 0 is all there is
    return state not in ("Z", "X")


class StdinPipe:
    """The child's stdin for a protocol: write, wait for room with :meth:`drain`, close.

    The shape of a ``StreamWriter`` that a line protocol needs, without a stream protocol
    under it: the flow control comes from the subprocess protocol's pause/resume.
    """

    def __init__(self, name: str, transport: asyncio.WriteTransport) -> None:
        self._name = name
        self._transport = transport
        self._room = asyncio.Event()
        self._room.set()
        self._lost = False

    def write(self, data: bytes) -> None:
        """Queue ``data`` for the child's stdin.

        Raises:
            ConnectionResetError: stdin is closed (by us, or the child closed its end).
        """
        if self._lost or self._transport.is_closing():
            raise ConnectionResetError(f"{self._name}: its stdin is closed")
        self._transport.write(data)

    async def drain(self) -> None:
        """Wait while the child reads slower than we write (the pipe's buffer is full).

        Raises:
            ConnectionResetError: stdin closed before the buffer emptied.
        """
        await self._room.wait()
        if self._lost:
            raise ConnectionResetError(f"{self._name}: its stdin is closed")

    def close(self) -> None:
        """Close stdin (EOF for the child; a child that ignores EOF keeps running)."""
        self._transport.close()

    def _pause(self) -> None:
        self._room.clear()

    def _resume(self) -> None:
        self._room.set()

    def _lose(self) -> None:
        self._lost = True
        self._room.set()  # wake writers waiting for room: there will be none


class _Protocol(asyncio.SubprocessProtocol):
    def __init__(self, owner: ChildProcess) -> None:
        self._owner = owner
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._partial = ""

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        if fd == 1:
            if self._owner.stdout is not None:
                self._owner.stdout.feed_data(data)
            return
        if fd != 2:
            return
        text = self._partial + self._decoder.decode(data)
        *lines, self._partial = text.split("\n")
        if len(self._partial) > MAX_LINE_CHARS:
            lines.append(self._partial)
            self._partial = ""
        for line in lines:
            self._owner._stderr_line(line)

    # The subprocess transport relays stdin's flow control here: the only pipe we write.
    def pause_writing(self) -> None:
        if self._owner.stdin is not None:
            self._owner.stdin._pause()

    def resume_writing(self) -> None:
        if self._owner.stdin is not None:
            self._owner.stdin._resume()

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if fd == 0 and self._owner.stdin is not None:
            self._owner.stdin._lose()
        if fd == 1 and self._owner.stdout is not None:
            self._owner._stdout_closed()
        if fd == 2:
            rest = self._partial + self._decoder.decode(b"", final=True)
            self._partial = ""
            if rest:
                self._owner._stderr_line(rest)
            if not self._owner._stderr_closed.done():
                self._owner._stderr_closed.set_result(None)

    def process_exited(self) -> None:
        self._owner._on_exit()


class ChildProcess:
    """One running child, leading its own process group. Create with :meth:`spawn`."""

    def __init__(self, name: str, tail_lines: int) -> None:
        self.name = name
        self.pid: int = 0
        self._transport: asyncio.SubprocessTransport | None = None
        self._tail: deque[str] = deque(maxlen=tail_lines)
        loop = asyncio.get_running_loop()
        self._exited: asyncio.Future[int] = loop.create_future()
        self._stderr_closed: asyncio.Future[None] = loop.create_future()
        self._ended: asyncio.Future[int] = loop.create_future()
        self._group = False
        self.stdout: asyncio.StreamReader | None = None
        self.stdin: StdinPipe | None = None

    @classmethod
    async def spawn(
        cls,
        argv: Sequence[str],
        *,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        name: str = "child",
        tail_lines: int = STDERR_TAIL_LINES,
        pipes: bool = False,
        stdout_limit: int = STDOUT_LIMIT,
    ) -> ChildProcess:
        """Start ``argv`` in a new session: stderr drained; stdin and stdout per ``pipes``.

        Must run on the event loop's thread (see the module note on the parent-death signal).

        Args:
            pipes: keep stdin and stdout for a protocol spoken over stdio; without it
                stdin is closed and stdout discarded.
            stdout_limit: the longest line ``stdout.readuntil`` may hold (with ``pipes``).

        Raises:
            OSError: the program could not be started (missing, not executable, bad cwd).
        """
        loop = asyncio.get_running_loop()
        self = cls(name, tail_lines)
        if pipes:
            self.stdout = asyncio.StreamReader(limit=stdout_limit)
        kwargs: dict[str, object] = {}
        hook = _parent_death_signal_hook()
        if hook is not None:
            kwargs["preexec_fn"] = hook
        if sys.platform != "win32":
            kwargs["start_new_session"] = True
        transport, _ = await loop.subprocess_exec(
            lambda: _Protocol(self),
            *argv,
            stdin=subprocess.PIPE if pipes else subprocess.DEVNULL,
            stdout=subprocess.PIPE if pipes else subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            cwd=str(cwd) if cwd is not None else None,
            env=env,
            **kwargs,
        )
        self._transport = transport
        stdin = transport.get_pipe_transport(0)
        if pipes and stdin is not None:
            self.stdin = StdinPipe(name, stdin)  # type: ignore[arg-type]
        self.pid = transport.get_pid()
        self._group = sys.platform != "win32"
        log.debug("[%s] spawned pid %d: %s", name, self.pid, redact(" ".join(argv)))
        # A very fast child may already have exited before the transport was handed back.
        if transport.get_returncode() is not None:
            self._on_exit()
        return self

    # -- called by the protocol ----------------------------------------------------------
    def _stderr_line(self, line: str) -> None:
        # Redacted before it is kept: the tail reaches error texts the host sees.
        line = redact(line.rstrip("\r")[:MAX_LINE_CHARS])
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
        if self._stderr_closed.done():
            self._end()
        else:
            self._stderr_closed.add_done_callback(lambda _: self._end())
            asyncio.get_running_loop().call_later(STDERR_AFTER_EXIT, self._end)

    def _end(self) -> None:
        if not self._ended.done():
            self._ended.set_result(self._exited.result())

    def _stdout_closed(self) -> None:
        # Whoever reads stdout's end (the protocol) reports the child lost; by then its exit
        # code and last stderr lines should be known, so the end waits for them (bounded:
        # a child that closed stdout may live on).
        stdout = self.stdout
        assert stdout is not None
        if self._ended.done():
            stdout.feed_eof()
            return

        fed = False

        def feed(*_: object) -> None:
            nonlocal fed
            if not fed:
                fed = True
                stdout.feed_eof()

        self._ended.add_done_callback(feed)
        asyncio.get_running_loop().call_later(STDOUT_END_WAIT, feed)

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

    @property
    def ended(self) -> asyncio.Future[int]:
        """Resolves with the exit code once the child has exited and its stderr has been
        read to the end (or :data:`STDERR_AFTER_EXIT` after the exit): then
        :meth:`stderr_tail` holds its last words. With pipes, stdout's end is delivered
        only after this (or :data:`STDOUT_END_WAIT` after it closed), so a reader that
        sees the end finds the cause already known. Shared: shield it before cancelling."""
        return self._ended

    async def stderr_drained(self, timeout: float) -> None:
        """Wait (up to ``timeout``) for stderr's end, so a tail read after an exit is whole.

        The exit and the last bytes of stderr arrive on different paths, in either order.
        """
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._stderr_closed), timeout)

    def stderr_tail(self) -> list[str]:
        """The last lines the child wrote to stderr, redacted (at most ``tail_lines``)."""
        return list(self._tail)

    def write(self, data: bytes) -> None:
        """Send ``data`` to the child's stdin (only with ``pipes=True``).

        Raises:
            RuntimeError: the child was spawned without pipes.
            ConnectionResetError: its stdin is closed.
        """
        if self.stdin is None:
            raise RuntimeError(f"{self.name}: no stdin to write to")
        self.stdin.write(data)

    async def terminate(
        self, grace: float = TERMINATE_GRACE, *, slow_to_stop: bool = False
    ) -> int | None:
        """SIGTERM to the group, wait ``grace`` s, SIGKILL to the group, reap. Idempotent.

        ``grace`` 0: no SIGTERM at all, SIGKILL to the group at once, for a program whose
        own SIGTERM handling takes longer than anyone can wait (nothing then waits on it).
        ``slow_to_stop``: the program is known to outlast ``grace``, so the SIGKILL is
        routine, not news.

        Returns the exit code. On Windows ``terminate`` is already a hard kill. If the caller
        is cancelled while waiting, the group gets SIGKILL at once: a shutdown cut short
        never leaves anything running.
        """
        transport = self._transport
        if transport is None:
            return None
        try:
            await self._stop(transport, grace, logging.INFO if slow_to_stop else logging.WARNING)
        except asyncio.CancelledError:
            self.kill_now()
            raise
        # The leader is gone; whatever it started and left behind goes with it.
        self._signal_group(signal.SIGKILL if self._group else None)
        transport.close()
        return self.returncode

    async def _stop(self, transport: asyncio.SubprocessTransport, grace: float, level: int) -> None:
        if not self._exited.done() and grace <= 0:
            log.debug("[%s] pid %d: SIGKILL to its group, no grace", self.name, self.pid)
            self.kill_now()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._exited), 5.0)
        elif not self._exited.done():
            self._signal(signal.SIGTERM)
            # A stopped (SIGSTOP) child would hold SIGTERM pending until the grace ran out.
            self._signal(getattr(signal, "SIGCONT", None))
            try:
                await asyncio.wait_for(asyncio.shield(self._exited), grace)
            except asyncio.TimeoutError:
                log.log(
                    level,
                    "[%s] pid %d ignored SIGTERM for %g s; sending SIGKILL",
                    self.name,
                    self.pid,
                    grace,
                )
                self.kill_now()
                # After SIGKILL the exit is a matter of the kernel; bound it anyway.
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(asyncio.shield(self._exited), 5.0)

    def _signal(self, sig: int | None) -> None:
        if sig is None or self._transport is None:
            return
        if self._group:
            self._signal_group(sig)
        elif sig == signal.SIGTERM:
            with contextlib.suppress(ProcessLookupError):
                self._transport.terminate()
        elif not self._exited.done():
            with contextlib.suppress(ProcessLookupError):
                self._transport.send_signal(sig)

    def _signal_group(self, sig: int | None) -> None:
        if sig is None or not self._group or self.pid <= 0:
            return
        # The group id is the leader's pid. Linux never hands out a pid still in use as a
        # group id, so this cannot reach a stranger's group once ours has emptied.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    def kill_now(self) -> None:
        """SIGKILL the whole group without waiting (for cleanup paths that cannot await)."""
        if self._transport is None:
            return
        if self._group:
            self._signal_group(signal.SIGKILL)
        elif not self._exited.done():
            with contextlib.suppress(ProcessLookupError):
                self._transport.kill()

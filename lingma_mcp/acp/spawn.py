"""Spawning and reaping the ``qoderclicn --acp`` child: pipes, process group, stderr.

The one place that knows how the CLI runs as a process, so it can give way to the shared
``lingma_mcp.process`` package without touching the protocol code above it.

- stdin and stdout are pipes that carry ACP; stderr is drained line by line into DEBUG
  logs, redacted (the CLI dumps every JSON-RPC error there, and might dump more).
- The child leads its own process group: the CLI is a Node program that may start
  helpers, and it does **not** exit when its stdin closes, so ending it means signalling
  the whole group: SIGTERM, a grace period (1.1.52 takes ~8.5 s), then SIGKILL.
- On Linux the child also asks for SIGKILL when its parent dies, so a server killed with
  SIGKILL does not leave it behind (grandchildren in its group may outlive it there).
- The exit is learnt from ``process_exited`` itself, not ``Process.wait()``, which also
  waits for every pipe to close (a helper holding stderr would hide the exit).
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import logging
import os
import signal
import subprocess
from asyncio.subprocess import SubprocessStreamProtocol
from collections import deque
from collections.abc import Sequence
from pathlib import Path

from lingma_mcp.process.child import _parent_death_signal_hook
from lingma_mcp.redact import redact

log = logging.getLogger("lingma_mcp.acp.spawn")
stderr_log = logging.getLogger("lingma_mcp.acp.stderr")

TERMINATE_GRACE = 10.0
STDERR_TAIL_LINES = 50
MAX_LINE_CHARS = 8192
# One ACP line may carry a whole file (fs/write_text_file); the reader must hold it.
STDOUT_LIMIT = 64 * 1024 * 1024


class _Protocol(SubprocessStreamProtocol):
    """The stdlib stream protocol, plus stderr read as lines and the exit seen at once."""

    def __init__(self, owner: AgentProcess, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(limit=STDOUT_LIMIT, loop=loop)
        self._owner = owner
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._partial = ""

    def pipe_data_received(self, fd: int, data: bytes | str) -> None:
        if fd != 2:
            super().pipe_data_received(fd, data)
            return
        raw = data if isinstance(data, bytes) else data.encode()
        text = self._partial + self._decoder.decode(raw)
        *lines, self._partial = text.split("\n")
        if len(self._partial) > MAX_LINE_CHARS:
            lines.append(self._partial)
            self._partial = ""
        for line in lines:
            self._owner._stderr_line(line)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if fd == 2:
            if self._partial:
                self._owner._stderr_line(self._partial)
                self._partial = ""
            if not self._owner.stderr_closed.done():
                self._owner.stderr_closed.set_result(None)
        super().pipe_connection_lost(fd, exc)

    def process_exited(self) -> None:
        super().process_exited()
        self._owner._on_exit()


class AgentProcess:
    """One running agent child. Create with :meth:`spawn`; end with :meth:`terminate`."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.pid = 0
        self._process: asyncio.subprocess.Process | None = None
        self._tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
        loop = asyncio.get_running_loop()
        self._exited: asyncio.Future[int] = loop.create_future()
        # Resolves when stderr ends, so a tail read after an exit is whole.
        self.stderr_closed: asyncio.Future[None] = loop.create_future()

    @classmethod
    async def spawn(
        cls,
        argv: Sequence[str],
        *,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        name: str = "qoderclicn",
    ) -> AgentProcess:
        """Start ``argv`` in a new process group with ACP pipes. Run on the loop's thread.

        Raises:
            OSError: the program could not be started (missing, not executable, bad cwd).
        """
        loop = asyncio.get_running_loop()
        self = cls(name)
        kwargs: dict[str, object] = {}
        hook = _parent_death_signal_hook()
        if hook is not None:
            kwargs["preexec_fn"] = hook
        transport, protocol = await loop.subprocess_exec(
            lambda: _Protocol(self, loop),
            *argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=str(cwd) if cwd is not None else None,
            env=env,
            start_new_session=True,
            **kwargs,
        )
        self._process = asyncio.subprocess.Process(transport, protocol, loop)
        self.pid = self._process.pid
        log.debug("[%s] spawned pid %d: %s", name, self.pid, " ".join(argv))
        if transport.get_returncode() is not None:
            self._on_exit()
        return self

    @property
    def reader(self) -> asyncio.StreamReader:
        """The child's stdout (ACP messages, and whatever else it prints there)."""
        assert self._process is not None and self._process.stdout is not None
        return self._process.stdout

    @property
    def writer(self) -> asyncio.StreamWriter:
        """The child's stdin (ACP messages to the agent)."""
        assert self._process is not None and self._process.stdin is not None
        return self._process.stdin

    @property
    def exited(self) -> asyncio.Future[int]:
        """Resolves with the exit code when the child exits (shared: shield it)."""
        return self._exited

    @property
    def returncode(self) -> int | None:
        return self._exited.result() if self._exited.done() else None

    def stderr_tail(self) -> list[str]:
        """The last lines the agent wrote on stderr, redacted."""
        return list(self._tail)

    def _stderr_line(self, line: str) -> None:
        line = redact(line.rstrip("\r")[:MAX_LINE_CHARS])
        self._tail.append(line)
        stderr_log.debug("[%s %d] %s", self.name, self.pid, line)

    def _on_exit(self) -> None:
        if self._exited.done() or self._process is None:
            return
        code = self._process.returncode
        if code is None:
            return
        log.debug("[%s] pid %d exited with %s", self.name, self.pid, code)
        self._exited.set_result(code)

    def _signal_group(self, sig: signal.Signals) -> None:
        # The group outlives its leader while helpers remain, so signal it even after the
        # leader exited; ProcessLookupError means the whole group is gone.
        if not self.pid:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    async def terminate(self, grace: float = TERMINATE_GRACE) -> int | None:
        """SIGTERM the group, wait ``grace`` s for the leader, SIGKILL the group. Idempotent.

        Cancelled while waiting, the group gets SIGKILL at once: a shutdown cut short never
        leaves the agent running.
        """
        if self._process is None:
            return None
        try:
            if not self._exited.done():
                self._signal_group(signal.SIGTERM)
                try:
                    await asyncio.wait_for(asyncio.shield(self._exited), grace)
                except asyncio.TimeoutError:
                    log.info(
                        "[%s] pid %d still running %g s after SIGTERM; sending SIGKILL",
                        self.name,
                        self.pid,
                        grace,
                    )
        except asyncio.CancelledError:
            self.kill_now()
            raise
        # Whatever is left of the group (helpers that ignored SIGTERM) goes now.
        self._signal_group(signal.SIGKILL)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._exited), 5.0)
        with contextlib.suppress(Exception):
            self.writer.close()
        return self.returncode

    def kill_now(self) -> None:
        """SIGKILL the group without waiting (for cleanup paths that cannot await)."""
        self._signal_group(signal.SIGKILL)

"""Commands run for a call: sandboxed, in a clean environment, each in its own process
group, output bounded and redacted, time-limited.

Every command runs through :func:`sandbox.wrap` with the call's spec when the server gives
one (writes only in the workspace and the call's private temporary folder, no network,
nothing left behind; see ``sandbox/``), in the environment :func:`command_env.clean_env`
builds from the server's, with the agent's own entries on top (the gate has refused those
that change what runs before they get here). The private temporary folder (0700) is the
command's ``TMPDIR`` and is removed when the call ends. Output is redacted before anyone
reads it, and a sandboxed command that failed on a refusal gets a last paragraph saying
what the sandbox allows.

Each command is the leader of a new session (so of a new process group); killing means
SIGKILL to the whole group, which takes along whatever the command started in the
background. A time limit kills the group when it expires; :meth:`Terminals.close` kills
every group the call started, and is what the call's end, cancellation and the server's
exit go through.

We use an ``asyncio.SubprocessProtocol`` rather than ``create_subprocess_exec``: the
exit must be seen when the command exits, even if a grandchild still holds the output
pipe open. Output is kept in a bytearray trimmed from the front; CPython trims a
bytearray's front by moving its start, so keeping the last 64 KiB costs O(bytes read).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from ..redact import redact
from .command_env import clean_env
from .sandbox import SandboxSpec, SandboxSupport, explain, looks_refused, wrap
from .workspace_errors import WorkspaceError

log = logging.getLogger("lingma_mcp.workspace.terminals")

OUTPUT_LIMIT = 64 * 1024
MAX_OUTPUT_LIMIT = 16 * 1024 * 1024
COMMAND_TIMEOUT = 300.0
# How long close() waits for killed commands to be reaped before giving up on them.
REAP_WAIT = 5.0
# After a command exits, how long to wait for the rest of its output. The exit and the
# last bytes arrive as separate events in either order; the pipe normally closes at once,
# and only stays open when something the command left running holds it.
DRAIN_WAIT = 1.0


@dataclass
class TerminalOutput:
    """A command's output so far (the last bytes of it) and its state."""

    output: str
    truncated: bool
    exit_code: int | None
    running: bool
    signal: str | None = None
    timed_out: bool = False


class _Terminal:
    def __init__(
        self, terminal_id: str, command: str, limit: int, spec: SandboxSpec | None
    ) -> None:
        self.id = terminal_id
        self.command = command
        self.limit = limit
        self.spec = spec
        self.pid = 0
        self.buffer = bytearray()
        self.truncated = False
        self.timed_out = False
        self.transport: asyncio.SubprocessTransport | None = None
        loop = asyncio.get_running_loop()
        self.exited: asyncio.Future[None] = loop.create_future()
        self.drained: asyncio.Future[None] = loop.create_future()
        self.timer: asyncio.TimerHandle | None = None

    def append(self, data: bytes) -> None:
        self.buffer += data
        excess = len(self.buffer) - self.limit
        if excess > 0:
            del self.buffer[:excess]
            self.truncated = True

    def on_exit(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        if not self.exited.done():
            self.exited.set_result(None)
            # The output is complete when the pipe closes, or DRAIN_WAIT after the exit.
            asyncio.get_running_loop().call_later(DRAIN_WAIT, self.mark_drained)

    def mark_drained(self) -> None:
        if not self.drained.done():
            self.drained.set_result(None)

    def kill_group(self) -> None:
        if self.pid <= 0:
            return
        # The group outlives its leader while any member runs, so this is tried even after
        # the leader exited. The pgid is the leader's pid (start_new_session).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)

    def snapshot(self) -> TerminalOutput:
        data = bytes(self.buffer)
        if self.truncated:
            # The cut may have split a character: drop its continuation bytes.
            skip = 0
            while skip < min(3, len(data)) and data[skip] & 0xC0 == 0x80:
                skip += 1
            data = data[skip:]
        text = redact(data.decode("utf-8", errors="replace"))
        running = not (self.exited.done() and self.drained.done())
        code: int | None = None
        sig: str | None = None
        if not running and self.transport is not None:
            rc = self.transport.get_returncode()
            if rc is not None and rc < 0:
                try:
                    sig = signal.Signals(-rc).name
                except ValueError:
                    sig = str(-rc)
            else:
                code = rc
        if not running and code != 0 and self.spec is not None and looks_refused(text):
            sep = "" if not text or text.endswith("\n") else "\n"
            text = f"{text}{sep}{explain(self.spec)}\n"
        return TerminalOutput(text, self.truncated, code, running, sig, self.timed_out)


class _Protocol(asyncio.SubprocessProtocol):
    def __init__(self, terminal: _Terminal) -> None:
        self._terminal = terminal

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        self._terminal.append(data)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        self._terminal.mark_drained()

    def process_exited(self) -> None:
        self._terminal.on_exit()


def shell_argv(command: str) -> list[str]:
    """How a command line is run: through bash when there is one, else ``/bin/sh``."""
    return [shutil.which("bash") or "/bin/sh", "-c", command]


class Terminals:
    """The commands of one call.

    Args:
        command_timeout: seconds after which a command's group is killed.
        output_limit: bytes of output kept per command (the last ones).
        sandbox: the call's sandbox (:func:`sandbox.command_spec`); its ``tmpdir`` is
            replaced by this call's own. ``None``: commands run unconfined (what the
            server passes decides; ``--sandbox off`` passes a spec whose mode is off).
        passthrough_env: names of the server's environment the person listed
            (``--command-env``), passed on besides the allowlist.
        environ: the environment commands are taken from (the server's by default).
        sandbox_support: what the machine can enforce (probed when not given; tests pass
            a narrower one to exercise the fallbacks).
    """

    def __init__(
        self,
        *,
        command_timeout: float = COMMAND_TIMEOUT,
        output_limit: int = OUTPUT_LIMIT,
        sandbox: SandboxSpec | None = None,
        passthrough_env: Sequence[str] = (),
        environ: Mapping[str, str] | None = None,
        sandbox_support: SandboxSupport | None = None,
    ) -> None:
        self.command_timeout = command_timeout
        self.output_limit = output_limit
        self.sandbox = sandbox
        self._passthrough = tuple(passthrough_env)
        self._environ = environ
        self._support = sandbox_support
        self._tmpdir: Path | None = None
        self._remove_tmpdir: weakref.finalize | None = None
        self._terminals: dict[str, _Terminal] = {}
        self._released: list[_Terminal] = []  # still killed and reaped by close()
        self._count = 0
        self._closed = False

    @property
    def tmpdir(self) -> Path | None:
        """The call's private temporary folder: made (0700) by the first command, removed
        when the call ends."""
        return self._tmpdir

    def _environment(self, env: Mapping[str, str] | None) -> tuple[dict[str, str], Path]:
        if self._tmpdir is None:
            self._tmpdir = Path(tempfile.mkdtemp(prefix="lingma-call-"))
            # Removed at close(); and, should a caller never close, when this object is
            # collected or the process exits.
            self._remove_tmpdir = weakref.finalize(
                self, shutil.rmtree, self._tmpdir, ignore_errors=True
            )
        source = os.environ if self._environ is None else self._environ
        full = clean_env(source, passthrough=self._passthrough)
        if env:
            full.update(env)
        full["TMPDIR"] = str(self._tmpdir)  # the call's own, whatever was asked
        return full, self._tmpdir

    async def start(
        self,
        argv: list[str],
        *,
        cwd: Path,
        env: dict[str, str] | None = None,
        output_limit: int | None = None,
        display: str | None = None,
    ) -> str:
        """Start ``argv`` in ``cwd``; returns its terminal id at once.

        ``env`` is merged over the clean environment: entries that change what runs must
        have been refused before (``command_env.refused_env_names``).

        Raises:
            WorkspaceError: the program could not be started (or cannot be sandboxed
                here: ``SandboxUnavailable``), or the call is over.
        """
        if self._closed:
            raise WorkspaceError("this call has ended; no more commands can be started")
        limit = self.output_limit if output_limit is None else output_limit
        limit = max(1, min(limit, MAX_OUTPUT_LIMIT))
        full_env, tmpdir = self._environment(env)
        command = display or " ".join(argv)
        spec = None
        if self.sandbox is not None and self.sandbox.confined:
            spec = replace(self.sandbox, tmpdir=tmpdir)
            # The launcher could only say so in the output: refuse a missing program here,
            # as an unconfined start does.
            _check_program(argv[0], cwd, full_env)
            argv = wrap(argv, spec, found=self._support)
        self._count += 1
        terminal = _Terminal(f"term-{self._count}", command, limit, spec)
        loop = asyncio.get_running_loop()
        try:
            transport, _ = await loop.subprocess_exec(
                lambda: _Protocol(terminal),
                *argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                cwd=str(cwd),
                env=full_env,
                start_new_session=True,
            )
        except OSError as exc:
            raise WorkspaceError(f"cannot run {terminal.command}: {exc.strerror or exc}") from None
        terminal.transport = transport
        terminal.pid = transport.get_pid()
        self._terminals[terminal.id] = terminal
        if self._closed:  # the call ended while the command was starting: it dies too
            terminal.kill_group()
            raise WorkspaceError("this call has ended; no more commands can be started")
        if transport.get_returncode() is not None:
            terminal.on_exit()
        else:
            terminal.timer = loop.call_later(self.command_timeout, self._expire, terminal)
        log.debug("started %s (pid %d): %s", terminal.id, terminal.pid, terminal.command)
        return terminal.id

    def _expire(self, terminal: _Terminal) -> None:
        if terminal.exited.done():
            return
        log.info("%s ran past %g s; killing its process group", terminal.id, self.command_timeout)
        terminal.timed_out = True
        terminal.kill_group()

    def _get(self, terminal_id: str) -> _Terminal:
        try:
            return self._terminals[terminal_id]
        except KeyError:
            raise WorkspaceError(
                f"there is no terminal {terminal_id!r} in this call (it was never started "
                "here, or it was released)"
            ) from None

    def pid(self, terminal_id: str) -> int:
        return self._get(terminal_id).pid

    def output(self, terminal_id: str) -> TerminalOutput:
        return self._get(terminal_id).snapshot()

    async def wait(self, terminal_id: str) -> TerminalOutput:
        terminal = self._get(terminal_id)
        await asyncio.shield(terminal.exited)
        await asyncio.shield(terminal.drained)
        return terminal.snapshot()

    def kill(self, terminal_id: str) -> None:
        self._get(terminal_id).kill_group()

    def release(self, terminal_id: str) -> None:
        terminal = self._terminals.pop(terminal_id, None)
        if terminal is None:
            return
        terminal.kill_group()
        if terminal.transport is not None and terminal.exited.done():
            terminal.transport.close()
        else:
            self._released.append(terminal)

    async def close(self) -> None:
        """Kill every command's group and wait (briefly) for them to be reaped."""
        self._closed = True
        terminals = [*self._terminals.values(), *self._released]
        for terminal in terminals:
            terminal.kill_group()
            if terminal.timer is not None:
                terminal.timer.cancel()
        pending = [f for t in terminals for f in (t.exited, t.drained) if not f.done()]
        if pending:
            _, still = await asyncio.wait(pending, timeout=REAP_WAIT)
            if still:
                log.warning("%d killed command(s) were not reaped in time", len(still))
        for terminal in terminals:
            if terminal.transport is not None:
                terminal.transport.close()
        if self._remove_tmpdir is not None:
            self._remove_tmpdir()


def _check_program(program: str, cwd: Path, env: Mapping[str, str]) -> None:
    """Raise unless ``program`` is found as the command's own PATH and folder find it.

    Raises:
        WorkspaceError: there is no such program.
    """
    if "/" in program:
        path = cwd / program
        if os.access(path, os.X_OK) and not path.is_dir():
            return
    elif shutil.which(program, path=env.get("PATH", os.defpath)) is not None:
        return
    raise WorkspaceError(f"cannot run {program}: no such program (or it is not executable)")

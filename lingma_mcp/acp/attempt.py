"""One start-up attempt of the CLI backend: spawn ``qoderclicn --acp``, then ``initialize``.

The supervisor (states, backoff, restarts) lives elsewhere and calls :func:`start_agent`
once per attempt; an attempt keeps no state of its own. It returns an :class:`AgentHandle`
exposing the client, a future that resolves when the agent is lost, and ``close()``; or
it raises with everything already cleaned up (no child is left behind by a failed attempt).

The child itself is a :class:`~lingma_mcp.process.ChildProcess` with pipes, like the IDE
binary's: its own process group (the CLI is a Node program that may start helpers, and it
does **not** exit when its stdin closes, nor soon after SIGTERM, so ending it means SIGKILL
to the whole group), stderr drained into DEBUG logs redacted, SIGKILL on the parent's death.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lingma_mcp.acp.acp_client import CONTROL_TIMEOUT, SESSION_TIMEOUT, AcpClient
from lingma_mcp.acp.cli_discovery import NodeMissing, node_path
from lingma_mcp.acp.transport import LineTransport
from lingma_mcp.errors import LingmaConnectionLost, LingmaStartupError
from lingma_mcp.process.child import ChildProcess

log = logging.getLogger("lingma_mcp.acp.attempt")

ACP_FLAG = "--acp"
CHILD_NAME = "qoderclicn"
# SIGTERM to SIGKILL. 0: SIGKILL to the group at once. Logged out, 1.1.52 takes ~8.5 s over
# SIGTERM, far past the 2 s a host allows after closing our stdin; by the time it is ended
# it is idle and its transcripts are on disk, so nothing waits on its SIGTERM handling.
TERMINATE_GRACE = 0.0
# One ACP line may carry a whole file (fs/write_text_file); the reader must hold it.
STDOUT_LIMIT = 64 * 1024 * 1024
# Without it the CLI reports zeros for every token count in a prompt's result.
USAGE_VARIABLE = "QODERCN_EXPOSE_TOKEN_USAGE"


@dataclass
class AgentHandle:
    """A running, initialized agent: its client, its loss, its end."""

    process: ChildProcess
    client: AcpClient
    terminate_grace: float = TERMINATE_GRACE
    lost: asyncio.Future[None] = field(init=False)

    def __post_init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.lost = loop.create_future()
        # The end, not the bare exit: by then its last stderr lines are in, so the loss can
        # quote them (its stdout's end is held back until then too).
        for source in (self.process.ended, self.client.transport.eof):
            source.add_done_callback(self._on_lost)

    def _on_lost(self, _: asyncio.Future[object]) -> None:
        if not self.lost.done():
            self.lost.set_result(None)

    @property
    def pid(self) -> int:
        return self.process.pid

    def loss(self) -> LingmaConnectionLost:
        """Why the agent is gone: its exit code (or signal) and its last stderr line."""
        process = self.process
        return LingmaConnectionLost.process_ended(
            "the Lingma CLI", process.returncode, process.stderr_tail()
        )

    async def close(self) -> int | None:
        """Close the connection, then end the agent's whole process group. Idempotent."""
        try:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.client.close(), 2.0)
        finally:
            code = await self.process.terminate(self.terminate_grace, slow_to_stop=True)
        return code


async def start_agent(
    cli_bin: str | Path,
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    extra_args: Sequence[str] = (),
    startup_timeout: float = 30.0,
    control_timeout: float = CONTROL_TIMEOUT,
    session_timeout: float = SESSION_TIMEOUT,
    terminate_grace: float = TERMINATE_GRACE,
    wrap: Callable[[list[str]], list[str]] | None = None,
) -> AgentHandle:
    """Spawn ``cli_bin --acp`` and complete ``initialize`` within ``startup_timeout``.

    The agent gets ``env`` (default: ours) as it is, token variables included (the CLI
    logs in from them), with ``QODERCN_EXPOSE_TOKEN_USAGE=1`` added so its answers count
    their tokens.

    ``wrap`` turns the command into the one that runs it (the OS sandbox's launcher); it
    sees the command after everything else about it (its node, its flags) is settled.

    Raises:
        NodeMissing: it is a Node script and no node is on its PATH (the text says how to
            give a host the PATH).
        LingmaStartupError: it could not be started, exited, or did not answer in time
            (with its exit code and the last lines of its stderr).
    """
    argv = [str(cli_bin), *extra_args, ACP_FLAG]
    env = {USAGE_VARIABLE: "1", **(env if env is not None else os.environ)}
    path = node_path(cli_bin, env)
    if path is not None:
        log.info("node is not on the PATH; running the Lingma CLI with %s first", path)
        env["PATH"] = path
    if wrap is not None:
        argv = wrap(argv)
    try:
        process = await ChildProcess.spawn(
            argv, cwd=cwd, env=env, name=CHILD_NAME, pipes=True, stdout_limit=STDOUT_LIMIT
        )
    except OSError as exc:
        raise LingmaStartupError(
            f"could not start the Lingma CLI {cli_bin}: {exc.strerror or exc}",
            waited_for="spawn",
        ) from exc
    assert process.stdout is not None and process.stdin is not None  # pipes=True
    transport = LineTransport(process.stdout, process.stdin)
    client = AcpClient(transport, control_timeout=control_timeout, session_timeout=session_timeout)
    handle = AgentHandle(process, client, terminate_grace)
    try:
        await _initialize(handle, startup_timeout)
    except LingmaStartupError as exc:
        await asyncio.shield(handle.close())
        if _node_was_missing(exc):
            raise NodeMissing(str(cli_bin), (env or os.environ).get("PATH", "")) from exc
        raise
    except BaseException:
        await asyncio.shield(handle.close())
        raise
    info = client.agent_info
    log.info("Lingma CLI %s %s ready (pid %d)", info.name, info.version, process.pid)
    return handle


def _node_was_missing(exc: LingmaStartupError) -> bool:
    """``env`` (or the shell) could not find node: exit 127 with node named on stderr, the
    way ``/usr/bin/env: 'node': No such file or directory`` says it."""
    return exc.exit_code == 127 and any("node" in line for line in exc.stderr_tail)


async def _initialize(handle: AgentHandle, startup_timeout: float) -> None:
    """``initialize``, or a :class:`LingmaStartupError` saying how the agent failed it."""
    process = handle.process
    init = asyncio.ensure_future(handle.client.initialize())
    await asyncio.wait({init, handle.lost}, timeout=startup_timeout, return_when="FIRST_COMPLETED")
    failure: BaseException | None = None
    if init.done():
        failure = init.exception()
        if failure is None:
            return
    else:
        init.cancel()
        with contextlib.suppress(BaseException):
            await init
    if handle.lost.done() or isinstance(failure, LingmaConnectionLost):
        # Its stdout ended: the exit code and the last of stderr follow; wait for them.
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(process.exited), 5.0)
        await process.stderr_drained(1.0)
        message = f"the Lingma CLI exited before answering initialize (code {process.returncode})"
    elif failure is not None:
        message = f"the Lingma CLI failed its initialize: {failure}"
    else:
        message = f"the Lingma CLI did not answer initialize within {startup_timeout:g} s"
    raise LingmaStartupError(
        message,
        waited_for="initialize",
        exit_code=process.returncode,
        stderr_tail=process.stderr_tail(),
    ) from failure

"""The CLI backend: ``qoderclicn --acp`` kept alive, behind the face's Backend interface.

- :class:`CliAttempt` is the process machine's :class:`~lingma_mcp.process.Attempt` for
  the CLI: find it, spawn it, ``initialize`` (:func:`~lingma_mcp.acp.start_agent`), and
  hand over a :class:`CliHandle`. States, backoff, waiters, health probe and reaping are
  the shared :class:`~lingma_mcp.process.Supervised`; nothing of it is repeated here.
- :class:`CliBackend` is the :class:`~lingma_mcp.backend.Backend` the face holds.
- Each process's client, :class:`~lingma_mcp.acp.cli_client.CliClient`, is in
  ``cli_client``; this module decides which process serves a chat (``CliClient.route``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lingma_mcp.acp.acp_client import CONTROL_TIMEOUT, SESSION_TIMEOUT
from lingma_mcp.acp.attempt import AgentHandle, start_agent
from lingma_mcp.acp.cli_client import CliClient
from lingma_mcp.acp.cli_discovery import CliCommand, CliNotFound, find_cli
from lingma_mcp.acp.credentials import credential_in
from lingma_mcp.backend import (
    BackendKind,
)
from lingma_mcp.errors import LingmaError
from lingma_mcp.process.machine import (
    BACKOFF_INITIAL,
    BACKOFF_MAX,
    MAX_RECONNECT_ATTEMPTS,
    PROBE_TIMEOUT,
    Progress,
    Supervised,
)
from lingma_mcp.process.states import State

log = logging.getLogger("lingma_mcp.acp.cli_backend")

LOG_HINT = (
    "The Lingma CLI's stderr is logged at DEBUG: run with --log-level DEBUG "
    "(LINGMA_MCP_LOG_LEVEL=DEBUG) to see it; it keeps its own state in ~/.qoder-cn."
)
# Agent-mode processes kept at once beside the main one, when each may write only in its
# own workspace (a person rarely works in more than two at a time).
MAX_WORKSPACE_PROCESSES = 2
CLI_TERMINATE_GRACE = 0.0  # SIGKILL at once: its SIGTERM outlasts a host's wait (attempt.py)


@dataclass(frozen=True)
class CliLaunch:
    """How one CLI process is started: its command run through ``wrap`` (the OS sandbox's
    launcher) with ``env`` added to its environment (its private ``TMPDIR``)."""

    wrap: Callable[[list[str]], list[str]] | None = None
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CliOptions:
    """What starting the CLI needs.

    Args:
        workspace: the default folder for sessions (``session/new {cwd}``).
        cli_bin: ``--cli-bin``; searched when None (see :func:`find_cli`).
        command: a whole command to run instead (the simulator), before ``--acp``.
        command_cwd: the folder ``command`` runs in.
        env: the child's environment (None: ours).
        launch: how a process is started for a workspace (:class:`CliLaunch`), or None.
        per_workspace: agent-mode chats run in a process of their own workspace's.
    """

    workspace: Path
    cli_bin: str | None = None
    command: tuple[str, ...] | None = None
    command_source: str = "command line"
    command_cwd: Path | None = None
    env: dict[str, str] | None = None
    work_dir: Path | None = None
    startup_timeout: float = 60.0
    control_timeout: float = CONTROL_TIMEOUT
    session_timeout: float = SESSION_TIMEOUT
    # How each process is started (the OS sandbox): given the one workspace it may write in
    # (None: none, for chat mode, login, models and sessions). None: started as it is.
    launch: Callable[[Path | None], CliLaunch] | None = None
    # True when a process may write only in its own workspace: agent-mode chats then run in
    # a process of their workspace's (a sandbox is fixed when its process starts).
    per_workspace: bool = False
    # The CLI takes ~8.5 s over SIGTERM; hosts on the MCP SDK give a server 2 s after
    # closing its stdin before they signal it. The group gets SIGKILL after this grace so
    # the whole close fits in that window; the CLI saves its sessions as it goes.
    terminate_grace: float = CLI_TERMINATE_GRACE

    def find(self) -> CliCommand:
        """The command to start, or :class:`CliNotFound`."""
        if self.command:
            return CliCommand(tuple(self.command), self.command_source, self.command_cwd)
        found = find_cli(self.cli_bin)
        return CliCommand(found.argv, found.source, self.command_cwd)


@dataclass(frozen=True)
class CliStatus:
    """A snapshot for the face, with the fields of the IDE supervisor's status."""

    state: State
    pid: int | None
    version: str | None  # the CLI's own version (agentInfo.version)
    last_error: str | None
    work_dir: Path | None
    log_hint: str
    source: str | None = None
    last_exception: BaseException | None = None
    generation: int = 0
    port: int | None = None  # no port: ACP runs over the child's stdio
    attached: bool = False
    backend: str = "cli"
    agent: str | None = None  # agentInfo.name, e.g. qoder-cli-cn


# -- the attempt and its handle --------------------------------------------------------


class CliHandle:
    """A running, initialized CLI: the :class:`~lingma_mcp.process.Handle` it hands over."""

    def __init__(self, agent: AgentHandle, client: CliClient, source: str) -> None:
        self.agent = agent
        self._client = client
        self.source = source

    @property
    def client(self) -> CliClient:
        return self._client

    @property
    def pid(self) -> int:
        return self.agent.pid

    def on_lost(self, callback: Callable[[BaseException], None]) -> None:
        def lost(_: asyncio.Future[None]) -> None:
            callback(self.agent.loss())  # its exit code (or signal) and last stderr line

        self.agent.lost.add_done_callback(lost)

    async def close(self) -> None:
        await self.agent.close()

    def abort(self) -> None:
        self.agent.process.kill_now()


class CliAttempt:
    """One try: find the CLI, spawn ``<cli> --acp`` in its own group, ``initialize``.

    ``workspace``: the one folder this process may write in, where a sandbox confines it
    (None: none). It is also where sessions opened without a chat are made.
    """

    def __init__(self, options: CliOptions, workspace: Path | None = None) -> None:
        self.options = options
        self.workspace = workspace
        self.source: str | None = None

    async def __call__(self, progress: Progress, previous: Any) -> CliHandle:
        if previous is not None:
            # A stdio child cannot be reconnected to: end what is left of it first.
            await previous.close()
        progress.step = "the Lingma CLI to be found"
        command = self.options.find()
        self.source = command.source
        env = self.options.env
        wrap = None
        if self.options.launch is not None:
            launch = self.options.launch(self.workspace)
            env = {**(env if env is not None else os.environ), **launch.env}
            wrap = launch.wrap
        progress.step = "the Lingma CLI to start and answer initialize"
        agent = await start_agent(
            command.argv[0],
            extra_args=command.argv[1:],
            cwd=command.cwd,
            env=env,
            startup_timeout=self.options.startup_timeout,
            control_timeout=self.options.control_timeout,
            session_timeout=self.options.session_timeout,
            terminate_grace=self.options.terminate_grace,
            wrap=wrap,
        )
        progress.process = agent.process
        client = CliClient(
            agent.client,
            self.workspace or self.options.workspace,
            credential_in(env if env is not None else os.environ),
        )
        return CliHandle(agent, client, command.source)


async def _probe(client: CliClient) -> object:
    # One round trip the agent answers at once, logged in or not.
    return await client.acp.ping()


class _Process:
    """One supervised CLI process and what it may write in."""

    def __init__(self, options: CliOptions, workspace: Path | None, name: str, **bounds: Any):
        self.workspace = workspace
        self.attempt = CliAttempt(options, workspace)
        self.machine: Supervised[CliClient] = Supervised(
            self.attempt,
            name=name,
            startup_timeout=options.startup_timeout,
            probe=_probe,
            give_up_on=(CliNotFound,),
            log_hint=LOG_HINT,
            **bounds,
        )
        self.used = time.monotonic()

    @property
    def busy(self) -> bool:
        """A prompt of this process is running."""
        handle = self.machine.handle
        if not isinstance(handle, CliHandle):
            return False
        return any(b.sink is not None for b in handle.client.acp.handlers.sessions.values())


class CliBackend:
    """The official CLI, supervised: started in the background, restarted when lost.

    Same surface as :class:`~lingma_mcp.lingma.supervisor.LingmaSupervisor`, so the face
    holds either as a :class:`~lingma_mcp.backend.Backend`.

    Where a sandbox confines the CLI to one workspace (``options.per_workspace``), the CLI
    runs as more than one process, since a process's sandbox is fixed when it starts: the
    main one may write nowhere but its own state (chat mode, the login, models, sessions),
    and each workspace an agent-mode chat works in gets a process of its own, started on
    first use, at most :data:`MAX_WORKSPACE_PROCESSES` of them (the one idle the longest
    is ended for a new one). Conversations are the CLI's files, so any process continues
    any of them.
    """

    kind: BackendKind = "cli"

    def __init__(
        self,
        options: CliOptions,
        *,
        name: str = "lingma-cli",
        backoff_initial: float = BACKOFF_INITIAL,
        backoff_max: float = BACKOFF_MAX,
        max_attempts: int = MAX_RECONNECT_ATTEMPTS,
        probe_timeout: float = PROBE_TIMEOUT,
    ) -> None:
        self.options = options
        self.name = name
        self._bounds = {
            "backoff_initial": backoff_initial,
            "backoff_max": backoff_max,
            "max_attempts": max_attempts,
            "probe_timeout": probe_timeout,
        }
        self._main = _Process(options, None, name, **self._bounds)
        self._attempt = self._main.attempt
        self._machine = self._main.machine
        self._workspaces: dict[Path, _Process] = {}
        self._closing = False
        self._last_version: str | None = None
        self._last_agent: str | None = None

    @property
    def state(self) -> State:
        return self._machine.state

    @property
    def log_hint(self) -> str:
        return LOG_HINT

    def status(self) -> CliStatus:
        machine = self._machine
        handle = machine.handle
        pid = None
        if isinstance(handle, CliHandle):
            info = handle.client.acp.agent_info
            self._last_version, self._last_agent = info.version or None, info.name or None
            pid = handle.pid
        error = machine.last_error
        return CliStatus(
            state=machine.state,
            pid=pid,
            version=self._last_version,
            last_error=str(error) if error is not None else None,
            work_dir=self.options.work_dir,
            log_hint=LOG_HINT,
            source=self._attempt.source,
            last_exception=error,
            generation=machine.generation,
            agent=self._last_agent,
        )

    def start(self) -> None:
        """Begin start-up in the background; returns at once (call from the event loop)."""
        self._machine.start()

    async def client(self, timeout: float | None = None) -> CliClient:
        """A ready client, starting, waiting or restarting as needed (see ``Supervised``)."""
        client = await self._machine.client(timeout)
        if self.options.per_workspace:
            client.route = self._client_for
        self.status()
        return client

    async def _client_for(self, workspace: Path) -> CliClient:
        """The client of the process that may write in ``workspace`` (started if need be)."""
        root = Path(workspace)  # the host's root: already resolved
        process = self._workspaces.get(root)
        if process is None:
            if self._closing:
                raise LingmaError("lingma-mcp is shutting down; no new agent chats")
            await self._make_room()
            name = f"{self.name}-{len(self._workspaces) + 1}"
            process = self._workspaces[root] = _Process(self.options, root, name, **self._bounds)
            log.info("starting a Lingma CLI process that may write in %s", root)
        process.used = time.monotonic()
        return await process.machine.client(None)

    async def _make_room(self) -> None:
        idle = [p for p in self._workspaces.values() if not p.busy]
        while len(self._workspaces) >= MAX_WORKSPACE_PROCESSES and idle:
            oldest = min(idle, key=lambda p: p.used)
            idle.remove(oldest)
            assert oldest.workspace is not None
            self._workspaces.pop(oldest.workspace, None)
            log.info("ending the Lingma CLI process of %s (idle longest)", oldest.workspace)
            await oldest.machine.close()

    def suspect(self, reason: str) -> None:
        # Which process went quiet is not known here: each checks its health (cheap).
        self._machine.suspect(reason)
        for process in self._workspaces.values():
            process.machine.suspect(reason)

    async def check_health(self, reason: str) -> bool:
        return await self._machine.check_health(reason)

    async def close(self) -> None:
        """End every CLI process's connection and whole process group. Idempotent."""
        self._closing = True
        processes = [*self._workspaces.values()]
        self._workspaces.clear()
        await asyncio.gather(
            self._machine.close(), *(p.machine.close() for p in processes), return_exceptions=True
        )


__all__ = [
    "CliAttempt",
    "CliBackend",
    "CliHandle",
    "CliLaunch",
    "CliOptions",
    "CliStatus",
]

"""LingmaSupervisor: one Lingma process and one connection to it, kept alive.

It is the generic machine of :mod:`lingma_mcp.process` (states, waiters, backoff, loss,
health probe, close) running the IDE binary's start-up attempt (:mod:`.startup`). This
module adds what is the IDE binary's own: this server's private folder under the work
dir, the health probe (``auth/status``), and the status the MCP face shows.

Callers waiting in ``client()`` get the outcome of the attempt in progress, success or
error; nobody waits for a timeout when an attempt has already failed. A dropped connection
starts a reconnect loop (the same process if it still lives, else a fresh one) with
exponential backoff; a ``client()`` call during a pause cuts it short. A Lingma that stops
answering (``suspect()``, or a health probe that fails) is killed and replaced.

Two servers on one work dir never meet: each runs its Lingma in its own locked folder (the
work dir itself for the first, ``<work_dir>/instances/<n>`` for others running at the
same time) and accepts only a ``.info`` naming its own child.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..backend import BackendKind
from ..errors import LingmaNotFound
from ..process.child import TERMINATE_GRACE
from ..process.instance import InstanceDir
from ..process.machine import (
    BACKOFF_INITIAL,
    BACKOFF_MAX,
    MAX_RECONNECT_ATTEMPTS,
    PROBE_TIMEOUT,
    Supervised,
)
from ..process.states import State
from .ide_client import LingmaClient
from .info_reader import info_process_alive
from .launch_options import LaunchOptions
from .startup import IdeAttempt, IdeHandle

__all__ = ["LingmaSupervisor", "State", "SupervisorStatus"]

log = logging.getLogger(__name__)

LOG_HINT = (
    "Lingma's stderr is logged at DEBUG: run with --log-level DEBUG "
    "(LINGMA_MCP_LOG_LEVEL=DEBUG) to see it; Lingma's own logs are in ~/.lingma/logs."
)
ATTACH_LOG_HINT = (
    "This Lingma was started by someone else (attach mode); its logs are in ~/.lingma/logs."
)


@dataclass(frozen=True)
class SupervisorStatus:
    """A snapshot for the MCP face (``auth_status``, the status resource)."""

    state: State
    pid: int | None
    port: int | None
    version: str | None  # serverInfo.version from initialize
    last_error: str | None
    work_dir: Path
    attached: bool
    log_hint: str
    source: str | None = None  # where the binary came from: LINGMA_BIN, PATH, a command ...
    last_exception: BaseException | None = None  # the typed error, for the MCP face's mapping
    generation: int = 0  # +1 each time a new connection becomes ready; 0 before the first


class HasLaunchOptions(Protocol):
    """Settings of a higher layer that can say what the core needs (``config.Settings``)."""

    def launch_options(self) -> LaunchOptions: ...


async def _probe(client: LingmaClient) -> object:
    # The cheapest call that needs Lingma's own work, not just its socket.
    return await client.login_state()


class LingmaSupervisor:
    """Owns one Lingma process (or an attached one) and a ready :class:`LingmaClient`.

    Args:
        options: binary or command, port (attach mode), work dir, workspace and timeouts;
            or settings that build them (``Settings.launch_options()``), which is all
            that is read of them.
        name: a label for log lines (pools).
        backoff_initial, backoff_max: the reconnect pause, doubling from one to the other.
        max_attempts: reconnect attempts before the state becomes ``failed``.
        terminate_grace: seconds between SIGTERM and SIGKILL when stopping the child.
        probe_timeout: how long the health probe of :meth:`suspect` may take.
    """

    kind: BackendKind = "ide"  # the Backend interface's name for this backend

    def __init__(
        self,
        options: LaunchOptions | HasLaunchOptions,
        *,
        name: str = "lingma",
        backoff_initial: float = BACKOFF_INITIAL,
        backoff_max: float = BACKOFF_MAX,
        max_attempts: int = MAX_RECONNECT_ATTEMPTS,
        terminate_grace: float = TERMINATE_GRACE,
        probe_timeout: float = PROBE_TIMEOUT,
    ) -> None:
        if not isinstance(options, LaunchOptions):
            options = options.launch_options()
        self.options: LaunchOptions = options
        self.name = name
        self._instance: InstanceDir | None = None
        self._attempt = IdeAttempt(
            options,
            work_dir=self._instance_dir,
            name=name,
            log_hint=self.log_hint,
            terminate_grace=terminate_grace,
        )
        self._machine: Supervised[LingmaClient] = Supervised(
            self._attempt,
            name=name,
            startup_timeout=options.startup_timeout,
            backoff_initial=backoff_initial,
            backoff_max=backoff_max,
            max_attempts=max_attempts,
            probe=_probe,
            probe_timeout=probe_timeout,
            give_up_on=(LingmaNotFound,),
            log_hint=self.log_hint,
        )
        self._last_port: int | None = options.port
        self._last_version: str | None = None

    # ------------------------------------------------------------------ public

    @property
    def attached(self) -> bool:
        return self.options.port is not None

    @property
    def state(self) -> State:
        return self._machine.state

    @property
    def log_hint(self) -> str:
        return ATTACH_LOG_HINT if self.attached else LOG_HINT

    @property
    def instance_dir(self) -> Path | None:
        """This server's own folder under the work dir, once Lingma was first spawned."""
        return self._instance.path if self._instance is not None else None

    def status(self) -> SupervisorStatus:
        machine = self._machine
        handle = machine.handle
        pid: int | None = None
        if isinstance(handle, IdeHandle):
            self._last_port, self._last_version = handle.port, handle.version
            pid = handle.pid
        else:
            proc = machine.progress.process
            pid = proc.pid if proc is not None and proc.returncode is None else None
        error = machine.last_error
        return SupervisorStatus(
            state=machine.state,
            pid=pid,
            port=self._last_port,
            version=self._last_version,
            last_error=str(error) if error is not None else None,
            # The folder this server's Lingma really uses, once it has one.
            work_dir=self.instance_dir or self.options.work_dir,
            attached=self.attached,
            log_hint=self.log_hint,
            source=self._attempt.source,
            last_exception=error,
            generation=machine.generation,
        )

    def start(self) -> None:
        """Begin start-up in the background and return at once (call from the event loop).

        The MCP server calls this at launch so the first tool call finds Lingma warm. A
        failure lands in ``status()``; the next :meth:`client` call tries again.
        """
        self._machine.start()

    async def client(self, timeout: float | None = None) -> LingmaClient:
        """A ready client, starting, waiting or restarting as needed.

        Waits for an attempt in progress; when the state is ``failed`` or ``stopped`` it
        tries again at once; during a reconnect pause it cuts the pause short.

        Args:
            timeout: the longest wait; default a little over ``startup_timeout`` (each
                attempt is bounded by that, and reports its own, better error).

        Raises:
            LingmaClosed: :meth:`close` was called.
            LingmaNotFound, LingmaStartupError, LingmaConnectionLost: the attempt failed.
        """
        client = await self._machine.client(timeout)
        self.status()  # remember port and version for the status once not ready
        return client

    def suspect(self, reason: str) -> None:
        """Say Lingma may be wedged (a control call timed out, a chat heard nothing).

        Non-blocking: schedules one health probe (``auth/status``, bounded by
        ``probe_timeout``). If it fails or times out, Lingma is treated as lost: its
        process group is killed and a new one started (attached: reconnected).
        """
        self._machine.suspect(reason)

    async def check_health(self, reason: str) -> bool:
        """Like :meth:`suspect`, but wait for the verdict: True when Lingma answered;
        False when it did not (it is being replaced) or nothing is ready to be asked."""
        return await self._machine.check_health(reason)

    async def close(self) -> None:
        """Close the connection and stop the child (SIGTERM, grace, SIGKILL, reap).

        Idempotent; concurrent calls share one shutdown. If the caller is cancelled
        mid-way, the child still gets SIGKILL, so a ``finally`` block may call this safely.
        In attach mode nothing is killed. This server's folder is then free for the next.
        """
        try:
            await self._machine.close()
        finally:
            instance, self._instance = self._instance, None
            if instance is not None:
                instance.release()

    # ------------------------------------------------------------------ the work dir

    def _instance_dir(self) -> Path:
        """This server's own folder, taken on first use and held until :meth:`close`."""
        if self._instance is None:
            self._instance = InstanceDir(self.options.work_dir, occupied=info_process_alive)
            if self._instance.number:
                log.info(
                    "[%s] %s is in use by another server; using %s",
                    self.name,
                    self.options.work_dir,
                    self._instance.path,
                )
        return self._instance.path

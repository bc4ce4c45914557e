"""LingmaSupervisor: one Lingma process and one connection to it, kept alive.

States::

    stopped --start()/client()--> starting --ok--> ready
    ready --socket dropped / process exited--> reconnecting --ok--> ready
    reconnecting --attempts exhausted--> failed --client()--> starting
    starting --attempt failed--> failed
    any --close()--> closed

Start-up is one *attempt*: find the binary, clear a stale ``.info``, spawn, wait for the
``.info``, wait for the port, open the WebSocket, ``initialize``. Every step races the
child exiting, and the whole attempt is bounded by ``Settings.startup_timeout``; the error
names the step it was waiting for. A dropped connection starts a reconnect loop (the same
process if it still lives, else a fresh one) with exponential backoff; a ``client()`` call
during a backoff pause cuts the pause short, so a user never waits on a timer.

Callers waiting in ``client()`` get the outcome of the next attempt, success or error;
nobody waits for a timeout when an attempt has already failed.

Everything is per instance (work dir, ``.info``, process), so a pool can hold several.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import inspect
import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from websockets.asyncio.client import connect as ws_connect

from ..config import Settings
from ..errors import (
    LingmaClosed,
    LingmaConnectionLost,
    LingmaError,
    LingmaNotFound,
    LingmaStartupError,
    RpcTimeout,
)
from .client import LingmaClient
from .discovery import LingmaCommand, find_lingma
from .info import remove_stale_info, shared_info_paths, wait_for_info
from .jsonrpc import RpcConnection
from .process import TERMINATE_GRACE, LingmaProcess

log = logging.getLogger(__name__)

T = TypeVar("T")

BACKOFF_INITIAL = 1.0
BACKOFF_MAX = 30.0
MAX_RECONNECT_ATTEMPTS = 8
PORT_POLL_INTERVAL = 0.02

LOG_HINT = (
    "Lingma's stderr is logged at DEBUG: run with --log-level DEBUG "
    "(LINGMA_MCP_LOG_LEVEL=DEBUG) to see it; Lingma's own logs are in ~/.lingma/logs."
)
ATTACH_LOG_HINT = (
    "This Lingma was started by someone else (attach mode); its logs are in ~/.lingma/logs."
)

# websockets >= 15 routes connections through a system proxy by default; a proxy must
# never sit between us and a loopback port.
_WS_PROXY_ARG: dict[str, Any] = (
    {"proxy": None} if "proxy" in inspect.signature(ws_connect).parameters else {}
)


class State(str, enum.Enum):
    STOPPED = "stopped"
    STARTING = "starting"
    READY = "ready"
    RECONNECTING = "reconnecting"
    FAILED = "failed"
    CLOSED = "closed"

    def __str__(self) -> str:
        return self.value


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
    source: str | None = None  # where the binary came from: LINGMA_BIN, PATH, simulator ...
    last_exception: BaseException | None = None  # the typed error, for the MCP face's mapping


class LingmaSupervisor:
    """Owns one Lingma process (or an attached one) and a ready :class:`LingmaClient`.

    Args:
        settings: binary, port (attach mode), work dir, workspace and timeouts.
        name: a label for log lines (pools).
        backoff_initial, backoff_max: the reconnect pause, doubling from one to the other.
        max_attempts: reconnect attempts before the state becomes ``failed``.
        terminate_grace: seconds between SIGTERM and SIGKILL when stopping the child.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        name: str = "lingma",
        backoff_initial: float = BACKOFF_INITIAL,
        backoff_max: float = BACKOFF_MAX,
        max_attempts: int = MAX_RECONNECT_ATTEMPTS,
        terminate_grace: float = TERMINATE_GRACE,
    ) -> None:
        self.settings = settings
        self.name = name
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.max_attempts = max(1, max_attempts)
        self.terminate_grace = terminate_grace

        self._state = State.STOPPED
        self._last_error: BaseException | None = None
        self._proc: LingmaProcess | None = None
        self._command: LingmaCommand | None = None
        self._conn: RpcConnection | None = None
        self._client: LingmaClient | None = None
        self._port: int | None = settings.lingma_port
        self._version: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._waiters: list[asyncio.Future[LingmaClient]] = []
        self._wake: asyncio.Event | None = None
        self._waiting_for = "nothing yet"
        self._close_task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()

    # ------------------------------------------------------------------ public

    @property
    def attached(self) -> bool:
        return self.settings.lingma_port is not None

    @property
    def state(self) -> State:
        return self._state

    @property
    def log_hint(self) -> str:
        return ATTACH_LOG_HINT if self.attached else LOG_HINT

    def status(self) -> SupervisorStatus:
        proc = self._proc
        return SupervisorStatus(
            state=self._state,
            pid=proc.pid if proc is not None and proc.returncode is None else None,
            port=self._port,
            version=self._version,
            last_error=str(self._last_error) if self._last_error is not None else None,
            work_dir=self.settings.work_dir,
            attached=self.attached,
            log_hint=self.log_hint,
            source="attached" if self.attached else (self._command and self._command.source),
            last_exception=self._last_error,
        )

    def start(self) -> None:
        """Begin start-up in the background and return at once (call from the event loop).

        The MCP server calls this at launch so the first tool call finds Lingma warm. A
        failure lands in ``status()``; the next :meth:`client` call tries again.
        """
        if self._state in (State.STOPPED, State.FAILED) and not self._busy():
            self._launch(attempts=1, first_delay=0.0, state=State.STARTING)

    async def client(self, timeout: float | None = None) -> LingmaClient:
        """A ready client, starting, waiting or restarting as needed.

        Waits for an attempt in progress; when the state is ``failed`` or ``stopped`` it
        tries again at once; during a reconnect pause it cuts the pause short.

        Args:
            timeout: the longest wait; default a little over ``Settings.startup_timeout``
                (each attempt is bounded by that, and reports its own, better error).

        Raises:
            LingmaClosed: :meth:`close` was called.
            LingmaNotFound, LingmaStartupError, LingmaConnectionLost: the attempt failed.
        """
        if self._state is State.CLOSED:
            raise LingmaClosed("the Lingma supervisor is closed")
        if self._state is State.READY and self._client is not None:
            return self._client
        if not self._busy():
            self._launch(attempts=1, first_delay=0.0, state=State.STARTING)
        elif self._wake is not None:
            self._wake.set()
        waiter: asyncio.Future[LingmaClient] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        wait = timeout if timeout is not None else self.settings.startup_timeout + 1.0
        try:
            return await asyncio.wait_for(asyncio.shield(waiter), wait)
        except asyncio.TimeoutError:
            if waiter.done():
                raise  # the attempt's own error (RpcTimeout is a TimeoutError too)
            proc = self._proc
            raise LingmaStartupError(
                f"Lingma was not ready within {wait:g} s (state {self._state}): "
                f"waited for {self._waiting_for}",
                waited_for=self._waiting_for,
                stderr_tail=proc.stderr_tail() if proc is not None else None,
                log_hint=self.log_hint,
            ) from None
        finally:
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)
            if not waiter.done():
                waiter.cancel()

    def suspect(self, reason: str) -> None:
        """Say Lingma may be wedged (a control call timed out, a chat heard nothing).

        Contract for the MCP face: non-blocking; the supervisor checks Lingma's health and
        restarts it when the check fails. (Health checking arrives with the supervisor's
        state-machine rework; until then this only logs.)
        """
        log.info("[%s] Lingma suspected unhealthy: %s", self.name, reason)

    async def close(self) -> None:
        """Close the connection and stop the child (SIGTERM, grace, SIGKILL, reap).

        Idempotent; concurrent calls share one shutdown. If the caller is cancelled
        mid-way, the child still gets SIGKILL, so a ``finally`` block may call this safely.
        In attach mode nothing is killed.
        """
        if self._close_task is None:
            self._close_task = asyncio.ensure_future(self._close())
        try:
            await asyncio.shield(self._close_task)
        except asyncio.CancelledError:
            if self._proc is not None:
                self._proc.kill_now()
            raise

    # ------------------------------------------------------------------ bring-up loop

    def _busy(self) -> bool:
        return self._task is not None and not self._task.done()

    def _launch(self, *, attempts: int, first_delay: float, state: State) -> None:
        self._set_state(state)  # visible at once, before the task first runs
        self._wake = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(
            self._bring_up(attempts, first_delay, state), name=f"{self.name}-bring-up"
        )

    async def _bring_up(self, attempts: int, first_delay: float, state: State) -> None:
        delay = first_delay
        for attempt in range(1, attempts + 1):
            if delay > 0:
                await self._pause(delay)
            if self._state is State.CLOSED:
                return
            # This attempt answers everyone who asked so far.
            assert self._wake is not None
            self._wake.clear()
            self._set_state(state)
            try:
                client = await self._attempt()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._last_error = exc
                self._settle(exc)
                if isinstance(exc, LingmaNotFound) or attempt == attempts:
                    break
                delay = min(delay * 2, self.backoff_max) if delay > 0 else self.backoff_initial
                log.warning(
                    "[%s] attempt %d/%d failed: %s; next in %g s",
                    self.name,
                    attempt,
                    attempts,
                    exc,
                    delay,
                )
                continue
            self._settle(client)
            return
        if self._state is not State.CLOSED:
            self._set_state(State.FAILED)
            log.warning("[%s] giving up: %s", self.name, self._last_error)

    async def _pause(self, delay: float) -> None:
        """Sleep ``delay`` seconds, or less if a caller asks for Lingma meanwhile."""
        assert self._wake is not None
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._wake.wait(), delay)

    def _settle(self, outcome: LingmaClient | BaseException) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if waiter.done():
                continue
            if isinstance(outcome, BaseException):
                waiter.set_exception(outcome)
            else:
                waiter.set_result(outcome)

    def _set_state(self, state: State) -> None:
        if state is not self._state:
            log.info("[%s] state %s -> %s", self.name, self._state, state)
            self._state = state

    # ------------------------------------------------------------------ one attempt

    async def _attempt(self) -> LingmaClient:
        timeout = self.settings.startup_timeout
        self._waiting_for = "start-up to begin"
        try:
            return await asyncio.wait_for(self._attempt_steps(), timeout)
        except (asyncio.CancelledError, LingmaError) as exc:
            await self._discard_attempt()
            if isinstance(exc, RpcTimeout):
                raise self._startup_error(
                    f"Lingma did not answer {exc.method} within {exc.timeout:g} s"
                ) from exc
            raise
        except asyncio.TimeoutError:
            error = self._startup_error(f"Lingma did not start within {timeout:g} s")
            await self._discard_attempt()
            raise error from None
        except Exception as exc:
            # websockets' handshake errors and the like: give the MCP face a typed error.
            error = self._startup_error(f"could not connect to Lingma: {exc}")
            await self._discard_attempt()
            raise error from exc

    def _startup_error(self, what: str) -> LingmaStartupError:
        proc = self._proc
        return LingmaStartupError(
            f"{what}: waited for {self._waiting_for}",
            waited_for=self._waiting_for,
            stderr_tail=proc.stderr_tail() if proc is not None else None,
            log_hint=self.log_hint,
        )

    async def _attempt_steps(self) -> LingmaClient:
        if self.attached:
            port = self.settings.lingma_port
            assert port is not None
            return await self._connect(port, None)
        proc = self._proc
        if proc is not None and proc.returncode is None and self._port is not None:
            # The socket dropped but the process lives: reconnect to it.
            try:
                return await self._connect(self._port, proc)
            except Exception as exc:
                # Often it was dying after all (a crash closes the socket a moment before
                # the exit is seen); else it is alive but unusable. Either way, stop it and
                # start a fresh one within this same attempt.
                log.info(
                    "[%s] reconnecting to pid %d failed (%s); starting a new Lingma",
                    self.name,
                    proc.pid,
                    exc,
                )
                await self._discard_attempt()
                proc = None
        if proc is not None:
            await proc.terminate()  # exited already: this closes its pipes
            self._proc = None
        proc, port = await self._spawn()
        return await self._connect(port, proc)

    async def _connect(self, port: int, proc: LingmaProcess | None) -> LingmaClient:
        """Port, WebSocket, ``initialize``; each step races ``proc`` exiting."""
        settings = self.settings
        self._port = port
        self._waiting_for = f"port {port} on 127.0.0.1 to accept connections"
        if proc is None:
            # Attach mode: nobody is starting it for us, so waiting would only hide a wrong
            # --lingma-port. Reconnects still retry, with backoff.
            if not await _port_open(port):
                raise LingmaStartupError(
                    f"nothing accepts connections on 127.0.0.1:{port} (--lingma-port / "
                    "LINGMA_PORT); is Lingma running there?",
                    waited_for=self._waiting_for,
                    log_hint=self.log_hint,
                )
        else:
            await self._race_exit(_wait_port(port), proc)

        self._waiting_for = f"the WebSocket handshake on port {port}"
        ws = await self._race_exit(
            ws_connect(
                f"ws://127.0.0.1:{port}/",
                # Frames can be large (session lists); framing enforces its own limit.
                max_size=None,
                # Lingma may not answer pings; on loopback they detect nothing that the
                # process watch and the request timeouts do not, and a missed pong would
                # drop a healthy connection.
                ping_interval=None,
                compression=None,
                open_timeout=None,  # the attempt as a whole is bounded
                close_timeout=1.0,
                **_WS_PROXY_ARG,
            ),
            proc,
        )
        conn = RpcConnection(ws, name=self.name)
        conn.start()
        self._conn = conn
        client = LingmaClient(conn, control_timeout=settings.control_timeout)

        self._waiting_for = f"the reply to initialize on port {port}"
        result = await self._race_exit(client.initialize(settings.workspace), proc)
        if conn.closed:
            raise LingmaConnectionLost("connection to Lingma closed during initialize")
        self._version = client.version
        self._client = client
        self._last_error = None
        self._set_state(State.READY)
        server_name = (result.get("serverInfo") or {}).get("name") if result else None
        log.info(
            "[%s] ready: %s %s on port %d (pid %s)",
            self.name,
            server_name or "lingma",
            self._version or "?",
            port,
            proc.pid if proc is not None else "attached",
        )
        conn.add_close_listener(lambda exc: self._lost(conn, exc))
        if proc is not None:
            proc.exited.add_done_callback(lambda fut: self._process_exited(proc, conn))
        return client

    async def _spawn(self) -> tuple[LingmaProcess, int]:
        settings = self.settings
        self._waiting_for = "the Lingma binary to be found"
        command = self._command = find_lingma(settings)
        work_dir = settings.work_dir
        try:
            work_dir.mkdir(parents=True, exist_ok=True)
            remove_stale_info(work_dir)
        except OSError as exc:
            raise LingmaStartupError(
                f"cannot use the work dir {work_dir} (--work-dir / LINGMA_WORK_DIR): {exc}",
                waited_for=self._waiting_for,
            ) from exc
        argv = command.start_argv(work_dir)
        self._waiting_for = f"{argv[0]} to start"
        try:
            proc = await LingmaProcess.spawn(argv, cwd=command.cwd, name=self.name)
        except OSError as exc:
            raise LingmaStartupError(
                f"could not run {argv[0]}: {exc}", waited_for=self._waiting_for
            ) from exc
        self._proc = proc
        log.info("[%s] started %s (pid %d, from %s)", self.name, argv[0], proc.pid, command.source)
        self._waiting_for = f"the .info file at {work_dir / '.info'} (or .info.json)"
        # Some versions may write ~/.lingma/.info instead; that one is taken only with our pid.
        info = await self._race_exit(
            wait_for_info(work_dir, expected_pid=proc.pid, shared=shared_info_paths()), proc
        )
        return proc, info.port

    async def _race_exit(self, step: Awaitable[T], proc: LingmaProcess | None) -> T:
        """Await ``step``, unless the child exits first: then raise with its exit code."""
        if proc is None:
            return await step
        task = asyncio.ensure_future(step)
        try:
            await asyncio.wait({task, proc.exited}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            task.cancel()
            raise
        if task.done():
            return task.result()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await proc.stderr_drained(0.5)
        code = proc.returncode
        tail = proc.stderr_tail()
        last = f"; last stderr line: {tail[-1]}" if tail else ""
        raise LingmaStartupError(
            f"Lingma exited with code {code} while we waited for {self._waiting_for}{last}",
            waited_for=self._waiting_for,
            exit_code=code,
            stderr_tail=tail,
            log_hint=self.log_hint,
        )

    async def _discard_attempt(self) -> None:
        """Undo a failed attempt: drop its connection and stop a child we cannot use."""
        conn, self._conn, self._client = self._conn, None, None
        if conn is not None:
            await conn.close("closed after a failed start-up")
        proc, self._proc = self._proc, None
        if proc is not None:
            # A child that will not come up is killed: the next attempt starts afresh
            # (the IDE plugins do the same after a failed connect).
            await proc.terminate(self.terminate_grace)

    # ------------------------------------------------------------------ losing it

    def _process_exited(self, proc: LingmaProcess, conn: RpcConnection) -> None:
        if proc is not self._proc:
            return
        log.warning(
            "[%s] Lingma (pid %d) exited with code %s", self.name, proc.pid, proc.returncode
        )
        self._lost(conn, LingmaConnectionLost(f"Lingma stopped (exit code {proc.returncode})"))

    def _lost(self, conn: RpcConnection, reason: BaseException) -> None:
        """The connection or the process went away: fail in-flight work, then reconnect."""
        if conn is not self._conn or self._state is State.CLOSED:
            return
        self._conn = self._client = None
        error = LingmaConnectionLost(f"Lingma stopped: {reason}")
        self._last_error = error
        log.warning("[%s] %s; reconnecting", self.name, error)
        # close() fails every pending request and stream at once, on its first step.
        self._spawn_background(conn.close(f"stopped: {reason}"))
        self._set_state(State.RECONNECTING)
        if not self._busy():
            self._reconnect_later()
        elif self._task is asyncio.current_task():
            # Lost in the very hand-over of an attempt that is about to report success:
            # reconnect once that attempt has finished.
            assert self._task is not None
            self._task.add_done_callback(lambda _: self._reconnect_later())

    def _reconnect_later(self) -> None:
        if self._state is State.RECONNECTING and not self._busy():
            self._launch(
                attempts=self.max_attempts,
                first_delay=self.backoff_initial,
                state=State.RECONNECTING,
            )

    def _spawn_background(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # ------------------------------------------------------------------ shutting down

    async def _close(self) -> None:
        self._set_state(State.CLOSED)
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self._settle(LingmaClosed("the Lingma supervisor is closed"))
        conn, self._conn, self._client = self._conn, None, None
        if conn is not None:
            await conn.close("closed: the bridge is shutting down")
        proc, self._proc = self._proc, None
        if proc is not None:
            try:
                await proc.terminate(self.terminate_grace)
            except BaseException:
                proc.kill_now()
                raise
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        log.info("[%s] closed", self.name)


async def _port_open(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:``port`` right now."""
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


async def _wait_port(port: int) -> None:
    """Wait until something accepts TCP connections on 127.0.0.1:``port``."""
    # No event exists for "a port opened": polling every 20 ms is the honest way.
    while True:
        if await _port_open(port):
            return
        await asyncio.sleep(PORT_POLL_INTERVAL)

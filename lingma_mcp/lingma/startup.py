"""One start-up attempt of the IDE binary, and the handle it hands over.

An attempt: find the binary, spawn it in this server's own folder, wait for its ``.info``,
wait for the port, open the WebSocket, ``initialize``. Every step races the child exiting,
the whole attempt is bounded by ``LaunchOptions.startup_timeout``, and the error names the
step it was waiting for. It keeps no state between calls: what it learns goes into the
``Progress`` it is given and the :class:`IdeHandle` it returns. A failed attempt stops
what it started.

In attach mode (``LaunchOptions.port``) nothing is spawned and nothing is killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from ..errors import LingmaConnectionLost, LingmaError, LingmaStartupError, RpcTimeout
from ..process.child import STDOUT_END_WAIT, TERMINATE_GRACE, ChildProcess
from ..process.machine import Handle, Progress
from .binary_discovery import find_lingma
from .framing import DEFAULT_MAX_BODY, MAX_HEADER_BYTES
from .ide_client import LingmaClient
from .info_reader import remove_stale_info, shared_info_paths, wait_for_info
from .jsonrpc import RpcConnection, WebSocketLike
from .launch_options import LaunchOptions

log = logging.getLogger(__name__)

T = TypeVar("T")

PORT_POLL_INTERVAL = 0.02
# One WebSocket message may carry one whole frame: the body cap plus its header.
WS_MAX_SIZE = DEFAULT_MAX_BODY + MAX_HEADER_BYTES

# websockets >= 15 routes connections through a system proxy by default; a proxy must
# never sit between us and a loopback port.
_WS_PROXY_ARG: dict[str, Any] = (
    {"proxy": None} if "proxy" in inspect.signature(ws_connect).parameters else {}
)


class IdeHandle:
    """A ready connection to Lingma, and the child behind it (``None`` when attached)."""

    def __init__(
        self,
        client: LingmaClient,
        conn: RpcConnection,
        port: int,
        process: ChildProcess | None,
        grace: float,
    ) -> None:
        self._client = client
        self.conn = conn
        self.port = port
        self.process = process
        self._grace = grace
        self._callbacks: list[Callable[[BaseException], None]] = []
        self._lost: BaseException | None = None
        self._closing: asyncio.Task[None] | None = None
        conn.add_close_listener(lambda exc: self._mark_lost(self._loss(f"Lingma stopped: {exc}")))
        if process is not None:
            # Its end, not the bare exit: by then its last stderr lines are in.
            process.ended.add_done_callback(lambda _: self._mark_lost(self._loss("")))

    @property
    def client(self) -> LingmaClient:
        return self._client

    @property
    def version(self) -> str | None:
        return self._client.version

    @property
    def pid(self) -> int | None:
        p = self.process
        return p.pid if p is not None and p.returncode is None else None

    def on_lost(self, callback: Callable[[BaseException], None]) -> None:
        if self._lost is not None:
            callback(self._lost)
        else:
            self._callbacks.append(callback)

    def _loss(self, otherwise: str) -> LingmaConnectionLost:
        """Why the connection is gone: how the process ended and its last stderr line, when
        it has ended; else ``otherwise``."""
        process = self.process
        if process is None or process.returncode is None:
            return LingmaConnectionLost(otherwise)
        return LingmaConnectionLost.process_ended(
            "Lingma", process.returncode, process.stderr_tail()
        )

    def _mark_lost(self, lost: LingmaConnectionLost) -> None:
        if self._lost is not None:
            return
        self._lost = lost
        if self.process is not None and self.process.returncode is not None:
            log.warning("Lingma (pid %d) %s", self.process.pid, lost)
        # Fail every pending request and stream now, not when someone next looks.
        if not self.conn.closed:
            self._closing = asyncio.ensure_future(self.conn.close(str(lost)))
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback(lost)

    @property
    def reusable(self) -> bool:
        """Whether the process still runs, so a new connection may be tried to it."""
        return self.process is not None and self.process.returncode is None

    async def drop_connection(self) -> None:
        """Close the connection only, keeping the process."""
        if self._closing is not None:
            await asyncio.gather(self._closing, return_exceptions=True)
        await self.conn.close("closed: replaced by a new connection")

    async def close(self) -> None:
        await self.drop_connection()
        if self.process is not None:
            await self.process.terminate(self._grace)

    def abort(self) -> None:
        if self.process is not None:
            self.process.kill_now()


class IdeAttempt:
    """Start (or reconnect to) the IDE binary once. Called by the supervisor's machine.

    Args:
        options: binary, work dir, workspace, port and timeouts.
        work_dir: this server's own folder (``--workDir`` for the child); unused attached.
        name: a label for log lines.
        log_hint: where the user finds more, for errors.
        terminate_grace: SIGTERM to SIGKILL, when stopping a child.
    """

    def __init__(
        self,
        options: LaunchOptions,
        *,
        work_dir: Callable[[], Path],
        name: str,
        log_hint: str,
        terminate_grace: float = TERMINATE_GRACE,
    ) -> None:
        self.options = options
        self._work_dir = work_dir
        self.name = name
        self.log_hint = log_hint
        self.terminate_grace = terminate_grace
        self.source: str | None = "attached" if options.port is not None else None

    async def __call__(
        self, progress: Progress, previous: Handle[LingmaClient] | None
    ) -> IdeHandle:
        assert previous is None or isinstance(previous, IdeHandle)
        timeout = self.options.startup_timeout
        spawned: list[ChildProcess] = []
        try:
            return await asyncio.wait_for(self._steps(progress, previous, spawned), timeout)
        except asyncio.CancelledError:
            await self._discard(spawned)
            raise
        except LingmaError as exc:
            await self._discard(spawned)
            if isinstance(exc, RpcTimeout):
                raise self._error(
                    progress, f"Lingma did not answer {exc.method} within {exc.timeout:g} s"
                ) from exc
            raise
        except asyncio.TimeoutError:
            error = self._error(progress, f"Lingma did not start within {timeout:g} s")
            await self._discard(spawned)
            raise error from None
        except Exception as exc:
            # websockets' handshake errors and the like: give the MCP face a typed error.
            error = self._error(progress, f"could not connect to Lingma: {exc}")
            await self._discard(spawned)
            raise error from exc

    def _error(self, progress: Progress, what: str) -> LingmaStartupError:
        return LingmaStartupError(
            f"{what}: waited for {progress.step}",
            waited_for=progress.step,
            stderr_tail=progress.stderr_tail(),
            log_hint=self.log_hint,
        )

    async def _discard(self, spawned: list[ChildProcess]) -> None:
        # A child that will not come up is killed: the next attempt starts afresh (the IDE
        # plugins do the same after a failed connect).
        for proc in spawned:
            await proc.terminate(self.terminate_grace)

    async def _steps(
        self, progress: Progress, previous: IdeHandle | None, spawned: list[ChildProcess]
    ) -> IdeHandle:
        port = self.options.port
        if port is not None:
            if previous is not None:
                await previous.drop_connection()
            return await self._connect(progress, port, None)
        if previous is not None:
            if previous.reusable:
                await previous.drop_connection()
                proc = previous.process
                assert proc is not None
                progress.process = proc
                spawned.append(proc)  # ours now: a failure below stops it
                try:
                    return await self._connect(progress, previous.port, proc)
                except Exception as exc:
                    # Often it was dying after all (a crash closes the socket a moment
                    # before the exit is seen); else it is alive but unusable. Either way,
                    # stop it and start a fresh one within this same attempt.
                    log.info(
                        "[%s] reconnecting to pid %d failed (%s); starting a new Lingma",
                        self.name,
                        proc.pid,
                        exc,
                    )
                    spawned.remove(proc)
                    await proc.terminate(self.terminate_grace)
            else:
                await previous.close()
        proc, port = await self._spawn(progress, spawned)
        return await self._connect(progress, port, proc)

    async def _spawn(
        self, progress: Progress, spawned: list[ChildProcess]
    ) -> tuple[ChildProcess, int]:
        progress.step = "the Lingma binary to be found"
        command = find_lingma(self.options)
        self.source = command.source
        try:
            work_dir = self._work_dir()
            remove_stale_info(work_dir)
        except OSError as exc:
            raise LingmaStartupError(
                f"cannot use the work dir {self.options.work_dir} "
                f"(--work-dir / LINGMA_WORK_DIR): {exc}",
                waited_for=progress.step,
            ) from exc
        argv = command.start_argv(work_dir)
        progress.step = f"{argv[0]} to start"
        try:
            proc = await ChildProcess.spawn(argv, cwd=command.cwd, name=self.name)
        except OSError as exc:
            raise LingmaStartupError(
                f"could not run {argv[0]}: {exc}", waited_for=progress.step
            ) from exc
        spawned.append(proc)
        progress.process = proc
        log.info("[%s] started %s (pid %d, from %s)", self.name, argv[0], proc.pid, command.source)
        progress.step = f"the .info file at {work_dir / '.info'} (or .info.json)"
        # Some versions may write ~/.lingma/.info instead; that one is taken only with our pid.
        info = await _race_exit(
            progress,
            wait_for_info(work_dir, expected_pid=proc.pid, shared=shared_info_paths()),
            proc,
            self.log_hint,
        )
        return proc, info.port

    async def _connect(self, progress: Progress, port: int, proc: ChildProcess | None) -> IdeHandle:
        """Port, WebSocket, ``initialize``; each step races ``proc`` exiting."""
        options = self.options
        progress.step = f"port {port} on 127.0.0.1 to accept connections"
        if proc is None:
            # Attach mode: nobody is starting it for us, so waiting would only hide a wrong
            # --lingma-port. Reconnects still retry, with backoff.
            if not await _port_open(port):
                raise LingmaStartupError(
                    f"nothing accepts connections on 127.0.0.1:{port} (--lingma-port / "
                    "LINGMA_PORT); is Lingma running there?",
                    waited_for=progress.step,
                    log_hint=self.log_hint,
                )
        else:
            await _race_exit(progress, _wait_port(port), proc, self.log_hint)

        progress.step = f"the WebSocket handshake on port {port}"
        ws = await _race_exit(
            progress,
            ws_connect(
                f"ws://127.0.0.1:{port}/",
                # One message carries at most one frame: the framing's body cap plus its
                # header. Anything bigger is refused by websockets before it is buffered.
                max_size=WS_MAX_SIZE,
                # Lingma may not answer pings; on loopback they detect nothing that the
                # process watch and the health probe do not, and a missed pong would
                # drop a healthy connection.
                ping_interval=None,
                compression=None,
                open_timeout=None,  # the attempt as a whole is bounded
                close_timeout=1.0,
                **_WS_PROXY_ARG,
            ),
            proc,
            self.log_hint,
        )
        socket: WebSocketLike = ws if proc is None else _EndsWithChild(ws, proc)
        conn = RpcConnection(socket, name=self.name)
        conn.start()
        client = LingmaClient(conn, control_timeout=options.control_timeout)
        progress.step = f"the reply to initialize on port {port}"
        try:
            result = await _race_exit(
                progress, client.initialize(options.workspace), proc, self.log_hint
            )
        except BaseException:
            await conn.close("closed after a failed start-up")
            raise
        server_name = (result.get("serverInfo") or {}).get("name") if result else None
        log.info(
            "[%s] connected: %s %s on port %d (pid %s)",
            self.name,
            server_name or "lingma",
            client.version or "?",
            port,
            proc.pid if proc is not None else "attached",
        )
        # A connection lost from here on is the machine's to handle, like any later loss.
        return IdeHandle(client, conn, port, proc, self.terminate_grace)


class _EndsWithChild:
    """The WebSocket as the connection reads it, for a Lingma we started.

    A crash closes the socket a moment before the exit is seen, and whoever hears of the
    lost connection first (a chat waiting on its answer) should already be able to say how
    Lingma ended. So the socket's end is passed on once the child's end is known (exit code
    and last stderr lines), or :data:`STDOUT_END_WAIT` later if it lives on.
    """

    def __init__(self, ws: WebSocketLike, process: ChildProcess) -> None:
        self._ws = ws
        self._process = process

    async def send(self, message: str | bytes) -> None:
        await self._ws.send(message)

    async def recv(self) -> str | bytes:
        try:
            return await self._ws.recv()
        except ConnectionClosed:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._process.ended), STDOUT_END_WAIT)
            raise

    async def close(self) -> None:
        await self._ws.close()

    def __getattr__(self, name: str) -> Any:
        # Everything else is the socket's own: the connection writes a burst of replies in
        # one socket write through the socket's ``protocol`` and ``send_context``, and
        # hiding them cost a fifth of the throughput (one write per reply).
        return getattr(self._ws, name)


async def _race_exit(
    progress: Progress, step: Awaitable[T], proc: ChildProcess | None, log_hint: str
) -> T:
    """Await ``step``, unless the child exits first: then raise with its exit code."""
    if proc is None:
        return await step
    task = asyncio.ensure_future(step)
    try:
        await asyncio.wait({task, proc.exited}, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
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
        f"Lingma exited with code {code} while we waited for {progress.step}{last}",
        waited_for=progress.step,
        exit_code=code,
        stderr_tail=tail,
        log_hint=log_hint,
    )


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

"""The simulator process: start-up faults, the WebSocket server, ``.info``, signals.

Start-up runs in the order a client can observe: stdout noise, the optional start delay
or early exit, then the server binds, and only once it listens is ``.info`` written. On
SIGTERM or SIGINT the server closes and the process exits 0; ``.info`` is left behind,
as the binary leaves it to its clients to clean up.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from websockets.asyncio.server import ServerConnection, serve

from lingma_mcp.sim.connection import Connection
from lingma_mcp.sim.info_writer import write_info
from lingma_mcp.sim.start_options import SIM_VERSION, SimOptions
from lingma_mcp.sim.state import SimState, noise

log = logging.getLogger("lingma_mcp.sim")

HOST = "127.0.0.1"
# Large enough for any real frame; the simulator is a test tool, not a hardened server.
MAX_MESSAGE = 64 * 1024 * 1024


async def run_server(options: SimOptions) -> int:
    """Run until SIGTERM/SIGINT; return the exit code."""
    noise(f"[main] Lingma simulator {SIM_VERSION} starting, workDir={options.work_dir}")
    noise("[main] loading configuration ... ok (simulated)")
    if options.exit_at_start is not None:
        sys.stderr.write(
            f"lingma-sim: fatal: simulated start-up failure, exiting with {options.exit_at_start} "
            "(LINGMA_SIM_EXIT_AT_START)\n"
        )
        sys.stderr.flush()
        return options.exit_at_start
    options.work_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    stop = asyncio.Event()
    _install_signal_handlers(stop, ignore_sigterm=options.ignore_sigterm)
    if options.start_delay:
        log.info("delaying start-up by %.3g s (LINGMA_SIM_START_DELAY)", options.start_delay)
        try:
            await asyncio.wait_for(stop.wait(), options.start_delay)
            return 0
        except asyncio.TimeoutError:
            pass

    async with listening(options) as port:
        noise(f"[main] websocket server started at port {port}")
        if options.no_info:
            log.warning("not writing .info (LINGMA_SIM_NO_INFO)")
        else:
            path = await write_info(
                options.work_dir, port, os.getpid(), options.info_format, torn=options.info_torn
            )
            log.info("wrote %s", path)
        await stop.wait()
        log.info("shutting down")
    return 0


@asynccontextmanager
async def listening(options: SimOptions) -> AsyncIterator[int]:
    """The WebSocket server and the state it shares, listening on the port it yields;
    conversations saved and the message log closed on the way out.

    The whole simulator but its process: no signals, no ``.info``, no start-up faults.
    Tests serve it this way in their own event loop, to be reached on the port as
    ``--lingma-port`` reaches a running Lingma.
    """
    options.work_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    state = SimState.create(options)

    async def handler(ws: ServerConnection) -> None:
        await Connection(ws, state).serve()

    try:
        async with serve(
            handler,
            HOST,
            options.socket_port,
            max_size=MAX_MESSAGE,
            compression=None,
            ping_interval=None,
            close_timeout=2,
        ) as server:
            port = server.sockets[0].getsockname()[1] if server.sockets else options.socket_port
            log.info("listening on ws://%s:%d/", HOST, port)
            yield port
    finally:
        state.store.flush()
        state.messages.close()


def _install_signal_handlers(stop: asyncio.Event, *, ignore_sigterm: bool) -> None:
    loop = asyncio.get_running_loop()

    def on_sigterm() -> None:
        if ignore_sigterm:
            log.warning("ignoring SIGTERM (LINGMA_SIM_IGNORE_SIGTERM)")
            return
        stop.set()

    try:
        loop.add_signal_handler(signal.SIGTERM, on_sigterm)
        loop.add_signal_handler(signal.SIGINT, stop.set)
    except (NotImplementedError, AttributeError):
        # Windows: Ctrl+C still raises KeyboardInterrupt, which the command line catches.
        pass

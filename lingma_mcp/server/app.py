"""Build the MCP server and run it over stdio until the host leaves or a signal arrives."""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from mcp.server.mcpserver import MCPServer

from .. import __version__
from ..config import Settings
from .bridge import Bridge
from .changes import register_changes
from .resources import register_resources
from .tools import register_tools

log = logging.getLogger(__name__)

CLOSE_GRACE_S = 15.0


class _Shutdown:
    """Process-wide: a signal asked the server to stop."""

    requested = False


INSTRUCTIONS = """Lingma (Tongyi Lingma) is a coding assistant. Use ask_lingma to ask it a \
question or give it a task; pass the returned session_id to continue the conversation. If a \
call says Lingma is not logged in, call login and show the user the URL. auth_status and \
list_models describe the account."""


def build_app(settings: Settings, bridge: Bridge | None = None) -> MCPServer:
    """The MCP server: tools, resources, and a lifespan that starts and stops Lingma."""
    bridge = bridge if bridge is not None else Bridge(settings)

    @asynccontextmanager
    async def lifespan(_: MCPServer) -> AsyncIterator[dict[str, object]]:
        # start() returns at once: initialize and tools/list never wait for Lingma.
        bridge.start()
        try:
            yield {"bridge": bridge}
        finally:
            with anyio.move_on_after(CLOSE_GRACE_S, shield=True):
                await bridge.close()
            log.info("Lingma supervisor closed")
            if _Shutdown.requested:
                # The SDK reads stdin in a worker thread that no cancellation can
                # interrupt; with the host still attached, leaving would wait for its next
                # line. Lingma is closed and reaped by now, so leave at once.
                logging.shutdown()
                os._exit(0)

    app = MCPServer(
        "lingma-mcp",
        title="Lingma",
        instructions=INSTRUCTIONS,
        version=__version__,
        lifespan=lifespan,
        log_level=_sdk_level(settings.log_level),
    )
    register_tools(app, bridge)
    register_resources(app, bridge)
    register_changes(app, bridge)
    return app


def _sdk_level(level: str) -> str:
    level = level.upper()
    return level if level in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL") else "WARNING"


async def serve_stdio(app: MCPServer) -> None:
    """Serve until stdin closes, or SIGTERM / SIGINT arrive; the lifespan then closes Lingma."""
    async with anyio.create_task_group() as tg:

        async def serve() -> None:
            await app.run_stdio_async()
            tg.cancel_scope.cancel()

        tg.start_soon(serve)
        if sys.platform != "win32":
            tg.start_soon(_stop_on_signal, tg.cancel_scope)


async def _stop_on_signal(scope: anyio.CancelScope) -> None:
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
        async for signum in signals:
            log.info("signal %s: shutting down", signal.Signals(signum).name)
            _Shutdown.requested = True
            scope.cancel()
            return

"""Build the MCP server and run it over stdio until the host leaves or a signal arrives."""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from mcp.server.mcpserver import Context, MCPServer, RequestStateSecurity
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.stdio import stdio_server
from mcp.types import CallToolResult, TextContent, Tool, ToolExecution
from pydantic import ValidationError

from .. import __version__
from ..asking.arguments import arguments_text
from ..asking.bridge import Bridge
from ..config import Settings
from .changes import register_changes
from .job_tools import AskJobs, register_job_tools
from .lingma_tools import register_tools
from .resources import register_resources
from .review_app import review_extension
from .session_tools import register_session_tools
from .stdio import CheckedLines, GuardedStdout, std_streams, wait_stdout_closed
from .tasks import TASK_TOOL, LingmaTasks

log = logging.getLogger(__name__)

CLOSE_GRACE_S = 15.0
# A sealed request_state must outlive the question it carries: a person who answers within
# --approval-timeout must not have the retry refused as expired by the SDK.
MIN_REQUEST_STATE_TTL_S = 600.0
REQUEST_STATE_SLACK_S = 60.0


class _Shutdown:
    """Process-wide: a signal asked the server to stop."""

    requested = False


_ASK = (
    "Lingma (Tongyi Lingma) is a coding assistant. Use ask_lingma to ask it a question or "
    "give it a task, with files, folders and images as attachments; pass the returned "
    "session_id to continue the conversation (list_lingma_sessions lists them). "
)
_JOBS = (
    " auth_status and list_models describe the account. A long ask can run as a job "
    "(background=true, or a call that says it continues as a job): follow it with "
    "check_lingma_job."
)
# How the person logs in differs per backend: the IDE binary hands out a URL; the CLI logs
# in only from a terminal, so sending the model to the login tool there would always fail.
_LOGIN = {
    "ide": "If a call says Lingma is not logged in, call login and show the user the URL.",
    "cli": "If a call says Lingma is not logged in, show the user its text: they log in once "
    "by running `qoderclicn login` in a terminal (or set QODERCN_PERSONAL_ACCESS_TOKEN in "
    "the server's environment), then ask again.",
}


def instructions_for(kind: str) -> str:
    """The server's instructions for the backend ``kind`` (``ide`` or ``cli``)."""
    return _ASK + _LOGIN.get(kind, _LOGIN["ide"]) + _JOBS


class LingmaServer(MCPServer):
    """The SDK's server, with refused arguments worded like every other refusal, and
    ``ask_lingma`` declared as a tool that may run as a task.

    The SDK reports arguments that fail the input schema as pydantic's own dump; a host's
    model reads it better as what was wrong and what to send, as the bridge says it.
    """

    async def list_tools(self) -> list[Tool]:
        # Optional, never required: a plain call keeps working. The field exists on the
        # 2025-11-25 wire only; the SDK leaves it out at 2026-07-28, where the server
        # chooses per request instead (tasks.py).
        tools = await super().list_tools()
        return [
            tool.model_copy(update={"execution": ToolExecution(task_support="optional")})
            if tool.name == TASK_TOOL
            else tool
            for tool in tools
        ]

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context | None = None
    ) -> Any:
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            if isinstance(exc.__cause__, ValidationError):
                errors = exc.__cause__.errors(include_url=False)
                log.info("tool %.60r refused its arguments", name)
                return CallToolResult(
                    content=[TextContent(type="text", text=arguments_text(name, errors))],
                    is_error=True,
                )
            raise


def build_app(settings: Settings, bridge: Bridge | None = None) -> MCPServer:
    """The MCP server: tools, resources, and a lifespan that starts and stops Lingma."""
    bridge = bridge if bridge is not None else Bridge(settings)
    asks = AskJobs(bridge)
    tasks = LingmaTasks(asks)

    @asynccontextmanager
    async def lifespan(_: MCPServer) -> AsyncIterator[dict[str, object]]:
        # start() returns at once: initialize and tools/list never wait for Lingma.
        bridge.start()
        try:
            # Every ask runs as a job; leaving ends the jobs (each tells Lingma to stop)
            # before Lingma itself is closed.
            async with asks.running(), tasks.running():
                yield {"bridge": bridge}
        finally:
            with anyio.move_on_after(CLOSE_GRACE_S, shield=True):
                await bridge.close()
            log.info("Lingma supervisor closed")

    app = LingmaServer(
        "lingma-mcp",
        title="Lingma",
        instructions=instructions_for(getattr(bridge.supervisor, "kind", "ide")),
        version=__version__,
        lifespan=lifespan,
        log_level=_sdk_level(settings.log_level),
        # No subscriptions/listen: nothing here notifies of changes, so neither
        # resources.subscribe nor listChanged is advertised, on any protocol version.
        subscriptions=False,
        request_state_security=RequestStateSecurity.ephemeral(
            ttl=max(MIN_REQUEST_STATE_TTL_S, settings.approval_timeout + REQUEST_STATE_SLACK_S)
        ),
        # Tasks: the extension serves 2026-07-28 and the tasks/* methods; the middleware
        # answers 2025-11-25's task-augmented calls above the SDK's result check. MCP Apps:
        # the change review page and review_changes (review_app.py).
        extensions=[tasks, review_extension(bridge)],
        middleware=[tasks.middleware],
    )
    register_tools(app, bridge, asks)
    register_resources(app, bridge)
    register_job_tools(app, asks)
    register_changes(app, bridge)
    register_session_tools(app, bridge)
    return app


def _sdk_level(level: str) -> str:
    level = level.upper()
    return level if level in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL") else "WARNING"


async def serve_stdio(app: MCPServer) -> None:
    """Serve until stdin closes, the host closes stdout, or SIGTERM / SIGINT / SIGHUP
    arrive; the lifespan then closes Lingma.

    The signal receiver stays installed until the very end: a second signal during the
    shutdown is absorbed (logged) instead of killing the server before Lingma is reaped.
    """
    stdin, stdout = std_streams()
    with _signals() as signals:
        async with anyio.create_task_group() as outer:
            serving = anyio.CancelScope()

            def stop() -> None:
                _Shutdown.requested = True
                serving.cancel()

            if signals is not None:
                outer.start_soon(_stop_on_signal, signals, stop)

            async def watch_stdout() -> None:
                await wait_stdout_closed(stdout)
                stop()

            outer.start_soon(watch_stdout)
            lines = CheckedLines(stdin)
            with serving:
                async with stdio_server(
                    stdin=lines,  # type: ignore[arg-type]
                    stdout=GuardedStdout(stdout, stop),  # type: ignore[arg-type]
                ) as (read_stream, write_stream):
                    lines.reply_to = write_stream
                    lowlevel = app._lowlevel_server
                    await lowlevel.run(
                        read_stream, write_stream, lowlevel.create_initialization_options()
                    )
            outer.cancel_scope.cancel()


def _signals() -> Any:
    if sys.platform == "win32":
        return _no_signals()
    return anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class _no_signals:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


async def _stop_on_signal(signals: Any, stop: Any) -> None:
    async for signum in signals:
        name = signal.Signals(signum).name
        if _Shutdown.requested:
            log.info("signal %s: already shutting down, waiting for Lingma to stop", name)
            continue
        log.info("signal %s: shutting down", name)
        stop()

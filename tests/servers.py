"""lingma-mcp started for a test, the ways a host starts it.

**In this process** (most tests): :func:`mcp_server` yields the SDK's client on its
in-memory transport, :func:`lingma_app` the app itself for clients of other kinds. The IDE
simulator serves in the same event loop (``lingma_mcp.sim.server.listening``) and the server
reaches it as ``--lingma-port`` reaches a running Lingma: no process at all. What only the
simulator's own process shows (its start-up faults, a crash, a SIGTERM it ignores, its pid
to kill, its stderr read through the child's pipe) needs ``lingma="process"``: the server
then starts it as ``--simulate`` does. The CLI backend's simulator is a process always, as
the CLI is.

**As a stdio process** (the few tests of what only a process shows: the wire, signals, exit
and reaping, stdout kept for MCP): :func:`server_params` is the command line a host runs,
:func:`mcp_process` the SDK's client over its stdio, :func:`server_process` the raw process.

Either way the server logs at DEBUG into ``server.log`` in the test's folder (no token may
reach it), and the simulators record what they were sent in ``sim.jsonl`` (IDE) and
``acp.jsonl`` (CLI): :func:`sent_to_lingma`, :func:`sent_to_agent`.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from pathlib import Path
from typing import IO, Any, Literal

import anyio
import anyio.abc
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client

from lingma_mcp.config import Settings
from lingma_mcp.redact import SecretFilter
from lingma_mcp.sim.server import listening
from lingma_mcp.sim.start_options import build_options

# Short answers, streamed fast: what most tests need from the IDE simulator.
FAST = {"LINGMA_SIM_DELTA_DELAY": "0.002", "LINGMA_SIM_ANSWER_SIZE": "120"}
# The IDE simulator's switches that act on its process, not on what it says: only a
# simulator started as a process can show them.
PROCESS_SWITCHES = frozenset(
    {
        "LINGMA_SIM_START_DELAY",
        "LINGMA_SIM_EXIT_AT_START",
        "LINGMA_SIM_NO_INFO",
        "LINGMA_SIM_INFO_FORMAT",
        "LINGMA_SIM_INFO_TORN",
        "LINGMA_SIM_IGNORE_SIGTERM",
        "LINGMA_SIM_CRASH_AFTER",
        "LINGMA_SIM_VERBOSE",
    }
)
Lingma = Literal["in-process", "process"]


def sim_env(tmp_path: Path, sim: Mapping[str, str] | None = None) -> dict[str, str]:
    """The simulators' environment: :data:`FAST`, their logs in ``tmp_path``, then ``sim``
    (where an empty value leaves a switch at the simulator's own default)."""
    return {
        **FAST,
        "LINGMA_SIM_LOG": str(tmp_path / "sim.jsonl"),
        "LINGMA_SIM_ACP_LOG": str(tmp_path / "acp.jsonl"),
        **(sim or {}),
    }


# -- in this process -----------------------------------------------------------------------


@asynccontextmanager
async def lingma_app(
    tmp_path: Path,
    sim: Mapping[str, str] | None = None,
    *,
    lingma: Lingma = "in-process",
    **settings: Any,
) -> AsyncIterator[Any]:
    """The MCP server of ``build_app``, on the simulator (``sim`` its switches).

    ``settings`` go on top of: the simulator, ``tmp_path/work`` as the work dir,
    ``tmp_path/project`` as the workspace (named, as ``--workspace`` names it), a 30 s
    request timeout, DEBUG logs. The app's lifespan runs inside the client that serves it,
    which the caller opens inside this context.
    """
    from lingma_mcp.server.app import build_app

    env = sim_env(tmp_path, sim)
    workspace = Path(settings.pop("workspace", tmp_path / "project"))
    await anyio.Path(workspace).mkdir(parents=True, exist_ok=True)
    options = Settings(
        **{
            "simulate": True,
            "work_dir": tmp_path / "work",
            "workspace": workspace,
            "workspace_explicit": True,
            "request_timeout": 30.0,
            "log_level": "DEBUG",
            **settings,
        }
    )
    switches = PROCESS_SWITCHES & {name for name, value in env.items() if value}
    if switches and lingma != "process":
        raise ValueError(f"{', '.join(sorted(switches))}: only a process shows; lingma='process'")
    with server_log(tmp_path), pytest.MonkeyPatch.context() as patch:
        # What the server starts as a process (the simulator with --simulate, the CLI
        # backend's simulator) reads its switches from the environment it inherits.
        for name, value in env.items():
            patch.setenv(name, value)
        async with AsyncExitStack() as stack:
            if options.simulate and options.backend != "cli" and lingma == "in-process":
                options.lingma_port = await stack.enter_async_context(
                    lingma_sim(options.resolved_work_dir, env)
                )
            yield build_app(options)


@asynccontextmanager
async def lingma_sim(work_dir: Path, env: Mapping[str, str]) -> AsyncIterator[int]:
    """The IDE simulator serving in this event loop, with the switches of ``env``; its
    port. ``work_dir`` holds what it keeps (its conversations)."""
    async with listening(build_options(work_dir, env)) as port:
        yield port


@asynccontextmanager
async def mcp_server(
    tmp_path: Path,
    sim: Mapping[str, str] | None = None,
    *,
    lingma: Lingma = "in-process",
    host: Mapping[str, Any] | None = None,
    **settings: Any,
) -> AsyncIterator[Client]:
    """The SDK's client connected in memory to :func:`lingma_app`.

    ``host`` are the client's options (an ``elicitation_callback``, ``list_roots_callback``,
    ``client_info``, ``extensions``, a protocol ``mode``) on top of the handshake hosts use
    today (``mode="legacy"``).
    """
    async with lingma_app(tmp_path, sim, lingma=lingma, **settings) as app:
        async with Client(app, **{"mode": "legacy", **(host or {})}) as client:
            yield client


@contextmanager
def server_log(tmp_path: Path) -> Iterator[Path]:
    """Everything logged meanwhile, at DEBUG, into ``tmp_path/server.log``: masked as the
    command line's log handler masks it, websockets' frames left out as it leaves them."""
    path = tmp_path / "server.log"
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(SecretFilter())
    root, frames = logging.getLogger(), logging.getLogger("websockets")
    levels = root.level, frames.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    frames.setLevel(logging.INFO)
    try:
        yield path
    finally:
        root.removeHandler(handler)
        handler.close()
        root.setLevel(levels[0])
        frames.setLevel(levels[1])


# -- as a stdio process --------------------------------------------------------------------


def server_params(
    tmp_path: Path,
    env: dict[str, str] | None = None,
    *extra: str,
    workspace: Path | None = None,
) -> StdioServerParameters:
    """``lingma-mcp --simulate`` as a host starts it; ``env`` goes on top of
    :func:`sim_env`, ``extra`` flags come last and win."""
    if workspace is None:
        workspace = tmp_path / "project"
        workspace.mkdir(exist_ok=True)
    return StdioServerParameters(
        command=sys.executable,
        args=[
            "-m",
            "lingma_mcp",
            "--simulate",
            "--work-dir",
            str(tmp_path / "work"),
            "--workspace",
            str(workspace),
            "--log-level",
            "DEBUG",
            "--request-timeout",
            "30",
            *extra,
        ],
        env=sim_env(tmp_path, env),
    )


def open_log(tmp_path: Path) -> IO[str]:
    """The server process's stderr, kept for the no-token checks and for reading after a
    failure."""
    return open(tmp_path / "server.log", "a", encoding="utf-8")


def read_log(tmp_path: Path) -> str:
    path = tmp_path / "server.log"
    return path.read_text(encoding="utf-8") if path.exists() else ""


@asynccontextmanager
async def mcp_process(
    tmp_path: Path,
    env: dict[str, str] | None = None,
    params: StdioServerParameters | None = None,
    **client_options: Any,
) -> AsyncIterator[Client]:
    """The SDK's client over the stdio of a server process (:func:`server_params`)."""
    params = params if params is not None else server_params(tmp_path, env)
    with open_log(tmp_path) as errlog:
        transport = stdio_client(params, errlog=errlog)
        options = {"mode": "legacy", **client_options}  # hosts today use the handshake
        async with Client(transport, **options) as client:
            yield client


@asynccontextmanager
async def server_process(
    tmp_path: Path, env: dict[str, str] | None = None, params: StdioServerParameters | None = None
) -> AsyncIterator[anyio.abc.Process]:
    """The server as a raw process with stdin/stdout pipes, for tests of the wire itself
    and of signals. ``env`` goes on top of this process's environment and of the one
    ``params`` (default: :func:`server_params`) brings."""
    params = params if params is not None else server_params(tmp_path)
    full_env = {**os.environ, **(params.env or {}), **(env or {})}
    with open_log(tmp_path) as errlog:
        process = await anyio.open_process(
            [params.command, *params.args], env=full_env, stderr=errlog
        )
    async with process:
        yield process


# -- what the simulators were sent ---------------------------------------------------------


def _logged(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    messages = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            break  # a line still being written
        message = entry.get("message", entry) if isinstance(entry, dict) else None
        if isinstance(message, dict):
            messages.append(message)
    return messages


def sent_to_lingma(tmp_path: Path, method: str) -> list[dict[str, Any]]:
    """What the IDE simulator received with ``method``, in order."""
    return [m for m in _logged(tmp_path / "sim.jsonl") if m.get("method") == method]


def sent_to_agent(tmp_path: Path, method: str) -> list[dict[str, Any]]:
    """What the CLI backend's simulator received with ``method``, in order."""
    return [m for m in _logged(tmp_path / "acp.jsonl") if m.get("method") == method]

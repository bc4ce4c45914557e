"""Shared fixtures and helpers for the MCP server tests: one way to start the server.

``mcp_server`` starts ``python -m lingma_mcp --simulate`` as a real stdio process (the way
hosts do) and yields the SDK's client; ``inprocess_server`` runs the same app in this
process for cases that only check validation, which need no server process of their own.
The server's stderr goes to ``server.log`` in the test's folder so tests can read it.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest
import pytest_asyncio
from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client

from lingma_mcp.config import Settings
from lingma_mcp.server.progress import STATUS_PREFIX

FAST = {"LINGMA_SIM_DELTA_DELAY": "0.002", "LINGMA_SIM_ANSWER_SIZE": "120"}


def server_params(
    tmp_path: Path,
    env: dict[str, str] | None = None,
    *extra: str,
    workspace: Path | None = None,
) -> StdioServerParameters:
    """``lingma-mcp --simulate`` as a host starts it; ``extra`` flags come last and win."""
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
        env={**FAST, "LINGMA_SIM_LOG": str(tmp_path / "sim.jsonl"), **(env or {})},
    )


def open_log(tmp_path: Path) -> Any:
    """The server's stderr, kept for the no-token check and for reading after a failure."""
    return open(tmp_path / "server.log", "a", encoding="utf-8")


@asynccontextmanager
async def mcp_server(
    tmp_path: Path,
    env: dict[str, str] | None = None,
    params: StdioServerParameters | None = None,
    **client_options: Any,
) -> AsyncIterator[Client]:
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
    and of signals. ``env`` goes on top of this process's environment as it is (not on top
    of :data:`FAST`); ``params`` (from :func:`server_params`) brings its own."""
    if params is None:
        params = server_params(tmp_path)
        full_env = {**os.environ, **(env or {})}
    else:
        full_env = {**os.environ, **(params.env or {}), **(env or {})}
    with open_log(tmp_path) as errlog:
        process = await anyio.open_process(
            [params.command, *params.args], env=full_env, stderr=errlog
        )
    async with process:
        yield process


class Progress:
    """A progress callback that keeps what arrived, split into text and status."""

    def __init__(self) -> None:
        self.messages: list[tuple[float, float, str]] = []
        self.first_text = anyio.Event()

    async def __call__(self, progress: float, total: float | None, message: str | None) -> None:
        self.messages.append((time.monotonic(), progress, message or ""))
        if message and not message.startswith(STATUS_PREFIX):
            self.first_text.set()

    @property
    def text(self) -> str:
        return "".join(m for _, _, m in self.messages if not m.startswith(STATUS_PREFIX))


def sim_log(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "sim.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def sent_to_lingma(tmp_path: Path, method: str) -> list[dict[str, Any]]:
    return [
        e["message"]
        for e in sim_log(tmp_path)
        if isinstance(e.get("message"), dict) and e["message"].get("method") == method
    ]


async def wait_until(condition: Any, within: float = 10.0) -> None:
    """For conditions only a file shows (the simulator's log): poll briefly."""
    with anyio.fail_after(within):
        while not condition():  # noqa: ASYNC110 - a file cannot be awaited as an event
            await anyio.sleep(0.02)


def text_of(result: Any) -> str:
    return result.content[0].text


@asynccontextmanager
async def inprocess_server(tmp_path: Path, **settings: Any) -> AsyncIterator[Client]:
    """The same server in this process, on the simulator: for validation-only cases."""
    from lingma_mcp.server.app import build_app

    workspace = tmp_path / "project"
    workspace.mkdir(exist_ok=True)
    options = {"simulate": True, "work_dir": tmp_path / "work", "workspace": workspace}
    app = build_app(Settings(**{**options, **settings}))
    async with Client(app) as client:
        yield client


@pytest.fixture(scope="module")
def shared_server_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder of ``shared_server``: its ``sim.jsonl`` and ``server.log``, shared by every
    test of the module, so a test picks out its own entries (by prompt, say)."""
    return tmp_path_factory.mktemp("shared-server")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared_server(shared_server_folder: Path) -> AsyncIterator[Client]:
    """One simulated server for a module's read-only tests (mark them
    ``@pytest.mark.asyncio(loop_scope="module")``): tool lists, model lists, validation.

    The client lives in a task of its own: pytest-asyncio sets a fixture up and tears it
    down in two different tasks, and the client's task group must be left where it was
    entered.
    """
    folder = shared_server_folder
    ready: asyncio.Future[Client] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()

    async def host() -> None:
        try:
            async with mcp_server(folder) as client:
                ready.set_result(client)
                await stop.wait()
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc)
            raise

    task = asyncio.create_task(host())
    try:
        yield await ready
    finally:
        stop.set()
        await task

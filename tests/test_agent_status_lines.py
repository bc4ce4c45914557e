"""What a person is told while agent mode prepares: the sandbox as enforced, a second call
waiting for the first on one workspace, and a slow session start on the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from lingma_mcp.config import Settings
from lingma_mcp.server.app import build_app
from lingma_mcp.workspace.sandbox import support


def text_of(result: Any) -> str:
    return "".join(getattr(c, "text", "") for c in result.content)


def app_for(tmp_path: Path, **settings: Any) -> Any:
    project = tmp_path / "project"
    project.mkdir(exist_ok=True)
    options: dict[str, Any] = {
        "simulate": True,
        "work_dir": tmp_path / "work",
        "workspace": project,
        "workspace_explicit": True,
        "request_timeout": 60.0,
        **settings,
    }
    return build_app(Settings(**options))


@pytest.fixture(autouse=True)
def _fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LINGMA_SIM_DELTA_DELAY", "0.001")


async def test_auth_status_says_what_the_sandbox_enforces_here(tmp_path: Path) -> None:
    async with Client(app_for(tmp_path)) as client:
        status = (await client.call_tool("auth_status", {})).structured_content
    sandbox = status["bridge"]["sandbox"]
    assert sandbox["mode"] in ("workspace-write", "off")
    assert sandbox["enforced"] is support().available
    assert sandbox["network"] == "off"
    assert isinstance(sandbox["not_enforced"], list)
    if support().available:
        assert sandbox["mechanism"] == support().mechanism


async def test_a_second_changing_call_on_one_workspace_waits_and_says_so(
    tmp_path: Path,
) -> None:
    lines: list[str] = []

    async def progress(_: float, __: float | None, message: str | None) -> None:
        lines.append(message or "")

    app = app_for(tmp_path, approval="run=allow")
    async with Client(app) as client, anyio.create_task_group() as tg:
        first_running = anyio.Event()

        async def first() -> None:
            async def seen(_: float, __: float | None, message: str | None) -> None:
                if message and "running" in message:
                    first_running.set()

            result = await client.call_tool(
                "ask_lingma",
                {"prompt": "@run sleep 1", "mode": "agent"},
                progress_callback=seen,
            )
            assert not result.is_error, text_of(result)

        tg.start_soon(first)
        await first_running.wait()  # the first call holds the workspace now
        second = await client.call_tool(
            "ask_lingma", {"prompt": "@run true", "mode": "agent"}, progress_callback=progress
        )
    assert not second.is_error, text_of(second)
    assert any("waiting for another agent call" in line for line in lines), lines


async def test_a_slow_cli_session_start_is_said_while_it_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LINGMA_SIM_ACP_NEW_DELAY", "3")
    lines: list[str] = []

    async def progress(_: float, __: float | None, message: str | None) -> None:
        lines.append(message or "")

    async with Client(app_for(tmp_path, backend="cli")) as client:
        result = await client.call_tool(
            "ask_lingma", {"prompt": "hello"}, progress_callback=progress
        )
    assert not result.is_error, text_of(result)
    assert any("Opening a Lingma CLI session" in line for line in lines), lines

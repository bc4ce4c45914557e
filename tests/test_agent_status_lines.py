"""What a person is told while agent mode prepares: the sandbox as enforced, a second call
waiting for the first on one workspace, and a slow session start on the CLI."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from fakes import Progress, text_of
from servers import mcp_server

from lingma_mcp.acp import cli_client
from lingma_mcp.workspace.sandbox import support


async def test_auth_status_says_what_the_sandbox_enforces_here(tmp_path: Path) -> None:
    async with mcp_server(tmp_path) as client:
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
    second_progress = Progress()
    async with (
        mcp_server(tmp_path, approval="run=allow") as client,
        anyio.create_task_group() as tg,
    ):
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
            "ask_lingma",
            {"prompt": "@run true", "mode": "agent"},
            progress_callback=second_progress,
        )
    assert not second.is_error, text_of(second)
    lines = second_progress.status
    assert any("waiting for another agent call" in line for line in lines), lines


async def test_a_slow_cli_session_start_is_said_while_it_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # "Slow" shortened for the test: a session start past 0.1 s is said, this one takes 1 s.
    monkeypatch.setattr(cli_client, "SLOW_SESSION_S", 0.1)
    progress = Progress()
    slow_start = {"LINGMA_SIM_ACP_NEW_DELAY": "1"}
    async with mcp_server(tmp_path, slow_start, backend="cli") as client:
        result = await client.call_tool(
            "ask_lingma", {"prompt": "hello"}, progress_callback=progress
        )
    assert not result.is_error, text_of(result)
    assert any("Opening a Lingma CLI session" in line for line in progress.status), (
        progress.messages
    )

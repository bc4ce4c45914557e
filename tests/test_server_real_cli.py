"""lingma-mcp over stdio on the real ``qoderclicn --acp``, logged out (an empty HOME).

Skipped, saying why, where Node, npm or the registry is not available.
"""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from procs import alive
from real_cli import empty_home_env, installed_cli, processes_with_home

from lingma_mcp.acp.cli_errors import NOT_LOGGED_IN_MESSAGE

pytestmark = [
    pytest.mark.timeout(400),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc"),
]

STARTUP_TIMEOUT = 60
ROOT = Path(__file__).resolve().parents[1]  # `-m lingma_mcp` runs this checkout


def open_log(tmp_path: Path):
    return open(tmp_path / "server.log", "a", encoding="utf-8")


async def test_mcp_on_the_real_cli_logged_out_says_how_to_log_in_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    binary = installed_cli()
    home = (tmp_path / "home").resolve()
    workspace = (tmp_path / "project").resolve()
    workspace.mkdir()
    params = StdioServerParameters(
        command=sys.executable,
        args=[
            "-m",
            "lingma_mcp",
            "--backend",
            "cli",
            "--cli-bin",
            str(binary),
            "--workspace",
            str(workspace),
            "--work-dir",
            str(tmp_path / "work"),
            "--startup-timeout",
            str(STARTUP_TIMEOUT),
            "--log-level",
            "DEBUG",
        ],
        env=empty_home_env(home),
        cwd=str(ROOT),
    )
    with open_log(tmp_path) as errlog:
        async with Client(stdio_client(params, errlog=errlog), mode="legacy") as client:
            tools = await client.list_tools()
            assert "ask_lingma" in [t.name for t in tools.tools]
            status = await client.call_tool("auth_status", {})
            # The login error arrives within the start-up timeout: never a hang.
            with anyio.fail_after(STARTUP_TIMEOUT):
                asked = await client.call_tool("ask_lingma", {"prompt": "hello"})
            login = await client.call_tool("login", {})
    data = status.structured_content
    assert data["logged_in"] is False, data
    assert data["bridge"]["backend"] == "cli" and data["bridge"]["version"]
    cli_pid = data["bridge"]["pid"]
    assert asked.is_error and asked.content[0].text == NOT_LOGGED_IN_MESSAGE
    assert "qoderclicn login" in login.content[0].text
    # Nothing is left: the server ended the CLI's group as it closed (or, if the host had
    # to kill the server first, the CLI died with it). Only /proc shows it: poll, bounded.
    with anyio.fail_after(10):
        while alive(cli_pid) or processes_with_home(home):  # noqa: ASYNC110 - /proc only
            await anyio.sleep(0.05)

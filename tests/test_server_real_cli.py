"""lingma-mcp on the real ``qoderclicn --acp``, logged out (an empty HOME).

The server runs in this process (the SDK's in-memory client); the CLI is its child.
Skipped, saying why, where Node, npm or the registry is not available.
"""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
import pytest
from fakes import text_of
from procs import alive, wait_until
from real_cli import installed_cli, processes_with_home, use_empty_home
from servers import mcp_server

from lingma_mcp.acp.cli_errors import NOT_LOGGED_IN_MESSAGE

pytestmark = [
    pytest.mark.timeout(400),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc"),
]

STARTUP_TIMEOUT = 60


async def test_mcp_on_the_real_cli_logged_out_says_how_to_log_in_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    binary = installed_cli()
    home = (tmp_path / "home").resolve()
    use_empty_home(monkeypatch, home)  # the CLI inherits the server's environment
    async with mcp_server(
        tmp_path,
        simulate=False,
        backend="cli",
        cli_bin=str(binary),
        startup_timeout=STARTUP_TIMEOUT,
    ) as client:
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
    assert asked.is_error and text_of(asked) == NOT_LOGGED_IN_MESSAGE
    assert "qoderclicn login" in text_of(login)
    # Nothing is left: the server ended the CLI's group as the host left. Only /proc shows
    # it: poll, bounded.
    await wait_until(lambda: not alive(cli_pid) and not processes_with_home(home))

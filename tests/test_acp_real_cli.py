"""The ACP client against the real ``qoderclicn --acp``, logged out (an empty HOME).

Skipped, saying why, where Node, npm or the registry is not available.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from real_cli import empty_home_env, installed_cli, processes_with_home

from lingma_mcp.acp import CliNotLoggedIn, start_agent

pytestmark = [
    pytest.mark.timeout(400),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc"),
]


async def test_real_cli_handshakes_refuses_logged_out_and_leaves_nothing(tmp_path: Path):
    binary = installed_cli()
    home = (tmp_path / "home").resolve()
    workspace = (tmp_path / "project").resolve()
    workspace.mkdir()
    handle = await start_agent(
        binary,
        cwd=workspace,
        env=empty_home_env(home),
        startup_timeout=60,
        control_timeout=30,
    )
    try:
        info = handle.client.agent_info
        assert info.name.startswith("qoder-cli") and info.version
        assert handle.client.can_load
        # Logged out: the typed, actionable error, within the control timeout (no hang).
        with pytest.raises(CliNotLoggedIn, match="qoderclicn login"):
            await handle.client.new_session(workspace)
    finally:
        pid = handle.pid
        await handle.close()
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)
    assert processes_with_home(home) == []

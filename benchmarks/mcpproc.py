"""Start ``lingma-mcp --simulate`` as a real MCP stdio server, with the SDK's client."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import AsyncIterator

from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client


@contextlib.asynccontextmanager
async def mcp_session(*args: str, **sim_env: str) -> AsyncIterator[ClientSession]:
    """An initialized client session; ``sim_env`` sets the simulator's LINGMA_SIM_* switches."""
    with tempfile.TemporaryDirectory() as work:
        params = StdioServerParameters(
            command=sys.executable,
            args=["-m", "lingma_mcp", "--simulate", "--work-dir", work, *args],
            env={**os.environ, "LINGMA_SIM_SPLIT": "1", **sim_env},
        )
        async with (
            stdio_client(params, errlog=sys.stderr) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            yield session

"""Start the bundled simulator for a benchmark, exactly as the bridge would start Lingma."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from websockets.asyncio.client import connect

from lingma_mcp.lingma.ide_client import LingmaClient
from lingma_mcp.lingma.jsonrpc import RpcConnection


@dataclass(frozen=True)
class Sim:
    port: int
    pid: int


@contextlib.asynccontextmanager
async def simulator(**env: str) -> AsyncIterator[Sim]:
    """Run ``lingma-sim start`` with ``LINGMA_SIM_*`` switches; yield its port and pid."""
    with tempfile.TemporaryDirectory() as work:
        child_env = {**os.environ, "LINGMA_SIM_SPLIT": "1", **env}
        proc = await asyncio.create_subprocess_exec(
            *[sys.executable, "-m", "lingma_mcp.sim", "start", "--workDir", work],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=child_env,
        )
        try:
            info = Path(work) / ".info"
            for _ in range(1000):
                text = info.read_text() if info.exists() else ""
                if text.count("\n") >= 2:
                    break
                await asyncio.sleep(0.01)
            yield Sim(port=int(text.split()[0]), pid=proc.pid)
        finally:
            proc.terminate()
            await proc.wait()


@contextlib.asynccontextmanager
async def core_client(port: int) -> AsyncIterator[LingmaClient]:
    """The RPC core alone (no supervisor, no MCP), connected and initialized."""
    async with connect(f"ws://127.0.0.1:{port}/", max_size=None, ping_interval=None) as ws:
        conn = RpcConnection(ws)
        conn.start()
        client = LingmaClient(conn)
        await client.initialize(Path.cwd())
        try:
            yield client
        finally:
            await conn.close()

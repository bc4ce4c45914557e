"""A stand-in for the MCP server process, for supervisor tests.

Usage: ``python sup_server.py DIR wait|exit``. Starts a supervisor on the simulator, asks one
question, reports ``LINGMA_PID=<pid>`` on stderr, then either waits forever (to be killed
with SIGKILL) or closes the supervisor and exits. It never writes to stdout itself, so
anything a test finds there leaked from Lingma.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from lingma_mcp.config import Settings
from lingma_mcp.lingma.client import ChatRequest
from lingma_mcp.lingma.supervisor import LingmaSupervisor


async def main(base: Path, mode: str) -> int:
    settings = Settings(simulate=True, work_dir=base / "work", workspace=base, startup_timeout=20.0)
    supervisor = LingmaSupervisor(settings)
    try:
        supervisor.start()
        client = await supervisor.client()
        stream = await client.open_chat(ChatRequest(prompt="say something"))
        async for _ in stream:
            pass
        await stream.aclose()
        sys.stderr.write(f"LINGMA_PID={supervisor.status().pid}\n")
        sys.stderr.flush()
        if mode == "wait":
            await asyncio.Event().wait()
    finally:
        await supervisor.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(Path(sys.argv[1]), sys.argv[2])))

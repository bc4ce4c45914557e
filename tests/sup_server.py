"""A stand-in for the MCP server process, for supervisor tests.

Usage: ``python sup_server.py DIR wait|exit``. Starts a supervisor on the simulator, asks one
question, reports ``LINGMA_PID=<pid>`` on stderr, then (``wait``) waits for stdin to reach
EOF or for SIGTERM, as the MCP server does, or (``exit``) goes straight on; then closes the
supervisor and exits. It never writes to stdout itself, so anything a test finds there
leaked from Lingma.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from lingma_mcp.backend import ChatRequest
from lingma_mcp.config import Settings
from lingma_mcp.lingma.supervisor import LingmaSupervisor


async def _stdin_eof_or_sigterm() -> asyncio.Event:
    """An event set on stdin EOF or SIGTERM; set up before the pid is reported (no race)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    async def eof() -> None:
        while await reader.read(4096):
            pass
        stop.set()

    watcher = asyncio.ensure_future(eof())
    stop_task = asyncio.ensure_future(stop.wait())
    stop_task.add_done_callback(lambda _: watcher.cancel())
    return stop


async def main(base: Path, mode: str) -> int:
    settings = Settings(simulate=True, work_dir=base / "work", workspace=base, startup_timeout=20.0)
    supervisor = LingmaSupervisor(settings.launch_options())
    stop = await _stdin_eof_or_sigterm() if mode == "wait" else None
    try:
        supervisor.start()
        client = await supervisor.client()
        stream = await client.open_chat(ChatRequest(prompt="say something"))
        async for _ in stream:
            pass
        await stream.aclose()
        sys.stderr.write(f"LINGMA_PID={supervisor.status().pid}\n")
        sys.stderr.flush()
        if stop is not None:
            await stop.wait()
    finally:
        await supervisor.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(Path(sys.argv[1]), sys.argv[2])))

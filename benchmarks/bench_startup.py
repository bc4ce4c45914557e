"""Start-up: (a) lingma-mcp's time to answer initialize against a do-nothing SDK server;
(b) from the simulator writing .info to the supervisor being ready.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from lingma_mcp.config import Settings
from lingma_mcp.lingma.supervisor import LingmaSupervisor

ROUNDS = 7


async def time_to_initialize(args: list[str]) -> float:
    params = StdioServerParameters(command=sys.executable, args=args, env=dict(os.environ))
    start = time.perf_counter()
    async with (
        stdio_client(params, errlog=sys.stderr) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        elapsed = time.perf_counter() - start
    return elapsed


async def info_to_ready() -> float:
    """Milliseconds from the .info file's write time to the supervisor saying ready."""
    with tempfile.TemporaryDirectory() as work:
        supervisor = LingmaSupervisor(Settings(simulate=True, work_dir=Path(work)).launch_options())
        try:
            await supervisor.client()
            ready_ns = time.time_ns()
            info = (supervisor.instance_dir or Path(work)) / ".info"  # this server's folder
            written_ns = info.stat().st_mtime_ns
            return (ready_ns - written_ns) / 1e6
        finally:
            await supervisor.close()


def run() -> dict:
    bridge, baseline, ready = [], [], []
    with tempfile.TemporaryDirectory() as work:
        for _ in range(ROUNDS):  # interleaved, so drift hits both alike
            baseline.append(asyncio.run(time_to_initialize(["-m", "benchmarks.minimal_server"])))
            bridge.append(
                asyncio.run(
                    time_to_initialize(["-m", "lingma_mcp", "--simulate", "--work-dir", work])
                )
            )
    for _ in range(ROUNDS):
        ready.append(asyncio.run(info_to_ready()))
    return {
        "bridge_ms": statistics.median(bridge) * 1000,
        "baseline_ms": statistics.median(baseline) * 1000,
        "ready_ms": statistics.median(ready),
        "ready_max_ms": max(ready),
    }


def report(r: dict) -> list[str]:
    ratio = r["bridge_ms"] / r["baseline_ms"]
    return [
        "| measure | median |",
        "|---|---:|",
        f"| do-nothing SDK server: launch → initialize answered | {r['baseline_ms']:.0f} ms |",
        f"| lingma-mcp --simulate: launch → initialize answered | {r['bridge_ms']:.0f} ms |",
        f"| .info written → supervisor ready | {r['ready_ms']:.1f} ms "
        f"(max {r['ready_max_ms']:.1f}) |",
        "",
        f"- launch ratio: {ratio:.2f}× (target ≤ 1.3×) {'met' if ratio <= 1.3 else 'MISSED'}",
        f"- .info → ready: {r['ready_ms']:.1f} ms (target < 50 ms) "
        f"{'met' if r['ready_ms'] < 50 else 'MISSED'}",
    ]


if __name__ == "__main__":
    print("\n".join(report(run())))

"""Throughput of the CLI backend (ACP over stdio) beside the IDE backend's.

The ACP simulator answers one prompt with 20,000 one-character ``agent_message_chunk``
updates as fast as it can write them (no thinking, no plan). Timed to the final result
through the ACP client alone (``start_agent`` + ``session/prompt``, no supervisor, no MCP)
and through the whole path (``lingma-mcp --simulate --backend cli`` over stdio, a
progress token set). The IDE backend's whole path is measured in the same run, with the
same number of deltas, so the two rows compare.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from benchmarks import bench_throughput
from lingma_mcp.acp import start_agent
from lingma_mcp.asking.backend_choice import acp_simulator_command

DELTAS = bench_throughput.DELTAS
ROUNDS = 3
PREFIX = "Answer to: "  # the simulator's answer is this and the prompt
PROMPT = "x" * (DELTAS - len(PREFIX))
ROOT = Path(__file__).resolve().parents[1]  # where `-m lingma_mcp.sim` resolves


def _sim_env(state: str) -> dict[str, str]:
    return {
        **os.environ,
        "LINGMA_SIM_ACP_STATE_DIR": state,
        "LINGMA_SIM_ACP_CHUNK": "1",
        "LINGMA_SIM_ACP_DELTA_DELAY": "0",
        "LINGMA_SIM_ACP_THINK": "0",
        "LINGMA_SIM_ACP_PLAN": "0",
    }


async def acp_core_rate() -> float:
    command = acp_simulator_command()
    with tempfile.TemporaryDirectory() as state:
        handle = await start_agent(
            command[0],
            extra_args=command[1:],
            cwd=ROOT,
            env=_sim_env(state),
        )
        try:
            best = float("inf")
            for _ in range(ROUNDS):
                session = await handle.client.new_session(Path(state))
                start = time.perf_counter()
                stream = handle.client.prompt(session, PROMPT)
                async for _ in stream:
                    pass
                best = min(best, time.perf_counter() - start)
                assert stream.finish is not None and len(stream.answer) == DELTAS
        finally:
            await handle.close()
    return DELTAS / best


@contextlib.asynccontextmanager
async def cli_session() -> AsyncIterator[ClientSession]:
    with tempfile.TemporaryDirectory() as work:
        params = StdioServerParameters(
            command=sys.executable,
            args=["-m", "lingma_mcp", "--simulate", "--backend", "cli", "--work-dir", work],
            env=_sim_env(str(Path(work) / "acp")),
        )
        async with (
            stdio_client(params, errlog=sys.stderr) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            yield session


async def acp_mcp_rate() -> tuple[float, int]:
    notes = 0

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        nonlocal notes
        notes += 1

    async with cli_session() as session:
        await session.call_tool("auth_status", {})  # the CLI is up before the clock starts
        best = float("inf")
        for _ in range(ROUNDS):
            notes = 0
            start = time.perf_counter()
            result = await session.call_tool(
                "ask_lingma", {"prompt": PROMPT}, progress_callback=on_progress
            )
            best = min(best, time.perf_counter() - start)
            assert not result.is_error, result.content
            assert len(result.structured_content["answer"]) == DELTAS
        return DELTAS / best, notes


def run() -> dict:
    ide, ide_notes = asyncio.run(bench_throughput.mcp_rate())
    core = asyncio.run(acp_core_rate())
    full, notes = asyncio.run(acp_mcp_rate())
    return {"ide": ide, "ide_notes": ide_notes, "core": core, "mcp": full, "notes": notes}


def report(r: dict) -> list[str]:
    return [
        "| path | deltas/s |",
        "|---|---:|",
        f"| IDE backend, whole MCP path | {r['ide']:,.0f} ({r['ide_notes']} notifications) |",
        f"| CLI backend, ACP client alone over the simulator's stdio | {r['core']:,.0f} |",
        f"| CLI backend, whole MCP path | {r['mcp']:,.0f} ({r['notes']} notifications) |",
        "",
        f"- ACP client ÷ its MCP path: {r['core'] / r['mcp']:.2f}×; "
        f"CLI ÷ IDE whole path: {r['mcp'] / r['ide']:.2f}× (no target: a comparison)",
    ]


if __name__ == "__main__":
    print("\n".join(report(run())))

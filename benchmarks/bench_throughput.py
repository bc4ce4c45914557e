"""Throughput: the simulator pours out small deltas as fast as it can.

Measured twice in one run: through the RPC core alone (no supervisor, no MCP), and through
the whole path (``lingma-mcp --simulate`` over stdio, a progress token set, the SDK client
reading every notification). The ratio says what the MCP face costs on top of the core.
"""

from __future__ import annotations

import asyncio
import time

from benchmarks.mcpproc import mcp_session
from benchmarks.simproc import core_client, simulator
from lingma_mcp.backend import ChatRequest
from lingma_mcp.lingma.framing import encode_frame
from lingma_mcp.lingma.ide_client import LingmaClient
from lingma_mcp.lingma.jsonrpc import RpcConnection

DELTAS = 20_000
ROUNDS = 3


async def core_rate() -> float:
    async with (
        simulator(LINGMA_SIM_DELTAS=str(DELTAS), LINGMA_SIM_DELTA_DELAY="0") as sim,
        core_client(sim.port) as client,
    ):
        best = float("inf")
        for _ in range(ROUNDS):
            start = time.perf_counter()
            stream = await client.open_chat(ChatRequest(prompt="throughput"))
            async for _ in stream:
                pass
            best = min(best, time.perf_counter() - start)
            assert stream.result().finish_reason == "success"
        return DELTAS / best


class _NullSocket:
    """Hands the core pre-encoded messages and swallows its replies: no socket, no peer."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.sent = 0

    async def send(self, message: str | bytes) -> None:
        self.sent += 1

    async def recv(self) -> bytes:
        if not self.messages:
            await asyncio.Event().wait()  # nothing more: wait to be closed
        return self.messages.pop()

    async def close(self) -> None:
        return None


async def core_in_process_rate() -> float:
    """The core's own ceiling: decode, reply, route and consume, with no I/O at all."""
    best = float("inf")
    for round_ in range(ROUNDS):
        sock = _NullSocket()
        conn = RpcConnection(sock)
        conn.start()
        client = LingmaClient(conn)
        rid = f"bench-{round_}"
        stream = await client.open_chat(ChatRequest(prompt="throughput", request_id=rid))
        frames = [
            encode_frame(
                {
                    "jsonrpc": "2.0",
                    "id": i,
                    "method": "chat/answer",
                    "params": {"requestId": rid, "sessionId": "s", "text": "delta ", "extra": {}},
                }
            )
            for i in range(10, DELTAS + 10)
        ]
        frames.append(
            encode_frame(
                {
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "chat/finish",
                    "params": {"requestId": rid, "reason": "success", "statusCode": 200},
                }
            )
        )
        # Eight frames a message, as the simulator merges them; popped from the end.
        sock.messages = [b"".join(frames[i : i + 8]) for i in range(0, len(frames), 8)][::-1]
        start = time.perf_counter()
        async for _ in stream:
            pass
        best = min(best, time.perf_counter() - start)
        assert sock.sent >= DELTAS  # every delta was answered
        await conn.close()
    return DELTAS / best


async def mcp_rate() -> tuple[float, int]:
    notes = 0

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        nonlocal notes
        notes += 1

    async with mcp_session(LINGMA_SIM_DELTAS=str(DELTAS), LINGMA_SIM_DELTA_DELAY="0") as session:
        await session.call_tool("auth_status", {})  # Lingma is up before the clock starts
        best = float("inf")
        for _ in range(ROUNDS):
            notes = 0
            start = time.perf_counter()
            result = await session.call_tool(
                "ask_lingma", {"prompt": "throughput"}, progress_callback=on_progress
            )
            best = min(best, time.perf_counter() - start)
            assert not result.is_error, result.content
        return DELTAS / best, notes


def run() -> dict:
    in_process = asyncio.run(core_in_process_rate())
    core = asyncio.run(core_rate())
    full, notes = asyncio.run(mcp_rate())
    return {"in_process": in_process, "core": core, "mcp": full, "notifications": notes}


def report(r: dict) -> list[str]:
    ratio = r["core"] / r["mcp"]
    return [
        "| path | deltas/s |",
        "|---|---:|",
        f"| RPC core in-process, no socket (its own ceiling) | {r['in_process']:,.0f} |",
        f"| RPC core alone, over the simulator's WebSocket | {r['core']:,.0f} |",
        f"| whole MCP path | {r['mcp']:,.0f} ({r['notifications']} progress notifications) |",
        "",
        f"- core alone: {r['core']:,.0f} deltas/s (target > 50,000) "
        f"{'met' if r['core'] > 50_000 else 'MISSED'}",
        f"- core ÷ MCP path: {ratio:.2f}× (target ≤ 2×) {'met' if ratio <= 2 else 'MISSED'}",
    ]


if __name__ == "__main__":
    print("\n".join(report(run())))

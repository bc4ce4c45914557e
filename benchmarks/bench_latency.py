"""Added latency: from the simulator writing a delta to the MCP client holding its text.

With ``LINGMA_SIM_STAMP=1`` every delta's text is ``⟨t⟩``, t being ``time.monotonic_ns()``
when the simulator wrote it. On Linux that clock is system-wide, so the client subtracts
it from its own ``monotonic_ns()`` on receipt: one clock, no offsets. The path measured is
the whole bridge: the simulator's socket, the RPC core, the stream, the progress relay,
the MCP SDK, stdio, and the SDK client's parsing.
"""

from __future__ import annotations

import asyncio
import re
import statistics
import time

from benchmarks.mcpproc import mcp_session

STAMP = re.compile(r"⟨(\d+)⟩")
CASES = (  # (streams, seconds between deltas, deltas per stream)
    (1, 0.100, 30),
    (16, 0.100, 30),
    (1, 0.005, 300),
    (16, 0.005, 300),
)


async def measure(streams: int, gap: float, deltas: int) -> list[float]:
    delays_ms: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        now = time.monotonic_ns()
        for stamp in STAMP.findall(message or ""):
            delays_ms.append((now - int(stamp)) / 1e6)

    async with mcp_session(
        LINGMA_SIM_STAMP="1", LINGMA_SIM_DELTAS=str(deltas), LINGMA_SIM_DELTA_DELAY=str(gap)
    ) as session:
        await session.call_tool("auth_status", {})  # Lingma is warm before measuring
        calls = [
            session.call_tool(
                "ask_lingma", {"prompt": f"latency {i}"}, progress_callback=on_progress
            )
            for i in range(streams)
        ]
        for result in await asyncio.gather(*calls):
            assert not result.is_error, result.content
    return delays_ms


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else 0


def run() -> list[dict]:
    rows = []
    for streams, gap, deltas in CASES:
        delays = asyncio.run(measure(streams, gap, deltas))
        rows.append(
            {
                "streams": streams,
                "gap_ms": gap * 1000,
                "samples": len(delays),
                "expected": streams * deltas,
                "p50": percentile(delays, 50),
                "p99": percentile(delays, 99),
            }
        )
    return rows


def report(rows: list[dict]) -> list[str]:
    lines = [
        "| streams | delta gap | deltas seen | p50 ms | p99 ms |",
        "|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['streams']} | {r['gap_ms']:.0f} ms | {r['samples']}/{r['expected']} "
            f"| {r['p50']:.1f} | {r['p99']:.1f} |"
        )
    slow16 = next(r for r in rows if r["streams"] == 16 and r["gap_ms"] == 100)
    fast = [r for r in rows if r["gap_ms"] == 5]
    lines.append("")
    lines.append(
        f"- 16 streams, 100 ms apart: p50 {slow16['p50']:.1f} ms (target < 5), "
        f"p99 {slow16['p99']:.1f} ms (target < 20) "
        f"{'met' if slow16['p50'] < 5 and slow16['p99'] < 20 else 'MISSED'}"
    )
    worst = max(r["p99"] for r in fast)
    lines.append(
        f"- 5 ms apart: worst p99 {worst:.1f} ms (target: within the ~100 ms coalescing "
        f"window) {'met' if worst <= 120 else 'MISSED'}"
    )
    return lines


if __name__ == "__main__":
    print("\n".join(report(run())))

"""Memory: the server's peak RSS under 16 concurrent 1 MB answers, and growth over 1,000 asks.

The server's resident memory is read from /proc (VmHWM: the kernel's high-water mark, and
VmRSS), so nothing is added to the process being measured. Linux only.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from benchmarks.mcpproc import mcp_session


def server_pid() -> int:
    """The lingma-mcp child of this process (the SDK client spawned it)."""
    me = os.getpid()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == me and b"lingma_mcp" in cmdline:
            return int(stat.parent.name)
    raise RuntimeError("the lingma-mcp server process was not found")


def memory_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/{pid}/status")


# The simulator's answers are a third Chinese, so 1 MB of UTF-8 is about 571,000
# characters; a million characters would be 1.75 MB.
ONE_MB_OF_CHARS = 571_440
MILLION_CHARS = 1_000_000


async def peak_under_load(chars: int) -> dict:
    async with mcp_session(
        LINGMA_SIM_ANSWER_SIZE=str(chars), LINGMA_SIM_CHUNK="2000", LINGMA_SIM_DELTA_DELAY="0"
    ) as session:
        await session.call_tool("auth_status", {})
        pid = server_pid()
        idle = memory_mb(pid, "VmRSS")
        results = await asyncio.gather(
            *(
                session.call_tool("ask_lingma", {"prompt": f"big {i}"}, progress_callback=_ignore)
                for i in range(16)
            )
        )
        assert all(not r.is_error for r in results)
        answers = [r.content[0].text for r in results]
        return {
            "idle": idle,
            "peak": memory_mb(pid, "VmHWM"),
            "chars": min(len(a) for a in answers),
            "mb": min(len(a.encode()) for a in answers) / 1e6,
        }


async def growth() -> dict:
    async with mcp_session(LINGMA_SIM_DELTA_DELAY="0", LINGMA_SIM_ANSWER_SIZE="400") as session:
        await session.call_tool("auth_status", {})
        pid = server_pid()
        marks = {}
        for i in range(1, 1001):
            result = await session.call_tool(
                "ask_lingma", {"prompt": f"ask {i}"}, progress_callback=_ignore
            )
            assert not result.is_error, result.content
            if i in (100, 1000):
                marks[i] = memory_mb(pid, "VmRSS")
        return {"after_100": marks[100], "after_1000": marks[1000]}


async def _ignore(progress: float, total: float | None, message: str | None) -> None:
    return None


def run() -> dict:
    return {
        "one_mb": asyncio.run(peak_under_load(ONE_MB_OF_CHARS)),
        "million_chars": asyncio.run(peak_under_load(MILLION_CHARS)),
        **asyncio.run(growth()),
    }


def report(r: dict) -> list[str]:
    grew = r["after_1000"] - r["after_100"]
    one, big = r["one_mb"], r["million_chars"]
    return [
        "| measure | MB |",
        "|---|---:|",
        f"| server RSS idle, Lingma ready | {one['idle']:.1f} |",
        f"| server peak RSS, 16 concurrent asks, answers of {one['mb']:.2f} MB UTF-8 "
        f"({one['chars']:,} chars) | {one['peak']:.1f} |",
        f"| the same with answers of {big['chars']:,} chars ({big['mb']:.2f} MB UTF-8) "
        f"| {big['peak']:.1f} |",
        f"| server RSS after 100 sequential asks | {r['after_100']:.1f} |",
        f"| server RSS after 1,000 sequential asks | {r['after_1000']:.1f} |",
        "",
        f"- peak with 1 MB answers: {one['peak']:.1f} MB (target < 150) "
        f"{'met' if one['peak'] < 150 else 'MISSED'}",
        f"- growth 100 → 1,000 asks: {grew:+.1f} MB (target < 10) "
        f"{'met' if grew < 10 else 'MISSED'}",
    ]


if __name__ == "__main__":
    print("\n".join(report(run())))

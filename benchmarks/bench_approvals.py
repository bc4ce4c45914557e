"""The cost of asking the person: one approval round trip on each protocol era.

The same simulated agent task (Lingma creates one file) is timed from ``tools/call`` to the
result, through ``lingma-mcp --simulate --mode agent`` over stdio and the SDK's ``Client``,
whose elicitation callback approves at once:

- on 2025-11-25 (``mode="legacy"``), the question is an elicitation request in the middle of
  the call;
- on 2026-07-28, the call answers ``InputRequiredResult`` and the client's driver retries
  with the answer (a second ``tools/call`` that resumes the parked job);
- and, for each era, the same task on a server started with ``--approval write=allow``, so
  nothing is asked: the baseline the question's added time is measured against.

The four servers run side by side and the calls are interleaved, one of each per round, so
the machine's load falls on all alike; a round's added time is its asked call minus its
allowed call of the same era, and the figure is the median over the rounds.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.types import ElicitResult

ROUNDS = 80
WARMUP = 3
CASES = (  # (label, client mode, approval setting)
    ("2025-11-25, asked mid-call", "legacy", None),
    ("2025-11-25, allowed by the setting", "legacy", "write=allow"),
    ("2026-07-28, asked by InputRequiredResult + retry", None, None),
    ("2026-07-28, allowed by the setting", None, "write=allow"),
)


async def approve(_: Any, params: Any) -> ElicitResult:
    return ElicitResult(action="accept", content={"decision": "approve"})


@contextlib.asynccontextmanager
async def agent_client(mode: str | None, approval: str | None) -> AsyncIterator[Client]:
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "project"
        project.mkdir()
        args = ["-m", "lingma_mcp", "--simulate", "--mode", "agent", "--work-dir", tmp]
        args += ["--workspace", str(project)]
        if approval:
            args += ["--approval", approval]
        params = StdioServerParameters(
            command=sys.executable,
            args=args,
            env={**os.environ, "LINGMA_SIM_DELTA_DELAY": "0", "LINGMA_SIM_ANSWER_SIZE": "40"},
        )
        options: dict[str, Any] = {"elicitation_callback": approve}
        if mode:
            options["mode"] = mode
        async with Client(stdio_client(params, errlog=sys.stderr), **options) as client:
            yield client


async def timed(client: Client, n: int) -> float:
    started = time.perf_counter()
    result = await client.call_tool("ask_lingma", {"prompt": f"make it\n@create f{n}.txt x\\n"})
    elapsed = time.perf_counter() - started
    assert not result.is_error, result.content
    assert result.structured_content["approvals"][0]["decision"] == "allowed"
    return elapsed


async def measure() -> dict[str, list[float]]:
    times: dict[str, list[float]] = {label: [] for label, _, _ in CASES}
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            (label, await stack.enter_async_context(agent_client(mode, approval)))
            for label, mode, approval in CASES
        ]
        for n in range(WARMUP + ROUNDS):
            for label, client in clients:
                elapsed = await timed(client, n)
                if n >= WARMUP:
                    times[label].append(elapsed)
    return times


def added_ms(asked: list[float], allowed: list[float]) -> float:
    """The median over rounds of what asking added to the same round's allowed call."""
    return statistics.median(a - b for a, b in zip(asked, allowed, strict=True)) * 1000


def run() -> list[dict]:
    times = asyncio.run(measure())
    rows = [
        {"label": label, "median_ms": statistics.median(t) * 1000, "samples": len(t)}
        for label, t in times.items()
    ]
    labels = [label for label, _, _ in CASES]
    rows[0]["added_ms"] = added_ms(times[labels[0]], times[labels[1]])
    rows[2]["added_ms"] = added_ms(times[labels[2]], times[labels[3]])
    return rows


def report(rows: list[dict]) -> list[str]:
    lines = [
        "| era, how the one write was decided | median call ms | added by asking, ms |",
        "|---|---:|---:|",
    ]
    for r in rows:
        added = f"{r['added_ms']:.1f}" if "added_ms" in r else ""
        lines.append(f"| {r['label']} | {r['median_ms']:.1f} | {added} |")
    legacy, modern = rows[0]["added_ms"], rows[2]["added_ms"]
    ratio = f"{modern / legacy:.2f}×" if legacy > 0 else "n/a (no added time on 2025-11-25)"
    lines += [
        "",
        f"- one approval round trip adds {legacy:.1f} ms on 2025-11-25 (mid-call elicitation) "
        f"and {modern:.1f} ms on 2026-07-28 (InputRequiredResult + retry): {ratio}, "
        f"{modern - legacy:+.1f} ms ({rows[0]['samples']} rounds; no target: a comparison)",
    ]
    return lines


if __name__ == "__main__":
    print("\n".join(report(run())))

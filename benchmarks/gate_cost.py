"""The gate's added cost per hosted write.

One small file is written again and again, two ways, interleaved so drift hits both alike:
through the workspace host (``WorkspaceHost.write_text``: the confinement decision, the
approval gate with ``write=allow``, the pass check, the path decided again after the
answer, the record's bookkeeping) and bare (the same reads and atomic write the host makes,
in the same threads, with none of the checks). The median difference is the figure.
Target: under 2 ms added per write.

Run alone: ``.venv/bin/python -m benchmarks.gate_cost``.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from lingma_mcp.workspace import ApprovalGate, WorkspaceHost, parse_policy
from lingma_mcp.workspace.files import atomic_write, encode_text, read_for_change

ROUNDS = 400
TARGET_MS = 2.0


async def _bare(path: Path, text: str) -> None:
    """What a write costs without the host: read the old bytes, write the new atomically."""
    old = await asyncio.to_thread(read_for_change, path, path.name)
    data = encode_text(text, old, path.name)
    await asyncio.to_thread(atomic_write, path, data)


async def _measure(root: Path) -> dict[str, list[float]]:
    host = WorkspaceHost(root, ApprovalGate(parse_policy("write=allow")))
    times: dict[str, list[float]] = {"bare": [], "host": []}
    for n in range(ROUNDS + 20):  # the first rounds warm the threads up
        text = f"line {n}\n" * 20
        start = time.perf_counter()
        await _bare(root / "src" / "bare.txt", text)
        bare = time.perf_counter() - start
        start = time.perf_counter()
        await host.write_text("src/hosted.txt", text)
        hosted = time.perf_counter() - start
        if n >= 20:
            times["bare"].append(bare)
            times["host"].append(hosted)
    await host.close()
    return times


def run() -> dict:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder).resolve()
        (root / "src").mkdir()
        times = asyncio.run(_measure(root))
    return {name: statistics.median(samples) * 1000 for name, samples in times.items()}


def report(r: dict) -> list[str]:
    added = r["host"] - r["bare"]
    return [
        f"A 200-byte file rewritten, median of {ROUNDS}, interleaved.",
        "",
        "| write | ms |",
        "|---|---:|",
        f"| bare: read, atomic write (baseline) | {r['bare']:.2f} |",
        f"| through the workspace host (write=allow) | {r['host']:.2f} |",
        "",
        f"- added per hosted write: {added:.2f} ms, {r['host'] / r['bare']:.2f}× the bare "
        f"write (target < {TARGET_MS:g} ms) {'met' if added < TARGET_MS else 'MISSED'}",
    ]


if __name__ == "__main__":
    print("\n".join(report(run())))

"""What attachments and a conversation's turns cost on the CLI backend.

(a) ``ask_lingma`` through the whole MCP path (the SDK's in-memory client, the server in
this process, the ACP simulator as its CLI), three ways interleaved: the prompt alone (the
baseline), with one 4 MB workspace image, and with twenty 100 KB text files (embedded).
What is added is reading, checking and base64-encoding them, and one JSON-RPC line of that
size each way through the ACP SDK.

(b) Reading ``lingma://sessions/{id}`` (``session/list``, then ``session/load``, collecting
its replay until the CLI's closing update) against ``lingma://sessions`` (the list alone),
for a conversation of two turns, on the real ``qoderclicn`` 1.1.52 run offline where the
tests' cache holds it, else on the simulator.

No target: these are costs to know, each against its baseline in the same run.
"""

from __future__ import annotations

import json
import os
import statistics
import struct
import tempfile
import time
import zlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
from mcp import Client

from lingma_mcp.config import Settings
from lingma_mcp.server.app import build_app

ROUNDS = 8
READS = 10
IMAGE_SIDE = 1150  # pixels: random RGB does not compress, so about 4 MB of PNG
FILES, FILE_BYTES = 20, 100 * 1024
CLI = (
    Path(os.environ.get("LINGMA_TEST_CACHE") or Path.home() / ".cache" / "lingma-mcp-tests")
    / "qoderclicn"
    / "node_modules"
    / ".bin"
    / "qoderclicn"
)


def _png(side: int) -> bytes:
    """A whole, decodable PNG of random pixels (the simulator decodes it, as the CLI does)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + os.urandom(side * 3) for _ in range(side))
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 1))
        + chunk(b"IEND", b"")
    )


def _workspace(root: Path) -> Path:
    ws = root / "project"
    (ws / "docs").mkdir(parents=True)
    (ws / "shot.png").write_bytes(_png(IMAGE_SIDE))
    for n in range(FILES):
        (ws / "docs" / f"f{n:02}.md").write_text(("line of notes\n" * 8000)[:FILE_BYTES])
    return ws


async def _timed(call: Callable[[], Awaitable[Any]]) -> float:
    start = time.perf_counter()
    result = await call()
    elapsed = (time.perf_counter() - start) * 1000
    if getattr(result, "is_error", False):
        raise RuntimeError(result.content[0].text)
    return elapsed


async def _attachments(root: Path) -> dict[str, list[float]]:
    ws = _workspace(root)
    settings = Settings(
        simulate=True, backend="cli", workspace=ws, work_dir=root / "work", sandbox="off"
    )
    kinds: dict[str, list[dict[str, str]]] = {
        "prompt alone": [],
        "one 4 MB image": [{"type": "image", "path": "shot.png"}],
        f"{FILES} text files of 100 KB": [
            {"type": "file", "path": f"docs/f{n:02}.md"} for n in range(FILES)
        ],
    }
    times: dict[str, list[float]] = {kind: [] for kind in kinds}
    async with Client(build_app(settings)) as client:
        await client.call_tool("ask_lingma", {"prompt": "warm up"})
        for _ in range(ROUNDS):
            for kind, items in kinds.items():
                arguments = {"prompt": "describe them", "attachments": items}
                times[kind].append(
                    await _timed(lambda a=arguments: client.call_tool("ask_lingma", a))
                )
    return times


def _offline_cli(root: Path) -> Path:
    """A --cli-bin running the real CLI offline in an empty HOME (PROTOCOL.md 10.1)."""
    script = root / "script.jsonl"
    turn = {"candidates": [{"content": {"parts": [{"text": "noted"}]}, "finishReason": "STOP"}]}
    script.write_text(
        (json.dumps({"method": "generateContentStream", "response": [turn]}) + "\n") * 4
    )
    home = root / "home"
    home.mkdir()
    wrapper = root / "qoderclicn-offline"
    wrapper.write_text(
        f'#!/bin/sh\nexec env HOME="{home}" QODER_FAKE_STREAM_DELAY_MS=5 '
        f'"{CLI}" --fake-responses "{script}" "$@"\n'
    )
    wrapper.chmod(0o755)
    return wrapper


async def _turns(root: Path) -> tuple[str, dict[str, list[float]]]:
    ws = root / "project"
    ws.mkdir(parents=True)
    options: dict[str, Any] = {"workspace": ws, "work_dir": root / "work", "sandbox": "off"}
    if CLI.exists():
        where = "the real qoderclicn 1.1.52, offline"
        settings = Settings(backend="cli", cli_bin=str(_offline_cli(root)), **options)
    else:
        where = "the simulator (the real CLI is not in the tests' cache)"
        settings = Settings(simulate=True, backend="cli", **options)
    times: dict[str, list[float]] = {"lingma://sessions": [], "lingma://sessions/{id}": []}
    async with Client(build_app(settings)) as client:
        first = await client.call_tool("ask_lingma", {"prompt": "remember this"})
        session = first.structured_content["session_id"]
        await client.call_tool("ask_lingma", {"prompt": "and this", "session_id": session})
        for _ in range(READS):
            times["lingma://sessions"].append(
                await _timed(lambda: client.read_resource("lingma://sessions"))
            )
            times["lingma://sessions/{id}"].append(
                await _timed(lambda: client.read_resource(f"lingma://sessions/{session}"))
            )
    return where, times


def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        attachments = anyio.run(_attachments, Path(folder) / "a")
        where, turns = anyio.run(_turns, Path(folder) / "b")
    return {"attachments": attachments, "where": where, "turns": turns}


def report(r: dict[str, Any]) -> list[str]:
    lines = [
        f"(a) `ask_lingma` through the whole MCP path on the ACP simulator, median of {ROUNDS}, "
        "interleaved.",
        "",
        "| the question carries | ms | added ms | ÷ prompt alone |",
        "|---|---:|---:|---:|",
    ]
    medians = {kind: statistics.median(t) for kind, t in r["attachments"].items()}
    base = medians["prompt alone"]
    for kind, ms in medians.items():
        added = "" if kind == "prompt alone" else f"{ms - base:.0f}"
        lines.append(f"| {kind} | {ms:.0f} | {added} | {ms / base:.2f}× |")
    reads = {uri: statistics.median(t) for uri, t in r["turns"].items()}
    listed, loaded = reads["lingma://sessions"], reads["lingma://sessions/{id}"]
    lines += [
        "",
        f"(b) Reading a conversation of two turns on {r['where']}, median of {READS}.",
        "",
        "| resource | ms |",
        "|---|---:|",
        f"| `lingma://sessions` (session/list) | {listed:.0f} |",
        f"| `lingma://sessions/{{id}}` (list, then the load replay) | {loaded:.0f} |",
        "",
        f"- the turns cost {loaded - listed:.0f} ms over the list ({loaded / listed:.1f}×); "
        "no target: a comparison",
    ]
    return lines


if __name__ == "__main__":
    print("\n".join(report(run())))

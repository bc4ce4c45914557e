"""The last progress notifications a TypeScript SDK client loses (typescript-sdk#2580).

The SDK's own client (``ts_last_progress.mjs``) makes 40 fast ``ask_lingma`` calls one after
another and counts the calls whose streamed text is not the whole answer. Three rounds,
each run against the server as it is (a message after a progress notification waits until
the host has read the pipe) and against the same server with that wait switched off
(``serve_unwaited.py``), interleaved so load hits both alike. Also the time the 40 calls
take, to show what the wait costs.

Needs Node and ``@modelcontextprotocol/sdk`` in the tests' cache folder (``.ci/run``
installs it); without them the report says so.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROUNDS = 3
CALLS = 40
SCRIPT = Path(__file__).with_name("ts_last_progress.mjs")
# Fast calls: a short answer in small, quick deltas, so the last notification and the
# result leave the server close together.
FAST = {"LINGMA_SIM_DELTA_DELAY": "0.002", "LINGMA_SIM_ANSWER_SIZE": "120"}


def sdk_dir() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "lingma-mcp-tests" / "mcp-sdk"


def missing() -> str:
    """Why the benchmark cannot run here, or ""."""
    if shutil.which("node") is None:
        return "Node.js is not installed"
    if not (sdk_dir() / "node_modules" / "@modelcontextprotocol" / "sdk").is_dir():
        return f"@modelcontextprotocol/sdk is not installed in {sdk_dir()} (.ci/run does it)"
    return ""


def one_round(module: str) -> dict:
    with tempfile.TemporaryDirectory() as work:
        server = [sys.executable, "-m", module, "--simulate", "--work-dir", work]
        server += ["--workspace", work]
        env = {
            **os.environ,
            **FAST,
            "MCP_SDK_DIR": str(sdk_dir()),
            "SERVER": json.dumps(server),
            "CALLS": str(CALLS),
        }
        done = subprocess.run(
            ["node", str(SCRIPT)], capture_output=True, text=True, env=env, timeout=600
        )
    if done.returncode != 0:
        raise RuntimeError(f"the TypeScript client failed: {done.stderr[-500:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run() -> dict:
    why = missing()
    if why:
        return {"skipped": why}
    unwaited, waited = [], []
    for _ in range(ROUNDS):
        unwaited.append(one_round("benchmarks.serve_unwaited"))
        waited.append(one_round("lingma_mcp"))
    return {"unwaited": unwaited, "waited": waited}


def report(r: dict) -> list[str]:
    if "skipped" in r:
        return [f"Skipped: {r['skipped']}."]
    lines = [
        f"| round | calls short, written at once | calls short, as served | "
        f"ms for {CALLS} calls, at once | ms, as served |",
        "|---:|---:|---:|---:|---:|",
    ]
    for i, (base, ours) in enumerate(zip(r["unwaited"], r["waited"], strict=True), 1):
        lines.append(
            f"| {i} | {base['short']}/{base['calls']} (empty {base['empty']}) "
            f"| {ours['short']}/{ours['calls']} (empty {ours['empty']}) "
            f"| {base['ms']:,.0f} | {ours['ms']:,.0f} |"
        )
    short_base = sum(x["short"] for x in r["unwaited"])
    short_ours = sum(x["short"] for x in r["waited"])
    ms_base = sum(x["ms"] for x in r["unwaited"])
    ms_ours = sum(x["ms"] for x in r["waited"])
    total = ROUNDS * CALLS
    ratio = ms_ours / ms_base
    lines += [
        "",
        f"- calls short as served: {short_ours}/{total} (target 0), with the wait off "
        f"{short_base}/{total} {'met' if short_ours == 0 else 'MISSED'}",
        f"- time for the calls, as served ÷ with the wait off: {ratio:.2f}× "
        f"(target ≤ 1.1×) {'met' if ratio <= 1.1 else 'MISSED'}",
    ]
    return lines


if __name__ == "__main__":
    print("\n".join(report(run())))

"""A client no one here wrote: the TypeScript SDK, with its default 60 s request timeout,
gets a 90-second agent-mode answer through ``background`` and ``check_lingma_job``.

Needs Node and npm, and ``@modelcontextprotocol/sdk`` installed into a cache folder (CI does
it once; this test does it itself when the folder is empty). Skipped, saying why, where
Node, npm or the registry is not available.

Slow by nature: the answer must take longer than the client would wait for one call. Run
the rest without it with ``-m "not slow"``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]

SDK = "@modelcontextprotocol/sdk"
SCRIPT = Path(__file__).parent / "ts_client" / "background_job.mjs"
# The SDK's DEFAULT_REQUEST_TIMEOUT_MSEC: what one call may take before the client gives up.
CLIENT_TIMEOUT_MS = 60_000


def sdk_dir() -> Path:
    """Where CI installs the SDK (``.ci/run``): one folder per user, outside the project."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "lingma-mcp-tests" / "mcp-sdk"


def node_with_sdk() -> tuple[str, Path]:
    """``node`` and the folder holding the SDK, installing it if needed; skips if not."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("Node.js (node and npm) is not installed: the TypeScript SDK test needs it")
    folder = sdk_dir()
    if not (folder / "node_modules" / SDK / "package.json").exists():
        folder.mkdir(parents=True, exist_ok=True)
        try:
            done = subprocess.run(
                [npm, "install", "--prefix", str(folder), "--no-audit", "--no-fund", SDK],
                capture_output=True,
                text=True,
                timeout=180,
                check=False,
            )
        except subprocess.TimeoutExpired:
            pytest.skip(f"installing {SDK} with npm took over 180 s (no registry?)")
        if done.returncode != 0:
            pytest.skip(f"{SDK} could not be installed with npm: {done.stderr.strip()[-300:]}")
    return node, folder


def test_the_typescript_sdk_client_gets_a_90_second_agent_answer_through_a_job(
    tmp_path: Path,
) -> None:
    node, folder = node_with_sdk()
    workspace = tmp_path / "project"
    workspace.mkdir()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("LINGMA_")},
        "MCP_SDK_DIR": str(folder),
        "PYTHON": sys.executable,
        "WORK_DIR": str(tmp_path / "work"),
        "WORKSPACE": str(workspace),
        # 76 deltas a second apart, then the tool call and its note: about 90 s of answer.
        "LINGMA_SIM_DELTAS": "76",
        "LINGMA_SIM_DELTA_DELAY": "1",
        "LINGMA_SIM_LOG": str(tmp_path / "sim.jsonl"),
    }
    try:
        done = subprocess.run(
            [node, str(SCRIPT)], capture_output=True, text=True, env=env, timeout=330, check=False
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the TypeScript client did not finish within 330 s: {exc.stderr!r}")
    assert done.returncode == 0, f"node failed:\n{done.stdout}\n{done.stderr[-3000:]}"
    report = json.loads(done.stdout.strip().splitlines()[-1])

    assert {"ask_lingma", "check_lingma_job", "cancel_lingma_job"} <= set(report["tools"])
    assert report["started"]["status"] == "running" and report["started"]["job_id"]
    states = report["states"]
    assert states[-1] == "done" and report["error"] is None
    assert states.count("running") >= 3, "the job was followed over several checks"
    result = report["result"]
    assert result["mode"] == "agent" and result["finish_reason"] == "success"
    assert result["tool_events"], "an agent answer with its tool call"
    assert result["total_ms"] > CLIENT_TIMEOUT_MS, "the answer outlasted one call's timeout"
    assert report["followed"] == result["answer"] == report["content"]
    assert "a long agent task" in result["answer"]

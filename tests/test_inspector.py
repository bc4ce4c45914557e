"""A client no one here wrote: the MCP Inspector CLI lists the tools and calls ask_lingma.

Needs Node (npx) and the ``@modelcontextprotocol/inspector`` package already in npm's cache:
the test never downloads it (``.ci/run`` fetches it in its preparation step with
``npx --yes @modelcontextprotocol/inspector --help``). Skipped, saying why, where either is
missing.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

INSPECTOR = "@modelcontextprotocol/inspector"
pytestmark = pytest.mark.timeout(240)


def _npx() -> str:
    """npx, with the Inspector in npm's cache; skips, saying why, if not. Never downloads:
    ``--offline`` lets npx use only what npm's cache holds (``--no`` would refuse even a
    cached package, since npx counts only installed ones as present)."""
    npx = shutil.which("npx")
    if npx is None:
        pytest.skip("Node.js (npx) is not installed: the MCP Inspector test needs it")
    try:
        probe = subprocess.run(
            [npx, "--yes", "--offline", "--", INSPECTOR, "--help"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.skip(f"{INSPECTOR} did not answer --help within 60 s")
    if probe.returncode != 0:
        pytest.skip(
            f"{INSPECTOR} is not in npm's cache (the tests never download it; .ci/run fetches "
            f"it first, or run: npx --yes {INSPECTOR} --help): {probe.stderr.strip()[-200:]}"
        )
    return npx


def _inspector(npx: str, tmp_path: Path, *method_args: str) -> dict:
    work = tmp_path / "work"
    workspace = tmp_path / "project"
    workspace.mkdir(exist_ok=True)
    command = [
        npx,
        "--yes",
        "--offline",  # from npm's cache only: the test never downloads
        "--",  # everything after is the Inspector's, not npm's
        INSPECTOR,
        "--cli",
        "-e",
        "LINGMA_SIM_ANSWER_SIZE=80",
        "-e",
        "LINGMA_SIM_DELTA_DELAY=0.001",
        sys.executable,
        "-m",
        "lingma_mcp",
        "--simulate",
        "--work-dir",
        str(work),
        "--workspace",
        str(workspace),
        *method_args,
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the Inspector did not finish {' '.join(method_args)} within 60 s")
    if done.returncode != 0:
        pytest.fail(f"inspector failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return json.loads(done.stdout)


def test_inspector_lists_the_tools_and_calls_ask_lingma(tmp_path: Path) -> None:
    npx = _npx()
    listed = _inspector(npx, tmp_path, "--method", "tools/list")
    names = {tool["name"] for tool in listed["tools"]}
    assert names == {
        "ask_lingma",
        "list_models",
        "auth_status",
        "login",
        "check_lingma_job",
        "cancel_lingma_job",
        "revert_changes",
        "review_changes",
        "list_lingma_sessions",
        "delete_lingma_session",
    }
    ask = next(tool for tool in listed["tools"] if tool["name"] == "ask_lingma")
    assert "answer" in ask["outputSchema"]["properties"]

    called = _inspector(
        npx,
        tmp_path,
        "--method",
        "tools/call",
        "--tool-name",
        "ask_lingma",
        "--tool-arg",
        "prompt=hello from the inspector",
    )
    assert not called.get("isError")
    assert "hello from the inspector" in called["content"][0]["text"]
    assert called["structuredContent"]["answer"] == called["content"][0]["text"]
    assert called["structuredContent"]["session_id"]

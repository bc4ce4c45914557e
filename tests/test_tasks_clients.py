"""Tasks through a client no one here wrote, over stdio, as hosts run it.

The TypeScript SDK's own client with its experimental Tasks (2025-11-25; skipped, saying
why, without Node or the SDK) starts ``lingma-mcp --simulate --mode agent`` and runs a chat
task, an agent-mode task whose edit needs the person's approval (answered within the task)
and a task it cancels. The Python SDK's client runs a task over stdio in
``test_approvals_clients.py``; the raw 2025-11-25 client runs the same agent task in this
process (``test_tasks_e2e.py``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from servers import open_log, read_log, sent_to_lingma
from ts_sdk import node_with_sdk

pytestmark = pytest.mark.timeout(120)

RELATED = "io.modelcontextprotocol/related-task"
SCRIPT = Path(__file__).parent / "ts_client" / "tasks.mjs"


def test_the_typescript_sdk_client_runs_ask_lingma_as_tasks(tmp_path: Path) -> None:
    node, folder = node_with_sdk()
    workspace = tmp_path / "project"
    workspace.mkdir()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("LINGMA_")},
        "MCP_SDK_DIR": str(folder),
        "PYTHON": sys.executable,
        "WORK_DIR": str(tmp_path / "work"),
        "WORKSPACE": str(workspace),
        # Long enough for the client to see the third task writing before it cancels it.
        "LINGMA_SIM_DELTA_DELAY": "0.02",
        "LINGMA_SIM_ANSWER_SIZE": "800",
        "LINGMA_SIM_LOG": str(tmp_path / "sim.jsonl"),
    }
    with open_log(tmp_path) as errlog:
        done = subprocess.run(
            [node, str(SCRIPT)], stdout=subprocess.PIPE, stderr=errlog, text=True, env=env,
            timeout=100, check=False,
        )  # fmt: skip
    assert done.returncode == 0, read_log(tmp_path)[-2000:]
    run = json.loads(done.stdout.strip().splitlines()[-1])

    assert run["capabilities"]["tasks"]["requests"] == {"tools": {"call": {}}}
    assert run["support"]["ask_lingma"] == "optional"
    chat, agent = run["chat"], run["agent"]
    assert chat["error"] is None and agent["error"] is None
    assert chat["result"]["content"][0]["text"].startswith("Lingma sim answer")
    assert chat["result"]["_meta"][RELATED] == {"taskId": chat["taskId"]}
    assert all(message for _, message in chat["seen"])
    assert [s for s, _ in agent["seen"]][-1] == "input_required"  # then tasks/result asks
    (asked,) = run["asked"]
    assert "a.txt" in asked["message"]
    assert asked["meta"][RELATED] == {"taskId": agent["taskId"]}
    approvals = agent["result"]["structuredContent"]["approvals"]
    assert [(a["target"], a["by"]) for a in approvals] == [("a.txt", "person")]
    assert (tmp_path / "project" / "a.txt").read_text() == "one\n"

    cancelled = run["cancelled"]
    assert (cancelled["status"], cancelled["after"]) == ("cancelled", "cancelled")
    assert sent_to_lingma(tmp_path, "chat/stop")
    assert sorted(task_id for task_id, _ in run["listed"]) == sorted(
        [chat["taskId"], agent["taskId"], cancelled["taskId"]]
    )
    notified = [status for task_id, status in run["notified"] if task_id == agent["taskId"]]
    assert notified == ["input_required", "working", "completed"]
    assert [cancelled["taskId"], "cancelled"] in run["notified"]
    assert run["errors"] == []

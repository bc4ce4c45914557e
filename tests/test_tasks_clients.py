"""Tasks through real clients over stdio, as hosts run them.

A real ``lingma-mcp --simulate --mode agent`` process, and three clients: the TypeScript
SDK's own client with its experimental Tasks (2025-11-25; skipped, saying why, without
Node or the SDK), a raw JSON-RPC client on 2025-11-25, and the Python SDK's ``Client`` on
2026-07-28 with a Tasks client extension (``task_clients.py``). Each runs an agent-mode
task whose edit needs the person's approval, answered within the task.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import open_log, sent_to_lingma, server_params
from mcp import Client
from mcp.client.stdio import stdio_client
from task_clients import TasksExtension, raw_stdio
from test_jobs_ts_client import node_with_sdk

pytestmark = pytest.mark.timeout(120)

ONE_EDIT = "tidy up\n@create a.txt one\\n"
RELATED = "io.modelcontextprotocol/related-task"
SCRIPT = Path(__file__).parent / "ts_client" / "tasks.mjs"


async def approve(params: dict[str, Any]) -> dict[str, Any]:
    return {"action": "accept", "content": {"decision": "approve"}}


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
    assert done.returncode == 0, (tmp_path / "server.log").read_text()[-2000:]
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


async def test_a_raw_client_on_2025_11_25_runs_an_agent_task_over_stdio(tmp_path: Path) -> None:
    params = server_params(tmp_path, None, "--mode", "agent")
    command = [params.command, *params.args]
    env = {**os.environ, **(params.env or {})}
    with open_log(tmp_path) as errlog:
        async with raw_stdio(command, env, errlog, approve) as client:
            await client.initialize()
            created = await client.request(
                "tools/call",
                {"name": "ask_lingma", "arguments": {"prompt": ONE_EDIT}, "task": {}},
            )
            task_id = created["task"]["taskId"]
            result = await client.request("tasks/result", {"taskId": task_id})
            await client.wait_for_notification(lambda n: n["params"]["status"] == "completed")
    assert client.elicitations[0]["_meta"][RELATED] == {"taskId": task_id}
    assert [a["by"] for a in result["structuredContent"]["approvals"]] == ["person"]
    assert client.statuses(task_id) == ["input_required", "working", "completed"]


async def test_the_python_sdk_client_on_2026_07_28_runs_an_agent_task_over_stdio(
    tmp_path: Path,
) -> None:
    tasks = TasksExtension(person=approve)
    params = server_params(tmp_path, None, "--mode", "agent")

    async def not_mid_call(_: Any, params: Any) -> Any:  # declares forms; tasks ask otherwise
        raise AssertionError("a task's question comes in its inputRequests on 2026-07-28")

    with open_log(tmp_path) as errlog:
        transport = stdio_client(params, errlog=errlog)
        options: dict[str, Any] = {"extensions": [tasks], "elicitation_callback": not_mid_call}
        async with Client(transport, **options) as client:
            assert client.protocol_version == "2026-07-28"
            result = await client.call_tool("ask_lingma", {"prompt": ONE_EDIT, "background": True})
    assert len(tasks.created) == 1
    assert "a.txt" in tasks.asked[0]["message"]
    assert [a["by"] for a in (result.structured_content or {})["approvals"]] == ["person"]
    assert tasks.seen[-1]["status"] == "completed"

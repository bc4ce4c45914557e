"""Approvals through real clients on protocol 2026-07-28, over stdio, as hosts run them.

A real ``lingma-mcp --simulate`` process in agent mode, the simulator behind it, and the
clients' own drivers of the 2026-07-28 rounds: the Python SDK's ``Client`` (its default
mode negotiates 2026-07-28) and fastmcp's (4.x, which declares form and URL elicitation).
Each is asked twice, approves the first edit and denies the second; the result lists what
the person decided. The Python SDK's client then runs a background ask as a task, whose
question comes in the task's input requests (the Tasks extension of ``task_clients.py``):
the 2026-07-28 shapes on a real wire, which the in-process tests only see as objects.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
from fakes import Person, text_of
from servers import mcp_process, open_log, server_params
from task_clients import TasksExtension

pytestmark = pytest.mark.timeout(90)

FAST = {"LINGMA_SIM_DELTA_DELAY": "0.001", "LINGMA_SIM_ANSWER_SIZE": "60"}
TWO_EDITS = "tidy up\n@create a.txt one\\n\n@create b.txt two\\n"
ONE_EDIT = "tidy up\n@create c.txt three\\n"


@pytest.fixture
def agent_server(tmp_path: Path) -> Any:
    project = tmp_path / "project"
    project.mkdir()
    return server_params(tmp_path, FAST, "--mode", "agent", workspace=project)


def assert_decided(tmp_path: Path, result: Any, asked: list[str]) -> None:
    assert not result.is_error, text_of(result)
    assert [p.name for p in (tmp_path / "project").iterdir()] == ["a.txt"]
    data = result.structured_content
    assert [(a["target"], a["decision"], a["by"]) for a in data["approvals"]] == [
        ("a.txt", "allowed", "person"),
        ("b.txt", "denied", "person"),
    ]
    assert data["changes"][0]["path"] == "a.txt"
    assert ["a.txt" in asked[0], "b.txt" in asked[1]] == [True, True]


async def test_the_python_sdk_client_on_2026_07_28_is_asked_through_retries_and_tasks(
    tmp_path: Path, agent_server: Any
) -> None:
    person = Person("approve", "deny")

    async def approve(params: dict[str, Any]) -> dict[str, Any]:
        return {"action": "accept", "content": {"decision": "approve"}}

    tasks = TasksExtension(person=approve)
    async with mcp_process(
        tmp_path, params=agent_server, mode="auto", elicitation_callback=person, extensions=[tasks]
    ) as client:
        assert client.protocol_version == "2026-07-28"
        result = await client.call_tool("ask_lingma", {"prompt": TWO_EDITS})
        assert_decided(tmp_path, result, person.questions)
        in_task = await client.call_tool("ask_lingma", {"prompt": ONE_EDIT, "background": True})
    assert len(tasks.created) == 1 and tasks.seen[-1]["status"] == "completed"
    assert "c.txt" in tasks.asked[0]["message"]
    assert len(person.asked) == 2  # the task's question came in its input requests
    assert [a["by"] for a in (in_task.structured_content or {})["approvals"]] == ["person"]
    assert (tmp_path / "project" / "c.txt").read_text() == "three\n"


@pytest.mark.skipif(
    importlib.util.find_spec("fastmcp") is None,
    reason="fastmcp (>=4) is not installed: pip install -e '.[test]' brings it",
)
async def test_fastmcps_client_is_asked_through_its_retries(
    tmp_path: Path, agent_server: Any
) -> None:
    from fastmcp import Client as FastClient
    from fastmcp.client.transports import StdioTransport

    decisions = ["approve", "deny"]
    asked: list[str] = []

    async def person(message: str, response_type: Any, params: Any, context: Any) -> Any:
        asked.append(message)
        return {"decision": decisions.pop(0)}

    with open_log(tmp_path) as errlog:
        transport = StdioTransport(
            agent_server.command,
            list(agent_server.args),
            env=dict(agent_server.env or {}),
            log_file=errlog,
        )
        async with FastClient(transport, elicitation_handler=person) as client:
            assert client.protocol_version == "2026-07-28"
            result = await client.call_tool("ask_lingma", {"prompt": TWO_EDITS})
    assert_decided(tmp_path, result, asked)

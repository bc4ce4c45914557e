"""Approvals through real clients on protocol 2026-07-28, over stdio, as hosts run them.

A real ``lingma-mcp --simulate`` process in agent mode, the simulator behind it, and the
clients' own drivers of the ``InputRequiredResult`` rounds: the Python SDK's ``Client``
(its default mode negotiates 2026-07-28) and fastmcp's (4.x, which declares form and URL
elicitation). Each is asked twice, approves the first edit and denies the second; the
result lists what the person decided.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
from conftest import open_log, server_params
from mcp import Client
from mcp.client.stdio import stdio_client
from mcp.types import ElicitResult

pytestmark = pytest.mark.timeout(90)

FAST = {"LINGMA_SIM_DELTA_DELAY": "0.001", "LINGMA_SIM_ANSWER_SIZE": "60"}
TWO_EDITS = "tidy up\n@create a.txt one\\n\n@create b.txt two\\n"


@pytest.fixture
def agent_server(tmp_path: Path) -> Any:
    project = tmp_path / "project"
    project.mkdir()
    return server_params(tmp_path, FAST, "--mode", "agent", workspace=project)


def assert_decided(tmp_path: Path, result: Any, asked: list[str]) -> None:
    assert not result.is_error, result.content[0].text
    assert [p.name for p in (tmp_path / "project").iterdir()] == ["a.txt"]
    data = result.structured_content
    assert [(a["target"], a["decision"], a["by"]) for a in data["approvals"]] == [
        ("a.txt", "allowed", "person"),
        ("b.txt", "denied", "person"),
    ]
    assert data["changes"][0]["path"] == "a.txt"
    assert ["a.txt" in asked[0], "b.txt" in asked[1]] == [True, True]


async def test_the_python_sdk_client_on_2026_07_28_is_asked_through_its_retries(
    tmp_path: Path, agent_server: Any
) -> None:
    decisions = ["approve", "deny"]
    asked: list[str] = []

    async def person(_: Any, params: Any) -> ElicitResult:
        asked.append(params.message)
        return ElicitResult(action="accept", content={"decision": decisions.pop(0)})

    with open_log(tmp_path) as errlog:
        transport = stdio_client(agent_server, errlog=errlog)
        async with Client(transport, elicitation_callback=person) as client:
            assert client.protocol_version == "2026-07-28"
            result = await client.call_tool("ask_lingma", {"prompt": TWO_EDITS})
    assert_decided(tmp_path, result, asked)


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

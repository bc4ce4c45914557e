"""``ask_lingma`` as an MCP task, in this process, on both wire generations.

2025-11-25 through a raw JSON-RPC client (the Python SDK's client sends no task-augmented
calls on that protocol); 2026-07-28 through the SDK's own ``Client`` with a Tasks client
extension (``task_clients.py``). The IDE simulator answers, and its agent mode turns the
prompt's ``@`` lines into tool calls that need the person's approval.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp.types import ElicitResult
from procs import wait_until
from servers import lingma_app, sent_to_lingma
from task_clients import (
    CancelTask,
    GetTask,
    RawClient,
    RawError,
    TaskParams,
    TasksExtension,
    raw_inprocess,
    task_request,
)

import lingma_mcp.server.app as app_module
from lingma_mcp.config import Settings
from lingma_mcp.server.approvals import DECISION_SCHEMA

pytestmark = pytest.mark.timeout(60)

NOBODY = "policy (nobody could be asked)"
RELATED = "io.modelcontextprotocol/related-task"
ONE_EDIT = "tidy up\n@create a.txt one\\n"
SLOW = {"LINGMA_SIM_DELTA_DELAY": "0.05", "LINGMA_SIM_ANSWER_SIZE": "2000"}


class Served:
    """The app under test, built per client on the simulator in this process."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.project = tmp_path / "project"
        self.project.mkdir()
        self.sim = {"LINGMA_SIM_DELTA_DELAY": "0.001"}

    def app(self, **settings: Any) -> Any:
        """An async context: the app, on a simulator of its own."""
        return lingma_app(self.tmp_path, self.sim, request_timeout=45.0, **settings)

    def slow(self) -> None:
        self.sim = SLOW


@pytest.fixture
def served(tmp_path: Path) -> Served:
    return Served(tmp_path)


def approving(*decisions: str) -> Any:
    queue = list(decisions)

    async def person(params: dict[str, Any]) -> dict[str, Any]:
        return {"action": "accept", "content": {"decision": queue.pop(0)}}

    return person


def approvals(structured: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(a["target"], a["decision"], a["by"]) for a in structured["approvals"]]


@asynccontextmanager
async def legacy(
    served: Served, *, person: Any = None, elicitation: bool = True, **settings: Any
) -> AsyncIterator[RawClient]:
    async with served.app(**settings) as app, raw_inprocess(app, person) as client:
        await client.initialize(elicitation=elicitation)
        yield client


async def create(client: RawClient, arguments: dict[str, Any]) -> str:
    created = await client.request(
        "tools/call", {"name": "ask_lingma", "arguments": arguments, "task": {"ttl": 60_000}}
    )
    assert created["task"]["status"] == "working"
    return created["task"]["taskId"]


# -- 2025-11-25 ------------------------------------------------------------------------------


async def test_2025_declares_tasks_and_ask_lingma_alone_may_run_as_one(served: Served) -> None:
    async with legacy(served) as client:
        tools = (await client.request("tools/list"))["tools"]
        with pytest.raises(RawError) as refused:
            await client.request("tools/call", {"name": "list_models", "arguments": {}, "task": {}})
    support = {t["name"]: t.get("execution", {}).get("taskSupport") for t in tools}
    assert support.pop("ask_lingma") == "optional"
    assert set(support.values()) == {None}
    assert refused.value.code == -32601
    assert "only ask_lingma" in refused.value.message


async def test_2025_initialize_declares_the_tasks_capability(served: Served) -> None:
    async with served.app() as app, raw_inprocess(app) as client:
        init = await client.initialize()
    assert init["protocolVersion"] == "2025-11-25"
    assert init["capabilities"]["tasks"] == {
        "list": {},
        "cancel": {},
        "requests": {"tools": {"call": {}}},
    }


async def test_2025_a_task_ends_with_the_result_a_plain_call_gets(served: Served) -> None:
    async with legacy(served) as client:
        plain = await client.request(
            "tools/call", {"name": "ask_lingma", "arguments": {"prompt": "hello"}}
        )
        task_id = await create(client, {"prompt": "hello"})
        got = await client.request("tasks/get", {"taskId": task_id})
        result = await client.request("tasks/result", {"taskId": task_id})
        done = await client.request("tasks/get", {"taskId": task_id})
        listed = await client.request("tasks/list", {})
        await client.wait_for_notification(lambda n: n["params"]["status"] == "completed")
    assert got["status"] in ("working", "completed")
    assert got["statusMessage"]
    assert result["_meta"][RELATED] == {"taskId": task_id}
    assert "resultType" not in result  # the 2025 wire's own result shape
    assert result["isError"] is False
    assert set(result["structuredContent"]) == set(plain["structuredContent"])
    assert result["content"][0]["text"].startswith("Lingma sim answer")
    assert (done["status"], done["statusMessage"]) == ("completed", done["statusMessage"])
    assert "answered" in done["statusMessage"]
    assert task_id in [t["taskId"] for t in listed["tasks"]]
    assert client.statuses(task_id) == ["completed"]


async def test_2025_an_agent_task_asks_the_person_within_the_task(served: Served) -> None:
    async with legacy(served, person=approving("approve"), mode="agent") as client:
        task_id = await create(client, {"prompt": ONE_EDIT})
        result = await client.request("tasks/result", {"taskId": task_id})
        await client.wait_for_notification(lambda n: n["params"]["status"] == "completed")
    (asked,) = client.elicitations
    assert asked["_meta"][RELATED] == {"taskId": task_id}
    assert asked["requestedSchema"] == DECISION_SCHEMA
    assert "a.txt" in asked["message"]
    assert approvals(result["structuredContent"]) == [("a.txt", "allowed", "person")]
    assert (served.project / "a.txt").read_text() == "one\n"
    assert client.statuses(task_id) == ["input_required", "working", "completed"]
    working = [n["params"] for n in client.notifications if n["params"]["status"] == "working"]
    assert working[0]["ttl"] is None  # unlimited while it runs, and said so


async def test_2025_a_client_that_cannot_be_asked_gets_the_policy_recorded_as_such(
    served: Served,
) -> None:
    async with legacy(served, elicitation=False, mode="agent") as client:
        task_id = await create(client, {"prompt": ONE_EDIT})
        result = await client.request("tasks/result", {"taskId": task_id})
    assert client.elicitations == []
    assert approvals(result["structuredContent"]) == [("a.txt", "denied", NOBODY)]
    assert not (served.project / "a.txt").exists()
    assert "input_required" not in client.statuses(task_id)


async def test_2025_cancelling_a_task_stops_lingma(served: Served) -> None:
    served.slow()
    async with legacy(served) as client:
        task_id = await create(client, {"prompt": "a long answer"})
        await wait_until(lambda: sent_to_lingma(served.tmp_path, "chat/ask"))
        cancelled = await client.request("tasks/cancel", {"taskId": task_id})
        with pytest.raises(RawError) as again:
            await client.request("tasks/cancel", {"taskId": task_id})
        result = await client.request("tasks/result", {"taskId": task_id})
        await client.wait_for_notification(lambda n: n["params"]["status"] == "cancelled")
    assert cancelled["status"] == "cancelled"
    assert sent_to_lingma(served.tmp_path, "chat/stop")
    assert again.value.code == -32602
    assert "already ended (cancelled)" in again.value.message
    assert result["isError"] is True
    assert "Lingma was told to stop" in result["content"][0]["text"]
    assert client.statuses(task_id) == ["cancelled"]


async def test_2025_unknown_tasks_and_cursors_and_refused_asks_are_errors(served: Served) -> None:
    async with legacy(served) as client:
        with pytest.raises(RawError) as unknown:
            await client.request("tasks/get", {"taskId": "job-nope"})
        with pytest.raises(RawError) as cursor:
            await client.request("tasks/list", {"cursor": "not-a-cursor"})
        with pytest.raises(RawError) as refused:
            await client.request(
                "tools/call",
                {"name": "ask_lingma", "arguments": {"prompt": "x", "mode": "bogus"}, "task": {}},
            )
        listed = await client.request("tasks/list")
    assert (unknown.value.code, cursor.value.code, refused.value.code) == (-32602,) * 3
    assert "job-nope" in unknown.value.message
    assert "nextCursor" in cursor.value.message
    assert "mode" in refused.value.message
    assert listed == {"tasks": []}  # the refused ask created no task


async def test_2025_a_plain_call_from_a_client_that_asks_for_no_task_is_unchanged(
    served: Served,
) -> None:
    async with legacy(served) as client:
        started = await client.request(
            "tools/call", {"name": "ask_lingma", "arguments": {"prompt": "x", "background": True}}
        )
    assert "task" not in started
    assert started["structuredContent"]["status"] == "running"
    assert started["structuredContent"]["job_id"].startswith("job-")


# -- 2026-07-28 ------------------------------------------------------------------------------


async def test_2026_discover_advertises_the_extension_and_a_background_ask_becomes_a_task(
    served: Served,
) -> None:
    tasks = TasksExtension()
    async with served.app() as app, Client(app, extensions=[tasks]) as client:
        assert client.protocol_version == "2026-07-28"
        extensions = client.server_capabilities.extensions or {}
        tools = (await client.list_tools()).tools
        plain = await client.call_tool("ask_lingma", {"prompt": "hello"})
        result = await client.call_tool("ask_lingma", {"prompt": "hello", "background": True})
    assert "io.modelcontextprotocol/tasks" in extensions
    assert all(tool.execution is None for tool in tools)  # not a field of this wire
    assert len(tasks.created) == 1  # the plain call stayed plain
    assert tasks.seen[-1]["status"] == "completed"
    assert all(seen["statusMessage"] for seen in tasks.seen)
    assert not result.is_error
    assert set(result.structured_content or {}) == set(plain.structured_content or {})
    assert result.structured_content["status"] == "done"


async def test_2026_an_agent_task_asks_through_its_input_requests(served: Served) -> None:
    tasks = TasksExtension(person=approving("approve"))

    async def never(_: Any, params: Any) -> ElicitResult:
        raise AssertionError("a task's question is not sent mid-call on 2026-07-28")

    async with (
        served.app(mode="agent") as app,
        Client(app, extensions=[tasks], elicitation_callback=never) as client,
    ):
        result = await client.call_tool("ask_lingma", {"prompt": ONE_EDIT, "background": True})
    (asked,) = tasks.asked
    assert asked["requestedSchema"] == DECISION_SCHEMA
    assert "a.txt" in asked["message"]
    assert "input_required" in [seen["status"] for seen in tasks.seen]
    assert approvals(result.structured_content or {}) == [("a.txt", "allowed", "person")]
    assert (served.project / "a.txt").read_text() == "one\n"


async def test_2026_a_client_that_cannot_be_asked_gets_the_policy(served: Served) -> None:
    tasks = TasksExtension(person=approving("approve"))
    async with served.app(mode="agent") as app, Client(app, extensions=[tasks]) as client:
        result = await client.call_tool("ask_lingma", {"prompt": ONE_EDIT, "background": True})
    assert tasks.asked == []
    assert approvals(result.structured_content or {}) == [("a.txt", "denied", NOBODY)]


async def test_2026_cancelling_a_task_stops_lingma(served: Served) -> None:
    served.slow()
    acks: list[dict[str, Any]] = []

    async def cancel_once_asked(session: Any, got: dict[str, Any]) -> None:
        if not acks and sent_to_lingma(served.tmp_path, "chat/ask"):
            params = TaskParams(taskId=got["taskId"])
            acks.append(await task_request(session, CancelTask(params=params)))

    tasks = TasksExtension(on_status=cancel_once_asked)
    async with served.app() as app, Client(app, extensions=[tasks]) as client:
        result = await client.call_tool("ask_lingma", {"prompt": "long", "background": True})
    assert [set(ack) - {"_meta"} for ack in acks] == [{"resultType"}]  # an empty ack
    assert tasks.seen[-1]["status"] == "cancelled"
    assert result.is_error
    assert sent_to_lingma(served.tmp_path, "chat/stop")


async def test_2026_a_client_without_the_extension_keeps_the_job_tools(served: Served) -> None:
    async with served.app() as app, Client(app) as client:
        started = await client.call_tool("ask_lingma", {"prompt": "x", "background": True})
        with pytest.raises(MCPError) as refused:
            await task_request(client.session, GetTask(params=TaskParams(taskId="job-x")))
    assert (started.structured_content or {})["status"] == "running"
    assert (started.structured_content or {})["job_id"].startswith("job-")
    assert refused.value.error.code == -32021


# -- the sealed request_state ----------------------------------------------------------------


@pytest.mark.parametrize(("approval_timeout", "ttl"), [(30.0, 600.0), (1200.0, 1260.0)])
def test_a_sealed_request_state_outlives_the_approval_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, approval_timeout: float, ttl: float
) -> None:
    made: list[float] = []
    ephemeral = app_module.RequestStateSecurity.ephemeral

    def spy(**options: Any) -> Any:
        made.append(options["ttl"])
        return ephemeral(**options)

    monkeypatch.setattr(app_module.RequestStateSecurity, "ephemeral", spy)
    app_module.build_app(Settings(work_dir=tmp_path, approval_timeout=approval_timeout))
    assert made == [ttl]

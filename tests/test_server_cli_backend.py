"""lingma-mcp on the CLI backend, as hosts use it: the ACP simulator in place of
``qoderclicn --acp``.

Each test serves lingma-mcp with ``--simulate --backend cli`` (``servers.mcp_server``: the
server in this process, the simulator a process as the CLI is), talks MCP to it with the
SDK's client, and asserts on what a host receives and on what the agent was sent (the
simulator's message log). Two start the server as hosts do, a stdio process: what a
server killed or leaving does to its agent only a process shows.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import anyio
import pytest
from fakes import Person, Progress, text_of
from mcp import Client
from procs import alive, wait_until
from servers import mcp_process, mcp_server, read_log, sent_to_agent, server_params

from lingma_mcp.acp.cli_errors import NOT_LOGGED_IN_MESSAGE

pytestmark = pytest.mark.timeout(90)

# The simulator hands file and command work to our fs/* and terminal/* handlers, which
# these tests exercise (the real CLI acts on the disk itself).
CLIENT_TOOLS = {"LINGMA_SIM_ACP_CLIENT_TOOLS": "1"}


@asynccontextmanager
async def server(
    tmp_path: Path, sim: dict[str, str] | None = None, person: Person | None = None
) -> AsyncIterator[Client]:
    host = {"elicitation_callback": person} if person is not None else {}
    async with mcp_server(
        tmp_path, {**CLIENT_TOOLS, **(sim or {})}, backend="cli", startup_timeout=20, host=host
    ) as client:
        yield client


@asynccontextmanager
async def server_process(
    tmp_path: Path, sim: dict[str, str] | None = None
) -> AsyncIterator[Client]:
    params = server_params(
        tmp_path, {**CLIENT_TOOLS, **(sim or {})}, "--backend", "cli", "--startup-timeout", "20"
    )
    async with mcp_process(tmp_path, params=params) as client:
        yield client


# -- answers -------------------------------------------------------------------------------


async def test_progress_streams_the_answer_and_the_result_has_every_field(tmp_path: Path) -> None:
    progress = Progress()
    async with server(tmp_path) as client:
        result = await client.call_tool(
            "ask_lingma", {"prompt": "Explain streaming"}, progress_callback=progress
        )
        status = await client.call_tool("auth_status", {})
    assert not result.is_error, text_of(result)
    data = result.structured_content
    assert data["answer"] == "Answer to: Explain streaming"
    assert progress.text == data["answer"]
    assert data["finish_reason"] == "success" and data["status_code"] == 200
    assert data["session_id"] and data["request_id"]
    assert data["thinking"]  # the simulator thinks before answering
    assert data["total_ms"] is not None and data["first_token_ms"] is not None
    bridge = status.structured_content["bridge"]
    assert bridge["backend"] == "cli" and bridge["version"] == "1.1.52-sim"
    assert status.structured_content["logged_in"] is True


async def test_a_conversation_continues_in_one_process_and_after_a_restart(
    tmp_path: Path,
) -> None:
    async with server(tmp_path) as client:
        first = await client.call_tool("ask_lingma", {"prompt": "my name is Ada"})
        session_id = first.structured_content["session_id"]
        second = await client.call_tool(
            "ask_lingma", {"prompt": "who am I", "session_id": session_id}
        )
    assert second.structured_content["session_id"] == session_id
    assert "Earlier you said: my name is Ada" in second.structured_content["answer"]
    assert len(sent_to_agent(tmp_path, "session/new")) == 1
    async with server(tmp_path) as client:  # a new server, a new agent process
        third = await client.call_tool(
            "ask_lingma", {"prompt": "still there?", "session_id": session_id}
        )
    assert not third.is_error, text_of(third)
    assert third.structured_content["session_id"] == session_id
    assert "Earlier you said: who am I" in third.structured_content["answer"]
    reopened = sent_to_agent(tmp_path, "session/resume") + sent_to_agent(tmp_path, "session/load")
    assert [m["params"]["sessionId"] for m in reopened] == [session_id]


async def test_cancelling_the_call_sends_session_cancel_and_the_next_call_works(
    tmp_path: Path,
) -> None:
    async with server(tmp_path) as client:
        async with anyio.create_task_group() as tg:

            async def ask() -> None:
                await client.call_tool("ask_lingma", {"prompt": "@wait"})

            tg.start_soon(ask)
            await wait_until(lambda: sent_to_agent(tmp_path, "session/prompt"))
            tg.cancel_scope.cancel()  # the SDK client sends notifications/cancelled
        await wait_until(lambda: sent_to_agent(tmp_path, "session/cancel"))
        [cancel] = sent_to_agent(tmp_path, "session/cancel")
        assert "id" not in cancel  # a notification: the CLI refuses the request form
        [prompt] = sent_to_agent(tmp_path, "session/prompt")
        assert cancel["params"]["sessionId"] == prompt["params"]["sessionId"]
        result = await client.call_tool("ask_lingma", {"prompt": "again"})
    assert not result.is_error, text_of(result)
    assert result.structured_content["answer"] == "Answer to: again"


async def test_timeout_sends_session_cancel(tmp_path: Path) -> None:
    async with server(tmp_path) as client:
        result = await client.call_tool("ask_lingma", {"prompt": "@wait", "timeout_s": 1})
    assert result.is_error
    assert "timeout_s=1" in text_of(result)
    assert sent_to_agent(tmp_path, "session/cancel")


async def test_sixteen_concurrent_asks_each_get_their_own_answer(tmp_path: Path) -> None:
    results: dict[int, Any] = {}
    progress = {i: Progress() for i in range(16)}
    async with server(tmp_path, {"LINGMA_SIM_ACP_DELTA_DELAY": "0.005"}) as client:

        async def ask(i: int) -> None:
            results[i] = await client.call_tool(
                "ask_lingma", {"prompt": f"question number {i}"}, progress_callback=progress[i]
            )

        async with anyio.create_task_group() as tg:
            for i in range(16):
                tg.start_soon(ask, i)
    for i in range(16):
        assert not results[i].is_error, text_of(results[i])
        answer = results[i].structured_content["answer"]
        assert answer == f"Answer to: question number {i}"
        assert progress[i].text == answer
    assert len({r.structured_content["session_id"] for r in results.values()}) == 16


# -- models and login ----------------------------------------------------------------------


async def test_models_are_listed_and_an_unknown_key_is_refused_naming_valid_ones(
    tmp_path: Path,
) -> None:
    async with server(tmp_path) as client:
        listing = await client.call_tool("list_models", {})
        keys = [m["key"] for m in listing.structured_content["scenes"]["chat"]]
        chosen = await client.call_tool("ask_lingma", {"prompt": "hi", "model": keys[-1]})
        wrong = await client.call_tool("ask_lingma", {"prompt": "hi", "model": "no-such"})
    assert not listing.is_error and len(keys) >= 2
    assert not chosen.is_error, text_of(chosen)
    assert chosen.structured_content["model"] == keys[-1]
    assert wrong.is_error and "no-such" in text_of(wrong)
    assert all(key in text_of(wrong) for key in keys)
    assert len(sent_to_agent(tmp_path, "session/prompt")) == 1  # the wrong key never asked


async def test_logged_out_every_call_says_how_to_log_in(tmp_path: Path) -> None:
    async with server(tmp_path, {"LINGMA_SIM_ACP_AUTH": "logged_out"}) as client:
        status = await client.call_tool("auth_status", {})
        asked = await client.call_tool("ask_lingma", {"prompt": "hello"})
        models = await client.call_tool("list_models", {})
        login = await client.call_tool("login", {})
        with pytest.raises(Exception) as sessions:
            await client.read_resource("lingma://sessions")
    assert status.structured_content["logged_in"] is False
    assert status.structured_content["problem"] == NOT_LOGGED_IN_MESSAGE
    assert asked.is_error and text_of(asked) == NOT_LOGGED_IN_MESSAGE
    assert models.is_error and text_of(models) == NOT_LOGGED_IN_MESSAGE
    assert "qoderclicn login" in str(sessions.value)
    assert login.is_error and "qoderclicn login" in text_of(login)
    assert "QODERCN_PERSONAL_ACCESS_TOKEN" in text_of(login)
    assert not sent_to_agent(tmp_path, "authenticate")  # it never answers: never sent


async def test_sessions_resource_lists_the_agents_sessions(tmp_path: Path) -> None:
    async with server(tmp_path) as client:
        first = await client.call_tool("ask_lingma", {"prompt": "remember me"})
        session_id = first.structured_content["session_id"]
        listing = await client.read_resource("lingma://sessions")
        one = await client.read_resource(f"lingma://sessions/{session_id}")
    sessions = json.loads(listing.contents[0].text)["sessions"]
    assert session_id in [s["session_id"] for s in sessions]
    assert json.loads(one.contents[0].text)["session_id"] == session_id


# -- agent mode ----------------------------------------------------------------------------


@pytest.mark.parametrize("decision", ["approve", "deny"])
async def test_a_file_write_is_decided_by_the_person_through_elicitation(
    tmp_path: Path, decision: str
) -> None:
    person = Person(always=decision)
    async with server(tmp_path, person=person) as client:
        result = await client.call_tool(
            "ask_lingma", {"prompt": "@create notes.txt hello", "mode": "agent"}
        )
    assert not result.is_error, text_of(result)
    target = tmp_path / "project" / "notes.txt"
    assert person.asked and "notes.txt" in person.asked[0].message
    approvals = result.structured_content["approvals"]
    if decision == "approve":
        assert target.read_text() == "hello"
        assert approvals[0]["decision"] == "allowed"
        assert sent_to_agent(tmp_path, "fs/write_text_file") == []  # requests come *to* us
    else:
        assert not target.exists()
        assert approvals[0]["decision"] == "denied"
        assert "rejected" in result.structured_content["answer"]


async def test_a_write_outside_the_workspace_is_refused_unasked(tmp_path: Path) -> None:
    person = Person(always="approve")
    outside = tmp_path / "outside.txt"
    async with server(tmp_path, person=person) as client:
        result = await client.call_tool(
            "ask_lingma", {"prompt": f"@create {outside} nope", "mode": "agent"}
        )
    assert not result.is_error, text_of(result)
    assert not outside.exists()
    assert person.asked == []


async def test_a_command_runs_in_the_workspace_after_approval(tmp_path: Path) -> None:
    person = Person(always="approve")
    async with server(tmp_path, person=person) as client:
        result = await client.call_tool("ask_lingma", {"prompt": "@run pwd", "mode": "agent"})
    assert not result.is_error, text_of(result)
    assert str((tmp_path / "project").resolve()) in result.structured_content["answer"]
    assert person.asked


# -- the child's end -----------------------------------------------------------------------


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal: Linux")
async def test_the_agent_dies_with_a_server_killed_by_sigkill(tmp_path: Path) -> None:
    with suppress(Exception):
        async with server_process(tmp_path) as client:
            status = await client.call_tool("auth_status", {})
            agent_pid = status.structured_content["bridge"]["pid"]
            server_pid = _parent(agent_pid)
            os.kill(server_pid, signal.SIGKILL)
            await wait_until(lambda: not alive(agent_pid))
    assert not alive(agent_pid)


async def test_the_agent_is_ended_when_the_host_leaves(tmp_path: Path) -> None:
    # The simulator, like the CLI, ignores the end of its stdin: the server ends its group.
    async with server(tmp_path) as client:
        status = await client.call_tool("auth_status", {})
        agent_pid = status.structured_content["bridge"]["pid"]
    await wait_until(lambda: not alive(agent_pid))


async def test_leaving_never_waits_on_the_agents_own_sigterm_handling(tmp_path: Path) -> None:
    # The real CLI takes ~8.5 s over SIGTERM, past the 2 s a host allows after closing the
    # server's stdin. Here the agent ignores SIGTERM altogether: the server must end it
    # without sending one, and be gone before its host has to signal it.
    async with server_process(tmp_path, {"LINGMA_SIM_ACP_SIGTERM_DELAY": "-1"}) as client:
        status = await client.call_tool("auth_status", {})
        agent_pid = status.structured_content["bridge"]["pid"]
    await wait_until(lambda: not alive(agent_pid))
    log = read_log(tmp_path)
    assert "Lingma supervisor closed" in log
    assert "ignoring SIGTERM" not in log  # the agent never got one to handle
    assert "signal SIGTERM" not in log  # the host never had to send one


async def test_a_crashed_agent_is_restarted_and_the_conversation_continues(
    tmp_path: Path,
) -> None:
    async with server(tmp_path) as client:
        first = await client.call_tool("ask_lingma", {"prompt": "before the crash"})
        session_id = first.structured_content["session_id"]
        status = await client.call_tool("auth_status", {})
        agent_pid = status.structured_content["bridge"]["pid"]
        os.kill(agent_pid, signal.SIGKILL)
        # Asked once the server has seen it go: an ask racing the death is another test's.
        await wait_until(lambda: "the Lingma CLI stopped" in read_log(tmp_path))
        second = await client.call_tool(
            "ask_lingma", {"prompt": "after the crash", "session_id": session_id}
        )
        after = await client.call_tool("auth_status", {})
    assert not second.is_error, text_of(second)
    assert after.structured_content["bridge"]["pid"] not in (None, agent_pid)
    assert "Earlier you said: before the crash" in second.structured_content["answer"]


async def test_without_session_list_the_login_check_session_serves_the_first_ask(
    tmp_path: Path,
) -> None:
    async with server(tmp_path, {"LINGMA_SIM_ACP_NO_LIST": "1"}) as client:
        status = await client.call_tool("auth_status", {})
        result = await client.call_tool("ask_lingma", {"prompt": "first"})
        with pytest.raises(Exception) as listing:
            await client.read_resource("lingma://sessions")
    assert status.structured_content["logged_in"] is True
    assert not result.is_error, text_of(result)
    assert len(sent_to_agent(tmp_path, "session/new")) == 1  # the check's session, reused
    assert "session/list" in str(listing.value)


async def test_an_agent_without_resume_continues_by_session_load(tmp_path: Path) -> None:
    env = {"LINGMA_SIM_ACP_NO_RESUME": "1"}
    async with server(tmp_path, env) as client:
        first = await client.call_tool("ask_lingma", {"prompt": "my name is Ada"})
    session_id = first.structured_content["session_id"]
    async with server(tmp_path, env) as client:
        again = await client.call_tool(
            "ask_lingma", {"prompt": "who am I", "session_id": session_id}
        )
    assert not again.is_error, text_of(again)
    assert again.structured_content["answer"].startswith("Earlier you said: my name is Ada")
    assert [m["params"]["sessionId"] for m in sent_to_agent(tmp_path, "session/load")] == [
        session_id
    ]


async def test_models_of_the_older_kind_are_chosen_with_set_model(tmp_path: Path) -> None:
    async with server(tmp_path, {"LINGMA_SIM_ACP_MODELS": "legacy"}) as client:
        listing = await client.call_tool("list_models", {})
        keys = [m["key"] for m in listing.structured_content["scenes"]["developer"]]
        result = await client.call_tool("ask_lingma", {"prompt": "hi", "model": keys[-1]})
    assert not result.is_error, text_of(result)
    [chosen] = sent_to_agent(tmp_path, "session/set_model")
    assert chosen["params"]["modelId"] == keys[-1]

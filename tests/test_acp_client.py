"""The ACP client against ``lingma-sim acp``, started as the CLI is: a real child over stdio."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest
from acp_fakes import SIM_ARGS, FakeGate, FakeWorkspace, received, running_sim, sim_env
from fakes import FakeAsker
from procs import alive

from lingma_mcp.acp import (
    CapabilityMissing,
    CliNotLoggedIn,
    UnknownModel,
    start_agent,
)
from lingma_mcp.errors import LingmaConnectionLost, LingmaStartupError, UnknownSession
from lingma_mcp.events import Finish, Step, TextDelta, Thinking, ToolUpdate
from lingma_mcp.workspace import ApprovalGate, WorkspaceHost, parse_policy

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    return root.resolve()


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


async def collect(stream) -> list:
    return [event async for event in stream]


async def test_handshake_names_the_agent_and_its_session_capabilities(workspace, state):
    async with running_sim(workspace, state) as handle:
        info = handle.client.agent_info
        assert (info.name, info.version) == ("qoder-cli-cn", "1.1.52-sim")
        assert handle.client.can_load and handle.client.can_resume and handle.client.can_list


async def test_a_prompt_streams_plan_thought_and_answer_in_order(workspace, state):
    async with running_sim(workspace, state, chunk="4") as handle:
        client = handle.client
        session = await client.new_session(workspace)
        events = await collect(client.prompt(session, "hello there"))
    kinds = [type(e).__name__ for e in events]
    assert kinds[0] == "Step" and kinds[1] == "Thinking" and kinds[-1] == "Finish"
    assert isinstance(events[1], Thinking) and "hello there" in events[1].text
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    assert len(deltas) > 1 and all(len(d) <= 4 for d in deltas)
    finish = events[-1]
    assert isinstance(finish, Finish)
    assert (finish.reason, finish.session_id) == ("success", session)
    assert "".join(deltas) == finish.full_answer == "Answer to: hello there"
    assert [e.status for e in events if isinstance(e, Step)] == ["doing", "done"]


async def test_an_approved_create_writes_through_the_workspace_port(workspace, state, tmp_path):
    log = tmp_path / "received.jsonl"
    port, gate = FakeWorkspace(workspace), FakeGate(allow=True)
    async with running_sim(workspace, state, log) as handle:
        client = handle.client
        session = await client.new_session(workspace)
        stream = client.prompt(
            session, "@create notes/a.txt hi there", workspace=port, approvals=gate
        )
        events = await collect(stream)
    assert (workspace / "notes/a.txt").read_text() == "hi there"
    assert gate.asked == [("write", "Write notes/a.txt", "notes/a.txt", "hi there")]
    statuses = [e.tool.status for e in events if isinstance(e, ToolUpdate)]
    assert statuses == ["pending", "in_progress", "completed"]
    assert stream.tools[0].name == "Write notes/a.txt"
    # The option is chosen by its kind: allow_once, whose id is proceed_once.
    replies = [m for m in received(log) if "result" in m and "outcome" in (m["result"] or {})]
    assert replies[0]["result"]["outcome"] == {"outcome": "selected", "optionId": "proceed_once"}


async def test_a_denied_permission_answers_the_reject_option_and_writes_nothing(
    workspace, state, tmp_path
):
    log = tmp_path / "received.jsonl"
    port, gate = FakeWorkspace(workspace), FakeGate(allow=False)
    async with running_sim(workspace, state, log) as handle:
        session = await handle.client.new_session(workspace)
        events = await collect(
            handle.client.prompt(session, "@create a.txt no", workspace=port, approvals=gate)
        )
    assert not (workspace / "a.txt").exists() and port.calls == []
    tools = [e.tool for e in events if isinstance(e, ToolUpdate)]
    assert tools[-1].status == "failed" and tools[-1].error
    replies = [m for m in received(log) if "result" in m and "outcome" in (m["result"] or {})]
    assert replies[0]["result"]["outcome"] == {"outcome": "selected", "optionId": "cancel"}
    assert isinstance(events[-1], Finish) and events[-1].reason == "success"


async def test_a_path_outside_the_workspace_is_refused_without_asking(workspace, state):
    asker = FakeAsker()
    host = WorkspaceHost(workspace, ApprovalGate(parse_policy("write=allow"), asker=asker))
    async with running_sim(workspace, state) as handle:
        session = await handle.client.new_session(workspace)
        await collect(
            handle.client.prompt(session, "@create ../escape.txt x", workspace=host, approvals=host)
        )
    assert asker.requests == []
    assert [a["by"] for a in host.approvals] == ["confinement"]
    assert not (workspace.parent / "escape.txt").exists()


async def test_chat_only_refuses_every_permission(workspace, state):
    async with running_sim(workspace, state) as handle:
        session = await handle.client.new_session(workspace)
        events = await collect(handle.client.prompt(session, "@create a.txt x"))
    assert not (workspace / "a.txt").exists()
    assert [e.tool.status for e in events if isinstance(e, ToolUpdate)][-1] == "failed"


async def test_read_and_run_go_through_the_workspace_port(workspace, state):
    (workspace / "in.txt").write_text("forty-two")
    port, gate = FakeWorkspace(workspace), FakeGate(allow=True)
    async with running_sim(workspace, state) as handle:
        session = await handle.client.new_session(workspace)
        stream = handle.client.prompt(
            session, "@read in.txt\n@run echo ran-here", workspace=port, approvals=gate
        )
        events = await collect(stream)
    assert [a[0] for a in gate.asked] == ["read", "run"]
    assert gate.asked[1][2] == "echo ran-here"
    assert ("read", "in.txt") in port.calls and ("run", ["echo", "ran-here"]) in port.calls
    assert ("release", "term-1") in port.calls
    answer = events[-1].full_answer
    assert "forty-two" in answer and "ran-here" in answer and "exit 0" in answer


async def test_cancel_reaches_the_agent_as_a_notification(workspace, state, tmp_path):
    log = tmp_path / "received.jsonl"
    async with running_sim(workspace, state, log) as handle:
        session = await handle.client.new_session(workspace)
        stream = handle.client.prompt(session, "@wait")
        first = await stream.__anext__()  # the plan: the agent is in the turn
        assert isinstance(first, Step)
        await stream.cancel()
        events = [first, *await collect(stream)]
    assert isinstance(events[-1], Finish) and events[-1].reason == "cancelled"
    cancels = [m for m in received(log) if m.get("method") == "session/cancel"]
    assert cancels == [
        {"jsonrpc": "2.0", "method": "session/cancel", "params": {"sessionId": session}}
    ]


async def test_cancel_answers_a_pending_permission_cancelled(workspace, state, tmp_path):
    log = tmp_path / "received.jsonl"
    asked = asyncio.Event()
    gate = FakeGate(allow=True, hold=asyncio.Event())
    original = gate.authorize

    async def authorize(*args, **kwargs):
        asked.set()
        return await original(*args, **kwargs)

    gate.authorize = authorize  # type: ignore[method-assign]
    port = FakeWorkspace(workspace)
    async with running_sim(workspace, state, log) as handle:
        session = await handle.client.new_session(workspace)
        stream = handle.client.prompt(session, "@create a.txt x", workspace=port, approvals=gate)
        await asked.wait()
        await stream.cancel()
        events = await collect(stream)
    assert events[-1].reason == "cancelled" and not (workspace / "a.txt").exists()
    replies = [m for m in received(log) if "result" in m and "outcome" in (m["result"] or {})]
    assert replies[0]["result"]["outcome"] == {"outcome": "cancelled"}


async def test_a_conversation_continues_by_load_after_a_restart(workspace, state):
    async with running_sim(workspace, state) as handle:
        session = await handle.client.new_session(workspace)
        await collect(handle.client.prompt(session, "my name is Ada"))
    async with running_sim(workspace, state, no_resume="1") as handle:
        client = handle.client
        assert not client.can_resume
        assert await client.open_session(session, workspace) == session
        events = await collect(client.prompt(session, "what is my name?"))
    assert "Earlier you said: my name is Ada" in events[-1].full_answer


async def test_load_session_returns_the_history(workspace, state):
    async with running_sim(workspace, state) as handle:
        session = await handle.client.new_session(workspace)
        await collect(handle.client.prompt(session, "remember this"))
    async with running_sim(workspace, state) as handle:
        history = await handle.client.load_session(session, workspace)
        again = await collect(handle.client.prompt(session, "and now?"))
    assert [e.text for e in history if isinstance(e, TextDelta)] == ["Answer to: remember this"]
    assert "Earlier you said: remember this" in again[-1].full_answer


async def test_logged_out_new_session_raises_the_login_error(workspace, state):
    async with running_sim(workspace, state, auth="logged_out") as handle:
        with pytest.raises(CliNotLoggedIn) as caught:
            await handle.client.new_session(workspace)
        with pytest.raises(CliNotLoggedIn):
            await handle.client.list_sessions(workspace)
    assert "qoderclicn login" in str(caught.value)
    assert "QODERCN_PERSONAL_ACCESS_TOKEN" in str(caught.value)


async def test_chatter_on_stdout_is_skipped(workspace, state):
    async with running_sim(workspace, state, chatter="always") as handle:
        session = await handle.client.new_session(workspace)
        events = await collect(handle.client.prompt(session, "hi"))
        assert handle.client.transport.skipped >= 2
    assert events[-1].reason == "success"


async def test_ids_colliding_with_the_agents_own_are_told_apart(workspace, state, tmp_path):
    log = tmp_path / "received.jsonl"
    port, gate = FakeWorkspace(workspace), FakeGate(allow=True)
    async with running_sim(workspace, state, log) as handle:
        session = await handle.client.new_session(workspace)
        events = await collect(
            handle.client.prompt(session, "@create b.txt ok", workspace=port, approvals=gate)
        )
    messages = received(log)
    # Our initialize was id 0; the agent's first request (the permission) was id 0 too.
    assert messages[0]["id"] == 0 and messages[0]["method"] == "initialize"
    declared = messages[0]["params"]["clientCapabilities"]
    assert declared["fs"] == {"readTextFile": True, "writeTextFile": True}
    assert declared["terminal"] is True
    assert any(m.get("id") == 0 and "method" not in m for m in messages)
    assert events[-1].reason == "success" and (workspace / "b.txt").read_text() == "ok"


@pytest.mark.parametrize("mode", ["config", "legacy"])
async def test_models_are_listed_and_selected_as_the_agent_declares(
    workspace, state, tmp_path, mode
):
    log = tmp_path / "received.jsonl"
    async with running_sim(workspace, state, log, models=mode) as handle:
        client = handle.client
        keys = [m.key for m in await client.list_models(workspace)]
        assert keys == ["auto", "qwen3-coder", "kimi-k2"]
        session = await client.new_session(workspace)
        with pytest.raises(UnknownModel, match="kimi-k2"):
            await client.set_model(session, "gpt-nothing")
        await client.set_model(session, "kimi-k2")
        assert client.models(session).current == "kimi-k2"
    method = "session/set_config_option" if mode == "config" else "session/set_model"
    assert [
        m["method"] for m in received(log) if m.get("method", "").startswith("session/set")
    ] == [method]


async def test_list_sessions_reports_conversations_of_the_folder(workspace, state):
    async with running_sim(workspace, state) as handle:
        session = await handle.client.new_session(workspace)
        await collect(handle.client.prompt(session, "title me"))
        listed = await handle.client.list_sessions(workspace)
    assert [(s.session_id, s.title) for s in listed] == [(session, "title me")]
    folder = state / "sessions"
    assert oct(folder.stat().st_mode & 0o777) == "0o700"
    assert all(oct(p.stat().st_mode & 0o777) == "0o600" for p in folder.iterdir())


async def test_a_crash_mid_answer_is_a_lost_connection(workspace, state):
    async with running_sim(workspace, state, crash_after="2") as handle:
        session = await handle.client.new_session(workspace)
        with pytest.raises(LingmaConnectionLost):
            await collect(handle.client.prompt(session, "a long enough question to crash"))
        await handle.lost
        assert await handle.process.exited == 3


async def test_close_ends_the_whole_group_even_when_sigterm_is_ignored(workspace, state):
    async with running_sim(workspace, state, sigterm_delay="-1") as handle:
        handle.terminate_grace = 0.2
        pid = handle.pid
    assert handle.process.returncode == -9
    assert not alive(pid)
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)


async def test_concurrent_prompts_in_their_own_sessions_get_their_own_answers(workspace, state):
    async with running_sim(workspace, state) as handle:
        client = handle.client
        sessions = await asyncio.gather(*(client.new_session(workspace) for _ in range(8)))

        async def ask(i: int, session: str) -> str:
            events = await collect(client.prompt(session, f"question {i}"))
            return events[-1].full_answer

        answers = await asyncio.gather(*(ask(i, s) for i, s in enumerate(sessions)))
    assert answers == [f"Answer to: question {i}" for i in range(8)]


async def test_a_history_replayed_after_the_load_reply_stays_out_of_the_next_answer(
    workspace, state
):
    async with running_sim(workspace, state) as handle:
        session = await handle.client.new_session(workspace)
        await collect(handle.client.prompt(session, "first words"))
    async with running_sim(workspace, state, load_replay="after") as handle:
        history = await handle.client.load_session(session, workspace)
        again = await collect(handle.client.prompt(session, "next"))
    assert [e.text for e in history if isinstance(e, TextDelta)] == ["Answer to: first words"]
    deltas = "".join(e.text for e in again if isinstance(e, TextDelta))
    assert deltas == again[-1].full_answer == "Earlier you said: first words. Answer to: next"


async def test_a_conversation_continues_by_resume_where_declared(workspace, state, tmp_path):
    log = tmp_path / "received.jsonl"
    async with running_sim(workspace, state) as handle:
        session = await handle.client.new_session(workspace)
        await collect(handle.client.prompt(session, "call me Ishmael"))
    async with running_sim(workspace, state, log) as handle:
        await handle.client.open_session(session, workspace)
        events = await collect(handle.client.prompt(session, "who am I?"))
    assert "Earlier you said: call me Ishmael" in events[-1].full_answer
    methods = [m.get("method") for m in received(log)]
    assert "session/resume" in methods and "session/load" not in methods


async def test_list_sessions_is_refused_where_the_agent_has_none(workspace, state):
    async with running_sim(workspace, state, no_list="1") as handle:
        assert not handle.client.can_list
        with pytest.raises(CapabilityMissing, match="list"):
            await handle.client.list_sessions(workspace)


async def test_an_agent_that_does_not_answer_initialize_in_time_is_ended(workspace, state):
    with pytest.raises(LingmaStartupError, match="did not answer initialize") as caught:
        await start_agent(
            sys.executable,
            extra_args=SIM_ARGS,
            cwd=workspace,
            env=sim_env(state, start_delay="60", sigterm_delay="-1"),
            startup_timeout=1,
            terminate_grace=0.2,
        )
    assert caught.value.waited_for == "initialize"
    assert not any(f"LINGMA_SIM_ACP_STATE_DIR={state}" in p for p in _environs())


async def test_an_agent_that_exits_at_start_says_why(workspace, state):
    with pytest.raises(LingmaStartupError, match="exited") as caught:
        await start_agent(
            sys.executable,
            extra_args=SIM_ARGS,
            cwd=workspace,
            env=sim_env(state, exit_at_start="5"),
            startup_timeout=60,
        )
    assert caught.value.exit_code == 5
    assert any("start-up failure" in line for line in caught.value.stderr_tail)


def _environs() -> list[str]:
    """The environments of live processes (Linux), to find a stray simulator."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and alive(int(entry.name)):
            try:
                found.append((entry / "environ").read_bytes().decode(errors="replace"))
            except OSError:
                continue
    return found


async def test_a_missing_cli_is_a_start_up_error_naming_it(workspace, tmp_path):
    missing = tmp_path / "no-such-qoderclicn"
    with pytest.raises(LingmaStartupError, match="no-such-qoderclicn") as caught:
        await start_agent(missing, cwd=workspace)
    assert caught.value.waited_for == "spawn"


async def test_an_unknown_session_is_not_taken_as_open_after_a_failed_continue(workspace, state):
    async with running_sim(workspace, state) as handle:
        client = handle.client
        for _ in range(2):  # the second try asks the agent again
            with pytest.raises(UnknownSession, match="no-such-session"):
                await client.open_session("no-such-session", workspace)
        assert "no-such-session" not in client.handlers.sessions

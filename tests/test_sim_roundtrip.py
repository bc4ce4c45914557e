"""The simulator driven through the RPC core (RpcConnection, LingmaClient, ChatStream).

These pin that the two halves agree: what the core sends the simulator understands, what
the simulator sends (split frames, requests that need replies, tool events without a
requestId, faults) the core survives and reports as the typed errors the bridge expects.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from fakes import FakeToolHandler
from simclient import MessageLog, running_sim, serving_sim
from websockets.asyncio.client import connect

from lingma_mcp.backend import ChatRequest
from lingma_mcp.errors import ChatRejected, LingmaConnectionLost
from lingma_mcp.events import Finish, Step, TextDelta, Thinking, ToolUpdate
from lingma_mcp.lingma.framing import MAX_MESSAGE_BYTES
from lingma_mcp.lingma.ide_client import LingmaClient
from lingma_mcp.lingma.jsonrpc import RpcConnection
from lingma_mcp.lingma.streams import ChatStream
from lingma_mcp.lingma.toolhost import NO_HANDLER, IdeToolHandler, ToolOutcome

SMALL = {"LINGMA_SIM_ANSWER_SIZE": "150", "LINGMA_SIM_CHUNK": "9"}
TIMEOUT = 5.0


@asynccontextmanager
async def core_client(port: int, workspace: Path) -> AsyncIterator[LingmaClient]:
    async with connect(f"ws://127.0.0.1:{port}/", max_size=MAX_MESSAGE_BYTES) as ws:
        conn = RpcConnection(ws)
        conn.start()
        client = LingmaClient(conn, control_timeout=TIMEOUT)
        try:
            await client.initialize(workspace)
            yield client
        finally:
            await conn.close()


@asynccontextmanager
async def sim_and_client(
    tmp_path: Path, env: dict[str, str] | None = None
) -> AsyncIterator[tuple[MessageLog, LingmaClient]]:
    """The simulator serving in this event loop and the RPC core's client of it."""
    workspace = tmp_path / "project"
    workspace.mkdir(exist_ok=True)
    async with serving_sim(tmp_path, env={**SMALL, **(env or {})}) as sim:
        async with core_client(sim.port, workspace) as client:
            yield sim, client


async def drain(stream: ChatStream) -> list[object]:
    return [event async for event in stream]


async def first_text(stream: ChatStream) -> TextDelta:
    async for event in stream:
        if isinstance(event, TextDelta) and event.text:
            return event
    raise AssertionError("the chat ended without answer text")


async def ask(
    client: LingmaClient,
    prompt: str,
    tool_handler: IdeToolHandler | None = None,
    **fields: object,
) -> tuple[list[object], ChatStream]:
    request = ChatRequest(prompt=prompt, **fields)  # type: ignore[arg-type]
    stream = await client.open_chat(request, tool_handler=tool_handler)
    events = await asyncio.wait_for(drain(stream), TIMEOUT)
    return events, stream


async def test_handshake_account_and_models_through_the_core(tmp_path: Path) -> None:
    async with sim_and_client(tmp_path) as (_, client):
        assert client.server_info["name"] == "lingma" and client.version == "2.5.17-sim"
        login = await client.login_state()
        assert login.logged_in and login.user_name == "sim-user"
        models = await client.models()
        assert "dashscope_qwen3_coder" in [m.key for m in models if "chat" in m.scenes]
        assert (await client.login_url()).startswith("https://")


async def test_a_chat_and_its_continuation_through_the_core(tmp_path: Path) -> None:
    async with sim_and_client(tmp_path) as (_, client):
        events, stream = await ask(client, "第一个问题 first", model="dashscope_qwen3_coder")
        first = stream.result()
        assert isinstance(events[-1], Finish) and first.finish_reason == "success"
        assert any(isinstance(e, Step) for e in events)
        deltas = "".join(e.text for e in events if isinstance(e, TextDelta))
        assert first.answer == deltas and "第一个问题 first" in first.answer
        assert first.session_id is not None and first.session_id.startswith("sim-session-")
        assert first.first_token_ms is not None

        _, stream = await ask(client, "second", session_id=first.session_id)
        second = stream.result()
        assert second.session_id == first.session_id and "turn 2" in second.answer
        assert first.continued is None and second.continued is True
        sessions = await client.sessions(tmp_path / "project")
        assert [s.session_id for s in sessions] == [first.session_id]
        session = await client.session(first.session_id)
        assert session is not None and [t.question for t in session.turns] == [
            "第一个问题 first",
            "second",
        ]


async def test_an_unknown_session_starts_a_new_conversation_and_says_so(tmp_path: Path) -> None:
    async with sim_and_client(tmp_path) as (_, client):
        _, stream = await ask(client, "hello again", session_id="nobody-knows-this")
        result = stream.result()
        assert result.continued is False and result.session_id != "nobody-knows-this"
        assert "turn 1" in result.answer


async def test_a_stopped_chat_continues_under_the_session_its_late_finish_names(
    tmp_path: Path,
) -> None:
    # What a timeout does: stop the chat mid-answer and report its session hint, the only
    # session id known then. Lingma files it under an id of its own, named by the finish
    # that follows chat/stop; a question naming the hint must land in that conversation.
    env = {"LINGMA_SIM_ANSWER_SIZE": "400", "LINGMA_SIM_DELTA_DELAY": "0.01"}
    async with sim_and_client(tmp_path, env) as (_, client):
        stream = await client.open_chat(ChatRequest(prompt="cut short"))
        await asyncio.wait_for(first_text(stream), TIMEOUT)
        await stream.aclose()
        hint = stream.result().session_id
        assert hint is not None and not stream.done

        _, again = await ask(client, "go on", session_id=hint)
        result = again.result()
        assert result.continued is True and "turn 2" in result.answer
        assert result.session_id != hint and result.session_id.startswith("sim-session-")
        session = await client.session(result.session_id)
        assert session is not None
        assert [t.question for t in session.turns] == ["cut short", "go on"]


async def test_thinking_model_streams_thinking_through_the_core(tmp_path: Path) -> None:
    async with sim_and_client(tmp_path) as (_, client):
        events, stream = await ask(client, "think", model="dashscope_qwen_plus_20250428_thinking")
        assert any(isinstance(e, Thinking) for e in events) and stream.result().thinking


async def test_agent_tool_events_are_merged_and_tool_invoke_is_refused(tmp_path: Path) -> None:
    async with sim_and_client(tmp_path) as (sim, client):
        events, stream = await ask(client, "read it", mode="agent", workspace=tmp_path / "project")
        result = stream.result()
        (tool,) = result.tool_events
        assert tool.name == "read_file" and tool.input["file_path"].endswith("README.md")
        assert tool.status == "REQUEST_FINISHED"
        assert sum(isinstance(e, ToolUpdate) for e in events) >= 3
        assert NO_HANDLER in result.answer
        recorded = await sim.wait_logged(lambda e: e.get("event") == "tool_invoke_reply")
        assert recorded["outcome"]["success"] is False


async def test_async_tool_invoke_through_the_core(tmp_path: Path) -> None:
    async with sim_and_client(tmp_path, {"LINGMA_SIM_TOOL_ASYNC": "1"}) as (sim, client):
        _, stream = await ask(client, "read it later", mode="agent")
        assert NO_HANDLER in stream.result().answer
        result = await sim.wait_logged(
            lambda e: e["kind"] == "request" and e["message"]["method"] == "tool/invokeResult"
        )
        assert result["message"]["params"]["success"] is False


@pytest.mark.parametrize("use_async", ["0", "1"], ids=["sync", "async"])
async def test_agent_tool_invoke_reaches_the_chats_tool_handler(tmp_path: Path, use_async) -> None:
    env = {"LINGMA_SIM_TOOL_ASYNC": use_async}
    async with sim_and_client(tmp_path, env) as (sim, client):
        handler = FakeToolHandler(ToolOutcome(success=True, result={"content": "hello"}))
        _, stream = await ask(
            client, "read it", mode="agent", workspace=tmp_path / "project", tool_handler=handler
        )
        ((name, parameters),) = handler.invoked
        assert name == "read_file" and parameters["file_path"].endswith("README.md")
        assert "read_file README.md: ok: hello" in stream.result().answer
        recorded = await sim.wait_logged(lambda e: e.get("event") == "tool_invoke_reply")
        assert recorded["outcome"]["success"] is True
        assert recorded["outcome"]["result"] == {"content": "hello"}


async def test_concurrent_chats_through_the_core(tmp_path: Path) -> None:
    async with sim_and_client(tmp_path) as (_, client):
        results = await asyncio.gather(*(ask(client, f"parallel {i}") for i in range(4)))
        for i, (_, stream) in enumerate(results):
            assert f"parallel {i}" in stream.result().answer


async def test_the_core_answers_every_request_so_the_window_never_stalls(tmp_path: Path) -> None:
    env = {"LINGMA_SIM_DELTAS": "600", "LINGMA_SIM_WINDOW": "8"}
    async with sim_and_client(tmp_path, env) as (sim, client):
        events, _ = await ask(client, "many deltas")
        assert sum(isinstance(e, TextDelta) for e in events) == 600
        await sim.wait_logged(lambda e: e["kind"] == "reply" and e["method"] == "chat/finish")
        replies = [e for e in sim.logged() if e["kind"] == "reply"]
        assert len(replies) >= 600


async def test_crash_is_connection_lost(tmp_path: Path) -> None:
    workspace = tmp_path / "project"
    workspace.mkdir()
    crash = {**SMALL, "LINGMA_SIM_CRASH_AFTER": "2"}  # a crash ends the process
    async with running_sim(tmp_path, env=crash) as sim:
        async with core_client(await sim.wait_port(), workspace) as client:
            stream = await client.open_chat(ChatRequest(prompt="crash"))
            with pytest.raises(LingmaConnectionLost):
                await asyncio.wait_for(drain(stream), TIMEOUT)
        assert await sim.wait_exit() == 3


async def test_drop_is_connection_lost_and_a_reconnect_works(tmp_path: Path) -> None:
    async with sim_and_client(tmp_path, {"LINGMA_SIM_DROP_AFTER": "2"}) as (sim, client):
        stream = await client.open_chat(ChatRequest(prompt="drop"))
        with pytest.raises(LingmaConnectionLost):
            await asyncio.wait_for(drain(stream), TIMEOUT)
        async with core_client(sim.port, tmp_path / "project") as again:
            _, stream = await ask(again, "after the drop")
            assert stream.result().finish_reason == "success"


async def test_hang_is_a_timeout_and_closing_stops_the_chat(tmp_path: Path) -> None:
    async with sim_and_client(tmp_path, {"LINGMA_SIM_HANG": "1"}) as (sim, client):
        stream = await client.open_chat(ChatRequest(prompt="hang", request_id="req-hang"))
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(drain(stream), 0.5)
        await stream.aclose()
        stop = await sim.wait_logged(
            lambda e: e["kind"] == "request" and e["message"]["method"] == "chat/stop"
        )
        assert stop["message"]["params"]["requestId"] == "req-hang"


async def test_rate_limit_is_a_429_finish(tmp_path: Path) -> None:
    async with sim_and_client(tmp_path, {"LINGMA_SIM_RATE_LIMIT": "1"}) as (_, client):
        events, stream = await ask(client, "too much")
        finish = events[-1]
        assert isinstance(finish, Finish) and finish.status_code == 429
        assert "quota" in stream.result().finish_message


async def test_malformed_frames_are_skipped_and_the_chat_completes(tmp_path: Path) -> None:
    async with sim_and_client(tmp_path, {"LINGMA_SIM_MALFORMED": "1"}) as (_, client):
        events, stream = await ask(client, "garbage between")
        deltas = "".join(e.text for e in events if isinstance(e, TextDelta))
        result = stream.result()
        assert result.finish_reason == "success" and result.answer == deltas
        assert "garbage between" in deltas


async def test_logged_out_chat_is_rejected(tmp_path: Path) -> None:
    async with sim_and_client(tmp_path, {"LINGMA_SIM_AUTH": "logged_out"}) as (_, client):
        login = await client.login_state()
        assert not login.logged_in and login.state == "not logged in"
        assert await client.models() == []
        stream = await client.open_chat(ChatRequest(prompt="hello"))
        with pytest.raises(ChatRejected):
            await asyncio.wait_for(drain(stream), TIMEOUT)

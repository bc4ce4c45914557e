"""Chat streams through LingmaClient: routing, tool events, finish, release, failure."""

from __future__ import annotations

import asyncio

import pytest
from fakes import FakeSocket

from lingma_mcp.errors import ChatRejected, LingmaConnectionLost
from lingma_mcp.events import Finish, Step, TextDelta, Thinking, ToolUpdate
from lingma_mcp.lingma.client import TOOL_NOT_SUPPORTED, ChatRequest, LingmaClient
from lingma_mcp.lingma.jsonrpc import RpcConnection


class Lingma:
    """Plays Lingma's side of the fake socket."""

    def __init__(self, sock: FakeSocket) -> None:
        self.sock = sock
        self._ids = iter(range(1000, 10**6))

    def event(self, method, **params):
        self.sock.deliver_message(
            {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}
        )

    async def take_ask(self):
        """Read what the bridge sent until a chat/ask; accept it."""
        while True:
            msg = await self.sock.next_sent()
            if msg.get("method") == "chat/ask":
                self.sock.deliver_message(
                    {"jsonrpc": "2.0", "id": msg["id"], "result": {"success": True}}
                )
                return msg["params"]


@pytest.fixture
async def setup():
    sock = FakeSocket()
    conn = RpcConnection(sock)
    conn.start()
    client = LingmaClient(conn, control_timeout=2)
    yield client, Lingma(sock), sock
    await conn.close()


async def collect(stream):
    return [event async for event in stream]


async def test_a_chat_streams_deltas_then_finish_and_exposes_the_result(setup):
    client, lingma, _ = setup
    stream = await client.open_chat(ChatRequest(prompt="ping", model="auto"))
    ask = await lingma.take_ask()
    assert ask["questionText"] == "ping" and ask["extra"]["modelConfig"] == {"key": "auto"}
    assert ask["isReply"] is False and ask["sessionType"] == "chat"
    rid = ask["requestId"]
    for text in ["pon", "", "g"]:
        lingma.event("chat/answer", requestId=rid, sessionId="s", text=text)
    lingma.event("chat/think", requestId=rid, text="hmm", step="start")
    lingma.event("chat/process_step_callback", requestId=rid, step="s1", status="doing")
    lingma.event(
        "chat/finish", requestId=rid, sessionId="upstream-1", reason="success", statusCode=200
    )
    events = await asyncio.wait_for(collect(stream), 2)
    assert [type(e) for e in events] == [TextDelta] * 3 + [Thinking, Step, Finish]
    result = stream.result()
    assert result.answer == "pong"
    assert result.session_id == "upstream-1"
    assert result.finish_reason == "success" and result.status_code == 200
    assert result.thinking == "hmm"
    assert result.first_token_ms is not None and result.total_ms >= result.first_token_ms
    assert client.router.open_streams == 0


async def test_full_answer_wins_over_joined_deltas_and_overwrite_replaces_text(setup):
    client, lingma, _ = setup
    stream = await client.open_chat(ChatRequest(prompt="q"))
    rid = (await lingma.take_ask())["requestId"]
    lingma.event("chat/answer", requestId=rid, text="draft")
    lingma.event("chat/answer", requestId=rid, text="final", overwrite=True)
    await asyncio.sleep(0.05)
    assert stream.text_so_far() == "final"
    lingma.event("chat/finish", requestId=rid, fullAnswer="final answer", statusCode=200)
    await collect(stream)
    assert stream.result().answer == "final answer"


async def test_interleaved_concurrent_chats_each_get_their_own_events(setup):
    client, lingma, _ = setup
    streams = [await client.open_chat(ChatRequest(prompt=f"q{i}")) for i in range(4)]
    rids = [(await lingma.take_ask())["requestId"] for _ in streams]
    for n in range(5):
        for i, rid in enumerate(rids):
            lingma.event("chat/answer", requestId=rid, text=f"{i}.{n};")
    for rid in reversed(rids):
        lingma.event("chat/finish", requestId=rid, statusCode=200)
    await asyncio.wait_for(asyncio.gather(*(collect(s) for s in streams)), 2)
    for i, stream in enumerate(streams):
        assert stream.result().answer == "".join(f"{i}.{n};" for n in range(5))


async def test_tool_events_without_request_id_route_by_tool_call_id_and_merge(setup):
    client, lingma, _ = setup
    stream = await client.open_chat(ChatRequest(prompt="agent", mode="agent"))
    other = await client.open_chat(ChatRequest(prompt="other"))
    ask = await lingma.take_ask()
    await lingma.take_ask()
    assert ask["sessionType"] == "developer" and ask["pluginPayloadConfig"]["isEnableAskAgent"]
    rid = ask["requestId"]
    lingma.event(
        "tool/call/sync",
        requestId=rid,
        toolCallId="t1",
        toolCallStatus="INIT",
        parameters={"file_path": "/a"},
    )
    lingma.event("tool/call/sync", toolCallId="t1", toolName="read_file", toolCallStatus="RUNNING")
    lingma.event(
        "tool/call/sync",
        toolCallId="t1",
        name="tool",
        parameters={},
        toolCallStatus="FINISHED",
        results=[{"content": "x"}],
    )
    lingma.event("tool/call/sync", toolCallId="nobody-owns-this", toolCallStatus="RUNNING")
    lingma.event("chat/finish", requestId=rid, statusCode=200)
    events = await asyncio.wait_for(collect(stream), 2)
    updates = [e.tool for e in events if isinstance(e, ToolUpdate)]
    assert [u.status for u in updates] == ["INIT", "RUNNING", "FINISHED"]
    final = stream.result().tool_events
    assert final == [
        {
            "id": "t1",
            "name": "read_file",
            "status": "FINISHED",
            "input": {"file_path": "/a"},
            "result": [{"content": "x"}],
            "error": None,
        }
    ]
    assert other.text_so_far() == "" and not other.done
    await other.aclose()
    assert client.router.tracked_tools == 0 and client.router.open_streams == 0


async def test_tool_invoke_gets_an_explicit_failure_reply_not_a_fake_success(setup):
    client, lingma, sock = setup
    stream = await client.open_chat(ChatRequest(prompt="agent", mode="agent"))
    rid = (await lingma.take_ask())["requestId"]
    sock.deliver_message(
        {
            "jsonrpc": "2.0",
            "id": 77,
            "method": "tool/invoke",
            "params": {
                "requestId": rid,
                "toolCallId": "t9",
                "name": "run_in_terminal",
                "parameters": {"command": "ls"},
                "async": False,
            },
        }
    )
    reply = await sock.next_sent()
    assert reply["id"] == 77
    assert reply["result"]["success"] is False
    assert reply["result"]["errorMessage"] == TOOL_NOT_SUPPORTED
    assert reply["result"]["toolCallId"] == "t9"
    update = await asyncio.wait_for(stream.__anext__(), 1)
    assert isinstance(update, ToolUpdate) and update.tool.name == "run_in_terminal"
    await stream.aclose()


async def test_async_tool_invoke_is_acknowledged_then_answered_by_invoke_result(setup):
    _, _, sock = setup
    sock.deliver_message(
        {
            "jsonrpc": "2.0",
            "id": 5,
            "method": "tool/invoke",
            "params": {"toolCallId": "t2", "name": "read_file", "async": True},
        }
    )
    ack = await sock.next_sent()
    assert ack == {"jsonrpc": "2.0", "id": 5, "result": None}
    follow = await sock.next_sent()
    assert follow["method"] == "tool/invokeResult"
    assert follow["params"]["success"] is False and follow["params"]["toolCallId"] == "t2"


async def test_disconnect_fails_open_streams_at_once(setup):
    client, lingma, sock = setup
    stream = await client.open_chat(ChatRequest(prompt="q"))
    rid = (await lingma.take_ask())["requestId"]
    lingma.event("chat/answer", requestId=rid, text="partial")
    sock.drop()
    with pytest.raises(LingmaConnectionLost):
        await asyncio.wait_for(collect(stream), 1)
    assert stream.result().answer == "partial"
    with pytest.raises(LingmaConnectionLost):
        await client.open_chat(ChatRequest(prompt="after"))


async def test_a_refused_ask_fails_the_stream_with_lingmas_reason(setup):
    client, _, sock = setup
    stream = await client.open_chat(ChatRequest(prompt="q"))
    ask = await sock.next_sent()
    sock.deliver_message(
        {"jsonrpc": "2.0", "id": ask["id"], "result": {"success": False, "errorMessage": "bad"}}
    )
    with pytest.raises(ChatRejected, match="bad"):
        await asyncio.wait_for(collect(stream), 1)


async def test_leaving_early_sends_chat_stop_and_releases_the_stream(setup):
    client, lingma, sock = setup
    stream = await client.open_chat(ChatRequest(prompt="q", session_id="sess-9"))
    ask = await lingma.take_ask()
    assert ask["isReply"] is True and ask["sessionId"] == "sess-9"
    closing = asyncio.create_task(stream.aclose())
    stop = await sock.next_sent()
    assert stop["method"] == "chat/stop"
    assert stop["params"] == {"requestId": ask["requestId"], "sessionId": "sess-9"}
    sock.deliver_message({"jsonrpc": "2.0", "id": stop["id"], "result": {}})
    await asyncio.wait_for(closing, 1)
    assert client.router.open_streams == 0
    # A late event for the released chat is dropped, not kept.
    lingma.event("chat/answer", requestId=ask["requestId"], text="late")
    await asyncio.sleep(0.05)
    assert client.router.open_streams == 0


async def test_auth_status_never_carries_tokens(setup):
    client, _, sock = setup
    call = asyncio.create_task(client.auth_status())
    sent = await sock.next_sent()
    sock.deliver_message(
        {
            "jsonrpc": "2.0",
            "id": sent["id"],
            "result": {
                "status": 2,
                "whitelist": 3,
                "name": "dev",
                "token": "SECRET-1",
                "refreshToken": "SECRET-2",
                "expireTime": 1893456000000,
            },
        }
    )
    status = await call
    dumped = status.model_dump_json()
    assert "SECRET" not in dumped and "token" not in dumped.lower()
    assert status.logged_in and status.status_name == "logged in"
    assert status.whitelist_name == "whitelisted"
    assert status.expires_at.startswith("2030-01-01")


async def test_a_chat_ask_lingma_never_answers_leaves_nothing_behind(setup):
    client, _, sock = setup
    for _ in range(5):
        stream = await client.open_chat(ChatRequest(prompt="q"))
        ask = await sock.next_sent()  # never answered
        sock.deliver_message(
            {
                "jsonrpc": "2.0",
                "id": 900 + ask["id"],
                "method": "chat/finish",
                "params": {"requestId": ask["params"]["requestId"], "statusCode": 200},
            }
        )
        await asyncio.wait_for(collect(stream), 1)
        await sock.next_sent()  # the reply to chat/finish
    assert client.conn.pending_requests == 0
    assert client.router.open_streams == 0

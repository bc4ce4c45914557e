"""Chat streams through LingmaClient: routing, tool events, finish, release, failure."""

from __future__ import annotations

import asyncio
import dataclasses
import json

import pytest
from fakes import FakeSocket, FakeToolHandler

from lingma_mcp.backend import ChatRequest
from lingma_mcp.errors import ChatRejected, LingmaConnectionLost
from lingma_mcp.events import Finish, Step, TextDelta, Thinking, ToolCall, ToolUpdate
from lingma_mcp.lingma.ide_client import LingmaClient
from lingma_mcp.lingma.jsonrpc import RpcConnection
from lingma_mcp.lingma.toolhost import NO_CHAT, NO_HANDLER, ToolOutcome


class Lingma:
    """Plays Lingma's side of the fake socket."""

    def __init__(self, sock: FakeSocket) -> None:
        self.sock = sock
        self._ids = iter(range(1000, 10**6))

    def event(self, method, **params):
        """Send a request of Lingma's; return its id."""
        msg_id = next(self._ids)
        self.sock.deliver_message(
            {"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params}
        )
        return msg_id

    async def reply_to(self, msg_id):
        """The bridge's reply to Lingma's request ``msg_id``, skipping anything else sent."""
        while True:
            msg = await self.sock.next_sent()
            if msg.get("id") == msg_id and "method" not in msg:
                return msg

    async def next_request(self, method):
        """The next request the bridge sends with ``method``."""
        while True:
            msg = await self.sock.next_sent()
            if msg.get("method") == method:
                return msg

    async def take_ask(self):
        """Read what the bridge sent until a chat/ask; accept it as Lingma 2.11.1 does."""
        msg = await self.next_request("chat/ask")
        self.sock.deliver_message({"jsonrpc": "2.0", "id": msg["id"], "result": ACCEPTED})
        return msg["params"]


# The real reply of Lingma 2.11.1 to chat/ask (PROTOCOL.md section 9): empty strings, not
# nulls, on success.
ACCEPTED = {"requestId": "", "success": True, "errorCode": "", "errorMessage": "", "data": None}


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
        ToolCall(
            id="t1",
            name="read_file",
            status="FINISHED",
            input={"file_path": "/a"},
            result=[{"content": "x"}],
            error=None,
        )
    ]
    assert other.text_so_far() == "" and not other.done
    await other.aclose()
    assert client.router.tracked_tools == 0 and client.router.open_streams == 0


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
    # Released without waiting for Lingma's reply to the stop.
    await asyncio.wait_for(closing, 1)
    assert client.router.open_streams == 0
    assert client.conn.pending_requests == 0
    # A late event for the released chat is answered and dropped: it reaches no stream.
    lingma.event("chat/answer", requestId=ask["requestId"], text="late")
    assert (await sock.next_sent())["result"] is None
    assert stream.text_so_far() == ""
    assert [event async for event in stream] == []


async def test_a_stopped_chat_is_continued_in_the_session_its_late_finish_names(setup):
    # A timeout reports the session hint, the only id known when the call ends; the finish
    # Lingma sends after chat/stop names where it filed the question.
    client, lingma, _ = setup
    stream = await client.open_chat(ChatRequest(prompt="q"))
    ask = await lingma.take_ask()
    hint = stream.session_hint
    assert ask["sessionId"] == hint and ask["isReply"] is False
    await stream.aclose()
    await lingma.next_request("chat/stop")
    lingma.event(
        "chat/finish", requestId=ask["requestId"], sessionId="upstream-1", reason="cancelled"
    )

    follow = await client.open_chat(ChatRequest(prompt="go on", session_id=hint))
    again = await lingma.take_ask()
    assert again["sessionId"] == "upstream-1" and again["isReply"] is True
    lingma.event("chat/finish", requestId=again["requestId"], sessionId="upstream-1")
    await asyncio.wait_for(collect(follow), 1)
    assert follow.result().continued is True
    assert follow.result().session_id == "upstream-1"


async def test_a_question_naming_a_stopped_chats_hint_waits_for_its_finish(setup):
    client, lingma, _ = setup
    stream = await client.open_chat(ChatRequest(prompt="q"))
    ask = await lingma.take_ask()
    await stream.aclose()
    follow = asyncio.create_task(
        client.open_chat(ChatRequest(prompt="go on", session_id=stream.session_hint))
    )
    await lingma.next_request("chat/stop")
    lingma.event("chat/finish", requestId=ask["requestId"], sessionId="upstream-2")
    assert (await lingma.take_ask())["sessionId"] == "upstream-2"
    await (await follow).aclose()


async def test_a_finish_in_another_session_says_the_conversation_did_not_continue(setup):
    client, lingma, _ = setup
    stream = await client.open_chat(ChatRequest(prompt="q", session_id="gone"))
    ask = await lingma.take_ask()
    lingma.event("chat/finish", requestId=ask["requestId"], sessionId="fresh")
    await asyncio.wait_for(collect(stream), 1)
    assert stream.result().continued is False and stream.result().session_id == "fresh"


async def test_the_login_state_never_carries_tokens(setup):
    client, _, sock = setup
    call = asyncio.create_task(client.login_state())
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
    login = await call
    dumped = repr(dataclasses.asdict(login))
    assert "SECRET" not in dumped and "token" not in dumped.lower()
    assert login.logged_in and login.state == "logged in"
    assert login.whitelist == "whitelisted"
    assert login.expires_at is not None and login.expires_at.isoformat().startswith("2030-01-01")


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


# ---------------------------------------------------------------------- fidelity


async def test_the_prompt_is_sent_once_in_question_text(setup):
    client, lingma, _ = setup
    prompt = "only once ✓"
    await client.open_chat(ChatRequest(prompt=prompt))
    ask = await lingma.take_ask()
    assert ask["questionText"] == prompt
    assert json.dumps(ask, ensure_ascii=False).count(prompt) == 1


async def test_a_success_reply_with_empty_strings_and_null_data_is_accepted(setup):
    client, lingma, _ = setup
    stream = await client.open_chat(ChatRequest(prompt="q"))
    rid = (await lingma.take_ask())["requestId"]
    msg_id = lingma.event("chat/finish", requestId=rid, statusCode=200)
    await lingma.reply_to(msg_id)
    events = await asyncio.wait_for(collect(stream), 1)
    assert isinstance(events[-1], Finish) and stream.result().status_code == 200
    assert stream.result().finish_reason == "success"


async def test_step_start_and_step_end_become_step_events(setup):
    client, lingma, _ = setup
    stream = await client.open_chat(ChatRequest(prompt="ping"))
    rid = (await lingma.take_ask())["requestId"]
    # One recorded ask, in order (PROTOCOL.md section 9).
    lingma.event("chat/process_step_callback", requestId=rid, step="step_start", status="done")
    lingma.event("chat/process_step_callback", requestId=rid, step="step_end", status="done")
    for text in ["pon", "", "g", ""]:
        lingma.event("chat/answer", requestId=rid, text=text)
    lingma.event("chat/finish", requestId=rid, statusCode=200)
    events = await asyncio.wait_for(collect(stream), 1)
    steps = [e for e in events if isinstance(e, Step)]
    assert [(s.step, s.status) for s in steps] == [("step_start", "done"), ("step_end", "done")]
    assert stream.result().answer == "pong"


async def test_session_title_update_is_answered_and_kept_on_the_result(setup):
    client, lingma, _ = setup
    stream = await client.open_chat(ChatRequest(prompt="q", session_id="sess-t"))
    rid = (await lingma.take_ask())["requestId"]
    msg_id = lingma.event("session/title/update", sessionId="sess-t", sessionTitle="Ping pong")
    reply = await lingma.reply_to(msg_id)
    assert "error" not in reply and reply["result"] is None
    lingma.event("chat/finish", requestId=rid, sessionId="sess-t", statusCode=200)
    await asyncio.wait_for(collect(stream), 1)
    assert stream.result().title == "Ping pong"


async def test_query_models_is_sent_with_params_exactly_an_empty_object(setup):
    client, lingma, sock = setup
    call = asyncio.create_task(client.models())
    sent = await lingma.next_request("config/queryModels")
    assert sent["params"] == {}
    sock.deliver_message({"jsonrpc": "2.0", "id": sent["id"], "result": {"chat": []}})
    assert await call == []


# ---------------------------------------------------------------------- IDE tools


def invoke(lingma, rid, *, tool_id="t1", name="read_file", params=None, **flags):
    """Lingma asks the IDE to run a tool; ``flags`` may hold ``async``."""
    return lingma.event(
        "tool/invoke",
        **({"requestId": rid} if rid is not None else {}),
        toolCallId=tool_id,
        name=name,
        parameters=params if params is not None else {"file_path": "/w/a.txt"},
        **flags,
    )


async def agent_chat(client, lingma, handler):
    stream = await client.open_chat(ChatRequest(prompt="do it", mode="agent"), tool_handler=handler)
    return stream, (await lingma.take_ask())["requestId"]


def assert_invoke_response(response, *, tool_id, name, success):
    assert set(response) == {
        "toolCallId",
        "name",
        "success",
        "errorMessage",
        "result",
        "startTime",
        "timeConsuming",
    }
    assert (response["toolCallId"], response["name"], response["success"]) == (
        tool_id,
        name,
        success,
    )
    assert response["startTime"] > 1_600_000_000_000  # epoch milliseconds
    assert response["timeConsuming"] >= 0


@pytest.mark.parametrize("flags", [{"async": False}, {}], ids=["async-false", "async-absent"])
async def test_a_tool_invoke_is_answered_in_the_reply_with_the_handlers_outcome(setup, flags):
    client, lingma, _ = setup
    handler = FakeToolHandler(
        ToolOutcome(success=True, result={"path": "/w/a.txt", "content": "x"})
    )
    stream, rid = await agent_chat(client, lingma, handler)
    msg_id = invoke(lingma, rid, **flags)
    reply = (await lingma.reply_to(msg_id))["result"]
    assert_invoke_response(reply, tool_id="t1", name="read_file", success=True)
    assert reply["result"] == {"path": "/w/a.txt", "content": "x"} and reply["errorMessage"] == ""
    assert handler.invoked == [("read_file", {"file_path": "/w/a.txt"})]
    # The tool still shows as an event of the chat.
    update = await asyncio.wait_for(stream.__anext__(), 1)
    assert isinstance(update, ToolUpdate) and update.tool.name == "read_file"
    await stream.aclose()


async def test_an_async_tool_invoke_is_acknowledged_then_sent_as_invoke_result(setup):
    client, lingma, sock = setup
    handler = FakeToolHandler(ToolOutcome(success=False, error_message="no such file"))
    stream, rid = await agent_chat(client, lingma, handler)
    msg_id = invoke(lingma, rid, **{"async": True})
    ack = (await lingma.reply_to(msg_id))["result"]
    assert ack["success"] is True and ack["toolCallId"] == "t1"
    follow = await lingma.next_request("tool/invokeResult")
    assert_invoke_response(follow["params"], tool_id="t1", name="read_file", success=False)
    assert follow["params"]["errorMessage"] == "no such file"
    # Lingma's acknowledgement ends the exchange: nothing stays pending.
    sock.deliver_message(
        {"jsonrpc": "2.0", "id": follow["id"], "result": {"errorCode": None, "errorMessage": None}}
    )
    # Anything after it is read after it: its reply is the barrier.
    await lingma.reply_to(lingma.event("chat/answer", requestId=rid, text=""))
    assert client.conn.pending_requests == 0
    await stream.aclose()


async def test_a_tool_invoke_without_request_id_reaches_the_chat_that_announced_the_call(setup):
    client, lingma, _ = setup
    handler = FakeToolHandler()
    other = await client.open_chat(ChatRequest(prompt="other", mode="agent"))
    await lingma.take_ask()
    stream, rid = await agent_chat(client, lingma, handler)
    lingma.event("tool/call/sync", requestId=rid, toolCallId="t7", toolCallStatus="INIT")
    msg_id = invoke(lingma, None, tool_id="t7")
    reply = (await lingma.reply_to(msg_id))["result"]
    assert reply["success"] is True and len(handler.invoked) == 1
    await stream.aclose()
    await other.aclose()


async def test_a_tool_invoke_in_a_chat_without_a_handler_fails_honestly(setup):
    client, lingma, _ = setup
    stream = await client.open_chat(ChatRequest(prompt="chat mode"))
    rid = (await lingma.take_ask())["requestId"]
    reply = (await lingma.reply_to(invoke(lingma, rid)))["result"]
    assert_invoke_response(reply, tool_id="t1", name="read_file", success=False)
    assert reply["errorMessage"] == NO_HANDLER
    # Asynchronously too: an empty success, then the failure.
    msg_id = invoke(lingma, rid, tool_id="t2", **{"async": True})
    assert (await lingma.reply_to(msg_id))["result"]["success"] is True
    follow = await lingma.next_request("tool/invokeResult")
    assert follow["params"]["success"] is False and follow["params"]["errorMessage"] == NO_HANDLER
    await stream.aclose()


async def test_a_tool_invoke_for_an_unknown_chat_fails_honestly(setup):
    _, lingma, _ = setup
    reply = (await lingma.reply_to(invoke(lingma, "no-such-request")))["result"]
    assert reply["success"] is False and reply["errorMessage"] == NO_CHAT


async def test_a_handler_that_raises_is_a_failed_tool_and_logged(setup, caplog):
    client, lingma, _ = setup
    handler = FakeToolHandler(fail_with=OSError("disk on fire"))
    stream, rid = await agent_chat(client, lingma, handler)
    reply = (await lingma.reply_to(invoke(lingma, rid)))["result"]
    assert reply["success"] is False and "disk on fire" in reply["errorMessage"]
    assert not client.conn.closed
    assert any(r.exc_info and isinstance(r.exc_info[1], OSError) for r in caplog.records)
    await stream.aclose()


async def test_a_slow_tool_does_not_hold_up_the_chats_deltas(setup):
    client, lingma, _ = setup
    handler = FakeToolHandler(gate=asyncio.Event())
    stream, rid = await agent_chat(client, lingma, handler)
    msg_id = invoke(lingma, rid)
    await asyncio.wait_for(handler.started.wait(), 1)
    lingma.event("chat/answer", requestId=rid, text="meanwhile")
    events = [await asyncio.wait_for(stream.__anext__(), 1) for _ in range(2)]
    assert isinstance(events[1], TextDelta) and events[1].text == "meanwhile"
    handler.gate.set()
    assert (await lingma.reply_to(msg_id))["result"]["success"] is True
    await stream.aclose()


async def test_releasing_the_chat_cancels_its_running_tool_and_tells_lingma(setup):
    client, lingma, _ = setup
    handler = FakeToolHandler(gate=asyncio.Event())
    stream, rid = await agent_chat(client, lingma, handler)
    msg_id = invoke(lingma, rid)
    await asyncio.wait_for(handler.started.wait(), 1)
    await stream.aclose()
    await asyncio.wait_for(handler.cancelled.wait(), 1)
    reply = (await lingma.reply_to(msg_id))["result"]
    assert reply["success"] is False and "cancelled" in reply["errorMessage"]


def pending(lingma, rid, *, tool_id="c1", name="run_in_terminal"):
    return lingma.event(
        "tool/call/sync",
        sessionId="sess-p",
        requestId=rid,
        toolCallId=tool_id,
        toolName=name,
        toolCallStatus="PENDING",
        parameters={"command": "ls"},
    )


@pytest.mark.parametrize("decision", [True, False], ids=["approve", "deny"])
async def test_a_pending_tool_call_is_put_to_the_handler_and_its_answer_sent(setup, decision):
    client, lingma, _ = setup
    handler = FakeToolHandler(approve=decision)
    stream, rid = await agent_chat(client, lingma, handler)
    pending(lingma, rid)
    approve = await lingma.next_request("tool/call/approve")
    assert approve["params"] == {
        "sessionId": "sess-p",
        "requestId": rid,
        "toolCallId": "c1",
        "approval": decision,
    }
    assert handler.confirmed == [("run_in_terminal", {"command": "ls"}, "c1")]
    update = await asyncio.wait_for(stream.__anext__(), 1)
    assert isinstance(update, ToolUpdate) and update.tool.status == "PENDING"
    await stream.aclose()


async def test_a_pending_tool_call_in_a_chat_without_a_handler_is_denied(setup):
    client, lingma, _ = setup
    stream = await client.open_chat(ChatRequest(prompt="chat mode"))
    rid = (await lingma.take_ask())["requestId"]
    pending(lingma, rid)
    approve = await lingma.next_request("tool/call/approve")
    assert approve["params"]["approval"] is False
    await stream.aclose()


async def test_a_confirm_that_raises_is_a_deny(setup, caplog):
    client, lingma, _ = setup
    stream, rid = await agent_chat(client, lingma, FakeToolHandler(fail_with=RuntimeError("x")))
    pending(lingma, rid)
    assert (await lingma.next_request("tool/call/approve"))["params"]["approval"] is False
    assert any(r.exc_info for r in caplog.records)
    await stream.aclose()


async def test_releasing_the_chat_during_a_confirm_is_a_deny(setup):
    client, lingma, _ = setup
    handler = FakeToolHandler(gate=asyncio.Event())
    stream, rid = await agent_chat(client, lingma, handler)
    pending(lingma, rid)
    await asyncio.wait_for(handler.started.wait(), 1)
    await stream.aclose()
    await asyncio.wait_for(handler.cancelled.wait(), 1)
    assert (await lingma.next_request("tool/call/approve"))["params"]["approval"] is False

"""The simulator as a client sees it: handshake, control methods, chats, tools, sessions.

Each test serves the simulator (in this event loop; as ``lingma-sim start`` where its
process is the point) and talks to it over a raw WebSocket with the ``FrameDecoder``,
asserting on the messages that cross the wire.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from procs import wait_until
from simclient import (
    OMIT,
    ServedSim,
    SimClient,
    ask_params,
    deltas_text,
    running_sim,
    serving_sim,
)

WORKSPACE = {"rootUri": "file:///tmp/project", "processId": 1, "capabilities": {}}
SMALL = {"LINGMA_SIM_ANSWER_SIZE": "120", "LINGMA_SIM_CHUNK": "7"}


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[ServedSim]:
    async with serving_sim(tmp_path, env=SMALL) as served:
        yield served


@pytest.fixture
async def client(sim: ServedSim) -> AsyncIterator[SimClient]:
    async with SimClient.connect(sim.port) as connected:
        await connected.result("initialize", WORKSPACE)
        yield connected


async def test_initialize_names_lingma_and_initialized_is_harmless(sim: ServedSim) -> None:
    async with SimClient.connect(sim.port) as client:
        result = await client.result("initialize", {"processId": 1, "capabilities": {}})
        assert result["serverInfo"] == {"name": "lingma", "version": "2.5.17-sim"}
        # The shape of Lingma 2.11.1's result, as recorded (PROTOCOL.md section 9).
        assert list(result) == ["capabilities", "serverInfo", "experimental"]
        assert result["capabilities"]["workspace"]["workspaceFolders"] == {
            "supported": True,
            "changeNotifications": "workspace/didChangeWorkspaceFolders",
        }
        await client.notify("initialized")
        assert (await client.result("auth/status"))["status"] == 2
    assert "workspacePath is empty" in sim.stderr()
    assert "unknown method: initialized" in sim.stderr()


async def test_control_methods_answer_like_the_plugin_dialect(client: SimClient) -> None:
    status = await client.result("auth/status")
    assert status["name"] and status["token"].startswith("sim-secret-token-")
    assert status["refreshToken"].startswith("sim-secret-") and status["expireTime"] > 10**12
    models = await client.result("config/queryModels")
    chat_keys = [m["key"] for m in models["chat"]]
    assert chat_keys[:2] == ["auto", "dashscope_qwen3_coder"]
    assert {"key", "displayName", "isReasoning", "isVl", "format", "source"} <= set(
        models["chat"][0]
    )
    login = await client.result("login/generateUrl", {})
    assert login["loginUrl"].startswith("https://") and login["nonce"] in login["loginUrl"]
    assert (await client.result("config/getEndpoint"))["endpoint"].startswith("https://")
    await client.result("config/updateEndpoint", {"endpoint": "https://example.test"})
    assert (await client.result("config/getEndpoint"))["endpoint"] == "https://example.test"
    assert (await client.result("auth/logout"))["success"] is True
    assert (await client.result("auth/status"))["status"] == 1
    assert await client.result("config/queryModels") == {}


async def test_unknown_methods_get_method_not_found(client: SimClient) -> None:
    reply = await client.call("no/such/method", {})
    assert reply["error"]["code"] == -32601
    # The Go encoder's envelope (PROTOCOL.md section 9): "result": null beside the error,
    # keys in the order jsonrpc, result, error, id.
    assert list(reply) == ["jsonrpc", "result", "error", "id"] and reply["result"] is None
    assert reply["error"] == {"code": -32601, "message": "method not found: no/such/method"}
    # The newer dialect is not spoken: a bridge probing session/new must fall back.
    assert (await client.call("session/new", {"cwd": "/tmp"}))["error"]["code"] == -32601


async def test_successful_replies_keep_the_go_key_order(client: SimClient) -> None:
    reply = await client.call("auth/status", {})
    assert list(reply) == ["jsonrpc", "result", "id"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ([], "json: cannot unmarshal array into Go value of type map[string]interface {}"),
        ("all", "json: cannot unmarshal string into Go value of type map[string]interface {}"),
        (3, "json: cannot unmarshal number into Go value of type map[string]interface {}"),
        (None, "unexpected end of JSON input"),
        (OMIT, "unexpected end of JSON input"),
    ],
)
async def test_query_models_refuses_params_that_are_not_an_object(
    client: SimClient, params: Any, message: str
) -> None:
    reply = await client.call_exact("config/queryModels", params)
    assert reply["result"] is None and reply["error"] == {"code": -32602, "message": message}
    assert "chat" in (await client.call_exact("config/queryModels", {}))["result"]


async def test_other_methods_refuse_params_of_the_wrong_kind_and_take_absent_as_empty(
    client: SimClient,
) -> None:
    refused = await client.call_exact("auth/status", ["a"])
    assert "cannot unmarshal array" in refused["error"]["message"]
    assert (await client.call_exact("auth/status", OMIT))["result"]["status"] == 2


async def test_initialize_is_followed_by_extension_register_to_every_client(
    sim: ServedSim,
) -> None:
    port = sim.port
    async with SimClient.connect(port) as first, SimClient.connect(port) as second:
        reply = await first.call("initialize", WORKSPACE)
        register = await first.wait_until(
            lambda: next((m for m in first.arrivals if m.get("method") == "extension/register"), 0)
        )
        # The reply first, then Lingma's request, which wants an answer like any other.
        assert first.arrivals.index(reply) < first.arrivals.index(register)
        assert "id" in register and isinstance(register["params"], dict)
        assert not any(m["method"] == "extension/register" for m in second.messages)
        await second.result("initialize", WORKSPACE)
        await second.wait_until(lambda: second.messages)
        # A broadcast: the first client hears of the second's handshake too.
        await first.wait_until(
            lambda: sum(m["method"] == "extension/register" for m in first.messages) == 2
        )
        replies = await sim.wait_logged(
            lambda e: e["kind"] == "reply" and e["method"] == "extension/register"
        )
        assert replies["message"]["result"] is None


async def test_params_of_a_wrong_shape_get_an_error_not_a_dead_simulator(client: SimClient) -> None:
    reply = await client.call("chat/ask", {"questionText": "q", "extra": {"modelConfig": "x"}})
    assert reply["error"]["code"] == -32603
    assert (await client.result("auth/status"))["status"] == 2


async def test_a_message_without_header_is_logged_and_skipped(
    sim: ServedSim, client: SimClient
) -> None:
    await client.send_raw('{"jsonrpc":"2.0","id":99,"method":"auth/status"}')
    assert (await client.result("auth/status"))["status"] == 2
    assert "Unknown message header" in sim.stderr()


async def test_chat_round_trip_deltas_join_to_full_answer(client: SimClient) -> None:
    accepted = await client.ask("你好，模拟器 hello", "req-1")
    # Lingma 2.11.1's reply, recorded (PROTOCOL.md section 9): empty strings, data null.
    assert accepted == {
        "requestId": "",
        "success": True,
        "errorCode": "",
        "errorMessage": "",
        "data": None,
    }
    finish = await client.wait_until(lambda: client.finish("req-1"))
    assert finish["reason"] == "success" and finish["statusCode"] == 200
    assert finish["fullAnswer"] == deltas_text(client, "req-1")
    assert len(finish["fullAnswer"]) == 120 and "你好，模拟器 hello" in finish["fullAnswer"]
    answers = client.events("req-1", "chat/answer")
    assert any(a["text"] == "" for a in answers)
    assert {
        "requestId",
        "sessionId",
        "text",
        "overwrite",
        "isFiltered",
        "timestamp",
        "extra",
    } <= set(answers[0])
    assert client.events("req-1", "chat/process_step_callback")
    assert finish["sessionId"].startswith("sim-session-")


async def test_chat_ask_as_a_notification_still_streams(client: SimClient) -> None:
    await client.notify("chat/ask", ask_params("seed style", "req-n"))
    finish = await client.wait_until(lambda: client.finish("req-n"))
    assert "seed style" in finish["fullAnswer"]


async def test_an_empty_question_is_refused(client: SimClient) -> None:
    accepted = await client.ask("   ", "req-empty")
    assert accepted["success"] is False and accepted["errorCode"] == "INVALID_PARAM"
    assert "empty" in accepted["errorMessage"] and accepted["data"] is None


async def test_the_question_is_read_from_question_text_alone(client: SimClient) -> None:
    duplicates = {"text": "dup", "content": "dup", "message": "dup"}
    refused = await client.ask("", "req-dup", **duplicates)
    assert refused["success"] is False and "questionText" in refused["errorMessage"]
    params = ask_params("the real question", "req-q")
    params["chatContext"]["text"] = "a stale context text"
    assert (await client.result("chat/ask", params))["success"] is True
    finish = await client.wait_until(lambda: client.finish("req-q"))
    assert "the real question" in finish["fullAnswer"] and "stale" not in finish["fullAnswer"]


async def test_steps_are_done_before_the_answer_and_the_title_names_the_session(
    client: SimClient,
) -> None:
    finish = await client.chat("order please", "req-o")
    steps = client.events("req-o", "chat/process_step_callback")
    assert [(s["step"], s["status"]) for s in steps] == [
        ("step_start", "done"),
        ("step_end", "done"),
    ]
    methods = [m["method"] for m in client.messages]
    first_answer = methods.index("chat/answer")
    assert methods[:first_answer] == [
        "extension/register",
        "chat/process_step_callback",
        "chat/process_step_callback",
        "session/title/update",
    ]
    (title,) = client.titles(finish["sessionId"])
    assert title == {"sessionId": finish["sessionId"], "sessionTitle": "order please"}


async def test_model_and_thinking(client: SimClient) -> None:
    model = "dashscope_qwen_plus_20250428_thinking"
    finish = await client.chat("think first", "req-t", model=model)
    assert model in finish["fullAnswer"]
    steps = [e["step"] for e in client.events("req-t", "chat/think")]
    assert steps[0] == "start" and steps[-1] == "done"


async def test_frames_are_split_and_merged_across_text_and_binary_messages(
    tmp_path: Path,
) -> None:
    env = {"LINGMA_SIM_ANSWER_SIZE": "2000", "LINGMA_SIM_CHUNK": "7"}
    async with serving_sim(tmp_path, env=env) as sim:
        async with SimClient.connect(sim.port) as client:
            finish = await client.chat("split me 拆分", "req-s")
    assert finish["fullAnswer"] == deltas_text(client, "req-s")
    assert {kind for kind, *_ in client.wire} == {"text", "binary"}
    assert any(frames >= 2 for _, _, frames, _, _ in client.wire), "no message merged frames"
    assert any(left > 0 for _, _, _, left, _ in client.wire), "no frame split across messages"
    assert any(not utf8 for *_, utf8 in client.wire), "no cut inside a multi-byte character"
    assert client.frame_errors == []


async def test_without_splitting_each_frame_is_one_text_message(tmp_path: Path) -> None:
    async with serving_sim(tmp_path, env={**SMALL, "LINGMA_SIM_SPLIT": "0"}) as sim:
        async with SimClient.connect(sim.port) as client:
            await client.chat("whole frames", "req-w")
            assert all(kind == "text" and utf8 for kind, *_, utf8 in client.wire)
            # one reply (chat/ask) plus one message per event
            assert len(client.wire) == len(client.messages) + 1


async def test_every_server_message_is_a_request_with_a_unique_id(client: SimClient) -> None:
    await client.chat("ids", "req-i", mode="agent")
    ids = [m.get("id") for m in client.messages]
    assert None not in ids and len(set(ids)) == len(ids)
    assert {m["method"] for m in client.messages} >= {
        "chat/answer",
        "chat/finish",
        "chat/process_step_callback",
        "tool/call/sync",
        "tool/invoke",
        "session/title/update",
    }


async def test_a_client_that_withholds_replies_stalls_the_stream(tmp_path: Path) -> None:
    env = {"LINGMA_SIM_DELTAS": "200", "LINGMA_SIM_WINDOW": "16"}
    async with serving_sim(tmp_path, env=env) as sim:
        async with SimClient.connect(sim.port, auto_reply=False) as client:

            def replies_logged() -> int:
                return sum(1 for e in sim.logged() if e["kind"] == "reply")

            await client.ask("stall", "req-stall")
            await client.wait_until(lambda: len(client.messages) >= 16)
            await sim.wait_logged(lambda e: e.get("event") == "stall")
            await asyncio.sleep(0.2)  # absence of traffic cannot be awaited
            assert len(client.messages) == 16
            # The window reopens only once half of it is free: 7 replies are not enough.
            for msg in client.messages[:7]:
                await client.reply(msg["id"])
            await wait_until(lambda: replies_logged() == 7, what="7 replies logged")
            await asyncio.sleep(0.1)
            assert len(client.messages) == 16
            await client.reply(client.messages[7]["id"])
            await client.wait_until(lambda: len(client.messages) == 24)
            unanswered = client.messages[8:]
            client.auto_reply = True
            for msg in unanswered:
                await client.reply(msg["id"])
            finish = await client.wait_until(lambda: client.finish("req-stall"))
            assert finish["reason"] == "success"
            await sim.wait_logged(lambda e: e["kind"] == "reply" and e["method"] == "chat/finish")
    assert replies_logged() >= 200
    first = next(e for e in sim.logged() if e["kind"] == "reply")
    assert first["method"] == "chat/process_step_callback"


async def test_agent_mode_tool_events_and_tool_invoke_reply(
    sim: ServedSim, client: SimClient
) -> None:
    finish = await client.chat("read the readme", "req-a", mode="agent", workspace="/tmp/project")
    tool_id = "sim-tool-req-a-1"
    assert f"```toolCall::read_file::{tool_id}::INIT" in finish["fullAnswer"]
    syncs = client.events("req-a", "tool/call/sync")
    assert [s["toolCallStatus"] for s in syncs] == [
        "INIT",
        "RUNNING",
        "ERROR",
        "REQUEST_FINISHED",
    ]
    assert any("requestId" not in s for s in syncs)
    assert all(s["toolCallId"] == tool_id for s in syncs)
    assert {"name", "toolName"} <= {k for s in syncs for k in s}
    assert {"parameters", "input"} <= {k for s in syncs for k in s}
    (invoke,) = client.events("req-a", "tool/invoke")
    assert (
        invoke["parameters"] == {"file_path": "/tmp/project/README.md"} and invoke["async"] is False
    )
    assert "read_file README.md: failed: tool not supported" in finish["fullAnswer"]
    recorded = await sim.wait_logged(lambda e: e.get("event") == "tool_invoke_reply")
    assert recorded["outcome"]["success"] is False


async def test_async_tool_invoke_takes_its_outcome_from_tool_invoke_result(
    tmp_path: Path,
) -> None:
    async with serving_sim(tmp_path, env={**SMALL, "LINGMA_SIM_TOOL_ASYNC": "1"}) as sim:
        async with SimClient.connect(sim.port) as client:
            finish = await client.chat("read async", "req-a", mode="agent")
            (invoke,) = client.events("req-a", "tool/invoke")
            assert invoke["async"] is True
            assert "tool not supported" in finish["fullAnswer"]
        recorded = await sim.wait_logged(lambda e: e.get("event") == "tool_invoke_reply")
        assert recorded["outcome"]["toolCallId"] == invoke["toolCallId"]


async def test_developer_session_type_is_agent_mode(client: SimClient) -> None:
    finish = await client.chat("dev", "req-d", sessionType="developer")
    assert "toolCall::read_file::" in finish["fullAnswer"]


async def test_chat_stop_ends_the_stream_with_cancelled(tmp_path: Path) -> None:
    env = {"LINGMA_SIM_DELTAS": "1000", "LINGMA_SIM_DELTA_DELAY": "0.01"}
    async with serving_sim(tmp_path, env=env) as sim:
        async with SimClient.connect(sim.port) as client:
            await client.ask("long", "req-long")
            await client.wait_until(lambda: client.events("req-long", "chat/answer"))
            finish_seen = client.events("req-long", "chat/finish")
            assert not finish_seen
            stopped = await client.result("chat/stop", {"requestId": "req-long", "sessionId": ""})
            assert stopped["success"] is True
            finish = await client.wait_until(lambda: client.finish("req-long"), timeout=2)
            assert finish["reason"] == "cancelled"
            count = len(client.events("req-long", "chat/answer"))
            assert count < 1000
            last = client.messages.index(
                next(m for m in client.messages if m["method"] == "chat/finish")
            )
            assert all(m["method"] != "chat/answer" for m in client.messages[last:])


async def test_stop_session_cancels_its_chats(tmp_path: Path) -> None:
    env = {"LINGMA_SIM_DELTAS": "1000", "LINGMA_SIM_DELTA_DELAY": "0.01"}
    async with serving_sim(tmp_path, env=env) as sim:
        async with SimClient.connect(sim.port) as client:
            await client.ask("long", "req-long")
            first = await client.wait_until(lambda: client.events("req-long", "chat/answer"))
            await client.result("chat/stopSession", {"sessionId": first[0]["sessionId"]})
            finish = await client.wait_until(lambda: client.finish("req-long"), timeout=2)
            assert finish["reason"] == "cancelled"


async def test_concurrent_chats_interleave_and_stay_apart(client: SimClient) -> None:
    questions = {f"req-c{i}": f"question number {i}" for i in range(4)}
    await asyncio.gather(*(client.ask(q, r) for r, q in questions.items()))
    for request_id, question in questions.items():
        finish = await client.wait_until(lambda r=request_id: client.finish(r))
        assert question in finish["fullAnswer"] and finish["fullAnswer"] == deltas_text(
            client, request_id
        )
    order = [m["params"]["requestId"] for m in client.messages if m["method"] == "chat/answer"]
    switches = sum(1 for a, b in itertools.pairwise(order) if a != b)
    assert switches > len(questions)


async def test_two_clients_at_once(sim: ServedSim) -> None:
    port = sim.port
    async with SimClient.connect(port) as first, SimClient.connect(port) as second:
        one, two = await asyncio.gather(
            first.chat("from one", "r-1"), second.chat("from two", "r-2")
        )
        assert "from one" in one["fullAnswer"] and "from two" in two["fullAnswer"]
        assert not second.events("r-1") and not first.events("r-2")


async def test_conversations_continue_list_and_delete(client: SimClient) -> None:
    first = await client.chat("first turn", "req-1", session_id="hint-from-client")
    session_id = first["sessionId"]
    assert session_id != "hint-from-client" and "turn 1" in first["fullAnswer"]
    assert [t["sessionTitle"] for t in client.titles(session_id)] == ["first turn"]
    second = await client.chat("second turn", "req-2", session_id=session_id, is_reply=True)
    assert second["sessionId"] == session_id and "turn 2" in second["fullAnswer"]
    assert len(client.titles(session_id)) == 1  # a continued conversation keeps its title
    unrelated = await client.chat("not a reply", "req-3", session_id=session_id)
    assert unrelated["sessionId"] != session_id

    sessions = await client.result("chat/listAllSessions", {"projectUri": "file:///tmp/project"})
    assert {s["sessionId"] for s in sessions} == {session_id, unrelated["sessionId"]}
    session = await client.result("chat/getSessionById", {"sessionId": session_id})
    records: list[dict[str, Any]] = session["chatRecords"]
    assert [r["question"] for r in records] == ["first turn", "second turn"]
    assert records[1]["answer"] == second["fullAnswer"] and session["sessionTitle"] == "first turn"
    assert (await client.result("chat/deleteSessionById", {"sessionId": session_id}))["success"]
    assert await client.result("chat/getSessionById", {"sessionId": session_id}) is None
    await client.result("chat/clearAllSessions")
    assert await client.result("chat/listAllSessions", {"projectUri": ""}) == []


async def test_conversations_outlive_a_restart(tmp_path: Path) -> None:
    async with serving_sim(tmp_path, env=SMALL) as sim:
        async with SimClient.connect(sim.port) as client:
            session_id = (await client.chat("remember me", "req-1"))["sessionId"]
    async with serving_sim(tmp_path, env=SMALL) as sim:
        async with SimClient.connect(sim.port) as client:
            session = await client.result("chat/getSessionById", {"sessionId": session_id})
            assert session["chatRecords"][0]["question"] == "remember me"
            again = await client.chat("and again", "req-2", session_id=session_id, is_reply=True)
            assert again["sessionId"] == session_id and "turn 2" in again["fullAnswer"]


async def test_message_log_records_what_the_client_sent(sim: ServedSim, client: SimClient) -> None:
    await client.chat("logged", "req-l")
    await sim.wait_logged(lambda e: e["kind"] == "reply" and e["method"] == "chat/finish")
    methods = [e["message"]["method"] for e in sim.logged() if e["kind"] == "request"]
    assert methods[:2] == ["initialize", "chat/ask"]


async def test_stdout_carries_noise_and_stderr_carries_logs(tmp_path: Path) -> None:
    async with running_sim(tmp_path, env=SMALL) as sim:
        async with SimClient.connect(await sim.wait_port()) as client:
            await client.result("initialize", WORKSPACE)
            await client.chat("noisy", "req-x")
        assert "websocket server started" in sim.stdout()
        assert "listening on ws://127.0.0.1:" in sim.stderr()

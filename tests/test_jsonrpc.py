"""The JSON-RPC connection: requests, replies to Lingma's requests, and disconnects."""

from __future__ import annotations

import asyncio

import pytest
from fakes import FakeSocket

from lingma_mcp.errors import LingmaConnectionLost, ProtocolError, RpcError, RpcTimeout
from lingma_mcp.lingma.framing import encode_frame
from lingma_mcp.lingma.jsonrpc import INTERNAL_ERROR, METHOD_NOT_FOUND, RpcConnection


@pytest.fixture
async def wired():
    sock = FakeSocket()
    conn = RpcConnection(sock)
    conn.start()
    yield sock, conn
    await conn.close()


async def test_request_returns_the_result_matched_by_id(wired):
    sock, conn = wired
    first = asyncio.create_task(conn.request("a", {"x": 1}, timeout=2))
    second = asyncio.create_task(conn.request("b", timeout=2))
    sent_a, sent_b = await sock.next_sent(), await sock.next_sent()
    assert sent_a["method"] == "a" and sent_a["params"] == {"x": 1}
    # Answers arrive out of order and merged into one message.
    sock.deliver(
        encode_frame({"jsonrpc": "2.0", "id": sent_b["id"], "result": "B"})
        + encode_frame({"jsonrpc": "2.0", "id": sent_a["id"], "result": {"ok": True}})
    )
    assert await first == {"ok": True}
    assert await second == "B"


async def test_error_reply_raises_rpc_error_with_code_message_and_data(wired):
    sock, conn = wired
    call = asyncio.create_task(conn.request("config/queryModels", timeout=2))
    sent = await sock.next_sent()
    sock.deliver_message(
        {"jsonrpc": "2.0", "id": sent["id"], "error": {"code": -32000, "message": "no", "data": 7}}
    )
    with pytest.raises(RpcError) as info:
        await call
    assert (info.value.code, info.value.message, info.value.data) == (-32000, "no", 7)
    assert "config/queryModels" in str(info.value)


async def test_timeout_names_the_method_and_a_late_reply_is_ignored(wired):
    sock, conn = wired
    with pytest.raises(RpcTimeout, match="auth/status"):
        await conn.request("auth/status", timeout=0.05)
    sent = await sock.next_sent()
    sock.deliver_message({"jsonrpc": "2.0", "id": sent["id"], "result": "late"})
    # The connection is still fine afterwards.
    call = asyncio.create_task(conn.request("again", timeout=2))
    sent = await sock.next_sent()
    sock.deliver_message({"jsonrpc": "2.0", "id": sent["id"], "result": 1})
    assert await call == 1


async def test_requests_that_time_out_leave_nothing_pending(wired):
    _, conn = wired
    for _ in range(20):
        with pytest.raises(RpcTimeout):
            await conn.request("never/answered", timeout=0.001)
    assert conn.pending_requests == 0


async def test_every_lingma_request_gets_a_reply_before_listeners_see_it(wired):
    sock, conn = wired
    order = []
    conn.add_listener(lambda method, params: order.append(("event", method, sock.sent.qsize())))
    conn.set_request_handler("tool/invoke", lambda params: {"success": False})
    for i, method in enumerate(
        ["chat/answer", "chat/finish", "tool/call/sync", "chat/think", "tool/invoke", "x/unknown"]
    ):
        sock.deliver_message({"jsonrpc": "2.0", "id": 100 + i, "method": method, "params": {}})
    replies = [await sock.next_sent() for _ in range(6)]
    assert [r["id"] for r in replies] == [100, 101, 102, 103, 104, 105]
    assert [r.get("result") for r in replies[:4]] == [None, None, None, None]
    assert all("error" not in r and "result" in r for r in replies[:4])
    assert replies[4]["result"] == {"success": False}
    assert replies[5]["error"]["code"] == METHOD_NOT_FOUND
    assert "x/unknown" in replies[5]["error"]["message"]
    assert [m for _, m, _ in order] == [
        "chat/answer",
        "chat/finish",
        "tool/call/sync",
        "chat/think",
        "tool/invoke",
        "x/unknown",
    ]


async def test_what_came_before_a_handled_request_is_delivered_before_its_handler_runs(wired):
    sock, conn = wired
    heard: list[str] = []
    seen_by_handler: list[list[str]] = []
    conn.add_listener(lambda method, params: heard.append(method))

    def invoke(params):
        seen_by_handler.append(list(heard))
        return {"success": True}

    conn.set_request_handler("tool/invoke", invoke)
    # One WebSocket message: a delta, the tool call, another delta.
    sock.deliver(
        b"".join(
            encode_frame({"jsonrpc": "2.0", "id": i, "method": method, "params": {}})
            for i, method in enumerate(["chat/answer", "tool/invoke", "chat/answer"], 1)
        )
    )
    replies = [await sock.next_sent() for _ in range(3)]
    assert [r["id"] for r in replies] == [1, 2, 3]
    assert seen_by_handler == [["chat/answer"]]
    assert heard == ["chat/answer", "tool/invoke", "chat/answer"]


async def test_reply_precedes_event_processing(wired):
    sock, conn = wired
    replied_first = []
    conn.add_listener(lambda method, params: replied_first.append(not sock.sent.empty()))
    sock.deliver_message({"jsonrpc": "2.0", "id": 1, "method": "chat/answer", "params": {}})
    await sock.next_sent()
    await asyncio.sleep(0)
    assert replied_first == [True]


async def test_async_handler_does_not_block_later_messages(wired):
    sock, conn = wired
    gate = asyncio.Event()

    async def slow(params):
        await gate.wait()
        return "slow-done"

    conn.set_request_handler("slow/ask", slow)
    sock.deliver_message({"jsonrpc": "2.0", "id": 1, "method": "slow/ask", "params": {}})
    sock.deliver_message({"jsonrpc": "2.0", "id": 2, "method": "chat/answer", "params": {}})
    assert (await sock.next_sent())["id"] == 2
    gate.set()
    assert await sock.next_sent() == {"jsonrpc": "2.0", "id": 1, "result": "slow-done"}


async def test_a_disconnect_fails_every_pending_request_at_once(wired):
    sock, conn = wired
    calls = [asyncio.create_task(conn.request(f"m{i}", timeout=60)) for i in range(5)]
    for _ in calls:
        await sock.next_sent()
    lost = []
    conn.add_close_listener(lost.append)
    sock.drop()
    results = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 1)
    assert all(isinstance(r, LingmaConnectionLost) for r in results)
    assert len(lost) == 1 and conn.closed
    with pytest.raises(LingmaConnectionLost):
        await conn.request("after", timeout=1)
    with pytest.raises(LingmaConnectionLost):
        await conn.notify("after")


async def test_malformed_frames_are_skipped_and_the_connection_lives(wired):
    sock, conn = wired
    call = asyncio.create_task(conn.request("m", timeout=2))
    sent = await sock.next_sent()
    sock.deliver(b'{"no":"header"}Content-Length: x\r\n\r\n')
    sock.deliver(b"Content-Length: 3\r\n\r\n{{{")
    sock.deliver_message({"jsonrpc": "2.0", "id": sent["id"], "result": "fine"})
    assert await call == "fine"


async def test_notifications_reach_listeners_without_a_reply(wired):
    sock, conn = wired
    seen = asyncio.Queue()
    conn.add_listener(lambda method, params: seen.put_nowait((method, params)))
    sock.deliver_message({"jsonrpc": "2.0", "method": "session/title/update", "params": {"t": 1}})
    assert await asyncio.wait_for(seen.get(), 1) == ("session/title/update", {"t": 1})
    assert sock.sent.empty()


async def answered(sock, conn, method):
    """Start a request, read it off the socket, return (task, sent message)."""
    call = asyncio.create_task(conn.request(method, timeout=60))
    return call, await sock.next_sent()


@pytest.mark.parametrize(
    "reply",
    [
        {"error": {"code": "E_BAD", "message": "a string code"}},
        {"error": "not an object"},
        {},
    ],
)
async def test_a_malformed_reply_fails_only_its_caller_at_once(wired, reply):
    sock, conn = wired
    bad, sent_bad = await answered(sock, conn, "chat/stop")
    good, sent_good = await answered(sock, conn, "auth/status")
    sock.deliver_message({"jsonrpc": "2.0", "id": sent_bad["id"], **reply})
    # Not its 60 s timeout: at once.
    with pytest.raises(ProtocolError, match="chat/stop"):
        await asyncio.wait_for(bad, 1)
    # The connection and the other caller are untouched.
    assert not conn.closed
    sock.deliver_message({"jsonrpc": "2.0", "id": sent_good["id"], "result": "fine"})
    assert await good == "fine"


async def test_a_reply_with_an_unhashable_id_is_skipped_and_the_connection_lives(wired):
    sock, conn = wired
    call, sent = await answered(sock, conn, "m")
    sock.deliver_message({"jsonrpc": "2.0", "id": [sent["id"]], "result": "odd"})
    sock.deliver_message({"jsonrpc": "2.0", "id": {"x": 1}, "result": "odd"})
    sock.deliver_message({"jsonrpc": "2.0", "id": sent["id"], "result": "fine"})
    assert await call == "fine"
    assert not conn.closed


async def test_an_error_envelope_with_a_null_result_is_an_error(wired):
    sock, conn = wired
    call, sent = await answered(sock, conn, "chat/sendMessage")
    # Lingma's own bytes, Go key order (PROTOCOL.md section 9).
    body = (
        b'{"jsonrpc":"2.0","result":null,"error":{"code":-32601,'
        b'"message":"method not found: chat/sendMessage"},"id":%d}' % sent["id"]
    )
    sock.deliver(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    with pytest.raises(RpcError) as info:
        await call
    assert info.value.code == -32601


async def test_extension_register_from_lingma_is_answered_null(wired):
    sock, _ = wired
    sock.deliver_message(
        {"jsonrpc": "2.0", "id": 4, "method": "extension/register", "params": {"x": 1}}
    )
    assert await sock.next_sent() == {"jsonrpc": "2.0", "id": 4, "result": None}


async def test_a_failing_handler_is_logged_whole_and_answered_internal_error(wired, caplog):
    sock, conn = wired

    def broken(params):
        raise KeyError("the bug")

    async def broken_later(params):
        raise ValueError("the later bug")

    conn.set_request_handler("now", broken)
    conn.set_request_handler("later", broken_later)
    sock.deliver_message({"jsonrpc": "2.0", "id": 1, "method": "now", "params": {}})
    sock.deliver_message({"jsonrpc": "2.0", "id": 2, "method": "later", "params": {}})
    replies = {r["id"]: r for r in [await sock.next_sent(), await sock.next_sent()]}
    assert replies[1]["error"]["code"] == INTERNAL_ERROR
    assert replies[2]["error"]["code"] == INTERNAL_ERROR
    assert not conn.closed
    tracebacks = [r.exc_info for r in caplog.records if r.exc_info]
    assert {type(exc) for _, exc, _ in tracebacks} >= {KeyError, ValueError}


async def test_a_failing_listener_does_not_end_the_connection(wired):
    sock, conn = wired

    def broken(method, params):
        raise RuntimeError("listener bug")

    conn.add_listener(broken)
    sock.deliver_message({"jsonrpc": "2.0", "method": "chat/answer", "params": {}})
    call, sent = await answered(sock, conn, "m")
    sock.deliver_message({"jsonrpc": "2.0", "id": sent["id"], "result": 1})
    assert await call == 1


async def test_an_impossible_content_length_drops_the_connection(wired):
    sock, conn = wired
    call, _ = await answered(sock, conn, "m")
    seen = []
    conn.add_listener(lambda method, params: seen.append(method))
    lost = []
    conn.add_close_listener(lost.append)
    # A good frame, then a header no body can match: everything after it would be lost.
    sock.deliver(
        encode_frame({"jsonrpc": "2.0", "method": "chat/answer", "params": {}})
        + b"Content-Length: 99999999999999999999\r\n\r\n{}"
    )
    with pytest.raises(LingmaConnectionLost, match="unreadable frame"):
        await asyncio.wait_for(call, 1)
    assert await asyncio.wait_for(conn.wait_closed(), 1) is lost[0]
    assert seen == ["chat/answer"]
    assert sock.closed


async def test_close_cancels_a_handler_still_running(wired):
    sock, conn = wired
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def slow(params):
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()

    conn.set_request_handler("slow", slow)
    sock.deliver_message({"jsonrpc": "2.0", "id": 1, "method": "slow", "params": {}})
    await asyncio.wait_for(started.wait(), 1)
    await conn.close()
    assert cancelled.is_set()


def test_a_started_lingmas_socket_still_writes_a_burst_of_replies_at_once() -> None:
    # The socket of a Lingma we started is wrapped (its end waits for the child's exit);
    # the wrapper must not hide what the one-write reply burst needs, which once cost a
    # fifth of the throughput.
    from types import SimpleNamespace

    from lingma_mcp.lingma.jsonrpc import _many_writer
    from lingma_mcp.lingma.startup import _EndsWithChild

    class Socket:
        protocol = SimpleNamespace(send_text=lambda data: None)

        def send_context(self) -> object:
            return None

    assert _many_writer(Socket()) is not None
    assert _many_writer(_EndsWithChild(Socket(), process=None)) is not None  # type: ignore[arg-type]

"""JSON-RPC bookkeeping without I/O: classification, pending requests, what to answer.

No event loop here: messages go in as decoded JSON, events come out.
"""

from __future__ import annotations

import pytest

from lingma_mcp.lingma.rpc import (
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    ErrorResponse,
    Malformed,
    Notification,
    Request,
    Response,
    RpcProtocol,
    Unmatched,
    unhandled_answer,
)


def started(method: str = "m", params: object = None) -> tuple[RpcProtocol[str], int]:
    rpc: RpcProtocol[str] = RpcProtocol()
    msg_id, _ = rpc.start_request(method, params, f"waiter-{method}")
    return rpc, msg_id


def test_requests_get_increasing_ids_and_params_default_to_an_empty_object():
    rpc: RpcProtocol[str] = RpcProtocol()
    first, message = rpc.start_request("config/queryModels", None, "w1")
    second, _ = rpc.start_request("b", {"x": 1}, "w2")
    assert second > first
    # Lingma's Go side rejects anything but an object here (PROTOCOL.md section 9).
    assert message == {"jsonrpc": "2.0", "id": first, "method": "config/queryModels", "params": {}}
    assert rpc.pending == 2


def test_a_result_resolves_its_waiter_and_leaves_nothing_pending():
    rpc, msg_id = started("auth/status")
    event = rpc.receive({"jsonrpc": "2.0", "id": msg_id, "result": {"status": 2}})
    assert event == Response(msg_id, "auth/status", "waiter-auth/status", {"status": 2})
    assert rpc.pending == 0
    # The same reply again answers nothing.
    assert rpc.receive({"jsonrpc": "2.0", "id": msg_id, "result": 1}) == Unmatched(msg_id)


def test_an_error_beside_a_null_result_is_an_error():
    # Lingma's Go envelope, key order and all (PROTOCOL.md section 9).
    rpc, msg_id = started("chat/sendMessage")
    event = rpc.receive(
        {
            "jsonrpc": "2.0",
            "result": None,
            "error": {"code": -32601, "message": "method not found: chat/sendMessage"},
            "id": msg_id,
        }
    )
    assert isinstance(event, ErrorResponse) and event.waiter == "waiter-chat/sendMessage"
    assert (event.error.code, event.error.message) == (-32601, "method not found: chat/sendMessage")


@pytest.mark.parametrize(
    "error",
    [
        {"code": "E42", "message": "a string code"},
        {"code": 1.5, "message": "a float code"},
        {"code": True, "message": "a bool code"},
        {"message": "no code at all"},
        "just a string",
        [1, 2],
    ],
)
def test_a_malformed_error_fails_its_waiter_instead_of_raising(error):
    rpc, msg_id = started("chat/stop")
    event = rpc.receive({"jsonrpc": "2.0", "id": msg_id, "error": error})
    assert isinstance(event, Malformed)
    assert event.waiter == "waiter-chat/stop" and event.method == "chat/stop"
    assert rpc.pending == 0


def test_a_reply_with_neither_result_nor_error_fails_its_waiter():
    rpc, msg_id = started("x")
    event = rpc.receive({"jsonrpc": "2.0", "id": msg_id})
    assert isinstance(event, Malformed) and event.waiter == "waiter-x"


@pytest.mark.parametrize("bad_id", [[1], {"a": 1}, "1", 1.0, True, None])
def test_a_reply_whose_id_is_not_ours_matches_nothing_and_never_raises(bad_id):
    rpc, _ = started()
    assert rpc.receive({"jsonrpc": "2.0", "id": bad_id, "result": 1}) == Unmatched(bad_id)
    assert rpc.pending == 1


def test_classification_is_by_method_never_by_id():
    rpc, msg_id = started()
    # A request of Lingma's whose id happens to equal one of ours is still a request.
    event = rpc.receive({"jsonrpc": "2.0", "id": msg_id, "method": "chat/answer", "params": {}})
    assert event == Request(msg_id, "chat/answer", {})
    assert rpc.pending == 1
    assert rpc.receive({"jsonrpc": "2.0", "method": "session/title/update"}) == Notification(
        "session/title/update", {}
    )


@pytest.mark.parametrize(
    "message",
    [
        {"jsonrpc": "2.0", "id": 3, "method": 7},
        {"jsonrpc": "2.0", "id": [3], "method": "chat/answer"},
        {"jsonrpc": "2.0", "id": {"x": 1}, "method": "chat/answer"},
    ],
)
def test_a_request_that_cannot_be_trusted_is_answered_invalid_request_with_a_null_id(message):
    rpc: RpcProtocol[str] = RpcProtocol()
    event = rpc.receive(message)
    assert isinstance(event, Malformed) and event.answer is not None
    assert event.answer["id"] is None and event.answer["error"]["code"] == INVALID_REQUEST


@pytest.mark.parametrize("message", [[1, 2], "text", 3, None, {"jsonrpc": "2.0"}])
def test_messages_that_are_not_json_rpc_are_malformed(message):
    event = RpcProtocol().receive(message)
    assert isinstance(event, Malformed) and event.waiter is None and event.answer is None


def test_params_that_are_not_an_object_are_kept_under_value():
    event = RpcProtocol().receive({"jsonrpc": "2.0", "method": "m", "params": [1, 2]})
    assert event == Notification("m", {"value": [1, 2]})


def test_forget_and_fail_all_drop_entries():
    rpc: RpcProtocol[str] = RpcProtocol()
    first, _ = rpc.start_request("a", None, "w1")
    rpc.start_request("b", None, "w2")
    rpc.forget(first)
    rpc.forget(first)  # twice is harmless
    assert rpc.receive({"jsonrpc": "2.0", "id": first, "result": 1}) == Unmatched(first)
    assert rpc.fail_all() == ["w2"]
    assert rpc.pending == 0


@pytest.mark.parametrize("method", ["chat/answer", "extension/register", "session/title/update"])
def test_event_methods_nobody_handles_are_answered_null(method):
    assert unhandled_answer(Request(9, method, {})) == {"jsonrpc": "2.0", "id": 9, "result": None}


def test_other_methods_nobody_handles_are_answered_method_not_found():
    answer = unhandled_answer(Request("a", "x/unknown", {}))
    assert answer["id"] == "a" and answer["error"]["code"] == METHOD_NOT_FOUND
    assert "x/unknown" in answer["error"]["message"]

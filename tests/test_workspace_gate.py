"""The approval setting and the gate: the person decides, a call narrows, never widens."""

from __future__ import annotations

import asyncio

import pytest
from fakes import FakeAsker

from lingma_mcp.workspace import (
    ApprovalDenied,
    ApprovalGate,
    ApprovalRequest,
    Policy,
    classify_tool,
    parse_policy,
)


def test_default_policy_reads_and_asks_for_the_rest() -> None:
    assert parse_policy(None) == Policy("allow", "ask", "ask", "ask")
    assert parse_policy("").as_text() == "read=allow,write=ask,delete=ask,run=ask"


def test_setting_overrides_only_the_named_classes() -> None:
    assert parse_policy("write=allow,run=deny") == Policy("allow", "allow", "ask", "deny")
    assert parse_policy(" Delete = DENY , ").delete == "deny"


@pytest.mark.parametrize(
    "text", ["write", "write=maybe", "exec=allow", "write=allow,write=deny", "write:allow"]
)
def test_malformed_setting_is_refused_showing_the_syntax(text: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_policy(text)
    message = str(info.value)
    assert "write=allow,run=deny" in message and "allow, ask, deny" in message


@pytest.mark.parametrize(
    ("name", "action"),
    [
        ("run_in_terminal", "run"),
        ("execute_shell", "run"),
        ("edit_file", "write"),
        ("create_file", "write"),
        ("search_replace", "write"),
        ("write_to_file", "write"),
        ("delete_file", "delete"),
        ("read_file", "read"),
        ("search_codebase", "read"),
        ("list_dir", "read"),
        ("grep_code", "read"),
        ("mystery_tool", "write"),
    ],
)
def test_lingma_tool_names_are_classified(name: str, action: str) -> None:
    assert classify_tool(name) == action


def records(gate: ApprovalGate) -> list[dict[str, str]]:
    return [r.as_dict() for r in gate.records]


async def test_policy_allow_and_deny_need_no_person() -> None:
    notes: list[str] = []
    gate = ApprovalGate(parse_policy("write=allow,run=deny"), on_note=notes.append)
    await gate.require("write", "create_file_with_text", "a.txt")
    with pytest.raises(ApprovalDenied) as info:
        await gate.require("run", "run_in_terminal", "ls")
    assert "LINGMA_APPROVAL=run=ask" in str(info.value)
    assert records(gate) == [
        {"tool": "create_file_with_text", "target": "a.txt", "decision": "allowed", "by": "policy"},
        {"tool": "run_in_terminal", "target": "ls", "decision": "denied", "by": "policy"},
    ]
    assert len(notes) == 2 and "run_in_terminal" in notes[1]


async def test_approve_allows_this_action_only() -> None:
    asker = FakeAsker("approve", "deny")
    gate = ApprovalGate(parse_policy(None), asker=asker)
    await gate.require("write", "replace_text_by_path", "a.txt", preview="-old\n+new")
    assert not await gate.decide("write", "replace_text_by_path", "b.txt")
    request = asker.requests[0]
    assert (request.action, request.tool, request.target) == (
        "write",
        "replace_text_by_path",
        "a.txt",
    )
    assert "replace_text_by_path" in request.message and "+new" in request.message
    assert [r["by"] for r in records(gate)] == ["person", "person"]
    assert [r["decision"] for r in records(gate)] == ["allowed", "denied"]


async def test_approve_all_allows_the_class_for_the_rest_of_the_call() -> None:
    asker = FakeAsker("approve_all")
    gate = ApprovalGate(parse_policy(None), asker=asker)
    await gate.require("write", "create_file_with_text", "a.txt")
    await gate.require("write", "create_file_with_text", "b.txt")
    assert len(asker.requests) == 1
    asker.answers.append("deny")
    assert not await gate.decide("delete", "delete_file_by_path", "a.txt")  # another class
    assert len(asker.requests) == 2


@pytest.mark.parametrize("answer", ["deny", "yes", "", RuntimeError("elicitation failed")])
async def test_deny_garbage_or_a_failing_asker_is_a_deny(answer: object) -> None:
    gate = ApprovalGate(parse_policy(None), asker=FakeAsker(answer))
    with pytest.raises(ApprovalDenied) as info:
        await gate.require("delete", "delete_file_by_path", "a.txt")
    assert info.value.by == "person"
    assert records(gate)[-1]["decision"] == "denied"


async def test_cancelling_the_call_while_asking_is_a_deny_and_cancels() -> None:
    asked = asyncio.Event()

    async def forever(request: ApprovalRequest) -> str:
        asked.set()
        await asyncio.Event().wait()
        return "approve"

    gate = ApprovalGate(parse_policy(None), asker=forever)
    task = asyncio.ensure_future(gate.require("run", "run_in_terminal", "ls"))
    await asked.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert records(gate) == [
        {"tool": "run_in_terminal", "target": "ls", "decision": "denied", "by": "person"}
    ]


async def test_a_host_that_cannot_ask_denies_saying_how_to_allow() -> None:
    gate = ApprovalGate(parse_policy(None), asker=None)
    with pytest.raises(ApprovalDenied) as info:
        await gate.require("write", "create_file_with_text", "a.txt")
    assert "LINGMA_APPROVAL=write=allow" in str(info.value)
    assert records(gate)[0]["by"] == "host cannot ask"


async def test_read_only_denies_changes_whatever_the_policy() -> None:
    asker = FakeAsker()
    gate = ApprovalGate(
        parse_policy("write=allow,delete=allow,run=allow"), read_only=True, asker=asker
    )
    for action in ("write", "delete", "run"):
        with pytest.raises(ApprovalDenied, match="read-only"):
            await gate.require(action, "tool", "x")
    await gate.require("read", "read_file", "x")
    assert [r["by"] for r in records(gate)] == ["read_only"] * 3 + ["policy"]
    assert asker.requests == []


async def test_a_failing_note_sink_does_not_fail_the_action() -> None:
    def broken(text: str) -> None:
        raise RuntimeError("closed")

    gate = ApprovalGate(parse_policy("write=allow"), on_note=broken)
    await gate.require("write", "create_file_with_text", "a.txt")

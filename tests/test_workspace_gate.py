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
from lingma_mcp.workspace.gate import ApprovalDesk, AskFailed, NobodyToAsk, visible


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


@pytest.mark.parametrize("answer", ["deny", "yes", ""])
async def test_deny_or_garbage_from_the_person_is_a_deny(answer: object) -> None:
    gate = ApprovalGate(parse_policy(None), asker=FakeAsker(answer))
    with pytest.raises(ApprovalDenied) as info:
        await gate.require("delete", "delete_file_by_path", "a.txt")
    assert info.value.by == "person"
    assert records(gate)[-1]["decision"] == "denied"


@pytest.mark.parametrize("failure", [AskFailed("the form crashed"), RuntimeError("boom")])
async def test_a_failing_form_is_recorded_as_that_not_as_the_person(failure: Exception) -> None:
    gate = ApprovalGate(parse_policy(None), asker=FakeAsker(failure))
    with pytest.raises(ApprovalDenied) as info:
        await gate.require("delete", "delete_file_by_path", "a.txt")
    assert info.value.by == "host form failed"
    assert "nothing was changed" in str(info.value)
    assert records(gate)[-1] == {
        "tool": "delete_file_by_path",
        "target": "a.txt",
        "decision": "denied",
        "by": "host form failed",
    }


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
        {
            "tool": "run_in_terminal",
            "target": "ls",
            "decision": "denied",
            "by": "withdrawn (the call ended)",
        }
    ]


@pytest.mark.parametrize("asker", [None, FakeAsker(NobodyToAsk())])
async def test_nobody_to_ask_falls_back_to_a_denial_saying_how_to_allow(asker: object) -> None:
    gate = ApprovalGate(parse_policy(None), asker=asker)  # type: ignore[arg-type]
    with pytest.raises(ApprovalDenied) as info:
        await gate.require("write", "create_file_with_text", "a.txt")
    assert "LINGMA_APPROVAL=write=allow" in str(info.value)
    assert records(gate)[0]["by"] == "policy (nobody could be asked)"
    assert "the person" not in records(gate)[0]["by"]


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


# -- what the person is shown ------------------------------------------------------------


def test_control_characters_and_escapes_are_shown_not_interpreted() -> None:
    request = ApprovalRequest(
        "run", "run_in_terminal", "ls\x1b[2K\rrm -rf ~ \u202egnp.exe", "line\r\nnext\x07"
    )
    message = request.message
    assert "\x1b" not in message and "\r" not in message and "\x07" not in message
    assert "\u202e" not in message
    assert "ls\\x1b[2K\\x0drm -rf ~ \\u202egnp.exe" in message
    assert "line\\x0d\nnext\\x07" in message


def test_long_texts_are_cut_with_a_count_of_what_was_cut() -> None:
    shown = visible("x" * 1_000, 100)
    assert shown.startswith("x" * 100) and "900 more characters not shown" in shown


# -- fail closed, one question at a time, no question outlives its call ------------------


async def test_a_warned_action_is_asked_even_where_the_setting_allows_it() -> None:
    asker = FakeAsker("approve_all", "deny")
    gate = ApprovalGate(parse_policy("write=allow"), asker=asker)
    await gate.require("write", "edit_file", ".git/config", warning="inside a .git folder")
    assert "inside a .git folder" in asker.requests[0].message
    # approve_all does not cover warned questions: the next one is asked again.
    with pytest.raises(ApprovalDenied):
        await gate.require("write", "edit_file", ".git/hooks/x", warning="inside a .git folder")
    assert len(asker.requests) == 2


async def test_a_warned_action_is_denied_where_nobody_can_be_asked() -> None:
    gate = ApprovalGate(parse_policy("write=allow"), asker=None)
    with pytest.raises(ApprovalDenied) as info:
        await gate.require("write", "edit_file", "an unnamed file", warning="no file named")
    assert info.value.by == "policy (nobody could be asked)"
    assert "LINGMA_APPROVAL" not in str(info.value)  # no setting can allow it


async def test_one_question_at_a_time_across_the_calls_of_a_server() -> None:
    desk = ApprovalDesk()
    open_now = 0
    most = 0
    release = asyncio.Event()

    async def ask(request: ApprovalRequest) -> str:
        nonlocal open_now, most
        open_now += 1
        most = max(most, open_now)
        await release.wait()
        open_now -= 1
        return "approve"

    gates = [ApprovalGate(parse_policy(None), asker=ask, desk=desk) for _ in range(3)]
    tasks = [
        asyncio.ensure_future(g.require("write", "t", f"{i}.txt")) for i, g in enumerate(gates)
    ]
    for _ in range(5):
        await asyncio.sleep(0)
    release.set()
    await asyncio.gather(*tasks)
    assert most == 1
    assert [r.decision for g in gates for r in g.records] == ["allowed"] * 3


async def test_approve_all_settles_the_waiting_questions_of_its_call() -> None:
    answered = asyncio.Event()
    asked: list[str] = []

    async def ask(request: ApprovalRequest) -> str:
        asked.append(request.target)
        await answered.wait()
        return "approve_all"

    gate = ApprovalGate(parse_policy(None), asker=ask)
    tasks = [asyncio.ensure_future(gate.require("write", "t", f"{i}.txt")) for i in range(4)]
    for _ in range(5):
        await asyncio.sleep(0)
    answered.set()
    await asyncio.gather(*tasks)
    assert asked == ["0.txt"]
    assert [r.by for r in gate.records] == ["person"] * 4


async def test_closing_the_call_withdraws_the_open_question_and_what_waits() -> None:
    asked = asyncio.Event()
    cancelled = asyncio.Event()

    async def ask(request: ApprovalRequest) -> str:
        asked.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "approve"

    gate = ApprovalGate(parse_policy(None), asker=ask)
    first = asyncio.ensure_future(gate.require("write", "t", "a.txt"))
    second = asyncio.ensure_future(gate.require("run", "t", "ls"))
    await asked.wait()
    gate.close()
    for task in (first, second):
        with pytest.raises(ApprovalDenied) as info:
            await task
        assert info.value.by == "withdrawn (the call ended)"
    assert cancelled.is_set()  # the form itself was withdrawn
    with pytest.raises(ApprovalDenied):
        await gate.require("write", "t", "b.txt")  # and nothing is decided any more


async def test_an_answer_that_comes_after_the_call_ended_changes_nothing() -> None:
    gate = ApprovalGate(parse_policy(None))

    async def ask(request: ApprovalRequest) -> str:
        gate.close()  # the call ends while the person answers
        return "approve"

    gate._asker = ask
    with pytest.raises(ApprovalDenied) as info:
        await gate.require("write", "t", "a.txt")
    assert info.value.by == "withdrawn (the call ended)"

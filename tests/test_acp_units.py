"""The ACP client's pure parts: the stdio transport, update mapping, permission judging."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from acp.schema import (
    AgentMessageChunk,
    AgentPlanUpdate,
    AgentThoughtChunk,
    PermissionOption,
    PlanEntry,
    TextContentBlock,
    ToolCallLocation,
    ToolCallProgress,
    ToolCallStart,
    ToolCallUpdate,
)

from lingma_mcp.acp.permissions import choose_option, judge
from lingma_mcp.acp.transport import LineTransport
from lingma_mcp.acp.updates import UpdateMapper, finish_for
from lingma_mcp.events import Step, TextDelta, Thinking, ToolUpdate


class _NullWriter:
    def write(self, data: bytes) -> None:
        pass

    async def drain(self) -> None:
        pass

    def close(self) -> None:
        pass


async def _received(data: bytes) -> tuple[list[dict], LineTransport]:
    reader = asyncio.StreamReader(limit=64)
    reader.feed_data(data)
    reader.feed_eof()
    transport = LineTransport(reader, _NullWriter())  # type: ignore[arg-type]
    messages = []
    while (message := await transport.receive()) is not None:
        messages.append(message)
    return messages, transport


async def test_lines_that_are_not_acp_messages_are_skipped():
    data = (
        b"Shutting down...\n"
        b'{"jsonrpc":"2.0","id":0,"result":{}}\n'
        b"\n"
        b"42\n"
        b'{"no":"method or id"}\n'
        b'{"jsonrpc":"2.0","method":"session/update","params":{}}'  # no final newline
    )
    messages, transport = await _received(data)
    assert messages == [
        {"jsonrpc": "2.0", "id": 0, "result": {}},
        {"jsonrpc": "2.0", "method": "session/update", "params": {}},
    ]
    assert transport.skipped == 3 and transport.eof.done()


async def test_an_over_long_line_is_dropped_and_reading_goes_on():
    data = b'{"x": "' + b"a" * 500 + b'"}\n{"jsonrpc":"2.0","id":1,"result":null}\n'
    messages, _ = await _received(data)
    assert messages == [{"jsonrpc": "2.0", "id": 1, "result": None}]


def test_updates_become_the_shared_chat_events():
    mapper = UpdateMapper("s1")
    message = AgentMessageChunk(
        session_update="agent_message_chunk", content=TextContentBlock(type="text", text="Hi")
    )
    thought = AgentThoughtChunk(
        session_update="agent_thought_chunk", content=TextContentBlock(type="text", text="hmm")
    )
    assert mapper.map(message) == [TextDelta("Hi")]
    assert mapper.map(thought) == [Thinking("hmm")]
    start = ToolCallStart(
        session_update="tool_call",
        tool_call_id="c1",
        title="Write a.txt",
        kind="edit",
        status="pending",
        raw_input={"path": "a.txt"},
    )
    (first,) = mapper.map(start)
    assert isinstance(first, ToolUpdate)
    assert (first.tool.name, first.tool.status, first.tool.input) == (
        "Write a.txt",
        "pending",
        {"path": "a.txt"},
    )
    failed = ToolCallProgress(
        session_update="tool_call_update", tool_call_id="c1", status="failed", raw_output="no"
    )
    (second,) = mapper.map(failed)
    # A later update without a title or input keeps what the first one said.
    assert (second.tool.name, second.tool.status, second.tool.input) == (
        "Write a.txt",
        "failed",
        {"path": "a.txt"},
    )
    assert second.tool.error == "no"
    assert mapper.finish("end_turn").full_answer == "Hi"


def test_a_plan_yields_a_step_per_new_or_changed_entry():
    mapper = UpdateMapper("s1")

    def plan(*statuses):
        return AgentPlanUpdate(
            session_update="plan",
            entries=[
                PlanEntry(content=f"step {i}", priority="medium", status=s)
                for i, s in enumerate(statuses)
            ],
        )

    assert mapper.map(plan("in_progress", "pending")) == [
        Step("step 0", status="doing"),
        Step("step 1", status=""),
    ]
    assert mapper.map(plan("completed", "pending")) == [Step("step 0", status="done")]


def test_stop_reasons_map_to_finish_reasons():
    def seen(stop_reason: str) -> tuple[str, int | None]:
        finish = finish_for(stop_reason, "s", "")
        return finish.reason, finish.status_code

    assert seen("end_turn") == ("success", 200)
    assert seen("cancelled") == ("cancelled", 200)
    assert seen("max_tokens") == ("max_tokens", 200)  # an answer, cut short: not a failure
    refused = finish_for("refusal", "s", "")
    assert seen("refusal") == ("error", None) and refused.message


OPTIONS = [
    PermissionOption(option_id="proceed_always", name="Always", kind="allow_always"),
    PermissionOption(option_id="proceed_once", name="Once", kind="allow_once"),
    PermissionOption(option_id="cancel", name="No", kind="reject_once"),
]


def test_options_are_chosen_by_kind_never_allow_always():
    assert choose_option(OPTIONS, allow=True) == "proceed_once"
    assert choose_option(OPTIONS, allow=False) == "cancel"
    assert choose_option(OPTIONS[:1], allow=True) is None


def test_tool_calls_are_judged_into_actions_and_targets(tmp_path: Path):
    root = tmp_path.resolve()
    edit = ToolCallUpdate(
        tool_call_id="1",
        kind="edit",
        title="Write",
        locations=[ToolCallLocation(path=str(root / "a.txt"))],
        raw_input={"content": "body"},
    )
    seen = judge(edit)
    assert (seen.action, seen.targets, seen.preview, seen.content) == (
        "write",
        (str(root / "a.txt"),),
        "body",
        "body",
    )
    run = ToolCallUpdate(tool_call_id="2", kind="execute", raw_input={"command": "ls -la"})
    assert (judge(run).action, judge(run).target, judge(run).targets) == ("run", "ls -la", ())
    escape = ToolCallUpdate(tool_call_id="3", kind="delete", raw_input={"path": "../x"})
    assert judge(escape).targets == ("../x",)
    unknown = ToolCallUpdate(tool_call_id="4", kind="other", title="Mystery")
    assert (judge(unknown).action, judge(unknown).command) == ("run", None)


@pytest.mark.parametrize(
    ("kind", "raw", "expected"),
    [
        ("move", {"source": "a.txt", "destination": "/etc/cron.d/x"}, {"a.txt", "/etc/cron.d/x"}),
        ("delete", {"paths": ["a.txt", "../b.txt"]}, {"a.txt", "../b.txt"}),
        ("edit", {"edits": [{"file_path": "/tmp/o.txt", "new_string": "x/y"}]}, {"/tmp/o.txt"}),
        (
            "other",
            {"to": "~/.ssh/authorized_keys", "content": "ssh-rsa a/b"},
            {"~/.ssh/authorized_keys"},
        ),
        ("edit", {"dest": "file:///etc/passwd"}, {"/etc/passwd"}),
    ],
)
def test_every_path_in_the_raw_input_is_a_target(kind: str, raw: dict, expected: set) -> None:
    seen = judge(ToolCallUpdate(tool_call_id="1", kind=kind, raw_input=raw))
    assert set(seen.targets) == expected


def test_an_edit_is_shown_as_the_clis_own_diff_and_bound_to_its_new_text() -> None:
    from acp.schema import FileEditToolCallContent

    edit = ToolCallUpdate(
        tool_call_id="1",
        kind="edit",
        title="Edit",
        raw_input={"file_path": "/w/a.txt", "old_string": "a", "new_string": "b"},
        content=[
            FileEditToolCallContent(
                type="diff", path="/w/a.txt", old_text="a\nz\n", new_text="b\nz\n"
            )
        ],
    )
    seen = judge(edit)
    assert seen.content == "b\nz\n"
    assert seen.preview is not None
    assert "-a" in seen.preview.splitlines() and "+b" in seen.preview.splitlines()


def test_a_command_shows_its_arguments_folder_and_other_input() -> None:
    run = ToolCallUpdate(
        tool_call_id="1",
        kind="execute",
        raw_input={"argv": ["rm", "-rf", "build dir"], "cwd": "/w/sub", "env": {"A": "1"}},
    )
    seen = judge(run)
    assert seen.command == "rm -rf 'build dir'"
    assert seen.targets == ("/w/sub",)
    assert seen.preview is not None
    assert "folder: /w/sub" in seen.preview and '"A": "1"' in seen.preview


async def test_the_agents_stderr_is_logged_redacted(caplog):
    import logging

    from lingma_mcp.process.child import ChildProcess, stderr_log

    caplog.set_level(logging.DEBUG, logger=stderr_log.name)
    process = await ChildProcess.spawn(
        ["sh", "-c", 'echo "token=abc123 failed" >&2'], name="qoderclicn", pipes=True
    )
    await process.stderr_drained(30)
    assert await process.exited == 0
    assert process.stderr_tail() == ["token=*** failed"]
    assert "abc123" not in caplog.text and "token=*** failed" in caplog.text
    await process.terminate(0.1)

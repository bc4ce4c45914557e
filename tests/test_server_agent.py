"""Agent mode through the real MCP server, with a scripted Lingma that calls the IDE tools.

The server runs in-process (the SDK's ``Client(app)``, handshake mode so the host can be
asked) on a fake supervisor. The fake chat plays a script in which Lingma asks the chat's
tool handler to run tools, as the RPC core does for ``tool/invoke`` and PENDING tool
calls, and keeps each outcome (what Lingma would be told). Each test pins what a host and
Lingma see: approvals through elicitation, denials and how to allow them, the workspace
check, the result's changes and approvals, the diff resource, the revert, and commands
killed with the call.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from fakes import (
    DONE,
    EDITS,
    Confirm,
    Forever,
    Invoke,
    Person,
    Progress,
    ScriptedLingma,
    agent_app,
    text_of,
)
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp.types import ElicitResult, ListRootsResult, Root
from procs import sleeper, wait_until, with_marker

from lingma_mcp.asking.bridge import Bridge
from lingma_mcp.config import Settings

pytestmark = pytest.mark.timeout(30)


@asynccontextmanager
async def host(app: Any, **options: Any) -> AsyncIterator[Client]:
    async with Client(app, mode="legacy", **options) as client:
        yield client


def contents(folder: Path) -> dict[str, str | None]:
    """Every file and folder below ``folder`` with its text (None for a folder)."""
    return {
        str(p.relative_to(folder)): None if p.is_dir() else p.read_text()
        for p in sorted(folder.rglob("*"))
    }


# -- approvals -----------------------------------------------------------------------------


async def test_edits_happen_after_the_person_approves_and_are_listed(
    tmp_path: Path, project: Path
) -> None:
    app, fake = agent_app(tmp_path, project, EDITS)
    person = Person("approve", "approve", "approve")
    progress = Progress()
    async with host(app, elicitation_callback=person) as client:
        result = await client.call_tool(
            "ask_lingma", {"prompt": "edit"}, progress_callback=progress
        )
    assert not result.is_error, text_of(result)
    assert (project / "notes" / "new.txt").read_text() == "hello\n"
    assert (project / "keep.txt").read_text() == "one\n2\n"
    assert not (project / "old.txt").exists()
    assert all(o.success for o in fake.streams[0].outcomes)
    data = result.structured_content
    assert data["request_id"] == fake.streams[0].request.request_id
    # Every change, from the checkpoints, with what made it.
    assert sorted(data["changes"], key=lambda c: c["path"]) == [
        {
            "path": "keep.txt",
            "action": "modified",
            "lines_added": 1,
            "lines_removed": 1,
            "by": "replace_text_by_path",
        },
        {
            "path": "notes/new.txt",
            "action": "created",
            "lines_added": 1,
            "lines_removed": 0,
            "by": "create_file_with_text",
        },
        {
            "path": "old.txt",
            "action": "deleted",
            "lines_added": 0,
            "lines_removed": 1,
            "by": "delete_file_by_path",
        },
    ]
    assert [(a["tool"], a["target"], a["decision"], a["by"]) for a in data["approvals"]] == [
        ("create_file_with_text", "notes/new.txt", "allowed", "person"),
        ("replace_text_by_path", "keep.txt", "allowed", "person"),
        ("delete_file_by_path", "old.txt", "allowed", "person"),
    ]
    # The form names the tool and the path, shows a preview, and offers the three answers.
    first = person.asked[0]
    assert first.mode == "form"
    assert "create_file_with_text" in first.message and "notes/new.txt" in first.message
    assert "+hello" in first.message
    schema = first.requested_schema
    assert schema["required"] == ["decision"]
    assert schema["properties"]["decision"]["enum"] == ["approve", "approve_all", "deny"]
    # Each approval and each change is a status line.
    assert any("allowed create_file_with_text notes/new.txt" in m for m in progress.status)
    assert any("created notes/new.txt" in m for m in progress.status)
    assert any("deleted old.txt" in m for m in progress.status)


async def test_approve_all_asks_once_per_class(tmp_path: Path, project: Path) -> None:
    script = [
        Invoke("create_file_with_text", {"filePath": "a.txt", "text": "a\n"}),
        Invoke("create_file_with_text", {"filePath": "b.txt", "text": "b\n"}),
        *DONE,
    ]
    app, _ = agent_app(tmp_path, project, script)
    person = Person("approve_all")
    async with host(app, elicitation_callback=person) as client:
        result = await client.call_tool("ask_lingma", {"prompt": "edit"})
    assert len(person.asked) == 1
    assert [c["path"] for c in result.structured_content["changes"]] == ["a.txt", "b.txt"]


@pytest.mark.parametrize("how", ["deny", "decline", "cancel"])
async def test_a_refusal_leaves_every_file_untouched_and_lingma_is_told(
    tmp_path: Path, project: Path, how: str
) -> None:
    app, fake = agent_app(tmp_path, project, EDITS)
    person = Person("deny", "deny", "deny") if how == "deny" else Person(action=how)
    before = contents(project)
    async with host(app, elicitation_callback=person) as client:
        result = await client.call_tool("ask_lingma", {"prompt": "edit"})
    assert not result.is_error, text_of(result)
    assert contents(project) == before
    outcomes = fake.streams[0].outcomes
    assert [o.success for o in outcomes] == [False, False, False]
    assert all("the person declined" in o.error_message for o in outcomes)
    assert result.structured_content["changes"] == []
    assert {a["by"] for a in result.structured_content["approvals"]} == {"person"}
    assert {a["decision"] for a in result.structured_content["approvals"]} == {"denied"}


async def test_a_host_that_cannot_ask_gets_denials_that_say_how_to_allow(
    tmp_path: Path, project: Path
) -> None:
    app, fake = agent_app(tmp_path, project, EDITS)
    async with host(app) as client:  # no elicitation callback: no elicitation capability
        result = await client.call_tool("ask_lingma", {"prompt": "edit"})
    assert not result.is_error, text_of(result)
    assert not (project / "notes").exists() and (project / "old.txt").exists()
    outcomes = fake.streams[0].outcomes
    assert "LINGMA_APPROVAL=write=allow" in outcomes[0].error_message
    assert "LINGMA_APPROVAL=delete=allow" in outcomes[2].error_message
    assert "LINGMA_APPROVAL=write=allow,delete=allow" in text_of(result)
    assert "offers no form elicitation" in text_of(result)
    assert "use a host that supports elicitation" in text_of(result)
    assert {a["by"] for a in result.structured_content["approvals"]} == {
        "policy (nobody could be asked)"
    }


async def test_on_the_newest_protocol_the_person_is_asked_through_the_retry(
    tmp_path: Path, project: Path
) -> None:
    app, _ = agent_app(tmp_path, project, EDITS[:1] + DONE)
    person = Person("approve")
    async with Client(app, elicitation_callback=person) as client:  # 2026-07-28
        result = await client.call_tool("ask_lingma", {"prompt": "edit"})
    assert (project / "notes" / "new.txt").read_text() == "hello\n"
    assert "notes/new.txt" in person.asked[0].message
    assert result.structured_content["approvals"][0]["by"] == "person"


async def test_the_setting_allows_without_asking(tmp_path: Path, project: Path) -> None:
    app, _ = agent_app(tmp_path, project, EDITS, approval="write=allow,delete=allow")
    person = Person()
    async with host(app, elicitation_callback=person) as client:
        result = await client.call_tool("ask_lingma", {"prompt": "edit"})
    assert person.asked == []
    assert {a["by"] for a in result.structured_content["approvals"]} == {"policy"}
    assert len(result.structured_content["changes"]) == 3


async def test_read_only_denies_writes_even_when_the_setting_allows_them(
    tmp_path: Path, project: Path
) -> None:
    script = [
        Invoke("read_file", {"file_path": "keep.txt"}),
        *EDITS[:3],
        Invoke("run_in_terminal", {"command": "touch ran.txt", "isBackground": False}),
        *DONE,
    ]
    app, fake = agent_app(tmp_path, project, script, approval="write=allow,delete=allow,run=allow")
    async with host(app, elicitation_callback=Person()) as client:
        result = await client.call_tool("ask_lingma", {"prompt": "look", "read_only": True})
    outcomes = fake.streams[0].outcomes
    assert outcomes[0].success and outcomes[0].result["content"] == "one\ntwo\n"
    assert [o.success for o in outcomes[1:]] == [False, False, False, False]
    assert "read-only" in outcomes[1].error_message
    assert not (project / "ran.txt").exists() and (project / "old.txt").exists()
    approvals = result.structured_content["approvals"]
    assert [a["by"] for a in approvals] == ["policy", *["read_only"] * 4]


async def test_a_pending_tool_call_goes_through_the_same_gate(
    tmp_path: Path, project: Path
) -> None:
    script = [Confirm("run_in_terminal", {"command": "make test"}), *DONE]
    app, fake = agent_app(tmp_path, project, script)
    person = Person("deny")
    async with host(app, elicitation_callback=person) as client:
        result = await client.call_tool("ask_lingma", {"prompt": "test"})
    assert fake.streams[0].outcomes == [False]
    assert "make test" in person.asked[0].message
    assert result.structured_content["approvals"] == [
        {"tool": "run_in_terminal", "target": "make test", "decision": "denied", "by": "person"}
    ]


async def test_chat_mode_hosts_no_tools(tmp_path: Path, project: Path) -> None:
    app, fake = agent_app(tmp_path, project, EDITS, approval="write=allow,delete=allow")
    async with host(app) as client:
        result = await client.call_tool("ask_lingma", {"prompt": "edit", "mode": "chat"})
    assert fake.streams[0].request.host is None
    assert result.structured_content["changes"] == []
    assert (project / "old.txt").exists()


# -- the call's workspace ------------------------------------------------------------------


@pytest.mark.parametrize("outside", ["/", "/etc", "..", "~"])
async def test_a_workspace_outside_the_allowed_folders_is_refused_before_lingma(
    tmp_path: Path, project: Path, outside: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # a home folder above the project
    app, fake = agent_app(tmp_path, project, DONE)
    async with host(app) as client:
        result = await client.call_tool("ask_lingma", {"prompt": "hi", "workspace": outside})
    assert result.is_error
    assert "outside the folders this server may work in" in text_of(result)
    assert str(project) in text_of(result)
    assert fake.streams == []


async def test_a_folder_inside_the_workspace_is_accepted(tmp_path: Path, project: Path) -> None:
    (project / "sub").mkdir()
    app, fake = agent_app(tmp_path, project, DONE)
    async with host(app) as client:
        result = await client.call_tool("ask_lingma", {"prompt": "hi", "workspace": "sub"})
    assert not result.is_error, text_of(result)
    assert fake.streams[0].request.workspace == project / "sub"


async def test_with_roots_any_root_is_allowed_and_the_rest_refused(
    tmp_path: Path, project: Path
) -> None:
    first, second = tmp_path / "r1", tmp_path / "r2"
    first.mkdir()
    second.mkdir()

    async def roots(_: Any) -> ListRootsResult:
        return ListRootsResult(
            roots=[Root(uri=first.as_uri(), name="one"), Root(uri=second.as_uri(), name="two")]
        )

    app, fake = agent_app(tmp_path, project, DONE)
    async with host(app, list_roots_callback=roots) as client:
        plain = await client.call_tool("ask_lingma", {"prompt": "hi"})
        other = await client.call_tool("ask_lingma", {"prompt": "hi", "workspace": str(second)})
        refused = await client.call_tool("ask_lingma", {"prompt": "hi", "workspace": str(project)})
    assert not plain.is_error and not other.is_error
    assert [s.request.workspace for s in fake.streams] == [first, second.resolve()]
    assert refused.is_error and str(first.resolve()) in text_of(refused)


# -- review and revert ---------------------------------------------------------------------


async def test_the_diff_resource_and_the_revert(tmp_path: Path, project: Path) -> None:
    app, _ = agent_app(tmp_path, project, EDITS, approval="write=allow,delete=allow")
    async with host(app) as client:
        result = await client.call_tool("ask_lingma", {"prompt": "edit"})
        request_id = result.structured_content["request_id"]
        resource = await client.read_resource(f"lingma://changes/{request_id}")
        (project / "keep.txt").write_text("someone else\n")  # changed again since
        revert = await client.call_tool("revert_changes", {"request_id": request_id})
    content = resource.contents[0]
    assert content.mime_type == "text/x-diff"
    assert "+++ b/notes/new.txt" in content.text and "+hello" in content.text
    assert "-bye" in content.text and "-two" in content.text
    assert not revert.is_error, text_of(revert)
    data = revert.structured_content
    assert data["request_id"] == request_id
    assert sorted(data["restored"]) == ["notes/new.txt", "old.txt"]
    assert data["refused"] == [{"path": "keep.txt", "reason": "changed since this call changed it"}]
    assert not (project / "notes" / "new.txt").exists()
    assert (project / "old.txt").read_text() == "bye\n"
    assert (project / "keep.txt").read_text() == "someone else\n"
    assert "keep.txt: changed since" in text_of(revert)


async def test_unknown_request_ids_are_said_to_be_unknown(tmp_path: Path, project: Path) -> None:
    app, _ = agent_app(tmp_path, project, DONE)
    async with host(app) as client:
        revert = await client.call_tool("revert_changes", {"request_id": "nope"})
        with pytest.raises(MCPError) as caught:
            await client.read_resource("lingma://changes/nope")
    assert revert.is_error and "no changes are recorded for request id 'nope'" in text_of(revert)
    assert caught.value.error.code == -32002
    assert "no changes are recorded for request id 'nope'" in caught.value.error.message


async def test_the_record_survives_a_restart_of_the_server(tmp_path: Path, project: Path) -> None:
    app, _ = agent_app(tmp_path, project, EDITS, approval="write=allow,delete=allow")
    async with host(app) as client:
        result = await client.call_tool("ask_lingma", {"prompt": "edit"})
    request_id = result.structured_content["request_id"]
    again, _ = agent_app(tmp_path, project, DONE)
    async with host(again) as client:
        resource = await client.read_resource(f"lingma://changes/{request_id}")
        revert = await client.call_tool("revert_changes", {"request_id": request_id})
    assert "+hello" in resource.contents[0].text
    assert len(revert.structured_content["restored"]) == 3
    assert (project / "keep.txt").read_text() == "one\ntwo\n"
    assert (project / "old.txt").exists() and not (project / "notes" / "new.txt").exists()
    record = tmp_path / "work" / "checkpoints"
    assert record.stat().st_mode & 0o777 == 0o700
    for item in record.rglob("*"):
        if not item.is_symlink():
            mode = item.stat().st_mode & 0o777
            assert mode == 0o700 if item.is_dir() else mode & 0o077 == 0, item


async def test_a_failed_call_says_what_it_changed_and_how_to_undo_it(
    tmp_path: Path, project: Path
) -> None:
    script = [EDITS[0], Forever()]
    app, _ = agent_app(tmp_path, project, script, approval="write=allow")
    async with host(app) as client:
        result = await client.call_tool("ask_lingma", {"prompt": "edit", "timeout_s": 0.5})
    assert result.is_error
    assert "notes/new.txt (created)" in text_of(result) and "revert_changes" in text_of(result)


# -- ends of a call ------------------------------------------------------------------------


async def test_a_waiting_approval_counts_against_the_timeout_and_ends_as_a_deny(
    tmp_path: Path, project: Path
) -> None:
    asked = anyio.Event()

    async def never(_: Any, params: Any) -> ElicitResult:
        asked.set()
        await anyio.sleep_forever()
        raise AssertionError

    app, fake = agent_app(tmp_path, project, EDITS)
    async with host(app, elicitation_callback=never) as client:
        result = await client.call_tool("ask_lingma", {"prompt": "edit", "timeout_s": 0.5})
    assert asked.is_set()
    assert result.is_error and "0.5" in text_of(result)
    assert not (project / "notes").exists()
    assert fake.streams[0].closed


async def test_a_cancelled_call_kills_its_commands_whole_process_group(
    tmp_path: Path, project: Path
) -> None:
    # Found by what they run: in the sandbox's PID namespace $$ and $! are not our pids.
    marker = sleeper()
    command = f"sleep {marker} & sleep {marker}"
    script = [Invoke("run_in_terminal", {"command": command, "isBackground": True}), Forever()]
    app, fake = agent_app(tmp_path, project, script, approval="run=allow")
    async with host(app) as client:
        async with anyio.create_task_group() as tg:

            async def call() -> None:
                await client.call_tool("ask_lingma", {"prompt": "run"})

            tg.start_soon(call)
            await wait_until(lambda: bool(fake.streams and fake.streams[0].outcomes))
            await wait_until(lambda: len(with_marker(marker)) >= 2)
            tg.cancel_scope.cancel()
        await wait_until(lambda: not with_marker(marker))


async def test_the_server_closing_kills_the_commands_of_calls_in_flight(
    tmp_path: Path, project: Path
) -> None:
    marker = sleeper()
    command = f"sleep {marker} & wait"
    script = [Invoke("run_in_terminal", {"command": command, "isBackground": True}), Forever()]
    app, fake = agent_app(tmp_path, project, script, approval="run=allow")
    async with host(app) as client, anyio.create_task_group() as tg:
        tg.start_soon(client.call_tool, "ask_lingma", {"prompt": "run"})
        await wait_until(lambda: bool(fake.streams and fake.streams[0].outcomes))
        await wait_until(lambda: bool(with_marker(marker)))
        assert fake.bridge is not None
        await fake.bridge.agents.close()
        await wait_until(lambda: not with_marker(marker))
        tg.cancel_scope.cancel()


def test_a_malformed_setting_is_refused_when_the_server_is_built(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="class=decision"):
        Bridge(Settings(work_dir=tmp_path, approval="write=maybe"), ScriptedLingma([]).backend)


def test_the_journal_lives_in_the_shared_work_dir_also_by_default(tmp_path: Path) -> None:
    for settings in (Settings(work_dir=tmp_path), Settings(), Settings(simulate=True)):
        bridge = Bridge(settings, ScriptedLingma([]).backend)
        assert bridge.agents.work_dir == settings.resolved_work_dir  # nothing opened yet

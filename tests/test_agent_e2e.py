"""Agent mode as hosts use it: the server, the SDK's client, the simulator behind.

The simulator's agent mode carries out the ``@`` instructions of the prompt as Lingma's
tool calls (``tool/invoke``, PENDING ``tool/call/sync``) and writes each outcome into its
answer, so the answer shows what Lingma was told. Each test asserts on what the host gets
(the result, its changes and approvals, the diff, the revert) and on the files themselves.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from fakes import Person, text_of
from mcp import Client
from procs import sleeper, wait_until, with_marker
from servers import mcp_server

pytestmark = pytest.mark.timeout(90)

FAST = {"LINGMA_SIM_DELTA_DELAY": "0.001", "LINGMA_SIM_ANSWER_SIZE": "60"}


@asynccontextmanager
async def agent_server(
    tmp_path: Path, project: Path, person: Person | None = None, **settings: Any
) -> AsyncIterator[Client]:
    """The server in agent mode on ``project``, the person (if any) asked by elicitation."""
    host = {"elicitation_callback": person} if person is not None else {}
    async with mcp_server(
        tmp_path, FAST, workspace=project, mode="agent", request_timeout=60, host=host, **settings
    ) as client:
        yield client


def files(folder: Path) -> dict[str, str | None]:
    return {
        str(p.relative_to(folder)): None if p.is_dir() else p.read_text()
        for p in sorted(folder.rglob("*"))
    }


EDIT = "\n".join(
    [
        "tidy up",
        "@create notes/new.txt hello\\n",
        "@replace keep.txt one\\n2\\n",
        "@delete old.txt",
    ]
)


async def test_edits_land_after_the_person_approves_and_can_be_reviewed_and_reverted(
    tmp_path: Path, project: Path
) -> None:
    person = Person("approve", "approve", "approve", "approve")
    prompt = EDIT + "\n@confirm make test"
    async with agent_server(tmp_path, project, person) as client:
        result = await client.call_tool("ask_lingma", {"prompt": prompt})
        assert not result.is_error, text_of(result)
        data = result.structured_content
        request_id = data["request_id"]
        diff = (await client.read_resource(f"lingma://changes/{request_id}")).contents[0]
        (project / "keep.txt").write_text("edited by hand\n")  # changed again since
        revert = await client.call_tool("revert_changes", {"request_id": request_id})

    answer = data["answer"]
    assert "create_file_with_text" in answer and "notes/new.txt: ok" in answer
    assert "delete_file_by_path" in answer and "old.txt: ok" in answer
    assert "confirm make test: approved" in answer
    assert len(person.asked) == 4
    assert "notes/new.txt" in person.questions[0] and "make test" in person.questions[3]
    assert [
        (c["path"], c["action"], c["lines_added"], c["lines_removed"], c["by"])
        for c in sorted(data["changes"], key=lambda c: c["path"])
    ] == [
        ("keep.txt", "modified", 1, 1, "replace_text_by_path"),
        ("notes/new.txt", "created", 1, 0, "create_file_with_text"),
        ("old.txt", "deleted", 0, 1, "delete_file_by_path"),
    ]
    assert [(a["tool"], a["decision"], a["by"]) for a in data["approvals"]] == [
        ("create_file_with_text", "allowed", "person"),
        ("replace_text_by_path", "allowed", "person"),
        ("delete_file_by_path", "allowed", "person"),
        ("run_in_terminal", "allowed", "person"),
    ]

    assert diff.mime_type == "text/x-diff"
    assert "+hello" in diff.text and "-two" in diff.text and "-bye" in diff.text

    assert not revert.is_error, text_of(revert)
    assert sorted(revert.structured_content["restored"]) == ["notes/new.txt", "old.txt"]
    assert revert.structured_content["refused"] == [
        {"path": "keep.txt", "reason": "changed since this call changed it"}
    ]
    # The folder the call made for notes/new.txt goes with it.
    assert files(project) == {"keep.txt": "edited by hand\n", "old.txt": "bye\n"}


@pytest.mark.parametrize("how", ["deny", "decline"])
async def test_a_refusal_leaves_every_file_untouched_and_lingma_is_told(
    tmp_path: Path, project: Path, how: str
) -> None:
    person = Person("deny", "deny", "deny") if how == "deny" else Person(action="decline")
    before = files(project)
    async with agent_server(tmp_path, project, person) as client:
        result = await client.call_tool("ask_lingma", {"prompt": EDIT})
    assert not result.is_error, text_of(result)
    assert files(project) == before
    answer = result.structured_content["answer"]
    assert answer.count("failed: the person declined") == 3
    assert result.structured_content["changes"] == []
    assert {a["decision"] for a in result.structured_content["approvals"]} == {"denied"}


async def test_a_host_without_elicitation_gets_denials_that_say_how_to_allow(
    tmp_path: Path, project: Path
) -> None:
    before = files(project)
    async with agent_server(tmp_path, project) as client:
        result = await client.call_tool("ask_lingma", {"prompt": EDIT})
    assert not result.is_error, text_of(result)
    assert files(project) == before
    answer = result.structured_content["answer"]
    assert "LINGMA_APPROVAL=write=allow" in answer  # what Lingma was told
    assert "LINGMA_APPROVAL=write=allow,delete=allow" in text_of(result)  # what the host reads
    assert {a["by"] for a in result.structured_content["approvals"]} == {
        "policy (nobody could be asked)"
    }


async def test_escapes_fail_clearly_and_touch_nothing_outside(
    tmp_path: Path, project: Path
) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("secret\n")
    (project / "link").symlink_to(tmp_path)
    prompt = "\n".join(
        [
            "@read /etc/passwd",
            "@create ../x hello",
            f"@replace {outside} pwned",
            "@delete link/outside.txt",
            "@read link/outside.txt",
            "@create ~/y hello",
        ]
    )
    approval = "read=allow,write=allow,delete=allow"
    async with agent_server(tmp_path, project, approval=approval) as client:
        result = await client.call_tool("ask_lingma", {"prompt": prompt})
    assert not result.is_error, text_of(result)
    answer = result.structured_content["answer"]
    assert answer.count("is outside the workspace") >= 5, answer
    assert "root:" not in answer and "secret" not in answer
    assert outside.read_text() == "secret\n"
    assert not (tmp_path / "x").exists()
    assert result.structured_content["changes"] == []


async def test_read_only_denies_writes_even_when_the_setting_allows_them(
    tmp_path: Path, project: Path
) -> None:
    before = files(project)
    approval = "write=allow,delete=allow,run=allow"
    async with agent_server(tmp_path, project, approval=approval) as client:
        result = await client.call_tool(
            "ask_lingma", {"prompt": EDIT + "\n@read keep.txt", "read_only": True}
        )
    assert files(project) == before
    answer = result.structured_content["answer"]
    assert answer.count("this call is read-only") == 3
    assert "read_file" in answer and "keep.txt: ok" in answer
    assert [a["by"] for a in result.structured_content["approvals"]] == [
        "read_only",
        "read_only",
        "read_only",
        "policy",
    ]


async def test_a_cancelled_call_kills_its_running_commands_whole_group(
    tmp_path: Path, project: Path
) -> None:
    # Found by what they run: in the sandbox's PID namespace $$ and $! are not our pids.
    marker = sleeper()
    prompt = f"@run sleep {marker} & setsid sleep {marker} & wait"
    async with agent_server(tmp_path, project, approval="run=allow") as client:
        async with anyio.create_task_group() as tg:
            tg.start_soon(client.call_tool, "ask_lingma", {"prompt": prompt})
            await wait_until(lambda: len(with_marker(marker)) >= 2)
            tg.cancel_scope.cancel()
        await wait_until(lambda: not with_marker(marker))
        # The server lives on.
        after = await client.call_tool("ask_lingma", {"prompt": "hi", "mode": "chat"})
        assert not after.is_error, text_of(after)


async def test_the_record_survives_a_restart_of_the_server(tmp_path: Path, project: Path) -> None:
    approval = "write=allow,delete=allow"
    async with agent_server(tmp_path, project, approval=approval) as client:
        result = await client.call_tool("ask_lingma", {"prompt": EDIT})
    request_id = result.structured_content["request_id"]
    assert len(result.structured_content["changes"]) == 3
    async with agent_server(tmp_path, project, approval=approval) as client:
        diff = (await client.read_resource(f"lingma://changes/{request_id}")).contents[0].text
        revert = await client.call_tool("revert_changes", {"request_id": request_id})
    assert "+hello" in diff
    assert len(revert.structured_content["restored"]) == 3
    assert (project / "keep.txt").read_text() == "one\ntwo\n"
    assert (project / "old.txt").read_text() == "bye\n"
    assert not (project / "notes" / "new.txt").exists()
    assert os.stat(tmp_path / "work" / "checkpoints").st_mode & 0o777 == 0o700

"""lingma-mcp on the real Lingma CLI, as its users run it: agent mode with every change
listed, shown and revertible, every approval asked, nothing written outside the workspace;
chat mode where the CLI may write nothing; and issue 18's features (attachments, usage,
forks, the conversation tools, reasoning effort) confirmed on the real program.

``qoderclicn`` 1.1.52 runs offline with scripted model turns (``--acp --fake-responses
FILE``, PROTOCOL.md section 10.1): its own Read, Edit, Write and Bash then really run, on
the disk, after its ``session/request_permission``; it never sends ``fs/*`` or
``terminal/*``. A small wrapper passed as ``--cli-bin`` adds the flag.

The CLI costs seconds of CPU to start, so one server (in this process, the SDK's
in-memory client) serves the whole module on one workspace: one CLI in agent mode and one
in chat mode, each in the OS sandbox where this machine has one. The CLI reads the script
again for every session it opens, so each test writes its own turns before it asks; each
test gets the workspace empty and answers its own questions (``RealCli.person``), so the
tests run in order or alone. Run first (``conftest.FIRST``), they stay on one worker; a
test another worker steals there gets a server of its own.
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest
import pytest_asyncio
from acp_fakes import fake_call, fake_text, write_script
from fakes import Person, png, text_of
from mcp import Client
from real_cli import installed_cli, use_empty_home
from servers import lingma_app

from lingma_mcp.workspace.sandbox import support

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.asyncio(loop_scope="module"),
]


class RealCli:
    """The module's server on the real CLI: its workspace, its empty HOME, the script file
    the CLI reads for each new session, and the person the current test plays."""

    def __init__(self, root: Path, binary: Path) -> None:
        self.root = root
        self.project = root / "project"
        self.home = root / "home"
        for folder in (self.project, self.home):
            folder.mkdir()
        self.turns = root / "turns.jsonl"
        self.wrapper = root / "qoderclicn-scripted"
        self.wrapper.write_text(
            f'#!/bin/sh\nexec "{binary}" --fake-responses "{self.turns}" "$@"\n',
            encoding="utf-8",
        )
        self.wrapper.chmod(self.wrapper.stat().st_mode | stat.S_IXUSR)
        self.person: Person | None = None
        self.client: Client

    def script(self, *turns: dict[str, Any]) -> None:
        """The model's turns for the next session, then its last word."""
        write_script(self.turns, [*turns, fake_text("done")])

    async def elicit(self, context: Any, params: Any) -> Any:
        assert self.person is not None, f"nobody was to be asked: {params.message}"
        return await self.person(context, params)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RealCli]:
    """The server and its CLI, for the module. Its client lives in a task of its own:
    pytest-asyncio sets a fixture up and tears it down in two tasks, and the client's task
    group must be left in the task that entered it."""
    cli = RealCli(tmp_path_factory.mktemp("real-cli"), installed_cli())
    ready: asyncio.Future[RealCli] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()

    async def host() -> None:
        with pytest.MonkeyPatch.context() as patch:
            # The CLI keeps its state under HOME, and the sandbox lets it write only there.
            use_empty_home(patch, cli.home)
            patch.setenv("QODER_FAKE_STREAM_DELAY_MS", "5")
            async with (
                lingma_app(
                    cli.root,
                    simulate=False,
                    backend="cli",
                    cli_bin=str(cli.wrapper),
                    workspace=cli.project,
                    mode="agent",
                    request_timeout=120.0,
                    startup_timeout=60.0,
                ) as app,
                Client(app, mode="legacy", elicitation_callback=cli.elicit) as client,
            ):
                cli.client = client
                ready.set_result(cli)
                await stop.wait()

    task = asyncio.create_task(host())
    task.add_done_callback(lambda t: ready.done() or ready.set_exception(t.exception()))
    try:
        yield await ready
    finally:
        stop.set()
        await task


@pytest.fixture
def cli(server: RealCli) -> RealCli:
    """The module's server, its workspace emptied, nobody to ask yet."""
    for entry in server.project.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    server.person = None
    return server


def sandboxed() -> None:
    if not support().available:
        pytest.skip(f"no OS sandbox on this machine: {support().reason}")


# -- agent mode ----------------------------------------------------------------------------


async def test_approved_edit_write_and_command_are_listed_shown_and_reverted(
    cli: RealCli,
) -> None:
    target = cli.project / "a.txt"
    target.write_text("alpha\nbeta\n")
    cli.script(
        fake_call("Read", file_path=str(target)),
        fake_call("Edit", file_path=str(target), old_string="beta", new_string="gamma"),
        fake_call("Write", file_path=str(cli.project / "new.txt"), content="hello\n"),
        fake_call("Bash", command="touch made.txt"),
    )
    person = cli.person = Person("approve", "approve", "approve")
    result = await cli.client.call_tool("ask_lingma", {"prompt": "fix a.txt"})
    assert not result.is_error, text_of(result)
    data = result.structured_content
    changes = await cli.client.read_resource(f"lingma://changes/{data['request_id']}")
    diff = changes.contents[0]
    assert target.read_text() == "alpha\ngamma\n"
    assert (cli.project / "new.txt").read_text() == "hello\n"
    assert (cli.project / "made.txt").exists()
    revert = await cli.client.call_tool("revert_changes", {"request_id": data["request_id"]})
    # The person was shown the CLI's own diff, as a short unified diff, then the command.
    assert len(person.asked) == 3
    assert "-beta" in person.questions[0] and "+gamma" in person.questions[0]
    assert "+hello" in person.questions[1]
    assert "touch made.txt" in person.questions[2]
    made = {c["path"]: (c["action"], c["by"]) for c in data["changes"]}
    assert made == {
        "a.txt": ("modified", "Edit"),
        "new.txt": ("created", "Write"),
        "made.txt": ("created", "Bash: touch made.txt"),
    }
    assert [(a["decision"], a["by"]) for a in data["approvals"]] == [("allowed", "person")] * 3
    assert diff.mime_type == "text/x-diff"
    assert "-beta" in diff.text and "+gamma" in diff.text and "+hello" in diff.text
    assert sorted(revert.structured_content["restored"]) == ["a.txt", "made.txt", "new.txt"]
    assert target.read_text() == "alpha\nbeta\n"
    assert sorted(p.name for p in cli.project.iterdir()) == ["a.txt"]


async def test_a_denied_edit_and_a_write_outside_change_nothing_and_say_who_decided(
    cli: RealCli, tmp_path: Path
) -> None:
    target = cli.project / "a.txt"
    target.write_text("alpha\n")
    escape = tmp_path / "planted.txt"
    cli.script(
        fake_call("Read", file_path=str(target)),
        fake_call("Edit", file_path=str(target), old_string="alpha", new_string="omega"),
        fake_call("Write", file_path=str(escape), content="x\n"),
    )
    person = cli.person = Person("deny")
    result = await cli.client.call_tool("ask_lingma", {"prompt": "edit"})
    assert not result.is_error, text_of(result)
    assert target.read_text() == "alpha\n" and not escape.exists()
    assert len(person.asked) == 1  # the write outside was refused before anyone was asked
    assert result.structured_content["changes"] == []
    assert [(a["decision"], a["by"]) for a in result.structured_content["approvals"]] == [
        ("denied", "person"),
        ("denied", "confinement"),
    ]


async def test_cancelling_while_a_question_is_open_lands_nothing(cli: RealCli) -> None:
    target = cli.project / "a.txt"
    cli.script(fake_call("Write", file_path=str(target), content="late\n"))
    asked = anyio.Event()
    answer = anyio.Event()

    async def person(context: Any, params: Any) -> Any:
        asked.set()
        await answer.wait()  # the call is cancelled before the person answers
        return await Person("approve")(context, params)

    cli.person = person  # type: ignore[assignment]
    async with anyio.create_task_group() as tg:
        tg.start_soon(cli.client.call_tool, "ask_lingma", {"prompt": "write"})
        await asked.wait()
        tg.cancel_scope.cancel()
    answer.set()
    cli.script()
    after = await cli.client.call_tool("ask_lingma", {"prompt": "hi", "mode": "chat"})
    assert not target.exists()
    assert not after.is_error, text_of(after)


async def test_an_approved_command_cannot_write_outside_the_workspace(
    cli: RealCli, tmp_path: Path
) -> None:
    sandboxed()
    bashrc = cli.home / ".bashrc"
    outside = tmp_path / "outside"
    outside.mkdir()
    cli.script(
        fake_call(
            "Bash",
            command=f"touch {outside / 'x'}; echo planted >> {bashrc}; echo ok > inside.txt",
        )
    )
    cli.person = Person("approve")
    result = await cli.client.call_tool("ask_lingma", {"prompt": "run"})
    assert not result.is_error, text_of(result)
    assert list(outside.iterdir()) == []  # the CLI's own Bash, confined
    assert not bashrc.exists()
    assert (cli.project / "inside.txt").read_text() == "ok\n"
    assert [c["path"] for c in result.structured_content["changes"]] == ["inside.txt"]


# -- chat mode -----------------------------------------------------------------------------


async def test_chat_mode_runs_the_cli_where_it_may_write_nothing_but_its_own_state(
    cli: RealCli,
) -> None:
    sandboxed()
    # A command the CLI deems read-only runs unasked; the sandbox still holds it.
    cli.script(fake_call("Bash", command="echo hi > chat.txt; echo hi"))
    result = await cli.client.call_tool("ask_lingma", {"prompt": "hello", "mode": "chat"})
    assert not result.is_error, text_of(result)
    assert not (cli.project / "chat.txt").exists()


# -- issue 18's features ---------------------------------------------------------------------


USAGE = {"promptTokenCount": 11, "candidatesTokenCount": 7, "totalTokenCount": 18}


async def test_the_real_cli_takes_attachments_counts_usage_forks_lists_shows_and_deletes(
    cli: RealCli,
) -> None:
    (cli.project / "src").mkdir()
    (cli.project / "src" / "a.txt").write_text("alpha\n")
    image = base64.b64encode(png()).decode()
    write_script(cli.turns, [fake_text("saw them", usage=USAGE)])
    client = cli.client
    asked = await client.call_tool(
        "ask_lingma",
        {
            "prompt": "look",
            "mode": "chat",
            "attachments": [
                {"type": "file", "path": "src/a.txt"},
                {"type": "folder", "path": "src"},
                {"type": "image", "data": image, "mime_type": "image/png"},
            ],
        },
    )
    assert not asked.is_error, text_of(asked)
    first = asked.structured_content
    assert first["answer"] == "saw them"
    # Counted, since the backend starts the CLI with QODERCN_EXPOSE_TOKEN_USAGE=1.
    assert first["usage"] == {
        "input_tokens": 11,
        "output_tokens": 7,
        "total_tokens": 18,
        "model": "auto",
        "credits": None,
    }
    session = first["session_id"]
    # With a script the model has no effort levels: a question's own is refused.
    effort = await client.call_tool(
        "ask_lingma", {"prompt": "x", "mode": "chat", "reasoning_effort": "high"}
    )
    assert effort.is_error and "offers no reasoning effort" in text_of(effort)

    forked = await client.call_tool(
        "ask_lingma", {"prompt": "again", "mode": "chat", "session_id": session, "fork": True}
    )
    assert not forked.is_error, text_of(forked)
    fork = forked.structured_content["session_id"]
    assert forked.structured_content["forked_from"] == session and fork != session
    listed = await client.call_tool("list_lingma_sessions", {})
    assert {session, fork} <= {s["session_id"] for s in listed.structured_content["sessions"]}

    # The turns come from the replay of session/load: the prompt as the CLI keeps it, with
    # its references and the embedded text.
    read = await client.read_resource(f"lingma://sessions/{session}")
    turns = json.loads(read.contents[0].text)["turns"]
    assert len(turns) == 1 and turns[0]["answer"] == "saw them"
    assert turns[0]["question"].startswith("look") and "alpha" in turns[0]["question"]

    deleted = await client.call_tool("delete_lingma_session", {"session_id": fork})
    assert not deleted.is_error, text_of(deleted)
    listed = await client.call_tool("list_lingma_sessions", {})
    assert fork not in {s["session_id"] for s in listed.structured_content["sessions"]}
    again = await client.call_tool("delete_lingma_session", {"session_id": fork})
    assert again.is_error

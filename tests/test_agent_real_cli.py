"""Agent mode on the real Lingma CLI, as its users run it: every change listed, shown and
revertible, every approval asked, nothing written outside the workspace.

``qoderclicn`` 1.1.52 runs offline with scripted model turns (``--acp --fake-responses
FILE``): its own Read, Edit, Write and Bash then really run, on the disk, after its
``session/request_permission``; it never sends ``fs/*`` or ``terminal/*``. A small wrapper
passed as ``--cli-bin`` adds the flag. The server runs in this process (the SDK's in-memory
client); the CLI is a real child, in the OS sandbox where this machine has one.
"""

from __future__ import annotations

import os
import stat
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from acp_fakes import fake_call, fake_text, write_script
from fakes import Person
from mcp import Client
from real_cli import installed_cli

from lingma_mcp.config import Settings
from lingma_mcp.server.app import build_app
from lingma_mcp.workspace.sandbox import support

pytestmark = pytest.mark.timeout(180)


def text_of(result: Any) -> str:
    return "".join(getattr(c, "text", "") for c in result.content)


class RealCli:
    """A workspace, an empty HOME, and the real CLI playing a script of model turns."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.binary = installed_cli()
        self.tmp = tmp_path
        self.project = tmp_path / "project"
        self.project.mkdir()
        self.home = tmp_path / "home"
        self.home.mkdir()
        self.outside = tmp_path / "outside"
        self.outside.mkdir()
        # The CLI keeps its state under HOME, and the sandbox lets it write only there.
        monkeypatch.setenv("HOME", str(self.home))
        monkeypatch.setenv("QODER_FAKE_STREAM_DELAY_MS", "5")
        for name in [k for k in os.environ if k.startswith("QODERCN_")]:
            monkeypatch.delenv(name)

    def script(self, *turns: dict[str, Any]) -> Path:
        """The model's turns, and a ``--cli-bin`` wrapper that plays them."""
        lines = write_script(self.tmp / "turns.jsonl", [*turns, fake_text("done")])
        wrapper = self.tmp / "qoderclicn-scripted"
        wrapper.write_text(
            f'#!/bin/sh\nexec "{self.binary}" --fake-responses "{lines}" "$@"\n',
            encoding="utf-8",
        )
        wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
        return wrapper

    @asynccontextmanager
    async def server(
        self, wrapper: Path, *, person: Callable[..., Any] | None = None, **settings: Any
    ) -> AsyncIterator[Client]:
        options: dict[str, Any] = {
            "backend": "cli",
            "cli_bin": str(wrapper),
            "work_dir": self.tmp / "work",
            "workspace": self.project,
            "workspace_explicit": True,
            "mode": "agent",
            "request_timeout": 120.0,
            "startup_timeout": 60.0,
            **settings,
        }
        app = build_app(Settings(**options))
        async with Client(app, elicitation_callback=person) as client:
            yield client


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> RealCli:
    return RealCli(tmp_path, monkeypatch)


def sandboxed() -> None:
    if not support().available:
        pytest.skip(f"no OS sandbox on this machine: {support().reason}")


async def test_approved_edit_write_and_command_are_listed_shown_and_reverted(
    cli: RealCli,
) -> None:
    target = cli.project / "a.txt"
    target.write_text("alpha\nbeta\n")
    wrapper = cli.script(
        fake_call("Read", file_path=str(target)),
        fake_call("Edit", file_path=str(target), old_string="beta", new_string="gamma"),
        fake_call("Write", file_path=str(cli.project / "new.txt"), content="hello\n"),
        fake_call("Bash", command="touch made.txt"),
    )
    person = Person("approve", "approve", "approve")
    async with cli.server(wrapper, person=person) as client:
        result = await client.call_tool("ask_lingma", {"prompt": "fix a.txt"})
        assert not result.is_error, text_of(result)
        data = result.structured_content
        diff = (await client.read_resource(f"lingma://changes/{data['request_id']}")).contents[0]
        assert target.read_text() == "alpha\ngamma\n"
        assert (cli.project / "new.txt").read_text() == "hello\n"
        assert (cli.project / "made.txt").exists()
        revert = await client.call_tool("revert_changes", {"request_id": data["request_id"]})
    # The person was shown the CLI's own diff, as a short unified diff, then the command.
    assert len(person.asked) == 3
    assert "-beta" in person.asked[0].message and "+gamma" in person.asked[0].message
    assert "+hello" in person.asked[1].message
    assert "touch made.txt" in person.asked[2].message
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
    cli: RealCli,
) -> None:
    target = cli.project / "a.txt"
    target.write_text("alpha\n")
    escape = cli.outside / "planted.txt"
    wrapper = cli.script(
        fake_call("Read", file_path=str(target)),
        fake_call("Edit", file_path=str(target), old_string="alpha", new_string="omega"),
        fake_call("Write", file_path=str(escape), content="x\n"),
    )
    person = Person("deny")
    async with cli.server(wrapper, person=person, approval="write=ask") as client:
        result = await client.call_tool("ask_lingma", {"prompt": "edit"})
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
    wrapper = cli.script(fake_call("Write", file_path=str(target), content="late\n"))
    asked = anyio.Event()
    answer = anyio.Event()

    async def person(context: Any, params: Any) -> Any:
        asked.set()
        await answer.wait()  # the call is cancelled before the person answers
        return await Person("approve")(context, params)

    async with cli.server(wrapper, person=person) as client:
        async with anyio.create_task_group() as tg:
            tg.start_soon(client.call_tool, "ask_lingma", {"prompt": "write"})
            await asked.wait()
            tg.cancel_scope.cancel()
        answer.set()
        after = await client.call_tool("ask_lingma", {"prompt": "hi", "mode": "chat"})
    assert not target.exists()
    assert not after.is_error, text_of(after)


async def test_an_approved_command_cannot_write_outside_the_workspace(cli: RealCli) -> None:
    sandboxed()
    bashrc = cli.home / ".bashrc"
    wrapper = cli.script(
        fake_call(
            "Bash",
            command=f"touch {cli.outside / 'x'}; echo planted >> {bashrc}; echo ok > inside.txt",
        )
    )
    async with cli.server(wrapper, approval="run=allow") as client:
        result = await client.call_tool("ask_lingma", {"prompt": "run"})
    assert not result.is_error, text_of(result)
    assert list(cli.outside.iterdir()) == []  # the CLI's own Bash, confined
    assert not bashrc.exists()
    assert (cli.project / "inside.txt").read_text() == "ok\n"
    assert [c["path"] for c in result.structured_content["changes"]] == ["inside.txt"]


async def test_chat_mode_runs_the_cli_where_it_may_write_nothing_but_its_own_state(
    cli: RealCli,
) -> None:
    sandboxed()
    # A command the CLI deems read-only runs unasked; the sandbox still holds it.
    wrapper = cli.script(fake_call("Bash", command="echo hi > chat.txt; echo hi"))
    async with cli.server(wrapper, mode="chat") as client:
        result = await client.call_tool("ask_lingma", {"prompt": "hello", "mode": "chat"})
    assert not result.is_error, text_of(result)
    assert not (cli.project / "chat.txt").exists()

"""Agent mode on the IDE simulator, end to end in this process: whatever changes a file
is recorded (a command, Lingma's own edit), and nothing a command does leaves the workspace.

The simulator plays Lingma (``@run``, ``@edit``: ``lingma-sim --help-agent``); the server
runs here with the SDK's in-memory client; commands run for real, in the OS sandbox where
this machine has one.
"""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from fakes import Person
from mcp import Client
from procs import sleeper, with_marker

from lingma_mcp.config import Settings
from lingma_mcp.server.app import build_app
from lingma_mcp.workspace.sandbox import support


def text_of(result: Any) -> str:
    return "".join(getattr(c, "text", "") for c in result.content)


@asynccontextmanager
async def served(
    tmp_path: Path, *, person: Any = None, **settings: Any
) -> AsyncIterator[tuple[Client, Path]]:
    project = tmp_path / "project"
    project.mkdir(exist_ok=True)
    options: dict[str, Any] = {
        "simulate": True,
        "work_dir": tmp_path / "work",
        "workspace": project,
        "workspace_explicit": True,
        "mode": "agent",
        "request_timeout": 60.0,
        **settings,
    }
    async with Client(build_app(Settings(**options)), elicitation_callback=person) as client:
        yield client, project


def sandboxed() -> None:
    if not support().available:
        pytest.skip(f"no OS sandbox on this machine: {support().reason}")


# -- every change recorded, whatever made it ---------------------------------------------


async def test_files_a_command_edits_creates_and_deletes_are_recorded_and_reverted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LINGMA_SIM_DELTA_DELAY", "0.001")
    async with served(tmp_path, approval="run=allow") as (client, project):
        (project / "a.txt").write_text("one\ntwo\n")
        (project / "gone.txt").write_text("bye\n")
        prompt = "tidy\n@run sed -i s/two/deux/ a.txt && echo hi > made.txt && rm gone.txt"
        result = await client.call_tool("ask_lingma", {"prompt": prompt})
        assert not result.is_error, text_of(result)
        data = result.structured_content
        diff = (await client.read_resource(f"lingma://changes/{data['request_id']}")).contents[0]
        revert = await client.call_tool("revert_changes", {"request_id": data["request_id"]})
    command = "command: sed -i s/two/deux/ a.txt && echo hi > made.txt && rm gone.txt"
    assert {c["path"]: (c["action"], c["by"]) for c in data["changes"]} == {
        "a.txt": ("modified", command),
        "made.txt": ("created", command),
        "gone.txt": ("deleted", command),
    }
    assert "-two" in diff.text and "+deux" in diff.text and "-bye" in diff.text
    assert sorted(revert.structured_content["restored"]) == ["a.txt", "gone.txt", "made.txt"]
    assert (project / "a.txt").read_text() == "one\ntwo\n"
    assert (project / "gone.txt").read_text() == "bye\n" and not (project / "made.txt").exists()


async def test_lingmas_own_edit_after_a_pending_approval_is_recorded_by_its_tool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LINGMA_SIM_DELTA_DELAY", "0.001")
    person = Person("approve")
    async with served(tmp_path, person=person) as (client, project):
        (project / "a.txt").write_text("old\n")
        result = await client.call_tool("ask_lingma", {"prompt": "@edit a.txt new\\n"})
        assert not result.is_error, text_of(result)
        data = result.structured_content
        revert = await client.call_tool("revert_changes", {"request_id": data["request_id"]})
    assert "a.txt" in person.asked[0].message
    assert [(c["path"], c["action"], c["by"]) for c in data["changes"]] == [
        ("a.txt", "modified", "edit_file")
    ]
    assert revert.structured_content["restored"] == ["a.txt"]
    assert (project / "a.txt").read_text() == "old\n"


async def test_a_pending_edit_outside_the_workspace_is_refused_even_where_writes_are_allowed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LINGMA_SIM_DELTA_DELAY", "0.001")
    outside = tmp_path / "outside.txt"
    person = Person()
    async with served(tmp_path, person=person, approval="write=allow") as (client, _):
        result = await client.call_tool("ask_lingma", {"prompt": f"@edit {outside} x"})
    assert not outside.exists() and person.asked == []
    assert [(a["decision"], a["by"]) for a in result.structured_content["approvals"]] == [
        ("denied", "confinement")
    ]


# -- nothing a command does leaves the workspace -----------------------------------------


async def run(
    tmp_path: Path, command: str, monkeypatch: pytest.MonkeyPatch, **settings: Any
) -> tuple[str, Any, Path]:
    """Run one approved command as Lingma would; the output Lingma was given for it."""
    log = tmp_path / "sim.jsonl"
    monkeypatch.setenv("LINGMA_SIM_LOG", str(log))
    async with served(tmp_path, approval="run=allow", **settings) as (client, project):
        result = await client.call_tool("ask_lingma", {"prompt": f"@run {command}"})
    assert not result.is_error, text_of(result)
    told = [
        entry["message"]["result"]["result"]["output"]
        for entry in map(json.loads, log.read_text().splitlines())
        if entry.get("kind") == "reply" and entry.get("method") == "tool/invoke"
    ]
    assert len(told) == 1, told
    return told[0], result, project


@pytest.fixture(autouse=True)
def _fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LINGMA_SIM_DELTA_DELAY", "0.001")


async def test_a_command_cannot_write_outside_the_workspace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandboxed()
    target = tmp_path / "outside.txt"
    told, _, _ = await run(tmp_path, f"echo x > {target}", monkeypatch)
    assert not target.exists()
    # Lingma is told it failed, and why.
    assert "Permission denied" in told and "sandbox: it may write only in" in told


async def test_a_command_cannot_write_through_a_link_it_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandboxed()
    (tmp_path / "elsewhere").mkdir()
    await run(
        tmp_path, f"ln -s {tmp_path / 'elsewhere'} out && echo x > out/planted.txt", monkeypatch
    )
    assert list((tmp_path / "elsewhere").iterdir()) == []


async def test_a_command_cannot_write_into_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandboxed()
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    await run(tmp_path, "echo planted >> ~/.bashrc", monkeypatch)
    assert not (home / ".bashrc").exists()


async def test_a_command_cannot_connect_to_a_listener_on_this_machine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandboxed()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(0)
        port = listener.getsockname()[1]
        told, _, _ = await run(
            tmp_path,
            f"python3 -c \"import socket; socket.create_connection(('127.0.0.1', {port}), 5)\"",
            monkeypatch,
        )
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody came
    assert "Traceback" in told and "no network" in told  # it failed, and Lingma knows why


async def test_a_command_does_not_see_the_servers_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QODERCN_PERSONAL_ACCESS_TOKEN", "pt-secret-planted-42")
    monkeypatch.setenv("SOME_API_KEY", "key-planted-42")
    answer, _, project = await run(tmp_path, "env > seen.txt; echo done", monkeypatch)
    seen = (project / "seen.txt").read_text()
    assert "planted-42" not in seen and "planted-42" not in answer
    assert "PATH=" in seen  # the allowlisted environment is there


async def test_a_daemon_a_command_leaves_behind_dies_with_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandboxed()
    marker = sleeper()
    # The daemon is seen running before the command ends, so its absence after is the
    # sandbox's doing, not a sleeper that never started.
    daemon = (
        f"setsid sleep {marker} > /dev/null 2>&1 < /dev/null & sleep 0.2; "
        "kill -0 $! && echo daemon-running"
    )
    told, _, _ = await run(tmp_path, daemon, monkeypatch)
    assert "daemon-running" in told
    assert with_marker(marker) == []  # gone when the command ended


async def test_a_command_cannot_write_into_the_workspaces_git_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandboxed()
    project = tmp_path / "project"
    (project / ".git").mkdir(parents=True)
    (project / ".git" / "config").write_text("[core]\n")
    await run(tmp_path, 'printf "\\tfsmonitor = touch pwned\\n" >> .git/config', monkeypatch)
    assert (project / ".git" / "config").read_text() == "[core]\n"

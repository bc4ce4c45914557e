"""The real Lingma CLI (``qoderclicn`` 1.1.52) run whole inside the sandbox.

Offline, without an account (``--acp --fake-responses``, PROTOCOL.md §10.1): scripted
model turns make the CLI run its own Bash and Write tools for real, after asking
``session/request_permission``, which this test approves. The sandbox, not the approval,
must stop what leaves the workspace. Skipped, saying why, where the CLI or the sandbox is
not available. The read-only sandbox of chat mode is shown through the server, on the
same CLI (``test_real_cli_mcp.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest
from real_cli import empty_home_env, installed_cli, processes_with_home

from lingma_mcp.workspace.sandbox import cli_spec, cli_state_dirs, support, wrap

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux sandbox"),
]


def turn(part: dict[str, Any]) -> str:
    chunk = {"candidates": [{"content": {"parts": [part]}, "finishReason": "STOP"}]}
    return json.dumps({"method": "generateContentStream", "response": [chunk]}) + "\n"


def tool(name: str, **args: str) -> str:
    return turn({"functionCall": {"name": name, "args": args}})


async def run_cli(
    argv: list[str], env: dict[str, str], cwd: Path, turns: list[str], script: Path
) -> list[dict[str, Any]]:
    """One prompt through ACP, approving every permission; the tool calls' final updates."""
    await asyncio.to_thread(script.write_text, "".join(turns))
    proc = await asyncio.create_subprocess_exec(
        *argv,
        "--acp",
        "--fake-responses",
        str(script),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        cwd=cwd,
        env=env,
        start_new_session=True,
        limit=16 * 1024 * 1024,
    )
    assert proc.stdin is not None and proc.stdout is not None
    stdin, stdout = proc.stdin, proc.stdout
    finished: list[dict[str, Any]] = []
    count = 0

    def send(message: dict[str, Any]) -> None:
        stdin.write((json.dumps({"jsonrpc": "2.0", **message}) + "\n").encode())

    async def call(method: str, params: dict[str, Any]) -> dict[str, Any]:
        nonlocal count
        count += 1
        ours = f"test-{count}"
        send({"id": ours, "method": method, "params": params})
        while True:
            line = await stdout.readline()
            assert line, "the CLI ended before answering"
            try:
                message = json.loads(line)
            except ValueError:
                continue  # not ACP
            if message.get("method") == "session/request_permission":
                outcome = {"outcome": "selected", "optionId": "proceed_once"}
                send({"id": message["id"], "result": {"outcome": outcome}})
            elif message.get("method") == "session/update":
                update = message["params"]["update"]
                if update.get("sessionUpdate") == "tool_call_update" and update.get("status") in (
                    "completed",
                    "failed",
                ):
                    finished.append(update)
            elif "method" in message and "id" in message:
                send({"id": message["id"], "error": {"code": -32601, "message": "not here"}})
            elif message.get("id") == ours:
                assert "error" not in message, message
                return message["result"]

    try:
        await call("initialize", {"protocolVersion": 1, "clientCapabilities": {}})
        session = await call("session/new", {"cwd": str(cwd), "mcpServers": []})
        prompt = [{"type": "text", "text": "go"}]
        await call("session/prompt", {"sessionId": session["sessionId"], "prompt": prompt})
    finally:
        # It takes seconds to leave on SIGTERM (PROTOCOL.md §10): the whole group goes.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
        # Its pipes closed here, not by the garbage collector once this test's loop is gone
        # (which Python 3.10 reports as an error).
        stdin.close()
        await stdout.read()
    return finished


def texts(updates: list[dict[str, Any]]) -> list[str]:
    return [str(u.get("rawOutput", "")) for u in updates]


@pytest.fixture
def cli() -> Path:
    here = support()
    if here.mechanism != "landlock":
        pytest.skip(f"no sandbox on this machine: {here.reason}")
    return installed_cli()


async def test_the_cli_works_in_its_workspace_and_cannot_write_outside(
    cli: Path, tmp_path: Path
) -> None:
    home = (tmp_path / "home").resolve()
    workspace = (tmp_path / "project").resolve()
    outside = (tmp_path / "outside").resolve()
    tmpdir = (tmp_path / "tmp").resolve()
    for folder in (workspace, outside, tmpdir):
        folder.mkdir()
    env = {**empty_home_env(home), "QODER_FAKE_STREAM_DELAY_MS": "5", "TMPDIR": str(tmpdir)}
    (home / ".bashrc").write_text("# mine\n")
    spec = cli_spec(workspace, cli_state_dirs(env), "workspace-write", tmpdir=tmpdir)
    turns = [
        tool("Bash", command="echo hi > made.txt"),
        tool("Bash", command=f"touch {outside}/x"),
        tool("Bash", command="echo x >> ~/.bashrc"),
        tool("Write", file_path=str(outside / "w.txt"), content="w\n"),
        tool("Write", file_path=str(workspace / "in.txt"), content="in\n"),
        turn({"text": "done"}),
    ]
    updates = await run_cli(wrap([str(cli)], spec), env, workspace, turns, tmp_path / "turns.jsonl")
    assert [u["status"] for u in updates] == [
        "completed",
        "failed",
        "failed",
        "failed",
        "completed",
    ], texts(updates)
    assert all("Permission denied" in t for t in texts(updates)[1:4]), texts(updates)
    assert (workspace / "made.txt").read_text() == "hi\n"
    assert (workspace / "in.txt").read_text() == "in\n"
    assert list(outside.iterdir()) == []
    assert (home / ".bashrc").read_text() == "# mine\n"
    assert (home / ".qoder-cn").is_dir()  # its own state is writable
    assert processes_with_home(home) == []  # nothing it started is left

"""Issue 18's ACP shapes confirmed on the real ``qoderclicn`` 1.1.52, run offline.

``--fake-responses FILE`` (PROTOCOL.md section 10.1) replays scripted model turns without
an account; every new, forked or loaded session plays the script from its first line.
The CLI then really takes the attachments, counts usage, forks, lists, loads and deletes.
Skipped, saying why, where the CLI is not installed.
"""

from __future__ import annotations

import json
import os
import stat
import struct
import sys
import zlib
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from real_cli import empty_home_env, installed_cli

from lingma_mcp.acp import start_agent
from lingma_mcp.acp.attachments import prompt_blocks
from lingma_mcp.backend import FileAttachment, FolderAttachment, ImageAttachment, Usage
from lingma_mcp.config import Settings
from lingma_mcp.errors import RequestRefused, UnknownSession
from lingma_mcp.events import Finish, TextDelta
from lingma_mcp.server.app import build_app

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(sys.platform == "win32", reason="a POSIX shell wraps the CLI"),
]


def text_turn(text: str, tokens: tuple[int, int] | None = None) -> str:
    chunk: dict[str, Any] = {
        "candidates": [{"content": {"parts": [{"text": text}]}, "finishReason": "STOP"}]
    }
    if tokens is not None:
        chunk["usageMetadata"] = {
            "promptTokenCount": tokens[0],
            "candidatesTokenCount": tokens[1],
            "totalTokenCount": sum(tokens),
        }
    return json.dumps({"method": "generateContentStream", "response": [chunk]}) + "\n"


SCRIPT = text_turn("saw them", (11, 7)) + text_turn("second answer", (3, 2))


def png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
        + chunk(b"IEND", b"")
    )


@pytest.fixture
def offline(tmp_path: Path) -> tuple[Path, Path, dict[str, str]]:
    """The installed CLI, a workspace with a file, a folder and an image, the script, and an
    environment with an empty HOME."""
    binary = installed_cli()
    workspace = (tmp_path / "project").resolve()
    (workspace / "src").mkdir(parents=True)
    (workspace / "src" / "a.txt").write_text("alpha\n")
    (workspace / "shot.png").write_bytes(png())
    script = tmp_path / "script.jsonl"
    script.write_text(SCRIPT)
    env = empty_home_env((tmp_path / "home").resolve())
    env["QODER_FAKE_STREAM_DELAY_MS"] = "5"
    return binary, script, env


async def collect(stream: Any) -> list[Any]:
    return [event async for event in stream]


async def test_the_real_cli_takes_attachments_counts_usage_forks_and_deletes(
    tmp_path: Path, offline: tuple[Path, Path, dict[str, str]]
) -> None:
    binary, script, env = offline
    workspace = tmp_path / "project"
    handle = await start_agent(
        binary,
        extra_args=["--fake-responses", str(script)],
        cwd=workspace,
        env=env,
        startup_timeout=60,
        control_timeout=60,
    )
    client = handle.client
    try:
        caps = client.prompt_capabilities
        assert caps is not None and caps.image and caps.embedded_context
        assert client.can_fork and client.can_delete
        session = await client.new_session(workspace)
        attachments = [
            FileAttachment(workspace / "src" / "a.txt", "src/a.txt", "text/plain", 6, "alpha\n"),
            FolderAttachment(workspace / "src", "src"),
            ImageAttachment(png(), "image/png", "shot.png", workspace / "shot.png"),
        ]
        events = await collect(client.prompt(session, prompt_blocks("look", attachments, caps)))
        finish = events[-1]
        assert isinstance(finish, Finish) and finish.reason == "success"
        assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "saw them"
        # Counted, since start_agent sets QODERCN_EXPOSE_TOKEN_USAGE=1.
        assert finish.usage == Usage(11, 7, 18, model="auto")

        # With a script the model has no effort levels: a question's own is refused, the
        # server's default skipped.
        assert client.effort(session) is None
        with pytest.raises(RequestRefused, match="offers no reasoning effort"):
            await client.set_effort(session, "high")
        await client.set_effort(session, "high", optional=True)

        fork = await client.fork_session(session, workspace)
        assert fork != session
        forked = await collect(client.prompt(fork, "and now?"))
        assert isinstance(forked[-1], Finish) and forked[-1].reason == "success"
        listed = {s.session_id for s in await client.list_sessions(workspace)}
        assert {session, fork} <= listed

        await client.delete_session(fork)
        assert fork not in {s.session_id for s in await client.list_sessions(workspace)}
        with pytest.raises(UnknownSession):
            await client.delete_session(fork)
    finally:
        await handle.close()


def wrapper(tmp_path: Path, binary: Path, script: Path) -> Path:
    """A --cli-bin that runs the real CLI offline."""
    path = tmp_path / "qoderclicn-offline"
    path.write_text(
        "#!/bin/sh\n"
        f'exec env QODER_FAKE_STREAM_DELAY_MS=5 "{binary}" --fake-responses "{script}" "$@"\n'
    )
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


async def test_mcp_on_the_real_cli_attaches_reports_usage_forks_lists_and_shows_turns(
    tmp_path: Path, offline: tuple[Path, Path, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    binary, script, env = offline
    # The server's own HOME, so the sandbox it runs the CLI in lets it keep its state there;
    # no token, so nothing but the offline run logs it in.
    monkeypatch.setenv("HOME", env["HOME"])
    for name in [n for n in os.environ if n.startswith("QODERCN_")]:
        monkeypatch.delenv(name)
    settings = Settings(
        backend="cli",
        cli_bin=str(wrapper(tmp_path, binary, script)),
        workspace=tmp_path / "project",
        work_dir=tmp_path / "work",
        startup_timeout=90,
        request_timeout=120,
    )
    async with Client(build_app(settings)) as client:
        asked = await client.call_tool(
            "ask_lingma",
            {
                "prompt": "look",
                "attachments": [
                    {"type": "file", "path": "src/a.txt"},
                    {"type": "image", "path": "shot.png"},
                ],
            },
        )
        assert not asked.is_error, asked.content[0].text
        first = asked.structured_content
        assert first["answer"] == "saw them"
        assert first["usage"] == {
            "input_tokens": 11,
            "output_tokens": 7,
            "total_tokens": 18,
            "model": "auto",
            "credits": None,
        }
        forked = await client.call_tool(
            "ask_lingma", {"prompt": "again", "session_id": first["session_id"], "fork": True}
        )
        assert not forked.is_error, forked.content[0].text
        assert forked.structured_content["forked_from"] == first["session_id"]
        listed = await client.call_tool("list_lingma_sessions", {})
        ids = [s["session_id"] for s in listed.structured_content["sessions"]]
        assert {first["session_id"], forked.structured_content["session_id"]} <= set(ids)
    # A new CLI process: the turns come only from the replay of session/load.
    async with Client(build_app(settings)) as client:
        read = await client.read_resource(f"lingma://sessions/{first['session_id']}")
    turns = json.loads(read.contents[0].text)["turns"]
    assert len(turns) == 1 and turns[0]["answer"] == "saw them"
    # The CLI keeps the prompt with its references and the embedded text.
    assert turns[0]["question"].startswith("look") and "alpha" in turns[0]["question"]

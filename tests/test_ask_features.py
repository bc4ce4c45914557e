"""What hosts ask of a coding agent behind MCP (issue 18), through the MCP face on both
simulators: attachments, usage, the conversation tools and forks, reasoning effort, and
which credential the CLI logs in with.

The server runs in this process and is called through the SDK's in-memory client; each
backend's simulator is the one process started, as the real program would be.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from fakes import Progress, png, text_of
from mcp import Client
from servers import mcp_server, sent_to_agent, sent_to_lingma

from lingma_mcp.acp.cli_errors import NOT_LOGGED_IN_MESSAGE
from lingma_mcp.acp.credentials import credential_in
from lingma_mcp.workspace.command_env import clean_env

pytestmark = pytest.mark.timeout(90)

TOKEN_VARIABLES = (
    "QODERCN_PERSONAL_ACCESS_TOKEN",
    "QODERCN_PAT",
    "QODERCN_SERVICE_ACCOUNT_KEY",
    "QODERCN_JOB_TOKEN",
)


@pytest.fixture
def sims(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A workspace with a file, a folder and an image; no token is set."""
    for name in TOKEN_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    workspace = tmp_path / "project"
    (workspace / "src").mkdir(parents=True)
    (workspace / "src" / "app.py").write_text("print('hi')\n")
    (workspace / "shot.png").write_bytes(png())
    return workspace


@asynccontextmanager
async def server(tmp_path: Path, backend: str = "cli", **settings: Any) -> AsyncIterator[Client]:
    """The server on ``backend``'s simulator, for a client of the newest protocol; the IDE
    simulator's answers whole (they quote what came with the question)."""
    async with mcp_server(
        tmp_path,
        {"LINGMA_SIM_DELTA_DELAY": "0", "LINGMA_SIM_ANSWER_SIZE": ""},
        backend=backend,
        host={"mode": "auto"},
        **settings,
    ) as client:
        yield client


async def ask(client: Client, **arguments: Any) -> Any:
    result = await client.call_tool("ask_lingma", arguments)
    return result


# -- attachments ---------------------------------------------------------------------------


async def test_attachments_reach_the_cli_as_content_blocks_and_the_result_and_progress_name_them(
    tmp_path: Path, sims: Path
) -> None:
    inline = base64.b64encode(png()).decode()
    progress = Progress()
    async with server(tmp_path) as client:
        result = await client.call_tool(
            "ask_lingma",
            {
                "prompt": "look",
                "attachments": [
                    {"type": "file", "path": "src/app.py"},
                    {"type": "folder", "path": "src"},
                    {"type": "image", "path": "shot.png"},
                    {"type": "image", "data": inline, "mime_type": "image/png"},
                ],
            },
            progress_callback=progress,
        )
    assert not result.is_error, text_of(result)
    (prompt,) = sent_to_agent(tmp_path, "session/prompt")
    blocks = prompt["params"]["prompt"]
    assert [b["type"] for b in blocks] == ["text", "resource", "resource_link", "image", "image"]
    assert blocks[1]["resource"]["text"] == "print('hi')\n"
    assert blocks[2]["uri"] == (sims / "src").resolve().as_uri()
    assert blocks[3]["data"] == blocks[4]["data"] == inline
    assert [a["name"] for a in result.structured_content["attachments"]] == [
        "src/app.py",
        "src",
        "shot.png",
        "image 1",
    ]
    assert progress.status[0] == "[lingma] " + (
        "attached: src/app.py (file, 12 B), src (folder), shot.png (image, 69 B), "
        "image 1 (image, 69 B)"
    )


async def test_an_attachment_outside_the_workspace_is_refused_before_lingma_is_asked(
    tmp_path: Path, sims: Path
) -> None:
    (tmp_path / "secret.txt").write_text("token")
    async with server(tmp_path) as client:
        result = await ask(
            client, prompt="look", attachments=[{"type": "file", "path": "../secret.txt"}]
        )
    assert result.is_error
    assert text_of(result).startswith("Invalid argument attachments: '../secret.txt' is outside")
    assert sent_to_agent(tmp_path, "session/prompt") == []


async def test_the_ide_backend_sends_files_as_chat_context_and_refuses_images_naming_the_cli(
    tmp_path: Path, sims: Path
) -> None:
    async with server(tmp_path, backend="ide") as client:
        sent = await ask(
            client, prompt="look", attachments=[{"type": "file", "path": "src/app.py"}]
        )
        refused = await ask(
            client,
            prompt="look",
            attachments=[
                {"type": "file", "path": "src/app.py"},
                {"type": "image", "path": "shot.png"},
            ],
        )
    assert not sent.is_error, text_of(sent)
    (chat,) = sent_to_lingma(tmp_path, "chat/ask")
    path = str((sims / "src" / "app.py").resolve())
    assert chat["params"]["extra"]["context"] == [
        {"type": "file", "path": path, "name": "src/app.py"}
    ]
    # The simulator's answer names what arrived (a path cut to 80 characters).
    assert f"Attached: context file {path[:80]}" in sent.structured_content["answer"]
    assert refused.is_error and "the image shot.png cannot be sent" in text_of(refused)
    assert "--backend cli" in text_of(refused)
    assert len(sent_to_lingma(tmp_path, "chat/ask")) == 1  # the refused one was never sent


# -- usage -----------------------------------------------------------------------------------


async def test_usage_comes_from_the_cli_prompt_result_and_is_absent_where_unknown(
    tmp_path: Path, sims: Path
) -> None:
    async with server(tmp_path) as client:
        cli = await ask(client, prompt="count my tokens please")
    async with server(tmp_path, backend="ide") as client:
        ide = await ask(client, prompt="and mine")
    usage = cli.structured_content["usage"]
    # The simulator counts a token per four characters, as the CLI started with
    # QODERCN_EXPOSE_TOKEN_USAGE=1 (which the backend sets) counts real ones.
    assert usage["input_tokens"] > 0 and usage["output_tokens"] > 0
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert usage["model"] == "auto" and usage["credits"] is None
    assert ide.structured_content["usage"] is None  # its chat/finish says nothing: not 0


# -- conversations -------------------------------------------------------------------------


async def test_fork_continues_a_copy_and_leaves_the_conversation_as_it_was(
    tmp_path: Path, sims: Path
) -> None:
    async with server(tmp_path) as client:
        first = await ask(client, prompt="my name is Ada")
        original = first.structured_content["session_id"]
        forked = await ask(client, prompt="who am I?", session_id=original, fork=True)
        detail = await client.read_resource(f"lingma://sessions/{original}")
    assert not forked.is_error, text_of(forked)
    data = forked.structured_content
    assert data["forked_from"] == original and data["session_id"] != original
    assert data["continued"] is True
    assert data["answer"].startswith("Earlier you said: my name is Ada.")
    (fork_call,) = sent_to_agent(tmp_path, "session/fork")
    assert fork_call["params"]["sessionId"] == original
    turns = json.loads(detail.contents[0].text)["turns"]
    assert [t["question"] for t in turns] == ["my name is Ada"]


async def test_a_fork_needs_a_session_and_the_ide_backend_refuses_one(
    tmp_path: Path, sims: Path
) -> None:
    async with server(tmp_path, backend="ide") as client:
        alone = await ask(client, prompt="x", fork=True)
        first = await ask(client, prompt="hello")
        ide = await ask(
            client, prompt="x", session_id=first.structured_content["session_id"], fork=True
        )
    assert alone.is_error and text_of(alone).startswith(
        "Invalid argument fork: it needs the session_id of the conversation to fork."
    )
    assert ide.is_error and "the IDE backend cannot fork a conversation" in text_of(ide)
    assert "--backend cli" in text_of(ide)


async def test_the_cli_conversation_shows_its_turns_from_the_load_replay_after_a_restart(
    tmp_path: Path, sims: Path
) -> None:
    async with server(tmp_path) as client:
        first = await ask(client, prompt="first question")
        session = first.structured_content["session_id"]
        await ask(client, prompt="second question", session_id=session)
    async with server(tmp_path) as client:  # a new CLI: only session/load has the turns
        detail = json.loads(
            (await client.read_resource(f"lingma://sessions/{session}")).contents[0].text
        )
        again = await ask(client, prompt="third", session_id=session)
    assert [(t["question"], t["answer"]) for t in detail["turns"]] == [
        ("first question", "Answer to: first question"),
        ("second question", "Earlier you said: first question. Answer to: second question"),
    ]
    # The replay stays out of the next answer.
    assert (
        again.structured_content["answer"] == "Earlier you said: second question. Answer to: third"
    )


@pytest.mark.parametrize("backend", ["cli", "ide"])
async def test_list_lingma_sessions_gives_the_newest_first_bounded_by_limit(
    tmp_path: Path, sims: Path, backend: str
) -> None:
    async with server(tmp_path, backend=backend) as client:
        ids = []
        for prompt in ("one", "two", "three"):
            ids.append((await ask(client, prompt=prompt)).structured_content["session_id"])
        listed = await client.call_tool("list_lingma_sessions", {"limit": 2})
        too_many = await client.call_tool("list_lingma_sessions", {"limit": 500})
    data = listed.structured_content
    assert data["total"] == 3 and [s["session_id"] for s in data["sessions"]] == ids[:0:-1]
    assert data["sessions"][0]["title"] == "three" and data["sessions"][0]["backend"] == backend
    assert data["sessions"][0]["updated"].endswith("Z")
    assert too_many.is_error and "Invalid argument limit" in text_of(too_many)


@pytest.mark.parametrize("backend", ["cli", "ide"])
async def test_delete_lingma_session_removes_it_and_an_unknown_id_says_where_ids_are(
    tmp_path: Path, sims: Path, backend: str
) -> None:
    async with server(tmp_path, backend=backend) as client:
        session = (await ask(client, prompt="doomed")).structured_content["session_id"]
        deleted = await client.call_tool("delete_lingma_session", {"session_id": session})
        listed = await client.call_tool("list_lingma_sessions", {})
        again = await client.call_tool("delete_lingma_session", {"session_id": session})
        resumed = await ask(client, prompt="still there?", session_id=session)
    assert not deleted.is_error and deleted.structured_content == {
        "session_id": session,
        "deleted": True,
    }
    assert session not in [s["session_id"] for s in listed.structured_content["sessions"]]
    assert again.is_error and text_of(again) == (
        f"Lingma knows no conversation {session!r}. list_lingma_sessions lists the ones it "
        "has; leave session_id out to start a new conversation."
    )
    if backend == "cli":  # the IDE binary starts a new conversation (continued: false)
        assert resumed.is_error and "list_lingma_sessions" in text_of(resumed)


# -- reasoning effort ------------------------------------------------------------------------


async def test_reasoning_effort_is_set_through_the_clis_option_and_refused_with_its_values(
    tmp_path: Path, sims: Path
) -> None:
    async with server(tmp_path) as client:
        chosen = await ask(client, prompt="think hard", reasoning_effort="max")
        refused = await ask(client, prompt="think harder", reasoning_effort="ultra")
    assert not chosen.is_error, text_of(chosen)
    effort = [
        m["params"]
        for m in sent_to_agent(tmp_path, "session/set_config_option")
        if m["params"]["configId"] == "reasoning_effort"
    ]
    assert [e["value"] for e in effort] == ["max"]
    assert text_of(refused) == (
        "Invalid argument reasoning_effort: 'ultra' is not offered for this session's model. "
        "Send one of none, high, max (the values the Lingma CLI offers), or nothing."
    )


async def test_without_effort_levels_the_question_is_refused_but_the_server_default_skipped(
    tmp_path: Path, sims: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LINGMA_SIM_ACP_EFFORTS", "")  # as the CLI with a model without levels
    async with server(tmp_path, reasoning_effort="high") as client:
        skipped = await ask(client, prompt="default effort")
        asked = await ask(client, prompt="own effort", reasoning_effort="high")
    assert not skipped.is_error, text_of(skipped)
    assert asked.is_error and "offers no reasoning effort for this session's model" in text_of(
        asked
    )
    assert sent_to_agent(tmp_path, "session/set_config_option") == []


async def test_the_ide_backend_refuses_a_reasoning_effort_and_skips_the_servers_default(
    tmp_path: Path, sims: Path
) -> None:
    async with server(tmp_path, backend="ide", reasoning_effort="high") as client:
        skipped = await ask(client, prompt="default effort")
        asked = await ask(client, prompt="own effort", reasoning_effort="high")
    assert not skipped.is_error, text_of(skipped)
    assert asked.is_error and "the IDE backend has no reasoning effort option" in text_of(asked)


# -- headless credentials ----------------------------------------------------------------


async def test_auth_status_names_the_clis_credential_kind_and_never_its_value(
    tmp_path: Path, sims: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "pt-" + "s3cr3t" * 6
    monkeypatch.setenv("QODERCN_PAT", secret)
    async with server(tmp_path) as client:
        status = await client.call_tool("auth_status", {})
        login = await client.call_tool("login", {})
    assert status.structured_content["credential"] == "personal access token (QODERCN_PAT)"
    assert "with the personal access token (QODERCN_PAT)" in text_of(status)
    everything = json.dumps(status.model_dump()) + json.dumps(login.model_dump())
    assert secret not in everything
    # The login tool explains both ways, and what a token in the environment means.
    explained = text_of(login)
    assert "qoderclicn login" in explained and "QODERCN_SERVICE_ACCOUNT_KEY" in explained
    assert "inherit its environment, token included" in explained


async def test_a_token_in_the_servers_environment_reaches_the_cli_and_logs_it_in(
    tmp_path: Path, sims: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The simulator, like the CLI, adopts a token from its environment at start: logged
    # out without one, logged in with one, so a login here means the token went through.
    monkeypatch.setenv("LINGMA_SIM_ACP_AUTH", "logged_out")
    async with server(tmp_path) as client:
        without = await client.call_tool("auth_status", {})
    monkeypatch.setenv("QODERCN_SERVICE_ACCOUNT_KEY", "sa-" + "k" * 30)
    async with server(tmp_path) as client:
        with_key = await client.call_tool("auth_status", {})
    assert without.structured_content["logged_in"] is False
    assert with_key.structured_content["logged_in"] is True
    assert with_key.structured_content["credential"] == (
        "service account key (QODERCN_SERVICE_ACCOUNT_KEY)"
    )


async def test_without_a_token_the_cli_logs_in_with_its_stored_login(
    tmp_path: Path, sims: Path
) -> None:
    async with server(tmp_path) as client:
        status = await client.call_tool("auth_status", {})
    assert status.structured_content["credential"] == "stored login (qoderclicn login)"


def test_the_credential_is_the_first_token_variable_set_and_a_refused_one_is_named() -> None:
    both = credential_in({"QODERCN_PAT": "a", "QODERCN_PERSONAL_ACCESS_TOKEN": "b"})
    assert str(both) == "personal access token (QODERCN_PERSONAL_ACCESS_TOKEN)"
    assert "did not accept the personal access token in QODERCN_PERSONAL_ACCESS_TOKEN" in (
        both.refused()
    )
    blank = credential_in({"QODERCN_JOB_TOKEN": "  "})
    assert not blank.token and blank.refused() == NOT_LOGGED_IN_MESSAGE


def test_commands_lingma_mcp_runs_never_see_the_clis_token_variables() -> None:
    server_env = {name: "secret" for name in TOKEN_VARIABLES} | {"PATH": "/usr/bin"}
    assert clean_env(server_env) == {"PATH": "/usr/bin"}

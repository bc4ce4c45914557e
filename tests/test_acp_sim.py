"""``lingma-sim acp`` on the wire: raw JSON lines, as awkward as PROTOCOL.md §10 says."""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import signal
import sys
from pathlib import Path
from typing import Any

import pytest
from acp_fakes import (
    SIM_ARGS,
    LinePeer,
    approve_once,
    choosing,
    fake_call,
    fake_text,
    sim_argv,
    sim_env,
    write_script,
)
from procs import wait_gone, wait_until

from lingma_mcp.sim.acp.agent import AcpSimAgent
from lingma_mcp.sim.acp.options import from_env
from lingma_mcp.sim.acp.wire import Wire

pytestmark = pytest.mark.timeout(60)

AUTH_REQUIRED = {"code": -32000, "message": "Authentication required: Authentication is required."}
CANCELLED = {"outcome": {"outcome": "cancelled"}}
# A whole 2x2 PNG (73 bytes).
PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAEElEQVR4nGP4z8AARAwQCgAf7gP9i18U1AAAAABJRU5"
    "ErkJggg=="
)


class RawSim:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    def send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write((json.dumps({"jsonrpc": "2.0", **message}) + "\n").encode())

    async def next(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        while True:
            line = await self.process.stdout.readline()
            assert line, "the simulator closed its stdout"
            try:
                return json.loads(line)
            except ValueError:
                continue

    async def reply_to(self, msg_id: Any) -> dict[str, Any]:
        while True:
            message = await self.next()
            if message.get("id") == msg_id and "method" not in message:
                return message


async def start(tmp_path: Path, *args: str, **switches: str) -> RawSim:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *SIM_ARGS,
        *args,
        env=sim_env(tmp_path / "state", **switches),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    return RawSim(process)


async def stop(sim: RawSim) -> None:
    if sim.process.returncode is None:
        sim.process.kill()
    await sim.process.communicate()


async def test_initialize_is_shaped_like_the_real_cli(tmp_path):
    sim = await start(tmp_path, "--acp")
    try:
        sim.send({"id": 0, "method": "initialize", "params": {"protocolVersion": 1}})
        result = (await sim.reply_to(0))["result"]
    finally:
        await stop(sim)
    assert result["protocolVersion"] == 1
    assert result["authMethods"][0]["id"] == "qoderclicn-login"
    caps = result["agentCapabilities"]
    assert caps["loadSession"] is True
    assert {"list", "resume", "close"} <= set(caps["sessionCapabilities"])
    assert caps["promptCapabilities"] == {"image": True, "embeddedContext": True}


async def test_logged_out_errors_match_the_real_cli(tmp_path):
    sim = await start(tmp_path, auth="logged_out")
    cwd = str(tmp_path)
    try:
        sim.send({"id": 0, "method": "initialize", "params": {"protocolVersion": 1}})
        await sim.reply_to(0)
        sim.send({"id": 1, "method": "authenticate", "params": {"methodId": "qoderclicn-login"}})
        sim.send({"id": 2, "method": "session/new", "params": {}})
        sim.send({"id": 3, "method": "session/new", "params": {"cwd": cwd, "mcpServers": []}})
        sim.send({"id": 4, "method": "session/list", "params": {}})
        load = {"sessionId": "x", "cwd": cwd, "mcpServers": []}
        sim.send({"id": 5, "method": "session/load", "params": load})
        sim.send({"id": 6, "method": "no/such", "params": {}})
        sim.send({"id": 7, "method": "session/cancel", "params": {"sessionId": "x"}})
        replies = {}
        while len(replies) < 6:
            message = await sim.next()
            replies[message["id"]] = message
    finally:
        sim.process.send_signal(signal.SIGTERM)
        _, stderr = await sim.process.communicate()
    # authenticate (id 1) never answers; everything sent after it does.
    assert set(replies) == {2, 3, 4, 5, 6, 7}
    assert replies[2]["error"]["code"] == -32602
    for msg_id in (3, 4, 5):
        assert replies[msg_id]["error"] == AUTH_REQUIRED
    assert replies[6]["error"]["code"] == -32601
    assert replies[6]["error"]["data"] == {"method": "no/such"}
    # session/cancel is a notification only; as a request it is refused.
    assert replies[7]["error"]["data"] == {"method": "session/cancel"}
    assert b"Authentication required" in stderr


async def test_end_of_input_is_ignored_and_sigterm_ends_it_with_chatter(tmp_path):
    sim = await start(tmp_path, sigterm_delay="0")
    sim.send({"id": 0, "method": "initialize", "params": {"protocolVersion": 1}})
    await sim.reply_to(0)
    assert sim.process.stdin is not None
    sim.process.stdin.close()
    sim.process.send_signal(signal.SIGTERM)
    stdout, _ = await sim.process.communicate()
    # Exit by the signal, not by the end of input; and not quietly.
    assert sim.process.returncode == 143
    assert b"goodbye" in stdout.splitlines()[-1]


async def test_a_start_up_failure_exits_with_the_asked_code(tmp_path):
    sim = await start(tmp_path, exit_at_start="7")
    _, stderr = await sim.process.communicate()
    assert sim.process.returncode == 7 and b"start-up failure" in stderr


async def test_help_lists_the_switches_and_the_instruction_language(tmp_path):
    process = await asyncio.create_subprocess_exec(
        sys.executable, *SIM_ARGS, "--help", stdout=asyncio.subprocess.PIPE
    )
    out, _ = await process.communicate()
    text = out.decode()
    for word in ("LINGMA_SIM_ACP_AUTH", "LINGMA_SIM_ACP_SIGTERM_DELAY", "@create", "@run", "@read"):
        assert word in text


# -- the agent acting on the disk itself, as qoderclicn 1.1.52 does ----------------------


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    return root.resolve()


@pytest.fixture
async def agent(tmp_path: Path, workspace: Path):
    """Start ``lingma-sim acp`` (tools on the disk) with switches; initialized peers."""
    peers: list[LinePeer] = []

    async def start(*args: str, answer=approve_once, env: dict | None = None, **switches: str):
        full = {**sim_env(tmp_path / "state", client_tools="0", **switches), **(env or {})}
        peer = await LinePeer.start(sim_argv(*args), cwd=workspace, env=full, answer=answer)
        peers.append(peer)
        await peer.result("initialize", {"protocolVersion": 1, "clientCapabilities": CLIENT_CAPS})
        return peer

    yield start
    for peer in peers:
        await peer.close()


CLIENT_CAPS = {"fs": {"readTextFile": True, "writeTextFile": True}, "terminal": True}


async def new_session(peer: LinePeer, workspace: Path) -> str:
    reply = await peer.result("session/new", {"cwd": str(workspace), "mcpServers": []})
    return reply["sessionId"]


async def prompt(peer: LinePeer, session: str, text: str, **extra: Any) -> dict[str, Any]:
    blocks = [{"type": "text", "text": text}, *extra.pop("blocks", [])]
    return await peer.call("session/prompt", {"sessionId": session, "prompt": blocks})


def tool_updates(peer: LinePeer, kind: str = "tool_call_update") -> list[dict[str, Any]]:
    return [u for u in peer.updates() if u["sessionUpdate"] == kind]


def answer_text(peer: LinePeer) -> str:
    return "".join(
        u["content"]["text"] for u in peer.updates() if u["sessionUpdate"] == "agent_message_chunk"
    )


async def test_an_approved_edit_after_a_read_changes_the_file_with_no_fs_request(agent, workspace):
    (workspace / "a.txt").write_text("alpha\nline2\n")
    peer = await agent()
    session = await new_session(peer, workspace)
    reply = await prompt(peer, session, "@read a.txt\n@edit a.txt alpha beta")
    assert reply["result"]["stopReason"] == "end_turn"
    assert (workspace / "a.txt").read_text() == "beta\nline2\n"
    [asked] = peer.requests()  # the Read asked nothing: one request, the Edit's permission
    assert asked["method"] == "session/request_permission" and asked["id"] == 0
    options = [(o["optionId"], o["kind"]) for o in asked["params"]["options"]]
    assert options == [
        ("proceed_always", "allow_always"),
        ("proceed_once", "allow_once"),
        ("cancel", "reject_once"),
    ]
    call = asked["params"]["toolCall"]
    assert (call["title"], call["kind"], call["_meta"]) == (
        "Edit a.txt",
        "edit",
        {"qoder": {"toolName": "Edit"}},
    )
    assert call["content"] == [
        {
            "type": "diff",
            "path": str(workspace / "a.txt"),
            "oldText": "alpha\nline2\n",
            "newText": "beta\nline2\n",
            "_meta": {"kind": "modify"},
        }
    ]
    done = [u for u in tool_updates(peer) if u.get("status") == "completed"]
    assert done[-1]["rawOutput"].startswith(f"Successfully modified file: {workspace / 'a.txt'}")
    assert "a.txt says: alpha" in answer_text(peer)


async def test_an_edit_without_an_earlier_read_fails_as_the_cli_does(agent, workspace):
    (workspace / "a.txt").write_text("alpha\n")
    peer = await agent()
    session = await new_session(peer, workspace)
    await prompt(peer, session, "@edit a.txt alpha beta")
    assert (workspace / "a.txt").read_text() == "alpha\n"
    assert peer.requests("session/request_permission")  # asked first, as the CLI
    [failed] = [u for u in tool_updates(peer) if u.get("status") == "failed"]
    assert failed["rawOutput"] == (
        "Error: File has not been read yet. Read it first before writing to it."
    )
    assert failed["content"][0]["content"]["text"].startswith("```\nError: File has not")


async def test_a_rejected_write_leaves_nothing_and_fails_with_the_cli_words(agent, workspace):
    peer = await agent(answer=choosing("reject_once"))
    session = await new_session(peer, workspace)
    reply = await prompt(peer, session, "@create new.txt hello")
    assert reply["result"]["stopReason"] == "end_turn"
    assert not (workspace / "new.txt").exists()
    call = peer.requests()[0]["params"]["toolCall"]
    assert call["content"][0]["oldText"] is None
    assert call["content"][0]["_meta"] == {"kind": "add"}
    [failed] = [u for u in tool_updates(peer) if u.get("status") == "failed"]
    assert failed["rawOutput"].startswith("The user doesn't want to proceed with this tool use.")


async def test_a_created_file_is_reported_as_the_cli_reports_it(agent, workspace):
    peer = await agent()
    session = await new_session(peer, workspace)
    await prompt(peer, session, "@create notes/new.txt first\\nsecond")
    assert (workspace / "notes" / "new.txt").read_text() == "first\nsecond"
    [start] = tool_updates(peer, "tool_call")
    assert (start["status"], start["kind"], start["title"]) == (
        "pending",
        "edit",
        "Write notes/new.txt",
    )
    done = tool_updates(peer)[-1]
    assert done["rawOutput"] == f"File created successfully at: {workspace / 'notes/new.txt'}"


async def test_a_mutating_command_asks_and_runs_here_a_read_only_one_does_not_ask(agent, workspace):
    peer = await agent()
    session = await new_session(peer, workspace)
    await prompt(peer, session, "@run echo hi\n@run touch made.txt && ls")
    assert (workspace / "made.txt").exists()
    [asked] = peer.requests()
    assert asked["params"]["toolCall"]["title"] == "touch made.txt && ls"
    assert asked["params"]["toolCall"]["content"][0]["content"]["text"] == "touch made.txt && ls"
    first = asked["params"]["options"][0]
    assert (first["optionId"], first["name"]) == (
        "proceed_always_and_save",
        'Always allow "touch, ls"',
    )
    starts = tool_updates(peer, "tool_call")
    assert all(
        s["content"] == [{"type": "terminal", "terminalId": s["toolCallId"]}] for s in starts
    )
    echo = starts[0]["toolCallId"]
    echoed = [u for u in tool_updates(peer) if u["toolCallId"] == echo]
    assert echoed[0]["_meta"]["terminal_output"] == {"terminal_id": echo, "data": "hi"}
    assert echoed[1]["status"] == "completed"
    assert echoed[1]["_meta"]["terminal_exit"] == {
        "terminal_id": echo,
        "exit_code": 0,
        "signal": None,
    }
    assert not [m for m in peer.requests() if m["method"].startswith(("fs/", "terminal/"))]


async def test_a_failing_command_fails_with_its_exit_code_and_output(agent, workspace):
    peer = await agent()
    session = await new_session(peer, workspace)
    await prompt(peer, session, "@run cat missing.txt")
    [failed] = tool_updates(peer)
    assert failed["status"] == "failed"
    assert failed["rawOutput"].startswith("Exit code 1\ncat: missing.txt")
    assert "_meta" not in failed


async def test_cancel_while_a_question_is_open_ends_the_prompt_and_a_late_yes_writes_nothing(
    agent, workspace
):
    questions: asyncio.Queue = asyncio.Queue()
    answers: asyncio.Queue = asyncio.Queue()

    async def hold(request):
        await questions.put(request)
        return await answers.get()

    peer = await agent(answer=hold)
    session = await new_session(peer, workspace)
    prompted = asyncio.ensure_future(prompt(peer, session, "@create late.txt no"))
    await questions.get()
    peer.notify("session/cancel", {"sessionId": session})
    reply = await prompted  # before the question is answered
    assert reply["result"]["stopReason"] == "cancelled"
    await answers.put({"outcome": {"outcome": "selected", "optionId": "proceed_once"}})
    # Another prompt's reply proves the late answer was read before we look at the disk.
    assert (await prompt(peer, session, "still here"))["result"]["stopReason"] == "end_turn"
    assert not (workspace / "late.txt").exists()


class InProcess:
    """The agent in this event loop, its output captured: for orderings that only a
    loop with nothing else to do can show (no process, no clock)."""

    def __init__(self, tmp_path: Path, **switches: str) -> None:
        env = sim_env(tmp_path / "state", client_tools="0", **switches)
        self.out = io.BytesIO()
        self.wire = Wire(self.out)
        self.agent = AcpSimAgent(self.wire, from_env(env))
        self.ids = itertools.count(1)

    def sent(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.out.getvalue().splitlines()]

    def request(self, method: str, params: dict[str, Any]) -> asyncio.Task[None]:
        message = {"jsonrpc": "2.0", "id": next(self.ids), "method": method, "params": params}
        return asyncio.ensure_future(self.agent.handle(message))

    def reply_to(self, msg_id: int) -> dict[str, Any] | None:
        return next((m for m in self.sent() if m.get("id") == msg_id and "method" not in m), None)

    @staticmethod
    async def settle() -> None:
        """Let every task run until all of them wait on something outside the loop."""
        for _ in range(50):
            await asyncio.sleep(0)


async def test_with_cancel_waits_the_prompt_ends_only_once_the_question_is_answered(
    tmp_path, workspace
):
    sim = InProcess(tmp_path, cancel_waits="1")
    await sim.request("session/new", {"cwd": str(workspace), "mcpServers": []})
    session = sim.sent()[0]["result"]["sessionId"]
    prompted = sim.request(
        "session/prompt",
        {"sessionId": session, "prompt": [{"type": "text", "text": "@create late.txt no"}]},
    )
    await sim.settle()
    [question] = [m for m in sim.sent() if m.get("method") == "session/request_permission"]
    await sim.agent.handle(
        {"jsonrpc": "2.0", "method": "session/cancel", "params": {"sessionId": session}}
    )
    await sim.settle()
    assert not prompted.done() and sim.reply_to(2) is None  # still waiting on the question
    sim.wire.received({"jsonrpc": "2.0", "id": question["id"], "result": CANCELLED})
    await prompted
    assert sim.reply_to(2)["result"]["stopReason"] == "cancelled"
    assert not (workspace / "late.txt").exists()


async def test_without_the_switch_a_cancel_ends_the_prompt_with_the_question_open(
    tmp_path, workspace
):
    sim = InProcess(tmp_path)
    await sim.request("session/new", {"cwd": str(workspace), "mcpServers": []})
    session = sim.sent()[0]["result"]["sessionId"]
    prompted = sim.request(
        "session/prompt",
        {"sessionId": session, "prompt": [{"type": "text", "text": "@create late.txt no"}]},
    )
    await sim.settle()
    await sim.agent.handle(
        {"jsonrpc": "2.0", "method": "session/cancel", "params": {"sessionId": session}}
    )
    await prompted  # nobody answered the question
    assert sim.reply_to(2)["result"]["stopReason"] == "cancelled"


async def test_an_error_comes_as_a_chunk_and_as_a_json_rpc_error(agent, workspace):
    peer = await agent()
    session = await new_session(peer, workspace)
    reply = await prompt(peer, session, "@error")
    assert reply["error"] == {
        "code": 500,
        "message": "The request could not be completed. Please try again.",
    }
    assert answer_text(peer) == "[Error] The request could not be completed. Please try again."


async def test_a_script_drives_the_tools_and_runs_out_as_the_cli_does(agent, workspace, tmp_path):
    (workspace / "a.txt").write_text("x\n")
    script = write_script(
        tmp_path / "script.jsonl",
        [
            fake_call("Read", file_path=str(workspace / "a.txt")),
            fake_call("Edit", file_path=str(workspace / "a.txt"), old_string="x", new_string="y"),
            fake_text("Done ", "editing."),
        ],
    )
    peer = await agent("--fake-responses", str(script), plan="1", think="1")
    session = await new_session(peer, workspace)
    first = await prompt(peer, session, "anything: the script answers")
    assert first["result"]["stopReason"] == "end_turn"
    assert (workspace / "a.txt").read_text() == "y\n"
    kinds = [u["sessionUpdate"] for u in peer.updates()]
    assert "plan" not in kinds and "agent_thought_chunk" not in kinds  # a script has neither
    assert answer_text(peer) == "Done editing."
    second = await prompt(peer, session, "more")
    assert (
        second["error"]["message"] == "The model service did not respond in time. Please try again."
    )
    # Each session reads the script from its start, as the CLI's do.
    other = await new_session(peer, workspace)
    await prompt(peer, other, "again")
    assert [m["params"]["toolCall"]["title"] for m in peer.requests()][-1] == "Edit a.txt"


async def test_load_replays_the_first_message_before_its_reply_and_the_rest_after(agent, workspace):
    peer = await agent()
    session = await new_session(peer, workspace)
    await prompt(peer, session, "first words\n@run echo replayed")
    await prompt(peer, session, "second words")
    await peer.close()
    peer = await agent()
    await peer.result(
        "session/load", {"sessionId": session, "cwd": str(workspace), "mcpServers": []}
    )
    await peer.result("session/list", {})  # everything sent after the reply has arrived
    incoming = peer.incoming()
    reply_at = next(i for i, m in enumerate(incoming) if "result" in m and "modes" in m["result"])
    before = [m["params"]["update"] for m in incoming[:reply_at] if m.get("method")]
    after = [m["params"]["update"] for m in incoming[reply_at:] if m.get("method")]
    assert [u["sessionUpdate"] for u in before] == ["user_message_chunk"]
    assert before[0]["content"]["text"] == "first words\n@run echo replayed"
    kinds = [u["sessionUpdate"] for u in after]
    assert kinds == [
        "tool_call",
        "agent_message_chunk",
        "user_message_chunk",
        "agent_message_chunk",
        "available_commands_update",
    ]
    tool = after[0]
    assert (tool["status"], tool["title"], tool["rawOutput"]["stdout"]) == (
        "completed",
        "echo replayed",
        "replayed",
    )
    assert all(u.get("messageId") for u in [*before, *after[1:4]])


async def test_fork_copies_the_history_and_delete_removes_a_session(agent, workspace):
    peer = await agent()
    session = await new_session(peer, workspace)
    await prompt(peer, session, "remember Ada")
    fork = await peer.result(
        "session/fork", {"sessionId": session, "cwd": str(workspace), "mcpServers": []}
    )
    forked = fork["sessionId"]
    assert forked != session and {"modes", "models", "configOptions"} <= set(fork)
    await prompt(peer, forked, "who?")
    assert "Earlier you said: remember Ada" in answer_text(peer)
    listed = (await peer.result("session/list", {}))["sessions"]
    assert [s["sessionId"] for s in listed] == [forked, session]  # newest first
    assert listed[0]["title"] == "who?"  # the title is the latest prompt, as the CLI's
    assert await peer.result("session/delete", {"sessionId": forked}) == {}
    listed = (await peer.result("session/list", {}))["sessions"]
    assert [s["sessionId"] for s in listed] == [session]
    missing = await peer.call("session/delete", {"sessionId": forked})
    assert missing["error"]["code"] == -32602
    assert missing["error"]["message"].startswith(f'Invalid session identifier "{forked}".')
    assert missing["error"]["data"]["code"] == "INVALID_SESSION_IDENTIFIER"


async def test_reasoning_effort_is_a_config_option_and_a_bad_value_is_refused(agent, workspace):
    peer = await agent()
    reply = await peer.result("session/new", {"cwd": str(workspace), "mcpServers": []})
    options = {o["id"]: o for o in reply["configOptions"]}
    assert list(options) == ["mode", "model", "reasoning_effort"]
    effort = options["reasoning_effort"]
    assert (effort["type"], effort["category"], effort["currentValue"]) == (
        "select",
        "model",
        "none",
    )
    assert [(o["value"], o["name"]) for o in effort["options"]] == [
        ("none", "None"),
        ("high", "High"),
        ("max", "Max"),
    ]
    session = reply["sessionId"]
    bad = await peer.call(
        "session/set_config_option",
        {"sessionId": session, "configId": "reasoning_effort", "value": "extreme"},
    )
    assert bad["error"] == {
        "code": -32602,
        "message": "Invalid params: Invalid value for config option reasoning_effort: extreme",
        "data": {"configId": "reasoning_effort", "value": "extreme"},
    }
    good = await peer.result(
        "session/set_config_option",
        {"sessionId": session, "configId": "reasoning_effort", "value": "max"},
    )
    chosen = {o["id"]: o["currentValue"] for o in good["configOptions"]}
    assert chosen["reasoning_effort"] == "max"
    assert tool_updates(peer, "config_option_update")


async def test_without_efforts_the_option_is_absent_as_with_a_script(agent, workspace):
    peer = await agent(efforts="")
    reply = await peer.result("session/new", {"cwd": str(workspace), "mcpServers": []})
    assert [o["id"] for o in reply["configOptions"]] == ["mode", "model"]


@pytest.mark.parametrize("exposed", [False, True])
async def test_usage_counts_only_when_the_cli_is_told_to_expose_it(
    agent, workspace, tmp_path, exposed
):
    usage = {"promptTokenCount": 11, "candidatesTokenCount": 7, "totalTokenCount": 18}
    script = write_script(tmp_path / "usage.jsonl", [fake_text("counted", usage=usage)])
    env = {"QODERCN_EXPOSE_TOKEN_USAGE": "1"} if exposed else {}
    peer = await agent(env=env, script=str(script))  # LINGMA_SIM_ACP_SCRIPT, not the flag
    session = await new_session(peer, workspace)
    result = (await prompt(peer, session, "count"))["result"]
    tokens = (11, 7) if exposed else (0, 0)
    assert result["usage"] == {
        "inputTokens": tokens[0],
        "outputTokens": tokens[1],
        "totalTokens": sum(tokens),
    }
    assert result["_meta"]["quota"]["model_usage"] == [
        {"model": "auto", "token_count": {"input_tokens": tokens[0], "output_tokens": tokens[1]}}
    ]
    assert result["userMessageId"]


async def test_attachments_arrive_and_the_answer_names_them(agent, workspace):
    (workspace / "linked.txt").write_text("linked text\n")
    peer = await agent()
    session = await new_session(peer, workspace)
    blocks = [
        {"type": "image", "data": PNG, "mimeType": "image/png"},
        {
            "type": "resource",
            "resource": {
                "uri": "file:///notes/embedded.md",
                "mimeType": "text/markdown",
                "text": "hi",
            },
        },
        {"type": "resource_link", "uri": (workspace / "linked.txt").as_uri(), "name": "linked.txt"},
    ]
    reply = await prompt(peer, session, "look", blocks=blocks)
    assert reply["result"]["stopReason"] == "end_turn"
    assert "userMessageId" not in reply["result"]  # as the CLI, for a prompt with attachments
    answer = answer_text(peer)
    assert "image image/png (73 bytes)" in answer
    assert "resource file:///notes/embedded.md (2 characters)" in answer
    assert (
        f"resource_link linked.txt {(workspace / 'linked.txt').as_uri()} (12 characters)" in answer
    )


async def test_an_image_that_does_not_decode_fails_twice_and_audio_is_refused(agent, workspace):
    peer = await agent()
    session = await new_session(peer, workspace)
    cut = PNG[: len(PNG) // 2]
    broken = await prompt(
        peer, session, "see", blocks=[{"type": "image", "data": cut, "mimeType": "image/png"}]
    )
    assert broken["error"]["code"] == 500
    assert broken["error"]["message"].startswith("Unable to attach image")
    assert answer_text(peer).startswith("[Error] Unable to attach image")
    audio = await prompt(
        peer, session, "hear", blocks=[{"type": "audio", "data": "AAAA", "mimeType": "audio/wav"}]
    )
    assert audio["error"] == {
        "code": -32602,
        "message": "Invalid params: Audio prompts are not supported by the selected Qoder runtime.",
        "data": {"mimeType": "audio/wav"},
    }


async def test_a_token_in_the_environment_logs_it_in_and_is_never_shown(agent, workspace):
    secret = "pt-sim-secret-value-1234"
    peer = await agent(auth="logged_out", env={"QODERCN_PAT": secret}, verbose="1")
    session = await new_session(peer, workspace)
    await prompt(peer, session, "@run echo ok")
    stderr = await peer.close()
    assert "QODERCN_PAT" in stderr
    wire = json.dumps([message for _, message in peer.log])
    assert secret not in stderr and secret not in wire


async def test_a_slow_session_new_does_not_hold_up_other_requests(agent, workspace):
    peer = await agent(new_delay="600")
    slow = asyncio.ensure_future(
        peer.call("session/new", {"cwd": str(workspace), "mcpServers": []})
    )
    await peer.result("session/list", {})
    assert not slow.done()
    slow.cancel()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
async def test_a_command_still_running_is_killed_when_a_signal_ends_the_simulator(agent, workspace):
    peer = await agent()
    session = await new_session(peer, workspace)
    prompted = asyncio.ensure_future(
        prompt(peer, session, "@run echo $$ > pid.txt; exec sleep 600")
    )
    pid_file = workspace / "pid.txt"
    await wait_until(lambda: pid_file.exists() and pid_file.read_text().strip())
    command = int(pid_file.read_text())
    peer.process.send_signal(signal.SIGTERM)
    assert await peer.process.wait() == 143
    prompted.cancel()
    await wait_gone(command, "the command the simulator was running")

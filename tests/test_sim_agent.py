"""The simulator's scripted agent mode, seen from the client's side of the wire.

Each test plays the IDE: it answers ``tool/invoke`` (in the reply, or as an empty ack and
a ``tool/invokeResult`` when ``async`` is true), approves or denies PENDING tool calls with
``tool/call/approve``, and asserts on what the simulator sent and on the answer lines
that report what the client did.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from simclient import ServedSim, SimClient, serving_sim, sim_command

from lingma_mcp.sim import script

WORKSPACE = "/tmp/project"
INIT = {"rootUri": "file:///tmp/project", "processId": 1, "capabilities": {}}
SMALL = {"LINGMA_SIM_ANSWER_SIZE": "60", "LINGMA_SIM_CHUNK": "16"}


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[ServedSim]:
    async with serving_sim(tmp_path, env=SMALL) as process:
        await process.wait_port()
        yield process


def ide(params: dict[str, Any]) -> dict[str, Any]:
    """A pretend IDE: every tool succeeds with a plausible result."""
    name, parameters = params["name"], params["parameters"]
    if name == "read_file":
        path = parameters.get("file_path") or parameters.get("filePath")
        return {"result": {"path": path, "content": "line one\nline two"}}
    if name == "get_problems":
        return {"result": {"problems": [{"message": "unexpected indent", "line": 3}]}}
    if name == "run_in_terminal":
        if parameters["isBackground"]:
            return {"result": {"terminalId": "term-7"}}
        return {"result": {"terminalId": "term-1", "exitCode": 0, "output": "a.txt\nb.txt"}}
    if name == "get_terminal_output":
        terminal = parameters["terminalId"]
        return {"result": {"terminalId": terminal, "output": "tick\n", "isRunning": True}}
    return {"result": {}}


@pytest.fixture
async def client(sim: ServedSim) -> AsyncIterator[SimClient]:
    async with SimClient.connect(sim.port, on_tool=ide) as connected:
        await connected.result("initialize", INIT)
        yield connected


def invokes(client: SimClient, request_id: str) -> list[tuple[str, dict[str, Any]]]:
    return [(e["name"], e["parameters"]) for e in client.events(request_id, "tool/invoke")]


def answer_lines(finish: dict[str, Any]) -> list[str]:
    return [line for line in finish["fullAnswer"].splitlines() if line and "```" not in line]


async def agent(client: SimClient, prompt: str, request_id: str, **fields: Any) -> dict[str, Any]:
    return await client.chat(prompt, request_id, mode="agent", workspace=WORKSPACE, **fields)


async def test_file_instructions_send_the_exact_tools_and_report_each_outcome(
    client: SimClient,
) -> None:
    prompt = "\n".join(
        [
            "Please tidy up:",
            "@read a.txt",
            "@create notes/b.txt hello\\nworld",
            "@replace notes/b.txt new text",
            '@delete "old file.txt"',
            "@save a.txt",
            '@problems main.py "my dir/c.json"',
        ]
    )
    finish = await agent(client, prompt, "req-f")
    assert invokes(client, "req-f") == [
        ("read_file", {"file_path": "/tmp/project/a.txt"}),
        (
            "create_file_with_text",
            {"filePath": "/tmp/project/notes/b.txt", "text": "hello\nworld"},
        ),
        ("replace_text_by_path", {"filePath": "/tmp/project/notes/b.txt", "text": "new text"}),
        ("delete_file_by_path", {"filePath": "/tmp/project/old file.txt"}),
        ("save_file", {"file_path": "/tmp/project/a.txt"}),
        ("get_problems", {"filePaths": ["/tmp/project/main.py", "/tmp/project/my dir/c.json"]}),
    ]
    assert all(e["async"] is False for e in client.events("req-f", "tool/invoke"))
    lines = answer_lines(finish)
    assert lines[-6:] == [
        "read_file a.txt: ok: line one",
        "create_file_with_text notes/b.txt: ok",
        "replace_text_by_path notes/b.txt: ok",
        "delete_file_by_path old file.txt: ok",
        "save_file a.txt: ok",
        'get_problems main.py my dir/c.json: 1 problems: {"message": "unexpected indent", '
        '"line": 3}',
    ]


async def test_each_tool_call_is_framed_by_tool_call_sync_and_announced_by_a_card(
    client: SimClient,
) -> None:
    finish = await agent(client, "@read a.txt\n@delete b.txt", "req-s")
    ids = [e["toolCallId"] for e in client.events("req-s", "tool/invoke")]
    assert ids == ["sim-tool-req-s-1", "sim-tool-req-s-2"]
    assert "```toolCall::read_file::sim-tool-req-s-1::INIT" in finish["fullAnswer"]
    assert "```toolCall::delete_file_by_path::sim-tool-req-s-2::INIT" in finish["fullAnswer"]
    order = [
        (m["method"], m["params"].get("toolCallStatus"))
        for m in client.messages
        if m["params"].get("toolCallId") == ids[0]
    ]
    assert order == [
        ("tool/call/sync", "INIT"),
        ("tool/call/sync", "RUNNING"),
        ("tool/invoke", None),
        ("tool/call/sync", "FINISHED"),
        ("tool/call/sync", "REQUEST_FINISHED"),
    ]
    finished = next(
        e
        for e in client.events("req-s", "tool/call/sync")
        if e["toolCallStatus"] == "FINISHED" and e["toolCallId"] == ids[1]
    )
    assert finished["results"] == [
        {"fileId": "/tmp/project/b.txt", "message": "delete_file_by_path b.txt: ok"}
    ]


async def test_paths_outside_the_workspace_are_sent_as_written(sim: ServedSim) -> None:
    def refuse_outside(params: dict[str, Any]) -> dict[str, Any]:
        path = next(iter(params["parameters"].values()))
        return {"success": False, "errorMessage": f"{path} is outside the workspace"}

    async with SimClient.connect(sim.port, on_tool=refuse_outside) as client:
        prompt = "@read /etc/passwd\n@create ../escape.txt x\n@read ~/.ssh/id_rsa"
        finish = await agent(client, prompt, "req-e")
    assert [p for _, p in invokes(client, "req-e")] == [
        {"file_path": "/etc/passwd"},
        {"filePath": "/tmp/project/../escape.txt", "text": "x"},
        {"file_path": "~/.ssh/id_rsa"},
    ]
    assert answer_lines(finish)[-3:] == [
        "read_file /etc/passwd: failed: /etc/passwd is outside the workspace",
        "create_file_with_text ../escape.txt: failed: /tmp/project/../escape.txt is outside "
        "the workspace",
        "read_file ~/.ssh/id_rsa: failed: ~/.ssh/id_rsa is outside the workspace",
    ]
    statuses = [e["toolCallStatus"] for e in client.events("req-e", "tool/call/sync")]
    assert statuses.count("ERROR") == 3


async def test_run_in_the_foreground_and_in_the_background(client: SimClient) -> None:
    finish = await agent(client, "@run ls -a\n@run& python -m http.server\n@output", "req-r")
    assert invokes(client, "req-r") == [
        ("run_in_terminal", {"command": "ls -a", "isBackground": False}),
        ("run_in_terminal", {"command": "python -m http.server", "isBackground": True}),
        ("get_terminal_output", {"terminalId": "term-7"}),
        ("get_terminal_output", {"terminalId": "term-7"}),
    ]
    assert answer_lines(finish)[-4:] == [
        "run_in_terminal ls -a: exit 0: a.txt",
        "run_in_terminal& python -m http.server: started terminal term-7",
        "get_terminal_output term-7: running: tick",
        "get_terminal_output: running: tick",
    ]


async def test_the_three_async_forms(sim: ServedSim, client: SimClient) -> None:
    prompt = "@async on\n@read a\n@async absent\n@read b\n@async off\n@read c"
    finish = await agent(client, prompt, "req-a")
    sent = client.events("req-a", "tool/invoke")
    assert [e.get("async", "absent") for e in sent] == [True, "absent", False]
    assert answer_lines(finish)[-3:] == [
        "read_file a: ok: line one",
        "read_file b: ok: line one",
        "read_file c: ok: line one",
    ]
    # The async one was acknowledged empty; its outcome came as tool/invokeResult, which
    # Lingma acknowledges with null error fields.
    assert [r["result"] for r in client.invoke_result_replies] == [
        {"errorCode": None, "errorMessage": None}
    ]
    logged = [e for e in sim.logged() if e.get("event") == "tool_invoke_reply"]
    assert [(e["form"], e["ack"]) for e in logged] == [
        ("async", None),
        ("absent", None),
        ("sync", None),
    ]


async def test_the_async_switch_of_the_environment_is_the_default(tmp_path: Path) -> None:
    async with serving_sim(tmp_path, env={**SMALL, "LINGMA_SIM_TOOL_ASYNC": "1"}) as sim:
        async with SimClient.connect(sim.port, on_tool=ide) as client:
            finish = await agent(client, "@save x.py\n@async off\n@save y.py", "req-d")
    assert [e["async"] for e in client.events("req-d", "tool/invoke")] == [True, False]
    assert answer_lines(finish)[-2:] == ["save_file x.py: ok", "save_file y.py: ok"]


async def test_spellings_content_and_path_keys(client: SimClient) -> None:
    prompt = "\n".join(
        [
            "@spell content",
            "@create a.txt one",
            "@replace a.txt two",
            "@spell file_path",
            "@delete a.txt",
            "@spell filePath",
            "@read a.txt",
            "@spell exact",
            "@create b.txt three",
        ]
    )
    await agent(client, prompt, "req-p")
    assert [p for _, p in invokes(client, "req-p")] == [
        {"filePath": "/tmp/project/a.txt", "content": "one"},
        {"filePath": "/tmp/project/a.txt", "content": "two"},
        {"file_path": "/tmp/project/a.txt"},
        {"filePath": "/tmp/project/a.txt"},
        {"filePath": "/tmp/project/b.txt", "text": "three"},
    ]


async def test_any_tool_by_name_and_the_plugins_refusal(sim: ServedSim) -> None:
    def plugin(params: dict[str, Any]) -> dict[str, Any]:
        return {"success": False, "errorMessage": "tool not support yet", "result": None}

    async with SimClient.connect(sim.port, on_tool=plugin) as client:
        finish = await agent(client, '@tool search_web {"query": "x", "n": 2}', "req-t")
    assert invokes(client, "req-t") == [("search_web", {"query": "x", "n": 2})]
    assert answer_lines(finish)[-1] == "tool search_web: failed: tool not support yet"


async def test_lines_that_are_not_instructions_are_reported(client: SimClient) -> None:
    prompt = "@frobnicate now\n@read\n@async maybe\n@tool x [1]\n@read ok.txt"
    finish = await agent(client, prompt, "req-i")
    lines = answer_lines(finish)
    assert [line.split(":")[0] for line in lines[-5:-1]] == [
        "@frobnicate now",
        "@read",
        "@async maybe",
        "@tool x [1]",
    ]
    assert all("not understood" in line for line in lines[-5:-1])
    assert lines[-1] == "read_file ok.txt: ok: line one"
    assert len(invokes(client, "req-i")) == 1


async def test_without_instructions_agent_mode_reads_the_readme_once(client: SimClient) -> None:
    finish = await agent(client, "just do it", "req-0")
    assert invokes(client, "req-0") == [("read_file", {"file_path": "/tmp/project/README.md"})]
    assert answer_lines(finish)[-1] == "read_file README.md: ok: line one"


async def test_chat_mode_ignores_instructions(client: SimClient) -> None:
    await client.chat("@delete everything", "req-c", workspace=WORKSPACE)
    assert client.events("req-c", "tool/invoke") == []


# -- PENDING tool calls and tool/call/approve ---------------------------------------------


async def approve_when_pending(
    client: SimClient, request_id: str, index: int, approval: Any, **override: Any
) -> dict[str, Any]:
    """Wait for the index-th PENDING of a chat and answer it; return the approve reply."""
    pending = await client.wait_until(
        lambda: [
            e
            for e in client.events(request_id, "tool/call/sync")
            if e["toolCallStatus"] == "PENDING"
        ][index:]
    )
    params = {
        "sessionId": pending[0]["sessionId"],
        "requestId": pending[0]["requestId"],
        "toolCallId": pending[0]["toolCallId"],
        "approval": approval,
        **override,
    }
    return await client.result("tool/call/approve", params)


def statuses(client: SimClient, request_id: str, tool_id: str) -> list[str]:
    return [
        e["toolCallStatus"]
        for e in client.events(request_id, "tool/call/sync")
        if e["toolCallId"] == tool_id
    ]


async def test_confirm_waits_for_approval_then_runs_or_is_cancelled(client: SimClient) -> None:
    accepted = await client.ask(
        "@confirm ls\n@confirm rm -rf build", "req-c", mode="agent", workspace=WORKSPACE
    )
    assert accepted["success"] is True
    ok = await approve_when_pending(client, "req-c", 0, True)
    assert ok == {"errorCode": None, "errorMessage": None}
    await approve_when_pending(client, "req-c", 1, False)
    finish = await client.wait_until(lambda: client.finish("req-c"))
    first, second = "sim-tool-req-c-1", "sim-tool-req-c-2"
    assert statuses(client, "req-c", first) == [
        "PENDING",
        "RUNNING",
        "FINISHED",
        "REQUEST_FINISHED",
    ]
    assert statuses(client, "req-c", second) == ["PENDING", "CANCELLED", "REQUEST_FINISHED"]
    pending = next(
        e for e in client.events("req-c", "tool/call/sync") if e["toolCallStatus"] == "PENDING"
    )
    assert pending["name"] == "run_in_terminal"
    assert pending["parameters"] == {"command": "ls", "isBackground": False}
    assert pending["projectPath"] == WORKSPACE
    assert client.events("req-c", "tool/invoke") == []  # Lingma runs these itself
    assert answer_lines(finish)[-2:] == ["confirm ls: approved", "confirm rm -rf build: denied"]


async def test_an_approval_with_wrong_ids_or_no_boolean_is_refused_and_the_call_waits(
    client: SimClient,
) -> None:
    await client.ask('@pending edit_file {"file_path": "a.py"}', "req-w", mode="agent")
    wrong_session = await approve_when_pending(client, "req-w", 0, True, sessionId="other")
    assert wrong_session["errorCode"] == "INVALID_PARAM"
    assert "sessionId" in wrong_session["errorMessage"]
    not_bool = await approve_when_pending(client, "req-w", 0, "yes")
    assert not_bool["errorCode"] == "INVALID_PARAM" and "true or false" in not_bool["errorMessage"]
    unknown = await approve_when_pending(client, "req-w", 0, True, toolCallId="nope")
    assert unknown["errorCode"] == "TOOL_CALL_NOT_FOUND"
    assert client.finish("req-w") is None
    await approve_when_pending(client, "req-w", 0, True)
    finish = await client.wait_until(lambda: client.finish("req-w"))
    assert answer_lines(finish)[-1] == "pending edit_file: approved"
    # Once decided, the call no longer waits: a second answer finds nothing.
    late = await approve_when_pending(client, "req-w", 0, False)
    assert late["errorCode"] == "TOOL_CALL_NOT_FOUND"


async def test_an_unanswered_pending_call_is_cancelled_after_the_tool_timeout(
    tmp_path: Path,
) -> None:
    env = {**SMALL, "LINGMA_SIM_TOOL_TIMEOUT": "0.2"}
    async with serving_sim(tmp_path, env=env) as sim:
        async with SimClient.connect(sim.port) as client:
            finish = await agent(client, "@confirm make", "req-n")
    assert answer_lines(finish)[-1] == "confirm make: no answer within 0.2 s"
    assert statuses(client, "req-n", "sim-tool-req-n-1") == [
        "PENDING",
        "CANCELLED",
        "REQUEST_FINISHED",
    ]


async def test_a_tool_invoke_without_an_answer_fails_after_the_tool_timeout(
    tmp_path: Path,
) -> None:
    env = {**SMALL, "LINGMA_SIM_TOOL_TIMEOUT": "0.2"}
    async with serving_sim(tmp_path, env=env) as sim:
        async with SimClient.connect(sim.port, on_tool=ide) as client:
            client.unanswered.add("tool/invoke")
            silent = await agent(client, "@read a", "req-s")
            client.unanswered.clear()
            client.send_invoke_results = False
            acked = await agent(client, "@async on\n@read b", "req-a")
    assert answer_lines(silent)[-1] == "read_file a: failed: no reply to tool/invoke within 0.2 s"
    assert answer_lines(acked)[-1] == (
        "read_file b: failed: no tool/invokeResult within 0.2 s of the ack"
    )


async def test_chat_stop_while_pending_cancels_the_chat(client: SimClient) -> None:
    await client.ask("@confirm sleep 100", "req-x", mode="agent")
    await client.wait_until(
        lambda: any(
            e["toolCallStatus"] == "PENDING" for e in client.events("req-x", "tool/call/sync")
        )
    )
    await client.result("chat/stop", {"requestId": "req-x", "sessionId": ""})
    finish = await client.wait_until(lambda: client.finish("req-x"))
    assert finish["reason"] == "cancelled"


# -- edits Lingma makes itself, after a PENDING approval -----------------------------------


@pytest.mark.parametrize("approval", [True, False])
async def test_an_approved_edit_is_written_by_the_simulator_itself_and_a_denied_one_is_not(
    client: SimClient, tmp_path: Path, approval: bool
) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "a.txt").write_text("old\n")
    await client.ask("@edit a.txt new\\nlines", "req-e", mode="agent", workspace=str(workspace))
    await approve_when_pending(client, "req-e", 0, approval)
    finish = await client.wait_until(lambda: client.finish("req-e"))
    tool = "sim-tool-req-e-1"
    [pending] = [
        e for e in client.events("req-e", "tool/call/sync") if e["toolCallStatus"] == "PENDING"
    ]
    assert pending["name"] == "edit_file"
    assert pending["parameters"] == {"file_path": f"{workspace}/a.txt", "content": "new\nlines"}
    assert client.events("req-e", "tool/invoke") == []  # the binary edits without the IDE
    if approval:
        assert (workspace / "a.txt").read_text() == "new\nlines"
        assert statuses(client, "req-e", tool) == [
            "PENDING",
            "RUNNING",
            "FINISHED",
            "REQUEST_FINISHED",
        ]
        [done] = [
            e for e in client.events("req-e", "tool/call/sync") if e["toolCallStatus"] == "FINISHED"
        ]
        assert done["results"] == [
            {"fileId": f"{workspace}/a.txt", "message": "wrote 9 characters"}
        ]
        assert (
            answer_lines(finish)[-1]
            == f"edit a.txt: approved, wrote 9 characters to {workspace}/a.txt"
        )
    else:
        assert (workspace / "a.txt").read_text() == "old\n"
        assert statuses(client, "req-e", tool) == ["PENDING", "CANCELLED", "REQUEST_FINISHED"]
        assert answer_lines(finish)[-1] == "edit a.txt: denied"


async def test_a_pending_edit_file_in_another_spelling_creates_the_file_too(
    client: SimClient, tmp_path: Path
) -> None:
    workspace = tmp_path / "ws"
    call = '@pending edit_file {"filePath": "sub/new.py", "code_edit": "x = 1\\n"}'
    await client.ask(call, "req-p", mode="agent", workspace=str(workspace))
    await approve_when_pending(client, "req-p", 0, True)
    await client.wait_until(lambda: client.finish("req-p"))
    assert (workspace / "sub" / "new.py").read_text() == "x = 1\n"


async def test_commands_that_change_files_reach_the_clients_terminal_verbatim(
    client: SimClient,
) -> None:
    commands = ["sed -i 's/a/b/' notes.txt", "touch made.txt", "rm -f old.txt"]
    await agent(client, "\n".join(f"@run {c}" for c in commands), "req-r")
    assert invokes(client, "req-r") == [
        ("run_in_terminal", {"command": c, "isBackground": False}) for c in commands
    ]


# -- what a chat/ask carries beside its question --------------------------------------------


@pytest.fixture
async def whole_answers(tmp_path: Path) -> AsyncIterator[SimClient]:
    """A client of a simulator whose answers are not cut to a size."""
    async with serving_sim(tmp_path, name="whole") as sim:
        async with SimClient.connect(sim.port) as connected:
            await connected.result("initialize", INIT)
            yield connected


async def test_the_answer_names_the_active_file_images_and_context_it_received(
    whole_answers: SimClient,
) -> None:
    client = whole_answers
    png = "data:image/png;base64," + "A" * 40
    finish = await client.chat(
        "look at this",
        "req-x",
        chatContext={
            "text": "look at this",
            "activeFilePath": "/tmp/project/main.py",
            "imageUrls": [png, "https://example.invalid/shot.png"],
        },
        extra={
            "modelConfig": {"key": "auto"},
            "workspacePath": WORKSPACE,
            "context": [{"type": "file", "path": "/tmp/project/util.py"}, "loose note"],
        },
    )
    assert (
        "Attached: active file /tmp/project/main.py; image data:image/png (62 characters); "
        "image https://example.invalid/shot.png; context file /tmp/project/util.py; "
        'context "loose note".'
    ) in finish["fullAnswer"]


async def test_a_question_without_context_is_answered_as_before(
    whole_answers: SimClient,
) -> None:
    finish = await whole_answers.chat("plain", "req-y")
    assert finish["fullAnswer"] == script.compose_answer("plain", "dashscope_qwen3_coder", 1)


# -- the language is documented where users look ------------------------------------------


def test_help_agent_lists_every_instruction_and_help_env_points_to_it() -> None:
    def sim(*args: str) -> str:
        done = sim_command(*args)
        assert done.returncode == 0, done.stderr
        return done.stdout

    listed = sim("--help-agent")
    for verb in ("read", "create", "replace", "delete", "save", "problems", "run", "run&"):
        assert f"@{verb} " in listed
    for verb in ("output", "confirm", "edit", "pending", "tool", "async", "spell"):
        assert f"@{verb} " in listed
    environment = sim("--help-env")
    assert "--help-agent" in environment and "LINGMA_SIM_TOOL_TIMEOUT" in environment

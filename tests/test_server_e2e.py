"""lingma-mcp as hosts use it: the SDK's client, the server, the simulator behind.

Each test serves lingma-mcp on the simulator with its switches, talks MCP to it, and
asserts on what a host receives: tool lists and schemas, progress, results, ``isError``
texts, resources; and that no token reaches a log line. The server and the simulator run
in this process (``servers.py``), the simulator as a process where the test kills it or
needs its start-up; the signal tests start the server as hosts do, a stdio process.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from fakes import Progress, text_of
from mcp.types import ElicitResult, ListRootsResult, Root
from procs import alive, wait_until
from servers import mcp_server, read_log, sent_to_lingma, server_params, server_process

pytestmark = pytest.mark.timeout(60)
# -- tools --------------------------------------------------------------------------------


async def test_tool_list_has_the_contract_names_parameters_schemas_and_annotations(
    tmp_path: Path,
) -> None:
    async with mcp_server(tmp_path) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == {
        "ask_lingma",
        "list_models",
        "auth_status",
        "login",
        "check_lingma_job",
        "cancel_lingma_job",
        "revert_changes",
        "review_changes",
        "list_lingma_sessions",
        "delete_lingma_session",
    }
    ask = tools["ask_lingma"]
    assert set(ask.input_schema["properties"]) == {
        "prompt",
        "model",
        "mode",
        "session_id",
        "workspace",
        "timeout_s",
        "background",
        "read_only",
        "attachments",
        "fork",
        "reasoning_effort",
    }
    assert ask.input_schema["required"] == ["prompt"]
    assert set(ask.output_schema["properties"]) == {
        "answer",
        "session_id",
        "continued",
        "request_id",
        "model",
        "mode",
        "finish_reason",
        "status_code",
        "tool_events",
        "changes",
        "approvals",
        "thinking",
        "first_token_ms",
        "total_ms",
        "job_id",
        "status",
        "answer_truncated",
        "answer_chars",
        "forked_from",
        "usage",
        "attachments",
    }
    assert ask.annotations.read_only_hint is False  # agent mode can change files
    assert set(tools["list_models"].input_schema["properties"]) == {"scene"}
    assert tools["list_models"].annotations.read_only_hint is True
    assert tools["auth_status"].input_schema.get("properties", {}) == {}
    for name in ("list_models", "auth_status", "login"):
        assert tools[name].output_schema is not None, name


async def test_initialize_and_tools_list_answer_while_lingma_is_still_starting(
    tmp_path: Path,
) -> None:
    # Lingma takes 30 s to start here: tools/list must be answered while it still starts.
    delay = {"LINGMA_SIM_START_DELAY": "30"}
    async with mcp_server(tmp_path, delay, lingma="process") as client:
        await client.list_tools()
        log = read_log(tmp_path)
        assert "state stopped -> starting" in log
        assert "-> ready" not in log


async def test_streamed_text_arrives_before_the_end_and_joins_into_the_answer(
    tmp_path: Path,
) -> None:
    env = {"LINGMA_SIM_DELTA_DELAY": "0.02", "LINGMA_SIM_ANSWER_SIZE": "300"}
    async with mcp_server(tmp_path, env) as client:
        progress = Progress()
        result = await client.call_tool(
            "ask_lingma", {"prompt": "Explain streaming"}, progress_callback=progress
        )
    assert not result.is_error, text_of(result)
    data = result.structured_content
    assert data["answer"] == text_of(result)
    assert len(data["answer"]) == 300
    assert progress.text == data["answer"]
    assert progress.messages[-1] == progress.texts[-1], "the last message is answer text"
    assert len(progress.texts) > 3, "the answer should arrive in several notifications"
    assert progress.values == sorted(set(progress.values))
    assert data["finish_reason"] == "success" and data["status_code"] == 200
    assert data["mode"] == "chat" and data["model"] == "auto"
    assert data["first_token_ms"] is not None and data["total_ms"] >= data["first_token_ms"]
    assert progress.status


async def test_a_client_on_the_newest_protocol_gets_the_same_stream(tmp_path: Path) -> None:
    async with mcp_server(tmp_path, host={"mode": "auto"}) as client:
        progress = Progress()
        result = await client.call_tool(
            "ask_lingma", {"prompt": "newest protocol"}, progress_callback=progress
        )
    assert not result.is_error, text_of(result)
    assert progress.text == result.structured_content["answer"]


async def test_a_call_without_progress_token_simply_returns_the_result(tmp_path: Path) -> None:
    async with mcp_server(tmp_path) as client:
        result = await client.call_tool("ask_lingma", {"prompt": "no progress please"})
    assert not result.is_error
    assert "no progress please" in result.structured_content["answer"]


async def test_session_id_continues_the_conversation(tmp_path: Path) -> None:
    async with mcp_server(tmp_path) as client:
        first = await client.call_tool("ask_lingma", {"prompt": "first question"})
        session_id = first.structured_content["session_id"]
        second = await client.call_tool(
            "ask_lingma", {"prompt": "second question", "session_id": session_id}
        )
        fresh = await client.call_tool("ask_lingma", {"prompt": "unrelated"})
    assert session_id
    assert second.structured_content["session_id"] == session_id
    assert "turn 2" in second.structured_content["answer"]
    assert fresh.structured_content["session_id"] != session_id
    asks = sent_to_lingma(tmp_path, "chat/ask")
    assert [a["params"]["isReply"] for a in asks] == [False, True, False]
    assert asks[1]["params"]["sessionId"] == session_id


async def test_a_conversation_outlives_a_lingma_restart(tmp_path: Path) -> None:
    async with mcp_server(tmp_path, lingma="process") as client:
        first = await client.call_tool("ask_lingma", {"prompt": "before the crash"})
        session_id = first.structured_content["session_id"]
        status = await client.call_tool("auth_status", {})
        lingma_pid = status.structured_content["bridge"]["pid"]
        # Lingma keeps conversations on disk (the simulator saves them shortly after).
        store = tmp_path / "work" / "sessions.json"
        await wait_until(lambda: store.exists() and session_id in store.read_text("utf-8"))
        os.kill(lingma_pid, signal.SIGKILL)  # the Lingma child this test's server started
        second = await client.call_tool(
            "ask_lingma", {"prompt": "after the crash", "session_id": session_id}
        )
        after = await client.call_tool("auth_status", {})
    assert not second.is_error, text_of(second)
    assert after.structured_content["bridge"]["pid"] != lingma_pid
    assert second.structured_content["session_id"] == session_id
    assert "turn 2" in second.structured_content["answer"]


async def test_agent_mode_with_a_model_reports_tool_events(tmp_path: Path) -> None:
    progress = Progress()
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "README.md").write_text("read me\n")
    async with mcp_server(tmp_path) as client:
        result = await client.call_tool(
            "ask_lingma",
            {"prompt": "use a model", "model": "dashscope_qwen3_coder", "mode": "agent"},
            progress_callback=progress,
        )
    assert not result.is_error, text_of(result)
    data = result.structured_content
    assert data["model"] == "dashscope_qwen3_coder" and data["mode"] == "agent"
    ask = sent_to_lingma(tmp_path, "chat/ask")[0]["params"]
    assert ask["extra"]["modelConfig"]["key"] == "dashscope_qwen3_coder"
    assert ask["mode"] == "agent"
    [tool] = data["tool_events"]
    assert set(tool) == {"id", "name", "status", "input", "result"}
    assert tool["name"] == "read_file" and tool["status"].endswith("FINISHED")
    assert tool["input"]["file_path"].endswith("README.md")
    assert "[lingma] read_file: RUNNING" in progress.status
    # Lingma asked the host to run read_file; the bridge read the file in the workspace.
    assert "README.md: ok: read me" in data["answer"]
    assert data["approvals"] == [
        {"tool": "read_file", "target": "README.md", "decision": "allowed", "by": "policy"}
    ]


async def test_cancellation_sends_chat_stop_and_the_next_call_works(tmp_path: Path) -> None:
    env = {"LINGMA_SIM_DELTA_DELAY": "0.03", "LINGMA_SIM_ANSWER_SIZE": "300"}
    async with mcp_server(tmp_path, env) as client:
        progress = Progress()
        async with anyio.create_task_group() as tg:

            async def ask() -> None:
                await client.call_tool("ask_lingma", {"prompt": "long"}, progress_callback=progress)

            tg.start_soon(ask)
            with anyio.fail_after(10):
                await progress.first_text.wait()
            tg.cancel_scope.cancel()  # the SDK client sends notifications/cancelled
        await wait_until(lambda: sent_to_lingma(tmp_path, "chat/stop"))
        stop = sent_to_lingma(tmp_path, "chat/stop")[0]["params"]
        ask_params = sent_to_lingma(tmp_path, "chat/ask")[0]["params"]
        assert stop["requestId"] == ask_params["requestId"]
        result = await client.call_tool("ask_lingma", {"prompt": "again"})
    assert not result.is_error, text_of(result)
    assert "again" in result.structured_content["answer"]


async def test_sixteen_concurrent_asks_each_get_their_own_answer(tmp_path: Path) -> None:
    results: dict[int, Any] = {}
    progress = {i: Progress() for i in range(16)}
    async with mcp_server(tmp_path) as client:

        async def ask(i: int) -> None:
            results[i] = await client.call_tool(
                "ask_lingma", {"prompt": f"question number {i}"}, progress_callback=progress[i]
            )

        async with anyio.create_task_group() as tg:
            for i in range(16):
                tg.start_soon(ask, i)
    for i in range(16):
        result = results[i]
        assert not result.is_error, text_of(result)
        answer = result.structured_content["answer"]
        assert f"question number {i}»" in answer
        assert progress[i].text == answer
    assert len({r.structured_content["session_id"] for r in results.values()}) == 16


async def test_timeout_stops_lingma_and_returns_the_answer_so_far(tmp_path: Path) -> None:
    env = {"LINGMA_SIM_DELTA_DELAY": "0.05", "LINGMA_SIM_ANSWER_SIZE": "4000"}
    async with mcp_server(tmp_path, env) as client:
        await client.call_tool("auth_status", {})  # Lingma is up: the timeout is the answer's
        result = await client.call_tool("ask_lingma", {"prompt": "slow", "timeout_s": 2})
        await wait_until(lambda: sent_to_lingma(tmp_path, "chat/stop"))
        after = await client.call_tool("auth_status", {})
    assert result.is_error
    text = text_of(result)
    assert "timeout_s=2" in text and "answer so far" in text
    assert "Lingma sim answer" in text
    assert not after.is_error


async def test_a_silent_lingma_times_out_with_nothing_so_far_and_is_stopped(
    tmp_path: Path,
) -> None:
    async with mcp_server(tmp_path, {"LINGMA_SIM_HANG": "1"}) as client:
        await client.call_tool("auth_status", {})  # Lingma is up: the timeout is the answer's
        result = await client.call_tool("ask_lingma", {"prompt": "hang", "timeout_s": 0.5})
        await wait_until(lambda: sent_to_lingma(tmp_path, "chat/stop"))
    assert result.is_error
    assert "no answer text had arrived yet" in text_of(result)


# -- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"prompt": "   "}, "Invalid argument prompt: it is empty"),
        ({"prompt": "hi", "mode": "yolo"}, "Invalid argument mode: 'yolo' is not a mode"),
        ({"prompt": "hi", "model": "no-such-model"}, "Invalid argument model: 'no-such-model'"),
        ({"prompt": "hi", "timeout_s": -1}, "Invalid argument timeout_s: -1 is out of range"),
    ],
)
async def test_bad_arguments_are_refused_before_lingma_is_asked(
    tmp_path: Path, arguments: dict[str, Any], expected: str
) -> None:
    async with mcp_server(tmp_path) as client:
        result = await client.call_tool("ask_lingma", arguments)
    assert result.is_error
    assert expected in text_of(result)
    if "model" in arguments:
        assert "dashscope_qwen3_coder" in text_of(result)  # the valid keys are listed
    assert sent_to_lingma(tmp_path, "chat/ask") == []


@pytest.mark.parametrize("state", ["logged_out", "expired"])
async def test_not_logged_in_says_to_call_login(tmp_path: Path, state: str) -> None:
    async with mcp_server(tmp_path, {"LINGMA_SIM_AUTH": state}) as client:
        result = await client.call_tool("ask_lingma", {"prompt": "hi"})
        status = await client.call_tool("auth_status", {})
        login = await client.call_tool("login", {})
        models = await client.call_tool("list_models", {})
    assert models.is_error and "`login` tool" in text_of(models)
    assert result.is_error
    assert "`login` tool" in text_of(result)
    word = "not logged in" if state == "logged_out" else "login expired"
    said = "not logged in" if state == "logged_out" else "login has expired"
    assert said in text_of(result)
    assert status.structured_content["logged_in"] is False
    assert status.structured_content["status"] == word
    assert not login.is_error
    assert login.structured_content["login_url"].startswith("http")
    assert login.structured_content["login_url"] in text_of(login)


async def test_login_asks_a_host_with_url_elicitation_to_open_the_url(tmp_path: Path) -> None:
    asked: list[Any] = []

    async def elicit(_: Any, params: Any) -> ElicitResult:
        asked.append(params)
        return ElicitResult(action="accept")

    logged_out = {"LINGMA_SIM_AUTH": "logged_out"}
    async with mcp_server(tmp_path, logged_out, host={"elicitation_callback": elicit}) as client:
        login = await client.call_tool("login", {})
    assert not login.is_error, text_of(login)
    assert login.structured_content["opened_by_host"] is True
    assert len(asked) == 1 and asked[0].mode == "url"
    assert asked[0].url == login.structured_content["login_url"]


async def test_list_models_by_scene_and_an_unknown_scene(tmp_path: Path) -> None:
    async with mcp_server(tmp_path) as client:
        chat = await client.call_tool("list_models", {"scene": "chat"})
        unknown = await client.call_tool("list_models", {"scene": "nope"})
    assert not chat.is_error
    assert list(chat.structured_content["scenes"]) == ["chat"]
    models = chat.structured_content["scenes"]["chat"]
    assert {"key", "display_name", "reasoning", "vision", "default"} == set(models[0])
    assert [m["key"] for m in models if m["default"]] == ["auto"]
    assert any(m["reasoning"] for m in models)
    assert unknown.is_error
    assert "Invalid argument scene: Lingma has no scene 'nope'" in text_of(unknown)
    assert "chat" in text_of(unknown)


async def test_rate_limit_names_429_and_what_to_do(tmp_path: Path) -> None:
    async with mcp_server(tmp_path, {"LINGMA_SIM_RATE_LIMIT": "1"}) as client:
        result = await client.call_tool("ask_lingma", {"prompt": "hi"})
        after = await client.call_tool("list_models", {})
    assert result.is_error
    assert "rate limited or out of quota (429)" in text_of(result)
    assert not after.is_error


async def test_a_crash_mid_answer_reports_state_and_logs_and_the_server_stays_usable(
    tmp_path: Path,
) -> None:
    crash = {"LINGMA_SIM_CRASH_AFTER": "3"}
    async with mcp_server(tmp_path, crash, lingma="process") as client:
        result = await client.call_tool("ask_lingma", {"prompt": "crash please"})
        models = await client.call_tool("list_models", {})  # needs Lingma back up
    assert result.is_error
    text = text_of(result)
    assert "Lingma stopped while answering" in text and "Lingma state:" in text
    assert "logs:" in text and "close frame" not in text
    assert not models.is_error, text_of(models)


async def test_lingma_not_found_says_where_it_looked_and_how_to_fix(tmp_path: Path) -> None:
    missing = str(tmp_path / "no" / "Lingma")
    async with mcp_server(tmp_path, simulate=False, lingma_bin=missing) as client:
        tools = await client.list_tools()
        result = await client.call_tool("ask_lingma", {"prompt": "hi"})
        status = await client.call_tool("auth_status", {})
    assert len(tools.tools) == 10
    assert result.is_error
    text = text_of(result)
    assert "Lingma was not found" in text and str(tmp_path / "no" / "Lingma") in text
    assert "LINGMA_BIN" in text and "VS Code" in text and "--simulate" in text
    assert status.structured_content["logged_in"] is None
    assert "not found" in status.structured_content["problem"]


async def test_lingma_that_never_starts_gives_a_startup_error(tmp_path: Path) -> None:
    no_info = {"LINGMA_SIM_NO_INFO": "1"}
    async with mcp_server(tmp_path, no_info, lingma="process", startup_timeout=1.5) as client:
        result = await client.call_tool("ask_lingma", {"prompt": "hi", "timeout_s": 10})
    assert result.is_error
    text = text_of(result)
    assert "did not start" in text or "not ready" in text, text
    assert "doctor" in text


# -- resources --------------------------------------------------------------------------------


async def test_resources_describe_status_models_and_conversations(tmp_path: Path) -> None:
    async with mcp_server(tmp_path) as client:
        listed = {str(r.uri) for r in (await client.list_resources()).resources}
        listed_templates = await client.list_resource_templates()
        templates = [t.uri_template for t in listed_templates.resource_templates]
        answer = await client.call_tool("ask_lingma", {"prompt": "remember me"})
        session_id = answer.structured_content["session_id"]
        status = json.loads((await client.read_resource("lingma://status")).contents[0].text)
        models = json.loads((await client.read_resource("lingma://models")).contents[0].text)
        sessions = json.loads((await client.read_resource("lingma://sessions")).contents[0].text)
        one = json.loads(
            (await client.read_resource(f"lingma://sessions/{session_id}")).contents[0].text
        )
    assert listed == {
        "lingma://status",
        "lingma://models",
        "lingma://sessions",
        "lingma://jobs",
        "ui://lingma/review.html",
    }
    assert set(templates) == {
        "lingma://sessions/{session_id}",
        "lingma://answers/{request_id}",
        "lingma://changes/{request_id}",
    }
    assert status["logged_in"] is True and status["bridge"]["state"] == "ready"
    assert status["bridge"]["simulated"] is True
    assert "chat" in models["scenes"] and models["default_model"] == "auto"
    assert [s["session_id"] for s in sessions["sessions"]] == [session_id]
    assert one["session_id"] == session_id
    assert one["turns"][0]["question"] == "remember me"
    assert "remember me" in one["turns"][0]["answer"]


async def test_host_roots_choose_the_workspace(tmp_path: Path) -> None:
    root = tmp_path / "from-host"
    root.mkdir()

    async def roots(_: Any) -> ListRootsResult:
        return ListRootsResult(roots=[Root(uri=root.as_uri(), name="host root")])

    async with mcp_server(tmp_path, host={"list_roots_callback": roots}) as client:
        result = await client.call_tool("ask_lingma", {"prompt": "where am I"})
        sessions = json.loads((await client.read_resource("lingma://sessions")).contents[0].text)
    assert not result.is_error, text_of(result)
    ask = sent_to_lingma(tmp_path, "chat/ask")[0]["params"]
    assert ask["extra"]["workspacePath"] == str(root)
    assert sessions["workspace"] == str(root)
    assert [s["session_id"] for s in sessions["sessions"]] == [
        result.structured_content["session_id"]
    ]


# -- secrets ------------------------------------------------------------------------------------


async def test_no_token_in_any_result_resource_or_log_line(tmp_path: Path) -> None:
    seen: list[str] = []
    async with mcp_server(tmp_path) as client:
        for name, args in [
            ("auth_status", {}),
            ("list_models", {}),
            ("login", {}),
            ("ask_lingma", {"prompt": "tokens?"}),
        ]:
            result = await client.call_tool(name, args)
            seen.append(result.model_dump_json())
        for uri in ("lingma://status", "lingma://models", "lingma://sessions"):
            seen.append((await client.read_resource(uri)).model_dump_json())
    log = read_log(tmp_path)
    assert " DEBUG " in log, "the server should have logged at DEBUG"
    seen.append(log)
    for blob in seen:
        # The simulator's auth/status reply carries sim-secret-token-... and
        # sim-secret-refresh-... exactly where Lingma puts live tokens.
        assert "sim-secret" not in blob
        for marker in ("refreshToken", "accessToken"):
            assert marker not in blob


# -- shutdown -----------------------------------------------------------------------------------


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_a_signal_closes_lingma_and_exits(tmp_path: Path, signum: int) -> None:
    async with server_process(tmp_path) as proc:
        await wait_until(lambda: "state starting -> ready" in read_log(tmp_path))
        lingma_pid = _lingma_pid(tmp_path)
        proc.send_signal(signum)
        with anyio.fail_after(15):
            await proc.wait()
    assert proc.returncode == 0
    assert lingma_pid is not None and not alive(lingma_pid)


def _lingma_pid(tmp_path: Path) -> int | None:
    import re

    match = re.search(r"\(pid (\d+)", read_log(tmp_path))
    return int(match.group(1)) if match else None


async def test_lingmas_own_verbose_logging_leaks_no_token_at_debug(tmp_path: Path) -> None:
    # The simulator's verbose mode logs its frames on stderr, cut across lines (a key on one
    # line, its value on the next), the way Lingma's own logging does.
    from lingma_mcp.sim import account

    verbose = {"LINGMA_SIM_VERBOSE": "1"}
    async with mcp_server(tmp_path, verbose, lingma="process") as client:
        await client.call_tool("auth_status", {})
        await client.call_tool("ask_lingma", {"prompt": "hi"})
    log = read_log(tmp_path)
    assert "refreshToken" in log or "lingma-sim" in log, "the simulator's frames were logged"
    for secret in (account._digest("refresh"), account._digest("token")):
        for start in range(len(secret) - 5):
            assert secret[start : start + 6] not in log, secret[start : start + 6]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
async def test_a_second_sigterm_during_shutdown_waits_for_lingma(tmp_path: Path) -> None:
    # Lingma ignores SIGTERM here, so the shutdown waits its grace before SIGKILL: a host
    # that signals again meanwhile must not kill the server before Lingma is reaped.
    params = server_params(tmp_path, {"LINGMA_SIM_IGNORE_SIGTERM": "1"})
    async with server_process(tmp_path, params=params) as proc:
        await wait_until(lambda: "state starting -> ready" in read_log(tmp_path))
        lingma_pid = _lingma_pid(tmp_path)
        proc.send_signal(signal.SIGTERM)
        await wait_until(lambda: "signal SIGTERM: shutting down" in read_log(tmp_path))
        proc.send_signal(signal.SIGTERM)
        await wait_until(lambda: "already shutting down" in read_log(tmp_path))
        with anyio.fail_after(30):
            await proc.wait()
    assert proc.returncode == 0
    assert lingma_pid is not None and not alive(lingma_pid)

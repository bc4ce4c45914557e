"""Jobs as hosts use them: background asks, check and cancel, automatic detach.

The server on the simulator, the SDK's client (``servers.mcp_server``). The simulator
answers slowly where a test needs a job to be still running (``LINGMA_SIM_DELTA_DELAY``);
order is asserted through what the host and the simulator saw, never through wall-clock
time.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest
from fakes import Progress, text_of
from mcp.types import Implementation
from procs import wait_until
from servers import mcp_server, sent_to_lingma

from lingma_mcp.server.answers import RESULT_SIZE_META

pytestmark = pytest.mark.timeout(90)

# 50 deltas of 8 characters, 20 ms apart: an answer that outlasts several checks of
# FOLLOW_S each, so a job is surely still running when the call that started it returned.
SLOW = {"LINGMA_SIM_DELTA_DELAY": "0.02", "LINGMA_SIM_ANSWER_SIZE": "400"}
FOLLOW_S = 0.25


async def follow(client: Any, job_id: str, wait_s: float = FOLLOW_S) -> tuple[list[Any], str]:
    """Check ``job_id`` until it ends; returns every check's result and the joined text."""
    checks: list[Any] = []
    with anyio.fail_after(60):
        while True:
            check = await client.call_tool("check_lingma_job", {"job_id": job_id, "wait_s": wait_s})
            assert not check.is_error, text_of(check)
            checks.append(check)
            if check.structured_content["status"] != "running":
                break
    # A job that ended may still hold text a check has not returned (each returns at most
    # --max-result-chars): read to the end.
    while checks[-1].structured_content["unread_chars"]:
        checks.append(await client.call_tool("check_lingma_job", {"job_id": job_id}))
    return checks, "".join(c.structured_content["text"] for c in checks)


async def first_text(client: Any, job_id: str) -> str:
    """Check ``job_id`` until a check brings answer text."""
    with anyio.fail_after(30):
        while True:
            check = await client.call_tool("check_lingma_job", {"job_id": job_id, "wait_s": 0.2})
            if check.structured_content["text"]:
                return check.structured_content["text"]


async def read_json(client: Any, uri: str) -> Any:
    return json.loads((await client.read_resource(uri)).contents[0].text)


# -- the contract -----------------------------------------------------------------------------


async def test_the_job_tools_resources_and_ask_lingma_background_are_listed(
    tmp_path: Path,
) -> None:
    async with mcp_server(tmp_path) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        resources = {str(r.uri) for r in (await client.list_resources()).resources}
        listed = await client.list_resource_templates()
    templates = {t.uri_template: t for t in listed.resource_templates}
    ask = tools["ask_lingma"]
    assert ask.input_schema["properties"]["background"]["default"] is False
    assert ask.input_schema["required"] == ["prompt"]
    for field in ("job_id", "status", "answer_truncated", "answer_chars"):
        assert field in ask.output_schema["properties"]
    assert ask.meta[RESULT_SIZE_META] == 40000
    check = tools["check_lingma_job"]
    assert set(check.input_schema["properties"]) == {"job_id", "wait_s"}
    assert check.input_schema["required"] == ["job_id"]
    assert set(check.output_schema["properties"]) >= {
        "status",
        "text",
        "elapsed_s",
        "result",
        "error",
    }
    # Answering a question there lets the job act: not read-only, not destructive.
    assert (check.annotations.read_only_hint, check.annotations.destructive_hint) == (False, False)
    assert set(tools["cancel_lingma_job"].input_schema["properties"]) == {"job_id"}
    assert "lingma://jobs" in resources
    assert templates["lingma://answers/{request_id}"].mime_type == "text/markdown"


# -- background ------------------------------------------------------------------------------


async def test_a_background_ask_returns_at_once_and_check_follows_it_to_the_whole_answer(
    tmp_path: Path,
) -> None:
    async with mcp_server(tmp_path, SLOW) as client:
        started = await client.call_tool(
            "ask_lingma", {"prompt": "work in the background", "background": True}
        )
        # Read as soon as the call returned: the job has not finished.
        listing = await read_json(client, "lingma://jobs")
        job_id = started.structured_content["job_id"]
        checks, followed = await follow(client, job_id)
        listing_after = await read_json(client, "lingma://jobs")
    assert not started.is_error, text_of(started)
    running = started.structured_content
    assert running["status"] == "running" and job_id.startswith("job-")
    assert running["answer"] == "" and running["session_id"] is None
    assert running["request_id"] is None and running["total_ms"] is None
    assert job_id in text_of(started) and "check_lingma_job" in text_of(started)
    [listed] = listing["jobs"]
    assert listed["job_id"] == job_id and listed["status"] == "running"
    assert listed["prompt"] == "work in the background"

    assert [c.structured_content["status"] for c in checks[:-1]] == ["running"] * (len(checks) - 1)
    assert len(checks) >= 3, "a slow answer should be followed over several checks"
    assert any(c.structured_content["text"] for c in checks[:-1]), "text arrives while running"
    last = checks[-1].structured_content
    assert last["status"] == "done" and last["error"] is None
    result = last["result"]
    assert result["status"] == "done" and result["job_id"] is None
    assert len(result["answer"]) == 400 and "work in the background" in result["answer"]
    assert followed == result["answer"], "the checks' text joins into the whole answer"
    assert text_of(checks[-1]) == result["answer"], "a done job's text content is the answer"
    assert result["session_id"] and result["finish_reason"] == "success"
    assert last["elapsed_s"] > 0
    assert listing_after["jobs"][0]["status"] == "done"
    assert listing_after["jobs"][0]["session_id"] == result["session_id"]
    assert listed["session_id"] is None  # not known until the answer is in
    assert len(sent_to_lingma(tmp_path, "chat/ask")) == 1


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"prompt": "   "}, "Invalid argument prompt: it is empty"),
        ({"prompt": "hi", "mode": "yolo"}, "'yolo' is not a mode"),
        ({"prompt": "hi", "model": "no-such-model"}, "'no-such-model' is not a model key"),
    ],
)
async def test_a_background_ask_refuses_bad_arguments_at_once(
    tmp_path: Path, arguments: dict[str, Any], expected: str
) -> None:
    async with mcp_server(tmp_path) as client:
        result = await client.call_tool("ask_lingma", {**arguments, "background": True})
        listing = await read_json(client, "lingma://jobs")
    assert result.is_error
    assert expected in text_of(result)
    assert listing["jobs"] == []
    assert sent_to_lingma(tmp_path, "chat/ask") == []


async def test_cancelling_a_job_stops_lingma(tmp_path: Path) -> None:
    async with mcp_server(tmp_path, SLOW) as client:
        started = await client.call_tool("ask_lingma", {"prompt": "stop me", "background": True})
        job_id = started.structured_content["job_id"]
        await first_text(client, job_id)  # cancel once Lingma is writing
        cancelled = await client.call_tool("cancel_lingma_job", {"job_id": job_id})
        await wait_until(lambda: sent_to_lingma(tmp_path, "chat/stop"))
        check = await client.call_tool("check_lingma_job", {"job_id": job_id, "wait_s": 0})
        again = await client.call_tool("cancel_lingma_job", {"job_id": job_id})
        listing = await read_json(client, "lingma://jobs")
        after = await client.call_tool("ask_lingma", {"prompt": "still usable"})
    assert not cancelled.is_error, text_of(cancelled)
    assert cancelled.structured_content["status"] == "cancelled"
    assert "Lingma was told to stop" in text_of(cancelled)
    stop = sent_to_lingma(tmp_path, "chat/stop")[0]["params"]
    ask = sent_to_lingma(tmp_path, "chat/ask")[0]["params"]
    assert stop["requestId"] == ask["requestId"]
    assert check.structured_content["status"] == "cancelled"
    assert check.structured_content["result"] is None
    assert "already ended (cancelled)" in text_of(again)
    assert listing["jobs"][0]["status"] == "cancelled"
    assert not after.is_error and "still usable" in after.structured_content["answer"]


async def test_an_unknown_job_id_is_a_clear_error(tmp_path: Path) -> None:
    async with mcp_server(tmp_path) as client:
        check = await client.call_tool("check_lingma_job", {"job_id": "job-nope"})
        cancel = await client.call_tool("cancel_lingma_job", {"job_id": "job-nope"})
    for result in (check, cancel):
        assert result.is_error
        text = text_of(result)
        assert "No job 'job-nope'" in text and "lingma://jobs" in text
        assert "dropped" in text  # unknown, or expired: the text names both


async def test_a_failed_job_reports_the_foreground_error_text(tmp_path: Path) -> None:
    async with mcp_server(tmp_path, {"LINGMA_SIM_RATE_LIMIT": "1"}) as client:
        started = await client.call_tool("ask_lingma", {"prompt": "hi", "background": True})
        checks, _ = await follow(client, started.structured_content["job_id"])
    last = checks[-1]
    assert not last.is_error  # the check worked; the job failed
    state = last.structured_content
    assert state["status"] == "failed" and state["result"] is None
    assert "rate limited or out of quota (429)" in state["error"]
    assert state["error"] in text_of(last)


async def test_jobs_end_when_the_server_exits_and_lingma_is_told_to_stop(
    tmp_path: Path,
) -> None:
    async with mcp_server(tmp_path, SLOW) as client:
        started = await client.call_tool("ask_lingma", {"prompt": "outlive me", "background": True})
        await wait_until(lambda: sent_to_lingma(tmp_path, "chat/ask"))
    # The host left: the server ends its jobs before closing Lingma.
    assert started.structured_content["status"] == "running"
    await wait_until(lambda: sent_to_lingma(tmp_path, "chat/stop"))
    stop = sent_to_lingma(tmp_path, "chat/stop")[0]["params"]
    assert stop["requestId"] == sent_to_lingma(tmp_path, "chat/ask")[0]["params"]["requestId"]


# -- automatic detach ------------------------------------------------------------------------


async def test_a_call_past_detach_after_returns_its_text_so_far_and_continues_as_a_job(
    tmp_path: Path,
) -> None:
    slow = {"LINGMA_SIM_DELTA_DELAY": "0.02", "LINGMA_SIM_ANSWER_SIZE": "600"}
    progress = Progress()
    async with mcp_server(tmp_path, slow, detach_after=0.5) as client:
        # Lingma up first, so the half second is the answer's, not a loaded machine's start.
        await client.call_tool("auth_status", {})
        detached = await client.call_tool(
            "ask_lingma", {"prompt": "a slow answer"}, progress_callback=progress
        )
        streamed = progress.text
        job_id = detached.structured_content["job_id"]
        checks, rest = await follow(client, job_id)
    assert not detached.is_error, text_of(detached)
    data = detached.structured_content
    assert data["status"] == "running" and job_id
    so_far = data["answer"]
    assert so_far and len(so_far) < 600, "a partial answer"
    assert so_far.startswith(streamed), "the text streamed as progress is in the result"
    text = text_of(detached)
    assert text.startswith(so_far)
    assert "continues as job" in text and job_id in text and "check_lingma_job" in text
    result = checks[-1].structured_content["result"]
    assert checks[-1].structured_content["status"] == "done"
    assert so_far + rest == result["answer"], "the checks go on exactly where the call ended"
    assert len(result["answer"]) == 600


async def test_detach_after_zero_never_detaches_even_a_host_that_cuts_calls(
    tmp_path: Path,
) -> None:
    codex = Implementation(name="codex-mcp-client", version="0.50.0")
    async with mcp_server(tmp_path, detach_after=0.0, host={"client_info": codex}) as client:
        result = await client.call_tool("ask_lingma", {"prompt": "quick"})
    assert not result.is_error, text_of(result)
    assert result.structured_content["status"] == "done"
    assert result.structured_content["job_id"] is None

"""Paths the simulator does not produce, through the real MCP server with a scripted Lingma.

The server runs in-process (the SDK's ``Client(app)``) on a fake supervisor whose client
plays back a list of chat events, so each test pins one branch of the MCP face: a 401 that
turns out to be an expired login, a cancel Lingma decided on its own, a keepalive while
Lingma is silent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from fakes import ScriptedLingma, scripted_app
from mcp import Client

from lingma_mcp.asking.bridge import Bridge
from lingma_mcp.config import Settings
from lingma_mcp.errors import LingmaConnectionLost
from lingma_mcp.events import Finish, TextDelta

pytestmark = pytest.mark.timeout(30)


def make(
    tmp_path: Path, script: list[Any], auth: list[int] | None = None, **settings: Any
) -> tuple[Any, ScriptedLingma]:
    return scripted_app(tmp_path, script, auth=auth, **settings)


async def test_a_401_from_an_expired_login_says_to_call_login(tmp_path: Path) -> None:
    app, _ = make(tmp_path, [Finish("error", 401, "s1", message="unauthorized")], auth=[2, 3])
    async with Client(app) as client:
        result = await client.call_tool("ask_lingma", {"prompt": "hi"})
    assert result.is_error
    assert "login has expired" in result.content[0].text
    assert "`login` tool" in result.content[0].text


async def test_a_cancel_lingma_decided_on_its_own_is_reported(tmp_path: Path) -> None:
    app, _ = make(tmp_path, [TextDelta("par"), Finish("cancelled", 200, "s1")])
    async with Client(app) as client:
        result = await client.call_tool("ask_lingma", {"prompt": "hi"})
    assert result.is_error
    assert "cancelled the answer" in result.content[0].text


async def test_a_connection_lost_mid_answer_is_a_crash_with_state(tmp_path: Path) -> None:
    app, fake = make(tmp_path, [TextDelta("par"), LingmaConnectionLost("socket closed")])
    async with Client(app) as client:
        result = await client.call_tool("ask_lingma", {"prompt": "hi"})
    assert result.is_error
    text = result.content[0].text
    assert "stopped while answering" in text and "Lingma state: ready" in text
    assert "the fake's logs" in text and "socket closed" not in text
    assert fake.streams[0].closed


async def test_keepalives_reach_the_host_while_lingma_is_silent(tmp_path: Path) -> None:
    # Lingma stays silent until three keepalives have reached the host: the test waits on
    # them, not on a clock; the short interval comes in through the settings.
    silence = anyio.Event()
    app, _ = make(
        tmp_path, [silence, TextDelta("done"), Finish("success", 200, "s1")], keepalive_s=0.05
    )
    messages: list[str] = []

    def keepalives() -> list[str]:
        return [m for m in messages if m.startswith("[lingma] still working")]

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        messages.append(message or "")
        if len(keepalives()) >= 3:
            silence.set()

    async with Client(app) as client:
        result = await client.call_tool(
            "ask_lingma", {"prompt": "think hard"}, progress_callback=on_progress
        )
    assert not result.is_error
    assert len(keepalives()) >= 3
    assert messages[-1] == "done"


async def test_the_server_closes_the_supervisor_when_the_host_leaves(tmp_path: Path) -> None:
    app, fake = make(tmp_path, [Finish("success", 200, "s1")])
    async with Client(app) as mcp:
        await mcp.list_tools()
    assert fake.backend.closed


async def test_a_status_check_waits_briefly_for_a_starting_lingma(tmp_path: Path) -> None:
    app, fake = make(tmp_path, [], startup_timeout=120)
    async with Client(app) as mcp:
        result = await mcp.call_tool("auth_status", {})
    assert result.structured_content["logged_in"] is True
    assert fake.backend.waits == [15.0]


async def test_a_lingma_that_died_while_idle_is_asked_once_more(tmp_path: Path) -> None:
    gone = LingmaConnectionLost("socket closed")
    app, fake = make(tmp_path, [[gone], [TextDelta("fine"), Finish("success", 200, "s1")]])
    async with Client(app) as client:
        result = await client.call_tool("ask_lingma", {"prompt": "hi"})
    assert not result.is_error, result.content[0].text
    assert result.structured_content["answer"] == "fine"
    assert len(fake.streams) == 2 and fake.streams[0].closed


async def test_a_crash_after_lingma_started_answering_is_not_retried(tmp_path: Path) -> None:
    gone = LingmaConnectionLost("socket closed")
    app, fake = make(
        tmp_path, [[TextDelta("half"), gone], [TextDelta("again"), Finish("success", 200, "s")]]
    )
    async with Client(app) as client:
        result = await client.call_tool("ask_lingma", {"prompt": "hi"})
    assert result.is_error and "stopped while answering" in result.content[0].text
    assert len(fake.streams) == 1


async def test_a_bug_is_reported_plainly_and_logged_whole(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app, _ = make(tmp_path, [RuntimeError("internal detail")])
    async with Client(app) as client:
        result = await client.call_tool("ask_lingma", {"prompt": "hi"})
        after = await client.call_tool("ask_lingma", {"prompt": "hi"})
    assert result.is_error and after.is_error  # and the server still answers
    assert "failed unexpectedly (RuntimeError)" in result.content[0].text
    assert "internal detail" not in result.content[0].text
    logged = [r for r in caplog.records if r.levelname == "ERROR" and r.exc_info]
    assert logged and "internal detail" in str(logged[0].exc_info[1])


# -- continuing, wedged Lingma, timeouts ------------------------------------------------


@pytest.mark.parametrize(
    ("asked", "upstream", "continued"),
    [("s1", "s1", True), ("stale", "s-new", False), (None, "s-new", None)],
)
async def test_the_result_says_whether_the_conversation_continued(
    tmp_path: Path, asked: str | None, upstream: str, continued: bool | None
) -> None:
    app, _ = make(tmp_path, [TextDelta("ok"), Finish("success", 200, upstream)])
    arguments: dict[str, Any] = {"prompt": "hi"}
    if asked is not None:
        arguments["session_id"] = asked
    async with Client(app) as client:
        result = await client.call_tool("ask_lingma", arguments)
    assert result.structured_content["continued"] is continued
    text = result.content[0].text
    if continued is False:
        assert text.startswith("[lingma] the session_id asked for is not known to Lingma")
        assert "s-new" in text and text.endswith("ok")
    else:
        assert text == "ok"


async def test_a_control_request_that_times_out_makes_the_supervisor_check_lingma(
    tmp_path: Path,
) -> None:
    app, fake = make(tmp_path, [Finish("success", 200, "s1")])
    fake.auth_hangs = True
    async with Client(app) as client:
        result = await client.call_tool("ask_lingma", {"prompt": "hi"})
    assert result.is_error and "auth/status" in result.content[0].text
    assert fake.backend.suspicions and "auth/status" in fake.backend.suspicions[0]


async def test_a_chat_that_hears_nothing_makes_the_supervisor_check_lingma(
    tmp_path: Path,
) -> None:
    never = anyio.Event()
    app, fake = make(tmp_path, [never])
    async with Client(app) as client:
        result = await client.call_tool("ask_lingma", {"prompt": "hi", "timeout_s": 0.2})
    assert result.is_error and "timeout_s=0.2" in result.content[0].text
    assert any("heard nothing" in r for r in fake.backend.suspicions)


async def test_a_timed_out_call_returns_without_waiting_for_chat_stop(tmp_path: Path) -> None:
    # Lingma accepts chat/stop but never replies to it: the call must not wait for that
    # reply (it once did, for 5 s past timeout_s); the stop still goes out.
    never = anyio.Event()
    app, fake = make(tmp_path, [TextDelta("so far"), never])
    fake.stop_gate = anyio.Event()
    async with Client(app) as client:
        result = await client.call_tool(
            "ask_lingma", {"prompt": "hi", "timeout_s": 0.2, "session_id": "s9"}
        )
        stream = fake.streams[0]
        assert stream.stop_sent and not stream.closed  # the reply is still outstanding
        fake.stop_gate.set()
    assert result.is_error
    text = result.content[0].text
    assert "so far" in text and "session_id='s9'" in text


# -- arguments ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "must_say"),
    [
        ({}, ["Invalid argument prompt: it is missing", "Send the question"]),
        ({"prompt": 5}, ["Invalid argument prompt", "Send the question"]),
        ({"prompt": "hi", "timeout_s": True}, ["timeout_s: True is not a number", "86400"]),
        ({"prompt": "hi", "timeout_s": "10"}, ["timeout_s: '10' is not a number", "86400"]),
        ({"prompt": "hi", "timeout_s": 1e308}, ["timeout_s: 1e+308 is out of range"]),
        ({"prompt": "hi", "timeout_s": -1}, ["timeout_s: -1 is out of range"]),
        ({"prompt": "hi", "workspace": "~nosuchuser/x"}, ["Invalid argument workspace"]),
        ({"prompt": "hi", "workspace": "/" + "a" * 5000}, ["Invalid argument workspace"]),
    ],
)
async def test_every_bad_argument_says_what_was_wrong_and_what_to_send(
    tmp_path: Path, arguments: dict[str, Any], must_say: list[str]
) -> None:
    app, fake = make(tmp_path, [Finish("success", 200, "s1")])
    async with Client(app) as client:
        result = await client.call_tool("ask_lingma", arguments)
    assert result.is_error
    text = result.content[0].text
    for phrase in must_say:
        assert phrase in text, text
    assert "validation error" not in text and "pydantic" not in text
    assert fake.streams == []


async def test_a_prompt_over_the_limit_is_refused_before_asking(tmp_path: Path) -> None:
    app, fake = make(tmp_path, [Finish("success", 200, "s1")], max_prompt_chars=10)
    async with Client(app) as client:
        result = await client.call_tool("ask_lingma", {"prompt": "x" * 11})
    assert result.is_error and "--max-prompt-chars" in result.content[0].text
    assert fake.streams == []


# -- capabilities and resources --------------------------------------------------------------


async def test_no_subscription_capability_is_advertised(tmp_path: Path) -> None:
    app, _ = make(tmp_path, [])
    for mode in ("legacy", "2026-07-28"):
        async with Client(app, mode=mode) as client:
            caps = client.server_capabilities
        resources = caps.resources
        if resources is not None:
            assert not resources.subscribe and not resources.list_changed, mode
        assert caps.tools is None or not caps.tools.list_changed


async def test_an_unknown_conversation_is_resource_not_found(tmp_path: Path) -> None:
    from mcp.shared.exceptions import MCPError

    app, _ = make(tmp_path, [])
    async with Client(app) as client:
        with pytest.raises(MCPError) as caught:
            await client.read_resource("lingma://sessions/nope")
    assert caught.value.code == -32002


async def test_caches_follow_the_client_not_its_id(tmp_path: Path) -> None:
    # After a reconnect the new client may get the old one's id(); the login check that
    # was good for the old client must not be trusted for the new one.
    first = ScriptedLingma([], [2])
    settings = Settings(workspace=tmp_path, work_dir=tmp_path / "work")
    bridge = Bridge(settings, first.backend)
    await bridge.login.ensure(first)  # type: ignore[arg-type]
    second = ScriptedLingma([], [3])
    with pytest.raises(Exception, match="not logged in"):
        await bridge.login.ensure(second)  # type: ignore[arg-type]

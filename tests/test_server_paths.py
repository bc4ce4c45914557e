"""Paths the simulator does not produce, through the real MCP server with a scripted Lingma.

The server runs in-process (the SDK's ``Client(app)``) on a fake supervisor whose client
plays back a list of chat events, so each test pins one branch of the MCP face: a 401 that
turns out to be an expired login, a cancel Lingma decided on its own, a keepalive while
Lingma is silent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import anyio
import pytest
from mcp import Client

from lingma_mcp.asking.bridge import Bridge
from lingma_mcp.backend import ChatRequest, ChatResult, Login, Model, Session
from lingma_mcp.config import Settings
from lingma_mcp.errors import LingmaConnectionLost, RpcTimeout
from lingma_mcp.events import Finish, TextDelta
from lingma_mcp.lingma.auth import login_from_status
from lingma_mcp.server.app import build_app

pytestmark = pytest.mark.timeout(30)


class Pause:
    """A scripted silence of ``seconds`` in the event stream."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds


@dataclass
class FakeStream:
    script: list[Any]
    request_id: str = "req-1"
    session_hint: str | None = None
    continuing: bool = False  # asked to continue session_hint
    closed: bool = False
    stop_gate: anyio.Event | None = None  # set: chat/stop "replies"; None: at once
    stop_sent: bool = False
    _parts: list[str] = field(default_factory=list)
    _finish: Finish | None = None
    _failed: bool = False

    @property
    def finish(self) -> Finish | None:
        return self._finish

    @property
    def done(self) -> bool:
        return self._finish is not None or self._failed

    def __aiter__(self) -> FakeStream:
        return self

    async def __anext__(self) -> Any:
        while self.script:
            item = self.script.pop(0)
            if isinstance(item, Pause):
                await anyio.sleep(item.seconds)
                continue
            if isinstance(item, anyio.Event):
                await item.wait()  # silence until the test sets it
                continue
            if isinstance(item, BaseException):
                self._failed = True
                raise item
            if isinstance(item, TextDelta):
                self._parts.append(item.text)
            if isinstance(item, Finish):
                self._finish = item
            return item
        raise StopAsyncIteration

    def text_so_far(self) -> str:
        return "".join(self._parts)

    def result(self) -> ChatResult:
        finish = self._finish
        return ChatResult(
            answer=self.text_so_far(),
            session_id=finish.session_id if finish else None,
            request_id=self.request_id,
            finish_reason=finish.reason if finish else None,
            status_code=finish.status_code if finish else None,
            finish_message=finish.message if finish else "",
            first_token_ms=1,
            total_ms=2,
            continued=finish.session_id == self.session_hint
            if finish and self.continuing
            else None,
        )

    async def aclose(self) -> None:
        if not self.done:
            self.stop_sent = True
            if self.stop_gate is not None:
                await self.stop_gate.wait()
        self.closed = True


class FakeClient:
    def __init__(self, script: list[Any], auth: list[int]) -> None:
        self.script = script
        self.auth = auth  # status codes returned by successive auth/status calls
        self.streams: list[FakeStream] = []
        self.sessions: dict[str, Session] = {}
        self.auth_hangs = False
        self.stop_gate: anyio.Event | None = None

    async def login_state(self) -> Login:
        if self.auth_hangs:
            raise RpcTimeout("auth/status", 30)
        status = self.auth.pop(0) if len(self.auth) > 1 else self.auth[0]
        return login_from_status({"status": status, "name": "me"})

    async def models(self) -> list[Model]:
        return [Model("auto", "Auto", scenes=("chat",), default_in=("chat",))]

    async def open_chat(self, request: ChatRequest) -> FakeStream:
        # A script of scripts plays one per chat (for retries); a flat script plays for each.
        if self.script and isinstance(self.script[0], list):
            stream = FakeStream(list(self.script.pop(0)))
        else:
            stream = FakeStream(list(self.script))
        stream.session_hint = request.session_id or "new-session"
        stream.continuing = request.session_id is not None
        stream.stop_gate = self.stop_gate
        self.streams.append(stream)
        return stream

    async def session(self, session_id: str) -> Session | None:
        return self.sessions.get(session_id)


class FakeSupervisor:
    def __init__(self, client: FakeClient) -> None:
        self._client = client
        self.closed = False
        self.waits: list[float | None] = []
        self.suspicions: list[str] = []

    def start(self) -> None:
        pass

    async def client(self, timeout: float | None = None) -> FakeClient:  # noqa: ASYNC109 - the supervisor contract
        self.waits.append(timeout)
        return self._client

    def status(self) -> Any:
        return SimpleNamespace(state="ready", log_hint="the fake's logs")

    def suspect(self, reason: str) -> None:
        self.suspicions.append(reason)

    async def close(self) -> None:
        self.closed = True


def make(
    tmp_path: Path, script: list[Any], auth: list[int] | None = None, **options: Any
) -> tuple[Any, Any]:
    client = FakeClient(script, auth or [2])
    supervisor = FakeSupervisor(client)
    client.supervisor = supervisor  # type: ignore[attr-defined]
    settings = Settings(workspace=tmp_path, work_dir=tmp_path / "work", **options)
    return build_app(settings, Bridge(settings, supervisor)), client


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
    client = FakeClient([Finish("success", 200, "s1")], [2])
    supervisor = FakeSupervisor(client)
    settings = Settings(workspace=tmp_path, work_dir=tmp_path / "work")
    app = build_app(settings, Bridge(settings, supervisor))
    async with Client(app) as mcp:
        await mcp.list_tools()
    assert supervisor.closed


async def test_a_status_check_waits_briefly_for_a_starting_lingma(tmp_path: Path) -> None:
    client = FakeClient([], [2])
    supervisor = FakeSupervisor(client)
    settings = Settings(workspace=tmp_path, work_dir=tmp_path / "work", startup_timeout=120)
    app = build_app(settings, Bridge(settings, supervisor))
    async with Client(app) as mcp:
        result = await mcp.call_tool("auth_status", {})
    assert result.structured_content["logged_in"] is True
    assert supervisor.waits == [15.0]


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
    assert fake.supervisor.suspicions and "auth/status" in fake.supervisor.suspicions[0]


async def test_a_chat_that_hears_nothing_makes_the_supervisor_check_lingma(
    tmp_path: Path,
) -> None:
    never = anyio.Event()
    app, fake = make(tmp_path, [never])
    async with Client(app) as client:
        result = await client.call_tool("ask_lingma", {"prompt": "hi", "timeout_s": 0.2})
    assert result.is_error and "timeout_s=0.2" in result.content[0].text
    assert any("heard nothing" in r for r in fake.supervisor.suspicions)


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
    first = FakeClient([], [2])
    supervisor = FakeSupervisor(first)
    settings = Settings(workspace=tmp_path, work_dir=tmp_path / "work")
    bridge = Bridge(settings, supervisor)
    await bridge.login.ensure(first)  # type: ignore[arg-type]
    second = FakeClient([], [3])
    with pytest.raises(Exception, match="not logged in"):
        await bridge.login.ensure(second)  # type: ignore[arg-type]

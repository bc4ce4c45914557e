"""The supervised Lingma process, against the simulator: start-up, faults, reconnect, shutdown.

Faults are switched by ``LINGMA_SIM_*`` variables, which the child inherits when it is
spawned; a test that wants the *next* process healthy removes the variable first.
"""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from procs import alive, wait_gone
from simclient import SimProcess

from lingma_mcp.backend import ChatRequest
from lingma_mcp.config import Settings
from lingma_mcp.errors import LingmaClosed, LingmaConnectionLost, LingmaStartupError
from lingma_mcp.lingma.framing import FrameDecoder, encode_frame
from lingma_mcp.lingma.ide_client import LingmaClient
from lingma_mcp.lingma.info_reader import remove_stale_info, wait_for_info
from lingma_mcp.lingma.launch_options import LaunchOptions
from lingma_mcp.lingma.streams import ChatResult, ChatStream
from lingma_mcp.lingma.supervisor import LingmaSupervisor, State

pytestmark = pytest.mark.timeout(60)
ON_LINUX = sys.platform.startswith("linux")  # /proc lists our children; elsewhere skipped

SIM_VERSION_PREFIX = "2.5"
HELPER = Path(__file__).with_name("sup_server.py")


def _children() -> set[int]:
    """Pids of this process's children, zombies included: an unreaped child shows here.

    Linux only (``/proc``); elsewhere an empty set, and tests that assert on it skip.
    """
    found: set[int] = set()
    if not ON_LINUX:
        return found
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        try:
            with open(task / "children") as fh:
                found.update(int(pid) for pid in fh.read().split())
        except FileNotFoundError:
            continue  # a thread (asyncio's child watcher) ended meanwhile
    return found


@pytest.fixture(autouse=True)
def _clean_sim_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("LINGMA_SIM_"):
            monkeypatch.delenv(name)


@pytest.fixture
def settings(tmp_path: Path) -> LaunchOptions:
    return Settings(
        simulate=True,
        work_dir=tmp_path / "work",
        workspace=tmp_path,
        startup_timeout=15.0,
        request_timeout=5.0,
    ).launch_options()


Factory = Callable[..., LingmaSupervisor]


@pytest.fixture
async def make(settings: LaunchOptions) -> AsyncIterator[Factory]:
    made: list[LingmaSupervisor] = []

    def factory(custom: LaunchOptions | None = None, **kwargs: object) -> LingmaSupervisor:
        kwargs.setdefault("backoff_initial", 0.05)
        kwargs.setdefault("terminate_grace", 2.0)
        supervisor = LingmaSupervisor(custom or settings, **kwargs)  # type: ignore[arg-type]
        made.append(supervisor)
        return supervisor

    yield factory
    for supervisor in made:
        await supervisor.close()
    assert _children() == set(), "a Lingma process was left behind"


async def _drain(stream: ChatStream) -> ChatResult:
    try:
        async for _ in stream:
            pass
    finally:
        await stream.aclose()
    return stream.result()


async def _ask(client: LingmaClient, prompt: str = "ping") -> ChatResult:
    return await _drain(await client.open_chat(ChatRequest(prompt=prompt)))


# ---------------------------------------------------------------------- start-up


async def test_starts_in_the_background_and_reports_ready(make: Factory) -> None:
    supervisor = make()
    assert supervisor.status().state is State.STOPPED
    supervisor.start()
    assert supervisor.status().state is State.STARTING
    client = await supervisor.client()
    status = supervisor.status()
    assert status.state is State.READY
    assert status.pid is not None and alive(status.pid)
    assert status.port and status.version and status.version.startswith(SIM_VERSION_PREFIX)
    assert status.source == "simulator" and not status.attached and status.last_error is None
    assert await supervisor.client() is client  # ready: no second start
    result = await _ask(client)
    assert result.finish_reason == "success" and result.answer

    await supervisor.close()
    assert supervisor.status().state is State.CLOSED
    assert not alive(status.pid)
    with pytest.raises(LingmaClosed):
        await supervisor.client()
    await supervisor.close()  # idempotent


@pytest.mark.parametrize(
    ("info_format", "torn"), [("two", False), ("three", False), ("json", False), ("two", True)]
)
async def test_every_info_format_is_understood(
    make: Factory, monkeypatch: pytest.MonkeyPatch, info_format: str, torn: bool
) -> None:
    monkeypatch.setenv("LINGMA_SIM_INFO_FORMAT", info_format)
    if torn:
        monkeypatch.setenv("LINGMA_SIM_INFO_TORN", "1")
    supervisor = make()
    client = await supervisor.client()
    assert supervisor.status().state is State.READY
    assert (await _ask(client)).finish_reason == "success"


async def test_stale_info_from_a_dead_lingma_is_ignored(
    make: Factory, settings: LaunchOptions
) -> None:
    settings.work_dir.mkdir(parents=True)
    (settings.work_dir / ".info").write_text("1\n999999\n")  # port 1: nothing listens there
    supervisor = make()
    await supervisor.client()
    assert supervisor.status().port != 1


async def test_a_lone_server_keeps_the_work_dir_itself_across_restarts(
    make: Factory, settings: LaunchOptions
) -> None:
    settings.work_dir.mkdir(parents=True, mode=0o755)
    first = make()
    await first.client()
    assert first.instance_dir == settings.work_dir  # Lingma's saved state stays where it was
    assert stat.S_IMODE(settings.work_dir.stat().st_mode) == 0o700
    await first.close()
    again = make()
    await again.client()
    assert again.instance_dir == settings.work_dir


async def test_a_free_folder_whose_lingma_still_runs_is_skipped_not_taken_over(
    make: Factory, settings: LaunchOptions
) -> None:
    # A server that died hard may leave its Lingma running (no parent-death signal on
    # macOS): its folder is free by the lock, but that Lingma must not be confused with ours.
    settings.work_dir.mkdir(parents=True)
    foreign = settings.work_dir / ".info"
    foreign.write_text(f"4001\n{os.getpid()}\n")  # a live process that is not our child
    supervisor = make()
    await supervisor.client()
    own = supervisor.instance_dir
    assert own == settings.work_dir / "instances" / "1"
    assert stat.S_IMODE(own.stat().st_mode) == 0o700
    assert foreign.read_text() == f"4001\n{os.getpid()}\n"  # never deleted
    assert supervisor.status().port != 4001


async def test_two_servers_on_one_work_dir_never_share_or_kill_each_others_lingma(
    make: Factory,
) -> None:
    first, second = make(), make()
    _, client_b = await asyncio.gather(first.client(), second.client())
    a, b = first.status(), second.status()
    assert a.pid and b.pid and a.pid != b.pid and a.port != b.port
    assert first.instance_dir != second.instance_dir
    assert (a.work_dir, b.work_dir) == (first.instance_dir, second.instance_dir)
    assert (await _ask(client_b)).finish_reason == "success"

    await first.close()
    assert not alive(a.pid)
    assert alive(b.pid)
    assert second.status().state is State.READY and second.status().generation == 1
    assert (await _ask(client_b)).finish_reason == "success"
    assert await second.client() is client_b


async def test_calls_during_a_slow_start_wait_for_it_and_share_one_lingma(
    make: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LINGMA_SIM_START_DELAY", "0.5")
    supervisor = make()
    supervisor.start()
    clients = await asyncio.gather(*(supervisor.client() for _ in range(3)))
    assert clients[0] is clients[1] is clients[2]
    assert supervisor.status().generation == 1  # three callers, one Lingma
    if ON_LINUX:
        assert len(_children()) == 1
    assert (await _ask(clients[0])).finish_reason == "success"


async def test_no_info_gives_a_timeout_naming_the_file_and_reaps_the_process(
    make: Factory, settings: LaunchOptions, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LINGMA_SIM_NO_INFO", "1")
    supervisor = make(replace(settings, startup_timeout=0.5))
    supervisor.start()
    with pytest.raises(LingmaStartupError) as caught:
        await supervisor.client()
    err = caught.value
    assert supervisor.instance_dir is not None
    assert str(supervisor.instance_dir / ".info") in str(err)
    assert ".info" in (err.waited_for or "")
    assert err.log_hint and "--log-level DEBUG" in err.log_hint
    status = supervisor.status()
    assert status.state is State.FAILED and status.pid is None
    assert status.last_exception is err
    assert _children() == set()  # killed and reaped, not left running


async def test_a_call_after_a_failed_start_tries_again_at_once(
    make: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LINGMA_SIM_EXIT_AT_START", "3")
    supervisor = make()
    with pytest.raises(LingmaStartupError):
        await supervisor.client()
    assert supervisor.status().state is State.FAILED
    monkeypatch.delenv("LINGMA_SIM_EXIT_AT_START")
    await supervisor.client()
    assert supervisor.status().state is State.READY


async def test_a_caller_with_a_shorter_wait_hears_what_start_up_waits_for(
    make: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LINGMA_SIM_NO_INFO", "1")
    supervisor = make()
    with pytest.raises(LingmaStartupError) as caught:
        await supervisor.client(timeout=0.3)
    assert ".info" in str(caught.value) and "0.3 s" in str(caught.value)
    assert supervisor.status().state is State.STARTING  # the attempt itself goes on


async def test_exit_at_start_reports_the_exit_code_and_stderr_tail(
    make: Factory, settings: LaunchOptions, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LINGMA_SIM_EXIT_AT_START", "3")
    # A start-up bound longer than the test's: only the exit itself can end the wait.
    supervisor = make(replace(settings, startup_timeout=600))
    with pytest.raises(LingmaStartupError) as caught:
        await supervisor.client()
    err = caught.value
    assert err.exit_code == 3
    assert any("simulated start-up failure" in line for line in err.stderr_tail)
    assert "code 3" in str(err)
    assert supervisor.status().state is State.FAILED


async def test_missing_binary_fails_fast_with_the_places_looked(
    make: Factory, tmp_path: Path
) -> None:
    from lingma_mcp.errors import LingmaNotFound

    custom = LaunchOptions(tmp_path / "w", binary=str(tmp_path / "nope" / "Lingma"))
    supervisor = make(custom)
    with pytest.raises(LingmaNotFound) as caught:
        await supervisor.client()
    assert str(tmp_path / "nope" / "Lingma") in str(caught.value)
    assert supervisor.status().state is State.FAILED


async def test_an_unusable_work_dir_is_named(make: Factory, settings: LaunchOptions) -> None:
    blocker = settings.workspace / "a-file"
    blocker.write_text("not a folder")
    supervisor = make(replace(settings, work_dir=blocker / "work"))
    with pytest.raises(LingmaStartupError) as caught:
        await supervisor.client()
    assert str(blocker / "work") in str(caught.value) and "--work-dir" in str(caught.value)


# ---------------------------------------------------------------------- staying up


async def test_crash_mid_stream_fails_the_call_at_once_and_the_next_call_respawns(
    make: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LINGMA_SIM_CRASH_AFTER", "3")
    # A long reconnect pause: the next call must cut it short rather than wait it out.
    supervisor = make(backoff_initial=30.0)
    client = await supervisor.client()
    first_pid = supervisor.status().pid
    stream = await client.open_chat(ChatRequest(prompt="tell me a long story"))
    with pytest.raises(LingmaConnectionLost):
        async for _ in stream:
            pass
    assert supervisor.status().state is State.RECONNECTING
    assert "Lingma stopped" in (supervisor.status().last_error or "")

    monkeypatch.delenv("LINGMA_SIM_CRASH_AFTER")
    # The reconnect pause is 30 s and the test's bound 60: only a cut-short pause passes.
    fresh = await supervisor.client(timeout=20)
    assert fresh is not client
    assert supervisor.status().generation == 2
    assert supervisor.status().pid not in (None, first_pid)
    assert first_pid is not None and not alive(first_pid)
    assert (await _ask(fresh)).finish_reason == "success"


async def test_dropped_socket_with_the_process_alive_reconnects_to_the_same_process(
    make: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LINGMA_SIM_DROP_AFTER", "2")
    supervisor = make()
    client = await supervisor.client()
    pid = supervisor.status().pid
    with pytest.raises(LingmaConnectionLost):
        await _ask(client)
    fresh = await supervisor.client()
    assert fresh is not client
    status = supervisor.status()
    assert status.state is State.READY and status.pid == pid
    assert (await _ask(fresh)).finish_reason == "success"  # the simulator drops only once


async def test_a_hung_chat_times_out_and_lingma_stays_usable(
    make: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LINGMA_SIM_HANG", "1")
    supervisor = make()
    client = await supervisor.client()
    stream = await client.open_chat(ChatRequest(prompt="hang please"))
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(_drain(stream), 0.3)
    # Suspected, it answers its health check: it is kept, not replaced.
    assert await supervisor.check_health("a chat heard nothing") is True
    assert supervisor.status().state is State.READY and supervisor.status().generation == 1
    assert isinstance(await client.models(), list)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGSTOP is POSIX")
async def test_a_wedged_lingma_is_killed_and_replaced(make: Factory) -> None:
    supervisor = make(probe_timeout=0.5)
    client = await supervisor.client()
    wedged = supervisor.status().pid
    assert wedged is not None
    os.kill(wedged, signal.SIGSTOP)  # accepts connections, answers nothing
    try:
        supervisor.suspect("a control call timed out")  # returns at once
        assert await supervisor.check_health("and again") is False  # joins the same probe
        assert supervisor.status().state is State.RECONNECTING
        fresh = await supervisor.client()
    finally:
        if alive(wedged):
            os.kill(wedged, signal.SIGCONT)
    assert fresh is not client
    status = supervisor.status()
    assert status.state is State.READY and status.generation == 2
    assert status.pid not in (None, wedged)
    assert not alive(wedged)  # its group was killed, and it was reaped
    assert (await _ask(fresh)).finish_reason == "success"


async def test_reconnects_are_bounded_then_a_call_tries_again(
    make: Factory, tmp_path: Path
) -> None:
    lingma, port = await _run_sim(tmp_path / "outside")
    try:
        attached = LaunchOptions(tmp_path / "w", port=port, startup_timeout=0.3)
        supervisor = make(attached, backoff_initial=0.01, backoff_max=0.02, max_attempts=3)
        await supervisor.client()
        lingma.signal(signal.SIGKILL)
        await lingma.wait_exit()
        # The health check notices the loss for sure (the socket's close may still be in
        # flight); then each call hears the outcome of one reconnect attempt.
        assert await supervisor.check_health("Lingma was killed") is False
        for _ in range(3):
            assert supervisor.status().state is State.RECONNECTING
            with pytest.raises(LingmaStartupError):
                await supervisor.client()
        assert supervisor.status().state is State.FAILED

        lingma, port2 = await _run_sim(tmp_path / "outside", port=port)
        assert port2 == port
        await supervisor.client()
        assert supervisor.status().state is State.READY
    finally:
        lingma.stop()


class _FakeLingma:
    """An in-process WebSocket Lingma that answers ``initialize`` and then, on its first
    connection, drops it ``turns`` event-loop turns after the reply."""

    def __init__(self, turns: int) -> None:
        self.turns = turns
        self.connections = 0
        self.reconnected = asyncio.Event()

    async def handler(self, ws: Any) -> None:
        self.connections += 1
        first = self.connections == 1
        if not first:
            self.reconnected.set()
        decoder = FrameDecoder()
        async for data in ws:
            for message in decoder.feed(data):
                if "id" not in message or "method" not in message:
                    continue
                reply = {"jsonrpc": "2.0", "id": message["id"], "result": {}}
                if message["method"] == "initialize":
                    reply["result"] = {"serverInfo": {"name": "lingma", "version": "fake"}}
                await ws.send(encode_frame(reply).decode())
                if first and message["method"] == "initialize":
                    for _ in range(self.turns):
                        await asyncio.sleep(0)
                    ws.transport.abort()
                    return


@pytest.mark.parametrize("turns", [0, 1, 2, 3])
async def test_a_drop_right_after_initialize_still_schedules_a_reconnect(
    make: Factory, tmp_path: Path, turns: int
) -> None:
    # Pins a race: a loss landing between initialize's reply and the hand-over to `ready`
    # once left the state `reconnecting` with no reconnect running (seen on 3.10 and 3.11).
    from websockets.asyncio.server import serve

    fake = _FakeLingma(turns)
    async with serve(fake.handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        supervisor = make(LaunchOptions(tmp_path / "w", workspace=tmp_path, port=port))
        await supervisor.client()
        # Nobody calls client() again: the supervisor must reconnect on its own.
        await asyncio.wait_for(fake.reconnected.wait(), 20)
        await supervisor.client()
        status = supervisor.status()
        assert status.state is State.READY and status.generation == 2
        await supervisor.close()


# ---------------------------------------------------------------------- attach mode


async def _run_sim(work: Path, port: int = 0) -> tuple[SimProcess, int]:
    """A simulator the supervisor did not start (attach mode): simclient's launcher."""
    remove_stale_info(work)  # a killed simulator leaves its .info behind
    lingma = SimProcess(work, args=["--socketPort", str(port)] if port else [])
    lingma.start()
    info = await asyncio.wait_for(wait_for_info(work, expected_pid=lingma.pid), 15)
    return lingma, info.port


async def test_attach_mode_spawns_nothing_and_kills_nothing(make: Factory, tmp_path: Path) -> None:
    lingma, port = await _run_sim(tmp_path / "outside")
    try:
        attached = LaunchOptions(tmp_path / "unused", workspace=tmp_path, port=port)
        supervisor = make(attached)
        client = await supervisor.client()
        status = supervisor.status()
        assert status.attached and status.pid is None and status.port == port
        assert status.source == "attached"
        if ON_LINUX:
            assert _children() == {lingma.pid}  # nothing spawned
        assert (await _ask(client)).finish_reason == "success"
        await supervisor.close()
        assert alive(lingma.pid)  # nothing killed
        assert not (tmp_path / "unused").exists()
    finally:
        lingma.stop()


async def test_attach_to_a_port_where_nothing_listens_fails_fast(
    make: Factory, tmp_path: Path
) -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()  # a port that was free a moment ago, now closed
    # A start-up bound longer than the test's: the error must come from the closed port.
    supervisor = make(LaunchOptions(tmp_path / "w", port=port, startup_timeout=600))
    with pytest.raises(LingmaStartupError) as caught:
        await supervisor.client()
    assert f"127.0.0.1:{port}" in str(caught.value) and "--lingma-port" in str(caught.value)
    assert supervisor.status().state is State.FAILED


# ---------------------------------------------------------------------- shutting down


async def test_close_escalates_to_sigkill_when_lingma_ignores_sigterm(
    make: Factory, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("LINGMA_SIM_IGNORE_SIGTERM", "1")
    supervisor = make(terminate_grace=0.3)
    await supervisor.client()
    pid = supervisor.status().pid
    assert pid is not None
    with caplog.at_level("WARNING", logger="lingma_mcp.process"):
        await supervisor.close()
    assert f"pid {pid} ignored SIGTERM" in caplog.text and "SIGKILL" in caplog.text
    assert not alive(pid)
    assert _children() == set()


async def test_close_while_starting_stops_the_start_and_the_child(
    make: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LINGMA_SIM_START_DELAY", "30")
    supervisor = make()
    supervisor.start()
    waiter = asyncio.ensure_future(supervisor.client())
    await asyncio.sleep(0)  # let the waiter register
    await supervisor.close()
    with pytest.raises(LingmaClosed):
        await waiter
    assert _children() == set()


async def _run_helper(tmp_path: Path, mode: str) -> tuple[asyncio.subprocess.Process, int]:
    helper = await asyncio.create_subprocess_exec(
        sys.executable,
        str(HELPER),
        str(tmp_path),
        mode,
        stdin=asyncio.subprocess.PIPE,  # held open: EOF is the helper's cue to shut down
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert helper.stderr is not None
    while True:
        line = await asyncio.wait_for(helper.stderr.readline(), 30)
        assert line, "the helper server ended before reporting Lingma's pid"
        if line.startswith(b"LINGMA_PID="):
            return helper, int(line.split(b"=", 1)[1])


async def test_lingma_stdout_noise_never_reaches_the_server_stdout(tmp_path: Path) -> None:
    # Control: the simulator does print to stdout, so an empty stdout below means something.
    noisy = SimProcess(tmp_path / "control", env={"LINGMA_SIM_EXIT_AT_START": "0"})
    noisy.start()
    await noisy.wait_exit(30)
    assert noisy.stdout().strip()

    helper, pid = await _run_helper(tmp_path, "exit")
    out, _ = await asyncio.wait_for(helper.communicate(), 30)
    assert helper.returncode == 0
    assert out == b""
    assert not alive(pid)


@pytest.mark.parametrize("cue", ["stdin EOF", "SIGTERM"])
async def test_server_shutdown_on_eof_or_sigterm_leaves_no_lingma(tmp_path: Path, cue: str) -> None:
    helper, pid = await _run_helper(tmp_path, "wait")
    assert helper.stdin is not None
    try:
        assert alive(pid)
        if cue == "SIGTERM":
            helper.send_signal(signal.SIGTERM)
        else:
            helper.stdin.close()
        out, _ = await asyncio.wait_for(helper.communicate(), 30)
        assert helper.returncode == 0 and out == b""
        assert not alive(pid)  # the helper reaped it: not even a zombie is left
    finally:
        if helper.returncode is None:
            helper.kill()
            await helper.wait()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux")
async def test_a_sigkilled_server_leaves_no_lingma_behind(tmp_path: Path) -> None:
    helper, pid = await _run_helper(tmp_path, "wait")
    try:
        assert alive(pid)
        helper.send_signal(signal.SIGKILL)
        await helper.wait()
        await wait_gone(pid, "Lingma outlived its SIGKILLed server")
    finally:
        if helper.returncode is None:
            helper.kill()
            await helper.wait()
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_the_supervisor_takes_only_launch_options_from_settings(tmp_path: Path) -> None:
    settings = Settings(simulate=True, work_dir=tmp_path / "w", model="m", mode="agent")
    supervisor = LingmaSupervisor(settings)
    assert supervisor.options == settings.launch_options()
    assert not hasattr(supervisor.options, "model") and not hasattr(supervisor.options, "mode")

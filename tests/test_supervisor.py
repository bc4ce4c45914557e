"""The supervised Lingma process, against the simulator: start-up, faults, reconnect, shutdown.

Faults are switched by ``LINGMA_SIM_*`` variables, which the child inherits when it is
spawned; a test that wants the *next* process healthy removes the variable first.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from procs import alive

from lingma_mcp.config import Settings
from lingma_mcp.errors import LingmaClosed, LingmaConnectionLost, LingmaStartupError
from lingma_mcp.lingma.client import ChatRequest, LingmaClient
from lingma_mcp.lingma.info import remove_stale_info, wait_for_info
from lingma_mcp.lingma.streams import ChatResult, ChatStream
from lingma_mcp.lingma.supervisor import LingmaSupervisor, State

pytestmark = pytest.mark.timeout(60)

SIM_VERSION_PREFIX = "2.5"
HELPER = Path(__file__).with_name("sup_server.py")


def _children() -> set[int]:
    """Pids of this process's children, zombies included: an unreaped child shows here."""
    found: set[int] = set()
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
def settings(tmp_path: Path) -> Settings:
    return Settings(
        simulate=True,
        work_dir=tmp_path / "work",
        workspace=tmp_path,
        startup_timeout=15.0,
        request_timeout=5.0,
    )


Factory = Callable[..., LingmaSupervisor]


@pytest.fixture
async def make(settings: Settings) -> AsyncIterator[Factory]:
    made: list[LingmaSupervisor] = []

    def factory(custom: Settings | None = None, **kwargs: object) -> LingmaSupervisor:
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


async def test_stale_info_from_a_dead_lingma_is_ignored(make: Factory, settings: Settings) -> None:
    settings.work_dir.mkdir(parents=True)
    (settings.work_dir / ".info").write_text("1\n999999\n")  # port 1: nothing listens there
    supervisor = make()
    await supervisor.client()
    assert supervisor.status().port != 1


async def test_calls_during_a_slow_start_wait_for_it_and_share_one_lingma(
    make: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LINGMA_SIM_START_DELAY", "0.5")
    supervisor = make()
    started = time.monotonic()
    supervisor.start()
    clients = await asyncio.gather(*(supervisor.client() for _ in range(3)))
    assert time.monotonic() - started >= 0.5
    assert clients[0] is clients[1] is clients[2]
    assert len(_children()) == 1  # three callers, one Lingma
    assert (await _ask(clients[0])).finish_reason == "success"


async def test_no_info_gives_a_timeout_naming_the_file_and_reaps_the_process(
    make: Factory, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LINGMA_SIM_NO_INFO", "1")
    settings.startup_timeout = 0.5
    supervisor = make()
    supervisor.start()
    with pytest.raises(LingmaStartupError) as caught:
        await supervisor.client()
    err = caught.value
    assert str(settings.work_dir / ".info") in str(err)
    assert ".info" in (err.waited_for or "")
    assert err.log_hint and "--log-level DEBUG" in err.log_hint
    status = supervisor.status()
    assert status.state is State.FAILED and status.pid is None
    assert status.last_exception is err
    assert _children() == set()  # killed and reaped, not left running

    # A later call finds it failed and tries again at once.
    monkeypatch.delenv("LINGMA_SIM_NO_INFO")
    settings.startup_timeout = 15.0
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
    make: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LINGMA_SIM_EXIT_AT_START", "3")
    supervisor = make()
    started = time.monotonic()
    with pytest.raises(LingmaStartupError) as caught:
        await supervisor.client()
    assert time.monotonic() - started < 10  # the exit is noticed, not timed out
    err = caught.value
    assert err.exit_code == 3
    assert any("simulated start-up failure" in line for line in err.stderr_tail)
    assert "code 3" in str(err)
    assert supervisor.status().state is State.FAILED


async def test_missing_binary_fails_fast_with_the_places_looked(
    make: Factory, tmp_path: Path
) -> None:
    from lingma_mcp.errors import LingmaNotFound

    custom = Settings(lingma_bin=str(tmp_path / "nope" / "Lingma"), work_dir=tmp_path / "w")
    supervisor = make(custom)
    with pytest.raises(LingmaNotFound) as caught:
        await supervisor.client()
    assert str(tmp_path / "nope" / "Lingma") in str(caught.value)
    assert supervisor.status().state is State.FAILED


async def test_an_unusable_work_dir_is_named(make: Factory, settings: Settings) -> None:
    blocker = settings.workspace / "a-file"
    blocker.write_text("not a folder")
    settings.work_dir = blocker / "work"
    supervisor = make()
    with pytest.raises(LingmaStartupError) as caught:
        await supervisor.client()
    assert str(settings.work_dir) in str(caught.value) and "--work-dir" in str(caught.value)


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
    started = time.monotonic()
    with pytest.raises(LingmaConnectionLost):
        async for _ in stream:
            pass
    assert time.monotonic() - started < 1.0
    assert supervisor.status().state is State.RECONNECTING
    assert "Lingma stopped" in (supervisor.status().last_error or "")

    monkeypatch.delenv("LINGMA_SIM_CRASH_AFTER")
    started = time.monotonic()
    fresh = await supervisor.client()
    assert time.monotonic() - started < 10
    assert fresh is not client
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
    make: Factory, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LINGMA_SIM_HANG", "1")
    settings.request_timeout = 0.3
    supervisor = make()
    client = await supervisor.client()
    stream = await client.open_chat(ChatRequest(prompt="hang please"))
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(_drain(stream), settings.request_timeout)
    assert supervisor.status().state is State.READY
    assert isinstance(await client.query_models(), dict)


async def test_reconnects_are_bounded_then_a_call_tries_again(
    make: Factory, settings: Settings, tmp_path: Path
) -> None:
    lingma, port = await _run_sim(tmp_path / "outside")
    try:
        attached = Settings(lingma_port=port, work_dir=tmp_path / "w", startup_timeout=0.3)
        supervisor = make(attached, backoff_initial=0.01, backoff_max=0.02, max_attempts=3)
        await supervisor.client()
        lingma.kill()
        await lingma.wait()
        task = supervisor._task
        assert task is not None
        await asyncio.wait_for(asyncio.shield(task), 10)
        assert supervisor.status().state is State.FAILED

        lingma, port2 = await _run_sim(tmp_path / "outside", port=port)
        assert port2 == port
        await supervisor.client()
        assert supervisor.status().state is State.READY
    finally:
        if lingma.returncode is None:
            lingma.terminate()
            await lingma.wait()


# ---------------------------------------------------------------------- attach mode


async def _run_sim(work: Path, port: int = 0) -> tuple[asyncio.subprocess.Process, int]:
    args = [sys.executable, "-m", "lingma_mcp.sim", "start", "--workDir", str(work)]
    if port:
        args += ["--socketPort", str(port)]
    remove_stale_info(work)  # a killed simulator leaves its .info behind
    lingma = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    info = await asyncio.wait_for(wait_for_info(work, expected_pid=lingma.pid), 15)
    return lingma, info.port


async def test_attach_mode_spawns_nothing_and_kills_nothing(make: Factory, tmp_path: Path) -> None:
    lingma, port = await _run_sim(tmp_path / "outside")
    try:
        attached = Settings(lingma_port=port, work_dir=tmp_path / "unused", workspace=tmp_path)
        supervisor = make(attached)
        client = await supervisor.client()
        status = supervisor.status()
        assert status.attached and status.pid is None and status.port == port
        assert status.source == "attached"
        assert _children() == {lingma.pid}  # nothing spawned
        assert (await _ask(client)).finish_reason == "success"
        await supervisor.close()
        assert lingma.returncode is None and alive(lingma.pid)  # nothing killed
        assert not (tmp_path / "unused").exists()
    finally:
        lingma.terminate()
        await lingma.wait()


async def test_attach_to_a_port_where_nothing_listens_fails_fast(
    make: Factory, tmp_path: Path
) -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()  # a port that was free a moment ago, now closed
    supervisor = make(Settings(lingma_port=port, work_dir=tmp_path / "w", startup_timeout=15))
    started = time.monotonic()
    with pytest.raises(LingmaStartupError) as caught:
        await supervisor.client()
    assert time.monotonic() - started < 2
    assert f"127.0.0.1:{port}" in str(caught.value) and "--lingma-port" in str(caught.value)
    assert supervisor.status().state is State.FAILED


# ---------------------------------------------------------------------- shutting down


async def test_close_escalates_to_sigkill_when_lingma_ignores_sigterm(
    make: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LINGMA_SIM_IGNORE_SIGTERM", "1")
    supervisor = make(terminate_grace=0.3)
    await supervisor.client()
    pid = supervisor.status().pid
    assert pid is not None
    started = time.monotonic()
    await supervisor.close()
    assert 0.3 <= time.monotonic() - started < 5
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
    noisy = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "lingma_mcp.sim",
        "start",
        "--workDir",
        str(tmp_path / "control"),
        env={**os.environ, "LINGMA_SIM_EXIT_AT_START": "0"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    noise, _ = await asyncio.wait_for(noisy.communicate(), 30)
    assert noise.strip()

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
        deadline = time.monotonic() + 3
        # No event exists for the death of a process that is not our child: poll.
        while alive(pid):
            assert time.monotonic() < deadline, "Lingma outlived its SIGKILLed server"
            await asyncio.sleep(0.02)
    finally:
        if helper.returncode is None:
            helper.kill()
            await helper.wait()
        if alive(pid):
            os.kill(pid, signal.SIGKILL)

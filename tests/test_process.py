"""The child process: stdout discarded, stderr drained, exit noticed, SIGTERM then SIGKILL."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from pathlib import Path

import pytest
from procs import alive, wait_gone

from lingma_mcp.process.child import ChildProcess


async def _spawn(code: str, **kwargs: object) -> ChildProcess:
    return await ChildProcess.spawn([sys.executable, "-c", code], **kwargs)  # type: ignore[arg-type]


async def _spawn_ignoring_sigterm() -> ChildProcess:
    """A child that ignores SIGTERM, returned once its handler is installed."""
    proc = await _spawn(
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('ready', file=sys.stderr, flush=True)\n"
        "time.sleep(30)"
    )
    # Else SIGTERM could land before the handler. No event exists for "a line arrived";
    # polling the tail is the simplest honest wait.
    while "ready" not in proc.stderr_tail():  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    return proc


async def test_exit_code_and_stderr_tail_are_kept() -> None:
    proc = await _spawn(
        "import sys\n"
        "for i in range(60): print(f'line {i}', file=sys.stderr)\n"
        "sys.stderr.write('no newline at end')\n"
        "sys.exit(3)",
        tail_lines=5,
    )
    assert await asyncio.wait_for(proc.wait(), 5) == 3
    assert proc.returncode == 3
    await proc.terminate()  # closes the pipes; draining ended with them
    assert proc.stderr_tail() == ["line 56", "line 57", "line 58", "line 59", "no newline at end"]


async def test_its_end_comes_with_the_last_stderr_line_and_before_stdouts_end() -> None:
    # A crash: last words on stderr, then the exit. Whoever reads stdout's end (the
    # protocol, which then reports the child lost) finds the exit and those words known.
    proc = await _spawn(
        "import os, sys\n"
        "sys.stdout.write('partial answer'); sys.stdout.flush()\n"
        "sys.stderr.write('fatal: out of memory\\n'); sys.stderr.flush()\n"
        "os._exit(7)",
        pipes=True,
    )
    assert proc.stdout is not None
    assert await asyncio.wait_for(proc.stdout.read(), 5) == b"partial answer"
    assert proc.ended.done() and proc.ended.result() == 7
    assert proc.stderr_tail()[-1] == "fatal: out of memory"
    await proc.terminate()


async def test_stderr_lines_reach_the_debug_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG", logger="lingma_mcp.lingma.stderr")
    proc = await _spawn("import sys; print('héllo from lingma', file=sys.stderr)")
    await asyncio.wait_for(proc.wait(), 5)
    await proc.terminate()
    assert any("héllo from lingma" in r.getMessage() for r in caplog.records)


async def test_stdin_is_closed_and_stdout_is_discarded(capfd: pytest.CaptureFixture[str]) -> None:
    proc = await _spawn(
        "import sys\n"
        "print('NOISE ON STDOUT', flush=True)\n"
        "sys.exit(0 if sys.stdin.read() == '' else 9)"
    )
    assert await asyncio.wait_for(proc.wait(), 5) == 0
    await proc.terminate()
    out, _ = capfd.readouterr()
    assert "NOISE" not in out


async def test_cwd_is_applied(tmp_path: Path) -> None:
    code = f"import os, sys; sys.exit(0 if os.path.samefile(os.getcwd(), {str(tmp_path)!r}) else 5)"
    proc = await _spawn(code, cwd=tmp_path)
    assert await asyncio.wait_for(proc.wait(), 5) == 0
    await proc.terminate()


async def test_exit_is_noticed_even_if_a_grandchild_keeps_stderr_open() -> None:
    # The grandchild inherits stderr and outlives the child; Process.wait() would hang here.
    proc = await _spawn(
        "import subprocess, sys\n"
        "g = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)'])\n"
        "print(g.pid, file=sys.stderr, flush=True)\n"
    )
    try:
        assert await asyncio.wait_for(proc.wait(), 5) == 0
    finally:
        await proc.terminate()
        for line in proc.stderr_tail():
            if line.strip().isdigit():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(line), signal.SIGKILL)


@pytest.mark.skipif(sys.platform == "win32", reason="process groups are POSIX")
async def test_terminate_stops_the_whole_process_group() -> None:
    # A child that forks a helper and ignores SIGTERM: the group's SIGKILL must reach both.
    proc = await _spawn(
        "import signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "g = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)'])\n"
        "print(f'grandchild {g.pid}', file=sys.stderr, flush=True)\n"
        "time.sleep(30)\n"
    )
    # No event exists for "a line arrived": polling the tail is the simplest honest wait.
    while not any(line.startswith("grandchild ") for line in proc.stderr_tail()):  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    grandchild = int(next(x for x in proc.stderr_tail() if x.startswith("grandchild ")).split()[1])
    try:
        assert os.getpgid(grandchild) == proc.pid  # the child leads its own group
        assert await proc.terminate(grace=0.2) == -signal.SIGKILL
        # The grandchild is init's to reap, not ours: wait for it to go (bounded by the
        # test's timeout), as no event tells us.
        while alive(grandchild):  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(grandchild, signal.SIGKILL)


async def test_pipes_carry_a_protocol_over_stdio() -> None:
    proc = await _spawn(
        "import sys\n"
        "for line in sys.stdin:\n"
        "    sys.stdout.write(line.upper()); sys.stdout.flush()\n",
        pipes=True,
    )
    assert proc.stdout is not None
    proc.write(b"hello over stdio\n")
    assert await asyncio.wait_for(proc.stdout.readline(), 5) == b"HELLO OVER STDIO\n"
    await proc.terminate()
    assert await proc.stdout.read() == b""


async def test_a_line_up_to_the_stdout_limit_is_read_whole() -> None:
    # A protocol line (an ACP file write) can be far longer than asyncio's 64 KiB default.
    size = 1024 * 1024
    proc = await _spawn(
        f"import sys; sys.stdout.write('x' * {size} + '\\n'); sys.stdout.flush()",
        pipes=True,
        stdout_limit=2 * size,
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readuntil(b"\n"), 30)
    assert len(line) == size + 1
    await proc.terminate()


async def test_stdin_waits_for_room_then_closes_as_end_of_input() -> None:
    # More than a pipe holds: writing it all means waiting for the child to read.
    size = 4 * 1024 * 1024
    proc = await _spawn(
        "import sys\n"
        "n = len(sys.stdin.buffer.read())\n"
        "print(n, flush=True)\n"
        "sys.stdin.close()\n"
        "import time; time.sleep(30)",
        pipes=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    for _ in range(size // 65536):
        proc.stdin.write(b"y" * 65536)
        await asyncio.wait_for(proc.stdin.drain(), 30)
    proc.stdin.close()
    assert await asyncio.wait_for(proc.stdout.readline(), 30) == f"{size}\n".encode()
    with pytest.raises(ConnectionResetError, match="stdin is closed"):
        proc.write(b"late")
    await proc.terminate(0.5)


async def test_without_pipes_there_is_no_stdin_to_write_to() -> None:
    proc = await _spawn("import time; time.sleep(30)")
    assert proc.stdout is None
    with pytest.raises(RuntimeError, match="no stdin"):
        proc.write(b"x")
    await proc.terminate()


async def test_stderr_is_redacted_before_it_is_kept_or_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("DEBUG", logger="lingma_mcp.lingma.stderr")
    proc = await _spawn("import sys; print('refreshToken=s3cr3tvalue42 ok', file=sys.stderr)")
    await asyncio.wait_for(proc.wait(), 5)
    await proc.terminate()
    assert any("refreshToken=***" in line for line in proc.stderr_tail())
    assert "s3cr3tvalue42" not in " ".join(proc.stderr_tail())
    assert "s3cr3tvalue42" not in caplog.text and "refreshToken=***" in caplog.text


async def test_terminate_sends_sigterm_and_reaps() -> None:
    proc = await _spawn(
        "import sys, time; print('up', file=sys.stderr, flush=True); time.sleep(30)"
    )
    code = await proc.terminate(grace=5)
    assert code == -signal.SIGTERM
    assert not alive(proc.pid)  # reaped: not even a zombie holds the pid
    assert await proc.terminate() == code  # idempotent


async def test_terminate_escalates_to_sigkill_when_sigterm_is_ignored() -> None:
    proc = await _spawn_ignoring_sigterm()
    code = await proc.terminate(grace=0.3)
    assert code == -signal.SIGKILL
    assert not alive(proc.pid)


async def test_spawning_a_missing_program_raises_oserror(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        await ChildProcess.spawn([str(tmp_path / "no-such-binary"), "start"])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux")
async def test_child_dies_when_its_parent_is_sigkilled(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    parent_code = (
        "import asyncio, sys\n"
        "from lingma_mcp.process.child import ChildProcess\n"
        "async def main():\n"
        "    p = await ChildProcess.spawn([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"    open({str(pidfile)!r}, 'w').write(str(p.pid))\n"
        "    await asyncio.sleep(60)\n"
        "asyncio.run(main())\n"
    )
    parent = await asyncio.create_subprocess_exec(sys.executable, "-c", parent_code)
    try:
        deadline = time.monotonic() + 10
        while not pidfile.exists() or not pidfile.read_text():
            assert time.monotonic() < deadline, "parent never spawned its child"
            await asyncio.sleep(0.02)
        child = int(pidfile.read_text())
        assert alive(child)
        parent.kill()
        await parent.wait()
        await wait_gone(child, "child outlived its SIGKILLed parent")
    finally:
        if parent.returncode is None:
            parent.kill()
            await parent.wait()


async def test_a_cancelled_terminate_still_kills_the_child() -> None:
    proc = await _spawn_ignoring_sigterm()
    stopping = asyncio.ensure_future(proc.terminate(grace=30))
    await asyncio.sleep(0)  # let it send SIGTERM and start its grace wait
    stopping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopping
    assert await asyncio.wait_for(proc.wait(), 3) == -signal.SIGKILL
    await proc.terminate()

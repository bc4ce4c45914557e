"""Terminals: own process group, bounded output, a time limit, and nothing left behind."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from lingma_mcp.workspace import ApprovalGate, WorkspaceError, WorkspaceHost, parse_policy
from lingma_mcp.workspace.sandbox import SandboxSupport, command_spec
from lingma_mcp.workspace.terminals import Terminals, shell_argv
from tests.procs import alive


async def until(condition: Callable[[], bool]) -> None:
    # Process states, files and pipe output cannot be awaited as events: poll them, with no
    # deadline of our own (the test timeout is the bound).
    while not condition():  # noqa: ASYNC110
        await asyncio.sleep(0.01)


async def wait_gone(pid: int) -> None:
    await until(lambda: not alive(pid))


def read_pid(path: Path) -> int:
    return int(path.read_text().strip())


def has_text(path: Path) -> bool:
    return path.exists() and bool(path.read_text().strip())


async def wait_for_file(path: Path) -> None:
    await until(lambda: has_text(path))


async def test_a_command_runs_in_the_folder_and_its_output_is_kept(tmp_path: Path) -> None:
    terminals = Terminals()
    tid = await terminals.start(shell_argv("pwd; echo err >&2; exit 3"), cwd=tmp_path)
    out = await terminals.wait(tid)
    assert out.output == f"{tmp_path}\nerr\n"
    assert (out.exit_code, out.running, out.truncated) == (3, False, False)
    await terminals.close()


async def test_it_runs_in_its_own_process_group(tmp_path: Path) -> None:
    terminals = Terminals()
    tid = await terminals.start(shell_argv("sleep 30"), cwd=tmp_path)
    pid = terminals.pid(tid)
    assert os.getpgid(pid) == pid != os.getpgid(0)
    await terminals.close()


async def test_only_the_last_bytes_of_output_are_kept(tmp_path: Path) -> None:
    terminals = Terminals(output_limit=1000)
    tid = await terminals.start(
        shell_argv("head -c 5000 /dev/zero | tr '\\0' a; printf END"), cwd=tmp_path
    )
    out = await terminals.wait(tid)
    assert out.truncated and len(out.output) == 1000 and out.output.endswith("aEND")
    await terminals.close()


async def test_the_time_limit_kills_the_whole_group(tmp_path: Path) -> None:
    terminals = Terminals(command_timeout=0.5)
    child = tmp_path / "child.pid"
    tid = await terminals.start(shell_argv(f"sleep 60 & echo $! > {child}; wait"), cwd=tmp_path)
    await wait_for_file(child)
    out = await terminals.wait(tid)
    assert out.timed_out and out.signal == "SIGKILL" and out.exit_code is None
    await wait_gone(read_pid(child))
    await terminals.close()


async def test_a_background_command_reports_output_so_far(tmp_path: Path) -> None:
    terminals = Terminals()
    go = tmp_path / "go"
    tid = await terminals.start(
        shell_argv(f"echo started; while [ ! -e {go} ]; do sleep 0.01; done; echo done"),
        cwd=tmp_path,
    )
    await until(lambda: "started" in terminals.output(tid).output)
    assert terminals.output(tid).running
    go.touch()
    out = await terminals.wait(tid)
    assert (out.output, out.exit_code, out.running) == ("started\ndone\n", 0, False)
    await terminals.close()


async def test_kill_stops_the_group_and_keeps_the_output(tmp_path: Path) -> None:
    terminals = Terminals()
    tid = await terminals.start(shell_argv("echo hi; exec sleep 60"), cwd=tmp_path)
    await until(lambda: "hi" in terminals.output(tid).output)
    terminals.kill(tid)
    out = await terminals.wait(tid)
    assert out.output == "hi\n" and out.signal == "SIGKILL"
    terminals.release(tid)
    with pytest.raises(WorkspaceError, match="no terminal"):
        terminals.output(tid)
    await terminals.close()


async def test_close_kills_every_group_the_call_started(tmp_path: Path) -> None:
    terminals = Terminals()
    pids = []
    for n in range(2):
        child = tmp_path / f"child{n}.pid"
        tid = await terminals.start(shell_argv(f"sleep 60 & echo $! > {child}; wait"), cwd=tmp_path)
        await wait_for_file(child)
        pids += [terminals.pid(tid), read_pid(child)]
    await terminals.close()
    for pid in pids:
        await wait_gone(pid)
    with pytest.raises(WorkspaceError, match="ended"):
        await terminals.start(shell_argv("true"), cwd=tmp_path)


async def test_a_command_still_starting_when_the_call_ends_is_killed(tmp_path: Path) -> None:
    terminals = Terminals()
    child = tmp_path / "child.pid"
    start = asyncio.ensure_future(
        terminals.start(shell_argv(f"sleep 60 & echo $! > {child}; wait"), cwd=tmp_path)
    )
    await wait_for_file(child)  # running, though start() may not have returned yet
    await terminals.close()
    # start() ends either way: refused (the call ended first) or with its id; the command
    # dies either way.
    with contextlib.suppress(WorkspaceError):
        await start
    await wait_gone(read_pid(child))


async def test_exit_is_seen_while_a_grandchild_holds_the_output(tmp_path: Path) -> None:
    terminals = Terminals()
    tid = await terminals.start(shell_argv("sleep 60 & echo leader done"), cwd=tmp_path)
    out = await terminals.wait(tid)
    assert out.exit_code == 0 and "leader done" in out.output
    await terminals.close()


async def test_a_missing_program_is_a_clear_error(tmp_path: Path) -> None:
    terminals = Terminals()
    with pytest.raises(WorkspaceError, match="cannot run"):
        await terminals.start(["/no/such/program"], cwd=tmp_path)


async def test_host_runs_commands_through_the_gate_in_the_workspace(tmp_path: Path) -> None:
    host = WorkspaceHost(tmp_path, ApprovalGate(parse_policy("run=allow")))
    tid = await host.create_terminal("echo $PWD $FOO", env={"FOO": "bar"}, background=False)
    out = await host.terminal_output(tid)
    assert out.output == f"{host.root} bar\n" and out.exit_code == 0
    assert await host.wait_for_exit(tid) == 0
    tid = await host.create_terminal("printf", args=["%s|", "a b", "c"], background=False)
    assert (await host.terminal_output(tid)).output == "a b|c|"
    assert host.approvals[-1]["target"] == "printf '%s|' 'a b' c"
    await host.close()


async def test_host_refuses_a_working_folder_outside(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    host = WorkspaceHost(root, ApprovalGate(parse_policy("run=allow")))
    with pytest.raises(WorkspaceError, match="outside the workspace"):
        await host.create_terminal("ls", cwd=str(tmp_path))
    # Refused before anything was asked, and recorded as the confinement's decision.
    assert [a["by"] for a in host.approvals] == ["confinement"]


async def test_host_close_kills_a_background_command(tmp_path: Path) -> None:
    host = WorkspaceHost(tmp_path, ApprovalGate(parse_policy("run=allow")))
    child = tmp_path / "child.pid"
    tid = await host.create_terminal(f"sleep 60 & echo $! > {child}; wait")
    await wait_for_file(child)
    leader = host.terminal_pid(tid)
    await host.close()
    await wait_gone(leader)
    await wait_gone(read_pid(child))


async def test_host_honours_a_smaller_output_limit(tmp_path: Path) -> None:
    host = WorkspaceHost(tmp_path, ApprovalGate(parse_policy("run=allow")))
    tid = await host.create_terminal("printf 0123456789", output_byte_limit=4, background=False)
    out = await host.terminal_output(tid)
    assert (out.output, out.truncated) == ("6789", True)
    await host.release_terminal(tid)
    with pytest.raises(WorkspaceError, match="no terminal"):
        await host.terminal_output(tid)
    await host.close()


# -- the clean environment, the private temporary folder, redaction ---------------------


async def test_commands_see_an_allowlisted_environment_not_the_servers(tmp_path: Path) -> None:
    environ = {
        "PATH": os.environ.get("PATH", os.defpath),
        "QODERCN_PERSONAL_ACCESS_TOKEN": "pt-abcdefgh12345678",
        "LINGMA_APPROVAL": "run=allow",
        "SOME_SERVER_SETTING": "x",
        "GOPATH": "/go",
    }
    terminals = Terminals(environ=environ, passthrough_env=["GOPATH"])
    tid = await terminals.start(["env"], cwd=tmp_path, env={"FOO": "bar", "TMPDIR": "/tmp"})
    lines = sorted((await terminals.wait(tid)).output.splitlines())
    assert lines == sorted(
        [f"PATH={environ['PATH']}", "GOPATH=/go", "FOO=bar", f"TMPDIR={terminals.tmpdir}"]
    )
    await terminals.close()


async def test_each_call_has_a_private_temporary_folder_removed_at_its_end(tmp_path: Path) -> None:
    terminals = Terminals()
    tid = await terminals.start(shell_argv('echo x > "$TMPDIR/f"; echo "$TMPDIR"'), cwd=tmp_path)
    folder = Path((await terminals.wait(tid)).output.strip())
    assert folder == terminals.tmpdir and (folder / "f").read_text() == "x\n"
    assert os.stat(folder).st_mode & 0o777 == 0o700
    await terminals.close()
    with pytest.raises(FileNotFoundError):
        os.stat(folder)


async def test_output_is_redacted_before_anyone_reads_it(tmp_path: Path) -> None:
    terminals = Terminals()
    tid = await terminals.start(shell_argv("echo 'Authorization: Bearer abc.def'"), cwd=tmp_path)
    assert (await terminals.wait(tid)).output == "Authorization: Bearer ***\n"
    await terminals.close()


async def test_a_missing_program_is_a_clear_error_in_the_sandbox_too(tmp_path: Path) -> None:
    terminals = Terminals(sandbox=command_spec(tmp_path, mode="workspace-write"))
    with pytest.raises(WorkspaceError, match="cannot run no-such-program: no such program"):
        await terminals.start(["no-such-program"], cwd=tmp_path)
    await terminals.close()


async def test_a_sandbox_that_cannot_be_enforced_runs_nothing(tmp_path: Path) -> None:
    nothing = SandboxSupport(None, "this Linux kernel offers no Landlock")
    terminals = Terminals(
        sandbox=command_spec(tmp_path, mode="workspace-write"), sandbox_support=nothing
    )
    with pytest.raises(WorkspaceError, match=r"cannot be prevented.*--sandbox off"):
        await terminals.start(shell_argv("touch ran"), cwd=tmp_path)
    assert not (tmp_path / "ran").exists()
    await terminals.close()


async def test_a_call_never_closed_leaves_no_temporary_folder_behind(tmp_path: Path) -> None:
    terminals = Terminals()
    tid = await terminals.start(shell_argv("true"), cwd=tmp_path)
    await terminals.wait(tid)
    folder = terminals.tmpdir
    assert folder is not None
    terminals.release(tid)
    del terminals
    gc.collect()
    with pytest.raises(FileNotFoundError):
        os.stat(folder)

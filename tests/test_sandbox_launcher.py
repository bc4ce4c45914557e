"""The Linux launcher on its own: what passes through it untouched, and that it holds for
an unprivileged user too (these tests run as root here and in CI).

Only a process can show these, so each starts the launcher through ``wrap()``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from lingma_mcp.workspace.sandbox import SandboxSpec, SandboxSupport, command_spec, support, wrap
from lingma_mcp.workspace.sandbox.support import _parse_probe

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux sandbox")


@pytest.fixture
def here() -> SandboxSupport:
    found = support()
    if found.mechanism != "landlock":
        pytest.skip(f"no sandbox on this machine: {found.reason}")
    return found


@pytest.fixture
def spec(tmp_path: Path) -> SandboxSpec:
    (tmp_path / "ws").mkdir()
    return command_spec(tmp_path / "ws", mode="workspace-write")


def sh(command: str) -> list[str]:
    return ["/bin/sh", "-c", command]


def test_stdout_stderr_and_the_exit_code_are_the_programs_own(
    here: SandboxSupport, spec: SandboxSpec
) -> None:
    done = subprocess.run(
        wrap(sh("printf out; printf err >&2; exit 7"), spec, found=here),
        capture_output=True,
        cwd=spec.writable[0],
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (7, b"out", b"err")


def test_the_environment_arrives_exactly_as_given(here: SandboxSupport, spec: SandboxSpec) -> None:
    # Python adds LC_CTYPE to its own environment under a C locale; the program must not
    # inherit that from the launcher.
    env = {"PATH": os.environ.get("PATH", os.defpath), "ONLY": "this"}
    done = subprocess.run(
        wrap(["env"], spec, found=here),
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert sorted(done.stdout.splitlines()) == sorted(f"{k}={v}" for k, v in env.items())


def test_the_program_gets_the_signal_mask_and_dispositions_it_would_get_unwrapped(
    here: SandboxSupport, spec: SandboxSpec
) -> None:
    # Compared with the same program started the same way without the launcher: how the
    # test itself spawns (posix_spawn on some Pythons leaves glibc's two internal signals
    # ignored) must show on both sides alike, and the launcher must add nothing.
    grep = shutil.which("grep")
    assert grep is not None
    argv = [grep, "-E", "^Sig(Blk|Ign)", "/proc/self/status"]

    def signals(line: list[str]) -> list[str]:
        done = subprocess.run(line, capture_output=True, text=True, check=True)
        return done.stdout.split()

    unwrapped = signals(argv)
    assert unwrapped[:2] == ["SigBlk:", "0" * 16]
    assert signals(wrap(argv, spec, found=here)) == unwrapped


@pytest.mark.parametrize("pid_namespace", [True, False], ids=["pid-namespace", "subreaper"])
def test_sigterm_to_the_group_reaches_the_program_and_its_status_comes_back(
    here: SandboxSupport, spec: SandboxSpec, pid_namespace: bool
) -> None:
    if pid_namespace and not here.pid_namespaces:
        pytest.skip("no PID namespace can be made here")
    found = replace(here, pid_namespaces=pid_namespace)
    trapped = "trap 'echo got TERM; exit 7' TERM; echo ready; while :; do sleep 0.05; done"
    for command, outcome in ((trapped, 7), ("echo ready; exec sleep 60", -signal.SIGTERM)):
        proc = subprocess.Popen(
            wrap(sh(command), spec, found=found),
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        assert proc.stdout is not None
        assert proc.stdout.readline() == "ready\n"
        os.killpg(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=30) == outcome
        proc.stdout.close()


def test_a_missing_program_fails_like_exec_with_a_message(
    here: SandboxSupport, spec: SandboxSpec
) -> None:
    done = subprocess.run(
        wrap(["no-such-program-here"], spec, found=here),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 127
    assert "lingma-mcp sandbox: cannot run no-such-program-here" in done.stderr


def test_a_bad_launcher_line_runs_nothing(here: SandboxSupport, spec: SandboxSpec) -> None:
    line = wrap(["touch", "ran"], spec, found=here)
    line.insert(line.index("--"), "-Z")
    done = subprocess.run(line, capture_output=True, text=True, cwd=spec.writable[0], check=False)
    assert done.returncode == 125 and "unknown launcher option '-Z'" in done.stderr
    assert not (spec.writable[0] / "ran").exists()


# -- an unprivileged user ---------------------------------------------------------------


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    # pytest's own folders are 0700 (root's): another user cannot reach into them.
    folder = Path(tempfile.mkdtemp(prefix="lingma-sandbox-test-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_an_unprivileged_user_gets_the_same_confinement(shared_tmp: Path) -> None:
    setpriv = shutil.which("setpriv")
    python = shutil.which("python3", path="/usr/bin:/bin")
    if os.geteuid() != 0 or setpriv is None or python is None:
        pytest.skip("needs root, setpriv and a system python3 to become an unprivileged user")
    copy = shared_tmp / "launcher"  # the checkout may lie where that user cannot read
    copy.mkdir(mode=0o755)
    source = Path(__file__).resolve().parents[1] / "lingma_mcp" / "workspace" / "sandbox"
    for name in ("launch.py", "launcher.py", "landlock.py"):
        shutil.copy(source / name, copy / name)
    ws, outside = shared_tmp / "ws", shared_tmp / "outside"
    for folder in (ws, outside):
        folder.mkdir()
        folder.chmod(0o777)
    prefix = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", python, "-I", "-S"]
    launch = [*prefix, str(copy / "launch.py")]
    probe = subprocess.run(
        [*launch, "--probe", str(ws)], capture_output=True, text=True, check=False
    )
    seen = _parse_probe(probe.stdout)
    if not all(seen.get(k, (False, ""))[0] for k in ("abi", "user", "mount", "pid", "landlock")):
        pytest.skip(f"unprivileged namespaces or Landlock are not available: {probe.stdout!r}")
    line = [*launch, "-a", seen["abi"][1], "-w", str(ws), "-U", "-M", "-P", "-p", "-c", "-n", "-N"]
    command = f"id -u; echo $$; echo in > in.txt && echo inside ok; echo x > {outside}/x"
    done = subprocess.run(
        [*line, "--", "/bin/sh", "-c", command], capture_output=True, text=True, cwd=ws, check=False
    )
    # Its own uid, PID 2 under its init, writes inside only.
    assert done.stdout == "65534\n2\ninside ok\n", done.stderr
    assert "Permission denied" in done.stderr
    assert (ws / "in.txt").read_text() == "in\n" and list(outside.iterdir()) == []


PROBE_WITHOUT_USER_NAMESPACES = """
import json, subprocess, sys
from pathlib import Path
from lingma_mcp.workspace.sandbox import command_spec, report, support, wrap
ws, outside = Path(sys.argv[1]), Path(sys.argv[2])
found = support()
line = wrap(["/bin/sh", "-c", f"echo in > in.txt; echo x > {outside}/x"],
            command_spec(ws, mode="workspace-write"))
done = subprocess.run(line, cwd=ws, capture_output=True, text=True)
print(json.dumps({"user": found.user_namespaces, "pid": found.pid_namespaces,
                  "flags": line[line.index("-a"):line.index("--")],
                  "notes": report("workspace-write", False)["not_enforced"],
                  "stderr": done.stderr}))
"""


def test_where_no_user_namespace_can_be_made_the_probe_says_so_and_still_confines(
    tmp_path: Path,
) -> None:
    # A user namespace whose limit on further user namespaces is 0: inside it we are
    # privileged (mount, PID and network namespaces work) but cannot make a user namespace.
    unshare = shutil.which("unshare")
    if os.geteuid() != 0 or unshare is None or support().mechanism != "landlock":
        pytest.skip("needs root, unshare and Landlock to build a machine without user namespaces")
    ws, outside = tmp_path / "ws", tmp_path / "outside"
    ws.mkdir()
    outside.mkdir()
    script = 'echo 0 > /proc/sys/user/max_user_namespaces || exit 99; exec "$0" -c "$1" "$2" "$3"'
    python = [sys.executable, PROBE_WITHOUT_USER_NAMESPACES, str(ws), str(outside)]
    done = subprocess.run(
        [unshare, "-U", "-r", "sh", "-c", script, *python],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode == 99:
        pytest.skip("cannot limit user namespaces inside a user namespace here")
    seen = json.loads(done.stdout)
    assert (seen["user"], seen["pid"]) == (False, True), done.stderr
    assert "-U" not in seen["flags"] and "-P" in seen["flags"]
    assert any("keep the server's root privileges" in n for n in seen["notes"])
    assert "Permission denied" in seen["stderr"]
    assert (ws / "in.txt").read_text() == "in\n" and list(outside.iterdir()) == []

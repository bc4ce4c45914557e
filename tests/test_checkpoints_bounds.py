"""Checkpoints shared between calls and servers: the workspace lock, the bounds, privacy."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from lingma_mcp.workspace.checkpoint_upkeep import GC_AFTER_DROPS
from lingma_mcp.workspace.checkpoints import Checkpoints

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not on PATH")


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    folder = tmp_path / "proj"
    folder.mkdir()
    (folder / "keep.txt").write_text("one\n")
    return folder.resolve()


def git_in_store(work: Path, *args: str) -> str:
    store = next((work / "checkpoints").glob("*/git"))
    return subprocess.run(
        ["git", "--git-dir", str(store), *args], capture_output=True, text=True, check=False
    ).stdout


def test_a_second_call_waits_for_the_first_and_says_so_once(tmp_path: Path, ws: Path) -> None:
    checkpoints = Checkpoints(tmp_path / "work")
    first = checkpoints.begin("r1", ws)
    waiting = threading.Event()
    said: list[str] = []
    second: list[object] = []

    def on_wait(text: str) -> None:
        said.append(text)
        waiting.set()

    def begin_second() -> None:
        call = checkpoints.begin("r2", ws, on_wait=on_wait)
        (ws / "second.txt").write_text("by the second call\n")
        second.append(call.finish())

    thread = threading.Thread(target=begin_second)
    thread.start()
    assert waiting.wait(30)
    (ws / "first.txt").write_text("by the first call\n")
    assert [c["path"] for c in first.finish()] == ["first.txt"]
    thread.join(30)
    assert [[c["path"] for c in changes] for changes in second] == [["second.txt"]]  # type: ignore[union-attr]
    assert len(said) == 1 and "waiting for another agent call" in said[0]


def test_a_read_only_call_does_not_wait(tmp_path: Path, ws: Path) -> None:
    checkpoints = Checkpoints(tmp_path / "work")
    writer = checkpoints.begin("r1", ws)
    reader = checkpoints.begin(
        "r2", ws, read_only=True, on_wait=lambda _: pytest.fail("a read-only call waited")
    )
    assert reader.finish() == []
    writer.finish()


def test_a_wait_can_be_given_up(tmp_path: Path, ws: Path) -> None:
    checkpoints = Checkpoints(tmp_path / "work")
    first = checkpoints.begin("r1", ws)
    cancel = threading.Event()
    outcome: list[BaseException] = []

    def begin_second() -> None:
        try:
            checkpoints.begin("r2", ws, on_wait=lambda _: cancel.set(), cancel=cancel)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=begin_second)
    thread.start()
    thread.join(30)
    assert [type(e) for e in outcome] == [InterruptedError]
    first.finish()
    checkpoints.begin("r3", ws).finish()  # nothing was left held by the abandoned wait
    assert checkpoints.request_ids() == ["r1", "r3"]


CHILD = """
import sys
from pathlib import Path
from lingma_mcp.workspace.checkpoints import Checkpoints
call = Checkpoints(Path(sys.argv[1])).begin("child", Path(sys.argv[2]))
print("began", flush=True)
sys.stdin.readline()
(Path(sys.argv[2]) / "by-child.txt").write_text("x\\n")
call.finish()
"""


def test_the_workspace_lock_holds_across_servers(tmp_path: Path, ws: Path) -> None:
    work = tmp_path / "work"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(work), str(ws)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdin is not None
        assert child.stdout.readline() == "began\n"
        waited = threading.Event()

        def on_wait(_: str) -> None:
            waited.set()
            child.stdin.write("go\n")  # type: ignore[union-attr]
            child.stdin.flush()  # type: ignore[union-attr]

        call = Checkpoints(work).begin("parent", ws, on_wait=on_wait)
        assert waited.is_set()
        assert child.wait(30) == 0
        assert call.finish() == []  # the child's file was before this call began
        assert Checkpoints(work).changes("child")[0]["path"] == "by-child.txt"
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()


def test_only_the_last_calls_are_kept_and_their_objects_pruned(tmp_path: Path, ws: Path) -> None:
    work = tmp_path / "work"
    checkpoints = Checkpoints(work, max_calls=3)
    for n in range(GC_AFTER_DROPS + 3):
        call = checkpoints.begin(f"r{n}", ws)
        (ws / "keep.txt").write_text(f"unique content {n}\n")
        call.finish()
    last = [f"r{n}" for n in range(GC_AFTER_DROPS, GC_AFTER_DROPS + 3)]
    assert checkpoints.request_ids() == last
    assert len(list((work / "checkpoints").glob("*/records/*.json"))) == 3
    refs = git_in_store(work, "for-each-ref", "--format=%(refname)").split()
    assert len(refs) == 3 * 2  # before and last of each call kept
    # A dropped call's content is gone from the store once it was packed and pruned.
    first = subprocess.run(
        ["git", "hash-object", "--stdin"], input="unique content 0\n", capture_output=True,
        text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert git_in_store(work, "cat-file", "-t", first) == ""
    assert Checkpoints(work, max_calls=3).request_ids() == last


def test_the_size_bound_drops_the_oldest_but_never_the_last_call(tmp_path: Path, ws: Path) -> None:
    work = tmp_path / "work"
    checkpoints = Checkpoints(work, max_bytes=1)
    for n in range(3):
        call = checkpoints.begin(f"r{n}", ws)
        (ws / f"f{n}.bin").write_bytes(os.urandom(4096))
        call.finish()
        assert checkpoints.request_ids() == [f"r{n}"]
    assert checkpoints.revert("r2", ws)["restored"] == ["f2.bin"]


def test_a_running_call_is_never_dropped(tmp_path: Path, ws: Path) -> None:
    work = tmp_path / "work"
    running = Checkpoints(work).begin("running", ws, read_only=True)
    checkpoints = Checkpoints(work, max_calls=1)
    for n in range(3):
        checkpoints.begin(f"r{n}", ws).finish()
    assert checkpoints.request_ids() == ["running", "r2"]
    running.finish()


def test_folders_are_0700_and_files_0600(tmp_path: Path, ws: Path) -> None:
    work = tmp_path / "work"
    old = os.umask(0o022)
    try:
        checkpoints = Checkpoints(work)
        for n in range(2):
            call = checkpoints.begin(f"r{n}", ws)
            (ws / f"f{n}.txt").write_text("x\n")
            call.mark("Edit")
            call.finish()
        checkpoints.revert("r0", ws)
    finally:
        os.umask(old)
    root = work / "checkpoints"
    entries = [root, *root.rglob("*")]
    assert len(entries) > 20
    for entry in entries:
        mode = stat.S_IMODE(os.lstat(entry).st_mode)
        assert mode & 0o077 == 0, f"{entry} is {mode:o}"
    for record in root.glob("*/records/*"):
        assert stat.S_IMODE(os.stat(record).st_mode) == 0o600
    for folder in [root, *root.glob("*"), *root.glob("*/records")]:
        assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700, folder

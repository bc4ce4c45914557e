"""The .info file: three formats, torn writes, and a prompt non-blocking wait."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from lingma_mcp.lingma.info_reader import (
    LingmaInfo,
    is_ours,
    parse_info,
    read_info,
    remove_stale_info,
    shared_info_paths,
    wait_for_info,
)


def test_two_line_format() -> None:
    assert parse_info("37010\n14060\n") == LingmaInfo(port=37010, pid=14060)


def test_three_line_format_carries_the_ipc_path() -> None:
    info = parse_info("36510\r\n14060\r\n/tmp/lingma.sock")
    assert info == LingmaInfo(port=36510, pid=14060, ipc_path="/tmp/lingma.sock")


def test_json_format() -> None:
    text = json.dumps(
        {"websocketPort": 36510, "pid": 14060, "ipcServerPath": r"\\.\pipe\x", "isDev": False}
    )
    info = parse_info(text)
    assert info == LingmaInfo(port=36510, pid=14060, ipc_path=r"\\.\pipe\x", is_dev=False)


def test_half_written_files_are_not_taken() -> None:
    for torn in ["", "3701", "37010", "37010\n", '{"websocketPort": 365', "abc\n12", "0\n12"]:
        assert parse_info(torn) is None, torn


def test_read_info_of_a_missing_file_is_none(tmp_path: Path) -> None:
    assert read_info(tmp_path / ".info") is None


def _dead_pid() -> int:
    """A pid that ran a moment ago and is gone (reaped), for files naming a dead Lingma."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_remove_stale_info_removes_both_names(tmp_path: Path) -> None:
    (tmp_path / ".info").write_text(f"1\n{_dead_pid()}\n")
    (tmp_path / ".info.json").write_text("{}")
    remove_stale_info(tmp_path)
    remove_stale_info(tmp_path)  # and is quiet when nothing is there
    assert list(tmp_path.iterdir()) == []


def test_an_info_whose_process_lives_is_never_deleted(tmp_path: Path) -> None:
    (tmp_path / ".info").write_text(f"4000\n{os.getpid()}\n")  # a live process: us
    assert remove_stale_info(tmp_path) == []
    assert (tmp_path / ".info").exists()


async def test_with_our_pid_an_info_naming_another_process_is_never_taken(tmp_path: Path) -> None:
    (tmp_path / ".info").write_text(f"5000\n{os.getpid()}\n")  # some other live Lingma
    waiting = asyncio.ensure_future(wait_for_info(tmp_path, expected_pid=_dead_pid()))
    await asyncio.sleep(0.05)  # several polls: it must still be waiting
    assert not waiting.done()
    waiting.cancel()


def test_a_pid_in_our_childs_process_group_counts_as_ours() -> None:
    assert is_ours(1234, 1234)
    assert not is_ours(None, 1234)
    assert not is_ours(os.getpid(), _dead_pid())
    if sys.platform != "win32":
        assert is_ours(os.getpid(), os.getpgid(0))


def _write_later(path: Path, text: str, delay: float) -> asyncio.Event:
    """Write ``text`` to ``path`` after ``delay`` s; the event is set once it landed."""
    landed = asyncio.Event()

    def write() -> None:
        path.write_text(text)
        landed.set()

    asyncio.get_running_loop().call_later(delay, write)
    return landed


async def test_wait_detects_the_file_without_blocking_the_loop(tmp_path: Path) -> None:
    # How soon after landing the file is seen is a matter of the poll interval, measured in
    # benchmarks; here: it is seen only once it landed, and the loop ran meanwhile.
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.005)
            ticks += 1

    tick_task = asyncio.create_task(ticker())
    landed = _write_later(tmp_path / ".info", "37010\n4242\n", 0.2)
    info = await asyncio.wait_for(wait_for_info(tmp_path), 10)
    tick_task.cancel()
    assert landed.is_set()
    assert info.port == 37010 and info.pid == 4242
    assert ticks > 10  # the loop kept running while we waited


async def test_wait_takes_json_at_once(tmp_path: Path) -> None:
    (tmp_path / ".info.json").write_text(json.dumps({"websocketPort": 4000, "pid": 7}))
    info = await asyncio.wait_for(wait_for_info(tmp_path), 1)
    assert info.port == 4000 and info.path == tmp_path / ".info.json"


async def test_wait_takes_a_line_file_at_once_when_the_pid_is_ours(tmp_path: Path) -> None:
    (tmp_path / ".info").write_text("4000\n77\n")
    info = await asyncio.wait_for(wait_for_info(tmp_path, expected_pid=77, interval=5), 1)
    assert info.port == 4000


async def test_wait_rides_out_a_torn_write(tmp_path: Path) -> None:
    path = tmp_path / ".info"
    path.write_text("37010\n14")  # looks whole, but the pid is still being written

    # Timers fire in order: the rest lands before the waiter's second poll.
    _write_later(path, "37010\n14060\n/run/lingma.sock\n", 0.005)
    info = await asyncio.wait_for(wait_for_info(tmp_path, expected_pid=14060, interval=0.01), 1)
    assert info.pid == 14060


async def test_a_shared_info_is_taken_only_with_our_pid(tmp_path: Path) -> None:
    work, home = tmp_path / "work", tmp_path / "home"
    work.mkdir()
    shared = shared_info_paths(home)
    shared[0].parent.mkdir(parents=True)
    shared[0].write_text("5000\n1111\n")  # another instance's Lingma
    waiting = asyncio.ensure_future(wait_for_info(work, expected_pid=2222, shared=shared))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    shared[1].write_text(json.dumps({"websocketPort": 6000, "pid": 2222}))
    info = await asyncio.wait_for(waiting, 1)
    assert info.port == 6000 and info.path == shared[1]

"""The stdio transport's edges, in-process on real pipes: stdin lines read by a thread that
never keeps the server alive, and a result never written in the same read as the progress
notification before it."""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

import anyio
import pytest

from lingma_mcp.server import stdio
from lingma_mcp.server.stdio import CheckedLines, GuardedStdout

pytestmark = pytest.mark.timeout(30)

PING = '{"jsonrpc": "2.0", "id": %d, "method": "ping"}'


async def test_lines_written_in_pieces_arrive_whole_and_the_end_is_reported() -> None:
    read_fd, write_fd = os.pipe()
    ended = anyio.Event()
    with os.fdopen(read_fd, "rb") as source:
        lines = CheckedLines(source, on_eof=ended.set)
        os.write(write_fd, (PING % 1 + "\n" + PING % 2)[:30].encode())
        os.write(write_fd, (PING % 1 + "\n" + PING % 2)[30:].encode() + b"\n")
        os.write(write_fd, (PING % 3).encode())  # the last line may lack its newline
        os.close(write_fd)
        got = [line async for line in lines]
    assert [line.strip() for line in got] == [PING % 1, PING % 2, PING % 3]
    assert ended.is_set()


async def test_the_reader_is_a_daemon_thread_left_behind_when_reading_stops() -> None:
    # A host may keep stdin open after the server decided to leave: the thread blocked in
    # the read must not be one the interpreter waits for at exit.
    read_fd, write_fd = os.pipe()
    try:
        with os.fdopen(read_fd, "rb") as source:
            lines = CheckedLines(source).__aiter__()
            os.write(write_fd, (PING % 1 + "\n").encode())
            assert (await lines.__anext__()).strip() == PING % 1
            with anyio.move_on_after(0.05):
                await lines.__anext__()  # nothing more comes: the caller gives up
            reader = next(t for t in threading.enumerate() if t.name == "lingma-mcp stdin")
            assert reader.daemon and reader.is_alive()
    finally:
        os.close(write_fd)


PROGRESS = (
    '{"method":"notifications/progress","params":{"progressToken":1,"progress":3.0,'
    '"message":"the last words"},"jsonrpc":"2.0"}\n'
)
RESULT = '{"jsonrpc":"2.0","id":1,"result":{"content":[]}}\n'


def _pipe() -> tuple[int, int]:
    return os.pipe()


def _socket_pair() -> tuple[int, int]:
    import socket

    ours, theirs = socket.socketpair()  # what a Node host hands its child as stdio
    return theirs.detach(), ours.detach()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux tells what was read")
@pytest.mark.parametrize("channel", [_pipe, _socket_pair], ids=["pipe", "socket pair"])
async def test_a_result_after_progress_is_written_only_once_the_host_has_read_it(
    channel: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A host that hands a notification to its handler a moment after reading it drops one
    # read together with the call's result (typescript-sdk#2580): never write them together.
    monkeypatch.setattr(stdio, "HOST_READ_WAIT_S", 60.0)  # only the read can end the wait
    looked = anyio.Event()
    unread = stdio.unread_bytes

    def watched(fd: int) -> int:
        count = unread(fd)
        if count:
            looked.set()
        return count

    monkeypatch.setattr(stdio, "unread_bytes", watched)
    host_end, our_end = channel()
    with os.fdopen(our_end, "wb") as sink, os.fdopen(host_end, "rb", buffering=0) as host:
        stdout = GuardedStdout(sink, on_broken=lambda: None)
        await stdout.write(PROGRESS)
        await stdout.flush()
        written = anyio.Event()

        async def write_result() -> None:
            await stdout.write(RESULT)
            await stdout.flush()
            written.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(write_result)
            with anyio.fail_after(10):
                await looked.wait()  # the writer saw the progress still unread ...
            assert not written.is_set()  # ... and holds the result back
            assert host.read(len(PROGRESS)) == PROGRESS.encode()  # all there was to read
        assert host.read(len(RESULT)) == RESULT.encode()


async def test_nothing_waits_between_messages_that_follow_no_progress(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(stdio, "HOST_READ_WAIT_S", 60.0)  # a wait would outlast the test
    read_fd, write_fd = os.pipe()
    with os.fdopen(write_fd, "wb") as sink, os.fdopen(read_fd, "rb", buffering=0) as host:
        stdout = GuardedStdout(sink, on_broken=lambda: None)
        for _ in range(2):
            await stdout.write(RESULT)  # nobody reads, and nothing waits for a reader
            await stdout.flush()
        assert host.read(2 * len(RESULT)) == 2 * RESULT.encode()

"""The stdin side of the stdio transport, in-process: lines from a real pipe, read by a
thread that never keeps the server alive."""

from __future__ import annotations

import os
import threading

import anyio
import pytest

from lingma_mcp.server.stdio import CheckedLines

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

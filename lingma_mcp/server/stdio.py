"""The stdio transport's edges: every line a host sends gets an answer, and a host that
stops reading ends the server.

The SDK's stdio transport validates each stdin line against the JSON-RPC models and, when
that fails, hands the exception to a dispatcher that only logs it: the host's request never
gets a reply and its call hangs. Three shapes hosts really send do this: a string with a
lone surrogate escape (``"\\ud83d"``, half an emoji cut by a JavaScript host), an id-bearing
request whose ``params`` is a list, and ``"jsonrpc": "1.0"``. :class:`CheckedLines` sits in
front of the transport: well-formed lines pass untouched, lone surrogates are replaced by
U+FFFD, and every other bad line is answered here with the JSON-RPC error it deserves.

Progress, then the result: the TypeScript SDK hands a notification to its handler a moment
after reading it, and removes a call's progress handler as soon as it reads the call's
result (typescript-sdk#2580), so a last notification read in the same chunk as the result
is dropped. :class:`GuardedStdout` makes the server's side of that race as small as it can
be: a message that follows a progress notification is written only once the host has read
what is in the pipe (bounded by :data:`HOST_READ_WAIT_S`), so the two never share a read.
Where the system cannot tell what the host has read (not Linux, not a pipe or a socket),
nothing waits.

Reading stdin and watching stdout happen in daemon threads of their own: a host may keep
stdin open after the server decided to leave (a signal, a closed stdout), and a thread
blocked in ``readline()`` cannot be interrupted. A worker thread of the async library would
be joined at exit, keeping the process alive until the host's next line; a daemon thread
is left behind, so the server ends cleanly by returning from ``main``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import sys
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any, BinaryIO

import anyio
import mcp_types as types
from anyio.abc import ObjectSendStream
from mcp.shared.message import SessionMessage

log = logging.getLogger(__name__)

_SURROGATE = re.compile("[\ud800-\udfff]")
READ_CHUNK = 64 * 1024
# The longest a message after a progress notification waits for the host to read the
# pipe, and how often it looks (no event says "the other end read"): a host that does not
# read at all costs each call this much once, never more.
HOST_READ_WAIT_S = 0.1
HOST_READ_POLL_S = 0.001
_PROGRESS = '"notifications/progress"'

Reply = Callable[[SessionMessage], Any]


def _fix_text(text: str) -> str:
    if not _SURROGATE.search(text):
        return text
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _fix(value: Any) -> Any:
    """``value`` with lone surrogates in every string (keys too) replaced."""
    if isinstance(value, str):
        return _fix_text(value)
    if isinstance(value, list):
        return [_fix(v) for v in value]
    if isinstance(value, dict):
        return {_fix_text(k): _fix(v) for k, v in value.items()}
    return value


def _error(msg_id: Any, code: int, message: str) -> SessionMessage:
    return SessionMessage(
        types.JSONRPCError(
            jsonrpc="2.0", id=msg_id, error=types.ErrorData(code=code, message=message)
        )
    )


def check_line(line: str) -> tuple[str | None, SessionMessage | None]:
    """One stdin line: ``(line to pass on, None)`` or ``(None, error reply or None)``."""
    if not line.strip():
        return None, None
    try:
        types.jsonrpc_message_adapter.validate_json(line, by_name=False)
        return line, None  # the common case: untouched
    except Exception:
        pass
    try:
        raw = json.loads(line)
    except (ValueError, RecursionError):
        return None, _error(None, types.PARSE_ERROR, "Parse error: the line is not JSON.")
    fixed = _fix(raw)
    if fixed != raw or _SURROGATE.search(line) or "\\ud" in line.lower():
        try:
            text = json.dumps(fixed, ensure_ascii=False)
            types.jsonrpc_message_adapter.validate_json(text, by_name=False)
            return text, None
        except Exception:
            raw = fixed
    msg_id = raw.get("id") if isinstance(raw, dict) else None
    if isinstance(msg_id, bool) or not isinstance(msg_id, int | str):
        msg_id = None
    if not isinstance(raw, dict) or "method" not in raw:
        if msg_id is None and isinstance(raw, dict) and ("result" in raw or "error" in raw):
            log.warning("dropped a malformed response from the host")
            return None, None
        return None, _error(
            msg_id, types.INVALID_REQUEST, "Invalid Request: not a JSON-RPC 2.0 message."
        )
    if msg_id is None and "id" not in raw:
        log.warning("dropped a malformed notification from the host: %.80s", raw.get("method"))
        return None, None
    problems = []
    if raw.get("jsonrpc") != "2.0":
        problems.append('"jsonrpc" must be "2.0"')
    if "params" in raw and not isinstance(raw["params"], dict):
        problems.append('"params" must be an object')
    if not isinstance(raw.get("method"), str):
        problems.append('"method" must be a string')
    if "id" in raw and msg_id is None:
        problems.append('"id" must be a string or an integer')
    detail = "; ".join(problems) or "it does not match the JSON-RPC 2.0 request shape"
    return None, _error(msg_id, types.INVALID_REQUEST, f"Invalid Request: {detail}.")


class CheckedLines:
    """An async iterator of stdin lines for the SDK's transport (see the module doc).

    Args:
        source: the binary stream to read (the process's stdin).
        on_eof: called once when the host closes stdin.
    """

    def __init__(self, source: BinaryIO, on_eof: Callable[[], None] | None = None) -> None:
        self._source = source
        self._on_eof = on_eof
        self.reply_to: ObjectSendStream[SessionMessage] | None = None

    async def __aiter__(self) -> AsyncIterator[str]:
        lines = _DaemonLines(self._source)
        while True:
            raw = await lines.next()
            if not raw:
                if self._on_eof is not None:
                    self._on_eof()
                return
            line = raw.decode("utf-8", errors="replace")
            passed, reply = check_line(line)
            if reply is not None:
                log.info("answered a malformed request with %s", reply.message.error.message)
                if self.reply_to is not None:
                    await self.reply_to.send(reply)
            if passed is not None:
                yield passed


class _DaemonLines:
    """Lines of a blocking binary stream, read one at a time on demand by a daemon thread.

    The thread reads the next line only when asked (no read-ahead: a host's lines wait in
    the pipe, not in our memory). It reads the file descriptor itself, never through the
    stream's buffered object: the interpreter's exit takes that object's lock to close
    ``sys.stdin``, and a daemon thread left blocked holding it would abort the exit. A
    caller cancelled while waiting drops that line, which only happens when the server is
    leaving.
    """

    def __init__(self, source: BinaryIO) -> None:
        self._readline = _line_reader(source)
        self._loop = asyncio.get_running_loop()
        self._wanted = threading.Semaphore(0)
        self._line: asyncio.Future[bytes] | None = None
        threading.Thread(target=self._read, name="lingma-mcp stdin", daemon=True).start()

    async def next(self) -> bytes:
        """The next line, ``b""`` at the end of the stream."""
        self._line = self._loop.create_future()
        self._wanted.release()
        return await self._line

    def _read(self) -> None:
        while True:
            self._wanted.acquire()
            try:
                raw = self._readline()
            except (OSError, ValueError) as exc:  # a closed or broken stdin is its end
                log.debug("stdin ended: %r", exc)
                raw = b""
            try:
                self._loop.call_soon_threadsafe(self._deliver, raw)
            except RuntimeError:  # the loop is closed: nobody is reading any more
                return
            if not raw:
                return

    def _deliver(self, raw: bytes) -> None:
        if self._line is not None and not self._line.done():
            self._line.set_result(raw)


def _line_reader(source: BinaryIO) -> Callable[[], bytes]:
    """``readline`` on ``source``'s file descriptor (the stream's own for a stream with none,
    such as an in-memory one)."""
    try:
        fd = source.fileno()
    except (OSError, ValueError, AttributeError):
        return source.readline
    pending = bytearray()

    def readline() -> bytes:
        # Splitting costs one scan of each new chunk: ``find`` starts where the last looked.
        start = 0
        while True:
            end = pending.find(b"\n", start)
            if end >= 0:
                line = bytes(pending[: end + 1])
                del pending[: end + 1]
                return line
            start = len(pending)
            chunk = os.read(fd, READ_CHUNK)
            if not chunk:
                line = bytes(pending)
                pending.clear()
                return line
            pending.extend(chunk)

    return readline


class GuardedStdout:
    """stdout for the SDK's transport: a host that closed it ends the server quietly, and a
    message after a progress notification waits (bounded) for the host to have read it.

    Args:
        sink: the binary stream to write (the process's stdout).
        on_broken: called once when a write finds the pipe closed.
    """

    def __init__(self, sink: BinaryIO, on_broken: Callable[[], None]) -> None:
        self._sink = sink
        self._on_broken = on_broken
        self._broken = False
        self._after_progress = False
        try:
            self._fd: int | None = sink.fileno()
        except (OSError, ValueError, AttributeError):
            self._fd = None

    async def write(self, text: str) -> None:
        if self._broken:
            return
        # The method comes first in what the SDK writes: a look at the head is enough.
        progress = _PROGRESS in text[:128]
        if self._after_progress and not progress:
            await self._host_has_read()
        self._after_progress = progress
        try:
            await anyio.to_thread.run_sync(self._sink.write, text.encode("utf-8"))
        except (BrokenPipeError, ConnectionResetError, ValueError, OSError):
            self._gone()

    async def flush(self) -> None:
        if self._broken:
            return
        try:
            await anyio.to_thread.run_sync(self._sink.flush)
        except (BrokenPipeError, ConnectionResetError, ValueError, OSError):
            self._gone()

    async def _host_has_read(self) -> None:
        if self._fd is None:
            return
        deadline = anyio.current_time() + HOST_READ_WAIT_S
        # No event says "the other end read": polling is the honest way.
        while unread_bytes(self._fd) and anyio.current_time() < deadline:  # noqa: ASYNC110
            await anyio.sleep(HOST_READ_POLL_S)

    def _gone(self) -> None:
        if not self._broken:
            self._broken = True
            log.info("the host closed stdout: shutting down")
            self._on_broken()


def unread_bytes(fd: int) -> int:
    """What we wrote to ``fd`` that its reader has not read yet, where Linux can tell: a
    pipe (``FIONREAD`` counts the pipe's unread bytes from either end) or a UNIX socket
    (``TIOCOUTQ``: what the peer has not consumed; Node gives its children socket pairs).
    0 where it cannot tell."""
    if not sys.platform.startswith("linux"):
        return 0
    import fcntl
    import stat
    import struct
    import termios

    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISFIFO(mode):
            request = termios.FIONREAD
        elif stat.S_ISSOCK(mode):
            request = termios.TIOCOUTQ
        else:
            return 0
        return int(struct.unpack("i", fcntl.ioctl(fd, request, b"\0\0\0\0"))[0])
    except OSError:
        return 0


def std_streams() -> tuple[BinaryIO, BinaryIO]:
    return sys.stdin.buffer, sys.stdout.buffer


async def wait_stdout_closed(sink: BinaryIO) -> None:
    """Return once the host closes the read end of our stdout (POSIX poll: POLLERR/HUP).

    Without this, a host that closes stdout but keeps stdin open is only noticed at the
    next write, which may never come while the server idles. The poll runs in a daemon
    thread, left behind when the server leaves for another reason.
    """
    import select

    try:
        fd = sink.fileno()
    except (OSError, ValueError, AttributeError):
        await anyio.sleep_forever()
        return
    if not hasattr(select, "poll"):
        await anyio.sleep_forever()
        return
    poller = select.poll()
    poller.register(fd, 0)  # no events asked: poll reports only errors and hang-ups
    loop = asyncio.get_running_loop()
    closed = asyncio.Event()

    def watch() -> None:
        while True:
            for _, events in poller.poll():
                if events & (select.POLLERR | select.POLLHUP | select.POLLNVAL):
                    try:
                        loop.call_soon_threadsafe(closed.set)
                    except RuntimeError:  # the loop is closed: the server has left
                        pass
                    return

    threading.Thread(target=watch, name="lingma-mcp stdout watch", daemon=True).start()
    await closed.wait()
    log.info("the host closed stdout: shutting down")

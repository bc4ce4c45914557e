"""The stdio transport's edges: every line a host sends gets an answer, and a host that
stops reading ends the server.

The SDK's stdio transport validates each stdin line against the JSON-RPC models and, when
that fails, hands the exception to a dispatcher that only logs it: the host's request never
gets a reply and its call hangs. Three shapes hosts really send do this: a string with a
lone surrogate escape (``"\\ud83d"``, half an emoji cut by a JavaScript host), an id-bearing
request whose ``params`` is a list, and ``"jsonrpc": "1.0"``. :class:`CheckedLines` sits in
front of the transport: well-formed lines pass untouched, lone surrogates are replaced by
U+FFFD, and every other bad line is answered here with the JSON-RPC error it deserves.

Reading happens in a worker thread that a cancellation abandons instead of waiting for, so
the server can leave while the host keeps stdin open.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any, BinaryIO

import anyio
import mcp_types as types
from anyio.abc import ObjectSendStream
from mcp.shared.message import SessionMessage

log = logging.getLogger(__name__)

_SURROGATE = re.compile("[\ud800-\udfff]")

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
        while True:
            # Abandoned on cancellation: a thread blocked in readline() cannot be
            # interrupted, and waiting for it would keep the server alive until the host's
            # next line.
            raw = await anyio.to_thread.run_sync(self._source.readline, abandon_on_cancel=True)
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


class GuardedStdout:
    """stdout for the SDK's transport: a host that closed it ends the server quietly.

    Args:
        sink: the binary stream to write (the process's stdout).
        on_broken: called once when a write finds the pipe closed.
    """

    def __init__(self, sink: BinaryIO, on_broken: Callable[[], None]) -> None:
        self._sink = sink
        self._on_broken = on_broken
        self._broken = False

    async def write(self, text: str) -> None:
        if self._broken:
            return
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

    def _gone(self) -> None:
        if not self._broken:
            self._broken = True
            log.info("the host closed stdout: shutting down")
            self._on_broken()


def std_streams() -> tuple[BinaryIO, BinaryIO]:
    return sys.stdin.buffer, sys.stdout.buffer


async def wait_stdout_closed(sink: BinaryIO) -> None:
    """Return once the host closes the read end of our stdout (POSIX poll: POLLERR/HUP).

    Without this, a host that closes stdout but keeps stdin open is only noticed at the
    next write, which may never come while the server idles.
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
    done = False

    def watch() -> bool:
        while not done:
            for _, events in poller.poll(500):
                if events & (select.POLLERR | select.POLLHUP | select.POLLNVAL):
                    return True
        return False

    try:
        if await anyio.to_thread.run_sync(watch, abandon_on_cancel=True):
            log.info("the host closed stdout: shutting down")
            return
        await anyio.sleep_forever()
    finally:
        done = True

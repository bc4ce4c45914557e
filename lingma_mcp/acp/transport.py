"""ACP messages over the agent's stdio, tolerant of what ``qoderclicn`` prints besides them.

The SDK's own ``NdjsonTransport`` logs a line that is not JSON with a traceback at ERROR
level, and passes on any JSON value, even one that is not a JSON-RPC message. The CLI
prints chatter on stdout at shutdown, so this transport (the SDK's ``Transport`` seam)
logs such a line at DEBUG and skips it, and skips JSON that is not a message object.

Cost: one ``readuntil`` per line, the line is parsed once; a line longer than the reader's
limit is discarded in pieces without being held whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any, Protocol

from lingma_mcp.redact import redact

log = logging.getLogger("lingma_mcp.acp.transport")

_PREVIEW = 200

# (direction, message): "out" just before a message is written, "in" just after one is
# parsed and before the SDK sees it, so a reply is never seen before its request.
Observer = Callable[[str, dict[str, Any]], None]


class Writer(Protocol):
    """The agent's stdin as this transport uses it (a ``StreamWriter`` or a ``StdinPipe``)."""

    def write(self, data: bytes) -> None: ...

    async def drain(self) -> None: ...

    def close(self) -> None: ...


class LineTransport:
    """An ``acp`` ``Transport``: one JSON-RPC message a line, both ways."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: Writer,
        observer: Observer | None = None,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self.observer = observer
        self._lock = asyncio.Lock()
        self._closed = False
        # Resolves when the agent's stdout ends: with its exit, the sign it is gone.
        self.eof: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.skipped = 0  # lines that were not ACP messages (for tests and diagnostics)

    async def send(self, message: dict[str, Any]) -> None:
        if self._closed:
            raise ConnectionError("the Lingma CLI connection is closed")
        data = (json.dumps(message, separators=(",", ":"), ensure_ascii=False) + "\n").encode()
        if self.observer is not None:
            self.observer("out", message)
        async with self._lock:  # one whole line at a time, never interleaved
            self._writer.write(data)
            await self._writer.drain()

    async def receive(self) -> dict[str, Any] | None:
        while True:
            line = await self._read_line()
            if line is None:
                if not self.eof.done():
                    self.eof.set_result(None)
                return None
            text = line.strip()
            if not text:
                continue
            message = _parse(text)
            if message is None:
                self.skipped += 1
                preview = redact(text[:_PREVIEW].decode("utf-8", errors="replace"))
                log.debug("skipping a line on the agent's stdout that is not ACP: %s", preview)
                continue
            if self.observer is not None:
                self.observer("in", message)
            return message

    async def _read_line(self) -> bytes | None:
        while True:
            try:
                return await self._reader.readuntil(b"\n")
            except asyncio.IncompleteReadError as exc:
                return exc.partial or None  # EOF; a last line without newline still counts
            except asyncio.LimitOverrunError as exc:
                # Too long to be held: drop it up to its newline, then read on.
                await self._reader.readexactly(exc.consumed)
                with contextlib.suppress(asyncio.LimitOverrunError, asyncio.IncompleteReadError):
                    while True:
                        try:
                            await self._reader.readuntil(b"\n")
                            break
                        except asyncio.LimitOverrunError as more:
                            await self._reader.readexactly(more.consumed)
                log.warning("dropped an over-long line from the agent's stdout")

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        # Closing stdin does not stop the CLI (it ignores EOF); the process owner ends it.
        with contextlib.suppress(Exception):
            self._writer.close()


def _parse(line: bytes) -> dict[str, Any] | None:
    """The JSON-RPC message on ``line``, or None for anything else."""
    try:
        value = json.loads(line)
    except ValueError:
        return None
    if not isinstance(value, dict) or ("method" not in value and "id" not in value):
        return None
    return value

"""The simulator's side of the stdio pipe: JSON lines in and out, its own request ids.

Like the CLI, it numbers its requests to the client from 0, so they collide with the
client's ids; a message with ``method`` is a request or notification, one without is a
reply to one of ours. End of input is ignored (the CLI keeps running until signalled).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, BinaryIO

log = logging.getLogger("lingma_mcp.sim.acp")

Handler = Callable[[dict[str, Any]], Awaitable[None]]


class PeerError(Exception):
    """The client answered one of our requests with an error."""

    def __init__(self, error: dict[str, Any]) -> None:
        self.error = error
        super().__init__(str(error.get("message") or error))


class Wire:
    def __init__(self, out: BinaryIO, log_path: Path | None = None) -> None:
        self._out = out
        self._next_id = 0
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._log = log_path.open("a", encoding="utf-8") if log_path else None

    def write(self, message: dict[str, Any]) -> None:
        # Blocking writes are fine here: one writer, small messages, a test-only program.
        self._out.write((json.dumps(message, ensure_ascii=False) + "\n").encode())
        self._out.flush()

    def chatter(self, text: str) -> None:
        """A line that is not JSON, as the CLI prints at shutdown."""
        self._out.write((text + "\n").encode())
        self._out.flush()

    def reply(self, msg_id: Any, result: Any) -> None:
        self.write({"jsonrpc": "2.0", "id": msg_id, "result": result})

    def error(self, msg_id: Any, code: int, message: str, data: Any = None) -> None:
        error: dict[str, Any] = {"code": code, "message": message}
        if data is not None:
            error["data"] = data
        # The CLI dumps every error it answers on its stderr too.
        sys.stderr.write(f"Error handling request {json.dumps(error)}\n")
        sys.stderr.flush()
        self.write({"jsonrpc": "2.0", "id": msg_id, "error": error})

    def notify(self, method: str, params: dict[str, Any]) -> None:
        self.write({"jsonrpc": "2.0", "method": method, "params": params})

    async def request(self, method: str, params: dict[str, Any]) -> Any:
        msg_id = self._next_id
        self._next_id += 1
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[msg_id] = future
        self.write({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
        try:
            return await future
        finally:
            self._pending.pop(msg_id, None)

    def received(self, message: dict[str, Any]) -> bool:
        """Settle a reply to our request; False when ``message`` is not one."""
        if self._log is not None:
            self._log.write(json.dumps(message) + "\n")
            self._log.flush()
        if "method" in message:
            return False
        future = self._pending.get(message.get("id"))  # type: ignore[arg-type]
        if future is not None and not future.done():
            if "error" in message:
                future.set_exception(PeerError(message["error"] or {}))
            else:
                future.set_result(message.get("result"))
        return True

    async def read_forever(self, reader: asyncio.StreamReader, handle: Handler) -> None:
        """Read messages; hand each request or notification to ``handle`` as its own task."""
        tasks: set[asyncio.Task[None]] = set()
        while True:
            line = await reader.readline()
            if not line:
                log.debug("stdin closed; running on until signalled, as the CLI does")
                await asyncio.Event().wait()
            try:
                message = json.loads(line)
            except ValueError:
                log.debug("ignoring a line that is not JSON")
                continue
            if not isinstance(message, dict) or self.received(message):
                continue
            task = asyncio.ensure_future(handle(message))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

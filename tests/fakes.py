"""An in-memory WebSocket pair, so the RPC core is tested without a network or a process."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from lingma_mcp.lingma.framing import FrameDecoder, encode_frame


class Closed(Exception):
    """What recv() raises once the fake socket is closed (like ConnectionClosed)."""


class FakeSocket:
    """The bridge's end of a socket; the test plays Lingma through ``deliver`` and ``sent``."""

    def __init__(self) -> None:
        self._inbox: asyncio.Queue[Any] = asyncio.Queue()
        self.sent: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._decoder = FrameDecoder()
        self.closed = False

    # what RpcConnection calls
    async def send(self, message: str | bytes) -> None:
        if self.closed:
            raise Closed("socket closed")
        for item in self._decoder.feed(message):
            self.sent.put_nowait(item)

    async def recv(self) -> str | bytes:
        item = await self._inbox.get()
        if item is Closed:
            self._inbox.put_nowait(Closed)
            raise Closed("socket closed by peer")
        return item

    async def close(self) -> None:
        self.drop()

    # what the test (playing Lingma) calls
    def deliver(self, data: str | bytes) -> None:
        self._inbox.put_nowait(data)

    def deliver_message(self, message: dict[str, Any]) -> None:
        self.deliver(encode_frame(message))

    def drop(self) -> None:
        self.closed = True
        self._inbox.put_nowait(Closed)

    async def next_sent(self, timeout: float = 2.0) -> dict[str, Any]:
        return await asyncio.wait_for(self.sent.get(), timeout)


def frame(message: dict[str, Any]) -> bytes:
    return encode_frame(message)


def body_len(message: dict[str, Any]) -> int:
    return len(json.dumps(message).encode())

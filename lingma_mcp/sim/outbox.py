"""The outgoing side of a connection: frames in, WebSocket messages out.

Senders put whole LSP frames into an :class:`Outbox`; one writer task turns them into
WebSocket messages. By default it does what every client must survive: several frames
merged into one message, frames split across messages at seeded points (reproducible
with ``LINGMA_SIM_SEED``), text and binary messages mixed, and cuts inside multi-byte
UTF-8 characters (such a piece goes out as a binary message, since a text message must
be valid UTF-8). With splitting off it sends one frame per text message, as plugins do.

Cost: a frame is encoded once by its sender; the writer joins what accumulated while it
was busy (one copy) and cuts it with slices of a memoryview, so a burst of thousands of
small frames costs a handful of large writes, not one await per frame.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable

log = logging.getLogger("lingma_mcp.sim")

# Malformed frames of each kind PROTOCOL.md says a client must skip without losing the
# frames around them.
MALFORMED_FRAMES: tuple[bytes, ...] = (
    b'{"jsonrpc":"2.0","method":"chat/answer","params":{"text":"a body without a header"}}',
    b'Content-Length: twelve\r\n\r\n{"jsonrpc":"2.0"}',
    b"Content-Length: 17\r\n\r\nthis is not JSON!",
    b'Content-Length: 14\r\n\r\n{"text":"\xc3\x28\xa0"}',
)

# Cut points per batch of queued frames (a batch is what queued while the writer was busy).
_MAX_CUTS = 3
# How far past a cut point to look for a multi-byte character to cut inside.
_CHAR_SEARCH = 256


class Outbox:
    """Queue of encoded frames and the task that writes them to one WebSocket.

    Args:
        send: the connection's ``send`` (str goes out as a text message, bytes as binary).
        split: merge and split frames across messages (see module docstring).
        rng: the seeded random source for cut points and message types.
    """

    def __init__(
        self,
        send: Callable[[str | bytes], object],
        *,
        split: bool,
        rng: random.Random,
    ) -> None:
        self._send = send
        self._split = split
        self._rng = rng
        self._frames: list[bytes] = []
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._closed = False
        self.messages_sent = 0

    def put(self, frame: bytes) -> None:
        """Queue one whole frame (or, to simulate a fault, any bytes) for sending."""
        if self._closed:
            return
        self._frames.append(frame)
        self._idle.clear()
        self._wake.set()

    async def drained(self) -> None:
        """Wait until everything queued so far has been handed to the WebSocket."""
        await self._idle.wait()

    def close(self) -> None:
        """Stop accepting frames and let the writer end."""
        self._closed = True
        self._wake.set()

    async def run(self) -> None:
        """Write queued frames until :meth:`close`; ends quietly when the socket goes."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            if not self._frames:
                self._idle.set()
                if self._closed:
                    return
                continue
            frames, self._frames = self._frames, []
            if self._split:
                await self._write_split(b"".join(frames))
            else:
                for frame in frames:
                    await self._write_whole(frame)
            if not self._frames:
                self._idle.set()
            else:
                self._wake.set()

    async def _write_whole(self, frame: bytes) -> None:
        try:
            message: str | bytes = frame.decode("utf-8")
        except UnicodeDecodeError:
            message = frame  # only the deliberately malformed frames
        await self._emit(message)

    async def _write_split(self, data: bytes) -> None:
        view = memoryview(data)
        pos = 0
        for end in self._cuts(data):
            piece = bytes(view[pos:end])
            pos = end
            if self._rng.random() < 0.5:
                try:
                    await self._emit(piece.decode("utf-8"))
                    continue
                except UnicodeDecodeError:
                    pass  # cut inside a character: only a binary message can carry it
            await self._emit(piece)

    def _cuts(self, data: bytes) -> list[int]:
        """Where the pieces of one batch end: at most ``_MAX_CUTS`` random points, then the end.

        One point in three falls in the first few bytes (splitting a header), and half are
        moved to just after the lead byte of a multi-byte character when one is near, so
        that every test run sees both. Few cuts per batch keep writes, and syscalls, few
        when thousands of deltas pour out.
        """
        size = len(data)
        points: set[int] = set()
        for _ in range(self._rng.randint(0, _MAX_CUTS)):
            if size < 2:
                break
            at = self._rng.randint(1, min(size - 1, 40) if self._rng.random() < 0.33 else size - 1)
            if self._rng.random() < 0.5:
                at = _inside_char(data, at)
            points.add(at)
        return [*sorted(points), size]

    async def _emit(self, message: str | bytes) -> None:
        result = self._send(message)
        if asyncio.iscoroutine(result):
            await result
        self.messages_sent += 1


def _inside_char(data: bytes, at: int) -> int:
    """The position just after the next multi-byte lead byte at or after ``at`` (if near)."""
    stop = min(len(data) - 1, at + _CHAR_SEARCH)
    for pos in range(at, stop):
        if data[pos] >= 0xC0:
            return pos + 1
    return at

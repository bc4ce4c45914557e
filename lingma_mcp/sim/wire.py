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

# Piece sizes for the splitter: mostly small enough to cut a frame, sometimes large enough
# to carry several.
_SMALL = (1, 40)
_LARGE = (200, 4000)


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
        while pos < len(data):
            end = min(len(data), pos + self._piece_size())
            end = self._maybe_cut_inside_char(data, pos, end)
            piece = bytes(view[pos:end])
            pos = end
            if self._rng.random() < 0.5:
                try:
                    await self._emit(piece.decode("utf-8"))
                    continue
                except UnicodeDecodeError:
                    pass
            await self._emit(piece)

    def _piece_size(self) -> int:
        low, high = _SMALL if self._rng.random() < 0.5 else _LARGE
        return self._rng.randint(low, high)

    def _maybe_cut_inside_char(self, data: bytes, start: int, end: int) -> int:
        """Sometimes move a cut to just after the lead byte of a multi-byte character.

        Random cuts land inside a character only as often as the text is non-ASCII; this
        makes the case common enough that every test run sees it.
        """
        if end >= len(data) or self._rng.random() >= 0.25:
            return end
        for at in range(start, min(end + 64, len(data) - 1)):
            if data[at] >= 0xC0:
                return at + 1
        return end

    async def _emit(self, message: str | bytes) -> None:
        result = self._send(message)
        if asyncio.iscoroutine(result):
            await result
        self.messages_sent += 1

"""LSP framing (``Content-Length: N\\r\\n\\r\\n`` + body) without any I/O.

Bytes go in through :meth:`FrameDecoder.feed`, decoded JSON values and :class:`FrameError`
records come out. Lingma (and the simulator) split frames across WebSocket messages and merge
several into one, so the decoder never assumes a message boundary means anything.

Cost: worst case O(n) in the bytes fed. The plan that gets there:
- one ``bytearray`` with a read offset, so a consumed frame is never re-sliced out of the
  buffer; the consumed prefix is dropped only once it is at least half the buffer, so every
  byte is moved O(1) times amortized;
- a header search that resumes where the last one stopped, so bytes already searched are
  never searched again while a header trickles in;
- a body is copied once, into the ``str`` that the JSON decoder reads; frames with the
  canonical ``Content-Length: N`` header (all real traffic) take a tight loop that keeps
  its state in locals, everything else the general parser;
- while a body is incomplete, its new bytes are searched once for the next frame's header,
  which no JSON body can contain: a length longer than its body then costs that one body,
  not every frame behind it.

What cannot be recovered from is marked ``fatal`` (a length above the cap): the reader
should drop the connection rather than read on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

DEFAULT_MAX_BODY = 64 * 1024 * 1024

# A header block is a few dozen bytes; anything this long without a blank line is garbage
# (for instance a body sent without its header), and keeping it would let a broken peer
# grow our buffer without bound.
MAX_HEADER_BYTES = 8 * 1024

# The largest WebSocket message worth accepting: one whole frame at the body cap. A
# message may carry several frames or part of one, but one larger than this cannot be
# anything the decoder would accept.
MAX_MESSAGE_BYTES = DEFAULT_MAX_BODY + MAX_HEADER_BYTES

_HEADER_END = b"\r\n\r\n"
_FAST_PREFIX = b"Content-Length: "
_FAST_PREFIX_LEN = len(_FAST_PREFIX)
_FAST_HEADER_MAX = _FAST_PREFIX_LEN + 24  # room for the digits and the blank line
# raw_decode skips json.loads' two whitespace scans; the fast path checks the rest itself.
_DECODER = json.JSONDecoder()
_LENGTH_NAME = b"content-length:"


@dataclass(frozen=True, slots=True)
class FrameError:
    """A stretch of input that could not be decoded; it was skipped, decoding goes on.

    ``fatal`` marks an error after which the decoder can no longer be trusted to find the
    next frame: a connection should be dropped, not read on. A bad body under a good
    header is not fatal (the header said where the next frame starts); neither is a
    header that is not a number, since the search for the next header resumes at once and
    skips at most :data:`MAX_HEADER_BYTES` of garbage.
    """

    reason: str
    preview: bytes = b""
    fatal: bool = False

    def __str__(self) -> str:
        if self.preview:
            return f"{self.reason} (starts {self.preview[:80]!r})"
        return self.reason


class FrameDecoder:
    """Incremental decoder of LSP-framed JSON messages.

    Args:
        max_body: largest body accepted, in bytes; a larger frame is skipped (its bytes are
            discarded as they arrive, never buffered) and reported as a :class:`FrameError`.
    """

    def __init__(self, max_body: int = DEFAULT_MAX_BODY) -> None:
        self._max_body = max_body
        self._buf = bytearray()
        self._pos = 0  # start of unconsumed data in _buf
        self._scan_from = 0  # where the next header search may begin (absolute in _buf)
        self._body_len: int | None = None  # set once a header is parsed, until its body is in
        self._discard = 0  # bytes of an oversized body still to throw away

    @property
    def buffered(self) -> int:
        """Bytes held waiting for the rest of a frame."""
        return len(self._buf) - self._pos

    def feed(self, data: bytes | bytearray | memoryview | str) -> list[Any | FrameError]:
        """Add received data; return the messages (and errors) it completes, in order.

        A ``str`` (a WebSocket text message) is taken as its UTF-8 bytes, since
        ``Content-Length`` counts bytes.
        """
        if isinstance(data, str):
            data = data.encode("utf-8")
        out: list[Any | FrameError] = []
        if self._discard:
            skipped = min(self._discard, len(data))
            self._discard -= skipped
            data = memoryview(data)[skipped:]
        if not data:
            return out
        self._buf += data
        while True:
            if self._body_len is None and self._fast_frames(out):
                continue
            if not self._step(out):
                break
        self._compact()
        return out

    def _fast_frames(self, out: list[Any | FrameError]) -> bool:
        """Decode consecutive frames whose header is exactly ``Content-Length: N``.

        That is every frame Lingma and the plugins send, so this loop is the hot path: it
        keeps its state in locals and stops at the first frame it cannot take whole,
        leaving anything unusual to :meth:`_step`. Returns whether it consumed a frame.
        """
        buf, pos, end_of_data = self._buf, self._pos, len(self._buf)
        start = pos
        raw_decode = _DECODER.raw_decode
        while buf.startswith(_FAST_PREFIX, pos):
            header_end = buf.find(_HEADER_END, pos + _FAST_PREFIX_LEN, pos + _FAST_HEADER_MAX)
            if header_end < 0:
                break
            digits = buf[pos + _FAST_PREFIX_LEN : header_end]
            if not digits.isdigit():
                break
            body_start = header_end + 4
            body_end = body_start + int(digits)
            if body_end > end_of_data or body_end - body_start > self._max_body:
                break
            try:
                text = buf[body_start:body_end].decode("utf-8")
                value, used = raw_decode(text)
            except ValueError:  # not UTF-8, not JSON, or leading space: the slow path decides
                break
            if used != len(text) and text[used:].strip():
                break
            out.append(value)
            pos = body_end
        if pos == start:
            return False
        self._pos = self._scan_from = pos
        return True

    def _step(self, out: list[Any | FrameError]) -> bool:
        """Decode at most one frame or header from the buffer; False when more input is needed."""
        buf = self._buf
        if self._body_len is None:
            end = buf.find(_HEADER_END, max(self._pos, self._scan_from))
            if end < 0:
                # Resume the next search just before the tail, where a split "\r\n\r\n"
                # could still complete.
                self._scan_from = max(self._pos, len(buf) - len(_HEADER_END) + 1)
                if len(buf) - self._pos > MAX_HEADER_BYTES:
                    keep_from = len(buf) - len(_HEADER_END) + 1
                    out.append(
                        FrameError(
                            "no frame header found; bytes skipped",
                            bytes(buf[self._pos : self._pos + 80]),
                        )
                    )
                    self._pos = keep_from
                    self._scan_from = keep_from
                return False
            header = bytes(buf[self._pos : end])
            self._pos = end + len(_HEADER_END)
            self._scan_from = self._pos
            length = _parse_header(header, out)
            if length is None:
                return True
            if length > self._max_body:
                # Fatal: either the peer broke the size limit or the header is garbage (a
                # length of 10**30 would have the decoder discard every later frame), and
                # the two cannot be told apart. The bytes are still skipped, for callers
                # that read on regardless.
                cap = self._max_body
                out.append(
                    FrameError(
                        f"frame body of {length} bytes exceeds the {cap}-byte cap",
                        header[:80],
                        fatal=True,
                    )
                )
                available = len(buf) - self._pos
                if available >= length:
                    self._pos += length
                    self._scan_from = self._pos
                    return True
                self._discard = length - available
                self._pos = len(buf)
                self._scan_from = self._pos
                return False
            self._body_len = length
        length = self._body_len
        if len(buf) - self._pos < length:
            # While a body trickles in, watch for the next frame's header inside it: a
            # length larger than the body it announces would otherwise swallow every frame
            # behind it, up to the cap.
            return self._resync_inside_body(len(buf), length, out)
        body = bytes(buf[self._pos : self._pos + length])
        try:
            # Decode first: json.loads on bytes would guess UTF-16 or UTF-32 and accept
            # what Lingma, which only speaks UTF-8, never sends.
            value = json.loads(body.decode("utf-8"))
        except UnicodeDecodeError:
            error = FrameError("frame body is not valid UTF-8; skipped", body[:80])
        except ValueError:
            error = FrameError("frame body is not JSON; skipped", body[:80])
        else:
            self._pos += length
            self._scan_from = self._pos
            self._body_len = None
            out.append(value)
            return True
        # A header inside a body that is not JSON: its length was too long, and the frame
        # behind it (whose blank line may not even be here yet) starts there. The header's
        # name may begin in the body and end after it, so look a little past the body, and
        # wait for those bytes if they are not here yet and the body ends like the name.
        reach = self._pos + length + len(_LENGTH_NAME) - 1
        window = bytes(buf[self._pos : reach]).lower()
        inside = window.find(_LENGTH_NAME)
        if inside < 0 and len(buf) < reach and _ends_like_header(window):
            return False
        if 0 <= inside < length:
            out.append(_too_long(length, inside, body))
            self._pos += inside
            self._scan_from = self._pos
            self._body_len = None
            return True
        out.append(error)
        self._pos += length
        self._scan_from = self._pos
        self._body_len = None
        return True

    def _resync_inside_body(self, end: int, length: int, out: list[Any | FrameError]) -> bool:
        """If a whole frame header lies in ``buf[_pos:end]``, skip to it and say so; else False.

        ``Content-Length: N`` followed by a blank line cannot occur in a JSON body: raw CR
        and LF are not allowed inside a JSON string, and the header's words are not JSON
        outside one. So a header found inside a body means the body's length was wrong,
        and the frame it starts is whole. Each byte is searched once (``_scan_from``).
        """
        buf = self._buf
        hit = buf.find(_HEADER_END, max(self._pos, self._scan_from), end)
        while hit >= 0:
            start = _header_start_before(buf, self._pos, hit)
            if start >= 0:
                out.append(_too_long(length, start - self._pos, bytes(buf[self._pos : start])))
                self._pos = self._scan_from = start
                self._body_len = None
                return True
            hit = buf.find(_HEADER_END, hit + 1, end)
        self._scan_from = max(self._pos, end - len(_HEADER_END) + 1)
        return False

    def _compact(self) -> None:
        if self._pos == len(self._buf):
            self._buf.clear()
            self._scan_from -= self._pos
            self._pos = 0
        elif self._pos > 4096 and self._pos * 2 > len(self._buf):
            del self._buf[: self._pos]
            self._scan_from -= self._pos
            self._pos = 0
        self._scan_from = max(self._scan_from, 0)


def _ends_like_header(data: bytes) -> bool:
    """Whether ``data`` (lower case) ends with the start of ``content-length:``."""
    return any(data.endswith(_LENGTH_NAME[:n]) for n in range(1, len(_LENGTH_NAME)))


def _too_long(length: int, body_bytes: int, body: bytes) -> FrameError:
    return FrameError(
        f"Content-Length {length} is longer than its body: a frame header came after "
        f"{body_bytes} bytes; body skipped",
        body[:80],
    )


def _header_start_before(buf: bytearray, floor: int, blank_line: int) -> int:
    """Where ``Content-Length: <digits>`` ends right at ``blank_line``; -1 if it does not."""
    at = blank_line
    while at > floor and 0x30 <= buf[at - 1] <= 0x39:
        at -= 1
    if at == blank_line:
        return -1
    while at > floor and buf[at - 1] == 0x20:
        at -= 1
    start = at - len(_LENGTH_NAME)
    if start < floor or bytes(buf[start:at]).lower() != _LENGTH_NAME:
        return -1
    return start


def _parse_header(header: bytes, out: list[Any | FrameError]) -> int | None:
    """Return the Content-Length of a header block, or None (with an error recorded).

    Garbage in front of a real header (a body that arrived without its own header, say) is
    reported and skipped, and the header behind it is still used, so one bad frame does not
    take the next good one with it.
    """
    lowered = header.lower()
    at = lowered.rfind(_LENGTH_NAME)
    if at < 0:
        out.append(FrameError("frame header has no Content-Length; skipped", header[:80]))
        return None
    line_start = header.rfind(b"\r\n", 0, at)
    line_start = 0 if line_start < 0 else line_start + 2
    if line_start != at:
        # "Content-Length" is not at the start of its line: what precedes it on that line
        # is not a header.
        out.append(FrameError("bytes before a frame header; skipped", header[:at][:80]))
    line_end = header.find(b"\r\n", at)
    value = header[at + len(_LENGTH_NAME) : line_end if line_end >= 0 else len(header)].strip()
    if not value.isdigit():
        out.append(
            FrameError(f"Content-Length is not a number: {value[:40]!r}; skipped", header[:80])
        )
        return None
    return int(value)


def encode_frame(message: Any) -> bytes:
    """Frame one JSON-RPC message as bytes."""
    body = json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


def encode_frame_text(message: Any) -> str:
    """Frame one JSON-RPC message as a str, for a WebSocket text message (what plugins send)."""
    body = json.dumps(message, ensure_ascii=False, separators=(",", ":"))
    if body.isascii():
        length = len(body)
    else:
        length = len(body.encode("utf-8"))
    return f"Content-Length: {length}\r\n\r\n{body}"

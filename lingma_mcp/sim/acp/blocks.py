"""A ``session/prompt``'s content blocks, read as the real CLI reads them. Pure but for
the one file read a resource link asks for (done by the caller's ``read_file``).

What 1.1.52 was seen doing (``docs/cli-observed.md``), and the simulator does:

- ``text`` blocks are the prompt;
- a ``resource`` (embedded text) adds ``@<uri>`` to the prompt and its text under
  "--- Content from referenced context ---";
- a ``resource_link`` adds ``@<path>`` and the file, read from disk with line numbers,
  under "--- Content from referenced files ---";
- an ``image`` (base64 ``data``, ``mimeType``) goes to the model as an image; one that does
  not decode as the image it claims fails the prompt, as the CLI's image check does;
- ``audio`` is refused with -32602.

The expanded text is what ``session/load`` replays as the user's message.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlparse

from lingma_mcp.sim.acp.shapes import numbered

IMAGE_FAILED = (
    "Unable to attach image because it could not be decoded completely or read from its "
    "source. Export the original image as a new JPEG or PNG file and try again. Image "
    "processing error: Invalid or unsupported image data: {why}"
)
AUDIO_REFUSED = "Audio prompts are not supported by the selected Qoder runtime."
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class BlockRefused(ValueError):
    """A block the CLI refuses outright (-32602); ``data`` goes into the error."""

    def __init__(self, message: str, data: dict[str, Any]) -> None:
        super().__init__(message)
        self.data = data


@dataclass
class Prompt:
    """What a prompt says and carries.

    Attributes:
        text: the text blocks, as typed.
        expanded: the text with mentions and referenced contents (the stored user message).
        attached: one line per attachment, for the simulated answer to quote.
        image_error: why an image could not be attached (the prompt then fails).
    """

    text: str = ""
    expanded: str = ""
    attached: list[str] = field(default_factory=list)
    image_error: str | None = None


def file_path_of(uri: str) -> str:
    parsed = urlparse(uri)
    return unquote(parsed.path) if parsed.scheme == "file" else uri


def read_prompt(blocks: list[Any], read_file: Callable[[str], str | None]) -> Prompt:
    """Read the blocks; ``read_file(path)`` gives a linked file's text, or None.

    Raises:
        BlockRefused: an audio block, or a block that is not an object with a type.
    """
    prompt = Prompt()
    texts: list[str] = []
    mentions: list[str] = []
    files: list[str] = []
    context: list[str] = []
    for block in blocks:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            texts.append(str(block.get("text", "")))
        elif kind == "image":
            _image(block, prompt)
        elif kind == "resource":
            resource = block.get("resource") or {}
            uri = str(resource.get("uri", ""))
            mentions.append(f"@{uri}")
            if isinstance(resource.get("text"), str):
                context += [f"\nContent from @{uri}:\n", resource["text"]]
                prompt.attached.append(f"resource {uri} ({len(resource['text'])} characters)")
            else:
                prompt.attached.append(f"resource {uri} (binary)")
        elif kind == "resource_link":
            uri = str(block.get("uri", ""))
            path = file_path_of(uri)
            mentions.append(f"@{path}")
            content = read_file(path)
            if content is not None:
                files += [f"\nContent from @{path}:\n", numbered(content)]
            shown = "unreadable" if content is None else f"{len(content)} characters"
            prompt.attached.append(f"resource_link {block.get('name') or path} {uri} ({shown})")
        elif kind == "audio":
            raise BlockRefused(AUDIO_REFUSED, {"mimeType": block.get("mimeType")})
        else:
            raise BlockRefused(f"unsupported content block: {kind!r}", {"type": kind})
    prompt.text = "".join(texts)
    # The model gets these parts; the message kept (and replayed by session/load) is
    # each part trimmed, joined by newlines, as the CLI keeps it.
    parts = [" ".join([prompt.text, *mentions]) if mentions else prompt.text]
    for title, contents in (("files", files), ("context", context)):
        if contents:
            parts.append(f"\n--- Content from referenced {title} ---")
            parts += contents
    prompt.expanded = "\n".join(p.strip() for p in parts if p.strip()) if mentions else prompt.text
    return prompt


def _image(block: dict[str, Any], prompt: Prompt) -> None:
    mime = str(block.get("mimeType", ""))
    try:
        data = base64.b64decode(str(block.get("data", "")), validate=True)
    except (binascii.Error, ValueError):
        data = b""
    why = "the data is not base64" if not data else image_problem(mime, data)
    if why is None:
        prompt.attached.append(f"image {mime} ({len(data)} bytes)")
    else:
        prompt.image_error = IMAGE_FAILED.format(why=why)


def image_problem(mime: str, data: bytes) -> str | None:
    """Why ``data`` is not a whole ``mime`` image, or None. The CLI decodes images (a PNG
    with a bad checksum fails there); the simulator checks their structure: a PNG's
    chunks and checksums to IEND, the markers of a JPEG, GIF or WebP."""
    if mime == "image/png":
        return None if _whole_png(data) else "the PNG is damaged or cut short"
    if mime == "image/jpeg":
        ok = data.startswith(b"\xff\xd8\xff") and data.rstrip(b"\0").endswith(b"\xff\xd9")
        return None if ok else "the data is not a whole JPEG"
    if mime == "image/gif":
        ok = data[:6] in (b"GIF87a", b"GIF89a") and data.endswith(b";")
        return None if ok else "the data is not a whole GIF"
    if mime == "image/webp":
        ok = data[:4] == b"RIFF" and data[8:12] == b"WEBP"
        return None if ok else "the data is not a WebP image"
    return f"{mime or 'no MIME type'} is not an image type the CLI reads"


def _whole_png(data: bytes) -> bool:
    if not data.startswith(PNG_SIGNATURE):
        return False
    at = len(PNG_SIGNATURE)
    while at + 12 <= len(data):
        size = int.from_bytes(data[at : at + 4], "big")
        kind = data[at + 4 : at + 8]
        body_end = at + 8 + size
        if body_end + 4 > len(data):
            return False
        crc = int.from_bytes(data[body_end : body_end + 4], "big")
        if zlib.crc32(data[at + 4 : body_end]) != crc:
            return False
        if kind == b"IEND":
            return True
        at = body_end + 4
    return False

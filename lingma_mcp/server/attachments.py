"""``ask_lingma``'s attachments: the items a host sends, and the values a backend sends on.

Three kinds of item, told apart by ``type`` (the tool's input schema documents each):

- ``{"type": "file", "path": ...}``: a workspace file for Lingma to read first;
- ``{"type": "folder", "path": ...}``: a workspace folder to look into;
- ``{"type": "image", "path": ...}`` (a workspace image file) or
  ``{"type": "image", "data": <base64>, "mime_type": "image/png"}`` (a screenshot, a
  diagram the host holds; a ``data:`` URL works too).

Every path is decided by the workspace's one confinement rule, like every other path
(``workspace/confine.py``): outside the call's workspace, through a link leading out, or
inside ``.git`` or lingma-mcp's work dir, it is refused before Lingma is asked. An image
must be a PNG, JPEG, GIF or WebP by its own bytes (the CLI fails a whole prompt over an
image it cannot decode) and at most :data:`MAX_IMAGE_BYTES`. A text file up to
:data:`MAX_EMBED_BYTES` is read so a backend can hand over its content; a larger or binary
file goes by reference. All of it together stays under :data:`MAX_TOTAL_BYTES`. What each
backend can carry is its own affair: it refuses the rest.

:func:`resolve` does the reading (bounded) and is run off the event loop by
:func:`resolve_attachments`; the checks on bytes are pure functions.
"""

from __future__ import annotations

import base64
import binascii
import mimetypes
import os
import stat
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Literal

import anyio
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..asking.arguments import SEND
from ..asking.error_texts import InvalidArgument, invalid_argument
from ..backend import Attachment, FileAttachment, FolderAttachment, ImageAttachment
from ..workspace.confine import confine_one

MAX_ATTACHMENTS = 20
# Larger images are refused: the models behind Lingma take a few megabytes per image, and
# base64 in a JSON-RPC line grows it by a third.
MAX_IMAGE_BYTES = 5 * 1024 * 1024
# Text files up to this size are read for a backend that embeds them; larger ones go by
# reference (the agent reads them itself, with its own bounds).
MAX_EMBED_BYTES = 256 * 1024
# What one question may carry in all (images and embedded text): it travels in a single
# JSON-RPC line to the agent. Text past it goes by reference; an image past it is refused.
MAX_TOTAL_BYTES = 20 * 1024 * 1024

_ALIASES = {"image/jpg": "image/jpeg"}


class FileItem(BaseModel):
    """A file in the call's workspace for Lingma to read first."""

    model_config = ConfigDict(extra="forbid", title="file")

    type: Literal["file"]
    path: str = Field(description="Relative to the call's workspace, or absolute inside it.")


class FolderItem(BaseModel):
    """A folder in the call's workspace for Lingma to look into."""

    model_config = ConfigDict(extra="forbid", title="folder")

    type: Literal["folder"]
    path: str = Field(description="Relative to the call's workspace, or absolute inside it.")


class ImageItem(BaseModel):
    """An image for Lingma to look at: a workspace image file (path), or the image itself
    (data and mime_type). PNG, JPEG, GIF or WebP, at most 5 MB."""

    model_config = ConfigDict(extra="forbid", title="image")

    type: Literal["image"]
    path: str | None = Field(
        default=None, description="An image file in the call's workspace; or give data."
    )
    data: str | None = Field(
        default=None,
        description="The image base64-encoded (or as a data: URL); or give path.",
    )
    mime_type: str | None = Field(
        default=None,
        description="With data: image/png, image/jpeg, image/gif or image/webp.",
    )

    @model_validator(mode="after")
    def _one_source(self) -> ImageItem:
        if (self.path is None) == (self.data is None):
            raise ValueError("an image item needs either path or data, not both")
        return self


AttachmentItem = Annotated[FileItem | FolderItem | ImageItem, Field(discriminator="type")]


def sniff_image(data: bytes) -> str | None:
    """The image type ``data`` is by its first bytes, of those Lingma takes; else None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def decode_inline(data: str, mime_type: str | None) -> tuple[bytes, str | None]:
    """The bytes of base64 ``data`` (a ``data:`` URL's type is taken when ``mime_type`` is
    not given), and the type declared.

    Raises:
        ValueError: not base64, or larger than :data:`MAX_IMAGE_BYTES` (said in words).
    """
    text = data.strip()
    if text.startswith("data:"):
        head, _, text = text.partition(",")
        declared = head[5:].split(";", 1)[0].strip()
        mime_type = mime_type or declared or None
    # A quick bound before decoding: base64 is 4 characters for 3 bytes.
    if len(text) > (MAX_IMAGE_BYTES // 3 + 2) * 4 + 1024:
        raise ValueError(f"it is larger than {_mb(MAX_IMAGE_BYTES)}")
    try:
        raw = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("its data is not base64") from None
    return raw, mime_type


def checked_image(raw: bytes, declared: str | None, name: str) -> str:
    """The image's type, once its bytes prove it is one Lingma takes and within bounds.

    Raises:
        ValueError: what is wrong with it, in words.
    """
    if len(raw) > MAX_IMAGE_BYTES:
        raise ValueError(f"{name} has {_mb(len(raw))}, over the {_mb(MAX_IMAGE_BYTES)} bound")
    found = sniff_image(raw)
    if found is None:
        raise ValueError(f"{name} is not a PNG, JPEG, GIF or WebP image")
    if declared is not None and _ALIASES.get(declared.lower(), declared.lower()) != found:
        raise ValueError(f"{name} is {found} by its bytes, not {declared}")
    return found


def _mb(count: int) -> str:
    return f"{count / (1024 * 1024):.1f} MB"


def _refused(problem: str) -> InvalidArgument:
    return invalid_argument("attachments", problem, SEND["attachments"])


def resolve(
    items: Sequence[FileItem | FolderItem | ImageItem],
    workspace: Path,
    *,
    guarded: Sequence[Path] = (),
) -> tuple[Attachment, ...]:
    """The attachments as the backends take them, in the order given (repeats once).

    Args:
        workspace: the call's workspace; every path is confined to it.
        guarded: folders inside it that are never attached (lingma-mcp's work dir).

    Raises:
        InvalidArgument: too many items, a path outside the workspace or missing, an image
            that is not one or is too large; the text says which and why.
    """
    if len(items) > MAX_ATTACHMENTS:
        raise _refused(f"there are {len(items)}, over the bound of {MAX_ATTACHMENTS}")
    root = Path(os.path.realpath(workspace))
    found: list[Attachment] = []
    seen: set[tuple[str, str]] = set()
    inline = 0
    carried = 0  # bytes of images and embedded text so far
    for item in items:
        if isinstance(item, ImageItem) and item.data is not None:
            inline += 1
            name = f"image {inline}"
            try:
                raw, declared = decode_inline(item.data, item.mime_type)
                attachment: Attachment = ImageAttachment(
                    raw, checked_image(raw, declared, name), name
                )
            except ValueError as exc:
                raise _refused(f"{name}: {exc}") from None
        else:
            assert item.path is not None  # a path item, or an image with a path (validated)
            path, name = _confined(item.path, root, guarded)
            if (item.type, name) in seen:
                continue
            seen.add((item.type, name))
            attachment = _read(item.type, path, name)
        attachment, carried = _within_total(attachment, carried)
        found.append(attachment)
    return tuple(found)


def _within_total(attachment: Attachment, carried: int) -> tuple[Attachment, int]:
    """``attachment`` kept within what one question may carry, and the new total: a text
    past it goes by reference instead; an image past it is refused."""
    if isinstance(attachment, ImageAttachment):
        carried += len(attachment.data)
        if carried > MAX_TOTAL_BYTES:
            raise _refused(
                f"with {attachment.name} they carry {_mb(carried)}, over the "
                f"{_mb(MAX_TOTAL_BYTES)} one question may carry"
            )
    elif isinstance(attachment, FileAttachment) and attachment.text is not None:
        size = len(attachment.text.encode("utf-8"))
        if carried + size > MAX_TOTAL_BYTES:
            return replace(attachment, text=None), carried
        carried += size
    return attachment, carried


async def resolve_attachments(
    items: Sequence[FileItem | FolderItem | ImageItem] | None,
    workspace: Path,
    *,
    guarded: Sequence[Path] = (),
) -> tuple[Attachment, ...]:
    """:func:`resolve`, in a worker thread: an image is read whole, up to 5 MB."""
    if not items:
        return ()
    return await anyio.to_thread.run_sync(lambda: resolve(items, workspace, guarded=guarded))


def _confined(raw: str, root: Path, guarded: Sequence[Path]) -> tuple[Path, str]:
    target = confine_one(raw, root, [Path(os.path.realpath(g)) for g in guarded])
    if not target.inside or target.path is None:
        raise _refused(f"{raw!r} is outside the workspace ({target.reason.rstrip('.')})")
    if target.protected:
        raise _refused(f"{target.shown} is inside {target.protected}, which is never attached")
    return target.path, target.shown


def _read(kind: str, path: Path, name: str) -> Attachment:
    try:
        info = path.stat()
    except FileNotFoundError:
        raise _refused(f"there is no {name} in the workspace") from None
    except OSError as exc:
        raise _refused(f"{name} cannot be read ({exc.strerror or exc})") from None
    is_dir = stat.S_ISDIR(info.st_mode)
    if kind == "folder":
        if not is_dir:
            raise _refused(f"{name} is not a folder (send it as type file)")
        return FolderAttachment(path, name)
    if is_dir:
        raise _refused(f"{name} is a folder (send it as type folder)")
    if not stat.S_ISREG(info.st_mode):
        raise _refused(f"{name} is not a regular file")
    if kind == "image":
        if info.st_size > MAX_IMAGE_BYTES:
            raise _refused(f"{name} has {_mb(info.st_size)}, over the {_mb(MAX_IMAGE_BYTES)} bound")
        raw = _bytes(path, name, MAX_IMAGE_BYTES + 1)
        try:
            return ImageAttachment(raw, checked_image(raw, None, name), name, path)
        except ValueError as exc:
            raise _refused(str(exc)) from None
    text = None
    if info.st_size <= MAX_EMBED_BYTES:
        text = _text(_bytes(path, name, MAX_EMBED_BYTES + 1))
    return FileAttachment(path, name, _mime(path, text), info.st_size, text)


def _bytes(path: Path, name: str, limit: int) -> bytes:
    try:
        with path.open("rb") as handle:
            return handle.read(limit)
    except OSError as exc:
        raise _refused(f"{name} cannot be read ({exc.strerror or exc})") from None


def _text(raw: bytes) -> str | None:
    """The file's text, if it is UTF-8 text (a NUL byte says it is not)."""
    if b"\x00" in raw:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _mime(path: Path, text: str | None) -> str:
    guessed, _ = mimetypes.guess_type(path.name)
    if guessed:
        return guessed
    return "text/plain" if text is not None else "application/octet-stream"

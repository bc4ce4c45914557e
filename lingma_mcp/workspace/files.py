"""Reading and changing files that confinement has already placed inside the workspace.

Every change is atomic: the new bytes go to a temporary file in the same folder, are
flushed to disk, then renamed over the old name, and the folder itself is flushed, so a
crash leaves either the old file or the new one, never half of one. A replaced file keeps
its mode (and owner, when we may set it) and its line endings, unless the new text
chooses its own. Files are opened without following a final symbolic link and checked to
be regular after opening, so a file swapped for a link or a fifo since the path was
resolved is refused rather than followed.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from .paths import special_kind
from .workspace_errors import WorkspaceError

READ_LIMIT = 1024 * 1024
# A file about to be replaced or deleted is copied into the change journal first; one
# larger than this cannot be kept, so the change is refused rather than made unrevertible.
CHANGE_LIMIT = 32 * 1024 * 1024
# How far into a file to look for a NUL byte when judging it binary (as git does).
BINARY_SNIFF = 8192


@dataclass
class FileText:
    """A text file's content as read, possibly cut at :data:`READ_LIMIT`."""

    content: str
    truncated: bool
    size: int

    def with_note(self) -> str:
        """The content, followed by a line saying it was cut when it was."""
        if not self.truncated:
            return self.content
        return (
            f"{self.content}\n[lingma-mcp: the file has {self.size} bytes; only the first "
            f"{READ_LIMIT // 1024} KiB are shown. Read further with a line offset.]"
        )


def _open_regular(path: Path, raw: str) -> tuple[int, os.stat_result]:
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise WorkspaceError(f"{raw} does not exist") from None
    except IsADirectoryError:
        raise WorkspaceError(f"{raw} is a folder, not a file") from None
    except OSError as exc:
        raise WorkspaceError(f"cannot open {raw}: {exc.strerror}") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        if stat.S_ISDIR(st.st_mode):
            raise WorkspaceError(f"{raw} is a folder, not a file")
        kind = special_kind(st.st_mode) or "not a regular file"
        raise WorkspaceError(f"{raw} is {kind}; only regular files can be read or changed")
    return fd, st


def _decode(data: bytes, raw: str, *, final: bool) -> str:
    if b"\x00" in data[:BINARY_SNIFF]:
        raise WorkspaceError(f"{raw} is a binary file; only text files can be read")
    try:
        # Not final when the data was cut: a character split at the cut is dropped.
        return codecs.getincrementaldecoder("utf-8")("strict").decode(data, final=final)
    except UnicodeDecodeError:
        raise WorkspaceError(
            f"{raw} is not UTF-8 text (a binary file or another encoding); "
            "only UTF-8 text files can be read"
        ) from None


def read_text_file(
    path: Path,
    raw: str,
    *,
    line: int | None = None,
    limit: int | None = None,
    max_bytes: int = READ_LIMIT,
) -> FileText:
    """Read a UTF-8 text file, at most ``max_bytes`` of it.

    ``line`` (1-based) and ``limit`` (number of lines) select a window, as ACP's
    ``fs/read_text_file`` does; the byte cap applies to the window.

    Raises:
        WorkspaceError: missing, a folder, special, binary or not UTF-8.
    """
    if line is not None and line < 1:
        raise WorkspaceError(f"line must be 1 or more, not {line}")
    if limit is not None and limit < 0:
        raise WorkspaceError(f"limit must be 0 or more, not {limit}")
    fd, st = _open_regular(path, raw)
    with os.fdopen(fd, "rb") as f:
        if line is None and limit is None:
            data = f.read(max_bytes + 1)
            truncated = len(data) > max_bytes
            data = data[:max_bytes]
        else:
            # Stream the lines so a window deep in a large file costs no more than its size.
            chunks: list[bytes] = []
            taken = 0
            truncated = False
            start = line or 1
            for number, text in enumerate(f, start=1):
                if number < start:
                    continue
                if limit is not None and number >= start + limit:
                    break
                if taken + len(text) > max_bytes:
                    chunks.append(text[: max_bytes - taken])
                    truncated = True
                    break
                chunks.append(text)
                taken += len(text)
            data = b"".join(chunks)
    return FileText(_decode(data, raw, final=not truncated), truncated, st.st_size)


def read_for_change(path: Path, raw: str, *, max_bytes: int = CHANGE_LIMIT) -> bytes | None:
    """The bytes a change is about to replace (``None``: the file does not exist yet).

    Raises:
        WorkspaceError: a folder, a special file, or too large to keep for a revert.
    """
    try:
        fd, st = _open_regular(path, raw)
    except WorkspaceError:
        if not os.path.lexists(path):
            return None
        raise
    with os.fdopen(fd, "rb") as f:
        if st.st_size > max_bytes:
            raise WorkspaceError(
                f"{raw} has {st.st_size} bytes, more than the {max_bytes // (1024 * 1024)} MiB "
                "a change may replace: its old content could not be kept for a revert"
            )
        return f.read()


def uses_crlf(data: bytes) -> bool:
    """True when most of the file's line ends are CRLF."""
    crlf = data.count(b"\r\n")
    return crlf > 0 and crlf * 2 > data.count(b"\n")


def encode_text(text: str, old: bytes | None, raw: str) -> bytes:
    """The bytes to write for ``text``, keeping a CRLF file CRLF unless the text has CRLF."""
    if old is not None and "\n" in text and "\r\n" not in text and uses_crlf(old):
        text = text.replace("\n", "\r\n")
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise WorkspaceError(
            f"the text for {raw} cannot be written as UTF-8: {exc.reason}"
        ) from None


def _fsync_folder(folder: Path) -> None:
    # Makes the rename itself durable; some file systems refuse to open folders this way.
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def fill(
    fd: int,
    data: bytes,
    *,
    mode: int | None,
    like: os.stat_result | None,
    durable: bool = True,
) -> None:
    """Give a new temporary file, open as ``fd``, its mode and ``data``.

    ``mode`` sets the mode outright; else ``like``, the stat of the file it will replace,
    gives its mode and, where we may, its owner; else the mode it was opened with stays.
    ``durable`` fsyncs the data. Raises what ``os.write`` and ``os.fsync`` raise."""
    if mode is not None:
        os.fchmod(fd, mode)
    elif like is not None:
        os.fchmod(fd, stat.S_IMODE(like.st_mode))
        if (like.st_uid, like.st_gid) != (os.getuid(), os.getgid()):
            with contextlib.suppress(OSError):
                os.fchown(fd, like.st_uid, like.st_gid)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    if durable:
        os.fsync(fd)


def atomic_write(
    path: Path, data: bytes, *, like: os.stat_result | None = None, mode: int | None = None
) -> None:
    """Replace ``path`` with ``data`` atomically and durably.

    ``like`` is the stat of the file being replaced: its mode and owner are kept. ``mode``
    sets the mode outright. Otherwise a new file gets the usual mode (0666 less the umask).

    Raises:
        WorkspaceError: the temporary file could not be written or renamed.
    """
    folder = path.parent
    stem = path.name[:40]
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    for _ in range(16):
        tmp = folder / f".{stem}.{secrets.token_hex(6)}.lingma-tmp"
        try:
            fd = os.open(tmp, flags, 0o600 if mode is not None else 0o666)
            break
        except FileExistsError:
            continue
        except OSError as exc:
            raise WorkspaceError(f"cannot write in {folder}: {exc.strerror}") from None
    else:  # pragma: no cover - 16 collisions of 48 random bits
        raise WorkspaceError(f"cannot create a temporary file in {folder}")
    try:
        try:
            fill(fd, data, mode=mode, like=like)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise WorkspaceError(f"cannot write {path}: {exc.strerror}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_folder(folder)

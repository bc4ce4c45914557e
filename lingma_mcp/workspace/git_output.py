"""What git prints, and objects named as git names them: pure functions, no process.

Everything read from git is ``-z`` output (NUL-separated, names unquoted) except the
patch text, whose ``diff --git`` headers :func:`diff_header` reproduces to pick out a
file's section.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

OBJECT_ID = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")


@dataclass(frozen=True)
class TreeChange:
    """One path that differs between two trees (``git diff-tree --raw --numstat``)."""

    path: str
    status: str  # A, M, D, T (type change)
    old_mode: str
    new_mode: str
    old_id: str
    new_id: str
    added: int = 0
    removed: int = 0
    binary: bool = False


def blob_id(data: bytes) -> str:
    """The git (SHA-1) object id of a blob holding ``data``."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def file_blob_id(fd: int) -> str:
    """The blob id of an open file's content, read in chunks (the fd is not closed).

    A file that changes size while it is read gets ``""``: no id matches it.
    """
    size = os.fstat(fd).st_size
    digest = hashlib.sha1(b"blob %d\0" % size, usedforsecurity=False)
    seen = 0
    while chunk := os.read(fd, 1 << 20):
        digest.update(chunk)
        seen += len(chunk)
    return digest.hexdigest() if seen == size else ""


def split_nul(out: bytes) -> list[str]:
    """NUL-separated paths from git ``-z`` output, decoded as the file system names them."""
    return [os.fsdecode(p) for p in out.split(b"\0") if p]


def parse_raw_numstat(out: bytes) -> list[TreeChange]:
    """``git diff-tree -r -z --raw --numstat`` output, one entry per path, in git's order.

    Raw records (``:mode mode id id status NUL path NUL``) come first, then numstat
    records (``added TAB removed TAB path NUL``; ``-`` for binary). A path may begin with
    anything, so each is read as the token after its record, never by its first byte.
    """
    tokens = out.split(b"\0")
    raw: dict[str, list[str]] = {}
    counts: dict[str, tuple[int, int, bool]] = {}
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.startswith(b":") and i + 1 < len(tokens):
            meta = token[1:].decode("ascii").split(" ")
            raw[os.fsdecode(tokens[i + 1])] = meta
            i += 2
            continue
        if token:
            added, removed, path = token.split(b"\t", 2)
            binary = added == b"-"
            counts[os.fsdecode(path)] = (
                0 if binary else int(added),
                0 if binary else int(removed),
                binary,
            )
        i += 1
    changes = []
    for path, (old_mode, new_mode, old_id, new_id, status) in raw.items():
        added, removed, binary = counts.get(path, (0, 0, False))
        changes.append(
            TreeChange(path, status[:1], old_mode, new_mode, old_id, new_id, added, removed, binary)
        )
    return changes


def git_quote(text: str) -> str:
    """``text`` as git prints a name in a diff header: C-style quoted when it must be.

    Non-ASCII is left as it is (``core.quotePath=false``); control characters, ``"`` and
    ``\\`` make git quote the whole name.
    """
    raw = os.fsencode(text)
    named = {
        0x22: b'\\"',
        0x5C: b"\\\\",
        7: b"\\a",
        8: b"\\b",
        9: b"\\t",
        10: b"\\n",
        11: b"\\v",
        12: b"\\f",
        13: b"\\r",
    }
    if not any(b < 0x20 or b == 0x7F or b in named for b in raw):
        return text
    out = bytearray(b'"')
    for b in raw:
        if b in named:
            out += named[b]
        elif b < 0x20 or b == 0x7F:
            out += b"\\%03o" % b
        else:
            out.append(b)
    out += b'"'
    return out.decode("utf-8", "replace")


def diff_header(path: str) -> str:
    """The ``diff --git`` line git prints for ``path`` (no renames, default prefixes)."""
    return f"diff --git {git_quote('a/' + path)} {git_quote('b/' + path)}"


def index_entry_count(index: Path) -> int:
    """How many entries the index file holds, from its header (0 when there is none)."""
    try:
        with open(index, "rb") as f:
            header = f.read(12)
    except OSError:
        return 0
    if len(header) < 12 or header[:4] != b"DIRC":
        return 0
    return int.from_bytes(header[8:12], "big")

"""Unified diffs and line counts of file changes (pure functions over bytes).

Cost: difflib's matcher is roughly linear on typical edits but can go quadratic on large,
very different files; changes pass through the 32 MiB cap before they get here.
"""

from __future__ import annotations

import difflib

PREVIEW_LINES = 40
PREVIEW_CHARS = 4000


def _is_binary(data: bytes | None) -> bool:
    return data is not None and b"\x00" in data[:8192]


def _lines(data: bytes | None) -> list[str]:
    if data is None:
        return []
    return data.decode("utf-8", errors="replace").splitlines(keepends=True)


def count_lines(before: bytes | None, after: bytes | None) -> tuple[int, int]:
    """(lines added, lines removed) going from ``before`` to ``after``."""
    old, new = _lines(before), _lines(after)
    added = removed = 0
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag in ("replace", "delete"):
            removed += i2 - i1
        if tag in ("replace", "insert"):
            added += j2 - j1
    return added, removed


def unified_diff(path: str, before: bytes | None, after: bytes | None) -> str:
    """One file's change as a unified diff (``/dev/null`` for a created or deleted side)."""
    old_name = f"a/{path}" if before is not None else "/dev/null"
    new_name = f"b/{path}" if after is not None else "/dev/null"
    if _is_binary(before) or _is_binary(after):
        return f"Binary files {old_name} and {new_name} differ\n"
    out: list[str] = []
    for line in difflib.unified_diff(
        _lines(before), _lines(after), fromfile=old_name, tofile=new_name
    ):
        out.append(line)
        if not line.endswith("\n"):  # the file's last line had no newline
            out.append("\n\\ No newline at end of file\n")
    return "".join(out)


def preview(path: str, before: bytes | None, after: bytes | None) -> str:
    """A short diff for an approval prompt: at most 40 lines and 4000 characters."""
    lines = unified_diff(path, before, after).splitlines()
    shown = lines[:PREVIEW_LINES]
    text = "\n".join(shown)
    if len(text) > PREVIEW_CHARS:
        text = text[:PREVIEW_CHARS]
    if len(shown) < len(lines) or len(text) < len("\n".join(shown)):
        text += f"\n… ({len(lines) - len(shown)} more diff lines not shown)"
    return text

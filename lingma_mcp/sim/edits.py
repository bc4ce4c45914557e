"""Edits Lingma makes inside its own binary, made by the simulator itself after approval.

Some of Lingma's tools run in the binary, not in the IDE (PROTOCOL.md §5): ``edit_file``
among them. The IDE sees only ``tool/call/sync`` PENDING, answers ``tool/call/approve``,
and on a yes the binary writes the file itself; no ``tool/invoke`` reaches the IDE, so a
client that records changes must look at the disk. The simulator does the same. The
parameters of the real ``edit_file`` were never recorded: it takes the path from
``file_path``, ``filePath`` or ``target_file`` (relative paths from the chat's
workspace) and the file's whole new text from ``content``, ``text`` or ``code_edit``.
"""

from __future__ import annotations

import os
from typing import Any

EDITING_TOOLS = frozenset({"edit_file"})
_PATH_KEYS = ("file_path", "filePath", "target_file")
_TEXT_KEYS = ("content", "text", "code_edit")


def edit_of(name: str, parameters: dict[str, Any], workspace: str) -> tuple[str, str] | None:
    """(path, new text) when ``name`` is an editing tool whose call names both; else None."""
    if name not in EDITING_TOOLS:
        return None
    path = next((parameters[k] for k in _PATH_KEYS if isinstance(parameters.get(k), str)), None)
    text = next((parameters[k] for k in _TEXT_KEYS if isinstance(parameters.get(k), str)), None)
    if not path or text is None:
        return None
    return os.path.join(workspace, os.path.expanduser(path)), text


def write(path: str, text: str) -> None:
    """Write the whole file, creating its folder, as an editor saving it would.

    Raises:
        OSError: the file cannot be written (the tool call then ends in ERROR).
    """
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write(text)

"""Judging a ``session/request_permission``: what the tool call would do, and the answer.

Pure functions, no I/O. The CLI runs commands and writes outside its folder itself after
asking (PROTOCOL.md §10), so the permission request is where confinement and approval
are enforced: its tool call (kind, title, locations, raw input) becomes an action
(read/write/delete/run) and a target for the approval gate, and a path outside the
workspace is refused before anyone is asked.

The answer is chosen by the option's ``kind``, never its id: ``allow_once`` to approve,
``reject_once`` (else ``reject_always``) to refuse. ``allow_always`` is never chosen, so
every later call is asked again.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from acp.schema import PermissionOption, ToolCallUpdate

# ACP tool kinds → gate actions. A kind not listed (think, switch_mode, other, none) is
# judged as "run", the action a policy guards most closely.
_KIND_ACTION = {
    "read": "read",
    "search": "read",
    "fetch": "read",
    "edit": "write",
    "move": "write",
    "delete": "delete",
    "execute": "run",
}
_PATH_KEYS = ("path", "file_path", "filePath", "absolute_path", "target_file", "file", "uri")
_COMMAND_KEYS = ("command", "cmd", "script")
_CONTENT_KEYS = ("content", "new_string", "newText", "text", "new_text")
PREVIEW_CHARS = 4000


@dataclass(frozen=True, slots=True)
class Judgement:
    """What a permission request asks for, as the approval gate sees it."""

    action: str  # read | write | delete | run
    tool: str
    target: str
    preview: str | None = None
    outside: str | None = None  # a path outside the workspace, if any (refuse unasked)


def _raw(tool_call: ToolCallUpdate) -> dict[str, Any]:
    raw = tool_call.raw_input
    return raw if isinstance(raw, dict) else {}


def _paths(tool_call: ToolCallUpdate) -> list[str]:
    paths = [loc.path for loc in tool_call.locations or [] if loc.path]
    raw = _raw(tool_call)
    for key in _PATH_KEYS:
        value = raw.get(key)
        if isinstance(value, str) and value:
            paths.append(value.removeprefix("file://"))
    return paths


def _command(tool_call: ToolCallUpdate) -> str | None:
    raw = _raw(tool_call)
    for key in _COMMAND_KEYS:
        value = raw.get(key)
        if isinstance(value, str) and value:
            args = raw.get("args")
            if isinstance(args, list) and args:
                return shlex.join([value, *map(str, args)])
            return value
        if isinstance(value, list) and value:
            return shlex.join(map(str, value))
    return None


def _preview(tool_call: ToolCallUpdate) -> str | None:
    raw = _raw(tool_call)
    for key in _CONTENT_KEYS:
        value = raw.get(key)
        if isinstance(value, str):
            return value[:PREVIEW_CHARS]
    for item in tool_call.content or []:
        new_text = getattr(item, "new_text", None)
        if isinstance(new_text, str):
            return new_text[:PREVIEW_CHARS]
    return None


def outside_root(path: str, root: Path) -> bool:
    """True when ``path`` (relative paths are taken from ``root``) leaves ``root``."""
    base = os.path.realpath(root)
    full = os.path.realpath(os.path.join(base, os.path.expanduser(path)))
    return not (full == base or full.startswith(base.rstrip(os.sep) + os.sep))


def judge(tool_call: ToolCallUpdate, root: Path) -> Judgement:
    """Classify one permission request's tool call against the workspace ``root``."""
    action = _KIND_ACTION.get(tool_call.kind or "", "")
    command = _command(tool_call)
    paths = _paths(tool_call)
    if not action:
        action = "run" if command or not paths else "write"
    tool = tool_call.title or tool_call.kind or "tool"
    if action == "run":
        target = command or tool_call.title or "an unnamed command"
        cwd = _raw(tool_call).get("cwd")
        checked = [cwd] if isinstance(cwd, str) and cwd else []
    else:
        target = paths[0] if paths else (tool_call.title or "an unnamed file")
        checked = paths
    outside = next((p for p in checked if outside_root(p, root)), None)
    preview = _preview(tool_call) if action == "write" else None
    return Judgement(action, tool, target, preview, outside)


def choose_option(options: Sequence[PermissionOption], allow: bool) -> str | None:
    """The ``optionId`` to answer with; None when no option of a fitting kind exists."""
    kinds = ("allow_once",) if allow else ("reject_once", "reject_always")
    for kind in kinds:
        for option in options:
            if option.kind == kind:
                return option.option_id
    return None

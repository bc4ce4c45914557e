"""Reading a ``session/request_permission``: what the tool call would do, and the answer.

Pure functions, no I/O. The CLI runs commands and writes files itself after asking
(PROTOCOL.md §10.1: it never sends ``fs/*`` or ``terminal/*``), so the permission request is
where confinement and approval happen: its tool call (kind, title, locations, raw input,
content) becomes an action (read/write/delete/run), the paths it names, the content the
approval is bound to, and what the person is shown. The decision itself is the workspace
host's (one confinement decision, one gate): nothing here decides.

Every string in the raw input that looks like a path counts as a target, whatever its key
(a move's destination, a delete's ``paths``, a nested ``edits[].file_path``): a path this
module misses would be a path nobody checks, so it errs towards finding too many.

The answer is chosen by the option's ``kind``, never its id: ``allow_once`` to approve,
``reject_once`` (else ``reject_always``) to refuse. ``allow_always`` is never chosen, so
every later call is asked again.
"""

from __future__ import annotations

import difflib
import json
import shlex
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from acp.schema import PermissionOption, ToolCallUpdate

# ACP tool kinds → gate actions. A kind not listed (think, switch_mode, other, none) is
# judged by what its input holds: a command runs, paths are written.
_KIND_ACTION = {
    "read": "read",
    "search": "read",
    "fetch": "read",
    "edit": "write",
    "move": "write",
    "delete": "delete",
    "execute": "run",
}
_COMMAND_KEYS = ("command", "cmd", "script", "argv", "commandLine", "command_line")
# Keys whose strings are content, patterns or prose, never paths.
_NOT_PATH_KEYS = frozenset(
    {
        "content",
        "new_string",
        "old_string",
        "newText",
        "oldText",
        "new_text",
        "old_text",
        "text",
        "description",
        "prompt",
        "pattern",
        "regex",
        "query",
        "glob",
        "url",
        "title",
        "reason",
        "explanation",
        *_COMMAND_KEYS,
    }
)
_PATH_WORDS = ("path", "file", "dir", "folder", "destination", "source", "target", "cwd", "uri")
_CONTENT_KEYS = ("content", "new_string", "newText", "text", "new_text")
PREVIEW_CHARS = 4000
DIFF_LINES = 60


@dataclass(frozen=True, slots=True)
class Judgement:
    """What a permission request asks for, as the workspace host's decision takes it."""

    action: str  # read | write | delete | run
    tool: str
    targets: tuple[str, ...]  # the paths it names (run: its folder, if any)
    command: str | None  # run: the command line as it will run
    preview: str | None  # what the person reads beyond the target
    content: str  # what the approval is bound to (new text, the command, or the raw input)

    @property
    def target(self) -> str:
        """The target as one line (the command for a run)."""
        if self.action == "run":
            return self.command or "an unnamed command"
        return ", ".join(self.targets) or "an unnamed file"


def _raw(tool_call: ToolCallUpdate) -> dict[str, Any]:
    raw = tool_call.raw_input
    return raw if isinstance(raw, dict) else {}


def _looks_like_path(value: str) -> bool:
    if not value or len(value) > 4096 or "\n" in value:
        return False
    if value.startswith(("/", "~", "./", "../", "file://")) or value in (".", ".."):
        return True
    return "/" in value and " " not in value and "://" not in value


def _path_key(key: str) -> bool:
    lowered = key.lower()
    return any(word in lowered for word in _PATH_WORDS)


def _strings(value: Any, key: str = "") -> Iterator[str]:
    """Every path-like string in ``value``, walking dicts and lists (bounded depth)."""
    stack: list[tuple[str, Any, int]] = [(key, value, 0)]
    while stack:
        name, item, depth = stack.pop()
        if depth > 8:
            continue
        if isinstance(item, dict):
            stack.extend((str(k), v, depth + 1) for k, v in item.items() if k not in _NOT_PATH_KEYS)
        elif isinstance(item, list):
            stack.extend((name, v, depth + 1) for v in item)
        elif isinstance(item, str) and item.strip():
            if _path_key(name) or _looks_like_path(item):
                yield item.removeprefix("file://")


def _paths(tool_call: ToolCallUpdate) -> list[str]:
    found = [loc.path for loc in tool_call.locations or [] if loc.path]
    for item in tool_call.content or []:
        path = getattr(item, "path", None)  # a diff names the file it changes
        if isinstance(path, str) and path:
            found.append(path)
    found.extend(_strings(_raw(tool_call)))
    return list(dict.fromkeys(found))


def _command(tool_call: ToolCallUpdate) -> str | None:
    raw = _raw(tool_call)
    for key in _COMMAND_KEYS:
        value = raw.get(key)
        if isinstance(value, str) and value.strip():
            args = raw.get("args")
            if isinstance(args, list) and args:
                return shlex.join([value, *map(str, args)])
            return value
        if isinstance(value, list) and value:
            return shlex.join(map(str, value))
    return None


def _diff(path: str, old: str | None, new: str) -> str:
    lines = list(
        difflib.unified_diff(
            (old or "").splitlines(keepends=True),
            new.splitlines(keepends=True),
            fromfile=f"a/{path}" if old is not None else "/dev/null",
            tofile=f"b/{path}",
            lineterm="",
        )
    )
    if len(lines) > DIFF_LINES:
        lines = [*lines[:DIFF_LINES], f"… ({len(lines) - DIFF_LINES} more diff lines not shown)"]
    return "\n".join(line.rstrip("\n") for line in lines)


def _new_text(tool_call: ToolCallUpdate) -> tuple[str | None, str]:
    """(the whole new content, the preview) of a write, from the CLI's diff or the input."""
    for item in tool_call.content or []:
        new_text = getattr(item, "new_text", None)
        if isinstance(new_text, str):
            path = getattr(item, "path", None) or "file"
            return new_text, _diff(path, getattr(item, "old_text", None), new_text)
    raw = _raw(tool_call)
    for key in _CONTENT_KEYS:
        value = raw.get(key)
        if isinstance(value, str):
            old = raw.get("old_string")
            if key == "new_string" and isinstance(old, str):
                return None, _diff("file", old, value)
            return value, value[:PREVIEW_CHARS]
    return None, ""


def _canonical(raw: dict[str, Any]) -> str:
    return json.dumps(raw, ensure_ascii=False, sort_keys=True, default=str)


def judge(tool_call: ToolCallUpdate) -> Judgement:
    """Read one permission request's tool call: its action, targets, preview and content."""
    raw = _raw(tool_call)
    command = _command(tool_call)
    paths = _paths(tool_call)
    action = _KIND_ACTION.get(tool_call.kind or "", "")
    if not action:
        action = "run" if command or not paths else "write"
    tool = tool_call.title or tool_call.kind or "tool"
    if action == "run":
        cwd = raw.get("cwd")
        targets = (cwd,) if isinstance(cwd, str) and cwd else ()
        details = [f"command: {command}" if command else "command: (not given)"]
        if targets:
            details.append(f"folder: {targets[0]}")
        extra = {k: v for k, v in raw.items() if k not in (*_COMMAND_KEYS, "cwd", "args")}
        if extra:
            details.append("input: " + _canonical(extra)[:PREVIEW_CHARS])
        preview = "\n".join(details)
        return Judgement(action, tool, targets, command, preview, command or _canonical(raw))
    preview = ""
    content = _canonical(raw)
    if action == "write":
        new_text, preview = _new_text(tool_call)
        if new_text is not None:
            content = new_text
    if not preview and raw:
        preview = "input: " + _canonical(raw)[:PREVIEW_CHARS]
    return Judgement(action, tool, tuple(paths), None, preview or None, content)


def choose_option(options: Sequence[PermissionOption], allow: bool) -> str | None:
    """The ``optionId`` to answer with; None when no option of a fitting kind exists."""
    kinds = ("allow_once",) if allow else ("reject_once", "reject_always")
    for kind in kinds:
        for option in options:
            if option.kind == kind:
                return option.option_id
    return None

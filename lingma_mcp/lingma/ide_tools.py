"""Lingma's IDE tools, in the plugin's dialect, served by the workspace host.

This adapter owns only the dialect: tool names, parameter spellings (``file_path`` and
``filePath`` for every path, ``content`` where ``text`` is expected, as real runs show
both) and result shapes. Confinement, approvals, the journal and the work itself belong to
:class:`~lingma_mcp.workspace.WorkspaceHost`.
"""

from __future__ import annotations

import contextvars
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from ..workspace import WorkspaceError, WorkspaceHost, classify_tool
from .toolhost import ToolOutcome

log = logging.getLogger("lingma_mcp.lingma.ide_tools")

UNSUPPORTED = "tool not support yet"  # the plugin's own words, which Lingma knows

# The class of action of each hosted tool (save_file changes nothing and needs none).
TOOL_CLASSES: dict[str, str] = {
    "read_file": "read",
    "get_problems": "read",
    "get_terminal_output": "read",
    "create_file_with_text": "write",
    "replace_text_by_path": "write",
    "delete_file_by_path": "delete",
    "run_in_terminal": "run",
}

_PATH_KEYS = ("file_path", "filePath", "path", "filepath")
_TEXT_KEYS = ("text", "content")
# Where Lingma's own tools (run inside its binary, seen only in PENDING) put paths.
_MORE_PATH_KEYS = (
    "target_file",
    "targetFile",
    "filePaths",
    "file_paths",
    "paths",
    "dir_path",
    "dirPath",
    "directory",
    "source",
    "destination",
    "target",
    "new_path",
    "newPath",
    "old_path",
    "oldPath",
)


class _BadParameters(Exception):
    pass


def _first(parameters: dict[str, Any], keys: tuple[str, ...], tool: str, what: str) -> Any:
    for key in keys:
        value = parameters.get(key)
        if value is not None:
            return value
    raise _BadParameters(f"{tool} needs {keys[0]} ({what}); got {sorted(parameters)}")


def _path(parameters: dict[str, Any], tool: str) -> str:
    value = _first(parameters, _PATH_KEYS, tool, "the file's path")
    if not isinstance(value, str):
        raise _BadParameters(f"{tool}: the file's path must be a string")
    return value


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


# The tool call being invoked, per task (several invokes of one chat run at once), so the
# workspace host can match it with the approval given to that call.
_CALL_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("call_id", default=None)


def _canonical(params: dict[str, Any]) -> str:
    return json.dumps(params, ensure_ascii=False, sort_keys=True, default=str)


def _paths_of(params: dict[str, Any]) -> list[str]:
    """Every path a tool's parameters name: the known keys, and lists under them."""
    found: list[str] = []
    for key in (*_PATH_KEYS, *_MORE_PATH_KEYS):
        value = params.get(key)
        values = value if isinstance(value, list) else [value]
        found.extend(v for v in values if isinstance(v, str) and v.strip())
    return found


class IdeTools:
    """Implements :class:`~lingma_mcp.lingma.toolhost.IdeToolHandler` for one chat."""

    def __init__(self, host: WorkspaceHost) -> None:
        self.host = host
        self._tools: dict[str, Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]] = {
            "read_file": self._read_file,
            "create_file_with_text": self._create,
            "replace_text_by_path": self._replace,
            "delete_file_by_path": self._delete,
            "save_file": self._save,
            "get_problems": self._get_problems,
            "run_in_terminal": self._run,
            "get_terminal_output": self._terminal_output,
        }

    async def invoke(
        self, name: str, parameters: dict[str, Any], tool_call_id: str = ""
    ) -> ToolOutcome:
        tool = self._tools.get(name)
        if tool is None:
            return ToolOutcome(False, {}, UNSUPPORTED)
        token = _CALL_ID.set(tool_call_id or None)
        try:
            result = await tool(parameters if isinstance(parameters, dict) else {})
        except (WorkspaceError, _BadParameters) as exc:
            return ToolOutcome(False, {}, str(exc))
        except Exception as exc:  # a bug here must not leave Lingma waiting
            log.exception("hosted tool %s failed", name)
            return ToolOutcome(False, {}, f"{name} failed inside lingma-mcp: {exc}")
        finally:
            _CALL_ID.reset(token)
        return ToolOutcome(True, result, None)

    async def confirm(self, tool_name: str, parameters: dict[str, Any], tool_call_id: str) -> bool:
        """Decide a PENDING tool call: Lingma's own tools (``edit_file``...) and hosted ones.

        Every path-like parameter is a target of the one confinement decision (a target
        outside the workspace is refused unasked); the approval covers this tool call with
        exactly these parameters, so the ``tool/invoke`` that may follow with the same
        content is not asked again and a different payload is.
        """
        action = TOOL_CLASSES.get(tool_name) or classify_tool(tool_name)
        params = parameters if isinstance(parameters, dict) else {}
        text = next((params[k] for k in _TEXT_KEYS if isinstance(params.get(k), str)), None)
        preview = None
        command = None
        if action == "run":
            command = next(
                (params[k] for k in ("command", "cmd") if isinstance(params.get(k), str)), None
            )
            targets: list[str] = []
            content = f"command: {command.strip()}\nfolder: {self.host.root}" if command else None
        else:
            targets = _paths_of(params)
            content = text if text is not None else _canonical(params)
        if action == "write" and text is not None:
            preview = text
        elif action != "read":
            preview = "input: " + _canonical(params)
        return await self.host.authorize(
            action,
            tool_name,
            targets,
            preview,
            command=command,
            call_id=tool_call_id,
            content=content,
        )

    # -- the tools ---------------------------------------------------------------------

    async def _read_file(self, p: dict[str, Any]) -> dict[str, Any]:
        raw = _path(p, "read_file")
        text = await self.host.read_file(raw, tool="read_file")
        return {"path": raw, "content": text.with_note(), "truncated": text.truncated}

    async def _write(self, p: dict[str, Any], tool: str) -> dict[str, Any]:
        raw = _path(p, tool)
        text = _first(p, _TEXT_KEYS, tool, "the whole new content")
        if not isinstance(text, str):
            raise _BadParameters(f"{tool}: text must be a string")
        await self.host.write_text(raw, text, tool=tool, call_id=_CALL_ID.get())
        return {"path": raw, "message": f"{raw} written"}

    async def _create(self, p: dict[str, Any]) -> dict[str, Any]:
        return await self._write(p, "create_file_with_text")

    async def _replace(self, p: dict[str, Any]) -> dict[str, Any]:
        return await self._write(p, "replace_text_by_path")

    async def _delete(self, p: dict[str, Any]) -> dict[str, Any]:
        raw = _path(p, "delete_file_by_path")
        await self.host.delete(raw, tool="delete_file_by_path", call_id=_CALL_ID.get())
        return {"path": raw, "message": f"{raw} deleted"}

    async def _save(self, p: dict[str, Any]) -> dict[str, Any]:
        raw = _path(p, "save_file")
        return {"path": raw, "message": await self.host.save(raw)}

    async def _get_problems(self, p: dict[str, Any]) -> dict[str, Any]:
        paths = p.get("filePaths", p.get("file_paths"))
        if paths is None:
            paths = [_path(p, "get_problems")]
        if isinstance(paths, str):
            paths = [paths]
        if not isinstance(paths, list) or not all(isinstance(x, str) for x in paths):
            raise _BadParameters("get_problems needs filePaths, a list of file paths")
        return {"problems": await self.host.problems(paths, tool="get_problems")}

    async def _run(self, p: dict[str, Any]) -> dict[str, Any]:
        command = _first(p, ("command", "cmd"), "run_in_terminal", "the command line")
        if not isinstance(command, str):
            raise _BadParameters("run_in_terminal: command must be a string")
        background = _flag(p.get("isBackground", p.get("is_background", False)))
        terminal_id = await self.host.create_terminal(
            command, background=background, tool="run_in_terminal", call_id=_CALL_ID.get()
        )
        if background:
            return {"terminalId": terminal_id, "exitCode": None, "output": "", "isRunning": True}
        out = await self.host.terminal_output(terminal_id)
        output = out.output
        if out.timed_out:
            output += (
                f"\n[lingma-mcp: the command ran past the time limit of "
                f"{self.host.command_timeout:g} s and was killed]"
            )
        elif out.signal:
            output += f"\n[lingma-mcp: the command was killed by {out.signal}]"
        return {
            "terminalId": terminal_id,
            "exitCode": out.exit_code,
            "output": output,
            "truncated": out.truncated,
        }

    async def _terminal_output(self, p: dict[str, Any]) -> dict[str, Any]:
        terminal_id = _first(
            p, ("terminalId", "terminal_id", "id"), "get_terminal_output", "the terminal id"
        )
        out = await self.host.terminal_output(str(terminal_id))
        return {
            "terminalId": str(terminal_id),
            "output": out.output,
            "isRunning": out.running,
            "exitCode": out.exit_code,
            "truncated": out.truncated,
        }

"""What the real ``qoderclicn`` 1.1.52 sends about its own tools, as plain values. No I/O.

Every shape and text here was recorded from the real CLI run offline with
``--fake-responses`` (``docs/cli-observed.md``): the ``tool_call`` that announces a tool,
the ``session/request_permission`` that asks for it, its options (fixed ids, chosen by
kind), the ``tool_call_update`` that ends it, and the words of its results and errors.
The simulator's tools (:mod:`lingma_mcp.sim.acp.local_tools`) build their messages here
only, so a test of this module pins the wire the CLI speaks.
"""

from __future__ import annotations

import json
import os
import shlex
import uuid
from typing import Any

TOOL_NAMES = ("Read", "Edit", "Write", "Bash")

EDIT_OPTIONS: tuple[dict[str, str], ...] = (
    {"optionId": "proceed_always", "name": "Allow for this session", "kind": "allow_always"},
    {"optionId": "proceed_once", "name": "Allow", "kind": "allow_once"},
    {"optionId": "cancel", "name": "Reject", "kind": "reject_once"},
)

REJECTED = (
    "The user doesn't want to proceed with this tool use. The tool use was rejected (eg. if "
    "it was a file edit, the new_string was NOT written to the file). Do not repeat this "
    "call; take a different approach, or if you cannot proceed without it, tell the user "
    "what you were trying to do and why you need it."
)
DONT_ASK = (
    'Error: This action needs approval, and the "Don\'t ask" permission mode does not '
    "prompt. Switch modes to approve it."
)
NOT_READ = "Error: File has not been read yet. Read it first before writing to it."
CHANGED_SINCE_READ = (
    "Error: File has been modified since read, either by the user or by a linter. Read it "
    "again before attempting to write it."
)
NO_OUTPUT = "(Bash completed with no output)"
MODEL_TIMEOUT = "The model service did not respond in time. Please try again."
REQUEST_FAILED = "The request could not be completed. Please try again."

# Commands the CLI runs without asking. Its own list (read from its bundle) is longer and
# checks each command's flags; this is the part a test meets. Anything else, a
# redirection or a substitution asks first.
READ_ONLY_COMMANDS = frozenset(
    {
        "echo", "printf", "pwd", "whoami", "uname", "id", "groups", "arch", "date",
        "hostname", "uptime", "basename", "dirname", "which", "type", "seq", "ls", "cat",
        "head", "tail", "wc", "stat", "file", "du", "cut", "diff", "realpath", "readlink",
        "grep", "rg",
    }
)  # fmt: skip
READ_ONLY_GIT = frozenset({"status", "log", "show", "diff", "branch", "rev-parse", "ls-files"})
_SEPARATORS = frozenset({"&&", "||", ";", "|", "&"})


def new_call_id() -> str:
    """A tool call id as the CLI makes them (``toolu_<uuid>``)."""
    return f"toolu_{uuid.uuid4()}"


def fenced(text: str) -> str:
    return f"```\n{text}\n```"


def text_content(text: str) -> list[dict[str, Any]]:
    return [{"type": "content", "content": {"type": "text", "text": text}}]


def _meta(name: str) -> dict[str, Any]:
    return {"qoder": {"toolName": name}}


# -- announcing a tool: the ``tool_call`` update ------------------------------------------


def tool_call(call_id: str, name: str, args: dict[str, Any]) -> dict[str, Any]:
    """The ``tool_call`` update (status pending) the CLI sends before anything else."""
    path = args.get("file_path")
    update: dict[str, Any] = {
        "sessionUpdate": "tool_call",
        "toolCallId": call_id,
        "status": "pending",
    }
    if name == "Bash":
        command = str(args.get("command", ""))
        terminal = [{"type": "terminal", "terminalId": call_id}]
        update.update(title=command, content=terminal, kind="execute", rawInput=args)
        update["_meta"] = {**_meta(name), "terminal_info": {"terminal_id": call_id}}
        return update
    if name == "Edit":
        diff = {
            "type": "diff",
            "path": path,
            "oldText": args.get("old_string", ""),
            "newText": args.get("new_string", ""),
        }
        update.update(title=f"Edit {path}", content=[diff], kind="edit")
    elif name == "Write":
        diff = {"type": "diff", "path": path, "oldText": None, "newText": args.get("content", "")}
        update.update(title=f"Write {path}", content=[diff], kind="edit")
    elif name == "Read":
        update.update(title=f"Read {path}", content=text_content(json.dumps(args, indent=2)))
        update["kind"] = "read"
    else:
        update.update(title=name, content=text_content(json.dumps(args, indent=2)), kind="other")
        update.update(rawInput=args, _meta=_meta(name))
        return update
    update.update(rawInput=args, locations=[{"path": path}], _meta=_meta(name))
    return update


# -- asking: the permission request's tool call and options -------------------------------


def file_permission(
    call_id: str, name: str, args: dict[str, Any], path: str, old: str | None, new: str
) -> dict[str, Any]:
    """The ``toolCall`` of an Edit or Write permission: the whole file before and after.

    The title names the file by its base name, whatever the tool (a Write is "Edit x").
    """
    diff = {
        "type": "diff",
        "path": path,
        "oldText": old,
        "newText": new,
        "_meta": {"kind": "add" if old is None else "modify"},
    }
    return {
        "toolCallId": call_id,
        "status": "pending",
        "title": f"Edit {os.path.basename(path)}",
        "content": [diff],
        "kind": "edit",
        "rawInput": args,
        "_meta": _meta(name),
    }


def read_permission(call_id: str, args: dict[str, Any], shown: str) -> dict[str, Any]:
    """The ``toolCall`` of a Read outside the working folder (inside, a Read never asks)."""
    return {
        "toolCallId": call_id,
        "status": "pending",
        "title": f"Read {args.get('file_path')}",
        "content": text_content(f"Read file: {shown}"),
        "kind": "read",
        "rawInput": args,
        "_meta": _meta("Read"),
    }


def bash_permission(call_id: str, args: dict[str, Any]) -> dict[str, Any]:
    command = str(args.get("command", ""))
    return {
        "toolCallId": call_id,
        "status": "pending",
        "title": command,
        "content": text_content(command),
        "kind": "execute",
        "rawInput": args,
        "_meta": _meta("Bash"),
    }


def bash_options(command: str) -> list[dict[str, str]]:
    """A Bash permission's options; the first names every program of the command."""
    names = ", ".join(command_names(command)) or command
    return [
        {
            "optionId": "proceed_always_and_save",
            "name": f'Always allow "{names}"',
            "kind": "allow_always",
        },
        dict(EDIT_OPTIONS[1]),
        dict(EDIT_OPTIONS[2]),
    ]


# -- results: the closing ``tool_call_update`` --------------------------------------------


def completed(call_id: str, text: str, *, fence: bool = False) -> dict[str, Any]:
    return {
        "sessionUpdate": "tool_call_update",
        "toolCallId": call_id,
        "status": "completed",
        "content": text_content(fenced(text) if fence else text),
        "rawOutput": text,
    }


def failed(call_id: str, text: str) -> dict[str, Any]:
    """A failed tool: the text fenced in the content, plain in ``rawOutput``."""
    return {
        "sessionUpdate": "tool_call_update",
        "toolCallId": call_id,
        "status": "failed",
        "content": text_content(fenced(text)),
        "rawOutput": text,
    }


def terminal_output(call_id: str, data: str) -> dict[str, Any]:
    return {
        "sessionUpdate": "tool_call_update",
        "toolCallId": call_id,
        "_meta": {"terminal_output": {"terminal_id": call_id, "data": data}},
    }


def terminal_exit(call_id: str, data: str, exit_code: int) -> dict[str, Any]:
    """A command that succeeded: content names the terminal (one the client never made)."""
    return {
        "sessionUpdate": "tool_call_update",
        "toolCallId": call_id,
        "status": "completed",
        "content": [{"type": "terminal", "terminalId": call_id}],
        "rawOutput": data,
        "_meta": {
            "terminal_exit": {"terminal_id": call_id, "exit_code": exit_code, "signal": None}
        },
    }


def numbered(text: str, offset: int = 1, limit: int | None = None) -> str:
    """A file as the Read tool shows it: ``N<TAB>line``, the last (empty) line included."""
    lines = text.split("\n")
    start = max(offset, 1) - 1
    chosen = lines[start : start + limit if limit else None]
    return "\n".join(f"{start + i + 1}\t{line}" for i, line in enumerate(chosen))


def read_kept(shown: str, text: str, start: int, lines: int) -> dict[str, Any]:
    """The structured output the CLI keeps for a Read (what ``session/load`` replays)."""
    return {
        "type": "text",
        "file": {
            "filePath": shown,
            "content": text,
            "numLines": lines,
            "startLine": start,
            "totalLines": text.count("\n") + 1,
        },
    }


def bash_kept(stdout: str, stderr: str, code: int) -> dict[str, Any]:
    """The structured output the CLI keeps for a command."""
    return {
        "kind": "completed",
        "stdout": stdout,
        "stderr": stderr,
        "exitCode": code,
        "signal": None,
        "interrupted": False,
        "isImage": False,
        "noOutputExpected": False,
    }


def edited(path: str, count: int, new_text: str) -> str:
    return (
        f"Successfully modified file: {path} ({count} replacements). "
        f"Here is the updated code:\n{new_text}"
    )


def written(path: str, existed: bool) -> str:
    if existed:
        return f"The file {path} has been updated successfully."
    return f"File created successfully at: {path}"


def no_occurrence(path: str) -> str:
    return (
        f"Error: Failed to edit, 0 occurrences found for old_string in {path}. Ensure you're "
        "not escaping content incorrectly and check whitespace, indentation, and context. Use "
        "Read tool to verify."
    )


def many_occurrences(path: str, count: int) -> str:
    return (
        f"Error: Failed to edit, Expected 1 occurrence but found {count} for old_string in "
        f"file: {path}. If you intended to replace multiple occurrences, set "
        "'allow_multiple' to true."
    )


def missing_file(cwd: str) -> str:
    return f"Error: File does not exist. Note: your current working directory is {cwd}."


def is_directory(path: str) -> str:
    return f"Error: EISDIR: illegal operation on a directory, read '{path}'"


def unknown_tool(name: str) -> str:
    return f'Error: Tool "{name}" not found.'


def exit_failure(code: int, output: str) -> str:
    return f"Exit code {code}\n{output}" if output else f"Exit code {code}"


# -- commands -----------------------------------------------------------------------------


def _words(command: str) -> list[str] | None:
    """Shell words with separators split off; None when the shell syntax is beyond us."""
    try:
        lexer = shlex.shlex(command, posix=True, punctuation_chars=";&|<>()")
        lexer.whitespace_split = True
        return list(lexer)
    except ValueError:
        return None


def command_names(command: str) -> list[str]:
    """The programs a command line runs, in order, each once: ``touch a && ls | wc``
    gives ``touch, ls, wc`` (the words of the CLI's "Always allow" option)."""
    words = _words(command) or command.split()
    names: list[str] = []
    expect = True
    for word in words:
        if word in _SEPARATORS:
            expect = True
            continue
        if expect and word not in names and not set(word) <= set("<>()"):
            names.append(word)
        expect = False
    return names


def read_only(command: str) -> bool:
    """Whether the CLI runs ``command`` without asking: only read-only programs, no
    redirection, substitution or subshell."""
    words = _words(command)
    if not words or any(ch in command for ch in "`$"):
        return False
    if any(word and set(word) <= set("<>()") for word in words):
        return False
    current: list[str] = []
    for word in [*words, ";"]:
        if word in _SEPARATORS:
            if current and not _read_only_program(current):
                return False
            current = []
        else:
            current.append(word)
    return True


def _read_only_program(words: list[str]) -> bool:
    if words[0] == "git":
        return len(words) > 1 and words[1] in READ_ONLY_GIT
    return words[0] in READ_ONLY_COMMANDS

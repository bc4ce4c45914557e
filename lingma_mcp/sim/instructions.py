"""The instruction language that scripts the simulator's agent mode. Pure functions.

In agent mode, prompt lines that start with ``@`` are instructions; the simulator carries
them out in order, as Lingma would call IDE tools, and reports each outcome in the answer.
Other lines are ordinary prompt text. See :data:`HELP` (``lingma-sim --help-agent``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

HELP = """\
Agent mode instructions (lingma-sim): in an agent-mode chat/ask (mode "agent" or
sessionType "developer"), each line of questionText that starts with @ is an instruction,
carried out in order; other lines are ordinary text. Without any instruction the
simulator reads README.md once, as before.

  @read PATH                 tool/invoke read_file {file_path}
  @create PATH TEXT          tool/invoke create_file_with_text {filePath, text}
  @replace PATH TEXT         tool/invoke replace_text_by_path {filePath, text} (whole text)
  @delete PATH               tool/invoke delete_file_by_path {filePath}
  @save PATH                 tool/invoke save_file {file_path}
  @problems PATH [PATH...]   tool/invoke get_problems {filePaths}
  @run COMMAND               tool/invoke run_in_terminal {command, isBackground: false}
  @run& COMMAND              run_in_terminal with isBackground: true, then
                             get_terminal_output {terminalId} with the returned terminalId
  @output [TERMINAL_ID]      get_terminal_output again (default: the last background one)
  @confirm COMMAND           a tool Lingma runs itself (run_in_terminal {command,
                             isBackground}) announced by tool/call/sync PENDING; waits for
                             tool/call/approve {sessionId, requestId, toolCallId,
                             approval}: true -> RUNNING, FINISHED; false -> CANCELLED
  @edit PATH TEXT            an edit Lingma makes itself: tool/call/sync PENDING for
                             edit_file {file_path, content: TEXT (the whole new text)};
                             on approval true the simulator writes the file itself (no
                             tool/invoke, as the binary), then RUNNING, FINISHED with
                             results [{fileId, message}]; false -> CANCELLED, no write
  @pending NAME {JSON}       the same PENDING round trip for any tool name and parameters
                             (edit_file with a path and content/text/code_edit writes too)
  @tool NAME {JSON}          tool/invoke NAME with these parameters, sent verbatim
  @async on|off|absent       the async field of later tool/invokes: true (expect an empty
                             ack, then tool/invokeResult), false, or left out
                             (default: LINGMA_SIM_TOOL_ASYNC)
  @spell content|text        later create/replace send the text as content (or text)
  @spell file_path|filePath  later tools name every single path with this key
  @spell exact               back to the spellings of PROTOCOL.md section 5

PATH is a word, or a JSON string in double quotes when it holds spaces. A relative
PATH is joined to the chat's workspace (extra.workspacePath) without normalising, so
"@create ../x" sends "<workspace>/../x"; an absolute or ~ path is sent as written.
TEXT runs to the end of the line; \\n, \\t and \\\\ stand for a newline, a tab and a
backslash. Every tool call is announced in the answer by a toolCall card and framed by
tool/call/sync INIT, RUNNING, FINISHED or ERROR; the answer then gets one line per
outcome, for example:
  create_file_with_text a.txt: ok
  read_file /etc/passwd: failed: <errorMessage>
  run_in_terminal ls: exit 0: <first line of output>
  confirm rm -rf build: approved | denied | no answer within 30 s
  edit a.txt: approved, wrote 12 characters to /project/a.txt
Commands that change files (sed -i, touch, rm, a generator) go through the client's
terminal as @run COMMAND: run_in_terminal {command} carries the command verbatim.
A line that is not a valid instruction is reported as "@...: not understood: <why>".
A client that does not answer a tool/invoke or a PENDING call within
LINGMA_SIM_TOOL_TIMEOUT seconds (default 30) gets a failure in its place.
"""

VERBS = (
    "read",
    "create",
    "replace",
    "delete",
    "save",
    "problems",
    "run",
    "run&",
    "output",
    "confirm",
    "edit",
    "pending",
    "tool",
    "async",
    "spell",
)
ASYNC_FORMS = ("on", "off", "absent")
SPELLINGS = ("content", "text", "file_path", "filePath", "exact")


@dataclass(frozen=True)
class Instruction:
    """One ``@`` line. ``verb`` is ``"invalid"`` for a line that could not be read."""

    verb: str
    source: str
    paths: tuple[str, ...] = ()
    text: str = ""  # file text, command, setting, terminal id, or why a line is invalid
    name: str = ""  # the tool name of @tool and @pending
    parameters: dict[str, Any] = field(default_factory=dict)


def parse(question: str) -> list[Instruction]:
    """The instructions in a prompt, in order (an empty list when there are none)."""
    out = []
    for line in question.splitlines():
        stripped = line.strip()
        if stripped.startswith("@") and len(stripped) > 1:
            out.append(parse_line(stripped))
    return out


def parse_line(line: str) -> Instruction:
    """Read one ``@verb ...`` line; never raises (a bad line becomes ``invalid``)."""
    verb, _, rest = line[1:].partition(" ")
    rest = rest.strip()
    try:
        return _parse(verb, rest, line)
    except ValueError as exc:
        return Instruction("invalid", line, text=str(exc))


def _parse(verb: str, rest: str, line: str) -> Instruction:
    if verb not in VERBS:
        raise ValueError(f"unknown instruction @{verb}; known: @{', @'.join(VERBS)}")
    if verb in ("read", "delete", "save"):
        path, tail = _path(rest)
        if tail:
            raise ValueError(f"@{verb} takes one PATH, got more: {tail!r}")
        return Instruction(verb, line, paths=(path,))
    if verb in ("create", "replace", "edit"):
        path, tail = _path(rest)
        return Instruction(verb, line, paths=(path,), text=unescape(tail))
    if verb == "problems":
        paths = []
        while rest:
            path, rest = _path(rest)
            paths.append(path)
        if not paths:
            raise ValueError("@problems needs at least one PATH")
        return Instruction(verb, line, paths=tuple(paths))
    if verb in ("run", "run&", "confirm"):
        if not rest:
            raise ValueError(f"@{verb} needs a COMMAND")
        return Instruction(verb, line, text=rest)
    if verb == "output":
        return Instruction(verb, line, text=rest)
    if verb in ("tool", "pending"):
        name, _, raw = rest.partition(" ")
        if not name:
            raise ValueError(f"@{verb} needs a NAME and a JSON object")
        try:
            parameters = json.loads(raw) if raw.strip() else {}
        except ValueError as exc:
            raise ValueError(f"@{verb} {name}: parameters are not JSON ({exc})") from None
        if not isinstance(parameters, dict):
            raise ValueError(f"@{verb} {name}: parameters must be a JSON object")
        return Instruction(verb, line, name=name, parameters=parameters)
    choices = ASYNC_FORMS if verb == "async" else SPELLINGS
    if rest not in choices:
        raise ValueError(f"@{verb} takes one of {', '.join(choices)}, got {rest!r}")
    return Instruction(verb, line, text=rest)


def _path(rest: str) -> tuple[str, str]:
    """The leading PATH of ``rest`` and what follows it."""
    if not rest:
        raise ValueError("a PATH is missing")
    if rest.startswith('"'):
        try:
            path, end = json.JSONDecoder().raw_decode(rest)
        except ValueError as exc:
            raise ValueError(f"a quoted PATH is not a JSON string ({exc})") from None
        if not isinstance(path, str):
            raise ValueError("a quoted PATH must be a JSON string")
        return path, rest[end:].lstrip()
    path, _, tail = rest.partition(" ")
    return path, tail.lstrip()


_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\"}


def unescape(text: str) -> str:
    """``\\n``, ``\\t`` and ``\\\\`` to a newline, a tab and a backslash; the rest as is."""
    out: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text) and text[index + 1] in _ESCAPES:
            out.append(_ESCAPES[text[index + 1]])
            index += 2
            continue
        out.append(char)
        index += 1
    return "".join(out)


def resolve(path: str, workspace: str) -> str:
    """The path sent to the client: joined to the workspace if relative, never normalised."""
    if os.path.isabs(path) or path.startswith("~"):
        return path
    return os.path.join(workspace, path)


@dataclass
class Spelling:
    """How later tool calls are written: the async form and the parameter names."""

    use_async: bool | None = False  # None: the async field is left out
    text_key: str = "text"
    path_key: str | None = None  # None: each tool's own spelling (PROTOCOL.md section 5)

    def apply(self, instruction: Instruction) -> None:
        """Change the spelling as an ``@async`` or ``@spell`` instruction says."""
        value = instruction.text
        if instruction.verb == "async":
            self.use_async = {"on": True, "off": False, "absent": None}[value]
        elif value in ("content", "text"):
            self.text_key = value
        elif value in ("file_path", "filePath"):
            self.path_key = value
        else:
            self.text_key, self.path_key = "text", None


def tool_call(
    instruction: Instruction, spelling: Spelling, workspace: str, terminal: str | None = None
) -> tuple[str, dict[str, Any]]:
    """The tool name and parameters an instruction sends with ``tool/invoke``.

    Args:
        terminal: the last background terminalId, for ``@output`` without an id.
    """
    verb = instruction.verb
    paths = [resolve(p, workspace) for p in instruction.paths]
    if verb == "tool":
        return instruction.name, dict(instruction.parameters)
    if verb == "problems":
        return "get_problems", {"filePaths": paths}
    if verb in ("run", "run&"):
        return "run_in_terminal", {"command": instruction.text, "isBackground": verb == "run&"}
    if verb == "output":
        return "get_terminal_output", {"terminalId": instruction.text or terminal or ""}
    name, key = {
        "read": ("read_file", "file_path"),
        "save": ("save_file", "file_path"),
        "create": ("create_file_with_text", "filePath"),
        "replace": ("replace_text_by_path", "filePath"),
        "delete": ("delete_file_by_path", "filePath"),
    }[verb]
    parameters: dict[str, Any] = {spelling.path_key or key: paths[0]}
    if verb in ("create", "replace"):
        parameters[spelling.text_key] = instruction.text
    return name, parameters


def label(instruction: Instruction) -> str:
    """How an outcome line names its instruction: the tool and what it acted on."""
    verb = instruction.verb
    if verb in ("run", "run&"):
        return f"run_in_terminal{'&' if verb == 'run&' else ''} {instruction.text}"
    if verb == "confirm":
        return f"confirm {instruction.text}"
    if verb == "edit":
        return f"edit {' '.join(instruction.paths)}"
    if verb in ("tool", "pending"):
        return f"{verb} {instruction.name}"
    if verb == "output":
        return f"get_terminal_output {instruction.text}".rstrip()
    names = {
        "read": "read_file",
        "save": "save_file",
        "create": "create_file_with_text",
        "replace": "replace_text_by_path",
        "delete": "delete_file_by_path",
        "problems": "get_problems",
    }
    return f"{names[verb]} {' '.join(instruction.paths)}"


LINE_LIMIT = 200


def describe(instruction: Instruction, outcome: dict[str, Any]) -> str:
    """One readable line for a tool's outcome, e.g. ``run_in_terminal ls: exit 0: a.txt``."""
    head = label(instruction)
    if outcome.get("success") is not True:
        return f"{head}: failed: {_one_line(outcome.get('errorMessage')) or 'no errorMessage'}"
    result = outcome.get("result")
    result = result if isinstance(result, dict) else {}
    verb = instruction.verb
    if verb == "read":
        return _with(f"{head}: ok", result.get("content"))
    if verb == "problems":
        problems = result.get("problems")
        problems = problems if isinstance(problems, list) else []
        first = json.dumps(problems[0], ensure_ascii=False) if problems else ""
        return _with(f"{head}: {len(problems)} problems", first)
    if verb == "run&":
        return f"{head}: started terminal {result.get('terminalId')}"
    if verb in ("run", "output"):
        return _with(f"{head}: {_terminal_state(result)}", result.get("output"))
    if verb == "tool":
        return _with(f"{head}: ok", json.dumps(result, ensure_ascii=False) if result else "")
    return f"{head}: ok"


def _terminal_state(result: dict[str, Any]) -> str:
    for key in ("isRunning", "running"):
        if result.get(key) is True:
            return "running"
    code = result.get("exitCode")
    return f"exit {code}" if code is not None else "no exit code"


def _with(head: str, detail: Any) -> str:
    text = _one_line(detail)
    return f"{head}: {text}" if text else head


def _one_line(value: Any) -> str:
    """The first non-empty line of a value, cut to :data:`LINE_LIMIT` characters."""
    if value is None:
        return ""
    for line in str(value).splitlines():
        if line.strip():
            return line.strip()[:LINE_LIMIT]
    return ""

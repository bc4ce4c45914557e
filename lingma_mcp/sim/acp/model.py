"""The simulated agent's "model": what it says and which tools it calls, turn by turn. Pure.

Two sources, one shape (:class:`Response`: text chunks, tool calls, token usage):

- a script in the real CLI's ``--fake-responses`` format (JSONL, one line per model call,
  Gemini-style chunks), so one file drives both ``qoderclicn --acp --fake-responses FILE``
  and the simulator. As in the CLI, each session reads the script from its first line,
  text parts become ``agent_message_chunk`` one chunk each, ``thought`` parts are
  dropped, and a turn's token usage is the last chunk's ``usageMetadata``;
- the prompt's ``@`` instructions (``lingma-sim acp --help``): one tool call per model
  call, then an answer that says what the tools returned and what was attached.

A tool call is ``(name, args)`` exactly as in a ``functionCall`` line:
``Read {file_path}``, ``Edit {file_path, old_string, new_string}``, ``Write {file_path,
content}``, ``Bash {command}``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any


class ScriptError(ValueError):
    """A script line the simulator cannot read (the message names the line)."""


@dataclass(frozen=True)
class ToolCall:
    name: str
    args: dict[str, Any]


@dataclass(frozen=True)
class Usage:
    input_tokens: int
    output_tokens: int


@dataclass(frozen=True)
class Response:
    """One model call's outcome. ``control`` is set for the simulator's own ``@wait``,
    ``@refuse`` and ``@error`` (with ``text`` as the error's words)."""

    chunks: tuple[str, ...] = ()
    calls: tuple[ToolCall, ...] = ()
    usage: Usage | None = None
    control: str | None = None
    text: str = ""


@dataclass(frozen=True)
class ToolResult:
    """What a tool gave back, as the model sees it next turn: a line for the answer."""

    name: str
    ok: bool
    note: str


# -- the --fake-responses script ----------------------------------------------------------


def parse_script(text: str) -> list[Response]:
    """The responses of a ``--fake-responses`` file, one per non-empty line.

    Raises:
        ScriptError: a line is not JSON or not shaped like the CLI's lines.
    """
    responses = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            responses.append(_response(json.loads(line)))
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise ScriptError(f"script line {number}: {exc}") from None
    return responses


def _response(line: Any) -> Response:
    if not isinstance(line, dict) or not isinstance(line.get("response"), list):
        raise ScriptError('expected {"method": "generateContentStream", "response": [chunk...]}')
    chunks: list[str] = []
    calls: list[ToolCall] = []
    usage: Usage | None = None
    for chunk in line["response"]:
        for candidate in chunk.get("candidates") or []:
            for part in (candidate.get("content") or {}).get("parts") or []:
                if isinstance(part.get("functionCall"), dict):
                    call = part["functionCall"]
                    calls.append(ToolCall(str(call["name"]), dict(call.get("args") or {})))
                elif isinstance(part.get("text"), str) and not part.get("thought"):
                    chunks.append(part["text"])
        meta = chunk.get("usageMetadata")
        if isinstance(meta, dict):
            usage = Usage(
                int(meta.get("promptTokenCount") or 0), int(meta.get("candidatesTokenCount") or 0)
            )
    return Response(tuple(c for c in chunks if c), tuple(calls), usage)


class ScriptModel:
    """A session's reading of a script: the next line each call, None once it runs out."""

    def __init__(self, responses: list[Response]) -> None:
        self._responses = responses
        self._next = 0

    def next(self, results: list[ToolResult]) -> Response | None:
        if self._next >= len(self._responses):
            return None
        self._next += 1
        return self._responses[self._next - 1]


# -- the @ instructions -------------------------------------------------------------------

CONTROLS = ("wait", "refuse", "error")


@dataclass(frozen=True)
class Instruction:
    """One ``@`` line: a tool call, a control (wait, refuse, error) or a line not understood."""

    source: str
    call: ToolCall | None = None
    control: str | None = None
    text: str = ""


def parse_instructions(prompt: str) -> tuple[list[Instruction], str]:
    """The ``@`` lines of a prompt, and the rest of it as one line of chat."""
    lines = [line.strip() for line in prompt.splitlines() if line.strip()]
    chat = " ".join(line for line in lines if not line.startswith("@"))
    return [_instruction(line) for line in lines if line.startswith("@")], chat


def _instruction(line: str) -> Instruction:
    verb, _, rest = line[1:].partition(" ")
    rest = rest.strip()
    try:
        if verb in CONTROLS:
            return Instruction(line, control=verb, text=rest)
        if verb == "create":
            path, text = _word(rest)
            args = {"file_path": path, "content": _unescape(text)}
            return Instruction(line, ToolCall("Write", args))
        if verb == "read":
            return Instruction(line, ToolCall("Read", {"file_path": _word(rest)[0]}))
        if verb == "run":
            if not rest:
                raise ValueError("@run needs a COMMAND")
            return Instruction(line, ToolCall("Bash", {"command": rest}))
        if verb == "edit":
            path, tail = _word(rest)
            old, tail = _word(tail)
            new, _ = _word(tail)
            args = {"file_path": path, "old_string": _unescape(old), "new_string": _unescape(new)}
            return Instruction(line, ToolCall("Edit", args))
        if verb == "call":
            name, _, raw = rest.partition(" ")
            args = json.loads(raw) if raw.strip() else {}
            if not name or not isinstance(args, dict):
                raise ValueError("@call needs a NAME and a JSON object of arguments")
            return Instruction(line, ToolCall(name, args))
    except ValueError as exc:
        return Instruction(line, text=f"not understood: {exc}")
    return Instruction(line, text=f"unknown instruction @{verb}")


def _word(rest: str) -> tuple[str, str]:
    """The leading word (or JSON string, for one with spaces) and what follows it."""
    if not rest:
        raise ValueError("a word is missing")
    if rest.startswith('"'):
        value, end = json.JSONDecoder().raw_decode(rest)
        if not isinstance(value, str):
            raise ValueError("a quoted word must be a JSON string")
        return value, rest[end:].lstrip()
    word, _, tail = rest.partition(" ")
    return word, tail.lstrip()


def _unescape(text: str) -> str:
    return text.replace("\\n", "\n").replace("\\t", "\t")


def estimate_tokens(text: str) -> int:
    """A deterministic stand-in for a tokenizer: one token per four characters."""
    return math.ceil(len(text) / 4)


@dataclass
class InstructionModel:
    """The prompt's instructions played as model calls, then the answer."""

    instructions: list[Instruction]
    chat: str
    prompt_text: str
    earlier: str | None = None  # the previous prompt of the conversation
    attached: list[str] = field(default_factory=list)
    chunk: int = 8
    _index: int = field(default=0, init=False)
    _notes: list[str] = field(default_factory=list, init=False)
    _done: bool = field(default=False, init=False)

    def next(self, results: list[ToolResult]) -> Response | None:
        self._notes += [result.note for result in results]
        while self._index < len(self.instructions):
            instruction = self.instructions[self._index]
            self._index += 1
            if instruction.call is not None:
                return Response(calls=(instruction.call,))
            if instruction.control is not None:
                return Response(control=instruction.control, text=instruction.text)
            self._notes.append(f"{instruction.source}: {instruction.text}.")
        if self._done:
            return None
        self._done = True
        answer = self.answer()
        usage = Usage(estimate_tokens(self.prompt_text), estimate_tokens(answer))
        pieces = tuple(answer[i : i + self.chunk] for i in range(0, len(answer), self.chunk))
        return Response(pieces, usage=usage)

    def answer(self) -> str:
        parts = []
        if self.earlier:
            parts.append(f"Earlier you said: {self.earlier}.")
        parts.append(f"Answer to: {self.chat}" if self.chat else "Done.")
        if self.attached:
            parts.append("Attached: " + "; ".join(self.attached) + ".")
        return " ".join(parts + self._notes)

    @property
    def plan(self) -> list[str]:
        """Plan entries: one per instruction, then the answer."""
        return [i.source.split(" ", 2)[0] + " " + _target(i) for i in self.instructions] + [
            "Answer"
        ]


def _target(instruction: Instruction) -> str:
    call = instruction.call
    if call is None:
        return instruction.text[:40] if instruction.control else ""
    return str(call.args.get("file_path") or call.args.get("command") or "")[:60]

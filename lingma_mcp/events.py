"""Typed events of one chat, the same whichever backend (IDE binary or CLI) produced them.

Each backend's chat stream yields these in arrival order. They are small frozen records so
a consumer can keep them without worrying that a later event changes an earlier one.

They live in this leaf module, below both backends and the contract (:mod:`.backend`
re-exports them), because the lowest parts of each backend produce them: the IDE side's
stream router and the CLI side's update mapper import nothing else of the contract.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class TextDelta:
    """New answer text (``chat/answer``). With ``overwrite`` it replaces the text so far."""

    text: str
    overwrite: bool = False


@dataclass(frozen=True, slots=True)
class Thinking:
    """Reasoning text (``chat/think``); ``step`` is ``start`` or ``done`` when Lingma says."""

    text: str
    step: str | None = None


@dataclass(frozen=True, slots=True)
class Step:
    """A progress step of the answer (``chat/process_step_callback``)."""

    step: str
    description: str = ""
    status: str = ""  # doing | done | error | manual_confirm
    message: str = ""


# Statuses after which a tool call changes nothing more: ACP's and the plugin dialect's.
_ENDED = frozenset(
    {"completed", "failed", "finished", "error", "cancelled", "canceled", "request_finished"}
)


@dataclass(frozen=True, slots=True)
class ToolCall:
    """What is known of one tool call, merged from every event that named it."""

    id: str
    name: str = "tool"
    status: str = ""
    input: Any = field(default_factory=dict)
    result: Any = None
    error: str | None = None
    # The agent's own name for the tool where it gives one apart from a title (the CLI's
    # ``_meta.qoder.toolName``: Edit, Write, Bash); the change record attributes by it.
    tool_name: str = ""

    @property
    def ended(self) -> bool:
        """The call has run its course (done, failed or stopped), on either backend."""
        return self.status.lower() in _ENDED

    def label(self) -> str:
        """Who made a change, as the change record names it: ``Edit``, ``Bash: <command>``,
        or the tool's name."""
        name = self.tool_name or self.name
        command = self.input.get("command") if isinstance(self.input, dict) else None
        if isinstance(command, str) and command.strip():
            return f"{name}: {' '.join(command.split())}"
        return name


@dataclass(frozen=True, slots=True)
class ToolUpdate:
    """A tool call was first seen or changed; ``tool`` is its merged state now."""

    tool: ToolCall


@dataclass(frozen=True, slots=True)
class Usage:
    """What one answer cost, as far as Lingma said; None wherever it did not.

    A field is None, never 0, when unknown: the CLI reports zeros when it does not count
    (without ``QODERCN_EXPOSE_TOKEN_USAGE=1``), and a host budgeting agents must not read
    that as free.
    """

    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    model: str | None = None  # the model that served, as Lingma names it
    credits: float | None = None


@dataclass(frozen=True, slots=True)
class Finish:
    """The chat ended (``chat/finish``)."""

    reason: str
    status_code: int | None
    session_id: str | None
    full_answer: str | None = None
    message: str = ""
    usage: Usage | None = None  # where the backend's end of the answer carries it


ChatEvent = TextDelta | Thinking | Step | ToolUpdate | Finish


@dataclass
class ChatResult:
    """Everything a finished chat produced, whichever backend served it."""

    answer: str
    session_id: str | None  # the one to continue the conversation with
    request_id: str
    finish_reason: str | None
    status_code: int | None
    tool_events: list[ToolCall] = field(default_factory=list)
    thinking: str = ""
    first_token_ms: int | None = None
    total_ms: int | None = None
    finish_message: str = ""
    title: str | None = None  # the conversation's title, if Lingma named it
    # None: no session was asked for. True only where Lingma confirmed the conversation
    # asked for went on; False: it started a new one (the earlier context is lost).
    continued: bool | None = None
    usage: Usage | None = None  # None where the backend did not say

"""``session/update`` notifications and ``stopReason`` as the shared chat events.

Pure functions and one small per-prompt state holder; no I/O. The mapping:

- ``agent_message_chunk`` (text) → :class:`TextDelta`
- ``agent_thought_chunk`` (text) → :class:`Thinking`
- ``tool_call`` / ``tool_call_update`` → :class:`ToolUpdate` with the merged :class:`ToolCall`
  (name: title, else kind; status: ACP's ``pending``/``in_progress``/``completed``/
  ``failed`` as sent; input: ``rawInput``; result: ``rawOutput`` or the text content)
- ``plan`` → one :class:`Step` per entry that is new or changed since the last plan
  (status ``pending`` → "", ``in_progress`` → ``doing``, ``completed`` → ``done``)
- anything else (user echo, commands, modes, usage...) → nothing

``stopReason`` → ``Finish.reason`` (the IDE backend's vocabulary where it has a word):
``end_turn`` → ``success``; ``cancelled`` → ``cancelled``; ``max_tokens`` and
``max_turn_requests`` keep their names (the answer is cut, not failed: status 200);
``refusal`` → ``error`` with a message saying the agent refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from acp.schema import (
    AgentMessageChunk,
    AgentPlanUpdate,
    AgentThoughtChunk,
    ToolCallProgress,
    ToolCallStart,
)

from lingma_mcp.events import ChatEvent, Finish, Step, TextDelta, Thinking, ToolCall, ToolUpdate

_PLAN_STATUS = {"pending": "", "in_progress": "doing", "completed": "done"}


def finish_for(stop_reason: str, session_id: str, answer: str) -> Finish:
    """The :class:`Finish` event for a prompt that ended with ``stop_reason``."""
    if stop_reason == "end_turn":
        return Finish("success", 200, session_id, answer)
    if stop_reason == "cancelled":
        return Finish("cancelled", 200, session_id, answer)
    if stop_reason == "refusal":
        return Finish(
            "error", None, session_id, answer, message="the Lingma CLI refused to answer this"
        )
    return Finish(stop_reason, 200, session_id, answer)


def _content_text(content: Any) -> str | None:
    """Text of one content block (or of a list of tool-call content items)."""
    if content is None:
        return None
    if isinstance(content, list):
        parts = [t for t in (_content_text(item) for item in content) if t]
        return "\n".join(parts) if parts else None
    text = getattr(content, "text", None)
    if isinstance(text, str):
        return text
    inner = getattr(content, "content", None)  # a tool-call "content" item wraps a block
    if inner is not None and inner is not content:
        return _content_text(inner)
    return None


def _tool_name(meta: Any) -> str:
    """The CLI's own name for a tool (``_meta.qoder.toolName``: Edit, Write, Bash)."""
    qoder = meta.get("qoder") if isinstance(meta, dict) else None
    name = qoder.get("toolName") if isinstance(qoder, dict) else None
    return name if isinstance(name, str) else ""


@dataclass
class UpdateMapper:
    """Turns one prompt's updates into events, remembering tool calls and the plan."""

    session_id: str
    tools: dict[str, ToolCall] = field(default_factory=dict)
    plan: dict[str, str] = field(default_factory=dict)
    answer: list[str] = field(default_factory=list)
    thinking: list[str] = field(default_factory=list)

    def map(self, update: Any) -> list[ChatEvent]:
        if isinstance(update, AgentMessageChunk):
            text = _content_text(update.content)
            if not text:
                return []
            self.answer.append(text)
            return [TextDelta(text)]
        if isinstance(update, AgentThoughtChunk):
            text = _content_text(update.content)
            if not text:
                return []
            self.thinking.append(text)
            return [Thinking(text)]
        if isinstance(update, (ToolCallStart, ToolCallProgress)):
            return [ToolUpdate(self._tool(update))]
        if isinstance(update, AgentPlanUpdate):
            return self._plan(update)
        return []

    def _tool(self, update: ToolCallStart | ToolCallProgress) -> ToolCall:
        known = self.tools.get(update.tool_call_id) or ToolCall(id=update.tool_call_id)
        changes: dict[str, Any] = {}
        name = update.title or update.kind
        if name and (known.name == "tool" or update.title):
            changes["name"] = name
        if update.status:
            changes["status"] = update.status
        if update.raw_input not in (None, {}, ""):
            changes["input"] = update.raw_input
        tool_name = _tool_name(update.field_meta)
        if tool_name:
            changes["tool_name"] = tool_name
        result = update.raw_output if update.raw_output is not None else None
        if result is None:
            result = _content_text(update.content)
        if result is not None:
            changes["result"] = result
        if update.status == "failed":
            changes["error"] = str(result) if result is not None else "the tool call failed"
        merged = replace(known, **changes)
        self.tools[update.tool_call_id] = merged
        return merged

    def _plan(self, update: AgentPlanUpdate) -> list[ChatEvent]:
        events: list[ChatEvent] = []
        for entry in update.entries:
            status = _PLAN_STATUS.get(entry.status, entry.status)
            if self.plan.get(entry.content) == status:
                continue
            self.plan[entry.content] = status
            events.append(Step(step=entry.content, status=status))
        return events

    def finish(self, stop_reason: str) -> Finish:
        return finish_for(stop_reason, self.session_id, "".join(self.answer))

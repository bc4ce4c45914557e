"""An open session of the simulated agent: what lives beside its stored conversation.

The conversation (:mod:`lingma_mcp.sim.acp.store`) is what survives a restart; this is
what the real CLI keeps only while a session is open: its permission mode, the files
its tools have read (an Edit needs an earlier Read of the same file, unchanged since),
its place in a ``--fake-responses`` script, and the prompt running in it. And how a
stored conversation is replayed by ``session/load``.
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass, field
from typing import Any

from lingma_mcp.sim.acp.model import ScriptModel
from lingma_mcp.sim.acp.session_config import Choice
from lingma_mcp.sim.acp.shapes import fenced, text_content
from lingma_mcp.sim.acp.store import Conversation


class TurnCancelled(Exception):
    """The prompt ends with ``stopReason: cancelled`` (a permission answered ``cancelled``)."""


@dataclass
class TurnState:
    """One running prompt: its cancel flag and whether a permission question is open."""

    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    no_question: asyncio.Event = field(default_factory=asyncio.Event)
    chunks: int = 0

    def __post_init__(self) -> None:
        self.no_question.set()


@dataclass
class SessionRuntime:
    conversation: Conversation
    choice: Choice
    script: ScriptModel | None = None
    turn: TurnState | None = None
    reads: dict[str, tuple[int, int]] = field(default_factory=dict)  # path -> (mtime, size)

    @property
    def session_id(self) -> str:
        return self.conversation.session_id

    @property
    def mode(self) -> str:
        return self.choice.mode

    @mode.setter
    def mode(self, value: str) -> None:
        self.choice.mode = value

    @property
    def cwd(self) -> str:
        return self.conversation.cwd

    def resolve(self, path: str) -> str:
        """A tool's path made absolute from the session's folder (not normalised further)."""
        return os.path.normpath(os.path.join(self.cwd, os.path.expanduser(path)))

    def inside(self, path: str) -> bool:
        root = os.path.realpath(self.cwd)
        full = os.path.realpath(path)
        return full == root or full.startswith(root.rstrip(os.sep) + os.sep)

    def shown(self, path: str) -> str:
        """A path as the CLI shows it: from the session's folder when inside it."""
        return os.path.relpath(path, self.cwd) if self.inside(path) else path

    def remember_read(self, path: str) -> None:
        self.reads[path] = _stamp(path)

    def read_state(self, path: str) -> str:
        """``unread``, ``changed`` (since the last Read or write) or ``fresh``."""
        seen = self.reads.get(path)
        if seen is None:
            return "unread"
        return "fresh" if _stamp(path) == seen else "changed"


def _stamp(path: str) -> tuple[int, int]:
    try:
        info = os.stat(path)
    except OSError:
        return (-1, -1)
    return (info.st_mtime_ns, info.st_size)


def replayed_tool(entry: dict[str, Any]) -> dict[str, Any]:
    """A stored tool call as ``session/load`` replays it: one ``tool_call``, finished,
    its output (structured where the CLI keeps it so) as JSON in the content, fenced for a
    Read as the CLI does."""
    output = entry.get("output", "")
    shown = output if isinstance(output, str) else json.dumps(output, indent=2)
    if entry.get("name") == "Read" and not isinstance(output, str):
        shown = fenced(shown)
    update: dict[str, Any] = {
        "sessionUpdate": "tool_call",
        "toolCallId": entry.get("id"),
        "status": entry.get("status", "completed"),
        "title": entry.get("title", ""),
        "content": text_content(shown),
        "kind": entry.get("toolKind", "other"),
        "rawInput": entry.get("input", {}),
        "rawOutput": output,
    }
    if entry.get("locations"):
        update["locations"] = entry["locations"]
    update["_meta"] = {"qoder": {"toolName": entry.get("name", "")}}
    return update


def replay(conversation: Conversation) -> list[dict[str, Any]]:
    """The updates ``session/load`` sends for a stored conversation, in order: messages
    with their ids, tool calls finished."""
    updates = []
    for entry in conversation.history:
        kind = entry.get("kind")
        if kind in ("user", "agent"):
            words = entry.get("expanded") or entry.get("text", "")
            chunk = "user_message_chunk" if kind == "user" else "agent_message_chunk"
            content = {"type": "text", "text": str(words)}
            updates.append(
                {"sessionUpdate": chunk, "content": content, "messageId": entry.get("id")}
            )
        elif kind == "tool":
            updates.append(replayed_tool(entry))
    return updates

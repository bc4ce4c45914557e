"""A loaded session's history: collected while ``session/load`` replays it, read as turns.

ACP has no call that returns a conversation's turns; ``session/load`` replays them as
``session/update`` notifications instead. ``qoderclicn`` 1.1.52 sends the first user
message *before* its reply to the load and the rest right after it (each tool call once,
with its final status; the agent's text as chunks with a ``messageId``; the next user
messages), then ``available_commands_update``. :class:`Replay` collects them and knows the
replay is over at that last update; :func:`turns_from` reads the collected updates as the
contract's turns. Pure apart from the event a reader awaits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from acp.schema import AgentMessageChunk, AvailableCommandsUpdate, UserMessageChunk

from lingma_mcp.backend import Turn


@dataclass
class Replay:
    """The updates of one ``session/load``, in arrival order."""

    updates: list[Any] = field(default_factory=list)
    # Set by the update the CLI sends once the history is out; an agent that never sends
    # it leaves the reader to its own bound.
    over: asyncio.Event = field(default_factory=asyncio.Event)

    def add(self, update: Any) -> None:
        if isinstance(update, AvailableCommandsUpdate):
            self.over.set()
            return
        self.updates.append(update)


def _text(chunk: UserMessageChunk | AgentMessageChunk) -> str:
    text = getattr(chunk.content, "text", None)
    return text if isinstance(text, str) else ""


@dataclass
class _Building:
    question: list[str]
    answer: list[str] = field(default_factory=list)
    message_id: str | None = None

    def turn(self) -> Turn:
        answer = "".join(self.answer)
        return Turn(
            question="\n".join(self.question) or None,
            answer=answer or None,
            request_id=self.message_id,
        )


def turns_from(updates: Iterable[Any]) -> tuple[Turn, ...]:
    """One turn per user message: its text, and the agent's text until the next one.

    A user message's chunks share a ``messageId`` (the CLI sends one chunk, its parts
    joined by newlines; an image is not replayed); that id is the turn's ``request_id``.
    Tool calls and anything else between are left out: a turn is a question and its
    answer. Agent text before any user message (none seen) would have no question, and
    makes a turn of its own.
    """
    turns: list[Turn] = []
    current: _Building | None = None
    for update in updates:
        if isinstance(update, UserMessageChunk):
            if (
                current is not None
                and update.message_id is not None
                and (current.message_id == update.message_id)
            ):
                current.question.append(_text(update))
                continue
            if current is not None:
                turns.append(current.turn())
            current = _Building([_text(update)], message_id=update.message_id)
        elif isinstance(update, AgentMessageChunk):
            if current is None:
                current = _Building([])
            current.answer.append(_text(update))
    if current is not None:
        turns.append(current.turn())
    return tuple(turns)

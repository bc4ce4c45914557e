"""One ``session/prompt`` of the simulated agent: plan, thought, instructions, answer.

Instructions (``@create``, ``@read``, ``@run``, ``@wait``, ``@refuse``; see
``lingma-sim acp --help``) each become a tool call: ``tool_call`` (pending), a
``session/request_permission`` offering allow_always / allow_once / reject_once under the
CLI's fixed ids, then the ``fs/*`` or ``terminal/*`` requests to the client, then
``tool_call_update`` completed or failed. Any other text is answered as a chat.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shlex
from dataclasses import dataclass, field
from typing import Any

from lingma_mcp.sim.acp.options import AcpSimOptions
from lingma_mcp.sim.acp.store import Conversation
from lingma_mcp.sim.acp.wire import PeerError, Wire

log = logging.getLogger("lingma_mcp.sim.acp")

PERMISSION_OPTIONS = [
    {"optionId": "proceed_always", "name": "Always allow", "kind": "allow_always"},
    {"optionId": "proceed_once", "name": "Allow once", "kind": "allow_once"},
    {"optionId": "cancel", "name": "Reject", "kind": "reject_once"},
]
_KINDS = {"@create": "edit", "@read": "read", "@run": "execute"}


class Cancelled(Exception):
    """The client sent session/cancel (or answered a permission request ``cancelled``)."""


@dataclass
class TurnState:
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    chunks: int = 0


def text(content: str) -> dict[str, Any]:
    return {"type": "text", "text": content}


class Turn:
    def __init__(
        self, wire: Wire, opts: AcpSimOptions, conversation: Conversation, state: TurnState
    ) -> None:
        self.wire = wire
        self.opts = opts
        self.conversation = conversation
        self.state = state
        self.sid = conversation.session_id
        self.calls = 0

    def update(self, update: dict[str, Any]) -> None:
        self.wire.notify("session/update", {"sessionId": self.sid, "update": update})

    async def run(self, prompt: str) -> tuple[str, str]:
        """Play the turn; (stopReason, answer)."""
        lines = [line.strip() for line in prompt.splitlines() if line.strip()]
        instructions = [line for line in lines if line.startswith("@")]
        chat = " ".join(line for line in lines if not line.startswith("@"))
        plan = [line.split()[0] + " " + " ".join(line.split()[1:2]) for line in instructions]
        plan = [p.strip() for p in plan] + ["Answer"]
        if self.opts.plan:
            self._plan(plan, 0)
        if self.opts.think:
            self.update(
                {
                    "sessionUpdate": "agent_thought_chunk",
                    "content": text(f"Thinking about: {prompt[:40]}"),
                }
            )
        notes: list[str] = []
        try:
            for index, line in enumerate(instructions):
                if line == "@refuse":
                    return "refusal", ""
                if line == "@wait":
                    await self.state.cancel.wait()
                    raise Cancelled
                notes.append(await self._instruction(line))
                if self.opts.plan:
                    self._plan(plan, index + 1)
            answer = self._answer(chat, notes)
            await self._stream(answer)
        except Cancelled:
            return "cancelled", ""
        if self.opts.plan:
            self._plan(plan, len(plan))
        return "end_turn", answer

    def _plan(self, entries: list[str], done: int) -> None:
        self.update(
            {
                "sessionUpdate": "plan",
                "entries": [
                    {
                        "content": entry,
                        "priority": "medium",
                        "status": "completed"
                        if i < done
                        else ("in_progress" if i == done else "pending"),
                    }
                    for i, entry in enumerate(entries)
                ],
            }
        )

    def _answer(self, chat: str, notes: list[str]) -> str:
        earlier = [t["text"] for t in self.conversation.history if t["role"] == "user"]
        parts = []
        if earlier:
            parts.append(f"Earlier you said: {earlier[-1]}.")
        parts.append(f"Answer to: {chat}" if chat else "Done.")
        parts += notes
        return " ".join(parts)

    async def _stream(self, answer: str) -> None:
        size = self.opts.chunk
        for start in range(0, len(answer), size):
            if self.state.cancel.is_set():
                raise Cancelled
            self.update(
                {
                    "sessionUpdate": "agent_message_chunk",
                    "content": text(answer[start : start + size]),
                }
            )
            self.state.chunks += 1
            if self.opts.crash_after is not None and self.state.chunks >= self.opts.crash_after:
                log.error("crashing on purpose after %d chunks", self.state.chunks)
                os._exit(3)
            if self.opts.delta_delay:
                await asyncio.sleep(self.opts.delta_delay)
            else:
                await asyncio.sleep(0)

    async def _instruction(self, line: str) -> str:
        verb, _, rest = line.partition(" ")
        kind = _KINDS.get(verb)
        if kind is None:
            return f"(unknown instruction {verb})"
        self.calls += 1
        call_id = f"call_{self.calls}"
        if verb == "@run":
            argv = shlex.split(rest)
            raw: dict[str, Any] = {"command": rest}
            title, locations = f"Run {rest}", []
        else:
            path, _, body = rest.partition(" ")
            raw = {"path": path, "content": body} if verb == "@create" else {"path": path}
            title = f"{'Write' if verb == '@create' else 'Read'} {path}"
            locations = [{"path": path}]
        tool = {
            "toolCallId": call_id,
            "title": title,
            "kind": kind,
            "locations": locations,
            "rawInput": raw,
        }
        self.update({"sessionUpdate": "tool_call", "status": "pending", **tool})
        if not await self._permitted(tool):
            self._tool_done(call_id, "failed", "the user rejected this")
            return f"{title}: rejected."
        self.update(
            {"sessionUpdate": "tool_call_update", "toolCallId": call_id, "status": "in_progress"}
        )
        try:
            if verb == "@create":
                await self.wire.request(
                    "fs/write_text_file", {"sessionId": self.sid, "path": path, "content": body}
                )
                result = f"wrote {path}"
            elif verb == "@read":
                reply = await self.wire.request(
                    "fs/read_text_file", {"sessionId": self.sid, "path": path}
                )
                result = f"{path} says: {reply['content']}"
            else:
                result = await self._run(argv)
        except PeerError as exc:
            self._tool_done(call_id, "failed", str(exc))
            return f"{title}: failed ({exc})."
        self._tool_done(call_id, "completed", result)
        return result + "."

    async def _permitted(self, tool: dict[str, Any]) -> bool:
        reply = await self.wire.request(
            "session/request_permission",
            {"sessionId": self.sid, "toolCall": tool, "options": PERMISSION_OPTIONS},
        )
        outcome = (reply or {}).get("outcome") or {}
        if outcome.get("outcome") == "cancelled":
            raise Cancelled
        chosen = next(
            (o for o in PERMISSION_OPTIONS if o["optionId"] == outcome.get("optionId")), None
        )
        return chosen is not None and chosen["kind"].startswith("allow")

    def _tool_done(self, call_id: str, status: str, result: str) -> None:
        self.update(
            {
                "sessionUpdate": "tool_call_update",
                "toolCallId": call_id,
                "status": status,
                "content": [{"type": "content", "content": text(result)}],
            }
        )

    async def _run(self, argv: list[str]) -> str:
        created = await self.wire.request(
            "terminal/create",
            {"sessionId": self.sid, "command": argv[0], "args": argv[1:], "outputByteLimit": 65536},
        )
        terminal = {"sessionId": self.sid, "terminalId": created["terminalId"]}
        try:
            waited = asyncio.ensure_future(self.wire.request("terminal/wait_for_exit", terminal))
            cancelled = asyncio.ensure_future(self.state.cancel.wait())
            await asyncio.wait({waited, cancelled}, return_when=asyncio.FIRST_COMPLETED)
            if not waited.done():
                waited.cancel()
                await self.wire.request("terminal/kill", terminal)
                raise Cancelled
            cancelled.cancel()
            output = await self.wire.request("terminal/output", terminal)
        finally:
            await self.wire.request("terminal/release", terminal)
        return f"exit {waited.result().get('exitCode')}, output: {output['output'].strip()}"

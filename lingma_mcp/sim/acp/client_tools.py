"""Tools the simulated agent hands to the client: ``fs/*`` and ``terminal/*`` requests.

ACP lets an agent do its file and terminal work through the client when the client
declares those capabilities, and other agents do; the real ``qoderclicn`` 1.1.52 never
does (it acts on the disk itself: :mod:`lingma_mcp.sim.acp.local_tools`). This delegating
style stays behind ``LINGMA_SIM_ACP_CLIENT_TOOLS=1`` so the client's handlers for those
requests keep a peer to test against. Its shapes are the simulator's own, unchanged:
``tool_call`` (pending), a permission for every call (read included), ``in_progress``,
the requests, then ``completed`` or ``failed``.
"""

from __future__ import annotations

import asyncio
import logging
import shlex
from typing import Any

from lingma_mcp.sim.acp.model import ToolCall, ToolResult
from lingma_mcp.sim.acp.session import SessionRuntime, TurnCancelled, TurnState
from lingma_mcp.sim.acp.wire import PeerError, Wire

log = logging.getLogger("lingma_mcp.sim.acp")

PERMISSION_OPTIONS = [
    {"optionId": "proceed_always", "name": "Always allow", "kind": "allow_always"},
    {"optionId": "proceed_once", "name": "Allow once", "kind": "allow_once"},
    {"optionId": "cancel", "name": "Reject", "kind": "reject_once"},
]
_KINDS = {"Write": "edit", "Edit": "edit", "Read": "read", "Bash": "execute"}
# Kills of cancelled commands still under way (held here so they are not collected).
_CLEANUPS: set[asyncio.Task[None]] = set()


def _text(content: str) -> dict[str, Any]:
    return {"type": "text", "text": content}


class ClientTools:
    """Runs one prompt's tool calls through the client."""

    def __init__(
        self,
        wire: Wire,
        runtime: SessionRuntime,
        turn: TurnState,
        records: list[dict[str, Any]],
    ) -> None:
        self.wire = wire
        self.sid = runtime.session_id
        self.turn = turn
        self.records = records
        self.calls = 0

    def update(self, update: dict[str, Any]) -> None:
        self.wire.notify("session/update", {"sessionId": self.sid, "update": update})

    async def run(self, calls: tuple[ToolCall, ...]) -> list[ToolResult]:
        return [await self._one(call) for call in calls]

    async def _one(self, call: ToolCall) -> ToolResult:
        kind = _KINDS.get(call.name)
        if kind is None:
            return ToolResult(call.name, False, f"(unknown tool {call.name})")
        self.calls += 1
        call_id = f"call_{self.calls}"
        args = call.args
        path = str(args.get("file_path", ""))
        if call.name == "Bash":
            command = str(args.get("command", ""))
            raw: dict[str, Any] = {"command": command}
            title, locations = f"Run {command}", []
        else:
            raw = {"path": path, **{k: v for k, v in args.items() if k != "file_path"}}
            title, locations = f"{call.name} {path}", [{"path": path}]
        tool = {
            "toolCallId": call_id,
            "title": title,
            "kind": kind,
            "locations": locations,
            "rawInput": raw,
        }
        self.update({"sessionUpdate": "tool_call", "status": "pending", **tool})
        if not await self._permitted(tool):
            self._done(call_id, title, call, "failed", "the user rejected this")
            return ToolResult(call.name, False, f"{title}: rejected.")
        self.update(
            {"sessionUpdate": "tool_call_update", "toolCallId": call_id, "status": "in_progress"}
        )
        try:
            result = await self._act(call, path)
        except PeerError as exc:
            self._done(call_id, title, call, "failed", str(exc))
            return ToolResult(call.name, False, f"{title}: failed ({exc}).")
        self._done(call_id, title, call, "completed", result)
        return ToolResult(call.name, True, result + ".")

    async def _act(self, call: ToolCall, path: str) -> str:
        args = call.args
        if call.name == "Write":
            await self._write(path, str(args.get("content", "")))
            return f"wrote {path}"
        if call.name == "Read":
            return f"{path} says: {await self._read(path)}"
        if call.name == "Edit":
            text = await self._read(path)
            old, new = str(args.get("old_string", "")), str(args.get("new_string", ""))
            if not old or old not in text:
                raise PeerError({"message": f"old_string not found in {path}"})
            await self._write(path, text.replace(old, new, 1))
            return f"edited {path}"
        return await self._run(shlex.split(str(args.get("command", ""))))

    async def _read(self, path: str) -> str:
        reply = await self.wire.request("fs/read_text_file", {"sessionId": self.sid, "path": path})
        return str(reply["content"])

    async def _write(self, path: str, content: str) -> None:
        await self.wire.request(
            "fs/write_text_file", {"sessionId": self.sid, "path": path, "content": content}
        )

    async def _permitted(self, tool: dict[str, Any]) -> bool:
        self.turn.no_question.clear()
        try:
            reply = await self.wire.request(
                "session/request_permission",
                {"sessionId": self.sid, "toolCall": tool, "options": PERMISSION_OPTIONS},
            )
        finally:
            self.turn.no_question.set()
        outcome = (reply or {}).get("outcome") or {}
        if outcome.get("outcome") == "cancelled":
            raise TurnCancelled
        chosen = next(
            (o for o in PERMISSION_OPTIONS if o["optionId"] == outcome.get("optionId")), None
        )
        return chosen is not None and chosen["kind"].startswith("allow")

    def _done(self, call_id: str, title: str, call: ToolCall, status: str, result: str) -> None:
        self.update(
            {
                "sessionUpdate": "tool_call_update",
                "toolCallId": call_id,
                "status": status,
                "content": [{"type": "content", "content": _text(result)}],
            }
        )
        self.records.append(
            {
                "kind": "tool",
                "id": call_id,
                "name": call.name,
                "title": title,
                "toolKind": _KINDS[call.name],
                "status": status,
                "input": call.args,
                "output": result,
            }
        )

    async def _run(self, argv: list[str]) -> str:
        created = await self.wire.request(
            "terminal/create",
            {"sessionId": self.sid, "command": argv[0], "args": argv[1:], "outputByteLimit": 65536},
        )
        terminal = {"sessionId": self.sid, "terminalId": created["terminalId"]}
        try:
            waited = await self.wire.request("terminal/wait_for_exit", terminal)
        except asyncio.CancelledError:
            # The prompt was cancelled: have the client kill it, without waiting on it.
            cleanup = asyncio.ensure_future(self._abandon(terminal))
            _CLEANUPS.add(cleanup)
            cleanup.add_done_callback(_CLEANUPS.discard)
            raise
        output = await self.wire.request("terminal/output", terminal)
        await self.wire.request("terminal/release", terminal)
        return f"exit {waited.get('exitCode')}, output: {output['output'].strip()}"

    async def _abandon(self, terminal: dict[str, Any]) -> None:
        try:
            await self.wire.request("terminal/kill", terminal)
            await self.wire.request("terminal/release", terminal)
        except PeerError as exc:
            log.info("the client failed to end a cancelled command: %s", exc)

"""Agent mode: carrying out a prompt's instructions as Lingma's tool calls.

Each instruction (:mod:`lingma_mcp.sim.instructions`) becomes, in the order a client
sees it: a toolCall card in the answer text, ``tool/call/sync`` INIT and RUNNING, the
``tool/invoke`` (answered by the client in the form ``@async`` chose), ``tool/call/sync``
FINISHED or ERROR, and a line in the answer that says what the client answered. A
``@confirm`` or ``@pending`` call is one Lingma runs itself: ``tool/call/sync`` PENDING,
then it waits for the client's ``tool/call/approve``; an ``@edit`` (``edit_file``) is then
written by the simulator itself, as the binary edits files without the IDE
(:mod:`lingma_mcp.sim.edits`). Once every instruction is done,
each tool call gets ``REQUEST_FINISHED``.

The order INIT -> RUNNING -> tool/invoke -> FINISHED is the one PROTOCOL.md section 9
gives for an imitation of the IDE (PENDING and the approval, when there is one, come
before RUNNING). Later events of a call carry only its tool call id and other field
spellings (``toolName``, ``input``), as the seed client saw, so a client must route
them by tool id.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from lingma_mcp.sim import edits, instructions, script, tools
from lingma_mcp.sim.instructions import Instruction, Spelling

if TYPE_CHECKING:
    from lingma_mcp.sim.chat import ChatRun

log = logging.getLogger("lingma_mcp.sim")

# What an agent-mode chat without instructions does, as it always has.
DEFAULT_SCRIPT = "@read README.md"
_SETTINGS = ("async", "spell")


class AgentRun:
    """Runs one chat's instructions; see the module docstring for the events."""

    def __init__(self, chat: ChatRun) -> None:
        self.chat = chat
        self.spec = chat.spec
        self.conn = chat.conn
        self.spelling = Spelling(use_async=chat.options.tool_async)
        self.timeout = chat.options.tool_timeout
        self._tool_ids: list[tuple[str, str]] = []  # (toolCallId, name) for REQUEST_FINISHED
        self._terminal: str | None = None  # the last background terminalId

    async def run(self, question: str) -> None:
        script_lines = instructions.parse(question) or instructions.parse(DEFAULT_SCRIPT)
        for instruction in script_lines:
            if instruction.verb == "invalid":
                await self.chat.say(f"\n{instruction.source}: not understood: {instruction.text}")
            elif instruction.verb in _SETTINGS:
                self.spelling.apply(instruction)
            elif instruction.verb in ("confirm", "pending", "edit"):
                await self._pending(instruction)
            else:
                await self._invoke(instruction)
        await self.chat.say("\n")
        for tool_id, name in self._tool_ids:
            await self._sync(
                tool_id,
                "REQUEST_FINISHED",
                requestId=self.spec.request_id,
                name=name,
                results=[],
            )

    # -- IDE tools ------------------------------------------------------------------------

    async def _invoke(self, instruction: Instruction) -> None:
        name, parameters = instructions.tool_call(
            instruction, self.spelling, self.spec.workspace, self._terminal
        )
        tool_id = self._new_tool(name)
        await self.chat.say(script.tool_card(name, tool_id))
        await self._sync(
            tool_id,
            "INIT",
            requestId=self.spec.request_id,
            name=name,
            parameters=parameters,
            results=[],
        )
        await self._sync(tool_id, "RUNNING", toolName=name, input=parameters, results=[])
        outcome = await tools.invoke(
            self.conn,
            self.chat.stopped,
            request_id=self.spec.request_id,
            tool_id=tool_id,
            name=name,
            parameters=parameters,
            use_async=self.spelling.use_async,
            timeout=self.timeout,
        )
        if outcome is None:
            raise tools.ChatStopped
        line = instructions.describe(instruction, outcome)
        failed = outcome.get("success") is not True
        await self._sync(
            tool_id,
            "ERROR" if failed else "FINISHED",
            name=name,
            parameters=parameters,
            results=[_result(parameters, line)],
            errorCode="TOOL_FAILED" if failed else None,
            errorMsg=outcome.get("errorMessage") if failed else None,
        )
        await self.chat.say(f"\n{line}")
        if instruction.verb == "run&" and not failed:
            await self._follow_background(instruction, outcome)

    async def _follow_background(self, instruction: Instruction, outcome: dict[str, Any]) -> None:
        result = outcome.get("result")
        terminal = result.get("terminalId") if isinstance(result, dict) else None
        if not isinstance(terminal, str) or not terminal:
            await self.chat.say(f"\n{instructions.label(instruction)}: no terminalId in the reply")
            return
        self._terminal = terminal
        await self._invoke(Instruction("output", "@output", text=terminal))

    # -- tools Lingma runs itself, after an approval -------------------------------------

    async def _pending(self, instruction: Instruction) -> None:
        if instruction.verb == "confirm":
            name = "run_in_terminal"
            parameters: dict[str, Any] = {"command": instruction.text, "isBackground": False}
        elif instruction.verb == "edit":
            name = "edit_file"
            path = instructions.resolve(instruction.paths[0], self.spec.workspace)
            parameters = {"file_path": path, "content": instruction.text}
        else:
            name, parameters = instruction.name, dict(instruction.parameters)
        tool_id = self._new_tool(name)
        head = instructions.label(instruction)
        decision: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        # Registered before PENDING goes out, so an approval cannot arrive too early.
        self.conn.approvals[tool_id] = (self.chat.session_id, self.spec.request_id, decision)
        try:
            await self.chat.say(script.tool_card(name, tool_id))
            await self._sync(
                tool_id,
                "PENDING",
                requestId=self.spec.request_id,
                name=name,
                parameters=parameters,
                results=[],
            )
            answer = await tools.until(decision, self.chat.stopped, self.timeout)
        finally:
            self.conn.approvals.pop(tool_id, None)
        if answer is tools.STOPPED:
            raise tools.ChatStopped
        self.conn.state.messages.write(
            "event", self.conn.id, event="tool_approval", toolCallId=tool_id, approval=answer
        )
        if answer is True:
            await self._sync(tool_id, "RUNNING", toolName=name, input=parameters, results=[])
            line = await self._run_itself(tool_id, name, parameters, f"{head}: approved")
        else:
            line = (
                f"{head}: denied"
                if answer is False
                else f"{head}: no answer within {self.timeout:g} s"
            )
            await self._sync(
                tool_id,
                "CANCELLED",
                name=name,
                parameters=parameters,
                results=[],
                errorMsg=None if answer is False else "no tool/call/approve arrived",
            )
        log.info("%s (%s)", line, tool_id)
        await self.chat.say(f"\n{line}")

    async def _run_itself(
        self, tool_id: str, name: str, parameters: dict[str, Any], line: str
    ) -> str:
        """Carry out an approved call as the binary would; its outcome line."""
        edit = edits.edit_of(name, parameters, self.spec.workspace)
        if edit is None:
            results = [{"message": f"{line}; Lingma ran it itself (simulated)"}]
            await self._sync(tool_id, "FINISHED", name=name, parameters=parameters, results=results)
            return line
        path, text = edit
        try:
            edits.write(path, text)
        except OSError as exc:
            failed = f"{line}, failed: {exc.strerror or exc}"
            await self._sync(
                tool_id,
                "ERROR",
                name=name,
                parameters=parameters,
                results=[],
                errorCode="TOOL_FAILED",
                errorMsg=failed,
            )
            return failed
        wrote = f"wrote {len(text)} characters"
        await self._sync(
            tool_id,
            "FINISHED",
            name=name,
            parameters=parameters,
            results=[{"fileId": path, "message": wrote}],
        )
        return f"{line}, {wrote} to {path}"

    # -- helpers --------------------------------------------------------------------------

    def _new_tool(self, name: str) -> str:
        tool_id = f"sim-tool-{self.spec.request_id}-{len(self._tool_ids) + 1}"
        self._tool_ids.append((tool_id, name))
        return tool_id

    async def _sync(self, tool_id: str, status: str, **fields: Any) -> None:
        params: dict[str, Any] = {
            "sessionId": self.chat.session_id,
            "projectPath": self.spec.workspace,
            "toolCallId": tool_id,
            "toolCallStatus": status,
            "errorCode": None,
            "errorMsg": None,
        }
        params.update(fields)
        await self.chat.event("tool/call/sync", params)


def _result(parameters: dict[str, Any], line: str) -> dict[str, Any]:
    """A ``results[]`` item: ``{fileId, message}`` for file tools (PROTOCOL.md section 9)."""
    path = parameters.get("filePath") or parameters.get("file_path")
    return {"fileId": path, "message": line} if isinstance(path, str) else {"message": line}

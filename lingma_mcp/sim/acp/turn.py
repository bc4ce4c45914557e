"""One ``session/prompt`` of the simulated agent: the model's calls and the tools between.

The loop is the real CLI's: ask the model; stream its text as ``agent_message_chunk``;
run the tool calls it made and ask it again with their results; stop at a response
without tool calls. The model is a ``--fake-responses`` script or the prompt's ``@``
instructions (:mod:`lingma_mcp.sim.acp.model`); the tools act on the disk
(:mod:`~lingma_mcp.sim.acp.local_tools`, as the CLI) or through the client
(:mod:`~lingma_mcp.sim.acp.client_tools`, ``LINGMA_SIM_ACP_CLIENT_TOOLS=1``). Scripted
turns send no plan and no thought, as the CLI with a script does; instruction turns
keep the simulator's plan and thought (``LINGMA_SIM_ACP_PLAN``, ``LINGMA_SIM_ACP_THINK``).

An error comes twice, as the CLI sends it: an ``agent_message_chunk`` "[Error] ..." and
then the JSON-RPC error (:class:`TurnFailed`) instead of a result.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

from lingma_mcp.sim.acp import shapes
from lingma_mcp.sim.acp.model import InstructionModel, Response, ToolCall, ToolResult, Usage
from lingma_mcp.sim.acp.options import AcpSimOptions
from lingma_mcp.sim.acp.session import SessionRuntime, TurnState
from lingma_mcp.sim.acp.wire import Wire

log = logging.getLogger("lingma_mcp.sim.acp")


class Model(Protocol):
    def next(self, results: list[ToolResult]) -> Response | None: ...


class Toolbox(Protocol):
    async def run(self, calls: tuple[ToolCall, ...]) -> list[ToolResult]: ...


class TurnFailed(Exception):
    """The prompt fails with JSON-RPC error 500 (its chunk was already sent)."""


@dataclass
class TurnOutcome:
    stop: str
    usage: Usage = field(default_factory=lambda: Usage(0, 0))
    records: list[dict[str, Any]] = field(default_factory=list)  # the agent's messages


def text(content: str) -> dict[str, Any]:
    return {"type": "text", "text": content}


class Turn:
    def __init__(
        self,
        wire: Wire,
        opts: AcpSimOptions,
        runtime: SessionRuntime,
        state: TurnState,
        model: Model,
        tools: Toolbox,
    ) -> None:
        self.wire = wire
        self.opts = opts
        self.runtime = runtime
        self.state = state
        self.model = model
        self.tools = tools

    def update(self, update: dict[str, Any]) -> None:
        self.wire.notify("session/update", {"sessionId": self.runtime.session_id, "update": update})

    def fail(self, message: str) -> TurnFailed:
        self.update({"sessionUpdate": "agent_message_chunk", "content": text(f"[Error] {message}")})
        return TurnFailed(message)

    async def run(self, prompt: str, outcome: TurnOutcome) -> None:
        """Play the turn into ``outcome`` (kept by the caller, so a cancelled turn's
        records survive). Raises :class:`TurnFailed` for an error."""
        planned = self.model.plan if isinstance(self.model, InstructionModel) else None
        if planned is not None and self.opts.plan:
            self._plan(planned, 0)
        if planned is not None and self.opts.think:
            self.update(
                {
                    "sessionUpdate": "agent_thought_chunk",
                    "content": text(f"Thinking about: {prompt[:40]}"),
                }
            )
        results: list[ToolResult] = []
        step = 0
        usage = Usage(0, 0)
        while True:
            response = self.model.next(results)
            if response is None:
                raise self.fail(shapes.MODEL_TIMEOUT)
            if response.control == "wait":
                await asyncio.Event().wait()  # until the prompt is cancelled
            if response.control == "refuse":
                outcome.stop = "refusal"
                return
            if response.control == "error":
                raise self.fail(response.text or shapes.REQUEST_FAILED)
            if response.usage is not None:
                usage = Usage(
                    usage.input_tokens + response.usage.input_tokens,
                    usage.output_tokens + response.usage.output_tokens,
                )
                outcome.usage = usage
            if response.chunks:
                await self._stream(response.chunks, outcome)
            if not response.calls:
                break
            results = await self.tools.run(response.calls)
            step += 1
            if planned is not None and self.opts.plan:
                self._plan(planned, step)
        if planned is not None and self.opts.plan:
            self._plan(planned, len(planned))
        outcome.stop = "end_turn"

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

    async def _stream(self, chunks: tuple[str, ...], outcome: TurnOutcome) -> None:
        message = {"kind": "agent", "id": str(uuid.uuid4()), "text": ""}
        outcome.records.append(message)
        for chunk in chunks:
            self.update({"sessionUpdate": "agent_message_chunk", "content": text(chunk)})
            message["text"] += chunk
            self.state.chunks += 1
            if self.opts.crash_after is not None and self.state.chunks >= self.opts.crash_after:
                log.error("crashing on purpose after %d chunks", self.state.chunks)
                os._exit(3)
            await asyncio.sleep(self.opts.delta_delay)

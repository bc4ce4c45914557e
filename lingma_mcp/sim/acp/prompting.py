"""``session/prompt``: from content blocks to a result, the turn played in between.

It reads the blocks as the CLI does (:mod:`~lingma_mcp.sim.acp.blocks`), picks the model
(the session's place in a script, or the prompt's instructions) and the tools (on the
disk, or through the client), plays the turn (:mod:`~lingma_mcp.sim.acp.turn`), stores
it for ``session/load``, and answers as the CLI does: a stop reason, the user message's
id for a prompt of text alone, and token usage that counts only when
``QODERCN_EXPOSE_TOKEN_USAGE=1`` is in the environment.

A ``session/cancel`` ends the prompt at once, as the CLI's does, even with a permission
question open (its late answer is then ignored); ``LINGMA_SIM_ACP_CANCEL_WAITS=1`` (and
the delegating style, as before) waits for the question's answer first.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable
from typing import Any

from lingma_mcp.sim.acp.blocks import read_prompt
from lingma_mcp.sim.acp.client_tools import ClientTools
from lingma_mcp.sim.acp.local_tools import LocalTools
from lingma_mcp.sim.acp.model import InstructionModel, Response, ScriptModel, parse_instructions
from lingma_mcp.sim.acp.options import AcpSimOptions
from lingma_mcp.sim.acp.session import SessionRuntime, TurnCancelled, TurnState
from lingma_mcp.sim.acp.store import ConversationStore
from lingma_mcp.sim.acp.turn import Model, Toolbox, Turn, TurnFailed, TurnOutcome, text
from lingma_mcp.sim.acp.wire import Wire

LINKED_FILE_LIMIT = 1024 * 1024


class Prompting:
    def __init__(
        self,
        wire: Wire,
        opts: AcpSimOptions,
        store: ConversationStore,
        script: list[Response] | None,
        on_mode: Callable[[SessionRuntime], None],
    ) -> None:
        self.wire = wire
        self.opts = opts
        self.store = store
        self.script = script
        self.on_mode = on_mode  # a tool switched the session's permission mode

    async def run(self, runtime: SessionRuntime, blocks: list[Any]) -> dict[str, Any]:
        """Play one prompt in ``runtime``'s session; its result.

        Raises:
            BlockRefused: a content block the CLI refuses (-32602).
            TurnFailed: the turn failed; its "[Error]" chunk was sent (error 500).
        """
        prompt = read_prompt(blocks, _read_linked)
        if prompt.image_error is not None:
            error = text(f"[Error] {prompt.image_error}")
            self.wire.notify(
                "session/update",
                {
                    "sessionId": runtime.session_id,
                    "update": {"sessionUpdate": "agent_message_chunk", "content": error},
                },
            )
            raise TurnFailed(prompt.image_error)
        state = runtime.turn = TurnState()
        outcome = TurnOutcome("end_turn")
        user = {"kind": "user", "id": str(uuid.uuid4()), "text": prompt.text}
        if prompt.expanded != prompt.text:
            user["expanded"] = prompt.expanded
        model: Model
        if self.script is not None:
            runtime.script = runtime.script or ScriptModel(self.script)
            model = runtime.script
        else:
            instructions, chat = parse_instructions(prompt.text)
            model = InstructionModel(
                instructions,
                chat,
                prompt.text,
                earlier=runtime.conversation.last_prompt(),
                attached=prompt.attached,
                chunk=self.opts.chunk,
            )
        tools: Toolbox
        if self.opts.client_tools:
            tools = ClientTools(self.wire, runtime, state, outcome.records)
        else:
            tools = LocalTools(self.wire, runtime, state, outcome.records, self.on_mode)
        turn = Turn(self.wire, self.opts, runtime, state, model, tools)
        try:
            outcome.stop = await self._play(turn, prompt.text, outcome, state)
        except TurnFailed as exc:
            # Kept with its error as the agent's message, as the CLI keeps a failed turn.
            error = {"kind": "agent", "id": str(uuid.uuid4()), "text": f"[Error] {exc}"}
            self.store.remember(runtime.conversation, [user, *outcome.records, error])
            raise
        finally:
            runtime.turn = None
        self.store.remember(runtime.conversation, [user, *outcome.records])
        # The CLI names the user's message in the result only for a prompt of text alone.
        message_id = None if prompt.attached else user["id"]
        return _result(outcome, message_id, runtime.choice.model, self.opts.expose_usage)

    async def _play(self, turn: Turn, prompt: str, outcome: TurnOutcome, state: TurnState) -> str:
        """Run the turn; its stop reason. A cancel ends it at once, as the CLI's does,
        unless a permission question is open and the switch (or the delegating style)
        says to wait for its answer."""
        task = asyncio.ensure_future(turn.run(prompt, outcome))
        cancelled = asyncio.ensure_future(state.cancel.wait())
        try:
            await asyncio.wait({task, cancelled}, return_when=asyncio.FIRST_COMPLETED)
            if not task.done():
                if self.opts.cancel_waits or self.opts.client_tools:
                    await state.no_question.wait()
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                return "cancelled"
            task.result()  # TurnFailed goes up as the error
            return outcome.stop
        except TurnCancelled:
            return "cancelled"
        finally:
            cancelled.cancel()
            if not task.done():
                task.cancel()


def _result(
    outcome: TurnOutcome, message_id: str | None, model: str, expose: bool
) -> dict[str, Any]:
    """The prompt result: usage counts only when QODERCN_EXPOSE_TOKEN_USAGE=1, as the CLI."""
    used_in = outcome.usage.input_tokens if expose else 0
    used_out = outcome.usage.output_tokens if expose else 0
    counts = {"input_tokens": used_in, "output_tokens": used_out}
    usage = {"inputTokens": used_in, "outputTokens": used_out, "totalTokens": used_in + used_out}
    quota = {"token_count": counts, "model_usage": [{"model": model, "token_count": counts}]}
    result: dict[str, Any] = {"stopReason": outcome.stop}
    if message_id is not None:
        result["userMessageId"] = message_id
    return {**result, "usage": usage, "_meta": {"quota": quota}}


def _read_linked(path: str) -> str | None:
    """A linked file's text, as the CLI reads it for a resource link; None if unreadable."""
    try:
        if os.path.getsize(path) > LINKED_FILE_LIMIT:
            return None
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return None

"""One chat from ``chat/ask`` to ``chat/finish``: the events, their order, and the faults.

The order a client sees (events interleave freely with other chats'), as Lingma 2.11.1
was recorded sending it (PROTOCOL.md section 9):
  process_step_callback step_start (done) -> process_step_callback step_end (done)
  -> [session/title/update {sessionId, sessionTitle}] -> [think start.. done]
  -> answer deltas -> [agent mode: the tool calls of :mod:`lingma_mcp.sim.agent_mode`, with
  more deltas] -> chat/finish.
Every one of them is a request with an id and counts against the connection's window.

The hot path is the delta loop: with ``LINGMA_SIM_DELTAS=20000`` and no delay it sends as
fast as the window and the socket allow, yielding to the event loop only every
``_YIELD_EVERY`` deltas (or when the window is full) so that replies are still read.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from dataclasses import dataclass
from json.encoder import encode_basestring as _json_str  # C speed, ensure_ascii=False
from typing import TYPE_CHECKING, Any

from lingma_mcp.sim import script
from lingma_mcp.sim.agent_mode import AgentRun
from lingma_mcp.sim.outbox import MALFORMED_FRAMES
from lingma_mcp.sim.state import noise
from lingma_mcp.sim.tools import ChatStopped

if TYPE_CHECKING:
    from lingma_mcp.sim.connection import Connection

log = logging.getLogger("lingma_mcp.sim")

CRASH_EXIT_CODE = 3
# How long a deliberate crash or drop waits for the client to read and answer what was sent.
SETTLE_TIMEOUT = 1.0
RATE_LIMIT_MESSAGE = "您今日的免费额度已用完 (daily quota exhausted): rate limited, try again later"
_YIELD_EVERY = 16


@dataclass(frozen=True)
class ChatSpec:
    """What ``chat/ask`` asked for, after validation."""

    request_id: str
    question: str
    model: str
    agent: bool
    chat_task: str
    session_hint: str | None
    is_reply: bool
    workspace: str
    attached: tuple[str, ...] = ()  # what came beside the question (context.py)


class ChatAbandoned(Exception):
    """The simulator dropped the connection on purpose: nothing more to send."""


class ChatRun:
    """Streams one answer over a connection; ``stop()`` ends it early."""

    def __init__(self, conn: Connection, spec: ChatSpec, project_uri: str) -> None:
        self.conn = conn
        self.spec = spec
        self.options = conn.options
        self.stopped = asyncio.Event()
        self._deltas_sent = 0
        self._parts: list[str] = []
        self.turn = conn.state.store.begin(
            spec.session_hint, spec.is_reply, project_uri, spec.question
        )
        self.session_id = self.turn.session_id

    def stop(self) -> None:
        self.stopped.set()

    async def say(self, text: str) -> None:
        """Stream ``text`` as answer deltas (the agent's cards and outcome lines)."""
        await self._stream(script.cut_deltas(text, self.options.chunk))

    async def run(self) -> None:
        try:
            await self._script()
        except ChatStopped:
            log.info("chat %s stopped by the client", self.spec.request_id)
            await self._finish("cancelled", 200)
        except ChatAbandoned:
            pass
        finally:
            self.conn.chats.pop(self.spec.request_id, None)

    async def _script(self) -> None:
        spec, options = self.spec, self.options
        if options.hang:
            log.warning("chat %s accepted; hanging (LINGMA_SIM_HANG)", spec.request_id)
            await self.stopped.wait()
            raise ChatStopped
        if options.rate_limit:
            await self._finish("error", 429, message=RATE_LIMIT_MESSAGE)
            return
        await self._step("step_start", "分析问题 Understanding the question")
        await self._step("step_end", "准备回答 Ready to answer")
        if self.turn.is_new:
            await self.event(
                "session/title/update",
                {"sessionId": self.session_id, "sessionTitle": self.turn.title},
            )
        if options.think or "thinking" in spec.model:
            await self._think()
        answer = script.compose_answer(
            spec.question, spec.model, self.turn.number, options.answer_size, spec.attached
        )
        await self._stream(self._plan(answer))
        if spec.agent:
            await AgentRun(self).run(spec.question)
        await self._finish("success", 200)

    def _plan(self, text: str) -> list[str]:
        if self.options.deltas:
            count = self.options.deltas
            if len(text) < count * self.options.chunk:
                text = script.pad(text, count * self.options.chunk)
            return script.cut_exactly(text, count)
        return script.cut_deltas(text, self.options.chunk)

    # -- the delta loop -------------------------------------------------------------------

    async def _stream(self, deltas: list[str]) -> None:
        conn, options = self.conn, self.options
        # A delta's params are formatted from a template: only the text and the timestamp
        # change, and json.dumps of a whole dict per delta would be most of the cost of a
        # 20,000-delta answer.
        head = (
            '{"requestId":'
            + _json_str(self.spec.request_id)
            + ',"sessionId":'
            + _json_str(self.session_id)
            + ',"text":'
        )
        for text in deltas:
            if self.stopped.is_set():
                raise ChatStopped
            await conn.wait_window()
            if options.stamp and text:
                text = f"⟨{time.monotonic_ns()}⟩"
            conn.send_json_params(
                "chat/answer",
                head
                + _json_str(text)
                + ',"overwrite":false,"isFiltered":false,"timestamp":'
                + str(int(time.time() * 1000))
                + ',"extra":{}}',
            )
            self._parts.append(text)
            self._deltas_sent += 1
            await self._after_delta()

    async def _after_delta(self) -> None:
        count, options = self._deltas_sent, self.options
        if options.malformed and count <= len(MALFORMED_FRAMES):
            self.conn.outbox.put(MALFORMED_FRAMES[count - 1])
        if options.crash_after is not None and count >= options.crash_after:
            await self._crash()
        if (
            options.drop_after is not None
            and count >= options.drop_after
            and not self.conn.state.dropped_once
        ):
            self.conn.state.dropped_once = True
            await self.conn.settle(SETTLE_TIMEOUT)
            log.warning(
                "dropping connection %d after %d deltas (LINGMA_SIM_DROP_AFTER)",
                self.conn.id,
                count,
            )
            self.conn.drop()
            raise ChatAbandoned
        if options.delta_delay > 0:
            try:
                await asyncio.wait_for(self.stopped.wait(), options.delta_delay)
            except asyncio.TimeoutError:
                pass
        elif count % _YIELD_EVERY == 0:
            await asyncio.sleep(0)

    async def _crash(self) -> None:
        await self.conn.settle(SETTLE_TIMEOUT)
        self.conn.state.store.flush()  # conversations finished before the crash survive it
        self.conn.state.messages.close()
        sys.stderr.write(
            f"lingma-sim: fatal: simulated crash after {self._deltas_sent} deltas "
            "(LINGMA_SIM_CRASH_AFTER)\n"
        )
        sys.stderr.flush()
        os._exit(CRASH_EXIT_CODE)

    # -- other events ---------------------------------------------------------------------

    async def event(self, method: str, params: dict[str, Any]) -> None:
        """Send one event of this chat, unless it was stopped."""
        if self.stopped.is_set():
            raise ChatStopped
        await self.conn.request(method, params)

    async def _step(self, step: str, description: str) -> None:
        await self.event(
            "chat/process_step_callback",
            {
                "requestId": self.spec.request_id,
                "sessionId": self.session_id,
                "step": step,
                "description": description,
                "status": "done",
                "result": None,
                "message": description,
            },
        )

    async def _think(self) -> None:
        common = {"requestId": self.spec.request_id, "sessionId": self.session_id}
        for text in ("先理解问题。", " Then answer it."):
            await self.event("chat/think", {**common, "text": text, "step": "start"})
        await self.event("chat/think", {**common, "text": "", "step": "done"})

    # -- the end --------------------------------------------------------------------------

    async def _finish(self, reason: str, status: int, message: str | None = None) -> None:
        answer = "".join(self._parts)
        params: dict[str, Any] = {
            "requestId": self.spec.request_id,
            "sessionId": self.session_id,
            "reason": reason,
            "statusCode": status,
            "fullAnswer": answer,
            "extra": {},
        }
        if message:
            params["errorMessage"] = message
            params["extra"] = {"errorCode": str(status), "errorMessage": message}
        await self.conn.request("chat/finish", params)
        store = self.conn.state.store
        if status == 200:
            store.record(
                self.session_id,
                self.spec.request_id,
                self.spec.chat_task,
                self.spec.question,
                answer,
            )
        elif self.turn.is_new:
            store.delete(self.session_id)  # a refused first turn leaves no empty conversation
        noise(
            f"[chat] finish requestId={self.spec.request_id} reason={reason} "
            f"status={status} deltas={self._deltas_sent}"
        )

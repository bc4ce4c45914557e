"""PromptStream: the events of one ``session/prompt``, as an async iterator."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, replace
from typing import Any, Protocol

from lingma_mcp.acp.handlers import SessionBinding
from lingma_mcp.acp.updates import UpdateMapper
from lingma_mcp.errors import LingmaError
from lingma_mcp.events import ChatEvent, Finish, ToolCall, Usage

log = logging.getLogger("lingma_mcp.acp.prompt")


@dataclass(frozen=True, slots=True)
class PromptEnd:
    """How a ``session/prompt`` ended: the stop reason and what the answer cost."""

    stop_reason: str
    usage: Usage | None = None


class Prompter(Protocol):
    """What a prompt needs of its connection (:class:`~lingma_mcp.acp.acp_client.AcpClient`)."""

    control_timeout: float

    async def send_prompt(self, session_id: str, blocks: list[Any]) -> PromptEnd:
        """``session/prompt`` with these content blocks, waiting for its end."""
        ...

    async def cancel(self, session_id: str) -> None: ...


class PromptStream:
    """The events of one ``session/prompt``, ending after :class:`Finish`.

    Iterating raises :class:`CliNotLoggedIn`, :class:`AcpRpcError` or
    :class:`LingmaConnectionLost` when the prompt fails. ``aclose()`` cancels a prompt
    still running (``session/cancel``) and waits for its end.
    """

    def __init__(self, client: Prompter, binding: SessionBinding) -> None:
        self._client = client
        self._binding = binding
        self.session_id = binding.session_id
        self._mapper = UpdateMapper(binding.session_id)
        # Unbounded on purpose: the agent cannot be paused for one prompt (every session
        # shares its pipe), and dropping an update would lose answer text. The consumer
        # (progress) coalesces, so the queue stays short in practice.
        self._queue: asyncio.Queue[ChatEvent | BaseException] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._done = False
        self.finish: Finish | None = None

    def _start(self, blocks: list[Any]) -> None:
        self._binding.sink = self._on_update
        self._task = asyncio.ensure_future(self._run(blocks))

    def _on_update(self, update: Any) -> None:
        for event in self._mapper.map(update):
            self._queue.put_nowait(event)

    async def _run(self, blocks: list[Any]) -> None:
        try:
            end = await self._client.send_prompt(self.session_id, blocks)
            finish = self._mapper.finish(end.stop_reason)
            self._queue.put_nowait(replace(finish, usage=end.usage))
        except Exception as exc:
            self._queue.put_nowait(exc)
        finally:
            binding = self._binding
            binding.sink = None
            binding.workspace = None
            binding.approvals = None

    @property
    def answer(self) -> str:
        """The answer text received so far."""
        return "".join(self._mapper.answer)

    @property
    def thinking(self) -> str:
        """The reasoning text received so far."""
        return "".join(self._mapper.thinking)

    @property
    def tools(self) -> list[ToolCall]:
        """Every tool call seen, in first-seen order."""
        return list(self._mapper.tools.values())

    @property
    def done(self) -> bool:
        """The prompt ended (finished or failed) and its end was read."""
        return self._done

    def __aiter__(self) -> PromptStream:
        return self

    async def __anext__(self) -> ChatEvent:
        if self._done:
            raise StopAsyncIteration
        item = await self._queue.get()
        if isinstance(item, BaseException):
            self._done = True
            raise item
        if isinstance(item, Finish):
            self._done = True
            self.finish = item
        return item

    async def cancel(self) -> None:
        """Ask the agent to stop this prompt; it then ends with ``cancelled``."""
        if self._task is not None and not self._task.done():
            await self._client.cancel(self.session_id)

    async def aclose(self) -> None:
        """Cancel the prompt if it still runs, and wait (bounded) for its end."""
        task = self._task
        if task is None or task.done():
            return
        with contextlib.suppress(LingmaError):
            await self.cancel()
        try:
            await asyncio.wait_for(asyncio.shield(task), self._client.control_timeout)
        except asyncio.TimeoutError:
            log.warning("session %s did not end its prompt after cancel", self.session_id)
            task.cancel()

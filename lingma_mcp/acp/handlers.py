"""The client side of ACP: what the agent may ask of us, routed per session.

The SDK calls these methods (its ``Client`` interface) for the agent's requests and
notifications. Each session has a :class:`SessionBinding`: its workspace root, the ports
of the prompt in progress (workspace host, approval gate) and where its updates go. A
request for a session with no port (chat-only) is refused; so is one for an unknown
session. Port failures become JSON-RPC errors carrying the port's readable message.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from acp import RequestError
from acp.schema import (
    AllowedOutcome,
    CreateTerminalResponse,
    DeniedOutcome,
    EnvVariable,
    PermissionOption,
    ReadTextFileResponse,
    RequestPermissionResponse,
    TerminalExitStatus,
    TerminalOutputResponse,
    ToolCallUpdate,
    WaitForTerminalExitResponse,
)

from lingma_mcp.acp.permissions import Judgement, choose_option, judge
from lingma_mcp.acp.ports import ApprovalPort, WorkspacePort
from lingma_mcp.acp.replay import Replay

log = logging.getLogger("lingma_mcp.acp.handlers")

UpdateSink = Callable[[Any], None]


@dataclass
class SessionBinding:
    """What one session's requests are served by. Ports change with each prompt."""

    session_id: str
    root: Path
    workspace: WorkspacePort | None = None
    approvals: ApprovalPort | None = None
    sink: UpdateSink | None = None  # the prompt in progress, if any
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    replay: Replay | None = None  # collects updates while a session/load runs
    terminals: set[str] = field(default_factory=set)  # started and not yet released


def _failure(exc: Exception) -> RequestError:
    """A port's exception as the JSON-RPC error the agent receives."""
    if isinstance(exc, RequestError):
        return exc
    message = str(exc) or type(exc).__name__
    if isinstance(exc, FileNotFoundError):
        return RequestError(-32002, message, {"path": exc.filename} if exc.filename else None)
    if isinstance(exc, (PermissionError, ValueError)):
        return RequestError(-32602, message)
    return RequestError(-32603, message)


def _signal_name(code: int | None) -> tuple[int | None, str | None]:
    """ACP wants a non-negative exit code, or the signal's name for a killed command."""
    if code is None or code >= 0:
        return code, None
    try:
        return None, signal.Signals(-code).name
    except ValueError:
        return None, f"signal {-code}"


class ClientHandlers:
    """The ACP ``Client`` interface, backed by the bindings of open sessions."""

    def __init__(self) -> None:
        self.sessions: dict[str, SessionBinding] = {}

    def bind(self, session_id: str, root: Path) -> SessionBinding:
        binding = self.sessions.get(session_id)
        if binding is None:
            binding = self.sessions[session_id] = SessionBinding(session_id, root)
        else:
            binding.root = root
        return binding

    def _binding(self, session_id: str) -> SessionBinding:
        binding = self.sessions.get(session_id)
        if binding is None:
            raise RequestError(-32602, f"unknown session {session_id}")
        return binding

    def _workspace(self, session_id: str) -> WorkspacePort:
        port = self._binding(session_id).workspace
        if port is None:
            raise RequestError(
                -32603, "file and terminal access is off: this ask runs in chat-only mode"
            )
        return port

    # -- notifications ---------------------------------------------------------------
    async def session_update(self, session_id: str, update: Any, **kwargs: Any) -> None:
        # No await before the hand-over: the SDK runs each notification as its own task,
        # and tasks start in arrival order, so updates reach the stream in order.
        binding = self.sessions.get(session_id)
        if binding is None:
            log.debug("update for unknown session %s dropped", session_id)
            return
        if binding.sink is not None:
            binding.sink(update)
        elif binding.replay is not None:
            binding.replay.add(update)
        else:
            log.debug("update for session %s outside any prompt dropped", session_id)

    # -- permission --------------------------------------------------------------------
    async def request_permission(
        self,
        session_id: str,
        tool_call: ToolCallUpdate,
        options: list[PermissionOption],
        **kwargs: Any,
    ) -> RequestPermissionResponse:
        """Answer through the workspace host's one confinement decision and gate.

        A prompt that has ended, been cancelled, or never had a gate (chat-only) gets
        ``cancelled`` or the reject option: the CLI acts itself after an allow, so an allow
        that arrived after its call ended would change files nobody is watching.
        """
        binding = self.sessions.get(session_id)
        if binding is None or binding.cancelled.is_set():
            return RequestPermissionResponse(outcome=DeniedOutcome(outcome="cancelled"))
        seen = judge(tool_call)
        gate = binding.approvals
        allow = False
        if gate is None:
            log.info("refusing %s %s: chat-only mode has no approvals", seen.action, seen.target)
        else:
            decision = await self._ask(binding, gate, seen, tool_call.tool_call_id)
            if decision is None or binding.approvals is not gate:
                # Cancelled while asked, or the prompt ended meanwhile: nothing may land.
                return RequestPermissionResponse(outcome=DeniedOutcome(outcome="cancelled"))
            allow = decision
        option = choose_option(options, allow)
        if option is None:
            return RequestPermissionResponse(outcome=DeniedOutcome(outcome="cancelled"))
        return RequestPermissionResponse(
            outcome=AllowedOutcome(outcome="selected", option_id=option)
        )

    @staticmethod
    async def _ask(
        binding: SessionBinding, gate: ApprovalPort, seen: Judgement, call_id: str
    ) -> bool | None:
        """The gate's decision, or None when the prompt is cancelled while it is asked."""
        decision = asyncio.ensure_future(
            gate.authorize(
                seen.action,
                seen.tool,
                list(seen.targets),
                seen.preview,
                command=seen.command,
                call_id=call_id,
                content=seen.content,
            )
        )
        cancelled = asyncio.ensure_future(binding.cancelled.wait())
        try:
            await asyncio.wait({decision, cancelled}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            cancelled.cancel()
        if not decision.done():
            decision.cancel()
            return None
        try:
            return bool(decision.result())
        except Exception as exc:
            log.warning("the approval gate failed (%s); refusing", exc)
            return False

    # -- files -------------------------------------------------------------------------
    async def read_text_file(
        self,
        session_id: str,
        path: str,
        line: int | None = None,
        limit: int | None = None,
        **kwargs: Any,
    ) -> ReadTextFileResponse:
        port = self._workspace(session_id)
        try:
            return ReadTextFileResponse(content=await port.read_text(path, line, limit))
        except Exception as exc:
            raise _failure(exc) from exc

    async def write_text_file(
        self, session_id: str, path: str, content: str, **kwargs: Any
    ) -> None:
        port = self._workspace(session_id)
        try:
            await port.write_text(path, content)
        except Exception as exc:
            raise _failure(exc) from exc

    # -- terminals ---------------------------------------------------------------------
    async def create_terminal(
        self,
        session_id: str,
        command: str,
        args: list[str] | None = None,
        env: list[EnvVariable] | None = None,
        cwd: str | None = None,
        output_byte_limit: int | None = None,
        **kwargs: Any,
    ) -> CreateTerminalResponse:
        port = self._workspace(session_id)
        variables = {item.name: item.value for item in env or []} or None
        try:
            terminal_id = await port.create_terminal(
                command, args, variables, cwd, output_byte_limit
            )
        except Exception as exc:
            raise _failure(exc) from exc
        self._binding(session_id).terminals.add(terminal_id)
        return CreateTerminalResponse(terminal_id=terminal_id)

    async def terminal_output(
        self, session_id: str, terminal_id: str, **kwargs: Any
    ) -> TerminalOutputResponse:
        port = self._workspace(session_id)
        try:
            out = await port.terminal_output(terminal_id)
        except Exception as exc:
            raise _failure(exc) from exc
        status = None
        if not out.running:
            code, sig = _signal_name(out.exit_code)
            status = TerminalExitStatus(exit_code=code, signal=sig)
        return TerminalOutputResponse(
            output=out.output, truncated=out.truncated, exit_status=status
        )

    async def wait_for_terminal_exit(
        self, session_id: str, terminal_id: str, **kwargs: Any
    ) -> WaitForTerminalExitResponse:
        port = self._workspace(session_id)
        try:
            code, sig = _signal_name(await port.wait_for_exit(terminal_id))
        except Exception as exc:
            raise _failure(exc) from exc
        return WaitForTerminalExitResponse(exit_code=code, signal=sig)

    async def kill_terminal(self, session_id: str, terminal_id: str, **kwargs: Any) -> None:
        port = self._workspace(session_id)
        try:
            await port.kill_terminal(terminal_id)
        except Exception as exc:
            raise _failure(exc) from exc

    async def release_terminal(self, session_id: str, terminal_id: str, **kwargs: Any) -> None:
        port = self._workspace(session_id)
        self._binding(session_id).terminals.discard(terminal_id)
        try:
            await port.release_terminal(terminal_id)
        except Exception as exc:
            raise _failure(exc) from exc

    @staticmethod
    async def kill_terminals(port: WorkspacePort, terminal_ids: set[str]) -> None:
        """Stop the commands a prompt started (on cancel or timeout)."""
        for terminal_id in terminal_ids:
            try:
                await port.kill_terminal(terminal_id)
            except Exception as exc:
                log.debug("could not kill terminal %s: %s", terminal_id, exc)

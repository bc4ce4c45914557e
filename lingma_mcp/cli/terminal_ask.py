"""``lingma-mcp ask``: one question from a terminal, the answer streamed to stdout.

The same :class:`~lingma_mcp.asking.bridge.Bridge` path the MCP tool takes, so the terminal
sees the same validation and the same error texts; status goes to stderr so stdout can be
piped.

Agent mode hosts the workspace here as the MCP face does: Lingma's file and command work
goes through the approval gate, whose questions are asked on the terminal (the question on
stderr, the answer typed on stdin). With no terminal to ask on (stdin is a pipe or a
file), agent mode is refused up front, unless ``--approval`` leaves nothing to ask.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TextIO

import anyio

from ..asking.arguments import validate
from ..asking.bridge import Bridge
from ..asking.error_texts import InvalidArgument
from ..config import Settings
from ..events import ChatEvent, Step, TextDelta, Thinking, ToolUpdate
from ..workspace.gate import APPROVE, APPROVE_ALL, DENY
from ..workspace.paths import check_workspace
from ..workspace.policy import ACTIONS, Policy
from ..workspace.workspace_errors import WorkspaceError

LineSource = Callable[[], Awaitable[str]]
"""Reads one line the person typed, stripped; ``""`` at the end of input."""

# What the person may type, after lower-casing and joining runs of blanks.
TYPED_ANSWERS = {
    "y": APPROVE,
    "yes": APPROVE,
    "approve": APPROVE,
    "a": APPROVE_ALL,
    "all": APPROVE_ALL,
    "approve all": APPROVE_ALL,
    "approve_all": APPROVE_ALL,
    "n": DENY,
    "no": DENY,
    "deny": DENY,
}
QUESTION = "Allow? [y]es, [a]ll of this kind for this question, [n]o (the default): "

NO_TERMINAL = (
    "agent mode asks you before Lingma changes files or runs commands, and stdin is not a "
    "terminal to ask on. Run it in a terminal, or decide up front with --approval "
    "(LINGMA_APPROVAL) so nothing is left to ask, e.g. --approval "
    "write=allow,delete=deny,run=deny."
)


class TerminalAsker:
    """The approval gate's asker on a terminal: ``await asker(request)`` prints
    ``request.message`` and the choices on ``err``, reads the typed answer, and returns
    ``approve``, ``approve_all`` or ``deny``.

    One question at a time (tool calls may ask together). An answer it cannot read is
    asked again once, then taken as a deny; an empty line or the end of input denies.
    """

    def __init__(self, err: TextIO, read_line: LineSource) -> None:
        self._err = err
        self._read_line = read_line
        self._lock = anyio.Lock()

    async def __call__(self, request: Any) -> str:
        async with self._lock:
            for _ in range(2):
                self._err.write(f"\n[lingma] {request.message}\n{QUESTION}")
                self._err.flush()
                typed = " ".join((await self._read_line()).lower().split())
                if not typed:
                    return DENY
                if typed in TYPED_ANSWERS:
                    return TYPED_ANSWERS[typed]
                self._err.write(f"[lingma] {typed!r} is not an answer: type y, a or n\n")
            return DENY


def terminal_lines(fd: int) -> LineSource:
    """Lines typed on the terminal at ``fd``, each read by a daemon thread of its own: a
    question still open when the ask ends (a timeout, Ctrl-C) must not hold the exit."""

    async def read_line() -> str:
        loop = asyncio.get_running_loop()
        line: asyncio.Future[bytes] = loop.create_future()

        def deliver(data: bytes) -> None:
            if not line.done():
                line.set_result(data)

        def read() -> None:
            try:
                data = os.read(fd, 4096)  # a terminal hands over one line per read
            except OSError:
                data = b""
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits
                loop.call_soon_threadsafe(deliver, data)

        threading.Thread(target=read, name="lingma-mcp ask: answer", daemon=True).start()
        return (await line).decode("utf-8", "replace").strip()

    return read_line


def _stdin_terminal() -> LineSource | None:
    stdin = sys.stdin
    if stdin is None or not stdin.isatty():
        return None
    return terminal_lines(stdin.fileno())


def _asks(policy: Policy) -> bool:
    return any(policy.decision(action) == "ask" for action in ACTIONS)


_FROM_STDIN: Any = object()


class _Printer:
    def __init__(self, out: TextIO, err: TextIO) -> None:
        self.out = out
        self.err = err
        self.text = ""
        self.thinking = False

    def __call__(self, event: ChatEvent) -> None:
        if isinstance(event, TextDelta):
            if event.overwrite and self.text:
                self.out.write("\n")
                self.err.write("[lingma] answer restarted\n")
                self.text = ""
            self.text += event.text
            self.out.write(event.text)
            self.out.flush()
        elif isinstance(event, Thinking) and event.step != "done" and not self.thinking:
            self.thinking = True
            self.err.write("[lingma] thinking…\n")
        elif isinstance(event, Step):
            self.err.write(f"[lingma] {event.description or event.step}: {event.status}\n")
        elif isinstance(event, ToolUpdate):
            self.err.write(f"[lingma] {event.tool.name}: {event.tool.status}\n")

    def note(self, line: str) -> None:
        """A line from the approval gate: what was allowed, denied or changed."""
        self.err.write(f"[lingma] {line}\n")
        self.err.flush()


def _tolerant(stream: TextIO) -> TextIO:
    """``stream``, writing what its encoding cannot hold as replacements instead of
    failing (Windows redirects use cp1252; Lingma answers in any script)."""
    reconfigure = getattr(stream, "reconfigure", None)
    if reconfigure is not None:
        try:
            reconfigure(errors="replace")
        except (ValueError, OSError):
            pass
    return stream


def run_ask(
    settings: Settings,
    prompt: str,
    *,
    session_id: str | None = None,
    timeout_s: float | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
    answers: LineSource | None = _FROM_STDIN,
) -> int:
    """Ask, stream, and print the session id to continue with. Exit code 0 on an answer.

    Args:
        answers: where agent mode reads the person's approvals; by default the terminal
            on stdin, ``None`` when stdin is not one (there is no one to ask).
    """
    out = out or _tolerant(sys.stdout)
    err = err or _tolerant(sys.stderr)
    if answers is _FROM_STDIN:
        answers = _stdin_terminal()
    try:
        return anyio.run(_ask, settings, prompt, session_id, timeout_s, out, err, answers)
    except KeyboardInterrupt:  # Lingma was told to stop and closed on the way out
        err.write("\nlingma-mcp: interrupted\n")
        return 130


async def _ask(
    settings: Settings,
    prompt: str,
    session_id: str | None,
    timeout_s: float | None,
    out: TextIO,
    err: TextIO,
    answers: LineSource | None,
) -> int:
    bridge = Bridge(settings, audience="terminal")
    try:
        params = validate(bridge.settings, prompt, session_id=session_id, timeout_s=timeout_s)
    except InvalidArgument as exc:
        err.write(f"lingma-mcp: {exc}\n")
        return 2
    printer = _Printer(out, err)
    if params.mode == "agent":
        if answers is None and _asks(bridge.agents.policy):
            err.write(f"lingma-mcp: {NO_TERMINAL}\n")
            return 2
        try:
            workspace = check_workspace(params.workspace, [params.workspace])
        except WorkspaceError as exc:
            err.write(f"lingma-mcp: the workspace (--workspace) cannot be used: {exc}\n")
            return 2
        asker = TerminalAsker(err, answers) if answers is not None else None
        params.agent = bridge.agents.begin(workspace, asker=asker, on_note=printer.note)
    bridge.start()
    try:
        result = await bridge.ask(params, printer)
    except Exception as exc:
        if printer.text:
            out.write("\n")
        err.write(f"lingma-mcp: {bridge.error_text(exc)}\n")
        return 1
    finally:
        with anyio.move_on_after(15, shield=True):
            await bridge.close()
    if not printer.text and result.answer:
        out.write(result.answer)  # Lingma sent only a full answer at the end
    out.write("\n")
    out.flush()
    if result.note:
        err.write(f"[lingma] {result.note}\n")
    if result.continued is False:
        err.write(
            f"[lingma] session_id {session_id} is not known to Lingma: this answer starts a "
            "new conversation without the earlier context\n"
        )
    if result.session_id:
        simulate = " --simulate" if settings.simulate else ""
        err.write(
            f"[lingma] session_id {result.session_id} (continue with: lingma-mcp{simulate} "
            f'ask --session-id {result.session_id} "...")\n'
        )
    return 0

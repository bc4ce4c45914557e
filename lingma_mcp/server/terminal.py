"""``lingma-mcp ask``: one question from a terminal, the answer streamed to stdout.

The same :class:`~.bridge.Bridge` path the MCP tool takes, so the terminal sees the same
validation and the same error texts; status goes to stderr so stdout can be piped.
"""

from __future__ import annotations

import sys
from typing import TextIO

import anyio

from ..config import Settings
from ..events import ChatEvent, Step, TextDelta, Thinking, ToolUpdate
from .bridge import Bridge
from .errors import InvalidArgument


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
) -> int:
    """Ask, stream, and print the session id to continue with. Exit code 0 on an answer."""
    out = out or _tolerant(sys.stdout)
    err = err or _tolerant(sys.stderr)
    try:
        return anyio.run(_ask, settings, prompt, session_id, timeout_s, out, err)
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
) -> int:
    bridge = Bridge(settings, audience="terminal")
    try:
        params = bridge.validate(prompt, session_id=session_id, timeout_s=timeout_s)
    except InvalidArgument as exc:
        err.write(f"lingma-mcp: {exc}\n")
        return 2
    bridge.start()
    printer = _Printer(out, err)
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

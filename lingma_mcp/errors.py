"""Typed errors raised by the Lingma side.

Lower layers raise these; the asking service turns them into text a user can act on, in one
place (``lingma_mcp.asking.error_texts``), for the MCP face and the terminal alike.
Messages here are for logs and for that mapping: they say what happened, not what the user
should click.
"""

from __future__ import annotations

import signal
from collections.abc import Sequence
from typing import Any

from .redact import redact_lines


class LingmaError(Exception):
    """Base class for everything that can go wrong talking to Lingma."""

    # Set where the error's own text is already complete instructions for the person
    # (the CLI backend's login, say); the MCP face then shows it as it is.
    instructions: str | None = None


class LingmaNotFound(LingmaError):
    """No Lingma binary was found in any of the places looked."""

    def __init__(self, places: list[str]) -> None:
        self.places = list(places)
        super().__init__("Lingma binary not found; looked in: " + "; ".join(self.places))


class LingmaStartupError(LingmaError):
    """Lingma was found but did not come up (no .info, no port, no initialize, early exit)."""

    def __init__(
        self,
        message: str,
        *,
        waited_for: str | None = None,
        exit_code: int | None = None,
        stderr_tail: list[str] | None = None,
        log_hint: str | None = None,
    ) -> None:
        self.waited_for = waited_for
        self.exit_code = exit_code
        self.stderr_tail = list(stderr_tail or [])
        self.log_hint = log_hint
        super().__init__(message)


def describe_exit(code: int) -> str:
    """How a process ended, in words: ``exit code 3``, ``killed by SIGKILL (exit code -9)``."""
    if code >= 0:
        return f"exit code {code}"
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = f"signal {-code}"
    return f"killed by {name} (exit code {code})"


LAST_LINE_MARK = "; its last stderr line: "
"""Between a lost connection's cause and the process's last stderr line, in its text (the
MCP face reads the cause back out of a status that keeps only the text)."""

# How many of the process's last stderr lines a loss keeps (redacted by the child).
LOSS_TAIL_LINES = 5


class LingmaConnectionLost(LingmaError):
    """The connection to Lingma closed (or the process died) while work was in flight.

    Where the process's end is known, the error carries it: ``exit_code`` (negative: the
    signal that killed it) and ``stderr_tail``, its last stderr lines, already redacted.
    """

    def __init__(
        self, message: str, *, exit_code: int | None = None, stderr_tail: Sequence[str] = ()
    ) -> None:
        self.exit_code = exit_code
        # Once more as a block: a secret cut across two lines is masked too.
        tail = list(stderr_tail)[-LOSS_TAIL_LINES:]
        self.stderr_tail = redact_lines(tail) if tail else []
        super().__init__(message)

    @classmethod
    def process_ended(
        cls, who: str, exit_code: int | None, stderr_tail: Sequence[str]
    ) -> LingmaConnectionLost:
        """``who`` stopped: the text names how (and its last stderr line, if it wrote one)."""
        how = describe_exit(exit_code) if exit_code is not None else "its output ended"
        lost = cls(f"{who} stopped ({how})", exit_code=exit_code, stderr_tail=stderr_tail)
        if lost.last_line:
            lost.args = (f"{lost.args[0]}{LAST_LINE_MARK}{lost.last_line}",)
        return lost

    @property
    def last_line(self) -> str | None:
        """The last non-empty stderr line, if the process wrote one."""
        for line in reversed(self.stderr_tail):
            if line.strip():
                return line.strip()
        return None


class LingmaClosed(LingmaError):
    """The bridge is shutting down; no new work is accepted."""


class ProtocolError(LingmaError):
    """Lingma sent bytes that are not a well-formed LSP frame or JSON-RPC message."""


class RpcError(LingmaError):
    """Lingma answered a request with a JSON-RPC error object."""

    def __init__(self, method: str, code: int, message: str, data: Any = None) -> None:
        self.method = method
        self.code = code
        self.message = message
        self.data = data
        super().__init__(f"{method} failed with JSON-RPC error {code}: {message}")


class RpcTimeout(LingmaError, TimeoutError):
    """A request to Lingma got no reply in time."""

    def __init__(self, method: str, timeout: float) -> None:
        self.method = method
        self.timeout = timeout
        super().__init__(f"Lingma did not answer {method} within {timeout:g} s")


class ChatRejected(LingmaError):
    """Lingma refused a chat/ask (its accept reply said success: false)."""


class ChatFailed(LingmaError):
    """A chat ended with a non-success finish (error status, rate limit, ...)."""

    def __init__(self, reason: str, status_code: int | None, message: str = "") -> None:
        self.reason = reason
        self.status_code = status_code
        detail = f": {message}" if message else ""
        super().__init__(f"chat finished with reason={reason} status={status_code}{detail}")


class LingmaNotLoggedIn(LingmaError):
    """Lingma reports no usable login (not logged in, or the login expired)."""

    def __init__(self, status_name: str) -> None:
        self.status_name = status_name
        super().__init__(f"Lingma is not logged in ({status_name})")


class RequestRefused(LingmaError):
    """A backend cannot do what a question asked for, so nothing was sent: an attachment
    its protocol cannot carry, a fork it has no call for, a reasoning effort its model
    does not offer.

    It names the argument, what was wrong and what to send instead; the MCP face words it
    like every other refused argument.
    """

    def __init__(self, argument: str, problem: str, send: str) -> None:
        self.argument = argument
        self.problem = problem
        self.send = send
        super().__init__(f"{argument}: {problem}")


class UnknownSession(LingmaError):
    """Lingma knows no conversation with this id (to continue, fork or delete)."""

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        super().__init__(f"Lingma knows no conversation {session_id!r}")

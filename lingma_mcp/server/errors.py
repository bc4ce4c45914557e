"""The one place typed errors become text a user can act on.

Lower layers raise typed errors that say what happened; this module adds what to do next.
Every text names the cause first and the fix second, in plain words, and is safe to show:
errors never carry tokens (the auth reply is allow-listed before anything sees it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import (
    ChatFailed,
    ChatRejected,
    LingmaClosed,
    LingmaConnectionLost,
    LingmaError,
    LingmaNotFound,
    LingmaNotLoggedIn,
    LingmaStartupError,
    RpcError,
    RpcTimeout,
)

INSTALL_HINT = (
    "Install the Lingma (Tongyi Lingma) plugin in VS Code or a JetBrains IDE and log in "
    "there once (that installs the Lingma binary under ~/.lingma/bin), or set LINGMA_BIN "
    "(--lingma-bin) to the binary's path. To try lingma-mcp without Lingma, start it with "
    "--simulate."
)
LOGIN_HINT = (
    "Call the `login` tool to get a login URL, open it in a browser and log in, then try again."
)


class InvalidArgument(ValueError):
    """A tool argument was refused before Lingma was asked."""


class AskTimedOut(Exception):
    """A whole ``ask_lingma`` call ran past its ``timeout_s``."""

    def __init__(self, timeout_s: float, answer_so_far: str, stopped: bool = True) -> None:
        self.timeout_s = timeout_s
        self.answer_so_far = answer_so_far
        self.stopped = stopped
        super().__init__(f"no complete answer within {timeout_s:g} s")


class ChatCancelled(Exception):
    """Lingma ended the answer as cancelled without this bridge asking."""


def _sentence(text: object) -> str:
    """``text`` ending in exactly one full stop (Lingma's own messages may bring theirs)."""
    out = str(text).strip()
    return out if out.endswith((".", "?", "!", "。")) else out + "."


def _field(status: Any, name: str) -> Any:
    if status is None:
        return None
    if isinstance(status, Mapping):
        return status.get(name)
    return getattr(status, name, None)


def describe_state(status: Any) -> str:
    """One sentence on the bridge's state: state, last error, where the logs are."""
    if status is None:
        return ""
    parts = [f"Lingma state: {_field(status, 'state') or 'unknown'}"]
    last_error = _field(status, "last_error")
    if last_error:
        parts.append(f"last error: {last_error}")
    log_hint = _field(status, "log_hint")
    if log_hint:
        parts.append(f"logs: {log_hint}")
    return _sentence("; ".join(str(p).strip().rstrip(".") for p in parts))


def is_expected(exc: BaseException) -> bool:
    """True for failures this module has words for; anything else is a bug to log whole."""
    return isinstance(exc, LingmaError | InvalidArgument | AskTimedOut | ChatCancelled)


def error_text(exc: BaseException, *, status: Any = None) -> str:
    """The user-facing text for ``exc``; ``status`` is the supervisor's status, if known."""
    state = describe_state(status)
    if isinstance(exc, LingmaError) and exc.instructions:
        return exc.instructions
    if isinstance(exc, InvalidArgument):
        return str(exc)
    if isinstance(exc, AskTimedOut):
        head = f"Lingma did not finish within timeout_s={exc.timeout_s:g} s"
        if exc.stopped:
            head += "; its answer was stopped"
        if exc.answer_so_far:
            return (
                f"{head}. The answer so far is below. Ask again with a larger timeout_s "
                "(or --request-timeout), or continue the conversation.\n\n"
                f"--- answer so far ---\n{exc.answer_so_far}"
            )
        return (
            f"{head}, and no answer text had arrived yet. Ask again with a larger timeout_s "
            f"(or --request-timeout). {state}"
        ).strip()
    if isinstance(exc, LingmaNotFound):
        where = "; ".join(exc.places) if exc.places else "nowhere (no places to look)"
        return f"Lingma was not found. Looked in: {where}. {INSTALL_HINT}"
    if isinstance(exc, LingmaNotLoggedIn):
        return f"Lingma is not logged in ({exc.status_name}). {LOGIN_HINT}"
    if isinstance(exc, LingmaStartupError):
        # The supervisor's messages already name Lingma ("Lingma did not start within
        # 60 s: ..."); only a bare detail needs the lead-in.
        detail = str(exc)
        lead = "" if detail.startswith("Lingma") else "Lingma did not start: "
        lines = [_sentence(lead + detail)]
        if exc.exit_code is not None:
            lines.append(f"It exited with code {exc.exit_code}.")
        if exc.stderr_tail:
            tail = " | ".join(line.strip() for line in exc.stderr_tail[-3:] if line.strip())
            if tail:
                lines.append(f"Its last output: {tail}")
        log_hint = exc.log_hint or _field(status, "log_hint")
        if log_hint:
            lines.append(_sentence(f"Logs: {log_hint}"))
        lines.append(
            "Run `lingma-mcp doctor` to check each step; if Lingma hangs at start-up, quit "
            "every Lingma process, check that the Lingma service is reachable, and try again "
            "(a longer --startup-timeout helps on slow first starts)."
        )
        return " ".join(lines)
    if isinstance(exc, ChatFailed):
        if exc.status_code == 429:
            return (
                "Lingma is rate limited or out of quota (429). Wait a minute and try again, "
                "or check the account's quota in the Lingma plugin. "
                + _sentence(f"Lingma said: {exc}")
            )
        if exc.status_code in (401, 403):
            return _sentence(f"Lingma refused the request ({exc.status_code}): {exc}") + (
                f" {LOGIN_HINT}"
            )
        return (
            _sentence(f"Lingma ended the answer with an error: {exc}")
            + f" Try again; if it keeps failing, run `lingma-mcp doctor`. {state}"
        ).strip()
    if isinstance(exc, ChatRejected):
        return _sentence(f"Lingma refused the question: {exc}") + (
            " Try again, or run `lingma-mcp doctor`."
        )
    if isinstance(exc, ChatCancelled):
        return "Lingma cancelled the answer before it finished. Ask again."
    if isinstance(exc, LingmaConnectionLost):
        return (
            f"Lingma crashed or closed the connection while answering ({exc}). The bridge "
            f"restarts it on the next call: ask again. {state}"
        ).strip()
    if isinstance(exc, LingmaClosed):
        return "lingma-mcp is shutting down; no new questions are accepted."
    if isinstance(exc, RpcTimeout):
        return (
            f"{exc}: Lingma seems stuck. Try again; if it stays stuck, restart the MCP "
            f"server or run `lingma-mcp doctor`. {state}"
        ).strip()
    if isinstance(exc, RpcError):
        return f"Lingma answered {exc.method} with an error ({exc.code}: {exc.message}). {state}"
    if isinstance(exc, LingmaError):
        return f"{_sentence(f'Lingma failed: {exc}')} {state}".strip()
    return (
        f"lingma-mcp failed unexpectedly ({type(exc).__name__}). Its log on stderr has the "
        "details; set --log-level DEBUG for more."
    )

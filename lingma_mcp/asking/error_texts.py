"""The one place typed errors become text a user can act on.

Lower layers raise typed errors that say what happened; this module adds what to do next.
Every text names the cause first and the fix second, in plain words, and is safe to show:
errors never carry tokens (the auth reply is allow-listed before anything sees it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from ..errors import (
    LAST_LINE_MARK,
    ChatFailed,
    ChatRejected,
    LingmaClosed,
    LingmaConnectionLost,
    LingmaError,
    LingmaNotFound,
    LingmaNotLoggedIn,
    LingmaStartupError,
    RequestRefused,
    RpcError,
    RpcTimeout,
    UnknownSession,
    describe_exit,
)
from ..redact import redact, redact_lines

Audience = Literal["host", "terminal"]
"""Where the text is read: through an MCP host (tools) or in a terminal (the command line)."""

INSTALL_HINT = (
    "Install the Lingma (Tongyi Lingma) plugin in VS Code or a JetBrains IDE and log in "
    "there once (that installs the Lingma binary under ~/.lingma/bin), or set LINGMA_BIN "
    "(--lingma-bin) to the binary's path. To try lingma-mcp without Lingma, start it with "
    "--simulate."
)
LOGIN_HINT = (
    "Call the `login` tool to get a login URL, open it in a browser and log in, then try again."
)
TERMINAL_LOGIN_HINT = (
    "Run `lingma-mcp doctor`: it shows a login URL to open in a browser; log in, then try "
    "again (logging in once in the Lingma IDE plugin works too)."
)


def login_hint(audience: Audience = "host") -> str:
    return TERMINAL_LOGIN_HINT if audience == "terminal" else LOGIN_HINT


def not_logged_in(status_name: str) -> str:
    """One sentence on a login state that is not "logged in", without stutter."""
    name = str(status_name).strip() or "not logged in"
    if name == "not logged in":
        return "Lingma is not logged in."
    if name == "login expired":
        return "Lingma's login has expired."
    return f"Lingma is not logged in (login state: {name})."


class InvalidArgument(ValueError):
    """A tool argument was refused before Lingma was asked."""


def invalid_argument(name: str, problem: str, send: str) -> InvalidArgument:
    """The one shape of every refused argument: what was wrong, then what to send."""
    return InvalidArgument(f"Invalid argument {name}: {problem}. Send {send}.")


class AskTimedOut(Exception):
    """A whole ``ask_lingma`` call ran past its ``timeout_s``."""

    def __init__(
        self,
        timeout_s: float,
        answer_so_far: str,
        stopped: bool = True,
        session_id: str | None = None,
    ) -> None:
        self.timeout_s = timeout_s
        self.answer_so_far = answer_so_far
        self.stopped = stopped
        self.session_id = session_id
        super().__init__(f"no complete answer within {timeout_s:g} s")


class ChangedThenFailed(Exception):
    """An agent-mode call failed after it had changed files; ``note`` names them."""

    def __init__(self, cause: Exception, note: str) -> None:
        self.cause = cause
        self.note = note
        super().__init__(str(cause))


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


def describe_state(status: Any, *, with_last_error: bool = True) -> str:
    """One sentence on the bridge's state: state, last error, where the logs are."""
    if status is None:
        return ""
    parts = [f"Lingma state: {_field(status, 'state') or 'unknown'}"]
    last_error = _field(status, "last_error") if with_last_error else None
    if last_error:
        parts.append(f"last error: {redact(str(last_error))}")
    log_hint = _field(status, "log_hint")
    if log_hint:
        parts.append(f"logs: {log_hint}")
    return _sentence("; ".join(str(p).strip().rstrip(".") for p in parts))


def is_expected(exc: BaseException) -> bool:
    """True for failures this module has words for; anything else is a bug to log whole."""
    if isinstance(exc, ChangedThenFailed):
        return is_expected(exc.cause)
    return isinstance(exc, LingmaError | InvalidArgument | AskTimedOut | ChatCancelled)


def _loss_cause(exc: LingmaConnectionLost, status: Any) -> tuple[int | None, str | None]:
    """How Lingma ended and its last stderr line (redacted), from the error itself or else
    from the backend's last error: a chat hears of the lost connection through its own
    error, the backend of the process's end, and the status keeps only that one's text."""
    if exc.exit_code is not None or exc.stderr_tail:
        return exc.exit_code, _last_output(exc.stderr_tail)
    code: int | None = None
    last: str | None = None
    for text in (str(exc), str(_field(status, "last_error") or "")):
        found = re.search(r"exit code (-?\d+)", text)
        if found and code is None:
            code = int(found.group(1))
        if LAST_LINE_MARK in text and last is None:
            last = _last_output([text.split(LAST_LINE_MARK, 1)[1]])
    return code, last


def _last_output(lines: Any) -> str | None:
    """Lingma's last non-empty stderr line, redacted (it logs its own frames there)."""
    if not lines:
        return None
    kept = [str(line) for line in list(lines)[-5:]]
    for line in reversed(redact_lines(kept)):
        if line.strip():
            return line.strip()[:300]
    return None


def error_text(exc: BaseException, *, status: Any = None, audience: Audience = "host") -> str:
    """The user-facing text for ``exc``; ``status`` is the supervisor's status, if known.

    ``audience`` picks the next step's wording: a tool to call in a host, a command to run
    in a terminal.
    """
    if isinstance(exc, ChangedThenFailed):
        return error_text(exc.cause, status=status, audience=audience) + "\n\n" + exc.note
    state = describe_state(status)
    if isinstance(exc, LingmaError) and exc.instructions:
        return exc.instructions
    if isinstance(exc, InvalidArgument):
        return str(exc)
    if isinstance(exc, RequestRefused):
        # The backend could not send what the call asked for: a refused argument too.
        return str(invalid_argument(exc.argument, exc.problem, exc.send))
    if isinstance(exc, UnknownSession):
        if audience == "terminal":
            return (
                f"Lingma knows no conversation {exc.session_id!r}. Leave out --session-id to "
                "start a new one."
            )
        return (
            f"Lingma knows no conversation {exc.session_id!r}. list_lingma_sessions lists "
            "the ones it has; leave session_id out to start a new conversation."
        )
    if isinstance(exc, AskTimedOut):
        head = f"Lingma did not finish within timeout_s={exc.timeout_s:g} s"
        if exc.stopped:
            head += "; its answer was stopped"
        if audience == "terminal":
            more = "a larger --timeout-s (or LINGMA_REQUEST_TIMEOUT)"
            cont = f"--session-id {exc.session_id}"
        else:
            more = "a larger timeout_s (or the server's --request-timeout)"
            cont = f"session_id={exc.session_id!r}"
        again = f"Ask again with {more}"
        if exc.session_id:
            again += f", or continue the conversation with {cont}"
        if exc.answer_so_far:
            return (
                f"{head}. The answer so far is below. {again}.\n\n"
                f"--- answer so far ---\n{exc.answer_so_far}"
            )
        return f"{head}, and no answer text had arrived yet. {again}. {state}".strip()
    if isinstance(exc, LingmaNotFound):
        where = "; ".join(exc.places) if exc.places else "nowhere (no places to look)"
        return f"Lingma was not found. Looked in: {where}. {INSTALL_HINT}"
    if isinstance(exc, LingmaNotLoggedIn):
        return f"{not_logged_in(exc.status_name)} {login_hint(audience)}"
    if isinstance(exc, LingmaStartupError):
        # The supervisor's messages already name Lingma ("Lingma did not start within
        # 60 s: ..."); only a bare detail needs the lead-in.
        detail = str(exc)
        lead = "" if detail.startswith("Lingma") else "Lingma did not start: "
        lines = [_sentence(lead + detail)]
        if exc.exit_code is not None:
            lines.append(f"It exited with code {exc.exit_code}.")
        if exc.stderr_tail:
            tail = " | ".join(
                line.strip() for line in redact_lines(list(exc.stderr_tail[-3:])) if line.strip()
            )
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
        return redact(" ".join(lines))
    if isinstance(exc, ChatFailed):
        if exc.status_code == 429:
            return (
                "Lingma is rate limited or out of quota (429). Wait a minute and try again, "
                "or check the account's quota in the Lingma plugin. "
                + _sentence(f"Lingma said: {redact(str(exc))}")
            )
        if exc.status_code in (401, 403):
            return _sentence(
                f"Lingma refused the request ({exc.status_code}): {redact(str(exc))}"
            ) + (f" {login_hint(audience)}")
        return (
            _sentence(f"Lingma ended the answer with an error: {redact(str(exc))}")
            + f" Try again; if it keeps failing, run `lingma-mcp doctor`. {state}"
        ).strip()
    if isinstance(exc, ChatRejected):
        return _sentence(f"Lingma refused the question: {redact(str(exc))}") + (
            " Try again, or run `lingma-mcp doctor`."
        )
    if isinstance(exc, ChatCancelled):
        return "Lingma cancelled the answer before it finished. Ask again."
    if isinstance(exc, LingmaConnectionLost):
        # Said once, in our words: the connection library's wording ("no close frame
        # received or sent") tells a user nothing.
        facts = []
        code, last = _loss_cause(exc, status)
        if code is not None:
            facts.append(describe_exit(code))
        if last:
            facts.append(f"its last output: {last}")
        detail = f" ({'; '.join(facts)})" if facts else ""
        quiet_state = describe_state(status, with_last_error=False)
        return (
            f"Lingma stopped while answering{detail}. lingma-mcp starts it again on the next "
            f"call: ask again. {quiet_state}"
        ).strip()
    if isinstance(exc, LingmaClosed):
        return "lingma-mcp is shutting down; no new questions are accepted."
    if isinstance(exc, RpcTimeout):
        return (
            f"{exc}: Lingma seems stuck. Try again; if it stays stuck, restart the MCP "
            f"server or run `lingma-mcp doctor`. {state}"
        ).strip()
    if isinstance(exc, RpcError):
        return redact(
            f"Lingma answered {exc.method} with an error ({exc.code}: {exc.message}). {state}"
        )
    if isinstance(exc, LingmaError):
        return f"{_sentence(f'Lingma failed: {redact(str(exc))}')} {state}".strip()
    return (
        f"lingma-mcp failed unexpectedly ({type(exc).__name__}). Its log on stderr has the "
        "details; set --log-level DEBUG for more."
    )

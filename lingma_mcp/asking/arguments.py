"""A question's arguments: checked before Lingma is asked, and one wording for refusals.

Every refused argument reads the same, whether pydantic refused it against the schema or
:func:`validate` did: ``Invalid argument NAME: what was wrong. Send what to send.``
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..backend import Attachment
from ..config import MODES, Settings
from .error_texts import InvalidArgument, invalid_argument

if TYPE_CHECKING:
    from .agent_calls import AgentCall

# The longest timeout_s a call may ask for: a day.
MAX_TIMEOUT_S = 86400.0
# The longest path passed on as a workspace (PATH_MAX on Linux).
MAX_PATH_CHARS = 4096
# The longest reasoning effort value passed on; the CLI's are single words.
MAX_EFFORT_CHARS = 64

SEND: dict[str, str] = {
    "prompt": "the question or task for Lingma as a non-empty string",
    "model": "a model key from list_models as a string, or nothing for the default",
    "mode": '"chat" or "agent", or nothing for the default',
    "session_id": "the session_id an earlier result returned, as a string, or nothing",
    "workspace": "the absolute path of a folder on the machine running lingma-mcp, or nothing",
    "timeout_s": "a number of seconds greater than 0 and at most 86400 (a day)",
    "scene": "a scene name such as chat or developer, or nothing for all",
    "fork": "true with a session_id to continue a copy of that conversation, or false",
    "reasoning_effort": "one of the values the backend offers for the model (an invalid one "
    "is refused with them), or nothing",
    "limit": "a whole number from 1 to 100",
    "attachments": "a list of items: {type: file, path}, {type: folder, path}, {type: image, "
    "path} or {type: image, data: <base64>, mime_type}; paths inside the call's workspace",
}
"""What to send, per argument: the second half of every refusal."""

_PROBLEMS: dict[str, str] = {
    "missing": "it is missing",
    "string_type": "it is not a string",
    "float_type": "it is not a number",
    "float_parsing": "it is not a number",
    "int_type": "it is not a number",
    "bool_type": "it is not true or false",
    "finite_number": "it is not a finite number",
    "greater_than": "it is too small",
    "less_than_equal": "it is too large",
    "literal_error": "it is not one of the allowed values",
    "enum": "it is not one of the allowed values",
    "union_tag_invalid": "an item's type is not file, folder or image",
    "union_tag_not_found": "an item has no type (file, folder or image)",
    "extra_forbidden": "an item has a field its type does not take",
    "list_type": "it is not a list",
    "model_type": "an item is not an object",
}


def arguments_text(tool: str, errors: list[Mapping[str, Any]]) -> str:
    """One refusal per wrong argument, from pydantic's error list, in the shape above."""
    parts: list[str] = []
    seen: set[str] = set()
    for err in errors:
        loc = [str(p) for p in err.get("loc", ()) if not isinstance(p, int)]
        name = loc[0] if loc else "arguments"
        if name in seen:
            continue  # one line per argument, even when it failed every branch of a union
        seen.add(name)
        problem = _PROBLEMS.get(str(err.get("type")), str(err.get("msg", "it is not valid")))
        if err.get("type") != "missing" and "input" in err:
            shown = repr(err["input"])
            problem = f"{shown[:60]}{'…' if len(shown) > 60 else ''}: {problem}"
        if name == "timeout_s" and "input" in err:
            try:  # the same words as a timeout_s the bridge refuses
                checked_timeout(err["input"])
            except InvalidArgument as exc:
                parts.append(str(exc))
                continue
        send = SEND.get(name, "what the tool's input schema describes")
        parts.append(str(invalid_argument(name, problem, send)))
    return f"{tool} was not called. " + " ".join(parts)


def replace_lone_surrogates(text: str) -> str:
    """``text`` with unpaired UTF-16 surrogates (half an emoji, cut by a JavaScript host)
    replaced by U+FFFD; they cannot be encoded to send to Lingma."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def checked_timeout(value: Any) -> float:
    """``value`` as seconds, if it is a finite positive number up to a day."""
    send = SEND["timeout_s"]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise invalid_argument("timeout_s", f"{value!r} is not a number", send)
    if not math.isfinite(value) or value <= 0 or value > MAX_TIMEOUT_S:
        raise invalid_argument("timeout_s", f"{value!r} is out of range", send)
    return float(value)


def checked_workspace(raw: str) -> Path:
    """``raw`` as an existing folder, or an error that says what was wrong with it."""
    send = SEND["workspace"]
    if len(raw) > MAX_PATH_CHARS or "\x00" in raw:
        shown = raw[:60] + "…" if len(raw) > 60 else raw
        raise invalid_argument("workspace", f"{shown!r} is not a usable path", send)
    try:
        folder = Path(raw).expanduser()
        is_dir = folder.is_dir()
    except (RuntimeError, OSError, ValueError) as exc:
        # "~nosuchuser" cannot be expanded; a name too long for the file system.
        raise invalid_argument(
            "workspace", f"{raw!r} cannot be used ({type(exc).__name__}: {exc})", send
        ) from None
    if not is_dir:
        raise invalid_argument("workspace", f"{str(folder)!r} is not a folder here", send)
    return folder


@dataclass
class AskParams:
    """One question, as validated arguments."""

    prompt: str
    model: str | None
    mode: str
    session_id: str | None
    workspace: Path
    timeout_s: float
    agent: AgentCall | None = None  # agent mode: the call's workspace host (.agent_calls)
    attachments: tuple[Attachment, ...] = ()  # resolved and confined (server/attachments.py)
    fork: bool = False
    reasoning_effort: str | None = None
    effort_optional: bool = False  # the server's --reasoning-effort, not the call's own


def validate(
    settings: Settings,
    prompt: Any,
    *,
    model: str | None = None,
    mode: str | None = None,
    session_id: str | None = None,
    workspace: str | Path | None = None,
    timeout_s: Any = None,
    attachments: tuple[Attachment, ...] = (),
    fork: bool = False,
    reasoning_effort: str | None = None,
) -> AskParams:
    """Refuse bad arguments before Lingma is asked; every refusal says what to send.

    What is not given comes from ``settings``: the mode, the model, the timeout and the
    workspace the server was started with. ``attachments`` come resolved
    (``server/attachments.py``); a ``reasoning_effort`` not given falls back to the
    server's, which the backend then skips where the model offers none.

    Raises:
        InvalidArgument: the first argument refused, and what to send instead.
    """
    if not isinstance(prompt, str) or not prompt.strip():
        raise invalid_argument("prompt", "it is empty", SEND["prompt"])
    limit = settings.max_prompt_chars
    if len(prompt) > limit:
        raise invalid_argument(
            "prompt",
            f"it has {len(prompt):,} characters, over this server's limit of {limit:,} "
            "(--max-prompt-chars, LINGMA_MAX_PROMPT_CHARS)",
            "a shorter prompt: quote only the parts of files Lingma needs, or raise the limit",
        )
    prompt = replace_lone_surrogates(prompt)
    mode = (mode or settings.mode or "chat").strip().lower()
    if mode not in MODES:
        raise invalid_argument("mode", f"{mode!r} is not a mode", SEND["mode"])
    model = (model or settings.model or "").strip() or None
    if session_id is not None:
        session_id = session_id.strip() or None
    if timeout_s is None:
        timeout_s = settings.request_timeout
    timeout_s = checked_timeout(timeout_s)
    folder = settings.workspace
    if workspace:
        folder = checked_workspace(str(workspace))
    if fork and session_id is None:
        raise invalid_argument(
            "fork", "it needs the session_id of the conversation to fork", SEND["fork"]
        )
    effort = (reasoning_effort or "").strip() or None
    if effort is not None and len(effort) > MAX_EFFORT_CHARS:
        raise invalid_argument(
            "reasoning_effort", f"it has {len(effort)} characters", SEND["reasoning_effort"]
        )
    optional = effort is None and bool(settings.reasoning_effort)
    return AskParams(
        prompt=prompt,
        model=model,
        mode=mode,
        session_id=session_id,
        workspace=folder,
        timeout_s=timeout_s,
        attachments=attachments,
        fork=fork,
        reasoning_effort=effort or settings.reasoning_effort,
        effort_optional=optional,
    )

"""Tool arguments: the checks the input schema cannot express, and one wording for refusals.

Every refused argument reads the same, whether pydantic refused it against the schema or
the bridge did: ``Invalid argument NAME: what was wrong. Send what to send.``
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import InvalidArgument, invalid_argument

# The longest timeout_s a call may ask for: a day.
MAX_TIMEOUT_S = 86400.0
# The longest path passed on as a workspace (PATH_MAX on Linux).
MAX_PATH_CHARS = 4096

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

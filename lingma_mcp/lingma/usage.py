"""What one answer cost, where the plugin dialect's ``chat/finish`` says it. Pure.

No ``chat/finish`` carrying usage has been recorded (PROTOCOL.md section 9); the newer
dialect sends a separate ``context_usage`` notification instead. So this reads only what
would be unmistakable: a ``usage`` object on the finish or in its ``extra``, with token
counts under the names the plugin family uses (``inputTokens``/``promptTokens``,
``outputTokens``/``completionTokens``, ``totalTokens``, or their snake_case forms), the
model under ``model``, credits under ``credits``. Anything else, or nothing, is no usage:
absent, never zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..events import Usage

_INPUT = ("inputTokens", "promptTokens", "input_tokens", "prompt_tokens")
_OUTPUT = ("outputTokens", "completionTokens", "output_tokens", "completion_tokens")
_TOTAL = ("totalTokens", "total_tokens")


def usage_from_finish(params: Mapping[str, Any]) -> Usage | None:
    """The usage a ``chat/finish`` carries, if it carries one."""
    extra = params.get("extra")
    for raw in (params.get("usage"), extra.get("usage") if isinstance(extra, Mapping) else None):
        if isinstance(raw, Mapping):
            found = Usage(
                input_tokens=_count(raw, _INPUT),
                output_tokens=_count(raw, _OUTPUT),
                total_tokens=_count(raw, _TOTAL),
                model=raw["model"] if isinstance(raw.get("model"), str) and raw["model"] else None,
                credits=_number(raw.get("credits")),
            )
            if found != Usage():
                return found
    return None


def _count(raw: Mapping[str, Any], names: tuple[str, ...]) -> int | None:
    for name in names:
        value = raw.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    return None

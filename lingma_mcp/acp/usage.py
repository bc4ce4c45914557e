"""What one prompt cost, read from the ``session/prompt`` reply. Pure.

``qoderclicn`` 1.1.52 answers a prompt with
``{stopReason, usage: {inputTokens, outputTokens, totalTokens}, _meta: {quota:
{token_count: {input_tokens, output_tokens}, model_usage: [{model, token_count}]}}}``,
summed over the turn's model calls. Its counts are zeros unless it was started with
``QODERCN_EXPOSE_TOKEN_USAGE=1`` (the attempt sets it): zeros for every count are read as
"not counted", never as a free answer. It sends no credits over ACP (its print mode
reports ``total_credits``); a number under ``_meta.quota`` named so is read where a later
version sends one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lingma_mcp.events import Usage

_CREDIT_KEYS = ("credits", "total_credits")


def usage_from(usage: Any, meta: Mapping[str, Any] | None) -> Usage | None:
    """The :class:`Usage` of a prompt reply's ``usage`` (the SDK's model or a dict) and
    ``_meta``; None where it says nothing."""
    counts = [_count(usage, name) for name in ("input_tokens", "output_tokens", "total_tokens")]
    if not any(counts):
        counts = [None, None, None]  # not counted (all zero) or not sent
    quota = meta.get("quota") if isinstance(meta, Mapping) else None
    quota = quota if isinstance(quota, Mapping) else {}
    found = Usage(*counts, model=_model(quota.get("model_usage")), credits=_credits(quota))
    return None if found == Usage() else found


def _count(usage: Any, name: str) -> int | None:
    if usage is None:
        return None
    camel = "".join(w.capitalize() if i else w for i, w in enumerate(name.split("_")))
    value = usage.get(camel) if isinstance(usage, Mapping) else getattr(usage, name, None)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def _model(model_usage: Any) -> str | None:
    """The model that served: the one named, or several joined, in the CLI's order."""
    if not isinstance(model_usage, list):
        return None
    names = [
        str(entry["model"])
        for entry in model_usage
        if isinstance(entry, Mapping) and isinstance(entry.get("model"), str) and entry["model"]
    ]
    return ", ".join(dict.fromkeys(names)) or None


def _credits(quota: Mapping[str, Any]) -> float | None:
    for key in _CREDIT_KEYS:
        value = quota.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
            return float(value)
    return None

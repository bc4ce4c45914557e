"""Tool events: one shape out of the many spellings Lingma uses, and how updates merge.

Pure functions, no state: the stream router keeps the state. The rules are the ones that
worked for the earlier gateway client (PROTOCOL.md section 5, "Agent mode"):
- an id is ``toolCallId`` / ``tool_call_id`` (or ``id`` inside a nested tool object);
- a placeholder name ``tool`` yields to a real name, never the other way round;
- an empty input never overwrites a real one; a missing result never erases one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from ..events import ToolCall

TOOL_METHODS: frozenset[str] = frozenset(
    {"tool/call/sync", "tool/invoke", "tool/call/approve", "tool/invokeResult"}
)

PLACEHOLDER_NAME = "tool"

_NESTED_KEYS = ("toolCall", "tool_call", "tool")


@dataclass(frozen=True, slots=True)
class ToolObservation:
    """What one event says about a tool call (fields it does not mention are None)."""

    id: str
    request_id: str | None
    name: str | None = None
    status: str | None = None
    input: Any = None
    result: Any = None
    error: str | None = None


def _first(mapping: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        value = mapping.get(key)
        if value is not None:
            return value
    return None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def observe(method: str, params: dict[str, Any]) -> ToolObservation | None:
    """Read a tool event; None when it names no tool call at all."""
    nested: dict[str, Any] | None = None
    data = params.get("data")
    for holder in (params, data if isinstance(data, dict) else {}):
        for key in _NESTED_KEYS:
            if isinstance(holder.get(key), dict):
                nested = holder[key]
                break
        if nested is not None:
            break
    desc = nested if nested is not None else params
    request_id = _text(params.get("requestId"))

    name = _text(_first(desc, "name", "toolName", "tool_name")) or _text(
        _first(params, "name", "toolName", "tool_name")
    )
    tool_id = _text(_first(desc, "toolCallId", "tool_call_id"))
    if tool_id is None and nested is not None:
        tool_id = _text(nested.get("id"))
    if tool_id is None:
        tool_id = _text(_first(params, "toolCallId", "tool_call_id"))
    if tool_id is None and request_id is not None:
        # No tool id at all: one tool per (request, name) is the best that can be done.
        tool_id = f"{request_id}:tool:{name}" if name else f"{request_id}:tool"
    if tool_id is None:
        return None

    call_input = _first(desc, "input", "arguments", "args", "parameters")
    if call_input is None:
        call_input = _first(params, "parameters", "input", "arguments")

    result = _first(desc, "result")
    if result is None:
        result = params.get("result")
    if result is None and isinstance(data, dict):
        result = data.get("result")
    if result is None:
        results = _first(desc, "results") or params.get("results")
        if isinstance(results, list) and results:
            result = results

    status = _text(_first(desc, "toolCallStatus", "status")) or _text(
        _first(params, "toolCallStatus", "status")
    )
    error = _text(_first(params, "errorMsg", "errorMessage")) or _text(
        _first(desc, "errorMsg", "errorMessage")
    )
    if method == "tool/invoke" and status is None:
        status = "INVOKED"
    elif method == "tool/call/approve" and status is None:
        approval = params.get("approval")
        if isinstance(approval, bool):
            status = "APPROVED" if approval else "REJECTED"
    elif method == "tool/invokeResult" and status is None:
        success = params.get("success")
        if isinstance(success, bool):
            status = "FINISHED" if success else "ERROR"
    return ToolObservation(
        id=tool_id,
        request_id=request_id,
        name=name,
        status=status,
        input=call_input,
        result=result,
        error=error,
    )


def merge(existing: ToolCall | None, seen: ToolObservation) -> tuple[ToolCall, bool]:
    """Fold an observation into a tool call's state; say whether anything changed."""
    if existing is None:
        return (
            ToolCall(
                id=seen.id,
                name=seen.name or PLACEHOLDER_NAME,
                status=seen.status or "",
                input=seen.input if seen.input is not None else {},
                result=seen.result,
                error=seen.error,
            ),
            True,
        )
    changes: dict[str, Any] = {}
    if seen.name and seen.name != existing.name:
        placeholder_in = seen.name.lower() == PLACEHOLDER_NAME
        placeholder_now = existing.name.lower() == PLACEHOLDER_NAME
        if not placeholder_in or placeholder_now:
            changes["name"] = seen.name
    if seen.status and seen.status != existing.status:
        changes["status"] = seen.status
    if seen.input is not None and seen.input != existing.input:
        if seen.input not in ({}, [], "") or existing.input in (None, {}, [], ""):
            changes["input"] = seen.input
    if seen.result is not None and seen.result != existing.result:
        changes["result"] = seen.result
    if seen.error and seen.error != existing.error:
        changes["error"] = seen.error
    if not changes:
        return existing, False
    return replace(existing, **changes), True

"""Parameter checks with the real CLI's refusals. Pure.

``qoderclicn`` validates each request's parameters before anything else (before the login
too) and refuses with -32602 "Invalid params" and, as data, one entry per field that is
wrong: ``{"_errors": [], "cwd": {"_errors": ["Invalid input: expected string, received
undefined"]}}``.
"""

from __future__ import annotations

from typing import Any

_TYPES = {"string": str, "array": list, "object": dict}


class InvalidParams(Exception):
    """-32602 "Invalid params" with ``data`` naming the fields that are wrong."""

    def __init__(self, data: dict[str, Any]) -> None:
        super().__init__(str(data))
        self.data = data


def received(params: dict[str, Any], name: str) -> str:
    """How the CLI names what came instead: ``undefined`` for a missing field."""
    if name not in params:
        return "undefined"
    value = params[name]
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", list: "array", dict: "object"}.get(type(value), "value")


def check(params: dict[str, Any], **fields: str) -> None:
    """Each of ``fields`` (name: ``string``, ``array`` or ``object``) must be there with
    that type.

    Raises:
        InvalidParams: one or more are missing or of another type.
    """
    data: dict[str, Any] = {"_errors": []}
    for name, kind in fields.items():
        if not isinstance(params.get(name), _TYPES[kind]):
            got = received(params, name)
            data[name] = {"_errors": [f"Invalid input: expected {kind}, received {got}"]}
    if len(data) > 1:
        raise InvalidParams(data)

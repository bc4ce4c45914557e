"""Typed errors of the CLI backend (``qoderclicn --acp``).

They derive from :class:`lingma_mcp.errors.LingmaError` so the MCP face turns them into
text in the same one place as the IDE backend's errors.
"""

from __future__ import annotations

from typing import Any

from lingma_mcp.errors import LingmaError, LingmaNotLoggedIn, RpcError

# JSON-RPC code ACP reserves for "Authentication required" (the CLI sends it logged out).
AUTH_REQUIRED = -32000

NOT_LOGGED_IN_MESSAGE = (
    "not logged in to the Lingma CLI: run `qoderclicn login` in a terminal, "
    "or set QODERCN_PERSONAL_ACCESS_TOKEN, then ask again"
)


class CliNotLoggedIn(LingmaNotLoggedIn):
    """The CLI answered -32000 "Authentication required": nobody is logged in.

    Its text is complete instructions (``instructions``): the CLI logs in from a terminal
    or a token, not through a URL, so the face's usual login hint does not apply.
    """

    def __init__(self, method: str = "session/new") -> None:
        self.method = method
        super().__init__("not logged in")
        self.instructions = NOT_LOGGED_IN_MESSAGE
        self.args = (NOT_LOGGED_IN_MESSAGE,)


class AcpRpcError(RpcError):
    """The agent answered one of our requests with a JSON-RPC error other than -32000."""

    def __init__(self, method: str, code: int, message: str, data: Any = None) -> None:
        super().__init__(method, code, message, data)


class UnknownModel(LingmaError):
    """A model key the agent does not offer; the message names the valid keys."""

    def __init__(self, key: str, valid: list[str]) -> None:
        self.key = key
        self.valid = list(valid)
        names = ", ".join(valid) if valid else "none"
        super().__init__(f"unknown model {key!r}: the Lingma CLI offers {names}")


class CapabilityMissing(LingmaError):
    """The agent did not declare what a call needs (e.g. ``sessionCapabilities.list``)."""

"""Which credential the Lingma CLI logs in with, and the words that explain the choice.

``qoderclicn`` logs in without a browser from a token in its environment, adopted at
start (PROTOCOL.md section 10.1), else from the login ``qoderclicn login`` stored under
``~/.qoder-cn``. lingma-mcp passes its own environment on to the CLI, so a token in the
MCP host's config for lingma-mcp reaches it. The login names the kind in use and the
variable it came from, never its value. Pure.

What a person must know to choose: whatever the CLI runs itself (its Bash tool) inherits
the CLI's environment, token included, whereas the commands lingma-mcp runs for Lingma get
a clean environment without it (``workspace/command_env.py``). A stored login keeps the
token out of every environment, so it is the one to prefer where a person can log in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from lingma_mcp.acp.cli_errors import NOT_LOGGED_IN_MESSAGE

# In the order the CLI looks for them; QODERCN_PAT is the short alias of the first.
TOKEN_VARIABLES: tuple[tuple[str, str], ...] = (
    ("QODERCN_PERSONAL_ACCESS_TOKEN", "personal access token"),
    ("QODERCN_PAT", "personal access token"),
    ("QODERCN_SERVICE_ACCOUNT_KEY", "service account key"),
    ("QODERCN_JOB_TOKEN", "job token"),
)
STORED_LOGIN = "stored login (qoderclicn login)"

INHERITED_WARNING = (
    "The Lingma CLI's own tools inherit its environment, token included: a command the CLI "
    "runs itself (its Bash tool, after your approval) can read the token. Commands "
    "lingma-mcp runs never see it. Where you can, log in once with `qoderclicn login` in a "
    "terminal and leave the token out of the server's environment."
)

LOGIN_INSTRUCTIONS = (
    "The Lingma CLI has no login URL. Log in once in a terminal with `qoderclicn login` "
    "(the login is stored in ~/.qoder-cn; the safer choice), or, where no one can log in "
    "(CI, a headless machine), give lingma-mcp a credential in its environment (the "
    "`env` of its entry in the MCP host's config): QODERCN_PERSONAL_ACCESS_TOKEN (or "
    "QODERCN_PAT) for a personal access token, QODERCN_SERVICE_ACCOUNT_KEY for a service "
    f"account, QODERCN_JOB_TOKEN for a CI job; then restart the server. {INHERITED_WARNING} "
    "Then call auth_status to check, and ask again."
)


@dataclass(frozen=True, slots=True)
class Credential:
    """The credential the CLI was started with: a token's kind and variable, or none (its
    stored login)."""

    kind: str | None = None
    variable: str | None = None

    @property
    def token(self) -> bool:
        return self.variable is not None

    def __str__(self) -> str:
        return f"{self.kind} ({self.variable})" if self.token else STORED_LOGIN

    def refused(self) -> str:
        """The instructions for a CLI that is logged out although it was given this."""
        if not self.token:
            return NOT_LOGGED_IN_MESSAGE
        return (
            f"not logged in to the Lingma CLI: it did not accept the {self.kind} in "
            f"{self.variable}. Check or renew it (and restart the server), or remove it and "
            "run `qoderclicn login` in a terminal, then ask again"
        )


def credential_in(env: Mapping[str, str]) -> Credential:
    """The credential the CLI started with ``env`` logs in with (the first token variable
    set to something, as the CLI looks), else its stored login."""
    for name, kind in TOKEN_VARIABLES:
        if env.get(name, "").strip():
            return Credential(kind, name)
    return Credential()

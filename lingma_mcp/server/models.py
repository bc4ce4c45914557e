"""Pydantic models at the MCP edge: what each tool returns (its ``outputSchema``).

Field names are a contract with hosts and users' prompts: change them only with the issue.
Every model here is built from allow-listed values; none has a field that could hold a
token.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ToolEvent(BaseModel):
    """One tool call Lingma made while answering (agent mode)."""

    id: str = Field(description="Lingma's tool call id.")
    name: str = Field(description="Tool name, e.g. read_file.")
    status: str = Field(description="Last known state, e.g. RUNNING, FINISHED, ERROR.")
    input: Any = Field(default=None, description="The tool's parameters, as Lingma sent them.")
    result: Any = Field(default=None, description="The tool's result, when Lingma sent one.")


class AskResult(BaseModel):
    """The whole answer of one ``ask_lingma`` call."""

    answer: str = Field(description="Lingma's answer (Markdown).")
    session_id: str | None = Field(description="Pass as session_id to continue this conversation.")
    request_id: str = Field(description="Lingma's request id for this answer.")
    model: str | None = Field(description="The model key asked for (None: Lingma's default).")
    mode: str = Field(description="chat or agent.")
    finish_reason: str | None = Field(description="How Lingma ended the answer, e.g. success.")
    status_code: int | None = Field(description="Lingma's status code (200 success).")
    tool_events: list[ToolEvent] = Field(
        default_factory=list, description="Tool calls Lingma made (agent mode)."
    )
    thinking: str = Field(default="", description="Lingma's reasoning text, if it sent any.")
    first_token_ms: int | None = Field(description="Milliseconds until the first answer text.")
    total_ms: int | None = Field(description="Milliseconds for the whole answer.")


class ModelInfo(BaseModel):
    """One model the account can use."""

    key: str = Field(description="Pass as ask_lingma's model.")
    display_name: str = Field(description="The name Lingma shows.")
    reasoning: bool = Field(description="A reasoning (thinking) model.")
    vision: bool = Field(description="Accepts images.")
    default: bool = Field(description="Used when no model is given.")


class ModelList(BaseModel):
    """The models this account can use, by scene."""

    scenes: dict[str, list[ModelInfo]] = Field(
        description="Scene (chat, developer = agent mode, ...) to its models."
    )
    default_model: str | None = Field(
        description="The model ask_lingma uses when none is given (--model, else Lingma's)."
    )


class BridgeState(BaseModel):
    """This server's own view of the Lingma process."""

    state: str = Field(description="stopped, starting, ready, reconnecting, failed or closed.")
    pid: int | None = None
    port: int | None = None
    version: str | None = Field(default=None, description="Lingma's version.")
    last_error: str | None = None
    work_dir: str | None = Field(default=None, description="Lingma's --workDir.")
    log_hint: str | None = Field(default=None, description="Where Lingma's logs are.")
    simulated: bool = Field(default=False, description="Running against the simulator.")
    backend: str | None = Field(
        default=None,
        description="What serves: ide (the IDE plugin's Lingma binary) or cli (the official "
        "Lingma CLI, qoderclicn); version is then that program's version.",
    )


class AuthInfo(BaseModel):
    """Who is logged in to Lingma. Never holds a token."""

    logged_in: bool | None = Field(description="None when Lingma could not be asked.")
    status: str = Field(description="The login state in words.")
    whitelist: str | None = Field(default=None, description="The whitelist state in words.")
    user_name: str | None = None
    user_type: str | None = None
    org_name: str | None = None
    expires_at: str | None = Field(default=None, description="Login expiry, ISO 8601 UTC.")
    quota: Any = Field(default=None, description="Quota as Lingma reports it, when known.")
    problem: str | None = Field(
        default=None, description="What is wrong and how to fix it, when something is."
    )
    bridge: BridgeState


class LoginInfo(BaseModel):
    """Where to log in."""

    login_url: str = Field(description="Open this in a browser and log in to Lingma.")
    message: str = Field(description="What to do with the URL.")
    opened_by_host: bool = Field(
        description="True if the host accepted to open the URL for the user."
    )

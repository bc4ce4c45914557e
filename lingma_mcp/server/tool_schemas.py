"""The outputSchema of the tools that only the MCP face answers: login, jobs, revert,
the conversation tools.

The answers, models and login state the asking service returns have their models beside it
(:mod:`lingma_mcp.asking.results`); these are built by the face itself. Field names are a
contract with hosts and users' prompts, as there.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from ..asking.results import AskResult, SessionInfo


class LoginInfo(BaseModel):
    """Where to log in."""

    login_url: str = Field(description="Open this in a browser and log in to Lingma.")
    message: str = Field(description="What to do with the URL.")
    opened_by_host: bool = Field(
        description="True if the host accepted to open the URL for the user."
    )


class JobState(BaseModel):
    """A background ``ask_lingma`` job, as ``check_lingma_job`` and ``cancel_lingma_job`` see it."""

    job_id: str
    status: Literal["running", "done", "failed", "cancelled"]
    text: str = Field(
        description="Answer text written since the previous check of this job (at most "
        "--max-result-chars; the rest follows at the next check)."
    )
    unread_chars: int = Field(description="Answer text written but not yet returned.")
    elapsed_s: float = Field(description="Seconds since the job started (until it ended).")
    result: AskResult | None = Field(
        default=None, description="When done: the whole ask_lingma result."
    )
    error: str | None = Field(
        default=None, description="When failed: what went wrong and what to do."
    )
    notes: list[str] = Field(
        default_factory=list, description="What the job could not ask the person, e.g. denials."
    )
    waiting_for_approval: str | None = Field(
        default=None,
        description="While the job waits for the person's approval (agent mode): the "
        "question; check_lingma_job asks it where the host supports form elicitation.",
    )


class RevertRefusal(BaseModel):
    """A file revert_changes left as it is, and why."""

    path: str
    reason: str


class RevertResult(BaseModel):
    """What revert_changes put back."""

    request_id: str
    restored: list[str] = Field(description="Files put back as they were before the call.")
    refused: list[RevertRefusal] = Field(
        description="Files left as they are (changed again since, or already reverted)."
    )


class SessionList(BaseModel):
    """This workspace's conversations, newest first."""

    sessions: list[SessionInfo]
    total: int = Field(description="How many there are; sessions holds the newest of them.")
    workspace: str = Field(description="The workspace whose conversations these are.")


class DeletedSession(BaseModel):
    """A conversation delete_lingma_session removed."""

    session_id: str
    deleted: bool = Field(description="True: Lingma removed it.")

"""What the asking service returns, as pydantic models: an answer, the models, the login.

The MCP face sends them as they are, as structured results; their schemas are the tools'
``outputSchema``. Field names are a contract with hosts and users' prompts: change them
only with the issue. Every model here is built from allow-listed values; none has a field
that could hold a token.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, PrivateAttr, model_serializer

# Any JSON value, spelled out so the output schema gives every field a type (a bare Any
# becomes a schema without one, which strict hosts and the Inspector flag).
JsonValue = dict[str, Any] | list[Any] | str | int | float | bool | None


class ToolEvent(BaseModel):
    """One tool call Lingma made while answering (agent mode)."""

    id: str = Field(description="Lingma's tool call id.")
    name: str = Field(description="Tool name, e.g. read_file.")
    status: str = Field(description="Last known state, e.g. RUNNING, FINISHED, ERROR.")
    input: JsonValue = Field(
        default=None, description="The tool's parameters, as Lingma sent them."
    )
    result: JsonValue = Field(default=None, description="The tool's result, when Lingma sent one.")


class FileChange(BaseModel):
    """One file an agent-mode call changed (its first content against its last)."""

    @model_serializer(mode="wrap")
    def _without_unset_flags(self, handler: Any) -> dict[str, Any]:
        # binary/skipped are said only when true: most files are neither.
        data = handler(self)
        return {k: v for k, v in data.items() if v is not None or k not in ("binary", "skipped")}

    path: str = Field(description="Relative to the call's workspace.")
    action: Literal["created", "modified", "deleted"]
    lines_added: int
    lines_removed: int
    by: str = Field(
        default="unknown",
        description="What made the change: a hosted tool (write_text, "
        "replace_text_by_path...), the CLI's own tool (Edit, Write, 'Bash: <command>'), "
        "'command: <command>' for a command lingma-mcp ran, Lingma's own tool (edit_file...), "
        "or 'unknown' where no event explains it (a change the person made meanwhile, say). "
        "Several, joined by '; ', when several changed the file.",
    )
    binary: bool | None = Field(
        default=None, description="True for a binary file (named, not shown as a diff)."
    )
    skipped: bool | None = Field(
        default=None,
        description="True when the file was over the size bound (--checkpoint-max-file-mb): "
        "it changed, but its contents were not kept, so it is neither diffed nor reverted.",
    )


class Approval(BaseModel):
    """One decision on an action Lingma wanted to take (agent mode)."""

    tool: str = Field(description="The tool, e.g. create_file_with_text or run_in_terminal.")
    target: str = Field(description="The path (relative to the workspace) or the command.")
    decision: Literal["allowed", "denied"]
    by: Literal[
        "policy",
        "person",
        "read_only",
        "confinement",
        "policy (nobody could be asked)",
        "host form failed",
        "withdrawn (the call ended)",
    ] = Field(
        description="Who decided: the server's approval setting; the person through the "
        "host; the call's read_only; confinement (a target outside the workspace, refused "
        "before anyone was asked); the setting's fallback because nobody could be asked; "
        "a host whose approval form failed; or the call ending before an answer."
    )


class Usage(BaseModel):
    """What the answer cost, as Lingma reported it. A field is null where Lingma did not
    say (never 0 for unknown)."""

    input_tokens: int | None = Field(default=None, description="Tokens read (the prompt).")
    output_tokens: int | None = Field(default=None, description="Tokens written (the answer).")
    total_tokens: int | None = Field(default=None, description="All tokens of the answer.")
    model: str | None = Field(
        default=None, description="The model that served, as Lingma names it (e.g. auto)."
    )
    credits: float | None = Field(default=None, description="Credits charged, where given.")


class AttachmentInfo(BaseModel):
    """One attachment the question carried."""

    type: Literal["file", "folder", "image"]
    name: str = Field(description="Its path in the workspace, or image N for inline data.")
    mime_type: str | None = Field(default=None, description="For files and images.")
    size_bytes: int | None = Field(default=None, description="For files and images.")


class AskResult(BaseModel):
    """One ``ask_lingma`` call: the whole answer, or (``status`` running) the text so far.

    A running result (a background or detached call) has ``answer`` (the text so far),
    ``status`` and ``job_id``; every other field is null until the job is done.
    """

    answer: str = Field(description="Lingma's answer (Markdown); while running, the text so far.")
    session_id: str | None = Field(description="Pass as session_id to continue this conversation.")
    continued: bool | None = Field(
        default=None,
        description="True when the session_id asked for was continued; false when Lingma did "
        "not know it and started a new conversation (its earlier context is lost); null when "
        "no session_id was given.",
    )
    forked_from: str | None = Field(
        default=None,
        description="With fork=true: the conversation this call forked; session_id is the "
        "fork's, and the conversation forked from is left as it was.",
    )
    request_id: str | None = Field(description="Lingma's request id for this answer.")
    model: str | None = Field(description="The model key asked for (None: Lingma's default).")
    mode: str | None = Field(description="chat or agent.")
    finish_reason: str | None = Field(description="How Lingma ended the answer, e.g. success.")
    status_code: int | None = Field(description="Lingma's status code (200 success).")
    tool_events: list[ToolEvent] | None = Field(
        default_factory=list, description="Tool calls Lingma made (agent mode)."
    )
    changes: list[FileChange] = Field(
        default_factory=list,
        description="Files this call changed (agent mode); lingma://changes/{request_id} "
        "shows the diff, revert_changes(request_id) puts them back.",
    )
    approvals: list[Approval] = Field(
        default_factory=list, description="Every decision on an action Lingma wanted to take."
    )
    thinking: str | None = Field(default="", description="Lingma's reasoning text, if it sent any.")
    first_token_ms: int | None = Field(description="Milliseconds until the first answer text.")
    total_ms: int | None = Field(description="Milliseconds for the whole answer.")
    usage: Usage | None = Field(
        default=None,
        description="Tokens, model and credits of this answer where Lingma reported them; "
        "null where it did not (the CLI backend reports them, the IDE backend rarely).",
    )
    attachments: list[AttachmentInfo] = Field(
        default_factory=list, description="What the question carried beside the prompt."
    )
    # -- jobs and big answers (issue 11) --
    job_id: str | None = Field(
        default=None,
        description="While running: the job to pass to check_lingma_job; null when done.",
    )
    status: Literal["done", "running"] = Field(
        default="done", description="done, or running (the call continues as job_id)."
    )
    answer_truncated: bool | None = Field(
        default=False,
        description="True if answer was cut to --max-result-chars; the whole answer is at "
        "lingma://answers/{request_id}.",
    )
    answer_chars: int | None = Field(
        default=None, description="The whole answer's length in characters."
    )
    # Text for the person beside the answer (e.g. what was denied and how to allow it);
    # shown after the answer in the text content, never part of the structured result.
    _note: str = PrivateAttr(default="")

    @property
    def note(self) -> str:
        return self._note

    def set_note(self, note: str) -> None:
        self._note = note


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
    sandbox: dict[str, Any] | None = Field(
        default=None,
        description="Agent mode's OS sandbox as enforced on this machine: mode "
        "(workspace-write, read-only, off), enforced, mechanism and version (landlock ABI, "
        "seatbelt), network (for commands), containment (what keeps a command's processes "
        "from outliving it), and not_enforced: what this machine cannot enforce.",
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
    quota: dict[str, float] | float | None = Field(
        default=None, description="Quota as Lingma reports it (numbers only), when known."
    )
    problem: str | None = Field(
        default=None, description="What is wrong and how to fix it, when something is."
    )
    credential: str | None = Field(
        default=None,
        description="Which credential Lingma logs in with, never its value: on the CLI "
        "backend a token variable by name (e.g. personal access token "
        "(QODERCN_PERSONAL_ACCESS_TOKEN)) or its stored login; null where unknown.",
    )
    bridge: BridgeState


class SessionInfo(BaseModel):
    """One Lingma conversation."""

    session_id: str = Field(
        description="Pass as ask_lingma's session_id to continue it (with fork=true to "
        "continue a copy)."
    )
    title: str | None = Field(description="As Lingma titled it (the CLI: the latest prompt).")
    updated: str | None = Field(description="Last change, ISO 8601 UTC, where known.")
    created: str | None = Field(default=None, description="ISO 8601 UTC, where known.")
    backend: Literal["ide", "cli"] = Field(description="What holds it.")
    workspace: str | None = Field(default=None, description="The folder it was asked in.")
    turns: int | None = Field(default=None, description="How many turns, where listed.")

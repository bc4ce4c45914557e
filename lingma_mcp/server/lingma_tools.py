"""The four tools: ask_lingma, list_models, auth_status, login.

Each tool is thin: read the host's context (progress token, roots, elicitation), call the
:class:`~lingma_mcp.asking.bridge.Bridge`, and shape the answer as a tool result with text
content and, for success, ``structuredContent`` matching the tool's ``outputSchema``.
Failures become ``isError`` results whose text comes from
:mod:`lingma_mcp.asking.error_texts`, so the server stays usable.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Annotated

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult, InputRequiredResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field

from ..asking.arguments import MAX_TIMEOUT_S, SEND, validate
from ..asking.bridge import Bridge
from ..asking.error_texts import InvalidArgument, invalid_argument, not_logged_in
from ..asking.results import AskResult, AuthInfo, ModelList
from ..workspace import WorkspaceError
from ..workspace.paths import check_agent_workspace
from .answers import result_size_meta
from .approvals import JobAsker, form_elicitation_declared
from .attachments import AttachmentItem, resolve_attachments
from .input_required import is_retry
from .job_tools import AskJobs
from .progress import ProgressRelay
from .review_app import link_meta
from .roots import call_workspace
from .tool_schemas import LoginInfo

log = logging.getLogger(__name__)

ELICIT_TIMEOUT_S = 120.0  # the login URL offer

ASK_DESCRIPTION = """Ask Lingma (Alibaba Cloud's Tongyi Lingma coding assistant) and wait for \
its whole answer. The answer streams as progress while Lingma writes it.

Continue a conversation by passing the session_id an earlier result returned \
(list_lingma_sessions lists them); add fork=true to try an alternative in a copy of it, \
leaving the conversation as it was. attachments hand Lingma workspace files and folders to \
read first and images to look at (a screenshot, a diagram). The result reports usage \
(tokens, model, credits) where Lingma reports it. mode "agent" \
lets Lingma use its tools and may change files in the workspace; "chat" (default) only \
answers. In agent mode the person approves each change through the host (unless the server \
allows it), read_only=true forbids changes, and the result lists the files changed: \
revert_changes(request_id) undoes them. Errors (not logged in, rate limited, Lingma not \
installed, timeout) come back as text that says what to do.

background=true returns at once with a job_id; a waiting call may also return early saying \
it continues as a job. Either way, follow it with check_lingma_job(job_id). A very long \
answer comes back cut, with a link to the whole answer (lingma://answers/{request_id})."""


def _tool_error(text: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True)


def _tool_ok(text: str, model: BaseModel) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(type="text", text=text)],
        structured_content=model.model_dump(mode="json"),
    )


def _json_text(model: BaseModel) -> str:
    return json.dumps(model.model_dump(mode="json"), indent=2, ensure_ascii=False)


def register_tools(app: MCPServer, bridge: Bridge, asks: AskJobs) -> None:
    """Add the four tools to ``app``; ``asks`` runs ask_lingma's asks as jobs."""

    @app.tool(
        name="ask_lingma",
        title="Ask Lingma",
        description=ASK_DESCRIPTION,
        annotations=ToolAnnotations(
            title="Ask Lingma",
            read_only_hint=False,  # agent mode can edit files
            destructive_hint=True,
            idempotent_hint=False,
            open_world_hint=True,
        ),
        # Answers longer than this come back cut (answers.py): the most this tool sends.
        # Hosts with MCP Apps show an agent-mode result's changes as a review (review_app.py).
        meta={**result_size_meta(bridge.settings.max_result_chars), **link_meta()},
    )
    async def ask_lingma(
        ctx: Context,
        prompt: Annotated[str, Field(strict=True, description="The question or task for Lingma.")],
        model: Annotated[
            str | None,
            Field(description="A model key from list_models; default: the server's --model."),
        ] = None,
        mode: Annotated[
            str | None,
            Field(
                description='"chat" (answer only) or "agent" (may use tools and edit files); '
                "default: the server's --mode.",
                json_schema_extra={"enum": ["chat", "agent", None]},
            ),
        ] = None,
        session_id: Annotated[
            str | None,
            Field(description="Continue the conversation an earlier result's session_id names."),
        ] = None,
        workspace: Annotated[
            str | None,
            Field(
                description="A folder for Lingma's context (and, in agent mode, the only one it "
                "may change); default: the host's first root, else the server's --workspace. "
                "It must lie inside one of those."
            ),
        ] = None,
        timeout_s: Annotated[
            float | None,
            Field(
                strict=True,
                gt=0,
                le=MAX_TIMEOUT_S,
                allow_inf_nan=False,
                description="Seconds for the whole call, at most a day (86400); default: "
                "--request-timeout.",
            ),
        ] = None,
        background: Annotated[
            bool,
            Field(
                description="Return at once with a job_id and follow the answer with "
                "check_lingma_job (for hosts that cut long calls)."
            ),
        ] = False,
        read_only: Annotated[
            bool,
            Field(
                description="Agent mode: deny every write, delete and command for this call, "
                "whatever the server's approval setting."
            ),
        ] = False,
        attachments: Annotated[
            list[AttachmentItem] | None,
            Field(
                description="What Lingma should look at with the prompt, each an object by "
                'type: {"type": "file", "path": "src/app.py"}, {"type": "folder", "path": '
                '"src"}, {"type": "image", "path": "shot.png"}, or {"type": "image", "data": '
                '"<base64>", "mime_type": "image/png"}. Paths lie inside the call\'s '
                "workspace; images are PNG, JPEG, GIF or WebP up to 5 MB; at most 20 items. "
                "The CLI backend sends all of these; the IDE backend sends files only.",
            ),
        ] = None,
        fork: Annotated[
            bool,
            Field(
                description="With session_id: continue in a copy of that conversation (its "
                "history up to now), leaving it as it was; the result's session_id is the "
                "copy's. The CLI backend forks; the IDE backend refuses."
            ),
        ] = False,
        reasoning_effort: Annotated[
            str | None,
            Field(
                description="How hard the model reasons: one of the values the Lingma CLI "
                "offers for the model (none, high, max on today's accounts; another value is "
                "refused with the ones offered); default: the server's --reasoning-effort. "
                "The IDE backend has no such option."
            ),
        ] = None,
    ) -> Annotated[CallToolResult, AskResult] | InputRequiredResult:
        async def send(progress: float, message: str) -> None:
            await ctx.report_progress(progress, None, message)

        if is_retry(ctx):
            # 2026-07-28: the client retries with the person's answer to an approval this
            # call's first round asked; the same job goes on (its arguments were checked then,
            # and the SDK's seal binds the state to them).
            async with ProgressRelay(send, keepalive_s=bridge.settings.keepalive_s) as relay:
                return await asks.resume(ctx, relay)
        # The folder is checked first: outside the host's roots (or --workspace) is refused
        # before Lingma is asked.
        try:
            folder, from_roots = await call_workspace(ctx, workspace, bridge.settings.workspace)
        except WorkspaceError as exc:
            problem = str(exc).rstrip(".")
            return _tool_error(str(invalid_argument("workspace", problem, SEND["workspace"])))
        try:
            params = validate(
                bridge.settings,
                prompt,
                model=model,
                mode=mode,
                session_id=session_id,
                workspace=folder,
                timeout_s=timeout_s,
                fork=fork,
                reasoning_effort=reasoning_effort,
            )
            # Confined to the call's folder, as everything Lingma touches in it.
            params.attachments = await resolve_attachments(
                attachments, params.workspace, guarded=[bridge.agents.work_dir]
            )
        except InvalidArgument as exc:
            return _tool_error(str(exc))
        if from_roots:
            bridge.workspace = folder

        # The ask runs as a job (job_tools.py): background, detach, big answers, errors.
        async with ProgressRelay(send, keepalive_s=bridge.settings.keepalive_s) as relay:
            asker = None
            if params.mode == "agent":
                try:
                    check_agent_workspace(
                        params.workspace,
                        explicit=from_roots or bridge.settings.workspace_explicit,
                        work_dir=bridge.agents.work_dir,
                    )
                except WorkspaceError as exc:
                    problem = str(exc).rstrip(".")
                    return _tool_error(
                        str(invalid_argument("workspace", problem, SEND["workspace"]))
                    )
                # Its questions wait on the job for whichever call follows it (this one, a
                # retry, a check_lingma_job); only a host that cannot show forms at all, or
                # nobody answering in time, leaves them to the policy.
                asker = JobAsker(
                    reachable=form_elicitation_declared(ctx),
                    timeout_s=bridge.settings.approval_timeout,
                )
                params.agent = bridge.agents.begin(
                    params.workspace,
                    read_only=read_only,
                    asker=asker,
                    on_note=asker.status,
                    why_nobody=lambda: asker.why_nobody,
                )
            return await asks.ask(ctx, params, relay, background=background, asker=asker)

    @app.tool(
        name="list_models",
        title="List Lingma models",
        description="The models this Lingma account can use, by scene (chat; developer = "
        "agent mode), with key, display name, reasoning and vision flags, and the default.",
        annotations=ToolAnnotations(
            title="List Lingma models",
            read_only_hint=True,
            destructive_hint=False,
            idempotent_hint=True,
            open_world_hint=False,
        ),
    )
    async def list_models(
        scene: Annotated[
            str | None,
            Field(description="Only this scene, e.g. chat or developer; default: all."),
        ] = None,
    ) -> Annotated[CallToolResult, ModelList]:
        try:
            models = await bridge.model_list(scene)
        except Exception as exc:
            return _tool_error(bridge.error_text(exc))
        return _tool_ok(_json_text(models), models)

    @app.tool(
        name="auth_status",
        title="Lingma login status",
        description="Whether Lingma is logged in (state and whitelist in words), the user "
        "name, expiry and quota when known, which credential the Lingma CLI logs in with (a "
        "token variable by name, or its stored login), and this bridge's own state (Lingma "
        "state, pid, port, version, last error). Never returns a token.",
        annotations=ToolAnnotations(
            title="Lingma login status",
            read_only_hint=True,
            destructive_hint=False,
            idempotent_hint=True,
            open_world_hint=False,
        ),
    )
    async def auth_status() -> Annotated[CallToolResult, AuthInfo]:
        info = await bridge.auth()
        return _tool_ok(auth_summary(info) + "\n\n" + _json_text(info), info)

    @app.tool(
        name="login",
        title="Log in to Lingma",
        description="Get Lingma's login URL. Open it in a browser and log in; where the host "
        "supports it, the host is asked to open the URL. The Lingma CLI backend has no URL: "
        "it says how to log in instead (qoderclicn login, or a token in the server's "
        "environment).",
        annotations=ToolAnnotations(
            title="Log in to Lingma",
            read_only_hint=True,
            destructive_hint=False,
            idempotent_hint=False,
            open_world_hint=True,
        ),
    )
    async def login(ctx: Context) -> Annotated[CallToolResult, LoginInfo]:
        try:
            url = await bridge.login_url()
        except Exception as exc:
            return _tool_error(bridge.error_text(exc))
        message = (
            "Open this URL in a browser and log in to Lingma; then call auth_status to "
            "check, and ask again."
        )
        opened = await _offer_url(ctx, url)
        info = LoginInfo(login_url=url, message=message, opened_by_host=opened)
        return _tool_ok(f"{message}\n\n{url}", info)


async def _offer_url(ctx: Context, url: str) -> bool:
    """Ask the host to open ``url`` (URL elicitation) where it says it can."""
    try:
        caps = ctx.client_capabilities
        elicitation = caps.elicitation if caps is not None else None
        if elicitation is None or elicitation.url is None or not ctx.session.can_send_request:
            return False
        with anyio.move_on_after(ELICIT_TIMEOUT_S):
            answer = await ctx.elicit_url(
                "Log in to Lingma (Tongyi Lingma) in your browser.", url, uuid.uuid4().hex
            )
            return answer.action == "accept"
    except Exception as exc:
        log.debug("URL elicitation failed: %r", exc)
    return False


def auth_summary(info: AuthInfo) -> str:
    """One or two lines on the login state, for text content and the terminal."""
    bridge = info.bridge
    where = f"Lingma {bridge.state}"
    if bridge.version:
        where += f", version {bridge.version}"
    if bridge.pid:
        where += f", pid {bridge.pid}"
    if bridge.simulated:
        where += " (simulator)"
    if info.logged_in:
        who = f"Logged in as {info.user_name or 'unknown user'}"
        if info.expires_at:
            who += f" until {info.expires_at}"
        if info.credential:
            who += f", with the {info.credential}"
        return f"{who}. {where}."
    if info.logged_in is None:
        line = f"Login state unknown: {info.status}. {where}."
    else:
        line = f"{not_logged_in(info.status)} {where}."
    if info.problem:
        line += f"\n{info.problem}"
    return line

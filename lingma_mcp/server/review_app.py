"""The change review as an MCP App: a page that shows what one agent-mode call changed.

Hosts that render MCP Apps (the ``io.modelcontextprotocol/ui`` extension) show the
``ui://`` page (``review_page.py``) with the result of a tool whose ``_meta.ui.resourceUri``
names it: ``ask_lingma`` (so an agent-mode answer comes with its review) and
``review_changes`` (a call's review at any later time). The page shows the files, the diff
with syntax highlighting, what made each change and what was approved, and reverts the call
or single files through ``revert_changes``, which the host forwards on the page's behalf.

Every host gets text as before: ``review_changes`` answers with a summary and the unified
diff, and ``lingma://changes/{request_id}`` stays. A host without Apps support ignores the
``_meta.ui`` of a tool (SEP-2133: an extension degrades to what the core offers).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from mcp.server.apps import Apps
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field

from ..asking.bridge import Bridge
from ..asking.results import Approval
from ..workspace import UnknownChangeRecord, WorkspaceError
from .changes import call_changes, call_diff
from .review_page import review_page

REVIEW_URI = "ui://lingma/review.html"
NOTE_PREFIXES = ("# ", "[lingma-mcp:")

REVIEW_DESCRIPTION = """Show what one agent-mode ask_lingma call changed: the files, who or \
what made each change, what the person approved, and the unified diff. Hosts that render \
MCP Apps show it as a review page with buttons that revert the whole call or single files \
(revert_changes); others get the diff as text. Pass the request_id of an agent-mode result \
(also one that ran as a job)."""


class ReviewedFile(BaseModel):
    """One file the call changed, as the review lists it."""

    path: str = Field(description="Relative to the call's workspace.")
    action: str = Field(description="created, modified or deleted.")
    lines_added: int
    lines_removed: int
    by: str | None = Field(
        default=None,
        description="What made the change (a tool, a command, or unknown); null where the "
        "record does not say.",
    )
    binary: bool = False
    skipped: bool = Field(
        default=False, description="True for a file too large to keep: listed, not diffed."
    )


class ChangeReview(BaseModel):
    """One agent-mode call's changes, for the review page and as text."""

    request_id: str
    running: bool = Field(description="True while the call runs: its changes so far.")
    changes: list[ReviewedFile]
    approvals: list[Approval] | None = Field(
        description="Every decision on an action Lingma wanted to take; null when this "
        "server no longer knows them (they are kept in memory, for the last 100 calls)."
    )
    diff: str = Field(description="The unified diff of the changes (without the notes).")
    notes: list[str] = Field(
        description="What the diff cannot show: files left out, a diff cut at its limit."
    )


def split_notes(diff: str) -> tuple[str, list[str]]:
    """The patch of a call's diff, and its notes (the lines that are not part of a patch).

    The change record adds ``# path: ...`` lines for files it could not diff and a
    ``[lingma-mcp: ...]`` line where it cut the diff. Neither can occur inside a patch,
    whose lines begin with a header word, ``@@``, a space, ``+``, ``-`` or ``\\``.
    """
    patch: list[str] = []
    notes: list[str] = []
    for line in diff.splitlines(keepends=True):
        if line.startswith(NOTE_PREFIXES):
            notes.append(line.strip())
        elif line.strip() or patch:  # a blank line only separates a note from the patch
            patch.append(line)
    while patch and not patch[-1].strip():
        patch.pop()
    return "".join(patch), notes


_HUNK = re.compile(r"@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@")


def git_headers(patch: str) -> str:
    """``patch`` with git's header before every file section that has none.

    The change journal writes plain unified diffs (``--- /dev/null`` for a created file);
    diff viewers, diff2html among them, tell a created or deleted file from a renamed one
    only by git's ``new file mode`` and ``deleted file mode`` lines. Hunks are followed by
    their line counts, so a removed line that reads ``-- x`` is never taken for a header.
    """
    lines = patch.splitlines(keepends=True)
    out: list[str] = []
    old_left = new_left = 0  # lines still to come in the current hunk
    headed = False  # the current file section began with "diff --git"
    for i, line in enumerate(lines):
        if old_left or new_left:
            if line.startswith((" ", "-")):
                old_left -= 1
            if line.startswith((" ", "+")):
                new_left -= 1
            old_left, new_left = max(old_left, 0), max(new_left, 0)
        elif line.startswith("diff --git "):
            headed = True
        elif found := _HUNK.match(line):
            old_left = 1 if found[1] is None else int(found[1])
            new_left = 1 if found[2] is None else int(found[2])
            headed = False
        elif not headed and line.startswith("--- ") and lines[i + 1 : i + 2] != []:
            after = lines[i + 1]
            if after.startswith("+++ "):
                before_name, after_name = line[4:].rstrip("\n"), after[4:].rstrip("\n")
                name = (after_name if after_name != "/dev/null" else before_name)[2:]
                out.append(f"diff --git a/{name} b/{name}\n")
                if before_name == "/dev/null":
                    out.append("new file mode 100644\n")
                elif after_name == "/dev/null":
                    out.append("deleted file mode 100644\n")
                headed = True
        out.append(line)
    return "".join(out)


def review_text(review: ChangeReview) -> str:
    """The review for a reader of text: what changed, who made it, then the diff."""
    count = len(review.changes)
    head = f"Call {review.request_id} changed {count} file{'' if count == 1 else 's'}"
    lines = [head + (" so far (it is still running)." if review.running else ".")]
    for change in review.changes:
        by = f", by {change.by}" if change.by else ""
        lines.append(
            f"- {change.path}: {change.action} (+{change.lines_added} -{change.lines_removed}{by})"
        )
    if review.approvals:
        lines.append("Approvals:")
        lines.extend(f"- {a.decision} {a.tool} {a.target} (by {a.by})" for a in review.approvals)
    lines.extend(review.notes)
    if review.diff:
        lines += ["", review.diff.rstrip("\n")]
    if count and not review.running:
        lines += [
            "",
            f'revert_changes(request_id="{review.request_id}") undoes it; paths=[...] '
            "undoes single files.",
        ]
    return "\n".join(lines)


def link_meta() -> dict[str, Any]:
    """The ``_meta`` that links a tool's results to the review page (for ``ask_lingma``)."""
    return {"ui": {"resourceUri": REVIEW_URI}}


async def read_review(bridge: Bridge, request_id: str) -> ChangeReview:
    """What ``review_changes`` shows of one call.

    Raises:
        UnknownChangeRecord: no record of that call, and no approvals either.
    """
    agents = bridge.agents
    approvals = agents.approvals(request_id)
    try:
        changes = await call_changes(agents, request_id)
        diff = await call_diff(agents, request_id)
    except UnknownChangeRecord:
        if not approvals:
            raise
        # A call that changed nothing after deciding on approvals (every one denied, say).
        changes, diff = [], ""
    patch, notes = split_notes(diff)
    return ChangeReview(
        request_id=request_id,
        running=agents.is_running(request_id),
        changes=[ReviewedFile.model_validate(c) for c in changes],
        approvals=None if approvals is None else [Approval.model_validate(a) for a in approvals],
        diff=git_headers(patch),
        notes=notes,
    )


def review_extension(bridge: Bridge) -> Apps:
    """The MCP Apps extension of this server: the review page and ``review_changes``."""
    apps = Apps()
    apps.add_html_resource(
        REVIEW_URI,
        review_page(),
        name="lingma-review",
        title="Review of Lingma's changes",
        description="The files one agent-mode call changed, their diff, who made each "
        "change and what was approved, with buttons to revert them.",
        prefers_border=True,
    )

    @apps.tool(
        resource_uri=REVIEW_URI,
        name="review_changes",
        title="Review Lingma's changes",
        description=REVIEW_DESCRIPTION,
        annotations=ToolAnnotations(
            title="Review Lingma's changes",
            read_only_hint=True,
            destructive_hint=False,
            idempotent_hint=True,
            open_world_hint=False,
        ),
    )
    async def review_changes(
        request_id: Annotated[
            str, Field(description="The request_id of an agent-mode ask_lingma result.")
        ],
    ) -> Annotated[CallToolResult, ChangeReview]:
        request_id = request_id.strip()
        try:
            review = await read_review(bridge, request_id)
        except WorkspaceError as exc:  # no such record, or one that cannot be read
            return CallToolResult(content=[TextContent(type="text", text=str(exc))], is_error=True)
        return CallToolResult(
            content=[TextContent(type="text", text=review_text(review))],
            structured_content=review.model_dump(mode="json"),
        )

    return apps

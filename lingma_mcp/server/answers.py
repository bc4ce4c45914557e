"""A finished answer as a tool result: cut to what a host can take, the whole linked.

Hosts cut or refuse long tool results (one warns at about 10,000 tokens and cuts at
25,000, another keeps 10 KiB). An answer longer than ``--max-result-chars`` therefore comes
back as its first characters, cut at a line boundary, then one line that says how much was
left out and where the whole answer is, plus a ``resource_link`` to that resource. The text
content never passes the limit, note included, so the size the tool declares
(``_meta["anthropic/maxResultSizeChars"]``) is the most it ever sends.

The whole answers live in memory only
(:class:`~lingma_mcp.asking.answer_store.AnswerStore`), an hour each and a bounded number
of them; the conversation itself stays in ``lingma://sessions/{session_id}``.
"""

from __future__ import annotations

from typing import Any

from mcp.types import CallToolResult, ResourceLink, TextContent

from ..asking.answer_store import AnswerStore, cut_text
from ..asking.results import AskResult
from .progress import STATUS_PREFIX

ANSWER_URI = "lingma://answers/{request_id}"
ANSWER_MIME = "text/markdown"
RESULT_SIZE_META = "anthropic/maxResultSizeChars"


def answer_uri(request_id: str) -> str:
    return ANSWER_URI.format(request_id=request_id)


def result_size_meta(max_result_chars: int) -> dict[str, Any]:
    """The tool ``_meta`` that tells a host how large a result this tool sends at most."""
    return {RESULT_SIZE_META: max_result_chars}


def left_out_note(whole_chars: int, left_out: int, limit: int, where: str) -> str:
    return (
        f"\n\n[lingma] The answer is {whole_chars:,} characters; the last {left_out:,} were "
        f"left out to fit --max-result-chars {limit:,}. The whole answer: {where}."
    )


def continued_notice(result: AskResult) -> str:
    """A status line before the answer when the session_id asked for was not continued.

    Whole ids (a progress status line would shorten them): the host needs the new one.
    """
    if result.continued is not False:
        return ""
    return (
        f"{STATUS_PREFIX}the session_id asked for is not known to Lingma: this answer starts "
        f"a new conversation, session_id {result.session_id}, without the earlier context.\n\n"
    )


def shape_answer(result: AskResult, store: AnswerStore, limit: int) -> CallToolResult:
    """A finished answer as a tool result, cut to ``limit`` characters if it is longer.

    The text content and the structured ``answer`` carry the same head; ``answer_chars``
    is the whole length and ``answer_truncated`` says whether anything was left out.
    """
    whole = result.answer
    notice = continued_notice(result)
    after = f"\n\n{STATUS_PREFIX}{result.note}" if result.note else ""
    data = result.model_copy(
        update={
            "job_id": None,
            "status": "done",
            "answer_chars": len(whole),
            "answer_truncated": False,
        }
    )
    if len(whole) <= limit:
        return CallToolResult(
            content=[TextContent(type="text", text=notice + whole + after)],
            structured_content=data.model_dump(mode="json"),
        )
    links: list[ResourceLink] = []
    if result.request_id:
        store.put(result.request_id, whole)
        uri = answer_uri(result.request_id)
        where = f"read the resource {uri} (linked below)"
        links.append(
            ResourceLink(
                type="resource_link",
                uri=uri,
                name=f"lingma-answer-{result.request_id}",
                title="Lingma's whole answer",
                description=f"The whole answer, {len(whole):,} characters.",
                mime_type=ANSWER_MIME,
                size=len(whole.encode("utf-8")),
            )
        )
    elif result.session_id:
        where = f"the conversation lingma://sessions/{result.session_id}"
    else:
        where = "not kept (Lingma gave no request id)"
    # The note's length depends on how much was left out; sizing it for the whole length
    # gives an upper bound, so head + note never passes the limit.
    room = limit - len(left_out_note(len(whole), len(whole), limit, where))
    head = cut_text(whole, room)
    note = left_out_note(len(whole), len(whole) - len(head), limit, where)
    data.answer = head
    data.answer_truncated = True
    return CallToolResult(
        content=[TextContent(type="text", text=notice + head + note + after), *links],
        structured_content=data.model_dump(mode="json"),
    )

"""Big answers: cut to what a host can take, the whole kept behind ``lingma://answers/{id}``.

Hosts cut or refuse long tool results (one warns at about 10,000 tokens and cuts at
25,000, another keeps 10 KiB). An answer longer than ``--max-result-chars`` therefore comes
back as its first characters, cut at a line boundary, then one line that says how much was
left out and where the whole answer is, plus a ``resource_link`` to that resource. The text
content never passes the limit, note included, so the size the tool declares
(``_meta["anthropic/maxResultSizeChars"]``) is the most it ever sends.

The whole answers live in memory only (:class:`AnswerStore`), an hour each and a bounded
number of them; the conversation itself stays in ``lingma://sessions/{session_id}``.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from mcp.types import CallToolResult, ResourceLink, TextContent

from .models import AskResult
from .progress import STATUS_PREFIX

ANSWER_URI = "lingma://answers/{request_id}"
ANSWER_MIME = "text/markdown"
RESULT_SIZE_META = "anthropic/maxResultSizeChars"
DEFAULT_KEEP_S = 3600.0
DEFAULT_MAX_ANSWERS = 100
# Cutting at a newline is preferred, but not at the price of dropping more than this share
# of the room: one long paragraph is then cut at a space instead.
LINE_CUT_MIN_SHARE = 0.5


def answer_uri(request_id: str) -> str:
    return ANSWER_URI.format(request_id=request_id)


def result_size_meta(max_result_chars: int) -> dict[str, Any]:
    """The tool ``_meta`` that tells a host how large a result this tool sends at most."""
    return {RESULT_SIZE_META: max_result_chars}


def cut_text(text: str, limit: int) -> str:
    """At most ``limit`` characters of ``text``, ending at a line boundary where possible.

    The newline stays with the line it ends. Without a newline in the second half of the
    room, the cut falls after the last space there; failing that, at ``limit`` exactly.
    """
    if len(text) <= limit:
        return text
    if limit <= 0:
        return ""
    head = text[:limit]
    floor = int(limit * LINE_CUT_MIN_SHARE)
    at = head.rfind("\n")
    if at >= floor:
        return head[: at + 1]
    at = max(head.rfind(" "), head.rfind("\t"))
    if at >= floor:
        return head[: at + 1]
    return head


class AnswerStore:
    """Whole answers by Lingma request id, in memory: ``keep_s`` each, ``max_answers`` in all.

    Args:
        keep_s: how long an answer stays readable.
        max_answers: how many are kept; the oldest go first.
        clock: monotonic clock, replaceable in tests.
    """

    def __init__(
        self,
        *,
        keep_s: float = DEFAULT_KEEP_S,
        max_answers: int = DEFAULT_MAX_ANSWERS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.keep_s = keep_s
        self.max_answers = max_answers
        self._clock = clock
        self._answers: OrderedDict[str, tuple[float, str]] = OrderedDict()

    def put(self, request_id: str, answer: str) -> None:
        self._answers.pop(request_id, None)
        self._answers[request_id] = (self._clock(), answer)
        self._prune()

    def get(self, request_id: str) -> str | None:
        self._prune()
        kept = self._answers.get(request_id)
        return kept[1] if kept is not None else None

    def __len__(self) -> int:
        self._prune()
        return len(self._answers)

    def _prune(self) -> None:
        now = self._clock()
        while self._answers:
            request_id, (stored, _) = next(iter(self._answers.items()))
            if now - stored <= self.keep_s and len(self._answers) <= self.max_answers:
                break
            del self._answers[request_id]

    def missing_text(self, request_id: str) -> str:
        """The error for an answer that is not (or no longer) here."""
        minutes = max(1, round(self.keep_s / 60))
        return (
            f"No whole answer is kept for request {request_id!r}. Only answers longer than "
            f"--max-result-chars are kept, in memory, for {minutes} min (at most "
            f"{self.max_answers}), and not across server restarts. The conversation itself "
            "is in lingma://sessions/{session_id}."
        )


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

"""Whole answers kept in memory, and the cut that makes an answer fit.

An answer longer than what a host can take comes back cut (the MCP face words that); the
whole stays here, by Lingma's request id, for ``keep_s`` (an hour) and at most
``max_answers`` of them, so memory stays bounded. Nothing is written to disk: answers hold
what the person asked, and the conversation itself stays with Lingma.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

DEFAULT_KEEP_S = 3600.0
DEFAULT_MAX_ANSWERS = 100
# Cutting at a newline is preferred, but not at the price of dropping more than this share
# of the room: one long paragraph is then cut at a space instead.
LINE_CUT_MIN_SHARE = 0.5


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

"""The text of a simulated answer and how it is cut into deltas. Pure functions.

Answers are deterministic and mention the question, the model key and the turn, so a test
can tell any two answers apart; they hold Chinese text so that counting characters
instead of UTF-8 bytes breaks a client.
"""

from __future__ import annotations

from collections.abc import Sequence

FILLER = "通义灵码模拟器 pads this answer, 逐字确定。 "
DEFAULT_MODEL = "auto"
# An empty delta goes out after delta 1 and then after every 7th, as the binary sends
# "pon", "", "g", "" (PROTOCOL.md section 5).
EMPTY_EVERY = 7


def compose_answer(
    question: str,
    model_key: str,
    turn: int,
    size: int | None = None,
    attached: Sequence[str] = (),
) -> str:
    """The answer to ``question``, naming what came with it (``attached``); padded (or
    cut) to exactly ``size`` characters if given."""
    asked = " ".join(question.split())
    received = f" Attached: {'; '.join(attached)}." if attached else ""
    text = (
        f"Lingma sim answer, turn {turn}, model {model_key}: you asked «{asked}».{received} "
        f"这是通义灵码模拟器的回答（第{turn}轮）。"
    )
    return pad(text, size) if size is not None else text


def pad(text: str, size: int) -> str:
    """``text`` filled with :data:`FILLER` (or cut) to exactly ``size`` characters."""
    if len(text) >= size:
        return text[:size]
    need = size - len(text)
    repeats = need // len(FILLER) + 1
    return text + (FILLER * repeats)[:need]


def tool_card(name: str, tool_call_id: str) -> str:
    """The fenced block that announces a tool call inside the answer text."""
    return f"\n\n```toolCall::{name}::{tool_call_id}::INIT\n```\n\n"


def cut_deltas(text: str, chunk: int, *, with_empty: bool = True) -> list[str]:
    """Cut ``text`` into deltas of ``chunk`` characters, with an empty delta now and then."""
    pieces = [text[i : i + chunk] for i in range(0, len(text), chunk)]
    if not with_empty:
        return pieces
    out: list[str] = []
    for index, piece in enumerate(pieces):
        out.append(piece)
        if index % EMPTY_EVERY == 1:
            out.append("")
    return out


def cut_exactly(text: str, count: int) -> list[str]:
    """Cut ``text`` into exactly ``count`` non-empty deltas (``text`` must be long enough)."""
    if len(text) < count:
        raise ValueError(f"{len(text)} characters cannot make {count} non-empty deltas")
    base, extra = divmod(len(text), count)
    out: list[str] = []
    pos = 0
    for index in range(count):
        size = base + (1 if index < extra else 0)
        out.append(text[pos : pos + size])
        pos += size
    return out

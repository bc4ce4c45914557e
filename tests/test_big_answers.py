"""Big answers: cut at a line to --max-result-chars, the whole behind lingma://answers/{id}.

Pure pieces first (the cut, the store, the shaped result), then the whole path through the
server on the simulator with an answer of 200,000 characters.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes import text_of
from hypothesis import given
from hypothesis import strategies as st
from mcp.shared.exceptions import MCPError
from servers import mcp_server

from lingma_mcp.asking.answer_store import AnswerStore, cut_text
from lingma_mcp.asking.results import AskResult
from lingma_mcp.server.answers import answer_uri, shape_answer

# -- the cut -----------------------------------------------------------------------------------


def test_a_short_text_is_not_cut() -> None:
    assert cut_text("short\ntext", 100) == "short\ntext"


def test_the_cut_falls_after_the_last_whole_line_that_fits() -> None:
    text = "first line\nsecond line\nthird line that is long\n"
    assert cut_text(text, 30) == "first line\nsecond line\n"


def test_one_long_paragraph_is_cut_at_a_space_not_mid_word() -> None:
    text = "header\n" + "word " * 100
    cut = cut_text(text, 200)
    assert cut.endswith("word ") and len(cut) <= 200
    assert len(cut) > 150, "a newline far back does not waste the room"


def test_text_without_spaces_or_newlines_is_cut_at_the_limit() -> None:
    assert cut_text("x" * 500, 120) == "x" * 120


@given(st.text(alphabet="ab \n通义", max_size=400), st.integers(min_value=0, max_value=450))
def test_a_cut_is_always_a_prefix_within_the_limit(text: str, limit: int) -> None:
    cut = cut_text(text, limit)
    assert text.startswith(cut) and len(cut) <= limit
    if len(text) <= limit:
        assert cut == text


# -- the store ---------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_store_keeps_an_answer_for_an_hour() -> None:
    clock = Clock()
    store = AnswerStore(clock=clock)
    store.put("r1", "whole")
    clock.now += 3600
    assert store.get("r1") == "whole"
    clock.now += 1
    assert store.get("r1") is None
    assert "lingma://sessions/{session_id}" in store.missing_text("r1")


def test_the_store_keeps_at_most_its_count_the_oldest_going_first() -> None:
    store = AnswerStore(max_answers=2)
    for i in range(3):
        store.put(f"r{i}", f"answer {i}")
    assert store.get("r0") is None
    assert [store.get("r1"), store.get("r2")] == ["answer 1", "answer 2"]
    assert len(store) == 2


# -- the shaped result ------------------------------------------------------------------------


def ask_result(answer: str) -> AskResult:
    return AskResult(
        answer=answer,
        session_id="s1",
        request_id="r1",
        model="auto",
        mode="chat",
        finish_reason="success",
        status_code=200,
        first_token_ms=1,
        total_ms=2,
    )


def test_an_answer_within_the_limit_is_whole_and_says_so() -> None:
    store = AnswerStore()
    shaped = shape_answer(ask_result("fits"), store, 1000)
    assert [c.type for c in shaped.content] == ["text"]
    assert shaped.content[0].text == "fits"
    data = shaped.structured_content
    assert data["answer_truncated"] is False and data["answer_chars"] == 4
    assert data["status"] == "done" and data["job_id"] is None
    assert len(store) == 0, "only answers that were cut are kept"


def test_a_longer_answer_is_cut_with_a_note_and_a_link_and_kept_whole() -> None:
    whole = "".join(f"line {i:05d} of the answer\n" for i in range(2000))
    store = AnswerStore()
    shaped = shape_answer(ask_result(whole), store, 5000)
    text, link = shaped.content
    assert len(text.text) <= 5000, "note included, the text stays within the limit"
    head = shaped.structured_content["answer"]
    assert whole.startswith(head) and head.endswith("\n")
    assert text.text.startswith(head)
    note = text.text[len(head) :]
    assert f"{len(whole):,} characters" in note and f"{len(whole) - len(head):,}" in note
    assert "lingma://answers/r1" in note
    assert link.type == "resource_link" and str(link.uri) == answer_uri("r1")
    assert link.mime_type == "text/markdown"
    assert shaped.structured_content["answer_truncated"] is True
    assert shaped.structured_content["answer_chars"] == len(whole)
    assert store.get("r1") == whole


# -- through the server ------------------------------------------------------------------------

# 200,000 characters in 100 deltas: the size is the point, not the streaming.
BIG = {
    "LINGMA_SIM_ANSWER_SIZE": "200000",
    "LINGMA_SIM_CHUNK": "2000",
    "LINGMA_SIM_DELTA_DELAY": "0",
}


@pytest.mark.timeout(90)
async def test_a_200000_character_answer_comes_back_cut_with_a_link_to_the_whole(
    tmp_path: Path,
) -> None:
    async with mcp_server(tmp_path, BIG) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        result = await client.call_tool("ask_lingma", {"prompt": "a very long answer"})
        assert not result.is_error, text_of(result)
        links = [c for c in result.content if c.type == "resource_link"]
        whole = (await client.read_resource(str(links[0].uri))).contents[0]
        with pytest.raises(MCPError) as missing:
            await client.read_resource("lingma://answers/no-such-request")
    text = text_of(result)
    assert len(text) <= 40000
    data = result.structured_content
    assert data["answer_truncated"] is True and data["answer_chars"] == 200000
    assert len(data["answer"]) < 40000 and text.startswith(data["answer"])
    assert "lingma://answers/" in text and "200,000 characters" in text
    [link] = links
    assert str(link.uri) == f"lingma://answers/{data['request_id']}"
    assert link.mime_type == "text/markdown"
    assert whole.mime_type == "text/markdown"
    assert len(whole.text) == 200000 and whole.text.startswith(data["answer"])
    assert "a very long answer" in whole.text
    assert tools["ask_lingma"].meta["anthropic/maxResultSizeChars"] >= len(text)
    assert "No whole answer is kept for request 'no-such-request'" in str(missing.value)


@pytest.mark.timeout(90)
async def test_max_result_chars_sets_the_cut_and_a_background_job_is_cut_the_same_way(
    tmp_path: Path,
) -> None:
    async with mcp_server(tmp_path, BIG, max_result_chars=5000) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        started = await client.call_tool(
            "ask_lingma", {"prompt": "long, in the background", "background": True}
        )
        job_id = started.structured_content["job_id"]
        check = await client.call_tool("check_lingma_job", {"job_id": job_id, "wait_s": 50})
        while check.structured_content["status"] == "running":
            check = await client.call_tool("check_lingma_job", {"job_id": job_id, "wait_s": 50})
        link = next(c for c in check.content if c.type == "resource_link")
        whole = (await client.read_resource(str(link.uri))).contents[0].text
    assert tools["ask_lingma"].meta["anthropic/maxResultSizeChars"] == 5000
    assert tools["check_lingma_job"].meta == {"anthropic/maxResultSizeChars": 5000}
    state = check.structured_content
    assert state["status"] == "done"
    assert len(text_of(check)) <= 5000
    assert len(state["text"]) <= 5000 and state["unread_chars"] > 0
    result = state["result"]
    assert result["answer_truncated"] is True and result["answer_chars"] == 200000
    assert len(whole) == 200000 and whole.startswith(result["answer"])

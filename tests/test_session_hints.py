"""The book of session hints: which upstream session a new conversation's hint became."""

from __future__ import annotations

import asyncio

from lingma_mcp.lingma.session_hints import SessionHints


async def test_a_confirmed_hint_leads_to_the_upstream_session() -> None:
    hints = SessionHints()
    hints.track("r1", "hint-1")
    hints.confirm("r1", "up-1")
    assert await hints.upstream("hint-1", wait=5) == "up-1"
    assert "r1" not in hints


async def test_an_id_nobody_tracked_is_asked_as_given() -> None:
    hints = SessionHints()
    hints.track("r1", "hint-1")
    hints.confirm("r1", "hint-1")  # Lingma kept the hint as its id: nothing to map
    assert await hints.upstream("hint-1", wait=5) == "hint-1"
    assert await hints.upstream("other", wait=5) == "other"


async def test_a_question_waits_for_the_finish_still_to_come() -> None:
    hints = SessionHints()
    hints.track("r1", "hint-1")
    asked = asyncio.ensure_future(hints.upstream("hint-1", wait=5))
    await asyncio.sleep(0)
    assert not asked.done()
    hints.confirm("r1", "up-1")
    assert await asked == "up-1"


async def test_a_chat_that_will_not_finish_releases_its_waiters_with_the_hint() -> None:
    hints = SessionHints()
    hints.track("r1", "hint-1")
    asked = asyncio.ensure_future(hints.upstream("hint-1", wait=5))
    await asyncio.sleep(0)
    hints.drop("r1")
    assert await asked == "hint-1"


async def test_a_finish_that_never_comes_costs_one_bounded_wait() -> None:
    hints = SessionHints()
    hints.track("r1", "hint-1")
    assert await hints.upstream("hint-1", wait=0.01) == "hint-1"
    assert "r1" not in hints  # the next question does not wait again


async def test_a_lost_connection_releases_every_waiter() -> None:
    hints = SessionHints()
    hints.track("r1", "hint-1")
    hints.track("r2", "hint-2")
    waiting = [asyncio.ensure_future(hints.upstream(h, wait=5)) for h in ("hint-1", "hint-2")]
    await asyncio.sleep(0)
    hints.drop_all()
    assert await asyncio.gather(*waiting) == ["hint-1", "hint-2"]


async def test_the_book_keeps_only_the_newest_entries() -> None:
    hints = SessionHints(max_tracked=2, max_aliases=2)
    for n in range(3):
        hints.track(f"r{n}", f"hint-{n}")
    assert "r0" not in hints and "r1" in hints and "r2" in hints
    for n in (1, 2):
        hints.confirm(f"r{n}", f"up-{n}")
    hints.track("r3", "hint-3")
    hints.confirm("r3", "up-3")
    assert await hints.upstream("hint-1", wait=5) == "hint-1"  # the oldest alias went
    assert await hints.upstream("hint-3", wait=5) == "up-3"

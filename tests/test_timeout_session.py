"""The session_id a timeout names continues the conversation (the IDE simulator, in process).

A timed-out ask ends before Lingma's ``chat/finish`` names the session it filed the
question under, so the text can only name the hint the question was asked with. The next
ask naming that id must land in Lingma's conversation, and say so.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from servers import lingma_sim

from lingma_mcp.asking.arguments import validate
from lingma_mcp.asking.bridge import Bridge
from lingma_mcp.asking.error_texts import AskTimedOut
from lingma_mcp.config import Settings

pytestmark = pytest.mark.timeout(60)


async def test_the_session_id_a_timeout_names_continues_the_conversation(
    tmp_path: Path,
) -> None:
    # 75 deltas 20 ms apart: an answer takes 1.5 s, three times the first call's timeout.
    slow = {"LINGMA_SIM_ANSWER_SIZE": "600", "LINGMA_SIM_DELTA_DELAY": "0.02"}
    workspace = tmp_path / "project"
    workspace.mkdir()
    async with lingma_sim(tmp_path / "lingma", slow) as port:
        settings = Settings(lingma_port=port, work_dir=tmp_path / "work", workspace=workspace)
        await ask_twice(Bridge(settings))


async def ask_twice(bridge: Bridge) -> None:
    bridge.start()
    try:
        await bridge.client()
        with pytest.raises(AskTimedOut) as timed_out:
            await bridge.ask(validate(bridge.settings, "a slow question", timeout_s=0.5))
        session_id = timed_out.value.session_id
        assert session_id and f"session_id={session_id!r}" in bridge.error_text(timed_out.value)

        result = await bridge.ask(
            validate(bridge.settings, "go on", session_id=session_id, timeout_s=30)
        )
        assert result.continued is True and "turn 2" in result.answer
        conversation = await bridge.session(str(result.session_id))
        assert conversation is not None
        assert [t["question"] for t in conversation["turns"]] == ["a slow question", "go on"]
    finally:
        await bridge.close()

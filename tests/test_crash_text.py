"""A crash of Lingma mid-answer, as the host reads it: why it stopped (its exit code, or the
signal that killed it) and the last line it wrote on stderr, redacted, on either backend.

The server runs in this process; each simulator is a real child that crashes on cue.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes import text_of
from servers import mcp_server

from lingma_mcp.sim.chat import CRASH_EXIT_CODE

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize(
    ("backend", "env", "last_line"),
    [
        ("ide", "LINGMA_SIM_CRASH_AFTER", "fatal: simulated crash after 3 deltas"),
        ("cli", "LINGMA_SIM_ACP_CRASH_AFTER", "crashing on purpose after 3 chunks"),
    ],
)
async def test_a_crash_mid_answer_names_the_exit_code_and_the_last_stderr_line(
    tmp_path: Path, backend: str, env: str, last_line: str
) -> None:
    crash = {env: "3"}
    async with mcp_server(tmp_path, crash, lingma="process", backend=backend) as client:
        result = await client.call_tool("ask_lingma", {"prompt": "a question long enough"})
    assert result.is_error
    text = text_of(result)
    assert text.count("stopped") == 1, text
    assert f"exit code {CRASH_EXIT_CODE}" in text, text
    assert last_line in text, text

"""The instructions a host's model reads at initialize: worded for the backend that serves."""

from __future__ import annotations

from pathlib import Path

import pytest
from servers import mcp_server

pytestmark = pytest.mark.timeout(60)


async def test_the_ide_backend_tells_the_model_to_offer_the_login_url(tmp_path: Path) -> None:
    async with mcp_server(tmp_path, backend="ide") as client:
        instructions = client.instructions or ""
    assert "ask_lingma" in instructions
    assert "call login and show the user the URL" in instructions


async def test_the_cli_backend_never_sends_the_model_to_a_login_url(tmp_path: Path) -> None:
    # The CLI logs in from a terminal; its login tool always answers with that advice.
    async with mcp_server(tmp_path, backend="cli") as client:
        instructions = client.instructions or ""
    assert "ask_lingma" in instructions
    assert "URL" not in instructions and "call login" not in instructions
    assert "qoderclicn login" in instructions

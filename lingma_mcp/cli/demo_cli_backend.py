"""The demo's second part: the same MCP tools served by the CLI backend (ACP simulator).

It starts ``lingma-mcp --simulate --backend cli`` as a host would, reads ``auth_status``
(which now says ``backend: cli`` and the CLI's version), asks a question with its answer
streamed as progress, and continues the conversation. The caller prints the summary.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any, TextIO

from mcp import Client
from mcp.client.stdio import StdioServerParameters

from ..config import Settings

Ask = Callable[[Client, dict[str, Any], TextIO], Awaitable[dict[str, Any] | None]]

ACP_DEMO_ENV = {"LINGMA_SIM_ACP_DELTA_DELAY": "0.03", "LINGMA_SIM_ACP_CHUNK": "6"}


def cli_server_command(work_dir: str, log_level: str) -> StdioServerParameters:
    """How a host would start this server on the CLI backend's simulator."""
    env = {k: v for k, v in os.environ.items() if k.startswith(("LINGMA_SIM_ACP_", "PYTHON"))}
    for key, value in ACP_DEMO_ENV.items():
        env.setdefault(key, value)
    args = ["-m", "lingma_mcp", "--simulate", "--backend", "cli", "--work-dir", work_dir]
    return StdioServerParameters(
        command=sys.executable, args=[*args, "--log-level", log_level], env=env
    )


async def cli_tour(settings: Settings, out: TextIO, ask: Ask) -> list[tuple[str, bool]]:
    """Run the second part; its steps as (name, ok)."""

    def say(text: str = "") -> None:
        out.write(text + "\n")
        out.flush()

    steps: list[tuple[str, bool]] = []
    say("\nThe same tools on the second backend: the official Lingma CLI (qoderclicn --acp),")
    say("here its simulator. The host sees no difference but auth_status's backend.")
    with tempfile.TemporaryDirectory(prefix="lingma-mcp-demo-cli-") as work_dir:
        params = cli_server_command(work_dir, settings.log_level)
        say(f"$ {' '.join(['lingma-mcp', *params.args[2:]])}")
        started = time.monotonic()
        async with Client(params, mode="legacy") as client:
            say(f"connected in {time.monotonic() - started:.2f} s\n")
            say("7. auth_status on the CLI backend")
            result = await client.call_tool("auth_status", {})
            bridge = (result.structured_content or {}).get("bridge", {})
            say(f"   backend {bridge.get('backend')}, CLI version {bridge.get('version')}")
            steps.append(("cli: auth_status", bridge.get("backend") == "cli"))

            say("\n8. ask_lingma over ACP (session/prompt, its session/update as progress):")
            first = await ask(client, {"prompt": "What does the CLI backend do?"}, out)
            steps.append(("cli: ask_lingma", first is not None))
            if first is not None:
                say("\n9. a follow-up in the same ACP session:")
                second = await ask(
                    client, {"prompt": "And then?", "session_id": first["session_id"]}, out
                )
                steps.append(("cli: follow-up", second is not None))
            else:
                steps.append(("cli: follow-up", False))
    return steps

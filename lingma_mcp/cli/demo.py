"""``lingma-mcp demo``: the whole path, host side included, against the simulator.

It starts ``lingma-mcp --simulate`` as a real MCP stdio server through the SDK's client (as
a host would), lists the tools, reads the login and the models, asks a question with its
answer streamed as progress, continues the conversation with the returned session_id, then
has Lingma edit a file in agent mode (the demo answers the approval form as a person would),
shows the diff and reverts it, and prints a summary. Exit code 0 when every step worked.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, TextIO

import anyio
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.types import ElicitResult

from ..config import Settings
from ..server.progress import STATUS_PREFIX

DEMO_ENV = {
    # Small, visible streaming: about two seconds of text per answer.
    "LINGMA_SIM_DELTA_DELAY": "0.03",
    "LINGMA_SIM_ANSWER_SIZE": "400",
    "LINGMA_SIM_THINK": "1",
}


def run_demo(settings: Settings, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        return anyio.run(_demo, settings, out)
    except Exception as exc:  # the demo's job is to say what broke, not to dump a trace
        out.write(f"\nThe demo failed: {type(exc).__name__}: {exc}\n")
        out.write("Run `lingma-mcp doctor --simulate` to see which step breaks.\n")
        return 1


def server_command(
    work_dir: str, log_level: str, workspace: str | None = None
) -> StdioServerParameters:
    """How a host would start this server against the simulator."""
    env = {k: v for k, v in os.environ.items() if k.startswith(("LINGMA_SIM_", "PYTHON"))}
    for key, value in DEMO_ENV.items():
        env.setdefault(key, value)
    return StdioServerParameters(
        command=sys.executable,
        args=[
            "-m",
            "lingma_mcp",
            "--simulate",
            "--work-dir",
            work_dir,
            "--log-level",
            log_level,
            *(["--workspace", workspace] if workspace else []),
        ],
        env=env,
    )


async def _demo(settings: Settings, out: TextIO) -> int:
    def say(text: str = "") -> None:
        out.write(text + "\n")
        out.flush()

    steps: list[tuple[str, bool]] = []
    with tempfile.TemporaryDirectory(prefix="lingma-mcp-demo-") as work_dir:
        project = Path(work_dir) / "project"
        project.mkdir()
        params = server_command(str(Path(work_dir) / "state"), settings.log_level, str(project))
        say(f"$ {' '.join(['lingma-mcp', *params.args[2:]])}   (started as an MCP stdio server)")
        started = time.monotonic()
        person = DemoPerson(say)
        async with Client(params, mode="legacy", elicitation_callback=person) as client:
            say(f"connected in {time.monotonic() - started:.2f} s\n")

            tools = await client.list_tools()
            say("1. tools/list")
            for tool in tools.tools:
                args = ", ".join((tool.input_schema or {}).get("properties", {}))
                say(f"   - {tool.name}({args})")
            steps.append(("tools/list", EXPECTED_TOOLS <= {t.name for t in tools.tools}))

            say("\n2. auth_status")
            result = await client.call_tool("auth_status", {})
            say(_indent(result.content[0].text.split("\n\n")[0]))
            steps.append(("auth_status", not result.is_error))

            say("\n3. list_models")
            result = await client.call_tool("list_models", {"scene": "chat"})
            ok = not result.is_error and result.structured_content is not None
            if ok:
                listing: dict[str, Any] = result.structured_content or {}
                for model in listing["scenes"].get("chat", []):
                    mark = " (default)" if model["default"] else ""
                    say(f"   - {model['key']}: {model['display_name']}{mark}")
            else:
                say(_indent(result.content[0].text))
            steps.append(("list_models", ok))

            say("\n4. ask_lingma, the answer streaming as progress notifications:")
            first = await _ask(client, {"prompt": "What does lingma-mcp do?"}, out)
            steps.append(("ask_lingma", first is not None))

            if first is not None and first.get("session_id"):
                say("\n5. a follow-up in the same conversation (session_id from step 4):")
                second = await _ask(
                    client,
                    {"prompt": "And how do I continue?", "session_id": first["session_id"]},
                    out,
                )
                steps.append(("follow-up", second is not None))
            else:
                steps.append(("follow-up", False))

            result = await client.read_resource("lingma://sessions")
            text = getattr(result.contents[0], "text", "{}")
            sessions = json.loads(text).get("sessions", [])
            say(f"\n6. lingma://sessions lists {len(sessions)} conversation(s)")
            steps.append(("resources", bool(sessions)))

            steps.extend(await _agent_tour(client, project, person, out))

    from .demo_cli_backend import cli_tour  # the second backend, on the ACP simulator

    steps += await cli_tour(settings, out, _ask)

    say("\nSummary")
    for name, ok in steps:
        say(f"   {'ok  ' if ok else 'FAIL'} {name}")
    all_ok = all(ok for _, ok in steps)
    say(
        "\nThe whole path works. Next: `lingma-mcp doctor` against your real Lingma, then add "
        "lingma-mcp to your MCP host (see the README)."
        if all_ok
        else "\nSome steps failed; run with --log-level DEBUG to see why."
    )
    return 0 if all_ok else 1


EXPECTED_TOOLS = {"ask_lingma", "list_models", "auth_status", "login", "revert_changes"}

NOTES = "# Notes\n\nlingma-mcp drives Lingma from any MCP host.\n"
EDIT_PROMPT = (
    "Add a line about agent mode to notes.txt.\n"
    "@replace notes.txt # Notes\\n\\nlingma-mcp drives Lingma from any MCP host.\\n"
    "In agent mode it edits files, after you approve.\\n"
)


class DemoPerson:
    """Answers the approval form as a person would (approve), saying what was asked."""

    def __init__(self, say: Any) -> None:
        self._say = say
        self.asked = 0

    async def __call__(self, _: Any, params: Any) -> ElicitResult:
        self.asked += 1
        question = str(getattr(params, "message", "")).splitlines()[0]
        # A new line first: the form arrives while the answer is streaming.
        self._say(f"\n   ? the host asks the person: {question}\n     -> approve")
        return ElicitResult(action="accept", content={"decision": "approve"})


async def _agent_tour(
    client: Client, project: Path, person: DemoPerson, out: TextIO
) -> list[tuple[str, bool]]:
    """Steps 7-9: an approved edit in agent mode, its diff, its revert."""

    def say(text: str = "") -> None:
        out.write(text + "\n")
        out.flush()

    notes = project / "notes.txt"
    notes.write_text(NOTES, encoding="utf-8")
    say(f"\n7. ask_lingma in agent mode: Lingma edits {notes.name} in {project}")
    data = await _ask(client, {"prompt": EDIT_PROMPT, "mode": "agent"}, out)
    changed = notes.read_text(encoding="utf-8") != NOTES
    if data is not None:
        for change in data.get("changes", []):
            say(
                f"   changed: {change['path']} {change['action']} "
                f"(+{change['lines_added']} -{change['lines_removed']})"
            )
        for approval in data.get("approvals", []):
            say(
                f"   approval: {approval['tool']} {approval['target']}: {approval['decision']} "
                f"by {approval['by']}"
            )
    ok = data is not None and changed and person.asked > 0 and bool(data.get("changes"))
    steps = [("agent edit, approved", ok)]
    if data is None or not data.get("changes"):
        return [*steps, ("diff", False), ("revert", False)]

    request_id = data["request_id"]
    say(f"\n8. lingma://changes/{request_id}")
    result = await client.read_resource(f"lingma://changes/{request_id}")
    diff = getattr(result.contents[0], "text", "")
    say(_indent(diff.rstrip("\n")))
    steps.append(("diff", "+In agent mode" in diff))

    say(f"\n9. revert_changes(request_id={request_id!r})")
    reverted = await client.call_tool("revert_changes", {"request_id": request_id})
    say(_indent(reverted.content[0].text))
    back = notes.read_text(encoding="utf-8") == NOTES
    say(f"   {notes.name} is back as it was: {back}")
    steps.append(("revert", not reverted.is_error and back))
    return steps


async def _ask(client: Client, arguments: dict[str, Any], out: TextIO) -> dict[str, Any] | None:
    """One call, its progress printed as it arrives: status on its own line, text inline."""
    streamed: list[str] = []
    started = time.monotonic()
    first_at: list[float] = []
    at_line_start = [True]

    def write(text: str) -> None:
        out.write(text)
        out.flush()
        at_line_start[0] = text.endswith("\n")

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        if not message:
            return
        if message.startswith(STATUS_PREFIX):
            write(("" if at_line_start[0] else "\n") + f"   · {message[len(STATUS_PREFIX) :]}\n")
            return
        if not first_at:
            first_at.append(time.monotonic() - started)
        if at_line_start[0]:
            write("   > ")
        streamed.append(message)
        write(message.replace("\n", "\n     "))

    result = await client.call_tool("ask_lingma", arguments, progress_callback=on_progress)
    if not at_line_start[0]:
        write("\n")
    if result.is_error or result.structured_content is None:
        write(_indent(result.content[0].text) + "\n")
        return None
    data = result.structured_content
    joined = "".join(streamed)
    write(
        f"   = {len(data['answer'])} characters in {len(streamed)} text notifications; first "
        f"text after {first_at[0] if first_at else 0:.2f} s, answer complete after "
        f"{time.monotonic() - started:.2f} s\n"
        f"     streamed text equals the answer: {joined == data['answer']}; "
        f"session_id {data['session_id']}\n"
    )
    return data


def _indent(text: str) -> str:
    return "\n".join("   " + line for line in text.splitlines())

"""One script, two agents: the real ``qoderclicn --acp --fake-responses`` and ``lingma-sim
acp --fake-responses`` must speak the same shapes.

Both get the same ``--fake-responses`` file, the same files in their folder and the same
answers to their permission questions; what each sends is reduced to its shape (method
names, update kinds, statuses, tool kinds, titles, option ids, kinds and names, content
types, the keys of replies and the codes of errors) and the two lists must be equal.
Two scenarios: a session's whole life (tools approved and rejected, failures, an
attached prompt, a script run out, load, list, fork, delete, a refused option), and a
cancel with a permission question open. The real CLI is started once for both (it reads
its script again for each session it opens); the simulator once for each (it reads its
script once, at start). Skipped, saying why, where the real CLI cannot be installed.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from acp_fakes import LinePeer, fake_call, fake_text, sim_argv, sim_env, write_script
from real_cli import empty_home_env, installed_cli

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the CLI is tested on Linux"),
    pytest.mark.asyncio(loop_scope="module"),
]

CAPS = {"fs": {"readTextFile": True, "writeTextFile": True}, "terminal": True}
USAGE = {"promptTokenCount": 11, "candidatesTokenCount": 7, "totalTokenCount": 18}
PNG_BLOCK = {
    "type": "image",
    "mimeType": "image/png",
    "data": "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAEElEQVR4nGP4z8AARAwQ"
    "CgAf7gP9i18U1AAAAABJRU5ErkJggg==",
}


def script(workspace: Path) -> list[dict[str, Any]]:
    a, b = str(workspace / "a.txt"), str(workspace / "b.txt")
    return [
        fake_call("Read", file_path=a),
        fake_call("Edit", file_path=a, old_string="alpha", new_string="beta"),
        fake_call("Write", file_path=str(workspace / "new.txt"), content="fresh\n"),
        fake_call("Write", file_path=str(workspace / "refused.txt"), content="no\n"),
        fake_call("Bash", command="echo hi"),
        fake_call("Bash", command="touch made.txt"),
        fake_call("Bash", command="cat missing.txt"),
        fake_call("Edit", file_path=b, old_string="b", new_string="c"),
        fake_text("all ", "done", usage=USAGE),
        fake_text("seen"),
    ]


async def answer(request: dict[str, Any]) -> Any:
    """Allow once, except a write of refused.txt, which is rejected."""
    params = request["params"]
    refuse = "refused.txt" in str(params["toolCall"].get("title"))
    kind = "reject_once" if refuse else "allow_once"
    chosen = next(o["optionId"] for o in params["options"] if o["kind"] == kind)
    return {"outcome": {"outcome": "selected", "optionId": chosen}}


def shape(message: dict[str, Any], workspace: Path) -> tuple[Any, ...] | None:
    """What must agree between the two agents; None for what may differ in timing."""
    where = str(workspace)
    if "method" in message:
        params = message.get("params") or {}
        if message["method"] == "session/update":
            update = params["update"]
            kind = update["sessionUpdate"]
            if kind == "available_commands_update":
                return None  # the CLI sends it on its own schedule
            content = update.get("content")
            types = [c.get("type") for c in content] if isinstance(content, list) else content
            if isinstance(types, dict):
                types = types.get("type")
            said = ""
            if kind == "user_message_chunk":  # the prompt as kept, attachments expanded
                said = str(update["content"].get("text", "")).replace(where, "<ws>")
            return (
                "update",
                kind,
                said,
                update.get("status"),
                update.get("kind"),
                str(update.get("title", "")).replace(where, "<ws>"),
                types,
                sorted(update.get("_meta") or {}),
                "messageId" in update,
            )
        call = params.get("toolCall") or {}
        return (
            "request",
            message["method"],
            "id" in message,
            call.get("kind"),
            call.get("title"),
            [c.get("type") for c in call.get("content") or []],
            [(c.get("_meta") or {}).get("kind") for c in call.get("content") or []],
            [(o["optionId"], o["kind"], o["name"]) for o in params.get("options") or []],
        )
    if "error" in message:
        error = message["error"]
        # A failed model call's words vary from run to run in the CLI; the code does not.
        words = "" if error.get("code") == 500 else str(error.get("message"))[:40]
        return ("error", error.get("code"), words)
    result = message.get("result")
    return ("result", sorted(result) if isinstance(result, dict) else result)


class Agent:
    """One agent on the wire, initialized (``hello``: the shape of its reply), and the
    script file it plays for a new session."""

    def __init__(self, peer: LinePeer, script: Path, hello: tuple[Any, ...] | None) -> None:
        self.peer = peer
        self.script = script
        self.hello = hello

    async def shapes(
        self, workspace: Path, scenario: Callable[[LinePeer, Path], Awaitable[None]]
    ) -> list[tuple[Any, ...]]:
        """What the agent sent during ``scenario``, reduced to shapes."""
        start = len(self.peer.log)
        await scenario(self.peer, workspace)
        sent = [message for way, message in self.peer.log[start:] if way == "in"]
        return [s for s in (shape(m, workspace) for m in sent) if s is not None]


async def started(argv: list[str], cwd: Path, env: dict[str, str], script: Path) -> Agent:
    peer = await LinePeer.start(argv, cwd=cwd, env=env)
    hello = await peer.call("initialize", {"protocolVersion": 1, "clientCapabilities": CAPS})
    return Agent(peer, script, shape(hello, cwd))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def real(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Agent]:
    """The real CLI, once for the module: it costs seconds of CPU to start, and it reads
    its script again for every session it opens, so each scenario writes its own."""
    binary = installed_cli()
    root = tmp_path_factory.mktemp("real-cli")
    script = write_script(root / "script.jsonl", [])
    env = {**empty_home_env(root / "home"), "QODER_FAKE_STREAM_DELAY_MS": "5"}
    argv = [str(binary), "--acp", "--fake-responses", str(script)]
    agent = await started(argv, root, env, script)
    try:
        yield agent
    finally:
        await agent.peer.close()


@asynccontextmanager
async def simulator(
    root: Path, lines: list[dict[str, Any]], **switches: str
) -> AsyncIterator[Agent]:
    """The simulator, started for one scenario: it reads its script once, at start (the
    scenario's workspace, made first, is in ``root``)."""
    script = write_script(root / "script.jsonl", lines)
    env = sim_env(root / "state", client_tools="0", **switches)
    env.pop("QODERCN_EXPOSE_TOKEN_USAGE", None)
    agent = await started(sim_argv("--fake-responses", str(script)), root, env, script)
    try:
        yield agent
    finally:
        await agent.peer.close()


async def a_sessions_life(peer: LinePeer, workspace: Path) -> None:
    peer.answer = answer
    new = await peer.result("session/new", {"cwd": str(workspace), "mcpServers": []})
    session = new["sessionId"]
    text = [{"type": "text", "text": "work"}]
    await peer.call("session/prompt", {"sessionId": session, "prompt": text})
    attached = [
        *text,
        PNG_BLOCK,
        {"type": "resource_link", "uri": (workspace / "b.txt").as_uri(), "name": "b.txt"},
    ]
    await peer.call("session/prompt", {"sessionId": session, "prompt": attached})
    # The script has run out: an error, kept in the history with its words.
    await peer.call("session/prompt", {"sessionId": session, "prompt": text})
    load = {"sessionId": session, "cwd": str(workspace), "mcpServers": []}
    await peer.call("session/load", load)
    await peer.call("session/list", {})
    fork = await peer.call(
        "session/fork", {"sessionId": session, "cwd": str(workspace), "mcpServers": []}
    )
    await peer.call("session/delete", {"sessionId": fork["result"]["sessionId"]})
    await peer.call("session/delete", {"sessionId": "no-such-session"})
    await peer.call(
        "session/set_config_option",
        {"sessionId": session, "configId": "model", "value": "nonexistent"},
    )


def prepare(root: Path) -> Path:
    workspace = root / "project"
    workspace.mkdir(parents=True)
    (workspace / "a.txt").write_text("alpha\nline2\n")
    (workspace / "b.txt").write_text("b\n")
    return workspace.resolve()


async def test_the_simulator_speaks_the_real_clis_shapes_for_one_script(
    real: Agent, tmp_path: Path
) -> None:
    real_ws = prepare(tmp_path / "real")
    write_script(real.script, script(real_ws))
    from_real = await real.shapes(real_ws, a_sessions_life)

    sim_ws = prepare(tmp_path / "sim")
    async with simulator(tmp_path / "sim", script(sim_ws), efforts="", plan="0", think="0") as sim:
        simulated = await sim.shapes(sim_ws, a_sessions_life)

    assert sim.hello == real.hello
    assert simulated == from_real
    for workspace in (real_ws, sim_ws):  # and both did the same to their folder
        assert (workspace / "a.txt").read_text() == "beta\nline2\n"
        assert (workspace / "new.txt").read_text() == "fresh\n"
        assert (workspace / "made.txt").exists()
        assert not (workspace / "refused.txt").exists()
        assert (workspace / "b.txt").read_text() == "b\n"
    assert sorted(os.listdir(real_ws)) == sorted(os.listdir(sim_ws))


async def cancel_with_a_question_open(peer: LinePeer, workspace: Path) -> None:
    questions: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    answers: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def hold(request: dict[str, Any]) -> Any:
        await questions.put(request)
        return await answers.get()

    peer.answer = hold
    new = await peer.result("session/new", {"cwd": str(workspace), "mcpServers": []})
    session = new["sessionId"]
    text = [{"type": "text", "text": "write"}]
    prompted = asyncio.ensure_future(
        peer.call("session/prompt", {"sessionId": session, "prompt": text})
    )
    await questions.get()
    peer.notify("session/cancel", {"sessionId": session})
    reply = await prompted  # ends with the question still open
    assert reply["result"]["stopReason"] == "cancelled"
    await answers.put({"outcome": {"outcome": "selected", "optionId": "proceed_once"}})
    await peer.result("session/list", {})  # the late yes has been read by now


def late_write(workspace: Path) -> list[dict[str, Any]]:
    return [fake_call("Write", file_path=str(workspace / "late.txt"), content="x"), fake_text("no")]


async def test_a_cancel_with_a_question_open_ends_the_prompt_at_once_in_both(
    real: Agent, tmp_path: Path
) -> None:
    real_ws = prepare(tmp_path / "real")
    write_script(real.script, late_write(real_ws))
    from_real = await real.shapes(real_ws, cancel_with_a_question_open)

    sim_ws = prepare(tmp_path / "sim")
    async with simulator(tmp_path / "sim", late_write(sim_ws), efforts="") as sim:
        simulated = await sim.shapes(sim_ws, cancel_with_a_question_open)

    assert simulated == from_real
    assert not (real_ws / "late.txt").exists() and not (sim_ws / "late.txt").exists()

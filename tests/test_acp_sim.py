"""``lingma-sim acp`` on the wire: raw JSON lines, as awkward as PROTOCOL.md §10 says."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import Any

import pytest
from acp_fakes import SIM_ARGS, sim_env

pytestmark = pytest.mark.timeout(60)

AUTH_REQUIRED = {"code": -32000, "message": "Authentication required: Authentication is required."}


class RawSim:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    def send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write((json.dumps({"jsonrpc": "2.0", **message}) + "\n").encode())

    async def next(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        while True:
            line = await self.process.stdout.readline()
            assert line, "the simulator closed its stdout"
            try:
                return json.loads(line)
            except ValueError:
                continue

    async def reply_to(self, msg_id: Any) -> dict[str, Any]:
        while True:
            message = await self.next()
            if message.get("id") == msg_id and "method" not in message:
                return message


async def start(tmp_path: Path, *args: str, **switches: str) -> RawSim:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *SIM_ARGS,
        *args,
        env=sim_env(tmp_path / "state", **switches),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    return RawSim(process)


async def stop(sim: RawSim) -> None:
    if sim.process.returncode is None:
        sim.process.kill()
    await sim.process.communicate()


async def test_initialize_is_shaped_like_the_real_cli(tmp_path):
    sim = await start(tmp_path, "--acp")
    try:
        sim.send({"id": 0, "method": "initialize", "params": {"protocolVersion": 1}})
        result = (await sim.reply_to(0))["result"]
    finally:
        await stop(sim)
    assert result["protocolVersion"] == 1
    assert result["authMethods"][0]["id"] == "qoderclicn-login"
    caps = result["agentCapabilities"]
    assert caps["loadSession"] is True
    assert {"list", "resume", "close"} <= set(caps["sessionCapabilities"])
    assert caps["promptCapabilities"] == {"image": True, "embeddedContext": True}


async def test_logged_out_errors_match_the_real_cli(tmp_path):
    sim = await start(tmp_path, auth="logged_out")
    cwd = str(tmp_path)
    try:
        sim.send({"id": 0, "method": "initialize", "params": {"protocolVersion": 1}})
        await sim.reply_to(0)
        sim.send({"id": 1, "method": "authenticate", "params": {"methodId": "qoderclicn-login"}})
        sim.send({"id": 2, "method": "session/new", "params": {}})
        sim.send({"id": 3, "method": "session/new", "params": {"cwd": cwd, "mcpServers": []}})
        sim.send({"id": 4, "method": "session/list", "params": {}})
        load = {"sessionId": "x", "cwd": cwd, "mcpServers": []}
        sim.send({"id": 5, "method": "session/load", "params": load})
        sim.send({"id": 6, "method": "no/such", "params": {}})
        sim.send({"id": 7, "method": "session/cancel", "params": {"sessionId": "x"}})
        replies = {}
        while len(replies) < 6:
            message = await sim.next()
            replies[message["id"]] = message
    finally:
        sim.process.send_signal(signal.SIGTERM)
        _, stderr = await sim.process.communicate()
    # authenticate (id 1) never answers; everything sent after it does.
    assert set(replies) == {2, 3, 4, 5, 6, 7}
    assert replies[2]["error"]["code"] == -32602
    for msg_id in (3, 4, 5):
        assert replies[msg_id]["error"] == AUTH_REQUIRED
    assert replies[6]["error"]["code"] == -32601
    assert replies[6]["error"]["data"] == {"method": "no/such"}
    # session/cancel is a notification only; as a request it is refused.
    assert replies[7]["error"]["data"] == {"method": "session/cancel"}
    assert b"Authentication required" in stderr


async def test_end_of_input_is_ignored_and_sigterm_ends_it_with_chatter(tmp_path):
    sim = await start(tmp_path, sigterm_delay="0")
    sim.send({"id": 0, "method": "initialize", "params": {"protocolVersion": 1}})
    await sim.reply_to(0)
    assert sim.process.stdin is not None
    sim.process.stdin.close()
    sim.process.send_signal(signal.SIGTERM)
    stdout, _ = await sim.process.communicate()
    # Exit by the signal, not by the end of input; and not quietly.
    assert sim.process.returncode == 143
    assert b"goodbye" in stdout.splitlines()[-1]


async def test_a_start_up_failure_exits_with_the_asked_code(tmp_path):
    sim = await start(tmp_path, exit_at_start="7")
    _, stderr = await sim.process.communicate()
    assert sim.process.returncode == 7 and b"start-up failure" in stderr


async def test_help_lists_the_switches_and_the_instruction_language(tmp_path):
    process = await asyncio.create_subprocess_exec(
        sys.executable, *SIM_ARGS, "--help", stdout=asyncio.subprocess.PIPE
    )
    out, _ = await process.communicate()
    text = out.decode()
    for word in ("LINGMA_SIM_ACP_AUTH", "LINGMA_SIM_ACP_SIGTERM_DELAY", "@create", "@run", "@read"):
        assert word in text

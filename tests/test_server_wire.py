"""The wire as a host reads it: raw JSON-RPC lines on stdout, nothing else.

These tests start the server as hosts do, a stdio process, and skip the SDK's client so
they can see every byte it writes: each stdout line must be a JSON-RPC message, and no
progress notification for a call may follow that call's result (one host drops the whole
connection when that happens). What it does when the host leaves, stops reading or writes
lines that are not JSON-RPC, only such a process shows.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.streams.text import TextReceiveStream
from servers import open_log, read_log, server_params, server_process

pytestmark = pytest.mark.timeout(60)


class RawHost:
    """Writes JSON-RPC lines to the server's stdin and reads every line of its stdout."""

    def __init__(self, process: anyio.abc.Process) -> None:
        self.process = process
        self.lines: list[str] = []
        self.messages: list[dict[str, Any]] = []
        self._buffer = ""
        assert process.stdout is not None
        self._stdout = TextReceiveStream(process.stdout)

    async def send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        await self.process.stdin.send((json.dumps({"jsonrpc": "2.0", **message}) + "\n").encode())

    async def until(self, predicate: Any, seen: int = 0) -> dict[str, Any]:
        """Read lines until one message matches (skipping the first ``seen`` messages);
        every line must be JSON-RPC."""
        for message in self.messages[seen:]:
            if predicate(message):
                return message
        while True:
            chunk = await self._stdout.receive()
            self._buffer += chunk
            while "\n" in self._buffer:
                line, self._buffer = self._buffer.split("\n", 1)
                self.lines.append(line)
                message = json.loads(line)  # a stray print would fail here
                assert message.get("jsonrpc") == "2.0", line
                self.messages.append(message)
                if predicate(message):
                    return message

    async def request(self, msg_id: int, method: str, params: dict[str, Any]) -> dict[str, Any]:
        await self.send({"id": msg_id, "method": method, "params": params})
        return await self.until(lambda m: m.get("id") == msg_id and "method" not in m)

    async def handshake(self, client_name: str = "raw") -> dict[str, Any]:
        """initialize (id 1) and initialized; returns the initialize reply."""
        reply = await self.request(
            1,
            "initialize",
            {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": client_name, "version": "0"},
            },
        )
        await self.send({"method": "notifications/initialized"})
        return reply

    async def start_ask(self, client_name: str, prompt: str, token: str) -> None:
        """Handshake, then call ask_lingma (id 2) with a progress token; do not wait."""
        await self.handshake(client_name)
        await self.send(
            {
                "id": 2,
                "method": "tools/call",
                "params": {
                    "name": "ask_lingma",
                    "arguments": {"prompt": prompt},
                    "_meta": {"progressToken": token},
                },
            }
        )


def _command(tmp_path: Path) -> list[str]:
    params = server_params(tmp_path)  # conftest's launcher, on plain pipes here
    return [params.command, *params.args]


async def test_stdout_is_only_json_rpc_and_no_progress_follows_a_result(tmp_path: Path) -> None:
    env = {
        "LINGMA_SIM_DELTA_DELAY": "0.001",
        "LINGMA_SIM_ANSWER_SIZE": "600",
        "LINGMA_SIM_CHUNK": "3",
    }
    async with server_process(tmp_path, env) as process:
        host = RawHost(process)
        with anyio.fail_after(30):
            init = await host.handshake("raw-host")
            assert init["result"]["serverInfo"]["name"] == "lingma-mcp"
            for n in range(3):
                call_id = 10 + n
                token = f"tok-{n}"
                result = await host.request(
                    call_id,
                    "tools/call",
                    {
                        "name": "ask_lingma",
                        "arguments": {"prompt": f"wire {n}"},
                        "_meta": {"progressToken": token},
                    },
                )
                assert not result["result"].get("isError"), result
                # A ping after the result: anything for `token` sent late would come before
                # the pong, since the server writes in order.
                await host.request(100 + n, "ping", {})
                index = host.messages.index(result)
                late = [
                    m
                    for m in host.messages[index + 1 :]
                    if m.get("method") == "notifications/progress"
                    and m["params"]["progressToken"] == token
                ]
                assert late == []
                progress = [
                    m["params"]
                    for m in host.messages[:index]
                    if m.get("method") == "notifications/progress"
                    and m["params"]["progressToken"] == token
                ]
                text = "".join(
                    p["message"] for p in progress if not p["message"].startswith("[lingma] ")
                )
                assert text == result["result"]["structuredContent"]["answer"]
        assert process.stdin is not None
        await process.stdin.aclose()  # the host leaves: the server closes Lingma and exits
        with anyio.fail_after(15):
            await process.wait()
    assert process.returncode == 0


async def test_a_host_that_leaves_mid_answer_stops_lingma_and_the_server_exits(
    tmp_path: Path,
) -> None:
    sim_log = tmp_path / "sim.jsonl"
    env = {
        "LINGMA_SIM_DELTA_DELAY": "0.05",
        "LINGMA_SIM_ANSWER_SIZE": "3000",
        "LINGMA_SIM_LOG": str(sim_log),
    }
    async with server_process(tmp_path, env) as process:
        host = RawHost(process)
        with anyio.fail_after(30):
            await host.start_ask("raw-host", "a long one", "leaving")
            await host.until(
                lambda m: (
                    m.get("method") == "notifications/progress"
                    and not m["params"]["message"].startswith("[lingma] ")
                )
            )
            assert process.stdin is not None
            await process.stdin.aclose()
            await process.wait()
    assert process.returncode == 0
    sent = [json.loads(line) for line in sim_log.read_text(encoding="utf-8").splitlines()]
    methods = [e["message"].get("method") for e in sent if isinstance(e.get("message"), dict)]
    assert "chat/stop" in methods
    log = read_log(tmp_path)
    assert "Lingma supervisor closed" in log
    assert "exited with" in log  # the child was reaped, not orphaned
    assert "sim-secret" not in log  # the command line's log handler masks tokens


async def test_a_host_that_reads_slowly_gets_coalesced_text_not_a_backlog(
    tmp_path: Path,
) -> None:
    env = {
        "LINGMA_SIM_ANSWER_SIZE": "200000",
        "LINGMA_SIM_CHUNK": "8",
        "LINGMA_SIM_DELTA_DELAY": "0",
        "LINGMA_MAX_RESULT_CHARS": "1000000",  # the whole answer in the result, uncut
    }
    async with server_process(tmp_path, env) as process:
        host = RawHost(process)
        with anyio.fail_after(40):
            await host.start_ask("slow-host", "a big one", "slow")
            # The behaviour under test is a host that does not read: stop reading a while,
            # so the pipe fills and the server's sends block.
            await anyio.sleep(1.0)
            result = await host.until(lambda m: m.get("id") == 2)
            assert process.stdin is not None
            await process.stdin.aclose()
            await process.wait()
    answer = result["result"]["structuredContent"]["answer"]
    assert len(answer) == 200000
    progress = [
        m["params"]["message"]
        for m in host.messages
        if m.get("method") == "notifications/progress"
        and not m["params"]["message"].startswith("[lingma] ")
    ]
    assert "".join(progress) == answer
    assert len(progress) < 200, f"{len(progress)} notifications for 25000 deltas"


MALFORMED = [
    ('{"jsonrpc":"2.0","id":7,"method":"tools/list","params":[]}', -32600),
    ('{"jsonrpc":"1.0","id":7,"method":"tools/list"}', -32600),
    ("{not json", -32700),
]
HALF_AN_EMOJI = (
    '{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"ask_lingma",'
    '"arguments":{"prompt":"half an emoji \\ud83d"}}}\n'
)


async def test_a_malformed_request_gets_an_error_reply_and_a_lone_surrogate_is_replaced(
    tmp_path: Path,
) -> None:
    # One server for every malformed line, each followed by a ping: a refusal that broke
    # the connection would fail the lines after it too. Then a prompt with half an emoji
    # (a lone surrogate, which no UTF-8 can carry) is answered, not fatal.
    async with server_process(tmp_path) as process:
        host = RawHost(process)
        with anyio.fail_after(30):
            await host.handshake()
            assert process.stdin is not None
            for n, (line, code) in enumerate(MALFORMED):
                seen = len(host.messages)
                await process.stdin.send((line + "\n").encode())
                reply = await host.until(lambda m: "error" in m, seen)
                assert reply["error"]["code"] == code, line
                if code == -32600:
                    assert reply["id"] == 7, line
                # and the server still answers
                pong = await host.request(100 + n, "ping", {})
                assert pong.get("result") == {}, line
            await process.stdin.send(HALF_AN_EMOJI.encode())
            reply = await host.until(lambda m: m.get("id") == 3)
            assert reply["result"]["isError"] is False, reply
            await process.stdin.aclose()
            await process.wait()


def test_a_host_that_closes_stdout_ends_the_server_quietly(tmp_path: Path) -> None:
    # Plain pipes: closing our end of the server's stdout must really close the fd.
    import subprocess

    hello = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "raw", "version": "0"},
        },
    }
    with open_log(tmp_path) as errlog:
        process = subprocess.Popen(
            _command(tmp_path), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errlog
        )
    assert process.stdin is not None and process.stdout is not None
    try:
        process.stdin.write((json.dumps(hello) + "\n").encode())
        process.stdin.flush()
        assert json.loads(process.stdout.readline())["id"] == 1
        process.stdout.close()  # stdin stays open
        code = process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
        process.stdin.close()
    assert code == 0
    log = (tmp_path / "server.log").read_text(encoding="utf-8")
    assert "Traceback" not in log and "BrokenPipeError" not in log

"""Stand-ins for the workspace host and approval gate, and the ACP simulator started as the CLI."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lingma_mcp.acp import AgentHandle, start_agent
from lingma_mcp.sim.acp import simulator_command

SIM_ARGS = simulator_command()[1:]


@dataclass
class Output:
    output: str
    truncated: bool
    exit_code: int | None
    running: bool


class FakeWorkspace:
    """Files under ``root`` and real commands, with every call recorded."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.calls: list[tuple[str, Any]] = []
        self.terminals: dict[str, asyncio.subprocess.Process] = {}
        self.outputs: dict[str, bytes] = {}

    def _inside(self, path: str) -> Path:
        full = (self.root / path).resolve()
        if not full.is_relative_to(self.root.resolve()):
            raise PermissionError(f"{path} is outside the workspace")
        return full

    async def read_text(self, path: str, line: int | None = None, limit: int | None = None) -> str:
        self.calls.append(("read", path))
        return self._inside(path).read_text()

    async def write_text(self, path: str, text: str) -> None:
        self.calls.append(("write", path))
        target = self._inside(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)

    async def create_terminal(
        self,
        command: str,
        args: list[str] | None = None,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        output_byte_limit: int | None = None,
        background: bool = True,
    ) -> str:
        self.calls.append(("run", [command, *(args or [])]))
        process = await asyncio.create_subprocess_exec(
            command, *(args or []), cwd=self.root, stdout=asyncio.subprocess.PIPE
        )
        terminal_id = f"term-{len(self.terminals) + 1}"
        self.terminals[terminal_id] = process
        return terminal_id

    async def terminal_output(self, terminal_id: str) -> Output:
        process = self.terminals[terminal_id]
        return Output(self.outputs.get(terminal_id, b"").decode(), False, process.returncode, False)

    async def wait_for_exit(self, terminal_id: str) -> int | None:
        process = self.terminals[terminal_id]
        out, _ = await process.communicate()
        self.outputs[terminal_id] = out
        return process.returncode

    async def kill_terminal(self, terminal_id: str) -> None:
        self.calls.append(("kill", terminal_id))
        process = self.terminals[terminal_id]
        if process.returncode is None:
            process.kill()

    async def release_terminal(self, terminal_id: str) -> None:
        self.calls.append(("release", terminal_id))

    async def close(self) -> None:
        pass


@dataclass
class FakeGate:
    """Answers every authorize with ``allow``, recording what it was asked."""

    allow: bool = True
    asked: list[tuple[str, str, str, str | None]] = field(default_factory=list)
    hold: asyncio.Event | None = None  # when set, authorize waits for it

    async def authorize(
        self,
        action: str,
        tool: str,
        targets: list[str],
        preview: str | None = None,
        *,
        command: str | None = None,
        call_id: str | None = None,
        content: str | None = None,
    ) -> bool:
        target = command if action == "run" else ", ".join(targets)
        self.asked.append((action, tool, target or "", preview))
        if self.hold is not None:
            await self.hold.wait()
        return self.allow


def sim_env(state: Path, log: Path | None = None, **switches: str) -> dict[str, str]:
    """The simulator's environment. Its agent hands file and command work to the client
    (``fs/*``, ``terminal/*``), which the client's handler tests need; a test of the agent
    that acts on the disk itself, as the real CLI does, passes ``client_tools="0"``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINGMA_SIM_ACP_")}
    env["LINGMA_SIM_ACP_STATE_DIR"] = str(state)
    env["LINGMA_SIM_ACP_SIGTERM_DELAY"] = "0"
    env["LINGMA_SIM_ACP_CLIENT_TOOLS"] = "1"
    if log is not None:
        env["LINGMA_SIM_ACP_LOG"] = str(log)
    for key, value in switches.items():
        env["LINGMA_SIM_ACP_" + key.upper()] = value
    return env


@asynccontextmanager
async def running_sim(
    workspace: Path, state: Path, log: Path | None = None, **switches: str
) -> AsyncIterator[AgentHandle]:
    handle = await start_agent(
        sys.executable,
        extra_args=SIM_ARGS,
        cwd=workspace,
        env=sim_env(state, log, **switches),
        startup_timeout=60,
        control_timeout=30,
        terminate_grace=10,
    )
    try:
        yield handle
    finally:
        await handle.close()


def received(log: Path) -> list[dict[str, Any]]:
    """Every message the simulator received, in order."""
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


# -- a raw peer on the wire, for the simulator and the real CLI alike ---------------------

Answer = Callable[[dict[str, Any]], Awaitable[Any]]


async def approve_once(request: dict[str, Any]) -> Any:
    """Every permission answered with its ``allow_once`` option; anything else refused."""
    if request["method"] != "session/request_permission":
        raise LookupError(request["method"])
    options = request["params"]["options"]
    chosen = next(o["optionId"] for o in options if o["kind"] == "allow_once")
    return {"outcome": {"outcome": "selected", "optionId": chosen}}


def choosing(kind: str) -> Answer:
    """Permissions answered with the option of ``kind`` (``reject_once``, ``allow_always``)."""

    async def answer(request: dict[str, Any]) -> Any:
        options = request["params"]["options"]
        chosen = next(o["optionId"] for o in options if o["kind"] == kind)
        return {"outcome": {"outcome": "selected", "optionId": chosen}}

    return answer


class LinePeer:
    """An ACP client reduced to the wire: JSON lines over a child's stdio, every message
    kept in order (``log`` holds ("out"|"in", message)), the agent's requests answered by
    ``answer`` (its result, or a -32601 error when it raises LookupError)."""

    def __init__(self, process: asyncio.subprocess.Process, answer: Answer) -> None:
        self.process = process
        self.answer = answer
        self.log: list[tuple[str, dict[str, Any]]] = []
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._arrived = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._stderr = bytearray()
        self._reader = asyncio.ensure_future(self._read())
        self._drain = asyncio.ensure_future(self._drain_stderr())

    @classmethod
    async def start(
        cls,
        argv: list[str],
        *,
        cwd: Path,
        env: dict[str, str],
        answer: Answer = approve_once,
    ) -> LinePeer:
        process = await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
            limit=16 * 1024 * 1024,
        )
        return cls(process, answer)

    def send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.log.append(("out", message))
        self.process.stdin.write((json.dumps({"jsonrpc": "2.0", **message}) + "\n").encode())

    async def call(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """Send a request; the whole reply (``result`` or ``error``)."""
        msg_id = next(self._ids)
        self._waiting[msg_id] = asyncio.get_running_loop().create_future()
        self.send({"id": msg_id, "method": method, "params": params})
        return await self._waiting[msg_id]

    async def result(self, method: str, params: dict[str, Any]) -> Any:
        reply = await self.call(method, params)
        assert "error" not in reply, reply
        return reply["result"]

    def notify(self, method: str, params: dict[str, Any]) -> None:
        self.send({"method": method, "params": params})

    def incoming(self) -> list[dict[str, Any]]:
        return [message for direction, message in self.log if direction == "in"]

    def updates(self) -> list[dict[str, Any]]:
        return [
            m["params"]["update"] for m in self.incoming() if m.get("method") == "session/update"
        ]

    def requests(self, method: str | None = None) -> list[dict[str, Any]]:
        """The agent's requests to us (``method`` with an ``id``)."""
        return [
            m
            for m in self.incoming()
            if "method" in m and "id" in m and (method is None or m["method"] == method)
        ]

    async def wait_for(self, check: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """The first message from the agent for which ``check`` holds (waiting for it)."""
        while True:
            found = next((m for m in self.incoming() if check(m)), None)
            if found is not None:
                return found
            if self._reader.done():
                raise ConnectionError("the agent closed its stdout")
            self._arrived.clear()
            await self._arrived.wait()

    async def _read(self) -> None:
        assert self.process.stdout is not None
        try:
            while line := await self.process.stdout.readline():
                try:
                    message = json.loads(line)
                except ValueError:
                    continue  # chatter that is not ACP
                self.log.append(("in", message))
                if "method" in message and "id" in message:
                    task = asyncio.ensure_future(self._serve(message))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
                elif "method" not in message and message.get("id") in self._waiting:
                    self._waiting.pop(message["id"]).set_result(message)
                self._arrived.set()
        finally:
            self._arrived.set()
            for future in self._waiting.values():
                if not future.done():
                    future.set_exception(ConnectionError("the agent closed its stdout"))

    async def _drain_stderr(self) -> None:
        # Read all along: a chatty agent must never block on a full pipe.
        assert self.process.stderr is not None
        while chunk := await self.process.stderr.read(65536):
            self._stderr += chunk

    async def _serve(self, request: dict[str, Any]) -> None:
        try:
            result = await self.answer(request)
        except LookupError:
            error = {"code": -32601, "message": "Method not found"}
            self.send({"id": request["id"], "error": error})
            return
        self.send({"id": request["id"], "result": result})

    async def close(self) -> str:
        """End the agent's whole process group; its stderr."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        await self.process.wait()
        # The stdin pipe stays open after the exit; left to the garbage collector, it is
        # closed after the test's event loop, which Python 3.10 reports as an error.
        if self.process.stdin is not None:
            self.process.stdin.close()
        await asyncio.gather(self._reader, self._drain, *self._tasks, return_exceptions=True)
        return self._stderr.decode(errors="replace")


def sim_argv(*args: str) -> list[str]:
    """``lingma-sim acp`` started as the CLI is, with ``--acp`` and ``args``."""
    return [*simulator_command(), "--acp", *args]


def fake_call(name: str, **args: Any) -> dict[str, Any]:
    """One ``--fake-responses`` line: the model calls tool ``name`` with ``args``."""
    part = {"functionCall": {"name": name, "args": args}}
    return {"method": "generateContentStream", "response": [_chunk([part])]}


def fake_text(*chunks: str, usage: dict[str, int] | None = None) -> dict[str, Any]:
    """One ``--fake-responses`` line: the model says ``chunks`` (one stream chunk each)."""
    response = [_chunk([{"text": text}]) for text in chunks]
    if usage is not None:
        response[-1]["usageMetadata"] = usage
    return {"method": "generateContentStream", "response": response}


def _chunk(parts: list[dict[str, Any]]) -> dict[str, Any]:
    return {"candidates": [{"content": {"parts": parts}, "finishReason": "STOP"}]}


def write_script(path: Path, lines: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path

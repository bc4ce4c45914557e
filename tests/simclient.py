"""Test helpers: the IDE simulator and a raw client of its wire.

:func:`serving_sim` serves the simulator in the test's own event loop (no process: what
most of its tests need); :func:`running_sim` starts ``lingma-sim start`` as the process a
bridge starts, for what only that process shows (``.info``, flags, signals, exit codes,
stdout). Both give the same view: the port, the message log (``LINGMA_SIM_LOG``) and the
simulator's log lines.

The client here is deliberately small and independent of the RPC core: a WebSocket, the
``FrameDecoder``, and bookkeeping of what arrived (messages in order, the kind and size of
every WebSocket message, frame errors), so tests can assert on the wire itself.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from procs import wait_until
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from lingma_mcp.lingma.framing import FrameDecoder, FrameError, encode_frame_text
from lingma_mcp.sim.server import listening
from lingma_mcp.sim.start_options import build_options

DEFAULT_TIMEOUT = 5.0
# A failed tool run, as a well-behaved bridge answers tool/invoke when it runs no tools.
TOOL_REFUSAL = {
    "toolCallId": None,
    "name": "read_file",
    "success": False,
    "errorMessage": "tool not supported by this client",
    "result": {},
}


class MessageLog:
    """What a simulator wrote to ``LINGMA_SIM_LOG``: the messages it received and its own
    events, read from the file it shares with the test."""

    log_path: Path

    def logged(self) -> list[dict[str, Any]]:
        """The lines of LINGMA_SIM_LOG so far (a torn last line is left for later)."""
        if not self.log_path.exists():
            return []
        out = []
        for line in self.log_path.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                break
        return out

    async def wait_logged(
        self, check: Callable[[dict[str, Any]], bool], timeout: float = DEFAULT_TIMEOUT
    ) -> dict[str, Any]:
        return await wait_until(
            lambda: next((entry for entry in self.logged() if check(entry)), None),
            timeout,
            "a line in the message log",
        )


class ServedSim(MessageLog):
    """The simulator serving in this event loop, on a port of its own: its switches from
    ``env`` (as the process reads its environment), its log lines kept for ``stderr()``."""

    def __init__(self, work_dir: Path, env: Mapping[str, str] | None = None) -> None:
        self.work_dir = work_dir
        self.log_path = work_dir.parent / f"{work_dir.name}-messages.jsonl"
        self.env = {"LINGMA_SIM_LOG": str(self.log_path), **(env or {})}
        self.port = 0
        self._lines = io.StringIO()

    async def wait_port(self, timeout: float = DEFAULT_TIMEOUT) -> int:
        return self.port

    def stderr(self) -> str:
        """The simulator's log lines so far, as its process writes them on stderr."""
        return self._lines.getvalue()

    @asynccontextmanager
    async def serving(self) -> AsyncIterator[ServedSim]:
        handler = logging.StreamHandler(self._lines)
        handler.setFormatter(logging.Formatter("%(levelname)s lingma-sim: %(message)s"))
        logger = logging.getLogger("lingma_mcp.sim")
        level = logger.level
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
        try:
            async with listening(build_options(self.work_dir, self.env)) as self.port:
                yield self
        finally:
            logger.removeHandler(handler)
            logger.setLevel(level)


@asynccontextmanager
async def serving_sim(
    tmp_path: Path, env: Mapping[str, str] | None = None, name: str = "work"
) -> AsyncIterator[ServedSim]:
    """The simulator in ``tmp_path/name``, serving in this event loop while the block runs."""
    async with ServedSim(tmp_path / name, env).serving() as sim:
        yield sim


class SimProcess(MessageLog):
    """A ``lingma-sim start`` child with its stdout/stderr captured to files."""

    def __init__(
        self,
        work_dir: Path,
        env: Mapping[str, str] | None = None,
        args: Sequence[str] = (),
    ) -> None:
        self.work_dir = work_dir
        self.log_path = work_dir.parent / f"{work_dir.name}-messages.jsonl"
        self.stdout_path = work_dir.parent / f"{work_dir.name}-stdout.txt"
        self.stderr_path = work_dir.parent / f"{work_dir.name}-stderr.txt"
        base = {k: v for k, v in os.environ.items() if not k.startswith("LINGMA_SIM_")}
        self.env = {**base, "LINGMA_SIM_LOG": str(self.log_path), **(env or {})}
        self.args = list(args)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "lingma_mcp.sim", "start", "--workDir", str(self.work_dir)]
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.proc = subprocess.Popen([*cmd, *self.args], stdout=out, stderr=err, env=self.env)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def wait_port(self, timeout: float = DEFAULT_TIMEOUT) -> int:
        """Wait for a complete info file (any format) and return the port in it."""

        def read() -> int | None:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"simulator exited {self.proc.returncode}: {self.stderr()}")
            json_path = self.work_dir / ".info.json"
            if json_path.exists():
                return int(json.loads(json_path.read_text())["websocketPort"])
            path = self.work_dir / ".info"
            if path.exists():
                lines = path.read_text().split("\n")
                if len(lines) >= 3 and lines[1].strip():  # port and pid, both complete
                    return int(lines[0])
            return None

        return await wait_until(read, timeout, "the .info file")

    async def wait_exit(self, timeout: float = DEFAULT_TIMEOUT) -> int:
        assert self.proc is not None
        proc = self.proc
        exited = await wait_until(
            lambda: proc.poll() is not None and (proc.returncode,), timeout, "the simulator to exit"
        )
        return exited[0]

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(3)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(3)

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace") if self.stdout_path.exists() else ""


def sim_command(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run one ``lingma-sim`` command to its end (version, status, --help...)."""
    return subprocess.run(
        [sys.executable, "-m", "lingma_mcp.sim", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@asynccontextmanager
async def running_sim(
    tmp_path: Path,
    env: Mapping[str, str] | None = None,
    args: Sequence[str] = (),
    name: str = "work",
) -> AsyncIterator[SimProcess]:
    """Start a simulator in ``tmp_path/name`` and always stop it afterwards."""
    sim = SimProcess(tmp_path / name, env, args)
    sim.start()
    try:
        yield sim
    finally:
        sim.stop()


# A tool/invoke params -> the outcome a test's client answers with.
ToolHandler = Callable[[dict[str, Any]], dict[str, Any]]
OMIT = object()  # for call_exact: send a request without a "params" member


class SimClient:
    """A raw client: sends one frame per text message, records everything that arrives.

    Requests from the simulator are answered at once with ``null`` unless ``auto_reply``
    is off (then the test replies by hand). ``tool/invoke`` is answered with what
    ``on_tool`` returns (default: :data:`TOOL_REFUSAL`), in the reply when ``async`` is
    false or absent, else as an empty ack followed by a ``tool/invokeResult`` request.
    """

    def __init__(
        self, ws: ClientConnection, *, auto_reply: bool = True, on_tool: ToolHandler | None = None
    ) -> None:
        self.ws = ws
        self.auto_reply = auto_reply
        self.on_tool = on_tool
        self.decoder = FrameDecoder()
        self.messages: list[dict[str, Any]] = []  # everything with a method, in order
        self.arrivals: list[dict[str, Any]] = []  # every message, replies too, in order
        self.invoke_result_replies: list[dict[str, Any]] = []  # to our tool/invokeResult
        self.unanswered: set[str] = set()  # methods this client never replies to
        self.send_invoke_results = True  # False: ack an async tool/invoke, then say nothing
        # Per WebSocket message: ("text"|"binary", size in bytes, frames it completed,
        # bytes of an unfinished frame left in the decoder after it, valid UTF-8 alone).
        self.wire: list[tuple[str, int, int, int, bool]] = []
        self.frame_errors: list[FrameError] = []
        self.closed: BaseException | None = None
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._changed = asyncio.Event()
        self._background: set[asyncio.Task[Any]] = set()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    @asynccontextmanager
    async def connect(cls, port: int, **kwargs: Any) -> AsyncIterator[SimClient]:
        async with connect(f"ws://127.0.0.1:{port}/", max_size=None, compression=None) as ws:
            client = cls(ws, **kwargs)
            try:
                yield client
            finally:
                client._reader.cancel()

    async def _read(self) -> None:
        try:
            async for message in self.ws:
                data = message.encode() if isinstance(message, str) else message
                items = self.decoder.feed(data)
                kind = "text" if isinstance(message, str) else "binary"
                self.wire.append((kind, len(data), len(items), self.decoder.buffered, _utf8(data)))
                for item in items:
                    if isinstance(item, FrameError):
                        self.frame_errors.append(item)
                    else:
                        await self._route(item)
                self._changed.set()
        except ConnectionClosed as exc:
            self.closed = exc
        except BaseException as exc:
            self.closed = exc
            raise
        finally:
            if self.closed is None:
                self.closed = ConnectionError("closed")
            for future in self._waiting.values():
                if not future.done():
                    future.set_exception(ConnectionError("connection closed"))
            self._changed.set()

    async def _route(self, msg: dict[str, Any]) -> None:
        self.arrivals.append(msg)
        if "method" in msg:
            self.messages.append(msg)
            if "id" in msg and self.auto_reply and msg["method"] not in self.unanswered:
                await self.reply(msg["id"], self.answer_for(msg))
                params = msg.get("params") or {}
                if (
                    msg["method"] == "tool/invoke"
                    and params.get("async") is True
                    and self.send_invoke_results
                ):
                    # Acknowledged above; the outcome follows as a request of our own.
                    task = asyncio.create_task(self._invoke_result(self.tool_outcome(params)))
                    self._background.add(task)
                    task.add_done_callback(self._background.discard)
        elif msg.get("id") in self._waiting:
            self._waiting.pop(msg["id"]).set_result(msg)

    async def _invoke_result(self, outcome: dict[str, Any]) -> None:
        self.invoke_result_replies.append(await self.call("tool/invokeResult", outcome))

    def tool_outcome(self, params: dict[str, Any]) -> dict[str, Any]:
        """The ToolInvokeResponse this client gives for one tool/invoke."""
        base = {**TOOL_REFUSAL, "name": params.get("name")}
        if self.on_tool is not None:
            base = {"success": True, "errorMessage": "", "result": {}, **self.on_tool(params)}
            base.setdefault("name", params.get("name"))
        return {**base, "toolCallId": params.get("toolCallId")}

    def answer_for(self, msg: dict[str, Any]) -> Any:
        if msg["method"] == "tool/invoke" and msg["params"].get("async") is not True:
            return self.tool_outcome(msg["params"])
        return None

    async def reply(self, msg_id: Any, result: Any = None) -> None:
        await self.ws.send(encode_frame_text({"jsonrpc": "2.0", "id": msg_id, "result": result}))

    async def send_raw(self, text: str | bytes) -> None:
        await self.ws.send(text)

    async def call(
        self, method: str, params: Any = None, timeout: float = DEFAULT_TIMEOUT
    ) -> dict[str, Any]:
        """Send a request and return the whole reply message (result or error)."""
        msg_id = next(self._ids)
        future = asyncio.get_running_loop().create_future()
        self._waiting[msg_id] = future
        message = {"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params or {}}
        await self.ws.send(encode_frame_text(message))
        return await asyncio.wait_for(future, timeout)

    async def call_exact(
        self, method: str, params: Any, timeout: float = DEFAULT_TIMEOUT
    ) -> dict[str, Any]:
        """Send a request with exactly these params (:data:`OMIT`: no params member)."""
        msg_id = next(self._ids)
        future = asyncio.get_running_loop().create_future()
        self._waiting[msg_id] = future
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": msg_id, "method": method}
        if params is not OMIT:
            message["params"] = params
        await self.ws.send(encode_frame_text(message))
        return await asyncio.wait_for(future, timeout)

    async def result(
        self, method: str, params: Any = None, timeout: float = DEFAULT_TIMEOUT
    ) -> Any:
        reply = await self.call(method, params, timeout)
        assert "error" not in reply, reply
        return reply["result"]

    async def notify(self, method: str, params: Any = None) -> None:
        await self.ws.send(
            encode_frame_text({"jsonrpc": "2.0", "method": method, "params": params or {}})
        )

    async def wait_until(self, check: Callable[[], Any], timeout: float = DEFAULT_TIMEOUT) -> Any:
        """Wait (without polling) until ``check()`` is truthy after some message arrived."""

        async def loop() -> Any:
            while True:
                value = check()
                if value:
                    return value
                if self.closed is not None:
                    raise ConnectionError(f"connection closed: {self.closed!r}")
                self._changed.clear()
                await self._changed.wait()

        return await asyncio.wait_for(loop(), timeout)

    async def wait_closed(self, timeout: float = DEFAULT_TIMEOUT) -> BaseException:
        await asyncio.wait_for(asyncio.shield(self._reader), timeout)
        assert self.closed is not None
        return self.closed

    def events(self, request_id: str, method: str | None = None) -> list[dict[str, Any]]:
        """Params of the messages for one chat (tool events routed by their tool call id)."""
        tool_ids: set[str] = set()
        out = []
        for msg in self.messages:
            params = msg.get("params") or {}
            mine = params.get("requestId") == request_id
            if mine and params.get("toolCallId"):
                tool_ids.add(params["toolCallId"])
            if not mine and "requestId" not in params and params.get("toolCallId") in tool_ids:
                mine = True
            if mine and (method is None or msg["method"] == method):
                out.append({"method": msg["method"], **params})
        return out

    def titles(self, session_id: str) -> list[dict[str, Any]]:
        """Params of session/title/update for one conversation (they carry no requestId)."""
        return [
            m["params"]
            for m in self.messages
            if m["method"] == "session/title/update" and m["params"].get("sessionId") == session_id
        ]

    def finish(self, request_id: str) -> dict[str, Any] | None:
        found = self.events(request_id, "chat/finish")
        return found[0] if found else None

    async def ask(self, question: str, request_id: str, **fields: Any) -> dict[str, Any]:
        """Send chat/ask (a request) and return its "accepted" reply."""
        return await self.result("chat/ask", ask_params(question, request_id, **fields))

    async def chat(
        self, question: str, request_id: str, timeout: float = DEFAULT_TIMEOUT, **fields: Any
    ) -> dict[str, Any]:
        """Ask, then wait for chat/finish; return the finish params."""
        accepted = await self.ask(question, request_id, **fields)
        assert accepted["success"] is True, accepted
        return await self.wait_until(lambda: self.finish(request_id), timeout)


def ask_params(question: str, request_id: str, **fields: Any) -> dict[str, Any]:
    """chat/ask params as the seed client builds them."""
    mode = fields.pop("mode", "chat")
    model = fields.pop("model", "dashscope_qwen3_coder")
    params = {
        "requestId": request_id,
        "sessionId": fields.pop("session_id", ""),
        "sessionType": "developer" if mode == "agent" else "chat",
        "chatTask": "FREE_INPUT",
        "mode": mode,
        "stream": True,
        "source": 1,
        "isReply": fields.pop("is_reply", False),
        "taskDefinitionType": "system",
        "questionText": question,
        "extra": {
            "modelConfig": {"key": model},
            "workspacePath": fields.pop("workspace", "/tmp/project"),
        },
        "chatContext": {"text": question, "features": [], "preferredLanguage": "zh-CN"},
    }
    params.update(fields)
    return params


def deltas_text(client: SimClient, request_id: str) -> str:
    return "".join(e["text"] for e in client.events(request_id, "chat/answer"))


def _utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True

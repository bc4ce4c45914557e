"""One client connection: decoding what arrives, replies, and our own requests' window.

Every event the simulator sends is a JSON-RPC request with an id, as the binary's are.
At most ``window`` of them may be unanswered per connection; while the window is full the
simulator stops sending (it stalls), so a client that forgets to reply hangs here as it
may with the real binary. Replies to the client's requests are never held back by the
window: a stalled chat does not stop ``chat/stop`` or ``auth/status`` from being answered.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from lingma_mcp.lingma.framing import FrameDecoder, FrameError, encode_frame
from lingma_mcp.sim import methods
from lingma_mcp.sim.outbox import Outbox
from lingma_mcp.sim.state import SimState

log = logging.getLogger("lingma_mcp.sim")

METHOD_NOT_FOUND = -32601
INVALID_REQUEST = -32600

_HEADER_PREFIX = b"content-"
STALL_WARNING_AFTER = 1.0
_NULL_REPLY = re.compile(
    rb'Content-Length: (\d+)\r\n\r\n(\{"jsonrpc":"2\.0","id":(\d+),"result":null\})'
)


class Connection:
    """The simulator's side of one WebSocket."""

    def __init__(self, ws: ServerConnection, state: SimState) -> None:
        self.ws = ws
        self.state = state
        self.options = state.options
        self.id = state.next_connection_id()
        self.outbox = Outbox(
            ws.send,
            split=self.options.split,
            rng=random.Random(f"{self.options.seed}:{self.id}"),
        )
        self.workspace: str | None = None
        self.project_uri = ""
        self.chats: dict[str, Any] = {}  # requestId -> chat.ChatRun
        self.tool_results: dict[str, asyncio.Future[Any]] = {}  # toolCallId -> async outcome
        # toolCallId -> (sessionId, requestId, decision) of a PENDING call awaiting approval
        self.approvals: dict[str, tuple[str, str, asyncio.Future[bool]]] = {}
        self.initialized = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._decoder = FrameDecoder()
        self._next_id = 0
        self._pending: dict[int, tuple[str, asyncio.Future[Any] | None]] = {}
        # Once full, the window reopens only when half of it is free again, so a
        # fast client gets events in batches rather than one per reply it sends.
        self._low_water = self.options.window // 2
        self._window_open = asyncio.Event()
        self._window_open.set()
        self._stall_timer: asyncio.TimerHandle | None = None
        self._all_answered = asyncio.Event()
        self._all_answered.set()
        self.replies_received = 0

    async def serve(self) -> None:
        """Read messages until the client goes; then end every chat of this connection."""
        log.info("connection %d opened from %s", self.id, self.ws.remote_address)
        writer = asyncio.create_task(self._write())
        self.state.live.add(self)
        try:
            async for message in self.ws:
                self._on_message(message)
        except ConnectionClosed:
            pass
        finally:
            self.state.live.discard(self)
            for task in list(self._tasks):
                task.cancel()
            self.outbox.close()
            writer.cancel()
            if self._stall_timer is not None:
                self._stall_timer.cancel()
            for _, future in self._pending.values():
                if future is not None and not future.done():
                    future.cancel()
            for *_, decision in self.approvals.values():
                decision.cancel()
            log.info("connection %d closed (%d replies received)", self.id, self.replies_received)

    async def _write(self) -> None:
        try:
            await self.outbox.run()
        except ConnectionClosed:
            pass

    # -- incoming -----------------------------------------------------------------------

    def _on_message(self, message: str | bytes) -> None:
        data = message.encode("utf-8") if isinstance(message, str) else message
        if self._decoder.buffered == 0:
            # Fast path for the commonest message by far: a null reply to one of our events,
            # one frame per message, as clients send it. Anything else takes the full path.
            quick = _NULL_REPLY.fullmatch(data)
            if quick is not None and int(quick[1]) == len(quick[2]):
                self._on_reply({"jsonrpc": "2.0", "id": int(quick[3]), "result": None})
                return
        if self._decoder.buffered == 0 and not data[: len(_HEADER_PREFIX)].lower().startswith(
            _HEADER_PREFIX[: len(data)]
        ):
            # The binary rejects a message that does not start with a header and carries on.
            log.warning("Unknown message header: %r", data[:60])
            return
        for item in self._decoder.feed(data):
            if isinstance(item, FrameError):
                if "header" in item.reason or "Content-Length" in item.reason:
                    log.warning("Unknown message header: %s", item)
                else:
                    log.warning("skipping a bad frame: %s", item)
            elif isinstance(item, dict):
                self._dispatch(item)
            else:
                log.warning("not a JSON-RPC message: %r", item)

    def _dispatch(self, msg: dict[str, Any]) -> None:
        method = msg.get("method")
        if isinstance(method, str):
            self.state.messages.write(
                "request" if "id" in msg else "notification", self.id, message=msg
            )
            methods.handle(self, method, msg.get("params"), msg.get("id"), "id" in msg)
        elif "id" in msg and ("result" in msg or "error" in msg):
            self._on_reply(msg)
        else:
            log.warning("message with neither method nor result: %r", msg)
            if "id" in msg:
                self.reply_error(msg["id"], INVALID_REQUEST, "Invalid Request")

    def _on_reply(self, msg: dict[str, Any]) -> None:
        self.replies_received += 1
        entry = self._pending.pop(msg["id"], None) if isinstance(msg["id"], int) else None
        method = entry[0] if entry else None
        self.state.messages.write("reply", self.id, method=method, message=msg)
        log.debug("reply to %s #%s: %s", method, msg["id"], msg.get("result", msg.get("error")))
        if entry is None:
            log.warning("reply to an id we never sent or that was already answered: %r", msg["id"])
            return
        future = entry[1]
        if future is not None and not future.done():
            future.set_result(msg)
        if len(self._pending) <= self._low_water and not self._window_open.is_set():
            self._reopen_window()
        if not self._pending:
            self._all_answered.set()

    # -- outgoing -----------------------------------------------------------------------

    # Replies keep the key order of the binary's Go encoder (PROTOCOL.md section 9): an
    # error carries "result": null beside it, so a client that looks for "result" first
    # and ignores "error" is caught out here as it would be by the binary.
    def reply(self, msg_id: Any, result: Any) -> None:
        self.outbox.put(encode_frame({"jsonrpc": "2.0", "result": result, "id": msg_id}))

    def reply_error(self, msg_id: Any, code: int, message: str) -> None:
        error = {"code": code, "message": message}
        self.outbox.put(
            encode_frame({"jsonrpc": "2.0", "result": None, "error": error, "id": msg_id})
        )

    async def wait_window(self) -> None:
        """Return once another request may be sent (stalling while the window is full).

        A fast client fills the window many times a second in a benchmark, so a full window
        is only a warning on stderr once it has stayed full for :data:`STALL_WARNING_AFTER`;
        the message log (for tests) records every stall at once.
        """
        while len(self._pending) >= self.options.window:
            if self._stall_timer is None:
                self.state.messages.write(
                    "event", self.id, event="stall", unanswered=len(self._pending)
                )
                self._stall_timer = asyncio.get_running_loop().call_later(
                    STALL_WARNING_AFTER, self._warn_stalled
                )
            self._window_open.clear()
            await self._window_open.wait()

    def _reopen_window(self) -> None:
        self._window_open.set()
        if self._stall_timer is not None:
            self._stall_timer.cancel()
            self._stall_timer = None

    def _warn_stalled(self) -> None:
        log.warning(
            "connection %d: %d requests unanswered for %g s; stalled until the client replies",
            self.id,
            len(self._pending),
            STALL_WARNING_AFTER,
        )

    def send_request(
        self, method: str, params: dict[str, Any], *, want_reply: bool = False
    ) -> asyncio.Future[Any] | None:
        """Send one request now (after :meth:`wait_window`); return its reply future if wanted."""
        self._next_id += 1
        future = asyncio.get_running_loop().create_future() if want_reply else None
        self._pending[self._next_id] = (method, future)
        self._all_answered.clear()
        self.outbox.put(
            encode_frame(
                {"jsonrpc": "2.0", "id": self._next_id, "method": method, "params": params}
            )
        )
        return future

    def send_json_params(self, method: str, params_json: str) -> None:
        """Send one request whose params are already JSON text (the delta hot path)."""
        self._next_id += 1
        self._pending[self._next_id] = (method, None)
        self._all_answered.clear()
        body = (
            f'{{"jsonrpc":"2.0","id":{self._next_id},"method":"{method}","params":{params_json}}}'
        ).encode()
        self.outbox.put(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))

    async def request(
        self, method: str, params: dict[str, Any], *, want_reply: bool = False
    ) -> asyncio.Future[Any] | None:
        await self.wait_window()
        return self.send_request(method, params, want_reply=want_reply)

    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        """Run a chat (or other long job) tied to this connection's lifetime."""
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def settle(self, timeout: float) -> None:
        """Wait until everything sent is on the wire and answered (or ``timeout`` passes).

        A socket closed with unread input makes the kernel send a reset, and a reset can
        make the client's kernel throw away data it has received but not yet read; so
        before a deliberate drop or crash, let the client's replies come in first.
        """
        try:
            await asyncio.wait_for(self.outbox.drained(), timeout)
            await asyncio.wait_for(self._all_answered.wait(), timeout)
        except asyncio.TimeoutError:
            pass

    def drop(self) -> None:
        """Close the TCP connection without a WebSocket closing handshake (an upstream EOF)."""
        transport = self.ws.transport
        if transport is not None:
            transport.close()

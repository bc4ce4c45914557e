"""A host for the review page in headless Chromium, driven over the DevTools Protocol.

What an MCP Apps host does with a ``ui://`` page, done here from Python: the page's HTML
goes into a sandboxed iframe (``allow-scripts`` only, an opaque origin) under the
restrictive Content-Security-Policy the Apps spec prescribes when a resource declares no
domains; the host's side of the page's JSON-RPC (``ui/initialize``, the tool input and
result notifications, ``tools/call`` forwarded to a real MCP client) is played by
:class:`ReviewHost`. The top page only relays: each message of the page reaches Python
through a DevTools binding, each answer goes back with ``postMessage``.

Why the DevTools Protocol over a WebSocket: ``websockets`` is already a dependency, Debian's
``chromium`` is the only thing to install (no driver binary to keep in step with it, no
Node tooling), and the protocol reaches what a WebDriver script cannot easily: out-of-process
iframes, the page's console and exceptions, a screenshot of the whole page.

``tests/test_review_browser.py`` drives it; run as a script, that module saves the
README's screenshot.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import re
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import websockets

# The policy the MCP Apps spec (2026-01-26) has a host apply to a resource that declares no
# domains: inline scripts and styles, nothing from the network.
APPS_DEFAULT_CSP = (
    "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; media-src 'self' data:; connect-src 'none'"
)
# The flags that work on this kind of machine (no sandbox as root, no network).
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--remote-debugging-port=0",
)
PROTOCOL_VERSION = "2026-01-26"
WIDTH = 1100


def find_chromium() -> str | None:
    """The Chromium to drive: ``LINGMA_TEST_CHROMIUM``, else ``chromium`` on PATH."""
    chosen = os.environ.get("LINGMA_TEST_CHROMIUM")
    if chosen:
        return chosen
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


# -- the DevTools connection -----------------------------------------------------------------


class CdpError(RuntimeError):
    """A DevTools command failed; the message is Chromium's."""


class Cdp:
    """Commands by id, events to listeners; one reader task."""

    def __init__(self, ws: Any) -> None:
        self._ws = ws
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._listeners: list[Callable[[str, dict[str, Any], str | None], None]] = []
        self._reader = asyncio.create_task(self._read())

    def listen(self, fn: Callable[[str, dict[str, Any], str | None], None]) -> None:
        """``fn(method, params, session_id)`` for every event."""
        self._listeners.append(fn)

    async def send(
        self, method: str, params: dict[str, Any] | None = None, session: str | None = None
    ) -> dict[str, Any]:
        message_id = next(self._ids)
        message: dict[str, Any] = {"id": message_id, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[message_id] = future
        await self._ws.send(json.dumps(message))
        return await future

    async def _read(self) -> None:
        try:
            async for raw in self._ws:
                message = json.loads(raw)
                if "id" in message:
                    future = self._waiting.pop(message["id"], None)
                    if future is None or future.done():
                        continue
                    if "error" in message:
                        future.set_exception(CdpError(json.dumps(message["error"])))
                    else:
                        future.set_result(message.get("result", {}))
                    continue
                for fn in list(self._listeners):
                    fn(message["method"], message.get("params", {}), message.get("sessionId"))
        finally:
            for future in self._waiting.values():
                if not future.done():
                    future.set_exception(CdpError("the browser connection closed"))

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        await self._ws.close()


@asynccontextmanager
async def chromium(binary: str, profile: Path) -> AsyncIterator[Cdp]:
    """Headless Chromium with a fresh profile, and a DevTools connection to it."""
    process = await asyncio.create_subprocess_exec(
        binary,
        *CHROMIUM_FLAGS,
        f"--user-data-dir={profile}",
        "about:blank",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    said: list[str] = []
    drain: asyncio.Task[None] | None = None
    try:
        url = None
        while url is None:
            line = await process.stderr.readline()
            if not line:
                raise RuntimeError("Chromium ended before it listened:\n" + "".join(said[-20:]))
            text = line.decode("utf-8", "replace")
            said.append(text)
            found = re.search(r"DevTools listening on (ws://\S+)", text)
            url = found[1] if found else None
        # Its stderr is drained from now on, so it never blocks on a full pipe.
        drain = asyncio.create_task(_drain(process.stderr))
        ws = await websockets.connect(url, max_size=None)
        cdp = Cdp(ws)
        try:
            yield cdp
        finally:
            await cdp.close()
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()
        # Read to the end: a pipe left open is closed by the garbage collector once this
        # test's loop is gone, which Python 3.10 reports as an error.
        # Bounded: a helper process Chromium started could hold the pipe open.
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(drain if drain is not None else _drain(process.stderr), 10)


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.readline():
        pass


# -- the host ------------------------------------------------------------------------------


TOP_PAGE = """
(html, csp, width) => {
  document.body.style.margin = "0";
  const frame = document.createElement("iframe");
  frame.id = "app";
  // Like a host's inner frame: scripts only, an opaque origin, the default policy.
  frame.setAttribute("sandbox", "allow-scripts");
  frame.style.cssText = `border:0;width:${width}px;height:200px;display:block`;
  window.addEventListener("message", (event) => {
    if (event.source === frame.contentWindow) hostReceive(JSON.stringify(event.data));
  });
  window.deliver = (json) => frame.contentWindow.postMessage(JSON.parse(json), "*");
  const policy = `<meta http-equiv="Content-Security-Policy" content="${csp}">`;
  frame.srcdoc = html.replace("<head>", "<head>" + policy);
  document.body.appendChild(frame);
}
"""

ToolCaller = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]


@dataclass
class ReviewHost:
    """The host's side of one review page, with what the page said and did.

    Args:
        cdp: the browser.
        call_tool: forwards a ``tools/call`` of the page to the server; returns the result
            as JSON (the shape the host hands back).
        theme: ``light`` or ``dark``, told in the host context.
        server_tools: whether the host says it forwards the page's ``tools/call``.
    """

    cdp: Cdp
    call_tool: ToolCaller
    theme: str = "light"
    server_tools: bool = True
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    notifications: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # exceptions, console errors, CSP
    session: str = ""
    initialized: asyncio.Event = field(default_factory=asyncio.Event)
    tool_called: asyncio.Event = field(default_factory=asyncio.Event)
    _contexts: dict[tuple[str, str], int] = field(default_factory=dict)  # (session, frame)
    _context_seen: asyncio.Event = field(default_factory=asyncio.Event)
    _frame_id: str = ""
    _frame_attached: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    async def open(self, html: str) -> None:
        """A new tab holding the page, as a host's iframe would."""
        self.cdp.listen(self._event)
        target = await self.cdp.send("Target.createTarget", {"url": "about:blank"})
        attached = await self.cdp.send(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
        )
        self.session = attached["sessionId"]
        await self._watch(self.session)
        await self.cdp.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": WIDTH, "height": 800, "deviceScaleFactor": 1, "mobile": False},
            self.session,
        )
        await self.cdp.send("Page.enable", {}, self.session)
        await self.cdp.send("Runtime.addBinding", {"name": "hostReceive"}, self.session)
        await self.evaluate_top(
            f"({TOP_PAGE})({json.dumps(html)}, {json.dumps(APPS_DEFAULT_CSP)}, {WIDTH})"
        )
        await self._frame_attached.wait()

    async def close(self) -> None:
        """Stop answering the page (its messages in flight are dropped)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _watch(self, session: str) -> None:
        """Follow a session: its script contexts, exceptions, console and out-of-process
        frames (a sandboxed frame may get a process of its own)."""
        await self.cdp.send("Runtime.enable", {}, session)
        await self.cdp.send("Log.enable", {}, session)
        await self.cdp.send(
            "Target.setAutoAttach",
            {"autoAttach": True, "waitForDebuggerOnStart": True, "flatten": True},
            session,
        )
        await self.cdp.send("Runtime.runIfWaitingForDebugger", {}, session)

    def _event(self, method: str, params: dict[str, Any], session: str | None) -> None:
        if method == "Page.frameAttached" and session == self.session and not self._frame_id:
            self._frame_id = params["frameId"]  # the one frame the top page makes
            self._frame_attached.set()
        elif method == "Target.attachedToTarget":
            task = asyncio.create_task(self._watch(params["sessionId"]))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif method == "Runtime.executionContextCreated":
            context = params["context"]
            aux = context.get("auxData", {})
            if aux.get("isDefault") and session is not None:
                self._contexts[(session, aux.get("frameId", ""))] = context["id"]
                self._context_seen.set()
        elif method == "Runtime.executionContextDestroyed":
            gone = params["executionContextId"]
            for key in [k for k, v in self._contexts.items() if v == gone and k[0] == session]:
                del self._contexts[key]
        elif method == "Runtime.executionContextsCleared":
            for key in [k for k in self._contexts if k[0] == session]:
                del self._contexts[key]
        elif method == "Target.detachedFromTarget":
            for key in [k for k in self._contexts if k[0] == params.get("sessionId")]:
                del self._contexts[key]
        elif method == "Runtime.bindingCalled" and params.get("name") == "hostReceive":
            task = asyncio.create_task(self._from_page(json.loads(params["payload"])))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            shown = details.get("exception", {}).get("description") or details.get("text")
            self.problems.append(f"exception: {shown}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "warning"):
            texts = [str(a.get("value", a.get("description", ""))) for a in params["args"]]
            self.problems.append(f"console {params['type']}: {' '.join(texts)}")
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            self.problems.append(f"log: {params['entry'].get('text')}")

    # -- the page's JSON-RPC ----------------------------------------------------------------

    async def _from_page(self, message: dict[str, Any]) -> None:
        method = message.get("method")
        if method is None:
            return  # a reply to the host; this host sends no requests
        params = message.get("params") or {}
        if "id" not in message:
            self.notifications.append((method, params))
            if method == "ui/notifications/initialized":
                self.initialized.set()
            elif method == "ui/notifications/size-changed":
                height = max(int(params.get("height", 0)), 1)
                await self.evaluate_top(f"document.getElementById('app').style.height='{height}px'")
            return
        try:
            result = await self._answer(method, params)
            reply: dict[str, Any] = {"jsonrpc": "2.0", "id": message["id"], "result": result}
        except LookupError:
            reply = {
                "jsonrpc": "2.0",
                "id": message["id"],
                "error": {"code": -32601, "message": f"{method} is not served by this host"},
            }
        await self.send(reply)

    async def _answer(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        if method == "ui/initialize":
            return {
                "protocolVersion": PROTOCOL_VERSION,
                "hostInfo": {"name": "review-test-host", "version": "1"},
                "hostCapabilities": {"logging": {}}
                | ({"serverTools": {}, "serverResources": {}} if self.server_tools else {}),
                "hostContext": {
                    "theme": self.theme,
                    "displayMode": "inline",
                    "availableDisplayModes": ["inline"],
                    "containerDimensions": {"width": WIDTH, "maxHeight": 4000},
                    "platform": "desktop",
                },
            }
        if method == "tools/call":
            self.tool_calls.append(params)
            self.tool_called.set()
            return await self.call_tool(params["name"], params.get("arguments") or {})
        raise LookupError(method)

    async def send(self, message: dict[str, Any]) -> None:
        """A message of the host to the page (``postMessage`` from the top page)."""
        await self.evaluate_top(f"deliver({json.dumps(json.dumps(message))})")

    async def notify(self, method: str, params: dict[str, Any]) -> None:
        await self.send({"jsonrpc": "2.0", "method": method, "params": params})

    async def show_tool_call(self, arguments: dict[str, Any], result: dict[str, Any]) -> None:
        """What a host sends once the page is initialized: the call's input, then result."""
        await self.initialized.wait()
        await self.notify("ui/notifications/tool-input", {"arguments": arguments})
        await self.notify("ui/notifications/tool-result", result)

    # -- looking at the page and acting on it --------------------------------------------------

    async def evaluate_top(self, expression: str) -> Any:
        return await self._evaluate(expression, self.session, None)

    async def evaluate(self, expression: str) -> Any:
        """``expression`` in the page (inside the iframe); awaited when it is a promise.

        The frame's first document (about:blank) gives way to the page, possibly in a
        process of its own: a context that went away is dropped and the next one used.
        """
        while True:
            found = [(k, v) for k, v in self._contexts.items() if k[1] == self._frame_id]
            if not found:
                self._context_seen.clear()
                await self._context_seen.wait()
                continue
            (session, _), context = found[-1]
            try:
                return await self._evaluate(expression, session, context)
            except CdpError as exc:
                if "context" not in str(exc).lower():
                    raise
                self._contexts.pop((session, self._frame_id), None)

    async def _evaluate(self, expression: str, session: str, context: int | None) -> Any:
        params: dict[str, Any] = {
            "expression": expression,
            "awaitPromise": True,
            "returnByValue": True,
        }
        if context is not None:
            params["contextId"] = context
        answer = await self.cdp.send("Runtime.evaluate", params, session)
        if "exceptionDetails" in answer:
            raise CdpError(json.dumps(answer["exceptionDetails"])[:2000])
        return answer["result"].get("value")

    async def wait_for(self, predicate: str) -> Any:
        """Until the JavaScript ``predicate`` (an expression) holds in the page: checked at
        each change of the page's DOM, never on a timer. Returns its value."""
        return await self.evaluate(
            f"""new Promise((resolve) => {{
                const check = () => {{ const value = ({predicate}); if (value) {{
                    observer.disconnect(); resolve(value); return true; }} return false; }};
                const observer = new MutationObserver(check);
                if (!check()) observer.observe(document, {{subtree: true, childList: true,
                    attributes: true, characterData: true}});
            }})"""
        )

    async def click(self, selector: str) -> None:
        """A real mouse click in the middle of the element ``selector`` of the page."""
        box = await self.evaluate(
            f"""(() => {{ const el = document.querySelector({json.dumps(selector)});
                el.scrollIntoView({{block: "center"}});
                const r = el.getBoundingClientRect();
                return {{x: r.x + r.width / 2, y: r.y + r.height / 2}}; }})()"""
        )
        frame = await self.evaluate_top(
            """(() => { const r = document.getElementById("app").getBoundingClientRect();
                return {x: r.x, y: r.y}; })()"""
        )
        x, y = frame["x"] + box["x"], frame["y"] + box["y"]
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            await self.cdp.send(
                "Input.dispatchMouseEvent",
                {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1},
                self.session,
            )

    async def screenshot(self) -> bytes:
        """The whole page (the frame at the height of its content) as a PNG."""
        # The page's own height, not the frame's: its last size-changed may be on its way.
        height = await self.evaluate("Math.ceil(document.documentElement.scrollHeight)")
        await self.evaluate_top(f"document.getElementById('app').style.height='{height}px'")
        await self.cdp.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": WIDTH, "height": int(height), "deviceScaleFactor": 1, "mobile": False},
            self.session,
        )
        shot = await self.cdp.send("Page.captureScreenshot", {"format": "png"}, self.session)
        return base64.b64decode(shot["data"])

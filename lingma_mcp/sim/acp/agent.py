"""The simulated ``qoderclicn --acp``: its methods, answers and errors, as awkward as §10.

Shapes follow what 1.1.52 answered (PROTOCOL.md §10, ``docs/cli-observed.md``):
``initialize`` with agentInfo, authMethods and agentCapabilities; logged out, -32000
"Authentication required: Authentication is required." for session/new, list, load and
prompt, with parameters checked first (``session/new {}`` gets -32602); an
``authenticate`` that never answers; -32601 with ``data.method`` for anything unknown,
``session/cancel`` sent as a request included (the CLI takes it only as a notification);
an unknown session id -32602 "Invalid session identifier ..." for load, fork and delete,
-32603 "Internal error" for a prompt.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from lingma_mcp.sim.acp import session_config as config
from lingma_mcp.sim.acp.blocks import BlockRefused
from lingma_mcp.sim.acp.model import Response
from lingma_mcp.sim.acp.options import SIM_ACP_VERSION, AcpSimOptions
from lingma_mcp.sim.acp.prompting import Prompting
from lingma_mcp.sim.acp.session import SessionRuntime, replay
from lingma_mcp.sim.acp.store import Conversation, ConversationStore
from lingma_mcp.sim.acp.turn import TurnFailed
from lingma_mcp.sim.acp.validate import InvalidParams, check
from lingma_mcp.sim.acp.wire import Wire

log = logging.getLogger("lingma_mcp.sim.acp")

AUTH_REQUIRED = (-32000, "Authentication required: Authentication is required.")
REPLAY_LAG = 0.2
COMMANDS = [
    {
        "name": "rewind",
        "description": "Rewind conversation and checkpointed files to before a user message by id",
        "input": {"hint": "<message-id>"},
    },
    {
        "name": "rename",
        "description": "Rename the current conversation",
        "input": {"hint": "<title>"},
    },
]


class Refused(Exception):
    """A JSON-RPC error with the CLI's code, message and data."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code, self.message, self.data = code, message, data


class _AuthRequired(Exception):
    pass


@dataclass
class Reply:
    """A result, and what to send right after it (the CLI replays part of a load then)."""

    result: dict[str, Any]
    after: Callable[[], None] | None = None


class AcpSimAgent:
    def __init__(
        self, wire: Wire, opts: AcpSimOptions, script: list[Response] | None = None
    ) -> None:
        self.wire = wire
        self.opts = opts
        self.script = script
        self.offer = config.Offer(opts.models, opts.efforts)
        self.store = ConversationStore(opts.state_dir)
        self.open: dict[str, SessionRuntime] = {}
        self.prompting = Prompting(
            wire, opts, self.store, script, lambda r: self._options_changed(r, mode=True)
        )
        self.ready = asyncio.Event()  # cleared while a late replay is pending
        self.ready.set()
        self.methods = {
            "initialize": self.initialize,
            "session/new": self.session_new,
            "session/load": self.session_load,
            "session/resume": self.session_resume,
            "session/fork": self.session_fork,
            "session/list": self.session_list,
            "session/delete": self.session_delete,
            "session/close": self.session_close,
            "session/prompt": self.session_prompt,
            "session/set_config_option": self.set_config_option,
            "session/set_model": self.set_model,
            "session/set_mode": self.set_mode,
        }
        for method, served in (
            ("session/resume", opts.resume),
            ("session/list", opts.list_sessions),
            ("session/set_model", opts.models in ("both", "legacy")),
            ("session/set_config_option", opts.models in ("both", "config")),
            ("session/set_mode", opts.models != "none"),
        ):
            if not served:
                del self.methods[method]
        if opts.credential:
            log.info("logged in with %s from the environment (value not shown)", opts.credential)

    async def handle(self, message: dict[str, Any]) -> None:
        await self.ready.wait()
        method = message["method"]
        params = message.get("params") or {}
        if "id" not in message:
            if method == "session/cancel":
                runtime = self.open.get(str(params.get("sessionId")))
                if runtime is not None and runtime.turn is not None:
                    runtime.turn.cancel.set()
            return
        msg_id = message["id"]
        if method == "authenticate":
            log.info("authenticate received; never answering it, as the CLI does")
            return
        handler = self.methods.get(method)
        if handler is None:
            self.wire.error(msg_id, -32601, f'"Method not found": {method}', {"method": method})
            return
        try:
            answer = await handler(params)
        except (InvalidParams, Refused, config.ConfigRefused, BlockRefused) as exc:
            self.wire.error(msg_id, *_refusal(exc))
        except _AuthRequired:
            self.wire.error(msg_id, *AUTH_REQUIRED)
        except TurnFailed as exc:
            self.wire.error(msg_id, 500, str(exc))
        else:
            if self.opts.chatter == "always" and method == "session/prompt":
                self.wire.chatter("[qoderclicn] turn finished")
            reply = answer if isinstance(answer, Reply) else Reply(answer)
            self.wire.reply(msg_id, reply.result)
            if reply.after is not None:
                reply.after()

    # -- helpers -------------------------------------------------------------------------
    def _login(self) -> None:
        if not self.opts.logged_in:
            raise _AuthRequired

    @staticmethod
    def _sid(params: dict[str, Any]) -> str:
        check(params, sessionId="string")
        return str(params["sessionId"])

    def _unknown(self, sid: str, root: str | None = None) -> Refused:
        return Refused(
            -32602,
            f'Invalid session identifier "{sid}".\n'
            "  Searched current project and same-repo worktrees:\n"
            f"    - {self.store.folder}\n"
            "  Use --list-sessions to see available sessions.",
            {
                "code": "INVALID_SESSION_IDENTIFIER",
                "sessionId": sid,
                "projectRoot": root or os.getcwd(),
            },
        )

    def _runtime(self, params: dict[str, Any], **fields: str) -> SessionRuntime:
        check(params, sessionId="string", **fields)
        sid = str(params["sessionId"])
        runtime = self.open.get(sid)
        if runtime is None:
            raise Refused(-32603, "Internal error", {"details": f"Session not found: {sid}"})
        return runtime

    def _open(self, conversation: Conversation) -> SessionRuntime:
        runtime = SessionRuntime(conversation, config.Choice(model=conversation.model))
        self.open[conversation.session_id] = runtime
        return runtime

    def _stored(self, sid: str, root: str | None = None) -> Conversation:
        """A conversation on disk. One never prompted is not there yet, as with the CLI,
        which writes a session's transcript at its first prompt."""
        conversation = self.store.get(sid)
        if conversation is None or not conversation.history:
            raise self._unknown(sid, root)
        return conversation

    def _state(self, runtime: SessionRuntime) -> dict[str, Any]:
        return config.session_state(self.offer, runtime.choice)

    def update(self, sid: str, update: dict[str, Any]) -> None:
        self.wire.notify("session/update", {"sessionId": sid, "update": update})

    def _commands(self, runtime: SessionRuntime) -> Callable[[], None]:
        sid = runtime.session_id
        return lambda: self.update(
            sid, {"sessionUpdate": "available_commands_update", "availableCommands": COMMANDS}
        )

    def _options_changed(self, runtime: SessionRuntime, mode: bool = False) -> None:
        sid = runtime.session_id
        if mode:
            change = {"sessionUpdate": "current_mode_update", "currentModeId": runtime.mode}
            self.update(sid, change)
        options = config.config_options(self.offer, runtime.choice)
        if options:
            self.update(sid, {"sessionUpdate": "config_option_update", "configOptions": options})

    # -- methods -------------------------------------------------------------------------
    async def initialize(self, params: dict[str, Any]) -> dict[str, Any]:
        session_caps: dict[str, Any] = {
            "additionalDirectories": {},
            "close": {},
            "delete": {},
            "fork": {},
        }
        if self.opts.list_sessions:
            session_caps["list"] = {}
        if self.opts.resume:
            session_caps["resume"] = {}
        return {
            "protocolVersion": 1,
            "authMethods": [
                {
                    "id": "qoderclicn-login",
                    "name": "Use qoderclicn login",
                    "description": "Use your existing qoderclicn login for this agent. "
                    "If needed, sign in from qoderclicn first.",
                }
            ],
            "agentInfo": {
                "name": "qoder-cli-cn",
                "title": "Qoder CLI CN (simulated)",
                "version": SIM_ACP_VERSION,
            },
            "agentCapabilities": {
                "_meta": {"qoder": {"promptQueueing": True}},
                "loadSession": self.opts.load,
                "sessionCapabilities": session_caps,
                "promptCapabilities": {"image": True, "embeddedContext": True},
                "mcpCapabilities": {"http": True, "sse": True},
            },
        }

    async def session_new(self, params: dict[str, Any]) -> Reply:
        check(params, cwd="string", mcpServers="array")  # before the login, as 1.1.52 does
        self._login()
        cwd = os.path.join(os.getcwd(), params["cwd"])
        if not _is_folder(cwd):
            raise Refused(-32603, "Internal error", {"details": f"Directory does not exist: {cwd}"})
        if self.opts.new_delay:
            # The CLI scans the workspace here: 30 s in a large repository.
            await asyncio.sleep(self.opts.new_delay)
        runtime = self._open(self.store.create(cwd))
        return Reply(
            {"sessionId": runtime.session_id, **self._state(runtime)}, self._commands(runtime)
        )

    async def session_load(self, params: dict[str, Any]) -> Reply:
        if not self.opts.load:
            raise Refused(-32601, '"Method not found": session/load', {"method": "session/load"})
        check(params, sessionId="string", cwd="string", mcpServers="array")
        self._login()
        runtime = self._open(self._stored(params["sessionId"], params["cwd"]))
        updates = replay(runtime.conversation)
        send = self._sender(runtime.session_id)
        commands = self._commands(runtime)
        if self.opts.replay == "before":
            send(updates)
            return Reply(self._state(runtime), commands)
        if self.opts.replay == "after":
            # Answer first, replay a moment later, and serve nothing else meanwhile: an
            # agent that handles one message after another, as the CLI may.
            self.ready.clear()

            def late() -> None:
                send(updates)
                commands()
                self.ready.set()

            asyncio.get_running_loop().call_later(REPLAY_LAG, late)
            return Reply(self._state(runtime))
        # As the CLI: the first user message before the reply, the rest right after it.
        send(updates[:1])
        return Reply(self._state(runtime), lambda: (send(updates[1:]), commands()))

    def _sender(self, sid: str) -> Callable[[list[dict[str, Any]]], None]:
        def send(updates: list[dict[str, Any]]) -> None:
            for update in updates:
                self.update(sid, update)

        return send

    async def session_resume(self, params: dict[str, Any]) -> dict[str, Any]:
        check(params, sessionId="string", cwd="string", mcpServers="array")
        self._login()
        return self._state(self._open(self._stored(params["sessionId"], params["cwd"])))

    async def session_fork(self, params: dict[str, Any]) -> Reply:
        check(params, sessionId="string", cwd="string")
        self._login()
        sid, cwd = str(params["sessionId"]), str(params["cwd"])
        source = self.open[sid].conversation if sid in self.open else self._stored(sid, cwd)
        if not source.history:
            raise self._unknown(sid, cwd)
        runtime = self._open(self.store.fork(source, cwd))
        return Reply(
            {"sessionId": runtime.session_id, **self._state(runtime)}, self._commands(runtime)
        )

    async def session_delete(self, params: dict[str, Any]) -> dict[str, Any]:
        sid = self._sid(params)
        self._login()
        self._stored(sid)
        self.store.delete(sid)
        self.open.pop(sid, None)
        return {}

    async def session_list(self, params: dict[str, Any]) -> dict[str, Any]:
        if "cwd" in params:
            check(params, cwd="string")
        self._login()
        cwd = params.get("cwd")
        return {
            "sessions": [
                {
                    "sessionId": c.session_id,
                    "cwd": c.cwd,
                    "title": c.title or None,
                    "updatedAt": c.updated_at,
                }
                for c in self.store.all(cwd if isinstance(cwd, str) else None)
                if c.history  # never prompted: not written yet, as with the CLI
            ]
        }

    async def session_close(self, params: dict[str, Any]) -> dict[str, Any]:
        self.open.pop(str(params.get("sessionId")), None)
        return {}

    async def set_config_option(self, params: dict[str, Any]) -> dict[str, Any]:
        runtime = self._runtime(params)
        config_id = params.get("configId")
        before = replace(runtime.choice)
        config.set_option(self.offer, runtime.choice, config_id, params.get("value"))
        self._chosen(runtime, before)
        return {"configOptions": config.config_options(self.offer, runtime.choice)}

    async def set_model(self, params: dict[str, Any]) -> dict[str, Any]:
        runtime = self._runtime(params)
        before = replace(runtime.choice)
        config.set_model(runtime.choice, params.get("modelId"))
        self._chosen(runtime, before)
        return {}

    async def set_mode(self, params: dict[str, Any]) -> dict[str, Any]:
        runtime = self._runtime(params)
        before = replace(runtime.choice)
        config.set_mode(runtime.choice, params.get("modeId"))
        self._chosen(runtime, before)
        return {}

    def _chosen(self, runtime: SessionRuntime, before: config.Choice) -> None:
        """Keep the model with the conversation; tell the client what changed (nothing,
        as the CLI, when a value is chosen again)."""
        if runtime.choice == before:
            return
        if runtime.conversation.model != runtime.choice.model:
            runtime.conversation.model = runtime.choice.model
            self.store.save(runtime.conversation)
        self._options_changed(runtime, mode=runtime.choice.mode != before.mode)

    # -- the prompt ----------------------------------------------------------------------
    async def session_prompt(self, params: dict[str, Any]) -> dict[str, Any]:
        runtime = self._runtime(params, prompt="array")
        self._login()
        return await self.prompting.run(runtime, params["prompt"])


def _refusal(exc: Exception) -> tuple[int, str, Any]:
    """The JSON-RPC error (code, message, data) a refusal is answered with."""
    if isinstance(exc, Refused):
        return exc.code, exc.message, exc.data
    if isinstance(exc, InvalidParams):
        return -32602, "Invalid params", exc.data
    if isinstance(exc, BlockRefused):
        return -32602, f"Invalid params: {exc}", exc.data
    assert isinstance(exc, config.ConfigRefused)
    return -32602, str(exc), exc.data  # its words already start "Invalid params: "


def _is_folder(path: str) -> bool:
    return os.path.isdir(path)

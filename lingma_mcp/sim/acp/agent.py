"""The simulated ``qoderclicn --acp``: its methods, answers and errors, as awkward as §10.

Shapes follow what 1.1.52 answered (PROTOCOL.md §10): ``initialize`` with agentInfo,
authMethods and agentCapabilities; logged out, -32000 "Authentication required:
Authentication is required." for session/new, list, load and prompt, with parameters
checked first (``session/new {}`` gets -32602); an ``authenticate`` that never answers;
-32601 with ``data.method`` for anything unknown, ``session/cancel`` sent as a request
included (the CLI takes it only as a notification).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from lingma_mcp.sim.acp.options import SIM_ACP_VERSION, AcpSimOptions
from lingma_mcp.sim.acp.store import Conversation, ConversationStore
from lingma_mcp.sim.acp.turn import Turn, TurnState, text
from lingma_mcp.sim.acp.wire import Wire

log = logging.getLogger("lingma_mcp.sim.acp")

AUTH_REQUIRED = (-32000, "Authentication required: Authentication is required.")
REPLAY_LAG = 0.2
MODELS = [
    ("auto", "Auto", "Lets Lingma pick"),
    ("qwen3-coder", "Qwen3 Coder", "Coding model"),
    ("kimi-k2", "Kimi K2", "Long context"),
]


class InvalidParams(Exception):
    pass


class AcpSimAgent:
    def __init__(self, wire: Wire, opts: AcpSimOptions) -> None:
        self.wire = wire
        self.opts = opts
        self.store = ConversationStore(opts.state_dir)
        self.open: dict[str, Conversation] = {}
        self.turns: dict[str, TurnState] = {}
        self.ready = asyncio.Event()  # cleared while a late replay is pending
        self.ready.set()
        self.methods = {
            "initialize": self.initialize,
            "session/new": self.session_new,
            "session/load": self.session_load,
            "session/list": self.session_list,
            "session/prompt": self.session_prompt,
            "session/set_config_option": self.set_config_option,
            "session/set_model": self.set_model,
            "session/close": self.session_close,
        }
        if opts.resume:
            self.methods["session/resume"] = self.session_resume
        if not opts.list_sessions:
            del self.methods["session/list"]
        if opts.models != "legacy":
            del self.methods["session/set_model"]
        if opts.models != "config":
            del self.methods["session/set_config_option"]

    async def handle(self, message: dict[str, Any]) -> None:
        await self.ready.wait()
        method = message["method"]
        params = message.get("params") or {}
        if "id" not in message:
            if method == "session/cancel":
                state = self.turns.get(str(params.get("sessionId")))
                if state is not None:
                    state.cancel.set()
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
            result = await handler(params)
        except InvalidParams as exc:
            self.wire.error(msg_id, -32602, "Invalid params", {"details": str(exc)})
        except _AuthRequired:
            self.wire.error(msg_id, *AUTH_REQUIRED)
        else:
            if self.opts.chatter == "always" and method == "session/prompt":
                self.wire.chatter("[qoderclicn] turn finished")
            self.wire.reply(msg_id, result)

    def _login(self) -> None:
        if not self.opts.logged_in:
            raise _AuthRequired

    def _models(self, conversation: Conversation) -> dict[str, Any]:
        if self.opts.models == "config":
            return {
                "configOptions": [
                    {
                        "id": "model",
                        "name": "Model",
                        "category": "model",
                        "type": "select",
                        "currentValue": conversation.model,
                        "options": [
                            {"value": key, "name": name, "description": about}
                            for key, name, about in MODELS
                        ],
                    }
                ]
            }
        if self.opts.models == "legacy":
            return {
                "models": {
                    "availableModels": [
                        {"modelId": key, "name": name, "description": about}
                        for key, name, about in MODELS
                    ],
                    "currentModelId": conversation.model,
                }
            }
        return {}

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

    @staticmethod
    def _cwd(params: dict[str, Any]) -> str:
        cwd = params.get("cwd")
        if not isinstance(cwd, str) or not cwd.startswith("/"):
            raise InvalidParams("cwd: an absolute path is required")
        return cwd

    def _session(self, params: dict[str, Any]) -> Conversation:
        sid = params.get("sessionId")
        if not isinstance(sid, str):
            raise InvalidParams("sessionId is required")
        conversation = self.open.get(sid)
        if conversation is None:
            raise InvalidParams(f"Session not found: {sid}")
        return conversation

    async def session_new(self, params: dict[str, Any]) -> dict[str, Any]:
        cwd = self._cwd(params)  # checked before the login, as 1.1.52 does
        self._login()
        conversation = self.store.create(cwd)
        self.open[conversation.session_id] = conversation
        return {"sessionId": conversation.session_id, **self._models(conversation)}

    def _stored(self, params: dict[str, Any]) -> Conversation:
        sid = params.get("sessionId")
        if not isinstance(sid, str):
            raise InvalidParams("sessionId is required")
        self._cwd(params)
        self._login()
        conversation = self.store.get(sid)
        if conversation is None:
            raise InvalidParams(f"Session not found: {sid}")
        self.open[sid] = conversation
        return conversation

    async def session_load(self, params: dict[str, Any]) -> dict[str, Any]:
        if not self.opts.load:
            raise InvalidParams("session/load is not supported")
        conversation = self._stored(params)
        if self.opts.replay_after:
            # Answer first, replay a moment later, and serve nothing else meanwhile: an
            # agent that handles one message after another, as the CLI may.
            self.ready.clear()
            asyncio.get_running_loop().call_later(REPLAY_LAG, self._late_replay, conversation)
        else:
            self._replay(conversation)
        return self._models(conversation)

    def _late_replay(self, conversation: Conversation) -> None:
        self._replay(conversation)
        self.ready.set()

    def _replay(self, conversation: Conversation) -> None:
        for turn in conversation.history:
            kind = "user_message_chunk" if turn["role"] == "user" else "agent_message_chunk"
            self.wire.notify(
                "session/update",
                {
                    "sessionId": conversation.session_id,
                    "update": {"sessionUpdate": kind, "content": text(turn["text"])},
                },
            )

    async def session_resume(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._models(self._stored(params))

    async def session_list(self, params: dict[str, Any]) -> dict[str, Any]:
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
            ]
        }

    async def session_close(self, params: dict[str, Any]) -> dict[str, Any]:
        self.open.pop(str(params.get("sessionId")), None)
        return {}

    async def set_config_option(self, params: dict[str, Any]) -> dict[str, Any]:
        conversation = self._session(params)
        if params.get("configId") != "model":
            raise InvalidParams(f"unknown config option {params.get('configId')}")
        self._pick(conversation, params.get("value"))
        return self._models(conversation)

    async def set_model(self, params: dict[str, Any]) -> dict[str, Any]:
        self._pick(self._session(params), params.get("modelId"))
        return {}

    def _pick(self, conversation: Conversation, key: Any) -> None:
        if key not in {k for k, _, _ in MODELS}:
            raise InvalidParams(f"unknown model {key}")
        conversation.model = str(key)
        self.store.save(conversation)

    async def session_prompt(self, params: dict[str, Any]) -> dict[str, Any]:
        conversation = self._session(params)
        self._login()
        blocks = params.get("prompt")
        if not isinstance(blocks, list):
            raise InvalidParams("prompt: a list of content blocks is required")
        prompt = "".join(b.get("text", "") for b in blocks if isinstance(b, dict))
        state = self.turns[conversation.session_id] = TurnState()
        try:
            stop, answer = await Turn(self.wire, self.opts, conversation, state).run(prompt)
        finally:
            self.turns.pop(conversation.session_id, None)
        self.store.remember(conversation, "user", prompt)
        if answer:
            self.store.remember(conversation, "agent", answer)
        return {"stopReason": stop}


class _AuthRequired(Exception):
    pass

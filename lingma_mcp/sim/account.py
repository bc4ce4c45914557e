"""The simulated account: login state, the model catalogue, login URLs, the endpoint.

One :class:`Account` per process, shared by every connection, so ``auth/logout`` on one
connection is seen by the others, as with the binary. The ``auth/status`` result carries
fake ``token`` / ``refreshToken`` values shaped like secrets, so a bridge's redaction can
be tested; nothing here logs them.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

from lingma_mcp.sim.start_options import AuthState

# auth/status codes (PROTOCOL.md section 5).
STATUS_CODES: dict[str, int] = {"logged_out": 1, "logged_in": 2, "expired": 3}
WHITELIST_PASS = 3
WHITELIST_UNKNOWN = 4

DEFAULT_ENDPOINT = "https://lingma-api.tongyi.aliyun.com"
USERNAME = "sim-user"
USER_TYPE = "personal_standard"

MODELS: tuple[dict[str, Any], ...] = (
    {"key": "auto", "displayName": "Auto", "isReasoning": False, "isVl": False},
    {
        "key": "dashscope_qwen3_coder",
        "displayName": "Qwen3-Coder",
        "isReasoning": False,
        "isVl": False,
    },
    {
        "key": "dashscope_qwen_max_latest",
        "displayName": "Qwen-Max",
        "isReasoning": False,
        "isVl": True,
    },
    {
        "key": "dashscope_qwen_plus_20250428_thinking",
        "displayName": "Qwen-Plus (thinking)",
        "isReasoning": True,
        "isVl": False,
    },
)
SCENES: dict[str, tuple[str, ...]] = {
    "assistant": ("auto", "dashscope_qwen3_coder", "dashscope_qwen_max_latest"),
    "chat": tuple(m["key"] for m in MODELS),
    "developer": ("auto", "dashscope_qwen3_coder", "dashscope_qwen_plus_20250428_thinking"),
    "inline": ("auto", "dashscope_qwen3_coder"),
    "quest": ("auto", "dashscope_qwen3_coder"),
}


class Account:
    """Login state, nonce counter and endpoint of the simulated Lingma."""

    def __init__(self, state: AuthState) -> None:
        self.state: AuthState = state
        self.endpoint = DEFAULT_ENDPOINT
        self._nonces = 0

    @property
    def usable(self) -> bool:
        return self.state == "logged_in"

    def status(self) -> dict[str, Any]:
        """The ``auth/status`` result, secrets included (as the binary sends them)."""
        code = STATUS_CODES[self.state]
        if self.state == "logged_out":
            return {
                "status": code,
                "whitelist": WHITELIST_UNKNOWN,
                "name": "",
                "id": "",
                "token": "",
            }
        expire = int(time.time() * 1000) + (
            -3_600_000 if self.state == "expired" else 30 * 86_400_000
        )
        return {
            "status": code,
            "whitelist": WHITELIST_PASS,
            "name": USERNAME,
            "id": "sim-uid-10001",
            "accountId": "sim-account-10001",
            "avatarUrl": "",
            "token": "sim-secret-token-" + _digest("token"),
            "refreshToken": "sim-secret-refresh-" + _digest("refresh"),
            "expireTime": expire,
            "quota": {"total": 1000, "used": 42},
            "orgId": "sim-org-1",
            "orgName": "模拟组织 Sim Org",
            "userType": USER_TYPE,
        }

    def models(self) -> dict[str, Any]:
        """The ``config/queryModels`` scene map; ``{}`` when not logged in."""
        if not self.usable:
            return {}
        by_key = {m["key"]: m for m in MODELS}
        return {
            scene: [{**by_key[key], "format": "openai", "source": "system"} for key in keys]
            for scene, keys in SCENES.items()
        }

    def login_url(self) -> dict[str, Any]:
        self._nonces += 1
        nonce = _digest(f"nonce-{self._nonces}")[:16]
        return {
            "loginUrl": f"https://account.alibabacloud.com/login/login.htm?oauth_callback=lingma&nonce={nonce}",
            "nonce": nonce,
            "success": True,
        }

    def logout(self) -> None:
        self.state = "logged_out"


def _digest(text: str) -> str:
    return hashlib.sha256(f"lingma-sim:{text}".encode()).hexdigest()[:32]

"""Lingma's login state, read through an allow-list so tokens never leave this module.

``auth/status`` returns live access and refresh tokens next to the user's name. The bridge
needs the name, the state and the expiry, never the tokens, so the reply is parsed into a
model that has no field to hold them: nothing downstream can log, return or store what it
was never given.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel, ConfigDict

from ..errors import LingmaNotLoggedIn

STATUS_NAMES: dict[int, str] = {
    1: "not logged in",
    2: "logged in",
    3: "login expired",
    4: "error",
    5: "network error",
    6: "IP banned",
    7: "app disabled",
}

WHITELIST_NAMES: dict[int, str] = {
    1: "not whitelisted",
    2: "waiting for whitelist approval",
    3: "whitelisted",
    4: "unknown",
    5: "no licence",
}

LOGGED_IN = 2


class AuthStatus(BaseModel):
    """The safe part of ``auth/status``. Extra fields (tokens among them) are dropped."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    status: int | None = None
    whitelist: int | None = None
    name: str | None = None
    id: str | None = None
    accountId: str | None = None  # Lingma's spelling
    orgId: str | None = None
    orgName: str | None = None
    userType: str | None = None
    expireTime: int | None = None  # milliseconds since the epoch
    quota: Any = None

    @classmethod
    def from_reply(cls, reply: Any) -> AuthStatus:
        if not isinstance(reply, dict):
            return cls()
        safe = {key: reply[key] for key in cls.model_fields if key in reply}
        for key in ("id", "accountId", "orgId", "userType"):
            if safe.get(key) is not None:
                safe[key] = str(safe[key])
        for key in ("status", "whitelist", "expireTime"):
            try:
                safe[key] = int(safe[key]) if safe.get(key) is not None else None
            except (TypeError, ValueError):
                safe[key] = None
        return cls.model_validate(safe)

    @property
    def logged_in(self) -> bool:
        return self.status == LOGGED_IN

    def not_logged_in(self) -> LingmaNotLoggedIn:
        """The error for a question asked while logged out (a backend's status may say more)."""
        return LingmaNotLoggedIn(self.status_name)

    @property
    def status_name(self) -> str:
        return STATUS_NAMES.get(self.status or 0, f"unknown status {self.status}")

    @property
    def whitelist_name(self) -> str | None:
        if self.whitelist is None:
            return None
        return WHITELIST_NAMES.get(self.whitelist, f"unknown whitelist state {self.whitelist}")

    @property
    def expires_at(self) -> str | None:
        """The expiry as an ISO 8601 UTC time, when Lingma gives one."""
        if not self.expireTime:
            return None
        seconds = self.expireTime / 1000 if self.expireTime > 10**11 else self.expireTime
        return datetime.fromtimestamp(seconds, tz=timezone.utc).isoformat()

"""Lingma's login state, read through an allow-list so tokens never leave this module.

``auth/status`` returns live access and refresh tokens next to the user's name. The bridge
needs the name, the state and the expiry, never the tokens, so the reply is read field by
field into a :class:`~lingma_mcp.backend.Login`, which has nowhere to put them: nothing
downstream can log, return or store what it was never given. Pure functions, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from ..backend import Login

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
# expireTime is in milliseconds; a value below this is taken as seconds (some versions).
_MILLIS_FROM = 10**11


def login_from_status(reply: Any) -> Login:
    """The safe part of an ``auth/status`` reply; anything else in it (tokens) is dropped."""
    fields: Mapping[str, Any] = reply if isinstance(reply, dict) else {}
    status = _int(fields.get("status"))
    whitelist = _int(fields.get("whitelist"))
    return Login(
        logged_in=status == LOGGED_IN,
        state=STATUS_NAMES.get(status or 0, f"unknown status {status}"),
        user_name=_text(fields.get("name")),
        user_id=_text(fields.get("id")) or _text(fields.get("accountId")),
        user_type=_text(fields.get("userType")),
        org_name=_text(fields.get("orgName")),
        whitelist=(
            None
            if whitelist is None
            else WHITELIST_NAMES.get(whitelist, f"unknown whitelist state {whitelist}")
        ),
        expires_at=_expiry(_int(fields.get("expireTime"))),
        quota=safe_quota(fields.get("quota")),
    )


def safe_quota(quota: Any) -> float | dict[str, float] | None:
    """Numbers only: quota shapes vary and must never smuggle a secret (or any text)."""
    if isinstance(quota, bool) or quota is None:
        return None
    if isinstance(quota, int | float):
        return quota
    if isinstance(quota, dict):
        out = {
            str(k): v
            for k, v in quota.items()
            if isinstance(v, int | float) and not isinstance(v, bool)
        }
        return out or None
    return None


def _expiry(stamp: int | None) -> datetime | None:
    if not stamp:
        return None
    seconds = stamp / 1000 if stamp > _MILLIS_FROM else stamp
    try:
        return datetime.fromtimestamp(seconds, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None


def _int(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    return str(value)

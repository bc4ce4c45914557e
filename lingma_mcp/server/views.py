"""Allow-listed views of Lingma's payloads: each output field is picked by name.

Lingma's replies carry more than a host should see (``auth/status`` holds live tokens); the
functions here read only the fields the tools and resources promise, so nothing else can
leak through a result, a resource or a log line.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from ..lingma.auth import AuthStatus
from .errors import LOGIN_HINT, not_logged_in
from .models import AuthInfo, BridgeState, ModelInfo, ToolEvent

AUTO_MODEL = "auto"


def auth_info(status: AuthStatus, bridge: BridgeState) -> AuthInfo:
    expires = None
    if status.expireTime:
        try:
            expires = (
                datetime.fromtimestamp(status.expireTime / 1000, tz=timezone.utc)
                .replace(microsecond=0)
                .isoformat()
            )
        except (OverflowError, OSError, ValueError):
            expires = None
    problem = None
    if not status.logged_in:
        # A backend whose login is not a URL (the CLI) words its own instructions.
        problem = status.not_logged_in().instructions or (
            f"{not_logged_in(status.status_name)} {LOGIN_HINT}"
        )
    return AuthInfo(
        logged_in=status.logged_in,
        status=status.status_name,
        whitelist=status.whitelist_name,
        user_name=status.name,
        user_type=status.userType,
        org_name=status.orgName,
        expires_at=expires,
        quota=_safe_quota(status.quota),
        problem=problem,
        bridge=bridge,
    )


def _safe_quota(quota: Any) -> Any:
    """Numbers and short strings only: quota shapes vary and must never smuggle a secret."""
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


def model_info(raw: dict[str, Any], default: str | None) -> ModelInfo:
    key = str(raw.get("key") or "")
    return ModelInfo(
        key=key,
        display_name=str(raw.get("displayName") or raw.get("name") or key),
        reasoning=bool(raw.get("isReasoning")),
        vision=bool(raw.get("isVl")),
        default=key == default,
    )


def default_key(models: list[dict[str, Any]]) -> str | None:
    """The model Lingma uses when asked for none: the one it flags, else ``auto`` if listed
    (the plugins' default), else unknown."""
    for m in models:
        if m.get("isDefault") or m.get("default"):
            return str(m.get("key"))
    if any(m.get("key") == AUTO_MODEL for m in models):
        return AUTO_MODEL
    return None


def model_keys(by_scene: dict[str, Any], scene: str) -> list[str]:
    models = by_scene.get(scene)
    if models is None:  # a Lingma without this scene: accept any key it knows
        models = [m for ms in by_scene.values() for m in ms]
    return [str(m["key"]) for m in models if m.get("key")]


def tool_event(raw: dict[str, Any]) -> ToolEvent:
    return ToolEvent(
        id=str(raw.get("id") or ""),
        name=str(raw.get("name") or "tool"),
        status=str(raw.get("status") or ""),
        input=raw.get("input"),
        result=raw.get("result"),
    )


def session_summary(raw: dict[str, Any]) -> dict[str, Any]:
    records = raw.get("chatRecords")
    return {
        "session_id": str_or_none(raw.get("sessionId")),
        "title": str_or_none(raw.get("sessionTitle")),
        "created": raw.get("gmtCreate"),
        "modified": raw.get("gmtModified"),
        "turns": len(records) if isinstance(records, list) else None,
    }


def session_detail(raw: dict[str, Any]) -> dict[str, Any]:
    detail = session_summary(raw)
    records = raw.get("chatRecords") if isinstance(raw.get("chatRecords"), list) else []
    detail["turns"] = [
        {
            "request_id": str_or_none(r.get("requestId")),
            "question": str_or_none(r.get("question")),
            "answer": str_or_none(r.get("answer")),
            "created": r.get("gmtCreate"),
        }
        for r in records
        if isinstance(r, dict)
    ]
    return detail


def sort_number(value: Any) -> float:
    """A sort key for Lingma's timestamps (milliseconds, or text Lingma may send)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def int_or_none(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def str_or_none(value: Any) -> str | None:
    return str(value) if value is not None else None

"""The contract's values shaped into what the tools and resources show.

The backends hand the face typed values (:mod:`lingma_mcp.backend`) that already hold only
what may be shown (no token has a field to live in); the functions here pick the promised
output fields from them, by name, and word what is missing. No backend's dialect is read
here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from ..backend import (
    Attachment,
    FileAttachment,
    FolderAttachment,
    Login,
    Model,
    Session,
    SessionSummary,
    ToolCall,
    Usage,
)
from .error_texts import LOGIN_HINT, not_logged_in
from .results import (
    AttachmentInfo,
    AuthInfo,
    BridgeState,
    ModelInfo,
    SessionInfo,
    ToolEvent,
)
from .results import Usage as UsageInfo


def auth_info(login: Login, bridge: BridgeState) -> AuthInfo:
    problem = None
    if not login.logged_in:
        # A backend whose login is not a URL (the CLI) words its own instructions.
        problem = login.instructions or f"{not_logged_in(login.state)} {LOGIN_HINT}"
    expires = login.expires_at
    return AuthInfo(
        logged_in=login.logged_in,
        status=login.state,
        whitelist=login.whitelist,
        user_name=login.user_name,
        user_type=login.user_type,
        org_name=login.org_name,
        expires_at=expires.replace(microsecond=0).isoformat() if expires else None,
        quota=dict(login.quota) if isinstance(login.quota, Mapping) else login.quota,
        problem=problem,
        credential=login.credential,
        bridge=bridge,
    )


def models_by_scene(models: Iterable[Model]) -> dict[str, list[Model]]:
    """Each scene's models, scenes in the order the backend first named them."""
    scenes: dict[str, list[Model]] = {}
    for model in models:
        for scene in model.scenes:
            scenes.setdefault(scene, []).append(model)
    return scenes


def default_key(models: Iterable[Model], scene: str) -> str | None:
    """The model Lingma uses in ``scene`` when asked for none, if the backend says."""
    return next((m.key for m in models if scene in m.default_in), None)


def model_keys(models: Iterable[Model], scene: str) -> list[str]:
    """The keys a question in ``scene`` may name: that scene's models, or every model for a
    Lingma without that scene."""
    models = list(models)
    in_scene = [m.key for m in models if scene in m.scenes]
    return in_scene or [m.key for m in models]


def model_info(model: Model, default: str | None) -> ModelInfo:
    return ModelInfo(
        key=model.key,
        display_name=model.name,
        reasoning=bool(model.reasoning),
        vision=bool(model.vision),
        default=model.key == default,
    )


def tool_event(tool: ToolCall) -> ToolEvent:
    return ToolEvent(
        id=tool.id, name=tool.name, status=tool.status, input=tool.input, result=tool.result
    )


def usage_info(usage: Usage | None) -> UsageInfo | None:
    if usage is None:
        return None
    return UsageInfo(
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        total_tokens=usage.total_tokens,
        model=usage.model,
        credits=usage.credits,
    )


def attachment_info(item: Attachment) -> AttachmentInfo:
    if isinstance(item, FileAttachment):
        return AttachmentInfo(
            type="file", name=item.name, mime_type=item.mime_type, size_bytes=item.size
        )
    if isinstance(item, FolderAttachment):
        return AttachmentInfo(type="folder", name=item.name)
    return AttachmentInfo(
        type="image", name=item.name, mime_type=item.mime_type, size_bytes=len(item.data)
    )


def attached_line(items: Sequence[Attachment]) -> str:
    """One progress line naming what a question carried: ``attached: a.py (file, 2 KB), ...``."""
    shown = []
    for item in items:
        info = attachment_info(item)
        size = f", {_size(info.size_bytes)}" if info.size_bytes is not None else ""
        shown.append(f"{info.name} ({info.type}{size})")
    return "attached: " + ", ".join(shown)


def _size(count: int) -> str:
    if count < 1024:
        return f"{count} B"
    if count < 1024 * 1024:
        return f"{count / 1024:.0f} KB"
    return f"{count / (1024 * 1024):.1f} MB"


def session_info(session: SessionSummary) -> SessionInfo:
    """One entry of ``list_lingma_sessions``; times in ISO 8601 UTC."""
    return SessionInfo(
        session_id=session.session_id,
        title=session.title,
        updated=iso_utc(session.updated),
        created=iso_utc(session.created),
        backend=session.backend,
        workspace=str(session.workspace) if session.workspace is not None else None,
        turns=session.turns,
    )


def iso_utc(when: datetime | None) -> str | None:
    if when is None:
        return None
    return when.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def session_summary(session: SessionSummary) -> dict[str, Any]:
    """One entry of ``lingma://sessions``; times in epoch milliseconds, as Lingma keeps them."""
    return {
        "session_id": session.session_id,
        "title": session.title,
        "created": epoch_ms(session.created),
        "modified": epoch_ms(session.updated),
        "turns": session.turns,
    }


def session_detail(session: Session) -> dict[str, Any]:
    """``lingma://sessions/{session_id}``: the summary with each turn."""
    detail = session_summary(session.summary)
    detail["turns"] = [
        {
            "request_id": turn.request_id,
            "question": turn.question,
            "answer": turn.answer,
            "created": epoch_ms(turn.created),
        }
        for turn in session.turns
    ]
    return detail


def newest_first(sessions: Iterable[SessionSummary]) -> list[SessionSummary]:
    """Most recently updated first; those without a time last."""
    return sorted(
        sessions,
        key=lambda s: s.updated.timestamp() if s.updated is not None else float("-inf"),
        reverse=True,
    )


def epoch_ms(when: datetime | None) -> int | None:
    return None if when is None else round(when.timestamp() * 1000)

"""Lingma's conversation records as :class:`~lingma_mcp.backend.SessionSummary`,
:class:`~lingma_mcp.backend.Session` and :class:`~lingma_mcp.backend.Turn` (pure).

``chat/listAllSessions`` gives ``{sessionId, sessionTitle, projectUri, gmtCreate,
gmtModified, chatRecords[]}`` per conversation and ``chat/getSessionById`` one of them;
a record is ``{requestId, question, answer, gmtCreate, ...}``. Times are epoch
milliseconds (a number or its text). Only these fields are read.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from urllib.request import url2pathname

from ..backend import Session, SessionSummary, Turn


def summary_from_record(raw: Any) -> SessionSummary | None:
    """One listed conversation; None for an entry without a session id."""
    if not isinstance(raw, dict) or not _text(raw.get("sessionId")):
        return None
    records = raw.get("chatRecords")
    return SessionSummary(
        session_id=str(raw["sessionId"]),
        title=_text(raw.get("sessionTitle")),
        backend="ide",
        workspace=_folder(raw.get("projectUri")),
        created=_time(raw.get("gmtCreate")),
        updated=_time(raw.get("gmtModified")),
        turns=len(records) if isinstance(records, list) else None,
    )


def session_from_record(raw: Any) -> Session | None:
    """One conversation with its turns; None for anything that is not one."""
    summary = summary_from_record(raw)
    if summary is None:
        return None
    records = raw.get("chatRecords")
    turns = tuple(
        Turn(
            question=_text(r.get("question")),
            answer=_text(r.get("answer")),
            request_id=_text(r.get("requestId")),
            created=_time(r.get("gmtCreate")),
        )
        for r in (records if isinstance(records, list) else [])
        if isinstance(r, dict)
    )
    return Session(summary, turns)


def _time(value: Any) -> datetime | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return datetime.fromtimestamp(float(value) / 1000, tz=timezone.utc)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _folder(uri: Any) -> Path | None:
    if not isinstance(uri, str) or not uri.startswith("file:"):
        return None
    return Path(url2pathname(urlparse(uri).path))


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    return str(value)

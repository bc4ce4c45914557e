"""Conversations the simulator remembers, shared by all connections of one process.

Kept in ``<workDir>/sessions.json`` so a restarted simulator with the same work dir still
has them, as the binary keeps its conversations (the bridge promises conversations
outlive a restart "where Lingma keeps them"). Shapes follow PROTOCOL.md section 5.

The file holds prompts and answers: it is 0600 in a 0700 folder and written durably
(:mod:`lingma_mcp.sim.private_files`). A store that cannot be parsed (truncated by a crash, or
edited by hand) is never silently replaced: it is moved aside as
``sessions.json.corrupt-<UTC time>``, the move is logged on stderr, and an empty store
starts; the damaged file stays for whoever wants to recover it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lingma_mcp.sim.private_files import private_folder, remove_leftovers, write_durably

log = logging.getLogger("lingma_mcp.sim")

TITLE_CHARS = 40
SAVE_DELAY = 0.2


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class Turn:
    """Where a new chat lands: its conversation, its turn number, whether it is new."""

    session_id: str
    number: int
    is_new: bool
    title: str


class ConversationStore:
    """Sessions by id, each with its chat records, persisted after every change.

    Args:
        path: the JSON file to load from and save to; ``None`` keeps everything in memory.
    """

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._sessions: dict[str, dict[str, Any]] = {}
        self._save_pending = False
        self.set_aside: Path | None = None  # where a damaged store was moved, if one was
        if path is not None:
            private_folder(path.parent)
            remove_leftovers(path)
            self._load(path)

    def _load(self, path: Path) -> None:
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as exc:
            # Unreadable is not damaged: never overwrite what we could not read.
            log.error(
                "cannot read the conversation store %s (%s); conversations of this run "
                "will not be saved. Fix the file's permissions and restart.",
                path,
                exc,
            )
            self._path = None
            return
        try:
            self._sessions = parse_store(raw)
        except ValueError as exc:
            try:
                self.set_aside = _move_aside(path)
            except OSError as move_error:
                log.error(
                    "the conversation store %s is damaged (%s) and cannot be moved aside "
                    "(%s); conversations of this run will not be saved",
                    path,
                    exc,
                    move_error,
                )
                self._path = None
                return
            log.error(
                "the conversation store %s is damaged (%s): moved it to %s and started an "
                "empty one. The damaged file is kept; its conversations are not loaded.",
                path,
                exc,
                self.set_aside,
            )

    def begin(
        self, session_hint: str | None, is_reply: bool, project_uri: str, question: str
    ) -> Turn:
        """Pick the conversation for a new chat.

        Only ``isReply`` with a known session id continues a conversation; anything else
        starts a new one with the simulator's own id, whatever hint the client sent.
        """
        if is_reply and session_hint and session_hint in self._sessions:
            session = self._sessions[session_hint]
            return Turn(
                session_hint, len(session["chatRecords"]) + 1, False, session["sessionTitle"]
            )
        session_id = f"sim-session-{uuid.uuid4()}"
        title = " ".join(question.split())[:TITLE_CHARS] or "New chat"
        stamp = now_ms()
        self._sessions[session_id] = {
            "sessionId": session_id,
            "sessionTitle": title,
            "projectUri": project_uri,
            "gmtCreate": stamp,
            "gmtModified": stamp,
            "chatRecords": [],
        }
        self._save()
        return Turn(session_id, 1, True, title)

    def record(
        self, session_id: str, request_id: str, chat_task: str, question: str, answer: str
    ) -> None:
        """Append a finished chat to its conversation (no-op if it was deleted meanwhile)."""
        session = self._sessions.get(session_id)
        if session is None:
            return
        stamp = now_ms()
        session["chatRecords"].append(
            {
                "requestId": request_id,
                "sessionId": session_id,
                "chatTask": chat_task,
                "question": question,
                "answer": answer,
                "gmtCreate": stamp,
            }
        )
        session["gmtModified"] = stamp
        self._save()

    def list(self, project_uri: str | None) -> list[dict[str, Any]]:
        """Conversations of a project (all of them when no project is given), newest first."""
        found = [
            s for s in self._sessions.values() if not project_uri or s["projectUri"] == project_uri
        ]
        return sorted(found, key=lambda s: s["gmtModified"], reverse=True)

    def get(self, session_id: str) -> dict[str, Any] | None:
        return self._sessions.get(session_id)

    def delete(self, session_id: str) -> bool:
        removed = self._sessions.pop(session_id, None) is not None
        if removed:
            self._save()
        return removed

    def delete_chat(self, request_id: str) -> bool:
        """Remove one record (``chat/deleteChatById``) from whichever conversation holds it."""
        for session in self._sessions.values():
            kept = [r for r in session["chatRecords"] if r["requestId"] != request_id]
            if len(kept) != len(session["chatRecords"]):
                session["chatRecords"] = kept
                self._save()
                return True
        return False

    def clear(self) -> None:
        self._sessions.clear()
        self._save()

    def _save(self) -> None:
        """Save soon: at most every :data:`SAVE_DELAY` seconds while an event loop runs.

        Every finished chat changes the store, and rewriting the whole file each time
        would cost O(n^2) over a benchmark of a thousand asks (or sixteen 1 MB answers).
        """
        if self._path is None or self._save_pending:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        self._save_pending = True
        loop.call_later(SAVE_DELAY, self.flush)

    def flush(self) -> None:
        """Write the store now (called on shutdown, and by the delayed save)."""
        self._save_pending = False
        if self._path is None:
            return
        try:
            write_durably(
                self._path,
                json.dumps({"sessions": list(self._sessions.values())}, ensure_ascii=False),
            )
        except OSError as exc:
            log.warning("could not save conversations to %s: %s", self._path, exc)


def parse_store(raw: bytes) -> dict[str, dict[str, Any]]:
    """The sessions of a store file by id.

    Raises:
        ValueError: the file is not a whole, well-shaped store (says what is wrong).
    """
    try:
        loaded = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    sessions = loaded.get("sessions") if isinstance(loaded, dict) else None
    if not isinstance(sessions, list):
        raise ValueError('no "sessions" list at the top')
    out: dict[str, dict[str, Any]] = {}
    for index, session in enumerate(sessions):
        if not (
            isinstance(session, dict)
            and isinstance(session.get("sessionId"), str)
            and isinstance(session.get("sessionTitle"), str)
            and isinstance(session.get("projectUri"), str)
            and isinstance(session.get("gmtModified"), int)
            and isinstance(session.get("chatRecords"), list)
            and all(
                isinstance(r, dict) and isinstance(r.get("requestId"), str)
                for r in session["chatRecords"]
            )
        ):
            raise ValueError(f"session {index} is not a well-formed conversation")
        out[session["sessionId"]] = session
    return out


def _move_aside(path: Path) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    serial = 1
    while target.exists():
        serial += 1
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{serial}")
    path.rename(target)
    return target

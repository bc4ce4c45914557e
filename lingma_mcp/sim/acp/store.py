"""The simulated agent's conversations, one JSON file each, so a restart can continue them.

Files are 0600 in 0700 folders: they hold prompts and answers. Writes are atomic
(temporary file, then rename), so a crash never leaves half a conversation.

A conversation's history is what ``session/load`` replays, in order: ``user`` messages
(with their message id), ``agent`` messages (one per model response that had text) and
``tool`` calls with their input and output. Files written before tool calls were kept
(``{"role", "text"}`` entries) still load.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

TITLE_CHARS = 80


def _now() -> str:
    """An ISO time with milliseconds, as the CLI's ``updatedAt``."""
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"


@dataclass
class Conversation:
    session_id: str
    cwd: str
    title: str = ""
    updated_at: str = field(default_factory=_now)
    model: str = "auto"
    history: list[dict[str, Any]] = field(default_factory=list)

    def last_prompt(self) -> str | None:
        """The text of the latest user message (what the simulated answer calls earlier)."""
        for entry in reversed(self.history):
            if entry.get("kind") == "user":
                return str(entry.get("text", ""))
        return None


def _entry(raw: Any) -> dict[str, Any] | None:
    if not isinstance(raw, dict):
        return None
    if "kind" in raw:
        return raw
    role = raw.get("role")  # the older {"role", "text"} form
    if role in ("user", "agent"):
        return {"kind": role, "id": str(uuid.uuid4()), "text": str(raw.get("text", ""))}
    return None


class ConversationStore:
    def __init__(self, folder: Path) -> None:
        self.folder = folder / "sessions"

    def _path(self, session_id: str) -> Path:
        return self.folder / f"{session_id}.json"

    def create(self, cwd: str) -> Conversation:
        conversation = Conversation(session_id=str(uuid.uuid4()), cwd=cwd)
        self.save(conversation)
        return conversation

    def fork(self, source: Conversation, cwd: str) -> Conversation:
        """A new conversation with the same history, title and model."""
        copy = Conversation(
            session_id=str(uuid.uuid4()),
            cwd=cwd,
            title=source.title,
            model=source.model,
            history=json.loads(json.dumps(source.history)),
        )
        self.save(copy)
        return copy

    def get(self, session_id: str) -> Conversation | None:
        if not session_id or "/" in session_id or session_id.startswith("."):
            return None
        try:
            data: dict[str, Any] = json.loads(self._path(session_id).read_text("utf-8"))
            history = [e for e in map(_entry, data.pop("history", [])) if e is not None]
            return Conversation(**data, history=history)
        except (OSError, ValueError, TypeError):
            return None

    def delete(self, session_id: str) -> bool:
        if self.get(session_id) is None:
            return False
        with contextlib.suppress(FileNotFoundError):
            self._path(session_id).unlink()
        return True

    def save(self, conversation: Conversation) -> None:
        conversation.updated_at = _now()
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        with contextlib.suppress(OSError):
            os.chmod(self.folder.parent, 0o700)
            os.chmod(self.folder, 0o700)
        path = self._path(conversation.session_id)
        temp = path.with_suffix(f".{os.getpid()}.tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(asdict(conversation), handle)
        os.replace(temp, path)

    def all(self, cwd: str | None = None) -> list[Conversation]:
        found = []
        for path in sorted(self.folder.glob("*.json")) if self.folder.is_dir() else []:
            conversation = self.get(path.stem)
            if conversation is not None and (cwd is None or conversation.cwd == cwd):
                found.append(conversation)
        return sorted(found, key=lambda c: c.updated_at, reverse=True)

    def remember(self, conversation: Conversation, entries: list[dict[str, Any]]) -> None:
        """Append a finished turn; the title becomes its prompt, as the CLI's does."""
        conversation.history.extend(entries)
        prompt = next((e["text"] for e in entries if e.get("kind") == "user"), "")
        if prompt.strip():
            conversation.title = prompt.strip().splitlines()[0][:TITLE_CHARS]
        self.save(conversation)

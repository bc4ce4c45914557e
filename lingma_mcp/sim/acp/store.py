"""The simulated agent's conversations, one JSON file each, so a restart can continue them.

Files are 0600 in 0700 folders: they hold prompts and answers. Writes are atomic
(temporary file, then rename), so a crash never leaves half a conversation.
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

TITLE_CHARS = 40


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass
class Conversation:
    session_id: str
    cwd: str
    title: str = ""
    updated_at: str = field(default_factory=_now)
    model: str = "auto"
    history: list[dict[str, str]] = field(default_factory=list)  # {"role", "text"}


class ConversationStore:
    def __init__(self, folder: Path) -> None:
        self.folder = folder / "sessions"

    def _path(self, session_id: str) -> Path:
        return self.folder / f"{session_id}.json"

    def create(self, cwd: str) -> Conversation:
        conversation = Conversation(session_id=str(uuid.uuid4()), cwd=cwd)
        self.save(conversation)
        return conversation

    def get(self, session_id: str) -> Conversation | None:
        if "/" in session_id or session_id.startswith("."):
            return None
        try:
            data: dict[str, Any] = json.loads(self._path(session_id).read_text("utf-8"))
        except (OSError, ValueError):
            return None
        return Conversation(**data)

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

    def remember(self, conversation: Conversation, role: str, text: str) -> None:
        conversation.history.append({"role": role, "text": text})
        if not conversation.title and role == "user":
            conversation.title = text.strip().splitlines()[0][:TITLE_CHARS] if text.strip() else ""
        self.save(conversation)

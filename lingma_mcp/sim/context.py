"""What a ``chat/ask`` carries beside its question, for the simulated answer to name. Pure.

The plugin protocol has fields for it (PROTOCOL.md §9, read from the decompiled plugin,
shapes unverified): ``chatContext.activeFilePath``, ``chatContext.imageUrls`` and
``extra.context[]``. The simulator accepts whatever arrives there and says, in the
answer, what it received, so a test can see each item arrived; it reads no file and
fetches no URL.
"""

from __future__ import annotations

import json
from typing import Any

SHOWN_CHARS = 80
_NAME_KEYS = ("path", "filePath", "file_path", "uri", "url", "name", "text", "content")


def attachments(params: dict[str, Any]) -> tuple[str, ...]:
    """One line per item of a ``chat/ask``'s context, in the order the fields are read."""
    chat = params.get("chatContext") if isinstance(params.get("chatContext"), dict) else {}
    extra = params.get("extra") if isinstance(params.get("extra"), dict) else {}
    found: list[str] = []
    active = chat.get("activeFilePath")
    if isinstance(active, str) and active:
        found.append(f"active file {active}")
    images = chat.get("imageUrls")
    for url in images if isinstance(images, list) else []:
        found.append(f"image {_url(url)}")
    context = extra.get("context")
    for item in context if isinstance(context, list) else []:
        found.append(f"context {_item(item)}")
    return tuple(found)


def _url(url: Any) -> str:
    """A URL as the answer shows it: a data URL by its type and size, others cut short."""
    if not isinstance(url, str):
        return f"(not a URL: {type(url).__name__})"
    if url.startswith("data:"):
        kind = url[5:].split(";", 1)[0].split(",", 1)[0] or "data"
        return f"data:{kind} ({len(url)} characters)"
    return url[:SHOWN_CHARS]


def _item(item: Any) -> str:
    if isinstance(item, dict):
        kind = item.get("type") or item.get("kind") or "item"
        name = next((item[k] for k in _NAME_KEYS if isinstance(item.get(k), str)), None)
        return f"{kind} {name[:SHOWN_CHARS]}" if name else str(kind)
    return json.dumps(item, ensure_ascii=False)[:SHOWN_CHARS]

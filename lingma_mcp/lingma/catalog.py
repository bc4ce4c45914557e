"""``config/queryModels``' scene map as :class:`~lingma_mcp.backend.Model` values (pure).

Lingma lists its models per scene (``chat``, ``developer`` = agent mode, ``inline``, ...),
each entry ``{key, displayName, isReasoning, isVl, isDefault, ...}``; a model listed in
several scenes comes once here, with every scene that lists it. Where a scene flags no
default, the one Lingma uses is ``auto`` if that scene lists it, as in the IDE plugins.
"""

from __future__ import annotations

from typing import Any

from ..backend import Model

AUTO_MODEL = "auto"


def models_from_scenes(reply: Any) -> list[Model]:
    """Every model of the reply, in first-seen order; ``[]`` for anything but a scene map
    (Lingma sends ``{}`` while logged out)."""
    if not isinstance(reply, dict):
        return []
    seen: dict[str, dict[str, Any]] = {}  # key -> its first entry
    scenes: dict[str, list[str]] = {}
    defaults: dict[str, list[str]] = {}
    for scene, entries in reply.items():
        if not isinstance(entries, list):
            continue
        listed = [e for e in entries if isinstance(e, dict) and e.get("key")]
        keys = [str(e["key"]) for e in listed]
        flagged = [str(e["key"]) for e in listed if e.get("isDefault") or e.get("default")]
        default = flagged[0] if flagged else (AUTO_MODEL if AUTO_MODEL in keys else None)
        for entry, key in zip(listed, keys, strict=True):
            seen.setdefault(key, entry)
            scenes.setdefault(key, []).append(str(scene))
        if default is not None:
            defaults.setdefault(default, []).append(str(scene))
    return [
        Model(
            key=key,
            name=_text(entry.get("displayName")) or _text(entry.get("name")) or key,
            description=_text(entry.get("description")) or "",
            reasoning=_flag(entry.get("isReasoning")),
            vision=_flag(entry.get("isVl")),
            scenes=tuple(scenes[key]),
            default_in=tuple(defaults.get(key, ())),
        )
        for key, entry in seen.items()
    ]


def _flag(value: Any) -> bool | None:
    return None if value is None else bool(value)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None

"""The models an agent offers for a session, read from either way ACP has said it.

Newer agents declare a session config option of category ``model`` (set with
``session/set_config_option``); older ones a ``models`` state in the ``session/new`` reply
(set with ``session/set_model``). :func:`as_models` gives them as the contract's
:class:`~lingma_mcp.backend.Model` values. Pure functions, no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from acp.schema import SessionConfigOptionSelect, SessionConfigSelectGroup

from lingma_mcp.backend import Model


@dataclass(frozen=True, slots=True)
class ModelOption:
    """One model the agent offers; ``key`` is what :meth:`AcpClient.set_model` takes."""

    key: str
    name: str
    description: str = ""


@dataclass(frozen=True, slots=True)
class ModelState:
    """A session's models: through a config option (``config_id``) or ``session/set_model``."""

    options: tuple[ModelOption, ...]
    current: str | None
    config_id: str | None  # None: the older ``models`` state, set with session/set_model


def models_from_config(options: list[Any] | None) -> ModelState | None:
    for option in options or []:
        if not isinstance(option, SessionConfigOptionSelect):
            continue
        if option.category != "model" and option.id != "model":
            continue
        values: list[ModelOption] = []
        for item in option.options:
            group = item.options if isinstance(item, SessionConfigSelectGroup) else [item]
            values += [ModelOption(v.value, v.name, v.description or "") for v in group]
        return ModelState(tuple(values), option.current_value, option.id)
    return None


def models_from_raw(raw: Any) -> ModelState | None:
    if not isinstance(raw, dict) or not isinstance(raw.get("availableModels"), list):
        return None
    values = tuple(
        ModelOption(
            str(m["modelId"]), str(m.get("name") or m["modelId"]), m.get("description") or ""
        )
        for m in raw["availableModels"]
        if isinstance(m, dict) and m.get("modelId")
    )
    current = raw.get("currentModelId")
    return ModelState(values, str(current) if current else None, None)


def as_models(state: ModelState | None, scenes: Sequence[str]) -> list[Model]:
    """The agent's models, each serving every one of ``scenes`` (the CLI has one list for
    everything); the session's current model is the default, the one used when asked for
    none."""
    if state is None:
        return []
    return [
        Model(
            key=option.key,
            name=option.name or option.key,
            description=option.description,
            scenes=tuple(scenes),
            default_in=tuple(scenes) if option.key == state.current else (),
        )
        for option in state.options
    ]

"""The models and reasoning efforts an agent offers for a session, as ACP says them.

Newer agents declare a session config option of category ``model`` (set with
``session/set_config_option``); older ones a ``models`` state in the ``session/new`` reply
(set with ``session/set_model``). :func:`as_models` gives them as the contract's
:class:`~lingma_mcp.backend.Model` values.

The reasoning effort is another config option: ``qoderclicn`` builds it as
``reasoning_effort``, of category ``model`` too (not ACP's ``thought_level``), after the
model option, and only for a model with effort levels; its values are the CLI's, never a
list of ours. So the model option is found by its id first, and the effort option by its
id or ACP's category. Pure functions, no I/O.
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


MODEL_OPTION = "model"
EFFORT_OPTION = "reasoning_effort"
EFFORT_CATEGORY = "thought_level"  # ACP's category for it; the CLI files it under "model"


@dataclass(frozen=True, slots=True)
class EffortState:
    """A session's reasoning effort: the config option, its values, the one in force."""

    config_id: str
    values: tuple[str, ...]
    current: str | None


def _selects(options: list[Any] | None) -> list[SessionConfigOptionSelect]:
    return [o for o in options or [] if isinstance(o, SessionConfigOptionSelect)]


def _values(option: SessionConfigOptionSelect) -> list[Any]:
    values: list[Any] = []
    for item in option.options:
        values += item.options if isinstance(item, SessionConfigSelectGroup) else [item]
    return values


def _is_effort(option: SessionConfigOptionSelect) -> bool:
    return option.id == EFFORT_OPTION or option.category == EFFORT_CATEGORY


def models_from_config(options: list[Any] | None) -> ModelState | None:
    """The model option: the one with id ``model``, else the first of category ``model``
    that is not the reasoning effort."""
    selects = _selects(options)
    found = next((o for o in selects if o.id == MODEL_OPTION), None) or next(
        (o for o in selects if o.category == "model" and not _is_effort(o)), None
    )
    if found is None:
        return None
    values = tuple(ModelOption(v.value, v.name, v.description or "") for v in _values(found))
    return ModelState(values, found.current_value, found.id)


def effort_from_config(options: list[Any] | None) -> EffortState | None:
    """The reasoning effort option, where the session's model has one."""
    found = next((o for o in _selects(options) if _is_effort(o)), None)
    if found is None:
        return None
    values = tuple(str(v.value) for v in _values(found))
    return EffortState(found.id, values, found.current_value)


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

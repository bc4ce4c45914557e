"""A session's modes, models and reasoning effort, in the shapes the real CLI answers. Pure.

``qoderclicn`` 1.1.52 answers ``session/new`` (and load, resume, fork) with a ``modes``
state, the older ``models`` state and ``configOptions`` [mode, model], and on accounts
whose model has effort levels a third option, ``reasoning_effort``: category ``model``
(its bundle says so; ACP's schema also knows ``thought_level``), values such as
``none|high|max`` named "None", "High", "Max". A value it does not offer is refused with
-32602 "Invalid params: Invalid value for config option <id>: <value>".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MODELS = [
    ("auto", "Auto", "Lets Lingma pick"),
    ("qwen3-coder", "Qwen3 Coder", "Coding model"),
    ("kimi-k2", "Kimi K2", "Long context"),
]
MODES = [
    ("default", "Default", "Prompts for approval"),
    ("acceptEdits", "Accept Edits", "Auto-approves edit tools"),
    ("auto", "Auto", "Auto-approves via the safety classifier"),
    ("dontAsk", "Don't Ask", "Refuses instead of prompting"),
    ("yolo", "Bypass Permissions", "Auto-approves all tools"),
]
EFFORT_NAMES = {
    "none": "None",
    "low": "Low",
    "medium": "Medium",
    "high": "High",
    "xhigh": "Extra High",
    "max": "Max",
}


class ConfigRefused(ValueError):
    """-32602 with the CLI's words (``message``) and its ``data``."""

    def __init__(self, message: str, data: dict[str, Any]) -> None:
        super().__init__(message)
        self.data = data


@dataclass(frozen=True)
class Offer:
    """What the agent offers: ``models`` is how models are declared (``both`` as the CLI:
    state and config option; ``config``, ``legacy`` or ``none``), ``efforts`` the effort
    levels (empty: no reasoning_effort option, as the CLI with a script)."""

    models: str = "both"
    efforts: tuple[str, ...] = ("none", "high", "max")


@dataclass
class Choice:
    """What one session has chosen."""

    model: str
    mode: str = "default"
    effort: str | None = None


def _select(option_id: str, name: str, category: str, current: str, values: list[Any]) -> Any:
    options = [
        {"value": v, "name": n, "description": d} if d else {"value": v, "name": n}
        for v, n, d in values
    ]
    return {
        "type": "select",
        "id": option_id,
        "name": name,
        "category": category,
        "currentValue": current,
        "options": options,
    }


def config_options(offer: Offer, choice: Choice) -> list[dict[str, Any]]:
    options = []
    if offer.models in ("both", "config"):
        options.append(_select("mode", "Mode", "mode", choice.mode, MODES))
        options.append(_select("model", "Model", "model", choice.model, MODELS))
    if offer.efforts and offer.models in ("both", "config"):
        values = [(e, EFFORT_NAMES.get(e, e), "") for e in offer.efforts]
        current = choice.effort or offer.efforts[0]
        options.append(_select("reasoning_effort", "Reasoning Effort", "model", current, values))
    return options


def session_state(offer: Offer, choice: Choice) -> dict[str, Any]:
    """The mode, model and option fields of a session/new, load, resume or fork reply."""
    state: dict[str, Any] = {}
    if offer.models != "none":
        state["modes"] = {
            "availableModes": [
                {"id": key, "name": name, "description": about} for key, name, about in MODES
            ],
            "currentModeId": choice.mode,
        }
    if offer.models in ("both", "legacy"):
        state["models"] = {
            "availableModels": [
                {"modelId": key, "name": name, "description": about} for key, name, about in MODELS
            ],
            "currentModelId": choice.model,
        }
    options = config_options(offer, choice)
    if options:
        state["configOptions"] = options
    return state


def set_option(offer: Offer, choice: Choice, option_id: Any, value: Any) -> None:
    """Apply ``session/set_config_option``.

    Raises:
        ConfigRefused: an option not offered, or a value it does not have.
    """
    offered = {option["id"]: option for option in config_options(offer, choice)}
    option = offered.get(option_id)
    if option is None:
        raise ConfigRefused(
            f"Invalid params: Unknown config option: {option_id}", {"configId": option_id}
        )
    if value not in [item["value"] for item in option["options"]]:
        raise ConfigRefused(
            f"Invalid params: Invalid value for config option {option_id}: {value}",
            {"configId": option_id, "value": value},
        )
    if option_id == "mode":
        choice.mode = str(value)
    elif option_id == "model":
        choice.model = str(value)
    else:
        choice.effort = str(value)


def set_model(choice: Choice, model_id: Any) -> None:
    if model_id not in [key for key, _, _ in MODELS]:
        raise ConfigRefused(
            f"Invalid params: Invalid or unavailable model: {model_id}", {"modelId": model_id}
        )
    choice.model = str(model_id)


def set_mode(choice: Choice, mode_id: Any) -> None:
    if mode_id not in [key for key, _, _ in MODES]:
        raise ConfigRefused(
            f"Invalid params: Invalid or unavailable mode: {mode_id}", {"modeId": mode_id}
        )
    choice.mode = str(mode_id)
